"""Which store an index argument means, and what every store offers.

An index is named by one string wherever one is taken (``--index``, ``$RAG_INDEX``,
``Assistant(index_dir=...)``): a ``postgresql://`` URL is an index in PostgreSQL with pgvector
(``rag/pgstore.py``), anything else a folder holding the embedded SQLite + FAISS store
(``rag/store.py``). Both satisfy :class:`IndexStore`, and one contract test suite runs against
both (tests/test_store_contract.py). ``$RAG_INDEX_READ`` may name a read replica of a PostgreSQL
index: questions are then answered from it while writes go to the primary.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Protocol

import numpy as np

from .lexical import LexicalQuery
from .models import Article, ArticleInfo, Chunk, IndexStats
from .pgschema import is_dsn, server_of

__all__ = ["IndexStore", "is_dsn", "resolve_index", "describe_index", "open_store", "stored_embedder",
           "index_exists", "uploads_dir"]


class IndexStore(Protocol):
    """What retrieval, ingestion and the CLI use of a store."""

    embedder_name: str

    def check_dimension(self, dim: int) -> None: ...
    def lookup_source(self, source: str) -> tuple[str, str] | None: ...
    def lookup_hash(self, content_hash: str) -> str | None: ...
    def write_batch(self, items: Sequence, *, replace: Iterable[str] = ()) -> dict[str, str]: ...
    def checkpoint(self, *, final: bool = True) -> bool: ...
    def remove(self, article_id: str) -> bool: ...
    def list_articles(self) -> list[ArticleInfo]: ...
    def article(self, article_id: str) -> Article: ...
    def chunks(self, ids: Sequence[int]) -> dict[int, Chunk]: ...
    def count(self) -> tuple[int, int]: ...
    def stats(self) -> IndexStats: ...
    def document_frequency(self, phrase: str, n_chunks: int | None = None) -> int: ...
    def lexical_search(self, match: LexicalQuery | str, n: int, since: str | None = None,
                       until: str | None = None) -> list[tuple[int, float]]: ...
    def dense_search(self, qvec: np.ndarray, n: int, since: str | None = None,
                     until: str | None = None) -> list[tuple[int, float]]: ...
    def embeddings(self, ids: Sequence[int]) -> dict[int, np.ndarray]: ...
    def close(self) -> None: ...


def resolve_index(index: str | Path | None, default: Path) -> Path | str:
    """The index an argument names: a PostgreSQL URL as it is, a folder as a Path; None means
    ``$RAG_INDEX``, else ``default``."""
    if index is None or index == "":
        index = os.environ.get("RAG_INDEX") or default
    if is_dsn(str(index)):
        return str(index)
    return Path(index).expanduser()


def describe_index(index: str | Path) -> str:
    """An index for people to read: a folder, or the server and database without the password."""
    return str(server_of(index)) if is_dsn(index) else str(index)


def open_store(index: str | Path, *, embedder_name: str, create: bool = True):
    """The store for an index (see :func:`resolve_index`)."""
    if is_dsn(index):
        from .pgstore import PgStore

        read = os.environ.get("RAG_INDEX_READ") or None
        return PgStore(str(index), embedder_name=embedder_name, create=create, read_dsn=read)
    from .store import Store

    return Store(index, embedder_name=embedder_name, create=create)


def stored_embedder(index: str | Path) -> str | None:
    """The embedder recorded in an index, without loading anything (None if unknown)."""
    if not is_dsn(index):
        from .store import stored_embedder as folder_embedder

        return folder_embedder(index)
    import psycopg

    try:
        with psycopg.connect(str(index), connect_timeout=5) as conn:
            if conn.execute("SELECT to_regclass('rag_meta')").fetchone()[0] is None:
                return None
            row = conn.execute("SELECT value FROM rag_meta WHERE key = 'embedder'").fetchone()
    except psycopg.Error:
        return None  # opening the store reports the problem properly
    return row[0] if row else None


def index_exists(index: str | Path) -> bool:
    """Whether the index holds a store already (a new one is seeded on first use)."""
    if not is_dsn(index):
        from .store import DB_NAME

        return (Path(index) / DB_NAME).exists()
    import psycopg

    try:
        with psycopg.connect(str(index), connect_timeout=5) as conn:
            return conn.execute("SELECT to_regclass('rag_meta')").fetchone()[0] is not None
    except psycopg.Error:
        return True  # unknown: do not seed; opening the store reports the problem


def uploads_dir(index: str | Path) -> Path:
    """Where the chat keeps uploaded files: inside an index folder, or for a database a folder
    in the user cache named after the server and database."""
    if not is_dsn(index):
        return Path(index).resolve() / "uploads"
    from .onnx_embed import cache_root

    s = server_of(str(index))
    key = hashlib.sha256(str(s).encode()).hexdigest()[:12]
    return cache_root() / "uploads" / f"{s.dbname or 'db'}-{key}"
