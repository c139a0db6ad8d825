"""Checking a generated answer against its sources, sentence by sentence.

The grammar guarantees that a marker names a source that was given; it cannot guarantee that the
source says what the sentence claims. So every answer sentence is split off with its markers,
each marker becomes a Citation whose quote is the sentence of that source (within the span the
model actually saw) that best supports the claim, with exact offsets, and the claim's support is
scored against its quotes. Sentences that cite nothing, cite a source that does not exist, or
are only weakly supported are listed in ``Answer.unsupported`` instead of being trusted. An
answer that says the sources don't hold the answer, and cites nothing, is an abstention.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from .chunk import split_sentences
from .chunk import Sentence
from .citations import SUPPORT_THRESHOLD, make_citation, support
from .models import Citation
from .prompt import Source

MARKER = re.compile(r"\[(\d{1,3})\]")
_LEADING_MARKERS = re.compile(r"^(?:\s*\[\d{1,3}\])+")
_ABSTAIN = re.compile(
    r"\b(?:the\s+)?(?:sources?|articles?|context|documents?|texts?|information)\b[^.?!]{0,40}?"
    r"\b(?:do(?:es)?\s*n[o']?t|did\s*n[o']?t|cannot|can'?t|never|fails? to)\s+"
    r"(?:say|state|mention|contain|include|answer|provide|specify|tell|give|cover|indicate)"
    r"|\bnot\s+(?:mentioned|stated|specified|given|covered|found|included)\s+in\s+the\s+(?:sources?|articles?|context)"
    r"|\bI\s+(?:do\s*n[o']?t|cannot|can'?t)\s+(?:know|find|tell|say|answer)"
    r"|\bno\s+(?:information|mention)\b",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Claim:
    """An answer sentence: its text without markers and the source numbers it cites."""

    text: str
    markers: tuple[int, ...]


@dataclass
class Grounding:
    """What the answer's sentences are backed by."""

    citations: list[Citation] = field(default_factory=list)
    unsupported: list[str] = field(default_factory=list)
    abstained: bool = False
    claims: list[Claim] = field(default_factory=list)


def is_abstention(text: str) -> bool:
    """Whether the text says that the sources do not hold the answer."""
    return bool(_ABSTAIN.search(text))


def split_claims(text: str) -> list[Claim]:
    """Answer sentences with their markers; markers that open a sentence belong to the previous one
    ("... in 2024. [1] He ..." cites [1] for the first sentence)."""
    claims: list[tuple[str, list[int]]] = []
    for s in split_sentences(text):
        body = s.text
        lead = _LEADING_MARKERS.match(body)
        if lead and claims:
            claims[-1][1].extend(int(n) for n in MARKER.findall(lead.group()))
            body = body[lead.end():]
        marks = [int(n) for n in MARKER.findall(body)]
        plain = " ".join(MARKER.sub(" ", body).split())
        plain = re.sub(r"\s+([.,;:!?])", r"\1", plain)
        if plain or marks:
            claims.append((plain, marks))
    return [Claim(t, tuple(dict.fromkeys(m))) for t, m in claims if t or m]


def _has_content(text: str) -> bool:
    return support(text, "") < 1.0  # a claim without content words is trivially "supported"


def best_quote(claim: str, source: Source, question: str = "") -> tuple[Sentence, float]:
    """The sentence of the source's span that best supports the claim, and its support.

    Ties (common for short answers such as "June 2024") go to the sentence that matches the
    question best, then to the earlier one, so "June 2024 [1]" quotes the sentence about the
    contract that was asked about rather than the first sentence that mentions 2024.
    """
    sents = split_sentences(source.text, offset=source.start) or [Sentence(source.start, source.end, source.text)]
    scored = [(support(claim, s.text), support(question, s.text) if question else 0.0, -i, s)
              for i, s in enumerate(sents)]
    sc, _, _, best = max(scored, key=lambda t: t[:3])
    return best, sc


def ground(text: str, sources: Sequence[Source], question: str = "") -> Grounding:
    """Citations with quotes and support flags for a generated answer.

    Args:
        text: The generated answer with ``[n]`` markers.
        sources: The prompt's sources; marker ``n`` refers to ``sources[n - 1]``.
        question: The question answered, to break ties between equally supporting quotes.

    Returns:
        A ``Grounding``: citations (one per distinct source sentence quoted, ordered by ``n``),
        the unsupported sentences, and whether the answer is an abstention.
    """
    by_n = {s.n: s for s in sources}
    claims = split_claims(text)
    cites: dict[tuple[int, int, int], Citation] = {}
    unsupported: list[str] = []
    any_marker = any(c.markers for c in claims)
    for claim in claims:
        if not claim.markers:
            if _has_content(claim.text) and not is_abstention(claim.text):
                unsupported.append(claim.text)
            continue
        quotes: list[str] = []
        missing = False
        for n in claim.markers:
            src = by_n.get(n)
            if src is None:
                missing = True
                continue
            sent, score = best_quote(claim.text, src, question)
            key = (n, sent.start, sent.end)
            old = cites.get(key)
            if old is None or old.support < score:
                cites[key] = make_citation(n, src.article, sent.start, sent.end, support=score)
            quotes.append(sent.text)
        if missing or not quotes or support(claim.text, " ".join(quotes)) < SUPPORT_THRESHOLD:
            unsupported.append(claim.text)
    abstained = not any_marker and is_abstention(text)
    if abstained:
        unsupported = []
    citations = sorted(cites.values(), key=lambda c: (c.n, c.start))
    return Grounding(citations=citations, unsupported=unsupported, abstained=abstained, claims=claims)
