"""Validate a question bank against the corpus it was written for, and report its mix.

An evaluation set is only useful if it is honest: every accepted answer must really be stated in
the article(s) marked as gold, the evidence sentence must be in the article, a "paraphrase" must
really be worded differently from its evidence, a "multi-hop" question must really need two
articles, an "unanswerable" question must really have no answer anywhere in the corpus, and no
article may feed questions to two splits (or a model fitted on train has seen the test
articles). This script proves each of those claims from the corpus itself, so a typo, a renamed
file or a wishful label cannot silently turn a hit into a miss or a test question into a train one.

Each line of a QA file is one JSON object::

    {"id": "bank-0001", "question": "...", "answers": ["most specific", "shorter form"],
     "docs": ["001.txt"], "kind": "who", "style": "paraphrase",
     "evidence": ["001.txt:275-384"], "split": "dev"}

    {"id": "bank-0002", "question": "...", "answers": [], "docs": [], "kind": "how_many",
     "style": "unanswerable", "near": ["001.txt"],
     "probes": ["attendance", "Goodison[^.]{0,80}\\b\\d{2},\\d{3}\\b"], "split": "dev"}

Checks:

- required fields and types; ``kind``/``style``/``split`` values; unique ids and questions;
- every gold doc exists; every accepted answer occurs (case-insensitive, whitespace collapsed)
  in a gold doc, except yes/no questions, whose answer is ``yes`` or ``no``;
- ``evidence`` (required on answerable records with ``--strict``): each entry is a reference
  ``DOC:START-END`` to the sentence stating the answer, as character offsets into a gold doc
  (references rather than copied sentences, so no article text beyond the short answers lives in
  the project); one of them holds an accepted answer (yes/no: not required); a multi-hop
  record's evidence and docs span at least two different articles (copies count once);
- paraphrase: the share of the question's content words (stemmed) that its evidence sentence
  contains is at most 0.25 (``PARAPHRASE_MAX_OVERLAP``);
- unanswerable: no answers or docs; ``near`` names the corpus article(s) the near miss is built
  on; at least one probe, every probe compiles and matches no article of the corpus
  (case-insensitive, whitespace collapsed); the question's names occur in the corpus;
- with splits: no article (or copy of it) has questions in two splits; with ``--mix`` each
  split has at least 40% paraphrase, 15% multi-hop and 20% unanswerable questions.

Usage::

    python3 eval/check_dataset.py eval/bbc_bank.jsonl --corpus ../shared/corpora/bbc-football --mix

Prints one line per problem and exits 1 if there are any; otherwise prints the mix per split
(styles, kinds, mean paraphrase overlap) and exits 0. Standard library only.
"""

from __future__ import annotations

import argparse
import itertools
import json
import re
import sys
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

KINDS: frozenset[str] = frozenset(
    {"when", "who", "which", "how_many", "what", "where", "why", "yes_no"}
)
STYLES: frozenset[str] = frozenset({"lexical", "paraphrase", "multi_hop", "unanswerable"})
SPLITS: tuple[str, ...] = ("train", "dev", "test")
UNANSWERABLE = "unanswerable"
PARAPHRASE_MAX_OVERLAP = 0.25
MIX_MIN = {"paraphrase": 0.40, "multi_hop": 0.15, "unanswerable": 0.20}
COPY_JACCARD = 0.5  # articles whose bodies share this much of their vocabulary are copies (132~138 at 0.51)

# field name -> expected JSON type
REQUIRED_FIELDS: dict[str, type] = {
    "id": str,
    "question": str,
    "answers": list,
    "docs": list,
    "kind": str,
    "style": str,
}
OPTIONAL_LISTS = ("evidence", "near", "probes")

_WS = re.compile(r"\s+")
_REF = re.compile(r"([^:/\\]+):(\d+)-(\d+)")
_WORD = re.compile(r"[a-z0-9£$€]+(?:['’][a-z]+)?")
STOP = frozenset(
    """a about above after again against all also am an and any are as at be because been before
    being below between both but by can could did do does doing down during each few for from
    further had has have having he her here hers herself him himself his how i if in into is it
    its itself just me more most my myself no nor not now of off on once only or other our ours
    out over own same she should so some such than that the their theirs them themselves then
    there these they this those through to too under until up very was we were what when where
    which while who whom whose why will with would you your yours s t many much according said
    says say tell told get got go went yes one""".split()
)


