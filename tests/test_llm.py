"""The LLM answerer under real llama.cpp, with tiny GGUF models the tests build (no downloads).

The deterministic tiny model answers every chat prompt with a fixed script; by default
"June 2024 [7]." - a citation to a source that is never given, which the grammar must turn into
a valid one. Other scripts exercise abstention, unsupported claims and the follow-up rewrite;
the random-weights model produces arbitrary text that still must obey the grammar.
"""

from __future__ import annotations

import ctypes
import re
import shutil
import sys
import threading
from pathlib import Path

import llama_cpp  # a hard dependency: these tests must run, not skip
import pytest

from rag import Assistant
from rag.cli import main
from rag.errors import ModelError
from rag.grammar import GrammarError, citation_grammar
from rag.llm import LlamaCppAnswerer, LLMSettings
from rag.models import Answer, Article, Chunk, Passage
from rag.prompt import INSTRUCTIONS, build_messages
from rag.retrieve import analyse
from tests.conftest import SEEDS
from tests.tiny_gguf import CHAT_TEMPLATE, build_tiny_gguf

pytestmark = [pytest.mark.integration, pytest.mark.llm]

Q = "When does Alonso's contract expire?"
ONE_THREAD = LLMSettings(n_threads=1, max_tokens=64)
SCRIPTS = {
    "default": None,
    "abstain": ("The", " sources", " don't", " say", "."),
    "chelsea": ("Chelsea", " won", " the", " league", " [", "1", "]", "."),
    "cite2": ("June", " 2024", " [", "2", "]", "."),
    "rewrite": ("When", " does", " Carlo", " Ancelotti's", " contract", " expire?"),
}


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("llm-models")
    out = {}
    for name, script in SCRIPTS.items():
        out[name] = build_tiny_gguf(d / f"{name}.gguf", **({"script": script} if script else {}))
    out["random"] = build_tiny_gguf(d / "random.gguf", random_weights=True, seed=0)
    out["small"] = build_tiny_gguf(d / "small.gguf", context_length=1024)
    out["q4"] = d / "q4_k_m.gguf"
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = llama_cpp.LLAMA_FTYPE_MOSTLY_Q4_K_M
    params.nthread = 1
    rc = llama_cpp.llama_model_quantize(str(out["default"]).encode(), str(out["q4"]).encode(), ctypes.byref(params))
    assert rc == 0
    return out


@pytest.fixture(scope="module")
def tiny(models) -> LlamaCppAnswerer:
    a = LlamaCppAnswerer(models["default"], ONE_THREAD)
    yield a
    a.close()


def make(path: Path, **settings) -> LlamaCppAnswerer:
    return LlamaCppAnswerer(path, LLMSettings(**{"n_threads": 1, "max_tokens": 64, **settings}))


ARTICLE = Article(
    id="syn", title="Eight facts", date="2024-05-01", source="syn.txt",
    text=" ".join(f"Fact {w} is about Alonso and his contract in June 2024." for w in
                  ("one", "two", "three", "four", "five", "six", "seven", "eight")),
)


def passages(k: int) -> list[Passage]:
    """``k`` distinct short passages, one sentence of ARTICLE each."""
    spans = [(m.start(), m.end()) for m in re.finditer(r"Fact [^.]*\.", ARTICLE.text)][:k]
    return [Passage(Chunk(i, ARTICLE.id, i, ARTICLE.text[s:e], s, e), ARTICLE, 1.0 / (i + 1))
            for i, (s, e) in enumerate(spans)]


@pytest.fixture
def seeds_llm(tmp_path, fake_embedder, models):
    """The seeds index (hash embedder, real SQLite/FAISS) answered by the default tiny model."""
    a = Assistant(tmp_path / "idx", embedder=fake_embedder, seed=SEEDS, quiet=True, model=models["default"],
                  llm=ONE_THREAD)
    yield a
    a.close()


# ------------------------------------------------------------------ loading and prompt


