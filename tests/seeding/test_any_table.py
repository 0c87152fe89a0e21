"""Seeding over every table shape and column type: the fixture app's tables, on both databases.

A hand-written seed set (`fixture_set/`) covers a tree written children first, UUID and
client-chosen keys, references to them, and one column of every type; fake rows cover every
registered table. Both must load, reload without change, and dump to files that load back into
the same data and dump again to the same files.
"""

import datetime as dt
import random
import shutil
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import TypeAdapter
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from backend.seeding.dumper import dump_set
from backend.seeding.fake import Pools, _TableFaker, generate_fake
from backend.seeding.format import SeedError
from backend.seeding.loader import load_set
from backend.seeding.tables import seed_table, seed_tables
from tests.seeding.conftest import natural_snapshot, row_counts, snapshot

FIXTURE_SET = Path(__file__).parent / "fixture_set"


def dump_files(directory: Path) -> dict[str, str]:
    """Each file of a dumped set without its comment header (which carries the time)."""
    return {
        path.name: "".join(
            line for line in path.read_text().splitlines(keepends=True) if not line.startswith("#")
        )
        for path in sorted(directory.glob("*.yaml"))
    }


async def rows_of(engine: AsyncEngine, name: str) -> dict[Any, dict[str, Any]]:
    """The rows of a table by natural key (a scalar for a one-column key)."""
    table = seed_table(name)
    async with engine.connect() as connection:
        result = await connection.execute(select(table.table))
        rows = [dict(row) for row in result.mappings()]
    keys = table.natural_key
    return {(row[keys[0]] if len(keys) == 1 else tuple(row[k] for k in keys)): row for row in rows}


async def assert_round_trip(
    source: AsyncEngine, target: AsyncEngine, tmp_path: Path
) -> dict[str, str]:
    """Dump `source`, load the dump into the empty `target`, dump that: the same files."""
    first = tmp_path / "first"
    await dump_set(source, first)
    await load_set(target, first)
    second = tmp_path / "second"
    await dump_set(target, second)
    files = dump_files(first)
    assert dump_files(second) == files
    source_rows, target_rows = await natural_snapshot(source), await natural_snapshot(target)
    for name in source_rows:  # table by table, for a readable failure
        assert target_rows[name] == source_rows[name], name
    # and the dump is itself a seed set that loads again without a change
    before = await snapshot(target)
    assert not (await load_set(target, first)).changed
    assert await snapshot(target) == before
    return files


