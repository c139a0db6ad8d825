"""The extractive answerer: cited answers in milliseconds, with no language model.

It reads the question for what kind of thing is wanted (a date, a fee, an age, a person, a club,
a ground...) and which words must be matched, then scores every sentence of the retrieved
passages on its own: how much of the question it covers (names and numbers weigh most; a
club's nickname counts as the club, a synonym as the word; names may come from the previous
sentences or the headline, so "He" can stand for the player the paragraph is about), and
whether it holds a span of the wanted type that is not itself in the question. It leads with
that short span, quotes the sentence, and abstains when the evidence is weak: a wrong answer
with a citation is worse than an honest "the articles don't say".

Questions that hinge on a description ("the striker who scored his first goal at Charlton")
are answered in two hops: the sentence that best matches the description names someone the
question does not (a bridge), and sentences about that bridge are then scored as if they had
matched the description. Both sentences are cited.

Football vocabulary (which nouns name a person or a side, grounds, countries, synonyms, and the
words that tie a name to a role or a match: "against", "president", "scored") lives in
``rag/data/football.json``; club names and nicknames in ``rag/data/aliases.json``.
"""

from __future__ import annotations

import json
import math
import re
import time
from importlib import resources
from dataclasses import dataclass, field, replace
from functools import lru_cache
from typing import Protocol

from .chunk import Sentence, split_sentences
from .citations import make_citation
from .models import Answer, Article, Citation, Passage, Query, Timings
from .retrieve import alias_links
from .text import IRREGULAR_PAST, STOPWORDS, name_phrases, stem, tokens
from .vocab import Vocabulary, entity_kind, vocabulary

ABSTAIN_TEXT = "The indexed articles don't say {what}."


class Answerer(Protocol):
    """One interface for the extractive and the LLM answerer."""

    mode: str

    def answer(self, query: Query, passages: list[Passage]) -> Answer: ...


# ---------------------------------------------------------------- patterns

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
_SPECULATIVE = re.compile(r"\b(?:favou?rite to|could|would|might|may|linked|reportedly|rumou?rs?|eyeing|potential|expected to|set to|poised|tipped|considered|fac(?:es|ing) (?:a|an)\b)\b|^\W*If\b")
_FUTURE = re.compile(r"\b(?:will|shall|going to)\b")
_PAST_Q = re.compile(r"\b(did|was|were|had)\b", re.I)
_PRONOUN_START = re.compile(r"^\s*[\"“]?\s*(?:He|She|They|It|His|Her|Their|The (?:\d+-year-old|[a-z]+(?:-[a-z]+)? (?:coach|manager|striker|midfielder|defender|winger|player|tactician|boss|club|side|keeper|goalkeeper|forward|international)|[a-z]+))\b")
# "how many *games*", past modifiers: "how many top-flight *goals*", "how many Premiership *goals*"
_FOCUS = re.compile(r"\b(?i:how) (?:many|much)\s+(?:(?:[A-Z][\w'’-]*|[a-z]+-[a-z-]+)\s+)*([a-z]+)|\b(?i:what) (?:fee|number|percentage)\b")
_MONEY_Q = re.compile(r"\bhow much\b.*\b(pay|paid|cost|fee|worth|sum|price|spend|spent|sell|sold|buy|bought|bid|offer|owe|owed|fine|fined|earn|wage|salary|compensation|get|receive|raise)|\bwhat (?:fee|price)\b|\bhow much (?:money|cash)\b|\bhow much was\b.*\bfined\b")
_AGE_Q = re.compile(r"\bhow old\b|\bwhat age\b|\bat what age\b|\bage of\b|\baged\b")
_DURATION_Q = re.compile(r"\bhow long\b|\bfor how (?:many|long)\b.*\b(?:years?|months?|weeks?|days?)\b")
_POSITION_Q = re.compile(r"\b(finish|finished|place|placed|position|sit|sitting|table|rank|ranked|standing|lie|lying)\b")
_SIDE_VERB = re.compile(r"\bwhom? (?:did|do|does|will|would|could|had|have|has|are|were|is|was)\b.*\b(beat|play|face|meet|draw|host|knock|thrash|defeat|lose to|lost to|sign from)\b")

# "Who won the 2005 Champions League final?": sides win finals, cups and matches.
_SIDE_WON = re.compile(r"^\s*who (?:won|wins|will win|lifted|clinched)\b.*\b(?:final|cup|league|title|trophy|championship|tournament|derby|match|game|tie|shield)\b")


def _demonym(word: str) -> bool:
    """"Dutch", "Swede", "Brazilians": nationality words are modifiers, not names."""
    dem = vocabulary().demonyms
    w = word.rstrip("'’s") if word.endswith(("'s", "’s")) else word
    return w in dem or (w.endswith("s") and w[:-1] in dem)


_TYPED = ("date", "money", "number", "age", "duration", "score", "position", "quote")
_NAMED = ("person", "club", "country", "place", "competition", "org", "name")


# ---------------------------------------------------------------- question frame


@dataclass(frozen=True)
class _Term:
    """A question word: the stems that match it and its weight."""

    text: str
    stems: frozenset[str]
    syn: frozenset[str]
    weight: float
    name: bool


