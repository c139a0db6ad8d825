"""The lexical (BM25) query in a form every store can render.

Retrieval decides *what* to search for: phrases of which a passage must hold at least one, and
phrases it must hold all of (the second hop: a bridge name AND one of the question's informative
words). Each store decides *how*: the SQLite store renders FTS5 MATCH syntax, the PostgreSQL
store ``tsquery`` values and a BM25 expression in SQL. Phrases are plain lower-case words
separated by spaces; each store tokenises and stems them as it does its passages.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class LexicalQuery:
    """Passages holding any of ``any`` (and, when given, every phrase of ``all``).

    Both are phrases in the order retrieval chose, duplicates already removed.
    """

    any: tuple[str, ...]
    all: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.any or self.all)

    @property
    def phrases(self) -> tuple[str, ...]:
        """Every phrase once: ``all`` first, then ``any`` (the order BM25 scores them in)."""
        return tuple(dict.fromkeys(self.all + self.any))

    def fts5(self) -> str:
        """The FTS5 MATCH expression: ``"a" OR "b"``, or ``"x" AND ("a" OR "b")``."""
        ors = " OR ".join(dict.fromkeys(f'"{p}"' for p in self.any))
        if not self.all:
            return ors
        ands = " AND ".join(f'"{p}"' for p in self.all)
        return f"{ands} AND ({ors})" if ors else ands
