"""Proof that a password check runs off the event loop, without measuring time.

`password_checks_gated()` swaps in a hasher whose `verify` blocks its caller until the event
loop has turned `turns` more times after the check began. Off the loop (a worker thread),
the loop turns, the check returns and the sign-in succeeds. On the loop, the loop cannot
turn while the check blocks it: the check gives up after `GIVE_UP_S` and fails the test. The
only clock is that give-up, and a passing run never comes near it.
"""

import asyncio
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field
from unittest.mock import patch

from pwdlib import PasswordHash

from backend.auth import passwords
from tests.passwords import cheap_hasher

GIVE_UP_S = 15.0


@dataclass
class LoopWitness:
    """What the event loop did while passwords were checked."""

    turns: int = 0  # loop turns counted after a check began
    checks: int = 0  # password checks that returned
    started: threading.Event = field(default_factory=threading.Event)
    reached: threading.Event = field(default_factory=threading.Event)


class GatedHash(PasswordHash):
    """Cheap argon2 whose `verify` waits until the loop has turned while it runs."""

    def __init__(self, witness: LoopWitness) -> None:
        super().__init__(cheap_hasher().hashers)
        self.witness = witness

    def verify(self, password: str | bytes, hash: str | bytes) -> bool:
        self.witness.started.set()
        if not self.witness.reached.wait(timeout=GIVE_UP_S):
            raise AssertionError("the event loop stood still while a password was checked")
        verified = super().verify(password, hash)
        self.witness.checks += 1
        return verified


@asynccontextmanager
async def password_checks_gated(turns: int = 200) -> AsyncIterator[LoopWitness]:
    """Within the block, each password check needs `turns` loop turns to happen meanwhile."""
    witness = LoopWitness()
    hasher = GatedHash(witness)

    async def count_turns() -> None:
        while not witness.started.is_set():
            await asyncio.sleep(0)
        for _ in range(turns):
            await asyncio.sleep(0)
            witness.turns += 1
        witness.reached.set()

    with patch.object(passwords, "_hasher", lambda: hasher):
        counter = asyncio.create_task(count_turns())
        try:
            yield witness
        finally:
            counter.cancel()
            with suppress(asyncio.CancelledError):
                await counter
