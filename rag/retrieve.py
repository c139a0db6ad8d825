"""Question analysis and hybrid retrieval.

BM25 (FTS5) is strong on football news because questions name players, clubs and numbers;
MiniLM is strong on paraphrase. Neither alone is good enough, so both run and their rankings are
fused by reciprocal rank fusion, which needs no score calibration between the two. Club
nicknames come from a data file (``rag/data/aliases.json``) and expand the lexical query, since
"Die Werkself" and "Leverkusen" share no characters and only one of them may be in the article.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, replace
from functools import lru_cache

from .chunk import split_sentences
from .errors import ConfigError
from .lexical import LexicalQuery
from .models import Passage, Query
from .store import Store
from .text import STOPWORDS, content_terms, name_phrases, stem, tokens
from .vocab import alias_table, entity_kind

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


def _has(q: str, phrase: str) -> bool:
    return f" {' '.join(tokens(phrase))} " in q


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


@dataclass(frozen=True)
class RetrievalConfig:
    """Fusion settings; defaults tuned on the evaluation sets (see docs/EVALUATION.md).

    ``mode`` picks the method: ``hybrid`` (the default: alias expansion, weighted fusion, a
    bridge hop, at most ``per_article`` passages per article), or the baselines it is measured
    against: ``rrf`` (plain reciprocal rank fusion of the two retrievers, nothing else),
    ``dense`` (FAISS only) and ``bm25`` (FTS5 only).
    """

    mode: str = "hybrid"
    aliases: bool = True  # expand club nicknames and names from the alias table (BM25 query)
    dense_aliases: bool = False  # also append the expansions to the text the embedder sees
    depth: int = 40  # candidates taken from each retriever
    rrf_k: int = 20
    dense_weight: float = 1.0
    lexical_weight: float = 1.5
    lexical_floor: float = 0.05  # BM25 hits scoring under this share of the best one are dropped
    bridge_weight: float = 1.0  # weight of the second hop (0 = off)
    bridge_from: int = 3  # top passages whose best sentences are read for bridge names
    bridges: int = 1  # names followed in the second hop
    bridge_slots: int = 1  # top passages kept for the second hop's best new article
    bridge_min_rarity: float = 0.1  # question words at least this rare join the bridge search
    bridge_max_share: float = 0.2  # a bridge name in more than this share of passages is ignored
    per_article: int = 2  # passages per article at most (0 = no limit)
    dup_threshold: float = 0.85  # word-set Jaccard above which two passages are the same text

    def __post_init__(self) -> None:
        if self.mode not in RETRIEVAL_MODES:
            raise ConfigError(f"retrieval mode '{self.mode}' is not one of {', '.join(RETRIEVAL_MODES)}")
        if self.depth < 1 or self.rrf_k < 0 or self.per_article < 0 or self.bridges < 0:
            raise ConfigError(
                f"bad retrieval settings: depth={self.depth}, rrf_k={self.rrf_k}, "
                f"per_article={self.per_article}, bridges={self.bridges}"
            )


def _jaccard(a: set[str], b: set[str]) -> float:
    return len(a & b) / max(1, len(a | b))


_BRIDGE_PRIOR = {"name": 1.0, "club": 0.8}  # other kinds (grounds, competitions, dates) are not bridges


def bridge_names(query: Query, texts: list[str], n: int = 1) -> list[str]:
    """Names that the passages' best-matching sentences add to the question.

    "How much did Liverpool pay for the striker who scored his first goal at Charlton?": the
    sentence that matches best names the striker (Morientes); a second lexical hop for that
    name finds the passage about the fee. Sentences are matched on the question's words
    weighted by rarity; people and clubs the question does not name are the candidates.
    """
    if n <= 0 or not query.terms:
        return []
    weight = {stem(t): 0.3 + query.rarity.get(t, 0.5) for t in query.terms}
    total = sum(weight.values())
    qtoks = set(tokens(query.text)) | {t for e in query.expanded for t in tokens(e)}
    scored: list[tuple[float, str, str]] = []
    for text in texts:
        for sent in split_sentences(text):
            got = {stem(t) for t in tokens(sent.text)}
            scored.append((sum(w for s, w in weight.items() if s in got) / total, sent.text, text))
    scored.sort(key=lambda x: -x[0])
    names: dict[str, float] = {}
    for overlap, sent, text in scored[:3]:
        for name in name_phrases(sent, text):
            name = re.sub(r"^(?:[A-Z][\w-]*['’]s\s+)+", "", name)  # "Liverpool's Milan Baros"
            if not name or any(t in qtoks or t in STOPWORDS for t in tokens(name)):
                continue
            prior = _BRIDGE_PRIOR.get(entity_kind(name), 0.0)
            score = overlap * prior * (1.2 if " " in name else 1.0)
            if score > names.get(name, 0.0):
                names[name] = score
    return [x for x in sorted(names, key=lambda x: -names[x]) if names[x] > 0][:n]


class Retriever:
    """Hybrid dense + BM25 retrieval over one Store, with a bridge hop for descriptions."""

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

    def _bridge_match(self, query: Query, name: str) -> LexicalQuery | None:
        """BM25 for the bridge name AND one of the question's informative words (None if none):
        words that nearly every passage has would let any passage mentioning the name in."""
        informative = [t for t in query.terms if query.rarity.get(t, 1.0) >= self.config.bridge_min_rarity]
        if not informative:
            return None
        terms = tuple(dict.fromkeys(t.replace(chr(34), "") for t in informative))
        return LexicalQuery(terms, (" ".join(tokens(name)),))

    def _is_informative(self, name: str) -> bool:
        """A bridge name that most passages mention (a club in every report) leads nowhere."""
        _, n_chunks = self.store.count()
        df = self._document_frequency(" ".join(tokens(name)), n_chunks)
        return n_chunks == 0 or df <= self.config.bridge_max_share * n_chunks

    def retrieve(self, query: Query, top_k: int = 5) -> list[Passage]:
        """The ``top_k`` passages for the query, best first (reranked when a reranker is set)."""
        if self.reranker is None:
            return self._fused(query, top_k)
        pool = self._fused(query, max(top_k, self.reranker.candidates))
        return self.reranker.rerank(query, pool, top_k)

    def _fused(self, query: Query, top_k: int) -> list[Passage]:
        cfg = self.config
        hybrid = cfg.mode == "hybrid"
        if not hybrid or not cfg.aliases:
            query = replace(query, expanded=[])
        lexical: list[tuple[int, float]] = []
        dense: list[tuple[int, float]] = []
        if cfg.mode != "dense":
            lexical = self.store.lexical_search(lexical_query(query), cfg.depth, query.since, query.until)
            if lexical and cfg.lexical_floor:
                # BM25 gives words that every passage has a score of ~0; a passage matching only
                # those ranks by accident, and rank fusion would count that rank as evidence
                top = lexical[0][1]
                lexical = [(cid, sc) for cid, sc in lexical if sc >= cfg.lexical_floor * top] if top > 0 else []
        if cfg.mode != "bm25":
            qtext = query.text
            if cfg.dense_aliases and query.expanded:
                qtext = f"{qtext} ({', '.join(query.expanded)})"
            qvec = self.embedder.encode([qtext])[0]
            dense = self.store.dense_search(qvec, cfg.depth, query.since, query.until)
        k = cfg.rrf_k if hybrid else 60
        dw, lw = (cfg.dense_weight, cfg.lexical_weight) if hybrid else (1.0, 1.0)
        fused: dict[int, float] = {}
        dense_rank = {cid: r for r, (cid, _) in enumerate(dense, start=1)}
        lex_rank = {cid: r for r, (cid, _) in enumerate(lexical, start=1)}
        for cid, r in dense_rank.items():
            fused[cid] = fused.get(cid, 0.0) + dw / (k + r)
        for cid, r in lex_rank.items():
            fused[cid] = fused.get(cid, 0.0) + lw / (k + r)
        ranked = sorted(fused, key=lambda c: -fused[c])
        chunks = self.store.chunks(ranked[: top_k * 4])
        hop2: list[int] = []
        if hybrid and cfg.bridge_weight and cfg.bridges:
            sources = [chunks[c] for c in ranked[: cfg.bridge_from] if c in chunks]
            names = [n for n in bridge_names(query, [c.text for c in sources], cfg.bridges) if self._is_informative(n)]
            source_articles = {c.article_id for c in sources}
            for name in names:
                match = self._bridge_match(query, name)
                if match is None:
                    continue
                hop = self.store.lexical_search(match, 20, query.since, query.until)
                found = self.store.chunks([cid for cid, _ in hop])
                hop = [(cid, sc) for cid, sc in hop if cid in found and found[cid].article_id not in source_articles]
                chunks.update(found)
                for r, (cid, _) in enumerate(hop, start=1):
                    fused[cid] = fused.get(cid, 0.0) + cfg.bridge_weight / (k + r) / len(names)
                hop2.extend(cid for cid, _ in hop[:1])
            if names:
                ranked = sorted(fused, key=lambda c: -fused[c])
        picked = self._pick(ranked, chunks, top_k, cfg.per_article if hybrid else 0, reserve=hop2[: cfg.bridge_slots])
        return [Passage(chunk=chunks[cid], article=self.store.article(chunks[cid].article_id), score=fused[cid],
                        dense_rank=dense_rank.get(cid), lexical_rank=lex_rank.get(cid)) for cid in picked]

    def _pick(self, ranked: list[int], chunks: dict, top_k: int, per_article: int, reserve: list[int]) -> list[int]:
        """The top passages: near-duplicates collapsed, at most ``per_article`` per article, and
        the ``reserve`` (second-hop) passages kept even if they rank lower."""
        out: list[int] = []
        seen: list[set[str]] = []
        count: dict[str, int] = {}
        capped: list[int] = []
        reserve = [c for c in reserve if c in chunks]
        for cid in ranked:
            if len(out) + sum(1 for r in reserve if r not in out) >= top_k and cid not in reserve:
                continue
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
