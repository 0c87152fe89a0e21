"""Every registered table's admin routes under nasty input, on both databases: never a 500,
never a statement, a driver's message or a traceback on the page.

Walks list, details, edit (GET and POST), create, delete, export, ajax lookup and SQLAdmin's
file routes of each view with a battery of bad path ids, query parameters and form values
(NUL characters, lone surrogates, invalid UTF-8, out-of-range and malformed keys of every key
type the fixture app has: integer, BIGINT, UUID, chosen string). Nothing here names a table:
a newly registered one is covered as it stands.
"""

import re
from collections.abc import AsyncIterator, Iterable
from typing import Any
from urllib.parse import quote

import pytest
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient, Response

from backend.admin.views import ResourceView, build_views
from backend.models import Role, User
from backend.registry import ResourceOptions, registry
from tests.admin.conftest import AdminClient, csrf_token, sign_in
from tests.admin.test_admin_http import field_errors
from tests.admin.test_every_table import AdminRows, form_value

VIEWS = {view.resource.name: view for view in build_views(registry)}

# What must never reach a page: a traceback, a statement, a driver's or SQLAlchemy's words,
# the name of a Python exception.
_LEAKS = re.compile(
    r"Traceback|sqlalchemy|asyncpg|aiosqlite|sqlite3|psycopg|\bSELECT\b.{0,200}\bFROM\b|"
    r"\[SQL:|Background on this error|invalid input syntax|invalid byte sequence|"
    r"\b(?:Unicode(?:En|De)code|Overflow|Value|Type|Key|Attribute|Recursion)Error\b",
    re.S,
)
_ERROR_MESSAGE = re.compile(r'<p class="empty-title" id="error-message">\s*(.+?)\s*</p>', re.S)

# Path ids no table's key can be, or that no row has: every key type meets each of them.
# Written as a browser sends them (percent-encoded where needed).
BAD_IDS = (
    "abc",
    "-1",
    "1.5",
    "2147483648",  # past a 32-bit INTEGER
    "9223372036854775808",  # past a BIGINT
    "a%00b",
    "%ED%A0%80",  # a lone surrogate, UTF-8 encoded (which is invalid UTF-8)
    "%27%3B--",
    "00000000-0000-0000-0000-00000000000g",
    "00000000-0000-0000-0000-000000000000",
    "ZZZ",
    "x" * 3000,
    "a/b",
)

# Query strings of the list page; the export must ignore them.
BAD_LIST_QUERIES = (
    "search=%00",
    "search=a%00b",
    "search=%ED%A0%80",
    "search=%FF",
    "search=%25",
    "search=_",
    "search=%5C",
    "search=%27",
    "search=" + "x" * 5000,
    "search=a&search=b",
    "page=abc",
    "page=-1",
    "page=0",
    "page=1.5",
    "page=99999999999999999999",
    "page=2147483648",
    "page=%00",
    "pageSize=-1",
    "pageSize=0",
    "pageSize=abc",
    "pageSize=99999999999999999999",
    "pageSize=100000",
    "sortBy=nonexistent",
    "sortBy=%00",
    "sortBy=__class__",
    "sortBy=id%3Bdrop",
    "sortBy=id&sort=sideways",
    "sortBy=id&sort=%00",
    "error=%3Cscript%3E",
)
# Terms no stored text can contain: they find nothing (and never reach the database).
UNSTORABLE_TERMS = ("%00", "a%00b")
BAD_TERMS = (*UNSTORABLE_TERMS, "%ED%A0%80", "%25", "%5C%27", "x" * 5000, "")

# Values posted in otherwise valid create and edit forms (raw bytes of an
# application/x-www-form-urlencoded body). Every field at once meets each value (WTForms and
# the schemas refuse it or take it); on create, values a field's schema may take meet each
# field alone too, so that they reach the write (which refuses what the table cannot hold,
# a NUL next to its field).
NUL_VALUES = (b"%00", b"a%00b")
SCHEMA_VALUES = (*NUL_VALUES, b"%ED%A0%80", b"%FF%FE", b"%5B" * 3000)  # `[[[...` too deep
WRITE_VALUES = (
    b"99999999999999999999999999",
    b"-1e999",
    b"NaN",
    b"%22%5Cud800%22",  # the JSON text "\ud800": a lone surrogate once parsed
    b"%22%5Cu0000%22",  # the JSON text "\u0000"
    b"99999999999 days",
)


