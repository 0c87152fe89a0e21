"""The domain errors of a write, which each surface renders in its own way.

The API answers 422 (`invalid`, `missing`) or 409 (the rest) with `loc: ["body", field]`,
the admin puts the message next to the field, and seeding prints one line naming the file,
the row and the field. A message is a sentence for a person: never SQL or a driver's text.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

ProblemKind = Literal[
    "invalid",  # a value the table cannot hold (NUL character, too long, out of range)
    "missing",  # null where the column requires a value
    "unique",
    "foreign_key",  # refers to a row that does not exist
    "check",
    "tree_cycle",  # a row made its own ancestor
    "refused",  # a hook refused the write
    "conflict",  # a hook refused the write because of data already stored
    "other",  # another rule of the database
]
# Kinds that conflict with data already stored (409 in the API); the others are the
# request's own fault (422).
CONFLICT_KINDS = frozenset({"unique", "foreign_key", "check", "tree_cycle", "conflict", "other"})


@dataclass(frozen=True)
class Problem:
    """What is wrong with one field (`field` None: with the row as a whole)."""

    field: str | None
    message: str
    kind: ProblemKind = "invalid"
    constraint: str | None = None
    # Every field the rule involves, when it is several (a unique pair): `field` is the first.
    fields: tuple[str, ...] = ()

    @property
    def location(self) -> tuple[str, ...]:
        """The fields to show the problem next to (none: the row as a whole)."""
        return self.fields or ((self.field,) if self.field is not None else ())


class WriteError(Exception):
    """The write was refused and nothing of it was written."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = tuple(problems)
        super().__init__("; ".join(p.message for p in self.problems))

    @property
    def conflict(self) -> bool:
        """Whether the write conflicts with stored data (rather than being invalid itself)."""
        return any(p.kind in CONFLICT_KINDS for p in self.problems)


def refuse(field: str | None, message: str, *, conflict: bool = False) -> WriteError:
    """The error a hook raises to refuse a write: `raise refuse("status", "...")`.

    `conflict`: the request is fine in itself but stored data forbids it (the API's 409 rather
    than 422), e.g. demoting the last admin.
    """
    return WriteError([Problem(field, message, "conflict" if conflict else "refused")])


class RowNotFound(Exception):
    """No row of the resource has this id (or it was deleted meanwhile)."""

    def __init__(self, resource: str, row_id: Any) -> None:
        self.resource = resource
        self.row_id = row_id
        super().__init__(f"No {resource} with id {row_id}")


class StillReferenced(WriteError):
    """A delete refused because other rows still refer to the row."""

    def __init__(self, resource: str, row_id: Any, referenced_by: Sequence[str]) -> None:
        self.referenced_by = tuple(referenced_by)
        where = ", ".join(self.referenced_by) or "other rows"
        super().__init__(
            [Problem(None, f"{resource} {row_id} is still referenced by {where}", "foreign_key")]
        )


class VersionMismatch(Exception):
    """The row changed since the version the writer last saw (a lost update refused)."""

    def __init__(self, resource: str, row_id: Any, expected: int, current: int) -> None:
        self.resource = resource
        self.row_id = row_id
        self.expected = expected
        self.current = current
        super().__init__(
            f"{resource} {row_id} is at version {current}, not {expected}: it changed meanwhile"
        )
