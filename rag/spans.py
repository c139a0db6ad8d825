"""Answer spans: the short answers a sentence offers, typed, with what tells a right one apart.

A date question is answered by a date, a "who" question by a person's name, "which club" by a
club: patterns find the dates, fees, ages, durations, scores, numbers and table positions, and a
name finder with the football vocabulary (grounds, countries, clubs, nationality words, and the
word before a name: "referee *Alan Wiley*", "in *Rabat*", "against *Wimbledon*") types the names.
Which span of a sentence is the answer is decided by the ranker (``rag/ranker.py``) from the
features ``span_features`` computes: how well its type fits, whether it sits beside the
question's head noun ("Blackburn *midfielder* Aaron Mokoena") or on the answer's side of its verb
("replaces *Steve Wigley*"), how close it is to the question's words.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .question import NAMED, TYPED, Frame, stems_of
from .text import STOPWORDS, stem, tokens
from .vocab import entity_kind, vocabulary

_MONTH = r"(?:January|February|March|April|May|June|July|August|September|October|November|December|Jan|Feb|Mar|Apr|Jun|Jul|Aug|Sep|Sept|Oct|Nov|Dec)"
_WEEKDAY = r"(?:Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday)"
_NUMWORD = r"(?:one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|thirteen|fourteen|fifteen|sixteen|seventeen|eighteen|nineteen|twenty|thirty|forty|fifty|sixty|seventy|eighty|ninety|hundred|thousand|million|half|dozen)"
_ORDINAL = r"(?:first|second|third|fourth|fifth|sixth|seventh|eighth|ninth|tenth|eleventh|twelfth|thirteenth|fourteenth|fifteenth|sixteenth|seventeenth|eighteenth|nineteenth|twentieth|bottom|top|\d+(?:st|nd|rd|th))"
_MONEY = r"(?:[£€$]\s?\d[\d,.]*\s?(?:m|bn|k|million|billion)?\b|\b\d[\d,.]*\s?(?:m|bn|million|billion)?\s?(?:euros?|dollars?|pounds?)\b)"

# (pattern, specificity) per wanted type; the most specific match near the question's words wins.
_SPANS: dict[str, list[tuple[str, float]]] = {
    "date": [
        (r"\b\d{4}-\d{2}-\d{2}\b", 5),
        (rf"\b\d{{1,2}}(?:st|nd|rd|th)?\s+{_MONTH}\.?,?\s+\d{{4}}\b", 5),
        (rf"\b{_MONTH}\.?\s+\d{{1,2}}(?:st|nd|rd|th)?,?\s+\d{{4}}\b", 5),
        (rf"\b{_MONTH}\s+(?:of\s+)?(?:19|20)\d{{2}}\b", 4.5),
        (rf"\b\d{{1,2}}(?:st|nd|rd|th)?\s+{_MONTH}\b", 4),
        (rf"\b{_MONTH}\s+\d{{1,2}}(?:st|nd|rd|th)?\b", 4),
        (r"\b(?:19|20)\d{2}(?:[-/]\d{2,4})?\b", 3),
        (rf"\b{_MONTH}\b(?:\s+last\s+year|\s+next\s+year)?", 2.5),
        (rf"\b(?:on|last|next|this)\s+{_WEEKDAY}\b|\b{_WEEKDAY}\b", 1.5),
        (r"\b(?:last|next|this)\s+(?:year|season|summer|month|week|weekend|winter)\b", 1.0),
    ],
    "money": [
        (_MONEY, 5),
        (r"\b\d[\d,.]*\s?(?:m|bn|million|billion)\b", 4),
    ],
    "number": [
        (r"\b\d[\d,.]*\s?(?:%|per cent|percent)", 4.5),
        (_MONEY, 4),
        (r"(?<![\d-])\b\d[\d,]*(?:\.\d+)?\b(?!-\d)", 3),
        (rf"\b{_NUMWORD}(?:[- ]{_NUMWORD})*\b", 2),
    ],
    "age": [
        (r"\b\d+(?:-year-old|\s+years?\s+old)\b|\baged\s+\d+\b", 5),
        (r"(?<=, )\d{2}(?=,)", 3),
    ],
    "duration": [
        (rf"\b(?:\d+|{_NUMWORD}|a|an)[- ](?:years?|months?|weeks?|days?|games?|matches?|minutes?|seasons?)(?:[- ](?:long|old))?\b", 5),
        (rf"\buntil\s+(?:the\s+end\s+of\s+)?(?:{_MONTH}\s+)?(?:19|20)\d\d\b", 3),
    ],
    "score": [(r"\b\d{1,2}\s?-\s?\d{1,2}\b(?!-)", 5)],
    "position": [(rf"\b{_ORDINAL}(?:-placed| place| position| in the table| spot)?\b", 4)],
}
_NAME = re.compile(
    r"\b(?:[A-Z][\w'’.-]*[a-z][\w'’.-]*|[A-Z]{2,}|[A-Z](?=\s[A-Z][a-z])|[A-Z]\d{1,3}\b)"  # ... "rule *K3*"
    r"(?:\s+(?:(?:de|da|del|der|van|von|di|dos|la|le|of)\s+)?(?:[A-Z][\w'’.-]*|[A-Z]{2,}))*"
)
_NOT_NAMES = frozenset(
    """The A An He She They It His Her Their Its This That These Those However But And Or If When
    While After Before Since Although Though Also Meanwhile Yet So Then There Here We I You Our
    My Your In On At For From With By Of To As Now Still Even Last Next Both Neither Either Not
    I’ll I'll I’m I'm It’s It's That’s That's Asked Speaking Despite Following Under Without
    No Yes Alongside According Hence Monday Tuesday Wednesday Thursday Friday Saturday Sunday
    January February March April May June July August September October November December
    Mr Mrs Ms Sir Dr Boss Coach Manager Striker Midfielder Defender Goalkeeper Captain Former
    Ex Referee Chairman Subs Booked Goals Att Ref Who What Where Which Why How Just Only Every
    Some Many Most All One Two Three Four Five Six Seven Eight Nine Ten Teenager Veteran""".split()
)

def _demonym(word: str) -> bool:
    """"Dutch", "Swede", "Brazilians": nationality words are modifiers, not names."""
    dem = vocabulary().demonyms
    w = word.rstrip("'’s") if word.endswith(("'s", "’s")) else word
    return w in dem or (w.endswith("s") and w[:-1] in dem)




@dataclass
class Span:
    """A candidate short answer: its text, offset in the article, type and pattern specificity."""

    text: str
    start: int  # offset in the article
    spec: float  # how specific the pattern (or how good the type fit) is
    type: str
    context: bool = False  # found in the sentence before the candidate sentence ("He" is its subject)


def entity_type(span: str, before: str) -> str:
    """person / club / country / place / competition / name, from the data and the words around."""
    kind = entity_kind(span)
    if kind not in ("name", "calendar"):
        return kind
    voc = vocabulary()
    prev = tokens(before[-30:])[-2:]
    if prev and (prev[-1] in voc.person_nouns or " ".join(prev) in voc.person_nouns):
        return "person"
    possessive = re.search(r"['’]s?\s*$", before) is not None  # "the home side's *Craig Bryson*": his side
    if prev and not possessive and (prev[-1] in voc.opponent_words or prev[-1] in voc.club_nouns) \
            and prev[-1] not in voc.country_nouns:
        return "side?"  # "winner against *Wimbledon*", "leaders *Yeading*": most likely a side
    if prev and prev[-1] in ("in", "at", "near", "outside", "from") and len(span.split()) == 1:
        return "place?"
    return "name"


def _name_spans(fr: Frame, text: str, offset: int) -> list[Span]:
    out: list[Span] = []
    for m in _NAME.finditer(text):
        words = m.group().rstrip(".'’").split()
        while words and (words[0] in _NOT_NAMES or _demonym(words[0])):
            words = words[1:]
        if words and m.start() == 0 and len(words) > 1 and re.search(r"(?:ed|ing|ly)$", words[0]):
            words = words[1:]  # "Injured Chelsea winger...": an opening participle is not a name
        while words and words[-1] in ("of", "de", "la", "le", "van", "von"):
            words = words[:-1]
        if not words or all(_demonym(w) for w in words):
            continue
        span = " ".join(words)
        if span.endswith(("'s", "’s")):
            span = span[:-2]
        start = m.start() + m.group().find(words[0])
        low = span.lower()
        stoks = tokens(span)
        if not stoks or any(t in fr.own_names for t in stoks) or low in fr.own_names:
            continue  # the question's own names (and their nicknames) are not the answer
        if any(t.text == st for st in stoks for t in fr.terms):
            continue
        if re.search(r"['’](ll|re|ve|d|m|t)\b", span):
            continue
        if start == 0 and len(words) == 1 and f" {words[0]} " not in f" {text[1:]} ":
            if words[0].lower() in STOPWORDS or len(words[0]) < 3:
                continue
        if fr.want == "person" and re.fullmatch(r"[A-Z]{2,}", span):
            continue  # "MRI", "BBC": abbreviations are not people
        etype = entity_type(span, text[:start])
        spec = type_score(fr.want, etype, len(words))
        if spec is None or (fr.head in vocabulary().building_nouns and etype in ("club", "side?", "country", "person")):
            continue  # "Which *stadium*": never a club, a country or a person
        out.append(Span(span, offset + start, spec, etype))
    return out


def type_score(want: str, etype: str, nwords: int) -> float | None:
    multi = 0.8 if nwords > 1 else 0.0
    if want == "person":
        if etype in ("club", "country", "place", "competition"):
            return None
        return 2.0 + multi + (1.5 if etype == "person" else 0.0) - (0.8 if etype in ("place?", "side?") else 0.0)
    if want == "club":
        return {"club": 5.0, "side?": 4.5, "country": 2.5, "name": 1.5 + multi / 2, "place?": 1.5}.get(etype)
    if want == "country":
        return {"country": 5.0, "club": 1.0, "place?": 1.0, "side?": 1.5}.get(etype)
    if want == "place":
        return {"place": 5.0, "place?": 4.0, "country": 3.5, "club": 0.5, "side?": 0.8, "name": 1.0}.get(etype)
    if want == "competition":
        return {"competition": 5.0, "name": 1.0}.get(etype)
    if want == "org":
        return {"name": 2.5 + multi, "club": 0.5}.get(etype)
    if want == "name":
        return {"person": 3.0, "name": 2.0 + multi, "club": 2.5, "side?": 2.5, "country": 2.0, "place": 1.5,
                "place?": 1.5, "competition": 1.5}.get(etype)
    return None


def _typed_spans(fr: Frame, text: str, offset: int, qlow: str) -> list[Span]:
    patterns = _SPANS.get(fr.want, [])
    out: list[Span] = []
    taken: list[tuple[int, int]] = []
    for pat, spec in patterns:
        for m in re.finditer(pat, text, flags=0 if fr.want == "date" else re.IGNORECASE):
            if any(a < m.end() and m.start() < b for a, b in taken):
                continue
            span = m.group().strip()
            if not span:
                continue
            if fr.want in ("number", "money") and re.fullmatch(r"(?:19|20)\d\d", span):
                continue  # a year is not a count
            if fr.want == "number" and re.match(r"\d{1,2}\s?-\s?\d", text[m.start():m.start() + 6]):
                continue  # one side of a score
            if fr.want == "number" and re.match(r", \d\d,", text[max(0, m.start() - 2):m.end() + 1]):
                continue  # "The Dutch striker, 28, ...": an age
            if fr.head == "attendance" and not re.fullmatch(r"\d{1,3}(?:,\d{3})+|\d{4,6}", span):
                continue  # crowds are counted in thousands
            if fr.want != "position" and re.search(rf"(?<![\w-]){re.escape(span.lower())}(?![\w-])", qlow):
                continue
            taken.append((m.start(), m.end()))
            out.append(Span(span, offset + m.start(), spec, fr.want))
    return out


def spans(fr: Frame, text: str, offset: int, qlow: str) -> list[Span]:
    """Spans of the wanted type in ``text`` (offsets into the article)."""
    if fr.want == "quote":
        return [Span(m.group(1), offset + m.start(1), 4.0, "quote")
                for m in re.finditer(r"[\"“‘']([^\"”’']{2,40})[\"”’']", text)
                if m.group(1).lower() not in qlow]
    if fr.want in TYPED:
        return _typed_spans(fr, text, offset, qlow)
    if fr.want in NAMED:
        return _name_spans(fr, text, offset)
    return []



SPAN_FEATURES = ("spec", "by_head", "role_named", "off_pitch", "verb_side", "focus_after", "near_terms",
                 "context", "words", "repeated")


def term_hits(fr: Frame, text: str, offset: int) -> list[int]:
    """Article offsets where the question's words (or their synonyms) occur in ``text``."""
    low = text.lower()
    hits: list[int] = []
    for t in fr.terms:
        for st in t.stems | t.syn:
            hits.extend(m.start() + offset for m in re.finditer(rf"\b{re.escape(st)}", low))
    return hits


