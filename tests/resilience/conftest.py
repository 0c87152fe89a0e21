"""The resilience suite: a served app over a private PostgreSQL cluster that the tests stop,
crash, restart, fill and lock while a bounded load runs (marker `resilience`).

Needs Debian's postgresql-common and PostgreSQL 15, as root (`.ci/run` installs them); skipped,
loudly, where they are missing - except with CI=true, where it is required.
"""

import asyncio
from collections.abc import Iterator

import asyncpg
import pytest

from backend import schema
from backend.auth.tokens import create_access_token
from backend.auth.users import upsert_user
from backend.config import Settings
from backend.models import Role
from tests.conftest import CI
from tests.resilience import cluster as clusters
from tests.resilience.served import Served, serving

SECRET_KEY = "resilience-suite-secret-key-0123456789abcdef"
ADMIN = "resilience-admin@example.com"


@pytest.fixture(scope="session")
def cluster() -> Iterator[clusters.Cluster]:
    """A running private cluster for this test process, dropped at the end whatever happens."""
    reason = clusters.missing_reason()
    if reason is not None:
        if CI:
            pytest.fail(f"CI=true requires the resilience suite to run: {reason}")
        pytest.skip(f"RESILIENCE SUITE SKIPPED: {reason}")
    clusters.drop_abandoned()
    clusters.adopt_orphans()
    made = clusters.new_cluster()
    try:
        made.create()
        made.start()
        yield made
    finally:
        made.drop()


@pytest.fixture(scope="session")
def database_url(cluster: clusters.Cluster) -> Iterator[str]:
    """A database on the private cluster, migrated, with an admin user."""
    name = "resil_app"

    async def create() -> None:
        connection = await asyncpg.connect(cluster.dsn())
        try:
            await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            await connection.execute(f'CREATE DATABASE "{name}"')
        finally:
            await connection.close()
        url = cluster.url(name)
        await schema.upgrade(url)
        settings = Settings(database_url=url, environment="test", secret_key=SECRET_KEY)
        await upsert_user(settings, email=ADMIN, password="resilience-pass", role=Role.admin)

    asyncio.run(create())
    yield cluster.url(name)


def app_environment(database_url: str) -> dict[str, str]:
    return {
        "DATABASE_URL": database_url,
        "SECRET_KEY": SECRET_KEY,
        "ANONYMOUS_READ": "true",
        # a small pool that overflows: the load needs new connections while the server is
        # full or locked, not only the ones it holds
        "DB_POOL_SIZE": "2",
        "DB_MAX_OVERFLOW": "4",
        "DB_POOL_TIMEOUT_S": "1",
        "DB_CONNECT_TIMEOUT_S": "2",
    }


@pytest.fixture(scope="session")
def served(
    cluster: clusters.Cluster,
    database_url: str,
    admin_headers: dict[str, str],  # read from the database before it goes down
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Served]:
    """`tablestack serve` over the private cluster, started while the cluster is down (as an
    orchestrator may start them side by side): the test starts the cluster."""
    log = tmp_path_factory.mktemp("served") / "serve.log"
    cluster.stop("fast")
    with serving(app_environment(database_url), log, wait_ready=False) as app:
        yield app


@pytest.fixture(scope="session")
def admin_headers(database_url: str) -> dict[str, str]:
    async def user_id() -> int:
        dsn = database_url.replace("postgresql+asyncpg://", "postgresql://")
        connection = await asyncpg.connect(dsn)
        try:
            found: int = await connection.fetchval("SELECT id FROM users WHERE email = $1", ADMIN)
            return found
        finally:
            await connection.close()

    settings = Settings(database_url=database_url, environment="test", secret_key=SECRET_KEY)
    token = create_access_token(asyncio.run(user_id()), settings)
    return {"Authorization": f"Bearer {token}"}