def test_loads_lazily_and_renders_the_gguf_chat_template(models) -> None:
    a = make(models["default"], n_ctx=2048)
    try:
        assert a._llm is None
        llm = a.llm
        assert llm.metadata["tokenizer.chat_template"] == CHAT_TEMPLATE
        assert a.context_window == 2048
        messages = build_messages(Q, [])
        tokens, stop = a.render(messages)
        expected = "".join(f"<|im_start|>{m['role']}\n{m['content']}<|im_end|>\n" for m in messages)
        expected += "<|im_start|>assistant\n"
        assert tokens == llm.tokenize(expected.encode("utf-8"), add_bos=False, special=True)
        assert tokens.count(3) == 3  # <|im_start|> is one special token, not text
        assert stop == ["<|im_end|>"]
        assert a.count(messages) == len(tokens)
    finally:
        a.close()


def test_quantised_model_answers(models) -> None:
    """A Q4_K_M model, as users run them. On CPUs reporting AMX, llama.cpp's repacked AMX layout
    crashed quantised models; the default settings avoid it there (and keep it elsewhere)."""
    a = make(models["q4"])
    try:
        assert a.answer(analyse(Q), passages(3)).text == "June 2024 [1]."
    finally:
        a.close()
    import llama_cpp.llama as llama_module

    assert llama_module.llama_cpp.llama_model_default_params is llama_cpp.llama_cpp.llama_model_default_params
    assert llama_module.llama_cpp.llama_model_default_params().use_extra_bufts  # nothing leaked


def test_context_is_capped_at_the_training_context(models) -> None:
    a = make(models["small"], n_ctx=4096)
    try:
        assert a.context_window == 1024
    finally:
        a.close()


def test_instructions_are_a_shared_token_prefix(tiny) -> None:
    """Two questions share every token of the system message, so llama.cpp's cache is reused."""
    t1, _ = tiny.render(build_messages(Q, []))
    t2, _ = tiny.render(build_messages("Who coaches Real Madrid?", []))
    system = tiny.llm.tokenize(f"<|im_start|>system\n{INSTRUCTIONS}<|im_end|>\n".encode(), add_bos=False,
                               special=True)
    shared = next(i for i, (a, b) in enumerate(zip(t1, t2)) if a != b)
    assert shared >= len(system) > 100


# ------------------------------------------------------------------ generation


def test_stream_pieces_join_to_the_answer_and_stop_at_eos(tiny) -> None:
    items = list(tiny.stream(analyse(Q), passages(3)))
    *pieces, final = items
    assert all(isinstance(p, str) and p for p in pieces) and isinstance(final, Answer)
    assert len(pieces) >= 5  # token by token, not one block
    assert "".join(pieces) == final.text == "June 2024 [1]."
    assert final.mode == "llm" and not final.abstained and final.unsupported == []
    t = final.timings
    assert t.generated_tokens == 6 < ONE_THREAD.max_tokens  # stopped at <|im_end|>, not at the limit
    assert t.prompt_tokens > 0 and t.first_token_ms is not None and t.first_token_ms <= t.answer_ms


def test_stream_can_be_advanced_from_any_thread_and_closed_early(tiny) -> None:
    """No lock is held between items (web servers advance generators from any worker thread), and
    a stream closed after its first piece leaves the model free for the next question."""
    stream = tiny.stream(analyse(Q), passages(3))
    got: list[object] = []
    for _ in range(3):
        t = threading.Thread(target=lambda: got.append(next(stream)))
        t.start()
        t.join()
    assert got == ["June", " 2024", " ["]
    stream.close()
    done: list[Answer] = []
    t = threading.Thread(target=lambda: done.append(tiny.answer(analyse(Q), passages(3))), daemon=True)
    t.start()
    t.join(timeout=120)  # a deadlock guard, not a speed check
    assert done and done[0].text == "June 2024 [1]."


def test_without_the_grammar_the_model_cites_a_missing_source(tiny) -> None:
    """The control for the grammar tests: the raw model really writes [7]."""
    tokens, stop = tiny.render(tiny.prepare(analyse(Q), passages(3)).messages)
    text = "".join(t for t, _ in tiny._generate(tokens, None, stop, 32))
    assert text == "June 2024 [7]."


@pytest.mark.parametrize("k, marker", [(1, "[1]"), (3, "[1]"), (6, "[1]"), (7, "[7]"), (8, "[7]")])
def test_grammar_allows_only_given_sources(tiny, k: int, marker: str) -> None:
    answer = tiny.answer(analyse(Q), passages(k))
    assert answer.text == f"June 2024 {marker}."
    assert [c.n for c in answer.citations] == [int(marker[1:-1])]


