"""Before load, check that each target answers every scenario correctly.

A target that answers fast with a 404 or an empty page would win the table; so each scenario
is tried once with the same request wrk will send, and only the scenarios that pass are loaded.
"""

from decimal import Decimal
from typing import TYPE_CHECKING, Any

import httpx

if TYPE_CHECKING:  # bench.targets needs psutil (the bench group); tests/bench runs without it
    from bench.targets import Target


class CheckFailed(Exception):
    """A target's answer to a scenario is not the agreed one."""


def _page(target: "Target", response: httpx.Response) -> tuple[list[dict[str, Any]], int]:
    if response.status_code != 200:
        raise CheckFailed(f"HTTP {response.status_code}: {response.text[:120]}")
    body = response.json()
    if target.list_shape == "fastcrud":
        return body["data"], int(body["total_count"])
    total = response.headers.get("X-Total-Count")
    if not isinstance(body, list) or total is None:
        raise CheckFailed("expected a JSON array and an X-Total-Count header")
    return body, int(total)


def check_scenario(
    client: httpx.Client,
    target: "Target",
    scenario: str,
    products: int,
    category_7_total: int,
) -> None:
    """Raise CheckFailed unless `target` answers `scenario` as agreed."""
    path = target.paths[scenario]
    if scenario == "get":
        response = client.get(f"{path}42")
        if response.status_code != 200 or response.json().get("id") != 42:
            raise CheckFailed(f"GET {path}42 -> HTTP {response.status_code}: {response.text[:120]}")
    elif scenario == "list":
        rows, total = _page(target, client.get(path))
        first = rows[0]["id"] if rows else None
        if len(rows) != 50 or total != products or first != 1:
            raise CheckFailed(
                f"list: {len(rows)} rows from id {first}, total {total}; "
                f"expected 50 from id 1 (ordered by id), total {products}"
            )
    elif scenario == "filter":
        rows, total = _page(target, client.get(path.replace("{category}", "7")))
        if total != category_7_total or not rows or any(r["category_id"] != 7 for r in rows):
            raise CheckFailed(f"filter: total {total}, expected {category_7_total} in category 7")
    elif scenario == "create":
        body = {
            "sku": f"CHECK-{target.key}",
            "name": "Check product",
            "description": None,
            "price": "9.99",
            "stock": 3,
            "is_active": True,
            "category_id": 7,
        }
        response = client.post(path, json=body)
        if response.status_code != target.create_status or "id" not in response.json():
            raise CheckFailed(f"POST -> HTTP {response.status_code}: {response.text[:160]}")
    elif scenario == "patch":
        response = client.patch(f"{path}43", json={"price": "12.50"})
        if response.status_code != 200:
            raise CheckFailed(f"PATCH -> HTTP {response.status_code}: {response.text[:160]}")
        price = client.get(f"{target.paths['get']}43").json().get("price")
        if price is None or Decimal(str(price)) != Decimal("12.50"):
            raise CheckFailed(f"PATCH did not change the price (now {price!r})")
    else:
        raise ValueError(scenario)
