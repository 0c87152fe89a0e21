"""Access tokens: short-lived HS256 JWTs whose subject is the user's id.

A token also carries the user's `auth_version` (claim `ver`) as it was when the token was
issued. The version goes up when the password changes or the user is deactivated, and every
check of a token compares it with the stored one (in the same statement that reads the
caller's role): a token issued before that is refused from the next request on, in every
server process.
"""

import time
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import NamedTuple

import jwt

from backend.config import Settings

ALGORITHM = "HS256"
TOKEN_TYPE = "access"


class InvalidToken(Exception):
    """The token is malformed, forged, expired or not an access token."""


class TokenClaims(NamedTuple):
    """Who a valid token was issued to, and at which of their auth versions."""

    user_id: int
    auth_version: int


def create_access_token(
    user_id: int, settings: Settings, *, auth_version: int = 1, now: datetime | None = None
) -> str:
    """A signed token for `user_id` at `auth_version` (a new user's is 1), expiring after
    `settings.access_token_expire_minutes`."""
    issued = now or datetime.now(UTC)
    claims = {
        "sub": str(user_id),
        "ver": auth_version,
        "typ": TOKEN_TYPE,
        "iat": issued,
        "exp": issued + timedelta(minutes=settings.access_token_expire_minutes),
    }
    return jwt.encode(claims, settings.secret_key, algorithm=ALGORITHM)


def read_access_token(token: str, settings: Settings) -> int:
    """The user id a valid, unexpired access token was issued to; InvalidToken otherwise."""
    return read_token_claims(token, settings).user_id


def read_token_claims(token: str, settings: Settings) -> TokenClaims:
    """The user and auth version of a valid, unexpired access token; InvalidToken otherwise.

    Whether that version is still the user's is for the caller to check against the database.
    """
    claims, expires_at = _verified(token, settings.secret_key)
    if time.time() >= expires_at:  # as PyJWT: expired from the `exp` second on
        raise InvalidToken("Signature has expired")
    return claims


@lru_cache(maxsize=4096)
def _verified(token: str, secret_key: str) -> tuple[TokenClaims, float]:
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
            options={"require": ["exp", "iat", "sub", "ver"]},
        )
    except jwt.PyJWTError as exc:
        raise InvalidToken(str(exc)) from None
    subject, version = claims.get("sub"), claims.get("ver")
    if (
        claims.get("typ") != TOKEN_TYPE
        or not isinstance(subject, str)
        or not subject.isdigit()
        or type(version) is not int
    ):
        raise InvalidToken("not an access token")
    return TokenClaims(int(subject), version), float(claims["exp"])
