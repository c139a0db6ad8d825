"""Integration tests: the tiny GGUF fixture model running under real llama.cpp."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from tiny_gguf import (  # noqa: E402
    CHAT_TEMPLATE,
    DEFAULT_SCRIPT,
    IM_END_TOKEN,
    IM_START_TOKEN,
    build_tiny_gguf,
)

import llama_cpp  # a hard dependency: these tests must run, not skip

pytestmark = [pytest.mark.integration, pytest.mark.llm]

EXPECTED = "".join(DEFAULT_SCRIPT)
MESSAGES: list[dict[str, str]] = [
    {"role": "system", "content": "Answer only from the context and cite sources as [n]."},
    {
        "role": "user",
        "content": "Context:\n[1] Xabi Alonso signed a contract in June 2024.\n"
        "Question: When did Alonso sign his contract?",
    },
]
CITATION_GRAMMAR = r"""
root  ::= plain ("[" [1-3] "]" plain)*
plain ::= [^\[\]]*
"""


def _load(path: Path, n_ctx: int = 512) -> Any:
    """Load a model the way the tests need it: one thread, quiet, seeded."""
    return llama_cpp.Llama(
        model_path=str(path),
        n_ctx=n_ctx,
        # Both thread counts: n_threads_batch defaults to every core, and
        # OpenMP thread hand-off stalls prompt evaluation on small machines.
        n_threads=1,
        n_threads_batch=1,
        n_batch=512,
        verbose=False,
        seed=0,
    )


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Directory shared by the models of this module."""
    return tmp_path_factory.mktemp("tiny_gguf")


@pytest.fixture(scope="module")
def llm(model_dir: Path) -> Iterator[Any]:
    """The deterministic model with the default script."""
    model = _load(build_tiny_gguf(model_dir / "tiny.gguf"))
    yield model
    model.close()


@pytest.fixture(scope="module")
def random_llm(model_dir: Path) -> Iterator[Any]:
    """The random-weights model."""
    model = _load(build_tiny_gguf(model_dir / "tiny-random.gguf", random_weights=True, seed=0))
    yield model
    model.close()


def test_chat_completion_returns_script_and_stops(llm: Any) -> None:
    """Greedy chat completion is exactly the script and ends on EOS."""
    result = llm.create_chat_completion(messages=MESSAGES, temperature=0.0, max_tokens=64)
    choice = result["choices"][0]
    assert choice["message"]["content"] == EXPECTED
    assert choice["finish_reason"] == "stop"
    assert result["usage"]["completion_tokens"] <= len(DEFAULT_SCRIPT) + 1


def test_chat_completion_with_default_sampling_returns_script(llm: Any) -> None:
    """The logit margins are wide enough for default temperature sampling."""
    result = llm.create_chat_completion(messages=MESSAGES, max_tokens=64)
    assert result["choices"][0]["message"]["content"] == EXPECTED


def test_streaming_pieces_join_to_script(llm: Any) -> None:
    """Streamed deltas join to the script text."""
    pieces: list[str] = []
    finish_reasons: list[str | None] = []
    for chunk in llm.create_chat_completion(
        messages=MESSAGES, temperature=0.0, max_tokens=64, stream=True
    ):
        choice = chunk["choices"][0]
        pieces.append(choice["delta"].get("content") or "")
        finish_reasons.append(choice.get("finish_reason"))
    assert "".join(pieces) == EXPECTED
    assert finish_reasons[-1] == "stop"


def test_grammar_replaces_out_of_range_citation(llm: Any) -> None:
    """A grammar allowing only [1]..[3] turns the scripted [7] into [1]."""
    grammar = llama_cpp.LlamaGrammar.from_string(CITATION_GRAMMAR, verbose=False)
    result = llm.create_chat_completion(
        messages=MESSAGES, temperature=0.0, max_tokens=64, grammar=grammar
    )
    text = result["choices"][0]["message"]["content"]
    assert "[7]" not in text
    assert text == EXPECTED.replace("[7]", "[1]")
    assert result["choices"][0]["finish_reason"] == "stop"


def test_chat_template_comes_from_gguf_metadata(llm: Any) -> None:
    """llama-cpp-python renders the ChatML template stored in the GGUF."""
    assert llm.metadata["tokenizer.chat_template"] == CHAT_TEMPLATE
    assert llm.chat_format == "chat_template.default"
    formatter = llama_cpp.llama_chat_format.Jinja2ChatFormatter(
        template=llm.metadata["tokenizer.chat_template"],
        eos_token=IM_END_TOKEN,
        bos_token="<s>",
    )
    prompt = formatter(messages=MESSAGES).prompt
    assert prompt.startswith(f"{IM_START_TOKEN}system\n")
    assert prompt.endswith(f"{IM_START_TOKEN}assistant\n")
    assert prompt.count(IM_END_TOKEN) == len(MESSAGES)
    tokens = llm.tokenize(prompt.encode("utf-8"), add_bos=False, special=True)
    im_start_id = llm.tokenize(IM_START_TOKEN.encode(), add_bos=False, special=True)
    assert im_start_id == [3]
    assert tokens.count(3) == len(MESSAGES) + 1
    assert llm.token_eos() == 4


def test_random_model_runs_to_max_tokens(random_llm: Any) -> None:
    """The random model generates until max_tokens without error."""
    result = random_llm.create_chat_completion(messages=MESSAGES, temperature=0.0, max_tokens=16)
    choice = result["choices"][0]
    assert isinstance(choice["message"]["content"], str)
    assert result["usage"]["completion_tokens"] == 16
    assert choice["finish_reason"] == "length"


def test_tokenize_detokenize_round_trip(llm: Any) -> None:
    """ASCII and multi-byte UTF-8 text survive tokenize/detokenize."""
    text = "Alonso\u2019s contract \u2014 June 2024"
    tokens = llm.tokenize(text.encode("utf-8"), add_bos=True)
    assert tokens[0] == llm.token_bos()
    assert llm.detokenize(tokens).decode("utf-8") == text
    # Known words are single tokens; unknown characters fall back to bytes.
    for word in ("Alonso", "contract", "June", "2024"):
        assert len(llm.tokenize(word.encode("utf-8"), add_bos=False)) == 1
    assert len(tokens) < len(text.encode("utf-8")) // 2


def test_custom_script(model_dir: Path) -> None:
    """Any script of unique pieces is reproduced."""
    script = ("Bayer", " Leverkusen", " won", " [", "2", "]", "!")
    model = _load(build_tiny_gguf(model_dir / "custom.gguf", script=script))
    try:
        result = model.create_chat_completion(messages=MESSAGES, temperature=0.0, max_tokens=32)
    finally:
        model.close()
    assert result["choices"][0]["message"]["content"] == "".join(script)


def test_rejects_repeated_script_piece(tmp_path: Path) -> None:
    """Repeated pieces would make the next-token chain ambiguous."""
    with pytest.raises(ValueError, match="unique"):
        build_tiny_gguf(tmp_path / "bad.gguf", script=("a", "b", "a"))
