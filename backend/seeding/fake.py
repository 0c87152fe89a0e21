"""Fake rows at volume for every registered table, driven by the tables' own definitions.

Values follow each column's type and constraints (lengths, bounds, decimal places, enums,
patterns, nullability, uniques, foreign keys); names pick realistic content (emails, people,
phones, product names, slugs, codes), and a pattern that realistic content does not match is
honoured by drawing from the pattern itself (rstr, seeded like everything else). Every column
type has a generator: text, numbers, dates, times, durations, UUIDs, enums, JSON mappings and
lists, arrays of strings, bytes. A reference to the same table (a tree's parent) is drawn from
the rows written before the batch: a tree is made in generations, so the first rows of an
empty tree are its roots. Python-side
defaults (a UUID primary key's `default_factory`) are applied here, since COPY skips them;
server defaults are left to the database. Speed comes from four choices:
- Faker runs only to fill small pools of words, names and sentences; rows combine pool
  entries, so a row costs a few list lookups, not a dozen Faker calls;
- values are generated a column at a time for a whole batch (`random.choices`);
- batches go in with binary COPY on PostgreSQL (asyncpg), Core `insert(table)` executemany
  on SQLite, never one ORM object a row;
- the next batch is generated in a thread while the database takes the current one.
Validation: the first rows of every table, and every 100th after, go through the same create
schema as the API (a generator bug fails loudly); the database checks every row's uniques,
foreign keys and check constraints.
History: the load is one `loaded` entry per table (actor `fake`, `{"rows": n}`), written in
the load's transaction (`backend.writes.bulk`), not one entry per row.
Users: fake rows are never admins (a column of `Role`s draws viewers and editors only), and
none can sign in - their password hash is the hash of no password - unless the load is given
a password for them (`--fake-password`).
"""

import asyncio
import base64
import datetime as dt
import random
import re
import secrets
import types
import typing
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import annotated_types
import asyncpg
from faker import Faker
from pydantic import ValidationError
from sqlalchemy import (
    ARRAY,
    JSON,
    Boolean,
    Column,
    Date,
    DateTime,
    Enum,
    Float,
    Integer,
    Interval,
    LargeBinary,
    Numeric,
    String,
    Table,
    Text,
    Time,
    Uuid,
    select,
)
from sqlalchemy import func as sa_func
from sqlalchemy import insert as sa_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.types import TypeDecorator

from backend.auth.passwords import MIN_PASSWORD_LENGTH, hash_password
from backend.integrity import describe_integrity_error
from backend.models import Role
from backend.registry import data_columns
from backend.seeding.format import SeedError
from backend.seeding.patterns import PatternStrings
from backend.seeding.progress import Progress
from backend.seeding.tables import Link, SeedTable, seed_tables
from backend.seeding.transaction import one_transaction
from backend.writes.actor import FAKE
from backend.writes.bulk import record_loads

# What the create schema's sample check is given for a fake user's password when the load has
# none (the schema requires one); it is never hashed nor stored.
_CHECKED_PASSWORD = "x" * MIN_PASSWORD_LENGTH
# Roles a fake user may get: an admin is made on purpose (`tablestack create-user --role admin`).
FAKE_ROLES = tuple(role for role in Role if role is not Role.admin)
BATCH_SIZE = 5000
VALIDATE_FIRST = 1000
VALIDATE_EVERY = 100
POOL_SIZE = 2000

Generator = Callable[[int], list[Any]]


@dataclass
class FakeReport:
    """Rows inserted (or, in a dry run, checked and rolled back) per table and link table."""

    rows: dict[str, int] = field(default_factory=dict)
    links: dict[str, int] = field(default_factory=dict)
    dry_run: bool = False

    @property
    def total(self) -> int:
        return sum(self.rows.values()) + sum(self.links.values())


async def generate_fake(
    engine: AsyncEngine,
    *,
    rows: int,
    random_seed: int | None = None,
    tables: Sequence[str] | None = None,
    dry_run: bool = False,
    progress: bool = False,
    password: str | None = None,
) -> FakeReport:
    """Insert `rows` fake rows in every registered table (or just `tables`), in one transaction.

    Fake users sign in with `password`; without one, none can sign in.
    """
    chosen = _chosen_tables(tables)
    async with one_transaction(engine, dry_run=dry_run) as connection:
        with Progress(enabled=progress) as bar:
            report = await fake_into(connection, chosen, rows, random_seed, bar, password)
    report.dry_run = dry_run
    return report


