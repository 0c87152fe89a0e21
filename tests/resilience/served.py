"""`tablestack serve` in a subprocess, as an operator runs it: uvicorn, uvloop, its own pool."""

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from backend.config import PROJECT_ROOT


@dataclass
class Served:
    url: str
    process: subprocess.Popen[bytes]
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@contextmanager
def serving(env: Mapping[str, str], log: Path, *, wait_ready: bool = True) -> Iterator[Served]:
    """Run `tablestack serve` on a free port until the block ends; once `/healthz` answers
    (and, with `wait_ready`, `/readyz` says ready)."""
    port = free_port()
    environment = {**os.environ, "ENVIRONMENT": "test", **env}
    command = [sys.executable, "-c", "from backend.cli import main; main()", "serve"]
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [*command, "--port", str(port)],
            cwd=PROJECT_ROOT,
            env=environment,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    served = Served(f"http://127.0.0.1:{port}", process, log)
    try:
        probe = "/readyz" if wait_ready else "/healthz"
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"tablestack serve exited: {served.output()}")
            try:
                if httpx.get(served.url + probe, timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"tablestack serve did not get ready: {served.output()}")
            time.sleep(0.1)
        yield served
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
