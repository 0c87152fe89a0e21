"""The `signin` scenario: reads of one product while 20 clients sign in (Tablestack only).

Issue 10 asks that 20 concurrent sign-ins never raise the p99 of concurrent
`GET /api/products/{id}` above 50 ms: argon2 takes a large fraction of a second of CPU per
verification, and run on the event loop it stalls every other request behind it.

Each round runs two loads of `duration` seconds on Tablestack:

1. **GET alone**: `GET /api/products/{random id}` from GET_CONNECTIONS connections, each
   waiting GET_DELAY_MS after every answer (wrk's `delay()`), a steady few hundred requests
   per second that leave the server mostly idle. Its p99 is the reference.
2. **GET during sign-ins**: the same GETs while a second wrk keeps CLIENTS connections
   signing in back to back (`POST /api/auth/token`, the right and a wrong password in turn),
   started a second before the GETs and stopped a second after them.

The GETs are paced rather than flat out on purpose: flat out, their latency is the queue that
32 connections build in front of one saturated core, and would rise with any extra CPU the
sign-ins take, however well the server schedules them. Paced, a GET waits only when the server
leaves it waiting, which is what the goal is about.
"""

import json
import subprocess
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

import httpx

from bench.checks import CheckFailed
from bench.report import SIGNIN_CLIENTS

TOKEN_PATH = "/api/auth/token"
CLIENTS = SIGNIN_CLIENTS
GET_CONNECTIONS = 8
GET_DELAY_MS = 20
LEAD_S = 1  # the sign-ins start this long before the GETs, and end this long after them
WRONG_PASSWORD = "not-the-password-1"


def check(client: httpx.Client, email: str, password: str) -> None:
    """Raise CheckFailed unless the right password gets a token and a wrong one a 401."""
    right = client.post(TOKEN_PATH, data={"username": email, "password": password})
    if right.status_code != 200 or "access_token" not in right.json():
        raise CheckFailed(f"sign-in -> HTTP {right.status_code}: {right.text[:120]}")
    wrong = client.post(TOKEN_PATH, data={"username": email, "password": WRONG_PASSWORD})
    if wrong.status_code != 401:
        raise CheckFailed(f"sign-in with a wrong password -> HTTP {wrong.status_code}, not 401")


def command(
    wrk: str, lua: str, base_url: str, seconds: int, email: str, password: str
) -> list[str]:
    """The wrk command of the sign-ins: CLIENTS connections, valid and wrong in turn."""
    right = urlencode({"username": email, "password": password})
    wrong = urlencode({"username": email, "password": WRONG_PASSWORD})
    return [
        wrk,
        "--threads=1",
        f"--connections={CLIENTS}",
        f"--duration={seconds}s",
        "--timeout=10s",
        f"--script={lua}",
        base_url,
        "--",
        TOKEN_PATH,
        right,
        wrong,
    ]


def parse(stdout: str, stderr: str) -> dict[str, Any]:
    """The BENCH_RESULT of signin.lua, its expected 401s taken out of the status errors.

    wrk counts every answer of 400 and above as a status error; the wrong password's 401 is
    the answer we want, so only the "other" answers (neither 200 nor 401) stay errors.
    """
    for line in stdout.splitlines():
        if line.startswith("BENCH_RESULT "):
            result: dict[str, Any] = json.loads(line.removeprefix("BENCH_RESULT "))
            result["errors"]["status"] = result["answers"]["other"]
            return result
    raise RuntimeError(f"wrk (sign-ins) printed no result: {stderr.strip() or stdout}")


def start(command: list[str]) -> "subprocess.Popen[str]":
    """Start the sign-ins in the background; `parse(*process.communicate())` reads them."""
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def pacing() -> str:
    """How the scenario loads the server, for the report."""
    return (
        f"The GETs come from {GET_CONNECTIONS} connections, each waiting {GET_DELAY_MS} ms after"
        f" every answer; the sign-ins from {CLIENTS} connections without pause, the right and a"
        " wrong password in turn."
    )


def wait_idle(url: str, cpu_seconds: Callable[[], float], timeout: float = 120.0) -> float:
    """Wait until the server is idle again (under 10% of a core for 0.5 s, and a lone GET of
    `url` answered within 50 ms); the seconds waited.

    When wrk stops, the sign-ins it had sent are still in the server: queued on a blocked
    event loop, or hashing in worker threads while the loop answers. The next run would
    compete with them.
    """
    started = time.monotonic()
    with httpx.Client(timeout=timeout) as client:
        while time.monotonic() - started < timeout:
            before = cpu_seconds()
            time.sleep(0.5)
            if cpu_seconds() - before > 0.05:
                continue
            sent = time.perf_counter()
            try:
                client.get(url)
            except httpx.HTTPError:
                continue
            if time.perf_counter() - sent < 0.05:
                break
    return time.monotonic() - started
