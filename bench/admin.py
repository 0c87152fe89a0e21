"""The admin scenario: Tablestack's products list page and a product edit page, timed.

Logs in at /admin/login as an admin user, then requests each page N times in a row from one
client on localhost; the latency of a lone request is the server's time for the page (plus a
loopback round trip, well under a millisecond).
"""

import random
import re
import time
from statistics import median, quantiles

import httpx

LIST_PATH = "/admin/product/list"
EDIT_PATH = "/admin/product/edit/{id}"


class AdminUnavailable(Exception):
    """The admin (or its products pages) is not there: the scenario is skipped."""


def _timed(client: httpx.Client, path: str) -> float:
    started = time.perf_counter()
    response = client.get(path)
    elapsed = time.perf_counter() - started
    if response.status_code != 200:
        raise AdminUnavailable(f"GET {path} answered HTTP {response.status_code}")
    return elapsed * 1000


def measure(
    base_url: str, email: str, password: str, products: int, requests: int, seed: int = 3
) -> dict[str, dict[str, float]]:
    """Median and p95 milliseconds of the list page and of random products' edit pages."""
    rng = random.Random(seed)
    with httpx.Client(base_url=base_url, timeout=30, follow_redirects=False) as client:
        login = client.get("/admin/login")
        if login.status_code == 404:
            raise AdminUnavailable("/admin/login answered 404 (no admin in this build)")
        # The admin refuses a form without its session's CSRF token and a same-origin header.
        token = re.search(r'name="csrftoken" value="([^"]+)"', login.text)
        form = {"username": email, "password": password}
        if token is not None:
            form["csrftoken"] = token.group(1)
        response = client.post("/admin/login", data=form, headers={"Origin": base_url})
        if response.status_code not in (302, 303) or "login" in response.headers.get(
            "location", ""
        ):
            raise AdminUnavailable(f"admin login failed (HTTP {response.status_code})")

        def page_path(name: str) -> str:
            if name == "list":
                return LIST_PATH
            return EDIT_PATH.format(id=rng.randint(1, products))

        results: dict[str, dict[str, float]] = {}
        for name in ("list", "edit"):
            for _ in range(3):  # warm-up: first-render template compilation, pool connections
                _timed(client, page_path(name))
            times = [_timed(client, page_path(name)) for _ in range(requests)]
            results[name] = {
                "median_ms": median(times),
                "p95_ms": quantiles(times, n=20)[-1],
                "requests": float(requests),
            }
        return results
