"""The index on disk: SQLite as the source of truth, FAISS as a derived cache.

SQLite (WAL, one transaction per ingest batch) holds articles, chunks, their embeddings as
float32 blobs, an FTS5 table for BM25 and a meta table (embedder, dimension, schema version,
generation). Every committed batch bumps the generation; each chunk row records the generation
that added it, and a small log records the chunk ids each generation removed.

The FAISS index (``rag/faisscache.py``, mixed into ``Store``) is derived from the stored
embeddings and follows every batch; it is written to disk only at checkpoints, and a reader
catches up from the chunk generations and the removal log. So a crash at any point leaves an
index that opens and answers from everything committed, and no batch rewrites the whole file.
"""

from __future__ import annotations

import functools
import logging
import os
import re
import sqlite3
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import EmbedderMismatchError, IndexAccessError, IndexCorruptError, RagError
from .faisscache import FaissCache, FaissConfig
from .ingest import content_hash
from .lexical import LexicalQuery
from .models import Article, ArticleInfo, Chunk, IndexStats

log = logging.getLogger(__name__)

SCHEMA_VERSION = 2
LEXICAL_BUDGET = 40_000  # postings one BM25 query may score (~30-40 ms on one core)
_OR_LIST = re.compile(r'^"[^"]+"(?: OR "[^"]+")+$')
DB_NAME = "rag.sqlite3"
BUSY_TIMEOUT_S = 60.0  # how long a write waits for another process's write to finish
REPAIR_HINT = "`rag index check` says what is wrong; `rag index check --repair` rebuilds what can be rebuilt"

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
    embedding BLOB NOT NULL,
    gen INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS chunks_article ON chunks(article_id);
