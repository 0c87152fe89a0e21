"""The seed and dump commands end to end (SQLite: the command plumbing is the same).

In-process through typer's runner for speed; one real subprocess proves that a bad seed file
ends as one line on stderr and a non-zero exit, not a traceback.
"""

import asyncio
import shutil
from pathlib import Path

from typer.testing import CliRunner, Result

from backend import schema
from backend.cli import cli
from tests.seeding.conftest import DEMO
from tests.test_cli import assert_one_line_error, run


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
