"""Conditional requests on one row (RFC 9110, section 13): its version as an ETag.

`GET /api/<resource>/{id}` answers `ETag: "<row_version>"`, and `304 Not Modified` to an
`If-None-Match` that names it. `PUT`, `PATCH` and `DELETE` with `If-Match: "<version>"` apply
only while the row is at that version (`412 Precondition Failed` with the current `ETag`
otherwise); with the REQUIRE_IF_MATCH setting a write without `If-Match` is `428`.
"""

import re

from fastapi import HTTPException, Request, status

# What `If-Match` is compared with when it names no version we could hold (a weak or
# malformed tag): a version no row has, so the write is refused with the current ETag.
NEVER = -1
# RFC 9110, 8.8.3: entity-tag = [ "W/" ] DQUOTE *etagc DQUOTE (no comma: lists are split).
_ENTITY_TAG = re.compile(r'(?:W/)?"[\x21\x23-\x2b\x2d-\x7e\x80-\xff]*"')


def etag(version: int) -> str:
    """The strong entity tag of a row at `version`."""
    return f'"{version}"'


def _tags(header: str) -> list[str]:
    return [tag.strip() for tag in header.split(",") if tag.strip()]


def expected_version(request: Request, *, required: bool) -> int | None:
    """The version `If-Match` requires the row to be at (None: no condition).

    `*` only asks that the row exists, which every write checks anyway. A weak or malformed
    tag can never match (RFC 9110 compares strongly), so the write gets its 412.
    """
    header = request.headers.get("if-match")
    if header is None:
        if required:
            raise HTTPException(
                status.HTTP_428_PRECONDITION_REQUIRED,
                "This server requires If-Match on writes: send the ETag of the row as read, "
                'e.g. If-Match: "3"',
            )
        return None
    tags = _tags(header)
    if tags == ["*"]:
        return None
    if len(tags) != 1:
        raise HTTPException(
            status.HTTP_400_BAD_REQUEST, "If-Match: send the one ETag of the row as read"
        )
    tag = tags[0]
    if _ENTITY_TAG.fullmatch(tag) is None:  # not an entity tag at all (`0`, `null`, `{}`)
        raise HTTPException(
            status.HTTP_400_BAD_REQUEST,
            'If-Match: not an entity tag; send the ETag of the row as read, e.g. "3"',
        )
    if not tag[1:-1].isascii() or not tag[1:-1].isdigit():  # weak, or no version of ours
        return NEVER
    return int(tag[1:-1])


def not_modified(request: Request, version: int) -> bool:
    """Whether `If-None-Match` names the row's current version (or `*`): answer 304."""
    header = request.headers.get("if-none-match")
    if header is None:
        return False
    current = etag(version)
    return any(tag in ("*", current, f"W/{current}") for tag in _tags(header))


def precondition_failed(current: int) -> HTTPException:
    """The 412 of a write whose `If-Match` names a version the row no longer has."""
    return HTTPException(
        status.HTTP_412_PRECONDITION_FAILED,
        f"The row changed since it was read: it is at version {current}. Read it again "
        "(the current ETag is in this response's headers).",
        headers={"ETag": etag(current)},
    )
