"""Realtime: every registered table's changes, pushed to subscribers over SSE or WebSocket.

The history (one entry per change, written by every writer in the change's transaction) is
the feed: each server process reads new entries in order (`feed`), turns them into events
(`events`) and offers them to its subscriptions (`subscriptions`), which the routes stream
(`routes`, `streams`). `install_realtime` mounts the routes; the app's lifespan starts and
stops the feed.
"""

from fastapi import FastAPI

from backend.config import Settings
from backend.db import Database
from backend.realtime.routes import router
from backend.realtime.streams import Streams

__all__ = ["Streams", "install_realtime"]


def install_realtime(app: FastAPI, settings: Settings, database: Database) -> Streams:
    """Mount `/api/realtime` and keep its Streams on `app.state.realtime` (started by the
    lifespan, after the database)."""
    streams = Streams(database, settings)
    app.state.realtime = streams
    app.include_router(router, prefix="/api")
    return streams