def _chosen_tables(names: Sequence[str] | None) -> list[SeedTable]:
    every = list(seed_tables())
    if not names:
        return every
    known = {t.name for t in every}
    unknown = sorted(set(names) - known)
    if unknown:
        raise SeedError(f"no registered table {unknown[0]!r} (tables: {', '.join(sorted(known))})")
    return [t for t in every if t.name in set(names)]


async def fake_into(
    connection: AsyncConnection,
    tables: Sequence[SeedTable],
    rows: int,
    random_seed: int | None,
    progress: Progress | None = None,
    password: str | None = None,
) -> FakeReport:
    """Generate and insert the rows on `connection`, inside the caller's transaction."""
    rng = random.Random(random_seed)
    pools = Pools(random_seed, password)
    progress = progress or Progress(enabled=False)
    report = FakeReport()
    for table in tables:
        faker = _TableFaker(connection, table, rng, pools)
        await faker.prepare()
        task = progress.task(f"faking {table.name}", rows)
        report.rows[table.name] = 0
        for link in table.links:
            report.links.setdefault(link.table.name, 0)
        # Generate batch k+1 in a thread while batch k streams into the database: the
        # database works on one core while Python builds rows on the other.
        # A tree grows by generations instead: each batch is written before the next is made,
        # whose parents are drawn from every row there by then.
        tree = bool(table.self_references)
        writing: asyncio.Task[dict[str, int]] | None = None
        try:
            start = 0
            for size in _batch_sizes(rows, tree=tree):
                batch = await asyncio.to_thread(faker.batch, size)
                faker.validate(batch, start)
                start += size
                if writing is not None:
                    _count(report, await writing)
                writing = asyncio.create_task(faker.insert(batch))
                if tree:
                    _count(report, await writing)
                    writing = None
                    await faker.read_self_references()
                progress.advance(task, len(batch))
            if writing is not None:
                _count(report, await writing)
        except BaseException:
            if writing is not None:  # let the batch in flight finish before the rollback
                await asyncio.gather(writing, return_exceptions=True)
            raise
    # COPY goes around the write service: the load is recorded in the history here, one
    # entry per table, in the same transaction (a failed or dry-run load leaves none).
    await record_loads(connection, report.rows, actor=FAKE)
    return report


