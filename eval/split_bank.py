"""Give every question of a bank a split (train, dev, test), by article.

A model fitted on train must not have seen the articles it is tested on, so the unit of the split
is the article, not the question: questions that share an article (or a copy of it, or a
multi-hop partner of it) form one component, and a component goes to one split. Components that
already have a split keep it (a question added later joins its articles' split); new ones go
where the split furthest below its target share (60/20/20 by question count) is, largest first,
with the mix of styles balanced the same way. Components named in ``--train`` (articles the
answerer's hand-written rules were once tuned on) always go to train.

Usage::

    python3 eval/split_bank.py BANK.jsonl [MORE.jsonl ...] --corpus ../shared/corpora/bbc-football \\
        [--train-articles FILE] -o eval/bbc_bank.jsonl

Standard library only; deterministic (no random numbers: ties go to the lower article name).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from check_dataset import SPLITS, Corpus, record_articles  # noqa: E402

TARGET = {"train": 0.6, "dev": 0.2, "test": 0.2}


def components(records: list[dict], corpus: Corpus) -> list[list[int]]:
    """Indices of records grouped by shared articles (union-find over article groups)."""
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        parent.setdefault(x, x)
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    keys = []
    for i, rec in enumerate(records):
        arts = sorted(record_articles(rec, corpus)) or [f"#{rec['id']}"]
        for a in arts[1:]:
            ra, rb = find(arts[0]), find(a)
            if ra != rb:
                parent[max(ra, rb)] = min(ra, rb)
        keys.append(arts[0])
    groups: dict[str, list[int]] = {}
    for i, k in enumerate(keys):
        groups.setdefault(find(k), []).append(i)
    return [groups[k] for k in sorted(groups)]


def assign(records: list[dict], corpus: Corpus, train_articles: set[str],
           target: dict[str, float] | None = None) -> None:
    """Sets ``split`` on every record that lacks one (in place)."""
    target = target or TARGET
    comps = components(records, corpus)
    total = len(records)
    styles_total = Counter(r["style"] for r in records)
    count = Counter()
    style_count: dict[str, Counter] = {s: Counter() for s in SPLITS}
    pending = []
    for comp in comps:
        fixed = {records[i]["split"] for i in comp if records[i].get("split")}
        arts = set().union(*(record_articles(records[i], corpus) for i in comp))
        if arts & {corpus.group.get(a, a) for a in train_articles}:
            fixed.add("train")
        if len(fixed) > 1:
            ids = ", ".join(records[i]["id"] for i in comp)
            raise SystemExit(f"questions {ids} share articles but are fixed to splits {sorted(fixed)}")
        if fixed:
            split = fixed.pop()
            for i in comp:
                records[i]["split"] = split
                count[split] += 1
                style_count[split][records[i]["style"]] += 1
        else:
            pending.append(comp)
    pending.sort(key=lambda comp: (-len(comp), min(records[i]["id"] for i in comp)))
    for comp in pending:
        styles = Counter(records[i]["style"] for i in comp)

        def need(split: str) -> float:
            gap = target[split] * total - count[split]
            mix = sum(target[split] * styles_total[s] - style_count[split][s] for s in styles) / max(1, len(styles))
            return gap + 2.0 * mix

        split = max(SPLITS, key=need)
        for i in comp:
            records[i]["split"] = split
            count[split] += 1
            style_count[split][records[i]["style"]] += 1


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("files", nargs="+", type=Path)
    p.add_argument("--corpus", type=Path, required=True)
    p.add_argument("--train-articles", type=Path, help="a file of article names whose questions go to train")
    p.add_argument("--target", default="0.6,0.2,0.2", help="train,dev,test shares (default 0.6,0.2,0.2)")
    p.add_argument("-o", "--output", type=Path, required=True)
    args = p.parse_args(argv)
    records = [json.loads(line) for f in args.files for line in f.read_text(encoding="utf-8").splitlines() if line.strip()]
    train = set(args.train_articles.read_text().split()) if args.train_articles else set()
    shares = [float(x) for x in args.target.split(",")]
    assign(records, Corpus(args.corpus), train, dict(zip(SPLITS, shares)))
    order = {s: i for i, s in enumerate(SPLITS)}
    with args.output.open("w", encoding="utf-8") as out:
        for rec in records:
            out.write(json.dumps(rec, ensure_ascii=False) + "\n")
    c = Counter(r["split"] for r in records)
    print(", ".join(f"{s} {c[s]} ({c[s] / len(records):.0%})" for s in sorted(c, key=order.get)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
