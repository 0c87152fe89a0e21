"""The README's commands work as pasted: each is run here, or says which test runs it instead.

Run as a fresh clone would (no APPS), on a throw-away database of each backend, in README order.
"""

import os
import re
import shlex
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import uvicorn

from backend.config import PROJECT_ROOT, Settings, load_settings
from backend.main import create_app

README = PROJECT_ROOT / "README.md"
TABLESTACK = ".venv/bin/tablestack"
# The commands this file runs, as pasted (but for the rewrites in `_as_run`).
RUN_HERE = re.compile(rf"^{re.escape(TABLESTACK)} (migrate|check|seed|dump|makemigrations)\b")
# Every other command of the README, and what checks it.
CHECKED_ELSEWHERE = {
    "make ": "Makefile targets wrapping the commands below; CI runs `make lint` and `make test`",
    f"{TABLESTACK} create-user": "tests/test_cli.py (it prompts for a password)",
    f"{TABLESTACK} serve": "tests/test_health.py and tests/admin (a served app)",
    "createdb ": "PostgreSQL set-up; the suite creates its own databases",
    "export DATABASE_URL=": "set by these tests for each command",
    "export DATABASE_REPLICA_URLS=": "tests/replicas; the value: test_readme_exports_are_valid",
    "export DB_PREPARED_STATEMENTS=": "tests/pgbouncer; the value: test_readme_exports_are_valid",
    "export DATABASE_DIRECT_URL=": "tests/pgbouncer; the value: test_readme_exports_are_valid",
    "TOKEN=$(curl ": "test_the_api_example_works_pasted",
    "curl ": "test_the_api_example_works_pasted",
}


def _shell_blocks() -> list[list[str]]:
    """The README's ```sh blocks: each a list of lines, continuation lines joined."""
    blocks = re.findall(r"```sh\n(.*?)```", README.read_text(), flags=re.DOTALL)
    return [block.replace("\\\n", " ").splitlines() for block in blocks]


def _without_comment(line: str) -> str:
    return re.sub(r"\s+#.*$", "", line).strip()


def readme_commands() -> list[str]:
    """Every command of the README in order: the ```sh blocks' lines and the inline
    `.venv/bin/tablestack ...` commands of the prose."""
    text = README.read_text()
    commands: list[tuple[int, str]] = []
    for block in re.finditer(r"```sh\n(.*?)```", text, flags=re.DOTALL):
        for number, line in enumerate(block.group(1).replace("\\\n", " ").splitlines()):
            command = _without_comment(line)
            if command and not command.startswith("#"):
                commands.append((block.start(1) + number, command))
    for inline in re.finditer(rf"`({re.escape(TABLESTACK)} [^`]+)`", text):
        commands.append((inline.start(), inline.group(1)))
    return [command for _, command in sorted(commands, key=lambda item: item[0])]


def test_every_readme_command_is_run_or_accounted_for() -> None:
    commands = readme_commands()
    assert any(RUN_HERE.match(command) for command in commands)
    for command in commands:
        if RUN_HERE.match(command):
            continue
        assert any(command.startswith(prefix) for prefix in CHECKED_ELSEWHERE), (
            f"README command {command!r} is neither run by tests/test_readme.py nor listed "
            "in CHECKED_ELSEWHERE with the test that checks it"
        )


def _as_run(command: str, scratch: Path) -> list[str]:
    """The command's arguments, writing seed sets under `scratch` rather than the project's
    seed/ folder, and with fake row counts over 1,000 cut to 200 (same code path, less time)."""
    arguments = shlex.split(command)
    if "--fake" in arguments:
        count = arguments.index("--fake") + 1
        if int(arguments[count]) > 1000:
            arguments[count] = "200"
    if arguments[1] == "dump":
        folder = arguments.index("--set") + 1
        arguments[folder] = str(scratch / arguments[folder])
    return arguments


def _fresh_clone_env(database_url: str) -> dict[str, str]:
    return {**os.environ, "APPS": "[]", "DATABASE_URL": database_url}


def test_readme_tablestack_commands_run(empty_database_url: str, tmp_path: Path) -> None:
    env = _fresh_clone_env(empty_database_url)
    ran = []
    for command in readme_commands():
        if not RUN_HERE.match(command):
            continue
        result = subprocess.run(
            _as_run(command, tmp_path),
            cwd=PROJECT_ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert result.returncode == 0, f"{command}: {result.stderr}"
        assert "Traceback" not in result.stderr, command
        if command.split()[1] == "makemigrations":  # the models match: no file written
            assert result.stdout.startswith("no changes"), result.stdout
        ran.append(command.split()[1])
    assert {"migrate", "seed", "dump", "makemigrations"} <= set(ran)
    assert (tmp_path / "mine" / "products.yaml").is_file()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def _served(database_url: str) -> Iterator[int]:
    """Serve the app on a free port of 127.0.0.1 until the block ends; yield the port."""
    settings = Settings(database_url=database_url, environment="test")
    config = uvicorn.Config(
        create_app(settings), host="127.0.0.1", port=_free_port(), log_level="warning"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="readme-server", daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the README test server did not start")
            time.sleep(0.05)
        yield config.port
    finally:
        server.should_exit = True
        thread.join(timeout=15)


def _api_example() -> tuple[str, list[str]]:
    """The README's first API example: its commands, and the output its comments show."""
    for block in _shell_blocks():
        if block and block[0].startswith("TOKEN=$(curl"):
            commands = [line for line in block if not line.startswith("#")]
            shown = [line.removeprefix("# ") for line in block if line.startswith("# ")]
            return "\n".join(commands), shown
    raise AssertionError("the README has no API example starting with TOKEN=$(curl")


def test_the_api_example_works_pasted(empty_database_url: str) -> None:
    """After `make run` (migrate, the demo seed set), the example prints what the README shows."""
    for tool in ("bash", "curl", "jq"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed")
    env = _fresh_clone_env(empty_database_url)
    for command in (["migrate"], ["seed", "--set", "demo", "--if-empty"]):
        done = subprocess.run(
            [TABLESTACK, *command], cwd=PROJECT_ROOT, env=env, capture_output=True, text=True
        )
        assert done.returncode == 0, done.stderr
    script, shown = _api_example()
    with _served(empty_database_url) as port:
        result = subprocess.run(
            ["bash", "-c", script.replace("localhost:8000", f"127.0.0.1:{port}")],
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert result.returncode == 0, result.stderr
    printed = result.stdout.replace("\r\n", "\n").splitlines()
    status, *headers, body = shown
    assert printed[0] == status
    for header in headers:
        assert header in printed, f"{header!r} not in {printed}"
    pattern = ".*?".join(re.escape(part) for part in body.split("..."))
    assert re.fullmatch(pattern, printed[-1]), printed[-1]


def test_readme_exports_are_valid() -> None:
    """Every `export NAME=value` of the README is a setting Tablestack accepts as written."""
    exports = [
        _without_comment(line).removeprefix("export ").split("=", 1)
        for block in _shell_blocks()
        for line in block
        if line.startswith("export ")
    ]
    assert len(exports) >= 4
    for name, value in exports:
        assert name.lower() in Settings.model_fields, name
        load_settings(**{name.lower(): value})  # raises ConfigurationError naming it
