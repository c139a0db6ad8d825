"""Validate a question-answering dev set against the corpus it was written for.

An evaluation set is only useful if it is honest: every accepted answer must really be
stated in the article(s) marked as gold, every gold article must exist, and questions that
are meant to be unanswerable must not smuggle in answers or sources. A typo in an answer, a
renamed corpus file or a copy-paste slip silently turns a correct system output into a
"miss" (or a miss into a hit), and the scores stop meaning anything. This script catches
those mistakes before they reach a benchmark run.

Each line of the QA file is one JSON object::

    {"id": "bbc-001", "question": "...", "answers": ["most specific", "shorter form"],
     "docs": ["001.txt"], "kind": "who", "style": "lexical"}

Checks:

- every record is a JSON object with the required fields, of the right types;
- ``kind`` and ``style`` take one of the allowed values;
- ids are unique;
- every gold doc is a plain file name that exists in the corpus directory;
- every accepted answer occurs, case-insensitively and with whitespace runs collapsed,
  in at least one of the record's gold docs;
- unanswerable records have empty ``answers`` and ``docs``; answerable ones have both.

Usage::

    python3 eval/check_dataset.py eval/bbc_dev.jsonl --corpus ../shared/corpora/bbc-football

Prints one line per problem and exits 1 if there are any, otherwise prints a summary and
exits 0. Standard library only.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections import Counter
from pathlib import Path
from typing import Any

KINDS: frozenset[str] = frozenset({"when", "who", "which", "how_many", "what", "where"})
STYLES: frozenset[str] = frozenset(
    {"lexical", "paraphrase", "multi_hop", "unanswerable"}
)
UNANSWERABLE = "unanswerable"

# field name -> expected JSON type
REQUIRED_FIELDS: dict[str, type] = {
    "id": str,
    "question": str,
    "answers": list,
    "docs": list,
    "kind": str,
    "style": str,
}

_WS = re.compile(r"\s+")


def normalise(text: str) -> str:
    """Lower-case and collapse every run of whitespace to one space."""
    return _WS.sub(" ", text).strip().lower()


def _load_records(
    qa_path: Path, problems: list[str]
) -> list[tuple[int, dict[str, Any]]]:
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
            problems.append(
                f"line {lineno}: expected a JSON object, got {type(obj).__name__}"
            )
            continue
        records.append((lineno, obj))
    if not records and not problems:
        problems.append(f"{qa_path}: no records")
    return records


def _check_types(where: str, rec: dict[str, Any]) -> list[str]:
    """Presence and JSON types of the required fields."""
    problems: list[str] = []
    for field, expected in REQUIRED_FIELDS.items():
        if field not in rec:
            problems.append(f"{where}: missing field {field!r}")
        elif not isinstance(rec[field], expected):
            problems.append(
                f"{where}: field {field!r} should be {expected.__name__}, "
                f"got {type(rec[field]).__name__}"
            )
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


def _read_doc(corpus_dir: Path, name: str, cache: dict[str, str | None]) -> str | None:
    """Normalised text of one corpus file, or None if it does not exist or cannot be read."""
    if name not in cache:
        path = corpus_dir / name
        try:
            cache[name] = normalise(path.read_text(encoding="utf-8", errors="replace"))
        except OSError:
            cache[name] = None
    return cache[name]


def check(qa_path: Path, corpus_dir: Path) -> list[str]:
    """Return a list of human-readable problems with the QA file; empty means it is valid."""
    problems: list[str] = []
    if not corpus_dir.is_dir():
        return [f"{corpus_dir}: corpus directory not found"]
    records = _load_records(qa_path, problems)
    ids: Counter[str] = Counter()
    docs_cache: dict[str, str | None] = {}

    for lineno, rec in records:
        rid = rec.get("id")
        where = f"line {lineno} ({rid})" if isinstance(rid, str) else f"line {lineno}"
        if isinstance(rid, str):
            ids[rid] += 1
        type_problems = _check_types(where, rec)
        problems.extend(type_problems)
        if type_problems:
            continue
        value_problems = _check_values(where, rec)
        problems.extend(value_problems)
        if any(not isinstance(x, str) for x in rec["answers"] + rec["docs"]):
            continue

        answers: list[str] = rec["answers"]
        docs: list[str] = rec["docs"]

        if rec["style"] == UNANSWERABLE:
            if answers:
                problems.append(f"{where}: unanswerable question has answers {answers}")
            if docs:
                problems.append(f"{where}: unanswerable question has docs {docs}")
            continue
        if not answers:
            problems.append(f"{where}: answerable question has no answers")
        if not docs:
            problems.append(f"{where}: answerable question has no gold docs")

        for dup in sorted(d for d, n in Counter(docs).items() if n > 1):
            problems.append(f"{where}: gold doc {dup!r} listed more than once")

        texts: list[str] = []
        for name in dict.fromkeys(docs):
            if Path(name).name != name or name in {".", ".."}:
                problems.append(f"{where}: gold doc {name!r} must be a bare file name")
                continue
            text = _read_doc(corpus_dir, name, docs_cache)
            if text is None:
                problems.append(f"{where}: gold doc {name!r} not found in {corpus_dir}")
            else:
                texts.append(text)
        if not texts:
            continue
        for answer in answers:
            needle = normalise(answer)
            if not any(needle in text for text in texts):
                problems.append(
                    f"{where}: answer {answer!r} not found in gold docs {docs}"
                )

    for rid, count in sorted(ids.items()):
        if count > 1:
            problems.append(f"id {rid!r} used {count} times")
    return problems


def _summary(qa_path: Path) -> str:
    """One line of counts by style, for the success message."""
    styles: Counter[str] = Counter()
    for line in qa_path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            styles[str(json.loads(line).get("style"))] += 1
    parts = ", ".join(f"{name}={styles[name]}" for name in sorted(styles))
    return f"{qa_path}: {sum(styles.values())} records OK ({parts})"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Check a QA dev set (JSONL) against its corpus directory."
    )
    parser.add_argument("qa_path", type=Path, help="the JSONL file of questions")
    parser.add_argument(
        "--corpus",
        type=Path,
        required=True,
        metavar="DIR",
        help="directory holding the gold documents named in 'docs'",
    )
    args = parser.parse_args(argv)
    problems = check(args.qa_path, args.corpus)
    for problem in problems:
        print(problem)
    if problems:
        print(f"{len(problems)} problem(s)", file=sys.stderr)
        return 1
    print(_summary(args.qa_path))
    return 0


if __name__ == "__main__":
    sys.exit(main())
