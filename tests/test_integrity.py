"""`rag index check`: each kind of damage is found and named, and `--repair` rebuilds what can be
rebuilt from the stored articles (unit lane: real SQLite and FAISS, the hash embedder)."""

from __future__ import annotations

import shutil
import sqlite3

import numpy as np
import pytest

from rag import Assistant
from rag.cli import main
from rag.integrity import check_index
from tests.conftest import SEEDS
from tests.fakes import HashEmbedder

QUESTION = "When does Alonso's contract expire?"


@pytest.fixture
def index(tmp_path):
    d = tmp_path / "idx"
    a = Assistant(d, embedder=HashEmbedder(), seed=SEEDS, quiet=True)
    a.articles()
    answer = a.ask(QUESTION)
    a.close()
    return d, answer.text


def sql(d, *statements):
    db = sqlite3.connect(d / "rag.sqlite3")
    for s in statements:
        db.execute(s)
    db.commit()
    db.close()


def answers(d) -> str:
    a = Assistant(d, embedder=HashEmbedder(), quiet=True)
    try:
        return a.ask(QUESTION).text
    finally:
        a.close()


def repaired(d, area: str, words: str, expected: str, also: tuple[str, ...] = ()) -> None:
    before = check_index(d)
    assert not before.ok
    assert sorted(f.area for f in before.findings) == sorted([area, *also]), before.text()
    assert any(words in f.problem for f in before.findings if f.area == area), before.text()
    after = check_index(d, repair=True, embedder=HashEmbedder())
    assert after.ok, after.text()
    again = check_index(d)
    assert again.ok and not again.findings, again.text()
    assert answers(d) == expected


def test_a_healthy_index(index):
    d, _ = index
    report = check_index(d)
    assert report.ok and report.articles == 2 and report.chunks > 2
    assert "ok: no problems found" in report.text()
    assert "SQLite integrity_check" in report.checked and "FTS5 integrity-check" in report.checked


def test_fts_rows_missing(index):
    d, expected = index
    sql(d, "DELETE FROM chunks_fts WHERE rowid IN (SELECT rowid FROM chunks_fts LIMIT 2)")
    repaired(d, "fts", "2 chunks are missing from the full-text index", expected)


def test_fts_shadow_table_damaged(index):
    d, expected = index
    sql(d, "UPDATE chunks_fts_config SET v = 99 WHERE k = 'version'")
    repaired(d, "fts", "invalid fts5 file format", expected)


def test_faiss_vectors_damaged(index):
    d, expected = index
    f = sorted(d.glob("faiss-*.index"))[-1]
    data = bytearray(f.read_bytes())
    data[200:600] = np.random.default_rng(1).standard_normal(100).astype(np.float32).tobytes()
    f.write_bytes(bytes(data))
    repaired(d, "faiss", "does not match the checksum", expected)


def test_stored_vector_damaged(index):
    d, expected = index
    sql(d, "UPDATE chunks SET embedding = zeroblob(256) WHERE id = (SELECT min(id) FROM chunks)",
        "UPDATE chunks SET embedding = substr(embedding, 1, 100) WHERE id = (SELECT max(id) FROM chunks)")
    repaired(d, "vectors", "2 stored vectors are damaged", expected)


def test_chunk_text_not_matching_its_article(index):
    d, expected = index
    sql(d, "UPDATE chunks SET text = 'Garbled words' WHERE id = (SELECT min(id) FROM chunks)")
    repaired(d, "chunks", "1 chunks do not match their article's text", expected, also=("fts",))


def test_chunks_without_their_article(index):
    d, expected = index
    sql(d, "PRAGMA foreign_keys = OFF",
        "INSERT INTO chunks(article_id, ordinal, start, \"end\", text, embedding, gen) "
        "SELECT 'gone', 0, 0, 4, 'text', embedding, 0 FROM chunks LIMIT 1")
    report = check_index(d)
    assert {f.area for f in report.findings} >= {"chunks"}
    assert check_index(d, repair=True, embedder=HashEmbedder()).ok
    assert check_index(d).ok
    assert answers(d) == expected


def test_a_folder_in_place_of_the_faiss_file(index):
    d, expected = index
    f = sorted(d.glob("faiss-*.index"))[-1]
    f.unlink()
    f.mkdir()
    report = check_index(d)
    assert any("is not a file" in x.problem for x in report.findings)
    assert check_index(d, repair=True, embedder=HashEmbedder()).ok
    assert f.is_file() and check_index(d).ok


def test_damaged_article_pages_cannot_be_rebuilt(index, tmp_path):
    d, _ = index
    db = sqlite3.connect(d / "rag.sqlite3")
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    root = db.execute("SELECT rootpage FROM sqlite_master WHERE name = 'articles'").fetchone()[0]
    size = db.execute("PRAGMA page_size").fetchone()[0]
    db.close()
    with open(d / "rag.sqlite3", "r+b") as fh:
        fh.seek((root - 1) * size + 8)
        fh.write(b"\xff" * 64)
    report = check_index(d)
    assert not report.ok
    bad = [f for f in report.findings if f.area == "sqlite"]
    assert bad and bad[0].repair is None
    assert "index the source files again into a new folder" in report.text()
    assert not check_index(d, repair=True, embedder=HashEmbedder()).ok


def test_the_command(index, capsys, monkeypatch):
    d, _ = index
    assert main(["index", "check", "--index", str(d)]) == 0
    assert "ok: no problems found" in capsys.readouterr().out
    sql(d, "DELETE FROM chunks_fts WHERE rowid IN (SELECT rowid FROM chunks_fts LIMIT 1)")
    assert main(["index", "check", "--index", str(d)]) == 2
    out = capsys.readouterr().out
    assert "- fts: 1 chunks are missing from the full-text index" in out
    assert "--repair will rebuild the full-text index from the stored chunks" in out
    assert main(["index", "check", "--index", str(d), "--repair"]) == 0
    assert "repaired: rebuild the full-text index" in capsys.readouterr().out
    assert main(["index", "check", "--index", str(d / "nothing")]) == 2
    assert "no index here" in capsys.readouterr().err


def test_the_command_on_a_postgresql_index_points_to_the_servers_tools(capsys, monkeypatch):
    """No folder to check: one line saying so, never the password, and nothing is connected to."""
    dsn = "postgresql://rag:s3cret@127.0.0.1:1/news"
    for argv in (["index", "check", "--index", dsn], ["index", "check", "--repair"]):
        monkeypatch.setenv("RAG_INDEX", dsn)
        assert main(argv) == 2
        out, err = capsys.readouterr()
        assert out == "" and err == ("rag: error: postgresql://rag@127.0.0.1:1/news: `rag index check` checks index "
                                     "folders; a PostgreSQL index is checked with the server's own tools "
                                     "(amcheck, pg_dump)\n")


def test_check_works_on_a_read_only_copy_of_the_command_line(index, tmp_path):
    d, _ = index
    copy = tmp_path / "copy"
    shutil.copytree(d, copy)
    assert check_index(copy).ok
