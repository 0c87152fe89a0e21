"""Shared column helpers for the tables."""

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func
from sqlmodel import Field


def utcnow() -> datetime:
    """Now, timezone-aware, in UTC."""
    return datetime.now(UTC)


def created_at_field() -> Any:
    """A `created_at` column: set by the application or, for bulk inserts, by the database."""
    return Field(
        default_factory=utcnow,
        sa_column_kwargs={"server_default": func.now(), "nullable": False},
    )


def updated_at_field() -> Any:
    """An `updated_at` column, refreshed on every ORM or Core update."""
    return Field(
        default_factory=utcnow,
        sa_column_kwargs={"server_default": func.now(), "onupdate": utcnow, "nullable": False},
    )