@dataclass(frozen=True)
class Frame:
    """What the question asks for and what a supporting sentence must contain."""

    want: str
    terms: tuple[_Term, ...]
    links: tuple[tuple[frozenset[str], tuple[frozenset[str], ...]], ...]  # (said stems, other names' stems)
    own_names: frozenset[str]  # lower-case strings a span must not repeat (question names + aliases)
    focus: str | None
    head: str | None
    verb: frozenset[str] = frozenset()  # stems of the question's main verb and its synonyms
    verb_side: str | None = None  # where the answer sits: "after" the verb ("did X replace *Y*") or "before"
    roles: frozenset[str] = frozenset()  # stems of person nouns in the question other than the head


def _stems_of(text: str) -> set[str]:
    out = set()
    for t in tokens(text):
        out.add(stem(t))
        if "-" in t:
            parts = [p for p in t.split("-") if p]
            out.update(stem(p) for p in parts)
            out.add(stem("".join(parts)))
    return out


def _head_noun(raw: str, voc: Vocabulary) -> tuple[str | None, str | None]:
    """The noun the question asks about and the type it names.

    "Which Blackburn *midfielder*'s challenge broke...", "Which Premier League *rule* would...",
    "Who was the Livingston *manager*...": the last word of the phrase after the question word,
    or the possessor when there is one.
    """
    m = re.search(r"\b(?:which|what|whose)\s+(.*)$|^\s*who\s+(?:is|was|were|are)\s+(?:the\s+)?(.*)$", raw, re.I)
    if not m:
        return None, None
    rest = m.group(1) if m.group(1) is not None else m.group(2)
    words: list[str] = []
    for raw_word in rest.split()[:6]:
        w = raw_word.strip("?,.;:").lower()
        possessive = w.endswith(("'s", "’s", "s'"))
        w = re.sub(r"['’]s?$", "", w)
        if not w or w in _AUX or w in STOPWORDS or (words and (w.endswith("ed") or w in IRREGULAR_PAST)):
            break
        words.append(w)
        if possessive:
            break
    if not words:
        return None, None
    lists = (("person", voc.person_nouns), ("country", voc.country_nouns), ("club", voc.club_nouns),
             ("place", voc.place_nouns), ("competition", voc.competition_nouns), ("org", voc.org_nouns))
    for cand in (" ".join(words[-2:]), words[-1]):
        for kind, nouns in lists:
            if cand in nouns:
                return cand, kind
    return words[-1], None


_AUX = frozenset("is was were are did does do has had have will would could can should".split())


def wanted(query: Query, voc: Vocabulary | None = None) -> tuple[str, str | None]:
    """(the type of answer wanted, the question's head noun if any)."""
    voc = voc or vocabulary()
    q = query.text.strip().lower()
    kind = query.kind
    if kind == "score" or re.search(r"\bby what (?:score|margin)\b|\bwhat was the (?:final )?score\b", q):
        return "score", None
    if re.search(r"\b(?:called|nicknamed|known as|dubbed|referred to as)\b", q) and kind in ("what", "which", "other"):
        return "quote", None
    if re.search(r"\bwhat (?:was|is) the (?:attendance|crowd)\b|\bhow many (?:fans|people|spectators)\b", q):
        return "number", "attendance"
    if kind == "when":
        return "date", None
    if kind == "how_many" or re.search(r"^\s*(how (big|large|long)|for how)\b", q):
        if _AGE_Q.search(q):
            return "age", None
        if _MONEY_Q.search(q):
            return "money", None
        if _DURATION_Q.search(q):
            return "duration", None
        return "number", None
    head, htype = _head_noun(query.text, voc)
    if kind == "where" or re.search(r"^\s*(?:at|in) (?:which|what) (?:hotel|city|town|stadium|ground|venue|country)\b", q):
        if _POSITION_Q.search(q) and not re.search(r"\btake place\b", q):
            return "position", head
        if htype == "country":
            return "country", head
        return "place", head
    if kind == "who" or q.startswith("whose") or re.search(r"^\s*(?:against|from|to|with|for|by) whom\b", q):
        if (_SIDE_VERB.search(q) or _SIDE_WON.search(q)) and htype != "person":  # "Who was the Livingston *manager* when Hearts beat them"
            return "club", head
        return "person", head
    if htype is not None:
        return htype, head
    if kind == "which":
        return "name", head
    return "text", head


RARITY_FLOOR = 0.4  # weight of a word found in every passage of the index, relative to a rare one


