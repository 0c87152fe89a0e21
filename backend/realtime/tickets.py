"""Tickets: what a browser puts in the URL of an EventSource or a WebSocket instead of its token.

Browsers cannot set an `Authorization` header on either, and a long-lived access token in a
URL ends up in access logs and proxies. A ticket is obtained with the token
(`POST /api/realtime/tickets`), lives `realtime_ticket_s` seconds (30 by default) and is good
only for opening a stream; the stream then lasts as long as the token it was obtained with
(the ticket carries the token's expiry). Signed like the tokens (HS256, the secret key), with
a type of its own, so neither can stand in for the other.
"""

import time

import jwt

from backend.auth.tokens import ALGORITHM, InvalidToken, TokenClaims
from backend.config import Settings

TICKET_TYPE = "realtime-ticket"


def issue_ticket(
    claims: TokenClaims, token_expires_at: float, settings: Settings, *, now: float | None = None
) -> str:
    """A ticket for the token's user at its auth version, valid `realtime_ticket_s` seconds
    (never past the token)."""
    issued = time.time() if now is None else now
    expires = min(issued + settings.realtime_ticket_s, token_expires_at)
    ticket = {
        "sub": str(claims.user_id),
        "ver": claims.auth_version,
        "typ": TICKET_TYPE,
        "iat": int(issued),
        "exp": expires,
        "token_exp": token_expires_at,
    }
    return jwt.encode(ticket, settings.secret_key, algorithm=ALGORITHM)


def read_ticket(ticket: str, settings: Settings) -> tuple[TokenClaims, float]:
    """(the claims of the token it was obtained with, that token's expiry); InvalidToken
    otherwise."""
    try:
        claims = jwt.decode(
            ticket,
            settings.secret_key,
            algorithms=[ALGORITHM],
            options={"require": ["exp", "sub", "ver", "token_exp"]},
        )
    except jwt.PyJWTError as exc:
        raise InvalidToken(str(exc)) from None
    subject, version = claims.get("sub"), claims.get("ver")
    if (
        claims.get("typ") != TICKET_TYPE
        or not isinstance(subject, str)
        or not subject.isdigit()
        or type(version) is not int
    ):
        raise InvalidToken("not a realtime ticket")
    return TokenClaims(int(subject), version), float(claims["token_exp"])


def token_expiry(token: str) -> float:
    """The `exp` of an access token already verified by `read_access_token`."""
    claims = jwt.decode(token, options={"verify_signature": False})
    return float(claims["exp"])