async def test_the_fixture_set_loads_every_shape_and_type(seed_engine: AsyncEngine) -> None:
    report = await load_set(seed_engine, FIXTURE_SET)
    assert {name: t.created for name, t in report.tables.items()} == {
        "fx_nodes": 5, "fx_currencies": 2, "fx_warehouses": 3, "fx_bins": 3, "fx_specimens": 3,
    }  # fmt: skip

    nodes = await rows_of(seed_engine, "fx_nodes")
    by_id = {row["id"]: name for name, row in nodes.items()}
    parents = {name: by_id.get(row["parent_id"]) for name, row in nodes.items()}
    assert parents == {
        "leaf": "branch", "branch": "root", "root": None, "sibling": "root", "other-root": None,
    }  # fmt: skip

    warehouses = await rows_of(seed_engine, "fx_warehouses")
    assert all(isinstance(row["id"], uuid.UUID) for row in warehouses.values())
    assert len({row["id"] for row in warehouses.values()}) == 3
    assert warehouses[("DE-100", "Bavaria")]["node_id"] == nodes["leaf"]["id"]
    assert warehouses[("DE-100", "Bavaria")]["updated_at"] == dt.datetime(
        2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC
    )
    bins = await rows_of(seed_engine, "fx_bins")
    north = warehouses[("NL-001", "North")]["id"]
    assert bins[(north, "A1")]["capacity"] == 100  # the Python default

    specimens = await rows_of(seed_engine, "fx_specimens")
    quartz, fern, owl = specimens["quartz-1"], specimens["fern-2"], specimens["owl-3"]
    randstad = warehouses[("NL-001", "Randstad")]["id"]
    assert quartz["bin_id"] == bins[(randstad, "A1")]["id"]
    assert quartz["currency_code"] == "EUR"
    assert quartz["notes"] == "Two lines\nof notes.\n"
    assert quartz["amount"] == Decimal("12.345") and quartz["ratio"] == 0.25
    assert quartz["found_on"] == dt.date(2024, 2, 29)
    assert quartz["opens_at"] == dt.time(12, 30)  # written unquoted: YAML's base-60 45000
    assert quartz["seen_at"] == dt.datetime(2026, 3, 1, 11, tzinfo=dt.UTC)
    assert quartz["duration"] == dt.timedelta(days=1, hours=2, minutes=30)
    assert quartz["token"] == uuid.UUID("0b5c4b1e-6f7e-4a55-9a3b-2c1d0e9f8a7b")
    assert quartz["kind"].value == "mineral" and quartz["grade"] == "high"
    assert quartz["attributes"] == {
        "hardness": 7, "colors": ["clear", "rose"], "nested": {"ok": True, "none": None},
    }  # fmt: skip
    assert quartz["readings"] == [1.5, 2, None, "x"]
    assert quartz["labels"] == ["hard", "shiny"]
    assert quartz["photo"] == b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01"
    assert quartz["created_at"] == dt.datetime(2025, 6, 1, 8, tzinfo=dt.UTC)
    # defaults: Python (token, grade, source, attributes, labels), and the server's created_at
    assert isinstance(fern["token"], uuid.UUID) and fern["token"] != owl["token"]
    assert (fern["grade"], fern["source"], fern["attributes"], fern["labels"]) == (
        "low", "field", {}, [],
    )  # fmt: skip
    assert fern["opens_at"] == dt.time(7, 5, 9, 250000)
    assert fern["duration"] == -dt.timedelta(minutes=1)
    assert fern["readings"] is None and fern["photo"] is None
    assert owl["photo"] == b"" and owl["readings"] == []
    assert owl["seen_at"] == dt.datetime(2000, 1, 1, 7, 59, 59, 999999, tzinfo=dt.UTC)


async def test_the_fixture_set_reloads_unchanged_and_dumps_identically(
    seed_engine: AsyncEngine, other_engine: AsyncEngine, tmp_path: Path
) -> None:
    await load_set(seed_engine, FIXTURE_SET)
    before = await snapshot(seed_engine)
    again = await load_set(seed_engine, FIXTURE_SET)
    assert not again.changed and all(not t.created for t in again.tables.values())
    assert await snapshot(seed_engine) == before  # same ids, updated_at, tokens

    files = await assert_round_trip(seed_engine, other_engine, tmp_path)
    nodes = yaml.safe_load(files["fx_nodes.yaml"])
    assert [n["name"] for n in nodes] == ["root", "branch", "leaf", "sibling", "other-root"]
    currencies = yaml.safe_load(files["fx_currencies.yaml"])
    assert currencies[0] == {"code": "EUR", "name": "Euro"}  # the client-chosen key is written
    warehouses = yaml.safe_load(files["fx_warehouses.yaml"])
    assert all("id" not in row for row in warehouses)  # a UUID key never is
    specimens = {row["slug"]: row for row in yaml.safe_load(files["fx_specimens.yaml"])}
    quartz = specimens["quartz-1"]
    assert quartz["bin"] == {"warehouse": {"code": "NL-001", "region": "Randstad"}, "label": "A1"}
    assert quartz["photo"].startswith(b"\x89PNG") and quartz["opens_at"] == "12:30:00"
    assert quartz["duration"] == "P1DT2H30M" and quartz["kind"] == "mineral"
    assert "!!binary" in files["fx_specimens.yaml"]


