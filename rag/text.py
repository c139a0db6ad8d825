"""Small lexical tools shared by retrieval, answering and citation checking.

A crude suffix stemmer is enough here: it only has to make "expires", "expiring" and "expire"
meet, and it must agree with itself everywhere it is used (query terms, sentence scoring and
citation support), which is why it lives in one place.
"""

from __future__ import annotations

import re

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


def stem(word: str) -> str:
    """Strips common English suffixes so that inflections of one word compare equal."""
    w = word.lower()
    w = _IRREGULAR.get(w, w)
    if len(w) <= 3 or not w.isalpha():
        return w
    for suf in ("ational", "ations", "ation", "ingly", "ments", "ment", "ness", "ings", "ing",
                "ied", "ies", "ers", "est", "ed", "er", "es", "ly", "s", "e"):
        if suf == "ed" and w.endswith("eed"):
            continue  # "succeed", "agreed": the e is not an inflection
        if w.endswith(suf) and len(w) - len(suf) >= 3:
            return w[: -len(suf)]
    return w


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
