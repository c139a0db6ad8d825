"""Feeds of an index in PostgreSQL: the feed tables in the index's own database.

The same three tables and the same SQL as a folder index (``rag/feedstore.py``), with
``DOUBLE PRECISION`` timestamps and ``%s`` placeholders, so every process sharing the database
(ingests, app servers, ``rag feed update`` on another machine) sees the same followed feeds, the
entries already indexed, and the robots.txt files already fetched.

The tables are created on first use, as in a folder, rather than as a schema migration: an index
that never follows a feed never gets them, and no schema version changes. Two processes creating
them at once would race inside PostgreSQL's catalogue, so creation runs under the advisory lock
the store's own schema changes take. The store keeps one connection of its own (writes and the
reads that decide them go to the primary, never to a read replica); a connection the server
dropped is reopened on the next call.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from .errors import IndexUnavailableError
from .feedstore import FeedTables, feed_schema
from .pgschema import LOCK_KEY, connect_error, server_of


UPDATE_LOCK_KEY = 0x72_61_67_5F_66_65_65_64  # pg_advisory_lock key held while feeds update ("rag_feed")


class PostgresFeedStore(FeedTables):
    """The feed tables in a PostgreSQL database (the index's ``dsn``). Thread-safe."""

    placeholder = "%s"

    def __init__(self, dsn: str, *, connect_timeout: int = 10) -> None:
        import psycopg

        self.dsn = dsn
        self.server = server_of(dsn)
        self.connect_timeout = connect_timeout
        self.duplicate = (psycopg.errors.UniqueViolation,)
        self._lock = threading.Lock()
        self._db: Any = None
        with self._transaction() as cur:
            cur.execute("SELECT pg_advisory_xact_lock(%s)", (LOCK_KEY,))
            for statement in feed_schema("DOUBLE PRECISION"):
                cur.execute(statement)

    def _conn(self):
        """The open connection, reconnecting when there is none or the server dropped it."""
        import psycopg

        if self._db is None or self._db.closed or self._db.broken:
            try:
                self._db = psycopg.connect(self.dsn, autocommit=True, connect_timeout=self.connect_timeout)
            except psycopg.Error as e:
                raise connect_error(e, self.dsn, what="feeds of index") from None
        return self._db

    @contextmanager
    def _guard(self) -> Iterator[None]:
        import psycopg

        try:
            yield
        except psycopg.OperationalError as e:
            raise IndexUnavailableError(
                f"feeds of index {self.server}: lost the connection ({' '.join(str(e).split())})") from None

    @contextmanager
    def _cursor(self) -> Iterator[Any]:
        with self._lock, self._guard():
            with self._conn().cursor() as cur:
                yield cur

    @contextmanager
    def _transaction(self) -> Iterator[Any]:
        with self._lock, self._guard():
            conn = self._conn()
            with conn.transaction(), conn.cursor() as cur:
                yield cur

    @contextmanager
    def updating(self) -> Iterator[None]:
        """A session advisory lock on a connection of its own, held while feeds are updated:
        refreshers on several app servers take turns instead of fetching the same pages."""
        import psycopg

        try:
            conn = psycopg.connect(self.dsn, autocommit=True, connect_timeout=self.connect_timeout)
        except psycopg.Error as e:
            raise connect_error(e, self.dsn, what="feeds of index") from None
        with conn:
            with self._guard():
                conn.execute("SELECT pg_advisory_lock(%s)", (UPDATE_LOCK_KEY,))
            try:
                yield
            finally:
                if not conn.broken:
                    conn.execute("SELECT pg_advisory_unlock(%s)", (UPDATE_LOCK_KEY,))

    def close(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.close()