def span_features(sp: Span, fr: Frame, art_text: str, hits: list[int], repeated: float) -> list[float]:
    """What tells the right span of a sentence from the others (``SPAN_FEATURES`` order).

    ``hits``: offsets of the question's words in the sentence (``term_hits``); ``repeated``: the
    share of the candidate sentences that also name this span (an answer the articles agree on).
    """
    voc = vocabulary()
    after = art_text[sp.start + len(sp.text): sp.start + len(sp.text) + 30].lower()
    before = art_text[max(0, sp.start - 40): sp.start]
    near_before = [stem(t) for t in tokens(before)[-3:]]
    near_after = [stem(t) for t in tokens(after)[:2]]
    head = stems_of(fr.head) if fr.head else set()
    head |= {x for h in head for x in voc.synonyms.get(h, ())}  # "keeper" for "goalkeeper"
    by_head = bool(head and (head & set(near_before) or head & set(near_after)))
    role_named = bool(near_before and near_before[-1] in fr.roles)  # "referee *X*" when the question names its referee
    off_pitch = bool(near_before and near_before[-1] in voc.off_pitch and fr.verb & voc.on_pitch)
    side = 0.0
    if fr.verb and fr.verb_side == "after" and fr.verb & set(near_before):
        side = 1.0  # "replaces *Steve Wigley*" for "did X replace whom"
    if fr.verb and fr.verb_side == "before" and fr.verb & {stem(t) for t in tokens(after)[:4]}:
        side = 1.0  # "*David Prutton* pushed" for "who pushed"
    focus_after = bool(fr.want in ("number", "duration") and fr.focus
                       and re.match(rf"[\s-]*(?:[\w-]+\s+)?{re.escape(fr.focus)}", after))  # "236 *games*"
    near = 1.0 / (1.0 + min(abs(sp.start - h) for h in hits) / 40.0) if hits else 0.0
    return [min(sp.spec, 8.0) / 8.0, float(by_head), float(role_named), float(off_pitch), side, float(focus_after),
            near, float(sp.context), min(len(sp.text.split()), 4) / 4.0, repeated]
