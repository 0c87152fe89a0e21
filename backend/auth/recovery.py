"""Account recovery by email: password reset links, invitations, and setting a password
with a link's token - for the API (`/api/auth/password-reset*`) and the admin's pages
(`backend.admin.accounts`) alike.

A link's token is signed with SECRET_KEY and timestamped (itsdangerous), and names the user,
its purpose and a digest of the user's sign-in state (their `auth_version` and password
hash), as Django's PasswordResetTokenGenerator does. Setting a password changes both, so a
token works once, and one issued before a later password change or deactivation is void;
nothing about it is stored on the server. A reset link lives PASSWORD_RESET_MAX_AGE_S, an
invitation INVITATION_MAX_AGE_S.

The new password is written through the users' Writer (hashed off the event loop, a history
entry, the users' hooks - which bump `auth_version`, ending every token and session issued
before), at the row version read with the token's check: of two uses of one link at once,
one sets the password and the other is refused.
"""

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Annotated, Any, Literal

from fastapi import APIRouter, BackgroundTasks, HTTPException, Request, status
from itsdangerous import BadData, TimestampSigner, URLSafeTimedSerializer
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy import func, select

from backend.auth.dependencies import SettingsDep
from backend.auth.passwords import MIN_PASSWORD_LENGTH, check_password_strength
from backend.auth.schemas import LoginEmail, UserCreate
from backend.config import Settings
from backend.crud.connection import Connection
from backend.crud.errors import BAD_BODY, Message
from backend.db import Database, get_database
from backend.mail import Mailer, mailer_for
from backend.models import Role, User
from backend.ratelimit import throttle
from backend.registry import registry
from backend.writes.actor import Actor, Surface
from backend.writes.errors import RowNotFound, VersionMismatch, WriteError
from backend.writes.service import writer_for

Purpose = Literal["reset", "invite"]
SET_PASSWORD_PATH = "/admin/set-password"
MAX_PASSWORD_LENGTH = 128  # as the users' schemas
UNAVAILABLE = (
    "Password reset by email is unavailable: the server has no mail settings "
    "(SMTP_HOST and PUBLIC_BASE_URL)"
)
BAD_LINK = "the link is invalid, has expired or was already used"

_users = User.__table__  # type: ignore[attr-defined]

# The links' time (seconds since the epoch); tests replace it to age a link.
clock = time.time


class _Signer(TimestampSigner):
    def get_timestamp(self) -> int:
        return int(clock())


class LinkError(Exception):
    """A link's token is invalid, expired, already used, or its user cannot use it."""


class PasswordRefused(Exception):
    """The new password is not acceptable; the message says why."""


@dataclass(frozen=True)
class Account:
    """A user as the recovery flows need them."""

    id: int
    email: str
    hashed_password: str
    auth_version: int
    is_active: bool
    version: int  # the row's version

    def state(self, secret: str) -> str:
        """A digest of what setting a password changes; never reveals the hash."""
        material = f"{self.auth_version}:{self.hashed_password}".encode()
        return hmac.new(secret.encode(), material, hashlib.sha256).hexdigest()[:32]


_ACCOUNT = select(
    _users.c.id,
    _users.c.email,
    _users.c.hashed_password,
    _users.c.auth_version,
    _users.c.is_active,
    _users.c.row_version,
)


async def find_account(
    db: Connection, *, email: str | None = None, user_id: int | None = None
) -> Account | None:
    """The account with this email (any case) or id, or None."""
    if email is not None:
        query = _ACCOUNT.where(func.lower(_users.c.email) == email.strip().lower())
    else:
        query = _ACCOUNT.where(_users.c.id == user_id)
    row = await db.first(query)
    return None if row is None else Account(*row)


