"""``rag serve``: the HTTP API and the chat on one port.

One ASGI app (FastAPI, run by uvicorn) serves an OpenAI-compatible ``/v1/chat/completions``
whose answers carry their citations, a small native REST API over the index, and the Gradio chat
mounted at ``/``. The modules, one concern each:

* ``schemas``: the request and response bodies (pydantic), which also make the OpenAPI spec;
* ``chat_api``: ``/v1/chat/completions`` and ``/v1/models`` (OpenAI's shapes, SSE streaming);
* ``native_api``: ``/v1/ask``, ``/v1/articles``, ``/v1/stats``, ``/healthz``;
* ``guard``: the API key, the limit on failed keys and logins per client, request size limits;
* ``app``: ``create_app`` puts them together (errors in OpenAI's shape, the chat mounted);
* ``run``: ``serve`` binds the address (127.0.0.1 unless told; a key required beyond) and runs it;
* ``cli``: the ``rag serve`` options.

FastAPI, uvicorn and Gradio load only when ``create_app``/``serve`` are first used, so the
``rag`` command line stays quick to start.
"""

from __future__ import annotations

from typing import Any

__all__ = ["create_app", "serve"]


def __getattr__(name: str) -> Any:
    if name == "create_app":
        from .app import create_app

        return create_app
    if name == "serve":
        from .run import serve

        return serve
    raise AttributeError(f"module 'rag.server' has no attribute {name!r}")
