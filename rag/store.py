"""The index on disk: SQLite as the source of truth, FAISS as a derived cache.

SQLite (WAL, one transaction per ingest batch) holds articles, chunks, their embeddings as
float32 blobs, an FTS5 table for BM25 and a meta table (embedder, dimension, schema version,
generation). Every committed batch bumps the generation. The FAISS index is written as
``faiss-<generation>.index`` through a temp file and an atomic rename, so a reader either finds
the file for the current generation or rebuilds it from the stored embeddings: a crash at any
point leaves an index that opens and answers from everything committed.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import EmbedderMismatchError, IndexCorruptError
from .models import Article, ArticleInfo, Chunk, IndexStats

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1
DB_NAME = "rag.sqlite3"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS articles (
    id TEXT PRIMARY KEY,
    title TEXT NOT NULL,
    date TEXT,
    source TEXT NOT NULL UNIQUE,
    text TEXT NOT NULL,
    hash TEXT NOT NULL UNIQUE,
    added_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS articles_date ON articles(date);
CREATE TABLE IF NOT EXISTS chunks (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    article_id TEXT NOT NULL REFERENCES articles(id) ON DELETE CASCADE,
    ordinal INTEGER NOT NULL,
    start INTEGER NOT NULL,
    "end" INTEGER NOT NULL,
    text TEXT NOT NULL,
    embedding BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS chunks_article ON chunks(article_id);
CREATE VIRTUAL TABLE IF NOT EXISTS chunks_fts USING fts5(
    text, title, tokenize = 'porter unicode61 remove_diacritics 2'
);
"""


@dataclass(frozen=True)
class NewArticle:
    """An article ready to be stored: its chunks and their vectors (same order)."""

    article: Article
    content_hash: str
    chunks: list[Chunk]
    vectors: np.ndarray


def _faiss():
    import faiss

    return faiss