CREATE VIRTUAL TABLE IF NOT EXISTS chunks_fts USING fts5(
    text, title, tokenize = 'porter unicode61 remove_diacritics 2'
);
"""

# Schema 2: which generation added each chunk, and which chunk ids each generation removed,
# so that a FAISS file of an older generation can be brought up to date without a rebuild.
_SCHEMA_2 = """
CREATE INDEX IF NOT EXISTS chunks_gen ON chunks(gen);
CREATE TABLE IF NOT EXISTS removed_chunks (chunk_id INTEGER NOT NULL, gen INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS removed_chunks_gen ON removed_chunks(gen);
"""


@dataclass(frozen=True)
class NewArticle:
    """An article ready to be stored: its chunks and their vectors (same order)."""

    article: Article
    content_hash: str
    chunks: list[Chunk]
    vectors: np.ndarray


def sqlite_error(e: sqlite3.Error, where: Path) -> RagError | None:
    """The user-facing error for an SQLite failure, or None when it is a bug (bad SQL, a
    constraint): damage becomes IndexCorruptError, a read-only, full, busy or unreachable
    index IndexAccessError."""
    msg = str(e)
    low = msg.lower()
    if "readonly" in low or "read-only" in low:
        return IndexAccessError(f"{where}: the index is read-only ({msg}); questions work, "
                                "adding and removing articles need write access")
    if "disk is full" in low or "disk full" in low:
        return IndexAccessError(f"{where}: the disk is full ({msg}); nothing from this change was stored")
    if "disk i/o error" in low:
        return IndexAccessError(f"{where}: cannot write the index (disk I/O error: a full disk, a file size "
                                "limit or a failing device); nothing from this change was stored")
    if "locked" in low or "busy" in low:
        return IndexAccessError(f"{where}: the index is busy: another process held it for over "
                                f"{BUSY_TIMEOUT_S:.0f} s ({msg}); try again")
    if "unable to open" in low:
        return IndexAccessError(f"{where}: cannot open the index ({msg})")
    if (type(e) is sqlite3.DatabaseError or "malformed" in low or "not a database" in low
            or "vtable constructor" in low or "corrupt" in low or "no such table" in low
            or "invalid fts5 file format" in low):
        return IndexCorruptError(f"{where}: the index is damaged ({msg}); {REPAIR_HINT}")
    return None


def _guard(method):
    """Turns SQLite failures a user can meet (damage, read-only, full disk, busy) into RagErrors."""

    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        try:
            return method(self, *args, **kwargs)
        except sqlite3.Error as e:
            err = sqlite_error(e, self.db_path)
            if err is None:  # a constraint, bad SQL: a bug, not the user's problem
                raise
            raise err from None

    return wrapper


def stored_embedder(index_dir: str | Path) -> str | None:
    """The embedder name recorded in an index folder, read without opening it for writing."""
    path = Path(index_dir).expanduser() / DB_NAME
    if not path.is_file():
        return None
    try:
        db = _open_read_only(path)
        try:
            row = db.execute("SELECT value FROM meta WHERE key = 'embedder'").fetchone()
        finally:
            db.close()
    except sqlite3.Error:
        return None  # opening the Store reports the problem properly
    return row[0] if row else None


class Store(FaissCache):
    """One index folder. Thread-safe for one process: writes are serialised by a lock."""

    def __init__(self, index_dir: str | Path, *, embedder_name: str, create: bool = True,
                 faiss: FaissConfig | None = None, lexical_budget: int | None = LEXICAL_BUDGET) -> None:
        self.dir = Path(index_dir).expanduser()
        if self.dir.exists() and not self.dir.is_dir():
            raise IndexCorruptError(f"{self.dir}: index path exists and is not a folder")
        self.db_path = self.dir / DB_NAME
        existed = self.db_path.exists()
        if not create and not existed:
            raise IndexCorruptError(f"{self.dir}: no index here (no {DB_NAME})")
        if self.db_path.exists() and not self.db_path.is_file():
            raise IndexCorruptError(f"{self.db_path}: exists and is not a file")
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise IndexAccessError(f"{self.dir}: cannot create the index folder ({e.strerror or e})") from None
        # An existing index we may not write (a read-only mount, a shared folder) still answers.
        self.read_only = existed and not _writable(self.dir, self.db_path)
        self.embedder_name = embedder_name
        self.faiss_config = faiss or FaissConfig()
        self._lock = threading.RLock()
        self._faiss_index = None
        self._faiss_gen = -1
        self._faiss_mmapped = False
        self._file_gen = -1  # generation of the newest FAISS file known to be on disk
        self._article_cache: dict[str, Article] = {}
        self._counts: tuple[int, tuple[int, int]] | None = None
        self.lexical_budget = lexical_budget
        self._df: dict[str, tuple[int, int]] = {}  # quoted phrase -> (chunk count then, documents)
        try:
            if not self.read_only:
                try:
                    self._open_writable()
                except sqlite3.OperationalError as e:
                    if not existed or "readonly" not in str(e) and "unable to open" not in str(e):
                        raise
                    self.db.close()
                    self.read_only = True  # the folder looked writable but is not (e.g. EROFS)
            if self.read_only:
                self.db = _open_read_only(self.db_path)
            self._check_meta()
        except sqlite3.Error as e:
            err = sqlite_error(e, self.db_path)
            if isinstance(err, IndexCorruptError) or err is None:
                err = IndexCorruptError(f"{self.db_path}: cannot open the index ({e}); {REPAIR_HINT}")
            raise err from None

    def _open_writable(self) -> None:
        self.db = sqlite3.connect(self.db_path, check_same_thread=False, isolation_level=None,
                                  timeout=BUSY_TIMEOUT_S)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.execute("PRAGMA foreign_keys=ON")
        self.db.executescript(_SCHEMA)

    def _require_writable(self) -> None:
        if self.read_only:
            raise IndexAccessError(f"{self.dir}: the index is read-only (no write access to the folder or its "
                                   "files); questions work, adding and removing articles need write access")

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
        if self.read_only:
            if version is None:
                raise IndexCorruptError(f"{self.db_path}: not an index (no schema version)")
            if int(version) != SCHEMA_VERSION:
                raise IndexAccessError(f"{self.db_path}: index schema version {version} needs an upgrade to "
                                       f"{SCHEMA_VERSION}, which needs write access to the folder once")
        if version is None:
            with self._tx():
                self._set_meta("schema_version", SCHEMA_VERSION)
                self._set_meta("generation", 0)
                self._set_meta("log_floor", 0)
        elif int(version) > SCHEMA_VERSION:
            raise IndexCorruptError(
                f"{self.db_path}: index schema version {version} is newer than this program ({SCHEMA_VERSION})"
            )
        elif int(version) < SCHEMA_VERSION:
            self._migrate(int(version))
        if not self.read_only:
            self.db.executescript(_SCHEMA_2)
        stored = self._meta("embedder")
        if stored is not None and stored != self.embedder_name:
            raise EmbedderMismatchError(
                f"{self.dir}: index was built with embedder '{stored}', not '{self.embedder_name}'; "
                "use the same embedder or a new index folder"
            )

    def _migrate(self, version: int) -> None:
        """Schema 1 -> 2: chunks get their generation; the removal log starts now."""
        with self._tx():
            cols = {r[1] for r in self.db.execute("PRAGMA table_info(chunks)")}
            if "gen" not in cols:
                self.db.execute("ALTER TABLE chunks ADD COLUMN gen INTEGER NOT NULL DEFAULT 0")
            self._set_meta("log_floor", self.generation)
            self._set_meta("schema_version", SCHEMA_VERSION)
        log.info("%s: index schema %d upgraded to %d", self.db_path, version, SCHEMA_VERSION)

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
                if exc_type is None:
                    db.execute("COMMIT")
                elif db.in_transaction:  # SQLite may have rolled back already (a full disk)
                    try:
                        db.execute("ROLLBACK")
                    except sqlite3.Error:  # the original error is the one worth reporting
                        pass
                return False

        return _T()

    # ------------------------------------------------------------------ articles

    @_guard
    def lookup_source(self, source: str) -> tuple[str, str] | None:
        """(article id, content hash) stored for a source, if any."""
        row = self.db.execute("SELECT id, hash FROM articles WHERE source = ?", (source,)).fetchone()
        return (row[0], row[1]) if row else None

    @_guard
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

    @_guard
    def write_batch(self, items: Sequence[NewArticle], *, replace: Iterable[str] = ()) -> dict[str, str]:
        """Stores a batch in one transaction (replacing the given article ids first).

        The FAISS index in memory follows; the file is rewritten only when a checkpoint is due.
        Returns the final article id for each source stored (ids are made unique here). What
        another writer stored since the batch was planned (the same source unchanged, or the same
        text under another source) is left out of the batch and of the result, not an error.
        """
        replace = list(replace)
        if not items and not replace:
            return {}
        self._require_writable()
        ids: dict[str, str] = {}
        added_ids: list[int] = []
        added_vecs: list[np.ndarray] = []
        with self._lock:
            removed: list[int] = []
            with self._tx():
                gen = self.generation + 1
                # Checked again inside the write transaction: another process (or thread) may have
                # stored the same source or text since the caller planned this batch.
                new_hash = {item.article.source: item.content_hash for item in items}
                for aid in replace:
                    row = self.db.execute("SELECT source, hash FROM articles WHERE id = ?", (aid,)).fetchone()
                    if row is not None and new_hash.get(row[0]) != row[1]:
                        removed.extend(self._delete_article(aid, gen))
                for item in items:
                    a = item.article
                    if item.vectors.shape[0] != len(item.chunks):
                        raise ValueError("one vector per chunk is required")
                    same_source = self.db.execute("SELECT id, hash FROM articles WHERE source = ?",
                                                  (a.source,)).fetchone()
                    if same_source is not None and same_source[1] == item.content_hash:
                        continue  # stored meanwhile, unchanged
                    same_text = self.db.execute("SELECT id FROM articles WHERE hash = ?",
                                                (item.content_hash,)).fetchone()
                    if same_text is not None:
                        continue  # the same text is stored under another source
                    if same_source is not None:  # changed meanwhile: this version replaces it
                        removed.extend(self._delete_article(same_source[0], gen))
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
                            'INSERT INTO chunks(article_id, ordinal, start, "end", text, embedding, gen) '
                            "VALUES (?,?,?,?,?,?,?)",
                            (aid, ch.ordinal, ch.start, ch.end, ch.text, vec.tobytes(), gen),
                        )
                        cid = int(cur.lastrowid)
                        self.db.execute(
                            "INSERT INTO chunks_fts(rowid, text, title) VALUES (?, ?, ?)", (cid, ch.text, a.title)
                        )
                        added_ids.append(cid)
                        added_vecs.append(vec)
                if not ids and not removed:
                    return ids  # everything was stored meanwhile: nothing changes, no new generation
                self._set_meta("generation", gen)
            vecs = np.stack(added_vecs) if added_vecs else None
            self._follow(np.array(added_ids, dtype=np.int64), vecs, removed, gen)
            self.checkpoint(final=False)
        return ids

    def _delete_article(self, article_id: str, gen: int) -> list[int]:
        chunk_ids = [r[0] for r in self.db.execute("SELECT id FROM chunks WHERE article_id = ?", (article_id,))]
        self.db.executemany("DELETE FROM chunks_fts WHERE rowid = ?", [(c,) for c in chunk_ids])
        self.db.executemany("INSERT INTO removed_chunks(chunk_id, gen) VALUES (?, ?)", [(c, gen) for c in chunk_ids])
        self.db.execute("DELETE FROM chunks WHERE article_id = ?", (article_id,))
        self.db.execute("DELETE FROM articles WHERE id = ?", (article_id,))
        self._article_cache.pop(article_id, None)
        return chunk_ids

    @_guard
    def remove(self, article_id: str) -> bool:
        """Removes an article and its chunks; False if there is no such article."""
        self._require_writable()
        with self._lock:
            if not self.db.execute("SELECT 1 FROM articles WHERE id = ?", (article_id,)).fetchone():
                return False
            with self._tx():
                gen = self.generation + 1
                removed = self._delete_article(article_id, gen)
                self._set_meta("generation", gen)
            self._follow(np.zeros(0, dtype=np.int64), None, removed, gen)
            self.checkpoint()
            return True

    @_guard
    def list_articles(self) -> list[ArticleInfo]:
        rows = self.db.execute(
            "SELECT a.id, a.title, a.date, a.source, COUNT(c.id) FROM articles a "
            "LEFT JOIN chunks c ON c.article_id = a.id GROUP BY a.id ORDER BY a.date DESC, a.id"
        ).fetchall()
        return [ArticleInfo(*r) for r in rows]

    @_guard
    def article(self, article_id: str) -> Article:
        a = self._article_cache.get(article_id)
        if a is None:
            row = self.db.execute(
                "SELECT id, title, date, source, text, hash FROM articles WHERE id = ?", (article_id,)
            ).fetchone()
            if row is None:
                raise KeyError(article_id)
            a = Article(*row[:5])
            # the content hash stored with the text doubles as its checksum: damaged text is
            # reported, never quoted
            if not isinstance(a.text, str) or content_hash(a.text) != row[5]:
                raise IndexCorruptError(f"{self.db_path}: the text of article '{article_id}' is damaged "
                                        f"(it no longer matches its checksum); {REPAIR_HINT}")
            self._article_cache[article_id] = a
        return a

    @_guard
    def count(self) -> tuple[int, int]:
        """(articles, chunks); counted once per generation (a full count takes ms at 1M chunks)."""
        gen = self.generation
        cached = self._counts
        if cached is not None and cached[0] == gen and not self.db.in_transaction:
            return cached[1]
        a = self.db.execute("SELECT COUNT(*) FROM articles").fetchone()[0]
        c = self.db.execute("SELECT COUNT(*) FROM chunks").fetchone()[0]
        if not self.db.in_transaction:
            self._counts = (gen, (int(a), int(c)))
        return int(a), int(c)

    @_guard
    def chunks(self, ids: Sequence[int]) -> dict[int, Chunk]:
        if not ids:
            return {}
        q = ",".join("?" * len(ids))
        rows = self.db.execute(
            f'SELECT id, article_id, ordinal, text, start, "end" FROM chunks WHERE id IN ({q})', list(ids)
        ).fetchall()
        return {r[0]: Chunk(*r) for r in rows}

    @_guard
    def embeddings(self, ids: Sequence[int]) -> dict[int, np.ndarray]:
        """The stored (exact) vectors of these chunks: fusion scores a passage that only BM25
        found by its true similarity to the question, not by a missing dense rank."""
        out: dict[int, np.ndarray] = {}
        for s in range(0, len(ids), 900):
            part = [int(i) for i in ids[s: s + 900]]
            q = ",".join("?" * len(part))
            for cid, blob in self.db.execute(f"SELECT id, embedding FROM chunks WHERE id IN ({q})", part):
                out[int(cid)] = np.frombuffer(blob, dtype=np.float32)
        return out

    @_guard
    def chunk_ids_in_range(self, since: str | None, until: str | None) -> np.ndarray:
        where, args = _date_where(since, until)
        rows = self.db.execute(
            f"SELECT c.id FROM chunks c JOIN articles a ON a.id = c.article_id WHERE {where}", args
        ).fetchall()
        return np.array([r[0] for r in rows], dtype=np.int64)

    @_guard
    def stats(self) -> IndexStats:
        n_articles, n_chunks = self.count()
        self.db.execute("SELECT rowid FROM chunks_fts LIMIT 1").fetchall()  # opens the FTS table: damage shows
        size = sum(f.stat().st_size for f in self.dir.iterdir() if f.is_file())
        index = self.faiss_index()
        return IndexStats(
            articles=n_articles, chunks=n_chunks, embedder=self._meta("embedder") or self.embedder_name,
            dimension=self.dimension or 0, generation=self.generation,
            faiss_type=type(index).__name__ if index is not None else "none",
            size_bytes=size, path=str(self.dir),
        )

    # ------------------------------------------------------------------ lexical

    @_guard
    def lexical_search(self, match: str | LexicalQuery, n: int, since: str | None = None,
                       until: str | None = None) -> list[tuple[int, float]]:
        """BM25 over chunk text (title weighted lower); (chunk id, -bm25) best first.

        FTS5 scores every passage that matches, so an OR of common words costs time in
        proportion to the index (~0.35 s at 1M passages). Above ``lexical_budget`` passages, an
        OR query keeps its rarest words within that many postings (always at least one word);
        the common words it drops weigh least in BM25 and still count in the dense half.
        """
        if not isinstance(match, str):  # a rag.lexical.LexicalQuery
            match = match.fts5()
        if not match:
            return []
        match = self.bounded_match(match)
        where, args = _date_where(since, until)
        sql = (
            "SELECT f.rowid, bm25(chunks_fts, 1.0, 0.4) AS s FROM chunks_fts f "
            + ("JOIN chunks c ON c.id = f.rowid JOIN articles a ON a.id = c.article_id " if args else "")
            + f"WHERE chunks_fts MATCH ? AND {where} ORDER BY s LIMIT ?"
        )
        try:
            rows = self.db.execute(sql, [match, *args, n]).fetchall()
        except sqlite3.OperationalError as e:
            if sqlite_error(e, self.db_path) is not None:
                raise  # damage or access, not the query: reported, never a silent empty result
            log.warning("FTS query %r failed: %s", match, e)
            return []
        return [(int(r[0]), -float(r[1])) for r in rows]

    @_guard
    def bounded_match(self, match: str) -> str:
        """``match`` itself, or for a large index an OR query cut to the posting budget."""
        budget = self.lexical_budget
        if not budget or not _OR_LIST.match(match):
            return match
        n_chunks = self.count()[1]
        if n_chunks <= budget:
            return match
        terms = match.split(" OR ")
        df = {t: self.document_frequency(t, n_chunks) for t in terms}
        keep = sorted(terms, key=lambda t: df[t])
        while len(keep) > 1 and sum(df[t] for t in keep) > budget:
            keep.pop()
        kept = set(keep)
        return " OR ".join(t for t in terms if t in kept)

    @_guard
    def document_frequency(self, phrase: str, n_chunks: int | None = None) -> int:
        """Passages matching an FTS5 phrase (quoted, same stemming as BM25); cached until the
        index grows or shrinks by 10%, which is all BM25 budgeting and word rarity need."""
        if n_chunks is None:
            n_chunks = self.count()[1]
        hit = self._df.get(phrase)
        if hit is not None and abs(hit[0] - n_chunks) <= n_chunks // 10:
            return hit[1]
        try:
            df = int(self.db.execute("SELECT count(*) FROM chunks_fts WHERE chunks_fts MATCH ?", (phrase,)).fetchone()[0])
        except sqlite3.OperationalError as e:
            if sqlite_error(e, self.db_path) is not None:
                raise
            df = n_chunks
        if len(self._df) > 50_000:
            self._df.clear()
        self._df[phrase] = (n_chunks, df)
        return df

    # ------------------------------------------------------------------ dense: files
    @_guard
    def _faiss_current(self):
        gen = self.generation
        if self._faiss_index is not None and self._faiss_gen == gen:
            return self._faiss_index
        n_chunks = self.count()[1]
        floor = self._log_floor()
        index, index_gen = None, -1
        files = self._faiss_files()
        exact = [p for g, p in files if g == gen]
        if exact:  # someone wrote the current file: map it
            try:
                index, self._faiss_mmapped = self._read_faiss(exact[0], mmap=True)
                index_gen = gen
                self._file_gen = gen
            except (RuntimeError, OSError) as e:
                log.warning("%s cannot be used (%s); rebuilding it from SQLite", exact[0], e)
        if index is None and self._faiss_index is not None and floor <= self._faiss_gen < gen:
            index, index_gen = self._writable(), self._faiss_gen
        if index is None:
            for g, p in files:
                if floor <= g < gen:
                    try:
                        index, _ = self._read_faiss(p, mmap=False)
                        self._faiss_mmapped = False
                        index_gen = self._file_gen = g
                        break
                    except (RuntimeError, OSError) as e:
                        log.warning("%s cannot be used (%s)", p, e)
        caught_up = 0
        if index is not None and index_gen < gen:
            caught_up = self._pending_since(index_gen)
            self._catch_up(index, index_gen)
        if index is not None and index.ntotal != n_chunks:
            log.warning("%s: FAISS has %d vectors, SQLite %d chunks; rebuilding", self.dir, index.ntotal, n_chunks)
            index = None
        elif caught_up >= self.faiss_config.checkpoint_min:
            self._write_faiss(index, gen)  # spare the next reader the same catch-up
        if index is None:
            index = self._rebuild(gen)
            self._faiss_mmapped = False
        self._faiss_index, self._faiss_gen = index, gen
        return index

    def close(self) -> None:
        with self._lock:
            self.db.close()


def _writable(folder: Path, db: Path) -> bool:
    """Whether this process may write the index: the folder, the database and its WAL files."""
    if not os.access(folder, os.W_OK | os.X_OK):
        return False
    return all(os.access(p, os.W_OK) for p in (db, Path(f"{db}-wal"), Path(f"{db}-shm")) if p.exists())


def _open_read_only(db: Path) -> sqlite3.Connection:
    """A read-only connection. A WAL database needs its shared-memory file; where that cannot be
    made (a read-only mount with no writer), the file is opened as immutable, which is exact
    when nobody can write it."""
    uri = db.resolve().as_uri()
    try:
        con = sqlite3.connect(f"{uri}?mode=ro", uri=True, check_same_thread=False, isolation_level=None,
                              timeout=BUSY_TIMEOUT_S)
        con.execute("SELECT count(*) FROM sqlite_master").fetchone()
        return con
    except sqlite3.OperationalError:
        pass
    wal = Path(f"{db}-wal")
    if wal.exists() and wal.stat().st_size > 0:
        log.warning("%s: its write-ahead log cannot be read without write access; answers come from "
                    "the main file and may miss the latest changes", db)
    return sqlite3.connect(f"{uri}?mode=ro&immutable=1", uri=True, check_same_thread=False, isolation_level=None)


def _date_where(since: str | None, until: str | None) -> tuple[str, list[str]]:
    clauses, args = [], []
    if since:
        clauses.append("a.date >= ?")
        args.append(since)
    if until:
        clauses.append("a.date <= ?")
        args.append(until)
    return (" AND ".join(clauses) or "1"), args
