"""The extractive answerer: cited answers in milliseconds, with no language model.

Four stages, each in its own module: the question is read for what it wants
(``rag/question.py``), every sentence of the retrieved passages becomes a candidate with its
features (``rag/features.py``) and its typed spans (``rag/spans.py``), and logistic models fitted
on the train split of the question bank (``rag/ranker.py``, ``rag/data/ranker.json``) rank the
sentences, pick the short answer among the lead sentence's spans, and say how likely the
answer is to be right. This module puts the answer together: the short answer first, the
quoted sentence with its ``[n]``, a second article's sentence when it completes the first (two
hops) or agrees with it, and, where dated sources disagree, the newer one first.

When the model is not confident enough (below the threshold chosen on the dev split), the
answer says so and still shows the closest evidence, cited: "The articles don't say directly;
the closest is ...". ``Answer.abstained`` is then true and ``Answer.confidence`` says how unsure.
A wrong answer with a citation is worse than an honest "not sure".
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Protocol

from .citations import make_citation
from .features import SECOND_HOP, SENTENCE_FEATURES, Candidate, candidates, is_yes
from .models import Answer, Citation, Passage, Query, Timings
from .question import NAMED, RARITY_FLOOR, TYPED, Frame, frame
from .ranker import Ranker, default_ranker
from .spans import Span, span_features, term_hits

ABSTAIN_TEXT = "The indexed articles don't say {what}."
UNSURE_TEXT = "The indexed articles don't say directly; the closest is:"
HOP_GAIN = 0.1  # chosen on the dev split (docs/EVALUATION.md)
ANSWER_FEATURES = ("logit", "margin", "span", "typed", "no_span", "second_hop", "coverage", "name_coverage",
                   "word_coverage", "predicate", "numbers_missing")


def _logit(p: float) -> float:
    p = min(max(p, 1e-6), 1 - 1e-6)
    return math.log(p / (1 - p))


class Answerer(Protocol):
    """One interface for the extractive and the LLM answerer."""

    mode: str

    def answer(self, query: Query, passages: list[Passage]) -> Answer: ...


@dataclass
class Ranked:
    """The ranked candidates of one question: the frame, the candidates best first, and for
    each of the leading ones its best span and that span's probability."""

    frame: Frame
    candidates: list[Candidate]
    spans: dict[int, tuple[Span, float]]  # id(candidate) -> (best span, its probability)


