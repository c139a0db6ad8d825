"""``create_app``: the HTTP API and the chat as one ASGI app.

The API routes come first and the Gradio chat is mounted at ``/`` behind them, so one port
serves both: ``/v1/...`` is the API, ``/openapi.json`` its spec, ``/healthz`` the health check,
everything else the chat. Every API error, whatever raised it (a bad field, a RagError naming
a bad value, an unknown path, a bug), is answered in OpenAI's error shape, because OpenAI
clients show ``error.message`` to their users; FastAPI's own 422 becomes a 400 like OpenAI's.
The interactive docs pages are off: they load their scripts from a CDN, and this project runs
offline; the spec itself is what clients and tools use.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse
from pydantic.json_schema import models_json_schema
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from ..errors import ConfigError, InputError, RagError
from . import chat_api, native_api
from .guard import ApiError, BodyLimit, FailureLimiter, LoginGuard
from .schemas import ChatCompletionChunk
from .state import ServerState

log = logging.getLogger("rag.server")

VERSION = "0.1.0"
JSON_BODY_LIMIT = 1_000_000  # questions are 2,000 characters; a long conversation fits easily
UPLOAD_BODY_LIMIT = 50_000_000  # several files of up to 10 MB each (the per-file cap is the chat's)
LOGIN_BODY_LIMIT = 64_000
DESCRIPTION = """Questions answered from the indexed football news, with citations.

`POST /v1/chat/completions` and `GET /v1/models` follow OpenAI's API (point any OpenAI client at
`http://HOST:PORT/v1`); the answer's sources are in `message.citations` (streamed: in the last
chunk's `delta.citations`). The native endpoints manage the index. With an API key configured,
send `Authorization: Bearer KEY`. Errors are `{"error": {"message", "type", "param", "code"}}`."""


def _error(err: ApiError) -> JSONResponse:
    return JSONResponse(err.body(), status_code=err.status, headers=err.headers or None)


def _validation_message(exc: RequestValidationError) -> ApiError:
    errors = exc.errors()
    first = errors[0] if errors else {"loc": ("body",), "msg": "invalid request"}
    loc = [str(p) for p in first.get("loc", ()) if p not in ("body", "query", "path", "header")]
    param = ".".join(loc) or None
    if first.get("type") == "json_invalid":
        return ApiError(400, f"the request body is not valid JSON ({first.get('ctx', {}).get('error', 'parse error')})")
    msg = str(first.get("msg", "invalid value"))
    more = f" (and {len(errors) - 1} more problems)" if len(errors) > 1 else ""
    return ApiError(400, f"{param or 'the request body'}: {msg}{more}", param=param)


_CODES = {401: "invalid_api_key", 404: "not_found", 405: "method_not_allowed", 413: "request_too_large"}


def install_error_handlers(app: FastAPI) -> None:
    """Every error in OpenAI's shape; see the module docstring."""

    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError) -> JSONResponse:
        return _error(exc)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        kind = "server_error" if exc.status_code >= 500 else "invalid_request_error"
        return _error(ApiError(exc.status_code, str(exc.detail), type=kind, code=_CODES.get(exc.status_code),
                               headers=dict(exc.headers or {})))

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        return _error(_validation_message(exc))

    @app.exception_handler(RagError)
    async def rag_error(request: Request, exc: RagError) -> JSONResponse:
        if isinstance(exc, (InputError, ConfigError)):
            return _error(ApiError(400, str(exc)))
        log.error("cannot answer %s %s: %s", request.method, request.url.path, exc)
        return _error(ApiError(503, str(exc), type="server_error"))

    @app.exception_handler(Exception)
    async def bug(request: Request, exc: Exception) -> JSONResponse:
        log.error("%s %s failed", request.method, request.url.path, exc_info=exc)
        return _error(ApiError(500, "internal error (see the server log)", type="server_error"))


_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")