def frame(query: Query, rarity_floor: float = RARITY_FLOOR) -> Frame:
    """The question's frame; ``rarity_floor`` is the weight of a word every passage has (1 = no
    rarity weighting)."""
    voc = vocabulary()
    want, head = wanted(query, voc)
    raw = query.text
    first = (tokens(raw) or [""])[0]
    fm = _FOCUS.search(raw)
    head_stems = _stems_of(head) if head else set()
    verb, side = _main_verb(raw)
    if fm and fm.group(1) and fm.group(1) not in STOPWORDS and fm.group(1) not in _AUX:
        focus: str | None = stem(fm.group(1))  # "how many *games*"
    elif head == "attendance":
        focus = "attendance"
    elif want == "quote":
        cm = re.search(r"\b(called|nicknamed|known|dubbed|referred)\b", raw.lower())
        focus = stem(cm.group(1)) if cm else verb
    else:
        focus = verb  # the question's main verb: "Who did Alonso *succeed*", "Who *scored*"
    verb_stems = frozenset({verb} | set(voc.synonyms.get(verb, ()))) if verb else frozenset()
    terms: list[_Term] = []
    for t in query.terms:
        capital = any(m.group()[0].isupper() for m in re.finditer(rf"(?<![\w-]){re.escape(t)}(?![\w-])", raw, re.IGNORECASE))
        st = frozenset(_stems_of(t))
        s = stem(t)
        syn = frozenset(x for y in st for x in voc.synonyms.get(y, ()))
        rare = query.rarity.get(t)
        scale = 1.0 if rare is None else rarity_floor + (1 - rarity_floor) * 2 * rare
        if (capital and t != first) or any(ch.isdigit() for ch in t):
            terms.append(_Term(t, st, syn, 1.5 * scale, True))
        elif s in head_stems:
            terms.append(_Term(t, st, syn, 0.5 * scale, False))  # "Which *midfielder*": the answer names him
        else:
            terms.append(_Term(t, st, syn, (2.0 if s == focus else 1.0) * scale, False))
    links = []
    own = {t.lower() for t in query.terms}
    for link in alias_links(raw):
        said = frozenset(_stems_of(link.said) - {"the"})
        means = tuple(frozenset(_stems_of(m) - {"the"}) for m in link.means if _stems_of(m) - {"the"})
        links.append((said, means))
        own.add(link.said.removeprefix("the "))
        own.update(m.removeprefix("the ") for m in link.means)
    roles = frozenset(stem(t) for t in tokens(raw) if t in voc.person_nouns and stem(t) not in head_stems)
    return Frame(want=want, terms=tuple(terms), links=tuple(links), own_names=frozenset(own),
                 focus=focus, head=head, verb=verb_stems, verb_side=side, roles=roles)


_ADVERBS = r"(?:last|first|originally|previously|initially|finally|eventually|also|ever|just|still|once|again|already|never|recently|actually|really|effectively)"
_OBJECT_Q = re.compile(r"\b(?:did|does|do|will|would|could|can|has|have|had)\s+(?:the\s+)?(?:(?:[A-Z][\w'’-]*|van|von|de|da|der)\s+)+"
                       rf"(?:{_ADVERBS}\s+)?([a-z][a-z-]+)")
_SUBJECT_Q = re.compile(r"^\s*(?:who|which|whose)\b((?:\s+[\w'’-]+){0,5})", re.I)


_AUX_PARTS = frozenset("been being got".split())


def _main_verb(raw: str) -> tuple[str | None, str | None]:
    """The question's main verb and which side of it the answer sits on.

    "Which manager did Harry Redknapp *replace*" wants the object, after the verb; "Who *scored*
    twice" and "Which Blackburn midfielder's challenge *broke*" want the subject, before it.
    """
    m = _OBJECT_Q.search(raw)
    if m and re.search(r"['’]s?\s+(?:\w+\s+)?$", raw[:m.start(1)]):
        # "did Graham Stuart's late winner *keep* the Toffees up": after a possessive comes a noun
        # phrase, and the verb is its last word before the object (a stopword or a name)
        words = re.match(r"((?:[a-z][a-z-]*\s+)*?)([a-z][a-z-]*)\s+(?=[A-Z]|(?:the|a|an|his|her|their|its|past|into|off|over"
                         r"|to|for|from|with|in|on|at|against|by|up|out|away|through)\b)", raw[m.start(1):])
        if words and words.group(2) not in STOPWORDS:
            return stem(words.group(2)), "after"
    if m and m.group(1) not in STOPWORDS:
        verb = m.group(1)
        if verb in _AUX_PARTS or verb in vocabulary().club_nouns or verb in vocabulary().person_nouns:
            # "did the Old Trafford *club* get", "had Birmingham *been* prepared to pay": the verb follows
            nxt = re.match(r"\s+(?:to\s+)?([a-z][a-z-]+)", raw[m.end():])
            if nxt is None or nxt.group(1) in STOPWORDS:
                return None, None
            verb = nxt.group(1)
        return stem(verb), "after"
    m = _SUBJECT_Q.search(raw)
    if m:
        for w in m.group(1).split():
            if w[:1].islower() and w not in STOPWORDS and (w.endswith("ed") or w in IRREGULAR_PAST):
                return stem(w), "before"
    return None, None


# ---------------------------------------------------------------- candidates


@dataclass
class Span:
    text: str
    start: int  # offset in the article
    score: float
    type: str
    by_head: bool = False  # beside the question's head noun: "referee *Graham Poll*" for "Which referee"


@dataclass
class _Candidate:
    rank: int
    passage: Passage
    sentence: Sentence
    context: Sentence | None  # the previous sentence, when the span may sit there
    coverage: float
    name_coverage: float
    word_coverage: float
    span: Span | None = None
    score: float = 0.0
    bridge: _Candidate | None = None
    notes: list[str] = field(default_factory=list)


def _coverage(fr: Frame, own: set[str], ctx: set[str], extra: set[str] | None = None) -> tuple[float, float, float]:
    """(all, names, words) shares of the question's weight that the sentence covers.

    Names count fully in the sentence and mostly in its context (the previous sentences and the
    headline: "He" is the article's subject); a club's other names count as the club; other
    words must be in the sentence itself (a synonym counts slightly less). ``extra`` holds the
    stems a bridge sentence already covered.
    """
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
        if extra is not None and t.stems & extra:
            g = w
        elif t.stems & own:
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


