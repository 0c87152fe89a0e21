"""`POST /api/auth/token` (OAuth2 password flow) and `GET /api/auth/me`."""

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Form, Request
from pydantic import BaseModel, Field
from pydantic.json_schema import SkipJsonSchema

from backend.auth import recovery
from backend.auth.dependencies import CurrentUserDep, SettingsDep, unauthorized
from backend.auth.schemas import UserRead
from backend.auth.tokens import create_access_token
from backend.auth.users import authenticate
from backend.crud.errors import BAD_BODY, EVERY_OPERATION, Message
from backend.db import SessionDep
from backend.models import User
from backend.ratelimit import sign_in_attempt
from backend.ratelimit.rejection import TOO_MANY_REQUESTS

router = APIRouter(prefix="/auth", tags=["auth"], responses=EVERY_OPERATION)


class Token(BaseModel):
    """An OAuth2 bearer token response (RFC 6749, section 5.1)."""

    access_token: str
    token_type: Literal["bearer"] = "bearer"
    expires_in: int


class PasswordForm(BaseModel):
    """The OAuth2 password grant's form (RFC 6749, section 4.3.2), as FastAPI's
    `OAuth2PasswordRequestForm` reads it, but documented as a form can send it: its optional
    fields may be left out, never null (a form has no null, only the text "null")."""

    username: str = Field(description="The user's email")
    password: str
    grant_type: str = Field(default="password", pattern="^password$")
    scope: str = ""
    client_id: str | SkipJsonSchema[None] = None
    client_secret: str | SkipJsonSchema[None] = None


UNAUTHORIZED: dict[int | str, dict[str, Any]] = {
    401: {"model": Message, "description": "Missing, invalid or expired credentials"}
}


@router.post(
    "/token",
    operation_id="auth-token",
    name="auth-token",
    summary="Sign in: exchange an email and password for an access token",
    response_model=Token,
    responses={**BAD_BODY, **UNAUTHORIZED, **TOO_MANY_REQUESTS},
)
async def issue_token(
    request: Request,
    form: Annotated[PasswordForm, Form()],
    session: SessionDep,
    settings: SettingsDep,
) -> Token:
    """OAuth2 password flow: `username` is the user's email.

    Attempts are limited per client IP and per account, and wrong passwords lock the account
    for a growing time (429 with `Retry-After`, even for the right password meanwhile).
    """
    attempt = await sign_in_attempt(request, form.username)
    user = await authenticate(session, form.username, form.password)
    if user is None or user.id is None:
        await attempt.failed()
        raise unauthorized("Incorrect email or password")
    await attempt.succeeded()
    return Token(
        access_token=create_access_token(user.id, settings, auth_version=user.auth_version),
        expires_in=settings.access_token_expire_minutes * 60,
    )


@router.get(
    "/me",
    operation_id="auth-me",
    name="auth-me",
    summary="The signed-in user",
    response_model=UserRead,
    responses=UNAUTHORIZED,
)
async def read_me(user: CurrentUserDep) -> User:
    return user


# `/api/auth/password-reset` and its confirmation
router.include_router(recovery.router)
