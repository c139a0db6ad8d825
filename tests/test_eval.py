"""The evaluation metrics, computed on hand-made answers and passages (milliseconds), and
``rag eval`` on the seeds with the real pipeline (integration)."""

from __future__ import annotations

import json

import pytest

from rag.errors import InputError
from rag.evaluate import (
    QARecord,
    build_report,
    contains_answer,
    doc_name,
    eval_index_dir,
    evaluate,
    load_records,
    percentile,
    score_question,
    summarise,
)
from rag.models import Answer, Article, Chunk, Citation, Passage
from tests.conftest import SEEDS, SEEDS_QA

TEXT = "Gold headline\n\nFortune headed home after 23 minutes. Ronaldo scored later."
GOLD = Article(id="001", title="Gold headline", date=None, source="/corpus/001.txt", text=TEXT)
OTHER = Article(id="002", title="Other", date=None, source="/corpus/002.txt", text="Other\n\nNothing here at all.")


def _passage(article: Article, text: str) -> Passage:
    start = article.text.index(text)
    chunk = Chunk(id=hash(text) % 1000, article_id=article.id, ordinal=0, text=text, start=start, end=start + len(text))
    return Passage(chunk=chunk, article=article, score=1.0)


def _citation(n: int, article: Article, quote: str) -> Citation:
    start = article.text.index(quote)
    return Citation(n=n, article_id=article.id, title=article.title, date=article.date, source=article.source,
                    quote=quote, start=start, end=start + len(quote))


def _answer(text: str, citations: list[Citation], *, abstained: bool = False, short: str | None = None) -> Answer:
    return Answer(question="q", text=text, citations=citations, passages=[], abstained=abstained,
                  mode="extractive", short_answer=short)


REC = QARecord(id="q1", question="Who scored first?", answers=["Quinton Fortune", "Fortune"], docs=["001.txt"],
               kind="who", style="lexical")
UNANSWERABLE = QARecord(id="u1", question="Who won in 2030?", answers=[], docs=[], kind="who", style="unanswerable")


def test_ranks_hit_lead_and_citations():
    passages = [_passage(OTHER, "Nothing here at all."), _passage(GOLD, "Ronaldo scored later."),
                _passage(GOLD, "Fortune headed home after 23 minutes.")]
    answer = _answer("Fortune [1].\nFortune headed home after 23 minutes. [1] Nothing here at all. [2]",
                     [_citation(1, GOLD, "Fortune headed home after 23 minutes."),
                      _citation(2, OTHER, "Nothing here at all.")], short="Fortune")
    r = score_question(REC, answer, passages, latency_ms=12.0)
    assert (r.gold_rank, r.answer_rank) == (2, 3)
    assert r.hit and r.lead and not r.abstained
    assert (r.citations, r.good_citations) == (2, 1)
    assert r.cited == ["001.txt", "002.txt"]
    assert not r.passed  # one citation points nowhere useful


def test_a_citation_quoting_the_answer_counts_even_from_another_article():
    other = Article(id="009", title="T", date=None, source="/c/009.txt", text="T\n\nFortune was superb.")
    answer = _answer("Fortune [1].", [_citation(1, other, "Fortune was superb.")], short="Fortune")
    r = score_question(REC, answer, [], latency_ms=1.0)
    assert r.good_citations == 1 and r.gold_rank is None and r.passed


def test_hit_is_case_insensitive_and_lead_needs_the_short_answer():
    answer = _answer("Ronaldo [1].\nquinton   FORTUNE scored [1]", [_citation(1, GOLD, "Ronaldo scored later.")],
                     short="Ronaldo")
    r = score_question(REC, answer, [], latency_ms=1.0)
    assert r.hit and not r.lead


def test_abstaining_is_never_a_hit_even_when_the_question_is_echoed():
    rec = QARecord(id="q2", question="Did Fortune score?", answers=["Fortune"], docs=["001.txt"])
    answer = _answer('The indexed articles don\'t say "did Fortune score".', [], abstained=True)
    r = score_question(rec, answer, [], latency_ms=1.0)
    assert not r.hit and r.abstained and not r.passed


def test_unanswerable_passes_only_when_abstained():
    abstained = score_question(UNANSWERABLE, _answer("don't say", [], abstained=True), [], 1.0)
    answered = score_question(UNANSWERABLE, _answer("X [1]", [_citation(1, GOLD, "Ronaldo scored later.")]), [], 1.0)
    assert abstained.passed and not answered.passed
    assert answered.good_citations == 0


