"""A PostgreSQL streaming replica of a private cluster: a second Debian cluster on a spare
port whose data directory is `pg_basebackup -R` of the primary's (tests/resilience/cluster.py
makes, starts and drops both)."""

import asyncio
import shutil
import subprocess
import time

import asyncpg

from tests.resilience import cluster as clusters
from tests.resilience.cluster import VERSION, Cluster

BASEBACKUP = f"/usr/lib/postgresql/{VERSION}/bin/pg_basebackup"


def new_replica(primary: Cluster) -> Cluster:
    """A streaming replica of the running `primary`, started, following it."""
    replica = clusters.new_cluster()
    replica.create()  # its configuration (port, connections) under /etc/postgresql
    # emptied, kept (its parent is root's): pg_basebackup fills an empty directory
    shutil.rmtree(replica.data_directory)
    replica.data_directory.mkdir(mode=0o700)
    shutil.chown(replica.data_directory, "postgres", "postgres")
    done = subprocess.run(
        ["runuser", "-u", "postgres", "--", BASEBACKUP]
        + ["-h", "127.0.0.1", "-p", str(primary.port), "-U", "postgres"]
        + ["-D", str(replica.data_directory), "-R", "-X", "stream", "--no-sync"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    if done.returncode != 0:
        replica.drop()
        raise RuntimeError(f"pg_basebackup failed: {done.stderr.strip()}")
    replica.start()
    return replica


async def caught_up(primary: Cluster, replica: Cluster, timeout_s: float = 30) -> None:
    """Return once the replica has replayed everything the primary had written when called."""
    source = await asyncpg.connect(primary.dsn())
    try:
        target_lsn = await source.fetchval("SELECT pg_current_wal_lsn()::text")
    finally:
        await source.close()
    deadline = time.monotonic() + timeout_s
    follower = await asyncpg.connect(replica.dsn())
    try:
        while True:
            replayed = await follower.fetchval(
                "SELECT pg_last_wal_replay_lsn() >= $1::text::pg_lsn", target_lsn
            )
            if replayed:
                return
            if time.monotonic() > deadline:
                raise TimeoutError("the replica did not catch up with the primary")
            await asyncio.sleep(0.05)
    finally:
        await follower.close()


async def pause_replay(replica: Cluster, paused: bool) -> None:
    """Stop (or resume) applying the primary's changes: the replica's data stands still."""
    connection = await asyncpg.connect(replica.dsn())
    try:
        function = "pg_wal_replay_pause" if paused else "pg_wal_replay_resume"
        await connection.execute(f"SELECT {function}()")
    finally:
        await connection.close()
