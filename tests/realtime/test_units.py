"""The feed's parts without a server: filters, tickets, a subscription's bounded queue."""

import time
from decimal import Decimal
from typing import Any

import pytest
from fastapi.exceptions import RequestValidationError

from backend.auth.tokens import InvalidToken, TokenClaims, create_access_token
from backend.config import Settings
from backend.models import Role
from backend.realtime.events import Event
from backend.realtime.filters import matches_all, parse_filters
from backend.realtime.subscriptions import TOO_SLOW, UNAUTHORIZED, Closed, Subscription
from backend.realtime.tickets import issue_ticket, read_ticket
from backend.registry import registry

SETTINGS = Settings(secret_key="unit-test-secret-key-0123456789abcdef", realtime_queue_size=3)
PRODUCT = {
    "id": 1,
    "sku": "BK-1",
    "name": "Blue notebook",
    "description": None,
    "price": "12.50",
    "stock": 5,
    "is_active": True,
    "category_id": 2,
    "tag_ids": [1, 3],
}


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ([("price__gte", "10")], True),
        ([("price__gt", "12.5")], False),
        ([("price", "12.50")], True),
        ([("name__ilike", "%NOTE%")], True),
        ([("name__like", "%NOTE%")], False),
        ([("name__like", "Blue_notebook")], True),
        ([("sku__in", "XX,BK-1")], True),
        ([("description__isnull", "true")], True),
        ([("description__ne", "x")], True),  # a null is not equal to anything
        ([("tag_ids", "3")], True),
        ([("tag_ids", "2")], False),
        ([("tag_ids__in", "2,3")], True),
        ([("is_active", "false")], False),
        ([("q", "blue NOTE")], True),
        ([("q", "red")], False),
        ([("stock__lt", "6"), ("category_id", "2")], True),
        ([("stock__lt", "6"), ("category_id", "3")], False),
    ],
)
def test_filters_match_as_the_list_route(params: list[tuple[str, str]], expected: bool) -> None:
    conditions = parse_filters(registry.get("products"), params, "postgresql")
    assert matches_all(conditions, PRODUCT) is expected
    typed: dict[str, Any] = {**PRODUCT, "price": Decimal("12.50")}  # as read from a row
    assert matches_all(conditions, typed) is expected


@pytest.mark.parametrize(
    ("key", "raw", "message"),
    [
        ("price__gte", "cheap", "price__gte: must be a decimal written as text"),
        ("colour", "red", "unknown field 'colour'"),
        ("price__like", "1%", "unknown operator 'like' for price"),
        ("stock", "99999999999", "between"),
    ],
)
def test_bad_filters_are_a_422_naming_the_parameter(key: str, raw: str, message: str) -> None:
    with pytest.raises(RequestValidationError) as refused:
        parse_filters(registry.get("products"), [(key, raw)], "sqlite")
    (error,) = refused.value.errors()
    assert error["loc"] == ("query", key)
    assert message in error["msg"]


def test_a_ticket_carries_its_token_expiry_and_is_no_access_token() -> None:
    expires = time.time() + 600
    ticket = issue_ticket(TokenClaims(7, 3), expires, SETTINGS)
    claims, token_expires = read_ticket(ticket, SETTINGS)
    assert (claims, round(token_expires, 3)) == (TokenClaims(7, 3), round(expires, 3))
    with pytest.raises(InvalidToken):
        read_ticket(create_access_token(7, SETTINGS), SETTINGS)
    with pytest.raises(InvalidToken):
        read_ticket(
            issue_ticket(TokenClaims(7, 1), expires, SETTINGS, now=time.time() - 60), SETTINGS
        )
    other = Settings(secret_key="another-secret-key-0123456789abcdefgh")
    with pytest.raises(InvalidToken):
        read_ticket(ticket, other)


def _event(cursor: int, resource: str = "products") -> Event:
    return Event(cursor, registry.get(resource), "updated", 1, PRODUCT, "{}")


async def test_a_subscription_that_falls_behind_is_closed_and_its_queue_freed() -> None:
    subscription = Subscription(
        user_id=1,
        role=Role.viewer,
        resources=None,
        conditions=[],
        expires_at=None,
        settings=SETTINGS,
    )
    for cursor in (1, 2, 3):
        subscription.offer(_event(cursor))
    subscription.offer(_event(4, "users"))  # a viewer does not get users: not queued
    assert [e.cursor for e in await subscription.next(0.01)] == [1, 2, 3]
    for cursor in (5, 6, 7, 8):
        subscription.offer(_event(cursor))
    with pytest.raises(Closed) as closed:
        await subscription.next(0.01)
    assert closed.value.code == TOO_SLOW
    assert "more than 3 events behind" in closed.value.reason
    assert not subscription._pending


def test_a_demoted_or_expired_subscription_closes() -> None:
    def subscription(**changes: Any) -> Subscription:
        options: dict[str, Any] = {
            "user_id": 3,
            "role": Role.admin,
            "resources": [registry.get("users")],
            "conditions": [],
            "expires_at": None,
            "settings": SETTINGS,
        }
        return Subscription(**{**options, **changes})

    demoted = subscription()
    demoted.new_role(Role.editor, True)
    assert demoted.closed is not None and demoted.closed.code == 4403
    everything = subscription(resources=None)
    everything.new_role(Role.viewer, True)  # everything it may read: fewer tables, still open
    assert everything.closed is None and not everything.may_read(registry.get("users"))
    gone = subscription()
    gone.new_role(None, False)
    assert gone.closed is not None and gone.closed.code == UNAUTHORIZED
    expired = subscription(expires_at=time.time() - 1)
    expired.check_expiry()
    assert expired.closed is not None and "token expired" in expired.closed.reason
    revoked = subscription(auth_version=1)
    revoked.new_role(Role.admin, True, 1)
    assert revoked.closed is None
    revoked.new_role(Role.admin, True, 2)  # a new password ends the stream as it ends the token
    assert revoked.closed is not None and revoked.closed.code == UNAUTHORIZED
    assert "revoked" in revoked.closed.reason