class Findings:
    """Every response of a test that was a server error or showed the server's insides."""

    def __init__(self) -> None:
        self.problems: list[str] = []

    def check(self, response: Response, what: str) -> Response:
        if response.status_code >= 500:
            self.problems.append(f"{what}: {response.status_code}")
        for text in (response.text, *response.headers.values()):
            leak = _LEAKS.search(text)
            if leak is not None:
                around = text[max(0, leak.start() - 150) : leak.end() + 150]
                self.problems.append(f"{what}: shows {leak.group(0)!r} in {around!r}")
        return response

    def expect(self, response: Response, what: str, *statuses: int) -> None:
        if response.status_code < 500 and response.status_code not in statuses:
            self.problems.append(f"{what}: {response.status_code}, expected one of {statuses}")

    def readable(self, response: Response, what: str) -> None:
        """An error page that says what went wrong, in words."""
        if "text/html" not in response.headers.get("content-type", ""):
            return
        message = _ERROR_MESSAGE.search(response.text)
        if message is None or not re.search(r"[A-Za-z]{3}", message.group(1)):
            self.problems.append(f"{what}: an error page without a message")

    def assert_none(self) -> None:
        assert not self.problems, "\n".join(self.problems[:60]) + f"\n({len(self.problems)})"


@pytest.fixture(params=[resource.name for resource in registry])
def resource(request: pytest.FixtureRequest) -> ResourceOptions:
    return registry.get(request.param)


@pytest.fixture
async def admin(app: FastAPI, users: dict[Role, User]) -> AsyncIterator[AdminClient]:
    """An admin's client that gets the server's 500 as a response (to report every one)."""
    transport = ASGITransport(app=app, raise_app_exceptions=False)
    async with AsyncClient(transport=transport, base_url="http://testserver") as http:
        response = await sign_in(http, users[Role.admin].email)
        assert response.status_code == 302, response.text
        page = await http.get("/admin/")
        yield AdminClient(http, csrf_token(page.text))


@pytest.fixture
def rows(app: FastAPI, admin: AdminClient) -> AdminRows:
    return AdminRows(app, admin)


@pytest.fixture
def findings() -> Findings:
    return Findings()


def view_of(resource: ResourceOptions) -> type[ResourceView]:
    return VIEWS[resource.name]


def _posted(form: dict[str, Any], without: set[str]) -> list[tuple[str, str]]:
    """The form's fields as a browser posts them, but those `without`."""
    pairs: list[tuple[str, str]] = []
    for name, value in form.items():
        if name in without:
            continue
        for item in value if isinstance(value, tuple) else (value,):
            posted = form_value(item)
            if posted is not None:
                pairs.append((name, str(posted)))
    return pairs


def _urlencoded(token: str, form: dict[str, Any], bad: dict[str, bytes]) -> bytes:
    """A form body as a browser sends it, with the `bad` fields' values as raw bytes."""
    parts = [b"csrftoken=" + quote(token).encode(), b"save=Save"]
    for name, value in _posted(form, without=set(bad)):
        parts.append(f"{quote(name)}={quote(value)}".encode())
    parts += [quote(name).encode() + b"=" + raw for name, raw in bad.items()]
    return b"&".join(parts)


async def _post_raw(client: AdminClient, url: str, body: bytes) -> Response:
    headers = {"content-type": "application/x-www-form-urlencoded"}
    return await client.http.post(url, content=body, headers=headers)


async def _bad_path_ids(
    base: str, resource: ResourceOptions, admin: AdminClient, findings: Findings
) -> None:
    """Details and edit pages of keys no row has or can have: a 404 page saying so."""
    for pk in BAD_IDS:
        for url in (f"{base}/details/{pk}", f"{base}/edit/{pk}"):
            response = findings.check(await admin.http.get(url), url)
            findings.expect(response, url, 404)
            findings.readable(response, url)
        url = f"{base}/edit/{pk}"
        response = findings.check(await admin.post(url, {"save": "Save"}), f"POST {url}")
        findings.expect(response, f"POST {url}", 404)
        url = f"{base}/{pk}/{resource.primary_key}/download/"
        findings.expect(findings.check(await admin.http.get(url), url), url, 404)


async def _file_routes(
    base: str, resource: ResourceOptions, pk: str, admin: AdminClient, findings: Findings
) -> None:
    """SQLAdmin's file routes: the generated views have no file columns, so always a 404."""
    for column in (resource.primary_key, resource.natural_key[0], "nonexistent"):
        for action in ("download", "preview"):
            url = f"{base}/{quote(pk, safe='')}/{column}/{action}/"
            findings.expect(findings.check(await admin.http.get(url), url), url, 404)


async def _bad_deletes(base: str, pk: str, admin: AdminClient, findings: Findings) -> None:
    """Deletes naming a key no row has or can have, alone or beside the row `pk`."""
    key = quote(pk, safe="")
    for pks in (*BAD_IDS, "", ",", ",,,", f"{key},abc", f"abc,{key}", f"{key},%00"):
        url = f"{base}/delete?pks={pks}"
        findings.check(await admin.delete(url), f"DELETE {url}")


