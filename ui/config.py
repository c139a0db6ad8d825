"""Serving options checked before anything heavy loads: address, port and login.

The page binds to 127.0.0.1 unless told otherwise. Anyone who can reach it can read the indexed
articles and add or remove them, so exposing it beyond this machine without a login earns a
warning (not a refusal: a trusted network or a proxy in front may be the setup).
"""

from __future__ import annotations

from rag.errors import ConfigError

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 7860
LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


def parse_auth(value: str | None) -> tuple[str, str] | None:
    """``user:password`` -> (user, password); ConfigError naming the problem otherwise."""
    if value is None:
        return None
    user, sep, password = value.partition(":")
    if not sep or not user or not password:
        raise ConfigError("--auth must be USER:PASSWORD with both parts non-empty")
    return user, password


def check_port(port: int) -> int:
    if not isinstance(port, int) or not 0 < port < 65536:
        raise ConfigError(f"--port must be 1-65535, got {port}")
    return port


def exposure_warning(host: str, auth: tuple[str, str] | None) -> str | None:
    """The warning to print when the page is reachable beyond this machine without a login."""
    if host in LOCAL_HOSTS or host.startswith("127.") or auth is not None:
        return None
    return (f"warning: serving on {host} without --auth: anyone who can reach this machine can "
            "read the indexed articles and add or remove them (use --auth USER:PASSWORD)")
