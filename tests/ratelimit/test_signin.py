"""Sign-in protection on `POST /api/auth/token` and `/admin/login`: strict limits per IP and per
account, and locks that double with every wrong password past the free ones (a moved clock
stands in for waiting)."""

import re
from dataclasses import dataclass

from httpx import AsyncClient, Response
from starlette.requests import Request

from backend.models import Role
from backend.ratelimit import RateLimited, throttle
from backend.ratelimit.api import STATE_KEY
from tests.ratelimit.conftest import PASSWORD, Limited, LimitedFactory

TOKEN = "/api/auth/token"
WRONG = "not-the-password"


@dataclass
class Clock:
    now: float = 1_900_000_000.0

    def __call__(self) -> float:
        return self.now


async def signed_in(limited: Limited, email: str, password: str, ip: str) -> Response:
    async with limited.client(ip) as client:
        return await client.post(TOKEN, data={"username": email, "password": password})


async def guarded(limited_app: LimitedFactory, **overrides: object) -> tuple[Limited, Clock]:
    limited = await limited_app(**overrides)
    clock = Clock()
    limited.app.state.rate_limits.signin.clock = clock
    return limited, clock


async def test_wrong_passwords_lock_the_account_for_doubling_times(
    limited_app: LimitedFactory,
) -> None:
    limited, clock = await guarded(
        limited_app,
        signin_free_failures=3,
        signin_backoff_max_s=3,
        rate_limit_signin_account="50/minute",
    )
    user, _ = await limited.user(Role.viewer)
    ip = "198.51.100.20"
    answers = [await signed_in(limited, user.email, WRONG, ip) for _ in range(10)]
    # three free failures, the fourth locks for 1 s: every attempt meanwhile is refused
    assert [a.status_code for a in answers] == [401] * 4 + [429] * 6
    assert answers[4].headers["retry-after"] == "1"
    assert answers[4].json() == {"detail": "Too many sign-in attempts; retry in 1 s"}
    # the right password during the lock is refused too
    assert (await signed_in(limited, user.email, PASSWORD, ip)).status_code == 429
    # each further wrong password locks for twice as long, up to SIGNIN_BACKOFF_MAX_S
    waits = []
    for wait in (1, 2, 3):
        clock.now += wait
        assert (await signed_in(limited, user.email, WRONG, ip)).status_code == 401
        refused = await signed_in(limited, user.email, WRONG, ip)
        assert refused.status_code == 429
        waits.append(int(refused.headers["retry-after"]))
    assert waits == [2, 3, 3]
    clock.now += 3  # the lock is over: the right password signs in, and clears the count
    assert (await signed_in(limited, user.email, PASSWORD, ip)).status_code == 200
    assert (await signed_in(limited, user.email, WRONG, ip)).status_code == 401


