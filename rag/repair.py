"""`rag index check --repair`: rebuilding what an index derives from its articles.

Each repair redoes a step of ingestion from what SQLite still holds: the full-text index from
the chunks (dropping a damaged FTS table through its schema entry when FTS5 cannot open it),
SQLite's own indexes (REINDEX), chunk texts from their article, vectors with the index's
embedder (stored as a new generation, logged as removed and re-added, so that FAISS follows),
and the FAISS file from the vectors. The findings come from ``rag.integrity.check_index``.
"""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path

import numpy as np

from .integrity import DERIVED_TABLES, CheckReport, _bad_vectors, _meta, _stored_name
from .faisscache import _pid_alive
from .store import DB_NAME, Store

log = logging.getLogger(__name__)


def repair(folder: Path, report: CheckReport, embedder=None) -> None:
    """Carries out the repairs ``report``'s findings name, marking each one done; SQLite-level
    first (REINDEX, VACUUM, orphans, chunk texts and vectors, the full-text index), the FAISS
    file last, since it follows the vectors."""
    db_path = folder / DB_NAME
    todo = [f for f in report.findings if f.repair is not None]
    db = sqlite3.connect(db_path, isolation_level=None, timeout=60)
    try:
        for f in todo:
            if f.area == "sqlite" and "REINDEX" in f.repair:
                db.execute("REINDEX")
                f.repaired = True
            elif f.area == "sqlite" and "VACUUM" in f.repair:
                db.execute("VACUUM")
                f.repaired = True
        for f in todo:
            if f.area == "chunks" and f.repair == "remove them":
                _drop_orphans(db)
                f.repaired = True
        store = None
        needs_embedder = [f for f in todo if f.area in ("vectors", "chunks") and not f.repaired]
        if needs_embedder:
            store = Store(folder, embedder_name=_stored_name(folder), create=False)
            emb = embedder if embedder is not None else _embedder_for(store)
            for f in needs_embedder:
                if f.area == "chunks":
                    _rederive_chunks(store, emb)
                else:
                    _reembed(store, emb, _bad_vectors(store.db, store.dimension or 0))
                f.repaired = True
            store.close()
        texts_changed = any(f.area == "chunks" and f.repaired and f.repair != "remove them" for f in todo)
        fts = [f for f in todo if f.area == "fts"]
        if fts or texts_changed:
            _rebuild_fts(db)
            for f in fts:
                f.repaired = True
    except (sqlite3.Error, OSError) as e:
        log.warning("repair stopped: %s", e)
    finally:
        db.close()
    faiss_findings = [f for f in todo if f.area == "faiss"]
    vectors_changed = any(f.repaired and f.area in ("vectors", "chunks") for f in todo)
    if faiss_findings or vectors_changed:
        for old in folder.glob("faiss-*.index*"):
            try:
                if old.is_dir():
                    old.rmdir()  # only an empty folder
                elif ".tmp" not in old.name or not _pid_alive(old.name.rsplit(".tmp", 1)[1]):
                    old.unlink()
            except OSError:
                pass
        try:
            store = Store(folder, embedder_name=_stored_name(folder), create=False)
            with store._lock:
                store._faiss_index = None
                index = store._rebuild(store.generation)
                store._faiss_index, store._faiss_gen = index, store.generation
            ok = store._file_gen == store.generation
            store.close()
        except Exception as e:  # noqa: BLE001
            log.warning("rebuilding the FAISS file failed: %s", e)
            ok = False
        for f in faiss_findings:
            f.repaired = ok and (f.repair != "remove it if it is an empty folder (otherwise move it away yourself)"
                                 or not any(p.is_dir() for p in folder.glob("faiss-*.index")))


def _embedder_for(store: Store):
    from .embed import make_embedder, minilm_variant

    return make_embedder(minilm_variant(store.embedder_name))


def _drop_orphans(db: sqlite3.Connection) -> None:
    db.execute("BEGIN IMMEDIATE")
    try:
        gen = int(_meta(db, "generation") or 0) + 1
        ids = [r[0] for r in db.execute(
            "SELECT c.id FROM chunks c LEFT JOIN articles a ON a.id = c.article_id WHERE a.id IS NULL")]
        db.executemany("DELETE FROM chunks_fts WHERE rowid = ?", [(i,) for i in ids])
        db.executemany("INSERT INTO removed_chunks(chunk_id, gen) VALUES (?, ?)", [(i, gen) for i in ids])
        db.executemany("DELETE FROM chunks WHERE id = ?", [(i,) for i in ids])
        db.execute("UPDATE meta SET value = ? WHERE key = 'generation'", (str(gen),))
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise


