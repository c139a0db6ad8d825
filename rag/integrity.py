"""`rag index check`: what is wrong with an index folder, and rebuilding what can be rebuilt.

SQLite holds the articles (the source of truth); everything else is derived from them and can
be rebuilt: the full-text (FTS5) index from the chunks, the chunks' text from their article,
their vectors with the index's embedder, and the FAISS file from the vectors. So the check
walks from the bottom up: SQLite's own ``integrity_check`` (page structure), FTS5's
``integrity-check`` and the FTS rows against the chunks, the chunks against their articles
(``chunk.text == article.text[start:end]``, no chunk without its article), every stored vector
(length, finite, unit norm), then the FAISS files (a checksum recorded when written, the
vector count and ids, and for exact indexes the vectors themselves against SQLite).

``repair=True`` rebuilds, in that order, what the findings say can be rebuilt (``rag.repair``).
Damage inside the articles themselves cannot be rebuilt from anything in the folder: the
report says so and names what to do (index the source files again into a new folder).
"""

from __future__ import annotations

import logging
import re
import sqlite3
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from .errors import ConfigError, IndexCorruptError, RagError
from .pgschema import is_dsn, server_of
from .faisscache import _pid_alive, file_checksum
from .store import DB_NAME, Store, _open_read_only, _writable

log = logging.getLogger(__name__)

DERIVED_TABLES = ("chunks_fts", "chunks_fts_data", "chunks_fts_idx", "chunks_fts_content",
                  "chunks_fts_docsize", "chunks_fts_config")
READD = "cannot be rebuilt from the folder: index the source files again into a new folder"


@dataclass
class Finding:
    """One problem: where, what, and what ``--repair`` does about it (None: nothing can)."""

    area: str
    problem: str
    repair: str | None
    repaired: bool = False


@dataclass
class CheckReport:
    """The outcome of ``check_index``; ``ok`` when nothing is wrong (or everything was repaired)."""

    path: str
    articles: int = 0
    chunks: int = 0
    generation: int = 0
    checked: list[str] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    repair: bool = False

    @property
    def ok(self) -> bool:
        return all(f.repaired for f in self.findings)

    def add(self, area: str, problem: str, repair: str | None) -> Finding:
        f = Finding(area, problem, repair)
        self.findings.append(f)
        return f

    def text(self) -> str:
        lines = [f"index:    {self.path}",
                 f"contents: {self.articles} articles, {self.chunks} chunks, generation {self.generation}",
                 f"checked:  {', '.join(self.checked)}"]
        if not self.findings:
            lines.append("ok: no problems found")
            return "\n".join(lines)
        for f in self.findings:
            if f.repaired:
                state = f"repaired: {f.repair}"
            elif f.repair is None:
                state = READD
            else:
                state = f"--repair will {f.repair}" if not self.repair else f"NOT repaired ({f.repair} failed)"
            lines.append(f"- {f.area}: {f.problem}\n    {state}")
        wrong = sum(not f.repaired for f in self.findings)
        lines.append(f"{wrong} problem{'s' if wrong != 1 else ''} left" if wrong else "ok: everything found was repaired")
        return "\n".join(lines)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["ok"] = self.ok
        return d


