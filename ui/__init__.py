"""The Gradio chat over a ``rag.Assistant``: ``build_app(assistant)`` or ``python -m ui``.

Gradio loads only when ``build_app``/``serve`` is first used, so the pure parts of this package
(``ui.render``, ``ui.backend``) import in milliseconds.
"""

from __future__ import annotations

from typing import Any

__all__ = ["build_app", "serve"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from . import app

        return getattr(app, name)
    raise AttributeError(f"module 'ui' has no attribute {name!r}")