async def _unknown_v1(request: Request) -> None:
    """Anything else under /v1: 405 for a known path with another method, else 404."""
    routes = [r for r in request.app.router.routes if getattr(r, "path", None) != "/v1/{path:path}"]
    allowed = [m for m in _METHODS
               if any(r.matches({**request.scope, "method": m})[0] == Match.FULL for r in routes)]
    if allowed:
        raise ApiError(405, f"{request.method} is not allowed on {request.url.path} (use {', '.join(allowed)})",
                       code="method_not_allowed", headers={"Allow": ", ".join(allowed)})
    raise ApiError(404, f"unknown endpoint {request.method} {request.url.path}", code="not_found")


def _openapi(app: FastAPI) -> Callable[[], dict[str, Any]]:
    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
        for path in schema.get("paths", {}).values():
            for op in path.values():
                op.get("responses", {}).pop("422", None)  # validation errors are 400s here
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        for name in ("HTTPValidationError", "ValidationError"):
            components.pop(name, None)
        _, defs = models_json_schema([(ChatCompletionChunk, "serialization")],
                                     ref_template="#/components/schemas/{model}")
        for name, definition in defs.get("$defs", {}).items():
            components.setdefault(name, definition)
        app.openapi_schema = schema
        return schema

    return openapi


def _api_app(api: bool = True) -> FastAPI:
    """The FastAPI app with the API's routes and error handling, before any state or chat."""
    app = FastAPI(title="football-rag", version=VERSION, description=DESCRIPTION, docs_url=None,
                  redoc_url=None, openapi_url="/openapi.json" if api else None)
    install_error_handlers(app)
    if api:
        app.include_router(chat_api.router)
        app.include_router(native_api.router)
        app.add_api_route("/v1/{path:path}", _unknown_v1, include_in_schema=False,
                          methods=[*_METHODS, "HEAD", "OPTIONS"])
        app.openapi = _openapi(app)  # type: ignore[method-assign]
    app.include_router(native_api.health_router)
    return app


def openapi_document() -> dict[str, Any]:
    """The OpenAPI document the server serves at /openapi.json (no Assistant needed)."""
    return _api_app().openapi()


def create_app(assistant: Any, *, api_key: str | None = None, api: bool = True, chat: bool = True,
               chat_auth: Any = None, limiter: FailureLimiter | None = None, host: str = "127.0.0.1",
               port: int = 8000) -> FastAPI:
    """The app for one Assistant.

    Args:
        assistant: the ``rag.Assistant`` that answers.
        api_key: required as ``Authorization: Bearer KEY`` on /v1 when given.
        api: serve the HTTP API (``rag chat`` serves the chat alone).
        chat: mount the Gradio chat at ``/``.
        chat_auth: the chat's login: (user, password), or a ``check(user, password)`` function.
        limiter: failed keys and logins per client (default: 10 a minute).
        host, port: where it will be served (the chat's config wants to know).
    """
    limiter = limiter or FailureLimiter()
    assistant.articles()  # a fresh index is built from the seeds now, not by whichever request comes first
    app = _api_app(api)
    demo = None
    if chat:
        from ui.app import build_app

        demo = build_app(assistant)
        backend = demo.rag_backend
    else:
        from ui.backend import ChatBackend

        backend = ChatBackend(assistant)
    app.state.rag = ServerState(assistant=assistant, backend=backend, api_key=api_key or None, limiter=limiter)
    app.add_middleware(LoginGuard, limiter=limiter)
    app.add_middleware(BodyLimit, limits=[("POST", "/v1/articles", UPLOAD_BODY_LIMIT), ("*", "/v1/", JSON_BODY_LIMIT),
                                          ("*", "/login", LOGIN_BODY_LIMIT)])
    if demo is not None:  # last: the mount at / takes every path the routes above do not
        import gradio as gr

        from ui.app import launch_kwargs

        gr.mount_gradio_app(app, demo, path="/", auth=chat_auth, server_name=host, server_port=port,
                            max_file_size=backend.max_upload_bytes, **launch_kwargs())
    return app
