"""Small lexical tools shared by retrieval, answering and citation checking.

A crude suffix stemmer is enough here: it only has to make "expires", "expiring" and "expire"
meet, and it must agree with itself everywhere it is used (query terms, sentence scoring and
citation support), which is why it lives in one place.
"""

from __future__ import annotations

import re
from functools import lru_cache

STOPWORDS = frozenset(
    """a about above after again against all also am an and any are as at be because been before
    being below between both but by can could did do does doing down during each few for from
    further had has have having he her here hers herself him himself his how i if in into is it
    its itself just me more most my myself no nor not now of off on once only or other our ours
    out over own same she should so some such than that the their theirs them themselves then
    there these they this those through to too under until up very was we were what when where
    which while who whom whose why will with would you your yours s t don't didn't doesn't isn't
    wasn't weren't won't can't many much does did according said says say tell told""".split()
)
QUESTION_WORDS = frozenset("what when where who whom whose which why how".split())

_TOKEN = re.compile(r"[A-Za-z0-9\u00C0-\u024F]+(?:['’][A-Za-z]+)?(?:[-.][A-Za-z0-9]+)*")


def tokens(text: str) -> list[str]:
    """Lower-cased word tokens; possessive 's is dropped ("Alonso's" -> "alonso")."""
    out = []
    for m in _TOKEN.finditer(text):
        t = m.group().lower().replace("’", "'")
        if t.endswith("'s"):
            t = t[:-2]
        out.append(t)
    return out


# Irregular forms common in football reporting, mapped to the base form before stemming.
_IRREGULAR = {
    "became": "become", "won": "win", "left": "leave", "paid": "pay", "sold": "sell",
    "bought": "buy", "took": "take", "taken": "take", "gave": "give", "given": "give",
    "made": "make", "came": "come", "went": "go", "gone": "go", "ran": "run", "met": "meet",
    "lost": "lose", "held": "hold", "told": "tell", "began": "begin", "begun": "begin",
    "beaten": "beat", "saw": "see", "seen": "see", "kept": "keep", "felt": "feel", "fell": "fall",
    "led": "lead", "struck": "strike", "spent": "spend", "hit": "hit", "chose": "choose",
    "chosen": "choose", "drew": "draw", "drawn": "draw", "threw": "throw", "broke": "break",
    "broken": "break", "rose": "rise", "wore": "wear", "sent": "send", "shot": "shoot",
    "brought": "bring", "thought": "think", "fought": "fight", "caught": "catch", "got": "get",
    "goals": "goal", "scorer": "score", "scored": "score", "scoring": "score",
    "managerial": "manager", "coaching": "coach", "signing": "sign",
}


IRREGULAR_PAST = frozenset(k for k, v in _IRREGULAR.items() if not k.endswith(("s", "ing")) and k != v)


@lru_cache(maxsize=1 << 16)
def stem(word: str) -> str:
    """Strips common English suffixes so that inflections of one word compare equal.

    Suffixes are stripped repeatedly (at most three times) so that a base form and its
    inflections meet: "referee"/"refereed", "agree"/"agreed", "city"/"cities".
    """
    w = word.lower()
    w = _IRREGULAR.get(w, w)
    if len(w) <= 3 or not w.isalpha():
        return w
    if w.endswith("ies") and len(w) > 5:
        w = w[:-3] + "y"  # "friendlies" -> "friendly", so that it meets "friendly" below
    elif w.endswith(("ction", "ctions")) and len(w) > 7:
        w = w[: w.rindex("ction") + 2]  # "deflection" -> "deflect", "selections" -> "select"
    for _ in range(3):
        for suf in _SUFFIXES:
            if w.endswith(suf) and len(w) - len(suf) >= 3:
                if suf == "y" and w[-2] in "aeiou":
                    continue  # "play", "day": the y is part of the word
                w = w[: -len(suf)]
                break
        else:
            break
    return w


_SUFFIXES = ("ational", "ations", "ation", "ating", "ated", "ate", "ingly", "ments", "ment", "ness",
             "ings", "ing", "ied", "ies", "ers", "ed", "er", "es", "ly", "s", "e", "y")


def content_terms(text: str) -> list[str]:
    """Tokens that carry meaning: no stopwords or question words, order kept, no repeats."""
    seen: dict[str, None] = {}
    for t in tokens(text):
        if t in STOPWORDS or t in QUESTION_WORDS or len(t) < 2 and not t.isdigit():
            continue
        seen.setdefault(t, None)
    return list(seen)


def stems(text: str) -> set[str]:
    return {stem(t) for t in tokens(text)}


_NAME = re.compile(r"\b[A-Z][\w'’-]*[a-z][\w'’-]*(?:\s+(?:(?:de|da|van|von|di|le|la)\s+)?[A-Z][\w'’-]*[a-z][\w'’-]*)*")
_SENTENCE_STARTERS = frozenset(
    """The A An He She They It His Her Their This That These Those But And If When While After
    Before Also In On At For From With By Of To As Now Last Next However Meanwhile Monday Tuesday
    Wednesday Thursday Friday Saturday Sunday January February March April May June July August
    September October November December""".split()
)


def name_phrases(sentence: str, context: str = "") -> list[str]:
    """Capitalised name phrases in a sentence ("Fernando Morientes", "Anderlecht").

    A single capitalised word that opens the sentence counts only if ``context`` (or the
    sentence) also has it capitalised mid-sentence, so "Inspired" or "Their" are not names.
    """
    mid = {m.group(1) for m in re.finditer(r"[a-z,;:] ([A-Z][\w'’-]+)", f"{context} {sentence}")}
    out: list[str] = []
    for m in _NAME.finditer(sentence):
        words = m.group().split()
        while words and words[0] in _SENTENCE_STARTERS:
            words = words[1:]
        if not words:
            continue
        if len(words) == 1 and sentence[: m.start()].strip(" \"'“‘") == "" and words[0] not in mid:
            continue
        name = re.sub(r"['’]s$", "", " ".join(words))
        if name not in out:
            out.append(name)
    return out
