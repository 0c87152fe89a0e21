"""A brute force of 200 passwords against two served processes sharing Redis is cut off within
the configured limit: `tablestack serve` twice, on spare ports, over one fresh database."""

import asyncio
import os
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import httpx

from backend import schema
from backend.auth.users import upsert_user
from backend.config import PROJECT_ROOT, Settings
from backend.models import Role
from tests.ratelimit.conftest import REDIS_URL

TABLESTACK = PROJECT_ROOT / ".venv" / "bin" / "tablestack"
PASSWORD = "correct-horse-battery-staple"
ACCOUNT_LIMIT = 5
FREE_FAILURES = 3
ATTEMPTS = 200


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def served(env: dict[str, str], logs: list[Path]) -> Iterator[list[str]]:
    """`tablestack serve` once per log, each on a spare port, started together; their URLs."""
    with ExitStack() as stack:
        servers = []
        for log in logs:
            port = _free_port()
            out = stack.enter_context(log.open("wb"))
            process = subprocess.Popen(
                [str(TABLESTACK), "serve", "--port", str(port)],
                env={**os.environ, **env},
                cwd=PROJECT_ROOT,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
            stack.callback(_stop, process)
            servers.append((process, f"http://127.0.0.1:{port}", log))
        deadline = time.monotonic() + 120
        for process, url, log in servers:
            while not _answers(url):
                assert process.poll() is None, log.read_text()
                assert time.monotonic() < deadline, log.read_text()
                time.sleep(0.1)
        yield [url for _, url, _ in servers]


def _answers(url: str) -> bool:
    try:
        return httpx.get(f"{url}/healthz", timeout=1).status_code == 200
    except httpx.TransportError:
        return False


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def test_200_wrong_passwords_across_two_processes_are_cut_off(
    empty_database_url: str, redis_prefix: str, tmp_path: Path
) -> None:
    asyncio.run(schema.upgrade(empty_database_url))
    settings = Settings(database_url=empty_database_url, environment="test")
    for email in ("victim@example.com", "bystander@example.com"):
        asyncio.run(upsert_user(settings, email=email, password=PASSWORD, role=Role.admin))
    env = {
        "DATABASE_URL": empty_database_url,
        "ENVIRONMENT": "test",
        "RATE_LIMITS_ENABLED": "true",
        "REDIS_URL": REDIS_URL,
        "REDIS_KEY_PREFIX": redis_prefix,
        "RATE_LIMIT_SIGNIN_ACCOUNT": f"{ACCOUNT_LIMIT}/minute",
        "RATE_LIMIT_SIGNIN_IP": "20/minute",
        "SIGNIN_FREE_FAILURES": str(FREE_FAILURES),
        "TRUSTED_PROXIES": "",  # X-Forwarded-For from the attacker must not count
    }
    with served(env, [tmp_path / "server1.log", tmp_path / "server2.log"]) as urls:
        answers = []
        with httpx.Client(timeout=30) as client:
            for n in range(ATTEMPTS):
                answers.append(
                    client.post(
                        f"{urls[n % 2]}/api/auth/token",
                        data={"username": "victim@example.com", "password": f"guess-{n}"},
                        headers={"X-Forwarded-For": f"203.0.113.{n % 250}"},  # spoofed, ignored
                    )
                )
            right = client.post(
                f"{urls[0]}/api/auth/token",
                data={"username": "victim@example.com", "password": PASSWORD},
            )
            bystander = client.post(
                f"{urls[1]}/api/auth/token",
                data={"username": "bystander@example.com", "password": PASSWORD},
            )
    statuses = [a.status_code for a in answers]
    assert set(statuses) <= {401, 429}, statuses
    checked = statuses.count(401)
    # Within the configured limit over both processes together; alone, each would let
    # FREE_FAILURES + 1 through before its first lock, and up to ACCOUNT_LIMIT in all.
    assert FREE_FAILURES <= checked <= ACCOUNT_LIMIT, statuses
    assert statuses[:FREE_FAILURES] == [401] * FREE_FAILURES
    for answer in answers:
        if answer.status_code == 429:
            assert int(answer.headers["retry-after"]) >= 1
            assert answer.json()["detail"].startswith("Too many sign-in attempts")
    # the right password is refused while the account is locked; another account is not
    assert right.status_code == 429, right.text
    assert bystander.status_code == 200, bystander.text
