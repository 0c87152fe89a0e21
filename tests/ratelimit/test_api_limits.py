"""Limits on the API: per user by role and route kind, per IP when anonymous, answered with a
429, `Retry-After` and the `RateLimit-*` headers; counters in Redis shared between apps."""

import logging

import pytest
from httpx import Response

from backend.models import Role
from tests.ratelimit.conftest import REDIS_URL, LimitedFactory

PRODUCTS = "/api/products"


def assert_limited(response: Response, limit: int) -> None:
    assert response.status_code == 429, response.text
    assert response.json()["detail"].startswith("Too many requests")
    retry_after = int(response.headers["retry-after"])
    assert 1 <= retry_after <= 60
    assert response.headers["ratelimit-limit"] == str(limit)
    assert response.headers["ratelimit-remaining"] == "0"
    assert int(response.headers["ratelimit-reset"]) == retry_after


async def test_anonymous_reads_are_limited_per_client_ip(limited_app: LimitedFactory) -> None:
    limited = await limited_app(anonymous_read=True, rate_limit_anonymous_read="3/minute")
    async with limited.client("198.51.100.7") as client, limited.client("198.51.100.8") as other:
        answers = [await client.get(PRODUCTS) for _ in range(4)]
        assert [a.status_code for a in answers] == [200, 200, 200, 429]
        assert [a.headers["ratelimit-remaining"] for a in answers[:3]] == ["2", "1", "0"]
        assert all(a.headers["ratelimit-limit"] == "3" for a in answers)
        assert all(1 <= int(a.headers["ratelimit-reset"]) <= 60 for a in answers)
        assert_limited(answers[3], 3)
        assert (await other.get(PRODUCTS)).status_code == 200  # another address


async def test_each_role_has_its_own_limit_and_each_user_their_own_count(
    limited_app: LimitedFactory,
) -> None:
    limited = await limited_app(
        rate_limit_viewer_read="2/minute", rate_limit_editor_read="4/minute"
    )
    _, viewer = await limited.user(Role.viewer)
    _, editor = await limited.user(Role.editor)
    _, editor2 = await limited.user(Role.editor)
    async with limited.client() as client:  # all three from one address

        async def statuses(token: str, count: int) -> list[int]:
            auth = {"Authorization": f"Bearer {token}"}
            return [(await client.get(PRODUCTS, headers=auth)).status_code for _ in range(count)]

        assert await statuses(viewer, 3) == [200, 200, 429]
        assert await statuses(editor, 5) == [200, 200, 200, 200, 429]
        assert await statuses(editor2, 1) == [200]


async def test_writes_count_apart_from_reads(limited_app: LimitedFactory) -> None:
    limited = await limited_app(rate_limit_editor_write="1/minute")
    _, token = await limited.user(Role.editor)
    auth = {"Authorization": f"Bearer {token}"}
    async with limited.client() as client:
        first = await client.post(
            "/api/categories", json={"name": "Lamps", "slug": "lamps-rl"}, headers=auth
        )
        assert first.status_code == 201, first.text
        assert first.headers["ratelimit-limit"] == "1"
        second = await client.post(
            "/api/categories", json={"name": "Chairs", "slug": "chairs-rl"}, headers=auth
        )
        assert_limited(second, 1)
        assert (await client.get("/api/categories", headers=auth)).status_code == 200
        listed = await client.get("/api/categories", headers=auth)
        names = {row["name"] for row in listed.json()}
        assert "Lamps" in names and "Chairs" not in names  # the 429 wrote nothing


async def test_one_address_is_limited_whoever_signs_its_requests(
    limited_app: LimitedFactory,
) -> None:
    limited = await limited_app(rate_limit_per_ip="3/minute")
    tokens = [(await limited.user(Role.viewer))[1] for _ in range(4)]
    async with limited.client("203.0.113.1") as client, limited.client("203.0.113.2") as other:
        answers = [
            await client.get(PRODUCTS, headers={"Authorization": f"Bearer {token}"})
            for token in tokens
        ]
        assert [a.status_code for a in answers] == [200, 200, 200, 429]
        assert_limited(answers[3], 3)
        fresh = await other.get(PRODUCTS, headers={"Authorization": f"Bearer {tokens[3]}"})
        assert fresh.status_code == 200


async def test_a_bad_token_counts_as_anonymous_and_is_still_a_401(
    limited_app: LimitedFactory,
) -> None:
    limited = await limited_app(rate_limit_anonymous_read="2/minute")
    async with limited.client() as client:
        bad = {"Authorization": "Bearer not-a-token"}
        answers = [await client.get(PRODUCTS, headers=bad) for _ in range(3)]
        assert [a.status_code for a in answers] == [401, 401, 429]


async def test_a_429_carries_cors_headers(limited_app: LimitedFactory) -> None:
    limited = await limited_app(
        rate_limit_anonymous_read="1/minute", cors_origins=["https://app.example"]
    )
    async with limited.client() as client:
        origin = {"Origin": "https://app.example"}
        await client.get(PRODUCTS, headers=origin)
        refused = await client.get(PRODUCTS, headers=origin)
        assert refused.status_code == 429
        assert refused.headers["access-control-allow-origin"] == "https://app.example"
        exposed = refused.headers["access-control-expose-headers"]
        assert "Retry-After" in exposed and "RateLimit-Remaining" in exposed


async def test_headers_only_on_429_when_asked(limited_app: LimitedFactory) -> None:
    limited = await limited_app(
        anonymous_read=True, rate_limit_anonymous_read="1/minute", rate_limit_headers=False
    )
    async with limited.client() as client:
        first = await client.get(PRODUCTS)
        assert first.status_code == 200 and "ratelimit-limit" not in first.headers
        assert_limited(await client.get(PRODUCTS), 1)


async def test_nothing_is_limited_when_rate_limits_are_off(limited_app: LimitedFactory) -> None:
    limited = await limited_app(
        anonymous_read=True, rate_limit_anonymous_read="1/minute", rate_limits_enabled=False
    )
    async with limited.client() as client:
        answers = [await client.get(PRODUCTS) for _ in range(3)]
        assert [a.status_code for a in answers] == [200, 200, 200]
        assert "ratelimit-limit" not in answers[0].headers


async def test_apps_sharing_redis_share_the_counts(
    limited_app: LimitedFactory, redis_prefix: str
) -> None:
    shared = {
        "anonymous_read": True,
        "rate_limit_anonymous_read": "4/minute",
        "redis_url": REDIS_URL,
        "redis_key_prefix": redis_prefix,
    }
    one, two = await limited_app(**shared), await limited_app(**shared)
    async with one.client() as first, two.client() as second:
        statuses = []
        for _ in range(3):
            statuses.append((await first.get(PRODUCTS)).status_code)
            statuses.append((await second.get(PRODUCTS)).status_code)
        assert statuses == [200, 200, 200, 200, 429, 429]


async def test_redis_down_falls_back_to_memory_with_one_warning(
    limited_app: LimitedFactory, caplog: pytest.LogCaptureFixture
) -> None:
    limited = await limited_app(
        anonymous_read=True,
        rate_limit_anonymous_read="2/minute",
        redis_url="redis://127.0.0.1:1/0",  # nothing listens on port 1
    )
    with caplog.at_level(logging.WARNING, logger="backend.ratelimit.counters"):
        async with limited.client() as client:
            answers = [await client.get(PRODUCTS) for _ in range(3)]
    assert [a.status_code for a in answers] == [200, 200, 429]  # never a 500, still limited
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "Redis failed" in warnings[0], warnings
