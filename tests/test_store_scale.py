"""The dense index at scale: type chosen by size, recall of the approximate index, memory-mapped
loading, incremental add and remove, catching up from SQLite, and damaged files.

Real SQLite and FAISS with small synthetic vectors; the size threshold is lowered through
``FaissConfig`` so that the approximate index appears at a few hundred vectors.
"""

from __future__ import annotations

import sqlite3

import numpy as np
import pytest

from rag.errors import IndexCorruptError
from rag.models import Article, Chunk
from rag.faisscache import FaissConfig, nlist_for
from rag.store import NewArticle, Store

DIM = 32
SMALL = FaissConfig(exact_max=200, checkpoint_min=50)


def unit(rng: np.random.Generator, n: int) -> np.ndarray:
    v = rng.standard_normal((n, DIM)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def clustered(rng: np.random.Generator, n: int, centres: int = 40) -> np.ndarray:
    """Vectors around a few directions, like embeddings of texts on a few topics."""
    c = unit(rng, centres)
    v = c[rng.integers(0, centres, n)] + 0.35 * unit(rng, n)
    return (v / np.linalg.norm(v, axis=1, keepdims=True)).astype(np.float32)


def article(i: int, vecs: np.ndarray) -> NewArticle:
    text = " ".join(f"Sentence {j} of article {i}." for j in range(len(vecs)))
    chunks = [Chunk(0, f"a{i}", j, f"Sentence {j} of article {i}.", 0, 10) for j in range(len(vecs))]
    return NewArticle(Article(f"a{i}", f"Article {i}", "2024-01-01", f"/corpus/a{i}.txt", text), f"h{i}",
                      chunks, vecs)


def add_articles(store: Store, vecs: np.ndarray, *, per_article: int = 4, per_batch: int = 25,
                 first: int = 0) -> None:
    items = [article(first + i, vecs[s: s + per_article]) for i, s in enumerate(range(0, len(vecs), per_article))]
    for s in range(0, len(items), per_batch):
        store.write_batch(items[s: s + per_batch])


def stored_vectors(store: Store) -> tuple[np.ndarray, np.ndarray]:
    rows = store.db.execute("SELECT id, embedding FROM chunks ORDER BY id").fetchall()
    return (np.array([r[0] for r in rows]),
            np.stack([np.frombuffer(r[1], dtype=np.float32) for r in rows]))


def assert_consistent(store: Store) -> None:
    """FAISS holds exactly the stored chunks: same count, and every chunk finds itself."""
    ids, vecs = stored_vectors(store)
    index = store.faiss_index()
    assert index.ntotal == len(ids) == store.count()[1]
    for cid, v in list(zip(ids, vecs))[:: max(1, len(ids) // 20)]:
        assert store.dense_search(v, 1)[0][0] == cid


@pytest.fixture
def store(tmp_path):
    s = Store(tmp_path / "idx", embedder_name="synthetic", faiss=SMALL)
    yield s
    s.close()


def test_nlist_grows_with_the_square_root():
    assert nlist_for(50_000) == 1024
    assert nlist_for(1_000_000) == 4096
    assert nlist_for(10_000) == 256
    assert nlist_for(1000) == 25  # at least 39 training vectors per list


def test_index_type_follows_the_size(store):
    rng = np.random.default_rng(1)
    add_articles(store, clustered(rng, 120))
    assert store.stats().faiss_type == "IndexIDMap2"  # exact
    add_articles(store, clustered(rng, 280), first=1000)
    assert store.stats().faiss_type == "IndexIVFScalarQuantizer"
    assert_consistent(store)
    for a in store.list_articles()[:80]:  # 400 -> 80 vectors: below half the threshold
        store.remove(a.id)
    assert store.stats().faiss_type == "IndexIDMap2"
    assert_consistent(store)


def test_approximate_index_recall_against_exact_search(tmp_path):
    rng = np.random.default_rng(2)
    store = Store(tmp_path / "idx", embedder_name="synthetic", faiss=FaissConfig(exact_max=1000))
    add_articles(store, clustered(rng, 6000), per_article=10, per_batch=100)
    assert store.stats().faiss_type == "IndexIVFScalarQuantizer"
    ids, vecs = stored_vectors(store)
    queries = clustered(rng, 100)
    exact = np.argsort(-(queries @ vecs.T), axis=1)[:, :10]
    recall = np.mean([
        len({cid for cid, _ in store.dense_search(q, 10)} & set(ids[e].tolist())) / 10
        for q, e in zip(queries, exact)
    ])
    assert recall >= 0.95, recall
    store.close()


def test_files_are_memory_mapped_for_searching_and_reloaded_for_writing(store, tmp_path):
    rng = np.random.default_rng(3)
    add_articles(store, clustered(rng, 400))
    store.checkpoint()
    q = clustered(rng, 1)[0]
    expected = store.dense_search(q, 5)
    for n in (100, 400):  # a flat file and an IVF file
        reader = Store(tmp_path / f"idx{n}", embedder_name="synthetic", faiss=SMALL)
        add_articles(reader, stored_vectors(store)[1][:n])
        reader.close()
        reader = Store(tmp_path / f"idx{n}", embedder_name="synthetic", faiss=SMALL)
        reader.faiss_index()
        assert reader._faiss_mmapped
        reader.write_batch([article(9999, clustered(rng, 2))])  # a mapped index is read-only
        assert not reader._faiss_mmapped
        assert_consistent(reader)
        reader.close()
    again = Store(store.dir, embedder_name="synthetic", faiss=SMALL)
    assert again.dense_search(q, 5) == expected
    again.close()


def test_batches_do_not_rewrite_the_file(store, monkeypatch):
    rng = np.random.default_rng(4)
    add_articles(store, clustered(rng, 40))
    writes = []
    original = Store._write_faiss
    monkeypatch.setattr(Store, "_write_faiss", lambda self, index, gen: (writes.append(gen), original(self, index, gen)))
    add_articles(store, clustered(rng, 40), per_batch=2, first=100)  # 5 batches, 10 vectors each
    assert writes == []  # below checkpoint_min: the file waits for the end of the add
    assert store.checkpoint() and writes == [store.generation]
    assert not store.checkpoint()  # nothing new
    assert_consistent(store)


def test_a_new_reader_catches_up_without_rebuilding(tmp_path, monkeypatch):
    lazy = FaissConfig(exact_max=50, checkpoint_min=1000)  # large index: small changes wait
    store = Store(tmp_path / "idx", embedder_name="synthetic", faiss=lazy)
    rng = np.random.default_rng(5)
    add_articles(store, clustered(rng, 80))
    store.checkpoint()
    file_gen = store.generation
    add_articles(store, clustered(rng, 40), first=100)
    store.remove("a0")
    store.remove("a101")
    assert store._faiss_files()[0][0] == file_gen  # no checkpoint was due
    monkeypatch.setattr(Store, "_rebuild", lambda *a, **k: pytest.fail("rebuilt instead of catching up"))
    reader = Store(store.dir, embedder_name="synthetic", faiss=lazy)
    assert_consistent(reader)
    removed = [r[0] for r in store.db.execute("SELECT chunk_id FROM removed_chunks")]
    assert len(removed) == 8
    ids, vecs = stored_vectors(store)
    found = {cid for v in vecs for cid, _ in reader.dense_search(v, 3)}
    assert found <= set(ids.tolist()) and not found & set(removed)
    reader.close()
    store.close()


def test_checkpoint_prunes_the_removal_log(store):
    rng = np.random.default_rng(6)
    add_articles(store, clustered(rng, 40))
    store.remove("a1")
    store.remove("a2")
    assert store.db.execute("SELECT COUNT(*) FROM removed_chunks").fetchone()[0] == 0  # small: written at once
    assert int(store._meta("log_floor")) == store.generation


def test_a_reader_older_than_the_log_reloads_the_file(store, tmp_path):
    rng = np.random.default_rng(7)
    add_articles(store, clustered(rng, 40))
    reader = Store(store.dir, embedder_name="synthetic", faiss=SMALL)
    reader.faiss_index()
    add_articles(store, clustered(rng, 40), first=100)
    store.remove("a100")  # checkpoint: the log is pruned past the reader's generation
    assert_consistent(reader)
    reader.close()


def test_corrupt_current_file_is_rebuilt_and_a_corrupt_older_file_ignored(store):
    rng = np.random.default_rng(8)
    add_articles(store, clustered(rng, 40))
    store.checkpoint()
    path = store._faiss_path(store.generation)
    path.write_bytes(b"not a faiss index")
    reader = Store(store.dir, embedder_name="synthetic", faiss=SMALL)
    assert_consistent(reader)
    assert reader._faiss_files()[0][0] == store.generation  # written again
    reader.close()
    # an older file that is unreadable, with no file for the current generation
    add_articles(store, clustered(rng, 4), first=100)
    for g, p in store._faiss_files():
        p.write_bytes(b"\0" * 100)
    reader = Store(store.dir, embedder_name="synthetic", faiss=SMALL)
    assert_consistent(reader)
    reader.close()


def test_leftover_temp_file_of_a_crashed_write_is_ignored_and_removed(store):
    rng = np.random.default_rng(9)
    add_articles(store, clustered(rng, 40))
    leftover = store.dir / f"faiss-{store.generation + 5}.index.tmp999999999"
    leftover.write_bytes(b"half a file")
    reader = Store(store.dir, embedder_name="synthetic", faiss=SMALL)
    assert_consistent(reader)
    reader.write_batch([article(500, clustered(rng, 2))])
    reader.checkpoint()
    assert not leftover.exists()
    reader.close()


def test_damaged_sqlite_pages_give_an_error_naming_the_file(tmp_path):
    rng = np.random.default_rng(10)
    store = Store(tmp_path / "idx", embedder_name="synthetic", faiss=SMALL)
    add_articles(store, clustered(rng, 400), per_batch=100)
    store.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    store.close()
    db = tmp_path / "idx" / "rag.sqlite3"
    data = bytearray(db.read_bytes())
    page = 4096
    for p in range(2, len(data) // page):  # keep the header page, scramble the rest
        data[p * page + 8: p * page + 4000] = bytes(rng.integers(0, 256, 3992, dtype=np.uint8))
    db.write_bytes(bytes(data))
    with pytest.raises(IndexCorruptError, match=r"rag\.sqlite3: .*(damaged|cannot open)"):
        s = Store(tmp_path / "idx", embedder_name="synthetic", faiss=SMALL)
        s.count()
        s.list_articles()
        s.faiss_index()


def test_schema_1_index_is_upgraded(tmp_path):
    """An index written before the removal log existed opens, and follows changes from then on."""
    d = tmp_path / "idx"
    d.mkdir()
    db = sqlite3.connect(d / "rag.sqlite3")
    old_schema = """
    CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    CREATE TABLE articles (id TEXT PRIMARY KEY, title TEXT NOT NULL, date TEXT, source TEXT NOT NULL UNIQUE,
        text TEXT NOT NULL, hash TEXT NOT NULL UNIQUE, added_at REAL NOT NULL);
    CREATE TABLE chunks (id INTEGER PRIMARY KEY AUTOINCREMENT, article_id TEXT NOT NULL REFERENCES articles(id)
        ON DELETE CASCADE, ordinal INTEGER NOT NULL, start INTEGER NOT NULL, "end" INTEGER NOT NULL,
        text TEXT NOT NULL, embedding BLOB NOT NULL);
    CREATE VIRTUAL TABLE chunks_fts USING fts5(text, title, tokenize = 'porter unicode61 remove_diacritics 2');
    """
    db.executescript(old_schema)
    vec = unit(np.random.default_rng(11), 1)[0]
    db.executemany("INSERT INTO meta VALUES (?, ?)", [("schema_version", "1"), ("generation", "3"),
                                                      ("embedder", "synthetic"), ("dimension", str(DIM))])
    db.execute("INSERT INTO articles VALUES ('old', 'Old', NULL, '/old.txt', 'Old text.', 'h', 0)")
    db.execute("INSERT INTO chunks(article_id, ordinal, start, \"end\", text, embedding) VALUES "
               "('old', 0, 0, 9, 'Old text.', ?)", (vec.tobytes(),))
    db.commit()
    db.close()
    store = Store(d, embedder_name="synthetic", faiss=SMALL)
    assert store._meta("schema_version") == "2"
    assert_consistent(store)
    add_articles(store, clustered(np.random.default_rng(12), 8))
    store.remove("old")
    assert_consistent(store)
    store.close()


def test_bm25_over_a_large_index_keeps_the_rarest_words_within_the_budget(tmp_path):
    store = Store(tmp_path / "idx", embedder_name="synthetic", faiss=SMALL, lexical_budget=50)
    rng = np.random.default_rng(13)
    items = []
    for i in range(60):  # "goal" in every passage, "hat-trick" in a few, "Zandor" in one
        words = "A goal was scored." + (" It was a hat-trick." if i % 20 == 0 else "") + (" Zandor." if i == 40 else "")
        art = Article(f"g{i}", f"Report {i}", None, f"/g{i}.txt", words)
        items.append(NewArticle(art, f"hg{i}", [Chunk(0, f"g{i}", 0, words, 0, len(words))], unit(rng, 1)))
    store.write_batch(items)
    query = '"goal" OR "hat-trick" OR "zandor"'
    assert store.bounded_match(query) == '"hat-trick" OR "zandor"'
    assert store.bounded_match('"goal" OR "scored"') in ('"goal"', '"scored"')  # always one word left
    assert store.bounded_match('"goal" AND "zandor"') == '"goal" AND "zandor"'  # only plain OR lists
    top = store.lexical_search(query, 3)
    assert store.chunks([top[0][0]])[top[0][0]].article_id == "g40"
    store.lexical_budget = 1000  # a small index: exact BM25 over every word
    assert store.bounded_match(query) == query
    store.close()


def test_counts_follow_every_write(store):
    rng = np.random.default_rng(14)
    add_articles(store, clustered(rng, 8))
    assert store.count() == (2, 8)
    store.remove("a0")
    assert store.count() == (1, 4)
    other = Store(store.dir, embedder_name="synthetic", faiss=SMALL)  # another process writes
    other.write_batch([article(7, clustered(rng, 3))])
    other.close()
    assert store.count() == (2, 7)