def check_index(index_dir: str | Path, *, repair: bool = False, embedder=None) -> CheckReport:
    """Checks an index folder; with ``repair``, rebuilds what can be rebuilt.

    ``embedder``: needed only to re-embed damaged vectors or chunks (the index's own embedder;
    built from the name recorded in the index when not given, and only if needed).
    """
    if is_dsn(str(index_dir)):
        raise ConfigError(f"{server_of(str(index_dir))}: `rag index check` checks index folders; a PostgreSQL "
                          "index is checked with the server's own tools (amcheck, pg_dump)")
    folder = Path(index_dir).expanduser()
    db_path = folder / DB_NAME
    if not db_path.is_file():
        raise IndexCorruptError(f"{folder}: no index here (no {DB_NAME})")
    report = CheckReport(path=str(folder), repair=repair)
    writable = _writable(folder, db_path)
    if repair and not writable:
        raise IndexCorruptError(f"{folder}: --repair needs write access to the index folder")
    try:
        db = (sqlite3.connect(db_path, isolation_level=None, timeout=60) if writable
              else _open_read_only(db_path))
        db.execute("SELECT count(*) FROM sqlite_master").fetchone()
    except sqlite3.Error as e:
        report.add("sqlite", f"cannot open the database ({e})", None)
        return report
    try:
        tables = _check_sqlite(db, report)
        if {"meta", "articles", "chunks"} <= tables:
            for step in (_check_contents, lambda d, r: _check_fts(d, r, writable), _check_articles,
                         _check_chunks, _check_stored_vectors):
                _step(step, db, report)
    finally:
        db.close()
    _step(lambda _, r: _check_faiss(folder, r), None, report)
    if repair and report.findings:
        from .repair import repair as run_repairs

        run_repairs(folder, report, embedder)
    return report


# ---------------------------------------------------------------------------------- checks


def _step(step, db, report: CheckReport) -> None:
    """Runs one check; damage that stops it is itself a finding (the check never raises)."""
    try:
        step(db, report)
    except (sqlite3.Error, RagError, RuntimeError, OSError, ValueError) as e:
        already = any(f.repair is None for f in report.findings)
        if not already:
            report.add("sqlite", f"a check could not read the index ({e})", None)


def _check_stored_vectors(db: sqlite3.Connection, report: CheckReport) -> None:
    dim = _meta(db, "dimension")
    if dim is not None:
        _check_vectors(db, report, int(dim))



def _meta(db: sqlite3.Connection, key: str) -> str | None:
    row = db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
    return row[0] if row else None


def _check_sqlite(db: sqlite3.Connection, report: CheckReport) -> set[str]:
    """SQLite's integrity_check, each message placed on its table; the tables that exist."""
    report.checked.append("SQLite integrity_check")
    try:
        roots = {int(r[1]): r[0] for r in db.execute("SELECT name, rootpage FROM sqlite_master")}
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type IN ('table', 'view')")}
        kinds = dict(db.execute("SELECT name, type FROM sqlite_master").fetchall())
        rows = [r[0] for r in db.execute("PRAGMA integrity_check(200)")]
    except sqlite3.DatabaseError as e:
        report.add("sqlite", f"the schema cannot be read ({e})", None)
        return set()
    if rows == ["ok"]:
        return tables
    derived, indexes, leaks, data = [], [], [], []
    for msg in rows:
        m = re.search(r"(?:Tree|tree) (\d+)", msg)
        name = roots.get(int(m.group(1))) if m else None
        idx = re.search(r"(?:from|in|UNIQUE) index (\w+)", msg)
        if name in DERIVED_TABLES:
            derived.append(msg)
        elif idx or (name and kinds.get(name) == "index"):
            indexes.append(msg)
        elif "never used" in msg:
            leaks.append(msg)
        else:
            data.append(f"{msg}" + (f" (table {name})" if name else ""))
    if derived:
        report.add("fts", f"full-text index pages damaged: {derived[0]}" + _more(derived),
                   "rebuild the full-text index from the stored chunks")
    if indexes:
        report.add("sqlite", f"an SQLite index is inconsistent: {indexes[0]}" + _more(indexes),
                   "rebuild SQLite's indexes (REINDEX)")
    if leaks:
        report.add("sqlite", f"{len(leaks)} unused pages not on the free list", "compact the database (VACUUM)")
    if data:
        report.add("sqlite", f"stored data damaged: {data[0]}" + _more(data), None)
    return tables


def _more(items: list[str]) -> str:
    return f" (and {len(items) - 1} more)" if len(items) > 1 else ""


def _check_contents(db: sqlite3.Connection, report: CheckReport) -> None:
    report.articles = int(db.execute("SELECT count(*) FROM articles").fetchone()[0])
    report.chunks = int(db.execute("SELECT count(*) FROM chunks").fetchone()[0])
    report.generation = int(_meta(db, "generation") or 0)
    for key in ("schema_version", "generation"):
        if _meta(db, key) is None:
            report.add("meta", f"the setting '{key}' is missing", None)


