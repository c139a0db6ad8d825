"""Index operations through the public API: add, re-add, update, duplicates, remove, errors.

The unit lane uses the hash embedder (real SQLite and FAISS, no model); the integration lane
repeats the key paths with the real MiniLM.
"""

from __future__ import annotations

import shutil

import pytest

from rag import Assistant
from rag.errors import ConfigError, EmbedderMismatchError, IndexCorruptError, InputError
from tests.conftest import SEEDS
from tests.conftest import BRANDT_ARTICLE as ARTICLE
from tests.conftest import write_file as write
from tests.fakes import HashEmbedder


@pytest.fixture
def empty(tmp_path, fake_embedder):
    a = Assistant(tmp_path / "idx", embedder=fake_embedder, seed=False, quiet=True)
    yield a
    a.close()


def test_add_ask_and_cite(empty, tmp_path):
    f = write(tmp_path / "docs" / "brandt.txt", ARTICLE)
    report = empty.add([f])
    assert (report.added, report.failed) == (1, 0)
    assert report.items[0].chunks >= 1
    answer = empty.ask("How much did Riverside Wanderers pay for Tomas Brandt?")
    assert not answer.abstained
    assert "£3m" in answer.text
    c = answer.citations[0]
    assert c.article_id == "brandt" and c.title == "Wanderers sign keeper"
    assert empty.store.article("brandt").text[c.start:c.end] == c.quote


def test_readd_unchanged_is_noop(empty, tmp_path):
    f = write(tmp_path / "a.txt", ARTICLE)
    empty.add([f])
    gen = empty.store.generation
    report = empty.add([f])
    assert [i.status for i in report.items] == ["skipped"]
    assert report.items[0].reason == "unchanged"
    assert empty.store.generation == gen  # nothing was written
    assert empty.store.count() == (1, len(empty.store.chunks(list(range(1, 100)))))


def test_changed_file_replaces_its_chunks(empty, tmp_path):
    f = write(tmp_path / "a.txt", ARTICLE)
    empty.add([f])
    write(f, ARTICLE.replace("£3m", "£4.5m"))
    report = empty.add([f])
    assert [i.status for i in report.items] == ["updated"]
    assert empty.store.count()[0] == 1
    answer = empty.ask("How much did Riverside Wanderers pay for Tomas Brandt?")
    assert "£4.5m" in answer.text and "£3m" not in answer.text
    assert [a.id for a in empty.articles()] == ["a"]


def test_remove(empty, tmp_path):
    empty.add([write(tmp_path / "a.txt", ARTICLE)])
    empty.remove("a")
    assert empty.articles() == []
    assert empty.store.count() == (0, 0)
    assert empty.store.faiss_index().ntotal == 0
    assert empty.ask("Who did Riverside Wanderers sign?").abstained
    with pytest.raises(InputError, match="no article with id 'a'"):
        empty.remove("a")


def test_batch_with_bad_files_keeps_going(empty, tmp_path):
    good = write(tmp_path / "good.txt", ARTICLE)
    (tmp_path / "bin.txt").write_bytes(b"\x00\x01\x02binary")
    (tmp_path / "bad.json").write_text("{oops", encoding="utf-8")
    report = empty.add([tmp_path / "bin.txt", good, tmp_path / "bad.json", tmp_path / "nope.txt"])
    assert report.added == 1 and report.failed == 3
    reasons = " | ".join(i.reason for i in report.items if i.status == "failed")
    assert "bin.txt: looks like a binary file" in reasons
    assert "bad.json: invalid JSON" in reasons
    assert "nope.txt: no such file or folder" in reasons


def test_first_use_indexes_seeds(tmp_path, fake_embedder, capsys):
    a = Assistant(tmp_path / "new", embedder=fake_embedder, seed=SEEDS)
    assert len(a.articles()) == 2
    assert "indexing the articles in" in capsys.readouterr().err
    a.close()
    # an existing (even emptied) index is not re-seeded
    b = Assistant(tmp_path / "new", embedder=fake_embedder, seed=SEEDS, quiet=True)
    b.remove("000_a976052e113d48e1")
    b.remove("002_0df7e0b7cc0cc3af")
    b.close()
    c = Assistant(tmp_path / "new", embedder=fake_embedder, seed=SEEDS, quiet=True)
    assert c.articles() == []


def test_date_filters(fake_assistant):
    dated = fake_assistant.retrieve("Alonso contract", since="2023-01-01")
    assert dated and {p.article.id for p in dated} == {"002_0df7e0b7cc0cc3af"}
    assert fake_assistant.retrieve("Alonso contract", until="2020-01-01") == []
    with pytest.raises(ConfigError, match="since: 'soon' is not a date"):
        fake_assistant.ask("x", since="soon")
    with pytest.raises(ConfigError, match="since 2024-01-01 is after until 2023-01-01"):
        fake_assistant.ask("x", since="2024-01-01", until="2023-01-01")


