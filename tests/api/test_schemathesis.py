"""Property-based: schemathesis fuzzes every operation of the app's own /openapi.json.

It runs in-process against the ASGI app, as an editor, on a throw-away migrated database
(SQLite and PostgreSQL: PostgreSQL refuses values SQLite stores), derandomized, with a few
positive and negative examples per operation. A 5xx, an undocumented
status code or content type, or a body or header that breaks the documented schema fails.
"""

import asyncio
import os
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, Phase, given
from hypothesis import settings as hypothesis_settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.python.asgi import shutdown_lifespans
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from backend import schema as database_schema
from backend.auth.tokens import create_access_token
from backend.auth.users import upsert_user
from backend.config import Settings
from backend.main import create_app
from backend.models import Role
from tests.databases import fresh_database

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
]
# A few examples per operation keep `make test` quick; FUZZ_EXAMPLES=200 searches harder.
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "8"))


@pytest.fixture(scope="module")
def fuzz_settings(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    """A fresh database of its own: the fuzzer's rows are not rolled back."""
    with fresh_database(backend, tmp_path_factory.mktemp("fuzz")) as url:
        # mail configured (to a port nobody listens on: no fuzzed email has an account), so
        # that the password reset routes are fuzzed as served rather than answering 503
        settings = Settings(
            database_url=url,
            environment="test",
            smtp_host="127.0.0.1",
            smtp_port=9,
            public_base_url="http://testserver",
        )
        asyncio.run(database_schema.upgrade(url))
        asyncio.run(
            upsert_user(
                settings,
                email="fuzz-editor@example.com",
                password="fuzz-password",
                role=Role.editor,
            )
        )
        yield settings
        # schemathesis keeps each app's lifespan running; end it before the database goes.
        shutdown_lifespans()


@pytest.fixture(scope="module")
def fuzz_app(fuzz_settings: Settings) -> FastAPI:
    return create_app(fuzz_settings)


@pytest.fixture(scope="module")
def fuzz_schema(fuzz_app: FastAPI) -> schemathesis.BaseSchema:
    return schemathesis.openapi.from_asgi("/openapi.json", fuzz_app)


@pytest.fixture(scope="module")
def editor_token(fuzz_settings: Settings) -> str:
    return create_access_token(1, fuzz_settings)  # the only user of the fuzz database


def test_the_spec_is_valid_openapi(fuzz_schema: schemathesis.BaseSchema) -> None:
    fuzz_schema.validate()


def _operations() -> list[tuple[str, str, bool]]:
    """Every (method, path, takes input) of the spec; building it needs no database."""
    spec = create_app(Settings(database_url="sqlite+aiosqlite:///:memory:")).openapi()
    return [
        (method.upper(), path, bool(op.get("parameters") or op.get("requestBody")))
        for path, item in spec["paths"].items()
        for method, op in item.items()
        if "text/event-stream" not in op["responses"].get("200", {}).get("content", {})
    ]  # a stream (the realtime feed) never ends: tests/realtime covers it


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=str)
@pytest.mark.parametrize(
    ("method", "path", "has_input"),
    [pytest.param(*op, id=f"{op[0]} {op[1]}") for op in _operations()],
)
def test_no_5xx_and_no_schema_violation(
    method: str,
    path: str,
    has_input: bool,
    mode: GenerationMode,
    fuzz_schema: schemathesis.BaseSchema,
    editor_token: str,
) -> None:
    if mode is GenerationMode.NEGATIVE and not has_input:
        pytest.skip("the operation takes no input to get wrong")
    operation = fuzz_schema[path][method]
    headers = {"Authorization": f"Bearer {editor_token}"}

    @given(case=operation.as_strategy(generation_mode=mode))
    @hypothesis_settings(
        max_examples=EXAMPLES,
        derandomize=True,
        deadline=None,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    def fuzz(case: schemathesis.Case[Any]) -> None:
        case.call_and_validate(headers=headers, checks=CHECKS)

    fuzz()
