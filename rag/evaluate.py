"""Answer-quality evaluation: one function that the CLI, the tests and the benchmarks share.

A QA file (JSONL: id, question, answers, docs, kind, style, and optionally split) is asked question by question
through an ``Assistant``, and each answer is scored against the record: was a gold article
retrieved (top 1/5/10), was a passage holding an accepted answer in the top 5, does the answer
text contain an accepted answer, do the citations point at a gold article or quote the answer,
and did the assistant abstain where it should (and only there). Scoring is kept apart from
asking (``score_question`` and ``summarise`` are pure functions over plain values) so that the
metric arithmetic is unit-tested in milliseconds, while ``evaluate`` runs the real pipeline.

Matching is by the file name of each article's source; an answer matches text that holds it
case-insensitively, with whitespace runs collapsed, as a whole word ("10" is not in "100", "no"
is not in "November"), as ``eval/check_dataset.py`` validates them.

Questions carry a ``split`` (train, dev or test, split by article): everything tunable is fitted
on train, alternatives are compared on dev, and test is only reported. The report gives every
split its own numbers, so a change can never be judged on the questions it was fitted on.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .errors import InputError
from .matching import contains_answer
from .matching import norm as _norm
from .models import Answer, Passage

RETRIEVAL_DEPTH = 10  # passages retrieved per question for the gold@k measures


@dataclass(frozen=True)
class QARecord:
    """One question of a QA file; ``answers == []`` marks an unanswerable question."""

    id: str
    question: str
    answers: list[str]
    docs: list[str]
    kind: str = "other"
    style: str = "other"
    split: str = "all"
    evidence: list[str] = field(default_factory=list)

    @property
    def answerable(self) -> bool:
        return bool(self.answers)


def load_records(path: str | Path) -> list[QARecord]:
    """Reads a QA JSONL file; a bad line raises InputError naming the file and line."""
    p = Path(path)
    try:
        lines = p.read_text(encoding="utf-8").splitlines()
    except OSError as e:
        raise InputError(f"{p}: cannot read QA file ({e.strerror or e})") from None
    out: list[QARecord] = []
    for n, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            raise InputError(f"{p}:{n}: invalid JSON ({e.msg})") from None
        if not isinstance(obj, dict):
            raise InputError(f"{p}:{n}: expected a JSON object")
        try:
            rec = QARecord(
                id=str(obj["id"]), question=str(obj["question"]),
                answers=[str(a) for a in obj.get("answers") or []],
                docs=[str(d) for d in obj.get("docs") or []],
                kind=str(obj.get("kind") or "other"), style=str(obj.get("style") or "other"),
                split=str(obj.get("split") or "all"),
                evidence=[str(e) for e in obj.get("evidence") or []],
            )
        except KeyError as e:
            raise InputError(f"{p}:{n}: missing field {e.args[0]!r}") from None
        if not rec.question.strip():
            raise InputError(f"{p}:{n}: empty question")
        out.append(rec)
    if not out:
        raise InputError(f"{p}: no questions")
    return out


# ---------------------------------------------------------------- scoring one question


def doc_name(source: str) -> str:
    """The file name of an article's source ("/x/bbc/001.txt#3 (url)" -> "001.txt")."""
    s = source.split(" (", 1)[0].split("#", 1)[0]
    return s.replace("\\", "/").rsplit("/", 1)[-1]


@dataclass
class QuestionResult:
    """How one question went. Ranks are 1-based; None means not in the retrieved passages."""

    id: str
    question: str
    kind: str
    style: str
    answerable: bool
    gold_rank: int | None
    answer_rank: int | None
    hit: bool
    lead: bool  # the answer's lead (short answer, else first line) holds an accepted answer
    abstained: bool
    citations: int
    good_citations: int
    latency_ms: float
    answer: str
    cited: list[str] = field(default_factory=list)
    split: str = "all"

    @property
    def passed(self) -> bool:
        """Answered with an accepted answer and only good citations, or rightly abstained."""
        if not self.answerable:
            return self.abstained
        return self.hit and self.citations > 0 and self.good_citations == self.citations


