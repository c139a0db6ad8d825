"""Candidate sentences and what is known about each: the signals the answer ranker weighs.

Every sentence of the retrieved passages is a candidate. Its features say how much of the
question it covers (each word weighted by its rarity in the index; names may come from the
sentence before or the headline, "He" being the article's subject; a club's other names count
as the club, a synonym as the word), whether the question's predicate is there ("born",
"refereed", "paid"), whether it offers a span of the wanted type, how the retrievers ranked its
passage, where it sits in its article, whether it is speculative, negated or in the future when
the question asks about the past, whether an article lacks a number the question gives ("the
*2005* final"), and how much a second sentence naming the same person adds (two hops: the
sentence that matches a description names someone, another says what was asked about him).
No weights live here: ``rag/ranker.py`` holds the model fitted on the train split.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache

from .chunk import Sentence, split_sentences
from .models import Article, Passage
from .question import NAMED, PAST_Q, TYPED, Frame, Term, stems_of
from .spans import Span, spans
from .text import name_phrases, tokens

_SPECULATIVE = re.compile(r"\b(?:favou?rite to|could|would|might|may|linked|reportedly|rumou?rs?|eyeing|potential|expected to|set to|poised|tipped|considered|fac(?:es|ing) (?:a|an)\b)\b|^\W*If\b")
_FUTURE = re.compile(r"\b(?:will|shall|going to)\b")
_NEGATION = re.compile(r"\b(?:not|never|no|none|nor|without|denied|denies|ruled out)\b|n['’]t\b", re.I)
_REPORTED = re.compile(r"\b(?:said|says|told|added|insisted|claimed|admitted|believes?)\b|[\"“”]")
_PRONOUN_START = re.compile(r"^\s*[\"“]?\s*(?:He|She|They|It|His|Her|Their|The (?:\d+-year-old|[a-z]+(?:-[a-z]+)? (?:coach|manager|striker|midfielder|defender|winger|player|tactician|boss|club|side|keeper|goalkeeper|forward|international)|[a-z]+))\b")

SENTENCE_FEATURES = (
    "coverage", "name_coverage", "word_coverage", "window_coverage", "headline", "predicate",
    "rank", "passage_score", "first", "position", "span", "no_span", "span_spec", "numbers_missing",
    "speculative", "future", "negated", "reported", "pronoun", "length", "second_hop",
    "coverage_gap", "name_gap", "word_gap", "window_gap",
)
_RELATIVE = [SENTENCE_FEATURES.index(f) for f in ("coverage", "name_coverage", "word_coverage", "window_coverage")]


@dataclass
class Candidate:
    """A sentence of a retrieved passage, its spans, its features and (once ranked) its score."""

    rank: int  # 0-based rank of its passage
    passage: Passage
    sentence: Sentence
    context: Sentence | None  # the sentence before, when a pronoun opens this one
    stems: set[str]
    coverage: float
    spans: list[Span] = field(default_factory=list)
    features: list[float] = field(default_factory=list)
    score: float = 0.0  # the ranker's probability that this sentence answers the question
    partner: Candidate | None = None  # a sentence of another article that completes it (two hops)


def coverage(fr: Frame, own: set[str], ctx: set[str]) -> tuple[float, float, float]:
    """(all, names, words) shares of the question's weight that a sentence covers.

    Names count fully in the sentence and mostly in its context (the previous sentences and the
    headline); a club's other names count as the club; other words must be in the sentence
    itself (a synonym counts slightly less)."""
    linked_own: set[str] = set()
    linked_ctx: set[str] = set()
    for said, means in fr.links:
        if any(m <= own for m in means):
            linked_own |= said
        elif any(m <= ctx for m in means):
            linked_ctx |= said
    got_n = tot_n = got_w = tot_w = 0.0
    for t in fr.terms:
        w = t.weight
        if t.stems & own:
            g = w
        elif t.stems & linked_own:
            g = 0.9 * w
        elif t.name and t.stems & ctx:
            g = 0.65 * w
        elif t.name and t.stems & linked_ctx:
            g = 0.6 * w
        elif t.syn & own:
            g = 0.8 * w
        elif t.stems & ctx:
            g = 0.15 * w
        else:
            g = 0.0
        if t.name:
            got_n, tot_n = got_n + g, tot_n + w
        else:
            got_w, tot_w = got_w + g, tot_w + w
    tot = tot_n + tot_w
    if not tot:
        return 0.0, 0.0, 0.0
    return (got_n + got_w) / tot, (got_n / tot_n if tot_n else 1.0), (got_w / tot_w if tot_w else 1.0)


@lru_cache(maxsize=256)
def _text_stems(text: str) -> frozenset[str]:
    """Stems of a whole article (for the numbers it gives)."""
    return frozenset(stems_of(text))


@lru_cache(maxsize=512)
def _sentences(text: str) -> list[Sentence]:
    return split_sentences(text)


@lru_cache(maxsize=1 << 16)
def _sentence_stems(text: str) -> frozenset[str]:
    """Stems of one sentence: each is read as a candidate, as context of the next three and as a
    neighbour, for every question whose passages hold it, so they are worked out once."""
    return frozenset(stems_of(text))


def _predicate_terms(fr: Frame) -> list[Term]:
    """The question's predicate: its focus word ("how many *games*", "who *scored*"), else its
    plain words that weigh near the most."""
    plain = [t for t in fr.terms if not t.name]
    focus = [t for t in plain if fr.focus and fr.focus in t.stems]
    return focus or [t for t in plain if t.weight >= 0.6 * max((x.weight for x in plain), default=0)] or plain


def _share(terms: list[Term], words: set[str]) -> float:
    total = sum(t.weight for t in terms)
    return sum(t.weight for t in terms if t.stems & words or t.syn & words) / total if total else 1.0


def candidates(fr: Frame, query_text: str, passages: list[Passage]) -> list[Candidate]:
    """Every sentence of the passages (each once), with its spans and features."""
    qlow = query_text.lower()
    past_q = bool(PAST_Q.search(query_text))
    typed = fr.want in TYPED or fr.want in NAMED
    numbers = [t for t in fr.terms if any(ch.isdigit() for ch in t.text)]
    pred = _predicate_terms(fr)
    top_score = max((p.score for p in passages), default=0.0) or 1.0
    missing: dict[str, bool] = {}
    out: list[Candidate] = []
    seen: set[tuple[str, int]] = set()
    sentences: dict[str, list[Sentence]] = {}
    for rank, p in enumerate(passages):
        art: Article = p.article
        if art.id not in sentences:
            sentences[art.id] = _sentences(art.text)
            have = _text_stems(art.title) | _text_stems(art.text) | (_text_stems(art.date) if art.date else frozenset())
            missing[art.id] = any(not (t.stems & have) for t in numbers)
        sents = sentences[art.id]
        title = set(_text_stems(art.title))
        head_cov = coverage(fr, title, set())[0]
        for i, s in enumerate(sents):
            if s.end <= p.chunk.start or s.start >= p.chunk.end or (art.id, s.start) in seen:
                continue
            seen.add((art.id, s.start))
            own = set(_sentence_stems(s.text))
            ctx = set(title)
            for c in sents[max(0, i - 3): i]:
                ctx |= _sentence_stems(c.text)
            cov, ncov, wcov = coverage(fr, own, ctx)
            window = own | (_sentence_stems(sents[i - 1].text) if i else set()) | (
                _sentence_stems(sents[i + 1].text) if i + 1 < len(sents) else set())
            prev = sents[i - 1] if i > 0 and _PRONOUN_START.match(s.text) else None
            found = spans(fr, s.text, s.start, qlow) if typed else []
            if not found and prev is not None and fr.want in NAMED:
                found = [Span(x.text, x.start, x.spec, x.type, context=True) for x in spans(fr, prev.text, prev.start, qlow)]
            spec = max((x.spec for x in found), default=0.0)
            feats = [
                cov, ncov, wcov, coverage(fr, window, ctx)[0], head_cov, _share(pred, own),
                1.0 / (1 + rank), p.score / top_score, float(i <= 1), i / max(1, len(sents) - 1),
                float(typed and bool(found)), float(typed and not found), min(spec, 8.0) / 8.0,
                float(missing[art.id]),
                float(past_q and bool(_SPECULATIVE.search(s.text))), float(past_q and bool(_FUTURE.search(s.text))),
                float(bool(_NEGATION.search(s.text))), float(bool(_REPORTED.search(s.text))), float(prev is not None),
                min(len(s.text.split()), 60) / 60.0, 0.0, 0.0, 0.0, 0.0, 0.0,
            ]
            out.append(Candidate(rank=rank, passage=p, sentence=s, context=prev, stems=own, coverage=cov,
                                 spans=found, features=feats))
    _second_hops(fr, out)
    for k, f in enumerate(_RELATIVE):  # how far each sentence is from the best one of this question
        best = max((c.features[f] for c in out), default=0.0)
        for c in out:
            c.features[len(SENTENCE_FEATURES) - len(_RELATIVE) + k] = c.features[f] - best
    return out


SECOND_HOP = SENTENCE_FEATURES.index("second_hop")


def _second_hops(fr: Frame, cands: list[Candidate], pool: int = 12) -> None:
    """For each candidate, how much of the question a sentence of another article that names
    one of the same people or clubs adds ("the striker who scored at Charlton" is named in one
    report; another gives his fee). The best such partner is kept, to be cited beside it."""
    if len(cands) < 2 or not fr.terms:
        return
    top = sorted(cands, key=lambda c: -c.coverage)[:pool]
    own = set(fr.own_names)
    names = {id(c): _surnames(c.sentence.text) - own for c in cands}
    for c in cands:
        best, gain = None, 0.0
        for d in top:
            if d is c or d.passage.article.id == c.passage.article.id or not names[id(c)] & names[id(d)]:
                continue
            joint = coverage(fr, c.stems | d.stems, set())[0]
            if joint - max(c.coverage, d.coverage) > gain:
                best, gain = d, joint - max(c.coverage, d.coverage)
        c.features[SECOND_HOP] = gain
        c.partner = best


@lru_cache(maxsize=1 << 14)
def _surnames(text: str) -> frozenset[str]:
    """The last word of each name in a sentence (articles use the surname after first mention)."""
    return frozenset(t for n in name_phrases(text) for t in tokens(n)[-1:])


def is_yes(cand: Candidate, fr: Frame, question: str) -> bool:
    """A yes/no question's answer from its best sentence: "Yes" when the sentence says the
    question's predicate with the same polarity as the question."""
    q_neg = bool(_NEGATION.search(question))
    s_neg = bool(_NEGATION.search(cand.sentence.text))
    return _share(_predicate_terms(fr), cand.stems) >= 0.5 and q_neg == s_neg

