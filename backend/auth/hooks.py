"""The users table's hooks: there is always an active admin, and a new password (or a
deactivation) revokes every token and session issued before it.

The last active admin cannot demote, deactivate or delete themself (or be demoted by
anyone) from any surface: the API, the admin, a seed load, `create-user --update`. Without
it, nobody could manage users any more but through the database itself.

A user's `auth_version` goes up in the same write that changes their password or
deactivates them, on every surface (the API, the admin, a password reset, `create-user
--update`, a seed load): API tokens and admin sessions carry the version they were issued
at, and are refused once it moved on.
"""

import zlib

from sqlalchemy import func, select

from backend.models import Role, User
from backend.writes.errors import refuse
from backend.writes.hooks import Change, Hooks

_users = User.__table__  # type: ignore[attr-defined]
# The server's own bookkeeping of sign-ins: never shown or edited in the admin's forms.
USER_AUTH_COLUMNS = ("auth_version", "admin_session_version")


class UserHooks(Hooks):
    """Refuses a change that would leave no active admin."""

    async def before_update(self, change: Change) -> None:
        assert change.before is not None
        revoke(change)
        if not _active_admin(change.before):
            return
        role = change.values.get("role", change.before["role"])
        active = change.values.get("is_active", change.before["is_active"])
        if Role(role) is Role.admin and active:
            return
        if not await _other_active_admin(change):
            field = "is_active" if Role(role) is Role.admin else "role"
            raise refuse(
                field,
                "the last active admin cannot be demoted or deactivated: make another user "
                "an admin first",
                conflict=True,
            )

    async def before_delete(self, change: Change) -> None:
        assert change.before is not None
        if _active_admin(change.before) and not await _other_active_admin(change):
            raise refuse(
                None,
                "the last active admin cannot be deleted: make another user an admin first",
                conflict=True,
            )


def revoke(change: Change) -> None:
    """Move the user's auth version on when the write sets a password or deactivates them."""
    assert change.before is not None
    deactivated = change.before["is_active"] and change.values.get("is_active") is False
    if "hashed_password" in change.values or deactivated:
        change.values["auth_version"] = int(change.before["auth_version"]) + 1


def _active_admin(row: dict[str, object]) -> bool:
    return bool(row["is_active"]) and Role(str(row["role"])) is Role.admin


async def _other_active_admin(change: Change) -> bool:
    """Whether another active admin exists.

    On PostgreSQL the check holds a lock to the end of the write, so that two admins
    demoting each other at once are checked one after the other: the second sees the first's
    change and is refused. (SQLite has one writer at a time.)
    """
    if change.dialect == "postgresql":
        await change.connection.scalar(select(func.pg_advisory_xact_lock(_ADMINS_LOCK)))
    others = select(_users.c.id).where(
        _users.c.role == Role.admin.value, _users.c.is_active, _users.c.id != change.row_id
    )
    return await change.connection.first(others.limit(1)) is not None


# The advisory lock of "who is an admin" checks (any constant: it names nothing else).
_ADMINS_LOCK = zlib.crc32(b"tablestack: the active admins")