async def test_a_locked_account_does_not_lock_other_accounts_on_the_same_ip(
    limited_app: LimitedFactory,
) -> None:
    limited, _ = await guarded(limited_app, signin_free_failures=1, rate_limit_signin_ip="6/minute")
    victim, _ = await limited.user(Role.admin)
    other, _ = await limited.user(Role.viewer)
    ip = "198.51.100.21"
    statuses = [(await signed_in(limited, victim.email, WRONG, ip)).status_code for _ in range(4)]
    assert statuses == [401, 401, 429, 429]
    assert (await signed_in(limited, other.email, PASSWORD, ip)).status_code == 200
    # ... until the IP's own limit is spent: 3 counted so far (refusals do not count)
    statuses = [(await signed_in(limited, other.email, PASSWORD, ip)).status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    assert (await signed_in(limited, other.email, PASSWORD, "198.51.100.22")).status_code == 200


async def test_wrong_passwords_from_one_ip_lock_the_ip(limited_app: LimitedFactory) -> None:
    limited, _ = await guarded(limited_app, signin_free_failures=10, signin_ip_free_failures=2)
    users = [(await limited.user(Role.viewer))[0] for _ in range(4)]
    ip = "198.51.100.23"
    statuses = [(await signed_in(limited, u.email, WRONG, ip)).status_code for u in users]
    assert statuses == [401, 401, 401, 429]  # spraying one password over many accounts
    assert (await signed_in(limited, users[0].email, PASSWORD, ip)).status_code == 429
    assert (await signed_in(limited, users[0].email, PASSWORD, "198.51.100.24")).status_code == 200


async def test_every_attempt_counts_against_the_account_limit(limited_app: LimitedFactory) -> None:
    limited, _ = await guarded(limited_app, rate_limit_signin_account="3/minute")
    user, _ = await limited.user(Role.viewer)
    answers = [
        await signed_in(limited, user.email, PASSWORD, f"198.51.100.{30 + n}") for n in range(4)
    ]
    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    assert answers[3].headers["ratelimit-limit"] == "3"
    assert 1 <= int(answers[3].headers["retry-after"]) <= 60


async def test_the_admin_login_shows_a_readable_page_when_throttled(
    limited_app: LimitedFactory,
) -> None:
    limited, _ = await guarded(limited_app, signin_free_failures=1)
    user, _ = await limited.user(Role.admin)

    async def admin_login(client: AsyncClient, password: str) -> Response:
        page = await client.get("/admin/login")
        match = re.search(r'name="csrftoken" value="([^"]+)"', page.text)
        assert match is not None
        form = {"csrftoken": match.group(1), "username": user.email, "password": password}
        return await client.post("/admin/login", data=form)

    async with limited.client("198.51.100.40") as client:
        assert (await admin_login(client, WRONG)).status_code == 400
        assert (await admin_login(client, WRONG)).status_code == 400  # locks for 1 s
        refused = await admin_login(client, PASSWORD)
        assert refused.status_code == 429
        assert refused.headers["content-type"].startswith("text/html")
        assert refused.headers["retry-after"] == "1"
        assert (
            "Too many sign-in attempts" in refused.text and "try again in 1 second." in refused.text
        )
        assert 'href="http://testserver/admin/login"' in refused.text
    # one guard for both doors: the API refuses the locked account as well
    assert (await signed_in(limited, user.email, PASSWORD, "198.51.100.40")).status_code == 429


async def test_throttle_limits_other_actions_by_ip_and_account(
    limited_app: LimitedFactory,
) -> None:
    limited = await limited_app(
        rate_limit_signin_ip="3/minute", rate_limit_signin_account="2/minute"
    )

    def request(ip: str) -> Request:
        scope = {
            "type": "http",
            "client": (ip, 1),
            "headers": [],
            STATE_KEY: limited.app.state.rate_limits,
        }
        return Request(scope)

    await throttle(request("198.51.100.50"), "password-reset", account="a@example.com")
    await throttle(request("198.51.100.50"), "password-reset", account="A@example.com ")
    refused = None
    try:
        await throttle(request("198.51.100.51"), "password-reset", account="a@example.com")
    except RateLimited as exc:
        refused = exc
    assert refused is not None and refused.status_code == 429 and refused.by == "account"
    await throttle(request("198.51.100.50"), "password-reset", account="b@example.com")
    try:
        await throttle(request("198.51.100.50"), "password-reset")
    except RateLimited as exc:
        refused = exc
    assert refused.by == "ip"
    # sign-in counts apart from password resets
    user, _ = await limited.user(Role.viewer)
    assert (await signed_in(limited, user.email, PASSWORD, "198.51.100.50")).status_code == 200


async def test_sign_in_is_still_guarded_while_redis_is_down(limited_app: LimitedFactory) -> None:
    limited, _ = await guarded(
        limited_app, signin_free_failures=1, redis_url="redis://127.0.0.1:1/0"
    )
    user, _ = await limited.user(Role.viewer)
    ip = "198.51.100.60"
    statuses = [(await signed_in(limited, user.email, WRONG, ip)).status_code for _ in range(3)]
    assert statuses == [401, 401, 429]  # counted in this process's memory meanwhile
    assert (await signed_in(limited, user.email, PASSWORD, ip)).status_code == 429
