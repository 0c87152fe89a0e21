"""The admin UI: SQLAdmin views generated from the registry, over the app's one engine, and
the history pages (`backend.admin.history`)."""

import logging
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from sqladmin import Admin, BaseView, ModelView
from sqladmin._menu import CategoryMenu, ViewMenu
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from starlette.datastructures import FormData
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response

from backend.admin.accounts import install_account_pages
from backend.admin.auth import AdminAuth, RoleAuthorization, current_user
from backend.admin.csrf import CSRFProtection, SameOriginCheck, csrf_token
from backend.admin.forms import form_mode, posted_form
from backend.admin.history import history_views
from backend.admin.views import ResourceView, build_views
from backend.config import Settings
from backend.crud.errors import is_data_exception
from backend.db import Database
from backend.db_failures import RETRY_AFTER_S, classify, describe
from backend.registry import Registry, registry

BASE_URL = "/admin"
TEMPLATES = Path(__file__).parent / "templates"
DATABASE_ERROR_TEMPLATE = "tablestack/database_error.html"

logger = logging.getLogger(__name__)


class AccessibleCategoryMenu(CategoryMenu):
    """A sidebar category shown only when the user may open one of its pages.

    SQLAdmin shows every category to everyone: an editor would see an empty
    "Administration" heading.
    """

    def is_accessible(self, request: Request) -> bool:
        return any(c.is_visible(request) and c.is_accessible(request) for c in self.children)


class TablestackAdmin(Admin):
    """SQLAdmin, telling the generated forms whether they create or edit a row."""

    def _build_menu(self, view: ModelView | BaseView) -> None:
        if not getattr(view, "in_menu", True):
            return  # a page reached from other pages only (a record's history)
        if not view.category:
            super()._build_menu(view)
            return
        menu = AccessibleCategoryMenu(name=view.category, icon=view.category_icon)
        menu.add_child(ViewMenu(view=view, name=view.name, icon=view.icon))
        self._menu.add(menu)

    async def create(self, request: Request) -> Response:
        with form_mode("create"):
            response: Response = await super().create(request)
            return response

    async def edit(self, request: Request) -> Response:
        with form_mode("edit"):
            response: Response = await super().edit(request)
            return response

    async def database_error(self, request: Request, exc: Exception) -> Response:
        """A page in the admin's look for a request the database failed: 503 (with
        Retry-After) while it is unreachable, busy or out of connections, 409 for a change
        that lost to a concurrent one, 400 for a value it cannot use; anything else is a
        logged 500. The page names no statement, driver or traceback."""
        failure = classify(exc)
        where = f"{request.method} {request.url.path}"
        headers: dict[str, str] = {}
        if failure == "unavailable":
            logger.warning("%s: database unavailable: %s", where, describe(exc))
            status_code = 503
            message = "The database is unavailable right now."
            hint = "Nothing was changed. Try again in a moment."
            headers["Retry-After"] = str(RETRY_AFTER_S)
        elif failure == "conflict":
            logger.info("%s: %s", where, describe(exc))
            status_code = 409
            message = "The change collided with another one made at the same time."
            hint = "Nothing was changed. Try again."
        elif isinstance(exc, DBAPIError) and is_data_exception(exc):
            status_code = 400
            message = "A value in this request cannot be used by the database."
            hint = "Check the search, filters or form values and try again."
        else:
            logger.error("%s: database error", where, exc_info=exc)
            status_code = 500
            message = "An error on the server stopped this page."
            hint = "It has been logged."
        context = {
            "status_code": status_code,
            "message": message,
            "hint": hint,
            # a GET may simply be repeated; a form sent again from the page it came from
            "retry_url": str(request.url) if request.method == "GET" else None,
        }
        response: Response = await self.templates.TemplateResponse(
            request, DATABASE_ERROR_TEMPLATE, context, status_code=status_code
        )
        response.headers.update(headers)
        return response

    @staticmethod
    async def _handle_form_data(request: Request, obj: Any = None) -> FormData:
        return await posted_form(request)  # a file in a form is a 400, not a 500


def mount_admin(
    app: FastAPI, settings: Settings, database: Database, tables: Registry = registry
) -> Admin:
    """Mount the admin at /admin with one view per registered table, and the history pages."""
    views = build_views(tables)
    authentication = AdminAuth(settings, database, BASE_URL)
    # after SessionMiddleware (the token lives in the session), before the endpoints
    authentication.middlewares.append(Middleware(CSRFProtection))
    admin = TablestackAdmin(
        app,
        session_maker=database.admin_sessions,
        base_url=BASE_URL,
        title=settings.admin_title,
        templates_dir=str(TEMPLATES),
        middlewares=[Middleware(SameOriginCheck)],
        authentication_backend=authentication,
        authorization_backend=RoleAuthorization({view.identity: view.resource for view in views}),
    )
    admin.templates.env.globals["csrf_token"] = csrf_token
    # Database failures anywhere in the admin (sign-in included): a page, never a bare 500.
    for failure in (DBAPIError, PoolTimeoutError, ConnectionError):
        admin.admin.add_exception_handler(failure, admin.database_error)
    admin.templates.env.globals["current_user"] = current_user
    for view in views:
        view.database = database
        admin.add_view(view)
    history, pages = history_views(database.admin_sessions)
    for page in pages:
        admin.add_view(page)
    history.register(view for view in admin.views if isinstance(view, ResourceView))
    install_account_pages(admin, settings, database)  # forgot/set password, invite user
    return admin
