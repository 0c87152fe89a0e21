"""`POST /api/auth/token` (OAuth2 password flow) and `GET /api/auth/me`."""

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends
from fastapi.security import OAuth2PasswordRequestForm
from pydantic import BaseModel

from backend.auth.dependencies import CurrentUserDep, SettingsDep, unauthorized
from backend.auth.schemas import UserRead
from backend.auth.tokens import create_access_token
from backend.auth.users import authenticate
from backend.crud.errors import BAD_BODY, EVERY_OPERATION, Message
from backend.db import SessionDep
from backend.models import User

router = APIRouter(prefix="/auth", tags=["auth"], responses=EVERY_OPERATION)


class Token(BaseModel):
    """An OAuth2 bearer token response (RFC 6749, section 5.1)."""

    access_token: str
    token_type: Literal["bearer"] = "bearer"
    expires_in: int


UNAUTHORIZED: dict[int | str, dict[str, Any]] = {
    401: {"model": Message, "description": "Missing, invalid or expired credentials"}
}


@router.post(
    "/token",
    operation_id="auth-token",
    name="auth-token",
    summary="Sign in: exchange an email and password for an access token",
    response_model=Token,
    responses={**BAD_BODY, **UNAUTHORIZED},
)
async def issue_token(
    form: Annotated[OAuth2PasswordRequestForm, Depends()],
    session: SessionDep,
    settings: SettingsDep,
) -> Token:
    """OAuth2 password flow: `username` is the user's email."""
    user = await authenticate(session, form.username, form.password)
    if user is None or user.id is None:
        raise unauthorized("Incorrect email or password")
    return Token(
        access_token=create_access_token(user.id, settings),
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
