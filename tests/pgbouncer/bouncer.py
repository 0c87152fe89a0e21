"""PgBouncer from Debian's package, run on a spare port in front of the test server.

Debian bookworm ships PgBouncer 1.18, which has no prepared-statement support in transaction
pooling mode: the case `DB_PREPARED_STATEMENTS=false` is for. PgBouncer refuses to run as
root; as root it is started with `-u postgres`, its files in a folder that user owns.
"""

import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import make_url

from tests.databases import POSTGRES_ADMIN_URL


def missing_reason() -> str | None:
    """Why PgBouncer cannot run here, or None."""
    if shutil.which("pgbouncer") is None:
        return "pgbouncer is not installed (Debian's pgbouncer package; .ci/run installs it)"
    if shutil.which("psql") is None:
        return "psql is not installed (Debian's postgresql-client)"
    return None


@dataclass(frozen=True)
class Bouncer:
    port: int

    def url(self, direct_url: str) -> str:
        """`direct_url`, through this PgBouncer."""
        return make_url(direct_url).set(host="127.0.0.1", port=self.port).render_as_string(False)

    def transactions(self, database: str) -> int:
        """How many transactions PgBouncer has passed to `database` (its admin console)."""
        shown = subprocess.run(
            ["psql", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "-At"]
            + ["-F", "|", "-c", "SHOW STATS", "pgbouncer"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout
        for line in shown.splitlines():
            name, count, *_ = line.split("|")
            if name == database:
                return int(count)
        return 0


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


@contextmanager
def running_bouncer(*, server_connections: int) -> Iterator[Bouncer]:
    """PgBouncer in transaction pooling mode with at most `server_connections` connections
    to the server per database, until the block ends."""
    upstream = make_url(POSTGRES_ADMIN_URL)
    folder = Path(tempfile.mkdtemp(prefix="tablestack-pgbouncer-"))
    port = _free_port()
    config = folder / "pgbouncer.ini"
    config.write_text(
        "[databases]\n"
        f"* = host={upstream.host or '127.0.0.1'} port={upstream.port or 5432}\n"
        "[pgbouncer]\n"
        "listen_addr = 127.0.0.1\n"
        f"listen_port = {port}\n"
        "unix_socket_dir =\n"
        "auth_type = trust\n"
        f"auth_file = {folder / 'users.txt'}\n"
        "admin_users = postgres\n"
        "pool_mode = transaction\n"
        f"default_pool_size = {server_connections}\n"
        "max_client_conn = 200\n"
        f"logfile = {folder / 'pgbouncer.log'}\n"
        # asyncpg and psql send it; PgBouncer 1.18 would refuse the connection otherwise
        "ignore_startup_parameters = extra_float_digits\n"
    )
    (folder / "users.txt").write_text(f'"{upstream.username or "postgres"}" ""\n')
    command = ["pgbouncer", str(config)]
    if os.geteuid() == 0:
        for path in (folder, *folder.iterdir()):
            shutil.chown(path, "postgres")
        command.insert(1, "-u")
        command.insert(2, "postgres")
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 20
        while not _accepts(port):
            log = folder / "pgbouncer.log"
            output = log.read_text() if log.exists() else ""
            assert process.poll() is None, f"pgbouncer exited: {output}"
            assert time.monotonic() < deadline, f"pgbouncer did not listen: {output}"
            time.sleep(0.05)
        yield Bouncer(port)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        shutil.rmtree(folder, ignore_errors=True)
