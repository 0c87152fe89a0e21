"""Input and output shapes for users: passwords go in, hashes never come out."""

from datetime import datetime
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, EmailStr, Field, WithJsonSchema

from backend.auth.passwords import MIN_PASSWORD_LENGTH
from backend.models.users import Role

# Emails sign users in: stored lower-case so that Boss@Example.com and boss@example.com are one.
LoginEmail = Annotated[EmailStr, AfterValidator(str.lower)]


class UserRead(BaseModel):
    """A user as the API shows it: no password hash."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    email: EmailStr
    full_name: str | None
    role: Role
    is_active: bool
    created_at: datetime


class UserCreate(BaseModel):
    """A new user; the password is hashed before it is stored."""

    model_config = ConfigDict(extra="forbid")

    email: LoginEmail = Field(max_length=254)
    full_name: str | None = Field(default=None, max_length=200)
    password: str = Field(min_length=MIN_PASSWORD_LENGTH, max_length=128)
    role: Role = Role.viewer
    is_active: bool = True


class UserUpdate(BaseModel):
    """A change to a user; a password, when given, replaces the stored hash."""

    model_config = ConfigDict(extra="forbid")

    # Left out, a field keeps its value; the document does not offer null for the ones that
    # cannot be cleared (their columns are NOT NULL, and null is refused).
    # (the validation still takes null, to refuse it later with the column's own message)
    email: Annotated[
        LoginEmail | None, WithJsonSchema({"type": "string", "format": "email", "maxLength": 254})
    ] = Field(default=None, max_length=254)
    full_name: str | None = Field(default=None, max_length=200)
    password: str | None = Field(default=None, min_length=MIN_PASSWORD_LENGTH, max_length=128)
    role: Annotated[
        Role | None, WithJsonSchema({"type": "string", "enum": [role.value for role in Role]})
    ] = None
    is_active: Annotated[bool | None, WithJsonSchema({"type": "boolean"})] = None
