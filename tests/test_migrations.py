"""Alembic owns the schema: the migrations build exactly the models, both ways, on each backend."""

import subprocess
import sys
import textwrap

from backend import schema
from backend.config import PROJECT_ROOT


async def test_upgrade_no_drift_downgrade_upgrade(empty_database_url: str) -> None:
    url = empty_database_url
    await schema.upgrade(url)
    assert await schema.current_revisions(url) == schema.head_revisions()
    assert schema.format_diff(await schema.diff(url)) == []
    await schema.downgrade(url, "base")
    assert await schema.current_revisions(url) == set()
    await schema.upgrade(url)
    assert await schema.current_revisions(url) == schema.head_revisions()
    assert await schema.diff(url) == []


def _tablestack(*args: str, prelude: str = "") -> subprocess.CompletedProcess[str]:
    """Run the CLI in a fresh interpreter, after `prelude` (which may alter the models)."""
    code = textwrap.dedent(prelude) + "\nfrom backend.cli import main\nmain()\n"
    return subprocess.run(
        [sys.executable, "-c", code, *args],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_check_passes_on_main() -> None:
    result = _tablestack("check")
    assert result.returncode == 0, result.stderr
    assert "models match the migrations" in result.stdout


def test_check_fails_naming_a_column_added_without_migration() -> None:
    prelude = """
        import sys
        sys.argv[0] = "tablestack"
        import sqlalchemy as sa
        from backend.models import Product
        Product.__table__.append_column(sa.Column("barcode", sa.String(32), nullable=True))
    """
    result = _tablestack("check", prelude=prelude)
    assert result.returncode == 1
    assert "column products.barcode is in the models but not in the migrations" in result.stderr
    assert "Traceback" not in result.stderr


def test_check_live_needs_a_migrated_database(empty_database_url: str) -> None:
    prelude = f"""
        import os
        os.environ["DATABASE_URL"] = {empty_database_url!r}
    """
    result = _tablestack("check", "--live", prelude=prelude)
    assert result.returncode == 1
    assert result.stderr.startswith("tablestack: error: database is at base, not at head")