@pytest.mark.parametrize("k, expected", [(1, "[1]"), (2, "[2]"), (5, "[2]")])
def test_in_range_marker_is_kept(models, k: int, expected: str) -> None:
    a = make(models["cite2"])
    try:
        assert a.answer(analyse(Q), passages(k)).text == f"June 2024 {expected}."
    finally:
        a.close()


@pytest.mark.parametrize("k", [1, 9, 10, 99])
def test_generated_grammars_pass_llama_cpp_parser(tiny, k: int) -> None:
    assert isinstance(tiny.grammar(citation_grammar(k)), llama_cpp.LlamaGrammar)


def test_invalid_grammar_is_an_error_not_a_crash(tiny, monkeypatch) -> None:
    with pytest.raises(GrammarError, match="undefined rule 'foo'"):
        tiny.grammar("root ::= foo\n")
    monkeypatch.setattr("rag.llm.check_gbnf", lambda text: None)  # only llama.cpp's parser left
    with pytest.raises(GrammarError, match="llama.cpp rejected"):
        tiny.grammar("root ::= foo\n")


def test_random_model_obeys_the_grammar_and_the_length_limit(models) -> None:
    a = make(models["random"], max_tokens=24)
    try:
        answer = a.answer(analyse(Q), passages(2))
    finally:
        a.close()
    assert answer.timings.generated_tokens == 24
    assert all(m in ("[1]", "[2]") for m in re.findall(r"\[[^\]]*\]", answer.text))
    assert "[" not in re.sub(r"\[[12]\]", "", answer.text)


# ------------------------------------------------------------------ after generation


def test_citations_resolve_to_exact_quotes_in_the_seed_articles(seeds_llm) -> None:
    pieces = []
    for item in seeds_llm.ask_stream(Q):
        if isinstance(item, str):
            pieces.append(item)
        else:
            answer = item
    assert "".join(pieces) == answer.text == "June 2024 [1]."
    assert answer.mode == "llm" and answer.retrieval_query == Q
    (c,) = answer.citations
    article = answer.passages[0].article
    assert c.article_id == article.id and c.quote == article.text[c.start:c.end]
    assert answer.passages[0].chunk.start <= c.start < c.end <= answer.passages[0].chunk.end
    seed_texts = [" ".join(p.read_text("utf-8").split()) for p in SEEDS.glob("*.txt")]
    assert any(" ".join(c.quote.split()) in t for t in seed_texts)
    assert "2024" in c.quote and c.supported
    t = answer.timings
    assert t.first_token_ms is not None and t.retrieve_ms <= t.first_token_ms <= t.total_ms


def test_unsupported_claim_is_flagged(models) -> None:
    a = make(models["chelsea"])
    try:
        answer = a.answer(analyse(Q), passages(2))
    finally:
        a.close()
    assert answer.text == "Chelsea won the league [1]."
    assert answer.unsupported == ["Chelsea won the league."]
    (c,) = answer.citations
    assert not c.supported and c.quote == ARTICLE.text[c.start:c.end]


def test_abstention(models) -> None:
    a = make(models["abstain"])
    try:
        answer = a.answer(analyse("Who won the 1954 World Cup?"), passages(2))
    finally:
        a.close()
    assert answer.text == "The sources don't say."
    assert answer.abstained and answer.citations == [] and answer.unsupported == []


def test_no_passages_abstains_without_generating(tiny) -> None:
    *pieces, answer = list(tiny.stream(analyse(Q), []))
    assert pieces == ["The sources don't say."] and answer.abstained and answer.timings.generated_tokens is None


# ------------------------------------------------------------------ context trimming


def test_long_sources_are_trimmed_to_the_context_window(models, fake_assistant) -> None:
    long = fake_assistant.retrieve(Q, top_k=8)
    a = make(models["small"], max_tokens=64)
    try:
        query = analyse(Q)
        prompt = a.prepare(query, long)
        assert a.count(build_messages(Q, [])) < prompt.n_tokens <= a.context_window - 64
        assert a.count(prompt.messages) == prompt.n_tokens
        assert prompt.k < len(long) and prompt.dropped == len(long) - prompt.k
        assert prompt.sources[-1].trimmed or prompt.dropped
        for s in prompt.sources:
            assert s.text == s.article.text[s.start:s.end] and s.passage is long[s.n - 1]
        answer = a.answer(query, long)
        assert answer.text == "June 2024 [1]."
        (c,) = answer.citations
        assert prompt.sources[0].start <= c.start < c.end <= prompt.sources[0].end
    finally:
        a.close()


