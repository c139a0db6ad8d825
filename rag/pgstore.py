"""The index in PostgreSQL with pgvector: the store for many processes and many machines.

Same interface and guarantees as the SQLite store (``rag/store.py``), so retrieval and its
fusion are shared: this store only supplies candidates. The database is the only state: every
process (ingests, app servers, ``rag ask``) reads and writes it directly, so an article one
process adds is searched by every other at once, and a removed one is gone for all of them.
A process keeps only what cannot go stale in a way a question would show (see ``_state`` and
``article``).

- **Search** (``rag/pgsearch.py``): vectors through an HNSW index, BM25 computed in SQL over a
  generated ``tsvector`` with a GIN index, as the SQLite store computes it with FTS5.
- **Writes**: one transaction per batch. Article ids, sources and texts are unique
  constraints; a batch that meets a concurrent writer's rows (``ON CONFLICT``) resolves them
  as the SQLite store would have (same text: skipped; same source: replaced; same id: the
  next free one), and a deadlock between two ingests is retried.
- **Reads** may go to a replica (``read_dsn``, ``$RAG_INDEX_READ``); writes and the lookups
  that decide them always go to the primary.
"""

from __future__ import annotations

import logging
import random
import re
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np

from .errors import EmbedderMismatchError, IndexCorruptError, IndexUnavailableError
from .models import Article, ArticleInfo, Chunk, IndexStats
from .pgschema import (LOCK_KEY, MIGRATIONS, SCHEMA_VERSION, TABLES, connect_error, guarded, server_of,
                       vector_error)
from .pgsearch import PgSearch
from .store import NewArticle

log = logging.getLogger(__name__)

STATE_TTL = 0.5  # seconds a process reuses the index's counters between its own writes
_WORD = re.compile(r"[^\W_]+")


@dataclass(frozen=True)
class PgConfig:
    """How the PostgreSQL store searches and connects.

    Attributes:
        pool_size: connections per process (per server) at most.
        ef_search: HNSW candidates per vector search (``hnsw.ef_search``; more is slower and
            closer to exact); None: grown with the index (100 up to 100k passages, 300 at 1M).
        hnsw_m, hnsw_ef_construction: graph degree and build-time candidates of a new index.
        exact_max: a date-filtered vector search scans exactly when at most this many passages
            are in range.
        lexical_budget: above this many passages, an OR query keeps its rarest phrases within
            this many postings (None: never).
        connect_timeout: seconds to wait for a server before saying it cannot be reached.
    """

    pool_size: int = 8
    ef_search: int | None = None
    hnsw_m: int = 16
    hnsw_ef_construction: int = 200
    exact_max: int = 20_000
    lexical_budget: int | None = 4_000
    connect_timeout: int = 10


def _words(text: str) -> int:
    """Tokens as FTS5's unicode61 counts them (runs of letters and digits): BM25's length."""
    return len(_WORD.findall(text))


