"""Real argon2 at its lowest cost, for tests that hash or verify many passwords.

The default cost takes ~0.5 s per hash on these machines. Verification reads the cost from
each hash, so hashes made at production cost still verify under the cheap hasher.
"""

from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher

from backend.auth import passwords


def cheap_hasher() -> PasswordHash:
    return PasswordHash((Argon2Hasher(time_cost=1, memory_cost=1024, parallelism=1),))


@contextmanager
def cheap_password_hashing() -> Iterator[PasswordHash]:
    """Make the application hash and verify with `cheap_hasher()` until the block ends."""
    cheap = cheap_hasher()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(passwords, "_hasher", lambda: cheap)
        yield cheap
