"""The page's behaviour without the page: uploads, removal, history, answer modes, the LLM lock."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from rag.errors import ConfigError, InputError
from rag.models import Answer
from ui.backend import ChatBackend, Turn

ARTICLE = ("date 2024-03-02\nWrexham Rovers sign goalkeeper Tomasz Quill\n\n"
           "Wrexham Rovers have signed goalkeeper Tomasz Quill on a deal running until June 2027. "
           "Quill joins from Harbour Athletic for a fee of 3 million pounds.\n")


def _files(root: Path) -> set[Path]:
    return {p for p in root.rglob("*") if p.is_file()}


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


# ------------------------------------------------------------------ uploads


def test_upload_is_copied_into_the_index_and_indexed(fake_assistant, tmp_path):
    backend = ChatBackend(fake_assistant)
    src = _write(tmp_path / "incoming" / "quill.txt", ARTICLE)
    steps = []
    result = backend.add_uploads([src], progress=lambda d, t, s: steps.append((d, t)))
    assert [(i.status, i.chunks > 0) for i in result.report.items] == [("added", True)]
    saved = backend.uploads_dir / "quill.txt"
    assert result.saved == [saved] and saved.read_text(encoding="utf-8") == ARTICLE
    assert steps == [(1, 1)]
    listed = {a.source: a for a in backend.articles()}
    assert listed[str(saved)].date == "2024-03-02"
    again = backend.add_uploads([src])
    assert [(i.status, i.reason) for i in again.report.items] == [("skipped", "unchanged")]
    assert saved.exists()


def test_upload_names_are_sanitised_and_writes_stay_in_the_uploads_folder(fake_assistant, tmp_path):
    backend = ChatBackend(fake_assistant)
    before = _files(tmp_path)
    evil = _write(tmp_path / "incoming" / "..\\..\\escape.md", ARTICLE)  # a backslash name on POSIX
    hidden = _write(tmp_path / "incoming2" / ".sneaky.txt", ARTICLE.replace("Quill", "Quell"))
    result = backend.add_uploads([evil, hidden])
    assert sorted(p.name for p in result.saved) == ["escape.md", "sneaky.txt"]
    assert all(p.parent == backend.uploads_dir for p in result.saved)
    new = _files(tmp_path) - before - {evil, hidden}
    assert new and all(backend.index_dir in p.parents for p in new)
    assert not any(p.name.startswith((".incoming", ".previous")) for p in new)


def test_upload_refuses_bad_types_big_files_empty_files_and_name_clashes(fake_assistant, tmp_path):
    backend = ChatBackend(fake_assistant, max_upload_bytes=2000)
    exe = _write(tmp_path / "a" / "tool.exe", "MZ")
    big = _write(tmp_path / "b" / "big.txt", "word " * 1000)
    empty = _write(tmp_path / "c" / "empty.txt", "")
    one = _write(tmp_path / "d" / "same.txt", ARTICLE)
    two = _write(tmp_path / "e" / "same.txt", ARTICLE + "More.")
    result = backend.add_uploads([exe, big, empty, one, two])
    reasons = dict(result.rejected)
    assert "unsupported file type '.exe'" in reasons["tool.exe"]
    assert reasons["big.txt"] == "big.txt: 5 kB is over the 2 kB upload limit"
    assert "empty" in reasons["empty.txt"]
    assert "another file in this upload" in reasons["same.txt"]
    assert [p.name for p in result.saved] == ["same.txt"]
    assert not (backend.uploads_dir / "tool.exe").exists() and not (backend.uploads_dir / "big.txt").exists()


def test_a_failed_reupload_keeps_the_previous_file_and_article(fake_assistant, tmp_path):
    backend = ChatBackend(fake_assistant)
    good = _write(tmp_path / "v1" / "club.json", '{"title": "Club news", "text": "Rovers win the cup again."}')
    assert backend.add_uploads([good]).report.items[0].status == "added"
    bad = _write(tmp_path / "v2" / "club.json", '{"title": broken')
    result = backend.add_uploads([bad])
    item = result.report.items[0]
    assert item.status == "failed" and "club.json" in item.reason
    saved = backend.uploads_dir / "club.json"
    assert "Rovers win the cup" in saved.read_text(encoding="utf-8")
    assert any(a.source == str(saved) for a in backend.articles())
    new = _write(tmp_path / "v3" / "fresh.json", "[]")
    backend.add_uploads([new])
    assert not (backend.uploads_dir / "fresh.json").exists()  # nothing indexed: no copy kept


def test_remove_deletes_the_article_and_its_uploaded_file(fake_assistant, tmp_path):
    backend = ChatBackend(fake_assistant)
    assert len(backend.articles()) == 2  # the seeds
    result = backend.add_uploads([_write(tmp_path / "in" / "quill.txt", ARTICLE)])
    aid = result.report.items[0].article_id
    info = backend.remove(aid)
    assert info.id == aid and aid not in {a.id for a in backend.articles()}
    assert not (backend.uploads_dir / "quill.txt").exists()
    seed = backend.articles()[0]
    backend.remove(seed.id)  # a seed file outside uploads/ is left alone
    assert Path(seed.source).exists()
    with pytest.raises(InputError, match="no article with id 'nope'"):
        backend.remove("nope")
    with pytest.raises(InputError, match="no article selected"):
        backend.remove("")


# ------------------------------------------------------------------ asking


class RecordingAssistant:
    """Records what ask_stream receives, and whether its stream was closed early."""

    def __init__(self, index_dir: Path, *, llm: bool = False, signature: str = "full") -> None:
        self.index_dir = index_dir
        self.embedder = type("E", (), {"name": "hash-64"})()
        self.answerer = type("A", (), {"mode": "llm" if llm else "extractive",
                                       "path": Path("/models/tiny.gguf") if llm else None})()
        self.calls: list[dict] = []
        self.closed = False
        self.backend: ChatBackend | None = None
        if signature == "old":
            self.ask_stream = self._old_ask_stream

    def _record(self, question, kwargs):
        self.calls.append({"question": question, **kwargs})
        try:
            for piece in ("June ", "2024 ", "[1]."):
                yield piece
        except GeneratorExit:
            self.closed = True
            raise
        yield Answer(question=question, text="June 2024 [1].", citations=[], passages=[],
                     abstained=False, mode=self.answerer.mode)

    def ask_stream(self, question, *, history=None, top_k=None, since=None, until=None):
        kwargs = {k: v for k, v in dict(history=history, top_k=top_k, since=since, until=until).items()
                  if v is not None}
        return self._record(question, kwargs)

    def ask(self, question, *, top_k=None, since=None, until=None):  # the older signature
        raise AssertionError("not called")

    def _old_ask_stream(self, question, **kwargs):
        if "history" in kwargs:
            raise TypeError("unexpected keyword 'history'")
        return self._record(question, kwargs)


def _consume(stream):
    return list(stream)


def test_history_and_settings_reach_the_assistant(tmp_path):
    stub = RecordingAssistant(tmp_path)
    backend = ChatBackend(stub)
    first = Answer(question="q1", text="June 2024 [1].", citations=[], passages=[], abstained=False,
                   mode="extractive", retrieval_query="When does Alonso's contract expire?")
    out = _consume(backend.ask_stream("And Ancelotti's?", [Turn("When does Alonso's contract expire?", first)],
                                      top_k=3, since="2023-01-01", until="", mode="extractive"))
    assert "".join(p for p in out if isinstance(p, str)) == "June 2024 [1]." and isinstance(out[-1], Answer)
    call = stub.calls[-1]
    assert call["history"] == [("When does Alonso's contract expire?", first)]
    assert call["top_k"] == 3 and call["since"] == "2023-01-01" and "until" not in call


def test_keywords_the_assistant_lacks_are_left_out(tmp_path):
    stub = RecordingAssistant(tmp_path, signature="old")
    backend = ChatBackend(stub)
    assert not backend.supports("history") and backend.supports("top_k")
    _consume(backend.ask_stream("q", [Turn("earlier", "answer")], top_k=2))
    assert stub.calls[-1] == {"question": "q", "top_k": 2}


def test_bad_mode_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="answer mode must be one of extractive, llm, got 'poetry'"):
        ChatBackend(RecordingAssistant(tmp_path)).ask_stream("q", [], mode="poetry")


def test_llm_stream_can_be_advanced_from_any_gradio_worker(tmp_path):
    stub = RecordingAssistant(tmp_path, llm=True)
    backend = stub.backend = ChatBackend(stub)
    assert backend.has_llm and backend.model_name == "tiny.gguf"
    stream = backend.ask_stream("q", [], mode="llm")
    with ThreadPoolExecutor(max_workers=4) as pool:  # like Gradio: each next() on any free worker
        items = []
        while True:
            item = pool.submit(next, stream, None).result()
            if item is None:
                break
            items.append(item)
    assert items[:3] == ["June ", "2024 ", "[1]."]
    assert isinstance(items[-1], Answer)
    assert stub.calls[-1]["question"] == "q"


def test_abandoned_stream_is_closed(tmp_path):
    stub = RecordingAssistant(tmp_path, llm=True)
    backend = stub.backend = ChatBackend(stub)
    stream = backend.ask_stream("q", [], mode="llm")
    assert next(stream) == "June "
    stream.close()  # the page went away: the assistant's stream (and its generation) stop
    assert stub.closed


def test_errors_in_the_stream_reach_the_caller(fake_assistant):
    backend = ChatBackend(fake_assistant)
    with pytest.raises(InputError, match="the question is empty"):
        _consume(backend.ask_stream("   ", []))
    with pytest.raises(ConfigError, match="not a date"):
        _consume(backend.ask_stream("When does Alonso's contract expire?", [], since="soon"))


class ScriptedLLM:
    """An LLM answerer stand-in: says one fixed sentence, citing source 1."""

    mode = "llm"
    path = Path("/models/scripted.gguf")

    def __init__(self) -> None:
        self.calls = 0

    def stream(self, query, passages):
        self.calls += 1
        yield "Scripted "
        yield "answer [1]."
        yield Answer(question=query.text, text="Scripted answer [1].", citations=[], passages=passages,
                     abstained=False, mode="llm")

    def answer(self, query, passages):
        return [x for x in self.stream(query, passages)][-1]


def test_extractive_mode_answers_without_the_llm_when_one_is_configured(fake_assistant):
    llm = ScriptedLLM()
    fake_assistant.answerer = llm
    backend = ChatBackend(fake_assistant)
    assert backend.has_llm and backend.model_name == "scripted.gguf"
    out = _consume(backend.ask_stream("When does Alonso's contract expire?", [], mode="extractive"))
    assert out[-1].mode == "extractive" and "June 2024" in out[-1].text and llm.calls == 0
    out = _consume(backend.ask_stream("When does Alonso's contract expire?", [], mode="llm"))
    assert out[-1].mode == "llm" and out[:-1] == ["Scripted ", "answer [1]."] and llm.calls == 1
    assert fake_assistant.answerer is llm  # the extractive view did not touch the shared assistant


def test_follow_up_uses_the_history(fake_assistant):
    backend = ChatBackend(fake_assistant)
    first = _consume(backend.ask_stream("When does Alonso's contract expire?", []))[-1]
    follow = _consume(backend.ask_stream("And Ancelotti's?", [Turn(first.question, first)]))[-1]
    assert follow.retrieval_query and "Ancelotti" in follow.retrieval_query and "contract" in follow.retrieval_query
