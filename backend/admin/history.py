"""The admin's history pages, as Django admin's History button: who changed what, and when.

- `/admin/<table>/history/<id>`: one record's entries, for whoever may read the table (the
  page stays readable after the record is deleted: that is when it is most wanted).
- `/admin/history`: every change, for admins only, filtered by table, user and date range.

Both read `tablestack_history` (written by `backend.writes` in each change's transaction),
newest first, a page at a time. Paging asks for one entry more than a page instead of counting:
the history only grows, and a count would scan all of it on every page. Filters live in the
query string, so a filtered page can be shared as a link; input that cannot be a filter is
answered with a message on the page, and no entries rather than unfiltered ones.
"""

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, ClassVar

from pydantic import TypeAdapter, ValidationError
from sqladmin import BaseView, expose
from sqlalchemy import ColumnElement, Select, and_, func, select
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.datastructures import URL
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from backend.admin.auth import current_user
from backend.admin.views import ResourceView, primary_key_value
from backend.models import HistoryEntry, Role
from backend.registry import column_python_type, data_columns
from backend.writes.history import CHANGED, HISTORY, shown_changes

PAGE_SIZE = 25
ACTIONS = ("created", "updated", "deleted", "loaded")
_DATE = TypeAdapter(date)


@dataclass(frozen=True)
class ShownChange:
    """One field of an entry, ready for the page: label, and before/after as text."""

    label: str
    before: str | None  # None: no value (shown as "empty")
    after: str | None
    secret: bool = False  # a password hash: only "changed" is shown


@dataclass
class ShownEntry:
    """One history entry as a page shows it."""

    entry: HistoryEntry
    at: str
    table: str  # the table's label ("Products"), or the resource name if no longer registered
    changes: list[ShownChange]
    summary: str | None = None  # a bulk load's "250 rows"
    history_url: str | None = None
    record_url: str | None = None  # None when the record no longer exists
    record_label: str | None = None


@dataclass
class Filters:
    """The all-changes page's filters, as given in the query string."""

    table: str = ""
    user: str = ""
    since: str = ""  # the query's `from`, a date (UTC), inclusive
    until: str = ""  # the query's `to`, a date (UTC), inclusive
    errors: list[str] = field(default_factory=list)
    since_date: date | None = None
    until_date: date | None = None

    def params(self) -> dict[str, str]:
        """The filters as query parameters, left out when empty (for the paging links)."""
        given = {"table": self.table, "user": self.user, "from": self.since, "to": self.until}
        return {name: value for name, value in given.items() if value}


def page_number(request: Request) -> int:
    """The `page` query parameter; 1 when absent or not a page number."""
    raw = request.query_params.get("page", "1")
    return int(raw) if raw.isdigit() and 0 < int(raw) < 1_000_000 else 1


