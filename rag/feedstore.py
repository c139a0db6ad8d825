"""Feeds kept in the index: which feeds are followed, what each entry became, cached robots.txt.

The tables live in the index's own database, beside the articles, so an index copied to another
machine (or shared by many through PostgreSQL) keeps following the same feeds and knows which
entries it already holds. They are created on first use (``CREATE TABLE IF NOT EXISTS``): an
index without feeds never gets them, and a program that does not know them simply ignores them,
so no schema version is needed. This module owns all of the feed SQL; each backend opens its own
connection (SQLite's WAL, or a PostgreSQL session, lets it write beside the article store
without sharing its transactions).

The interface is the ``FeedStore`` protocol. ``FeedTables`` implements it once, in SQL that
SQLite and PostgreSQL both accept (``ON CONFLICT ... DO UPDATE``, ``excluded``, correlated
counts); a backend supplies only connections, transactions and its placeholder style:
``SQLiteFeedStore`` here, ``PostgresFeedStore`` in ``rag/pgfeedstore.py``.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from .errors import ConfigError, IndexCorruptError, InputError

# One statement each; {real} is the type of a unix timestamp (SQLite's REAL is a double, while
# PostgreSQL's is a float4 that would round today's times to minutes).
FEED_TABLES = (
    """CREATE TABLE IF NOT EXISTS feeds (
    url TEXT PRIMARY KEY,
    title TEXT,
    added_at {real} NOT NULL,
    etag TEXT,
    last_modified TEXT,
    checked_at {real},
    status TEXT,
    error TEXT
)""",
    """CREATE TABLE IF NOT EXISTS feed_entries (
    feed_url TEXT NOT NULL,
    entry_id TEXT NOT NULL,
    link TEXT,
    updated TEXT,
    article_id TEXT,
    status TEXT NOT NULL,
    error TEXT,
    seen_at {real} NOT NULL,
    PRIMARY KEY (feed_url, entry_id)
)""",
    """CREATE TABLE IF NOT EXISTS robots_txt (
    origin TEXT PRIMARY KEY,
    fetched_at {real} NOT NULL,
    status INTEGER NOT NULL,
    body TEXT NOT NULL
)""",
)


def feed_schema(real: str = "REAL") -> list[str]:
    """The ``CREATE TABLE IF NOT EXISTS`` statements, with ``real`` as the timestamp type."""
    return [s.format(real=real) for s in FEED_TABLES]


@dataclass(frozen=True)
class FeedInfo:
    """A followed feed, as ``rag feed list`` shows it."""

    url: str
    title: str | None
    added_at: float
    checked_at: float | None = None  # last update attempt (unix time)
    status: str | None = None  # "updated", "not modified" or "failed" after the last attempt
    error: str | None = None  # why the last attempt failed
    entries: int = 0  # entries seen
    articles: int = 0  # entries indexed as articles
    etag: str | None = None
    last_modified: str | None = None


@dataclass(frozen=True)
class EntryRecord:
    """What became of one feed entry: indexed (with its article), or failed for good."""

    entry_id: str
    link: str | None
    updated: str | None  # the entry's own updated/published stamp, to notice edits
    article_id: str | None
    status: str  # "indexed" or "failed"
    error: str | None = None


class FeedStore(Protocol):
    """Feed storage, whatever the index's backend."""

    def add_feed(self, url: str, title: str | None) -> FeedInfo: ...
    def feed(self, url: str) -> FeedInfo | None: ...
    def feeds(self) -> list[FeedInfo]: ...
    def remove_feed(self, url: str) -> list[str]: ...
    def record_check(self, url: str, *, status: str, error: str | None = None, title: str | None = None,
                     etag: str | None = None, last_modified: str | None = None,
                     keep_validators: bool = False) -> None: ...
    def entries(self, url: str) -> dict[str, EntryRecord]: ...
    def put_entries(self, url: str, records: list[EntryRecord]) -> None: ...
    def robots_get(self, origin: str) -> tuple[float, int, str] | None: ...
    def robots_put(self, origin: str, fetched_at: float, status: int, body: str) -> None: ...
    def updating(self) -> AbstractContextManager[None]: ...
    def close(self) -> None: ...


