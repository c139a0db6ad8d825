"""The store under concurrent writers, damaged files and awkward folders: a clear error or a
transparent recovery, never a traceback and never a silently wrong answer (unit lane: real
SQLite and FAISS, the hash embedder)."""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path

import numpy as np
import pytest

from rag import Assistant
from rag.chunk import chunk_article
from rag.errors import IndexAccessError, IndexCorruptError
from rag.ingest import content_hash
from rag.models import Article
from rag.store import NewArticle, Store
from tests.conftest import SEEDS
from tests.fakes import HashEmbedder

TEXT = "Riverside Wanderers have signed goalkeeper Tomas Brandt from Eastfield Rovers for £3m."


def new_article(source: str, text: str = TEXT, aid: str = "brandt") -> NewArticle:
    emb = HashEmbedder()
    a = Article(aid, "Wanderers sign keeper", "2005-01-02", source, text)
    chunks = chunk_article(a)
    return NewArticle(a, content_hash(text), chunks, emb.encode([c.text for c in chunks]))


# ------------------------------------------------------------------ two writers


def test_a_batch_planned_before_another_writer_stored_the_same_text(tmp_path):
    one = Store(tmp_path / "idx", embedder_name="hash-64")
    two = Store(tmp_path / "idx", embedder_name="hash-64")
    # both planned "added" (nothing stored yet); the second process commits first
    assert two.write_batch([new_article("/a/x.txt")]) == {"/a/x.txt": "brandt"}
    assert one.write_batch([new_article("/a/x.txt")]) == {}  # same source, same text: left out
    assert one.write_batch([new_article("/b/y.txt")]) == {}  # same text under another source
    assert one.count() == two.count() == (1, 1)
    assert one.faiss_index().ntotal == 1


def test_a_changed_version_stored_meanwhile_is_replaced(tmp_path):
    one = Store(tmp_path / "idx", embedder_name="hash-64")
    two = Store(tmp_path / "idx", embedder_name="hash-64")
    two.write_batch([new_article("/a/x.txt", TEXT + " He is 27.")])
    assert one.write_batch([new_article("/a/x.txt")]) == {"/a/x.txt": "brandt"}
    assert one.count() == (1, 1)
    assert one.article("brandt").text == TEXT


def test_the_indexer_reports_what_another_writer_stored(tmp_path, monkeypatch):
    (tmp_path / "x.txt").write_text(f"Wanderers sign keeper\n\n{TEXT}", encoding="utf-8")
    a = Assistant(tmp_path / "idx", embedder=HashEmbedder(), seed=False, quiet=True)
    b = Assistant(tmp_path / "idx", embedder=HashEmbedder(), seed=False, quiet=True)
    real = a.store.write_batch

    def other_writer_first(items, **kw):  # b commits between a's planning and a's write
        b.add([tmp_path / "x.txt"])
        return real(items, **kw)

    monkeypatch.setattr(a.store, "write_batch", other_writer_first)
    item = a.add([tmp_path / "x.txt"]).items[0]
    assert (item.status, item.article_id) == ("skipped", "x")
    assert item.reason == "unchanged (stored by another writer meanwhile)"
    assert a.store.count()[0] == 1


# ------------------------------------------------------------------ FAISS integrity


def test_damaged_vectors_in_the_faiss_file_are_detected_and_rebuilt(fake_assistant, caplog):
    store = fake_assistant.store
    fake_assistant.articles()
    q = HashEmbedder().encode(["When does Alonso's contract expire?"])[0]
    before = store.dense_search(q, 5)
    path = store._faiss_path(store.generation)
    data = bytearray(path.read_bytes())
    # overwrite the vectors in place: same size, header and ids intact
    vec_bytes = store.count()[1] * store.dimension * 4
    start = 100  # past the header, inside the vectors
    rng = np.random.default_rng(0)
    noise = rng.standard_normal(vec_bytes // 8).astype(np.float32).tobytes()
    data[start:start + len(noise)] = noise
    path.write_bytes(bytes(data))
    reopened = Store(fake_assistant.index_dir, embedder_name=store.embedder_name)
    with caplog.at_level(logging.WARNING, logger="rag.store"):
        after = reopened.dense_search(q, 5)
    assert [i for i, _ in after] == [i for i, _ in before]
    assert any("checksum does not match" in r.getMessage() for r in caplog.records)
    # and the rebuilt file is trusted again on the next open
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="rag.store"):
        Store(fake_assistant.index_dir, embedder_name=store.embedder_name).dense_search(q, 5)
    assert not caplog.records


def test_a_folder_where_the_faiss_file_belongs(tmp_path, fake_embedder, caplog):
    d = tmp_path / "idx"
    d.mkdir()
    (d / "faiss-1.index").mkdir()  # the file the first add will want to write
    a = Assistant(d, embedder=fake_embedder, seed=False, quiet=True)
    with caplog.at_level(logging.WARNING, logger="rag.store"):
        report = a.add([SEEDS])
    assert report.added == 2
    assert any("cannot write the FAISS file" in r.getMessage() for r in caplog.records)
    assert not a.ask("When does Alonso's contract expire?").abstained
    a.close()
    b = Assistant(d, embedder=fake_embedder, quiet=True)  # reopens: rebuilt in memory
    assert not b.ask("When does Alonso's contract expire?").abstained


