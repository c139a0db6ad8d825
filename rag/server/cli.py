"""The ``rag serve`` command: its options, and running it (``rag chat`` runs through here too).

Kept apart from ``rag.cli`` so that the server's options live with the server; nothing heavy is
imported until the command runs.
"""

from __future__ import annotations

import argparse
import os
from typing import Any


def add_serve_parser(sub: Any) -> argparse.ArgumentParser:
    """Adds ``rag serve`` to the ``rag`` subcommands."""
    from ..cli import _add_index_opts, add_llm_options

    p = sub.add_parser("serve", help="serve the HTTP API (OpenAI-compatible) and the chat on one port",
                       description="Serve the HTTP API and the chat at http://127.0.0.1:8000: "
                                   "/v1/chat/completions for OpenAI clients, the native API under /v1, "
                                   "its spec at /openapi.json, the chat at /.")
    _add_index_opts(p)
    p.add_argument("--host", default="127.0.0.1", metavar="HOST",
                   help="address to bind (default 127.0.0.1; beyond it an API key is required)")
    p.add_argument("--port", type=int, default=8000, metavar="PORT", help="port (default 8000)")
    p.add_argument("--api-key", metavar="KEY", default=None,
                   help="require 'Authorization: Bearer KEY' on the API (default: $RAG_API_KEY; none on 127.0.0.1)")
    p.add_argument("--auth", metavar="USER:PASSWORD",
                   help="the chat's login (default with an API key: any user name, the key as password)")
    p.add_argument("--no-chat", action="store_true", help="serve the API only")
    p.add_argument("--top-k", type=int, default=5, metavar="N", help="default passages per answer (default 5)")
    p.add_argument("--feeds-every", metavar="INTERVAL",
                   help="update the index's feeds in the background at this interval, e.g. 15m")
    add_llm_options(p)
    return p


def _serving(args: argparse.Namespace, assistant, run) -> int:
    """Runs the server, with the index's feeds refreshed in the background when asked."""
    from ..cli_sources import start_refresher
    from ..feeds import parse_interval

    every = parse_interval(args.feeds_every) if getattr(args, "feeds_every", None) else None
    refresher = start_refresher(assistant, every) if every else None
    try:
        run()
    finally:
        if refresher is not None:
            refresher.stop()
    return 0


def run_serve(args: argparse.Namespace) -> int:
    from ..cli import _assistant, llm_kwargs
    from ..errors import ConfigError
    from ui.config import check_port, parse_auth

    auth = parse_auth(args.auth)  # bad options fail before anything heavy loads
    check_port(args.port)
    if args.top_k < 1:
        raise ConfigError(f"--top-k must be at least 1, got {args.top_k}")
    key = args.api_key if args.api_key is not None else (os.environ.get("RAG_API_KEY") or None)
    from .run import check_access, serve

    check_access(args.host, api=True, api_key=key, auth=auth)
    _check_interval(args)
    assistant = _assistant(args, top_k=args.top_k, **llm_kwargs(args))
    return _serving(args, assistant, lambda: serve(assistant, host=args.host, port=args.port, api_key=key,
                                                    auth=auth, chat=not args.no_chat))


def run_chat(args: argparse.Namespace) -> int:
    """``rag chat``: the chat alone, on the same server (with its limit on failed logins)."""
    from ..cli import _assistant, llm_kwargs
    from ui.config import check_port, parse_auth

    auth = parse_auth(args.auth)
    check_port(args.port)
    _check_interval(args)
    from .run import serve

    assistant = _assistant(args, top_k=args.top_k, **llm_kwargs(args))
    return _serving(args, assistant, lambda: serve(assistant, host=args.host, port=args.port, auth=auth, api=False))


def _check_interval(args: argparse.Namespace) -> None:
    """A bad ``--feeds-every`` fails before anything heavy loads."""
    if getattr(args, "feeds_every", None):
        from ..feeds import parse_interval

        parse_interval(args.feeds_every)