async def test_fake_rows_of_every_table_dump_and_reload_identically(
    seed_engine: AsyncEngine, other_engine: AsyncEngine, tmp_path: Path
) -> None:
    await generate_fake(seed_engine, rows=25, random_seed=11)
    await generate_fake(seed_engine, rows=25, random_seed=12)  # more, under existing rows
    nodes = await rows_of(seed_engine, "fx_nodes")
    assert any(row["parent_id"] is not None for row in nodes.values())
    # a parent with a higher id than its child: the dump must still write it first. Hang the
    # first root under the last row that has a parent and is not below that root (no cycle).
    parent_of = {row["id"]: row["parent_id"] for row in nodes.values()}

    def ancestors(node: int) -> list[int]:
        chain = []
        while (node := parent_of[node]) is not None:
            chain.append(node)
        return chain

    first = min(parent_of)
    assert parent_of[first] is None  # the first rows of an empty tree are roots
    last = max(n for n in parent_of if ancestors(n) and first not in ancestors(n) + [n])
    async with seed_engine.begin() as connection:
        table = seed_table("fx_nodes").table
        await connection.execute(update(table).where(table.c.id == first).values(parent_id=last))
    counts = await row_counts(seed_engine)
    assert all(counts[t.table.name] == 50 for t in seed_tables())

    files = await assert_round_trip(seed_engine, other_engine, tmp_path)
    written = yaml.safe_load(files["fx_nodes.yaml"])
    position = {row["name"]: i for i, row in enumerate(written)}
    for row in written:
        if "parent" in row:
            assert position[row["parent"]] < position[row["name"]], row


async def test_fake_values_have_each_columns_type(seed_engine: AsyncEngine) -> None:
    """Beyond the schema check of every fake row (test_dump_and_fake): the JSON shapes follow the
    annotations, and the UUID key that COPY would have left empty is filled."""
    await generate_fake(seed_engine, rows=200, random_seed=3)
    nodes = list((await rows_of(seed_engine, "fx_nodes")).values())
    roots = [row for row in nodes if row["parent_id"] is None]
    assert 20 <= len(roots) < 100  # a tree grows in one run: the first tenth are roots
    specimens = list((await rows_of(seed_engine, "fx_specimens")).values())
    assert all(isinstance(row["attributes"], dict) for row in specimens)
    assert all(row["readings"] is None or isinstance(row["readings"], list) for row in specimens)
    assert all(all(isinstance(label, str) for label in row["labels"]) for row in specimens)
    assert any(row["attributes"] for row in specimens)
    for column, kind in [
        ("photo", bytes), ("opens_at", dt.time), ("duration", dt.timedelta),
        ("seen_at", dt.datetime), ("ratio", float),
    ]:  # fmt: skip
        values = [row[column] for row in specimens]
        assert all(v is None or isinstance(v, kind) for v in values), column
        assert any(v is not None for v in values), column
    assert len({row["token"] for row in specimens}) == 200
    assert {row["kind"].value for row in specimens} == {"mineral", "plant", "animal"}
    assert {row["grade"] for row in specimens} == {"low", "high"}
    warehouses = await rows_of(seed_engine, "fx_warehouses")
    assert len({row["id"] for row in warehouses.values()}) == 200
    currencies = await rows_of(seed_engine, "fx_currencies")
    assert len(currencies) == 200 and all(len(code) == 3 for code in currencies)


def _edit(file: str, change: Any) -> Any:
    def apply(directory: Path) -> None:
        path = directory / file
        rows = yaml.safe_load(path.read_text())
        change(rows)
        path.write_text(yaml.safe_dump(rows, sort_keys=False))

    return apply


def _set(file: str, index: int, **fields: Any) -> Any:
    return _edit(file, lambda rows: rows[index].update(fields))


def _text(file: str, old: str, new: str) -> Any:
    def apply(directory: Path) -> None:
        path = directory / file
        text = path.read_text()
        assert old in text
        path.write_text(text.replace(old, new, 1))

    return apply


