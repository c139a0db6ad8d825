"""The local cache of GGUF models, and ``rag model pull`` to fill it from the Hugging Face Hub.

Everything else in the product runs offline; this is the one place that may use the network,
and only when a user asks for it. Offline (``HF_HUB_OFFLINE`` set) or with the Hub unreachable
it fails at once with one line naming the repository and file, never with a traceback or a long
wait. A file already in the cache is returned without any network access, and a downloaded file
must be a GGUF before it is reported as pulled.
"""

from __future__ import annotations

import os
import re
import socket
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from .errors import ConfigError, ModelError

_REPO = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*/[A-Za-z0-9][A-Za-z0-9_.-]*$")
_TRUE = {"1", "true", "yes", "on"}


def default_model_dir() -> Path:
    """``$RAG_MODEL_DIR``, else ``$XDG_CACHE_HOME/football-rag/models`` (``~/.cache/...``)."""
    env = os.environ.get("RAG_MODEL_DIR")
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base).expanduser() / "football-rag" / "models"


@dataclass(frozen=True)
class CachedModel:
    """A GGUF file in the cache; ``downloaded`` is False when it was already there."""

    repo: str
    filename: str
    path: Path
    size_bytes: int
    downloaded: bool = False


def _repo_dir(repo: str) -> str:
    return repo.replace("/", "--")


def _check_args(repo: str, filename: str) -> None:
    if not _REPO.match(repo or ""):
        raise ConfigError(f"repository must look like OWNER/NAME, got '{repo}'")
    if not filename or filename.startswith("/") or ".." in Path(filename).parts:
        raise ConfigError(f"file must be a file name inside the repository, got '{filename}'")
    if not filename.lower().endswith(".gguf"):
        raise ConfigError(f"only GGUF files can be used, got '{filename}'")


def _one_line(e: BaseException) -> str:
    msg = " ".join(str(e).split()) or type(e).__name__
    return msg if len(msg) <= 200 else msg[:197] + "..."


def _check_reachable(what: str, endpoint: str, timeout_s: float) -> None:
    """Fails at once when the Hub cannot be reached (the Hub client would retry for a minute).
    Behind a proxy the direct probe means nothing, so it is skipped there."""
    parts = urlsplit(endpoint)
    host = parts.hostname
    if not host or parts.scheme not in ("http", "https"):
        raise ConfigError(f"endpoint must be an http(s) URL, got '{endpoint}'")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    if any(os.environ.get(v) for v in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY")):
        return
    try:
        socket.create_connection((host, port), timeout=timeout_s).close()
    except OSError as e:
        raise ModelError(f"cannot download {what}: cannot reach {endpoint} ({e.strerror or type(e).__name__}); "
                         f"offline? copy a GGUF file here and pass --model PATH instead") from None


def pull(repo: str, filename: str, *, cache_dir: str | Path | None = None, endpoint: str | None = None,
         force: bool = False, timeout_s: float = 10.0) -> CachedModel:
    """Downloads ``filename`` from the Hub repository ``repo`` into the cache (once).

    Args:
        repo: Hub repository, "OWNER/NAME".
        filename: A ``.gguf`` file in that repository.
        cache_dir: Where models live (default: ``default_model_dir()``).
        endpoint: Hub address (default: huggingface_hub's, i.e. ``$HF_ENDPOINT`` or the Hub).
        force: Download again even if the file is cached.
        timeout_s: Seconds to wait for the Hub to answer before giving up.

    Raises:
        ConfigError: For a malformed repository or file name.
        ModelError: Offline, unreachable, not found, or the file is not a GGUF.
    """
    from .llm import check_gguf

    _check_args(repo, filename)
    root = Path(cache_dir).expanduser() if cache_dir else default_model_dir()
    target_dir = root / _repo_dir(repo)
    target = target_dir / filename
    if target.is_file() and not force:
        check_gguf(target)
        return CachedModel(repo, filename, target, target.stat().st_size, downloaded=False)
    if os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in _TRUE:
        raise ModelError(f"cannot download {repo}/{filename}: offline (HF_HUB_OFFLINE is set); "
                         f"copy a GGUF file here and pass --model PATH instead")
    try:
        from huggingface_hub import hf_hub_download
    except ImportError:
        raise ModelError("cannot download models: the huggingface_hub package is not installed "
                         "(pip install huggingface_hub), or pass --model PATH to a GGUF file") from None
    if endpoint is None:
        from huggingface_hub import constants

        endpoint_url = constants.ENDPOINT
    else:
        endpoint_url = endpoint
    _check_reachable(f"{repo}/{filename}", endpoint_url, timeout_s)
    target_dir.mkdir(parents=True, exist_ok=True)
    try:
        path = hf_hub_download(repo_id=repo, filename=filename, local_dir=str(target_dir), endpoint=endpoint,
                               etag_timeout=timeout_s, force_download=force)
    except KeyboardInterrupt:
        raise
    except Exception as e:  # the network boundary: every failure becomes one line
        where = f" from {endpoint}" if endpoint else ""
        raise ModelError(f"cannot download {repo}/{filename}{where}: {type(e).__name__}: {_one_line(e)}") from None
    p = check_gguf(path)
    return CachedModel(repo, filename, p, p.stat().st_size, downloaded=True)


def list_cached(cache_dir: str | Path | None = None) -> list[CachedModel]:
    """The GGUF files in the cache, by repository and file name."""
    root = Path(cache_dir).expanduser() if cache_dir else default_model_dir()
    out: list[CachedModel] = []
    if not root.is_dir():
        return out
    for p in sorted(root.glob("*/**/*.gguf")):
        if p.is_file():
            rel = p.relative_to(root)
            out.append(CachedModel(rel.parts[0].replace("--", "/", 1), "/".join(rel.parts[1:]), p, p.stat().st_size))
    return out


def find_cached(filename: str, cache_dir: str | Path | None = None) -> Path | None:
    """The cached file with this name (the first repository's, by name), or None."""
    for m in list_cached(cache_dir):
        if m.path.name == filename:
            return m.path
    return None
