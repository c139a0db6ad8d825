"""Fit the hybrid retrieval weights on the train split, and compare retrieval settings on dev.

The hybrid score of a candidate passage is ``w_bm25 * bm25_share + w_dense * cosine`` (BM25
score as a share of the question's best one, cosine similarity of the passage's stored vector to
the question's). The two weights are the coefficients of a logistic regression fitted on the
train split of the question bank: every BM25 or dense candidate (depth 40 each) of every
answerable train question, labelled positive when it holds an accepted answer and comes from a
gold article. Two numbers fitted on hundreds of questions cannot learn any one question.

Then, with ``--compare``, each retrieval setting is measured on the chosen split (dev by
default; the test split is only ever reported by ``rag eval``): gold@1, gold@5 and ans@5 of the
returned passages.

Usage::

    .venv/bin/python eval/fit_retrieval.py eval/bbc_bank.jsonl --corpus ../shared/corpora/bbc-football [--write] [--compare]
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rag import Assistant  # noqa: E402
from rag.embed import make_embedder  # noqa: E402
from rag.evaluate import contains_answer, doc_name, eval_index_dir, load_records, sync_corpus  # noqa: E402
from rag.retrieve import RetrievalConfig  # noqa: E402

WEIGHTS = ROOT / "rag" / "data" / "retrieval.json"


def training_rows(assistant, records) -> tuple[np.ndarray, np.ndarray]:
    """(features, labels) of every candidate of every answerable record."""
    retriever = assistant.retriever
    X, y = [], []
    for rec in records:
        if not rec.answers:
            continue
        query = retriever.analyse(rec.question)
        lexical, dense, qvec = retriever.candidates(query)
        feats = retriever.fusion_features(lexical, dense, qvec)
        chunks = assistant.store.chunks(list(feats))
        gold = {d.lower() for d in rec.docs}
        for cid, (b, c) in feats.items():
            ch = chunks[cid]
            art = assistant.store.article(ch.article_id)
            X.append((b, c))
            y.append(int(doc_name(art.source).lower() in gold and contains_answer(ch.text, rec.answers)))
    return np.array(X), np.array(y)


def fit(X: np.ndarray, y: np.ndarray) -> dict[str, float]:
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression(C=1.0, max_iter=2000, class_weight="balanced").fit(X, y)
    return {"bm25": round(float(model.coef_[0][0]), 3), "dense": round(float(model.coef_[0][1]), 3)}


def measure(assistant, records, cfg: RetrievalConfig, k: int = 5) -> dict[str, float]:
    saved = assistant.retriever.config
    assistant.retriever.config = cfg
    g1 = g5 = a5 = n = 0
    try:
        for rec in records:
            if not rec.answers:
                continue
            n += 1
            ps = assistant.retrieve(rec.question, top_k=k)
            gold = {d.lower() for d in rec.docs}
            names = [doc_name(p.article.source).lower() for p in ps]
            g1 += bool(names) and names[0] in gold
            g5 += any(x in gold for x in names)
            a5 += any(contains_answer(p.chunk.text, rec.answers) for p in ps)
    finally:
        assistant.retriever.config = saved
    return {"gold@1": g1 / n, "gold@5": g5 / n, "ans@5": a5 / n, "n": n}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("qa", type=Path)
    p.add_argument("--corpus", type=Path, required=True)
    p.add_argument("--write", action="store_true", help=f"store the fitted weights in {WEIGHTS.relative_to(ROOT)}")
    p.add_argument("--compare", action="store_true", help="measure retrieval settings on --split")
    p.add_argument("--split", default="dev", choices=["train", "dev"], help="split to compare on (default dev)")
    args = p.parse_args(argv)
    records = load_records(args.qa)
    embedder = make_embedder(None)
    assistant = Assistant(eval_index_dir(args.corpus, embedder.name), embedder=embedder, seed=False, quiet=True)
    sync_corpus(assistant, args.corpus)
    train = [r for r in records if r.split == "train"]
    X, y = training_rows(assistant, train)
    weights = fit(X, y)
    print(f"fitted on {len(train)} train questions, {len(y)} candidates ({int(y.sum())} positive): {weights}")
    if args.write:
        data = json.loads(WEIGHTS.read_text())
        data["weights"] = weights
        data["fitted"] = {"split": "train", "questions": len(train), "candidates": int(len(y)),
                          "positives": int(y.sum()), "embedder": embedder.name}
        WEIGHTS.write_text(json.dumps(data, indent=2) + "\n")
        print(f"wrote {WEIGHTS}")
    if args.compare:
        chosen = [r for r in records if r.split == args.split]
        base = RetrievalConfig(weights=(weights["bm25"], weights["dense"]))
        variants = [
            ("bm25", replace(base, mode="bm25")), ("dense", replace(base, mode="dense")),
            ("rrf", replace(base, mode="rrf")), ("hybrid", base),
            ("hybrid, no widening", replace(base, context_words=0)),
            ("hybrid, 50 words", replace(base, context_words=50)),
            ("hybrid, 200 words", replace(base, context_words=200)),
            ("hybrid + bridge hop", replace(base, bridge=True)),
            ("hybrid, no aliases", replace(base, aliases=False)),
            ("hybrid, 1 per article", replace(base, per_article=1)),
            ("hybrid, 3 per article", replace(base, per_article=3)),
        ]
        for name, cfg in variants:
            m = measure(assistant, chosen, cfg)
            print(f"{args.split} {name:24} gold@1 {m['gold@1']:.3f}  gold@5 {m['gold@5']:.3f}  ans@5 {m['ans@5']:.3f}  (n={m['n']})")
    assistant.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
