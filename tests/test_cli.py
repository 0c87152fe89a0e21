"""The CLI reports bad input and unreachable databases as one line, never a traceback."""

import asyncio
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from alembic.script import ScriptDirectory

from backend import schema
from backend.config import PROJECT_ROOT


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-c", "from backend.cli import main; main()", *args]
    environment = {**os.environ, "ENVIRONMENT": "test", **(env or {})}
    return subprocess.run(
        command, cwd=PROJECT_ROOT, env=environment, capture_output=True, text=True, timeout=120
    )


def assert_one_line_error(result: subprocess.CompletedProcess[str], fragment: str) -> None:
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("tablestack: error: ")
    assert fragment in lines[0]


def test_unreachable_database() -> None:
    result = run("migrate", env={"DATABASE_URL": "postgresql+asyncpg://postgres@127.0.0.1:9/x"})
    assert_one_line_error(
        result, "cannot use the database postgresql+asyncpg://postgres@127.0.0.1:9/x"
    )


def test_unparsable_database_url() -> None:
    result = run("migrate", env={"DATABASE_URL": "not a url"})
    assert_one_line_error(result, "invalid setting DATABASE_URL")


def test_unsupported_driver() -> None:
    result = run("migrate", env={"DATABASE_URL": "mysql://root@localhost/x"})
    assert_one_line_error(result, "driver 'mysql' is not supported")


def test_unsupported_direct_url_driver() -> None:
    result = run("migrate", env={"DATABASE_DIRECT_URL": "mysql://root@localhost/x"})
    assert_one_line_error(result, "invalid setting DATABASE_DIRECT_URL")


def test_migrate_goes_to_the_direct_url(tmp_path: Path) -> None:
    """Behind a transaction pooler, migrations take DATABASE_DIRECT_URL (here the pooler's
    address answers nothing, so only the direct URL can have been used)."""
    direct = f"sqlite+aiosqlite:///{tmp_path / 'direct.db'}"
    result = run(
        "migrate",
        env={
            "DATABASE_URL": "postgresql+asyncpg://postgres@127.0.0.1:9/pooled",
            "DATABASE_DIRECT_URL": direct,
        },
    )
    assert result.returncode == 0, result.stderr
    assert asyncio.run(schema.current_revisions(direct)) == schema.head_revisions()


def test_production_refuses_the_default_secret_key() -> None:
    result = run("serve", env={"ENVIRONMENT": "production"})
    assert_one_line_error(result, "SECRET_KEY still has its development default")


def test_unmigrated_database_hint(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'empty.db'}"
    result = run(
        "create-user",
        "a@example.com",
        "--password-env",
        "PW",
        env={"DATABASE_URL": url, "PW": "long-enough-password"},
    )
    assert_one_line_error(result, "run `tablestack migrate`")


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (("--role", "owner"), "--role must be one of viewer, editor, admin"),
        (("--password-env", "NOT_SET_ANYWHERE"), "NOT_SET_ANYWHERE is not set"),
    ],
)
def test_create_user_bad_arguments(tmp_path: Path, args: tuple[str, ...], fragment: str) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'db.db'}"
    if "--password-env" not in args:
        args = (*args, "--password-env", "PW")
    result = run("create-user", "a@example.com", *args, env={"DATABASE_URL": url, "PW": "x" * 12})
    assert_one_line_error(result, fragment)


def test_migrate_then_create_user_then_duplicate(tmp_path: Path) -> None:
    env = {"DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'sub' / 'db.db'}", "PW": "s3cret-pass"}
    migrated = run("migrate", env=env)
    assert migrated.returncode == 0, migrated.stderr
    assert "database at" in migrated.stdout
    created = run("create-user", "Boss@Example.com", "--password-env", "PW", env=env)
    assert created.returncode == 0, created.stderr
    assert "created admin" in created.stdout
    again = run("create-user", "boss@example.com", "--password-env", "PW", env=env)
    assert_one_line_error(again, "already exists")
    weak = run("create-user", "x@example.com", "--password-env", "PW", env={**env, "PW": "short"})
    assert_one_line_error(weak, "at least 8 characters")


