"""The seed and dump commands end to end (the demo set on SQLite: the command plumbing is the
same; the fixture app's set on both databases, for COPY and the native types).

In-process through typer's runner for speed; one real subprocess proves that a bad seed file
ends as one line on stderr and a non-zero exit, not a traceback.
"""

import asyncio
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from backend import schema
from backend.cli import cli
from backend.config import Settings
from backend.db import create_engine
from tests.seeding.conftest import DEMO, row_counts
from tests.seeding.test_any_table import FIXTURE_SET
from tests.test_cli import assert_one_line_error, run


@pytest.fixture
def other_engine_counts(other_database_url: str) -> Callable[[], dict[str, int]]:
    """Row counts of every table of the test's own database, read in a fresh event loop."""

    def counts() -> dict[str, int]:
        async def read() -> dict[str, int]:
            engine = create_engine(Settings(database_url=other_database_url, environment="test"))
            try:
                return await row_counts(engine)
            finally:
                await engine.dispose()

        return asyncio.run(read())

    return counts


def invoke(url: str, *args: str) -> Result:
    return CliRunner().invoke(cli, list(args), env={"DATABASE_URL": url, "ENVIRONMENT": "test"})


def test_seed_on_first_start_then_dump_and_fake(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'app.db'}"
    asyncio.run(schema.upgrade(url))
    first = invoke(url, "seed", "--set", "demo", "--if-empty")
    assert first.exit_code == 0, first.output
    assert "products: 30 created, 0 updated, 0 unchanged, 47 links added" in first.stdout
    second = invoke(url, "seed", "--set", "demo", "--if-empty")
    assert second.exit_code == 0, second.output
    assert "already has data: nothing seeded" in second.stdout

    dumped = tmp_path / "snapshot"
    done = invoke(url, "dump", "--set", str(dumped))
    assert done.exit_code == 0, done.output
    assert "products: 30 rows" in done.stdout and (dumped / "products.yaml").is_file()
    again = invoke(url, "dump", "--set", str(dumped))
    assert again.exit_code == 1 and "use --force" in again.stderr

    faked = invoke(url, "seed", "--fake", "20", "--random-seed", "3", "--dry-run")
    assert faked.exit_code == 0, faked.output
    assert "products: 20 rows" in faked.stdout and "dry run, nothing written" in faked.stdout
    both = invoke(url, "seed", "--set", "demo", "--fake", "3")
    assert both.exit_code == 1
    assert both.stderr == "tablestack: error: give exactly one of --set NAME and --fake N\n"


def test_a_broken_seed_file_is_one_line_on_stderr(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'app.db'}"
    asyncio.run(schema.upgrade(url))
    broken = tmp_path / "broken"
    shutil.copytree(DEMO, broken)
    products = broken / "products.yaml"
    products.write_text(products.read_text().replace("price: 34.50", "price: -1", 1))
    assert_one_line_error(
        run("seed", "--set", str(broken), env={"DATABASE_URL": url}),
        "products.yaml row 3 (sku=LAMP-003): field price: "
        "Input should be greater than or equal to 0",
    )


def test_the_fixture_set_through_the_commands(
    other_database_url: str, other_engine_counts: Callable[[], dict[str, int]], tmp_path: Path
) -> None:
    """Every table shape and column type through `seed`, `dump` and `--fake`, on both
    databases; a cycle in a tree is one line on stderr, a non-zero exit, and nothing written."""
    url = other_database_url
    broken = tmp_path / "broken"
    shutil.copytree(FIXTURE_SET, broken)
    nodes = broken / "fx_nodes.yaml"
    nodes.write_text(nodes.read_text().replace("- name: root\n", "- name: root\n  parent: leaf\n"))
    assert_one_line_error(
        run("seed", "--set", str(broken), env={"DATABASE_URL": url}),
        "fx_nodes.yaml row 1 (name=leaf): field parent: a cycle in the file: row 1 (leaf) -> "
        "row 2 (branch) -> row 3 (root) -> row 1 (leaf)",
    )
    assert set(other_engine_counts().values()) == {0}

    loaded = invoke(url, "seed", "--set", str(FIXTURE_SET))
    assert loaded.exit_code == 0, loaded.output
    assert "fx_nodes: 5 created, 0 updated, 0 unchanged" in loaded.stdout
    faked = invoke(url, "seed", "--fake", "40", "--random-seed", "9")
    assert faked.exit_code == 0, faked.output
    assert "fx_specimens: 40 rows" in faked.stdout and "fx_warehouses: 40 rows" in faked.stdout
    dumped = tmp_path / "dumped"
    done = invoke(url, "dump", "--set", str(dumped))
    assert done.exit_code == 0, done.output
    assert "fx_nodes: 45 rows" in done.stdout
    again = invoke(url, "seed", "--set", str(dumped))
    assert again.exit_code == 0, again.output
    assert "fx_specimens: 0 created, 0 updated, 43 unchanged" in again.stdout