def score_question(record: QARecord, answer: Answer, passages: Sequence[Passage],
                   latency_ms: float) -> QuestionResult:
    """Scores one answer and the ranked passages retrieved for its question."""
    gold = {d.lower() for d in record.docs}
    gold_rank = answer_rank = None
    for i, p in enumerate(passages, start=1):
        if gold_rank is None and doc_name(p.article.source).lower() in gold:
            gold_rank = i
        if answer_rank is None and record.answers and contains_answer(p.chunk.text, record.answers):
            answer_rank = i
    good = 0
    cited = [] if answer.abstained else answer.citations  # "closest evidence" is not an answer's citation
    for c in cited:
        if doc_name(c.source).lower() in gold or (record.answers and contains_answer(c.quote, record.answers)):
            good += 1
    lead_text = answer.short_answer or (answer.text.strip().splitlines() or [""])[0]
    if record.kind == "yes_no":  # "no" is in many answers: a yes/no answer must lead with it
        words = _norm(lead_text).split()
        first = words[0].strip(".,!;:") if words else ""
        hit = bool(record.answers) and not answer.abstained and first in {_norm(a) for a in record.answers}
    else:
        hit = bool(record.answers) and not answer.abstained and contains_answer(answer.text, record.answers)
    lead = hit and (record.kind == "yes_no" or contains_answer(lead_text, record.answers))
    return QuestionResult(
        id=record.id, question=record.question, kind=record.kind, style=record.style, split=record.split,
        answerable=record.answerable, gold_rank=gold_rank, answer_rank=answer_rank, hit=hit, lead=lead,
        abstained=answer.abstained, citations=len(cited), good_citations=good,
        latency_ms=latency_ms, answer=answer.text, cited=[doc_name(c.source) for c in cited],
    )


# ---------------------------------------------------------------- totals


@dataclass
class Metrics:
    """Totals over a set of questions. Shares are 0..1; None when the set has no such question.

    Retrieval, answer hit and citation precision are over answerable questions (citation
    precision over all their citations); ``unanswerable_abstained`` is over unanswerable ones.
    """

    questions: int
    answerable: int
    unanswerable: int
    gold_at_1: float | None
    gold_at_5: float | None
    gold_at_10: float | None
    answer_at_5: float | None
    answer_hit: float | None
    lead_hit: float | None
    citation_precision: float | None
    unanswerable_abstained: float | None
    answerable_abstained: float | None
    passed: int
    latency_median_ms: float
    latency_p95_ms: float


def _share(flags: list[bool]) -> float | None:
    return sum(flags) / len(flags) if flags else None


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100); 0.0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    k = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[k - 1]


def summarise(results: Sequence[QuestionResult]) -> Metrics:
    ans = [r for r in results if r.answerable]
    una = [r for r in results if not r.answerable]
    cites = sum(r.citations for r in ans)
    lat = [r.latency_ms for r in results]
    return Metrics(
        questions=len(results), answerable=len(ans), unanswerable=len(una),
        gold_at_1=_share([r.gold_rank is not None and r.gold_rank <= 1 for r in ans]),
        gold_at_5=_share([r.gold_rank is not None and r.gold_rank <= 5 for r in ans]),
        gold_at_10=_share([r.gold_rank is not None and r.gold_rank <= 10 for r in ans]),
        answer_at_5=_share([r.answer_rank is not None and r.answer_rank <= 5 for r in ans]),
        answer_hit=_share([r.hit for r in ans]),
        lead_hit=_share([r.lead for r in ans]),
        citation_precision=(sum(r.good_citations for r in ans) / cites) if cites else None,
        unanswerable_abstained=_share([r.abstained for r in una]),
        answerable_abstained=_share([r.abstained for r in ans]),
        passed=sum(r.passed for r in results),
        latency_median_ms=statistics.median(lat) if lat else 0.0,
        latency_p95_ms=percentile(lat, 95),
    )


