"""The four targets: how each is started, and the paths of each scenario on it."""

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import psutil

BIN = Path(sys.executable).parent
# The scenarios, in the order of the table; keys are the modes of wrk/scenario.lua.
SCENARIOS = {
    "get": "get one by id",
    "list": "list 50 + total",
    "filter": "list by category + total",
    "create": "create",
    "patch": "update price (PATCH)",
}
STANDARD_PATHS = {
    "get": "/api/products/",
    "list": "/api/products?skip=0&limit=50",
    "filter": "/api/products?category_id={category}&limit=50",
    "create": "/api/products",
    "patch": "/api/products/",
}


@dataclass
class Target:
    """One server under test."""

    key: str
    label: str
    port: int
    command: list[str]
    ready_path: str
    paths: dict[str, str] = field(default_factory=lambda: dict(STANDARD_PATHS))
    create_status: int = 201
    # "array": a JSON array and X-Total-Count; "fastcrud": {"data": [...], "total_count": N}
    list_shape: str = "array"
    env: dict[str, str] = field(default_factory=dict)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def uvicorn(app: str, port: int) -> list[str]:
    # Same server settings as `tablestack serve` (uvloop and httptools when installed), minus
    # the access log, which a production deployment behind a proxy turns off.
    return [str(BIN / "uvicorn"), app, "--host=127.0.0.1", f"--port={port}", "--no-access-log"]


# wrk sends tens of thousands of requests a minute from one address as one user: the limiter
# runs and counts every request (its cost is measured) but never refuses one. The sign-in
# scenario measures what argon2 does to reads, so its guesses are not cut off either.
_UNREFUSED = "1000000000/minute"
UNREFUSED_RATE_LIMITS = {
    **{
        f"RATE_LIMIT_{who}_{kind}": _UNREFUSED
        for who in ("ANONYMOUS", "VIEWER", "EDITOR", "ADMIN")
        for kind in ("READ", "WRITE")
    },
    "RATE_LIMIT_PER_IP": _UNREFUSED,
    "RATE_LIMIT_SIGNIN_IP": "",
    "RATE_LIMIT_SIGNIN_ACCOUNT": "",
    "SIGNIN_FREE_FAILURES": "1000000000",
    "SIGNIN_IP_FREE_FAILURES": "1000000000",
}


def all_targets(base_port: int) -> list[Target]:
    return [
        Target(
            key="tablestack",
            label="Tablestack",
            port=base_port,
            command=[str(BIN / "tablestack"), "serve", "--port", str(base_port)],
            ready_path="/healthz",
            env=UNREFUSED_RATE_LIMITS,
        ),
        Target(
            key="ceiling",
            label="Starlette + asyncpg (hand-written)",
            port=base_port + 1,
            command=uvicorn("bench.peers.starlette_asyncpg:app", base_port + 1),
            ready_path="/api/products/1",
        ),
        Target(
            key="flask",
            label="Flask-SQLAlchemy (gunicorn gthread 16)",
            port=base_port + 2,
            command=[
                str(BIN / "gunicorn"),
                "--workers=1",
                "--worker-class=gthread",
                "--threads=16",
                f"--bind=127.0.0.1:{base_port + 2}",
                "bench.peers.flask_sqlalchemy_app:app",
            ],
            ready_path="/api/products/1",
        ),
        Target(
            key="fastcrud",
            label="FastAPI + FastCRUD",
            port=base_port + 3,
            command=uvicorn("bench.peers.fastcrud_app:app", base_port + 3),
            ready_path="/api/products/1",
            paths={
                **STANDARD_PATHS,
                # page/itemsPerPage: FastCRUD's paginated answer, the one with the total
                # (with offset/limit it counts too, but its response model drops the total).
                "list": "/api/products?page=1&itemsPerPage=50&sort=id",
                "filter": "/api/products?category_id={category}&page=1&itemsPerPage=50&sort=id",
            },
            # FastCRUD's generated create route answers 200, not 201.
            create_status=200,
            list_shape="fastcrud",
        ),
    ]