class Store:
    """One index folder. Thread-safe for one process: writes are serialised by a lock."""

    def __init__(self, index_dir: str | Path, *, embedder_name: str, create: bool = True) -> None:
        self.dir = Path(index_dir).expanduser()
        if self.dir.exists() and not self.dir.is_dir():
            raise IndexCorruptError(f"{self.dir}: index path exists and is not a folder")
        self.db_path = self.dir / DB_NAME
        if not create and not self.db_path.exists():
            raise IndexCorruptError(f"{self.dir}: no index here (no {DB_NAME})")
        self.dir.mkdir(parents=True, exist_ok=True)
        self.embedder_name = embedder_name
        self._lock = threading.RLock()
        self._faiss_index = None
        self._faiss_gen = -1
        self._article_cache: dict[str, Article] = {}
        try:
            self.db = sqlite3.connect(self.db_path, check_same_thread=False, isolation_level=None)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=NORMAL")
            self.db.execute("PRAGMA foreign_keys=ON")
            self.db.executescript(_SCHEMA)
            self._check_meta()
        except sqlite3.DatabaseError as e:
            raise IndexCorruptError(f"{self.db_path}: cannot open the index ({e})") from None

    # ------------------------------------------------------------------ meta

    def _meta(self, key: str) -> str | None:
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def _set_meta(self, key: str, value: object) -> None:
        self.db.execute(
            "INSERT INTO meta(key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            (key, str(value)),
        )

    def _check_meta(self) -> None:
        version = self._meta("schema_version")
        if version is None:
            with self._tx():
                self._set_meta("schema_version", SCHEMA_VERSION)
                self._set_meta("generation", 0)
        elif int(version) > SCHEMA_VERSION:
            raise IndexCorruptError(
                f"{self.db_path}: index schema version {version} is newer than this program ({SCHEMA_VERSION})"
            )
        stored = self._meta("embedder")
        if stored is not None and stored != self.embedder_name:
            raise EmbedderMismatchError(
                f"{self.dir}: index was built with embedder '{stored}', not '{self.embedder_name}'; "
                "use the same embedder or a new index folder"
            )

    def check_dimension(self, dim: int) -> None:
        """Called once the embedder has loaded: a dimension change is a different embedder."""
        stored = self._meta("dimension")
        if stored is not None and int(stored) != dim:
            raise EmbedderMismatchError(
                f"{self.dir}: index vectors have dimension {stored}, the embedder gives {dim}"
            )

    @property
    def generation(self) -> int:
        return int(self._meta("generation") or 0)

    @property
    def dimension(self) -> int | None:
        d = self._meta("dimension")
        return int(d) if d is not None else None

    def _tx(self):
        db = self.db

        class _T:
            def __enter__(self_inner):
                db.execute("BEGIN IMMEDIATE")

            def __exit__(self_inner, exc_type, exc, tb):
                db.execute("ROLLBACK" if exc_type else "COMMIT")
                return False

        return _T()

    # ------------------------------------------------------------------ articles

    def lookup_source(self, source: str) -> tuple[str, str] | None:
        """(article id, content hash) stored for a source, if any."""
        row = self.db.execute("SELECT id, hash FROM articles WHERE source = ?", (source,)).fetchone()
        return (row[0], row[1]) if row else None

    def lookup_hash(self, content_hash: str) -> str | None:
        row = self.db.execute("SELECT id FROM articles WHERE hash = ?", (content_hash,)).fetchone()
        return row[0] if row else None

    def _free_id(self, wanted: str, taken_by_source: str) -> str:
        cur = self.db.execute("SELECT source FROM articles WHERE id = ?", (wanted,)).fetchone()
        if cur is None or cur[0] == taken_by_source:
            return wanted
        n = 2
        while self.db.execute("SELECT 1 FROM articles WHERE id = ?", (f"{wanted}-{n}",)).fetchone():
            n += 1
        return f"{wanted}-{n}"

    def write_batch(self, items: Sequence[NewArticle], *, replace: Iterable[str] = ()) -> dict[str, str]:
        """Stores a batch in one transaction (replacing the given article ids first).

        Returns the final article id for each source (ids are made unique here).
        """
        if not items and not list(replace):
            return {}
        ids: dict[str, str] = {}
        added: list[tuple[int, np.ndarray]] = []
        with self._lock:
            removed = []
            with self._tx():
                for aid in replace:
                    removed.extend(self._delete_article(aid))
                for item in items:
                    a = item.article
                    if item.vectors.shape[0] != len(item.chunks):
                        raise ValueError("one vector per chunk is required")
                    if self._meta("dimension") is None and len(item.chunks):
                        self._set_meta("dimension", item.vectors.shape[1])
                        self._set_meta("embedder", self.embedder_name)
                    aid = self._free_id(a.id, a.source)
                    ids[a.source] = aid
                    self.db.execute(
                        "INSERT INTO articles(id, title, date, source, text, hash, added_at) VALUES (?,?,?,?,?,?,?)",
                        (aid, a.title, a.date, a.source, a.text, item.content_hash, time.time()),
                    )
                    self._article_cache.pop(aid, None)
                    vecs = np.ascontiguousarray(item.vectors, dtype=np.float32)
                    for ch, vec in zip(item.chunks, vecs):
                        cur = self.db.execute(
                            'INSERT INTO chunks(article_id, ordinal, start, "end", text, embedding) VALUES (?,?,?,?,?,?)',
                            (aid, ch.ordinal, ch.start, ch.end, ch.text, vec.tobytes()),
                        )
                        cid = int(cur.lastrowid)
                        self.db.execute(
                            "INSERT INTO chunks_fts(rowid, text, title) VALUES (?, ?, ?)", (cid, ch.text, a.title)
                        )
                        added.append((cid, vec))
                gen = self.generation + 1
                self._set_meta("generation", gen)
            self._update_faiss(added, removed, gen)
        return ids

    def _delete_article(self, article_id: str) -> list[int]:
        chunk_ids = [r[0] for r in self.db.execute("SELECT id FROM chunks WHERE article_id = ?", (article_id,))]
        self.db.executemany("DELETE FROM chunks_fts WHERE rowid = ?", [(c,) for c in chunk_ids])
        self.db.execute("DELETE FROM chunks WHERE article_id = ?", (article_id,))
        self.db.execute("DELETE FROM articles WHERE id = ?", (article_id,))
        self._article_cache.pop(article_id, None)
        return chunk_ids

    def remove(self, article_id: str) -> bool:
        """Removes an article and its chunks; False if there is no such article."""
        with self._lock:
            if not self.db.execute("SELECT 1 FROM articles WHERE id = ?", (article_id,)).fetchone():
                return False
            with self._tx():
                removed = self._delete_article(article_id)
                gen = self.generation + 1
                self._set_meta("generation", gen)
            self._update_faiss([], removed, gen)
            return True

    def list_articles(self) -> list[ArticleInfo]:
        rows = self.db.execute(
            "SELECT a.id, a.title, a.date, a.source, COUNT(c.id) FROM articles a "
            "LEFT JOIN chunks c ON c.article_id = a.id GROUP BY a.id ORDER BY a.date DESC, a.id"
        ).fetchall()
        return [ArticleInfo(*r) for r in rows]

    def article(self, article_id: str) -> Article:
        a = self._article_cache.get(article_id)
        if a is None:
            row = self.db.execute(
                "SELECT id, title, date, source, text FROM articles WHERE id = ?", (article_id,)
            ).fetchone()
            if row is None:
                raise KeyError(article_id)
            a = Article(*row)
            self._article_cache[article_id] = a
        return a

    def count(self) -> tuple[int, int]:
        a = self.db.execute("SELECT COUNT(*) FROM articles").fetchone()[0]
        c = self.db.execute("SELECT COUNT(*) FROM chunks").fetchone()[0]
        return int(a), int(c)

    def chunks(self, ids: Sequence[int]) -> dict[int, Chunk]:
        if not ids:
            return {}
        q = ",".join("?" * len(ids))
        rows = self.db.execute(
            f'SELECT id, article_id, ordinal, text, start, "end" FROM chunks WHERE id IN ({q})', list(ids)
        ).fetchall()
        return {r[0]: Chunk(*r) for r in rows}

    def chunk_ids_in_range(self, since: str | None, until: str | None) -> np.ndarray:
        where, args = _date_where(since, until)
        rows = self.db.execute(
            f"SELECT c.id FROM chunks c JOIN articles a ON a.id = c.article_id WHERE {where}", args
        ).fetchall()
        return np.array([r[0] for r in rows], dtype=np.int64)

    def stats(self) -> IndexStats:
        n_articles, n_chunks = self.count()
        size = sum(f.stat().st_size for f in self.dir.iterdir() if f.is_file())
        index = self.faiss_index()
        return IndexStats(
            articles=n_articles, chunks=n_chunks, embedder=self._meta("embedder") or self.embedder_name,
            dimension=self.dimension or 0, generation=self.generation,
            faiss_type=type(index).__name__ if index is not None else "none",
            size_bytes=size, path=str(self.dir),
        )

    # ------------------------------------------------------------------ lexical

    def lexical_search(self, match: str, n: int, since: str | None = None,
                       until: str | None = None) -> list[tuple[int, float]]:
        """BM25 over chunk text (title weighted lower); (chunk id, -bm25) best first."""
        if not match:
            return []
        where, args = _date_where(since, until)
        sql = (
            "SELECT f.rowid, bm25(chunks_fts, 1.0, 0.4) AS s FROM chunks_fts f "
            + ("JOIN chunks c ON c.id = f.rowid JOIN articles a ON a.id = c.article_id " if args else "")
            + f"WHERE chunks_fts MATCH ? AND {where} ORDER BY s LIMIT ?"
        )
        try:
            rows = self.db.execute(sql, [match, *args, n]).fetchall()
        except sqlite3.OperationalError as e:
            log.warning("FTS query %r failed: %s", match, e)
            return []
        return [(int(r[0]), -float(r[1])) for r in rows]

    # ------------------------------------------------------------------ dense

    def _faiss_path(self, gen: int) -> Path:
        return self.dir / f"faiss-{gen}.index"

    def faiss_index(self):
        """The FAISS index for the current generation: loaded, or rebuilt if missing/stale/corrupt."""
        with self._lock:
            gen = self.generation
            if self._faiss_index is not None and self._faiss_gen == gen:
                return self._faiss_index
            path = self._faiss_path(gen)
            index = None
            if path.exists():
                try:
                    index = _faiss().read_index(str(path))
                    if index.ntotal != self.count()[1]:
                        log.warning("%s: %d vectors, %d chunks; rebuilding", path, index.ntotal, self.count()[1])
                        index = None
                except RuntimeError as e:
                    log.warning("%s is unreadable (%s); rebuilding it from SQLite", path, e)
                    index = None
            if index is None:
                index = self._rebuild(gen)
            self._faiss_index, self._faiss_gen = index, gen
            return index

    def _new_index(self, dim: int):
        faiss = _faiss()
        return faiss.IndexIDMap2(faiss.IndexFlatIP(dim))

    def _rebuild(self, gen: int):
        dim = self.dimension
        if dim is None:
            return None
        index = self._new_index(dim)
        cur = self.db.execute("SELECT id, embedding FROM chunks ORDER BY id")
        while True:
            rows = cur.fetchmany(10000)
            if not rows:
                break
            ids = np.array([r[0] for r in rows], dtype=np.int64)
            vecs = np.frombuffer(b"".join(r[1] for r in rows), dtype=np.float32).reshape(len(rows), dim)
            index.add_with_ids(vecs, ids)
        self._write_faiss(index, gen)
        return index

    def _write_faiss(self, index, gen: int) -> None:
        faiss = _faiss()
        final = self._faiss_path(gen)
        tmp = final.with_suffix(f".tmp{os.getpid()}")
        faiss.write_index(index, str(tmp))
        os.replace(tmp, final)
        for old in self.dir.glob("faiss-*.index*"):
            if old != final:
                try:
                    old.unlink()
                except OSError:
                    pass

    def _update_faiss(self, added: list[tuple[int, np.ndarray]], removed: list[int], gen: int) -> None:
        index = self._faiss_index if self._faiss_gen == gen - 1 else None
        if index is None:
            self._faiss_index, self._faiss_gen = None, -1
            self.faiss_index()  # rebuild lazily from SQLite
            return
        if removed:
            index.remove_ids(np.array(removed, dtype=np.int64))
        if added:
            ids = np.array([a[0] for a in added], dtype=np.int64)
            vecs = np.stack([a[1] for a in added]).astype(np.float32)
            index.add_with_ids(vecs, ids)
        self._write_faiss(index, gen)
        self._faiss_index, self._faiss_gen = index, gen

    def dense_search(self, qvec: np.ndarray, n: int, since: str | None = None,
                     until: str | None = None) -> list[tuple[int, float]]:
        """Inner-product top-n; (chunk id, cosine) best first."""
        index = self.faiss_index()
        if index is None or index.ntotal == 0:
            return []
        q = np.ascontiguousarray(qvec.reshape(1, -1), dtype=np.float32)
        if q.shape[1] != index.d:
            raise EmbedderMismatchError(f"{self.dir}: query vector dimension {q.shape[1]} != index {index.d}")
        params = None
        if since or until:
            faiss = _faiss()
            allowed = self.chunk_ids_in_range(since, until)
            if allowed.size == 0:
                return []
            params = faiss.SearchParameters(sel=faiss.IDSelectorBatch(allowed))
        k = min(n, index.ntotal)
        scores, ids = index.search(q, k, params=params) if params else index.search(q, k)
        return [(int(i), float(s)) for i, s in zip(ids[0], scores[0]) if i >= 0]

    def close(self) -> None:
        with self._lock:
            self.db.close()


def _date_where(since: str | None, until: str | None) -> tuple[str, list[str]]:
    clauses, args = [], []
    if since:
        clauses.append("a.date >= ?")
        args.append(since)
    if until:
        clauses.append("a.date <= ?")
        args.append(until)
    return (" AND ".join(clauses) or "1"), args
