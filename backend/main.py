"""The ASGI application: `create_app()` builds it, `app` is the default instance."""

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import lru_cache

from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine

from backend import health
from backend.admin import mount_admin
from backend.config import Settings, get_settings
from backend.crud.api import install_api
from backend.db import Database
from backend.proxies import TrustedProxies
from backend.realtime import install_realtime
from backend.request_limits import RequestLimits
from backend.schema import head_revisions
from backend.security_headers import SecurityHeaders


def create_app(
    settings: Settings | None = None,
    *,
    engine: AsyncEngine | None = None,
    freeze_startup_objects: bool = False,
) -> FastAPI:
    """Build the app for `settings`; `engine` lets tests share an engine they own.

    `freeze_startup_objects` (a served process): once started, move everything alive into
    the garbage collector's permanent generation. The models, schemas, routes and compiled
    metadata never become garbage, yet every full collection walked all of them: a pause of
    milliseconds every few thousand requests, the largest part of the API's tail latency.
    """
    settings = settings or get_settings()
    settings.check_production_ready()
    database = Database(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        database.start(engine)
        await app.state.realtime.start()  # the change feed reads the database
        if freeze_startup_objects:
            gc.collect()
            gc.freeze()
        try:
            yield
        finally:
            await app.state.realtime.stop()
            if engine is None:  # an engine handed in is disposed by its owner
                await database.dispose()

    app = FastAPI(
        title="Tablestack",
        summary="REST CRUD API generated from the registered SQLModel tables.",
        version="0.1.0",
        lifespan=lifespan,
        telemetry={
            "tracing": settings.telemetry,
            "metrics": settings.telemetry,
            "logs": settings.telemetry,
        },
    )
    app.state.settings = settings
    app.state.database = database
    app.state.migration_heads = head_revisions()
    app.include_router(health.router)
    app.add_middleware(RequestLimits, settings=settings)  # inside CORS: 413s carry its headers
    install_api(app, settings)
    install_realtime(app, settings, database)
    mount_admin(app, settings, database)
    app.add_middleware(SecurityHeaders)  # on every answer, errors included
    if settings.trusted_proxies:  # outermost: everything inside sees the real client
        app.add_middleware(TrustedProxies, trusted=settings.trusted_proxies)
    return app


def create_served_app() -> FastAPI:
    """The app `tablestack serve` runs (uvicorn's factory, once per worker process)."""
    return create_app(freeze_startup_objects=True)


@lru_cache
def _default_app() -> FastAPI:
    return create_app()


def __getattr__(name: str) -> FastAPI:
    """`backend.main:app`, built from the environment on first use rather than at import."""
    if name == "app":
        return _default_app()
    raise AttributeError(name)