BROKEN = {
    "wrong type": (
        _set("fx_specimens.yaml", 1, found_on="yesterday"),
        "fx_specimens.yaml row 2 (slug=fern-2): field found_on: Input should be a valid date",
    ),
    "pattern": (
        _set("fx_specimens.yaml", 0, country_code="br"),
        "fx_specimens.yaml row 1 (slug=quartz-1): field country_code: "
        "String should match pattern '^[A-Z]{2}$'",
    ),
    "native enum": (
        _set("fx_specimens.yaml", 2, kind="fungus"),
        "fx_specimens.yaml row 3 (slug=owl-3): field kind: "
        "Input should be 'mineral', 'plant' or 'animal'",
    ),
    "string enum": (
        _set("fx_specimens.yaml", 2, grade="medium"),
        "fx_specimens.yaml row 3 (slug=owl-3): field grade: Input should be 'low' or 'high'",
    ),
    "bytes as plain text": (
        _set("fx_specimens.yaml", 2, photo="aGVsbG8="),
        "fx_specimens.yaml row 3 (slug=owl-3): field photo: expected bytes, written as "
        "!!binary followed by base64",
    ),
    "a date inside JSON": (
        _text("fx_specimens.yaml", "hardness: 7", "hardness: 2024-01-01"),
        "fx_specimens.yaml row 1 (slug=quartz-1): field attributes.hardness: 2024-01-01 (date) "
        "is not JSON data: quote it to store it as text",
    ),
    "a set inside JSON": (
        _text("fx_specimens.yaml", "readings: [1.5, 2, null, x]", "readings: !!set {a}"),
        "fx_specimens.yaml row 1 (slug=quartz-1): field readings: {'a'} (set) is not JSON data",
    ),
    "a time with an offset": (
        _set("fx_specimens.yaml", 1, opens_at="07:05:09+01:00"),
        "fx_specimens.yaml row 2 (slug=fern-2): field opens_at: a time of day without a UTC "
        "offset: the column stores no time zone",
    ),
    "a malformed UUID": (
        _set("fx_specimens.yaml", 1, token="nope"),
        "fx_specimens.yaml row 2 (slug=fern-2): field token: Input should be a valid UUID",
    ),
    "a malformed duration": (
        _set("fx_specimens.yaml", 1, duration="soon"),
        "fx_specimens.yaml row 2 (slug=fern-2): field duration: Input should be a valid timedelta",
    ),
    "too many decimal places": (
        _set("fx_specimens.yaml", 1, amount=1.2345),
        "fx_specimens.yaml row 2 (slug=fern-2): field amount: "
        "Decimal input should have no more than 3 decimal places",
    ),
    "a composite key written as one value": (
        _set("fx_specimens.yaml", 1, bin="B7"),
        "fx_specimens.yaml row 2 (slug=fern-2): field bin: "
        "the fx_bins key is a mapping of warehouse, label, not B7",
    ),
    "unknown parent": (
        _set("fx_nodes.yaml", 3, parent="ghost"),
        "fx_nodes.yaml row 4 (name=sibling): field parent: no fx_nodes row with name=ghost",
    ),
    "its own parent": (
        _set("fx_nodes.yaml", 2, parent="root"),
        "fx_nodes.yaml row 3 (name=root): field parent: a row cannot be its own parent",
    ),
    "a cycle in the file": (
        _set("fx_nodes.yaml", 2, parent="leaf"),
        "fx_nodes.yaml row 1 (name=leaf): field parent: a cycle in the file: "
        "row 1 (leaf) -> row 2 (branch) -> row 3 (root) -> row 1 (leaf)",
    ),
    "unknown warehouse": (
        _set("fx_bins.yaml", 0, warehouse={"code": "NL-001", "region": "South"}),
        "fx_bins.yaml row 1 (warehouse={code: NL-001, region: South}, label=A1): "
        "field warehouse: no fx_warehouses row with code=NL-001, region=South",
    ),
    "a UUID id": (
        _set("fx_warehouses.yaml", 1, id="0b5c4b1e-6f7e-4a55-9a3b-2c1d0e9f8a7b"),
        "fx_warehouses.yaml row 2 (code=NL-001, region=North): field id: seed files carry no "
        "ids: rows are matched by their natural key (code, region)",
    ),
    "unknown currency": (
        _set("fx_specimens.yaml", 0, currency_code="XXX"),
        "fx_specimens.yaml row 1 (slug=quartz-1): field currency_code: "
        "no fx_currencies row with code=XXX",
    ),
}


