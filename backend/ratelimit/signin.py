"""Sign-in protection: a strict limit per IP and per account, and backoff after wrong passwords.

Every attempt (`POST /api/auth/token`, `/admin/login`) is checked *before* its password is:

1. a lock: after `SIGNIN_FREE_FAILURES` wrong passwords for an account within an hour (or
   `SIGNIN_IP_FREE_FAILURES` from one IP), each further wrong one locks it for 1 s, 2 s, 4 s, ...
   up to `SIGNIN_BACKOFF_MAX_S`. Until the lock ends every attempt is a 429 - with the right
   password too, or the lock would tell a guesser when they guessed right. A right password
   clears the account's count (not the IP's: an attacker may own an account);
2. `RATE_LIMIT_SIGNIN_IP` and `RATE_LIMIT_SIGNIN_ACCOUNT`, counted over every attempt, right or
   wrong (moving windows: exact, and cheap at these small counts).

A refused attempt costs no password check (argon2) and does not count. Another account tried
from the same IP is refused only once the IP itself is spent. Accounts are counted under a
hash of the normalised email, whether or not such a user exists (the answers never differ).

The lock ends at a time taken from `clock`, stored in the counter's value (milliseconds), so
tests can move a clock instead of sleeping.
"""

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass

from limits import RateLimitItem
from starlette.requests import Request

from backend.config import Settings
from backend.ratelimit.api import STATE_KEY, client_ip, parse
from backend.ratelimit.counters import Counters, Window
from backend.ratelimit.rejection import reject

FAILURE_WINDOW_S = 3600  # wrong passwords are counted for an hour from the first
BACKOFF_BASE_S = 1.0


def account_key(email: str) -> str:
    """What an account is counted under: a hash of its normalised email."""
    normal = email.strip().casefold().encode()
    return hashlib.blake2b(normal, digest_size=16).hexdigest()


class SignInGuard:
    """The locks and limits above, over the app's counters."""

    def __init__(
        self, counters: Counters, settings: Settings, clock: Callable[[], float] = time.time
    ) -> None:
        self.counters = counters
        self.limiter = counters.limiter("moving-window")
        self.items: dict[str, tuple[RateLimitItem, ...]] = {
            "ip": parse(settings.rate_limit_signin_ip),
            "account": parse(settings.rate_limit_signin_account),
        }
        self.free = {
            "ip": settings.signin_ip_free_failures,
            "account": settings.signin_free_failures,
        }
        self.max_s = float(settings.signin_backoff_max_s)
        self.clock = clock

    async def limit(self, action: str, ip: str, account: str | None) -> None:
        """Count an attempt of `action` against the IP's and the account's limits; raise
        RateLimited (429) when either is spent."""
        now = time.time()  # the windows are limits', on the real clock
        # The account's window first: an attempt its account refuses must not spend the IP's
        # window too, or a brute force on one account locks out everyone behind that IP.
        for by, who in (("account", account), ("ip", ip)):
            if who is None:
                continue
            for item in self.items[by]:
                window = await self.limiter.hit(item, action, by, who)
                if not window.allowed:
                    raise reject(action, by, window, now)

    async def check(self, ip: str, account: str) -> None:
        """Raise RateLimited unless this sign-in attempt may go on to check its password."""
        now = self.clock()
        for by, who in (("ip", ip), ("account", account)):
            until = await self._locked_until(by, who)
            if until > now:
                raise reject("signin", f"{by}-lock", self._shown(by, until), now, until)
        await self.limit("signin", ip, account)

    async def failed(self, ip: str, account: str) -> None:
        """A wrong password: count it, and lock once past the free failures."""
        now = self.clock()
        for by, who in (("ip", ip), ("account", account)):
            failures = await self.counters.incr(_failures(by, who), FAILURE_WINDOW_S)
            extra = failures - self.free[by]
            if extra > 0:
                lock = min(BACKOFF_BASE_S * 2 ** min(extra - 1, 32), self.max_s)
                until_ms = int((now + lock) * 1000)
                # a key per failure number: two processes never add to the same one
                await self.counters.incr(_lock(by, who, failures), lock, amount=until_ms)

    async def succeeded(self, account: str) -> None:
        """The right password: the account starts again from no failures."""
        await self.counters.clear(_failures("account", account))

    async def _locked_until(self, by: str, who: str) -> float:
        failures = await self.counters.get(_failures(by, who))
        if failures <= self.free[by]:
            return 0.0
        return await self.counters.get(_lock(by, who, failures)) / 1000

    def _shown(self, by: str, until: float) -> Window | None:
        items = self.items[by]
        return Window(False, items[0], 0, until) if items else None


def _failures(by: str, who: str) -> str:
    return f"signin/failures/{by}/{who}"


def _lock(by: str, who: str, failures: int) -> str:
    return f"signin/lock/{by}/{who}/{failures}"


@dataclass(frozen=True)
class SignInAttempt:
    """An attempt the guard let through: report how its password check went."""

    guard: SignInGuard | None
    ip: str
    account: str

    async def succeeded(self) -> None:
        if self.guard is not None:
            await self.guard.succeeded(self.account)

    async def failed(self) -> None:
        if self.guard is not None:
            await self.guard.failed(self.ip, self.account)


def _guard(request: Request) -> SignInGuard | None:
    limits = request.scope.get(STATE_KEY)
    guard: SignInGuard | None = getattr(limits, "signin", None)
    return guard


async def sign_in_attempt(request: Request, email: str) -> SignInAttempt:
    """Let `request` try `email`'s password, or raise RateLimited (429, `Retry-After`).

    Call `succeeded()` or `failed()` on the result once the password is checked.
    """
    guard = _guard(request)
    attempt = SignInAttempt(guard, client_ip(request.scope), account_key(email))
    if guard is not None:
        await guard.check(attempt.ip, attempt.account)
    return attempt


async def throttle(request: Request, action: str, *, account: str | None = None) -> None:
    """Count one `action` (e.g. "password-reset") by `request`'s IP and, when given, for
    `account` (an email) against the sign-in limits; raise RateLimited (429) once spent."""
    guard = _guard(request)
    if guard is not None:
        await guard.limit(action, client_ip(request.scope), account and account_key(account))
