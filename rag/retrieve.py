"""Question analysis and hybrid retrieval.

BM25 (FTS5) is strong on football news because questions name players, clubs and numbers;
MiniLM is strong on paraphrase. Neither alone is good enough, so both run and every candidate
is scored by a weighted sum of its BM25 score (as a share of the question's best) and its cosine
similarity, with the two weights fitted on the train split of the question bank
(``eval/fit_retrieval.py``, ``rag/data/retrieval.json``). Scores rather than ranks: a passage
that BM25 ranks tenth but matches nearly as well as the first keeps that evidence. Club
nicknames come from a data file (``rag/data/aliases.json``) and expand the lexical query, since
"Die Werkself" and "Leverkusen" share no characters and only one of them may be in the article.
Passages are ~120-word chunks, the unit both retrievers rank best; the answerer reads each with
about 100 words of its article on either side, where a paraphrased question's answer often is.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, replace
from functools import lru_cache
from importlib import resources

import numpy as np

from .chunk import split_sentences
from .errors import ConfigError, IndexCorruptError
from .lexical import LexicalQuery
from .models import Passage, Query
from .store import REPAIR_HINT, Store
from .text import content_terms, tokens
from .vocab import alias_table

# A question may open with a preposition: "*After* how many minutes...", "*In* which year...".
_LEAD = r"^\s*(?:(?:after|for|in|at|by|on|from|to|with|against|since|until|within|of|during|before)\s+)?"
_KIND_PATTERNS: list[tuple[str, str]] = [
    ("score", r"\b(what|which) (was|is|were) the (final |full[- ]time |half[- ]time )?(score|scoreline|result)\b|\bwhat score\b|\bby what score\b"),
    ("when", _LEAD + r"(when|what year|which year|what date|what month|which month|what day|since when|until when)\b"),
    ("how_many", _LEAD + r"(how (many|much|old|long|often|far)|what (age|fee|percentage|number))\b"),
    ("who", r"^\s*(who|whom|whose)\b"),
    ("where", r"^\s*(where|in which (city|country|stadium|position|place))\b|\bwhat position\b|\bwhere did\b"),
    ("which", _LEAD + r"(which|what) (club|team|side|country|nation|player|manager|coach|competition|trophy|cup|league|stadium|ground|city)\b|^\s*which\b"),
    ("what", r"^\s*(what|name)\b"),
    ("why", r"^\s*why\b|\bfor what reason\b"),
    ("yes_no", r"^\s*(did|does|do|is|was|were|are|has|have|had|can|could|will|would|should)\b"),
]


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


@dataclass(frozen=True)
class AliasLink:
    """A club (or competition) name said in a question, and its other names.

    ``said`` is the name as the question has it (lower-case tokens); ``means`` are the names an
    article may use instead: the canonical name and its unambiguous nicknames.
    """

    said: str
    means: tuple[str, ...]


@lru_cache(maxsize=4096)
def _padded(phrase: str) -> str:
    return f" {' '.join(tokens(phrase))} "


def _has(q: str, phrase: str) -> bool:
    return _padded(phrase) in q


def alias_links(question: str) -> list[AliasLink]:
    """The names in the question that the alias table knows, with their other names."""
    q = " " + " ".join(tokens(question)) + " "
    to_canon, from_canon = _alias_index()
    unambiguous: dict[str, list[str]] = {}
    for alias, canons in to_canon.items():
        unambiguous.setdefault(canons[0].lower(), []).append(alias)
    out: list[AliasLink] = []
    for alias, canons in to_canon.items():
        if _has(q, alias):
            for c in canons:
                means = [c.lower()] + [a for a in unambiguous.get(c.lower(), []) if a != alias]
                out.append(AliasLink(alias, tuple(means)))
    for canon in from_canon:
        if _has(q, canon):
            out.append(AliasLink(canon, tuple(unambiguous.get(canon, []))))
    return out


def expand_aliases(question: str, *, reverse: bool = False) -> list[str]:
    """Phrases to add to the query for the nicknames in the question: the club each one means
    ("the Toffees" -> "everton"), and with ``reverse`` also a named club's multi-word nicknames.

    Only the first direction is used for retrieval: on the dev set, adding nicknames such as
    "the Blues" or "Old Trafford" for a club the question names pulled in more noise than
    matches (docs/EVALUATION.md)."""
    q = " " + " ".join(tokens(question)) + " "
    to_canon, from_canon = _alias_index()
    extra: dict[str, None] = {}
    for alias, canons in to_canon.items():
        if _has(q, alias):
            for c in canons:
                extra.setdefault(c.lower(), None)
    for canon, aliases in from_canon.items() if reverse else ():
        if _has(q, canon):
            for a in aliases:
                if len(tokens(a)) > 1 or a.startswith("the "):
                    extra.setdefault(a.removeprefix("the "), None)
    for phrase in list(extra):
        if _has(q, phrase):
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


def lexical_query(query: Query) -> LexicalQuery:
    """Any content term or expansion phrase (BM25 ranks the rest); each store renders it."""
    parts = []
    for t in query.terms:
        t = t.replace('"', "")
        if t:
            parts.append(t)
    for phrase in query.expanded:
        ph = " ".join(tokens(phrase))
        if ph:
            parts.append(ph)
    return LexicalQuery(tuple(dict.fromkeys(parts)))


def fts_match(query: Query) -> str:
    """An FTS5 MATCH expression: any content term or expansion phrase (BM25 ranks the rest)."""
    return lexical_query(query).fts5()


RETRIEVAL_MODES = ("hybrid", "rrf", "dense", "bm25")


@lru_cache(maxsize=1)
def fusion_weights() -> dict[str, float]:
    """The fitted weights of the hybrid score (``rag/data/retrieval.json``, written by
    ``eval/fit_retrieval.py`` from the train split of the question bank)."""
    raw = json.loads(resources.files("rag").joinpath("data/retrieval.json").read_text("utf-8"))
    return {k: float(v) for k, v in raw["weights"].items()}


@dataclass(frozen=True)
class RetrievalConfig:
    """Retrieval settings (see docs/EVALUATION.md for how each was chosen).

    ``mode`` picks the method: ``hybrid`` (the default: BM25 and dense candidates scored by a
    weighted sum of the BM25 score, as a share of the best one, and the cosine similarity, with
    weights fitted on the train split; alias expansion; at most ``per_article`` passages per
    article; each passage widened by ``context_words`` of its article on each side), or the
    baselines it is measured against: ``rrf`` (plain reciprocal rank fusion, k = 60), ``dense``
    (FAISS only) and ``bm25`` (FTS5 only), which return the matched chunks as they are.
    """

    mode: str = "hybrid"
    aliases: bool = True  # expand club nicknames from the alias table (BM25 query)
    depth: int = 40  # candidates taken from each retriever
    weights: tuple[float, float] | None = None  # (bm25, dense) weights; None = the fitted ones
    context_words: int = 100  # article text added before and after each passage (whole sentences)
    per_article: int = 2  # passages per article at most (0 = no limit)
    dup_threshold: float = 0.85  # word-set Jaccard above which two passages are the same text

    def __post_init__(self) -> None:
        if self.mode not in RETRIEVAL_MODES:
            raise ConfigError(f"retrieval mode '{self.mode}' is not one of {', '.join(RETRIEVAL_MODES)}")
        if self.depth < 1 or self.per_article < 0 or self.context_words < 0:
            raise ConfigError(
                f"bad retrieval settings: depth={self.depth}, per_article={self.per_article}, "
                f"context_words={self.context_words}"
            )


def _jaccard(a: set[str], b: set[str]) -> float:
    return len(a & b) / max(1, len(a | b))


class Retriever:
    """Hybrid dense + BM25 retrieval over one Store."""

    def __init__(self, store: Store, embedder, config: RetrievalConfig | None = None,
                 reranker=None) -> None:
        self.store = store
        self.embedder = embedder
        self.config = config or RetrievalConfig()
        self.reranker = reranker  # an optional rag.rerank.CrossEncoderReranker

    def analyse(self, question: str, *, since: str | None = None, until: str | None = None) -> Query:
        """``analyse`` plus how rare each question word is in this index (for answer scoring)."""
        query = analyse(question, since=since, until=until)
        return replace(query, rarity=self.rarity(query.terms))

    def rarity(self, terms: list[str]) -> dict[str, float]:
        """0..1 inverse document frequency of each term over the indexed passages."""
        _, n_chunks = self.store.count()
        out: dict[str, float] = {}
        for t in terms:
            df = self._document_frequency(t, n_chunks)
            # a word no passage has (a typo, say) tells sentences apart no better than any other
            out[t] = math.log((n_chunks + 1) / (df + 1)) / math.log(n_chunks + 2) if df else 0.5
        return out

    def _document_frequency(self, words: str, n_chunks: int) -> int:
        """Passages holding the words as a phrase (the store caches the FTS5 counts)."""
        return self.store.document_frequency(f'"{words.replace(chr(34), "")}"', n_chunks)

    def retrieve(self, query: Query, top_k: int = 5) -> list[Passage]:
        """The ``top_k`` passages for the query, best first (reranked when a reranker is set),
        widened to their context in hybrid mode."""
        cfg = self.config
        widening = cfg.mode == "hybrid" and cfg.context_words > 0
        want = 2 * top_k if widening else top_k  # widened passages of one article may merge
        if self.reranker is None:
            pool = self._fused(query, want)
        else:
            pool = self.reranker.rerank(query, self._fused(query, max(want, self.reranker.candidates)), want)
        check_passages(pool, getattr(self.store, "dir", None) or getattr(self.store, "server", "the index"))
        return widen(pool, cfg.context_words)[:top_k] if widening else pool

    def candidates(self, query: Query) -> tuple[list[tuple[int, float]], list[tuple[int, float]], np.ndarray | None]:
        """(BM25 hits, dense hits, question vector) at the configured depth, as the mode wants."""
        cfg = self.config
        if cfg.mode != "hybrid" or not cfg.aliases:
            query = replace(query, expanded=[])
        lexical: list[tuple[int, float]] = []
        dense: list[tuple[int, float]] = []
        qvec = None
        if cfg.mode != "dense":
            lexical = self.store.lexical_search(lexical_query(query), cfg.depth, query.since, query.until)
        if cfg.mode != "bm25":
            qvec = self.embedder.encode([query.text])[0]
            dense = self.store.dense_search(qvec, cfg.depth, query.since, query.until)
        return lexical, dense, qvec

    def fusion_features(self, lexical: list[tuple[int, float]], dense: list[tuple[int, float]],
                        qvec: np.ndarray) -> dict[int, tuple[float, float]]:
        """Each candidate's (BM25 score as a share of the best, cosine similarity). A passage
        only BM25 found is scored by its stored vector, one only the embedder found gets 0 BM25."""
        top = lexical[0][1] if lexical and lexical[0][1] > 0 else 0.0
        bm25 = {cid: (sc / top if top else 0.0) for cid, sc in lexical}
        cos = dict(dense)
        missing = [cid for cid in bm25 if cid not in cos]
        if missing:
            for cid, vec in self.store.embeddings(missing).items():
                cos[cid] = float(vec @ qvec)
        return {cid: (bm25.get(cid, 0.0), cos.get(cid, 0.0)) for cid in dict.fromkeys([*bm25, *cos])}

    def _fused(self, query: Query, top_k: int) -> list[Passage]:
        cfg = self.config
        hybrid = cfg.mode == "hybrid"
        lexical, dense, qvec = self.candidates(query)
        dense_rank = {cid: r for r, (cid, _) in enumerate(dense, start=1)}
        lex_rank = {cid: r for r, (cid, _) in enumerate(lexical, start=1)}
        fused: dict[int, float] = {}
        if hybrid and qvec is not None:
            wl, wd = cfg.weights or (fusion_weights()["bm25"], fusion_weights()["dense"])
            for cid, (b, c) in self.fusion_features(lexical, dense, qvec).items():
                fused[cid] = wl * b + wd * c
        else:  # the baselines: one ranking, or plain reciprocal rank fusion of both
            for ranks in (dense_rank, lex_rank):
                for cid, r in ranks.items():
                    fused[cid] = fused.get(cid, 0.0) + 1.0 / (60 + r)
        ranked = sorted(fused, key=lambda c: -fused[c])
        chunks = self.store.chunks(ranked[: top_k * 4])
        picked = self._pick(ranked, chunks, top_k, cfg.per_article if hybrid else 0)
        out = []
        articles: dict[str, object] = {}
        for cid in picked:
            ch = chunks[cid]
            art = articles.get(ch.article_id) or self.store.article(ch.article_id)
            articles[ch.article_id] = art
            out.append(Passage(chunk=ch, article=art, score=fused[cid], dense_rank=dense_rank.get(cid),
                               lexical_rank=lex_rank.get(cid)))
        return out

    def _pick(self, ranked: list[int], chunks: dict, top_k: int, per_article: int) -> list[int]:
        """The top passages: near-duplicates collapsed, at most ``per_article`` per article."""
        out: list[int] = []
        seen: list[set[str]] = []
        count: dict[str, int] = {}
        capped: list[int] = []
        for cid in ranked:
            if len(out) >= top_k:
                break
            ch = chunks.get(cid)
            if ch is None:
                ch = self.store.chunks([cid]).get(cid)
                if ch is None:
                    continue
                chunks[cid] = ch
            words = set(tokens(ch.text))
            if any(_jaccard(words, s) >= self.config.dup_threshold for s in seen):
                continue
            if per_article and count.get(ch.article_id, 0) >= per_article:
                capped.append(cid)
                continue
            seen.append(words)
            count[ch.article_id] = count.get(ch.article_id, 0) + 1
            out.append(cid)
        if len(out) < top_k and capped:  # too few articles for the cap: fill up in rank order
            keep = set(out) | set(capped[: top_k - len(out)])
            out = [c for c in ranked if c in keep]
        return out


def check_passages(passages: list[Passage], where: object) -> None:
    """Every passage must be its article's text at its offsets: a damaged row would otherwise
    become an answer quoting words the article does not have (checked before widening, which
    re-reads the span from the article)."""
    for p in passages:
        if p.article.text[p.chunk.start:p.chunk.end] != p.chunk.text:
            raise IndexCorruptError(
                f"{where}: passage {p.chunk.id} of article '{p.article.id}' does not match the article's "
                f"text: the index is damaged; {REPAIR_HINT}")


def widen(passages: list[Passage], words: int) -> list[Passage]:
    """Each passage with about ``words`` words of its article before and after it, in whole
    sentences; a passage whose span another, better one already covers is merged into it.

    BM25 and the embedder score best on ~120-word chunks, but the sentence that answers a
    paraphrased question is often next to the one that matched it; the answerer reads the wider
    span (docs/EVALUATION.md)."""
    out: list[Passage] = []
    spans: dict[str, list[tuple[int, int]]] = {}
    for p in passages:
        text = p.article.text
        sents = split_sentences(text)
        first = next((i for i, s in enumerate(sents) if s.end > p.chunk.start), 0)
        last = next((i for i in range(len(sents) - 1, -1, -1) if sents[i].start < p.chunk.end), len(sents) - 1)
        i, got = first, 0
        while i > 0 and got < words:
            i -= 1
            got += len(sents[i].text.split())
        j, got = last, 0
        while j < len(sents) - 1 and got < words:
            j += 1
            got += len(sents[j].text.split())
        start = min(p.chunk.start, sents[i].start) if sents else p.chunk.start
        end = max(p.chunk.end, sents[j].end) if sents else p.chunk.end
        taken = spans.setdefault(p.article.id, [])
        hit = next((k for k, (a, b) in enumerate(taken) if a < end and start < b), None)
        if hit is not None:  # overlaps a better passage of the same article: grow that one
            a, b = taken[hit]
            taken[hit] = (min(a, start), max(b, end))
            idx = [n for n, q in enumerate(out) if q.article.id == p.article.id][hit]
            q = out[idx]
            a, b = taken[hit]
            out[idx] = replace(q, chunk=replace(q.chunk, start=a, end=b, text=text[a:b]))
            continue
        taken.append((start, end))
        out.append(replace(p, chunk=replace(p.chunk, start=start, end=end, text=text[start:end])))
    return out
