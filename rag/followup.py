"""Follow-up questions: turning "And Ancelotti's?" into a question retrieval can use on its own.

Retrieval sees one question at a time, so a follow-up that leans on the conversation has to be
rewritten first. With a language model configured, the model rewrites it (one line, bounded by a
grammar) and the rewrite is accepted only if it keeps the follow-up's own names and shares
something with the conversation; otherwise, and without a model, a heuristic carries the
previous question over:

* an elliptical follow-up with a name ("And Ancelotti's?", "What about Real Madrid?") puts the
  new name in place of the previous question's name of the same kind (club for club, person for
  person): "When does Alonso's contract expire?" -> "When does Ancelotti's contract expire?";
* pronouns ("When does his contract expire?") become the person or club they most likely refer
  to, from the previous question or else from the previous answer;
* anything else elliptical ("And in 2025?") is appended to the previous question.

Questions that stand on their own are left alone, so a conversation never costs a rewrite it
does not need.
"""

from __future__ import annotations

import re
from functools import lru_cache
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from .errors import InputError
from .retrieve import alias_table
from .text import QUESTION_WORDS, STOPWORDS, tokens

History = Sequence[tuple[str, Any]]  # (question, answer text or Answer)

_OPENERS = re.compile(
    r"^\s*(?:and\s+what\s+about|and\s+how\s+about|what\s+about|how\s+about|what\s+of|and\s+for|"
    r"and|but|also|so|then|same\s+for|same\s+question\s+for)\b[\s,]*",
    re.IGNORECASE,
)
_PRONOUN = re.compile(r"\b(he|him|his|she|her|hers|they|them|their|it|its|the club|the team|the side)\b", re.IGNORECASE)
_PERSON_PRONOUNS = {"he", "him", "his", "she", "her", "hers"}
_NAME = re.compile(
    r"[A-Z][\w'’.-]*(?:\s+(?:(?:de|da|del|der|van|von|di|dos|la|le)\s+)?[A-Z][\w'’.-]*)*"
)
_NOT_NAME = frozenset(
    """and but so also then what how when who whom whose which where why is are was were did does
    do has have had will would can could should about the a an in on at for of to with his her
    their its he she they it that this those these i me my we our you your if yes no same
    sources source question answer according""".split()
)
_POSSESSIVE = re.compile(r"['’]s$|['’]$")


@dataclass(frozen=True)
class Rewrite:
    """The question as asked and as used for retrieval; ``method`` is none, heuristic or llm."""

    question: str
    standalone: str
    method: str


@dataclass(frozen=True)
class Name:
    """A capitalised name in a question, with its span and whether it was possessive."""

    text: str
    start: int
    end: int
    possessive: bool


def _answer_text(a: Any) -> str:
    return a if isinstance(a, str) else str(getattr(a, "text", "") or "")


def _standalone_of(q: str, a: Any) -> str:
    """A previous turn's own standalone form when the history holds Answers."""
    rq = getattr(a, "retrieval_query", None)
    return rq if isinstance(rq, str) and rq.strip() else q


def check_history(history: Any) -> list[tuple[str, Any]]:
    """``history`` as a list of (question, answer) pairs, or an InputError naming the bad item."""
    if history is None:
        return []
    if isinstance(history, (str, bytes)):
        raise InputError("history must be a list of (question, answer) pairs, got a string")
    out = []
    for i, item in enumerate(history):
        if not (isinstance(item, (tuple, list)) and len(item) == 2 and isinstance(item[0], str)):
            raise InputError(f"history item {i} is not a (question, answer) pair: {item!r:.80}")
        out.append((item[0], item[1]))
    return out


def names(text: str) -> list[Name]:
    """Capitalised names, without leading function words and possessive endings."""
    out: list[Name] = []
    for m in _NAME.finditer(text):
        words = list(re.finditer(r"\S+", m.group()))
        i = 0
        while i < len(words) and words[i].group().lower().strip("'’.,;:!?") in _NOT_NAME:
            i += 1
        if i == len(words):
            continue
        start = m.start() + words[i].start()
        raw = text[start:m.end()].rstrip(".,;:!?")
        possessive = bool(_POSSESSIVE.search(raw))
        core = _POSSESSIVE.sub("", raw)
        if core and core.lower() not in _NOT_NAME:
            out.append(Name(core, start, start + len(core), possessive))
    return out


@lru_cache(maxsize=1)
def _clubs() -> frozenset[str]:
    out: set[str] = set()
    for canon, aliases in alias_table().items():
        out.add(canon.lower())
        out.update(a.lower().removeprefix("the ") for a in aliases)
        if " " in canon:
            out.add(canon.lower().split()[-1])  # "Leverkusen" for "Bayer Leverkusen"
    return frozenset(out)


_CLUB_WORDS = re.compile(r"\b(FC|AFC|United|City|Town|Rovers|Athletic|Albion|Wanderers|County|Villa|Hotspur|Real|Bayer|Borussia|Inter|Sporting)\b")


def is_club(name: str) -> bool:
    """Whether a name is a club, by the alias table or a club word in it."""
    low = name.lower()
    return low in _clubs() or bool(_CLUB_WORDS.search(name))


def looks_like_follow_up(question: str) -> bool:
    """Whether a question leans on the conversation: an opener like "And"/"What about", a
    pronoun, or too few words to stand alone."""
    q = question.strip()
    if _OPENERS.match(q) or _PRONOUN.search(q):
        return True
    return len(tokens(q)) <= 3


