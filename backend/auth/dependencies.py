"""Who is calling, and whether their role may do what they ask.

Every `/api` route depends on `require_role(...)`. A missing token is anonymous: allowed for
reads of viewer-level resources when `ANONYMOUS_READ` is on, otherwise 401. A bad, expired or
revoked token is always 401 (never silently anonymous). A signed-in user whose role is too
low gets 403.
"""

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from backend.auth.tokens import InvalidToken, read_access_token
from backend.config import Settings
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


def get_app_settings(request: Request) -> Settings:
    """The settings the app was built with."""
    settings: Settings = request.app.state.settings
    return settings


SettingsDep = Annotated[Settings, Depends(get_app_settings)]


async def optional_user(
    session: SessionDep,
    settings: SettingsDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)],
) -> User | None:
    """The signed-in user, None when no bearer token was sent; 401 for a token that fails."""
    if credentials is None:
        return None
    try:
        user_id = read_access_token(credentials.credentials, settings)
    except InvalidToken:
        raise unauthorized("Invalid or expired token", error="invalid_token") from None
    user = await session.get(User, user_id)
    if user is None or not user.is_active:
        raise unauthorized(
            "The token's user no longer exists or is inactive", error="invalid_token"
        )
    return user


OptionalUserDep = Annotated[User | None, Depends(optional_user)]


async def current_user(user: OptionalUserDep) -> User:
    """The signed-in user; 401 when the call carries no token."""
    if user is None:
        raise unauthorized("Not authenticated")
    return user


CurrentUserDep = Annotated[User, Depends(current_user)]


def require_role(required: Role, *, read: bool = False) -> Callable[..., Awaitable[User | None]]:
    """A dependency admitting users whose role is at least `required`.

    With `read=True` and `ANONYMOUS_READ` on, anonymous callers pass when `required` is viewer.
    """

    async def check_role(user: OptionalUserDep, settings: SettingsDep) -> User | None:
        if user is None:
            if read and settings.anonymous_read and required is Role.viewer:
                return None
            raise unauthorized("Not authenticated")
        if not user.role.allows(required):
            raise HTTPException(
                status.HTTP_403_FORBIDDEN,
                f"Role {user.role.value!r} may not do this; it needs {required.value!r}",
            )
        return user

    return check_role
