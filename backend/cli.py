"""The `tablestack` command: serve, migrate, makemigrations, check, create-user, seed, dump,
prune-history."""

import asyncio
import functools
import os
import sys
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

import typer
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, SQLAlchemyError

from backend.config import ConfigurationError, Settings, load_settings

cli = typer.Typer(
    name="tablestack",
    help="Tablestack: a CRUD API and admin generated from SQLModel tables.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

F = TypeVar("F", bound=Callable[..., Any])


class CommandError(Exception):
    """A failure to report to the user as one line."""


def fail(message: str, code: int = 1) -> None:
    """Print `message` as one line on stderr and exit with `code`."""
    typer.echo(f"tablestack: error: {message}", err=True)
    raise typer.Exit(code)


def _describe_database_error(exc: BaseException, settings: Settings | None) -> str:
    target = ""
    if settings is not None:
        url = make_url(settings.database_url)
        target = f" {url.render_as_string(hide_password=True)}"
    original = getattr(exc, "orig", None) or exc
    detail = str(original).strip().splitlines()[0] if str(original).strip() else ""
    message = f"cannot use the database{target}: {type(original).__name__}: {detail}".rstrip(": ")
    if "no such table" in detail or "does not exist" in detail and "relation" in detail:
        message += " (is the database migrated? run `tablestack migrate`)"
    return message


def one_line_errors(command: F) -> F:
    """Turn expected failures (settings, database, I/O) into one line and a non-zero exit."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        settings: Settings | None = None
        try:
            settings = load_settings()
            return command(*args, **kwargs)
        except (ConfigurationError, CommandError) as exc:
            fail(str(exc))
        except (DBAPIError, SQLAlchemyError, OSError, ArgumentError) as exc:
            fail(_describe_database_error(exc, settings))
        except KeyboardInterrupt:
            fail("interrupted", code=130)
        except Exception as exc:
            # backend.registry's RegistryError (a model or APPS mistake, raised while the
            # tables are imported), told by its module: importing the class here would import
            # the tables before this wrapper could report their mistakes.
            if type(exc).__module__ == "backend.registry":
                fail(str(exc))
            raise

    return wrapper  # type: ignore[return-value]


def _settings() -> Settings:
    settings = load_settings()
    settings.check_production_ready()
    return settings


@cli.command()
@one_line_errors
def serve(
    host: Annotated[str, typer.Option(help="Interface to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port to listen on.")] = 8000,
    reload: Annotated[bool, typer.Option(help="Restart on code changes (development).")] = False,
    workers: Annotated[int, typer.Option(min=1, help="Worker processes.")] = 1,
    access_log: Annotated[
        bool, typer.Option(help="Log every request (costs a share of each request's time).")
    ] = False,
) -> None:
    """Serve the API and the admin with uvicorn (uvloop and httptools)."""
    import uvicorn

    settings = _settings()
    if reload and workers > 1:
        raise CommandError("--reload and --workers > 1 cannot be combined")
    shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    typer.echo(f"Tablestack on http://{shown}:{port}")
    typer.echo(f"  API docs: http://{shown}:{port}/docs")
    typer.echo(f"  Admin:    http://{shown}:{port}/admin")
    # Serve anyway: an orchestrator starts the database and the app side by side, and waits
    # on /readyz (503 until the database answers and is migrated); the operator is told once.
    problem = asyncio.run(_database_not_ready(settings))
    if problem is not None:
        typer.echo(
            f"tablestack: warning: {problem}; serving anyway (/readyz answers 503 until then)",
            err=True,
        )
    uvicorn.run(
        "backend.main:create_served_app",
        factory=True,
        host=host,
        port=port,
        reload=reload,
        workers=None if reload else workers,
        # the app believes X-Forwarded-* from TRUSTED_PROXIES only (backend/proxies.py);
        # uvicorn's own handling would trust 127.0.0.1 whatever the setting says
        proxy_headers=False,
        # The fast event loop and HTTP parser, named so a missing one fails loudly instead of
        # silently falling back to the slow pure-Python ones.
        loop="uvloop",
        http="httptools",
        access_log=access_log,
    )


async def _database_not_ready(settings: Settings) -> str | None:
    """Why the database cannot serve requests yet, in one line, or None."""
    from backend.db import create_engine
    from backend.db_failures import describe
    from backend.health import not_ready
    from backend.schema import head_revisions

    url = make_url(settings.database_url).render_as_string(hide_password=True)
    engine = create_engine(settings)
    try:
        problem = await asyncio.wait_for(
            not_ready(engine, head_revisions()), timeout=settings.db_connect_timeout_s + 1
        )
    except TimeoutError:
        return f"the database {url} did not answer within {settings.db_connect_timeout_s:g} s"
    finally:
        await engine.dispose()
    if problem is None:
        return None
    if problem.error is None:
        return f"the database {url} is not ready: {problem.reason}"
    return f"the database {url} is unreachable ({describe(problem.error)})"


# `tablestack migrate -1`: a revision may start with "-", so unknown options are arguments.
@cli.command(context_settings={"ignore_unknown_options": True})
@one_line_errors
def migrate(
    revision: Annotated[
        str,
        typer.Argument(
            help="Where to go, up or down: heads (every branch), base, a revision id, "
            "<branch>@head, <branch>@base, -N (N revisions down; with several branches, "
            "<branch>@-N).",
        ),
    ] = "heads",
) -> None:
    """Migrate the database schema up or down to REVISION (every head by default), printing
    each revision applied or reverted."""
    from backend import schema

    settings = _settings()
    try:
        applied = asyncio.run(schema.migrate(settings.session_database_url, revision))
    except schema.MigrationError as exc:
        raise CommandError(str(exc)) from None
    for step in applied:
        verb = "applied " if step.upgrade else "reverted"
        typer.echo(f"{verb} {step.revision} ({step.branch}) {step.message}".rstrip())
    where = asyncio.run(_describe_current(settings))
    typer.echo(f"database at {where}" if applied else f"nothing to do: database at {where}")


async def _describe_current(settings: Settings) -> str:
    from alembic.script import ScriptDirectory

    from backend import schema

    current = await schema.current_revisions(settings.session_database_url)
    scripts = ScriptDirectory.from_config(schema.alembic_config(settings.session_database_url))
    shown = [f"{revision} ({schema.branch_name(scripts, revision)})" for revision in current]
    return ", ".join(sorted(shown)) or "base"


@cli.command()
@one_line_errors
def makemigrations(
    message: Annotated[str, typer.Option("-m", "--message", help="What the revision does.")],
    app: Annotated[
        str | None,
        typer.Option(help="A module of the APPS setting: write into its migrations/ branch."),
    ] = None,
) -> None:
    """Autogenerate a migration from the models (needs no running database)."""
    from backend import schema

    try:
        path = schema.makemigrations(message, app)
    except ValueError as exc:
        raise CommandError(f"--app: {exc}") from None
    except schema.MigrationError as exc:
        raise CommandError(str(exc)) from None
    if path is None:
        typer.echo("no changes: the models match the migrations")
    else:
        typer.echo(f"wrote {os.path.relpath(path)}")


@cli.command()
@one_line_errors
def check(
    live: Annotated[
        bool,
        typer.Option(help="Compare the configured database (at head) instead of a scratch one."),
    ] = False,
) -> None:
    """Exit non-zero, listing the differences, when the models and migrations disagree."""
    from backend import schema

    if live:
        settings = _settings()
        current = asyncio.run(schema.current_revisions(settings.session_database_url))
        heads = schema.head_revisions()
        if current != heads:
            raise CommandError(
                f"database is at {', '.join(sorted(current)) or 'base'}, not at head "
                f"{', '.join(sorted(heads))}; run `tablestack migrate` first"
            )
        diffs = asyncio.run(schema.diff(settings.session_database_url))
    else:
        diffs = asyncio.run(schema.diff_against_migrations())
    lines = schema.format_diff(diffs)
    if lines:
        typer.echo("models and migrations disagree:", err=True)
        for line in lines:
            typer.echo(f"  - {line}", err=True)
        typer.echo('run `tablestack makemigrations -m "..."` to write a migration', err=True)
        raise typer.Exit(1)
    typer.echo("ok: the models match the migrations")


@cli.command("create-user")
@one_line_errors
def create_user(
    email: Annotated[str, typer.Argument(help="The user's email, used to sign in.")],
    role: Annotated[str, typer.Option(help="viewer, editor or admin.")] = "admin",
    full_name: Annotated[str | None, typer.Option(help="Display name.")] = None,
    password_env: Annotated[
        str | None,
        typer.Option(help="Read the password from this environment variable instead of a prompt."),
    ] = None,
    update: Annotated[
        bool, typer.Option(help="Change the password and role of an existing user.")
    ] = False,
) -> None:
    """Create a user (or, with --update, reset one) with a hashed password."""
    from backend.auth.users import UserError, upsert_user
    from backend.models import Role

    settings = _settings()
    try:
        chosen_role = Role(role)
    except ValueError:
        raise CommandError(f"--role must be one of {', '.join(r.value for r in Role)}") from None
    if password_env:
        password = os.environ.get(password_env)
        if not password:
            raise CommandError(f"environment variable {password_env} is not set or empty")
    elif not sys.stdin.isatty():
        raise CommandError("no terminal to prompt for a password: use --password-env VAR")
    else:
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    try:
        created = asyncio.run(
            upsert_user(
                settings,
                email=email,
                password=password,
                role=chosen_role,
                full_name=full_name,
                update=update,
            )
        )
    except UserError as exc:  # the write path's refusals, each naming the field (no SQL)
        raise CommandError(str(exc)) from None
    typer.echo(f"{'created' if created else 'updated'} {chosen_role.value} {email}")


@cli.command()
@one_line_errors
def seed(
    set_name: Annotated[
        str | None,
        typer.Option("--set", help="Load this seed set: a name under seed/, or a folder path."),
    ] = None,
    fake: Annotated[
        int | None, typer.Option("--fake", min=1, help="Generate N fake rows for every table.")
    ] = None,
    table: Annotated[
        list[str] | None,
        typer.Option("--table", help="With --fake: only this table (repeat for more)."),
    ] = None,
    random_seed: Annotated[
        int | None, typer.Option(help="With --fake: the same seed gives the same rows.")
    ] = None,
    fake_password: Annotated[
        str | None,
        typer.Option(
            "--fake-password",
            help="With --fake: fake users sign in with this password (without it, none can). "
            "Fake users are never admins.",
        ),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option(help="Check everything in a transaction that is rolled back.")
    ] = False,
    if_empty: Annotated[
        bool, typer.Option(help="Do nothing when the database already has rows (first start).")
    ] = False,
) -> None:
    """Load a seed set (upsert by natural key) or generate fake rows, in one transaction."""
    from backend.auth.passwords import check_password_strength
    from backend.seeding.format import SeedError

    settings = _settings()
    if (set_name is None) == (fake is None):
        raise CommandError("give exactly one of --set NAME and --fake N")
    if table and fake is None:
        raise CommandError("--table goes with --fake")
    if random_seed is not None and fake is None:
        raise CommandError("--random-seed goes with --fake")
    if fake_password is not None:
        if fake is None:
            raise CommandError("--fake-password goes with --fake")
        try:
            check_password_strength(fake_password)
        except ValueError as exc:
            raise CommandError(f"--fake-password: {exc}") from None
    try:
        lines = asyncio.run(
            _seed(
                settings, set_name, fake, table or [], random_seed, dry_run, if_empty, fake_password
            )
        )
    except SeedError as exc:
        raise CommandError(str(exc)) from None
    for line in lines:
        typer.echo(line)


async def _seed(
    settings: Settings,
    set_name: str | None,
    fake: int | None,
    tables: list[str],
    random_seed: int | None,
    dry_run: bool,
    if_empty: bool,
    fake_password: str | None = None,
) -> list[str]:
    import time

    from backend.db import Database
    from backend.seeding.fake import generate_fake
    from backend.seeding.format import set_directory, shown_path
    from backend.seeding.loader import database_is_empty, load_set

    directory = set_directory(set_name) if set_name is not None else None
    database = Database(settings)
    engine = database.start()
    progress = sys.stderr.isatty()
    prefix = "dry run, nothing written: " if dry_run else ""
    try:
        if if_empty and not await database_is_empty(engine):
            return ["the database already has data: nothing seeded"]
        started = time.perf_counter()
        if directory is not None:
            report = await load_set(engine, directory, dry_run=dry_run, progress=progress)
            lines = [f"{name}: {table.describe()}" for name, table in report.tables.items()]
            verb = "checked" if dry_run else "loaded"
            return [*lines, f"{prefix}{verb} seed set {shown_path(directory)}"]
        assert fake is not None
        faked = await generate_fake(
            engine,
            rows=fake,
            random_seed=random_seed,
            tables=tables,
            dry_run=dry_run,
            progress=progress,
            password=fake_password,
        )
        elapsed = time.perf_counter() - started
        lines = [f"{name}: {count} rows" for name, count in {**faked.rows, **faked.links}.items()]
        rate = faked.total / elapsed if elapsed else 0.0
        return [*lines, f"{prefix}{faked.total} fake rows in {elapsed:.1f}s ({rate:,.0f} rows/s)"]
    finally:
        await database.dispose()


@cli.command()
@one_line_errors
def dump(
    set_name: Annotated[
        str,
        typer.Option("--set", help="Write this seed set: a name under seed/, or a folder path."),
    ],
    force: Annotated[bool, typer.Option(help="Replace the set's files if it exists.")] = False,
) -> None:
    """Write the database to a seed set, one YAML file per table, with natural keys."""
    from backend.db import Database
    from backend.seeding.dumper import dump_set
    from backend.seeding.format import SeedError, set_directory, shown_path

    settings = _settings()

    async def run() -> dict[str, int]:
        database = Database(settings)
        engine = database.start()
        try:
            return (await dump_set(engine, set_directory(set_name), force=force)).rows
        finally:
            await database.dispose()

    try:
        rows = asyncio.run(run())
    except SeedError as exc:
        raise CommandError(str(exc)) from None
    for name, count in rows.items():
        typer.echo(f"{name}: {count} rows")
    typer.echo(f"wrote seed set {shown_path(set_directory(set_name))}")


@cli.command("prune-history")
@one_line_errors
def prune_history(
    days: Annotated[
        int | None,
        typer.Option(help="Keep this many days instead of HISTORY_RETENTION_DAYS (0 keeps all)."),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option(help="Only count the entries that would be deleted.")
    ] = False,
) -> None:
    """Delete history entries older than the retention (HISTORY_RETENTION_DAYS or --days)."""
    from backend.db import Database
    from backend.writes import retention

    settings = _settings()
    try:
        keep = retention.retention_days(settings.history_retention_days, days)
    except retention.RetentionError as exc:
        raise CommandError(str(exc)) from None

    async def run() -> retention.Pruned:
        database = Database(settings)
        engine = database.start()
        try:
            return await retention.prune_history(engine, keep, dry_run=dry_run)
        finally:
            await database.dispose()

    typer.echo(asyncio.run(run()).describe())


def main() -> None:
    """Entry point of the `tablestack` script."""
    cli()
