"""A bounded load on a served app: a few clients creating and reading rows, each answer
recorded, each acknowledged write remembered so the test can look for it afterwards."""

import asyncio
import itertools
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field

import httpx

CLIENTS = 6
PAUSE_S = 0.01  # between one client's requests: bounded, on a 2-core machine


@dataclass
class Load:
    url: str
    headers: dict[str, str]
    statuses: Counter[int] = field(default_factory=Counter)
    acknowledged: dict[int, str] = field(default_factory=dict)  # id -> slug
    errors: list[str] = field(default_factory=list)  # no HTTP answer at all
    _stop: asyncio.Event = field(default_factory=asyncio.Event)
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)

    def start(self, clients: int = CLIENTS) -> None:
        self._client = httpx.AsyncClient(base_url=self.url, timeout=30, headers=self.headers)
        self._tasks = [asyncio.create_task(self._client_loop(n)) for n in range(clients)]

    async def stop(self) -> None:
        self._stop.set()
        await asyncio.gather(*self._tasks)
        await self._client.aclose()

    async def request(self, method: str, path: str, **kwargs: object) -> httpx.Response | None:
        """One request, its status recorded (None: the server gave no answer)."""
        try:
            response = await self._client.request(method, path, **kwargs)  # type: ignore[arg-type]
        except httpx.HTTPError as error:
            self.errors.append(f"{method} {path}: {type(error).__name__}: {error}")
            return None
        self.statuses[response.status_code] += 1
        return response

    async def _client_loop(self, number: int) -> None:
        for turn in itertools.count():
            if self._stop.is_set():
                return
            if turn % 2 == 0:
                slug = f"c{number}-{turn}-{uuid.uuid4().hex[:8]}"
                body = {"name": slug, "slug": slug}
                response = await self.request("POST", "/api/categories", json=body)
                if response is not None and response.status_code == 201:
                    self.acknowledged[response.json()["id"]] = slug
            elif turn % 4 == 1 or not self.acknowledged:
                await self.request("GET", "/api/categories", params={"limit": 5})
            else:
                row_id = next(reversed(self.acknowledged))
                await self.request("GET", f"/api/categories/{row_id}")
            await asyncio.sleep(PAUSE_S)

    def unexpected(self) -> dict[int, int]:
        """Statuses other than 2xx, 4xx and 503."""
        return {
            code: count
            for code, count in self.statuses.items()
            if not (200 <= code < 300 or 400 <= code < 500 or code == 503)
        }


async def recovery_time(url: str, limit_s: float = 10) -> float:
    """Seconds until a read succeeds (a request every 20 ms), at most `limit_s`."""
    started = time.monotonic()
    async with httpx.AsyncClient(base_url=url, timeout=limit_s) as client:
        while time.monotonic() - started < limit_s:
            try:
                response = await client.get("/api/categories", params={"limit": 1})
                if response.status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.02)
    return time.monotonic() - started
