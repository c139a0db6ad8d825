"""Who may use the server, and how much they may send.

* **The API key.** ``Authorization: Bearer KEY``, what every OpenAI client sends, compared in
  constant time. Without a configured key the API is open, which ``rag serve`` allows only on
  127.0.0.1 (``rag.server.run``).
* **Failed attempts per client.** Wrong or missing API keys and failed chat logins count
  against one ``FailureLimiter`` per client address: guessing through either door spends the
  same budget. Past ``max_failures`` within ``window_s`` seconds the client gets 429 with
  ``Retry-After`` until its oldest failure leaves the window, even with the right key, so a
  guesser learns nothing more. The moving window is the ``limits`` package's, in memory; a
  client's record expires with its window, so the table cannot grow without bound. Behind a
  reverse proxy every client has the proxy's address: put the limit there instead.
* **Request sizes.** A ``Content-Length`` over the limit is refused before the body is read; a
  body sent without one is counted as it arrives and refused when it passes the limit. (FastAPI's
  own ``max_body_size`` would count as well, but it answers a declared oversize body with a
  plain-text 413 that no exception handler sees; here it is an error in OpenAI's shape like any
  other.)
"""

from __future__ import annotations

import json
import math
import secrets
import time
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from typing import Any

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
ASGIApp = Callable[[Scope, Callable[[], Awaitable[Message]], Callable[[Message], Awaitable[None]]], Awaitable[None]]

MAX_FAILURES = 10
FAILURE_WINDOW_S = 60
LOGIN_PATHS = frozenset({"/login", "/login/"})  # Gradio's login form, with the chat mounted at /


class FailureLimiter:
    """Counts failed keys and logins per client; see the module docstring."""

    def __init__(self, max_failures: int = MAX_FAILURES, window_s: int = FAILURE_WINDOW_S) -> None:
        from limits import RateLimitItemPerSecond
        from limits.storage import MemoryStorage
        from limits.strategies import MovingWindowRateLimiter

        if max_failures < 1 or window_s < 1:
            raise ValueError(f"max_failures and window_s must be at least 1, got {max_failures}, {window_s}")
        self.max_failures, self.window_s = max_failures, window_s
        self._item = RateLimitItemPerSecond(max_failures, window_s, namespace="rag-failures")
        self._limiter = MovingWindowRateLimiter(MemoryStorage())

    def blocked_for(self, client: str) -> float | None:
        """Seconds until ``client`` may try again, or None when it is not blocked."""
        if self._limiter.test(self._item, client):
            return None
        reset = self._limiter.get_window_stats(self._item, client).reset_time
        return max(1.0, reset - time.time())

    def failed(self, client: str) -> None:
        self._limiter.hit(self._item, client)


def client_of(scope: Scope) -> str:
    """The client's address (the key the limiter counts by)."""
    client = scope.get("client")
    return str(client[0]) if client else "unknown"


class ApiError(Exception):
    """An error answered in OpenAI's shape: ``{"error": {"message", "type", "param", "code"}}``."""

    def __init__(self, status: int, message: str, *, type: str = "invalid_request_error",
                 param: str | None = None, code: str | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.type, self.param, self.code = status, message, type, param, code
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}


def too_many(wait: float) -> ApiError:
    seconds = math.ceil(wait)
    return ApiError(429, f"too many failed API keys or logins from this client; try again in {seconds} s",
                    type="rate_limit_error", code="rate_limit_exceeded", headers={"Retry-After": str(seconds)})


_bearer = HTTPBearer(auto_error=False, scheme_name="APIKey",
                     description="the server's API key (rag serve --api-key, or RAG_API_KEY)")


async def require_key(request: Request,
                      credentials: HTTPAuthorizationCredentials | None = Depends(_bearer)) -> None:
    """FastAPI dependency of every /v1 route: the configured key, or 401 (and a failure counted).

    A coroutine, though it never waits: FastAPI runs plain functions on a worker thread, and the
    check is cheaper than the hop.
    """
    key: str | None = request.app.state.rag.api_key
    if key is None:
        return
    limiter: FailureLimiter = request.app.state.rag.limiter
    client = client_of(request.scope)
    wait = limiter.blocked_for(client)
    if wait is not None:
        raise too_many(wait)
    given = credentials.credentials if credentials is not None else ""
    if secrets.compare_digest(given.encode("utf-8", "replace"), key.encode("utf-8")):
        return
    limiter.failed(client)
    message = ("incorrect API key provided" if given else
               "this server needs an API key: send the header 'Authorization: Bearer KEY'")
    raise ApiError(401, message, code="invalid_api_key", headers={"WWW-Authenticate": "Bearer"})


def key_login(key: str) -> Callable[[str, str], bool]:
    """A chat login that accepts any user name with the API key as the password."""

    def check(username: str, password: str) -> bool:
        return secrets.compare_digest(password.encode("utf-8", "replace"), key.encode("utf-8"))

    return check


async def _send_json(send: Callable[[Message], Awaitable[None]], status: int, body: dict[str, Any],
                     headers: dict[str, str] | None = None) -> None:
    data = json.dumps(body).encode("utf-8")
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())]
    raw += [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": data})


class LoginGuard:
    """ASGI middleware in front of the chat's login form (Gradio answers a wrong password with
    400): counts failed logins per client and answers 429 while the client is over the limit."""

    def __init__(self, app: ASGIApp, limiter: FailureLimiter) -> None:
        self.app, self.limiter = app, limiter

    async def __call__(self, scope: Scope, receive: Callable[[], Awaitable[Message]],
                       send: Callable[[Message], Awaitable[None]]) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or scope["path"] not in LOGIN_PATHS:
            await self.app(scope, receive, send)
            return
        client = client_of(scope)
        wait = self.limiter.blocked_for(client)
        if wait is not None:
            err = too_many(wait)
            await _send_json(send, 429, {"detail": err.message}, err.headers)
            return
        status = 0

        async def watch(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        await self.app(scope, receive, watch)
        if status in (400, 401):
            self.limiter.failed(client)


class BodyTooLarge(HTTPException):
    """Raised while a body is read; FastAPI passes HTTPExceptions through its body parsing."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"the request body is over the {limit:,} byte limit")
        self.limit = limit


class BodyLimit:
    """ASGI middleware: request bodies over the limit for their path are refused with 413.

    ``limits`` is a list of (method or "*", path prefix, bytes), the first match wins; paths
    matching none (the chat's own routes, which Gradio bounds) are not limited here.
    """

    def __init__(self, app: ASGIApp, limits: Sequence[tuple[str, str, int]]) -> None:
        self.app, self.limits = app, list(limits)

    def limit_for(self, method: str, path: str) -> int | None:
        for m, prefix, limit in self.limits:
            if (m == "*" or m == method) and path.startswith(prefix):
                return limit
        return None

    async def __call__(self, scope: Scope, receive: Callable[[], Awaitable[Message]],
                       send: Callable[[Message], Awaitable[None]]) -> None:
        limit = self.limit_for(scope["method"], scope["path"]) if scope["type"] == "http" else None
        if limit is None:
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > limit):
            err = BodyTooLarge(limit) if declared.isdigit() else None
            status, message = (413, err.detail) if err else (400, "the Content-Length header is not a number")
            await _send_json(send, status, ApiError(status, message, code="request_too_large" if err else None).body())
            return
        received = 0
        started = False

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(limit)
            return message

        async def watch(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted, watch)
        except BodyTooLarge as e:  # nobody inside turned it into a response
            if started:
                raise
            await _send_json(send, 413, ApiError(413, str(e.detail), code="request_too_large").body())
