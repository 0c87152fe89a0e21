"""A served app over a private cluster that goes down, crashes, fills up and locks while a
bounded load runs: only 2xx, 4xx and 503 answers, no acknowledged write lost, and a request
succeeds within 2 s of the database being back.

One test, one subtest per scenario, run in order on one cluster and one served app: xdist
keeps a test on one worker, so the suite makes one cluster, not one per worker.
(`--dist loadgroup` would say the same per test, but pytest-xdist 3.8 cannot rename pytest
9.2's node ids, so its groups are ignored.)
"""

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import asyncpg
import httpx
import pytest

from tests.resilience.cluster import Cluster
from tests.resilience.load import Load, recovery_time
from tests.resilience.served import Served

pytestmark = pytest.mark.resilience

RECOVERY_LIMIT_S = 2.0


@asynccontextmanager
async def loaded(served: Served, headers: dict[str, str]) -> AsyncIterator[Load]:
    """A load running for the block, then checked: the answers, and the writes."""
    load = Load(served.url, headers)
    load.start()
    try:
        await asyncio.sleep(0.5)  # some writes acknowledged before the trouble
        yield load
        await asyncio.sleep(0.3)  # and after it
    finally:
        await load.stop()
    assert not load.errors, load.errors[:5]
    assert not load.unexpected(), (load.statuses, served.output()[-3000:])
    assert load.statuses[201] > 0, load.statuses


async def assert_writes_kept(cluster: Cluster, load: Load) -> None:
    connection = await asyncpg.connect(cluster.dsn("resil_app"))
    try:
        rows = await connection.fetch(
            "SELECT id, slug FROM categories WHERE id = ANY($1::int[])", list(load.acknowledged)
        )
    finally:
        await connection.close()
    stored = {row["id"]: row["slug"] for row in rows}
    missing = {i: s for i, s in load.acknowledged.items() if stored.get(i) != s}
    assert not missing, f"acknowledged writes lost: {missing}"


async def outage(
    cluster: Cluster,
    app: Served,
    headers: dict[str, str],
    go_down: Callable[[], None],
) -> None:
    async with loaded(app, headers) as load:
        await asyncio.to_thread(go_down)
        before = load.statuses[503]
        await asyncio.sleep(0.5)  # requests while it is down
        assert load.statuses[503] > before, load.statuses  # answered, 503
        await asyncio.to_thread(cluster.start)  # returns once it accepts connections
        waited = await recovery_time(app.url)
        assert waited <= RECOVERY_LIMIT_S, f"first success {waited:.2f} s after restart"
    await assert_writes_kept(cluster, load)


async def serve_before_the_database(cluster: Cluster, app: Served) -> None:
    """`tablestack serve` started while its database is down: one warning line, it serves
    anyway (503s), and is ready within 2 s of the database."""
    warnings = [line for line in app.output().splitlines() if line.startswith("tablestack:")]
    assert len(warnings) == 1, app.output()
    line = warnings[0]
    assert line.startswith("tablestack: warning: the database postgresql+asyncpg://"), line
    assert "/resil_app is unreachable (ConnectionRefusedError: " in line
    assert line.endswith("; serving anyway (/readyz answers 503 until then)")
    async with httpx.AsyncClient(base_url=app.url) as client:
        assert (await client.get("/readyz")).status_code == 503
        listed = await client.get("/api/categories")
        assert listed.status_code == 503
        assert listed.headers["retry-after"] == "1"
        await asyncio.to_thread(cluster.start)
        back = time.monotonic()
        while (await client.get("/readyz")).status_code != 200:
            assert time.monotonic() - back <= RECOVERY_LIMIT_S, "not ready 2 s after the database"
            await asyncio.sleep(0.02)
        assert (await client.get("/api/categories")).status_code == 200
    assert app.process.poll() is None
    later = [line for line in app.output().splitlines() if line.startswith("tablestack:")]
    assert later == warnings  # one line, not one per request


async def server_full(cluster: Cluster, app: Served, headers: dict[str, str]) -> None:
    """Every connection slot taken (superuser ones too): the app's new connections are
    refused (53300) while those it holds still serve."""
    fillers: list[asyncpg.Connection] = []
    async with loaded(app, headers) as load:
        try:
            while True:
                try:
                    fillers.append(await asyncpg.connect(cluster.dsn()))
                except asyncpg.TooManyConnectionsError:
                    break
            before = load.statuses[503]
            burst = await asyncio.gather(
                *(load.request("GET", "/api/categories") for _ in range(12))
            )
            assert any(r is not None and r.status_code == 503 for r in burst)
            assert load.statuses[503] > before
        finally:
            await asyncio.gather(*(filler.close() for filler in fillers))
        waited = await recovery_time(app.url)
        assert waited <= RECOVERY_LIMIT_S
    await assert_writes_kept(cluster, load)


async def table_locked(cluster: Cluster, app: Served, headers: dict[str, str]) -> None:
    """A table locked for longer than DB_POOL_TIMEOUT_S: requests past the pool wait that
    long and are 503; those holding a connection wait for the lock and succeed."""
    holder = await asyncpg.connect(cluster.dsn("resil_app"))
    try:
        async with loaded(app, headers) as load:
            async with holder.transaction():
                await holder.execute("LOCK TABLE categories IN ACCESS EXCLUSIVE MODE")
                burst = asyncio.gather(*(load.request("GET", "/api/categories") for _ in range(12)))
                await asyncio.sleep(2)  # > the pool timeout (1 s)
            answers = await burst
            assert any(r is not None and r.status_code == 503 for r in answers)
            assert any(r is not None and r.status_code == 200 for r in answers)
            waited = await recovery_time(app.url)
            assert waited <= RECOVERY_LIMIT_S
    finally:
        await holder.close()
    await assert_writes_kept(cluster, load)


async def test_the_served_app_through_database_outages(
    subtests: pytest.Subtests, cluster: Cluster, served: Served, admin_headers: dict[str, str]
) -> None:
    with subtests.test("serve started before the database"):
        await serve_before_the_database(cluster, served)
    outages: list[tuple[str, Callable[[], None]]] = [
        ("clean shutdown and restart", lambda: cluster.stop("fast")),
        ("immediate shutdown (crash recovery)", lambda: cluster.stop("immediate")),
        ("postmaster killed (-9)", cluster.kill),
    ]
    for name, go_down in outages:
        if not cluster.running():  # an earlier scenario failed half-way
            cluster.start()
        with subtests.test(name):
            await outage(cluster, served, admin_headers, go_down)
    for name, scenario in [
        ("max_connections reached", server_full),
        ("a table locked", table_locked),
    ]:
        if not cluster.running():
            cluster.start()
        with subtests.test(name):
            await scenario(cluster, served, admin_headers)
