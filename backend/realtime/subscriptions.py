"""One client's subscription: what it may and wants to receive, and its bounded queue.

The feed offers every event to every subscription, synchronously: a subscription keeps it
when its caller's role may read the resource, the resource is one it asked for and the
filters match. Its queue is bounded: a client that falls `limit` events behind is closed
with a reason (never let the server's memory grow with a client that does not read). Closing
is a state the client's stream loop picks up and reports (SSE `close` event, WebSocket close
code and reason).
"""

import asyncio
import time
from collections import deque
from collections.abc import Sequence

from backend.config import Settings
from backend.models import Role
from backend.realtime.events import Event
from backend.realtime.filters import Condition, matches_all
from backend.registry import ResourceOptions, registry

# WebSocket close codes (4000-4999 are the application's); SSE sends the same in `close`.
GOING_AWAY = 1001
UNAUTHORIZED = 4401
FORBIDDEN = 4403
TOO_SLOW = 4408
RELOAD = 4410


class Closed(Exception):
    """Why a subscription ended: a close code and a reason meant for a person."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(code, reason)
        self.code = code
        self.reason = reason


class Subscription:
    """What one client receives: resources (None: every one its role may read), filters."""

    def __init__(
        self,
        *,
        user_id: int | None,
        role: Role | None,
        auth_version: int | None = None,
        resources: Sequence[ResourceOptions] | None,
        conditions: Sequence[Condition],
        expires_at: float | None,
        settings: Settings,
    ) -> None:
        self.user_id = user_id
        self.role = role
        # the auth version of the token the stream was opened with: a new password (or a
        # deactivation) bumps the user's, and ends the stream as it ends the token
        self.auth_version = auth_version
        self.resources = None if resources is None else frozenset(resources)
        self.conditions = tuple(conditions)
        self.expires_at = expires_at
        self.settings = settings
        self.limit = settings.realtime_queue_size
        self.cursor = 0  # the last event queued or sent
        self.opened_at = 0  # the feed's position when the subscription was asked for
        self.closed: Closed | None = None
        self._pending: deque[Event] = deque()
        self._wake = asyncio.Event()

    # -- who may read what -------------------------------------------------------------------

    def may_read(self, resource: ResourceOptions) -> bool:
        """Whether the caller's role (anonymous: None) may read the resource now."""
        if self.role is None:
            return self.settings.anonymous_read and resource.read_role is Role.viewer
        return self.role.allows(resource.read_role)

    def readable(self) -> list[ResourceOptions]:
        """The resources this subscription receives events of, as the role stands now."""
        chosen = registry if self.resources is None else self.resources
        return [resource for resource in chosen if self.may_read(resource)]

    def wants(self, event: Event) -> bool:
        if event.cursor <= self.cursor:
            return False  # sent already (a catch-up page overlapping the live feed)
        if self.resources is not None and event.resource not in self.resources:
            return False
        if not self.may_read(event.resource):
            return False
        return matches_all(self.conditions, event.values) if self.conditions else True

    def new_role(self, role: Role | None, active: bool, auth_version: int | None = None) -> None:
        """The caller's role as read again: close when they are gone, their token was revoked
        or they lost a resource."""
        if self.user_id is None:
            return
        if role is None or not active:
            self.close(UNAUTHORIZED, "the user is no longer active")
            return
        if self.auth_version is not None and auth_version != self.auth_version:
            self.close(UNAUTHORIZED, "the token was revoked (a new password); sign in again")
            return
        self.role = role
        if self.resources is not None:
            lost = sorted(r.name for r in self.resources if not self.may_read(r))
            if lost:
                self.close(FORBIDDEN, f"role {role.value!r} may no longer read {', '.join(lost)}")

    def check_expiry(self, now: float | None = None) -> None:
        if self.expires_at is not None and (now or time.time()) >= self.expires_at:
            self.close(UNAUTHORIZED, "the access token expired; sign in again and reconnect")

    # -- the queue ---------------------------------------------------------------------------

    def offer(self, event: Event) -> None:
        """Queue `event` if this subscription wants it; close it when it is too far behind."""
        if self.closed is not None or not self.wants(event):
            return
        if len(self._pending) >= self.limit:
            self.close(
                TOO_SLOW,
                f"the client fell more than {self.limit} events behind; reconnect with the last "
                "cursor it received to resume",
            )
            return
        self._pending.append(event)
        self.cursor = event.cursor
        self._wake.set()

    def close(self, code: int, reason: str) -> None:
        if self.closed is None:
            self.closed = Closed(code, reason)
            self._pending.clear()  # the memory goes now, not when the client reads
            self._wake.set()

    async def next(self, timeout: float) -> list[Event]:
        """The queued events, waiting up to `timeout` seconds for one (none: time to send a
        heartbeat); raises Closed once the subscription is closed."""
        if not self._pending and self.closed is None:
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), timeout)
            except TimeoutError:
                pass
        if self.closed is not None:
            raise self.closed
        events = list(self._pending)
        self._pending.clear()
        return events