def normalise(text: str) -> str:
    """Lower-case and collapse every run of whitespace to one space (curly quotes made plain)."""
    text = text.replace("’", "'").replace("‘", "'").replace("“", '"').replace("”", '"')
    return _WS.sub(" ", text).strip().lower()


def _stem(word: str) -> str:
    for suffix in ("ings", "ing", "ies", "ied", "es", "ed", "ly", "s"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            word = word[: -len(suffix)]
            break
    return word[:-1] if word.endswith("e") and len(word) > 4 else word


def content_stems(text: str) -> set[str]:
    """The stems of the content words of a text (stop and question words dropped)."""
    out = set()
    for w in _WORD.findall(normalise(text)):
        w = w.replace("’", "'")
        if w.endswith("'s"):
            w = w[:-2]
        if w in STOP or len(w) < 2 and not w.isdigit():
            continue
        out.add(_stem(w))
    return out


def overlap(question: str, evidence: str) -> float:
    """Share of the question's content words that the evidence sentence also has."""
    q = content_stems(question)
    return len(q & content_stems(evidence)) / len(q) if q else 1.0


def _load_records(qa_path: Path, problems: list[str]) -> list[tuple[int, dict[str, Any]]]:
    """Parse the JSONL file; blank lines are skipped, bad lines are reported."""
    records: list[tuple[int, dict[str, Any]]] = []
    try:
        lines = qa_path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        problems.append(f"{qa_path}: cannot read: {exc}")
        return records
    for lineno, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            problems.append(f"line {lineno}: invalid JSON: {exc.msg}")
            continue
        if not isinstance(obj, dict):
            problems.append(f"line {lineno}: expected a JSON object, got {type(obj).__name__}")
            continue
        records.append((lineno, obj))
    if not records and not problems:
        problems.append(f"{qa_path}: no records")
    return records


def _check_types(where: str, rec: dict[str, Any]) -> list[str]:
    """Presence and JSON types of the required fields, and of the optional lists."""
    problems: list[str] = []
    for field, expected in REQUIRED_FIELDS.items():
        if field not in rec:
            problems.append(f"{where}: missing field {field!r}")
        elif not isinstance(rec[field], expected):
            problems.append(
                f"{where}: field {field!r} should be {expected.__name__}, got {type(rec[field]).__name__}"
            )
    for field in OPTIONAL_LISTS:
        if field in rec and not (isinstance(rec[field], list) and all(isinstance(x, str) and x.strip() for x in rec[field])):
            problems.append(f"{where}: field {field!r} should be a list of non-empty strings")
    if "split" in rec and rec["split"] not in SPLITS:
        problems.append(f"{where}: split {rec['split']!r} not one of {list(SPLITS)}")
    return problems


def _check_values(where: str, rec: dict[str, Any]) -> list[str]:
    """Non-empty strings, and the allowed values of kind/style (types already checked)."""
    problems: list[str] = []
    for field in ("id", "question"):
        if not rec[field].strip():
            problems.append(f"{where}: field {field!r} is empty")
    for field in ("answers", "docs"):
        for i, item in enumerate(rec[field]):
            if not isinstance(item, str) or not item.strip():
                problems.append(f"{where}: {field}[{i}] should be a non-empty string")
    if rec["kind"] not in KINDS:
        problems.append(f"{where}: kind {rec['kind']!r} not one of {sorted(KINDS)}")
    if rec["style"] not in STYLES:
        problems.append(f"{where}: style {rec['style']!r} not one of {sorted(STYLES)}")
    return problems


class Corpus:
    """The corpus folder, normalised, with copies of one article grouped together."""

    def __init__(self, corpus_dir: Path) -> None:
        self.dir = corpus_dir
        self.raw: dict[str, str] = {}
        self.text: dict[str, str] = {}
        for p in sorted(corpus_dir.iterdir()):
            if p.is_file() and p.suffix in {".txt", ".md"}:
                self.raw[p.name] = p.read_text(encoding="utf-8", errors="replace")
                self.text[p.name] = normalise(self.raw[p.name])
        self.group = self._copies()

    def resolve(self, ref: str) -> tuple[str, str] | None:
        """(doc, text) of an evidence reference ``DOC:START-END``; None if it does not resolve."""
        m = _REF.fullmatch(ref.strip())
        if not m or m.group(1) not in self.raw:
            return None
        start, end = int(m.group(2)), int(m.group(3))
        raw = self.raw[m.group(1)]
        if not 0 <= start < end <= len(raw):
            return None
        return m.group(1), raw[start:end]

    def _copies(self) -> dict[str, str]:
        """Article -> the first name of its group of copies (the same story filed twice)."""
        words = {n: set(re.findall(r"[a-z0-9]+", t.split(" ", 8)[-1])) for n, t in self.text.items()}
        parent = {n: n for n in self.text}

        def find(n: str) -> str:
            while parent[n] != n:
                parent[n] = parent[parent[n]]
                n = parent[n]
            return n

        for a, b in itertools.combinations(sorted(self.text), 2):
            wa, wb = words[a], words[b]
            if wa and wb and len(wa & wb) / len(wa | wb) >= COPY_JACCARD:
                ra, rb = find(a), find(b)
                parent[max(ra, rb)] = min(ra, rb)
        return {n: find(n) for n in self.text}

    def names_missing(self, question: str) -> list[str]:
        """Capitalised words of the question (after its first word) that no article has."""
        words = re.findall(r"(?<!^)(?<![.?!] )\b[A-Z][A-Za-z'’-]+", question.strip())
        blob = getattr(self, "_blob", None)
        if blob is None:
            blob = self._blob = " \n ".join(self.text.values())
        return [w for w in words if normalise(w).removesuffix("'s").removesuffix("'") not in blob]


def _check_answerable(where: str, rec: dict[str, Any], corpus: Corpus, strict: bool) -> list[str]:
    problems: list[str] = []
    answers: list[str] = rec["answers"]
    docs: list[str] = rec["docs"]
    if not answers:
        problems.append(f"{where}: answerable question has no answers")
    if not docs:
        problems.append(f"{where}: answerable question has no gold docs")
    for dup in sorted(d for d, n in Counter(docs).items() if n > 1):
        problems.append(f"{where}: gold doc {dup!r} listed more than once")
    texts: dict[str, str] = {}
    for name in dict.fromkeys(docs):
        if Path(name).name != name or name in {".", ".."}:
            problems.append(f"{where}: gold doc {name!r} must be a bare file name")
        elif name not in corpus.text:
            problems.append(f"{where}: gold doc {name!r} not found in {corpus.dir}")
        else:
            texts[name] = corpus.text[name]
    if not texts:
        return problems
    yes_no = rec["kind"] == "yes_no"
    if yes_no:
        if [a.lower() for a in answers] not in (["yes"], ["no"]):
            problems.append(f"{where}: a yes/no question's answers must be [\"yes\"] or [\"no\"], got {answers}")
    else:
        for answer in answers:
            if not any(normalise(answer) in t for t in texts.values()):
                problems.append(f"{where}: answer {answer!r} not found in gold docs {docs}")
    evidence = rec.get("evidence")
    if evidence is None:
        if strict:
            problems.append(f"{where}: answerable question has no evidence sentence")
        return problems
    sentences: list[str] = []
    ev_docs: set[str] = set()
    for ref in evidence:
        got = corpus.resolve(ref)
        if got is None:
            problems.append(f"{where}: evidence {ref!r} is not a reference DOC:START-END into the corpus")
        elif got[0] not in texts:
            problems.append(f"{where}: evidence {ref!r} is not in a gold doc {docs}")
        else:
            ev_docs.add(got[0])
            sentences.append(got[1])
    if not yes_no and sentences and not any(
        normalise(a) in normalise(s) for s in sentences for a in answers
    ):
        problems.append(f"{where}: no evidence sentence holds an accepted answer")
    if rec["style"] == "multi_hop":
        groups = {corpus.group[n] for n in texts}
        ev_groups = {corpus.group[n] for n in ev_docs}
        if len(groups) < 2 or len(ev_groups) < 2 or len(evidence) < 2:
            problems.append(f"{where}: a multi-hop question needs evidence from two different articles")
    if rec["style"] == "paraphrase" and sentences:
        ov = paraphrase_overlap(rec, corpus)
        if ov > PARAPHRASE_MAX_OVERLAP:
            problems.append(
                f"{where}: paraphrase overlaps its evidence by {ov:.2f} (at most {PARAPHRASE_MAX_OVERLAP})"
            )
    return problems


def paraphrase_overlap(rec: dict[str, Any], corpus: Corpus) -> float:
    """Overlap of the question with its answer-bearing evidence sentence (the first otherwise)."""
    evidence = [got[1] for got in map(corpus.resolve, rec.get("evidence") or []) if got]
    answers = [normalise(a) for a in rec["answers"]]
    holding = [s for s in evidence if any(a in normalise(s) for a in answers)] or evidence[:1]
    return max(overlap(rec["question"], s) for s in holding) if holding else 1.0


def _check_unanswerable(where: str, rec: dict[str, Any], corpus: Corpus, strict: bool) -> list[str]:
    problems: list[str] = []
    if rec["answers"]:
        problems.append(f"{where}: unanswerable question has answers {rec['answers']}")
    if rec["docs"]:
        problems.append(f"{where}: unanswerable question has docs {rec['docs']}")
    near, probes = rec.get("near"), rec.get("probes")
    if strict and not near:
        problems.append(f"{where}: unanswerable question has no 'near' article")
    for name in near or []:
        if name not in corpus.text:
            problems.append(f"{where}: near article {name!r} not found in {corpus.dir}")
    if strict and not probes:
        problems.append(f"{where}: unanswerable question has no probes")
    for probe in probes or []:
        try:
            rx = re.compile(probe, re.IGNORECASE)
        except re.error as exc:
            problems.append(f"{where}: probe {probe!r} does not compile: {exc}")
            continue
        hits = [n for n, t in corpus.text.items() if rx.search(t)]
        if hits:
            problems.append(f"{where}: probe {probe!r} matches {', '.join(hits[:5])}: the corpus may answer it")
    if strict:
        for word in corpus.names_missing(rec["question"]):
            problems.append(f"{where}: name {word!r} occurs in no article (near misses use corpus names)")
    return problems


def record_articles(rec: dict[str, Any], corpus: Corpus) -> set[str]:
    """The article groups a question is built on (its gold docs, or the near miss's articles)."""
    names = list(rec.get("docs") or []) + list(rec.get("near") or [])
    return {corpus.group.get(n, n) for n in names}


def _check_splits(records: list[tuple[int, dict[str, Any]]], corpus: Corpus) -> list[str]:
    problems: list[str] = []
    seen: dict[str, dict[str, str]] = defaultdict(dict)  # article group -> split -> first id
    for _, rec in records:
        split = rec.get("split")
        if split is None:
            continue
        for g in record_articles(rec, corpus):
            seen[g].setdefault(split, str(rec.get("id")))
    for g, splits in sorted(seen.items()):
        if len(splits) > 1:
            pairs = ", ".join(f"{s} ({i})" for s, i in splits.items())
            problems.append(f"article {g} has questions in more than one split: {pairs}")
    return problems


def check(qa_path: Path, corpus_dir: Path, *, strict: bool = False, mix: bool = False) -> list[str]:
    """Return a list of human-readable problems with the QA file; empty means it is valid."""
    if not corpus_dir.is_dir():
        return [f"{corpus_dir}: corpus directory not found"]
    problems: list[str] = []
    records = _load_records(qa_path, problems)
    corpus = Corpus(corpus_dir)
    ids: Counter[str] = Counter()
    questions: Counter[str] = Counter()
    good: list[tuple[int, dict[str, Any]]] = []
    for lineno, rec in records:
        rid = rec.get("id")
        where = f"line {lineno} ({rid})" if isinstance(rid, str) else f"line {lineno}"
        if isinstance(rid, str):
            ids[rid] += 1
        if isinstance(rec.get("question"), str):
            questions[normalise(rec["question"])] += 1
        type_problems = _check_types(where, rec)
        problems.extend(type_problems)
        if type_problems:
            continue
        value_problems = _check_values(where, rec)
        problems.extend(value_problems)
        if value_problems:
            continue
        good.append((lineno, rec))
        if strict and "split" not in rec and mix:
            problems.append(f"{where}: no split")
        if rec["style"] == UNANSWERABLE:
            problems.extend(_check_unanswerable(where, rec, corpus, strict))
        else:
            problems.extend(_check_answerable(where, rec, corpus, strict))
    for rid, count in sorted(ids.items()):
        if count > 1:
            problems.append(f"id {rid!r} used {count} times")
    for q, count in sorted(questions.items()):
        if count > 1:
            problems.append(f"question {q[:60]!r}... asked {count} times")
    problems.extend(_check_splits(good, corpus))
    if mix:
        for split, recs in _by_split(good).items():
            n = len(recs)
            styles = Counter(r["style"] for r in recs)
            for style, least in MIX_MIN.items():
                if n and styles[style] / n < least:
                    problems.append(
                        f"split {split}: {styles[style]}/{n} {style} questions, less than {least:.0%}"
                    )
    return problems


def _by_split(records: list[tuple[int, dict[str, Any]]]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for _, rec in records:
        out.setdefault(str(rec.get("split", "all")), []).append(rec)
    order = {s: i for i, s in enumerate(SPLITS)}
    return dict(sorted(out.items(), key=lambda kv: order.get(kv[0], 99)))


def mix_report(qa_path: Path, corpus_dir: Path) -> str:
    """The mix per split: counts and shares of styles and kinds, articles, paraphrase overlap."""
    problems: list[str] = []
    records = _load_records(qa_path, problems)
    corpus = Corpus(corpus_dir)
    lines = []
    for split, recs in _by_split(records).items():
        n = len(recs)
        styles = Counter(r.get("style") for r in recs)
        kinds = Counter(r.get("kind") for r in recs)
        arts = set().union(*(record_articles(r, corpus) for r in recs)) if recs else set()
        para = [paraphrase_overlap(r, corpus) for r in recs if r.get("style") == "paraphrase" and r.get("evidence")]
        lines.append(
            f"{split}: {n} questions over {len(arts)} articles; "
            + ", ".join(f"{s} {styles[s]} ({styles[s] / n:.0%})" for s in sorted(STYLES))
        )
        lines.append("  kinds: " + ", ".join(f"{k} {kinds[k]} ({kinds[k] / n:.0%})" for k in sorted(kinds)))
        if para:
            lines.append(f"  paraphrase overlap with evidence: mean {sum(para) / len(para):.2f}, max {max(para):.2f}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Check a QA file (JSONL) against its corpus directory.")
    parser.add_argument("qa_path", type=Path, help="the JSONL file of questions")
    parser.add_argument("--corpus", type=Path, required=True, metavar="DIR",
                        help="directory holding the articles named in 'docs' and 'near'")
    parser.add_argument("--strict", action="store_true",
                        help="require evidence on answerable questions, near and probes on unanswerable ones")
    parser.add_argument("--mix", action="store_true",
                        help="require every split to reach the minimum shares of paraphrase, multi-hop "
                             "and unanswerable questions (implies --strict)")
    args = parser.parse_args(argv)
    problems = check(args.qa_path, args.corpus, strict=args.strict or args.mix, mix=args.mix)
    for problem in problems:
        print(problem)
    if problems:
        print(f"{len(problems)} problem(s)", file=sys.stderr)
        return 1
    print(f"{args.qa_path}: OK")
    print(mix_report(args.qa_path, args.corpus))
    return 0


if __name__ == "__main__":
    sys.exit(main())
