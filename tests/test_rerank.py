"""The optional cross-encoder reranker, with a tiny randomly initialised BERT cross-encoder that
the test builds and saves itself (no weights are downloaded): the passages come back in the
order of the model's own scores, through Assistant(reranker=...) and `rag ask --reranker`."""

from __future__ import annotations

import json

import pytest

from rag.retrieve import RetrievalConfig

from rag.errors import ConfigError
from rag.rerank import CrossEncoderReranker, make_reranker

WORDS = """alonso real madrid leverkusen contract june games played coach club season manager
bayern league cup final won beat the a of in to and for his he was is""".split()


@pytest.fixture(scope="module")
def tiny_cross_encoder(tmp_path_factory):
    """A 1-layer, 32-wide BERT sequence classifier with a word-level vocabulary."""
    import torch
    from transformers import BertConfig, BertForSequenceClassification, BertTokenizerFast

    d = tmp_path_factory.mktemp("tiny-cross-encoder")
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS]
    (d / "vocab.txt").write_text("\n".join(vocab) + "\n")
    tokenizer = BertTokenizerFast(vocab_file=str(d / "vocab.txt"), do_lower_case=True)
    config = BertConfig(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=256, num_labels=1)
    torch.manual_seed(0)
    model = BertForSequenceClassification(config)
    model.save_pretrained(d)
    tokenizer.save_pretrained(d)
    return d


pytestmark = pytest.mark.integration


def test_rerank_orders_by_the_models_scores(tiny_cross_encoder, fake_assistant):
    question = "How many games did Alonso play for Real Madrid?"
    fake_assistant.retriever.config = RetrievalConfig(context_words=0)  # the seeds' chunks, unmerged
    pool = fake_assistant.retrieve(question, top_k=6)
    rr = CrossEncoderReranker(tiny_cross_encoder, candidates=6)
    scores = rr.scores(question, pool)
    assert len(scores) == len(pool) and len(set(scores)) > 1  # random weights, distinct scores
    got = rr.rerank(fake_assistant.retriever.analyse(question), pool, top_k=3)
    expected = sorted(range(len(pool)), key=lambda i: -scores[i])[:3]
    assert [p.chunk.id for p in got] == [pool[i].chunk.id for i in expected]
    assert [p.score for p in got] == sorted(scores, reverse=True)[:3]


def test_assistant_with_a_reranker(tiny_cross_encoder, tmp_path, fake_embedder):
    from rag import Assistant
    from tests.conftest import SEEDS

    unwidened = RetrievalConfig(context_words=0)  # the seeds' chunks, unmerged
    plain = Assistant(tmp_path / "a", embedder=fake_embedder, seed=SEEDS, quiet=True, retrieval=unwidened)
    ranked = Assistant(tmp_path / "b", embedder=fake_embedder, seed=SEEDS, quiet=True,
                       reranker=str(tiny_cross_encoder), retrieval=unwidened)
    question = "When does Alonso's contract expire?"
    pool = plain.retrieve(question, top_k=ranked.retriever.reranker.candidates)
    scores = ranked.retriever.reranker.scores(question, pool)
    best = max(range(len(pool)), key=lambda i: scores[i])
    answer = ranked.ask(question, top_k=2)
    assert answer.passages[0].chunk.text == pool[best].chunk.text
    assert len(answer.passages) == 2
    plain.close()
    ranked.close()


def test_cli_ask_with_a_reranker(tiny_cross_encoder, tmp_path, capsys, monkeypatch):
    from rag.cli import main

    monkeypatch.setenv("RAG_INDEX", str(tmp_path / "idx"))
    code = main(["ask", "When does Alonso's contract expire?", "--reranker", str(tiny_cross_encoder), "--json"])
    assert code == 0
    answer = json.loads(capsys.readouterr().out)
    assert 1 <= len(answer["passages"]) <= 5  # widened passages of the two seed articles merge


def test_a_folder_that_is_not_a_model_is_a_one_line_error(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    rr = CrossEncoderReranker(tmp_path)
    with pytest.raises(ConfigError, match="cannot load reranker") as e:
        rr.model
    assert "\n" not in str(e.value)


def test_bad_reranker_specs_fail_early(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        make_reranker(tmp_path / "missing")
    with pytest.raises(ConfigError, match="not a model folder"):
        make_reranker(tmp_path)
    with pytest.raises(ConfigError, match="empty"):
        make_reranker(" ")
    with pytest.raises(ConfigError, match="candidates"):
        CrossEncoderReranker("some-name", candidates=0)
    with pytest.raises(ConfigError, match="model name or path"):
        make_reranker(42)
    assert make_reranker(None) is None