class PgStore(PgSearch):
    """One index in a PostgreSQL database. Thread-safe; any number of processes may share it."""

    def __init__(self, dsn: str, *, embedder_name: str, create: bool = True, read_dsn: str | None = None,
                 config: PgConfig | None = None) -> None:
        self.dsn = dsn
        self.read_dsn = read_dsn or None
        self.server = server_of(dsn)
        self.dir = None  # no folder: what a folder store keeps there lives in the database
        self.embedder_name = embedder_name
        self.config = config or PgConfig()
        self.lexical_budget = self.config.lexical_budget
        self._gen = -1
        self._state_cache: tuple[float, tuple[int, int, int, int]] | None = None
        self._articles: dict[str, tuple[str, Article]] = {}  # id -> (content hash, article)
        self._versions: dict[str, str] = {}  # id -> content hash of the passages last read
        self._df: dict[str, tuple[int, int]] = {}  # phrase -> (passages then, passages holding it)
        self._tsq: dict[str, str] = {}  # phrase -> its tsquery text
        self._range: dict[tuple, int] = {}
        self._dim: int | None = None
        self._bulk = False
        with self._connect(dsn) as conn:
            self._prepare(conn, create)
        self._pool = self._open_pool(dsn)
        try:
            self._read_pool = self._open_pool(self.read_dsn, what="read replica") if self.read_dsn else self._pool
        except Exception:
            self._pool.close()
            raise

    # ------------------------------------------------------------------ connecting

    def _connect(self, dsn: str, what: str = "index"):
        import psycopg

        try:
            return psycopg.connect(dsn, autocommit=True, connect_timeout=self.config.connect_timeout)
        except psycopg.Error as e:
            raise connect_error(e, dsn, what=what) from None

    def _open_pool(self, dsn: str, what: str = "index"):
        from psycopg_pool import ConnectionPool

        self._connect(dsn, what).close()  # a clear error now rather than a pool timeout later
        pool = ConnectionPool(dsn, min_size=1, max_size=self.config.pool_size, open=False,
                              kwargs={"autocommit": True, "connect_timeout": self.config.connect_timeout},
                              configure=self._configure, timeout=self.config.connect_timeout + 5,
                              name=f"rag {what}")
        pool.open(wait=True, timeout=self.config.connect_timeout + 5)
        return pool

    def _configure(self, conn) -> None:
        """Every connection: vectors as numpy arrays, and index scans for every search (the HNSW
        search width is set per search, by index size: ``PgSearch.ef_search``). The
        planner would scan the whole table for a common word, reading every passage's tsvector
        (seconds at 1M passages); through the GIN index a count costs milliseconds."""
        from pgvector.psycopg import register_vector

        register_vector(conn)
        conn.execute("SET enable_seqscan = off")

    def _prepare(self, conn, create: bool) -> None:
        """Creates or upgrades the schema (under an advisory lock), then checks the embedder."""
        import psycopg

        version = self._schema_version(conn)
        if version is None and not create:
            raise IndexCorruptError(f"index {self.server}: no index in this database")
        if version is None or version < SCHEMA_VERSION:
            # the lock is taken before the transaction starts, so that the transaction sees the
            # catalog as the process that held the lock left it
            conn.execute("SELECT pg_advisory_lock(%s)", (LOCK_KEY,))
            try:
                with conn.transaction():
                    version = self._schema_version(conn)  # another process may have done it meanwhile
                    try:
                        conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
                    except psycopg.Error as e:
                        raise vector_error(e, self.server) from None
                    for step in range(version or 0, SCHEMA_VERSION):
                        for statement in MIGRATIONS[step]:
                            conn.execute(statement)
                        conn.execute("INSERT INTO rag_meta VALUES ('schema_version', %s) "
                                     "ON CONFLICT (key) DO UPDATE SET value = excluded.value", (str(step + 1),))
            finally:
                conn.execute("SELECT pg_advisory_unlock(%s)", (LOCK_KEY,))
            version = max(version or 0, SCHEMA_VERSION)
        if version > SCHEMA_VERSION:
            raise IndexCorruptError(
                f"index {self.server}: schema version {version} is newer than this program ({SCHEMA_VERSION})")
        stored = self._meta(conn, "embedder")
        if stored is not None and stored != self.embedder_name:
            raise EmbedderMismatchError(
                f"index {self.server}: was built with embedder '{stored}', not '{self.embedder_name}'; "
                "use the same embedder or another database")

    @staticmethod
    def _schema_version(conn) -> int | None:
        if conn.execute("SELECT to_regclass('rag_meta')").fetchone()[0] is None:
            return None
        v = conn.execute("SELECT value FROM rag_meta WHERE key = 'schema_version'").fetchone()
        return int(v[0]) if v else None

    @staticmethod
    def _meta(conn, key: str) -> str | None:
        row = conn.execute("SELECT value FROM rag_meta WHERE key = %s", (key,)).fetchone()
        return row[0] if row else None

    @contextmanager
    def _write(self) -> Iterator:
        with self._pool.connection() as conn:
            yield conn

    @contextmanager
    def _read(self) -> Iterator:
        with self._read_pool.connection() as conn:
            yield conn

    # ------------------------------------------------------------------ meta

    @property
    def generation(self) -> int:
        return self._state(fresh=True)[0]

    @property
    def dimension(self) -> int | None:
        if self._dim is None:  # once recorded, it never changes
            with self._read() as conn:
                d = self._meta(conn, "dimension")
            self._dim = int(d) if d is not None else None
        return self._dim

    @guarded
    def check_dimension(self, dim: int) -> None:
        """Records the embedder and its dimension with the first vectors (typing the column and
        building its HNSW index), or refuses vectors of another dimension."""
        with self._write() as conn:
            stored = self._meta(conn, "dimension")
            if stored is None:
                conn.execute("SELECT pg_advisory_lock(%s)", (LOCK_KEY,))
                try:
                    with conn.transaction():
                        stored = self._meta(conn, "dimension")
                        if stored is None:
                            conn.execute(f"ALTER TABLE chunks ALTER COLUMN embedding TYPE vector({int(dim)})")
                            conn.execute("ALTER TABLE chunks ALTER COLUMN embedding SET NOT NULL")
                            if not self._bulk:
                                self._create_vector_index(conn)
                            conn.execute("INSERT INTO rag_meta VALUES ('dimension', %s), ('embedder', %s)",
                                         (str(dim), self.embedder_name))
                            stored = str(dim)
                finally:
                    conn.execute("SELECT pg_advisory_unlock(%s)", (LOCK_KEY,))
        if int(stored) != dim:
            raise EmbedderMismatchError(
                f"index {self.server}: vectors have dimension {stored}, the embedder gives {dim}")

    def _create_vector_index(self, conn) -> None:
        cfg = self.config
        conn.execute(f"CREATE INDEX IF NOT EXISTS chunks_embedding ON chunks USING hnsw (embedding vector_ip_ops) "
                     f"WITH (m = {int(cfg.hnsw_m)}, ef_construction = {int(cfg.hnsw_ef_construction)})")

    @guarded
    def checkpoint(self, *, final: bool = True) -> bool:
        """Builds the search indexes a bulk load left out (GIN, then HNSW); True if it built any."""
        if not final:
            return False
        built = False
        with self._write() as conn:
            if self._meta(conn, "dimension") is None:
                return False
            for name in ("chunks_tsv", "chunks_embedding"):
                if conn.execute("SELECT to_regclass(%s)", (name,)).fetchone()[0] is not None:
                    continue
                t0 = time.perf_counter()
                if name == "chunks_tsv":
                    conn.execute("CREATE INDEX IF NOT EXISTS chunks_tsv ON chunks USING gin (tsv)")
                else:
                    self._create_vector_index(conn)
                log.info("%s: built %s in %.1fs", self.server, name, time.perf_counter() - t0)
                built = True
        return built

    @contextmanager
    def bulk_load(self) -> Iterator[None]:
        """Within: writes into an empty index go without the GIN and HNSW indexes, built once at
        the end (much faster than growing them a passage at a time; searches meanwhile scan).
        No-op for an index that holds passages, which other processes may be searching."""
        with self._write() as conn:
            empty = self._state()[2] == 0
            if empty:
                conn.execute("DROP INDEX IF EXISTS chunks_embedding, chunks_tsv")
                self._bulk = True  # the first batch types the vector column but builds no index
        try:
            yield
        finally:
            if empty:
                self._bulk = False
                self.checkpoint()

    # ------------------------------------------------------------------ state and caches

    @guarded
    def _state(self, fresh: bool = False) -> tuple[int, int, int, int]:
        """(generation, articles, chunks, tokens), read at most every STATE_TTL seconds (this
        process's own writes read it again) unless ``fresh``: what BM25 needs, a question's worth of
        round trips saved. No passage a search returns depends on it being newer."""
        now = time.monotonic()
        cached = self._state_cache
        if not fresh and cached is not None and now - cached[0] < STATE_TTL:
            return cached[1]
        with self._read() as conn:
            row = conn.execute("SELECT generation, articles, chunks, tokens FROM rag_state WHERE id = 1").fetchone()
        state = tuple(int(x) for x in row)
        if state[0] != self._gen:
            self._range.clear()
            self._gen = state[0]
        self._state_cache = (now, state)
        return state

    def _wrote(self) -> None:
        """After a write of this process: counts are read again, no article text is reused."""
        self._state_cache = None
        self._articles.clear()

    def count(self) -> tuple[int, int]:
        """(articles, chunks)."""
        _, a, c, _ = self._state(fresh=True)
        return a, c

    # ------------------------------------------------------------------ articles

    @guarded
    def lookup_source(self, source: str) -> tuple[str, str] | None:
        with self._write() as conn:
            row = conn.execute("SELECT id, hash FROM articles WHERE source = %s", (source,)).fetchone()
        return (row[0], row[1]) if row else None

    @guarded
    def lookup_sources(self, sources: Sequence[str]) -> dict[str, tuple[str, str]]:
        """{source: (id, hash)} for those stored; one query for a batch."""
        with self._write() as conn:
            rows = conn.execute("SELECT source, id, hash FROM articles WHERE source = ANY(%s)", (list(sources),))
            return {r[0]: (r[1], r[2]) for r in rows}

    @guarded
    def lookup_hash(self, content_hash: str) -> str | None:
        with self._write() as conn:
            row = conn.execute("SELECT id FROM articles WHERE hash = %s", (content_hash,)).fetchone()
        return row[0] if row else None

    @guarded
    def write_batch(self, items: Sequence[NewArticle], *, replace: Iterable[str] = ()) -> dict[str, str]:
        """Stores a batch in one transaction (replacing the given article ids first); the final
        article id for each source. A deadlock with another writer is retried."""
        import psycopg

        replace = list(replace)
        if not items and not replace:
            return {}
        for item in items:
            if item.vectors.shape[0] != len(item.chunks):
                raise ValueError("one vector per chunk is required")
        dims = {int(i.vectors.shape[1]) for i in items if len(i.chunks)}
        for dim in dims:
            self.check_dimension(dim)
        for attempt in range(8):
            try:
                return self._write_batch(items, replace)
            except (psycopg.errors.DeadlockDetected, psycopg.errors.SerializationFailure) as e:
                if attempt == 7:
                    raise IndexUnavailableError(f"index {self.server}: gave up after repeated conflicts ({e})") from None
                time.sleep(random.uniform(0.01, 0.05) * (attempt + 1))
        raise AssertionError("unreachable")

    def _write_batch(self, items: Sequence[NewArticle], replace: list[str]) -> dict[str, str]:
        ids: dict[str, str] = {}
        d_articles = d_chunks = d_tokens = 0
        with self._write() as conn, conn.transaction():
            for aid in replace:
                a, c, t = self._delete(conn, aid)
                d_articles, d_chunks, d_tokens = d_articles - a, d_chunks - c, d_tokens - t
            rows = []
            for item in items:
                aid, inserted, removed = self._insert_article(conn, item)
                ids[item.article.source] = aid
                d_articles, d_chunks, d_tokens = (d_articles - removed[0], d_chunks - removed[1],
                                                  d_tokens - removed[2])
                if not inserted:
                    continue
                d_articles += 1
                a = item.article
                vecs = np.ascontiguousarray(item.vectors, dtype=np.float32)
                for ch, vec in zip(item.chunks, vecs):
                    n_tok = _words(ch.text) + _words(a.title)
                    rows.append((aid, ch.ordinal, ch.start, ch.end, a.date, ch.text, a.title, n_tok, vec))
                    d_chunks += 1
                    d_tokens += n_tok
            if rows:
                with conn.cursor() as cur:
                    with cur.copy('COPY chunks (article_id, ordinal, start, "end", date, text, title, tokens, '
                                  "embedding) FROM STDIN (FORMAT BINARY)") as copy:
                        copy.set_types(["text", "int4", "int4", "int4", "text", "text", "text", "int4", "vector"])
                        for r in rows:
                            copy.write_row(r)
            conn.execute("UPDATE rag_state SET generation = generation + 1, articles = articles + %s, "
                         "chunks = chunks + %s, tokens = tokens + %s WHERE id = 1", (d_articles, d_chunks, d_tokens))
        self._wrote()
        return ids

    def _insert_article(self, conn, item: NewArticle) -> tuple[str, bool, tuple[int, int, int]]:
        """(id, whether it was inserted, what was removed to make room). Another writer may have
        stored the same source or text in between: same text is kept as it is, an older version
        of the source is replaced, an id taken by another source moves to the next free one."""
        a = item.article
        removed = (0, 0, 0)
        wanted = self._free_id(conn, a.id, a.source)
        for _ in range(100):
            row = conn.execute(
                "INSERT INTO articles (id, title, date, source, text, hash, added_at) VALUES (%s,%s,%s,%s,%s,%s,%s) "
                "ON CONFLICT DO NOTHING RETURNING id",
                (wanted, a.title, a.date, a.source, a.text, item.content_hash, time.time())).fetchone()
            if row:
                return row[0], True, removed
            clash = conn.execute("SELECT id, source, hash FROM articles WHERE source = %s OR hash = %s",
                                 (a.source, item.content_hash)).fetchall()
            same_text = [r[0] for r in clash if r[2] == item.content_hash]
            if same_text:
                return same_text[0], False, removed
            older = [r[0] for r in clash if r[1] == a.source]
            if older:
                gone = self._delete(conn, older[0])
                removed = tuple(x + y for x, y in zip(removed, gone))
                continue
            wanted = self._free_id(conn, a.id, a.source)
        raise IndexUnavailableError(f"index {self.server}: could not store {a.source} (conflicting writers)")

    @staticmethod
    def _free_id(conn, wanted: str, source: str) -> str:
        taken = conn.execute("SELECT source FROM articles WHERE id = %s", (wanted,)).fetchone()
        if taken is None or taken[0] == source:
            return wanted
        used = {r[0] for r in conn.execute("SELECT id FROM articles WHERE id LIKE %s",
                                           (wanted.replace("%", r"\%").replace("_", r"\_") + "-%",))}
        n = 2
        while f"{wanted}-{n}" in used:
            n += 1
        return f"{wanted}-{n}"

    @staticmethod
    def _delete(conn, article_id: str) -> tuple[int, int, int]:
        """Deletes an article and its chunks: (articles, chunks, tokens) removed."""
        n_chunks, n_tokens = conn.execute(
            "WITH gone AS (DELETE FROM chunks WHERE article_id = %s RETURNING tokens) "
            "SELECT count(*), coalesce(sum(tokens), 0) FROM gone", (article_id,)).fetchone()
        n_articles = conn.execute("DELETE FROM articles WHERE id = %s", (article_id,)).rowcount
        return int(n_articles), int(n_chunks), int(n_tokens)

    @guarded
    def remove(self, article_id: str) -> bool:
        """Removes an article and its chunks; False if there is no such article."""
        with self._write() as conn, conn.transaction():
            a, c, t = self._delete(conn, article_id)
            if not a:
                return False
            conn.execute("UPDATE rag_state SET generation = generation + 1, articles = articles - %s, "
                         "chunks = chunks - %s, tokens = tokens - %s WHERE id = 1", (a, c, t))
        self._wrote()
        return True

    @guarded
    def list_articles(self) -> list[ArticleInfo]:
        with self._read() as conn:
            rows = conn.execute(
                "SELECT a.id, a.title, a.date, a.source, (SELECT count(*) FROM chunks c WHERE c.article_id = a.id) "
                "FROM articles a ORDER BY a.date DESC NULLS LAST, a.id").fetchall()
        return [ArticleInfo(*r) for r in rows]

    @guarded
    def article(self, article_id: str) -> Article:
        """The article, from this process's cache only when the passages just retrieved came from
        the very same version of it (its content hash): another process may have replaced it."""
        cached = self._articles.get(article_id)
        if cached is not None and cached[0] == self._versions.get(article_id):
            return cached[1]
        with self._read() as conn:
            row = conn.execute("SELECT id, title, date, source, text, hash FROM articles WHERE id = %s",
                               (article_id,)).fetchone()
        if row is None:
            raise KeyError(article_id)
        a = Article(*row[:5])
        if len(self._articles) > 10_000:
            self._articles.clear()
        self._articles[article_id] = (row[5], a)
        self._versions.setdefault(article_id, row[5])
        return a

    @guarded
    def chunks(self, ids: Sequence[int]) -> dict[int, Chunk]:
        if not ids:
            return {}
        with self._read() as conn:
            rows = conn.execute('SELECT c.id, c.article_id, c.ordinal, c.text, c.start, c."end", a.hash FROM chunks c '
                                "JOIN articles a ON a.id = c.article_id WHERE c.id = ANY(%s)",
                                ([int(i) for i in ids],)).fetchall()
        if len(self._versions) > 100_000:
            self._versions.clear()
        for r in rows:
            self._versions[r[1]] = r[6]
        return {int(r[0]): Chunk(int(r[0]), *r[1:6]) for r in rows}

    @guarded
    def export(self, after: str | None, limit: int) -> list[NewArticle]:
        """Up to ``limit`` articles with ids after ``after``, in id order, with their chunks and
        stored vectors (for copying an index without embedding again)."""
        with self._read() as conn:
            arts = conn.execute("SELECT id, title, date, source, text, hash FROM articles WHERE id > %s "
                                "ORDER BY id LIMIT %s", (after or "", limit)).fetchall()
            if not arts:
                return []
            rows = conn.execute('SELECT article_id, id, ordinal, text, start, "end", embedding FROM chunks '
                                "WHERE article_id = ANY(%s) ORDER BY article_id, ordinal",
                                ([a[0] for a in arts],), binary=True).fetchall()
        by_article: dict[str, list] = {}
        for r in rows:
            by_article.setdefault(r[0], []).append(r)
        out = []
        dim = self.dimension or 0
        for aid, title, date, source, text, h in arts:
            rs = by_article.get(aid, [])
            chunks = [Chunk(int(r[1]), aid, r[2], r[3], r[4], r[5]) for r in rs]
            vecs = (np.stack([r[6].to_numpy() for r in rs]).astype(np.float32) if rs
                    else np.zeros((0, dim), dtype=np.float32))
            out.append(NewArticle(Article(aid, title, date, source, text), h, chunks, vecs))
        return out

    @guarded
    def stats(self) -> IndexStats:
        gen, n_articles, n_chunks, _ = self._state(fresh=True)
        with self._read() as conn:
            size = conn.execute("SELECT sum(pg_total_relation_size(t::regclass)) FROM unnest(%s::text[]) t",
                                (list(TABLES),)).fetchone()[0]
            embedder = self._meta(conn, "embedder")
            dim = self._meta(conn, "dimension")
            hnsw = conn.execute("SELECT to_regclass('chunks_embedding')").fetchone()[0] is not None
        return IndexStats(articles=n_articles, chunks=n_chunks, embedder=embedder or self.embedder_name,
                          dimension=int(dim or 0), generation=gen,
                          faiss_type="pgvector HNSW" if hnsw else "pgvector, exact (no HNSW index yet)",
                          size_bytes=int(size or 0), path=str(self.server))

    def close(self) -> None:
        for pool in {id(self._pool): self._pool, id(self._read_pool): self._read_pool}.values():
            pool.close()