class LinkTokens:
    """Makes and reads the tokens of set-password links."""

    def __init__(self, settings: Settings) -> None:
        self.secret = settings.secret_key
        self.lifetimes: dict[str, int] = {
            "reset": settings.password_reset_max_age_s,
            "invite": settings.invitation_max_age_s,
        }
        self.serializer = URLSafeTimedSerializer(
            settings.secret_key, salt="tablestack.set-password-link", signer=_Signer
        )

    def make(self, account: Account, purpose: Purpose) -> str:
        """A token for `account` to set their password, valid once, for `purpose`'s lifetime."""
        return self.serializer.dumps([account.id, purpose, account.state(self.secret)])

    def lifetime(self, purpose: Purpose) -> int:
        return self.lifetimes[purpose]

    async def account(self, db: Connection, token: str) -> tuple[Account, Purpose]:
        """The active account `token` lets set a password, and why; LinkError otherwise."""
        try:
            payload, signed_at = self.serializer.loads(
                token, max_age=max(self.lifetimes.values()), return_timestamp=True
            )
        except BadData:
            raise LinkError(BAD_LINK) from None
        match payload:
            case [int(user_id), "reset" | "invite" as purpose, str(state)]:
                pass
            case _:
                raise LinkError(BAD_LINK)
        if clock() - signed_at.timestamp() > self.lifetimes[purpose]:
            raise LinkError(BAD_LINK)
        account = await find_account(db, user_id=user_id)
        if (
            account is None
            or not account.is_active
            or not hmac.compare_digest(state, account.state(self.secret))
        ):
            raise LinkError(BAD_LINK)
        return account, purpose


def set_password_link(settings: Settings, token: str) -> str:
    """The admin page that sets a password with `token`."""
    assert settings.public_base_url is not None
    return f"{settings.public_base_url}{SET_PASSWORD_PATH}?token={token}"


def _minutes(seconds: int) -> str:
    if seconds % 86400 == 0:
        days = seconds // 86400
        return f"{days} day{'s' if days != 1 else ''}"
    if seconds % 3600 == 0:
        hours = seconds // 3600
        return f"{hours} hour{'s' if hours != 1 else ''}"
    return f"{max(1, seconds // 60)} minutes"


async def reset_message(
    database: Database, settings: Settings, mailer: Mailer, email: str
) -> EmailMessage | None:
    """The reset email for the active user with this email, None when there is none.

    The caller answers the same either way (and sends the message after answering): whether
    an email has an account is not for an anonymous caller to learn.
    """
    async with database.api_connection() as db:
        account = await find_account(db, email=email)
    if account is None or not account.is_active:
        return None
    tokens = LinkTokens(settings)
    link = set_password_link(settings, tokens.make(account, "reset"))
    body = (
        f"Somebody (hopefully you) asked to reset the password of {account.email} on "
        f"{settings.admin_title}.\n\n"
        f"Choose a new password here:\n{link}\n\n"
        f"The link works once, within {_minutes(tokens.lifetime('reset'))}. If you did not ask "
        "for it, ignore this message: your password stays as it is.\n"
    )
    return mailer.message(account.email, f"Reset your password for {settings.admin_title}", body)


async def set_password_with_token(
    database: Database, settings: Settings, token: str, password: str, surface: Surface
) -> Account:
    """Set the password of the link's user; LinkError or PasswordRefused when it cannot be.

    Every API token and admin session the user had ends (the users' hook bumps their
    `auth_version`), and the link with them.
    """
    if len(password) > MAX_PASSWORD_LENGTH:
        raise PasswordRefused(f"password must be at most {MAX_PASSWORD_LENGTH} characters")
    try:
        check_password_strength(password)
    except ValueError as exc:
        raise PasswordRefused(str(exc)) from None
    writer = writer_for(registry.for_model(User), database.engine.dialect.name)
    async with database.api_connection() as db:
        account, _ = await LinkTokens(settings).account(db, token)
        actor = Actor.user(account.id, account.email, surface)
        try:
            await writer.update(
                db, account.id, {"password": password}, actor, expected_version=account.version
            )
        except (RowNotFound, VersionMismatch):
            raise LinkError(BAD_LINK) from None  # used (or the user changed) meanwhile
        except WriteError as exc:
            raise PasswordRefused(str(exc)) from None
    return account


class InvitationError(Exception):
    """The user cannot be invited as asked; the message names the field."""

    def __init__(self, field: str | None, message: str) -> None:
        self.field = field
        super().__init__(message)


