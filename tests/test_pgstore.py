"""What only the PostgreSQL store has: its schema, its errors, the command line and the chat with
a ``postgresql://`` index, copying between stores, a read replica, and BM25 that ranks as the
SQLite store's FTS5 does. Everything runs against real servers the tests start.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import threading
from pathlib import Path

import numpy as np
import pytest

from rag import Assistant
from rag.errors import IndexCorruptError
from rag.feedstore import EntryRecord, feed_store_for
from rag.lexical import LexicalQuery
from rag.pgstore import PgStore
from rag.retrieve import analyse, lexical_query
from rag.stores import open_store
from rag.transfer import copy_index, export_page
from tests.conftest import SEEDS
from tests.conftest import run_cli as run
from tests.fakes import HashEmbedder
from tests.pg_server import PASSWORD, LocalPostgres, free_port, install_without_pgvector
from tests.test_crash import write_corpus

pytestmark = pytest.mark.integration


# ------------------------------------------------------------------ schema


def test_schema_is_created_once_versioned_and_indexed(pg_dsn):
    stores = []

    def open_one():
        stores.append(PgStore(pg_dsn, embedder_name="hash-64"))

    threads = [threading.Thread(target=open_one) for _ in range(4)]  # four processes' worth at once
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(stores) == 4
    store = stores[0]
    store.check_dimension(64)
    with store._read() as conn:
        assert conn.execute("SELECT value FROM rag_meta WHERE key = 'schema_version'").fetchone() == ("1",)
        indexes = dict(conn.execute("SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'chunks'").fetchall())
        generated = conn.execute("SELECT attgenerated FROM pg_attribute WHERE attrelid = 'chunks'::regclass "
                                 "AND attname = 'tsv'").fetchone()[0]
        col = conn.execute("SELECT format_type(atttypid, atttypmod) FROM pg_attribute "
                           "WHERE attrelid = 'chunks'::regclass AND attname = 'embedding'").fetchone()[0]
    assert "USING hnsw (embedding vector_ip_ops)" in indexes["chunks_embedding"]
    assert "USING gin (tsv)" in indexes["chunks_tsv"]
    assert generated == "s" and col == "vector(64)"
    for s in stores:
        s.close()
    with store._connect(pg_dsn) as conn:
        conn.execute("UPDATE rag_meta SET value = '99' WHERE key = 'schema_version'")
    with pytest.raises(IndexCorruptError, match="schema version 99 is newer than this program"):
        PgStore(pg_dsn, embedder_name="hash-64")


def test_counters_match_the_rows_after_updates_and_removals(pg_dsn, tmp_path):
    a = Assistant(pg_dsn, embedder=HashEmbedder(), seed=False, quiet=True)
    corpus = tmp_path / "corpus"
    write_corpus(corpus)
    a.add([corpus])
    for f in sorted(corpus.iterdir())[:20]:
        f.write_text(f.read_text() + "\nA late change to the story.\n", encoding="utf-8")
    a.add([corpus])
    for info in a.articles()[:15]:
        a.remove(info.id)
    with a.store._read() as conn:
        real = conn.execute("SELECT (SELECT count(*) FROM articles), (SELECT count(*) FROM chunks), "
                            "(SELECT sum(tokens) FROM chunks)").fetchone()
    _, n_articles, n_chunks, n_tokens = a.store._state()
    assert (n_articles, n_chunks, n_tokens) == tuple(int(x) for x in real)
    a.close()


# ------------------------------------------------------------------ errors


def test_errors_name_the_server_never_the_password(pg_server, pg_dsn, capsys, tmp_path, fake_cli):
    port = free_port()
    cases = [
        (f"postgresql://rag:{PASSWORD}@127.0.0.1:{port}/rag", f"postgresql://rag@127.0.0.1:{port}/rag: "
         "the server cannot be reached"),
        (pg_server.dsn("postgres", password="not-" + PASSWORD), "wrong password for user 'rag'"),
        (pg_server.dsn("nosuchdb"), "the database 'nosuchdb' does not exist"),
    ]
    for dsn, expected in cases:
        code, out, err = run(["index", "list", "--index", dsn], capsys)
        assert code == 2 and out == "", err
        assert err.count("\n") == 1 and err.startswith("rag: error: index postgresql://rag@127.0.0.1:"), err
        assert expected in err and PASSWORD not in err, err
    # an index built with one embedder refuses another
    built = PgStore(pg_dsn, embedder_name="hash-a")  # the CLI's embedder here is the hash-64 one
    built.check_dimension(64)
    built.close()
    code, _, err = run(["index", "list", "--index", pg_dsn], capsys)
    assert code == 2 and "was built with embedder 'hash-a', not 'hash-64'" in err and PASSWORD not in err


def test_an_unreachable_replica_is_named_as_such(pg_dsn, monkeypatch, capsys, fake_cli):
    port = free_port()
    monkeypatch.setenv("RAG_INDEX_READ", f"postgresql://rag:{PASSWORD}@127.0.0.1:{port}/rag")
    code, out, err = run(["index", "list", "--index", pg_dsn], capsys)
    assert code == 2 and out == ""
    assert err.startswith(f"rag: error: read replica postgresql://rag@127.0.0.1:{port}/rag: the server cannot be reached")
    assert PASSWORD not in err and err.count("\n") == 1


def test_a_server_without_pgvector_is_a_clear_error(capsys, fake_cli):
    root = Path(tempfile.mkdtemp(prefix="rag-pg-novector-"))  # reachable by the server's user
    try:
        with LocalPostgres(install=install_without_pgvector(root)) as bare:
            bare.create_database("rag")
            code, out, err = run(["index", "stats", "--index", bare.dsn("rag")], capsys)
    finally:
        shutil.rmtree(root)
    assert code == 2 and out == ""
    assert err.strip() == (f"rag: error: index postgresql://rag@127.0.0.1:{bare.port}/rag: the pgvector extension "
                           "is not installed on the server (install it, e.g. the postgresql-16-pgvector package, "
                           "or use a server that has it)")


# ------------------------------------------------------------------ command line and chat


def test_cli_add_list_stats_ask_rm(pg_dsn, capsys, fake_cli):
    code, out, err = run(["index", "add", str(SEEDS), "--index", pg_dsn], capsys)
    assert code == 0 and "2 added, 0 updated, 0 skipped, 0 failed" in out, err
    code, out, _ = run(["index", "list", "--index", pg_dsn], capsys)
    assert "002_0df7e0b7cc0cc3af\t2023-07-25" in out and "2 articles" in out
    code, out, _ = run(["index", "stats", "--index", pg_dsn], capsys)
    assert "index:     postgresql://rag@127.0.0.1:" in out and "vectors:   pgvector HNSW" in out
    assert PASSWORD not in out
    code, out, _ = run(["ask", "When does Alonso's contract expire?", "--index", pg_dsn, "--json"], capsys)
    answer = json.loads(out)
    assert "June 2024" in answer["text"] and answer["citations"][0]["article_id"] == "002_0df7e0b7cc0cc3af"
    code, out, _ = run(["index", "rm", "002_0df7e0b7cc0cc3af", "--index", pg_dsn], capsys)
    assert code == 0 and "removed" in out
    code, out, _ = run(["index", "list", "--index", pg_dsn, "--json"], capsys)
    assert [r["id"] for r in json.loads(out)] == ["000_a976052e113d48e1"]


def test_rag_index_env_and_first_use_seeding(pg_dsn, monkeypatch, fake_embedder):
    monkeypatch.setenv("RAG_INDEX", pg_dsn)
    a = Assistant(embedder=fake_embedder, seed=SEEDS, quiet=True)
    assert a.index_dir == pg_dsn
    assert len(a.articles()) == 2  # a new database is seeded on first use, as a new folder is
    a.close()


def test_chat_backend_keeps_uploads_locally_and_hides_the_password(pg_dsn, tmp_path, monkeypatch, fake_embedder):
    from ui.backend import ChatBackend

    monkeypatch.setenv("RAG_CACHE", str(tmp_path / "cache"))
    a = Assistant(pg_dsn, embedder=fake_embedder, seed=False, quiet=True)
    backend = ChatBackend(a)
    assert backend.uploads_dir.is_relative_to(tmp_path / "cache" / "uploads")
    assert PASSWORD not in backend.index_label and backend.index_label.startswith("postgresql://rag@127.0.0.1:")
    src = tmp_path / "in" / "quill.txt"
    src.parent.mkdir()
    src.write_text("Rovers sign Quill\n\nWrexham Rovers signed goalkeeper Tomasz Quill until June 2027.\n")
    result = backend.add_uploads([src])
    assert [i.status for i in result.report.items] == ["added"]
    assert (backend.uploads_dir / "quill.txt").exists()
    assert [x.id for x in a.articles()] == ["quill"]
    a.close()


# ------------------------------------------------------------------ copying between stores


def _contents(store):
    out, after = {}, None
    while page := export_page(store, after, 50):
        after = page[-1].article.id
        for item in page:
            out[item.article.source] = (item.article, item.content_hash,
                                        [(c.ordinal, c.text, c.start, c.end) for c in item.chunks], item.vectors)
    return out


def test_copy_sqlite_to_postgresql_and_back_without_embedding(pg_dsn, tmp_path, capsys):
    corpus = tmp_path / "corpus"
    write_corpus(corpus)
    src = tmp_path / "src"
    a = Assistant(src, embedder=HashEmbedder(dim=48, name="hash-48"), seed=False, quiet=True)
    a.add([corpus, SEEDS])
    feed = "http://127.0.0.1:9/football/rss.xml"  # followed feeds travel with the index
    entry = EntryRecord("entry-1", "http://127.0.0.1:9/football/1.html", "2024-03-01", a.articles()[0].id, "indexed")
    a.feeds.store.add_feed(feed, "Test Sport")
    a.feeds.store.record_check(feed, status="updated", etag='"v7"', last_modified="Fri, 01 Mar 2024 09:00:00 GMT")
    a.feeds.store.put_entries(feed, [entry])
    a.close()
    # a first copy stopped part-way: only some articles made it
    code, out, err = run(["index", "copy", str(src), pg_dsn], capsys)
    assert code == 0 and out.startswith("242 copied, 0 updated, 0 already there"), err
    removed = PgStore(pg_dsn, embedder_name="hash-48")
    for info in removed.list_articles()[:100]:
        removed.remove(info.id)
    removed.close()
    code, out, _ = run(["index", "copy", str(src), pg_dsn, "--json"], capsys)
    assert json.loads(out) | {"seconds": 0} == {"copied": 100, "updated": 0, "skipped": 142, "feeds": 1,
                                                 "chunks": json.loads(out)["chunks"], "seconds": 0}
    back = tmp_path / "back"
    report = copy_index(pg_dsn, back)
    assert (report.copied, report.skipped) == (242, 0)

    stores = [open_store(src, embedder_name="hash-48", create=False), PgStore(pg_dsn, embedder_name="hash-48"),
              open_store(back, embedder_name="hash-48", create=False)]
    contents = [_contents(s) for s in stores]
    assert len(contents[0]) == 242
    for other in contents[1:]:
        assert other.keys() == contents[0].keys()
        for source, (art, h, chunks, vecs) in contents[0].items():
            art2, h2, chunks2, vecs2 = other[source]
            assert (art2.title, art2.date, art2.text, h2, chunks2) == (art.title, art.date, art.text, h, chunks)
            assert np.array_equal(vecs2, vecs)  # the very same float32 vectors
    st = stores[2].stats()
    assert (st.embedder, st.dimension, st.chunks) == ("hash-48", 48, stores[0].count()[1])
    for s in stores[1:]:
        fs = feed_store_for(s)
        (info,) = fs.feeds()
        assert (info.url, info.title, info.etag, info.last_modified, info.status) == (
            feed, "Test Sport", '"v7"', "Fri, 01 Mar 2024 09:00:00 GMT", "updated")
        assert fs.entries(feed) == {"entry-1": entry}
        fs.close()
    # the copy answers as the original does
    answers = []
    for index in (src, pg_dsn, back):
        x = Assistant(index, embedder=HashEmbedder(dim=48, name="hash-48"), seed=False, quiet=True)
        answers.append(x.ask("How much was the fee for Player017 Zandor?").text)
        x.close()
    assert answers[0] == answers[1] == answers[2] and "18 million" in answers[0]
    for s in stores:
        s.close()
    code, _, err = run(["index", "copy", str(tmp_path / "nothing"), pg_dsn], capsys)
    assert code == 2 and "no index here" in err


# ------------------------------------------------------------------ ranking as the SQLite store ranks


def test_bm25_ranks_as_fts5_does(pg_dsn, tmp_path):
    corpus = tmp_path / "corpus"
    write_corpus(corpus)
    emb = HashEmbedder()
    stores = []
    for index in (tmp_path / "idx", pg_dsn):
        a = Assistant(index, embedder=emb, seed=False, quiet=True)
        a.add([corpus, SEEDS])
        stores.append(a)
    questions = ["How much was the fee for Player017 Zandor?", "When does Alonso's contract expire?",
                 "Which club did Riverside Rovers sign a striker from?", "Who manages Real Madrid?",
                 "What did manager number 12 say about training on day 3?", "Lakeside Athletic striker aged 20"]
    for q in questions:
        query = lexical_query(analyse(q))
        hits = [[(a.store.article(a.store.chunks([c])[c].article_id).source, s) for c, s in
                 a.store.lexical_search(query, 10)] for a in stores]
        assert len(hits[0]) == len(hits[1]) > 0, q
        assert [h[0] for h in hits[1][:3]] == [h[0] for h in hits[0][:3]], q
        assert np.allclose([h[1] for h in hits[1]], [h[1] for h in hits[0]], rtol=1e-3), (q, hits)
    bridge = LexicalQuery(("fee", "contract"), ("player017 zandor",))
    hits = [[(a.store.chunks([c])[c].article_id, s) for c, s in a.store.lexical_search(bridge, 5)] for a in stores]
    assert [h[0] for h in hits[1]] == [h[0] for h in hits[0]] == ["signing-017"]
    assert np.allclose([h[1] for h in hits[1]], [h[1] for h in hits[0]], rtol=1e-3)
    for a in stores:
        a.close()


# ------------------------------------------------------------------ a read replica


def test_questions_go_to_the_replica_and_writes_to_the_primary(pg_server, pg_dsn, monkeypatch, fake_embedder):
    PgStore(pg_dsn, embedder_name=fake_embedder.name).close()  # the schema, before the replica copies it
    with LocalPostgres(replica_of=pg_server) as replica:
        db = pg_dsn.rsplit("/", 1)[1]
        monkeypatch.setenv("RAG_INDEX_READ", replica.dsn(db))
        a = Assistant(pg_dsn, embedder=fake_embedder, seed=False, quiet=True)
        with a.store._read() as conn:
            assert conn.execute("SELECT pg_is_in_recovery()").fetchone() == (True,)
        with a.store._write() as conn:
            assert conn.execute("SELECT pg_is_in_recovery()").fetchone() == (False,)
        a.add([SEEDS])  # on the primary; the replica follows by streaming
        for _ in range(200):
            if a.store.count()[0] == 2:
                break
            threading.Event().wait(0.05)
        answer = a.ask("When does Alonso's contract expire?")
        assert "June 2024" in answer.text
        assert a.stats().path == f"postgresql://rag@127.0.0.1:{pg_server.port}/{db}"  # named by its primary
        assert a.stats().articles == 2
        a.close()


def test_bm25_posting_budget_on_a_large_index(pg_dsn, tmp_path):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for i in range(60):
        extra = " The referee was Zandorf." if i in (7, 8) else ""
        (corpus / f"m{i:02d}.txt").write_text(f"Match {i}\n\nThe league match ended in a draw.{extra}\n")
    a = Assistant(pg_dsn, embedder=HashEmbedder(), seed=False, quiet=True)
    a.add([corpus])
    store = a.store
    whole = {store.chunks([c])[c].article_id for c, _ in store.lexical_search(LexicalQuery(("league", "zandorf")), 100)}
    assert len(whole) == 60  # under the budget: every match is scored
    store.lexical_budget = 10  # now the index counts as large
    kept = {store.chunks([c])[c].article_id for c, _ in store.lexical_search(LexicalQuery(("league", "zandorf")), 100)}
    assert kept == {"m07", "m08"}  # the rare word alone, within the budget
    assert store.lexical_search(LexicalQuery(("league", "draw")), 100) == []  # only words every passage has
    a.close()
