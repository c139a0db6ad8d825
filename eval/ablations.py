"""Measure what each retrieval and answering step is worth on a QA set.

Runs ``rag.evaluate.evaluate`` on one index with one step switched off (or a baseline switched
on) at a time and prints a Markdown table, the one docs/EVALUATION.md shows. Every variant is a
setting of the product (``RetrievalConfig``, ``ExtractiveAnswerer``), so what is measured here is
what ships.

Usage (from the repository root)::

    .venv/bin/python eval/ablations.py eval/bbc_dev.jsonl --corpus ../shared/corpora/bbc-football
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from rag.answer import ExtractiveAnswerer  # noqa: E402
from rag.assistant import Assistant  # noqa: E402
from rag.embed import make_embedder  # noqa: E402
from rag.evaluate import Metrics, eval_index_dir, evaluate, load_records, sync_corpus  # noqa: E402
from rag.retrieve import RetrievalConfig  # noqa: E402

DEFAULT = RetrievalConfig()

# (label, retrieval settings, answerer settings)
VARIANTS: list[tuple[str, RetrievalConfig, dict]] = [
    ("dense only", RetrievalConfig(mode="dense"), {}),
    ("BM25 only", RetrievalConfig(mode="bm25"), {}),
    ("plain RRF (k=60, equal weights)", RetrievalConfig(mode="rrf"), {}),
    ("hybrid, no alias expansion", replace(DEFAULT, aliases=False), {}),
    ("hybrid, expansions also in the embedder's text", replace(DEFAULT, dense_aliases=True), {}),
    ("hybrid, RRF k=60 and equal weights", replace(DEFAULT, rrf_k=60, lexical_weight=1.0), {}),
    ("hybrid, no bridge hop", replace(DEFAULT, bridge_weight=0.0), {}),
    ("hybrid, no per-article cap", replace(DEFAULT, per_article=0), {}),
    ("answerer: no second hop", DEFAULT, {"bridge_coverage": 2.0}),
    ("answerer: no rarity weighting", DEFAULT, {"rarity_floor": 1.0}),
    ("answerer: no abstention model (rules only)", DEFAULT, {"abstention": None}),
    ("answerer: abstain below coverage 0.5 only", DEFAULT, {"min_coverage": 0.5, "min_score": 0.0, "abstention": None}),
    ("answerer: never abstain", DEFAULT, {"min_coverage": 0.0, "min_score": -9.0, "abstention": None}),
    ("default (all of the above on)", DEFAULT, {}),
]


def _f(x: float | None) -> str:
    return "-" if x is None else f"{x:.2f}"


def row(label: str, m: Metrics) -> str:
    cells = [m.gold_at_1, m.gold_at_5, m.answer_at_5, m.answer_hit, m.lead_hit, m.citation_precision,
             m.unanswerable_abstained, m.answerable_abstained]
    return f"| {label} | " + " | ".join(_f(c) for c in cells) + f" | {m.passed}/{m.questions} |"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("qa", type=Path)
    ap.add_argument("--corpus", type=Path, required=True)
    ap.add_argument("--embedder", default=None, help="default: the product's default embedder")
    args = ap.parse_args(argv)
    records = load_records(args.qa)
    embedder = make_embedder(args.embedder)
    assistant = Assistant(eval_index_dir(args.corpus, embedder.name), embedder=embedder, seed=False, quiet=True)
    sync_corpus(assistant, args.corpus)
    print(f"{args.qa.name}, embedder {embedder.name}\n")
    print("| variant | gold@1 | gold@5 | ans@5 | hit | lead | cite | abst-U | abst-A | pass |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for label, cfg, answerer in VARIANTS:
        assistant.retriever.config = cfg
        assistant.answerer = ExtractiveAnswerer(**answerer)
        report = evaluate(assistant, records, name=args.qa.name)
        print(row(label, report.total), flush=True)
    assistant.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