def format_at(value: datetime) -> str:
    """An entry's time for a person, in UTC (SQLite returns it without a zone: it is UTC)."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def format_value(python_type: type | None, value: Any) -> str | None:
    """A history value (in the API's JSON encoding) as a person reads it; None for no value."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "yes" if value else "no"
    if python_type is datetime and isinstance(value, str):
        try:
            return format_at(datetime.fromisoformat(value.replace("Z", "+00:00")))
        except ValueError:
            return value
    if python_type is bytes and isinstance(value, str):
        return f"{len(value) * 3 // 4 - value[-2:].count('=')} bytes (base64: {value})"
    if isinstance(value, list) and all(isinstance(item, int | str) for item in value):
        return ", ".join(str(item) for item in value) if value else None  # link ids
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    return str(value)


class HistoryPages:
    """What both pages need: the database, and the admin's view of each registered table."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self.sessions = sessions
        self.views: dict[str, ResourceView] = {}  # by resource name

    def register(self, views: Iterable[ResourceView]) -> None:
        self.views = {view.resource.name: view for view in views}

    def view_by_identity(self, identity: str) -> ResourceView:
        for view in self.views.values():
            if view.identity == identity:
                return view
        raise HTTPException(404, f"There is no table {identity!r} in the admin.")

    async def entries(
        self, conditions: Sequence[ColumnElement[bool]], page: int
    ) -> tuple[list[HistoryEntry], bool]:
        """One page of entries, newest first, and whether an older page exists."""
        statement: Select[Any] = (
            select(HistoryEntry)
            .where(*conditions)
            .order_by(HISTORY.c.at.desc(), HISTORY.c.id.desc())
            .offset((page - 1) * PAGE_SIZE)
            .limit(PAGE_SIZE + 1)
        )
        async with self.sessions() as session:
            found = list((await session.execute(statement)).scalars().all())
        return found[:PAGE_SIZE], len(found) > PAGE_SIZE

    async def existing_rows(
        self, records: Iterable[tuple[str, str | None]]
    ) -> dict[tuple[str, str], Any]:
        """Those of the (resource, row id) records that still exist, by the same pair."""
        wanted: dict[str, dict[Any, str]] = {}
        for resource, row_id in records:
            view = self.views.get(resource)
            if view is None or row_id is None:
                continue
            key = primary_key_value(view.model, row_id)
            if key is not None:
                wanted.setdefault(resource, {})[key] = row_id
        found: dict[tuple[str, str], Any] = {}
        async with self.sessions() as session:
            for resource, keys in wanted.items():
                model = self.views[resource].model
                column = sa_inspect(model).primary_key[0]
                rows = await session.execute(select(model).where(column.in_(list(keys))))
                for row in rows.scalars():
                    found[(resource, keys[getattr(row, column.key)])] = row
        return found

    def shown(
        self, request: Request, entries: Sequence[HistoryEntry], rows: Mapping[tuple[str, str], Any]
    ) -> list[ShownEntry]:
        return [self.shown_entry(request, entry, rows) for entry in entries]

    def shown_entry(
        self, request: Request, entry: HistoryEntry, rows: Mapping[tuple[str, str], Any]
    ) -> ShownEntry:
        view = self.views.get(entry.resource)
        shown = ShownEntry(
            entry=entry,
            at=format_at(entry.at),
            table=view.name_plural if view is not None else entry.resource,
            changes=[],
        )
        changes = entry.changes or {}
        if entry.action == "loaded":
            shown.summary = f"{changes.get('rows', '?')} rows"
            return shown
        if view is None:  # a table no longer registered: its values as stored
            shown.changes = [_change(name, None, change) for name, change in changes.items()]
            return shown
        types = {c.name: column_python_type(c) for c in data_columns(view.resource.table)}
        labels = view._column_labels  # the labels the admin's own pages use
        for name, change in shown_changes(view.resource, changes).items():
            label = str(labels.get(name) or labels.get(name.removesuffix("_ids"), name))
            shown.changes.append(_change(label, types.get(name), change))
        if entry.row_id is not None:
            shown.history_url = str(
                request.url_for(
                    "admin:view-record-history", identity=view.identity, pk=entry.row_id
                )
            )
            row = rows.get((entry.resource, entry.row_id))
            if row is not None:
                shown.record_url = str(view._build_url_for("admin:details", request, row))
                shown.record_label = str(row)
        return shown

    def filters(self, request: Request) -> Filters:
        """The query string's filters, with a message for each that cannot be one."""
        query = request.query_params
        filters = Filters(
            table=query.get("table", "").strip(),
            user=query.get("user", "").strip(),
            since=query.get("from", "").strip(),
            until=query.get("to", "").strip(),
        )
        if filters.table and filters.table not in self.views:
            filters.errors.append(f"There is no table {filters.table!r}: choose one from the list.")
        filters.since_date = _date(filters, filters.since, "From")
        filters.until_date = _date(filters, filters.until, "To")
        if filters.since_date and filters.until_date and filters.since_date > filters.until_date:
            filters.errors.append("'From' is after 'To': no change can be in between.")
        return filters

    def conditions(self, filters: Filters) -> list[ColumnElement[bool]]:
        conditions: list[ColumnElement[bool]] = []
        if filters.table:
            conditions.append(HISTORY.c.resource == filters.table)
        if filters.user:
            actor = func.lower(HISTORY.c.actor)
            conditions.append(actor.contains(filters.user.lower(), autoescape=True))
        if filters.since_date is not None:
            since = datetime.combine(filters.since_date, time(), tzinfo=UTC)
            conditions.append(HISTORY.c.at >= since)
        if filters.until_date is not None:
            until = datetime.combine(filters.until_date + timedelta(days=1), time(), tzinfo=UTC)
            conditions.append(HISTORY.c.at < until)
        return conditions


def _date(filters: Filters, value: str, name: str) -> date | None:
    if not value:
        return None
    try:
        return _DATE.validate_python(value)
    except ValidationError:
        filters.errors.append(f"'{name}' must be a date such as 2026-01-31, not {value!r}.")
        return None


def _change(label: str, python_type: type | None, change: Any) -> ShownChange:
    if change == CHANGED:
        return ShownChange(label, None, None, secret=True)
    if isinstance(change, list) and len(change) == 2:
        before, after = change
        return ShownChange(
            label, format_value(python_type, before), format_value(python_type, after)
        )
    return ShownChange(label, None, format_value(python_type, change))


def _page_urls(request: Request, params: dict[str, str], page: int, more: bool) -> dict[str, str]:
    url = URL(str(request.url)).remove_query_params(["page"])
    urls: dict[str, str] = {}
    if page > 1:
        urls["newer"] = str(url.replace_query_params(**params, page=page - 1))
    if more:
        urls["older"] = str(url.replace_query_params(**params, page=page + 1))
    return urls


def _is_admin(request: Request) -> bool:
    user = current_user(request)
    return user is not None and Role(user.role).allows(Role.admin)


class HistoryView(BaseView):
    """Every change, newest first, filterable; for admins only."""

    name = "History"
    icon = "fa-solid fa-clock-rotate-left"
    category = "Administration"
    pages: ClassVar[HistoryPages]

    def is_visible(self, request: Request) -> bool:
        return _is_admin(request)

    def is_accessible(self, request: Request) -> bool:
        # any signed-in user reaches the page, to be told why they may not see it
        return current_user(request) is not None

    @expose("/history", identity="history")
    async def history(self, request: Request) -> Response:
        if not _is_admin(request):
            raise HTTPException(403, "Only administrators may see every change.")
        pages = self.pages
        filters = pages.filters(request)
        page = page_number(request)
        entries: list[HistoryEntry] = []
        more = False
        if not filters.errors:
            entries, more = await pages.entries(pages.conditions(filters), page)
        rows = await pages.existing_rows((e.resource, e.row_id) for e in entries)
        context = {
            "title": "History",
            "subtitle": "Every change, newest first",
            "filters": filters,
            "tables": sorted(
                ((name, view.name_plural) for name, view in pages.views.items()),
                key=lambda pair: str(pair[1]).lower(),
            ),
            "entries": pages.shown(request, entries, rows),
            "page": page,
            "page_urls": _page_urls(request, filters.params(), page, more),
            "show_record": True,
        }
        return await self.templates.TemplateResponse(
            request, "tablestack/history_all.html", context
        )


class RecordHistoryView(BaseView):
    """One record's changes, newest first; for whoever may read its table."""

    name = "Record history"
    in_menu: ClassVar[bool] = False
    pages: ClassVar[HistoryPages]

    def is_visible(self, request: Request) -> bool:
        return False

    def is_accessible(self, request: Request) -> bool:
        return current_user(request) is not None  # the table's read role is checked per page

    @expose("/{identity}/history/{pk:path}", identity="record-history")
    async def record_history(self, request: Request) -> Response:
        pages = self.pages
        view = pages.view_by_identity(request.path_params["identity"])
        user = current_user(request)
        if user is None or not Role(user.role).allows(view.resource.read_role):
            raise HTTPException(403, f"You may not read {view.name_plural.lower()}.")
        pk = str(request.path_params["pk"])
        if primary_key_value(view.model, pk) is None:
            raise HTTPException(404, f"There is no {view.name.lower()} with id {pk!r}.")
        page = page_number(request)
        conditions = [and_(HISTORY.c.resource == view.resource.name, HISTORY.c.row_id == pk)]
        entries, more = await pages.entries(conditions, page)
        rows = await pages.existing_rows([(view.resource.name, pk)])
        record = rows.get((view.resource.name, pk))
        context = {
            "title": f"History of {view.name.lower()} {pk}",
            "subtitle": str(record) if record is not None else "",
            "model_view": view,
            "pk": pk,
            "record": record,
            "record_url": (
                str(view._build_url_for("admin:details", request, record)) if record else None
            ),
            "edit_url": (
                str(view._build_url_for("admin:edit", request, record))
                if record is not None and view.has_permission(request, "edit", record)
                else None
            ),
            "entries": pages.shown(request, entries, rows),
            "page": page,
            "page_urls": _page_urls(request, {}, page, more),
            "show_record": False,
        }
        return await self.templates.TemplateResponse(
            request, "tablestack/history_record.html", context
        )


def history_views(
    sessions: async_sessionmaker[AsyncSession],
) -> tuple[HistoryPages, list[type[BaseView]]]:
    """The two history pages over `sessions`; `register` the table views once they exist."""
    pages = HistoryPages(sessions)
    views: list[type[BaseView]] = [
        type("HistoryView", (HistoryView,), {"pages": pages}),
        type("RecordHistoryView", (RecordHistoryView,), {"pages": pages}),
    ]
    return pages, views