@pytest.mark.parametrize("case", list(BROKEN), ids=list(BROKEN))
async def test_a_broken_fixture_row_is_one_line_and_writes_nothing(
    seed_engine: AsyncEngine, tmp_path: Path, case: str
) -> None:
    broken = tmp_path / "broken"
    shutil.copytree(FIXTURE_SET, broken)
    change, message = BROKEN[case]
    change(broken)
    with pytest.raises(SeedError) as caught:
        await load_set(seed_engine, broken)
    assert str(caught.value).startswith(f"{broken}/{message}")
    assert "\n" not in str(caught.value) and "INSERT" not in str(caught.value)
    assert set((await row_counts(seed_engine)).values()) == {0}


async def test_moving_a_stored_node_under_its_descendant_is_refused(
    seed_engine: AsyncEngine, tmp_path: Path
) -> None:
    await load_set(seed_engine, FIXTURE_SET)
    before = await snapshot(seed_engine)
    moved = tmp_path / "moved"
    moved.mkdir()
    (moved / "fx_nodes.yaml").write_text("- name: other-root\n- name: root\n  parent: leaf\n")
    with pytest.raises(SeedError) as caught:
        await load_set(seed_engine, moved)
    assert str(caught.value) == (
        f"{moved}/fx_nodes.yaml row 2 (name=root): field parent: "
        "leaf is a descendant of this row: a row cannot be moved under itself"
    )
    assert await snapshot(seed_engine) == before
    # moving a subtree elsewhere is fine, also under a row that comes later in the file
    (moved / "fx_nodes.yaml").write_text(
        "- name: branch\n  parent: new-root\n- name: new-root\n  parent: other-root\n"
    )
    report = await load_set(seed_engine, moved)
    assert (report.tables["fx_nodes"].created, report.tables["fx_nodes"].updated) == (1, 1)
    nodes = await rows_of(seed_engine, "fx_nodes")
    assert nodes["branch"]["parent_id"] == nodes["new-root"]["id"]
    assert nodes["new-root"]["parent_id"] == nodes["other-root"]["id"]


async def test_a_dump_refuses_a_cycle_and_leaves_the_folder_alone(
    seed_engine: AsyncEngine, tmp_path: Path
) -> None:
    await load_set(seed_engine, FIXTURE_SET)
    target = tmp_path / "mine"
    await dump_set(seed_engine, target)
    kept = dump_files(target)
    nodes = await rows_of(seed_engine, "fx_nodes")
    table = seed_table("fx_nodes").table
    async with seed_engine.begin() as connection:  # only possible behind the API's back
        await connection.execute(
            update(table).where(table.c.name == "root").values(parent_id=nodes["leaf"]["id"])
        )
    with pytest.raises(SeedError, match=r"cannot dump fx_nodes: rows refer to each other in a"):
        await dump_set(seed_engine, target, force=True)
    assert dump_files(target) == kept


async def test_a_value_no_database_stores_names_the_row(
    seed_engine: AsyncEngine, tmp_path: Path
) -> None:
    """Past the schema, the write service refuses what a database cannot store (PostgreSQL
    refuses a NUL character in text, SQLite would keep it): the same line on both, no SQL."""
    broken = tmp_path / "broken"
    shutil.copytree(FIXTURE_SET, broken)
    _set("fx_specimens.yaml", 0, notes="a\x00b")(broken)
    with pytest.raises(SeedError) as caught:
        await load_set(seed_engine, broken)
    assert str(caught.value) == (
        f"{broken}/fx_specimens.yaml row 1 (slug=quartz-1): field notes: "
        "must not contain NUL characters"
    )
    assert set((await row_counts(seed_engine)).values()) == {0}


@pytest.mark.parametrize(
    "annotation",
    [
        dict[str, Any],
        list[Any] | None,
        list[str],
        list[int],
        dict[str, float],
        list[dict[str, bool]],
    ],
    ids=str,
)
def test_fake_json_follows_the_annotation(annotation: Any) -> None:
    """JSON columns typed more narrowly than the fixture's get values their schema accepts."""
    faker = _TableFaker(None, seed_table("fx_specimens"), random.Random(1), Pools(1))  # type: ignore[arg-type]
    make = faker._json_maker(annotation, 20)
    values = [make() for _ in range(200)]
    adapter: TypeAdapter[Any] = TypeAdapter(annotation)
    assert [adapter.validate_python(v, strict=True) for v in values] == values
    assert any(values)  # not all empty
