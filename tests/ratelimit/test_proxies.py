"""`X-Forwarded-*` believed only from `TRUSTED_PROXIES`: the client IP rate limits count under,
the scheme (HSTS), and the host the admin's same-origin check accepts."""

import re
from typing import Any

import pytest
import uvicorn
from httpx import AsyncClient, Response
from starlette.types import Message, Receive, Scope, Send

from backend import cli
from backend.config import ConfigurationError, load_settings
from backend.proxies import TrustedProxies, forwarded_host, via_trusted_proxy
from tests.ratelimit.conftest import LimitedFactory

PROXY = "10.0.0.5"
STRANGER = "198.51.100.7"


async def seen_by_app(trusted: list[str], client: str, headers: dict[str, str]) -> Scope:
    """The scope the app behind TrustedProxies sees for a request from `client`."""
    seen: dict[str, Any] = {}

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.update(scope)

    scope = {
        "type": "http",
        "scheme": "http",
        "client": (client, 5000),
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
    }

    async def receive() -> Message:
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        pass

    await TrustedProxies(app, trusted)(scope, receive, send)
    return seen


FORWARDED = {
    "X-Forwarded-For": "203.0.113.9, 10.0.0.7",
    "X-Forwarded-Proto": "https",
    "X-Forwarded-Host": "forged.example, admin.example",
}


async def test_forwarded_headers_count_only_from_a_trusted_proxy() -> None:
    behind = await seen_by_app(["10.0.0.0/8"], PROXY, FORWARDED)
    assert behind["client"] == ("203.0.113.9", 0)  # the rightmost address not a proxy
    assert behind["scheme"] == "https"
    assert via_trusted_proxy(behind)
    assert forwarded_host(behind) == "admin.example"  # the value the proxy itself added

    direct = await seen_by_app(["10.0.0.0/8"], STRANGER, FORWARDED)
    assert direct["client"] == (STRANGER, 5000)
    assert direct["scheme"] == "http"
    assert not via_trusted_proxy(direct)
    assert forwarded_host(direct) is None


def test_trusted_proxies_are_read_from_a_comma_separated_list() -> None:
    assert load_settings(trusted_proxies="10.0.0.0/8, ::1").trusted_proxies == ["10.0.0.0/8", "::1"]
    assert load_settings(trusted_proxies="").trusted_proxies == []
    assert load_settings(trusted_proxies='["10.0.0.1", "::1"]').trusted_proxies == [
        "10.0.0.1",
        "::1",
    ]
    with pytest.raises(ConfigurationError, match="TRUSTED_PROXIES: '10.0.0.1/8' is not"):
        load_settings(trusted_proxies="10.0.0.1/8")  # uvicorn would ignore it silently
    with pytest.raises(ConfigurationError, match="TRUSTED_PROXIES: 'proxy.local' is not"):
        load_settings(trusted_proxies="proxy.local")


def test_serve_leaves_forwarded_headers_to_the_app(monkeypatch: pytest.MonkeyPatch) -> None:
    """uvicorn's own proxy handling trusts 127.0.0.1 whatever TRUSTED_PROXIES says."""
    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(uvicorn, "run", lambda *args, **kwargs: calls.append(kwargs))
    cli.serve(host="127.0.0.1", port=8000, reload=False, workers=1, access_log=False)
    assert calls and calls[0]["proxy_headers"] is False


async def test_rate_limits_count_the_forwarded_client_only_behind_a_trusted_proxy(
    limited_app: LimitedFactory,
) -> None:
    limited = await limited_app(
        anonymous_read=True, rate_limit_anonymous_read="1/minute", trusted_proxies=["10.0.0.0/8"]
    )

    async def status(client: AsyncClient, forwarded_for: str) -> int:
        answer = await client.get("/api/products", headers={"X-Forwarded-For": forwarded_for})
        return answer.status_code

    async with limited.client(PROXY) as proxy, limited.client(STRANGER) as stranger:
        assert [await status(proxy, "203.0.113.1") for _ in range(2)] == [200, 429]
        assert await status(proxy, "203.0.113.2") == 200  # another client behind the proxy
        # a client that is not a proxy cannot choose the address it is counted under
        assert await status(stranger, "203.0.113.3") == 200
        assert await status(stranger, "203.0.113.4") == 429


async def test_hsts_follows_the_forwarded_scheme_only_from_a_trusted_proxy(
    limited_app: LimitedFactory,
) -> None:
    limited = await limited_app(trusted_proxies=[PROXY])
    https = {"X-Forwarded-Proto": "https"}
    async with limited.client(PROXY) as proxy, limited.client(STRANGER) as stranger:
        assert "strict-transport-security" in (await proxy.get("/healthz", headers=https)).headers
        answer = await stranger.get("/healthz", headers=https)
        assert "strict-transport-security" not in answer.headers


async def test_the_admin_believes_a_forwarded_host_only_from_a_trusted_proxy(
    limited_app: LimitedFactory,
) -> None:
    limited = await limited_app(trusted_proxies=[PROXY])

    async def login(client: AsyncClient, host: str) -> Response:
        page = await client.get("/admin/login")
        match = re.search(r'name="csrftoken" value="([^"]+)"', page.text)
        assert match is not None
        return await client.post(
            "/admin/login",
            data={"csrftoken": match.group(1), "username": "x@example.com", "password": "wrong"},
            headers={"Origin": f"https://{host}", "X-Forwarded-Host": host},
        )

    async with limited.client(PROXY) as proxy, limited.client(STRANGER) as stranger:
        # behind the proxy the browser's origin is the public host: the form goes through
        assert (await login(proxy, "admin.example")).status_code == 400  # wrong password
        # a cross-site post that claims the forged site as the forwarded host is refused
        refused = await login(stranger, "evil.example")
        assert refused.status_code == 403
        assert "The request came from another site." in refused.text
