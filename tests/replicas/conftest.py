"""Read-replica tests: a private primary cluster and its streaming replica, both dropped at the
end. They need root and Debian's PostgreSQL 15 tools (as tests/resilience does); skipped,
loudly, where those are missing - except with CI=true, where they are required."""

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass

import asyncpg
import pytest

from backend import schema
from tests.admin.live import seed
from tests.conftest import CI
from tests.replicas.streaming import caught_up, new_replica
from tests.resilience import cluster as clusters
from tests.resilience.cluster import Cluster

DATABASE = "replicated_app"


@dataclass(frozen=True)
class Pair:
    primary: Cluster
    replica: Cluster

    @property
    def primary_url(self) -> str:
        return self.primary.url(DATABASE)

    @property
    def replica_url(self) -> str:
        return self.replica.url(DATABASE)


@pytest.fixture(scope="module")
def pair() -> Iterator[Pair]:
    """A primary with a migrated, seeded database (tests.admin.live's users and rows), and a
    streaming replica that has caught up with it."""
    reason = clusters.missing_reason()
    if reason is not None:
        if CI:
            pytest.fail(f"CI=true requires the read-replica tests to run: {reason}")
        pytest.skip(f"READ-REPLICA TESTS SKIPPED: {reason}")
    clusters.drop_abandoned()
    clusters.adopt_orphans()
    primary = clusters.new_cluster()
    replica: Cluster | None = None
    try:
        primary.create()
        primary.start()

        async def prepare() -> None:
            connection = await asyncpg.connect(primary.dsn())
            try:
                await connection.execute(f'CREATE DATABASE "{DATABASE}"')
            finally:
                await connection.close()
            await schema.upgrade(primary.url(DATABASE))
            await seed(primary.url(DATABASE))

        asyncio.run(prepare())
        replica = new_replica(primary)
        asyncio.run(caught_up(primary, replica))
        yield Pair(primary, replica)
    finally:
        if replica is not None:
            replica.drop()
        primary.drop()