@pytest.mark.parametrize("question", ["", "   ", None])
def test_empty_question(fake_assistant, question):
    with pytest.raises(InputError, match="the question is empty"):
        fake_assistant.ask(question)


def test_bad_top_k(fake_assistant, tmp_path):
    with pytest.raises(ConfigError, match="top_k must be at least 1, got 0"):
        fake_assistant.ask("Alonso?", top_k=0)
    with pytest.raises(ConfigError, match="top_k"):
        Assistant(tmp_path / "i", embedder=HashEmbedder(), top_k=-1)


def test_embedder_mismatch(tmp_path):
    a = Assistant(tmp_path / "idx", embedder=HashEmbedder(64), seed=SEEDS, quiet=True)
    a.articles()
    a.close()
    with pytest.raises(EmbedderMismatchError, match="built with embedder 'hash-64', not 'hash-32'"):
        Assistant(tmp_path / "idx", embedder=HashEmbedder(32), quiet=True)
    # same name but another dimension is caught on first encode
    b = Assistant(tmp_path / "idx", embedder=HashEmbedder(32, name="hash-64"), quiet=True)
    with pytest.raises(EmbedderMismatchError, match="dimension 64"):
        b.add([write(tmp_path / "x.txt", ARTICLE)])
    assert b.store.count()[0] == 2  # nothing stored was lost


def test_corrupt_sqlite_is_a_clear_error(tmp_path, fake_embedder):
    d = tmp_path / "idx"
    d.mkdir()
    (d / "rag.sqlite3").write_bytes(b"this is not a database" * 100)
    with pytest.raises(IndexCorruptError, match="rag.sqlite3: cannot open the index"):
        Assistant(d, embedder=fake_embedder, quiet=True)


def test_corrupt_faiss_file_is_rebuilt(fake_assistant):
    fake_assistant.articles()
    store = fake_assistant.store
    path = store._faiss_path(store.generation)
    assert path.exists()
    path.write_bytes(b"garbage")
    store._faiss_index = None
    assert not fake_assistant.ask("When does Alonso's contract expire?").abstained
    assert store.faiss_index().ntotal == store.count()[1]


def test_missing_faiss_file_is_rebuilt(fake_assistant, tmp_path, fake_embedder):
    fake_assistant.articles()
    d = fake_assistant.index_dir
    fake_assistant.close()
    for f in d.glob("faiss-*.index"):
        f.unlink()
    a = Assistant(d, embedder=fake_embedder, quiet=True)
    assert a.store.faiss_index().ntotal == a.store.count()[1]
    assert list(d.glob("faiss-*.index"))


# ------------------------------------------------------------------ real embedder


@pytest.mark.integration
def test_real_embedder_update_and_remove(seeds_assistant, tmp_path):
    f = write(tmp_path / "brandt.txt", ARTICLE)
    assert seeds_assistant.add([f]).added == 1
    answer = seeds_assistant.ask("Which goalkeeper did Riverside Wanderers sign?")
    assert "Tomas Brandt" in answer.text
    write(f, ARTICLE.replace("Tomas Brandt", "Piet Keller").replace("Brandt,", "Keller,"))
    assert seeds_assistant.add([f]).updated == 1
    answer = seeds_assistant.ask("Which goalkeeper did Riverside Wanderers sign?")
    assert "Piet Keller" in answer.text and "Brandt" not in answer.text
    seeds_assistant.remove("brandt")
    assert seeds_assistant.ask("Which goalkeeper did Riverside Wanderers sign?").abstained
    assert seeds_assistant.store.faiss_index().ntotal == seeds_assistant.store.count()[1]


@pytest.mark.integration
def test_real_index_reopens_from_disk(seeds_index_dir, real_embedder, tmp_path):
    d = tmp_path / "copy"
    shutil.copytree(seeds_index_dir, d)
    a = Assistant(d, embedder=real_embedder, quiet=True)
    answer = a.ask("Who is the caretaker manager of Brazil?")
    assert "Fernando Diniz" in answer.text
    assert answer.citations[0].date == "2023-07-25"


@pytest.mark.integration
def test_module_level_ask_uses_default_index(monkeypatch, tmp_path):
    import rag
    from rag import assistant as assistant_mod

    monkeypatch.setattr(assistant_mod, "_default", {})
    answer = rag.ask("When does Alonso's contract expire?", index_dir=tmp_path / "default")
    assert "June 2024" in answer.text
    assert answer.mode == "extractive"