class FeedTables:
    """The ``FeedStore`` methods in portable SQL (``?`` placeholders), for any backend.

    A subclass supplies ``_cursor`` (a cursor outside any transaction, each statement committed
    on its own), ``_transaction`` (a cursor inside one transaction, committed when the block
    ends and rolled back if it raises), ``placeholder`` and ``duplicate`` (the exception a
    primary key violation raises). Both run under the subclass's lock, so one store object may
    be shared by threads (robots.txt is read and written by the page fetchers' threads).
    """

    placeholder = "?"
    duplicate: tuple[type[BaseException], ...] = ()

    @contextmanager
    def _cursor(self) -> Iterator[Any]:
        raise NotImplementedError

    @contextmanager
    def _transaction(self) -> Iterator[Any]:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    @contextmanager
    def updating(self) -> Iterator[None]:
        """Held while feeds are updated, across processes: two refreshers on one index (a
        terminal's `rag feed update --every` and a server's `--feeds-every`, or two app servers
        on one database) take turns, so the second finds the entries indexed and the feeds
        unchanged instead of fetching every page again."""
        yield

    def _sql(self, sql: str) -> str:
        return sql if self.placeholder == "?" else sql.replace("?", self.placeholder)

    def _rows(self, sql: str, args: tuple = ()) -> list[tuple]:
        with self._cursor() as cur:
            cur.execute(self._sql(sql), args)
            return cur.fetchall()

    def _run(self, sql: str, args: tuple = ()) -> None:
        with self._cursor() as cur:
            cur.execute(self._sql(sql), args)

    # ------------------------------------------------------------------ feeds

    def add_feed(self, url: str, title: str | None) -> FeedInfo:
        try:
            self._run("INSERT INTO feeds(url, title, added_at) VALUES (?, ?, ?)", (url, title, time.time()))
        except self.duplicate:
            raise InputError(f"{url}: this feed is already followed (see `rag feed list`)") from None
        info = self.feed(url)
        assert info is not None
        return info

    _SELECT = ("SELECT f.url, f.title, f.added_at, f.checked_at, f.status, f.error, "
               "(SELECT COUNT(*) FROM feed_entries e WHERE e.feed_url = f.url), "
               "(SELECT COUNT(*) FROM feed_entries e WHERE e.feed_url = f.url AND e.status = 'indexed'), "
               "f.etag, f.last_modified FROM feeds f")

    def feed(self, url: str) -> FeedInfo | None:
        rows = self._rows(self._SELECT + " WHERE f.url = ?", (url,))
        return FeedInfo(*rows[0]) if rows else None

    def feeds(self) -> list[FeedInfo]:
        return [FeedInfo(*r) for r in self._rows(self._SELECT + " ORDER BY f.added_at, f.url")]

    def remove_feed(self, url: str) -> list[str]:
        """Forgets a feed and its entries; returns the article ids its entries became."""
        with self._transaction() as cur:
            cur.execute(self._sql("SELECT 1 FROM feeds WHERE url = ?"), (url,))
            if not cur.fetchall():
                raise InputError(f"{url}: no such feed (see `rag feed list`)")
            cur.execute(self._sql("SELECT article_id FROM feed_entries WHERE feed_url = ? AND article_id IS NOT NULL"),
                        (url,))
            ids = [r[0] for r in cur.fetchall()]
            cur.execute(self._sql("DELETE FROM feed_entries WHERE feed_url = ?"), (url,))
            cur.execute(self._sql("DELETE FROM feeds WHERE url = ?"), (url,))
        return ids

    def record_check(self, url: str, *, status: str, error: str | None = None, title: str | None = None,
                     etag: str | None = None, last_modified: str | None = None,
                     keep_validators: bool = False) -> None:
        """Notes an update attempt; new validators (ETag, Last-Modified) replace the old ones
        unless ``keep_validators``, which a partly failed update uses so the feed is read again."""
        if keep_validators:
            self._run("UPDATE feeds SET checked_at = ?, status = ?, error = ?, title = COALESCE(?, title) "
                      "WHERE url = ?", (time.time(), status, error, title, url))
        else:
            self._run("UPDATE feeds SET checked_at = ?, status = ?, error = ?, title = COALESCE(?, title), "
                      "etag = ?, last_modified = ? WHERE url = ?",
                      (time.time(), status, error, title, etag, last_modified, url))

    # ------------------------------------------------------------------ entries

    def entries(self, url: str) -> dict[str, EntryRecord]:
        rows = self._rows("SELECT entry_id, link, updated, article_id, status, error FROM feed_entries "
                          "WHERE feed_url = ?", (url,))
        return {r[0]: EntryRecord(*r) for r in rows}

    def put_entries(self, url: str, records: list[EntryRecord]) -> None:
        if not records:
            return
        now = time.time()
        with self._transaction() as cur:
            cur.executemany(self._sql(
                "INSERT INTO feed_entries(feed_url, entry_id, link, updated, article_id, status, error, seen_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(feed_url, entry_id) DO UPDATE SET "
                "link = excluded.link, updated = excluded.updated, article_id = excluded.article_id, "
                "status = excluded.status, error = excluded.error, seen_at = excluded.seen_at"),
                [(url, r.entry_id, r.link, r.updated, r.article_id, r.status, r.error, now) for r in records])

    # ------------------------------------------------------------------ robots.txt

    def robots_get(self, origin: str) -> tuple[float, int, str] | None:
        rows = self._rows("SELECT fetched_at, status, body FROM robots_txt WHERE origin = ?", (origin,))
        return (float(rows[0][0]), int(rows[0][1]), rows[0][2]) if rows else None

    def robots_put(self, origin: str, fetched_at: float, status: int, body: str) -> None:
        self._run("INSERT INTO robots_txt(origin, fetched_at, status, body) VALUES (?, ?, ?, ?) "
                  "ON CONFLICT(origin) DO UPDATE SET fetched_at = excluded.fetched_at, status = excluded.status, "
                  "body = excluded.body", (origin, fetched_at, status, body))


