"""Password resets are limited like sign-ins: per client IP and per email when a link is asked
for (no mail flood to one address, no probing from one client), per client IP when a token is
used (no guessing tokens), on the API and in the admin."""

import re
from collections.abc import Iterator

import pytest
from httpx import AsyncClient

from backend.models import Role
from tests.auth.mailbox import Mailbox, smtp_server, smtp_settings
from tests.ratelimit.conftest import LimitedFactory

RESET = "/api/auth/password-reset"
CONFIRM = "/api/auth/password-reset/confirm"


@pytest.fixture
def mailbox() -> Iterator[Mailbox]:
    with smtp_server() as server:
        yield server


async def test_reset_requests_are_limited_per_email_and_per_ip(
    limited_app: LimitedFactory, mailbox: Mailbox
) -> None:
    limited = await limited_app(
        **smtp_settings(mailbox),
        rate_limit_signin_account="2/minute",
        rate_limit_signin_ip="3/minute",
    )
    user, _ = await limited.user(Role.viewer)
    statuses = []
    for n in range(3):  # one email, from three addresses
        async with limited.client(f"198.51.100.{70 + n}") as client:
            statuses.append((await client.post(RESET, json={"email": user.email})).status_code)
    assert statuses == [202, 202, 429]
    async with limited.client("198.51.100.80") as client:  # one address, many emails
        answers = [
            await client.post(RESET, json={"email": f"nobody-{n}@example.com"}) for n in range(4)
        ]
    assert [a.status_code for a in answers] == [202, 202, 202, 429]
    assert int(answers[3].headers["retry-after"]) >= 1


async def test_reset_confirmations_are_limited_per_ip(
    limited_app: LimitedFactory, mailbox: Mailbox
) -> None:
    limited = await limited_app(**smtp_settings(mailbox), rate_limit_signin_ip="2/minute")
    body = {"token": "guessed-token", "password": "a-new-password-1"}
    async with limited.client("198.51.100.90") as client:
        statuses = [(await client.post(CONFIRM, json=body)).status_code for _ in range(3)]
    assert statuses == [400, 400, 429]


async def test_the_admin_forgot_password_page_is_limited_with_a_readable_page(
    limited_app: LimitedFactory, mailbox: Mailbox
) -> None:
    limited = await limited_app(**smtp_settings(mailbox), rate_limit_signin_account="1/minute")
    user, _ = await limited.user(Role.viewer)

    async def ask(client: AsyncClient) -> tuple[int, str, str]:
        page = await client.get("/admin/forgot-password")
        match = re.search(r'name="csrftoken" value="([^"]+)"', page.text)
        form = {"email": user.email}
        if match is not None:
            form["csrftoken"] = match.group(1)
        answer = await client.post("/admin/forgot-password", data=form)
        return answer.status_code, answer.headers["content-type"], answer.text

    async with limited.client("198.51.100.95") as client:
        assert (await ask(client))[0] == 200
        status, content_type, text = await ask(client)
    assert status == 429
    assert content_type.startswith("text/html")
    assert "Too many" in text
