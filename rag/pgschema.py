"""PostgreSQL: the schema of an index, connecting to it, and errors a person can act on.

The schema is created on first use and versioned in ``rag_meta`` (``schema_version``); a program
opening an index with a newer schema refuses it, an older one is upgraded by the steps in
:data:`MIGRATIONS` (each step a list of statements run in one transaction, under an advisory lock
so that two processes opening a fresh database at once do not race). Adding a table (a feature's
own state, say) is one more step at the end.

Full-text search is made to behave like the SQLite store's FTS5 table (``porter unicode61
remove_diacritics 2``) so that both stores rank alike: a text search configuration ``rag_fts``
maps words and numbers to Snowball's original Porter stemmer with no stop words, leaves
hyphenated compounds to their parts ("semi-final" is "semi" then "final", as in FTS5), and
``rag_fold`` first drops diacritics (Unicode decomposition, then the combining marks: "José" is
"jose", as with ``remove_diacritics``) and turns typographic punctuation and currency signs into
spaces, since a database with the C locale would otherwise read them as letters.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from .errors import IndexUnavailableError

SCHEMA_VERSION = 1
LOCK_KEY = 0x72_61_67_5F_73_63_68  # pg_advisory_xact_lock key for schema changes ("rag_sch")
TEXT_WEIGHT, TITLE_WEIGHT = 1.0, 0.4  # as the SQLite store's bm25(chunks_fts, 1.0, 0.4)


# Typographic punctuation and currency signs: separators, as for FTS5's unicode61 (a C-locale
# database would otherwise read them as letters: "Alonso’s" one word).
_SEPARATORS = "\u2018\u2019\u02bc\u201a\u201b\u201c\u201d\u201e\u2013\u2014\u2015\u2026\u00a0\u00a3\u20ac\u00a5\u00ab\u00bb"
_TOKEN_TYPES = ("asciiword, word, numword, hword_asciipart, hword_part, hword_numpart, "
                "uint, int, float, sfloat, version, email, url, host, url_path, file")

MIGRATIONS: list[list[str]] = [
    [  # 1: the index
        "CREATE TABLE rag_meta (key text PRIMARY KEY, value text NOT NULL)",
        # counters kept by every write, so that a question never counts a million rows
        "CREATE TABLE rag_state (id integer PRIMARY KEY CHECK (id = 1), generation bigint NOT NULL DEFAULT 0, "
        "articles bigint NOT NULL DEFAULT 0, chunks bigint NOT NULL DEFAULT 0, tokens bigint NOT NULL DEFAULT 0)",
        "INSERT INTO rag_state (id) VALUES (1)",
        "CREATE TEXT SEARCH DICTIONARY rag_porter (TEMPLATE = snowball, Language = porter)",
        "CREATE TEXT SEARCH CONFIGURATION rag_fts (PARSER = default)",
        f"ALTER TEXT SEARCH CONFIGURATION rag_fts ADD MAPPING FOR {_TOKEN_TYPES} WITH rag_porter",
        # diacritics off (NFKD, then the combining marks), separators to spaces: ~50 us a passage,
        # where a translate() of every accented letter took ~1.5 ms
        "CREATE FUNCTION rag_fold(t text) RETURNS text LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$ "
        "SELECT regexp_replace(regexp_replace(normalize(t, NFKD), '[\\u0300-\\u036f]+', '', 'g'), "
        f"'[{_SEPARATORS}]', ' ', 'g') $$",
        """CREATE TABLE articles (
            id text PRIMARY KEY,
            title text NOT NULL,
            date text,
            source text NOT NULL UNIQUE,
            text text NOT NULL,
            hash text NOT NULL UNIQUE,
            added_at double precision NOT NULL)""",
        "CREATE INDEX articles_date ON articles (date)",
        """CREATE TABLE chunks (
            id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            article_id text NOT NULL REFERENCES articles (id) ON DELETE CASCADE,
            ordinal integer NOT NULL,
            start integer NOT NULL,
            "end" integer NOT NULL,
            date text,
            text text NOT NULL,
            title text NOT NULL,
            tokens integer NOT NULL,
            tsv tsvector GENERATED ALWAYS AS (
                setweight(to_tsvector('rag_fts', rag_fold(text)), 'A') ||
                setweight(to_tsvector('rag_fts', rag_fold(title)), 'B')) STORED,
            embedding vector)""",
        # in the row (the text is compressed or moved out first): BM25 reads each candidate's tsvector several times
        "ALTER TABLE chunks ALTER COLUMN tsv SET STORAGE MAIN",
        "CREATE INDEX chunks_article ON chunks (article_id)",
        "CREATE INDEX chunks_date ON chunks (date)",
        "CREATE INDEX chunks_tsv ON chunks USING gin (tsv)",
    ],
]
TABLES = ("rag_meta", "rag_state", "articles", "chunks")


@dataclass(frozen=True)
class Server:
    """Where an index lives, for messages: never the password."""

    host: str
    port: str
    dbname: str
    user: str

    def __str__(self) -> str:
        return f"postgresql://{self.user}@{self.host}:{self.port}/{self.dbname}"


def is_dsn(index: object) -> bool:
    """Whether an index argument names a PostgreSQL database rather than a folder."""
    return isinstance(index, str) and index.startswith(("postgresql://", "postgres://"))


def server_of(dsn: str) -> Server:
    """The server, database and user a DSN names (defaults as libpq applies them)."""
    from psycopg.conninfo import conninfo_to_dict

    try:
        d = conninfo_to_dict(dsn)
    except Exception as e:  # psycopg.ProgrammingError: a malformed URL
        raise IndexUnavailableError(f"{redact(dsn)}: not a valid PostgreSQL URL ({e})") from None
    user = str(d.get("user") or "")
    return Server(host=str(d.get("host") or "localhost"), port=str(d.get("port") or "5432"),
                  dbname=str(d.get("dbname") or user or ""), user=user)


def redact(dsn: str) -> str:
    """The DSN with any password replaced by ``***``."""
    head, sep, rest = dsn.partition("://")
    if not sep or "@" not in rest.split("/", 1)[0]:
        return dsn
    auth, _, tail = rest.partition("@")
    user = auth.split(":", 1)[0]
    return f"{head}://{user}{':***' if ':' in auth else ''}@{tail}"


def connect_error(e: Exception, dsn: str, *, what: str = "index") -> IndexUnavailableError:
    """One line for a failed connection: which server, and what to do about it."""
    server = server_of(dsn)
    text = " ".join(str(e).split())
    low = text.lower()
    if "password authentication failed" in low or "no password supplied" in low:
        why = f"wrong password for user '{server.user}' (or no password given)"
    elif f'database "{server.dbname}" does not exist'.lower() in low:
        why = f"the database '{server.dbname}' does not exist (create it first: createdb {server.dbname})"
    elif "role" in low and "does not exist" in low:
        why = f"the user '{server.user}' does not exist on the server"
    elif any(s in low for s in ("connection refused", "could not connect", "timeout expired", "timed out",
                                "could not translate host name", "no route to host", "network is unreachable",
                                "server closed the connection", "connection failed")):
        why = f"the server cannot be reached ({_reason(text)})"
    else:
        why = _reason(text)
    for secret in filter(None, [_password(dsn)]):
        why = why.replace(secret, "***")
    return IndexUnavailableError(f"{what} {server}: {why}")


def _reason(text: str) -> str:
    """The useful tail of a libpq message ("FATAL: ...", "Connection refused")."""
    for marker in ("FATAL:", "failed:"):
        if marker in text:
            text = text.rsplit(marker, 1)[1]
    return text.strip().rstrip(".") or "unknown error"


def _password(dsn: str) -> str | None:
    try:
        from psycopg.conninfo import conninfo_to_dict

        pw = conninfo_to_dict(dsn).get("password")
    except Exception:
        return None
    return str(pw) if pw else None


def vector_error(e: Exception, server: Server) -> IndexUnavailableError:
    """``CREATE EXTENSION vector`` failed: not installed, or not ours to enable."""
    low = str(e).lower()
    if "permission denied" in low or "must be" in low and "superuser" in low:
        return IndexUnavailableError(
            f"index {server}: pgvector is not enabled in database '{server.dbname}' and user "
            f"'{server.user}' may not enable it (a superuser can: CREATE EXTENSION vector)")
    return IndexUnavailableError(
        f"index {server}: the pgvector extension is not installed on the server "
        "(install it, e.g. the postgresql-16-pgvector package, or use a server that has it)")


def guarded(method):
    """A server that goes away mid-call is an IndexUnavailableError naming it, not a traceback."""

    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        import psycopg
        from psycopg_pool import PoolTimeout

        try:
            return method(self, *args, **kwargs)
        except (psycopg.OperationalError, PoolTimeout) as e:
            raise IndexUnavailableError(f"index {self.server}: lost the connection ({' '.join(str(e).split())})") from None

    return wrapper
