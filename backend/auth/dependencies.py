"""Who is calling, and whether their role may do what they ask.

Every generated `/api` route admits its caller with `admit(...)`. A missing token is
anonymous: allowed for reads of viewer-level resources when `ANONYMOUS_READ` is on, otherwise
401. A bad, expired or revoked token is always 401 (never silently anonymous). A signed-in
user whose role is too low gets 403.

A token is revoked when its user's `auth_version` moves on (a password change, a
deactivation): the version the token carries is compared with the stored one in the same
query that reads the caller's role, so revocation costs no round trip of its own and applies
to the very next request, in every server process.
"""

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import (
    ColumnElement,
    ScalarSelect,
    String,
    Table,
    bindparam,
    exists,
    or_,
    select,
    type_coerce,
)

from backend.auth.tokens import InvalidToken, TokenClaims, read_token_claims
from backend.config import Settings
from backend.crud.connection import Connection
from backend.db import SessionDep
from backend.models import Role, User

# Named "bearer" in the OpenAPI document; clients send `Authorization: Bearer <jwt>`.
bearer_scheme = HTTPBearer(
    scheme_name="bearer",
    bearerFormat="JWT",
    description="An access token from `POST /api/auth/token`.",
    auto_error=False,
)


def unauthorized(detail: str, *, error: str | None = None) -> HTTPException:
    """A 401 carrying the `WWW-Authenticate: Bearer` challenge (RFC 6750)."""
    challenge = "Bearer" if error is None else f'Bearer error="{error}"'
    return HTTPException(
        status.HTTP_401_UNAUTHORIZED, detail, headers={"WWW-Authenticate": challenge}
    )


async def get_app_settings(request: Request) -> Settings:
    """The settings the app was built with (async: a sync dependency costs a thread hop)."""
    settings: Settings = request.app.state.settings
    return settings


SettingsDep = Annotated[Settings, Depends(get_app_settings)]


def token_claims(
    credentials: HTTPAuthorizationCredentials | None, settings: Settings
) -> TokenClaims | None:
    """The claims of a valid bearer token, None without one; 401 for a token that fails."""
    return None if credentials is None else _claims(credentials.credentials, settings)


def _claims(token: str, settings: Settings) -> TokenClaims:
    try:
        return read_token_claims(token, settings)
    except InvalidToken:
        raise unauthorized("Invalid or expired token", error="invalid_token") from None


def bearer_claims(request: Request, settings: Settings) -> TokenClaims | None:
    """`token_claims` of the request's `Authorization: Bearer` header, read as `bearer_scheme`
    reads it (another scheme, or none, is no token) without building its credentials model."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    token = token.strip()
    if not (scheme and token) or scheme.lower() != "bearer":
        return None
    return _claims(token, settings)


def _gone_user() -> HTTPException:
    return unauthorized(
        "The token was revoked (its user's password changed since it was issued), or its "
        "user no longer exists or is inactive",
        error="invalid_token",
    )


async def optional_user(
    session: SessionDep,
    settings: SettingsDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)],
) -> User | None:
    """The signed-in user, None when no bearer token was sent; 401 for a token that fails."""
    claims = token_claims(credentials, settings)
    if claims is None:
        return None
    user = await session.get(User, claims.user_id)
    if user is None or not user.is_active or user.auth_version != claims.auth_version:
        raise _gone_user()
    return user


OptionalUserDep = Annotated[User | None, Depends(optional_user)]


@dataclass(frozen=True, slots=True)
class Caller:
    """Who is calling, as far as a role check needs: read fresh from `users` on every call."""

    id: int
    role: Role


_users: Table = User.__table__  # type: ignore[attr-defined]


def _is_caller() -> list[ColumnElement[bool]]:
    """The conditions on `users` that the caller `:caller_id`, `:caller_version` meets: that
    user, active, with their token's auth version still the stored one."""
    return [
        _users.c.id == bindparam("caller_id"),
        _users.c.is_active,
        _users.c.auth_version == bindparam("caller_version"),
    ]


