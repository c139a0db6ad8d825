"""The acceptance set over the seeds: every answerable question answered and cited, every
unanswerable one abstained - with the real embedder, FAISS and SQLite."""

from __future__ import annotations

import json

import pytest

from tests.conftest import SEEDS_QA

RECORDS = [json.loads(line) for line in SEEDS_QA.read_text().splitlines() if line.strip()]


@pytest.mark.integration
@pytest.mark.parametrize("rec", RECORDS, ids=[r["id"] for r in RECORDS])
def test_seed_question(seeds_assistant, rec):
    """Every answer, sure or not, quotes exactly; an unanswerable question is never answered."""
    answer = seeds_assistant.ask(rec["question"])
    for c in answer.citations:
        article = seeds_assistant.store.article(c.article_id)
        assert article.text[c.start:c.end] == c.quote
        assert f"[{c.n}]" in answer.text
    if not rec["answers"]:
        assert answer.abstained and "don't say" in answer.text, answer.text
        return
    if not answer.abstained:
        cited = {c.source.rsplit("/", 1)[-1] for c in answer.citations}
        assert cited & set(rec["docs"]), (cited, rec["docs"])


@pytest.mark.integration
def test_seed_questions_answered(seeds_assistant):
    """The acceptance floor: measured 15 of the 15 answerable seed questions answered right or
    shown as closest evidence holding the answer, 13 of them answered with confidence
    (docs/EVALUATION.md)."""
    right = closest = 0
    for rec in RECORDS:
        if not rec["answers"]:
            continue
        answer = seeds_assistant.ask(rec["question"])
        holds = any(a.lower() in answer.text.lower() for a in rec["answers"])
        right += holds and not answer.abstained
        closest += holds
    assert right >= 12 and closest >= 14, (right, closest)


@pytest.mark.integration
def test_alonso_contract_cites_dated_seed(seeds_assistant):
    answer = seeds_assistant.ask("When does Alonso's contract expire?")
    assert answer.short_answer == "June 2024"
    first = answer.citations[0]
    assert first.source.endswith("002_0df7e0b7cc0cc3af.txt")
    assert first.date == "2023-07-25"
    assert "June 2024" in first.quote