@dataclass
class EvalReport:
    """The whole evaluation: totals, breakdowns by kind and style, and every question."""

    name: str
    settings: dict[str, Any]
    total: Metrics
    by_kind: dict[str, Metrics]
    by_style: dict[str, Metrics]
    questions: list[QuestionResult]
    by_split: dict[str, "EvalReport"] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        for q, r in zip(d["questions"], self.questions):
            q["passed"] = r.passed
        return d

    def table(self, *, per_question: bool = False) -> str:
        """A compact plain-text table (what ``rag eval`` prints)."""
        return format_report(self, per_question=per_question)


SPLIT_ORDER = ("train", "dev", "test")


def build_report(name: str, results: Sequence[QuestionResult], settings: dict[str, Any] | None = None) -> EvalReport:
    """Totals, breakdowns by kind and style, and (when the questions carry splits) one report
    per split, in the order train, dev, test."""
    def groups(rs: Sequence[QuestionResult], key: Callable[[QuestionResult], str]) -> dict[str, Metrics]:
        names = sorted({key(r) for r in rs})
        return {n: summarise([r for r in rs if key(r) == n]) for n in names}

    def one(label: str, rs: Sequence[QuestionResult]) -> EvalReport:
        return EvalReport(name=label, settings=dict(settings or {}), total=summarise(rs),
                          by_kind=groups(rs, lambda r: r.kind), by_style=groups(rs, lambda r: r.style),
                          questions=list(rs))

    report = one(name, results)
    splits = sorted({r.split for r in results}, key=lambda s: (SPLIT_ORDER.index(s) if s in SPLIT_ORDER else 9, s))
    if splits != ["all"]:
        report.by_split = {s: one(f"{name} [{s}]", [r for r in results if r.split == s]) for s in splits}
    return report


# ---------------------------------------------------------------- running


def evaluate(assistant, records: Sequence[QARecord], *, top_k: int | None = None, name: str = "qa",
             progress: Callable[[int, int], None] | None = None) -> EvalReport:
    """Asks every question through ``assistant`` and scores the answers.

    Retrieval measures use the assistant's retriever at depth ``max(10, top_k)``; the answer is
    ``assistant.ask(question, top_k=top_k)`` exactly as a user gets it, and its wall time is
    the question's latency.
    """
    k = top_k or assistant.top_k
    results: list[QuestionResult] = []
    for i, rec in enumerate(records, start=1):
        passages = assistant.retrieve(rec.question, top_k=max(RETRIEVAL_DEPTH, k))
        t0 = time.perf_counter()
        answer = assistant.ask(rec.question, top_k=k)
        ms = (time.perf_counter() - t0) * 1000
        results.append(score_question(rec, answer, passages, ms))
        if progress is not None:
            progress(i, len(records))
    cfg = getattr(getattr(assistant, "retriever", None), "config", None)
    settings: dict[str, Any] = {
        "top_k": k,
        "embedder": getattr(assistant.embedder, "name", type(assistant.embedder).__name__),
        "answerer": getattr(assistant.answerer, "mode", type(assistant.answerer).__name__),
        "retrieval": asdict(cfg) if cfg is not None else None,
        "reranker": getattr(getattr(assistant, "reranker", None), "name", None),
    }
    return build_report(name, results, settings)


def eval_index_dir(corpus: str | Path, embedder_name: str) -> Path:
    """A cache folder for a corpus's index, keyed by the corpus path and the embedder.

    ``$RAG_EVAL_CACHE``, else ``$XDG_CACHE_HOME/football-rag/eval``, else
    ``~/.cache/football-rag/eval``. Reused across runs: re-indexing skips unchanged files.
    """
    base = os.environ.get("RAG_EVAL_CACHE")
    if base:
        root = Path(base).expanduser()
    else:
        xdg = os.environ.get("XDG_CACHE_HOME")
        root = (Path(xdg).expanduser() if xdg else Path.home() / ".cache") / "football-rag" / "eval"
    resolved = str(Path(corpus).expanduser().resolve())
    key = hashlib.sha256(f"{resolved}\0{embedder_name}".encode()).hexdigest()[:12]
    return root / f"{Path(resolved).name or 'corpus'}-{key}"


