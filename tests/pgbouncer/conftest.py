"""PgBouncer tests: skipped, loudly, where PgBouncer or PostgreSQL is missing - except with
CI=true, where both are required."""

from collections.abc import Iterator

import pytest

from tests.conftest import CI, _require_backend
from tests.pgbouncer.bouncer import Bouncer, missing_reason, running_bouncer


@pytest.fixture
def bouncer() -> Iterator[Bouncer]:
    """PgBouncer in transaction mode, with two server connections per database: few enough
    that clients' transactions keep moving between them."""
    _require_backend("postgresql")
    reason = missing_reason()
    if reason is not None:
        if CI:
            pytest.fail(f"CI=true requires the PgBouncer tests to run: {reason}")
        pytest.skip(f"PGBOUNCER TESTS SKIPPED: {reason}")
    with running_bouncer(server_connections=2) as running:
        yield running
