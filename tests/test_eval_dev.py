"""Answer quality on the dev and check sets (eval/bbc_dev.jsonl, eval/bbc_check.jsonl, over the
BBC corpus in ../shared), with the product's default embedder and settings: floors a little
below the measured numbers, so a regression fails here. The numbers themselves, and how they were reached, are in
docs/EVALUATION.md."""

from __future__ import annotations

from dataclasses import replace

import pytest

from rag.evaluate import EvalReport, contains_answer, evaluate, load_records
from rag.retrieve import RetrievalConfig
from tests.conftest import BBC, ROOT

DEV = ROOT / "eval" / "bbc_dev.jsonl"
CHECK = ROOT / "eval" / "bbc_check.jsonl"

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def bbc_assistant(tmp_path_factory):
    """The 265 BBC articles indexed once for this module, with the default embedder."""
    from rag import Assistant

    assert BBC.is_dir(), f"the BBC corpus is expected at {BBC}"
    a = Assistant(tmp_path_factory.mktemp("bbc-index"), seed=False, quiet=True)
    report = a.add([BBC])
    assert report.failed == 0 and report.added + report.skipped == 265
    yield a
    a.close()


@pytest.fixture(scope="module")
def dev_report(bbc_assistant) -> EvalReport:
    return evaluate(bbc_assistant, load_records(DEV), name="bbc_dev")


def _assert_floors(t, *, at_least: dict[str, float], at_most: dict[str, float]) -> None:
    low = {k: getattr(t, k) for k, v in at_least.items() if getattr(t, k) < v}
    high = {k: getattr(t, k) for k, v in at_most.items() if getattr(t, k) > v}
    assert not low and not high, (low, high, t)


def test_dev_set_floors(dev_report):
    t = dev_report.total
    assert (t.answerable, t.unanswerable) == (85, 23)
    # measured 0.92 / 0.99 / 0.80 / 0.76 / 0.94 / 0.83 / 0.04 with the int8 embedder (its
    # vectors move slightly with how chunks were batched when the index was built, so the same
    # code gives a pass or two more or less out of 108 on different builds)
    _assert_floors(t, at_least={"answer_at_5": 0.87, "gold_at_5": 0.95, "answer_hit": 0.74, "lead_hit": 0.70,
                                "citation_precision": 0.89, "unanswerable_abstained": 0.70},
                   at_most={"answerable_abstained": 0.07})


def test_check_set_floors(bbc_assistant):
    """The second set, which nothing is fitted on (eval/bbc_check.jsonl)."""
    t = evaluate(bbc_assistant, load_records(CHECK), name="bbc_check").total
    assert (t.answerable, t.unanswerable) == (40, 12)
    # measured 0.95 / 1.00 / 0.60 / 0.55 / 0.92 / 0.58 / 0.17
    _assert_floors(t, at_least={"answer_at_5": 0.90, "gold_at_5": 0.95, "answer_hit": 0.52,
                                "citation_precision": 0.86, "unanswerable_abstained": 0.41},
                   at_most={"answerable_abstained": 0.28})


def test_every_citation_is_an_exact_quote(dev_report, bbc_assistant):
    for q in dev_report.questions:
        answer = bbc_assistant.ask(q.question)
        for c in answer.citations:
            assert bbc_assistant.store.article(c.article_id).text[c.start:c.end] == c.quote
            assert f"[{c.n}]" in answer.text


def _answer_at_5(assistant, records, cfg: RetrievalConfig) -> float:
    saved = assistant.retriever.config
    assistant.retriever.config = cfg
    try:
        hits = [any(contains_answer(p.chunk.text, r.answers) for p in assistant.retrieve(r.question, top_k=5))
                for r in records if r.answers]
    finally:
        assistant.retriever.config = saved
    return sum(hits) / len(hits)


def test_hybrid_retrieval_beats_each_baseline(bbc_assistant, dev_report):
    records = load_records(DEV)
    default = RetrievalConfig()
    hybrid = dev_report.total.answer_at_5
    for mode in ("dense", "bm25", "rrf"):
        baseline = _answer_at_5(bbc_assistant, records, replace(default, mode=mode))
        assert hybrid >= baseline + 0.03, (mode, baseline, hybrid)
