"""Admin sign-in over the API's users, and per-table permissions from their roles.

The session cookie holds the user's id and a fingerprint of their password hash: changing a
password, deactivating or deleting the user ends their admin sessions at the next request.
"""

import hashlib
import hmac
from typing import Any

from sqladmin.authentication import AuthenticationBackend
from sqladmin.authorization import Action, AuthorizationBackend
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
        )
        self.secret = settings.secret_key.encode()
        self.database = database
        self.base_url = base_url

    def fingerprint(self, user: User) -> str:
        """Changes whenever the user's password does; never reveals the hash."""
        digest = hmac.new(self.secret, user.hashed_password.encode(), hashlib.sha256)
        return digest.hexdigest()[:32]

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
        request.session.update({"user_id": user.id, "auth": self.fingerprint(user)})
        return True

    async def logout(self, request: Request) -> Response | bool:
        request.session.clear()
        return RedirectResponse(request.url_for("admin:login"), status_code=302)

    async def authenticate(self, request: Request) -> Response | bool:
        user_id = request.session.get("user_id")
        if not isinstance(user_id, int):
            return False
        async with self.database.admin_sessions() as session:
            user = await session.get(User, user_id)
        fingerprint = request.session.get("auth")
        if (
            user is None
            or not user.is_active
            or not isinstance(fingerprint, str)
            or not hmac.compare_digest(fingerprint, self.fingerprint(user))
        ):
            request.session.clear()
            return False
        setattr(request.state, _USER_STATE, user)
        return True


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
