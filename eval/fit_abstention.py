"""Fit the extractive answerer's abstention model (``rag/data/abstain.json``) on a QA set.

For every question the answerer would answer under its rules, the lead answer's ``Evidence``
(coverage, predicate coverage, span strength, margin...) is computed; a small L2-regularised
logistic regression (numpy) learns P(the question is answerable) from it, and the threshold is
the highest that keeps answerable questions abstained on at most ``--max-abst-a``.

Settings are checked by two-fold cross-validation on the record ids (fit on odd ids, score on
even ids and the reverse); both halves are printed, then the model fitted on all records is
written (``--write``) with how it was fitted.

Usage (from the repository root)::

    .venv/bin/python eval/fit_abstention.py eval/bbc_dev.jsonl --corpus ../shared/corpora/bbc-football \
        --features margin,predicate --keep ../shared/eval/seeds_qa.jsonl --keep-corpus seeds --write
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from rag.answer import AbstentionModel, Evidence, ExtractiveAnswerer, frame  # noqa: E402
from rag.assistant import Assistant  # noqa: E402
from rag.embed import make_embedder  # noqa: E402
from rag.evaluate import contains_answer, eval_index_dir, load_records, sync_corpus  # noqa: E402

OUT = Path(__file__).resolve().parent.parent / "rag" / "data" / "abstain.json"


def collect(assistant: Assistant, records) -> list[dict]:
    """One row per question: id, answerable, whether the rules answered, hit, features."""
    ans = ExtractiveAnswerer(abstention=None)
    rows = []
    for rec in records:
        query = assistant._query(rec.question, None, None)
        passages = assistant.retriever.retrieve(query, assistant.top_k)
        fr = frame(query, ans.rarity_floor)
        chosen = ans.select(query, passages, fr)
        answered = bool(chosen) and ans._acceptable(chosen[0], fr)
        ev = ans.evidence(query, passages, fr, chosen) if answered else None
        answer = ans.answer(query, passages)
        rows.append({"id": rec.id, "answerable": rec.answerable, "answered": answered,
                     "hit": bool(rec.answers) and not answer.abstained and contains_answer(answer.text, rec.answers),
                     "x": ev.vector() if ev else None, "q": rec.question})
    return rows


def fit(X: np.ndarray, y: np.ndarray, l2: float) -> tuple[np.ndarray, float, np.ndarray, np.ndarray]:
    mean, scale = X.mean(0), X.std(0) + 1e-6
    Z = (X - mean) / scale
    w, b = np.zeros(Z.shape[1]), 0.0
    for _ in range(3000):
        p = 1 / (1 + np.exp(-(Z @ w + b)))
        w -= 0.1 * (Z.T @ (p - y) / len(y) + l2 * w)
        b -= 0.1 * float(np.mean(p - y))
    return w, b, mean, scale


def model(rows: list[dict], l2: float, max_abst_a: float, features: list[str]) -> AbstentionModel:
    use = [r for r in rows if r["x"] is not None]
    cols = [Evidence.FEATURES.index(f) for f in features]
    X = np.array([[r["x"][c] for c in cols] for r in use])
    y = np.array([1.0 if r["answerable"] else 0.0 for r in use])
    ws, b, ms, ss = fit(X, y, l2)
    w, mean, scale = np.zeros(len(Evidence.FEATURES)), np.zeros(len(Evidence.FEATURES)), np.ones(len(Evidence.FEATURES))
    w[cols], mean[cols], scale[cols] = ws, ms, ss
    m = AbstentionModel(tuple(w), b, 0.0, tuple(mean), tuple(scale))
    n_answerable = sum(r["answerable"] for r in rows)
    already = sum(1 for r in rows if r["answerable"] and r["x"] is None)
    probs = sorted(m.probability(Evidence(*r["x"])) for r in use if r["answerable"])
    budget = int(max_abst_a * n_answerable) - already
    thr = probs[budget] - 1e-9 if 0 <= budget < len(probs) else 0.0
    return AbstentionModel(tuple(w), b, max(0.0, thr), tuple(mean), tuple(scale))


def score(rows: list[dict], m: AbstentionModel | None) -> dict:
    abst_a = abst_u = hit = n_a = n_u = 0
    for r in rows:
        abst = r["x"] is None or (m is not None and m.probability(Evidence(*r["x"])) < m.threshold)
        if r["answerable"]:
            n_a += 1
            abst_a += abst
            hit += r["hit"] and not abst
        else:
            n_u += 1
            abst_u += abst
    return {"hit": hit / n_a, "abst_U": abst_u / n_u, "abst_A": abst_a / n_a, "n": len(rows)}


def _num(rec_id: str) -> int:
    return int(re.sub(r"\D", "", rec_id) or 0)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("qa", type=Path, nargs="+", help="one or more QA sets over the same corpus")
    ap.add_argument("--corpus", type=Path, required=True)
    ap.add_argument("--l2", type=float, default=0.01)
    ap.add_argument("--max-abst-a", type=float, default=0.05)
    ap.add_argument("--features", default=",".join(Evidence.FEATURES), help="comma-separated subset")
    ap.add_argument("--write", action="store_true")
    ap.add_argument("--dump", action="store_true", help="print every question's features")
    ap.add_argument("--keep", type=Path, help="a QA set whose answerable questions the model must not abstain on "
                    "(the threshold is lowered below them), e.g. the seeds set")
    ap.add_argument("--keep-corpus", type=Path, help="the corpus of --keep")
    args = ap.parse_args(argv)
    records = [r for qa in args.qa for r in load_records(qa)]
    embedder = make_embedder(None)
    assistant = Assistant(eval_index_dir(args.corpus, embedder.name), embedder=embedder, seed=False, quiet=True)
    sync_corpus(assistant, args.corpus)
    feats = [f for f in args.features.split(",") if f]
    unknown = set(feats) - set(Evidence.FEATURES)
    if unknown:
        ap.error(f"unknown features: {sorted(unknown)}")
    rows = collect(assistant, records)
    assistant.close()
    keep: list[dict] = []
    if args.keep:
        if not args.keep_corpus:
            ap.error("--keep needs --keep-corpus")
        kept = Assistant(eval_index_dir(args.keep_corpus, embedder.name), embedder=embedder, seed=False, quiet=True)
        sync_corpus(kept, args.keep_corpus)
        keep = [r for r in collect(kept, load_records(args.keep)) if r["answerable"] and r["x"] is not None]
        kept.close()
    if args.dump:
        print("id ans hit " + " ".join(Evidence.FEATURES))
        for r in rows:
            xs = " ".join(f"{v:.2f}" for v in r["x"]) if r["x"] else "-"
            print(r["id"], int(r["answerable"]), int(r["hit"]), xs, "|", r["q"][:70])
    odd = [r for r in rows if _num(r["id"]) % 2]
    even = [r for r in rows if not _num(r["id"]) % 2]
    print(f"rules only: odd {score(odd, None)} even {score(even, None)}")
    for name, a, b in (("fit odd, check even", odd, even), ("fit even, check odd", even, odd)):
        m = model(a, args.l2, args.max_abst_a, feats)
        print(f"{name}: fit {score(a, m)} check {score(b, m)}")
    m = model(rows, args.l2, args.max_abst_a, feats)
    if keep:
        floor = min(m.probability(Evidence(*r["x"])) for r in keep) - 1e-6
        if floor < m.threshold:
            print(f"threshold {m.threshold:.4f} -> {floor:.4f} to keep every answerable question of {args.keep.name}")
            m = AbstentionModel(m.weights, m.bias, max(0.0, floor), m.mean, m.scale)
    print(f"fit all: {score(rows, m)}")
    print("weights:", dict(zip(Evidence.FEATURES, (round(w, 3) for w in m.weights))), "bias", round(m.bias, 3),
          "threshold", round(m.threshold, 3))
    if args.write:
        OUT.write_text(json.dumps({
            "_comment": ("Logistic abstention model over rag.answer.Evidence; refit with eval/fit_abstention.py. "
                         f"Fitted on {' + '.join(qa.name for qa in args.qa)} ({len(rows)} questions), features {feats}, L2 {args.l2}, threshold: the highest "
                         f"keeping answerable questions abstained on at most {args.max_abst_a}"
                         + (f" and none of {args.keep.name}" if keep else "") + "; "
                         "checked by two-fold cross-validation on odd and even ids."),
            "features": list(Evidence.FEATURES),
            "weights": [round(float(w), 5) for w in m.weights], "bias": round(float(m.bias), 5),
            "mean": [round(float(v), 5) for v in m.mean], "scale": [round(float(v), 5) for v in m.scale],
            "threshold": math.floor(float(m.threshold) * 1e5) / 1e5,  # rounded down: never above the fitted one
        }, indent=1) + "\n", encoding="utf-8")
        print(f"wrote {OUT}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
