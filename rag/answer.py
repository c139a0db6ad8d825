"""The extractive answerer: cited answers in milliseconds, with no language model.

It scores every sentence of the retrieved passages by how much of the question it covers
(names and numbers weigh most), with the surrounding sentences as context so that "He" can stand
for the player the paragraph is about, and by whether it holds the kind of thing asked for
(a date for "when", a number for "how many", a name for "who"). It leads with that short span,
quotes the sentence, and abstains when coverage is too low: a wrong answer with a citation is
worse than an honest "the articles don't say".
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from typing import Protocol

from .chunk import Sentence, split_sentences
from .citations import make_citation
from .models import Answer, Article, Citation, Passage, Query, Timings
from .retrieve import alias_table
from .text import STOPWORDS, stem, tokens

ABSTAIN_TEXT = "The indexed articles don't say {what}."


class Answerer(Protocol):
    """One interface for the extractive and the LLM answerer."""

    mode: str

    def answer(self, query: Query, passages: list[Passage]) -> Answer: ...


_MONTH = r"(?:January|February|March|April|May|June|July|August|September|October|November|December|Jan|Feb|Mar|Apr|Jun|Jul|Aug|Sep|Sept|Oct|Nov|Dec)"
_WEEKDAY = r"(?:Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday)"
_NUMWORD = r"(?:one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|thirteen|fourteen|fifteen|sixteen|seventeen|eighteen|nineteen|twenty|thirty|forty|fifty|sixty|seventy|eighty|ninety|hundred|thousand|million|half|dozen)"
_ORDINAL = r"(?:first|second|third|fourth|fifth|sixth|seventh|eighth|ninth|tenth|eleventh|twelfth|thirteenth|fourteenth|fifteenth|sixteenth|seventeenth|eighteenth|nineteenth|twentieth|bottom|top|\d+(?:st|nd|rd|th))"

# (pattern, specificity) per answer type; the most specific match near the question's words wins.
_SPANS: dict[str, list[tuple[str, float]]] = {
    "when": [
        (r"\b\d{4}-\d{2}-\d{2}\b", 5),
        (rf"\b\d{{1,2}}(?:st|nd|rd|th)?\s+{_MONTH}\.?,?\s+\d{{4}}\b", 5),
        (rf"\b{_MONTH}\.?\s+\d{{1,2}}(?:st|nd|rd|th)?,?\s+\d{{4}}\b", 5),
        (rf"\b{_MONTH}\s+(?:of\s+)?(?:19|20)\d{{2}}\b", 4),
        (rf"\b\d{{1,2}}(?:st|nd|rd|th)?\s+{_MONTH}\b", 3.5),
        (rf"\b{_MONTH}\s+\d{{1,2}}(?:st|nd|rd|th)?\b", 3.5),
        (r"\b(?:19|20)\d{2}(?:[-/]\d{2,4})?\b", 3),
        (rf"\b{_MONTH}\b(?:\s+last\s+year|\s+next\s+year)?", 2.5),
        (rf"\b(?:on|last|next|this)\s+{_WEEKDAY}\b|\b{_WEEKDAY}\b", 2),
        (r"\b(?:last|next|this)\s+(?:year|season|summer|month|week|weekend|January|winter)\b", 1.5),
        (r"\b(?:in|after|before)\s+the\s+\d+(?:st|nd|rd|th)\s+minute\b|\b\d+\s+minutes\b", 1.5),
    ],
    "how_many": [
        (r"[£€$]\s?\d[\d,.]*\s?(?:m|bn|k|million|billion)?\b", 5),
        (r"\b\d[\d,.]*\s?(?:m|bn|million|billion|%|per cent|percent)\b", 4.5),
        (r"\b\d+(?:-year-old|\s+years?\s+old)\b|\baged\s+\d+\b", 4.5),
        (r"\b\d[\d,]*(?:\.\d+)?\b", 3),
        (rf"\b{_NUMWORD}(?:[- ]{_NUMWORD})*\b", 2),
    ],
    "score": [(r"\b\d{1,2}\s?-\s?\d{1,2}\b(?!-)", 5)],
    "where": [(rf"\b{_ORDINAL}(?:-placed| place| position| in the table)?\b", 3)],
}
_NAME = re.compile(
    r"\b(?:[A-Z][\w'’.-]*[a-z][\w'’.-]*|[A-Z]{2,})(?:\s+(?:(?:de|da|del|der|van|von|di|dos|la|le)\s+)?(?:[A-Z][\w'’.-]*|[A-Z]{2,}))*"
)
_NOT_NAMES = set(
    """The A An He She They It His Her Their Its This That These Those However But And Or If When
    While After Before Since Although Though Also Meanwhile Yet So Then There Here We I You Our
    My Your In On At For From With By Of To As Now Still Even Last Next Both Neither Either Not
    I’ll I'll I’m I'm It’s It's That’s That's Asked Speaking Despite Following Under Without
    No Yes Alongside According Hence Monday Tuesday Wednesday Thursday Friday Saturday Sunday
    January February March April May June July August September October November December
    Mr Mrs Ms Sir Dr Boss Coach Manager Striker Midfielder Defender Goalkeeper Captain""".split()
)
_DEMONYM = re.compile(r"^(?:[A-Z][a-z]+(?:ish|ian|ese|can|ch|ic|an)|South|North|East|West|Central|European|Premier|World)$")
_COMPETITION = re.compile(r"\b(League|Liga|Cup|Copa|Trophy|Championship|Bundesliga|Serie|Ligue|Premiership|Shield|Final|Olympics|Games)\b")
_SPECULATIVE = re.compile(r"\b(favou?rite to|could|would|might|may|linked|reportedly|rumou?rs?|eyeing|potential|expected to|set to|poised|tipped|considered)\b", re.I)
_CLUB_Q = re.compile(r"\b(club|team|side|opponents?|rivals?)\b", re.I)
_CLUB_WORD = re.compile(r"\b(FC|AFC|United|City|Town|Rovers|Athletic|Albion|Wanderers|County|Villa|Hotspur|Rangers|Celtic|Real|Sporting|Inter|Juventus|Dynamo|Borussia|Olympique|Bayern|Ajax|PSV|Benfica|Porto)\b")
_PAST_Q = re.compile(r"\b(did|was|were|had)\b", re.I)
_PRONOUN_START = re.compile(r"^\s*[\"“]?(?:He|She|They|It|His|Her|Their|The (?:\d+-year-old|[a-z]+ (?:coach|manager|striker|midfielder|player|tactician|boss|club|side)))\b")


@dataclass
class _Candidate:
    rank: int
    passage: Passage
    sentence: Sentence
    context: Sentence | None  # the previous sentence, when the answer may sit there
    coverage: float
    span: str | None = None
    span_start: int | None = None
    span_score: float = 0.0
    score: float = 0.0
    notes: list[str] = field(default_factory=list)


_FOCUS = re.compile(r"\bhow (?:many|much)\s+([a-z]+)|\bwhat (?:fee|number|percentage)\b")
_MONEY_Q = re.compile(r"\bhow much\b.*\b(pay|paid|cost|fee|worth|sum|price|spend|spent|sell|sold|buy|bought|bid|offer|fine|fined|earn|wage|salary)|\bwhat (?:fee|price)\b")
_AGE_Q = re.compile(r"\bhow old\b|\bwhat age\b|\bat what age\b|\bage of\b")


@dataclass(frozen=True)
class _Terms:
    """Question term stems split into names (may come from context) and predicate words."""

    names: dict[str, float]
    words: dict[str, float]
    focus: str | None
    alias_groups: list[set[str]]

    @property
    def all(self) -> dict[str, float]:
        return {**self.words, **self.names}


def _terms(query: Query) -> _Terms:
    raw = query.text
    first = (tokens(raw) or [""])[0]
    names: dict[str, float] = {}
    words: dict[str, float] = {}
    fm = _FOCUS.search(raw.lower())
    focus = stem(fm.group(1)) if fm and fm.group(1) else None
    vm = re.search(r"\b(?:did|does|do|will|would|could|can|has|have|had)\s+(?:[A-Z][\w'’-]*\s+)*([a-z]+)", raw)
    if focus is None and vm and vm.group(1) not in STOPWORDS:
        focus = stem(vm.group(1))  # the question's main verb: "Who did Alonso *succeed*"
    for t in query.terms:
        capital = any(m.group()[0].isupper() for m in re.finditer(rf"\b{re.escape(t)}\b", raw, re.IGNORECASE))
        s = stem(t)
        if (capital and t != first) or t.isdigit():
            names[s] = 1.5
        else:
            words[s] = 2.0 if s == focus else 1.0
    return _Terms(names, words, focus, [{stem(t) for t in tokens(p)} for p in query.expanded])


def _stem_set(text: str) -> set[str]:
    out = set()
    for t in tokens(text):
        out.add(stem(t))
        if "-" in t:
            out.update(stem(p) for p in t.split("-"))
    return out


def _coverage(terms: _Terms, own: set[str], context: set[str]) -> float:
    """Names count fully in the sentence and mostly in its context ("He" = the article's subject);
    the question's other words must be in the sentence itself."""
    total = sum(terms.names.values()) + sum(terms.words.values())
    if not total:
        return 0.0
    alias_own = any(g and g <= own for g in terms.alias_groups)
    alias_ctx = alias_own or any(g and g <= context for g in terms.alias_groups)
    got = 0.0
    for s, w in terms.names.items():
        if s in own:
            got += w
        elif s in context:
            got += 0.65 * w
        elif alias_own:
            got += 0.9 * w
        elif alias_ctx:
            got += 0.7 * w
    for s, w in terms.words.items():
        if s in own:
            got += w
        elif s in context:
            got += 0.15 * w
    return got / total


class ExtractiveAnswerer:
    """Sentence selection + typed span extraction; see the module docstring."""

    mode = "extractive"

    def __init__(self, *, min_coverage: float = 0.5, max_citations: int = 2) -> None:
        self.min_coverage = min_coverage
        self.max_citations = max_citations
        clubs = set()
        for canon, aliases in alias_table().items():
            clubs.add(canon.lower())
            clubs.update(a.lower().removeprefix("the ") for a in aliases)
        self._known = clubs

    # -------------------------------------------------------------- spans

    def _is_club(self, low: str) -> bool:
        return low in self._known or low.removeprefix("as ") in self._known or bool(_CLUB_WORD.search(low.title()))

    def _name_spans(self, kind: str, text: str, query: Query) -> list[tuple[str, int, float]]:
        qtokens = set(tokens(query.text))
        qaliases = set(query.expanded)
        club_q = bool(_CLUB_Q.search(query.text))
        out: list[tuple[str, int, float]] = []
        for m in _NAME.finditer(text):
            words = m.group().rstrip(".'’").split()
            while words and (words[0] in _NOT_NAMES or _DEMONYM.match(words[0])):
                words = words[1:]
            if not words or all(_DEMONYM.match(w) for w in words):
                continue
            span = " ".join(words)
            if span.endswith(("'s", "’s")):
                span = span[:-2]
            start = m.start() + m.group().find(words[0])
            low = span.lower()
            if any(t in qtokens for t in tokens(span)) or low in qaliases:
                continue  # the question's own names (and their nicknames) are not the answer
            if "’" in span or "'" in span.rstrip("'’"):
                if re.search(r"['’](ll|re|ve|d|m|t)\b", span):
                    continue
            if kind == "who" and _COMPETITION.search(span):
                continue
            spec = 2.0 + (0.8 if len(words) > 1 else 0.0)
            if club_q and self._is_club(low):
                spec += 3.0
            out.append((span, start, spec))
        return out

    def _spans(self, kind: str, text: str, query: Query) -> list[tuple[str, int, float]]:
        """(span, offset in text, specificity) of the asked-for type."""
        qlow = query.text.lower()
        if kind in ("who", "which") or (kind == "where" and not re.search(r"\b(finish|place|position|table|rank)", qlow)):
            return self._name_spans(kind, text, query)
        patterns = _SPANS.get(kind, [])
        if kind == "how_many" and _AGE_Q.search(qlow):
            patterns = [p for p in patterns if "year" in p[0]]
        elif kind == "how_many" and _MONEY_Q.search(qlow):
            patterns = patterns[:2]
        out: list[tuple[str, int, float]] = []
        taken: list[tuple[int, int]] = []
        for pat, spec in patterns:
            for m in re.finditer(pat, text, flags=re.IGNORECASE if kind != "when" else 0):
                if any(a < m.end() and m.start() < b for a, b in taken):
                    continue
                span = m.group().strip()
                if kind == "how_many" and re.fullmatch(r"(?:19|20)\d\d", span):
                    continue  # a year is not a count
                if kind != "where" and re.search(rf"(?<![\w-]){re.escape(span.lower())}(?![\w-])", qlow):
                    continue
                taken.append((m.start(), m.end()))
                out.append((span, m.start(), spec))
        return out

    def _best_span(self, cand: _Candidate, query: Query, terms: _Terms) -> None:
        kind = query.kind
        if kind not in ("when", "how_many", "score", "who", "which", "where"):
            return
        spans = self._spans(kind, cand.sentence.text, query)
        source = cand.sentence
        if not spans and cand.context is not None and kind in ("who", "which"):
            spans = self._spans(kind, cand.context.text, query)
            source = cand.context
        if not spans:
            return
        low = source.text.lower()
        hits = [m.start() for s in terms.all for m in re.finditer(rf"\b{re.escape(s)}", low)]
        best = None
        for span, off, spec in spans:
            score = spec
            after = low[off + len(span): off + len(span) + 30]
            if kind == "which" and _CLUB_Q.search(query.text) and self._is_club(span.lower()):
                cand.notes.append("club")
            if kind == "how_many" and terms.focus and re.match(rf"[\s-]*(?:[\w-]+\s+)?{re.escape(terms.focus)}", after):
                score += 3.0  # "236 games" for "how many games"
                cand.notes.append("focus")
            if hits:
                dist = min(abs(off - h) for h in hits)
                score += 1.0 / (1.0 + dist / 40.0)
            if best is None or score > best[2]:
                best = (span, off, score)
        assert best is not None
        cand.span, cand.span_start, cand.span_score = best[0], source.start + best[1], best[2]
        if source is cand.context:
            cand.notes.append("span from previous sentence")

    # -------------------------------------------------------------- answer

    def candidates(self, query: Query, passages: list[Passage]) -> list[_Candidate]:
        """Every sentence of the passages, scored; best first."""
        terms = _terms(query)
        needs_span = query.kind in ("when", "how_many", "score")
        past_q = bool(_PAST_Q.search(query.text))
        out: list[_Candidate] = []
        seen: set[tuple[str, int]] = set()
        for rank, p in enumerate(passages):
            art = p.article
            sents = split_sentences(p.chunk.text, offset=p.chunk.start)
            title_stems = _stem_set(art.title)
            for i, s in enumerate(sents):
                key = (art.id, s.start)
                if key in seen:
                    continue
                seen.add(key)
                context = set(title_stems)
                for c in sents[max(0, i - 3): i]:
                    context |= _stem_set(c.text)
                cov = _coverage(terms, _stem_set(s.text), context)
                prev = sents[i - 1] if i > 0 and _PRONOUN_START.match(s.text) else None
                cand = _Candidate(rank=rank, passage=p, sentence=s, context=prev, coverage=cov)
                self._best_span(cand, query, terms)
                cand.score = (
                    cov
                    + (0.1 + 0.04 * min(cand.span_score, 8.0) if cand.span else (-0.3 if needs_span else 0.0))
                    + (0.15 if "focus" in cand.notes else 0.0)
                    + (0.12 if "club" in cand.notes else 0.0)
                    - (0.05 if "span from previous sentence" in cand.notes else 0.0)
                    + 0.05 / (1 + rank)
                    - (0.1 if past_q and _SPECULATIVE.search(s.text) else 0.0)
                    + (0.02 if art.date else 0.0)
                )
                out.append(cand)
        out.sort(key=lambda c: -c.score)
        return out

    def answer(self, query: Query, passages: list[Passage]) -> Answer:
        t0 = time.perf_counter()
        cands = self.candidates(query, passages)
        best = cands[0] if cands else None
        needs_span = query.kind in ("when", "how_many", "score")
        if best is None or best.coverage < self.min_coverage or (needs_span and not best.span):
            return self._abstain(query, passages, t0)
        chosen = [best]
        # a second source: another article that supports the same kind of answer, to show agreement
        # or disagreement (the newer article leads, the older one is still shown)
        for c in cands[1:]:
            if len(chosen) >= self.max_citations:
                break
            if c.passage.article.id in {x.passage.article.id for x in chosen}:
                continue
            if c.score >= 0.85 * best.score and c.coverage >= self.min_coverage and (c.span or not needs_span):
                chosen.append(c)
        if len(chosen) > 1 and chosen[1].span and chosen[0].span and chosen[1].span != chosen[0].span:
            d0, d1 = chosen[0].passage.article.date, chosen[1].passage.article.date
            if d0 and d1 and d1 > d0 and chosen[1].span.lower() not in chosen[0].span.lower():
                chosen.reverse()
        citations: list[Citation] = []
        parts: list[str] = []
        for n, c in enumerate(chosen, start=1):
            art: Article = c.passage.article
            start, end = c.sentence.start, c.sentence.end
            if "span from previous sentence" in c.notes and c.context is not None:
                start = c.context.start
            citations.append(make_citation(n, art, start, end, support=c.coverage))
        lead = chosen[0]
        short = lead.span
        if short:
            same = [x.n for x, c in zip(citations, chosen) if c.span and c.span.lower() in short.lower() or (c.span and short.lower() in c.span.lower())]
            marks = "".join(f"[{n}]" for n in (same or [1]))
            parts.append(f"{short} {marks}.")
        for cit, c in zip(citations, chosen):
            quote = " ".join(cit.quote.split())
            dated = f" ({cit.date})" if len(chosen) > 1 and cit.date else ""
            parts.append(f"{'' if not short and cit.n == 1 else ''}{quote}{dated} [{cit.n}]")
        text = "\n".join(parts) if short else " ".join(parts)
        ms = (time.perf_counter() - t0) * 1000
        return Answer(
            question=query.text, text=text, citations=citations, passages=passages, abstained=False,
            mode=self.mode, short_answer=short, timings=Timings(answer_ms=ms),
        )

    def _abstain(self, query: Query, passages: list[Passage], t0: float) -> Answer:
        what = query.text.rstrip("?. ")
        what = what[0].lower() + what[1:] if what else "that"
        text = ABSTAIN_TEXT.format(what=f'"{what}"' if what else "that")
        return Answer(
            question=query.text, text=text, citations=[], passages=passages, abstained=True,
            mode=self.mode, timings=Timings(answer_ms=(time.perf_counter() - t0) * 1000),
        )