def _reversed_roles(fr: Frame, text: str) -> bool:
    """For "did X *replace* whom?": a sentence where one of the question's names follows the
    verb ("to replace Harry Redknapp") says the reverse of what was asked."""
    if fr.verb_side != "after" or not fr.verb:
        return False
    toks = tokens(text)
    names = {s for t in fr.terms if t.name for s in t.stems}
    for i, t in enumerate(toks):
        if stem(t) in fr.verb and any(stem(x) in names for x in toks[i + 1:i + 3]):
            return True
    return False


_OTHER_EVENT = "no article has a number the question gives"


def _numbers_missing(numbers: list[_Term], art: Article, covered: set[str] | None) -> bool:
    """Whether the article lacks one of the question's numbers ("the *2005* final", "their *5-1*
    win", "on *18* October") anywhere in its text, title or date. Such an article is most likely
    about another season or match, so its sentences rank lower; when no retrieved article has
    the number, the question is not answered at all, however well the rest matches. (One article
    may still answer for a number given by another: "the match whose last minutes were played
    on 5 January".) ``covered``: stems a bridge sentence already matched."""
    if not numbers:
        return False
    have = _text_stems(art.title) | _text_stems(art.text) | (_text_stems(art.date) if art.date else frozenset())
    return any(not (t.stems & have) and not (covered and t.stems & covered) for t in numbers)


@lru_cache(maxsize=256)
def _text_stems(text: str) -> frozenset[str]:
    """``_stems_of`` for whole articles, kept: the second hop scores the same passages again."""
    return frozenset(_stems_of(text))


_ROLE = r"(?:man|woman|player|striker|forward|midfielder|defender|winger|goalkeeper|keeper|manager|coach|boss|side|club|team|referee|Dane|Swede|Scot|Frenchman|Spaniard|Dutchman|German|Italian|Brazilian)"
_DESCRIPTIONS = (
    re.compile(r"\b(?:the|a|an)\s+(?:[\w'’-]+\s+){0,3}?(?:who|that|whose)\s+(.+?)\??$"),  # "the side that knocked out Feyenoord"
    re.compile(rf"\bthe\s+(?:[a-z-]+\s+){{0,2}}{_ROLE}\s+((?:[A-Z]\w+\s+)?[a-z]+(?:ed|t|n)\b.+?)\??$"),  # "the man put in charge", "the striker Chelsea sacked"
    re.compile(rf"\b((?:[A-Z][\w'’-]*\s+)*[A-Z][\w'’-]*(?:\s+\d{{4}})?['’]s\s+(?:[a-z-]+\s+){{0,2}}(?:scorer|captain|{_ROLE}))\b"),  # "Euro 2004's leading scorer"
)


def description(question: str) -> str | None:
    """The part of a question that describes someone instead of naming him, if there is one."""
    for pat in _DESCRIPTIONS:
        m = pat.search(question)
        if m:
            return m.group(1)
    return None


def _term_covered(t: _Term, words: set[str]) -> bool:
    return bool(t.stems & words or t.syn & words)


@dataclass(frozen=True)
class Evidence:
    """What the lead answer rests on, as numbers the abstention model weighs.

    ``predicate`` is the share of the question's predicate (its focus word, else its plain words
    other than the head noun: "born", "attendance", "refereed") that the cited sentences hold,
    themselves or through a synonym; near-miss questions name the right people but not this.
    ``rare`` is the share of the question's rarer half of words found in the lead passage;
    ``margin`` how far the lead sentence scores above the best one with a different answer that
    the answer does not also show (disagreeing dated sources are shown together, not a doubt).
    """

    coverage: float
    name_coverage: float
    word_coverage: float
    score: float
    span: float
    predicate: float
    rare: float
    margin: float

    FEATURES = ("coverage", "name_coverage", "word_coverage", "score", "span", "predicate", "rare", "margin")

    def vector(self) -> list[float]:
        return [float(getattr(self, f)) for f in self.FEATURES]




def _predicate_implied(fr: Frame, lead: _Candidate, words: set[str]) -> bool:
    """Whether the answer itself says what the question's verb asks: a fee answers "how much did
    they *pay*", a league place "where did they *sit*", a name beside the question's role noun
    ("referee *Graham Poll*") "which referee *handled* the game", and any word of a match ("beat
    Inter Milan", "the final against Angola") "whom will they *meet*/*play*". ``words``: the
    stems of the cited sentences."""
    sp = lead.span
    if sp is None:
        return False
    voc = vocabulary()
    if fr.want == "money" and (fr.verb & voc.money_verbs or {s for t in fr.terms for s in t.stems} & voc.money_verbs):
        return True
    if fr.want == "position":
        return True
    if fr.verb & voc.meet_verbs and words & voc.match_words:
        return True
    return sp.by_head and fr.head is not None and fr.head in vocabulary().person_nouns


