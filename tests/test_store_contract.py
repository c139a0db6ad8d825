"""The store contract: what every index store guarantees, run against each of them.

Each test takes ``index``, parametrised over the embedded SQLite + FAISS folder and a database
on the real PostgreSQL server the session starts (integration lane), and drives it through the
public ``Assistant`` and the store interface (``rag.stores.IndexStore``) with the hash embedder.
A store that passes here can stand behind ``--index``.
"""

from __future__ import annotations

import numpy as np
import pytest

from rag import Assistant
from rag.chunk import embedding_text
from rag.errors import EmbedderMismatchError, InputError
from rag.lexical import LexicalQuery
from rag.retrieve import RetrievalConfig
from rag.stores import open_store
from tests.conftest import SEEDS
from tests.conftest import BRANDT_ARTICLE as ARTICLE
from tests.conftest import write_file as write
from tests.fakes import HashEmbedder

STORES = ["sqlite", pytest.param("postgresql", marks=pytest.mark.integration)]


def dated(title: str, date: str, body: str) -> str:
    return f"---\ntitle: {title}\ndate: {date}\n---\n{body}\n"


@pytest.fixture(params=STORES)
def index(request, tmp_path):
    """An empty index of each kind: a folder, or a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return tmp_path / "idx"
    return request.getfixturevalue("pg_dsn")


@pytest.fixture
def assistant(index):
    a = Assistant(index, embedder=HashEmbedder(), seed=False, quiet=True)
    yield a
    a.close()


def test_add_ask_and_cite_exact_offsets(assistant, tmp_path):
    report = assistant.add([SEEDS, write(tmp_path / "docs" / "brandt.txt", ARTICLE)])
    assert (report.added, report.failed) == (3, 0)
    answer = assistant.ask("How much did Riverside Wanderers pay for Tomas Brandt?")
    assert not answer.abstained and "£3m" in answer.text
    c = answer.citations[0]
    assert (c.article_id, c.title) == ("brandt", "Wanderers sign keeper")
    assert assistant.store.article("brandt").text[c.start:c.end] == c.quote
    for p in assistant.retrieve("When does Alonso's contract expire?", top_k=5):
        assert p.article.text[p.chunk.start:p.chunk.end] == p.chunk.text
    answer = assistant.ask("When does Alonso's contract expire?")
    assert "June 2024" in answer.text
    for c in answer.citations:
        assert assistant.store.article(c.article_id).text[c.start:c.end] == c.quote


def test_readd_unchanged_is_skipped_without_a_write(assistant, tmp_path):
    f = write(tmp_path / "a.txt", ARTICLE)
    assistant.add([f])
    gen = assistant.store.generation
    report = assistant.add([f])
    assert [(i.status, i.reason) for i in report.items] == [("skipped", "unchanged")]
    assert assistant.store.generation == gen
    assert assistant.store.count()[0] == 1


def test_changed_file_replaces_its_chunks(assistant, tmp_path):
    f = write(tmp_path / "a.txt", ARTICLE)
    assistant.add([f])
    before = assistant.store.count()
    write(f, ARTICLE.replace("£3m", "£4.5m"))
    report = assistant.add([f])
    assert [i.status for i in report.items] == ["updated"]
    assert assistant.store.count() == before
    answer = assistant.ask("How much did Riverside Wanderers pay for Tomas Brandt?")
    assert "£4.5m" in answer.text and "£3m" not in answer.text
    assert [a.id for a in assistant.articles()] == ["a"]


def test_remove_is_gone_from_both_retrievers(assistant, tmp_path):
    assistant.add([SEEDS, write(tmp_path / "a.txt", ARTICLE)])
    gen = assistant.store.generation
    assistant.remove("a")
    assert assistant.store.generation > gen
    assert [a.id for a in assistant.articles()] == ["002_0df7e0b7cc0cc3af", "000_a976052e113d48e1"]
    store = assistant.store
    ids = set(store.chunks(list(range(1, 200))))
    assert all(store.chunks([i])[i].article_id != "a" for i in ids)
    assert {cid for cid, _ in store.lexical_search(LexicalQuery(("brandt", "wanderers")), 10)} == set()
    qvec = assistant.embedder.encode([ARTICLE])[0]
    assert all(store.chunks([cid])[cid].article_id != "a" for cid, _ in store.dense_search(qvec, 10))
    with pytest.raises(InputError, match="no article with id 'a'"):
        assistant.remove("a")
    assert not store.remove("a")


def test_duplicate_text_stored_once(assistant, tmp_path):
    a = write(tmp_path / "a.txt", ARTICLE)
    b = write(tmp_path / "copy" / "b.txt", ARTICLE.replace("\n", "\r\n"))  # same text, other line endings
    report = assistant.add([a, b])
    assert [i.status for i in report.items] == ["added", "skipped"]
    assert "same text" in report.items[1].reason
    report = assistant.add([b])
    assert report.items[0].status == "skipped" and "same text as article a" in report.items[0].reason
    assert assistant.store.count()[0] == 1


def test_same_stem_in_two_folders_gets_unique_ids(assistant, tmp_path):
    a = write(tmp_path / "x" / "match.txt", ARTICLE)
    b = write(tmp_path / "y" / "match.txt", ARTICLE.replace("Brandt", "Keller"))
    assistant.add([a, b])
    assert sorted(x.id for x in assistant.articles()) == ["match", "match-2"]


def test_embedder_recorded_and_a_mismatch_refused(index, tmp_path):
    a = Assistant(index, embedder=HashEmbedder(dim=64, name="hash-a"), seed=False, quiet=True)
    a.add([SEEDS])
    st = a.stats()
    assert (st.embedder, st.dimension) == ("hash-a", 64)
    with pytest.raises(EmbedderMismatchError, match="dimension 64"):
        a.store.check_dimension(32)
    a.close()
    with pytest.raises(EmbedderMismatchError, match="'hash-a', not 'hash-b'"):
        Assistant(index, embedder=HashEmbedder(dim=64, name="hash-b"), seed=False, quiet=True)
    with pytest.raises(EmbedderMismatchError, match="'hash-a'"):
        open_store(index, embedder_name="hash-b")
    b = Assistant(index, embedder=HashEmbedder(dim=64, name="hash-a"), seed=False, quiet=True)
    assert b.stats().articles == 2  # the same embedder opens it as before
    b.close()


@pytest.mark.parametrize("mode", ["hybrid", "dense", "bm25"])
def test_date_filters_apply_to_each_retriever(index, tmp_path, mode):
    a = Assistant(index, embedder=HashEmbedder(), seed=False, quiet=True, retrieval=RetrievalConfig(mode=mode))
    a.add([write(tmp_path / f"{y}.md", dated(f"Brandt signs for Riverside {y}", f"{y}-06-01",
                                                  f"Riverside Wanderers signed Tomas Brandt in {y}."))
           for y in (2019, 2021, 2023)])
    a.add([write(tmp_path / "undated.txt", "Brandt undated\n\nTomas Brandt joined Riverside Wanderers.\n")])
    ids = lambda ps: sorted({p.article.id for p in ps})  # noqa: E731
    assert ids(a.retrieve("Tomas Brandt Riverside", top_k=10)) == ["2019", "2021", "2023", "undated"]
    assert ids(a.retrieve("Tomas Brandt Riverside", top_k=10, since="2021-01-01")) == ["2021", "2023"]
    assert ids(a.retrieve("Tomas Brandt Riverside", top_k=10, until="2021-06-01")) == ["2019", "2021"]
    assert ids(a.retrieve("Tomas Brandt Riverside", top_k=10, since="2020-01-01", until="2022-01-01")) == ["2021"]
    assert a.retrieve("Tomas Brandt Riverside", since="2030-01-01") == []
    a.close()


def test_stats_and_listing(assistant, tmp_path):
    st = assistant.stats()
    assert (st.articles, st.chunks, st.generation) == (0, 0, 0)
    assistant.add([SEEDS])
    assistant.add([write(tmp_path / "old.md", dated("Old news", "2001-02-03", "Brandt was a youth player."))])
    st = assistant.stats()
    rows = assistant.articles()
    assert [r.id for r in rows] == ["002_0df7e0b7cc0cc3af", "old", "000_a976052e113d48e1"]  # newest first, undated last
    assert [r.date for r in rows] == ["2023-07-25", "2001-02-03", None]
    assert sum(r.chunks for r in rows) == st.chunks == assistant.store.count()[1]
    assert (st.articles, st.generation, st.embedder, st.dimension) == (3, 2, "hash-64", 64)
    assert st.size_bytes > 0 and "rag-test-pw" not in st.path
    assert rows[1].source.endswith("old.md") and rows[1].title == "Old news"


def test_reopened_index_answers_the_same(index, tmp_path):
    a = Assistant(index, embedder=HashEmbedder(), seed=False, quiet=True)
    a.add([SEEDS])
    first = a.ask("When does Alonso's contract expire?")
    stats = a.stats()
    a.close()
    b = Assistant(index, embedder=HashEmbedder(), seed=False, quiet=True)
    again = b.ask("When does Alonso's contract expire?")
    assert (again.text, [c.quote for c in again.citations]) == (first.text, [c.quote for c in first.citations])
    assert b.stats().chunks == stats.chunks and b.stats().generation == stats.generation
    b.close()


def test_dense_search_finds_the_exact_neighbours(assistant, tmp_path):
    assistant.add([SEEDS] + [write(tmp_path / f"n{i}.txt", f"Note {i}\n\nPlayer{i} scored {i} goals for club{i % 3}.\n")
                             for i in range(20)])
    store = assistant.store
    chunks = store.chunks(list(range(1, 1000)))
    assert len(chunks) == store.count()[1]
    ids = sorted(chunks)
    texts = [embedding_text(store.article(chunks[i].article_id), chunks[i]) for i in ids]
    vecs = assistant.embedder.encode(texts)
    q = assistant.embedder.encode(["Player7 scored 7 goals"])[0]
    exact = [ids[j] for j in np.argsort(-(vecs @ q), kind="stable")[:5]]
    got = store.dense_search(q, 5)
    assert [c for c, _ in got] == exact
    assert np.allclose([s for _, s in got], sorted(vecs @ q, reverse=True)[:5], atol=1e-5)
    assert {c for c, _ in store.dense_search(q, len(ids))} == set(ids)  # every passage when asked for all


def test_lexical_search_ranks_by_bm25(assistant, tmp_path):
    assistant.add([write(tmp_path / "a.txt", "Brandt\n\nBrandt Brandt Brandt scored twice.\n"),
                   write(tmp_path / "b.txt", "Keeper\n\nBrandt kept a clean sheet, said the keeper.\n"),
                   write(tmp_path / "c.txt", "Other\n\nNobody else was mentioned in this match report.\n")])
    hits = assistant.store.lexical_search(LexicalQuery(("brandt",)), 10)
    by_id = {assistant.store.chunks([c])[c].article_id: s for c, s in hits}
    assert set(by_id) == {"a", "b"} and by_id["a"] > by_id["b"] > 0
    both = assistant.store.lexical_search(LexicalQuery(("sheet",), ("brandt",)), 10)
    assert [assistant.store.chunks([c])[c].article_id for c, _ in both] == ["b"]
    assert assistant.store.lexical_search(LexicalQuery(("zzzz",)), 10) == []
    assert assistant.store.document_frequency('"brandt"') == 2
