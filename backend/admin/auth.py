"""Admin sign-in over the API's users, and per-table permissions from their roles.

The session lives in a signed cookie (Starlette's SessionMiddleware) that the server can still
revoke: it holds the user's id, their `auth_version` and `admin_session_version` at sign-in,
and when the session started and was last used. Every request reads the user (one query by
primary key, as before) and refuses the session when
- the user is gone or inactive, or their `auth_version` moved on (a new password, a
  deactivation: `backend.auth.hooks`);
- their `admin_session_version` moved on: signing out bumps it, which ends this session and
  every other admin session of that user (there is no per-session row to end just one; a
  cookie copied from any browser dies with the one signed out);
- the session is older than ADMIN_SESSION_MAX_AGE_S, or unused for ADMIN_SESSION_IDLE_S.
The state is in the database, so it holds across every server process.
"""

import time
from collections.abc import Callable
from typing import Any

from sqladmin.authentication import AuthenticationBackend
from sqladmin.authorization import Action, AuthorizationBackend
from sqlalchemy import update
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from backend.auth.users import authenticate
from backend.config import Settings
from backend.db import Database
from backend.models import Role, User
from backend.ratelimit import RateLimited, sign_in_attempt
from backend.ratelimit.rejection import throttled_page
from backend.registry import ResourceOptions

SESSION_COOKIE = "tablestack_admin"
READ_ACTIONS = frozenset({Action.LIST, Action.DETAILS, Action.EXPORT})
WRITE_ACTIONS = frozenset({Action.CREATE, Action.EDIT, Action.DELETE})
_USER_STATE = "tablestack_admin_user"
_users = User.__table__  # type: ignore[attr-defined]

# The session's time (seconds since the epoch); tests replace it to age a session.
clock: Callable[[], float] = time.time


def current_user(request: Request) -> User | None:
    """The signed-in admin user of this request (set by AdminAuth.authenticate)."""
    user: User | None = getattr(request.state, _USER_STATE, None)
    return user


class AdminAuth(AuthenticationBackend):
    """Email + password sign-in to a signed, HttpOnly, SameSite=Lax session cookie."""

    def __init__(self, settings: Settings, database: Database, base_url: str = "/admin") -> None:
        super().__init__(
            secret_key=settings.secret_key,
            session_cookie=SESSION_COOKIE,
            same_site="lax",
            https_only=settings.session_https_only,
            path=base_url,
            # the cookie's own lifetime; the absolute and idle limits are checked below
            max_age=settings.admin_session_max_age_s,
        )
        self.database = database
        self.base_url = base_url
        self.max_age_s = settings.admin_session_max_age_s
        self.idle_s = settings.admin_session_idle_s

    async def login(self, request: Request) -> Response | bool:
        form = await request.form()
        email = str(form.get("username") or "").strip()
        password = str(form.get("password") or "")
        request.scope["tablestack_login_email"] = email  # shown again after a failure
        if not email or not password:
            return False
        try:
            attempt = await sign_in_attempt(request, email)
        except RateLimited as refused:
            return throttled_page(refused, str(request.url_for("admin:login")))
        async with self.database.api_sessions() as session:
            user = await authenticate(session, email, password)
        if user is None:
            await attempt.failed()
            return False
        await attempt.succeeded()
        request.session.clear()  # a fresh session: nothing carried over from before sign-in
        request.session.update(signed_in(user))
        return True

    async def logout(self, request: Request) -> Response | bool:
        """End this session and, by bumping the user's admin session version, every other
        admin session of theirs (their API tokens stay valid)."""
        stored = _SessionState.of(request.session)
        if stored is not None:
            ended = (
                update(_users)
                .where(
                    _users.c.id == stored.user_id,
                    _users.c.auth_version == stored.auth_version,
                    _users.c.admin_session_version == stored.session_version,
                )
                .values(admin_session_version=_users.c.admin_session_version + 1)
            )
            async with self.database.admin_sessions() as session:
                await session.execute(ended)
                await session.commit()
        request.session.clear()
        return RedirectResponse(request.url_for("admin:login"), status_code=302)

    async def authenticate(self, request: Request) -> Response | bool:
        stored = _SessionState.of(request.session)
        now = int(clock())
        if stored is None or not stored.fresh(now, self.max_age_s, self.idle_s):
            request.session.clear()
            return False
        async with self.database.admin_sessions() as session:
            user = await session.get(User, stored.user_id)
        if (
            user is None
            or not user.is_active
            or user.auth_version != stored.auth_version
            or user.admin_session_version != stored.session_version
        ):
            request.session.clear()
            return False
        request.session["seen"] = now
        setattr(request.state, _USER_STATE, user)
        return True


def signed_in(user: User) -> dict[str, int]:
    """The session of `user`, signed in now."""
    assert user.id is not None
    now = int(clock())
    return {
        "user_id": user.id,
        "auth": user.auth_version,
        "session": user.admin_session_version,
        "since": now,
        "seen": now,
    }


class _SessionState:
    """What `signed_in` stored in a session cookie; None from `of` when it is not that."""

    __slots__ = ("user_id", "auth_version", "session_version", "since", "seen")

    def __init__(self, values: tuple[int, int, int, int, int]) -> None:
        self.user_id, self.auth_version, self.session_version, self.since, self.seen = values

    @classmethod
    def of(cls, session: dict[str, Any]) -> "_SessionState | None":
        values = tuple(session.get(key) for key in ("user_id", "auth", "session", "since", "seen"))
        if not all(type(value) is int for value in values):
            return None  # signed out, or a cookie from before sessions were revocable
        return cls(values)  # type: ignore[arg-type]

    def fresh(self, now: int, max_age_s: int, idle_s: int) -> bool:
        """Within the absolute lifetime and, when there is one, the idle limit."""
        if now - self.since >= max_age_s:
            return False
        return idle_s == 0 or now - self.seen < idle_s


class RoleAuthorization(AuthorizationBackend):
    """Reading needs the table's read_role, writing its write_role; import is off."""

    def __init__(self, resources: dict[str, ResourceOptions]) -> None:
        self.resources = resources  # by view identity

    def has_permission(
        self, request: Request, identity: str, action: str, obj: Any | None = None
    ) -> bool:
        user = current_user(request)
        resource = self.resources.get(identity)
        if user is None or resource is None:
            return False
        role = Role(user.role)
        if action in READ_ACTIONS:
            return role.allows(resource.read_role)
        if action in WRITE_ACTIONS:
            return role.allows(resource.read_role) and role.allows(resource.write_role)
        return False