def _evidence(fr: Frame, chosen: list[_Candidate], cands: list[_Candidate]) -> Evidence:
    lead = chosen[0]
    words: set[str] = set()
    for c in chosen + ([lead.bridge] if lead.bridge is not None else []):  # every sentence the answer cites
        words |= _stems_of(c.sentence.text)
        if c.context is not None and "span from previous sentence" in c.notes:
            words |= _stems_of(c.context.text)
    plain = [t for t in fr.terms if not t.name]
    focus = [t for t in plain if fr.focus and fr.focus in t.stems]
    pred = focus or [t for t in plain if t.weight >= 0.6 * max((x.weight for x in plain), default=0)] or plain
    if _predicate_implied(fr, lead, words):
        predicate = 1.0
    else:
        predicate = (sum(t.weight for t in pred if _term_covered(t, words)) / sum(t.weight for t in pred)) if pred else 1.0
    passage = _stems_of(lead.passage.chunk.text) | _stems_of(lead.passage.article.title)
    by_weight = sorted(fr.terms, key=lambda t: -t.weight)
    top = by_weight[: max(1, (len(by_weight) + 1) // 2)]
    rare = sum(1 for t in top if _term_covered(t, passage)) / len(top) if top else 1.0
    lead_span = lead.span.text.lower() if lead.span else None
    shown = {(c.passage.article.id, c.sentence.start) for c in chosen}
    other = next((c.score for c in cands if (c.passage.article.id, c.sentence.start) not in shown
                  if not (c.span and lead_span and c.span.text.lower() == lead_span)), None)
    margin = lead.score - other if other is not None else 1.0
    return Evidence(coverage=lead.coverage, name_coverage=lead.name_coverage, word_coverage=lead.word_coverage,
                    score=lead.score, span=min(lead.span.score, 8.0) / 8.0 if lead.span else 0.0,
                    predicate=predicate, rare=rare, margin=margin)


@dataclass(frozen=True)
class AbstentionModel:
    """A logistic model over ``Evidence``: answer when P(answerable) >= ``threshold``.

    Weights live in ``rag/data/abstain.json`` (fitted by ``eval/fit_abstention.py``)."""

    weights: tuple[float, ...]
    bias: float
    threshold: float
    mean: tuple[float, ...]
    scale: tuple[float, ...]

    def probability(self, ev: Evidence) -> float:
        z = self.bias + sum(w * (x - m) / s for w, x, m, s in zip(self.weights, ev.vector(), self.mean, self.scale))
        return 1.0 / (1.0 + math.exp(-max(-30.0, min(30.0, z))))

    @classmethod
    def from_dict(cls, raw: dict) -> AbstentionModel:
        if list(raw["features"]) != list(Evidence.FEATURES):
            raise ValueError(f"abstention model features {raw['features']} != {list(Evidence.FEATURES)}")
        return cls(tuple(raw["weights"]), float(raw["bias"]), float(raw["threshold"]),
                   tuple(raw["mean"]), tuple(raw["scale"]))


def default_abstention() -> AbstentionModel | None:
    """The shipped model, or None when ``rag/data/abstain.json`` is absent."""
    res = resources.files("rag").joinpath("data/abstain.json")
    if not res.is_file():
        return None
    return AbstentionModel.from_dict(json.loads(res.read_text("utf-8")))


@dataclass(frozen=True)
class ScoreWeights:
    """How a sentence's score is made up (see ``ExtractiveAnswerer.candidates``)."""

    coverage: float = 1.0  # share of the question the sentence covers
    span: float = 0.06  # per point of the answer span's score ...
    span_cap: float = 8.0  # ... up to this many points
    passage: float = 0.0  # share of the question the whole passage covers
    rank: float = 0.05  # retrieval rank: rank / (1 + passage rank)
    reversed: float = 0.15  # the question's names on the wrong side of its verb
    bridge: float = 0.2  # cost of answering through a bridge sentence
    other_event: float = 0.15  # the article lacks a number the question gives (a year, a score)


class ExtractiveAnswerer:
    """Sentence selection + typed span extraction; see the module docstring.

    Args:
        min_coverage: the least share of the question a sentence must cover to be an answer.
        min_score: the least sentence score (coverage plus span evidence) to be an answer.
            Both are calibrated on the dev set (docs/EVALUATION.md).
        max_citations: sources quoted at most.
        weights: how a sentence's score is made up.
        bridge_coverage: the least coverage of a description sentence to follow a bridge name.
        strong_span: a description sentence whose span scores this much answers by itself.
        rarity_floor: weight of a question word that every passage has, relative to a rare one
            (1 = all words weigh the same).
        descriptions: for a question that describes someone ("the man put in temporary charge
            of Spurs"), how many of the sentences that best match the description alone are
            followed as bridges, besides the best match of the whole question.
        abstention: the model that decides, after the rules above, whether the evidence is
            strong enough to answer; "default" loads ``rag/data/abstain.json``; None: rules only.
    """

    mode = "extractive"

    def __init__(self, *, min_coverage: float = 0.3, min_score: float = 0.6, max_citations: int = 2,
                 weights: ScoreWeights | None = None, bridge_coverage: float = 0.45,
                 strong_span: float = 5.0, rarity_floor: float = RARITY_FLOOR, descriptions: int = 3,
                 abstention: AbstentionModel | None | str = "default") -> None:
        self.descriptions = descriptions
        self.abstention = default_abstention() if abstention == "default" else abstention  # type: ignore[assignment]
        self.min_coverage = min_coverage
        self.rarity_floor = rarity_floor
        self.bridge_coverage = bridge_coverage
        self.strong_span = strong_span
        self.min_score = min_score
        self.max_citations = max_citations
        self.weights = weights or ScoreWeights()

    # -------------------------------------------------------------- spans

    def entity_type(self, span: str, before: str) -> str:
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

    def _name_spans(self, fr: Frame, text: str, offset: int) -> list[Span]:
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
            etype = self.entity_type(span, text[:start])
            spec = self._type_score(fr.want, etype, len(words))
            if spec is None or (fr.head in vocabulary().building_nouns and etype in ("club", "side?", "country", "person")):
                continue  # "Which *stadium*": never a club, a country or a person
            out.append(Span(span, offset + start, spec, etype))
        return out

    @staticmethod
    def _type_score(want: str, etype: str, nwords: int) -> float | None:
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

    def _typed_spans(self, fr: Frame, text: str, offset: int, qlow: str) -> list[Span]:
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

    def spans(self, fr: Frame, text: str, offset: int, qlow: str) -> list[Span]:
        """Spans of the wanted type in ``text`` (offsets into the article)."""
        if fr.want == "quote":
            return [Span(m.group(1), offset + m.start(1), 4.0, "quote")
                    for m in re.finditer(r"[\"“‘']([^\"”’']{2,40})[\"”’']", text)
                    if m.group(1).lower() not in qlow]
        if fr.want in _TYPED:
            return self._typed_spans(fr, text, offset, qlow)
        if fr.want in _NAMED:
            return self._name_spans(fr, text, offset)
        return []

    def _best_span(self, cand: _Candidate, fr: Frame, qlow: str, art: Article) -> None:
        if fr.want not in _TYPED and fr.want not in _NAMED:
            return
        s = cand.sentence
        found = self.spans(fr, s.text, s.start, qlow)
        source = s
        if not found and cand.context is not None and fr.want in _NAMED:
            found = self.spans(fr, cand.context.text, cand.context.start, qlow)
            source = cand.context
        if not found:
            return
        low = source.text.lower()
        hits = []
        for t in fr.terms:
            for st in t.stems | t.syn:
                hits.extend(m.start() + source.start for m in re.finditer(rf"\b{re.escape(st)}", low))
        head = _stems_of(fr.head) if fr.head else set()
        head |= {x for h in head for x in vocabulary().synonyms.get(h, ())}  # "keeper" for "goalkeeper"
        best: Span | None = None
        for sp in found:
            score = sp.score
            by_head = False
            after = art.text[sp.start + len(sp.text): sp.start + len(sp.text) + 30].lower()
            before = art.text[max(0, sp.start - 40): sp.start]
            near_before = [stem(t) for t in tokens(before)[-3:]]
            near_after = [stem(t) for t in tokens(after)[:2]]
            if head and (head & set(near_before) or head & set(near_after)):
                score += 2.0  # "Blackburn midfielder *Aaron Mokoena*", "the *Mottram Hall* hotel"
                by_head = True
            elif near_before and near_before[-1] in fr.roles:
                score -= 1.5  # "referee *Paul Norman*" when the question names its referee
            elif near_before and near_before[-1] in vocabulary().off_pitch and fr.verb & vocabulary().on_pitch:
                score -= 2.0  # "president *Jose Luis Astiazaran*" did not score the equaliser
            if fr.verb and fr.verb_side == "after" and fr.verb & set(near_before):
                score += 1.5  # "replaces *Steve Wigley*"
            if fr.verb and fr.verb_side == "before" and fr.verb & {stem(t) for t in tokens(after)[:4]}:
                score += 1.5  # "*David Prutton* pushed"
            if fr.want in ("number", "duration") and fr.focus and re.match(rf"[\s-]*(?:[\w-]+\s+)?{re.escape(fr.focus)}", after):
                score += 3.0  # "236 games" for "how many games"
            if hits:
                dist = min(abs(sp.start - h) for h in hits)
                score += 1.5 / (1.0 + dist / 40.0)
            if best is None or score > best.score:
                best = Span(sp.text, sp.start, score, sp.type, by_head)
        cand.span = best
        if source is not s:
            cand.notes.append("span from previous sentence")

    # -------------------------------------------------------------- sentences

    def _sentences(self, art: Article, cache: dict[str, list[Sentence]]) -> list[Sentence]:
        if art.id not in cache:
            cache[art.id] = split_sentences(art.text)
        return cache[art.id]

    def candidates(self, query: Query, passages: list[Passage], fr: Frame | None = None,
                   extra: tuple[set[str], set[str]] | None = None) -> list[_Candidate]:
        """Every sentence of the passages, scored; best first.

        ``extra`` = (bridge stems, stems covered by the bridge sentence) for the second hop.
        """
        fr = fr or frame(query, self.rarity_floor)
        qlow = query.text.lower()
        past_q = bool(_PAST_Q.search(query.text))
        out: list[_Candidate] = []
        seen: set[tuple[str, int]] = set()
        cache: dict[str, list[Sentence]] = {}
        numbers = [t for t in fr.terms if any(ch.isdigit() for ch in t.text)]
        unmatched: dict[str, bool] = {}  # article id -> it lacks one of the question's numbers
        for p in passages:
            if p.article.id not in unmatched:
                unmatched[p.article.id] = _numbers_missing(numbers, p.article, extra[1] if extra is not None else None)
        nowhere = bool(unmatched) and all(unmatched.values())  # no article has the question's number
        for rank, p in enumerate(passages):
            art = p.article
            sents = self._sentences(art, cache)
            title = _stems_of(art.title)
            pcov = _coverage(fr, _stems_of(p.chunk.text) | title, set())[0]
            for i, s in enumerate(sents):
                if s.end <= p.chunk.start or s.start >= p.chunk.end:
                    continue
                key = (art.id, s.start)
                if key in seen:
                    continue
                seen.add(key)
                own = _stems_of(s.text)
                ctx = set(title)
                for c in sents[max(0, i - 3): i]:
                    ctx |= _stems_of(c.text)
                covered = None
                if extra is not None:
                    bridge, covered_by_bridge = extra
                    if not (bridge <= own or bridge <= ctx):
                        continue
                    covered = covered_by_bridge
                cov, ncov, wcov = _coverage(fr, own, ctx, covered)
                prev = sents[i - 1] if i > 0 and _PRONOUN_START.match(s.text) else None
                cand = _Candidate(rank=rank, passage=p, sentence=s, context=prev, coverage=cov,
                                  name_coverage=ncov, word_coverage=wcov)
                if nowhere:
                    cand.notes.append(_OTHER_EVENT)
                self._best_span(cand, fr, qlow, art)
                typed = fr.want in _TYPED or fr.want in _NAMED
                sp = cand.span
                w = self.weights
                cand.score = (
                    w.coverage * cov
                    + ((0.1 + w.span * min(sp.score, w.span_cap)) if sp else (-0.3 if typed else 0.0))
                    - (0.05 if "span from previous sentence" in cand.notes else 0.0)
                    + w.rank / (1 + rank)
                    - (0.2 if past_q and _SPECULATIVE.search(s.text) else 0.0)
                    - (0.1 if past_q and _FUTURE.search(s.text) else 0.0)
                    - (w.reversed if _reversed_roles(fr, s.text) else 0.0)
                    + w.passage * pcov
                    + (0.02 if art.date else 0.0)
                    - (w.other_event if unmatched[art.id] else 0.0)
                )
                out.append(cand)
        out.sort(key=lambda c: -c.score)
        return out

    # -------------------------------------------------------------- answer

    def _acceptable(self, c: _Candidate, fr: Frame) -> bool:
        """The abstention rule: enough of the question covered, and a span where one is needed."""
        if c.coverage < self.min_coverage or c.score < self.min_score or _OTHER_EVENT in c.notes:
            return False
        if c.name_coverage == 0.0 and any(t.name for t in fr.terms):
            return False  # about none of the people, sides or places the question names
        return c.span is not None or fr.want not in _TYPED

    def _second_hop(self, query: Query, passages: list[Passage], fr: Frame,
                    cands: list[_Candidate]) -> _Candidate | None:
        """The answer through a bridge: the sentence that best matches the question's
        description names someone the question does not; a sentence about that name with a span
        of the wanted type answers, counting the description as matched. None if there is none."""
        if fr.want not in _TYPED and fr.want not in _NAMED:
            return None
        desc = max(cands, key=lambda c: c.coverage, default=None)
        if desc is None or desc.coverage < self.bridge_coverage:
            return None
        if desc.span is not None and desc.span.score >= self.strong_span:
            return None  # the best-matching sentence answers by itself
        best = self._hop_from(query, passages, fr, desc)
        clause = description(query.text)
        if clause is None:
            return best
        # the question describes someone ("the man put in temporary charge of Spurs"): the
        # sentences that best match the description alone are bridges too
        dfr = replace(fr, terms=tuple(t for t in fr.terms if t.stems & _stems_of(clause)))
        if not dfr.terms:
            return best
        ranked = sorted(cands, key=lambda c: -_coverage(dfr, _stems_of(c.sentence.text), _stems_of(c.passage.article.title))[0])
        for d in ranked[: self.descriptions]:
            if d is desc:
                continue
            hop = self._hop_from(query, passages, fr, d)
            if hop is not None and (best is None or hop.score > best.score):
                best = hop
        return best

    def _hop_from(self, query: Query, passages: list[Passage], fr: Frame, desc: _Candidate) -> _Candidate | None:
        """The best answer through the names one description sentence adds."""
        qtoks = set(tokens(query.text)) | set(fr.own_names)
        own = _stems_of(desc.sentence.text)
        ctx = own | _stems_of(desc.passage.article.title)
        covered = {st for t in fr.terms if t.stems & ctx for st in t.stems}
        rest = [t for t in fr.terms if not t.stems & ctx]
        if not rest:
            return None
        best: _Candidate | None = None
        for name in name_phrases(desc.sentence.text, desc.passage.chunk.text)[:4]:
            if any(t in qtoks for t in tokens(name)) or entity_kind(name) not in ("name", "club"):
                continue
            key = {stem(tokens(name)[-1])}  # articles use the surname after the first mention
            for c in self.candidates(query, passages, fr, extra=(key, covered)):
                if c.sentence is desc.sentence or c.sentence.start == desc.sentence.start or c.span is None:
                    continue
                if set(tokens(c.span.text)) & set(tokens(name)):
                    continue
                words = _stems_of(c.sentence.text)
                if not any(t.stems & words or t.syn & words for t in rest):
                    continue  # the second sentence must add what the first one lacks
                c.bridge = desc
                c.score -= self.weights.bridge
                if best is None or c.score > best.score:
                    best = c
                break
        return best

    def _finer_date(self, best: _Candidate, cands: list[_Candidate], fr: Frame, ratio: float = 0.7) -> _Candidate | None:
        """A sentence of the same article that dates the lead's event more precisely ("in March"
        → "on 29 March", "2008" → "May 2008"), scoring at least ``ratio`` of the lead and
        acceptable as an answer by itself: it leads, and the lead sentence is still cited beside
        it. The same article and a date that contains the lead's are what tie the two together,
        so the score only has to be in the same range."""
        if best.span is None or best.span.type != "date":
            return None
        words = tokens(best.span.text)
        for c in cands[1:]:
            if c.score < ratio * best.score:
                break
            if c.span is None or c.span.type != "date" or c.passage.article.id != best.passage.article.id:
                continue
            if not self._acceptable(c, fr):
                continue
            finer = tokens(c.span.text)
            if len(finer) > len(words) and any(finer[i:i + len(words)] == words for i in range(len(finer))):
                return c
        return None

    def select(self, query: Query, passages: list[Passage], fr: Frame | None = None) -> list[_Candidate]:
        """The sentences an answer would cite, lead first (before the abstention rule)."""
        return self._select(query, passages, fr or frame(query, self.rarity_floor))[0]

    def _select(self, query: Query, passages: list[Passage], fr: Frame) -> tuple[list[_Candidate], list[_Candidate]]:
        """(the sentences an answer would cite, every scored sentence)."""
        cands = self.candidates(query, passages, fr)
        if not cands:
            return [], []
        best = cands[0]
        hop = self._second_hop(query, passages, fr, cands)
        if hop is not None and self._acceptable(hop, fr) and (not self._acceptable(best, fr) or hop.score > best.score):
            assert hop.bridge is not None
            return [hop, hop.bridge], cands
        chosen = [best]
        finer = self._finer_date(best, cands, fr)
        if finer is not None:
            chosen = [finer, best]
        for c in cands[1:]:
            if len(chosen) >= self.max_citations:
                break
            if c.passage.article.id in {x.passage.article.id for x in chosen}:
                continue
            if not (self._acceptable(c, fr) and c.score >= 0.9 * best.score):
                continue
            same = c.span and best.span and (c.span.text.lower() in best.span.text.lower()
                                             or best.span.text.lower() in c.span.text.lower())
            dated = c.passage.article.date and best.passage.article.date
            if same or (dated and c.span and best.span and c.span.type == best.span.type):
                chosen.append(c)
        if len(chosen) > 1 and chosen[1].span and chosen[0].span and chosen[1].span.text != chosen[0].span.text:
            d0, d1 = chosen[0].passage.article.date, chosen[1].passage.article.date
            if d0 and d1 and d1 > d0 and chosen[1].span.text.lower() not in chosen[0].span.text.lower():
                chosen.reverse()  # where sources disagree, the newer one leads
        return chosen, cands

    def evidence(self, query: Query, passages: list[Passage], fr: Frame | None = None,
                 chosen: list[_Candidate] | None = None) -> Evidence | None:
        """The features the abstention model weighs for the lead answer (None: no candidate)."""
        fr = fr or frame(query, self.rarity_floor)
        picked, cands = self._select(query, passages, fr)
        chosen = picked if chosen is None else chosen
        if not chosen:
            return None
        return _evidence(fr, chosen, cands)

    def answer(self, query: Query, passages: list[Passage]) -> Answer:
        t0 = time.perf_counter()
        fr = frame(query, self.rarity_floor)
        chosen, cands = self._select(query, passages, fr)
        if not chosen or not self._acceptable(chosen[0], fr):
            return self._abstain(query, passages, t0)
        if self.abstention is not None:
            if self.abstention.probability(_evidence(fr, chosen, cands)) < self.abstention.threshold:
                return self._abstain(query, passages, t0)
        return self._render(query, passages, chosen, t0)

    def _render(self, query: Query, passages: list[Passage], chosen: list[_Candidate], t0: float) -> Answer:
        citations: list[Citation] = []
        for n, c in enumerate(chosen, start=1):
            art: Article = c.passage.article
            start, end = c.sentence.start, c.sentence.end
            if "span from previous sentence" in c.notes and c.context is not None:
                start = c.context.start
            citations.append(make_citation(n, art, start, end, support=c.coverage))
        lead = chosen[0]
        short = lead.span.text if lead.span else None
        parts: list[str] = []
        if short:
            same = [cit.n for cit, c in zip(citations, chosen)
                    if c.span and (c.span.text.lower() in short.lower() or short.lower() in c.span.text.lower())]
            parts.append(f"{short} {''.join(f'[{n}]' for n in (same or [1]))}.")
        for cit in citations:
            quote = " ".join(cit.quote.split())
            dated = f" ({cit.date})" if len(chosen) > 1 and cit.date else ""
            parts.append(f"{quote}{dated} [{cit.n}]")
        text = "\n".join(parts) if short else " ".join(parts)
        return Answer(
            question=query.text, text=text, citations=citations, passages=passages, abstained=False,
            mode=self.mode, short_answer=short, timings=Timings(answer_ms=(time.perf_counter() - t0) * 1000),
        )

    def _abstain(self, query: Query, passages: list[Passage], t0: float) -> Answer:
        what = query.text.rstrip("?. ")
        what = what[0].lower() + what[1:] if what else "that"
        text = ABSTAIN_TEXT.format(what=f'"{what}"' if what else "that")
        return Answer(
            question=query.text, text=text, citations=[], passages=passages, abstained=True,
            mode=self.mode, timings=Timings(answer_ms=(time.perf_counter() - t0) * 1000),
        )