async def invite_user(
    database: Database,
    settings: Settings,
    mailer: Mailer,
    inviter: Actor,
    *,
    email: str,
    role: Role,
    full_name: str | None = None,
) -> Account:
    """Create an active user who has no usable password yet, and email them a link to set
    one (valid INVITATION_MAX_AGE_S). InvitationError when the user cannot be created;
    MailError (the user then exists) when the mail cannot be sent.
    """
    try:
        payload = UserCreate(
            email=email,
            full_name=full_name or None,
            role=role,
            # a random password nobody knows: the user signs in once they chose their own
            password=secrets.token_urlsafe(32),
        )
    except ValidationError as exc:
        error = exc.errors()[0]
        field = str(error["loc"][0]) if error["loc"] else None
        raise InvitationError(field, f"{field}: {error['msg']}") from None
    writer = writer_for(registry.for_model(User), database.engine.dialect.name)
    async with database.api_connection() as db:
        try:
            written = await writer.create(db, payload.model_dump(), inviter)
        except WriteError as exc:
            problem = exc.problems[0]
            if problem.kind == "unique":
                raise InvitationError(
                    "email", f"a user with email {payload.email} exists"
                ) from None
            raise InvitationError(problem.field, problem.message) from None
        account = await find_account(db, user_id=written.row_id)
    assert account is not None
    tokens = LinkTokens(settings)
    link = set_password_link(settings, tokens.make(account, "invite"))
    body = (
        f"You are invited to {settings.admin_title} as {role.value}, with the email "
        f"{account.email}.\n\n"
        f"Choose your password here:\n{link}\n\n"
        f"The link works once, within {_minutes(tokens.lifetime('invite'))}. Then sign in at "
        f"{settings.public_base_url}/admin/login\n"
    )
    await mailer.send(
        mailer.message(account.email, f"You are invited to {settings.admin_title}", body)
    )
    return account


# -- the API ---------------------------------------------------------------------------------

router = APIRouter(tags=["auth"])  # included by `backend.auth.routes`, under its /auth


class PasswordResetRequest(BaseModel):
    """Who forgot their password."""

    model_config = ConfigDict(extra="forbid")

    email: LoginEmail = Field(max_length=254)


class PasswordResetConfirm(BaseModel):
    """A link's token and the new password."""

    model_config = ConfigDict(extra="forbid")

    token: Annotated[str, Field(min_length=1, max_length=1000)]
    password: Annotated[str, Field(min_length=MIN_PASSWORD_LENGTH, max_length=MAX_PASSWORD_LENGTH)]


RESET_SENT = "If an active account has this email, a link to set a new password is on its way to it"
UNAVAILABLE_RESPONSE: dict[int | str, dict[str, Any]] = {
    503: {"model": Message, "description": "The server has no mail settings"}
}


@router.post(
    "/password-reset",
    operation_id="auth-password-reset",
    name="auth-password-reset",
    summary="Email a link to set a new password",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=Message,
    responses={**BAD_BODY, **UNAVAILABLE_RESPONSE},
)
async def request_password_reset(
    body: PasswordResetRequest,
    request: Request,
    settings: SettingsDep,
    background: BackgroundTasks,
) -> Message:
    """The same answer whether or not the email has an account; the mail is sent after it
    (in a background task), so the answer takes as long either way."""
    # counted as sign-in attempts are, per client IP and per email: a flood of mails to one
    # address, or probing many from one client, is refused with 429
    await throttle(request, "password-reset", account=body.email)
    mailer = mailer_for(settings)
    if mailer is None:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, UNAVAILABLE)
    message = await reset_message(get_database(request), settings, mailer, body.email)
    if message is not None:
        background.add_task(mailer.send_logged, message)
    return Message(detail=RESET_SENT)


@router.post(
    "/password-reset/confirm",
    operation_id="auth-password-reset-confirm",
    name="auth-password-reset-confirm",
    summary="Set a new password with the token of an emailed link",
    response_model=Message,
    responses={
        400: {
            "model": Message,
            "description": "The body cannot be parsed (not JSON text), or the token is invalid, "
            "expired or already used",
        },
    },
)
async def confirm_password_reset(
    body: PasswordResetConfirm, request: Request, settings: SettingsDep
) -> Message:
    """Every token and admin session the user had ends; they sign in with the new password."""
    await throttle(request, "password-reset-confirm")  # per client IP: no guessing tokens
    try:
        await set_password_with_token(
            get_database(request), settings, body.token, body.password, "api"
        )
    except LinkError as exc:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, f"token: {exc}") from None
    except PasswordRefused as exc:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, f"password: {exc}") from None
    return Message(detail="Password changed: sign in with the new password")
