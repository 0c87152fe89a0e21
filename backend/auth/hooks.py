"""The users table's hooks: there is always an active admin.

The last active admin cannot demote, deactivate or delete themself (or be demoted by
anyone) from any surface: the API, the admin, a seed load, `create-user --update`. Without
it, nobody could manage users any more but through the database itself.
"""

import zlib

from sqlalchemy import func, select

from backend.models import Role, User
from backend.writes.errors import refuse
from backend.writes.hooks import Change, Hooks

_users = User.__table__  # type: ignore[attr-defined]


class UserHooks(Hooks):
    """Refuses a change that would leave no active admin."""

    async def before_update(self, change: Change) -> None:
        assert change.before is not None
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
            )

    async def before_delete(self, change: Change) -> None:
        assert change.before is not None
        if _active_admin(change.before) and not await _other_active_admin(change):
            raise refuse(
                None, "the last active admin cannot be deleted: make another user an admin first"
            )


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
