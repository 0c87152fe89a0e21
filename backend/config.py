"""Settings from environment variables (prefix-free) and an optional `.env` file."""

import json
from functools import lru_cache
from ipaddress import ip_network
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit

from limits import parse_many
from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SECRET_KEY = "dev-insecure-secret-key-change-me"
MIN_SECRET_KEY_LENGTH = 32  # 256 bits of HS256 key, as RFC 7518 asks for
DEFAULT_DATABASE_URL = f"sqlite+aiosqlite:///{PROJECT_ROOT / 'var' / 'tablestack.db'}"
SUPPORTED_DRIVERS = ("sqlite+aiosqlite", "postgresql+asyncpg")


class ConfigurationError(Exception):
    """A setting is missing or invalid; the message is one line meant for a person."""


class Settings(BaseSettings):
    """Everything Tablestack reads from its environment."""

    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    environment: Literal["development", "test", "production"] = "development"
    database_url: str = DEFAULT_DATABASE_URL
    secret_key: str = DEFAULT_SECRET_KEY
    # SQLite
    sqlite_busy_timeout_ms: int = Field(default=5000, ge=0)
    # PostgreSQL pool
    # A fixed pool by default: overflow connections are closed as soon as they are returned,
    # so under a load above the pool size they connect and disconnect (a PostgreSQL backend
    # forked, types introspected) on almost every request. Requests past the pool wait in line.
    db_pool_size: int = Field(default=20, ge=1)
    db_max_overflow: int = Field(default=0, ge=0)
    # Off: a ping is a round trip on every checkout, i.e. on every request. A connection the
    # server dropped fails one request, and SQLAlchemy then replaces the whole pool.
    db_pool_pre_ping: bool = False
    db_pool_recycle_s: int = Field(default=1800, ge=-1)
    db_echo: bool = False
    # Database outages (backend.db_failures): how long a request waits for a pooled
    # connection when all are busy, and for a new connection to be made, before it is answered
    # 503 with Retry-After (instead of hanging on a locked table or an unreachable host).
    db_pool_timeout_s: float = Field(default=5.0, gt=0)
    db_connect_timeout_s: float = Field(default=5.0, gt=0)
    # Behind PgBouncer in transaction pooling mode (backend/db.py): PgBouncer before 1.21 hands
    # one client's transactions to any server connection, where the prepared statements asyncpg
    # names and caches per client connection do not exist or already exist under another
    # client's name. Off, every statement is prepared unnamed and nothing is cached (a parse per
    # statement: see bench/README.md for the cost). DATABASE_DIRECT_URL, when set, is used for
    # what a transaction pooler cannot carry: migrations and the realtime feed's LISTEN.
    db_prepared_statements: bool = True
    database_direct_url: str | None = None
    # Read replicas (backend/replicas.py): the API's list and get-one reads go to these
    # PostgreSQL streaming replicas in turn (comma-separated or a JSON list of URLs); one that
    # refuses a connection is skipped for `replica_retry_s` while the primary serves its reads.
    database_replica_urls: Annotated[list[str], NoDecode] = Field(default_factory=list)
    replica_retry_s: float = Field(default=2.0, gt=0)
    # API
    cors_origins: list[str] = Field(default_factory=list)
    page_size_default: int = Field(default=25, ge=1)
    page_size_max: int = Field(default=1000, ge=1)
    anonymous_read: bool = False
    # `Prefer: count=estimated` on an unfiltered list uses PostgreSQL's row estimate for tables
    # of at least this many rows (smaller ones are counted exactly, which is cheap).
    estimated_count_min_rows: int = Field(default=10_000, ge=0)
    access_token_expire_minutes: int = Field(default=60, ge=1)
    # FastAPI's own OpenTelemetry spans, metrics and logs per request. Off unless asked: when
    # on and no provider is configured, FastAPI looks for one in the environment on every
    # request (a tenth of a small API request's time).
    telemetry: bool = False
    # Modules that define and register more tables (Django's INSTALLED_APPS): each is
    # imported with the registry; a `migrations/` folder beside it is its own Alembic branch.
    apps: list[str] = Field(default_factory=list)
    # Writes: PUT/PATCH/DELETE must send `If-Match` (428 without it); off, a write without it
    # is applied unconditionally (react-admin's dialect sends none).
    require_if_match: bool = False
    # History entries older than this many days are deleted by `tablestack prune-history`
    # (0 keeps everything).
    history_retention_days: int = Field(default=0, ge=0)
    # Request limits (backend/request_limits.py, backend/crud/query.py): a request body over
    # `max_body_bytes` is a 413, read no further than the limit (API and admin alike); a
    # query parameter name or value longer than `max_query_param_length` characters, or a
    # JSON parameter (`filter=`, `sort=`, `range=`, `__contains=`) nested deeper than
    # `max_json_depth`, is a 422 naming the parameter.
    max_body_bytes: int = Field(default=1024 * 1024, ge=0)
    max_query_param_length: int = Field(default=8192, ge=1)
    max_json_depth: int = Field(default=32, ge=1, le=200)
    # Realtime change feed (`/api/realtime`): a heartbeat every this many seconds on an idle
    # stream; a client this many events behind is disconnected; a ticket lives this long;
    # roles are re-read and expiries checked this often; the history is polled this often
    # besides the wake-ups (LISTEN/NOTIFY on PostgreSQL, commits of this process on SQLite).
    realtime_heartbeat_s: float = Field(default=15.0, gt=0)
    realtime_queue_size: int = Field(default=1000, ge=1)
    realtime_ticket_s: int = Field(default=30, ge=1)
    realtime_recheck_s: float = Field(default=5.0, gt=0)
    realtime_poll_s: float = Field(default=1.0, gt=0)
    # Admin
    admin_title: str = "Tablestack admin"
    session_https_only: bool = False
    # Rate limits and proxies (backend/ratelimit, backend/proxies.py). A limit is written in
    # the `limits` notation, "<count>/<period>" joined by ";" ("10/minute;100/hour"); empty
    # means none. API limits count per user (signed in) or per client IP (anonymous).
    rate_limits_enabled: bool = True
    redis_url: str | None = None  # counters shared by every process; in memory without it
    redis_key_prefix: str = "tablestack"
    # API limits' window (sign-in always uses the exact moving window). Fixed is the cheapest
    # (~15 us a request in memory) but lets up to twice a limit through across a window edge.
    rate_limit_strategy: Literal["fixed-window", "sliding-window-counter", "moving-window"] = (
        "fixed-window"
    )
    rate_limit_headers: bool = True  # RateLimit-* on successful answers too, not only on 429s
    rate_limit_anonymous_read: str = "300/minute"
    rate_limit_anonymous_write: str = "60/minute"
    rate_limit_viewer_read: str = "1200/minute"
    rate_limit_viewer_write: str = "120/minute"
    rate_limit_editor_read: str = "1200/minute"
    rate_limit_editor_write: str = "600/minute"
    rate_limit_admin_read: str = "3000/minute"
    rate_limit_admin_write: str = "1200/minute"
    rate_limit_per_ip: str = "6000/minute"  # every API request from one IP, whoever signs it
    # Sign-in (`POST /api/auth/token`, `/admin/login`): every attempt counts, right or wrong.
    rate_limit_signin_ip: str = "30/minute;300/hour"
    rate_limit_signin_account: str = "10/minute;60/hour"
    # After this many wrong passwords in an hour, each further one locks the account (or the
    # IP) for 1 s, 2 s, 4 s, ... up to the maximum; a right password during the lock is 429.
    signin_free_failures: int = Field(default=5, ge=0)
    signin_ip_free_failures: int = Field(default=20, ge=0)
    signin_backoff_max_s: int = Field(default=900, ge=1)
    # Direct peers whose X-Forwarded-For / X-Forwarded-Proto / X-Forwarded-Host are believed:
    # comma-separated IPs or CIDRs, or "*" (any peer: only behind a proxy that is the sole way in).
    trusted_proxies: Annotated[list[str], NoDecode] = Field(default_factory=list)

    @field_validator(
        "rate_limit_anonymous_read",
        "rate_limit_anonymous_write",
        "rate_limit_viewer_read",
        "rate_limit_viewer_write",
        "rate_limit_editor_read",
        "rate_limit_editor_write",
        "rate_limit_admin_read",
        "rate_limit_admin_write",
        "rate_limit_per_ip",
        "rate_limit_signin_ip",
        "rate_limit_signin_account",
    )
    @classmethod
    def _rate_limit(cls, value: str) -> str:
        if value.strip():
            try:
                parse_many(value)
            except ValueError:
                raise ValueError(
                    f"cannot read the rate limit {value!r}; write it as <count>/<period>, "
                    'several joined by ";", e.g. "10/minute;100/hour", or leave it empty'
                ) from None
        return value

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _proxies(cls, value: object) -> object:
        if isinstance(value, str) and value.lstrip().startswith("["):
            try:
                value = json.loads(value)  # a JSON list, as CORS_ORIGINS is written
            except ValueError:
                raise ValueError("is neither a JSON list nor comma-separated addresses") from None
        elif isinstance(value, str):
            value = [item.strip() for item in value.split(",") if item.strip()]
        if isinstance(value, list):
            for item in value:
                # uvicorn would silently take a malformed entry as a literal that never matches
                try:
                    if item != "*":
                        ip_network(item)
                except ValueError:
                    raise ValueError(
                        f"{item!r} is not an IP address or network (e.g. 10.0.0.0/8, with no "
                        "host bits set)"
                    ) from None
        return value

    # Admin sessions (backend/admin/auth.py): a session ends this many seconds after sign-in
    # whatever happens, and after this many seconds without a request (0: no idle limit).
    admin_session_max_age_s: int = Field(default=12 * 3600, ge=60)
    admin_session_idle_s: int = Field(default=3600, ge=0)
    # Account recovery by email (backend/mail.py, backend/auth/recovery.py). Without SMTP_HOST
    # and PUBLIC_BASE_URL, password resets and invitations say they are unavailable.
    smtp_host: str | None = None
    smtp_port: int = Field(default=587, ge=1, le=65535)
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_from: str = "Tablestack <noreply@localhost>"
    smtp_starttls: bool = True  # upgrade the connection with STARTTLS (port 587); required
    smtp_tls: bool = False  # implicit TLS from the first byte instead (port 465; no STARTTLS)
    smtp_timeout_s: float = Field(default=10.0, gt=0)
    # The address people reach this server at, for the links in emails (never taken from a
    # request's Host header, which a client chooses).
    public_base_url: str | None = None
    password_reset_max_age_s: int = Field(default=3600, ge=60)
    invitation_max_age_s: int = Field(default=7 * 24 * 3600, ge=60)

    @field_validator("database_url", "database_direct_url")
    @classmethod
    def _supported_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            url = make_url(value)
        except ArgumentError:
            raise ValueError(f"cannot parse the database URL {value!r}") from None
        if url.drivername not in SUPPORTED_DRIVERS:
            raise ValueError(
                f"the database driver {url.drivername!r} is not supported; "
                f"use one of {', '.join(SUPPORTED_DRIVERS)}"
            )
        return value

    @field_validator("database_replica_urls", mode="before")
    @classmethod
    def _replica_urls(cls, value: object) -> object:
        if isinstance(value, str) and value.lstrip().startswith("["):
            try:
                value = json.loads(value)
            except ValueError:
                raise ValueError("is neither a JSON list nor comma-separated URLs") from None
        elif isinstance(value, str):
            value = [item.strip() for item in value.split(",") if item.strip()]
        if isinstance(value, list):
            for item in value:
                try:
                    driver = make_url(item).drivername
                except ArgumentError:
                    raise ValueError(f"cannot parse the replica URL {item!r}") from None
                if driver != "postgresql+asyncpg":
                    raise ValueError(
                        f"replica {make_url(item).render_as_string(hide_password=True)!r}: "
                        "replicas are PostgreSQL, postgresql+asyncpg://user@host/db"
                    )
        return value

    @field_validator("public_base_url")
    @classmethod
    def _base_url(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc or parts.query:
            raise ValueError(f"{value!r} is not an http(s) URL such as https://admin.example.com")
        return value.rstrip("/")

    @property
    def mail_enabled(self) -> bool:
        """Whether emails (password resets, invitations) can be sent."""
        return bool(self.smtp_host) and self.public_base_url is not None

    @property
    def session_database_url(self) -> str:
        """The URL of a connection that keeps its session: the direct one when the API's goes
        through a transaction pooler (migrations, LISTEN)."""
        return self.database_direct_url or self.database_url

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    def check_production_ready(self) -> None:
        """Refuse to run outside development with settings that are only safe on a laptop."""
        if self.environment == "production" and self.secret_key == DEFAULT_SECRET_KEY:
            raise ConfigurationError(
                "SECRET_KEY still has its development default; set SECRET_KEY to a long "
                "random value before running with ENVIRONMENT=production"
            )
        if self.environment == "production" and len(self.secret_key) < MIN_SECRET_KEY_LENGTH:
            # It signs the API's HS256 tokens and the admin's session cookies: a short key can
            # be guessed offline from any token, and then every token and session forged.
            raise ConfigurationError(
                f"SECRET_KEY is {len(self.secret_key)} characters long; use at least "
                f"{MIN_SECRET_KEY_LENGTH} random characters with ENVIRONMENT=production (e.g. the "
                "output of `python3 -c 'import secrets; print(secrets.token_urlsafe(48))'`)"
            )


def load_settings(**overrides: object) -> Settings:
    """Build Settings, turning validation errors into one readable line."""
    from pydantic import ValidationError

    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"]).upper() or "settings"
        message = first["msg"].removeprefix("Value error, ")
        raise ConfigurationError(f"invalid setting {field}: {message}") from None


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings, read once."""
    return load_settings()