# One small Core query by primary key (compiled once): roles, deactivation and revocation
# apply at once.
_CALLER = select(_users.c.role).where(*_is_caller())


async def read_caller(connection: Connection, claims: TokenClaims) -> Caller:
    """The caller's role, read now; 401 when the user is gone, inactive or the token revoked."""
    found = await connection.first(_CALLER, caller_parameters(claims))
    return caller_with_role(claims.user_id, found[0] if found is not None else None)


def caller_parameters(claims: TokenClaims) -> dict[str, int]:
    """The bound parameters of `caller_role_column` and `caller_may` for this caller."""
    return {"caller_id": claims.user_id, "caller_version": claims.auth_version}


def caller_role_column() -> ScalarSelect[Any]:
    """The role of the caller (NULL when they are gone, inactive or their token revoked), as
    a column; its parameters are `caller_parameters`.

    A route can select it along with its rows: one round trip reads the rows and the role,
    as fresh as a query of its own would.
    """
    role = type_coerce(_users.c.role, String())  # the text: no enum conversion on every row
    return select(role).where(*_is_caller()).scalar_subquery()


def caller_may(required: Role) -> ColumnElement[bool]:
    """Whether the caller (see `caller_role_column`) has a role of at least `required`, as a
    condition a write can carry in its own WHERE clause."""
    allowed = [role.value for role in Role if role.allows(required)]
    return exists(
        select(_users.c.id).where(*_is_caller(), or_(*(_users.c.role == role for role in allowed)))
    )


class PendingCaller:
    """A signed-in caller whose role is yet to be checked against `required`.

    A route settles it from the role its statement read along with the rows (`settle`), from
    a statement that only acted because the role allowed it (`granted`), or with a query of
    its own (`check`); each raises the 401/403 when the caller may not do this.
    """

    __slots__ = ("claims", "user_id", "parameters", "required", "settings", "read", "settled")

    def __init__(
        self, claims: TokenClaims, required: Role, settings: Settings, *, read: bool
    ) -> None:
        self.claims = claims
        self.user_id = claims.user_id
        # What a statement that reads or checks the role binds (`caller_parameters`).
        self.parameters = caller_parameters(claims)
        self.required = required
        self.settings = settings
        self.read = read
        self.settled = False

    def settle(self, role: str | None) -> None:
        """Admit by the role read with the rows (None: the user is gone or inactive)."""
        self.settled = True
        admit(caller_with_role(self.user_id, role), self.settings, self.required, read=self.read)

    def granted(self) -> None:
        """The route's statement checked the role itself, and it allowed the change."""
        self.settled = True

    async def check(self, connection: Connection) -> None:
        """Admit by the role read now."""
        self.settled = True
        caller = await read_caller(connection, self.claims)
        admit(caller, self.settings, self.required, read=self.read)


def caller_with_role(user_id: int, role: str | None) -> Caller:
    """The caller, given the role read for them; 401 when they are gone, inactive or their
    token revoked (None)."""
    if role is None:
        raise _gone_user()
    return Caller(user_id, Role(role))


async def current_user(user: OptionalUserDep) -> User:
    """The signed-in user; 401 when the call carries no token."""
    if user is None:
        raise unauthorized("Not authenticated")
    return user


CurrentUserDep = Annotated[User, Depends(current_user)]


def admit(
    caller: Caller | None, settings: Settings, required: Role, *, read: bool
) -> Caller | None:
    """`caller` when their role is at least `required`; 401 / 403 otherwise."""
    if caller is None:
        if read and settings.anonymous_read and required is Role.viewer:
            return None
        raise unauthorized("Not authenticated")
    if not caller.role.allows(required):
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            f"Role {caller.role.value!r} may not do this; it needs {required.value!r}",
        )
    return caller