def _result(**kw):
    base = dict(id="x", question="q", kind="who", style="lexical", answerable=True, gold_rank=1, answer_rank=1,
                hit=True, lead=True, abstained=False, citations=1, good_citations=1, latency_ms=10.0, answer="a")
    base.update(kw)
    from rag.evaluate import QuestionResult

    return QuestionResult(**base)


def test_summary_shares():
    results = [
        _result(id="a", gold_rank=1, answer_rank=1, latency_ms=10.0),
        _result(id="b", gold_rank=4, answer_rank=6, hit=False, lead=False, citations=2, good_citations=1, latency_ms=20.0),
        _result(id="c", gold_rank=None, answer_rank=None, hit=False, lead=False, abstained=True, citations=0,
                good_citations=0, latency_ms=30.0),
        _result(id="d", answerable=False, gold_rank=None, answer_rank=None, hit=False, lead=False, abstained=True,
                citations=0, good_citations=0, style="unanswerable", latency_ms=40.0),
        _result(id="e", answerable=False, gold_rank=None, answer_rank=None, hit=False, lead=False, abstained=False,
                citations=3, good_citations=0, style="unanswerable", latency_ms=50.0),
    ]
    m = summarise(results)
    assert (m.questions, m.answerable, m.unanswerable) == (5, 3, 2)
    assert m.gold_at_1 == pytest.approx(1 / 3)
    assert m.gold_at_5 == pytest.approx(2 / 3)
    assert m.gold_at_10 == pytest.approx(2 / 3)
    assert m.answer_at_5 == pytest.approx(1 / 3)
    assert m.answer_hit == pytest.approx(1 / 3)
    assert m.citation_precision == pytest.approx(2 / 3)  # answerable questions' citations only
    assert m.unanswerable_abstained == pytest.approx(1 / 2)
    assert m.answerable_abstained == pytest.approx(1 / 3)
    assert m.passed == 2
    assert m.latency_median_ms == 30.0 and m.latency_p95_ms == 50.0


def test_shares_are_none_where_a_group_has_no_such_question():
    m = summarise([_result(answerable=False, hit=False, abstained=True, citations=0, good_citations=0)])
    assert m.answer_hit is None and m.gold_at_1 is None and m.citation_precision is None
    assert m.unanswerable_abstained == 1.0 and m.answerable_abstained is None


def test_percentile_nearest_rank():
    assert percentile([], 95) == 0.0
    assert percentile([5.0], 95) == 5.0
    assert percentile(list(range(1, 101)), 95) == 95
    assert percentile([3.0, 1.0, 2.0], 50) == 2.0


def test_report_breakdowns_dict_and_table():
    results = [_result(id="a", kind="who"), _result(id="b", kind="when", style="paraphrase", hit=False, lead=False),
               _result(id="c", answerable=False, kind="who", style="unanswerable", abstained=True, hit=False,
                       lead=False, citations=0, good_citations=0)]
    report = build_report("demo.jsonl", results, {"top_k": 5})
    assert set(report.by_kind) == {"who", "when"} and report.by_kind["who"].questions == 2
    assert set(report.by_style) == {"lexical", "paraphrase", "unanswerable"}
    d = report.to_dict()
    assert json.loads(json.dumps(d))["questions"][1]["passed"] is False
    table = report.table()
    assert "kind=when" in table and "style=unanswerable" in table and "MISS b" in table
    assert "a " not in table.split("not passed:")[1].split("\n")[1][:8]  # passed questions are not listed
    assert "ok" in report.table(per_question=True)


def test_doc_names_and_answer_matching():
    assert doc_name("/x/bbc/001.txt") == "001.txt"
    assert doc_name("/x/a.jsonl#3") == "a.jsonl"
    assert doc_name("/x/page.html (https://example.com/a)") == "page.html"
    assert contains_answer("the  Mottram\nHall hotel", ["mottram hall"])
    assert not contains_answer("Hall", ["Mottram Hall"])