class SQLiteFeedStore(FeedTables):
    """The feed tables inside an index's SQLite file."""

    duplicate = (sqlite3.IntegrityError,)

    def __init__(self, db_path: str | Path) -> None:
        self.db_path = Path(db_path)
        self._lock = threading.Lock()
        try:
            self.db = sqlite3.connect(self.db_path, timeout=30, check_same_thread=False, isolation_level=None)
            self.db.executescript(";\n".join(feed_schema()) + ";")
        except sqlite3.DatabaseError as e:
            raise IndexCorruptError(f"{self.db_path}: cannot open the feed tables ({e})") from None

    def close(self) -> None:
        with self._lock:
            self.db.close()

    @contextmanager
    def updating(self) -> Iterator[None]:
        """An exclusive ``flock`` on a file beside the index's database (a read-only index has
        nothing to update, and is left unlocked)."""
        import fcntl

        try:
            f = open(self.db_path.with_name(self.db_path.name + "-feeds.lock"), "a")  # noqa: SIM115
        except OSError:
            yield
            return
        with f:
            fcntl.flock(f, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(f, fcntl.LOCK_UN)

    @contextmanager
    def _cursor(self) -> Iterator[sqlite3.Cursor]:
        with self._lock:
            yield self.db.cursor()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Cursor]:
        with self._lock:
            cur = self.db.cursor()
            cur.execute("BEGIN IMMEDIATE")
            try:
                yield cur
            except BaseException:
                cur.execute("ROLLBACK")
                raise
            cur.execute("COMMIT")


def has_feed_tables(store: object) -> bool:
    """Whether an article store's index holds feed tables yet (looking creates nothing)."""
    if getattr(store, "dsn", None) is not None:
        with store._read() as conn:  # type: ignore[attr-defined]
            return conn.execute("SELECT to_regclass('feeds') IS NOT NULL").fetchone()[0]
    db = getattr(store, "db", None)
    return db is not None and db.execute("SELECT 1 FROM sqlite_master WHERE name = 'feeds'").fetchone() is not None


def feed_store_for(store: object) -> FeedStore:
    """The feed storage of an article store: tables in its SQLite file, or in its PostgreSQL
    database (a store with a ``dsn``)."""
    dsn = getattr(store, "dsn", None)
    if dsn is not None:
        from .pgfeedstore import PostgresFeedStore

        config = getattr(store, "config", None)
        return PostgresFeedStore(dsn, connect_timeout=getattr(config, "connect_timeout", 10))
    db_path = getattr(store, "db_path", None)
    if db_path is None:
        raise ConfigError(f"this index ({type(store).__name__}) cannot keep feeds or robots.txt yet")
    return SQLiteFeedStore(db_path)
