"""Access tokens: short-lived HS256 JWTs whose subject is the user's id."""

import time
from datetime import UTC, datetime, timedelta
from functools import lru_cache

import jwt

from backend.config import Settings

ALGORITHM = "HS256"
TOKEN_TYPE = "access"


class InvalidToken(Exception):
    """The token is malformed, forged, expired or not an access token."""


def create_access_token(user_id: int, settings: Settings, *, now: datetime | None = None) -> str:
    """A signed token for `user_id` expiring after `settings.access_token_expire_minutes`."""
    issued = now or datetime.now(UTC)
    claims = {
        "sub": str(user_id),
        "typ": TOKEN_TYPE,
        "iat": issued,
        "exp": issued + timedelta(minutes=settings.access_token_expire_minutes),
    }
    return jwt.encode(claims, settings.secret_key, algorithm=ALGORITHM)


def read_access_token(token: str, settings: Settings) -> int:
    """The user id a valid, unexpired access token was issued to; InvalidToken otherwise."""
    user_id, expires_at = _verified(token, settings.secret_key)
    if time.time() >= expires_at:  # as PyJWT: expired from the `exp` second on
        raise InvalidToken("Signature has expired")
    return user_id


@lru_cache(maxsize=4096)
def _verified(token: str, secret_key: str) -> tuple[int, float]:
    """The subject and expiry of a token whose signature and claims check out.

    Cached: a client sends the same token on every call, and checking its HS256 signature
    and claims again each time was a twentieth of a small request. Expiry is still checked on
    every use, by the caller; failures are never cached (an exception is not a result).
    """
    try:
        claims = jwt.decode(
            token,
            secret_key,
            algorithms=[ALGORITHM],
            options={"require": ["exp", "iat", "sub"]},
        )
    except jwt.PyJWTError as exc:
        raise InvalidToken(str(exc)) from None
    subject = claims.get("sub")
    if claims.get("typ") != TOKEN_TYPE or not isinstance(subject, str) or not subject.isdigit():
        raise InvalidToken("not an access token")
    return int(subject), float(claims["exp"])
