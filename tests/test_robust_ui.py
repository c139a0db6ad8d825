"""Uploads in the chat under hostile or heavy use: a failed batch leaves no orphan copies, each
file gets its own result, server paths never reach the page, and a huge upload does not hold up
someone else's small one (unit lane: the hash embedder, real SQLite and FAISS)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from rag import Assistant
from tests.fakes import HashEmbedder
from ui import render
from ui.backend import ChatBackend

ARTICLE = ("Wrexham Rovers sign goalkeeper Tomasz Quill\n\n"
           "Wrexham Rovers have signed goalkeeper Tomasz Quill on a deal running until June 2027. "
           "Quill joins from Harbour Athletic for a fee of 3 million pounds.\n")


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def _uploads(backend: ChatBackend) -> set[str]:
    return {p.name for p in backend.uploads_dir.iterdir()} if backend.uploads_dir.exists() else set()


def test_a_nested_json_among_many_files_fails_alone(fake_assistant, tmp_path):
    backend = ChatBackend(fake_assistant)
    files = [_write(tmp_path / "in" / f"n{i}.txt", ARTICLE.replace("Quill", f"Quill{i}")) for i in range(20)]
    files.append(_write(tmp_path / "in" / "deep.json", "[" * 50_000 + "]" * 50_000))
    result = backend.add_uploads(files)
    status = {Path(i.source.split(": ")[0]).name: i.status for i in result.report.items}
    assert status.pop("deep.json") == "failed"
    assert set(status.values()) == {"added"} and len(status) == 20
    assert _uploads(backend) == {f"n{i}.txt" for i in range(20)}  # no orphan copy, no temp files


def test_an_internal_error_leaves_no_orphan_copies(fake_assistant, tmp_path, monkeypatch):
    backend = ChatBackend(fake_assistant)
    kept = backend.add_uploads([_write(tmp_path / "v1" / "keep.txt", ARTICLE)])
    assert kept.report.items[0].status == "added"

    def broken(paths, **kw):
        raise RuntimeError("a bug")

    monkeypatch.setattr(fake_assistant, "add", broken)
    files = [_write(tmp_path / "in" / f"f{i}.txt", ARTICLE + f" Note {i}.") for i in range(5)]
    files.append(_write(tmp_path / "v2" / "keep.txt", ARTICLE + " Changed."))
    result = backend.add_uploads(files)
    assert {i.status for i in result.report.items} == {"failed"} and len(result.report.items) == 6
    assert all("internal error (see the server log)" in i.reason for i in result.report.items)
    assert _uploads(backend) == {"keep.txt"}  # the earlier upload is back, nothing else
    assert "Changed" not in (backend.uploads_dir / "keep.txt").read_text(encoding="utf-8")


def test_each_file_gets_its_result_with_notes_and_without_server_paths(fake_assistant, tmp_path):
    backend = ChatBackend(fake_assistant)
    good = _write(tmp_path / "in" / "good.json", '{"title": "Derby", "text": "Rovers won.", "date": "someday"}')
    bad = _write(tmp_path / "in" / "bad.json", '{"title": [1], "text": "Rovers won again."}')
    result = backend.add_uploads([good, bad])
    html = render.ingest_report_html(result.report, result.rejected, (backend.index_dir,))
    assert "date &#x27;someday&#x27; not understood" in html
    assert "field &#x27;title&#x27; (the title) is a list" in html
    assert str(tmp_path) not in html and str(backend.uploads_dir) not in html
    assert "uploads/bad.json" in html and "uploads/good.json" in html


def test_public_messages_hide_server_paths(tmp_path):
    root = tmp_path / "index"
    msg = (f"{root}/rag.sqlite3: the index is damaged (database disk image is malformed); "
           f"also /srv/secret/place/model.gguf and /home/u/x.json#3")
    out = render.public_message(msg, (root,))
    assert out == ("rag.sqlite3: the index is damaged (database disk image is malformed); "
                   "also model.gguf and x.json#3")


class SlowEmbedder(HashEmbedder):
    """The hash embedder at a model's pace: each call takes a while, as a real batch does."""

    def __init__(self) -> None:
        super().__init__()
        self.started = 0

    def encode(self, texts, *, batch_size=64):
        self.started += 1
        time.sleep(0.02 + 0.0005 * len(texts))
        return super().encode(texts)


def test_a_huge_upload_does_not_hold_up_a_small_one(tmp_path):
    emb = SlowEmbedder()
    a = Assistant(tmp_path / "idx", embedder=emb, seed=False, quiet=True)
    backend = ChatBackend(a)
    sentences = " ".join(f"Match report number {i} says the home side scored in minute {i % 90}." for i in range(8_000))
    huge = _write(tmp_path / "big" / "season.txt", "Season review\n\n" + sentences)
    small = _write(tmp_path / "small" / "quill.txt", ARTICLE)
    done: dict[str, float] = {}

    def upload(name, path):
        backend.add_uploads([path])
        done[name] = time.monotonic()

    big = threading.Thread(target=upload, args=("huge", huge))
    big.start()
    deadline = time.monotonic() + 30
    while emb.started < 1 and time.monotonic() < deadline:  # the huge upload is being embedded
        time.sleep(0.01)
    upload("small", small)
    assert big.is_alive(), "the huge upload finished before the small one: make it bigger"
    big.join()
    assert done["small"] < done["huge"]
    assert {i.source for i in a.articles()} == {str(backend.uploads_dir / "season.txt"),
                                                str(backend.uploads_dir / "quill.txt")}
    a.close()


def test_the_same_name_uploaded_twice_at_once(fake_assistant, tmp_path):
    backend = ChatBackend(fake_assistant)
    backend._in_flight.add("quill.txt")  # another visitor's upload of it is being indexed
    result = backend.add_uploads([_write(tmp_path / "in" / "quill.txt", ARTICLE)])
    assert "another upload of quill.txt is being indexed" in dict(result.rejected)["quill.txt"]
    assert _uploads(backend) == set()


def test_the_uploads_queue_runs_several_at_once():
    from ui import app

    assert app.UPLOAD_CONCURRENCY > 1