def sync_corpus(assistant, corpus: str | Path) -> None:
    """Indexes a corpus folder (unchanged files are skipped) and drops articles whose file is gone."""
    corpus = Path(corpus).expanduser()
    if not corpus.is_dir():
        raise InputError(f"{corpus}: corpus folder not found")
    assistant.add([corpus], progress=False)
    root = str(corpus.resolve())
    for info in assistant.store.list_articles():
        src = info.source.split(" (", 1)[0].split("#", 1)[0]
        if src.startswith(root) and not Path(src).exists():
            assistant.remove(info.id)


# ---------------------------------------------------------------- printing


def _pct(x: float | None) -> str:
    return "   -" if x is None else f"{x:4.2f}"


_COLS = [("n", 4), ("gold@1", 6), ("gold@5", 6), ("gold@10", 7), ("ans@5", 5), ("hit", 4),
         ("lead", 4), ("cite", 4), ("abst-U", 6), ("abst-A", 6), ("pass", 7)]


def _row(label: str, m: Metrics, width: int) -> str:
    vals = [str(m.questions), _pct(m.gold_at_1), _pct(m.gold_at_5), _pct(m.gold_at_10),
            _pct(m.answer_at_5), _pct(m.answer_hit), _pct(m.lead_hit), _pct(m.citation_precision),
            _pct(m.unanswerable_abstained), _pct(m.answerable_abstained), f"{m.passed}/{m.questions}"]
    return f"{label:<{width}}" + "".join(f" {v:>{w}}" for v, (_, w) in zip(vals, _COLS))


def _block(report: EvalReport, width: int) -> list[str]:
    lines = [_row("total", report.total, width)]
    lines += [_row(f"kind={k}", m, width) for k, m in report.by_kind.items()]
    lines += [_row(f"style={st}", m, width) for st, m in report.by_style.items()]
    return lines


def format_report(report: EvalReport, *, per_question: bool = False) -> str:
    """The table ``rag eval`` prints: with splits, one line per split first, then each split's
    breakdown by kind and style; the questions not passed (or all, with ``per_question``)."""
    parts = list(report.by_split.values()) or [report]
    labels = ["total"] + [f"split={sp}" for sp in report.by_split]
    for r in parts:
        labels += [f"kind={k}" for k in r.by_kind] + [f"style={st}" for st in r.by_style]
    width = max(len(x) for x in labels) + 1
    head = f"{'':<{width}}" + "".join(f" {name:>{w}}" for name, w in _COLS)
    t = report.total
    lines = [f"{report.name}: {t.questions} questions ({t.answerable} answerable, {t.unanswerable} unanswerable)"]
    if report.by_split:
        lines += [head] + [_row(f"split={sp}", r.total, width) for sp, r in report.by_split.items()]
        lines.append(_row("all", report.total, width))
        for sp, r in report.by_split.items():
            lines += ["", f"{sp}: {r.total.questions} questions", head] + _block(r, width)
    else:
        lines += [head] + _block(report, width)
    lines.append(f"latency per question: median {t.latency_median_ms:.0f} ms, p95 {t.latency_p95_ms:.0f} ms")
    lines.append("gold@k: a gold article in the top k passages; ans@5: a passage with an accepted answer in the "
                 "top 5; hit: answer text holds an accepted answer; lead: so does its short answer (or first "
                 "line); cite: citation precision; "
                 "abst-U/abst-A: unanswerable/answerable questions abstained on")
    shown = report.questions if per_question else [r for r in report.questions if not r.passed]
    if shown:
        lines.append("" if per_question else "not passed:")
        for r in shown:
            status = "ok  " if r.passed else ("MISS" if r.answerable else "FALSE")
            ans = " ".join(r.answer.split())
            tag = f"[{r.split}] " if r.split != "all" else ""
            lines.append(f"  {status} {tag}{r.id:<10} gold@{r.gold_rank or '-'} ans@{r.answer_rank or '-'} "
                         f"cites {r.good_citations}/{r.citations} {r.latency_ms:.0f}ms  {r.question}")
            lines.append(f"       -> {ans[:150]}")
    return "\n".join(lines)
