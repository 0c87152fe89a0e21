"""Behind PgBouncer 1.18 in transaction pooling mode, with `DB_PREPARED_STATEMENTS=false`:
the API, sign-in, the admin and the realtime feed work on two server processes sharing two
server connections; and with prepared statements on, the first transaction that lands on
another server connection fails (why the setting exists)."""

import asyncio
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from backend.config import Settings
from backend.db import create_engine
from tests.admin.conftest import csrf_token
from tests.admin.live import PASSWORD
from tests.pgbouncer.bouncer import Bouncer
from tests.realtime.servers import headers, realtime_database, servers, subscribe

COUNT_STOCKED = text("SELECT count(*) FROM products WHERE stock >= :least")


async def _moved_to_another_server_connection(settings: Settings) -> None:
    """Run one statement twice on a pooled connection, the second time after PgBouncer had to
    give that connection's next transaction another server connection."""
    engine = create_engine(settings)
    try:
        async with engine.connect() as first:
            await first.execute(COUNT_STOCKED, {"least": 0})
            await first.commit()  # PgBouncer takes the server connection back
            async with engine.connect() as second, second.begin():
                await second.execute(text("SELECT 1"))  # and lends it to this transaction
                await first.execute(COUNT_STOCKED, {"least": 1})  # so this one gets the other
                await first.commit()
    finally:
        await engine.dispose()


@pytest.mark.parametrize("prepared", [True, False], ids=["prepared", "unprepared"])
def test_statements_survive_moving_between_server_connections_only_unprepared(
    bouncer: Bouncer, tmp_path: Path, prepared: bool
) -> None:
    with realtime_database("postgresql", tmp_path) as direct:
        settings = Settings(
            database_url=bouncer.url(direct), db_prepared_statements=prepared, environment="test"
        )
        if prepared:
            with pytest.raises(DBAPIError, match="prepared statement"):
                asyncio.run(_moved_to_another_server_connection(settings))
        else:
            asyncio.run(_moved_to_another_server_connection(settings))


async def _admin_list(base_url: str) -> httpx.Response:
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as http:
        page = await http.get("/admin/login")
        signed_in = await http.post(
            "/admin/login",
            data={
                "csrftoken": csrf_token(page.text),
                "username": "admin@example.com",
                "password": PASSWORD,
            },
        )
        assert signed_in.status_code == 302, signed_in.text
        return await http.get("/admin/product/list?search=bounced")


async def _exercise(one: str, two: str) -> None:
    editor = headers("editor")
    async with (
        httpx.AsyncClient(timeout=30) as http,
        subscribe(two, "admin", resources="products") as events,
    ):
        # Many requests at once over both processes: their pools' connections share two server
        # connections, so transactions keep changing hands.
        created = await asyncio.gather(
            *(
                http.post(
                    f"{(one, two)[n % 2]}/api/products",
                    json={
                        "sku": f"BOUNCE-{n:03d}",
                        "name": f"bounced {n}",
                        "price": "9.50",
                        "stock": n,
                        "category_id": 1,
                    },
                    headers=editor,
                )
                for n in range(24)
            )
        )
        assert [answer.status_code for answer in created] == [201] * 24, created[0].text
        ids = [answer.json()["id"] for answer in created]
        reads = await asyncio.gather(
            *(
                http.get(f"{base}/api/products/{id_}", headers=editor)
                for id_ in ids
                for base in (one, two)
            ),
            *(
                http.get(
                    f"{base}/api/products",
                    params={"stock__gte": 10, "sort": "-stock"},
                    headers=editor,
                )
                for base in (one, two) * 4
            ),
        )
        assert {answer.status_code for answer in reads} == {200}
        assert reads[-1].json()[0]["sku"] == "BOUNCE-023"
        patched = await asyncio.gather(
            *(
                http.patch(
                    f"{(two, one)[n % 2]}/api/products/{id_}",
                    json={"stock": 1000 + n},
                    headers=editor,
                )
                for n, id_ in enumerate(ids[:8])
            ),
            *(http.delete(f"{one}/api/products/{id_}", headers=editor) for id_ in ids[8:12]),
        )
        assert [answer.status_code for answer in patched] == [200] * 12, patched
        tokens = await asyncio.gather(
            *(
                http.post(
                    f"{base}/api/auth/token",
                    data={"username": "viewer@example.com", "password": PASSWORD},
                )
                for base in (one, two)
            )
        )
        assert [answer.status_code for answer in tokens] == [200, 200], tokens[0].text
        admin_page = await _admin_list(two)
        assert admin_page.status_code == 200
        assert "BOUNCE-000" in admin_page.text
        # the subscriber on the second process saw the first process's writes (LISTEN runs on
        # DATABASE_DIRECT_URL: a transaction pooler would drop its notifications)
        seen = await events.changes(24 + 8 + 4, timeout=15)
        assert sorted(e["id"] for e in seen if e["action"] == "created") == sorted(ids)
        assert sorted(e["id"] for e in seen if e["action"] == "updated") == sorted(ids[:8])
        assert sorted(e["id"] for e in seen if e["action"] == "deleted") == sorted(ids[8:12])


def test_two_processes_work_behind_pgbouncer_in_transaction_mode(
    bouncer: Bouncer, tmp_path: Path
) -> None:
    with realtime_database("postgresql", tmp_path) as direct:
        database = make_url(direct).database
        assert database is not None
        before = bouncer.transactions(database)
        environment = {
            "DB_PREPARED_STATEMENTS": "false",
            "DATABASE_DIRECT_URL": direct,
            "DB_POOL_SIZE": "6",
        }
        with servers(bouncer.url(direct), 2, **environment) as (one, two):
            asyncio.run(_exercise(one.url, two.url))
        assert bouncer.transactions(database) > before + 50  # the work went through PgBouncer
