"""Question analysis: what a question wants and which of its words a supporting sentence needs.

The extractive answerer ranks sentences and spans with a model fitted on the train split
(``rag/ranker.py``), but the model can only weigh signals it is given: here the question is read
for the type of answer it wants (a date, a fee, an age, a person, a club, a ground...: from the
question word and the head noun of its phrase, "Which Blackburn *midfielder*'s challenge"), its
words with their weights (names and numbers weigh most, words every passage has least), its
main verb and on which side of it the answer sits ("did X *replace* whom"), and the part that
describes someone instead of naming him ("the man put in temporary charge of Spurs").
Football vocabulary comes from ``rag/data/football.json`` and ``rag/data/aliases.json``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .models import Query
from .retrieve import alias_links
from .text import IRREGULAR_PAST, STOPWORDS, stem, tokens
from .vocab import Vocabulary, vocabulary

PAST_Q = re.compile(r"\b(did|was|were|had)\b", re.I)

# "how many *games*", past modifiers: "how many top-flight *goals*", "how many Premiership *goals*"
_FOCUS = re.compile(r"\b(?i:how) (?:many|much)\s+(?:(?:[A-Z][\w'’-]*|[a-z]+-[a-z-]+)\s+)*([a-z]+)|\b(?i:what) (?:fee|number|percentage)\b")
_MONEY_Q = re.compile(r"\bhow much\b.*\b(pay|paid|cost|fee|worth|sum|price|spend|spent|sell|sold|buy|bought|bid|offer|owe|owed|fine|fined|earn|wage|salary|compensation|get|receive|raise)|\bwhat (?:fee|price)\b|\bhow much (?:money|cash)\b|\bhow much was\b.*\bfined\b")
_AGE_Q = re.compile(r"\bhow old\b|\bwhat age\b|\bat what age\b|\bage of\b|\baged\b")
_DURATION_Q = re.compile(r"\bhow long\b|\bfor how (?:many|long)\b.*\b(?:years?|months?|weeks?|days?)\b")
_POSITION_Q = re.compile(r"\b(finish|finished|place|placed|position|sit|sitting|table|rank|ranked|standing|lie|lying)\b")
_SIDE_VERB = re.compile(r"\bwhom? (?:did|do|does|will|would|could|had|have|has|are|were|is|was)\b.*\b(beat|play|face|meet|draw|host|knock|thrash|defeat|lose to|lost to|sign from)\b")


# "Who won the 2005 Champions League final?": sides win finals, cups and matches.
_SIDE_WON = re.compile(r"^\s*who (?:won|wins|will win|lifted|clinched)\b.*\b(?:final|cup|league|title|trophy|championship|tournament|derby|match|game|tie|shield)\b")

# answer types found by pattern, and answer types that are names of things
TYPED = ("date", "money", "number", "age", "duration", "score", "position", "quote")
NAMED = ("person", "club", "country", "place", "competition", "org", "name")


# ---------------------------------------------------------------- question frame


@dataclass(frozen=True)
class Term:
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
    terms: tuple[Term, ...]
    links: tuple[tuple[frozenset[str], tuple[frozenset[str], ...]], ...]  # (said stems, other names' stems)
    own_names: frozenset[str]  # lower-case strings a span must not repeat (question names + aliases)
    focus: str | None
    head: str | None
    verb: frozenset[str] = frozenset()  # stems of the question's main verb and its synonyms
    verb_side: str | None = None  # where the answer sits: "after" the verb ("did X replace *Y*") or "before"
    roles: frozenset[str] = frozenset()  # stems of person nouns in the question other than the head


def stems_of(text: str) -> set[str]:
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
    if kind == "yes_no":
        return "yes_no", None  # answered by the sentence that says it, led by "Yes" or "No"
    if kind == "why":
        return "reason", None
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
    head_stems = stems_of(head) if head else set()
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
    terms: list[Term] = []
    for t in query.terms:
        capital = any(m.group()[0].isupper() for m in re.finditer(rf"(?<![\w-]){re.escape(t)}(?![\w-])", raw, re.IGNORECASE))
        st = frozenset(stems_of(t))
        s = stem(t)
        syn = frozenset(x for y in st for x in voc.synonyms.get(y, ()))
        rare = query.rarity.get(t)
        scale = 1.0 if rare is None else rarity_floor + (1 - rarity_floor) * 2 * rare
        if (capital and t != first) or any(ch.isdigit() for ch in t):
            terms.append(Term(t, st, syn, 1.5 * scale, True))
        elif s in head_stems:
            terms.append(Term(t, st, syn, 0.5 * scale, False))  # "Which *midfielder*": the answer names him
        else:
            terms.append(Term(t, st, syn, (2.0 if s == focus else 1.0) * scale, False))
    links = []
    own = {t.lower() for t in query.terms}
    for link in alias_links(raw):
        said = frozenset(stems_of(link.said) - {"the"})
        means = tuple(frozenset(stems_of(m) - {"the"}) for m in link.means if stems_of(m) - {"the"})
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


