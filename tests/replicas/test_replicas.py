"""`DATABASE_REPLICA_URLS`: the API's list and get-one reads are served by a real streaming
replica, writes (and reads that ask for `Prefer: read-your-writes`) by the primary, and a
replica that goes away sends its reads back to the primary at once, no request failing.

That a read came from the replica is shown with the replica's replay paused: a row written
on the primary is then missing from the replica's answers only."""

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from asgi_lifespan import LifespanManager
from httpx import ASGITransport, AsyncClient

from backend.auth.tokens import create_access_token
from backend.config import Settings
from backend.main import create_app
from tests.replicas.conftest import Pair
from tests.replicas.streaming import caught_up, pause_replay

SECRET_KEY = "replica-tests-secret-key-0123456789abcdef"
EDITOR_ID = 2  # tests.admin.live.seed's editor
PRIMARY = {"Prefer": "read-your-writes"}


@asynccontextmanager
async def api(pair: Pair) -> AsyncIterator[AsyncClient]:
    settings = Settings(
        database_url=pair.primary_url,
        database_replica_urls=[pair.replica_url],
        replica_retry_s=1.0,
        secret_key=SECRET_KEY,
        environment="test",
        db_pool_size=2,
    )
    app = create_app(settings)
    token = create_access_token(EDITOR_ID, settings)
    async with (
        LifespanManager(app),
        AsyncClient(
            transport=ASGITransport(app=app),
            base_url="http://testserver",
            headers={"Authorization": f"Bearer {token}"},
        ) as client,
    ):
        yield client


def product(sku: str) -> dict[str, object]:
    return {"sku": sku, "name": sku, "price": "3.00", "stock": 1, "category_id": 1}


async def _reads_on_replica_writes_on_primary(pair: Pair) -> None:
    async with api(pair) as client:
        await pause_replay(pair.replica, True)
        try:
            created = await client.post("/api/products", json=product("REPLICA-1"))
            assert created.status_code == 201, created.text  # the replica is never written to
            row = created.json()
            listed = await client.get("/api/products", params={"sku": "REPLICA-1"})
            assert listed.status_code == 200 and listed.json() == []  # from the paused replica
            one = await client.get(f"/api/products/{row['id']}")
            assert one.status_code == 404
            mine = await client.get("/api/products", params={"sku": "REPLICA-1"}, headers=PRIMARY)
            assert [r["id"] for r in mine.json()] == [row["id"]]
            one = await client.get(f"/api/products/{row['id']}", headers=PRIMARY)
            assert one.status_code == 200
            patched = await client.patch(f"/api/products/{row['id']}", json={"stock": 5})
            assert patched.status_code == 200, patched.text  # reads of a write: the primary's
        finally:
            await pause_replay(pair.replica, False)
        await caught_up(pair.primary, pair.replica)
        listed = await client.get("/api/products", params={"sku": "REPLICA-1"})
        assert [r["stock"] for r in listed.json()] == [5]


def test_reads_are_served_by_the_replica_and_writes_by_the_primary(pair: Pair) -> None:
    asyncio.run(_reads_on_replica_writes_on_primary(pair))


async def _replica_goes_away(pair: Pair) -> None:
    async with api(pair) as client:
        assert (await client.get("/api/products")).status_code == 200  # a pooled replica link
        pair.replica.stop("immediate")
        try:
            started = time.monotonic()
            statuses = [(await client.get("/api/products")).status_code for _ in range(20)]
            assert statuses == [200] * 20
            assert time.monotonic() - started < 2.0
            created = await client.post("/api/products", json=product("REPLICA-2"))
            assert created.status_code == 201
            # from the primary: the new row is there without asking for it
            listed = await client.get("/api/products", params={"sku": "REPLICA-2"})
            assert len(listed.json()) == 1
        finally:
            pair.replica.start()
        await caught_up(pair.primary, pair.replica)
        # the replica serves reads again once its pause is over
        await pause_replay(pair.replica, True)
        try:
            created = await client.post("/api/products", json=product("REPLICA-3"))
            assert created.status_code == 201
            deadline = time.monotonic() + 10
            while True:
                listed = await client.get("/api/products", params={"sku": "REPLICA-3"})
                if listed.json() == []:
                    break  # answered by the paused replica
                assert time.monotonic() < deadline, "reads never went back to the replica"
                await asyncio.sleep(0.2)
        finally:
            await pause_replay(pair.replica, False)


def test_a_replica_that_goes_away_sends_reads_to_the_primary(pair: Pair) -> None:
    asyncio.run(_replica_goes_away(pair))
