"""Database failures a client should retry, told apart from the rest.

The API answers them 503 with `Retry-After` (409 for a transaction that lost to a concurrent
one), the admin with its own 503 page. They arrive in several shapes, all classified here:

- SQLAlchemy's errors (`DBAPIError`, with the driver's SQLSTATE on `.orig`): the ORM paths,
  and the generated routes' asyncpg path, which translates its errors the same way;
- `sqlalchemy.exc.TimeoutError`: every pooled connection was busy for `DB_POOL_TIMEOUT_S`;
- a `ConnectionError` (refused, reset) that a driver let through unwrapped; `backend.db`
  turns every failure to connect (DNS and timeouts too) into an `OperationalError`.
"""

from typing import Literal

from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

RETRY_AFTER_S = 1

Failure = Literal["unavailable", "conflict"]

# SQLSTATE classes and codes (PostgreSQL, Appendix A) that mean "not now", not "never".
_UNAVAILABLE_CLASSES = (
    "08",  # connection exception
    "53",  # insufficient resources: too many connections (53300), disk full, out of memory
    "57",  # operator intervention: shutting down / starting up (57P01-03), query canceled
    # (57014: statement_timeout)
    "58",  # system error (I/O error on the server)
)
_UNAVAILABLE_CODES = frozenset(
    {
        "55P03",  # lock_not_available: lock_timeout, NOWAIT
        "55006",  # object_in_use
        "25P03",  # idle_in_transaction_session_timeout
    }
)
_CONFLICT_CODES = frozenset(
    {
        "40001",  # serialization_failure: lost to a concurrent transaction
        "40P01",  # deadlock_detected: chosen as the victim
    }
)


def sqlstate(exc: DBAPIError) -> str | None:
    """The SQLSTATE the database gave, when it gave one (PostgreSQL only)."""
    original = exc.orig
    for candidate in (original, getattr(original, "__cause__", None)):
        code = getattr(candidate, "sqlstate", None)
        if isinstance(code, str):
            return code
    return None


def classify(exc: BaseException) -> Failure | None:
    """ "unavailable" (retry later), "conflict" (retry now) or None (not a passing failure)."""
    if isinstance(exc, PoolTimeoutError | ConnectionError):
        return "unavailable"
    if not isinstance(exc, DBAPIError):
        return None
    code = sqlstate(exc)
    if code in _CONFLICT_CODES:
        return "conflict"
    if code is not None and (code[:2] in _UNAVAILABLE_CLASSES or code in _UNAVAILABLE_CODES):
        return "unavailable"
    if exc.connection_invalidated or isinstance(exc, OperationalError | InterfaceError):
        # a lost connection, a refused one, or SQLite's "database is locked" after its
        # busy timeout
        return "unavailable"
    return None


def describe(exc: BaseException) -> str:
    """One line for the log: what failed, without SQL or parameters."""
    if isinstance(exc, DBAPIError):
        original = exc.orig
        cause = getattr(original, "__cause__", None) or original
        text = str(cause).strip().splitlines()[0] if str(cause).strip() else ""
        code = sqlstate(exc)
        prefix = f"{type(cause).__name__}" + (f" [{code}]" if code else "")
        return f"{prefix}: {text}" if text else prefix
    return f"{type(exc).__name__}: {exc}"
