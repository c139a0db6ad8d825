"""Fit the extractive answerer's models on the train split; choose the threshold on dev.

Each train question is asked as a user asks it (default retrieval, top 5 passages) and every
candidate sentence of its passages is a training row for the sentence model, labelled positive
when it holds an accepted answer and comes from a gold article (for yes/no questions: when it is
the evidence sentence). Then, with that model in place, the spans of the leading sentences train
the span model (positive: the span is an accepted answer), and each question's lead trains the
answer model (positive: the answer would hold an accepted answer). The answer threshold is the
one that maximises, on the dev split, right answers minus ``--cost`` times wrong ones (an answer
to an unanswerable question is wrong; "closest evidence" counts as neither). The test split is
never read here.

Usage::

    .venv/bin/python eval/fit_ranker.py eval/bbc_bank.jsonl --corpus ../shared/corpora/bbc-football [--write]
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rag import Assistant  # noqa: E402
from rag.answer import ANSWER_FEATURES, ExtractiveAnswerer  # noqa: E402
from rag.embed import make_embedder  # noqa: E402
from rag.evaluate import QARecord, contains_answer, doc_name, eval_index_dir, load_records, sync_corpus  # noqa: E402
from rag.features import SENTENCE_FEATURES, Candidate, candidates  # noqa: E402
from rag.question import frame  # noqa: E402
from rag.ranker import LinearModel, Ranker  # noqa: E402
from rag.spans import SPAN_FEATURES, span_features, term_hits  # noqa: E402

OUT = ROOT / "rag" / "data" / "ranker.json"
C = 1.0  # inverse L2 strength of every logistic regression


@dataclass
class Asked:
    """One question with its retrieved passages and candidate sentences."""

    record: QARecord
    query: object
    passages: list
    frame: object
    candidates: list[Candidate]
    labels: list[int]


def _evidence(rec: QARecord) -> list[tuple[str, int, int]]:
    out = []
    for ref in rec.evidence:
        doc, _, span = ref.rpartition(":")
        a, _, b = span.partition("-")
        if doc and a.isdigit() and b.isdigit():
            out.append((doc.lower(), int(a), int(b)))
    return out


def sentence_label(rec: QARecord, c: Candidate) -> int:
    if not rec.answers:
        return 0
    name = doc_name(c.passage.article.source).lower()
    if name not in {d.lower() for d in rec.docs}:
        return 0
    if rec.kind == "yes_no":
        return int(any(d == name and a < c.sentence.end and c.sentence.start < b for d, a, b in _evidence(rec)))
    text = c.sentence.text if c.context is None else f"{c.context.text} {c.sentence.text}"
    return int(contains_answer(c.sentence.text, rec.answers) or (c.context is not None and contains_answer(text, rec.answers)
                                                                   and any(s.context for s in c.spans)))


def ask_all(assistant, records: list[QARecord]) -> list[Asked]:
    out = []
    for rec in records:
        query = assistant.retriever.analyse(rec.question)
        passages = assistant.retriever.retrieve(query, assistant.top_k)
        fr = frame(query)
        cands = candidates(fr, query.text, passages)
        out.append(Asked(rec, query, passages, fr, cands, [sentence_label(rec, c) for c in cands]))
    return out


def fit_linear(X: np.ndarray, y: np.ndarray, names: tuple[str, ...], balanced: bool = True) -> LinearModel:
    from sklearn.linear_model import LogisticRegression

    mean = X.mean(axis=0)
    scale = X.std(axis=0)
    scale[scale == 0] = 1.0
    model = LogisticRegression(C=C, max_iter=5000, class_weight="balanced" if balanced else None)
    model.fit((X - mean) / scale, y)
    return LinearModel(names, tuple(round(float(w), 5) for w in model.coef_[0]), round(float(model.intercept_[0]), 5),
                       tuple(round(float(m), 5) for m in mean), tuple(round(float(s), 5) for s in scale))


def span_label(rec: QARecord, text: str) -> int:
    low = " ".join(text.lower().split())
    return int(any(" ".join(a.lower().split()) == low or (contains_answer(text, [a]) and len(low.split()) <= len(a.split()) + 2)
                   for a in rec.answers))


def right(rec: QARecord, answer) -> bool:
    """Whether an answer (not abstained) holds an accepted answer, as ``rag eval`` scores it."""
    if rec.kind == "yes_no":
        return bool(rec.answers) and (answer.short_answer or "").lower() == rec.answers[0].lower()
    return bool(rec.answers) and contains_answer(answer.text, rec.answers)


def fit(train: list[Asked], dev: list[Asked], cost: float) -> tuple[Ranker, dict]:
    X = np.array([c.features for a in train for c in a.candidates])
    y = np.array([lab for a in train for lab in a.labels])
    sentence = fit_linear(X, y, SENTENCE_FEATURES)
    placeholder = LinearModel(tuple(SPAN_FEATURES) + ("sentence",), (0.0,) * (len(SPAN_FEATURES) + 1), 0.0,
                              (0.0,) * (len(SPAN_FEATURES) + 1), (1.0,) * (len(SPAN_FEATURES) + 1))
    answer0 = LinearModel(ANSWER_FEATURES, (0.0,) * len(ANSWER_FEATURES), 0.0, (0.0,) * len(ANSWER_FEATURES),
                          (1.0,) * len(ANSWER_FEATURES))
    answerer = ExtractiveAnswerer(ranker=Ranker(sentence, placeholder, answer0, 0.0))
    Xs, ys = [], []
    for a in train:
        if not a.record.answers or a.record.kind == "yes_no":
            continue
        ranked = answerer.rank(a.query, a.passages)
        texts = [c.sentence.text.lower() for c in ranked.candidates]
        for c in ranked.candidates[: answerer.span_pool]:
            src = c.context if c.spans and c.spans[0].context and c.context is not None else c.sentence
            hits = term_hits(ranked.frame, src.text, src.start)
            for sp in c.spans:
                repeated = sum(sp.text.lower() in t for t in texts) / len(texts)
                Xs.append(span_features(sp, ranked.frame, c.passage.article.text, hits, repeated) + [c.score])
                ys.append(span_label(a.record, sp.text))
    span = fit_linear(np.array(Xs), np.array(ys), tuple(SPAN_FEATURES) + ("sentence",))
    answerer = ExtractiveAnswerer(ranker=Ranker(sentence, span, answer0, 0.0))

    def lead_rows(asked: list[Asked]):
        rows = []
        for a in asked:
            answer = answerer.answer(a.query, a.passages)
            ranked = answerer.rank(a.query, a.passages)
            if not ranked.candidates:
                rows.append((None, a.record, answer))
                continue
            rows.append((answerer.answer_features(ranked), a.record, answer))
        return rows

    tr = lead_rows(train)
    XA = np.array([f for f, _, _ in tr if f is not None])
    yA = np.array([int(right(r, ans)) for f, r, ans in tr if f is not None])
    answer = fit_linear(XA, yA, ANSWER_FEATURES, balanced=False)
    ranker = Ranker(sentence, span, answer, 0.0)
    # the threshold, on dev
    dv = lead_rows(dev)
    probs = [(answer.probability(f) if f is not None else 0.0, right(r, ans), bool(r.answers)) for f, r, ans in dv]
    best = (-1e9, 0.5)
    curve = []
    for t in np.arange(0.05, 0.96, 0.025):
        ok = sum(1 for p, good, _ in probs if p >= t and good)
        bad = sum(1 for p, good, _ in probs if p >= t and not good)
        una = [p >= t for p, _, answerable in probs if not answerable]
        ansd = [p < t for p, _, answerable in probs if answerable]
        utility = ok - cost * bad
        curve.append((round(float(t), 3), ok, bad, round(1 - sum(una) / max(1, len(una)), 2), round(sum(ansd) / max(1, len(ansd)), 2)))
        if utility > best[0]:
            best = (utility, round(float(t), 3))
    ranker = Ranker(sentence, span, answer, best[1])
    return ranker, {"threshold_curve_dev": curve, "cost": cost}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("qa", type=Path)
    p.add_argument("--corpus", type=Path, required=True)
    p.add_argument("--cost", type=float, default=2.0, help="cost of a wrong answer against a right one (default 2)")
    p.add_argument("--write", action="store_true", help=f"store the models in {OUT.relative_to(ROOT)}")
    args = p.parse_args(argv)
    records = load_records(args.qa)
    embedder = make_embedder(None)
    assistant = Assistant(eval_index_dir(args.corpus, embedder.name), embedder=embedder, seed=False, quiet=True)
    sync_corpus(assistant, args.corpus)
    train = ask_all(assistant, [r for r in records if r.split == "train"])
    dev = ask_all(assistant, [r for r in records if r.split == "dev"])
    ranker, info = fit(train, dev, args.cost)
    print("sentence weights:", dict(zip(ranker.sentence.features, ranker.sentence.weights)))
    print("span weights:", dict(zip(ranker.span.features, ranker.span.weights)))
    print("answer weights:", dict(zip(ranker.answer.features, ranker.answer.weights)))
    print("threshold (dev):", ranker.threshold)
    print("dev curve (t, right, wrong, abst-U, abst-A):")
    for row in info["threshold_curve_dev"]:
        print("  ", row)
    if args.write:
        data = {
            "_about": ("Extractive answer models (rag/ranker.py), fitted by eval/fit_ranker.py on the train split of "
                       "eval/bbc_bank.jsonl; threshold chosen on the dev split (right answers minus "
                       f"{args.cost:g} x wrong ones). See docs/EVALUATION.md."),
            "sentence": ranker.sentence.to_dict(), "span": ranker.span.to_dict(), "answer": ranker.answer.to_dict(),
            "threshold": ranker.threshold,
            "fitted": {"train_questions": len(train), "dev_questions": len(dev), "C": C, "cost": args.cost,
                       "embedder": embedder.name},
        }
        OUT.write_text(json.dumps(data, indent=1) + "\n")
        print(f"wrote {OUT}")
    assistant.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
