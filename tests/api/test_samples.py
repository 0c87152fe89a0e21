"""The sample data of the contract suite: what `SampleFactory` assumes of polyfactory.

Each test pins one assumption `tests/api/conftest.py` makes, so that a polyfactory upgrade that
breaks one fails here, by name, rather than somewhere in the contract suite.
"""

import re
from datetime import date, time, timedelta
from decimal import Decimal
from typing import Annotated, Any

import pytest
from pydantic import AwareDatetime, BaseModel, EmailStr, Field

from backend.crud.schemas import derive_schemas
from backend.registry import registry
from tests.api.conftest import SampleFactory, sample_factory


class Shapes(BaseModel):
    email: EmailStr = Field(max_length=254)
    code: str = Field(max_length=6, pattern=r"^[A-Z]{2}-[0-9]{3}$")
    amount: Decimal = Field(max_digits=6, decimal_places=2, ge=0)
    note: str | None = None
    count: int = Field(default=0, ge=0, le=10)
    duration: timedelta | None = None
    tags: list[Annotated[str, Field(max_length=5)]] = Field(default_factory=list)
    at: AwareDatetime
    on: date
    opens: time


def test_dates_and_times_come_from_the_seed_not_from_today() -> None:
    sample = build(3)
    assert sample["at"].endswith("Z")
    assert 1900 <= int(sample["at"][:4]) <= 2100
    assert 1900 <= int(sample["on"][:4]) <= 2100
    assert len({build(seed)["opens"] for seed in range(5)}) == 5


def build(seed: int) -> dict[str, Any]:
    SampleFactory.seed(seed)
    built: dict[str, Any] = sample_factory(Shapes).build().model_dump(mode="json")
    return built


def test_every_field_is_filled_within_its_constraints() -> None:
    for seed in range(30):
        sample = build(seed)
        Shapes.model_validate(sample)  # an EmailStr with max_length builds too
        assert re.fullmatch(r"[A-Z]{2}-[0-9]{3}", sample["code"])
        assert sample["note"] is not None  # optional fields and defaults are generated too
        assert sample["duration"] is not None
        assert sample["tags"]


def test_durations_are_not_all_zero() -> None:
    assert len({build(seed)["duration"] for seed in range(10)}) > 1


def test_a_seed_gives_the_same_samples() -> None:
    assert build(7) == build(7)
    assert build(7) != build(8)


@pytest.mark.parametrize("name", [resource.name for resource in registry])
def test_every_create_schema_gets_valid_samples(name: str) -> None:
    create = derive_schemas(registry.get(name)).create
    SampleFactory.seed(1)
    for _ in range(20):
        create.model_validate(sample_factory(create).build().model_dump(mode="json"))
