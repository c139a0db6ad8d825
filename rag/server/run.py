"""``serve``: bind the address, check who may connect, and run the app under uvicorn.

Bound to 127.0.0.1 unless told otherwise. Beyond this machine the API refuses to start without
an API key, and the chat then needs a login: ``--auth USER:PASSWORD``, or else any user name with
the API key as the password. A key given on 127.0.0.1 protects the chat the same way, since
whoever sets a key means the server to be protected. (``rag chat``, which serves the chat
without the API, keeps its old rule: a warning beyond localhost without ``--auth``.)

The socket is bound here before anything heavy loads, so a port in use is a one-line error
naming it. The server runs in the calling thread and Ctrl+C reaches the caller as
KeyboardInterrupt after a graceful shutdown (uvicorn re-raises the signal), as with ``rag chat``
before; ``start`` runs it on a thread instead, for tests and benchmarks.
"""

from __future__ import annotations

import socket
import sys
import threading
import time
from dataclasses import dataclass
from typing import Any

from ..errors import ConfigError
from .guard import FailureLimiter, key_login

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000


def is_local(host: str) -> bool:
    return host in ("localhost", "::1") or host.startswith("127.")


def check_access(host: str, *, api: bool, api_key: str | None, auth: tuple[str, str] | None) -> str | None:
    """ConfigError when the API would be open beyond localhost; the warning to print, if any."""
    if api_key is not None and not api_key.strip():
        raise ConfigError("the API key is empty (--api-key KEY or RAG_API_KEY)")
    if is_local(host):
        return None
    if api and not api_key:
        raise ConfigError(f"refusing to serve the API on {host} without an API key: anyone who can reach this "
                          "machine could use it (give --api-key KEY or set RAG_API_KEY, or bind to 127.0.0.1)")
    if not api and auth is None:
        from ui.config import exposure_warning

        return exposure_warning(host, auth)
    return None


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on host:port, or a ConfigError naming them."""
    from ui.config import check_port

    if port != 0:  # 0: any free port (tests, benchmarks)
        check_port(port)
    try:
        family, kind, proto, _, addr = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        sock = socket.socket(family, kind, proto)
    except (OSError, UnicodeError) as e:
        raise ConfigError(f"cannot serve on {host}:{port}: {getattr(e, 'strerror', None) or e}") from None
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(addr)
        sock.listen(2048)
    except OSError as e:
        sock.close()
        raise ConfigError(f"cannot serve on {host}:{port}: {e.strerror or e}") from None
    sock.set_inheritable(True)
    return sock


@dataclass
class Running:
    """A server started by ``start``: its address, and ``stop()``."""

    url: str
    server: Any
    thread: threading.Thread
    sock: socket.socket

    def stop(self, timeout: float = 10) -> None:
        self.server.should_exit = True
        self.thread.join(timeout)
        self.sock.close()


def _prepare(assistant: Any, *, host: str, port: int, api_key: str | None, auth: Any, api: bool, chat: bool,
             limiter: FailureLimiter | None, quiet: bool, banner: bool = True) -> tuple[Any, socket.socket]:
    import uvicorn

    from ui.config import parse_auth

    creds = parse_auth(auth) if isinstance(auth, str) else auth
    warning = check_access(host, api=api, api_key=api_key, auth=creds)
    if warning and not quiet:
        print(warning, file=sys.stderr)
    sock = bind(host, port)
    port = sock.getsockname()[1]
    try:
        from .app import create_app

        chat_auth = creds if creds is not None else (key_login(api_key) if api_key and chat else None)
        app = create_app(assistant, api_key=api_key, api=api, chat=chat, chat_auth=chat_auth, limiter=limiter,
                         host=host, port=port)
    except BaseException:
        sock.close()
        raise
    shown = f"[{host}]" if ":" in host else host
    url = f"http://{shown}:{port}"
    if not api:
        message = f"Chat running at {url}/ (Ctrl+C to stop)"
    else:
        message = (f"API running at {url}/v1" + (f", chat at {url}/" if chat else "") + " (Ctrl+C to stop)")

    class Server(uvicorn.Server):
        async def startup(self, sockets: list[socket.socket] | None = None) -> None:
            await super().startup(sockets)
            if self.started and banner and not quiet:
                print(message, file=sys.stderr, flush=True)

    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on", timeout_graceful_shutdown=5,
                            server_header=False)
    server = Server(config)
    server.url = url  # type: ignore[attr-defined]
    warm = getattr(getattr(assistant, "embedder", None), "encode", None)
    if callable(warm):  # load the embedder while the server starts, so the first answer is quick
        threading.Thread(target=lambda: warm(["warm up"]), name="rag-warm-up", daemon=True).start()
    return server, sock


def serve(assistant: Any, *, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT, api_key: str | None = None,
          auth: str | tuple[str, str] | None = None, api: bool = True, chat: bool = True,
          limiter: FailureLimiter | None = None, quiet: bool = False) -> None:
    """Serves until Ctrl+C (which reaches the caller as KeyboardInterrupt)."""
    server, sock = _prepare(assistant, host=host, port=port, api_key=api_key, auth=auth, api=api, chat=chat,
                            limiter=limiter, quiet=quiet)
    try:
        server.run(sockets=[sock])
    finally:
        sock.close()


def start(assistant: Any, *, host: str = DEFAULT_HOST, port: int = 0, api_key: str | None = None,
          auth: str | tuple[str, str] | None = None, api: bool = True, chat: bool = True,
          limiter: FailureLimiter | None = None, timeout: float = 60) -> Running:
    """Serves on a thread of its own (port 0: any free port); ``Running.stop()`` ends it."""
    server, sock = _prepare(assistant, host=host, port=port, api_key=api_key, auth=auth, api=api, chat=chat,
                            limiter=limiter, quiet=True)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="rag-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            sock.close()
            raise ConfigError(f"the server at {server.url} did not start")
        time.sleep(0.02)
    return Running(url=server.url, server=server, thread=thread, sock=sock)
