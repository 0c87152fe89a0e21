"""Password hashing with argon2 (pwdlib's recommended hasher).

argon2 costs ~0.2 s of CPU per hash or check, by design. The async versions run it in a
worker thread (argon2-cffi releases the GIL) and never more at once than the cores the event
loop leaves free: twenty sign-ins at once queue for one core instead of starving the loop that
serves every other request.
"""

import asyncio
import os
import weakref
from functools import lru_cache

from anyio import CapacityLimiter, to_thread
from pwdlib import PasswordHash

MIN_PASSWORD_LENGTH = 8


@lru_cache
def _hasher() -> PasswordHash:
    return PasswordHash.recommended()


def hash_password(password: str, *, salt: bytes | None = None) -> str:
    """An argon2 hash of `password`, safe to store; `salt` only for reproducible fixtures."""
    return _hasher().hash(password, salt=salt)


def verify_password(password: str, hashed: str) -> bool:
    """True when `password` matches the stored hash."""
    return _hasher().verify(password, hashed)


def is_password_hash(value: str) -> bool:
    """True when `value` is a hash this application's hasher can verify."""
    return any(hasher.identify(value) for hasher in _hasher().hashers)


def check_password_strength(password: str) -> None:
    """Raise ValueError with a readable reason when `password` is too weak to accept."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ValueError(f"password must be at least {MIN_PASSWORD_LENGTH} characters")


# One limiter per event loop (an anyio limiter belongs to the loop it was made in).
_LIMITERS: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, CapacityLimiter]" = (
    weakref.WeakKeyDictionary()
)


def hashing_slots() -> int:
    """How many hashes may run at once: every core but the event loop's."""
    return max(1, (os.cpu_count() or 2) - 1)


def _limiter() -> CapacityLimiter:
    loop = asyncio.get_running_loop()
    limiter = _LIMITERS.get(loop)
    if limiter is None:
        limiter = _LIMITERS[loop] = CapacityLimiter(hashing_slots())
    return limiter


async def hash_password_off_loop(password: str) -> str:
    """`hash_password` in a worker thread, at most `hashing_slots()` at once."""
    return await to_thread.run_sync(hash_password, password, limiter=_limiter())


async def verify_password_off_loop(password: str, hashed: str) -> bool:
    """`verify_password` in a worker thread, at most `hashing_slots()` at once."""
    return await to_thread.run_sync(verify_password, password, hashed, limiter=_limiter())