class ExtractiveAnswerer:
    """Sentence ranking + span choice + calibrated abstention; see the module docstring.

    Args:
        ranker: the fitted models (default: ``rag/data/ranker.json``).
        threshold: answer only when P(right) is at least this (default: the ranker's own,
            chosen on the dev split).
        max_citations: sources quoted at most.
        span_pool: how many of the best sentences have their spans ranked.
        hop_gain: the least share of the question a second article's sentence must add to be
            cited beside the lead (two hops); chosen on the dev split.
    """

    mode = "extractive"

    def __init__(self, *, ranker: Ranker | None = None, threshold: float | None = None,
                 max_citations: int = 2, span_pool: int = 5, hop_gain: float = HOP_GAIN,
                 rarity_floor: float = RARITY_FLOOR) -> None:
        self.ranker = ranker or default_ranker()
        self.threshold = self.ranker.threshold if threshold is None else threshold
        self.max_citations = max_citations
        self.span_pool = span_pool
        self.hop_gain = hop_gain
        self.rarity_floor = rarity_floor

    # -------------------------------------------------------------- ranking

    def rank(self, query: Query, passages: list[Passage]) -> Ranked:
        """Every candidate sentence scored by the sentence model, best first; the leading ones'
        spans scored by the span model."""
        fr = frame(query, self.rarity_floor)
        cands = candidates(fr, query.text, passages)
        for c in cands:
            c.score = self.ranker.sentence.probability(c.features)
        cands.sort(key=lambda c: -c.score)
        best_spans: dict[int, tuple[Span, float]] = {}
        texts = [c.sentence.text.lower() for c in cands]
        for c in cands[: self.span_pool] + [c.partner for c in cands[:1] if c.partner is not None]:
            if c.spans and id(c) not in best_spans:
                best_spans[id(c)] = self._best_span(fr, c, texts)
        lead = cands[0] if cands else None
        if lead is not None and lead.partner is not None and id(lead) not in best_spans \
                and id(lead.partner) in best_spans and lead.features[SECOND_HOP] >= self.hop_gain:
            # two hops: the lead matches the description, its partner gives the answer; lead with it
            partner = lead.partner
            partner.partner, lead.partner = lead, None
            partner.features = list(partner.features)
            partner.features[SECOND_HOP] = lead.features[SECOND_HOP]
            partner.score = max(partner.score, lead.score)
            cands.remove(partner)
            cands.insert(0, partner)
        return Ranked(fr, cands, best_spans)

    def _best_span(self, fr: Frame, c: Candidate, texts: list[str]) -> tuple[Span, float]:
        """The candidate's most probable span, and its probability."""
        src = c.context if c.spans[0].context and c.context is not None else c.sentence
        hits = term_hits(fr, src.text, src.start)
        scored = []
        for sp in c.spans:
            repeated = sum(sp.text.lower() in t for t in texts) / len(texts)
            feats = span_features(sp, fr, c.passage.article.text, hits, repeated) + [c.score]
            scored.append((self.ranker.span.probability(feats), sp))
        p, sp = max(scored, key=lambda t: t[0])
        return sp, p

    def answer_features(self, ranked: Ranked) -> list[float]:
        """What the answer model weighs (``ANSWER_FEATURES``) for the lead candidate: how sure the
        sentence model is (as a logit), its margin over the best sentence that does not give the
        same short answer, the span's probability, and how much of the question the lead covers."""
        lead = ranked.candidates[0]
        span = ranked.spans.get(id(lead))
        lead_text = span[0].text.lower() if span else None
        other = next((c.score for c in ranked.candidates[1:]
                      if not (lead_text and lead_text in c.sentence.text.lower())), 1e-6)
        typed = ranked.frame.want in TYPED or ranked.frame.want in NAMED
        f = dict(zip(SENTENCE_FEATURES, lead.features))
        return [_logit(lead.score), _logit(lead.score) - _logit(other), span[1] if span else 0.0, float(typed),
                float(typed and span is None), f["second_hop"], f["coverage"], f["name_coverage"],
                f["word_coverage"], f["predicate"], f["numbers_missing"]]

    def confidence(self, ranked: Ranked) -> float:
        """P(the lead answer is right), from the answer model."""
        return self.ranker.answer.probability(self.answer_features(ranked))

    # -------------------------------------------------------------- answer

    def answer(self, query: Query, passages: list[Passage]) -> Answer:
        t0 = time.perf_counter()
        ranked = self.rank(query, passages)
        if not ranked.candidates:
            return self._abstain(query, passages, t0)
        conf = self.confidence(ranked)
        chosen = self._cited(ranked)
        if conf < self.threshold:
            return self._unsure(query, passages, chosen[0], conf, t0)
        return self._render(query, passages, ranked, chosen, conf, t0)

    def _cited(self, ranked: Ranked) -> list[Candidate]:
        """The sentences the answer quotes, lead first: the lead, the sentence of another
        article that completes it (two hops), else up to ``max_citations`` of other articles
        that give the same short answer or, dated, a different one (the newer leads)."""
        cands = ranked.candidates
        lead = cands[0]
        if lead.partner is not None and lead.features[SECOND_HOP] >= self.hop_gain:
            return [lead, lead.partner]
        chosen = [lead]
        span = ranked.spans.get(id(lead))
        for c in cands[1: self.span_pool]:
            if len(chosen) >= self.max_citations:
                break
            if c.passage.article.id in {x.passage.article.id for x in chosen}:
                continue
            other = ranked.spans.get(id(c))
            if span is None or other is None or c.score < self.threshold:
                continue
            same = other[0].text.lower() in span[0].text.lower() or span[0].text.lower() in other[0].text.lower()
            dated = c.passage.article.date and lead.passage.article.date
            if same or (dated and other[0].type == span[0].type and c.score >= 0.9 * lead.score):
                chosen.append(c)  # a second source agrees, or a dated one nearly as likely disagrees
        if len(chosen) > 1 and span is not None and id(chosen[1]) in ranked.spans:
            second = ranked.spans[id(chosen[1])][0].text
            if span[0].text.lower() in second.lower() and len(second) > len(span[0].text):
                return [chosen[1], chosen[0]] + chosen[2:]  # sources agree: the more precise one leads
        if len(chosen) > 1 and span is not None and id(chosen[1]) in ranked.spans:
            second = ranked.spans[id(chosen[1])][0].text.lower()
            d0, d1 = chosen[0].passage.article.date, chosen[1].passage.article.date
            if d0 and d1 and d1 > d0 and second not in span[0].text.lower():
                chosen.reverse()  # where sources disagree, the newer one leads
        return chosen

    @staticmethod
    def _citation(n: int, c: Candidate, span: Span | None) -> Citation:
        start = c.context.start if span is not None and span.context and c.context is not None else c.sentence.start
        return make_citation(n, c.passage.article, start, c.sentence.end, support=c.coverage)

    def _render(self, query: Query, passages: list[Passage], ranked: Ranked, chosen: list[Candidate],
                conf: float, t0: float) -> Answer:
        lead = chosen[0]
        lead_span = ranked.spans.get(id(lead))
        citations = [self._citation(n, c, (ranked.spans.get(id(c)) or (None,))[0])
                     for n, c in enumerate(chosen, start=1)]
        short: str | None = None
        if ranked.frame.want == "yes_no":
            short = "Yes" if is_yes(lead, ranked.frame, query.text) else "No"
        elif lead_span is not None:
            short = lead_span[0].text
        parts: list[str] = []
        if short:
            same = [cit.n for cit, c in zip(citations, chosen)
                    if c is lead or (id(c) in ranked.spans and (short.lower() in ranked.spans[id(c)][0].text.lower()
                                                                or ranked.spans[id(c)][0].text.lower() in short.lower()))]
            parts.append(f"{short} {''.join(f'[{n}]' for n in same)}.")
        for cit in citations:
            dated = f" ({cit.date})" if len(chosen) > 1 and cit.date else ""
            parts.append(f"{' '.join(cit.quote.split())}{dated} [{cit.n}]")
        text = "\n".join(parts) if short else " ".join(parts)
        return Answer(question=query.text, text=text, citations=citations, passages=passages, abstained=False,
                      mode=self.mode, short_answer=short, confidence=round(conf, 3),
                      timings=Timings(answer_ms=(time.perf_counter() - t0) * 1000))

    def _unsure(self, query: Query, passages: list[Passage], closest: Candidate, conf: float, t0: float) -> Answer:
        cit = make_citation(1, closest.passage.article, closest.sentence.start, closest.sentence.end,
                            support=closest.coverage)
        text = f"{UNSURE_TEXT} {' '.join(cit.quote.split())} [1]"
        return Answer(question=query.text, text=text, citations=[cit], passages=passages, abstained=True,
                      mode=self.mode, confidence=round(conf, 3),
                      timings=Timings(answer_ms=(time.perf_counter() - t0) * 1000))

    def _abstain(self, query: Query, passages: list[Passage], t0: float) -> Answer:
        what = query.text.rstrip("?. ")
        what = what[0].lower() + what[1:] if what else "that"
        text = ABSTAIN_TEXT.format(what=f'"{what}"' if what else "that")
        return Answer(question=query.text, text=text, citations=[], passages=passages, abstained=True,
                      mode=self.mode, confidence=0.0, timings=Timings(answer_ms=(time.perf_counter() - t0) * 1000))
