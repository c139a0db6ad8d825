"""GBNF grammars that make a citation to a source that was not given impossible to decode.

The LLM answerer builds one grammar per question, from code, for the ``k`` sources actually in
the prompt: a citation marker can only be ``[1]``..``[k]``, an answer must cite at least once
(unless it is the fixed abstention sentence), and every repetition is bounded, so the language
is finite and the answer length is capped by the grammar as well as by ``max_tokens``.

llama.cpp may crash the process on a grammar it cannot parse, so grammars are never written by
hand at run time and every one is checked here first (``check_gbnf``: syntax, undefined or
duplicate rules, rule names llama.cpp rejects, and optionally that nothing repeats unboundedly
or recursively). The LLM answerer then also asks llama.cpp's own parser before decoding.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

ABSTAIN_SENTENCE = "The sources don't say."
"""What the model is told to reply when the sources do not hold the answer."""

MAX_SOURCES = 99
_RULE_NAME = re.compile(r"[A-Za-z0-9-]+")


class GrammarError(ValueError):
    """A grammar that llama.cpp would reject (a bug in the code that built it)."""


def gbnf_literal(text: str) -> str:
    """``text`` as a GBNF string literal, with quotes, backslashes and control bytes escaped."""
    out = []
    for ch in text:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif ch == "\r":
            out.append("\\r")
        elif ord(ch) < 0x20:
            out.append(f"\\x{ord(ch):02X}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


@dataclass(frozen=True)
class AnswerShape:
    """Bounds of an answer: how many text runs, how long each, how many markers in a row."""

    max_runs: int = 12  # text runs, each followed by a group of citation markers
    max_run_chars: int = 400
    max_group: int = 3  # markers in one group, as in "[1][2][3]"
    max_tail_chars: int = 200  # text after the last marker (the closing "." and so on)


def citation_grammar(k: int, shape: AnswerShape | None = None, *, allow_abstain: bool = True) -> str:
    """A grammar for an answer that cites the sources ``1..k`` and nothing else.

    Args:
        k: Number of sources in the prompt (1..99).
        shape: Length bounds (see ``AnswerShape``).
        allow_abstain: Also accept the abstention sentence, without a citation.

    Returns:
        GBNF text with a ``root`` rule, already checked by ``check_gbnf(..., bounded=True)``.

    Raises:
        ValueError: If ``k`` or a bound is out of range.
    """
    if not isinstance(k, int) or not 1 <= k <= MAX_SOURCES:
        raise ValueError(f"number of sources must be 1..{MAX_SOURCES}, got {k!r}")
    s = shape or AnswerShape()
    for name in ("max_runs", "max_run_chars", "max_group", "max_tail_chars"):
        if getattr(s, name) < 1:
            raise ValueError(f"AnswerShape.{name} must be at least 1, got {getattr(s, name)}")
    markers = " | ".join(gbnf_literal(f"[{n}]") for n in range(1, k + 1))
    lines = [
        f"root ::= {'abstain | ' if allow_abstain else ''}answer",
        f"answer ::= run cites (run cites){{0,{s.max_runs - 1}}} tail",
        f"run ::= [^\\[\\]]{{1,{s.max_run_chars}}}",
        f"cites ::= cite{{1,{s.max_group}}}",
        f"cite ::= {markers}",
        f"tail ::= [^\\[\\]]{{0,{s.max_tail_chars}}}",
    ]
    if allow_abstain:
        stem = ABSTAIN_SENTENCE.rstrip(".")
        lines.insert(1, f"abstain ::= {gbnf_literal(stem)} [^\\[\\]]{{0,{s.max_tail_chars}}}")
    text = "\n".join(lines) + "\n"
    check_gbnf(text, bounded=True)
    return text


def line_grammar(max_chars: int = 300) -> str:
    """One line of plain text without brackets (used for rewriting a follow-up question)."""
    if max_chars < 1:
        raise ValueError(f"max_chars must be at least 1, got {max_chars}")
    text = f"root ::= [^\\n\\[\\]] [^\\n\\[\\]]{{0,{max_chars - 1}}}\n"
    check_gbnf(text, bounded=True)
    return text


# ------------------------------------------------------------------ validation


@dataclass
class _Rule:
    name: str
    refs: set[str]
    unbounded: bool


class _Parser:
    """A recursive-descent reader of the GBNF subset llama.cpp accepts (grammar-parser.cpp)."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.i = 0
        self.refs: set[str] = set()
        self.unbounded = False

    def error(self, msg: str) -> GrammarError:
        line = self.text.count("\n", 0, self.i) + 1
        return GrammarError(f"grammar line {line}: {msg}")

    def skip(self, newlines: bool) -> None:
        while self.i < len(self.text):
            ch = self.text[self.i]
            if ch == "#":
                while self.i < len(self.text) and self.text[self.i] not in "\r\n":
                    self.i += 1
            elif ch in " \t" or (newlines and ch in "\r\n"):
                self.i += 1
            else:
                break

    def peek(self) -> str:
        return self.text[self.i] if self.i < len(self.text) else ""

    def name(self) -> str:
        m = _RULE_NAME.match(self.text, self.i)
        if not m:
            raise self.error(f"expected a rule name at {self.text[self.i:self.i + 12]!r}")
        self.i = m.end()
        return m.group()

    def escape(self) -> None:
        self.i += 1  # the backslash
        ch = self.peek()
        widths = {"x": 2, "u": 4, "U": 8}
        if ch in widths:
            digits = self.text[self.i + 1:self.i + 1 + widths[ch]]
            if len(digits) != widths[ch] or not all(c in "0123456789abcdefABCDEF" for c in digits):
                raise self.error(f"bad escape \\{ch}{digits}")
            self.i += 1 + widths[ch]
        elif ch and ch in 'nrt\\"[]-^':
            self.i += 1
        else:
            raise self.error(f"unknown escape \\{ch}")

    def literal(self) -> None:
        self.i += 1
        while True:
            ch = self.peek()
            if ch == "":
                raise self.error("unterminated string literal")
            if ch == '"':
                self.i += 1
                return
            if ch == "\\":
                self.escape()
            elif ch in "\r\n":
                raise self.error("newline inside a string literal")
            else:
                self.i += 1

    def char_class(self) -> None:
        self.i += 1
        if self.peek() == "^":
            self.i += 1
        items = 0
        while True:
            ch = self.peek()
            if ch == "":
                raise self.error("unterminated character class")
            if ch == "]":
                if not items:
                    raise self.error("empty character class")
                self.i += 1
                return
            if ch == "\\":
                self.escape()
            else:
                self.i += 1
            items += 1
            if self.peek() == "-" and self.text[self.i + 1:self.i + 2] not in ("]", ""):
                self.i += 1
                if self.peek() == "\\":
                    self.escape()
                else:
                    self.i += 1

    def repetition(self) -> None:
        m = re.compile(r"\{\s*(\d+)\s*(?:(,)\s*(\d*)\s*)?\}").match(self.text, self.i)
        if not m:
            raise self.error("malformed {m,n} repetition")
        lo, comma, hi = int(m.group(1)), m.group(2), m.group(3)
        if comma and not hi:
            self.unbounded = True
        elif hi and int(hi) < lo:
            raise self.error(f"repetition {{{lo},{hi}}} has max below min")
        self.i = m.end()

    def sequence(self, nested: bool) -> None:
        seen = False
        while True:
            self.skip(nested)
            ch = self.peek()
            if ch == '"':
                self.literal()
            elif ch == "[":
                self.char_class()
            elif ch == ".":
                self.i += 1
            elif ch == "(":
                self.i += 1
                self.alternates(nested=True)
                self.skip(True)
                if self.peek() != ")":
                    raise self.error("expected ')'")
                self.i += 1
            elif _RULE_NAME.match(ch or " ") and not self.text.startswith("::=", self.i):
                ref = self.name()
                self.skip(nested)
                if self.text.startswith("::=", self.i):
                    raise self.error(f"missing newline before rule '{ref}'")
                self.refs.add(ref)
                seen = True
                continue
            elif ch in ("*", "+", "?", "{"):
                if not seen:
                    raise self.error(f"'{ch}' with nothing to repeat")
                if ch in "*+":
                    self.unbounded = True
                    self.i += 1
                elif ch == "?":
                    self.i += 1
                else:
                    self.repetition()
                continue
            else:
                return
            seen = True

    def alternates(self, nested: bool) -> None:
        self.sequence(nested)
        while True:
            self.skip(nested)
            if self.peek() != "|":
                return
            self.i += 1
            self.skip(True)  # llama.cpp allows a line break after '|'
            self.sequence(nested)

    def rules(self) -> list[_Rule]:
        out: list[_Rule] = []
        self.skip(True)
        while self.i < len(self.text):
            name = self.name()
            self.skip(False)
            if not self.text.startswith("::=", self.i):
                raise self.error(f"expected '::=' after rule name '{name}'")
            self.i += 3
            self.skip(True)  # ... and after '::='
            self.refs, self.unbounded = set(), False
            self.alternates(nested=False)
            self.skip(False)
            if self.peek() not in ("", "\n", "\r"):
                raise self.error(f"unexpected {self.peek()!r} in rule '{name}'")
            out.append(_Rule(name, self.refs, self.unbounded))
            self.skip(True)
        return out


