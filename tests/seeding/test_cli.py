"""The seed and dump commands end to end, in subprocesses (SQLite: the plumbing is the same)."""

import asyncio
import shutil
from pathlib import Path

from backend import schema
from tests.seeding.conftest import DEMO
from tests.test_cli import assert_one_line_error, run


def test_seed_on_first_start_dump_fake_and_one_line_errors(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'app.db'}"
    asyncio.run(schema.upgrade(url))
    env = {"DATABASE_URL": url}
    first = run("seed", "--set", "demo", "--if-empty", env=env)
    assert first.returncode == 0, first.stderr
    assert "products: 30 created, 0 updated, 0 unchanged, 47 links added" in first.stdout
    second = run("seed", "--set", "demo", "--if-empty", env=env)
    assert second.returncode == 0, second.stderr
    assert "already has data: nothing seeded" in second.stdout

    dumped = tmp_path / "snapshot"
    done = run("dump", "--set", str(dumped), env=env)
    assert done.returncode == 0, done.stderr
    assert "products: 30 rows" in done.stdout and (dumped / "products.yaml").is_file()
    assert_one_line_error(run("dump", "--set", str(dumped), env=env), "use --force")

    broken = tmp_path / "broken"
    shutil.copytree(DEMO, broken)
    products = broken / "products.yaml"
    products.write_text(products.read_text().replace("price: 34.50", "price: -1", 1))
    assert_one_line_error(
        run("seed", "--set", str(broken), env=env),
        "products.yaml row 3 (sku=LAMP-003): field price: "
        "Input should be greater than or equal to 0",
    )

    faked = run("seed", "--fake", "20", "--random-seed", "3", "--dry-run", env=env)
    assert faked.returncode == 0, faked.stderr
    assert "products: 20 rows" in faked.stdout and "dry run, nothing written" in faked.stdout
