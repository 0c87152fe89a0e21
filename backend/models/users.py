"""The users table and its roles."""

from datetime import datetime
from enum import StrEnum

from pydantic import EmailStr
from sqlalchemy import Column, Enum
from sqlmodel import Field, SQLModel

from backend.models.base import created_at_field


class Role(StrEnum):
    """What a user may do: each role includes the ones before it."""

    viewer = "viewer"
    editor = "editor"
    admin = "admin"

    @property
    def rank(self) -> int:
        return list(Role).index(self)

    def allows(self, required: "Role") -> bool:
        """True when this role is at least `required`."""
        return self.rank >= required.rank


class User(SQLModel, table=True):
    """Somebody who signs in to the API or the admin."""

    __tablename__ = "users"

    id: int | None = Field(default=None, primary_key=True)
    email: EmailStr = Field(max_length=254, unique=True)
    full_name: str | None = Field(default=None, max_length=200)
    hashed_password: str = Field(max_length=255)
    role: Role = Field(
        default=Role.viewer,
        sa_column=Column(
            Enum(
                Role,
                native_enum=False,
                create_constraint=True,
                length=16,
                name="role",
                validate_strings=True,
            ),
            nullable=False,
            server_default=Role.viewer.value,
        ),
    )
    is_active: bool = Field(default=True)
    created_at: datetime = created_at_field()
    # Bumped when the password changes or the user is deactivated: every access token and
    # admin session carries the value it was issued with, and is refused once it differs.
    auth_version: int = Field(default=1, sa_column_kwargs={"server_default": "1"})
    # Bumped when the user signs out of the admin: every admin session they have ends (their
    # API tokens do not).
    admin_session_version: int = Field(default=1, sa_column_kwargs={"server_default": "1"})

    def __str__(self) -> str:
        return self.email
