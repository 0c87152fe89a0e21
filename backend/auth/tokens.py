"""Access tokens: short-lived HS256 JWTs whose subject is the user's id."""

from datetime import UTC, datetime, timedelta

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
    try:
        claims = jwt.decode(
            token,
            settings.secret_key,
            algorithms=[ALGORITHM],
            options={"require": ["exp", "iat", "sub"]},
        )
    except jwt.PyJWTError as exc:
        raise InvalidToken(str(exc)) from None
    subject = claims.get("sub")
    if claims.get("typ") != TOKEN_TYPE or not isinstance(subject, str) or not subject.isdigit():
        raise InvalidToken("not an access token")
    return int(subject)
