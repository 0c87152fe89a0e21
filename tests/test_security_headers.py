"""Every answer of the API and the admin carries the security headers."""

import pytest
from httpx import AsyncClient

PATHS = ["/api/products", "/api/products/1", "/admin/login", "/healthz", "/docs", "/nowhere"]


@pytest.mark.parametrize("path", PATHS)
async def test_every_answer_forbids_framing_and_sniffing(client: AsyncClient, path: str) -> None:
    response = await client.get(path)
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["content-security-policy"] == "frame-ancestors 'none'"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "same-origin"
    assert "strict-transport-security" not in response.headers  # plain http


async def test_https_answers_ask_browsers_to_keep_to_https(client: AsyncClient) -> None:
    response = await client.get("https://testserver/healthz")
    assert response.headers["strict-transport-security"].startswith("max-age=")