# ------------------------------------------------------------------ follow-ups


H = [(Q, "June 2024 [1].")]


def test_model_rewrites_the_follow_up(models, fake_embedder, tmp_path) -> None:
    a = Assistant(tmp_path / "idx", embedder=fake_embedder, seed=SEEDS, quiet=True, model=models["rewrite"],
                  llm=LLMSettings(n_threads=1, max_tokens=24))
    try:
        assert a.answerer.rewrite("And Ancelotti's?", H) == "When does Carlo Ancelotti's contract expire?"
        answer = a.ask("And Ancelotti's?", history=H)
        assert answer.question == "And Ancelotti's?"
        assert answer.retrieval_query == "When does Carlo Ancelotti's contract expire?"
        assert a.standalone("And Ancelotti's?", H).method == "llm"
    finally:
        a.close()


def test_unusable_model_rewrite_falls_back_to_the_heuristic(seeds_llm) -> None:
    garbage = seeds_llm.answerer.rewrite("And Ancelotti's?", H)
    assert garbage is None or "Ancelotti" not in garbage  # the script knows nothing of Ancelotti
    rw = seeds_llm.standalone("And Ancelotti's?", H)
    assert (rw.standalone, rw.method) == ("When does Ancelotti's contract expire?", "heuristic")
    answer = seeds_llm.ask("And Ancelotti's?", history=H)
    assert answer.retrieval_query == "When does Ancelotti's contract expire?"


# ------------------------------------------------------------------ errors


def test_broken_gguf_is_a_model_error_naming_the_path(tmp_path) -> None:
    p = tmp_path / "broken.gguf"
    p.write_bytes(b"GGUF" + b"\x03\x00\x00\x00" + b"\xff" * 64)
    a = LlamaCppAnswerer(p, ONE_THREAD)  # the magic is right: construction succeeds
    with pytest.raises(ModelError, match=f"could not load the model {p}"):
        a.answer(analyse(Q), passages(1))
    with pytest.raises(ModelError, match=f"could not load the model {p}"):
        list(a.stream(analyse(Q), passages(1)))  # raised in the generating thread, re-raised here


def test_truncated_real_model_is_a_model_error(models, tmp_path) -> None:
    p = tmp_path / "truncated.gguf"
    p.write_bytes(models["default"].read_bytes()[:4096])
    with pytest.raises(ModelError, match=str(p)):
        LlamaCppAnswerer(p, ONE_THREAD).llm


# ------------------------------------------------------------------ command line


class _Recorder:
    """stdout that remembers each write, to see the answer arrive in pieces."""

    def __init__(self) -> None:
        self.writes: list[str] = []

    def write(self, s: str) -> int:
        self.writes.append(s)
        return len(s)

    def flush(self) -> None:
        pass


def test_rag_ask_streams_and_cites_the_seeds(models, seeds_index_dir, tmp_path, monkeypatch) -> None:
    """The acceptance command: real embedder, real index of the seeds, the tiny model."""
    index = tmp_path / "index"
    shutil.copytree(seeds_index_dir, index)
    out = _Recorder()
    monkeypatch.setattr(sys, "stdout", out)
    rc = main(["ask", "--index", str(index), "--model", str(models["default"]), "--threads", "1", Q])
    assert rc == 0
    text = "".join(out.writes)
    assert text.startswith("June 2024 [1].\n")
    answer_writes = out.writes[:out.writes.index("\n")]
    assert len(answer_writes) >= 5 and "".join(answer_writes) == "June 2024 [1]."
    assert "\nSources:\n  [1] " in text
    quotes = re.findall(r"“(.+?)”  \(chars (\d+)-(\d+)\)", text)
    assert quotes
    seed_texts = [" ".join(p.read_text("utf-8").split()) for p in SEEDS.glob("*.txt")]
    for quote, start, end in quotes:
        assert any(quote in t for t in seed_texts)
        assert int(end) - int(start) >= len(quote)
