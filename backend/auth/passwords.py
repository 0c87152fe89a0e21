"""Password hashing with argon2 (pwdlib's recommended hasher)."""

from functools import lru_cache

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
