"""Tables covering every column type and table shape the generated stack promises to support.

Test-only: registered through `APPS=tests.fixture_app`, the same machinery a user's own tables
go through, so that the contract, admin, seeding, fake-data and migration suites run over each
cell of the matrix on SQLite and PostgreSQL. Written the way a backend developer would write
them, with no Tablestack-specific code beyond `registry.register`.
"""

import enum
import uuid
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    Column,
    Enum,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlmodel import Field, SQLModel

from backend.models.base import created_at_field, updated_at_field


class Node(SQLModel, table=True):
    """A tree: each node may have a parent node of the same table (no Relationship declared)."""

    __tablename__ = "fx_nodes"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=80, min_length=1, unique=True)
    parent_id: int | None = Field(
        default=None, foreign_key="fx_nodes.id", ondelete="RESTRICT", index=True
    )

    def __str__(self) -> str:
        return self.name


class Warehouse(SQLModel, table=True):
    """A UUID primary key, a composite unique key, a nullable foreign key."""

    __tablename__ = "fx_warehouses"
    __table_args__ = (UniqueConstraint("code", "region"),)

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    code: str = Field(max_length=6, schema_extra={"pattern": r"^[A-Z]{2}-[0-9]{3}$"})
    region: str = Field(max_length=40, min_length=1)
    node_id: int | None = Field(default=None, foreign_key="fx_nodes.id", index=True)
    updated_at: datetime = updated_at_field()

    def __str__(self) -> str:
        return f"{self.code} ({self.region})"


class Bin(SQLModel, table=True):
    """A BIGINT primary key and a non-null foreign key to a UUID key."""

    __tablename__ = "fx_bins"
    __table_args__ = (UniqueConstraint("warehouse_id", "label"),)

    id: int | None = Field(
        default=None, sa_column=Column(BigInteger, primary_key=True, autoincrement=True)
    )
    warehouse_id: uuid.UUID = Field(foreign_key="fx_warehouses.id", ondelete="CASCADE", index=True)
    label: str = Field(max_length=20, min_length=1)
    capacity: int = Field(default=100, ge=1, le=10_000)

    def __str__(self) -> str:
        return self.label


class Currency(SQLModel, table=True):
    """A string primary key that the client chooses."""

    __tablename__ = "fx_currencies"

    code: str = Field(primary_key=True, max_length=3, schema_extra={"pattern": r"^[A-Z]{3}$"})
    name: str = Field(max_length=60, min_length=1)

    def __str__(self) -> str:
        return self.code


class SpecimenKind(enum.Enum):
    """A plain Enum: a native enum type on PostgreSQL."""

    mineral = "mineral"
    plant = "plant"
    animal = "animal"


class Grade(StrEnum):
    """A StrEnum stored as the project's VARCHAR + CHECK."""

    low = "low"
    high = "high"


class Specimen(SQLModel, table=True):
    """One column of every supported type, with defaults of both kinds."""

    __tablename__ = "fx_specimens"
    __table_args__ = (CheckConstraint("amount >= 0", name="amount_non_negative"),)

    id: int | None = Field(default=None, primary_key=True)
    slug: str = Field(
        max_length=40, min_length=1, unique=True, schema_extra={"pattern": r"^[a-z][a-z0-9-]*$"}
    )
    country_code: str = Field(max_length=2, schema_extra={"pattern": r"^[A-Z]{2}$"})
    notes: str | None = Field(default=None, sa_type=Text)
    count: int = Field(default=0, ge=0)
    ratio: float | None = Field(default=None, ge=-1e9, le=1e9)
    amount: Decimal = Field(max_digits=12, decimal_places=3, ge=0)
    flag: bool = Field(default=False)
    found_on: date
    opens_at: time | None = None
    seen_at: datetime | None = None
    duration: timedelta | None = None
    token: uuid.UUID = Field(default_factory=uuid.uuid4)
    kind: SpecimenKind
    grade: Grade = Field(
        default=Grade.low,
        sa_column=Column(
            Enum(Grade, native_enum=False, create_constraint=True, length=8, name="grade"),
            nullable=False,
            server_default=Grade.low.value,
        ),
    )
    attributes: dict[str, Any] = Field(
        default_factory=dict, sa_type=JSON().with_variant(JSONB(), "postgresql")
    )
    readings: list[Any] | None = Field(default=None, sa_type=JSON)
    labels: list[str] = Field(
        default_factory=list, sa_type=JSON().with_variant(ARRAY(String(20)), "postgresql")
    )
    photo: bytes | None = Field(default=None, sa_type=LargeBinary)
    source: str = Field(
        default="field", max_length=20, sa_column_kwargs={"server_default": "field"}
    )
    currency_code: str | None = Field(default=None, foreign_key="fx_currencies.code", index=True)
    bin_id: int | None = Field(default=None, foreign_key="fx_bins.id", index=True)
    created_at: datetime = created_at_field()

    def __str__(self) -> str:
        return self.slug
