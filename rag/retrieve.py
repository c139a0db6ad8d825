"""Question analysis and hybrid retrieval.

BM25 (FTS5) is strong on football news because questions name players, clubs and numbers;
MiniLM is strong on paraphrase. Neither alone is good enough, so both run and their rankings are
fused by reciprocal rank fusion, which needs no score calibration between the two. Club
nicknames come from a data file (``rag/data/aliases.json``) and expand the lexical query, since
"Die Werkself" and "Leverkusen" share no characters and only one of them may be in the article.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

from .models import Passage, Query
from .store import Store
from .text import content_terms, tokens

_KIND_PATTERNS: list[tuple[str, str]] = [
    ("score", r"\b(what|which) (was|is|were) the (final |full[- ]time |half[- ]time )?(score|scoreline|result)\b|\bwhat score\b|\bby what score\b"),
    ("when", r"^\s*(when|what year|which year|what date|what month|which month|what day|in what year|since when|until when)\b"),
    ("how_many", r"^\s*(how (many|much|old|long|often|far)|what (age|fee|percentage|number)|at what age)\b"),
    ("who", r"^\s*(who|whom|whose)\b"),
    ("where", r"^\s*(where|in which (city|country|stadium|position|place))\b|\bwhat position\b|\bwhere did\b"),
    ("which", r"^\s*(which|what) (club|team|side|country|nation|player|manager|coach|competition|trophy|cup|league|stadium|ground|city)\b|^\s*which\b"),
    ("what", r"^\s*(what|name)\b"),
]


@lru_cache(maxsize=1)
def alias_table() -> dict[str, list[str]]:
    """Canonical name -> nicknames, from the packaged data file."""
    raw = json.loads(resources.files("rag").joinpath("data/aliases.json").read_text("utf-8"))
    return {k: v for k, v in raw.items() if not k.startswith("_")}


@lru_cache(maxsize=1)
def _alias_index() -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    """(phrase -> canonical names it may mean, canonical -> aliases), lower-cased.

    A nickname is used to expand towards its club only when it is unambiguous: it belongs to one
    club, and it is not part of another club's name ("United", "Real", "City" are not).
    """
    table = alias_table()
    owners: dict[str, list[str]] = {}
    for canon, aliases in table.items():
        for a in aliases:
            owners.setdefault(a.lower(), []).append(canon)
    canon_tokens = {c: " " + " ".join(tokens(c)) + " " for c in table}
    to_canon: dict[str, list[str]] = {}
    for alias, canons in owners.items():
        at = " " + " ".join(tokens(alias)) + " "
        if len(canons) > 1 or any(at in ct for c, ct in canon_tokens.items() if c not in canons):
            continue
        to_canon[alias] = canons
    from_canon = {c.lower(): [a.lower() for a in al] for c, al in table.items()}
    return to_canon, from_canon


def expand_aliases(question: str) -> list[str]:
    """Phrases to add to the lexical query for the club names and nicknames in the question."""
    q = " " + " ".join(tokens(question)) + " "
    to_canon, from_canon = _alias_index()
    extra: dict[str, None] = {}
    for alias, canons in to_canon.items():
        if " " + " ".join(tokens(alias)) + " " in q:
            for c in canons:
                extra.setdefault(c.lower(), None)
    for canon, aliases in from_canon.items():
        if " " + " ".join(tokens(canon)) + " " in q:
            for a in aliases:
                if len(tokens(a)) > 1 or a.startswith("the "):
                    extra.setdefault(a.removeprefix("the "), None)
    for phrase in list(extra):
        if " " + " ".join(tokens(phrase)) + " " in q:
            del extra[phrase]
    return list(extra)


def question_kind(question: str) -> str:
    q = question.strip().lower()
    for kind, pattern in _KIND_PATTERNS:
        if re.search(pattern, q):
            return kind
    return "other"


def analyse(question: str, *, since: str | None = None, until: str | None = None) -> Query:
    """The Query the retrievers and answerers share."""
    return Query(
        text=question.strip(), terms=content_terms(question), expanded=expand_aliases(question),
        kind=question_kind(question), since=since, until=until,
    )


def fts_match(query: Query) -> str:
    """An FTS5 MATCH expression: any content term or expansion phrase (BM25 ranks the rest)."""
    parts = []
    for t in query.terms:
        t = t.replace('"', "")
        if t:
            parts.append(f'"{t}"')
    for phrase in query.expanded:
        ph = " ".join(tokens(phrase))
        if ph:
            parts.append(f'"{ph}"')
    return " OR ".join(dict.fromkeys(parts))


@dataclass(frozen=True)
class RetrievalConfig:
    """Fusion settings; defaults tuned on the evaluation sets (see docs/ARCHITECTURE.md)."""

    depth: int = 40  # candidates taken from each retriever
    rrf_k: int = 60
    dense_weight: float = 1.0
    lexical_weight: float = 1.0
    dup_threshold: float = 0.85  # word-set Jaccard above which two passages are the same text


def _jaccard(a: set[str], b: set[str]) -> float:
    return len(a & b) / max(1, len(a | b))


class Retriever:
    """Hybrid dense + BM25 retrieval over one Store."""

    def __init__(self, store: Store, embedder, config: RetrievalConfig | None = None) -> None:
        self.store = store
        self.embedder = embedder
        self.config = config or RetrievalConfig()

    def retrieve(self, query: Query, top_k: int = 5) -> list[Passage]:
        cfg = self.config
        lexical = self.store.lexical_search(fts_match(query), cfg.depth, query.since, query.until)
        qtext = query.text if not query.expanded else f"{query.text} ({', '.join(query.expanded)})"
        qvec = self.embedder.encode([qtext])[0]
        dense = self.store.dense_search(qvec, cfg.depth, query.since, query.until)
        fused: dict[int, float] = {}
        dense_rank = {cid: r for r, (cid, _) in enumerate(dense, start=1)}
        lex_rank = {cid: r for r, (cid, _) in enumerate(lexical, start=1)}
        for cid, r in dense_rank.items():
            fused[cid] = fused.get(cid, 0.0) + cfg.dense_weight / (cfg.rrf_k + r)
        for cid, r in lex_rank.items():
            fused[cid] = fused.get(cid, 0.0) + cfg.lexical_weight / (cfg.rrf_k + r)
        ranked = sorted(fused.items(), key=lambda kv: -kv[1])
        chunks = self.store.chunks([cid for cid, _ in ranked[: top_k * 4]])
        out: list[Passage] = []
        seen: list[set[str]] = []
        for cid, score in ranked:
            if len(out) >= top_k:
                break
            ch = chunks.get(cid)
            if ch is None:
                more = self.store.chunks([cid])
                ch = more.get(cid)
                if ch is None:
                    continue
            words = set(tokens(ch.text))
            if any(_jaccard(words, s) >= cfg.dup_threshold for s in seen):
                continue
            seen.append(words)
            out.append(Passage(chunk=ch, article=self.store.article(ch.article_id), score=score,
                               dense_rank=dense_rank.get(cid), lexical_rank=lex_rank.get(cid)))
        return out
