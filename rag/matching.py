"""Whether a text holds an accepted answer: the matching every evaluation uses.

Standard library only, and importing nothing from the package, so that a script running in
another virtualenv (``bench/peers_worker.py``, beside LlamaIndex and Haystack) loads this very
file by path instead of keeping a copy that could drift.
"""

from __future__ import annotations

import re
from collections.abc import Iterable


def norm(text: str) -> str:
    """Lower case, whitespace collapsed, curly quotes made plain."""
    text = text.replace("\u2019", "'").replace("\u2018", "'").replace("\u201c", '"').replace("\u201d", '"')
    return " ".join(text.split()).lower()


def _answer_pattern(answer: str) -> re.Pattern[str] | None:
    a = norm(answer)
    if not a:
        return None
    left = r"(?<!\w)" if a[0].isalnum() else ""
    right = r"(?!\w)" if a[-1].isalnum() else ""
    return re.compile(left + re.escape(a) + right)


def contains_answer(text: str, answers: Iterable[str]) -> bool:
    """An accepted answer occurs in the text as whole words (case-insensitive, whitespace
    collapsed, curly quotes made plain)."""
    t = norm(text)
    for a in answers:
        rx = _answer_pattern(a)
        if rx is not None and rx.search(t):
            return True
    return False