def _rebuild_fts(db: sqlite3.Connection) -> None:
    """Drops and re-creates the full-text index from the chunks. Its shadow tables may be the
    damaged part, and FTS5 cannot drop a table it cannot open: then the table's schema entry is
    removed directly (the documented way to drop a broken virtual table) and its shadow tables
    dropped as plain tables."""
    from .store import _SCHEMA

    try:
        db.execute("DROP TABLE IF EXISTS chunks_fts")
    except sqlite3.DatabaseError as e:
        log.info("dropping the damaged full-text table through its schema entry (%s)", e)
        version = db.execute("PRAGMA schema_version").fetchone()[0]
        db.execute("PRAGMA writable_schema = ON")
        try:
            db.execute("BEGIN IMMEDIATE")
            db.execute("DELETE FROM sqlite_master WHERE type = 'table' AND name = 'chunks_fts'")
            db.execute(f"PRAGMA schema_version = {int(version) + 1}")
            db.execute("COMMIT")
        finally:
            db.execute("PRAGMA writable_schema = OFF")
    db.execute("BEGIN IMMEDIATE")
    try:
        for t in DERIVED_TABLES[1:]:
            db.execute(f"DROP TABLE IF EXISTS {t}")
        create = _SCHEMA[_SCHEMA.index("CREATE VIRTUAL TABLE"):]
        db.execute(create.strip().rstrip(";"))
        db.execute("INSERT INTO chunks_fts(rowid, text, title) "
                   "SELECT c.id, c.text, a.title FROM chunks c JOIN articles a ON a.id = c.article_id")
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise


def _changed_vectors(store: Store, updates: list[tuple[int, bytes, tuple[str, int, int] | None]]) -> None:
    """Stores new vectors (and texts with offsets) for existing chunk ids as a new generation, so
    that the FAISS index follows: each id is logged as removed and re-added in that generation."""
    with store._lock, store._tx():
        gen = store.generation + 1
        for cid, blob, span in updates:
            if span is not None:
                store.db.execute('UPDATE chunks SET text = ?, start = ?, "end" = ? WHERE id = ?', (*span, cid))
            store.db.execute("UPDATE chunks SET embedding = ?, gen = ? WHERE id = ?", (blob, gen, cid))
            store.db.execute("INSERT INTO removed_chunks(chunk_id, gen) VALUES (?, ?)", (cid, gen))
        store._set_meta("generation", gen)


def _reembed(store: Store, embedder, ids: list[int]) -> None:
    from .chunk import embedding_text

    updates = []
    for s in range(0, len(ids), 256):
        chunks = store.chunks(ids[s: s + 256])
        part = [chunks[i] for i in ids[s: s + 256] if i in chunks]
        texts = [embedding_text(store.article(c.article_id), c) for c in part]
        vecs = np.ascontiguousarray(embedder.encode(texts), dtype=np.float32)
        updates += [(c.id, v.tobytes(), None) for c, v in zip(part, vecs)]
    _changed_vectors(store, updates)


def _rederive_chunks(store: Store, embedder) -> None:
    """Chunks whose text does not match their article at their offsets take the article's text
    there (offsets clamped to it) and a new vector."""
    from .chunk import embedding_text
    from .models import Chunk

    rows = store.db.execute(
        'SELECT c.id, c.article_id, c.ordinal, c.start, c."end" FROM chunks c JOIN articles a ON a.id = c.article_id '
        'WHERE c.start < 0 OR c."end" > length(a.text) OR c.start >= c."end" '
        'OR substr(a.text, c.start + 1, c."end" - c.start) IS NOT c.text'
    ).fetchall()
    updates = []
    for cid, aid, ordinal, start, end in rows:
        article = store.article(aid)
        start = max(0, min(start, len(article.text) - 1))
        end = max(start + 1, min(end, len(article.text)))
        chunk = Chunk(cid, aid, ordinal, article.text[start:end], start, end)
        vec = np.ascontiguousarray(embedder.encode([embedding_text(article, chunk)]), dtype=np.float32)[0]
        updates.append((cid, vec.tobytes(), (chunk.text, start, end)))
    _changed_vectors(store, updates)
