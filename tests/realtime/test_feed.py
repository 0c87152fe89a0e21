"""The change feed end to end: real server processes, real sockets, the database in between.

On PostgreSQL two servers run, and every change is made through one and watched on the
other, so only the database (LISTEN/NOTIFY and the history) can carry it. On SQLite there is
one process, which makes and watches its changes.
"""

import asyncio
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import orjson
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine
from websockets.asyncio.client import connect as websocket_connect
from websockets.exceptions import ConnectionClosed

from backend.auth.tokens import create_access_token
from backend.config import PROJECT_ROOT
from tests.admin.live import PASSWORD
from tests.realtime.servers import (
    SETTINGS,
    Server,
    environment,
    headers,
    realtime_database,
    servers,
    subscribe,
    token,
)


@pytest.fixture(scope="module")
def database(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One database per backend for this module's servers (tests leave its users as found)."""
    with realtime_database(backend, tmp_path_factory.mktemp("realtime")) as url:
        yield url


@pytest.fixture(scope="module")
def cluster(backend: str, database: str) -> Iterator[list[Server]]:
    """Two server processes on PostgreSQL, one on SQLite."""
    with servers(database, 2 if backend == "postgresql" else 1) as started:
        yield started


@pytest.fixture
def own_database(backend: str, tmp_path: Path) -> Iterator[str]:
    with realtime_database(backend, tmp_path) as url:
        yield url


def writer_and_watcher(cluster: list[Server]) -> tuple[str, str]:
    return cluster[0].url, cluster[-1].url


async def patch(base_url: str, path: str, body: dict[str, Any], role: str = "admin") -> Any:
    async with httpx.AsyncClient(base_url=base_url) as client:
        response = await client.patch(path, json=body, headers=headers(role))
        assert response.status_code == 200, response.text
        return response.json()


async def sql(database_url: str, *statements: str) -> list[Any]:
    engine = create_async_engine(database_url)
    try:
        async with engine.begin() as connection:
            results = []
            for statement in statements:
                result = await connection.execute(text(statement))
                results.append(result.all() if result.returns_rows else None)
            return results
    finally:
        await engine.dispose()


async def websocket_changes(websocket: Any, count: int, timeout: float) -> list[dict[str, Any]]:
    """The next `count` messages of a WebSocket subscription, heartbeats aside."""
    found: list[dict[str, Any]] = []
    async with asyncio.timeout(timeout):
        while len(found) < count:
            received = orjson.loads(await websocket.recv())
            if received["type"] != "heartbeat":
                found.append(received)
    return found


async def test_a_change_through_one_process_reaches_a_subscriber_of_another(
    cluster: list[Server],
) -> None:
    writer, watcher = writer_and_watcher(cluster)
    async with subscribe(watcher, "viewer", resources="products") as stream:
        started = time.monotonic()
        await patch(writer, "/api/products/1", {"stock": 9}, role="editor")
        (event,) = await stream.changes(1, timeout=1.0)
        assert time.monotonic() - started < 1.0
        async with httpx.AsyncClient(base_url=writer) as client:
            current = await client.get("/api/products/1", headers=headers("viewer"))
            shown = current.json()
            created = await client.post(
                "/api/products",
                json={"sku": "RT-1", "name": "Realtime lamp", "price": "5.00", "category_id": 1},
                headers=headers("editor"),
            )
            assert created.status_code == 201, created.text
            new_id = created.json()["id"]
            deleted = await client.delete(f"/api/products/{new_id}", headers=headers("editor"))
            assert deleted.status_code == 200, deleted.text
        assert event["resource"] == "products"
        assert event["action"] == "updated"
        assert event["id"] == 1
        assert event["version"] == int(current.headers["ETag"].strip('"'))
        assert event["by"] == "editor@example.com"
        assert event["record"] == shown  # exactly what GET /api/products/1 returns
        assert datetime.fromisoformat(event["at"]).tzinfo is not None
        created_event, deleted_event = await stream.changes(2, timeout=1.0)
    assert (created_event["action"], created_event["id"]) == ("created", new_id)
    assert created_event["record"]["name"] == "Realtime lamp"
    assert (deleted_event["action"], deleted_event["id"]) == ("deleted", new_id)
    assert "record" not in deleted_event
    assert event["cursor"] < created_event["cursor"] < deleted_event["cursor"]


async def test_the_websocket_sends_the_same_events(cluster: list[Server]) -> None:
    writer, watcher = writer_and_watcher(cluster)
    url = watcher.replace("http://", "ws://") + "/api/realtime/ws?resources=products"
    async with websocket_connect(url, additional_headers=headers("viewer")) as websocket:
        await asyncio.sleep(0.3)  # the subscription is opened after the handshake
        async with subscribe(watcher, "viewer", resources="products") as stream:
            await patch(writer, "/api/products/2", {"stock": 11})
            (over_sse,) = await stream.changes(1, timeout=1.0)
        (over_websocket,) = await websocket_changes(websocket, 1, timeout=1.0)
    assert over_websocket.pop("type") == "change"
    assert over_websocket == over_sse


async def test_a_fake_seed_load_is_one_summary_event(cluster: list[Server], database: str) -> None:
    _, watcher = writer_and_watcher(cluster)
    async with subscribe(watcher, "admin") as stream:
        loaded = await asyncio.to_thread(
            subprocess.run,
            [
                str(Path(sys.executable).parent / "tablestack"),
                "seed",
                "--fake",
                "4",
                "--table",
                "tags",
            ],
            cwd=PROJECT_ROOT,
            env=environment(database),
            capture_output=True,
            text=True,
        )
        assert loaded.returncode == 0, loaded.stderr
        (event,) = await stream.changes(1, timeout=5.0)
        await stream.nothing_for(1.5)  # one event for the load, not one per row
    assert event["resource"] == "tags"
    assert event["action"] == "loaded"
    assert event["rows"] == 4
    assert event["id"] is None


async def test_an_admin_form_save_is_seen(cluster: list[Server]) -> None:
    writer, watcher = writer_and_watcher(cluster)
    csrf = re.compile(r'<meta name="csrf-token" content="([^"]+)"')
    version = re.compile(r'<input[^>]*name="row_version"[^>]*value="(\d+)"')
    async with (
        subscribe(watcher, "viewer", resources="categories") as stream,
        httpx.AsyncClient(base_url=writer, headers={"Origin": writer}) as admin,
    ):
        login = await admin.get("/admin/login")
        token_field = csrf.search(login.text)
        assert token_field is not None
        signed_in = await admin.post(
            "/admin/login",
            data={
                "csrftoken": token_field[1],
                "username": "editor@example.com",
                "password": PASSWORD,
            },
        )
        assert signed_in.status_code == 302, signed_in.text
        page = await admin.get("/admin/category/edit/2")
        token_field, seen = csrf.search(page.text), version.search(page.text)
        assert token_field is not None and seen is not None, page.text[:500]
        form = {"csrftoken": token_field[1], "name": "Garden & patio", "slug": "garden"}
        saved = await admin.post("/admin/category/edit/2", data={**form, "row_version": seen[1]})
        assert saved.status_code == 302, saved.text
        (event,) = await stream.changes(1, timeout=1.0)
    assert (event["action"], event["id"], event["by"]) == ("updated", 2, "editor@example.com")
    assert event["record"]["name"] == "Garden & patio"


async def test_a_viewer_receives_no_users_events_and_roles_apply_to_open_streams(
    cluster: list[Server],
) -> None:
    writer, watcher = writer_and_watcher(cluster)
    async with httpx.AsyncClient(base_url=watcher) as client:
        refused = await client.get(
            "/api/realtime/events", params={"resources": "users"}, headers=headers("viewer")
        )
        assert refused.status_code == 403
        assert "may not read users" in refused.json()["detail"]
        anonymous = await client.get("/api/realtime/events")
        assert anonymous.status_code == 401
        created = await client.post(
            "/api/users",
            json={
                "email": "second-admin@example.com",
                "password": "a long password",
                "role": "admin",
            },
            headers=headers("admin"),
        )
        assert created.status_code == 201, created.text
        second_admin = created.json()["id"]
        # deactivating a user ends their tokens for good: one of this test's own, so the
        # seeded editor's tokens stay good for the other tests
        created = await client.post(
            "/api/users",
            json={
                "email": "leaving-editor@example.com",
                "password": "a long password",
                "role": "editor",
            },
            headers=headers("admin"),
        )
        assert created.status_code == 201, created.text
        leaving_editor = created.json()["id"]
    second = {"Authorization": f"Bearer {create_access_token(second_admin, SETTINGS)}"}
    leaving = {"Authorization": f"Bearer {create_access_token(leaving_editor, SETTINGS)}"}

    async with (
        subscribe(watcher, "viewer") as viewer,
        subscribe(watcher, None, headers_=second, resources="users") as demoted,
        subscribe(watcher, None, headers_=leaving) as deactivated,
    ):
        await patch(writer, "/api/users/1", {"full_name": "Vera Viewer"})
        await patch(writer, "/api/products/3", {"stock": 1})
        (seen,) = await viewer.changes(1, timeout=1.0)
        assert seen["resource"] == "products"  # not the users change before it
        await viewer.nothing_for(0.5)

        (users_event,) = await demoted.changes(1, timeout=1.0)
        assert users_event["resource"] == "users"
        assert "hashed_password" not in users_event["record"]
        await patch(writer, f"/api/users/{second_admin}", {"role": "viewer"})
        started = time.monotonic()
        closing = await demoted.next(timeout=3.0)
        while closing.event is None:  # its own demotion is a users event it may still get
            closing = await demoted.next(timeout=3.0)
        assert time.monotonic() - started < 3.0
        assert closing.event == "close"
        assert closing.json["code"] == 4403
        assert "may no longer read users" in closing.json["reason"]

        await deactivated.changes(1, timeout=1.0)  # the product change
        await patch(writer, f"/api/users/{leaving_editor}", {"is_active": False})
        closing = await deactivated.next(timeout=3.0)
        assert (closing.event, closing.json["code"]) == ("close", 4401)
        assert "no longer active" in closing.json["reason"]
        with pytest.raises(EOFError):
            await deactivated.next(timeout=3.0)


async def test_an_expiring_token_closes_the_stream_with_its_reason(cluster: list[Server]) -> None:
    _, watcher = writer_and_watcher(cluster)
    soon = datetime.now(UTC) - timedelta(minutes=SETTINGS.access_token_expire_minutes, seconds=-2)
    expiring = {"Authorization": f"Bearer {create_access_token(2, SETTINGS, now=soon)}"}
    async with subscribe(watcher, None, headers_=expiring) as stream:
        closing = await stream.next(timeout=5.0)
    assert closing.event == "close"
    assert closing.json["code"] == 4401
    assert "token expired" in closing.json["reason"]


async def test_a_ticket_opens_a_stream_without_the_token_in_the_url(
    cluster: list[Server],
) -> None:
    writer, watcher = writer_and_watcher(cluster)
    async with httpx.AsyncClient(base_url=watcher) as client:
        issued = await client.post("/api/realtime/tickets", headers=headers("viewer"))
        assert issued.status_code == 200, issued.text
        ticket = issued.json()["ticket"]
        assert issued.json()["expires_in"] == 30
        assert (await client.post("/api/realtime/tickets")).status_code == 401
        forged = await client.get("/api/realtime/events", params={"ticket": token("viewer")})
        assert forged.status_code == 401  # an access token is no ticket
    async with subscribe(watcher, None, ticket=ticket, resources="products") as stream:
        await patch(writer, "/api/products/1", {"stock": 3})
        (event,) = await stream.changes(1, timeout=1.0)
    assert event["id"] == 1


async def test_filters_are_the_list_routes(cluster: list[Server]) -> None:
    writer, watcher = writer_and_watcher(cluster)
    async with httpx.AsyncClient(base_url=watcher) as client:
        wrong = await client.get(
            "/api/realtime/events",
            params={"resources": "products", "price__gte": "cheap"},
            headers=headers("viewer"),
        )
        assert wrong.status_code == 422
        assert wrong.json()["detail"][0]["loc"] == ["query", "price__gte"]
        unknown = await client.get(
            "/api/realtime/events",
            params={"resources": "products", "colour": "red"},
            headers=headers("viewer"),
        )
        assert unknown.status_code == 422
        assert "unknown field 'colour'" in unknown.json()["detail"][0]["msg"]
    params: dict[str, Any] = {
        "resources": "products",
        "price__gte": "10",
        "name__ilike": "%NOTEBOOK%",
    }
    async with subscribe(watcher, "viewer", **params) as stream:
        await patch(writer, "/api/products/2", {"stock": 2})  # 3.99, "Watering can"
        await patch(writer, "/api/products/3", {"stock": 2})  # 45.00, "Garden widget"
        await patch(writer, "/api/products/1", {"stock": 2})  # 12.50, "Blue notebook"
        (event,) = await stream.changes(1, timeout=2.0)
        assert event["id"] == 1
        await stream.nothing_for(0.5)


async def test_a_reconnect_with_a_cursor_receives_exactly_what_it_missed(
    cluster: list[Server], database: str
) -> None:
    writer, watcher = writer_and_watcher(cluster)
    async with subscribe(watcher, "viewer", resources="products,categories") as stream:
        await patch(writer, "/api/products/1", {"stock": 20})
        (first,) = await stream.changes(1, timeout=1.0)
    missed = []
    for stock in (21, 22):
        missed.append(await patch(writer, "/api/products/1", {"stock": stock}))
    await patch(writer, "/api/tags/1", {"name": "fresh"})  # not subscribed to
    missed.append(await patch(writer, "/api/categories/1", {"name": "Novels"}))
    resumed_with = {"Last-Event-ID": str(first["cursor"])}
    async with subscribe(
        watcher, "viewer", headers_=resumed_with, resources="products,categories"
    ) as stream:
        replayed = await stream.changes(3, timeout=2.0)
        await stream.nothing_for(0.5)
        await patch(writer, "/api/products/2", {"stock": 30})
        (live,) = await stream.changes(1, timeout=1.0)
    assert [(e["resource"], e["id"]) for e in replayed] == [
        ("products", 1),
        ("products", 1),
        ("categories", 1),
    ]
    cursors = [e["cursor"] for e in [first, *replayed, live]]
    assert cursors == sorted(set(cursors))  # in order, no duplicates
    assert [e["version"] for e in replayed[:2]] == [first["version"] + 1, first["version"] + 2]
    assert live["id"] == 2

    url = watcher.replace("http://", "ws://") + (
        f"/api/realtime/ws?resources=products,categories&since={first['cursor']}"
    )
    async with websocket_connect(url, additional_headers=headers("viewer")) as websocket:
        over_websocket = await websocket_changes(websocket, 4, timeout=2.0)
    assert [e["cursor"] for e in over_websocket] == cursors[1:]

    # Entries pruned past the cursor: the client is told to reload.
    await sql(database, f"DELETE FROM tablestack_history WHERE id <= {replayed[0]['cursor']}")
    async with subscribe(watcher, "viewer", since=str(first["cursor"])) as stream:
        told = await stream.next(timeout=2.0)
        assert told.event == "reload"
        assert "older than the history's retention" in told.json["reason"]
        with pytest.raises(EOFError):
            await stream.next(timeout=2.0)


@pytest.mark.postgres
async def test_no_event_is_lost_when_the_listen_connection_is_terminated(
    backend: str, cluster: list[Server], database: str
) -> None:
    if backend != "postgresql":
        pytest.skip("LISTEN/NOTIFY is PostgreSQL's")
    writer, watcher = writer_and_watcher(cluster)
    name = database.rsplit("/", 1)[1]
    listeners = (
        "SELECT pid FROM pg_stat_activity WHERE application_name = 'tablestack-realtime' "
        f"AND datname = '{name}'"
    )
    (before,) = await sql(database, listeners)
    assert len(before) == 2  # one per process
    async with subscribe(watcher, "viewer", resources="products") as stream:
        await sql(database, f"SELECT pg_terminate_backend(pid) FROM ({listeners}) AS l")
        # committed while the feed may be reconnecting: late, not lost
        await patch(writer, "/api/products/1", {"stock": 40})
        deadline = time.monotonic() + 10
        while True:
            (after,) = await sql(database, listeners)
            if len(after) == 2 and not {row[0] for row in after} & {row[0] for row in before}:
                break
            assert time.monotonic() < deadline, "the feed did not LISTEN again"
            await asyncio.sleep(0.1)
        started = time.monotonic()
        await patch(writer, "/api/products/1", {"stock": 41})
        first, second = await stream.changes(2, timeout=2.0)
        assert time.monotonic() - started < 1.0
    assert [first["record"]["stock"], second["record"]["stock"]] in ([40, 41], [41, 41])
    assert second["version"] == first["version"] + 1


@pytest.mark.postgres
async def test_entries_committed_out_of_order_are_sent_in_order_and_rollbacks_skipped(
    backend: str, cluster: list[Server], database: str
) -> None:
    if backend != "postgresql":
        pytest.skip("SQLite has one writer at a time: its ids commit in order")
    _, watcher = writer_and_watcher(cluster)
    insert = (
        "INSERT INTO tablestack_history (at, actor, resource, row_id, action, version, changes) "
        "VALUES (now(), $1, 'products', '1', 'updated', 1, '{}') RETURNING id"
    )
    dsn = database.replace("postgresql+asyncpg", "postgresql")
    early, late = await asyncpg.connect(dsn), await asyncpg.connect(dsn)
    try:
        async with subscribe(watcher, "viewer", resources="products") as stream:
            slow = early.transaction()
            await slow.start()
            first = await early.fetchval(insert, "slow writer")
            second = await late.fetchval(insert, "quick writer")  # committed at once
            await stream.nothing_for(1.0)  # held back: an earlier id may still commit
            await slow.commit()
            received = await stream.changes(2, timeout=2.0)
            assert [(e["cursor"], e["by"]) for e in received] == [
                (first, "slow writer"),
                (second, "quick writer"),
            ]
            rolled_back = late.transaction()
            await rolled_back.start()
            await late.fetchval(insert, "never")
            await rolled_back.rollback()
            started = time.monotonic()
            after = await early.fetchval(insert, "after a rollback")
            (event,) = await stream.changes(1, timeout=2.0)
            assert (event["cursor"], event["by"]) == (after, "after a rollback")
            # Not the 10 s give-up: once this database's transactions in progress when the gap
            # was seen have ended, the gap is passed.
            assert time.monotonic() - started < 3.0
    finally:
        await early.close()
        await late.close()


async def test_a_slow_client_is_cut_off_with_its_reason_while_memory_stays_flat(
    backend: str, own_database: str
) -> None:
    database = own_database
    with servers(database, 1, REALTIME_QUEUE_SIZE="600") as (server,):
        port = int(server.url.rsplit(":", 1)[1])
        loop = asyncio.get_running_loop()
        with await _slow_connection(port) as sock:
            request = (
                "GET /api/realtime/events?resources=products HTTP/1.1\r\n"
                f"Host: 127.0.0.1\r\nAuthorization: Bearer {token('viewer')}\r\n"
                "Connection: close\r\n\r\n"
            )
            await loop.sock_sendall(sock, request.encode())
            head = await asyncio.wait_for(loop.sock_recv(sock, 1024), 5)
            assert head.startswith(b"HTTP/1.1 200"), head
            await asyncio.sleep(0.5)
            rss_before = server.rss_kb()
            entries = 40_000
            # Many changes at once (as a bulk delete makes), while the client reads nothing.
            await sql(
                database,
                "INSERT INTO tablestack_history (at, actor, resource, row_id, action, version, "
                "changes) SELECT CURRENT_TIMESTAMP, 'bulk', 'products', '1', 'updated', n, '{}' "
                f"FROM generate_series(1, {entries}) AS n"
                if backend == "postgresql"
                else "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < "
                f"{entries}) INSERT INTO tablestack_history (at, actor, resource, row_id, "
                "action, version, changes) SELECT CURRENT_TIMESTAMP, 'bulk', 'products', '1', "
                "'updated', i, '{}' FROM n",
            )
            await asyncio.sleep(8)  # the feed reads them all; the server's buffers fill up
            rss_after = server.rss_kb()
            received = head
            async with asyncio.timeout(60):
                while chunk := await loop.sock_recv(sock, 65536):
                    received += chunk
    assert b"event: close" in received
    assert b"fell more than 600 events behind" in received
    assert received.count(b"\ndata: {") < entries  # cut off, not served to the end
    assert rss_after - rss_before < 30_000, (rss_before, rss_after)  # kB


async def _slow_connection(port: int) -> socket.socket:
    """A connection that reads only when asked, with a small receive buffer: the server's
    sends soon block."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port))
    return sock


async def test_shutdown_closes_streams_with_a_reason(database: str) -> None:
    with servers(database, 1) as (server,):
        async with subscribe(server.url, "viewer") as stream:
            await asyncio.sleep(0.3)
            stopped = time.monotonic()
            server.process.terminate()
            closing = await stream.next(timeout=10.0)
            assert closing.event == "close"
            assert closing.json["code"] == 1001
            with pytest.raises(EOFError):
                await stream.next(timeout=10.0)
        await asyncio.to_thread(server.process.wait, 15)
        assert time.monotonic() - stopped < 10


def test_closing_reasons_are_documented() -> None:
    """The README names what a client must handle (its example handles these)."""
    readme = (PROJECT_ROOT / "README.md").read_text()
    section = readme[readme.index("## Realtime") :]
    for name in ("reload", "close", "Last-Event-ID", "since", "ticket", "4408", "4401", "4403"):
        assert name in section, name


async def test_a_websocket_is_refused_with_a_close_code_and_reason(
    cluster: list[Server],
) -> None:
    base = cluster[-1].url.replace("http://", "ws://") + "/api/realtime/ws"
    for url, sent, code, reason in [
        (base, {}, 4401, "Not authenticated"),
        (f"{base}?resources=users", headers("viewer"), 4403, "may not read users"),
        (f"{base}?resources=nope", headers("viewer"), 4422, "unknown resource 'nope'"),
    ]:
        async with websocket_connect(url, additional_headers=sent) as websocket:
            told = orjson.loads(await asyncio.wait_for(websocket.recv(), 2.0))
            with pytest.raises(ConnectionClosed) as closed:
                await asyncio.wait_for(websocket.recv(), 2.0)
        assert (told["type"], told["code"]) == ("close", code)
        assert reason in told["reason"]
        assert closed.value.rcvd is not None and closed.value.rcvd.code == code
