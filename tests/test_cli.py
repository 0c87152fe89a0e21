"""The CLI reports bad input and unreachable databases as one line, never a traceback."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

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
