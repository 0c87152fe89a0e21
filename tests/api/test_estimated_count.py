"""`Prefer: count=estimated`: PostgreSQL's row estimate for unfiltered lists of large tables."""

import pytest
from httpx import AsyncClient
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from backend.config import Settings
from tests.api.conftest import Rows

ESTIMATED = {"Prefer": "count=estimated"}


@pytest.fixture
def settings(database_url: str) -> Settings:
    # Every table counts as large, so the estimate applies to the few rows of a test.
    return Settings(database_url=database_url, environment="test", estimated_count_min_rows=0)


async def test_estimated_count_on_unfiltered_lists_only(
    client: AsyncClient,
    rows: Rows,
    admin: dict[str, str],
    connection: AsyncConnection,
    settings: Settings,
) -> None:
    created = [await rows.create("tags") for _ in range(3)]
    await connection.execute(text("ANALYZE tags") if not settings.is_sqlite else text("SELECT 1"))

    page = await client.get("/api/tags", params={"limit": 1}, headers={**admin, **ESTIMATED})
    assert page.status_code == 200, page.text
    assert len(page.json()) == 1
    total = int(page.headers["X-Total-Count"])
    if settings.is_sqlite:  # no estimate there: the exact count, and the preference not applied
        assert "Preference-Applied" not in page.headers
        assert total == 3
    else:
        assert page.headers["Preference-Applied"] == "count=estimated"
        assert total >= 1  # the planner's figure; never below what the page shows
        assert page.headers["Content-Range"] == f"tags 0-0/{total}"

    # A page that reaches the end knows the exact total, estimate or not.
    tail = await client.get(
        "/api/tags", params={"skip": 2, "limit": 10}, headers={**admin, **ESTIMATED}
    )
    assert tail.headers["X-Total-Count"] == "3"
    assert [row["id"] for row in tail.json()] == [created[2]["id"]]

    # Filtered lists and requests without the preference are counted exactly.
    filtered = await client.get(
        "/api/tags", params={"id": created[0]["id"]}, headers={**admin, **ESTIMATED}
    )
    assert filtered.headers["X-Total-Count"] == "1"
    assert "Preference-Applied" not in filtered.headers
    exact = await client.get("/api/tags", params={"limit": 1}, headers=admin)
    assert exact.headers["X-Total-Count"] == "3"
    assert "Preference-Applied" not in exact.headers


class TestDefaultThreshold:
    @pytest.fixture
    def settings(self, database_url: str) -> Settings:
        return Settings(database_url=database_url, environment="test")

    async def test_small_tables_are_counted_exactly(
        self, client: AsyncClient, rows: Rows, admin: dict[str, str]
    ) -> None:
        """Under the default threshold a small table's total stays exact, estimate or not."""
        for _ in range(2):
            await rows.create("tags")
        page = await client.get("/api/tags", params={"limit": 1}, headers={**admin, **ESTIMATED})
        assert page.status_code == 200, page.text
        assert page.headers["X-Total-Count"] == "2"
        assert "Preference-Applied" not in page.headers
