"""The schema, owned by Alembic: upgrade, autogenerate, drift check and the head check.

Every function takes a database URL and opens its own short-lived engine, handing the
connection to `migrations/env.py`, so they work both from the CLI and inside a running loop.
"""

import asyncio
import importlib.util
import os
import re
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext, MigrationInfo
from alembic.script import Script, ScriptDirectory
from alembic.script.revision import RevisionError
from alembic.util import CommandError
from sqlalchemy import pool
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

import backend.autogenerate  # noqa: F401  (native enum types in autogenerate and diffs)
from backend.config import PROJECT_ROOT, get_settings
from backend.db import ensure_sqlite_directory

T = TypeVar("T")


def app_migration_folders() -> list[Path]:
    """The `migrations/` folder beside each module of the APPS setting that has one: each
    is an Alembic branch of its own, applied with the project's."""
    folders = []
    for module in get_settings().apps:
        spec = importlib.util.find_spec(module)
        origin = spec.origin if spec is not None else None
        if origin is None:
            continue
        folder = Path(origin).parent / "migrations"
        if folder.is_dir():
            folders.append(folder)
    return folders


def alembic_config(database_url: str) -> Config:
    """Alembic's Config for this project, pointed at `database_url`."""
    config = Config(str(PROJECT_ROOT / "alembic.ini"))
    config.set_main_option("script_location", str(PROJECT_ROOT / "migrations"))
    locations = [PROJECT_ROOT / "migrations" / "versions", *app_migration_folders()]
    config.set_main_option("version_locations", os.pathsep.join(map(str, locations)))
    config.attributes["database_url"] = database_url
    return config


def head_revisions(database_url: str = "") -> set[str]:
    """The revisions the migration scripts end at."""
    return set(ScriptDirectory.from_config(alembic_config(database_url)).get_heads())


async def _with_connection(database_url: str, work: Callable[[Connection], T]) -> T:
    ensure_sqlite_directory(database_url)
    engine = create_async_engine(database_url, poolclass=pool.NullPool)
    try:
        async with engine.connect() as connection:
            result = await connection.run_sync(work)
            await connection.commit()
            return result
    finally:
        await engine.dispose()


async def upgrade(database_url: str, revision: str = "heads") -> None:
    """Migrate the database up to `revision`."""

    def work(connection: Connection) -> None:
        config = alembic_config(database_url)
        config.attributes["connection"] = connection
        command.upgrade(config, revision)

    await _with_connection(database_url, work)


async def downgrade(database_url: str, revision: str = "base") -> None:
    """Migrate the database down to `revision`."""

    def work(connection: Connection) -> None:
        config = alembic_config(database_url)
        config.attributes["connection"] = connection
        command.downgrade(config, revision)

    await _with_connection(database_url, work)


class MigrationError(Exception):
    """A revision the database cannot be migrated to; the message says why, in one line."""


@dataclass(frozen=True)
class AppliedRevision:
    """One revision `migrate` applied (upgrade) or reverted (downgrade)."""

    revision: str
    branch: str
    message: str
    upgrade: bool


async def migrate(database_url: str, target: str = "heads") -> list[AppliedRevision]:
    """Migrate the database up or down to `target`, whichever way it lies, and return the
    revisions applied or reverted, in order.

    `target` is what Alembic takes: `heads` (every branch, the default), `base`, a revision
    id (or a unique prefix), `<branch>@head`, `<branch>@base`, `+N`, and `-N` or
    `<branch>@-N`, which go down N revisions (a bare `-N` needs a single applied branch).
    """
    config = alembic_config(database_url)
    scripts = ScriptDirectory.from_config(config)
    current = await current_revisions(database_url)
    try:
        upgrading, resolved = _resolve(scripts, current, target)
    except (CommandError, RevisionError) as exc:
        raise MigrationError(f"cannot migrate to {target!r}: {_first_line(exc)}") from None
    applied: list[AppliedRevision] = []

    def record(*, step: MigrationInfo, **_: Any) -> None:
        if step.is_migration and step.up_revision_id is not None:
            script = scripts.get_revision(step.up_revision_id)
            branch = branch_name(scripts, script.revision)
            message = (script.doc or "").strip()
            applied.append(AppliedRevision(script.revision, branch, message, step.is_upgrade))

    def work(connection: Connection) -> None:
        config.attributes["connection"] = connection
        config.attributes["on_version_apply"] = record
        if upgrading:
            command.upgrade(config, resolved)
        else:
            command.downgrade(config, resolved)

    try:
        await _with_connection(database_url, work)
    except (CommandError, RevisionError) as exc:
        raise MigrationError(f"cannot migrate to {target!r}: {_first_line(exc)}") from None
    return applied


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