def check_gbnf(text: str, *, bounded: bool = False) -> None:
    """Checks a grammar the way llama.cpp's parser would, before it gets near llama.cpp.

    Args:
        text: GBNF source.
        bounded: Also require a finite language: no ``*``, ``+`` or ``{m,}`` and no rule that
            refers back to itself, directly or through others.

    Raises:
        GrammarError: Naming the line and the problem.
    """
    if not isinstance(text, str) or not text.strip():
        raise GrammarError("grammar is empty")
    rules = _Parser(text).rules()
    names: dict[str, _Rule] = {}
    for r in rules:
        if r.name in names:
            raise GrammarError(f"rule '{r.name}' is defined twice")
        names[r.name] = r
    if "root" not in names:
        raise GrammarError("grammar has no 'root' rule")
    for r in rules:
        missing = sorted(r.refs - names.keys())
        if missing:
            raise GrammarError(f"rule '{r.name}' refers to undefined rule '{missing[0]}'")
    if not bounded:
        return
    for r in rules:
        if r.unbounded:
            raise GrammarError(f"rule '{r.name}' repeats without a bound")
    state: dict[str, int] = {}  # 1 = on the path, 2 = done

    def visit(name: str, path: list[str]) -> None:
        state[name] = 1
        for ref in sorted(names[name].refs):
            if state.get(ref) == 1:
                raise GrammarError(f"rule '{ref}' is recursive ({' -> '.join([*path, ref])})")
            if ref not in state:
                visit(ref, [*path, ref])
        state[name] = 2

    for name in names:
        if name not in state:
            visit(name, [name])