def _check_fts(db: sqlite3.Connection, report: CheckReport, writable: bool) -> None:
    report.checked.append("FTS5 integrity-check" if writable else "FTS5 rows (integrity-check needs write access)")
    problems = []
    if writable:  # a special INSERT that only reads, but SQLite wants a writable database for it
        try:
            db.execute("INSERT INTO chunks_fts(chunks_fts) VALUES('integrity-check')")
        except sqlite3.DatabaseError as e:
            problems.append(f"FTS5 integrity-check failed ({e})")
    try:
        extra = db.execute("SELECT count(*) FROM chunks_fts WHERE rowid NOT IN (SELECT id FROM chunks)").fetchone()[0]
        missing = db.execute("SELECT count(*) FROM chunks WHERE id NOT IN (SELECT rowid FROM chunks_fts)").fetchone()[0]
        stale = db.execute(
            "SELECT count(*) FROM chunks c JOIN chunks_fts f ON f.rowid = c.id WHERE f.text IS NOT c.text"
        ).fetchone()[0]
        if extra:
            problems.append(f"{extra} full-text rows have no chunk")
        if missing:
            problems.append(f"{missing} chunks are missing from the full-text index")
        if stale:
            problems.append(f"{stale} full-text rows differ from their chunk's text")
    except sqlite3.DatabaseError as e:
        problems.append(f"the full-text index cannot be read ({e})")
    if problems and not any(f.area == "fts" for f in report.findings):
        report.add("fts", "; ".join(problems), "rebuild the full-text index from the stored chunks")


def _check_articles(db: sqlite3.Connection, report: CheckReport) -> None:
    """Each article's text against the content hash stored with it (its checksum)."""
    from .ingest import content_hash

    report.checked.append("article texts against their checksums")
    bad = []
    cur = db.execute("SELECT id, text, hash FROM articles")
    while rows := cur.fetchmany(1000):
        bad += [r[0] for r in rows if not isinstance(r[1], str) or content_hash(r[1]) != r[2]]
    if bad:
        report.add("articles", f"the text of {len(bad)} articles no longer matches its checksum "
                               f"({', '.join(bad[:5])}{' ...' if len(bad) > 5 else ''})", None)


def _check_chunks(db: sqlite3.Connection, report: CheckReport) -> None:
    report.checked.append("chunks against their articles")
    orphans = db.execute(
        "SELECT count(*) FROM chunks c LEFT JOIN articles a ON a.id = c.article_id WHERE a.id IS NULL"
    ).fetchone()[0]
    if orphans:
        report.add("chunks", f"{orphans} chunks belong to no article", "remove them")
    bad = db.execute(
        'SELECT count(*), group_concat(DISTINCT a.id) FROM chunks c JOIN articles a ON a.id = c.article_id '
        'WHERE c.start < 0 OR c."end" > length(a.text) OR c.start >= c."end" '
        'OR substr(a.text, c.start + 1, c."end" - c.start) IS NOT c.text'
    ).fetchone()
    if bad[0]:
        ids = (bad[1] or "").split(",")
        report.add("chunks", f"{bad[0]} chunks do not match their article's text at their offsets "
                             f"(articles {', '.join(ids[:5])}{' ...' if len(ids) > 5 else ''})",
                   "take those chunks' text from their article again and embed them (if the article "
                   "text itself is what was damaged, add its source file again)")


def _check_vectors(db: sqlite3.Connection, report: CheckReport, dim: int) -> None:
    report.checked.append("stored vectors")
    bad = _bad_vectors(db, dim)
    if bad:
        report.add("vectors", f"{len(bad)} stored vectors are damaged (wrong length, not finite or not unit "
                              f"length)", "embed those chunks again with the index's embedder")


