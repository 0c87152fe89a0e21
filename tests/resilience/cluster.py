"""A private PostgreSQL 15 cluster for the resilience suite, made with Debian's
postgresql-common (pg_createcluster / pg_ctlcluster), on a port of its own.

The tests stop it, crash it and fill it: the shared server on 5432, which every other test
and helper uses, is never touched. The cluster is named `resil_<pid>_<port>`; one left behind
by a run that was killed is dropped by the next run once its process is gone.
"""

import ctypes
import os
import re
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

VERSION = "15"
PREFIX = "resil_"
MAX_CONNECTIONS = 20
_CTL = ["pg_ctlcluster", "--skip-systemctl-redirect"]


def missing_reason() -> str | None:
    """Why a private cluster cannot be made here, or None."""
    for tool in ("pg_createcluster", "pg_ctlcluster", "pg_dropcluster"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (Debian's postgresql-common)"
    if not Path(f"/usr/lib/postgresql/{VERSION}/bin/initdb").exists():
        return f"PostgreSQL {VERSION} is not installed"
    if os.geteuid() != 0:
        return "pg_createcluster needs root"
    return None


def _run(*command: str) -> str:
    done = subprocess.run(command, capture_output=True, text=True, timeout=60)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed: {done.stderr.strip() or done.stdout}")
    return done.stdout


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _alive(pid: int) -> bool:
    """Whether process `pid` still runs (a zombie no longer does)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


_PR_SET_CHILD_SUBREAPER = 36


def adopt_orphans() -> None:
    """Make this process the parent of its orphaned descendants (Linux's child subreaper).

    pg_ctl leaves the postmaster it starts to be adopted. A postmaster killed with -9 stays a
    zombie until its parent reaps it, and PostgreSQL refuses to start while the PID in its
    lock files is a process, zombie or not. Init would reap it; this machine's PID 1 does
    not, so this process adopts the postmaster, and reaps it in `Cluster.kill`.
    """
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_CHILD_SUBREAPER) failed")


def _reap(pid: int) -> None:
    """Collect `pid`'s exit status, if it is (or has become) our child and has exited."""
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def drop_abandoned() -> None:
    """Drop the clusters of earlier runs whose process has ended (killed mid-run)."""
    for line in _run("pg_lsclusters", "--no-header").splitlines():
        fields = line.split()
        if len(fields) < 2 or fields[0] != VERSION:
            continue
        found = re.fullmatch(rf"{PREFIX}(\d+)_\d+", fields[1])
        if found and not _alive(int(found.group(1))):
            subprocess.run(["pg_dropcluster", "--stop", VERSION, fields[1]], capture_output=True)


@dataclass
class Cluster:
    name: str
    port: int

    @property
    def data_directory(self) -> Path:
        return Path(f"/var/lib/postgresql/{VERSION}/{self.name}")

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/{database}"

    def dsn(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def create(self) -> None:
        # trust on 127.0.0.1: a throw-away cluster that listens on the loopback only
        _run(
            "pg_createcluster", VERSION, self.name, "--port", str(self.port),
            "--", "--auth=trust", "--no-sync",
        )  # fmt: skip
        conf = Path(f"/etc/postgresql/{VERSION}/{self.name}/conf.d/resilience.conf")
        conf.write_text(
            f"max_connections = {MAX_CONNECTIONS}\n"
            "listen_addresses = '127.0.0.1'\n"
            "shared_buffers = 16MB\n"
        )

    def start(self) -> None:
        """Start it, returning once it accepts connections (pg_ctl waits)."""
        _run(*_CTL, VERSION, self.name, "start")

    def stop(self, mode: str = "fast") -> None:
        """Shut down: `fast` ends the sessions cleanly, `immediate` is a crash (no
        checkpoint; the next start recovers from the WAL)."""
        pid = self.postmaster_pid()
        _run(*_CTL, VERSION, self.name, "stop", "-m", mode)
        _reap(pid)

    def running(self) -> bool:
        try:
            return _alive(self.postmaster_pid())
        except (FileNotFoundError, ValueError, IndexError):
            return False

    def postmaster_pid(self) -> int:
        return int((self.data_directory / "postmaster.pid").read_text().splitlines()[0])

    def kill(self) -> None:
        """kill -9 the postmaster, and wait until its orphaned backends have exited too (they
        notice its death), so that the next start finds no one attached to its memory."""
        pid = self.postmaster_pid()
        children = [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 20
        while any(Path(f"/proc/{p}").exists() for p in [pid, *children]):
            for process in [pid, *children]:
                _reap(process)  # adopted (adopt_orphans): ours to collect
            if time.monotonic() > deadline:
                alive = [p for p in [pid, *children] if _alive(p)]
                raise RuntimeError(f"the killed cluster's processes did not exit: {alive}")
            time.sleep(0.02)

    def drop(self) -> None:
        try:
            pid: int | None = self.postmaster_pid()
        except (FileNotFoundError, ValueError, IndexError):
            pid = None
        subprocess.run(
            ["pg_dropcluster", "--stop", VERSION, self.name], capture_output=True, timeout=60
        )
        if pid is not None:
            _reap(pid)


def new_cluster() -> Cluster:
    port = _free_port()
    return Cluster(name=f"{PREFIX}{os.getpid()}_{port}", port=port)