_RELATIVE_DOWN = re.compile(r"^(?:(?P<branch>[^@]+)@)?-(?P<steps>\d+)$")
_UP = re.compile(r"^(?:[^@]+@)?(?:heads?|\+\d+)$")


def _resolve(scripts: ScriptDirectory, current: set[str], target: str) -> tuple[bool, str]:
    """Which way `target` lies from the database's `current` revisions (True: up), and the
    target Alembic should be given for it."""
    if target == "heads" or target == "head" or _UP.match(target):
        return True, target
    if target == "base":
        return False, target
    if target.endswith("@base"):
        scripts.get_revision(target.removesuffix("@base"))  # an unknown branch is an error
        return False, target
    relative = _RELATIVE_DOWN.match(target)
    if relative is not None:
        return False, _steps_down(scripts, current, relative["branch"], int(relative["steps"]))
    script = scripts.get_revision(target)
    if script is None:
        raise MigrationError(f"cannot migrate to {target!r}: not a revision")
    below_current = {
        lower.revision for head in current for lower in scripts.iterate_revisions(head, "base")
    }
    if script.revision in below_current - current:
        return False, script.revision
    return True, script.revision


def branch_name(scripts: ScriptDirectory, revision: str) -> str:
    """The branch label a revision is on (the nearest down its lineage), else its id."""
    for script in scripts.iterate_revisions(revision, "base"):
        if script.branch_labels:
            return sorted(script.branch_labels)[0]
    return revision


def _steps_down(scripts: ScriptDirectory, current: set[str], branch: str | None, steps: int) -> str:
    """The revision `steps` below the applied head of `branch` (the only one if None)."""
    heads = sorted(current)
    if branch is None:
        if not heads:
            raise MigrationError(f"cannot migrate to '-{steps}': the database is at base")
        if len(heads) > 1:
            names = sorted(branch_name(scripts, head) for head in heads)
            raise MigrationError(
                f"cannot migrate to '-{steps}': several branches are applied "
                f"({', '.join(names)}); say which, e.g. `tablestack migrate {names[0]}@-{steps}`"
            )
        head = heads[0]
    else:
        scripts.get_revision(branch)  # an unknown branch or revision is an error
        on_branch = [
            head
            for head in heads
            if any(
                branch == script.revision or branch in script.branch_labels
                for script in scripts.iterate_revisions(head, "base")
            )
        ]
        if not on_branch:
            raise MigrationError(
                f"cannot migrate to '{branch}@-{steps}': branch {branch!r} is not applied"
            )
        head = on_branch[0]
    script: Script = scripts.get_revision(head)
    for taken in range(steps):
        down = script.down_revision
        if down is None:
            if taken == steps - 1:
                return f"{script.revision}@base" if len(heads) > 1 else "base"
            raise MigrationError(
                f"cannot go down {steps} revisions on {branch_name(scripts, head)}: "
                f"only {taken + 1} applied"
            )
        if not isinstance(down, str):
            raise MigrationError(
                f"cannot go down past {script.revision}, which merges {', '.join(down)}: "
                "give the revision to go down to"
            )
        script = scripts.get_revision(down)
    return script.revision


async def current_revisions(database_url: str) -> set[str]:
    """The revisions the database is stamped with (empty when never migrated)."""

    def work(connection: Connection) -> set[str]:
        return set(MigrationContext.configure(connection).get_current_heads())

    return await _with_connection(database_url, work)


async def diff(database_url: str) -> list[Any]:
    """Differences between the models and a database migrated to head (empty: in sync)."""
    import backend.registry  # noqa: F401  (imports every table)
    from backend.db import metadata

    def work(connection: Connection) -> list[Any]:
        context = MigrationContext.configure(
            connection, opts={"compare_type": True, "target_metadata": metadata}
        )
        return list(compare_metadata(context, metadata))

    return await _with_connection(database_url, work)


@contextmanager
def scratch_database() -> Iterator[str]:
    """The URL of an empty, throw-away SQLite database."""
    with tempfile.TemporaryDirectory(prefix="tablestack-scratch-") as scratch:
        yield f"sqlite+aiosqlite:///{Path(scratch) / 'scratch.db'}"


async def diff_against_migrations() -> list[Any]:
    """Upgrade a scratch database to head and compare it with the models."""
    with scratch_database() as url:
        await upgrade(url)
        return await diff(url)