# ------------------------------------------------------------------ SQLite errors


def test_sqlite_errors_become_one_line_errors(tmp_path):
    from rag.store import sqlite_error

    where = tmp_path / "rag.sqlite3"
    assert isinstance(sqlite_error(sqlite3.OperationalError("attempt to write a readonly database"), where),
                      IndexAccessError)
    assert isinstance(sqlite_error(sqlite3.OperationalError("database or disk is full"), where), IndexAccessError)
    assert isinstance(sqlite_error(sqlite3.OperationalError("disk I/O error"), where), IndexAccessError)
    assert isinstance(sqlite_error(sqlite3.OperationalError("database is locked"), where), IndexAccessError)
    assert isinstance(sqlite_error(sqlite3.DatabaseError("database disk image is malformed"), where),
                      IndexCorruptError)
    assert isinstance(sqlite_error(sqlite3.OperationalError("vtable constructor failed: chunks_fts"), where),
                      IndexCorruptError)
    assert sqlite_error(sqlite3.OperationalError("fts5: syntax error near \"\""), where) is None
    assert sqlite_error(sqlite3.IntegrityError("UNIQUE constraint failed: articles.hash"), where) is None


def test_a_damaged_fts_table_is_an_error_not_an_empty_result(fake_assistant, fake_embedder):
    fake_assistant.articles()
    d = fake_assistant.index_dir
    fake_assistant.close()
    db = sqlite3.connect(d / "rag.sqlite3")
    db.execute("UPDATE chunks_fts_config SET v = 99 WHERE k = 'version'")  # as a damaged page reads
    db.commit()
    db.close()
    a = Assistant(d, embedder=fake_embedder, quiet=True)
    with pytest.raises(IndexCorruptError, match="the index is damaged .*invalid fts5.*rag index check"):
        a.ask("When does Alonso's contract expire?")
    with pytest.raises(IndexCorruptError):
        a.stats()


def test_index_folder_that_cannot_be_created(tmp_path, fake_embedder):
    (tmp_path / "file").write_text("x")
    with pytest.raises(IndexAccessError, match="cannot create the index folder"):
        Assistant(tmp_path / "file" / "idx", embedder=fake_embedder, quiet=True)


# ------------------------------------------------------------------ the embedder fails on first use


class BrokenEmbedder(HashEmbedder):
    def encode(self, texts, *, batch_size=64):
        raise OSError("model files missing")


def test_a_failed_first_add_leaves_no_index_folder(tmp_path):
    d = tmp_path / "new-index"
    a = Assistant(d, embedder=BrokenEmbedder(), seed=False, quiet=True)
    with pytest.raises(OSError):
        a.add([SEEDS])
    assert not d.exists()
    with pytest.raises(IndexAccessError, match="make a new Assistant"):
        a.ask("anything?")


def test_a_failed_add_keeps_an_existing_index(fake_assistant, fake_embedder, tmp_path):
    fake_assistant.articles()
    d = fake_assistant.index_dir
    fake_assistant.close()
    a = Assistant(d, embedder=BrokenEmbedder(name=fake_embedder.name), quiet=True)
    (tmp_path / "new.txt").write_text("Brand new article about a keeper signing.", encoding="utf-8")
    with pytest.raises(OSError):
        a.add([tmp_path / "new.txt"])
    assert (d / "rag.sqlite3").exists() and a.store.count()[0] == 2


def _damage(assistant, table: str) -> Path:
    """The index folder of ``assistant`` (closed) with 'June 2024' changed to 'July 2031' in
    ``table``'s text: a damaged row of the same length."""
    assistant.articles()
    d = assistant.index_dir
    assistant.close()
    db = sqlite3.connect(d / "rag.sqlite3")
    db.execute(f"UPDATE {table} SET text = replace(text, 'June 2024', 'July 2031')")
    db.commit()
    db.close()
    return d


def test_a_passage_that_is_not_its_articles_text_is_reported(fake_assistant, fake_embedder):
    a = Assistant(_damage(fake_assistant, "chunks"), embedder=fake_embedder, quiet=True)
    with pytest.raises(IndexCorruptError, match="does not match the article's text"):
        a.ask("When does Alonso's contract expire?")


def test_damaged_article_text_is_reported_not_quoted(fake_assistant, fake_embedder):
    from rag.integrity import check_index

    d = _damage(fake_assistant, "articles")  # damaged bytes inside the article's text
    a = Assistant(d, embedder=fake_embedder, quiet=True)
    with pytest.raises(IndexCorruptError, match="the text of article '002_0df7e0b7cc0cc3af' is damaged"):
        a.ask("When does Alonso's contract expire?")
    report = check_index(d)
    assert any(f.area == "articles" and f.repair is None for f in report.findings), report.text()