class Server:
    """A target's server process (and its children), started in its own process group."""

    def __init__(self, target: Target, env: dict[str, str], log_dir: Path, cpu: str | None):
        self.target = target
        self.log_path = log_dir / f"{target.key}.log"
        command = target.command
        if cpu is not None and shutil.which("taskset"):
            command = ["taskset", "--cpu-list", cpu, *command]
        self._log = self.log_path.open("wb")
        # stdout carries uvicorn's access log (Tablestack's is on): drop it, keep stderr.
        self.process = subprocess.Popen(
            command,
            env={**os.environ, **env, **target.env},
            cwd=Path(__file__).resolve().parent.parent,
            stdout=subprocess.DEVNULL,
            stderr=self._log,
            start_new_session=True,
        )
        self.ps = psutil.Process(self.process.pid)

    def wait_ready(self, timeout: float = 60.0) -> None:
        """Wait until the server answers HTTP at all; raise with its log when it died."""
        deadline = time.monotonic() + timeout
        url = self.target.base_url + self.target.ready_path
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"{self.target.label} exited with {self.process.returncode}: {self.log_tail()}"
                )
            try:
                urllib.request.urlopen(url, timeout=2).close()
                return
            except urllib.error.HTTPError:
                return  # any HTTP answer means it is serving
            except OSError:
                time.sleep(0.2)
        raise RuntimeError(f"{self.target.label} did not answer {url} within {timeout:.0f} s")

    def log_tail(self, lines: int = 5) -> str:
        self._log.flush()
        text = self.log_path.read_text(errors="replace").strip().splitlines()
        return " | ".join(text[-lines:]) or "(no output)"

    def processes(self) -> list[psutil.Process]:
        try:
            return [self.ps, *self.ps.children(recursive=True)]
        except psutil.NoSuchProcess:
            return []

    def rss_bytes(self) -> int:
        """Resident memory of the server and its children (gunicorn's master and worker)."""
        total = 0
        for process in self.processes():
            try:
                total += process.memory_info().rss
            except psutil.NoSuchProcess:
                pass
        return total

    def cpu_seconds(self) -> float:
        total = 0.0
        for process in self.processes():
            try:
                times = process.cpu_times()
                total += times.user + times.system
            except psutil.NoSuchProcess:
                pass
        return total

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self._log.close()


def busy_cpu_seconds() -> float:
    """CPU seconds spent by the whole machine (all cores, every process) so far."""
    times = psutil.cpu_times()
    busy: float = sum(times) - times.idle - getattr(times, "iowait", 0.0)
    return busy


def postgres_cpu_seconds() -> dict[int, float]:
    """CPU seconds of each PostgreSQL server process now alive, by pid."""
    found = {}
    for process in psutil.process_iter(["name", "cpu_times"]):
        times = process.info["cpu_times"]
        if process.info["name"] == "postgres" and times is not None:
            found[process.pid] = times.user + times.system
    return found


class LoadSampler:
    """Samples, while load runs, the server's RSS (keeping the peak) and PostgreSQL's CPU.

    PostgreSQL's CPU is followed per process and sampled often, because connection pools
    open and close backends under load (SQLAlchemy's overflow connections): a backend that
    exits takes its CPU time with it, so only what was seen before it exited is counted.
    """

    def __init__(self, server: Server, interval: float = 0.2):
        self.server = server
        self.interval = interval
        self.peak_rss = 0
        self._postgres_start = postgres_cpu_seconds()
        self._postgres_last = dict(self._postgres_start)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _sample(self) -> None:
        self.peak_rss = max(self.peak_rss, self.server.rss_bytes())
        self._postgres_last.update(postgres_cpu_seconds())

    def _run(self) -> None:
        while not self._stop.is_set():
            self._sample()
            self._stop.wait(self.interval)

    @property
    def postgres_cpu(self) -> float:
        """PostgreSQL's CPU seconds since the sampler started."""
        start = self._postgres_start
        return sum(seconds - start.get(pid, 0.0) for pid, seconds in self._postgres_last.items())

    def __enter__(self) -> "LoadSampler":
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()