def _content(text: str) -> set[str]:
    return {t for t in tokens(text) if t not in STOPWORDS}


def accept_rewrite(question: str, candidate: str | None, history: History) -> bool:
    """Whether a model's rewrite can be used: one reasonable line that keeps the follow-up's
    names and shares at least one word with the previous turn."""
    if not candidate or "\n" in candidate.strip() or not 3 <= len(candidate.strip()) <= 300:
        return False
    low = candidate.lower()
    if any(n.text.lower() not in low for n in names(question)):
        return False
    if not history:
        return True
    q, a = history[-1]
    context = _content(_standalone_of(q, a)) | _content(_answer_text(a))
    return bool(_content(candidate) & context)


def _same_kind(new: Name, candidates: list[Name]) -> Name | None:
    if not candidates:
        return None
    club = is_club(new.text)
    for c in candidates:
        if is_club(c.text) == club:
            return c
    return candidates[0]


def _replace(text: str, old: Name, new_text: str) -> str:
    return text[:old.start] + new_text + text[old.end:]


def _referent(pronoun: str, prev_q: str, prev_a: str) -> str | None:
    person = pronoun.lower() in _PERSON_PRONOUNS
    for source in (prev_q, prev_a):
        for n in names(source):
            if is_club(n.text) != person:
                return n.text
    return None


def heuristic_rewrite(question: str, history: History) -> str:
    """The follow-up with the previous question's subject carried over (see the module doc)."""
    q = " ".join(question.split())
    if not history:
        return q
    prev_q_raw, prev_a = history[-1]
    prev_q = " ".join(_standalone_of(prev_q_raw, prev_a).split())
    prev_a_text = _answer_text(prev_a)
    opener = _OPENERS.match(q)
    rest = q[opener.end():] if opener else q
    new = names(rest)
    elliptical = bool(opener) or len(tokens(q)) <= 3
    if elliptical and not new:
        new = _bare_name(rest)
    if elliptical and new and not _PRONOUN.search(rest):
        # "And Ancelotti's?" / "What about Real Madrid?" -> swap the name in the previous question
        leftover = _content(rest) - {t for n in new for t in tokens(n.text)}
        target = _same_kind(new[0], names(prev_q))
        if target is not None and not leftover - _content(prev_q):
            return _replace(prev_q, target, new[0].text)
        if target is None:
            return f"{prev_q.rstrip('?.! ')} {rest.rstrip('?.! ')}?"
    if _PRONOUN.search(q) and not new:
        out, shift = q, 0
        for m in _PRONOUN.finditer(q):
            who = _referent(m.group(1), prev_q, prev_a_text)
            if who is None:
                continue
            word = m.group(1).lower()
            poss = word in {"his", "their", "its", "hers"} or (word == "her" and _followed_by_noun(q, m.end()))
            repl = f"{who}'s" if poss else who
            out = out[:m.start() + shift] + repl + out[m.end() + shift:]
            shift += len(repl) - (m.end() - m.start())
        if out != q:
            return out[0].upper() + out[1:]
    if elliptical:
        tail = rest.strip(" ?.!")
        if not tail:
            return prev_q
        if tokens(tail)[:1] and tokens(tail)[0] in QUESTION_WORDS:  # "Why?" -> "Why? (When does ... expire?)"
            return f"{tail[0].upper()}{tail[1:]}? ({prev_q})"
        return f"{prev_q.rstrip('?.! ')} {tail}?"
    return q


def _bare_name(rest: str) -> list[Name]:
    """An uncapitalised name typed alone ("and ancelotti's?"): one to three plain words."""
    core = rest.strip(" ?.!,")
    words = core.split()
    if not 1 <= len(words) <= 3 or _PRONOUN.search(core):
        return []
    for w in words:
        t = tokens(w)
        if len(t) != 1 or not w[0].isalpha() or t[0] in STOPWORDS or t[0] in QUESTION_WORDS:
            return []
    possessive = bool(_POSSESSIVE.search(core))
    text = _POSSESSIVE.sub("", core)
    start = rest.index(core)
    return [Name(text, start, start + len(text), possessive)]


def _followed_by_noun(text: str, pos: int) -> bool:
    nxt = re.match(r"\s+([A-Za-z]+)", text[pos:])
    return bool(nxt) and nxt.group(1).lower() not in STOPWORDS


def rewrite(question: str, history: History | None, llm: Callable[[str, list[tuple[str, str]]], str | None] | None = None) -> Rewrite:
    """The standalone form of ``question`` given the conversation so far.

    Args:
        question: The new question.
        history: Earlier (question, answer) pairs, oldest first; answers are text or Answers.
        llm: Optional model rewriter ``(question, [(q, answer_text), ...]) -> text``.

    Returns:
        A ``Rewrite``; ``method`` is "none" when the question needs no rewrite.
    """
    turns = check_history(history)
    q = " ".join(question.split())
    if not turns or not looks_like_follow_up(q):
        return Rewrite(question, q, "none")
    if llm is not None:
        plain = [(_standalone_of(tq, ta), _answer_text(ta)) for tq, ta in turns[-3:]]
        candidate = llm(q, plain)
        if candidate is not None:
            candidate = " ".join(candidate.split())
        if accept_rewrite(q, candidate, turns):
            return Rewrite(question, candidate, "llm")
    standalone = heuristic_rewrite(q, turns)
    return Rewrite(question, standalone, "heuristic" if standalone != q else "none")