def makemigrations(message: str, app: str | None = None) -> str | None:
    """Autogenerate a revision from the models; return its path, or None when nothing changed.

    Like Django's makemigrations it needs no running database: it compares the models with a
    scratch SQLite database upgraded to head, and renders batch operations that run on both
    SQLite and PostgreSQL. The revision goes on the project's own branch, or with `app` (a
    module of the APPS setting) into that app's `migrations/` folder, starting its branch.
    """
    generated: list[Any] = []

    def skip_empty(_context: Any, _revision: Any, directives: list[Any]) -> None:
        if directives[0].upgrade_ops.is_empty():
            directives[:] = []
        else:
            generated.append(directives[0])

    with scratch_database() as url:
        target = _branch_target(alembic_config(url), app)
        config = alembic_config(url)  # after _branch_target made a new app's folder

        def work(connection: Connection) -> None:
            config.attributes["connection"] = connection
            try:
                command.revision(
                    config,
                    message=message,
                    autogenerate=True,
                    process_revision_directives=skip_empty,
                    **target,
                )
            except (CommandError, RevisionError) as exc:
                raise MigrationError(f"cannot write the revision: {_first_line(exc)}") from None

        async def run() -> None:
            await upgrade(url)
            await _with_connection(url, work)

        asyncio.run(run())
    if not generated:
        return None
    script = ScriptDirectory.from_config(config).get_revision(generated[0].rev_id)
    return script.path if script is not None else None


def _branch_target(config: Config, app: str | None) -> dict[str, Any]:
    """Where a new revision goes: `head`, and for a new branch its label and folder."""
    scripts = ScriptDirectory.from_config(config)
    if app is None:
        folder = PROJECT_ROOT / "migrations" / "versions"
    else:
        if app not in get_settings().apps:
            raise ValueError(f"{app!r} is not in the APPS setting")
        spec = importlib.util.find_spec(app)
        assert spec is not None and spec.origin is not None
        folder = Path(spec.origin).parent / "migrations"
        folder.mkdir(exist_ok=True)
    heads = [scripts.get_revision(head) for head in scripts.get_heads()]
    mine = [h for h in heads if h is not None and Path(h.path).parent == folder]
    if mine:
        return {"head": mine[0].revision}
    if app is None:
        return {"head": "base"}
    label = app.rsplit(".", 1)[-1]
    return {"head": "base", "branch_label": label, "version_path": str(folder)}


def format_diff(diffs: list[Any]) -> list[str]:
    """One readable line per difference reported by alembic's compare_metadata."""
    lines = []
    for entry in diffs:
        items = entry if isinstance(entry, list) else [entry]
        for item in items:
            lines.append(_describe(item))
    return lines


def _describe(item: tuple[Any, ...]) -> str:
    kind = item[0]
    if kind == "add_table":
        return f"table {item[1].name!r} is in the models but not in the migrations"
    if kind == "remove_table":
        return f"table {item[1].name!r} is in the migrations but not in the models"
    if kind == "add_column":
        return f"column {item[2]}.{item[3].name} is in the models but not in the migrations"
    if kind == "remove_column":
        return f"column {item[2]}.{item[3].name} is in the migrations but not in the models"
    if kind == "modify_type":
        return f"column {item[2]}.{item[3]} type differs: migrations {item[5]}, models {item[6]}"
    if kind == "modify_nullable":
        return (
            f"column {item[2]}.{item[3]} nullable differs: migrations {item[5]}, models {item[6]}"
        )
    if kind in ("add_index", "remove_index", "add_constraint", "remove_constraint"):
        where = "models" if kind.startswith("add") else "migrations"
        obj = item[1]
        table = getattr(getattr(obj, "table", None), "name", "?")
        return f"{kind.split('_')[1]} {obj.name!r} on {table} is only in the {where}"
    if kind == "create_enum":
        return f"enum type {item[1]!r} is in the models but not in the migrations"
    if kind == "drop_enum":
        return f"enum type {item[1]!r} is in the migrations but not in the models"
    if kind in ("add_enum_value", "change_enum_variants"):
        columns = ", ".join(sorted(f"{ref.table_name}.{ref.column_name}" for ref in item[3]))
        return (
            f"enum values of {columns} differ: migrations {', '.join(item[1])}, "
            f"models {', '.join(item[2])}"
        )
    if kind in ("add_fk", "remove_fk"):
        where = "models" if kind.startswith("add") else "migrations"
        return f"foreign key {item[1].name!r} on {item[1].parent.name} is only in the {where}"
    return repr(item)
