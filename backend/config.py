"""Settings from environment variables (prefix-free) and an optional `.env` file."""

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
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

    @field_validator("database_url")
    @classmethod
    def _supported_url(cls, value: str) -> str:
        try:
            url = make_url(value)
        except ArgumentError:
            raise ValueError(f"cannot parse DATABASE_URL {value!r}") from None
        if url.drivername not in SUPPORTED_DRIVERS:
            raise ValueError(
                f"DATABASE_URL driver {url.drivername!r} is not supported; "
                f"use one of {', '.join(SUPPORTED_DRIVERS)}"
            )
        return value

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
