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

    def __str__(self) -> str:
        return self.email