def _batch_sizes(rows: int, *, tree: bool) -> list[int]:
    """Batches of BATCH_SIZE rows; for a tree, a first tenth (the roots and their first
    children), then batches that may hang under any row before them."""
    sizes = []
    if tree and rows > 1:
        sizes.append(max(1, min(BATCH_SIZE, rows // 10)))
    while sum(sizes) < rows:
        sizes.append(min(BATCH_SIZE, rows - sum(sizes)))
    return sizes


def _count(report: FakeReport, inserted: dict[str, int]) -> None:
    for name, count in inserted.items():
        if name in report.rows:
            report.rows[name] += count
        else:
            report.links[name] += count


async def copy_rows(connection: AsyncConnection, table: Table, rows: list[dict[str, Any]]) -> None:
    """Insert `rows` with PostgreSQL's binary COPY (asyncpg), inside the connection's transaction.

    COPY skips SQLAlchemy, so each value first goes through its column type's bind processor
    (enums to their stored names, aware datetimes to UTC); omitted columns get server defaults.
    """
    if not rows:
        return
    dialect = connection.dialect
    names = list(rows[0])
    processors = [table.c[n].type.dialect_impl(dialect).bind_processor(dialect) for n in names]
    columns = []
    for name, process in zip(names, processors, strict=True):
        values = [row[name] for row in rows]
        if process is not None:
            values = [None if v is None else process(v) for v in values]
        columns.append(values)
    records = list(zip(*columns, strict=True))
    raw = await connection.get_raw_connection()
    driver = raw.driver_connection
    assert driver is not None
    await driver.copy_records_to_table(table.name, records=records, columns=names)


async def _next_ids(connection: AsyncConnection, primary_key: Column[Any], count: int) -> list[Any]:
    """Reserve `count` ids from the primary key's sequence (one round trip, one array)."""
    sequence = sa_func.pg_get_serial_sequence(primary_key.table.name, primary_key.name)
    query = select(sa_func.array_agg(sa_func.nextval(sequence))).select_from(
        sa_func.generate_series(1, count)
    )
    ids: list[Any] = await connection.scalar(query) or []
    return ids


def _violation(exc: Exception) -> str:
    if isinstance(exc, IntegrityError):
        return describe_integrity_error(exc).message()
    return str(exc).splitlines()[0]


class Pools:
    """Realistic words, names and sentences from Faker, made once per run and reused."""

    def __init__(self, random_seed: int | None, password: str | None = None) -> None:
        faker = Faker("en_US")
        faker.seed_instance(random_seed)
        self.first_names = [faker.first_name() for _ in range(POOL_SIZE // 4)]
        self.last_names = [faker.last_name() for _ in range(POOL_SIZE // 4)]
        pick = random.Random(random_seed).choice
        self.people = [
            f"{pick(self.first_names)} {pick(self.last_names)}" for _ in range(POOL_SIZE)
        ]
        words = {w.lower() for w in faker.words(POOL_SIZE, unique=False)}
        self.words = sorted(w for w in words if w.isascii() and w.isalpha())
        self.colors = sorted({faker.safe_color_name() for _ in range(100)})
        self.sentences = [faker.sentence(nb_words=12) for _ in range(POOL_SIZE // 2)]
        self.paragraphs = [faker.paragraph(nb_sentences=3) for _ in range(POOL_SIZE // 4)]
        self.phones = [faker.phone_number() for _ in range(POOL_SIZE // 2)]
        # With --random-seed the salt comes from the seed too, so the rows are reproduced exactly.
        self._salt = None if random_seed is None else random.Random(random_seed).randbytes(16)
        self._seed = random_seed
        self.password = password
        self._password_hash: str | None = None

    @property
    def password_hash(self) -> str:
        """One argon2 hash shared by every fake user (hashing is slow): of the load's password,
        or, without one, of no password at all."""
        if self._password_hash is None:
            if self.password is not None:
                self._password_hash = hash_password(self.password, salt=self._salt)
            else:
                self._password_hash = self._unusable_hash()
        return self._password_hash

    def _unusable_hash(self) -> str:
        """A well-formed argon2 hash that no password matches: a real hash's parameters and
        salt around a random digest, which is the hash of nothing anyone could type (finding
        one would be a preimage of argon2). Signing in checks it at full cost, as any wrong
        password, so a fake user's email gives nothing away by its timing. Drawn from the
        random seed when there is one (the rows are reproduced exactly), else from the OS."""
        template = hash_password("", salt=self._salt)
        head, digest = template.rsplit("$", 1)
        size = len(base64.b64decode(digest + "=" * (-len(digest) % 4)))
        if self._seed is None:
            drawn = secrets.token_bytes(size)
        else:
            drawn = random.Random(f"unusable-{self._seed}").randbytes(size)
        return f"{head}${base64.b64encode(drawn).decode('ascii').rstrip('=')}"


_EMAIL_DOMAINS = ("example.com", "example.org", "example.net")
_PRODUCT_ADJECTIVES = (
    "classic", "compact", "modern", "foldable", "wireless", "vintage", "slim", "large",
    "mini", "solid", "rustic", "portable", "stackable", "ergonomic", "minimal", "deluxe",
)  # fmt: skip
_PRODUCT_NOUNS = (
    "lamp", "desk", "chair", "stool", "shelf", "cabinet", "table", "bench", "rug", "mirror",
    "clock", "vase", "basket", "tray", "mug", "kettle", "speaker", "notebook", "pen", "bag",
)  # fmt: skip


@dataclass
class _Bounds:
    low: Any = None
    high: Any = None
    min_length: int = 0
    max_length: int | None = None
    places: int | None = None
    digits: int | None = None
    pattern: str | None = None


def _bounds(table: SeedTable, column: Column[Any]) -> _Bounds:
    bounds = _Bounds()
    info = table.resource.model.model_fields.get(column.name)
    for item in info.metadata if info is not None else ():
        if isinstance(item, annotated_types.Ge):
            bounds.low = item.ge
        elif isinstance(item, annotated_types.Gt):
            above: Any = item.gt
            bounds.low = above + (1 if isinstance(above, int) else Decimal("0.01"))
        elif isinstance(item, annotated_types.Le):
            bounds.high = item.le
        elif isinstance(item, annotated_types.Lt):
            below: Any = item.lt
            bounds.high = below - 1
        elif isinstance(item, annotated_types.MinLen):
            bounds.min_length = item.min_length
        elif isinstance(item, annotated_types.MaxLen):
            bounds.max_length = item.max_length
        else:
            bounds.places = getattr(item, "decimal_places", bounds.places)
            bounds.digits = getattr(item, "max_digits", bounds.digits)
            bounds.pattern = getattr(item, "pattern", bounds.pattern)
    column_type = column.type
    if isinstance(column_type, TypeDecorator):
        column_type = column_type.impl_instance
    length = getattr(column_type, "length", None)
    if length is not None:
        bounds.max_length = min(bounds.max_length or length, length)
    if isinstance(column_type, Numeric):
        bounds.places = bounds.places if bounds.places is not None else column_type.scale
        bounds.digits = bounds.digits if bounds.digits is not None else column_type.precision
    return bounds


class _TableFaker:
    """Generates batches for one table and inserts them."""

    def __init__(
        self, connection: AsyncConnection, table: SeedTable, rng: random.Random, pools: Pools
    ) -> None:
        self.connection = connection
        self.table = table
        self.rng = rng
        self.pools = pools
        self.generators: dict[str, Generator] = {}
        self.fk_pools: dict[str, list[Any]] = {}
        self.taken: dict[tuple[str, ...], set[tuple[Any, ...]]] = {}
        self.sequence = 0  # the running number that keeps generated text unique
        self.numbered: set[str] = set()  # text columns that carry it
        self.redrawn: set[str] = set()  # unique columns kept unique by drawing again (patterns)
        self.patterns = PatternStrings(random.Random(rng.getrandbits(64)))
        self.link_targets: dict[str, list[Any]] = {}
        self.link_choices: dict[str, list[tuple[Any, ...]]] = {}
        # Links are drawn while the next batch is generated in a thread: own random stream,
        # so that --random-seed reproduces the same rows whatever the timing.
        self.link_rng = random.Random(rng.getrandbits(64))
        self.is_person = "email" in table.table.columns

    async def prepare(self) -> None:
        """Read what the rows must fit: referenced ids, existing unique values, row count."""
        table = self.table.table
        for reference in self.table.references:
            referenced = next(iter(table.c[reference.column].foreign_keys)).column
            query = select(referenced).order_by(referenced)
            ids = list((await self.connection.execute(query)).scalars())
            if not ids and not table.c[reference.column].nullable:
                if reference.target == self.table.name:
                    raise SeedError(
                        f"cannot fake {self.table.name}: {reference.field} must name another "
                        f"{self.table.name} row and there is none yet; load a seed set first"
                    )
                raise SeedError(
                    f"cannot fake {self.table.name}: {reference.target} has no rows to refer "
                    f"to; fake {reference.target} too, or load a seed set first"
                )
            self.fk_pools[reference.column] = ids
        count = (await self.connection.execute(select(sa_func.count()).select_from(table))).scalar()
        self.sequence = int(count or 0)
        for key in self.table.unique_keys():
            columns = [table.c[c] for c in key]
            result = await self.connection.execute(select(*columns))
            self.taken[key] = {tuple(row) for row in result}
        for link in self.table.links:
            remote = next(iter(link.table.c[link.remote_column].foreign_keys)).column
            self.link_targets[link.field] = list(
                (await self.connection.execute(select(remote).order_by(remote))).scalars()
            )
        for column in data_columns(table):
            generated = (
                column in self.table.seeded_columns
                and column.name not in self.table.timestamp_columns
                and (not column.primary_key or self.table.writes_primary_key)
            )
            if generated:
                self.generators[column.name] = self._generator(column)
                continue
            # Left to its default (an id, a timestamp, a user's auth_version). COPY skips
            # Python-side defaults, so those are applied here; server defaults are the
            # database's.
            default = _python_default(column)
            if default is not None and isinstance(column.type, Uuid):
                # uuid4 as the default_factory would give, but from the run's random stream:
                # --random-seed then reproduces the rows that refer to these
                self.generators[column.name] = self._uuids()
            elif default is not None:
                self.generators[column.name] = default

    async def read_self_references(self) -> None:
        """Refresh the rows a reference to the same table draws from (after a batch went in)."""
        table = self.table.table
        for reference in self.table.self_references:
            referenced = next(iter(table.c[reference.column].foreign_keys)).column
            query = select(referenced).order_by(referenced)
            # in place: the column's generator holds this very list
            self.fk_pools[reference.column][:] = (await self.connection.execute(query)).scalars()

    # --- rows -------------------------------------------------------------------------------

    def batch(self, count: int) -> list[dict[str, Any]]:
        """`count` new rows, unique against the table and each other."""
        self.sequence += count
        values = {name: generate(count) for name, generate in self.generators.items()}
        self._match_emails_to_names(values)
        self._separate_composite_keys(values, count)
        for key in self.taken:
            self._record_unique(key, values, count)
        names = list(values)
        return [dict(zip(names, row, strict=True)) for row in zip(*values.values(), strict=True)]

    def _match_emails_to_names(self, values: dict[str, list[Any]]) -> None:
        """Grace Liu gets grace.liu.17@example.org: the running number and domain are kept."""
        names = values.get("name") or values.get("full_name")
        emails = values.get("email")
        if not self.is_person or names is None or emails is None:
            return
        for i, (name, email) in enumerate(zip(names, emails, strict=True)):
            if name is None or email is None:
                continue
            local, domain = email.split("@", 1)
            number = local.rsplit(".", 1)[1] if "email" in self.numbered else ""
            person = _NOT_EMAIL.sub("", name.lower().replace(" ", "."))[:60] or local
            emails[i] = f"{person}.{number}@{domain}" if number else f"{person}@{domain}"

    def _record_unique(
        self, key: tuple[str, ...], values: dict[str, list[Any]], count: int
    ) -> None:
        """Keep `key` unique; a value that exists already gets the next running number."""
        taken = self.taken[key]
        renumber = [c for c in key if c in self.numbered or c in self.redrawn]
        for i in range(count):
            value = tuple(values[c][i] for c in key)
            if None in value:  # NULLs never collide
                continue
            tries = 0
            while value in taken:  # existing rows took this number (deleted rows, hand-made)
                if not renumber or tries == 10_000:
                    shown = ", ".join(self.table.seed_field(c) for c in key)
                    raise SeedError(f"cannot fake {self.table.name}: no unused {shown} left")
                self.sequence += 1
                for column in renumber:
                    values[column][i] = self.generators[column](1)[0]
                value = tuple(values[c][i] for c in key)
                tries += 1
            taken.add(value)

    def _separate_composite_keys(self, values: dict[str, list[Any]], count: int) -> None:
        """Redraw foreign-key combinations that repeat (order + product of an order line)."""
        for key, taken in self.taken.items():
            if not all(column in self.fk_pools for column in key) or len(key) < 2:
                continue
            space = 1
            for column in key:
                space *= len(set(self.fk_pools[column]))
            if space - len(taken) < count:
                shown = " x ".join(self.table.seed_field(c) for c in key)
                raise SeedError(
                    f"cannot fake {count} {self.table.name}: only {space - len(taken)} unused "
                    f"{shown} combinations are left; fake more of the referenced tables"
                )
            seen = set(taken)
            for i in range(count):
                combination = tuple(values[c][i] for c in key)
                while combination in seen:
                    combination = tuple(self.rng.choice(self.fk_pools[c]) for c in key)
                seen.add(combination)
                for column, value in zip(key, combination, strict=True):
                    values[column][i] = value

    def validate(self, rows: list[dict[str, Any]], offset: int) -> None:
        """Run a sample through the API's create schema: a generator bug must fail loudly."""
        schema = self.table.create_schema
        allowed = set(schema.model_fields)
        for i, row in enumerate(rows):
            position = offset + i
            if position >= VALIDATE_FIRST and position % VALIDATE_EVERY:
                continue
            payload = {k: v for k, v in row.items() if k in allowed}
            if self.table.password_columns:
                payload["password"] = self.pools.password or _CHECKED_PASSWORD
            try:
                schema.model_validate(payload)
            except ValidationError as exc:
                error = exc.errors()[0]
                where = ".".join(str(p) for p in error["loc"])
                raise SeedError(
                    f"fake {self.table.name} row {position + 1} is invalid: field {where}: "
                    f"{error['msg']} (value {row.get(where)!r})"
                ) from None

    async def insert(self, rows: list[dict[str, Any]]) -> dict[str, int]:
        """Insert a batch and its many-to-many links; the row counts per table."""
        table = self.table.table
        primary_key = table.c[self.table.primary_key]
        postgres = self.connection.dialect.name == "postgresql"
        ids: list[Any] = []
        try:
            if postgres:
                if self.table.links:  # the links need the new ids: take them up front
                    ids = await _next_ids(self.connection, primary_key, len(rows))
                    for row, row_id in zip(rows, ids, strict=True):
                        row[primary_key.name] = row_id
                await copy_rows(self.connection, table, rows)
            elif self.table.links:
                statement = sa_insert(table).returning(primary_key, sort_by_parameter_order=True)
                ids = list((await self.connection.execute(statement, rows)).scalars())
            else:
                await self.connection.execute(sa_insert(table), rows)
            counts = {self.table.name: len(rows)}
            for link in self.table.links:
                links = self._links(link, ids)
                if postgres:
                    await copy_rows(self.connection, link.table, links)
                elif links:
                    await self.connection.execute(sa_insert(link.table), links)
                counts[link.table.name] = len(links)
        except (IntegrityError, asyncpg.PostgresError) as exc:  # COPY raises asyncpg's own
            raise SeedError(f"cannot fake {self.table.name}: {_violation(exc)}") from None
        return counts

    def _links(self, link: Link, owner_ids: list[Any]) -> list[dict[str, Any]]:
        """Give each new row 0-3 distinct rows of the other side (products get tags)."""
        targets = self.link_targets[link.field]
        if not targets:
            return []
        if link.field not in self.link_choices:  # a pool of distinct picks: sampling is slow
            rng = self.link_rng
            sizes = rng.choices((0, 1, 1, 2, 2, 3), k=POOL_SIZE)
            self.link_choices[link.field] = [
                tuple(rng.sample(targets, min(size, len(targets)))) for size in sizes
            ]
        picks = self.link_rng.choices(self.link_choices[link.field], k=len(owner_ids))
        local, remote = link.local_column, link.remote_column
        return [
            {local: owner_id, remote: target_id}
            for owner_id, targets_of_row in zip(owner_ids, picks, strict=True)
            for target_id in targets_of_row
        ]

    # --- column generators ----------------------------------------------------------------

    def _generator(self, column: Column[Any]) -> Generator:
        name = column.name
        if name in self.fk_pools:
            ids = self.fk_pools[name]
            return self._with_nulls(
                column, lambda n: self.rng.choices(ids, k=n) if ids else [None] * n
            )
        unique = any(key == (name,) for key in self.taken) or any(
            name in key and name not in self.fk_pools for key in self.taken
        )
        bounds = _bounds(self.table, column)
        declared = column.type
        dialect = self.connection.dialect
        implemented = declared.dialect_impl(dialect)
        if isinstance(implemented, ARRAY):  # a PostgreSQL variant: list[str] as ARRAY there
            item_length = getattr(implemented.item_type, "length", None)
            return self._with_nulls(column, self._json(name, item_length))
        if isinstance(declared, Interval):  # before unwrapping: on SQLite it decorates DateTime
            return self._with_nulls(column, self._durations())
        column_type = declared
        if isinstance(column_type, TypeDecorator):  # AutoString, UTCDateTime
            column_type = column_type.impl_instance
        if isinstance(column_type, Enum) and column_type.enum_class is not None:
            members: list[Any] = list(column_type.enum_class)
            if column_type.enum_class is Role:
                members = list(FAKE_ROLES)  # fake users are never admins
            weights = [8 if i == 0 else 2 for i in range(len(members))]
            return self._with_nulls(column, lambda n: self.rng.choices(members, weights, k=n))
        if isinstance(column_type, Boolean):
            share = 0.9 if name.startswith("is_") else 0.5
            return self._with_nulls(column, lambda n: [self.rng.random() < share for _ in range(n)])
        if isinstance(column_type, Integer):
            return self._with_nulls(column, self._integers(name, bounds))
        if isinstance(column_type, Float):  # a Numeric subclass: test it first
            return self._with_nulls(column, self._floats(bounds))
        if isinstance(column_type, Numeric):
            return self._with_nulls(column, self._decimals(name, bounds))
        if isinstance(column_type, DateTime):
            return self._with_nulls(column, self._datetimes(aware=column_type.timezone))
        if isinstance(column_type, Date):
            stamps = self._datetimes(aware=False)
            return self._with_nulls(column, lambda n: [s.date() for s in stamps(n)])
        if isinstance(column_type, Time):
            return self._with_nulls(column, self._times())
        if isinstance(column_type, Uuid):
            return self._with_nulls(column, self._uuids())
        if isinstance(column_type, JSON):
            return self._with_nulls(column, self._json(name, None))
        if isinstance(column_type, LargeBinary):
            return self._with_nulls(column, self._bytes())
        if isinstance(column_type, String | Text):
            if name == "hashed_password":
                return lambda n: [self.pools.password_hash] * n
            long = isinstance(column_type, Text)
            text = self._texts(name, bounds, unique=unique, long=long, rng=self.rng)
            if bounds.pattern and not self._matches(name, bounds, unique=unique, long=long):
                text = self._patterned(name, bounds)
                if unique:
                    self.redrawn.add(name)
            elif unique:
                self.numbered.add(name)
            return self._with_nulls(column, text, share=0.5 if long else 0.2)
        raise SeedError(
            f"cannot fake {self.table.name}.{name}: no generator for type {column_type!r}"
        )

    def _matches(self, name: str, bounds: _Bounds, *, unique: bool, long: bool) -> bool:
        """Whether the realistic text for this column fits its pattern (a slug does), judged on
        a sample drawn from a throwaway random stream, so that the rows do not change."""
        assert bounds.pattern is not None
        texts = self._texts(name, bounds, unique=unique, long=long, rng=random.Random(0))
        sequence = self.sequence
        self.sequence += 50  # as batch() does before generating: the numbers the rows will get
        try:
            sample = texts(50)
        finally:
            self.sequence = sequence
        return all(re.search(bounds.pattern, text) for text in sample)

    def _patterned(self, name: str, bounds: _Bounds) -> Generator:
        """Strings drawn from the column's regular expression, within its length bounds."""
        pattern = bounds.pattern
        assert pattern is not None
        low, high = bounds.min_length, bounds.max_length

        def draw() -> str:
            try:
                return self.patterns.matching(pattern, min_length=low, max_length=high)
            except ValueError as exc:
                raise SeedError(f"cannot fake {self.table.name}.{name}: {exc}") from None

        return lambda n: [draw() for _ in range(n)]

    def _floats(self, bounds: _Bounds) -> Generator:
        low = float(bounds.low) if bounds.low is not None else 0.0
        high = float(bounds.high) if bounds.high is not None else low + 1000.0
        return lambda n: [round(self.rng.uniform(low, high), 4) for _ in range(n)]

    def _times(self) -> Generator:
        pool = [
            dt.time(self.rng.randrange(24), self.rng.randrange(60), self.rng.randrange(60))
            for _ in range(POOL_SIZE // 4)
        ]
        return lambda n: self.rng.choices(pool, k=n)

    def _durations(self) -> Generator:
        pool = [
            dt.timedelta(minutes=self.rng.randrange(0, 30 * 24 * 60)) for _ in range(POOL_SIZE // 4)
        ]
        return lambda n: self.rng.choices(pool, k=n)

    def _uuids(self) -> Generator:
        return lambda n: [uuid.UUID(int=self.rng.getrandbits(128), version=4) for _ in range(n)]

    def _bytes(self) -> Generator:
        return lambda n: [self.rng.randbytes(self.rng.randrange(1, 33)) for _ in range(n)]

    def _json(self, name: str, item_length: int | None) -> Generator:
        """JSON shaped as the field is annotated (`dict[str, Any]`, `list[str]`, `list[int]`...):
        a few entries of the annotated types, mixed scalars where it says Any."""
        info = self.table.resource.model.model_fields.get(name)
        make = self._json_maker(info.annotation if info is not None else None, item_length or 20)
        return lambda n: [make() for _ in range(n)]

    def _json_maker(self, annotation: Any, text_limit: int) -> Callable[[], Any]:
        """Values of one JSON annotation; `Any` is a mapping at the top, a scalar inside."""
        rng, words = self.rng, self.pools.words
        options = [a for a in typing.get_args(annotation) if a is not type(None)]
        if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
            return self._json_maker(options[0] if len(options) == 1 else Any, text_limit)
        origin = typing.get_origin(annotation) or annotation
        if origin is list:
            item = options[0] if options and options[0] is not Any else _Scalar
            make_item = self._json_maker(item, text_limit)
            return lambda: [make_item() for _ in range(rng.randrange(0, 4))]
        if origin is dict or annotation is Any or annotation is None:
            value = options[1] if len(options) == 2 and options[1] is not Any else _Scalar
            make_value = self._json_maker(value, text_limit)
            return lambda: {k: make_value() for k in rng.sample(words, rng.randrange(0, 4))}
        if annotation is bool:
            return lambda: rng.random() < 0.5
        if annotation is int:
            return lambda: rng.randrange(-100, 1000)
        if annotation is float:
            return lambda: round(rng.uniform(0, 100), 2)
        if annotation is str:
            return lambda: rng.choice(words)[:text_limit]
        makers = [self._json_maker(t, text_limit) for t in (int, float, str, bool)]
        return lambda: rng.choice(makers)()

    def _with_nulls(
        self, column: Column[Any], generate: Generator, share: float = 0.2
    ) -> Generator:
        if not column.nullable or column.primary_key:
            return generate

        def maybe_null(n: int) -> list[Any]:
            values = generate(n)
            return [None if self.rng.random() < share else v for v in values]

        return maybe_null

    def _integers(self, name: str, bounds: _Bounds) -> Generator:
        low = int(bounds.low) if bounds.low is not None else 0
        span = {"quantity": 9, "stock": 500}.get(name, 1000)
        high = int(bounds.high) if bounds.high is not None else low + span
        values = range(low, high + 1)
        return lambda n: self.rng.choices(values, k=n)

    def _decimals(self, name: str, bounds: _Bounds) -> Generator:
        places = bounds.places if bounds.places is not None else 2
        scale = 10**places
        low = Decimal(bounds.low if bounds.low is not None else 0)
        ceiling = Decimal(10) ** ((bounds.digits or 12) - places) - 1
        high = Decimal(bounds.high) if bounds.high is not None else min(ceiling, Decimal(999))
        cents = range(int(low * scale), int(high * scale) + 1)
        pool = [Decimal(c).scaleb(-places) for c in self.rng.choices(cents, k=POOL_SIZE)]
        if "price" in name:  # shop prices end in .99 (where that stays within the bounds)
            endings = [p // 1 + Decimal("0.99") for p in pool]
            pool = [e if low <= e <= high else p for e, p in zip(endings, pool, strict=True)]
        return lambda n: self.rng.choices(pool, k=n)

    def _datetimes(self, *, aware: bool) -> Generator:
        now = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)  # fixed, so --random-seed reproduces rows
        pool = [
            now - dt.timedelta(seconds=self.rng.randrange(0, 2 * 365 * 24 * 3600))
            for _ in range(POOL_SIZE)
        ]
        if not aware:
            pool = [p.replace(tzinfo=None) for p in pool]
        return lambda n: self.rng.choices(pool, k=n)

    def _texts(
        self, name: str, bounds: _Bounds, *, unique: bool, long: bool, rng: random.Random
    ) -> Generator:
        pools = self.pools
        limit = bounds.max_length or (2000 if long else 255)
        content: Callable[[], str]
        if name == "email":

            def content() -> str:
                first, last = rng.choice(pools.first_names), rng.choice(pools.last_names)
                return _NOT_EMAIL.sub("", f"{first}.{last}".lower())
        elif name in ("name", "full_name") and self.is_person:

            def content() -> str:
                return rng.choice(pools.people)
        elif name == "name" and "sku" in self.table.table.columns:

            def content() -> str:
                words = (
                    rng.choice(_PRODUCT_ADJECTIVES),
                    rng.choice(pools.colors),
                    rng.choice(_PRODUCT_NOUNS),
                )
                return " ".join(words).capitalize()
        elif name == "phone":

            def content() -> str:
                return rng.choice(pools.phones)
        elif name == "slug" or (bounds.pattern and "a-z0-9" in bounds.pattern):

            def content() -> str:
                return f"{rng.choice(pools.words)}-{rng.choice(pools.words)}"
        elif name in ("sku", "reference", "code"):
            prefix = "SKU" if name == "sku" else self.table.name[:3].upper()

            def content() -> str:
                return prefix
        elif long:

            def content() -> str:
                return rng.choice(pools.paragraphs if name == "description" else pools.sentences)
        elif name == "name":

            def content() -> str:
                return rng.choice(pools.words).capitalize()
        else:

            def content() -> str:
                return " ".join(rng.choices(pools.words, k=3))

        def generate(n: int) -> list[str]:
            first = self.sequence - n + 1  # batch() bumped the sequence before generating
            values = []
            for i in range(n):
                text = content()
                if name == "email":
                    number = f".{first + i}" if unique else ""
                    values.append(f"{text[: limit - 40]}{number}@{_EMAIL_DOMAINS[i % 3]}")
                    continue
                if unique:
                    separator = (
                        "-"
                        if name in ("sku", "reference", "code", "slug") or bounds.pattern
                        else " "
                    )
                    suffix = (
                        f"{separator}{first + i:06d}"
                        if name in ("sku", "reference", "code")
                        else f"{separator}{first + i}"
                    )
                    if name == "name" and not self.is_person:
                        text, suffix = text.lower(), f"-{first + i}"
                    text = text[: limit - len(suffix)] + suffix
                else:
                    text = text[:limit]
                if len(text) < bounds.min_length:
                    text = text.ljust(bounds.min_length, "x")
                values.append(text)
            return values

        return generate


_NOT_EMAIL = re.compile(r"[^a-z0-9.]")


def _python_default(column: Column[Any]) -> Generator | None:
    """A column's Python-side default (a scalar or a function such as uuid4) as a generator;
    None when it has none, or a server default that the database applies itself."""
    default = column.default
    if column.server_default is not None or default is None:
        return None
    if getattr(default, "is_scalar", False):
        value = default.arg  # type: ignore[attr-defined]
        return lambda n: [value] * n
    if getattr(default, "is_callable", False):
        function = default.arg  # type: ignore[attr-defined]
        return lambda n: [function(None) for _ in range(n)]  # SQLAlchemy passes a context
    return None


class _Scalar:
    """Stands for "any JSON scalar" when JSON values are made for an `Any` annotation."""
