"""The admin's account pages: "Forgot password?", setting a password from an emailed link,
and inviting a user (admins only).

The forgot and set-password pages are for people who are not signed in; they are plain
routes of the admin app (its session and CSRF protection apply, its sign-in check does not).
The work itself is `backend.auth.recovery`'s, shared with the API. Without mail settings
the pages say the feature is unavailable and the login page offers no link.
"""

from typing import Any, ClassVar

from pydantic import TypeAdapter, ValidationError
from sqladmin import Admin, BaseView, expose
from starlette.background import BackgroundTask
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from backend.admin.auth import current_user
from backend.auth.recovery import (
    UNAVAILABLE,
    InvitationError,
    LinkError,
    LinkTokens,
    PasswordRefused,
    invite_user,
    reset_message,
    set_password_with_token,
)
from backend.auth.schemas import LoginEmail
from backend.config import Settings
from backend.db import Database
from backend.mail import MailError, mailer_for
from backend.models import Role
from backend.ratelimit import RateLimited, throttle
from backend.ratelimit.rejection import throttled_page
from backend.writes.actor import Actor

_EMAIL: TypeAdapter[str] = TypeAdapter(LoginEmail)
PASSWORD_SET = "password-set"  # the login page's query flag after a password was set


def _text(form: FormData, name: str) -> str:
    value = form.get(name)
    return value if isinstance(value, str) else ""


class AccountPages:
    """The forgot-password and set-password pages of one admin."""

    def __init__(self, admin: Admin, settings: Settings, database: Database) -> None:
        self.admin = admin
        self.settings = settings
        self.database = database

    async def render(
        self, request: Request, name: str, context: dict[str, Any], status_code: int = 200
    ) -> Response:
        response: Response = await self.admin.templates.TemplateResponse(
            request, f"tablestack/{name}", context, status_code=status_code
        )
        return response

    async def forgot_password(self, request: Request) -> Response:
        """Ask for an email; send it a reset link when it has an account (the same page
        answers either way)."""
        mailer = mailer_for(self.settings)
        if mailer is None:
            return await self.render(
                request, "forgot_password.html", {"unavailable": UNAVAILABLE}, 503
            )
        if request.method == "GET":
            return await self.render(request, "forgot_password.html", {})
        email = _text(await request.form(), "email").strip()
        try:  # per client IP and per email, as on /admin/login
            await throttle(request, "password-reset", account=email or None)
        except RateLimited as refused:
            return throttled_page(refused, str(request.url))
        try:
            email = _EMAIL.validate_python(email)
        except ValidationError:
            context = {"error": "Enter a valid email address.", "email": email}
            return await self.render(request, "forgot_password.html", context, 400)
        message = await reset_message(self.database, self.settings, mailer, email)
        response = await self.render(request, "forgot_password.html", {"sent": email})
        if message is not None:  # sent after the answer: it takes as long either way
            response.background = BackgroundTask(mailer.send_logged, message)
        return response

    async def set_password(self, request: Request) -> Response:
        """Choose a password with an emailed link's token (a reset or an invitation)."""
        if request.method == "GET":
            token = request.query_params.get("token", "")
            try:
                async with self.database.api_connection() as db:
                    account, purpose = await LinkTokens(self.settings).account(db, token)
            except LinkError:
                return await self.render(request, "set_password.html", {"bad_link": True}, 400)
            context = {"token": token, "email": account.email, "purpose": purpose}
            return await self.render(request, "set_password.html", context)
        try:  # per client IP: no guessing tokens
            await throttle(request, "password-reset-confirm")
        except RateLimited as refused:
            return throttled_page(refused, str(request.url))
        form = await request.form()
        token, password = _text(form, "token"), _text(form, "password")
        context = {"token": token, "email": _text(form, "email")}
        if password != _text(form, "password_confirm"):
            context["error"] = "The two passwords differ."
            return await self.render(request, "set_password.html", context, 400)
        try:
            await set_password_with_token(self.database, self.settings, token, password, "admin")
        except LinkError:
            return await self.render(request, "set_password.html", {"bad_link": True}, 400)
        except PasswordRefused as exc:
            context["error"] = f"The password was not accepted: {exc}."
            return await self.render(request, "set_password.html", context, 400)
        request.session.clear()  # whoever was signed in here is signed out
        login = request.url_for("admin:login").include_query_params(**{PASSWORD_SET: "1"})
        return RedirectResponse(login, status_code=303)


class InviteUserView(BaseView):
    """Create a user without a password and email them a link to choose one; admins only."""

    name = "Invite user"
    icon = "fa-solid fa-envelope"
    category = "Administration"
    settings: ClassVar[Settings]
    database: ClassVar[Database]

    def is_visible(self, request: Request) -> bool:
        return self.is_accessible(request)

    def is_accessible(self, request: Request) -> bool:
        user = current_user(request)
        return user is not None and Role(user.role).allows(Role.admin)

    @expose("/invite-user", methods=["GET", "POST"], identity="invite-user")
    async def invite(self, request: Request) -> Response:
        mailer = mailer_for(self.settings)
        context: dict[str, Any] = {"roles": [role.value for role in Role], "role": "viewer"}
        if mailer is None:
            context["unavailable"] = UNAVAILABLE
            return await self._render(request, context, 503)
        if request.method == "GET":
            return await self._render(request, context)
        form = await request.form()
        email, role = _text(form, "email").strip(), _text(form, "role")
        full_name = _text(form, "full_name").strip()
        context.update(email=email, full_name=full_name, role=role)
        if role not in context["roles"]:
            context["error"] = "role: choose one of " + ", ".join(context["roles"])
            return await self._render(request, context, 400)
        user = current_user(request)
        assert user is not None and user.id is not None
        inviter = Actor.user(user.id, user.email, "admin")
        try:
            account = await invite_user(
                self.database,
                self.settings,
                mailer,
                inviter,
                email=email,
                role=Role(role),
                full_name=full_name,
            )
        except InvitationError as exc:
            context["error"] = str(exc)
            return await self._render(request, context, 400)
        except MailError as exc:
            context["mail_failed"] = str(exc)
            return await self._render(request, {**context, "email": "", "full_name": ""}, 502)
        return await self._render(
            request, {**context, "invited": account.email, "email": "", "full_name": ""}
        )

    async def _render(
        self, request: Request, context: dict[str, Any], status_code: int = 200
    ) -> Response:
        response: Response = await self.templates.TemplateResponse(
            request, "tablestack/invite_user.html", context, status_code=status_code
        )
        return response


def install_account_pages(admin: Admin, settings: Settings, database: Database) -> None:
    """Add the forgot-password, set-password and invite-user pages to `admin`."""
    pages = AccountPages(admin, settings, database)
    app = admin.admin
    app.add_route("/forgot-password", pages.forgot_password, ["GET", "POST"], "forgot-password")
    app.add_route("/set-password", pages.set_password, ["GET", "POST"], "set-password")
    admin.templates.env.globals["mail_enabled"] = settings.mail_enabled
    admin.templates.env.globals["password_set_flag"] = PASSWORD_SET
    view = type("InviteUserView", (InviteUserView,), {"settings": settings, "database": database})
    admin.add_view(view)