def _bad_vectors(db: sqlite3.Connection, dim: int) -> list[int]:
    bad: list[int] = []
    cur = db.execute("SELECT id, embedding FROM chunks ORDER BY id")
    while rows := cur.fetchmany(10000):
        good = [r for r in rows if isinstance(r[1], bytes) and len(r[1]) == dim * 4]
        bad.extend(r[0] for r in rows if not (isinstance(r[1], bytes) and len(r[1]) == dim * 4))
        if good:
            vecs = np.frombuffer(b"".join(r[1] for r in good), dtype=np.float32).reshape(len(good), dim)
            with np.errstate(all="ignore"):
                norms = np.linalg.norm(vecs, axis=1)
            wrong = ~np.isfinite(vecs).all(axis=1) | (np.abs(norms - 1) > 1e-3)
            bad.extend(good[i][0] for i in np.flatnonzero(wrong))
    return bad


def _check_faiss(folder: Path, report: CheckReport) -> None:
    report.checked.append("FAISS files and checksums")
    try:
        store = Store(folder, embedder_name=_stored_name(folder), create=False)
    except Exception as e:  # noqa: BLE001 - whatever keeps the store from opening is the finding
        report.add("faiss", f"not checked: the index does not open ({e})", None)
        return
    try:
        gen = store.generation
        for f in sorted(folder.glob("faiss-*.index*")):
            if ".tmp" in f.name:
                if not _pid_alive(f.name.rsplit(".tmp", 1)[1]):
                    report.add("faiss", f"{f.name} is a leftover of an interrupted write", "delete it")
            elif not f.is_file():
                report.add("faiss", f"{f.name} is not a file: it is where a FAISS file belongs",
                           "remove it if it is an empty folder (otherwise move it away yourself)")
        files = store._faiss_files()
        current = [p for g, p in files if g == gen]
        if not current:
            if store.dimension is not None and (not files or files[0][0] < store._log_floor()):
                report.add("faiss", f"no FAISS file for generation {gen} (rebuilt when the index is next opened)",
                           "rebuild it now")
            return
        path = current[0]
        want = store.recorded_checksum(gen)
        if want is None:
            report.add("faiss", f"{path.name} has no recorded checksum (not trusted; rebuilt when opened)",
                       "rebuild it")
            return
        if file_checksum(path) != want:
            report.add("faiss", f"{path.name} does not match the checksum recorded when it was written",
                       "rebuild it from the stored vectors")
            return
        _compare_faiss(store, path, report)
    finally:
        store.close()


def _compare_faiss(store: Store, path: Path, report: CheckReport) -> None:
    """The FAISS file's ids (and, for an exact index, vectors) against SQLite."""
    from .faisscache import _faiss

    faiss = _faiss()
    try:
        index = faiss.read_index(str(path))
    except RuntimeError as e:
        report.add("faiss", f"{path.name} cannot be read ({e})", "rebuild it")
        return
    n = store.count()[1]
    if index.ntotal != n:
        report.add("faiss", f"{path.name} holds {index.ntotal} vectors, SQLite {n} chunks", "rebuild it")
        return
    if not isinstance(index, faiss.IndexIDMap2) or n == 0:
        return
    ids = faiss.vector_to_array(index.id_map).astype(np.int64)
    stored_ids = np.array([r[0] for r in store.db.execute("SELECT id FROM chunks ORDER BY id")], dtype=np.int64)
    if not np.array_equal(np.sort(ids), stored_ids):
        report.add("faiss", f"{path.name} holds other chunk ids than SQLite", "rebuild it")
        return
    inner = faiss.downcast_index(index.index)
    if isinstance(inner, faiss.IndexFlat):
        vecs = faiss.rev_swig_ptr(inner.get_xb(), n * index.d).reshape(n, index.d)
        try:
            stored = store._vectors_for(ids)
        except ValueError:  # a damaged stored vector: reported by the vector check
            return
        if not np.allclose(vecs, stored, atol=1e-6):
            report.add("faiss", f"{path.name} holds vectors that differ from SQLite's", "rebuild it")


def _stored_name(folder: Path) -> str:
    from .store import stored_embedder

    return stored_embedder(folder) or "unknown"