def test_migrate_up_down_and_up_again_saying_what_it_applied(empty_database_url: str) -> None:
    """Over every branch (the project's and the fixture app's, with its native enum type on
    PostgreSQL): heads -> base -> heads, one line per revision applied or reverted."""
    env = {"DATABASE_URL": empty_database_url}
    scripts = ScriptDirectory.from_config(schema.alembic_config(empty_database_url))
    revisions = len(list(scripts.walk_revisions()))  # every branch's, as the files say
    assert revisions >= 2
    up = run("migrate", env=env)
    assert up.returncode == 0, up.stderr
    lines = up.stdout.splitlines()
    assert [line.split()[0] for line in lines[:-1]] == ["applied"] * revisions
    assert any(
        line.endswith("(fixture_app) fixture app: the type and shape matrix") for line in lines
    )
    assert any("(project) create the domain" in line for line in lines)
    assert lines[-1].startswith("database at ") and "(fixture_app)" in lines[-1]

    assert run("migrate", env=env).stdout.startswith("nothing to do: database at ")
    assert_one_line_error(run("migrate", "-1", env=env), "say which, e.g. `tablestack migrate")

    down = run("migrate", "base", env=env)
    assert down.returncode == 0, down.stderr
    assert [line.split()[0] for line in down.stdout.splitlines()] == [
        *["reverted"] * revisions,
        "database",
    ]
    assert down.stdout.splitlines()[-1] == "database at base"
    assert_one_line_error(run("migrate", "-1", env=env), "the database is at base")

    again = run("migrate", "heads", env=env)
    assert again.returncode == 0, again.stderr
    assert again.stdout.count("applied ") == revisions
    one_back = run("migrate", "fixture_app@-1", env=env)
    assert one_back.stdout.startswith("reverted "), one_back.stderr
    assert run("migrate", "fixture_app@head", env=env).stdout.startswith("applied ")


@pytest.mark.parametrize(
    ("revision", "fragment"),
    [
        ("0123456789ab", "cannot migrate to '0123456789ab': Can't locate revision"),
        ("ghost@-1", "cannot migrate to 'ghost@-1'"),
        ("project@-9", "cannot go down 9 revisions on project"),
    ],
)
def test_migrate_bad_revision_is_one_line(tmp_path: Path, revision: str, fragment: str) -> None:
    env = {"DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'db.db'}"}
    assert run("migrate", env=env).returncode == 0
    assert_one_line_error(run("migrate", revision, env=env), fragment)


def _history_entries_aged(url: str, ages: tuple[int, ...]) -> None:
    """Write one history entry per age (days before now) into the database at `url`."""
    from datetime import UTC, datetime, timedelta

    from sqlalchemy import insert

    from backend.config import Settings
    from backend.db import create_engine
    from backend.writes.actor import CLI
    from backend.writes.history import HISTORY, entry

    now = datetime.now(UTC)
    rows = [
        entry(
            at=now - timedelta(days=age),
            actor=CLI,
            resource="tags",
            row_id=age,
            action="deleted",
            version=1,
            changes={"name": [f"tag {age}", None]},
        )
        for age in ages
    ]

    async def write() -> None:
        engine = create_engine(Settings(database_url=url, environment="test"))
        try:
            async with engine.begin() as connection:
                await connection.execute(insert(HISTORY).values(rows))
        finally:
            await engine.dispose()

    asyncio.run(write())


def test_prune_history_deletes_entries_past_the_retention(empty_database_url: str) -> None:
    """HISTORY_RETENTION_DAYS (0 keeps everything) or --days; --dry-run only counts; one line."""
    url = empty_database_url
    asyncio.run(schema.upgrade(url))
    _history_entries_aged(url, (1, 10, 45, 100, 400))
    env = {"DATABASE_URL": url}

    kept = run("prune-history", env=env)
    assert kept.returncode == 0, kept.stderr
    assert kept.stdout == "history retention is 0 days: keeping every entry, nothing deleted\n"

    counted = run("prune-history", "--days", "30", "--dry-run", env=env)
    assert counted.returncode == 0, counted.stderr
    assert re.fullmatch(
        r"dry run, nothing deleted: 3 history entries older than \S+\+00:00 \(30 days\)\n",
        counted.stdout,
    )
    assert_one_line_error(
        run("prune-history", "--days", "-3", env=env), "--days must be 0 (keep everything) or more"
    )
    assert_one_line_error(
        run("prune-history", env={**env, "HISTORY_RETENTION_DAYS": "-1"}),
        "invalid setting HISTORY_RETENTION_DAYS",
    )

    pruned = run("prune-history", env={**env, "HISTORY_RETENTION_DAYS": "60"})
    assert pruned.returncode == 0, pruned.stderr
    assert re.fullmatch(r"deleted 2 history entries older than \S+ \(60 days\)\n", pruned.stdout), (
        pruned.stdout
    )
    overridden = run("prune-history", "--days", "5", env={**env, "HISTORY_RETENTION_DAYS": "60"})
    assert overridden.stdout.startswith("deleted 2 history entries older than"), overridden.stderr
