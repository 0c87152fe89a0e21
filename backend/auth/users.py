"""Signing users in, and creating or updating them outside a request (the CLI, seeding).

Argon2 costs ~0.2 s of CPU per hash or check, by design. Both run in a worker thread
(argon2-cffi releases the GIL), so a sign-in never stalls the event loop that serves every
other request meanwhile.
"""

import threading
from functools import lru_cache

from pydantic import ValidationError
from sqlalchemy import select as core_select
from sqlmodel import func, select
from sqlmodel.ext.asyncio.session import AsyncSession
from starlette.concurrency import run_in_threadpool

from backend.auth.passwords import (
    check_password_strength,
    hash_password,
    verify_password_off_loop,
)
from backend.auth.schemas import UserCreate
from backend.config import Settings
from backend.db import Database
from backend.models import Role, User
from backend.registry import registry
from backend.writes.actor import CLI
from backend.writes.errors import WriteError
from backend.writes.service import writer_for


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
    """Create the user, or with `update` change an existing one; True when created.

    Written through the users' Writer as the `cli` actor: the history records the change
    (the password as "changed"), and the password is hashed off the event loop.
    """
    try:
        check_password_strength(password)
        payload = UserCreate(email=email, password=password, role=role, full_name=full_name)
    except (ValueError, ValidationError) as exc:
        raise UserError(_first_error(exc)) from None
    database = Database(settings)
    database.start()
    try:
        writer = writer_for(registry.for_model(User), database.engine.dialect.name)
        users = writer.table
        async with database.api_connection() as db:
            existing = await db.scalar(
                core_select(users.c.id).where(users.c.email == payload.email)
            )
            try:
                if existing is None:
                    await writer.create(db, payload.model_dump(), CLI)
                    return True
                if not update:
                    raise UserError(
                        f"user {payload.email} already exists (use --update to change it)"
                    )
                changes = payload.model_dump(include={"password", "role", "full_name"})
                if payload.full_name is None:
                    del changes["full_name"]
                await writer.update(db, existing, {**changes, "is_active": True}, CLI)
                return False
            except WriteError as exc:
                raise UserError(_write_problem(payload.email, exc)) from None
    finally:
        await database.dispose()


def _write_problem(email: str, exc: WriteError) -> str:
    problem = exc.problems[0]
    if problem.kind == "unique":  # created by someone else meanwhile
        return f"user {email} already exists (use --update to change it)"
    if problem.field is None or problem.message.startswith(f"{problem.field}:"):
        return problem.message
    return f"{problem.field}: {problem.message}"


def _first_error(exc: ValueError | ValidationError) -> str:
    if isinstance(exc, ValidationError):
        error = exc.errors()[0]
        field = ".".join(str(p) for p in error["loc"])
        return f"{field}: {error['msg']}"
    return str(exc)


async def authenticate(session: AsyncSession, email: str, password: str) -> User | None:
    """The active user with this email and password, or None (same cost either way).

    The password is checked in a worker thread: the event loop keeps serving meanwhile. The
    session's (read-only) transaction ends first, so the check holds no pooled connection:
    twenty sign-ins at once must not take the connections other requests wait for.
    """
    query = select(User).where(func.lower(User.email) == email.strip().lower())
    user = (await session.exec(query)).first()
    await session.commit()  # the session keeps `user` loaded (expire_on_commit=False)
    if user is None:
        # check against a stand-in hash, so an unknown email takes as long as a wrong password
        await verify_password_off_loop(password, await _dummy_hash_off_loop())
        return None
    if not await verify_password_off_loop(password, user.hashed_password):
        return None
    return user if user.is_active else None


async def _dummy_hash_off_loop() -> str:
    return await run_in_threadpool(_dummy_hash)


_DUMMY_LOCK = threading.Lock()


def _dummy_hash() -> str:
    """The stand-in hash, made once per process (in a worker thread: it costs a full hash)."""
    with _DUMMY_LOCK:  # concurrent first sign-ins wait for one hash rather than each making one
        return _make_dummy_hash()


@lru_cache(maxsize=1)
def _make_dummy_hash() -> str:
    return hash_password("timing-equaliser-not-a-real-password")
