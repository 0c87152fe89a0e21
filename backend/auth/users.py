"""Signing users in, and creating or updating them outside a request (the CLI, seeding)."""

from functools import lru_cache

from pydantic import ValidationError
from sqlmodel import func, select
from sqlmodel.ext.asyncio.session import AsyncSession

from backend.auth.passwords import check_password_strength, hash_password, verify_password
from backend.auth.schemas import UserCreate
from backend.config import Settings
from backend.db import Database
from backend.models import Role, User


class UserError(Exception):
    """A user cannot be created or updated as asked; the message says why."""


async def upsert_user(
    settings: Settings,
    *,
    email: str,
    password: str,
    role: Role,
    full_name: str | None = None,
    update: bool = False,
) -> bool:
    """Create the user, or with `update` change an existing one; True when created."""
    try:
        check_password_strength(password)
        payload = UserCreate(email=email, password=password, role=role, full_name=full_name)
    except (ValueError, ValidationError) as exc:
        raise UserError(_first_error(exc)) from None
    database = Database(settings)
    database.start()
    try:
        async with database.api_sessions() as session:
            existing = (await session.exec(select(User).where(User.email == payload.email))).first()
            if existing is not None and not update:
                raise UserError(f"user {payload.email} already exists (use --update to change it)")
            user = existing or User(email=payload.email, hashed_password="")
            user.hashed_password = hash_password(payload.password)
            user.role = payload.role
            user.is_active = True
            if payload.full_name is not None:
                user.full_name = payload.full_name
            session.add(user)
            await session.commit()
            return existing is None
    finally:
        await database.dispose()


def _first_error(exc: ValueError | ValidationError) -> str:
    if isinstance(exc, ValidationError):
        error = exc.errors()[0]
        field = ".".join(str(p) for p in error["loc"])
        return f"{field}: {error['msg']}"
    return str(exc)


async def authenticate(session: AsyncSession, email: str, password: str) -> User | None:
    """The active user with this email and password, or None (same cost either way)."""
    query = select(User).where(func.lower(User.email) == email.strip().lower())
    user = (await session.exec(query)).first()
    if user is None:
        verify_password(password, _dummy_hash())  # keep timing equal for unknown emails
        return None
    if not verify_password(password, user.hashed_password) or not user.is_active:
        return None
    return user


@lru_cache
def _dummy_hash() -> str:
    return hash_password("timing-equaliser-not-a-real-password")