def test_load_records_and_its_errors(tmp_path):
    good = tmp_path / "qa.jsonl"
    good.write_text('{"id": "a", "question": "Q?", "answers": ["x"], "docs": ["1.txt"], "kind": "who", '
                    '"style": "lexical"}\n\n{"id": "b", "question": "R?", "answers": [], "docs": []}\n')
    recs = load_records(good)
    assert [r.id for r in recs] == ["a", "b"] and recs[1].kind == "other" and not recs[1].answerable
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "a", "question": "Q?"}\n{not json\n')
    with pytest.raises(InputError, match=r"bad.jsonl:2: invalid JSON"):
        load_records(bad)
    missing = tmp_path / "missing.jsonl"
    missing.write_text('{"question": "Q?"}\n')
    with pytest.raises(InputError, match=r"missing.jsonl:1: missing field 'id'"):
        load_records(missing)
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n")
    with pytest.raises(InputError, match="no questions"):
        load_records(empty)
    with pytest.raises(InputError, match="cannot read"):
        load_records(tmp_path / "nope.jsonl")


def test_index_cache_is_keyed_by_corpus_and_embedder(tmp_path, monkeypatch):
    monkeypatch.setenv("RAG_EVAL_CACHE", str(tmp_path / "cache"))
    a = eval_index_dir(SEEDS, "emb-a")
    assert a.parent == tmp_path / "cache" and a.name.startswith("seeds-")
    assert eval_index_dir(SEEDS, "emb-a") == a
    assert eval_index_dir(SEEDS, "emb-b") != a
    assert eval_index_dir(tmp_path, "emb-a") != a


def test_evaluate_runs_the_assistant_on_every_question(fake_assistant):
    records = [QARecord(id="s1", question="How many games did Alonso play for Real Madrid?", answers=["236"],
                        docs=["002_0df7e0b7cc0cc3af.txt"], kind="how_many", style="lexical"),
               QARecord(id="s2", question="Who won the 2030 Ballon d'Or?", answers=[], docs=[], kind="who",
                        style="unanswerable")]
    seen = []
    report = evaluate(fake_assistant, records, top_k=3, name="mini", progress=lambda d, t: seen.append((d, t)))
    assert seen == [(1, 2), (2, 2)]
    assert [q.id for q in report.questions] == ["s1", "s2"]
    assert report.settings["top_k"] == 3 and report.settings["embedder"] == "hash-64"
    first = report.questions[0]
    assert first.gold_rank is not None  # the two seed articles are the whole index
    assert first.latency_ms > 0


def test_cli_eval_reports_a_bad_qa_file_on_one_line(tmp_path, capsys):
    from rag.cli import main

    code = main(["eval", str(tmp_path / "absent.jsonl")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "absent.jsonl" in err[0]


@pytest.mark.integration
def test_cli_eval_on_the_seeds(tmp_path, monkeypatch, capsys):
    """`rag eval` with the default (packaged) embedder: index cached, the seeds floor holds."""
    from rag.cli import main

    monkeypatch.setenv("RAG_EVAL_CACHE", str(tmp_path / "cache"))
    assert main(["eval", str(SEEDS_QA), "--corpus", str(SEEDS), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["total"]["questions"] == 18
    passed = sum(q["passed"] for q in report["questions"])
    assert passed >= 14 and report["total"]["unanswerable_abstained"] == 1.0  # measured 15/18
    assert report["total"]["citation_precision"] >= 0.8
    # a second run reuses the cached index and prints the table
    assert main(["eval", str(SEEDS_QA), "--corpus", str(SEEDS)]) == 0
    out = capsys.readouterr().out
    assert f"{passed}/18" in out.splitlines()[2]


@pytest.mark.integration
def test_evaluate_on_the_seeds_with_the_session_index(seeds_assistant):
    report = evaluate(seeds_assistant, load_records(SEEDS_QA), name="seeds")
    assert report.total.questions == 18 and report.total.passed >= 14  # measured 15
    assert report.total.answer_hit >= 0.75 and report.total.unanswerable_abstained == 1.0
    assert report.total.answer_at_5 == 1.0


def test_the_peers_worker_uses_the_projects_own_matching():
    """bench/peers_worker.py runs where the rag package cannot be imported: it loads
    rag/matching.py by path, so its answer matching is this very function's."""
    import importlib.util

    from tests.conftest import ROOT

    spec = importlib.util.spec_from_file_location("peers_worker", ROOT / "bench" / "peers_worker.py")
    worker = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(worker)
    assert worker.contains_answer.__code__.co_filename == contains_answer.__code__.co_filename
    assert worker.contains_answer("the  Mottram\nHall hotel", ["mottram hall"])
    assert not worker.contains_answer("Hall", ["Mottram Hall"])