async def _bad_list_parameters(base: str, pk: str, admin: AdminClient, findings: Findings) -> None:
    """The list ignores or refuses (400, a page saying why) bad parameters; the export, which
    takes none, ignores them; a search for text no row can hold finds nothing."""
    for query in BAD_LIST_QUERIES:
        url = f"{base}/list?{query}"
        response = findings.check(await admin.http.get(url), url)
        findings.expect(response, url, 200, 302, 400)
        if response.status_code == 400:
            findings.readable(response, url)
    for query in ("search=%00", "page=abc", "pageSize=-1", "sortBy=nonexistent"):
        url = f"{base}/export/csv?{query}"
        findings.expect(findings.check(await admin.http.get(url), url), url, 200)
    for term in UNSTORABLE_TERMS:
        url = f"{base}/list?search={term}"
        response = await admin.http.get(url)
        findings.expect(response, url, 200)
        if f"{base}/details/{quote(pk)}" in response.text:
            findings.problems.append(f"{url}: found a row")
    for export_type in ("xml", "%00", "csv%00", "JSON", "%ED%A0%80"):
        url = f"{base}/export/{export_type}"
        findings.expect(findings.check(await admin.http.get(url), url), url, 404)


async def _bad_lookups(
    base: str, view: type[ResourceView], admin: AdminClient, findings: Findings
) -> None:
    """The forms' related-row lookups: a term no row can hold finds nothing."""
    names: Iterable[str] = (*view.form_ajax_refs, "nonexistent", "%00", "")
    for name in names:
        for term in BAD_TERMS:
            url = f"{base}/ajax/lookup?name={quote(name, safe='%')}&term={term}"
            response = findings.check(await admin.http.get(url), url)
            if name in view.form_ajax_refs and term in UNSTORABLE_TERMS:
                findings.expect(response, url, 200)
                if response.status_code == 200 and response.json() != {"results": []}:
                    findings.problems.append(f"{url}: found {response.text[:200]}")
    url = f"{base}/ajax/lookup"
    findings.check(await admin.http.get(url), url)


async def test_bad_urls_are_refused_readably(
    resource: ResourceOptions, admin: AdminClient, rows: AdminRows, findings: Findings
) -> None:
    view = view_of(resource)
    base = f"/admin/{view.identity}"
    pk = await rows.create(resource)  # with its related rows: lookups have rows to find
    await _bad_path_ids(base, resource, admin, findings)
    await _file_routes(base, resource, pk, admin, findings)
    await _bad_list_parameters(base, pk, admin, findings)
    await _bad_lookups(base, view, admin, findings)
    await _bad_deletes(base, pk, admin, findings)
    assert await rows.row(resource, pk) is not None, "a delete naming a bad key deleted a row"
    findings.assert_none()


async def _post_bad(
    admin: AdminClient, url: str, form: dict[str, Any], bad: dict[str, bytes], findings: Findings
) -> Response:
    what = f"POST {url} {', '.join(bad)}={next(iter(bad.values()))[:40]!r}"
    response = await _post_raw(admin, url, _urlencoded(admin.token, form, bad))
    findings.check(response, what)
    findings.expect(response, what, 302, 400)
    return response


async def _bad_form_posts(
    url: str, form: dict[str, Any], admin: AdminClient, findings: Findings, *, one_by_one: bool
) -> None:
    # a checkbox posted with any value is ticked, as in a browser: not text
    texts = [name for name, value in form.items() if not isinstance(value, bool)]
    for value in (*SCHEMA_VALUES, *WRITE_VALUES):
        await _post_bad(admin, url, form, dict.fromkeys(texts, value), findings)
    if not one_by_one:
        return
    for name in texts:
        for value in (NUL_VALUES[-1], *WRITE_VALUES):
            response = await _post_bad(admin, url, form, {name: value}, findings)
            if value in NUL_VALUES and not field_errors(response.text).get(name):
                findings.problems.append(f"POST {url} {name}={value!r}: no error next to it")


async def _files_for_fields(
    base: str, form: dict[str, Any], admin: AdminClient, findings: Findings
) -> None:
    """A multipart body with a file where the form has a field: a 400 page."""
    for field in form:
        data: dict[str, Any] = {"csrftoken": admin.token, "save": "Save"}
        for name, value in _posted(form, {field}):
            data.setdefault(name, []).append(value)
        files = {field: ("x.txt", b"\x00\xff payload", "application/octet-stream")}
        response = await admin.http.post(f"{base}/create", data=data, files=files)
        findings.check(response, f"POST {base}/create {field}=<file>")
        findings.expect(response, f"POST {base}/create {field}=<file>", 400)
        findings.readable(response, f"POST {base}/create {field}=<file>")


async def test_bad_form_values_are_refused_next_to_their_field(
    resource: ResourceOptions, admin: AdminClient, rows: AdminRows, findings: Findings
) -> None:
    view = view_of(resource)
    base = f"/admin/{view.identity}"
    form = await rows.form(resource)
    await _bad_form_posts(f"{base}/create", form, admin, findings, one_by_one=True)
    pk = quote(await rows.create(resource), safe="")
    changes = await rows.form(resource, editing=True)
    await _bad_form_posts(f"{base}/edit/{pk}", changes, admin, findings, one_by_one=False)
    await _files_for_fields(base, form, admin, findings)
    findings.assert_none()
