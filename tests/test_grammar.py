"""Unit tests of the citation grammar, with no model loaded.

The generated grammars are finite (no recursion, bounded repetition), hence regular, so the
tests translate them into Python regular expressions and check which answers they accept. The
same grammars are checked against llama.cpp's own parser in tests/test_llm.py.
"""

from __future__ import annotations

import re

import pytest

from rag.grammar import (
    ABSTAIN_SENTENCE,
    AnswerShape,
    GrammarError,
    check_gbnf,
    citation_grammar,
    gbnf_literal,
    line_grammar,
)

_TOKEN = re.compile(r'\s+|"(?:\\.|[^"\\])*"|\[(?:\\.|[^\]\\])*\]|\{[^}]*\}|[A-Za-z0-9-]+|[()|*+?.]')


def _literal_to_re(lit: str) -> str:
    body = lit[1:-1]
    body = re.sub(r"\\x([0-9A-Fa-f]{2})", lambda m: chr(int(m.group(1), 16)), body)
    body = body.replace("\\n", "\n").replace("\\t", "\t").replace("\\r", "\r")
    body = re.sub(r"\\(.)", r"\1", body)
    return re.escape(body)


def gbnf_to_regex(grammar: str) -> re.Pattern[str]:
    """A regex accepting the same strings as a non-recursive grammar (one rule per line)."""
    rules = {}
    for line in grammar.strip().splitlines():
        name, _, body = line.partition("::=")
        rules[name.strip()] = body.strip()

    def expand(name: str) -> str:
        out = []
        for tok in _TOKEN.findall(rules[name]):
            if tok.isspace():
                continue
            if tok.startswith('"'):
                out.append(_literal_to_re(tok))
            elif tok.startswith(("[", "{")) or tok in "()|*+?.":
                out.append(tok)
            else:
                out.append(f"(?:{expand(tok)})")
        return "".join(out)

    return re.compile(f"(?:{expand('root')})", re.DOTALL)


def accepts(grammar: str, text: str) -> bool:
    return gbnf_to_regex(grammar).fullmatch(text) is not None


@pytest.mark.parametrize("k", [1, 3, 9, 10, 12, 99])
def test_citation_grammar_is_valid_and_bounded(k: int) -> None:
    g = citation_grammar(k)
    check_gbnf(g, bounded=True)
    for n in range(1, k + 1):
        assert gbnf_literal(f"[{n}]") in g
    assert gbnf_literal(f"[{k + 1}]") not in g
    assert gbnf_literal("[0]") not in g


def test_only_given_sources_can_be_cited() -> None:
    g = citation_grammar(3)
    assert accepts(g, "June 2024 [1].")
    assert accepts(g, "Alonso's contract expires in June 2024 [3]. He joined in 2022 [1][2].")
    for bad in ("June 2024 [7].", "June 2024 [0].", "June 2024 [4].", "June 2024 [1, 2].", "June 2024 [12]."):
        assert not accepts(g, bad), bad


def test_answer_must_cite_unless_it_abstains() -> None:
    g = citation_grammar(2)
    assert not accepts(g, "June 2024.")
    assert not accepts(g, "[1] June 2024.")  # a marker needs a claim before it
    assert accepts(g, ABSTAIN_SENTENCE)
    assert accepts(g, "The sources don't say when the contract ends.")
    assert not accepts(citation_grammar(2, allow_abstain=False), ABSTAIN_SENTENCE)


def test_stray_brackets_are_impossible() -> None:
    g = citation_grammar(2)
    assert not accepts(g, "June 2024 [1]. See [the article].")
    assert not accepts(g, "June 2024 [1] ]")


def test_answer_length_is_bounded() -> None:
    shape = AnswerShape(max_runs=2, max_run_chars=20, max_group=2, max_tail_chars=5)
    g = citation_grammar(2, shape)
    assert accepts(g, "a" * 20 + "[1][2]" + "b" * 20 + "[2]" + "!" * 5)
    assert not accepts(g, "a" * 21 + "[1]")
    assert not accepts(g, "a[1]b[1]c[1]")  # three runs
    assert not accepts(g, "a[1][2][1]")  # three markers in a row
    assert not accepts(g, "a[1]" + "." * 6)


@pytest.mark.parametrize("k", [0, 100, -1, "3", None])
def test_citation_grammar_rejects_bad_k(k) -> None:
    with pytest.raises(ValueError, match="number of sources"):
        citation_grammar(k)


def test_citation_grammar_rejects_bad_shape() -> None:
    with pytest.raises(ValueError, match="max_run_chars"):
        citation_grammar(2, AnswerShape(max_run_chars=0))


def test_line_grammar() -> None:
    g = line_grammar(40)
    assert accepts(g, "When does Ancelotti's contract expire?")
    assert not accepts(g, "two\nlines")
    assert not accepts(g, "cites [1]")
    assert not accepts(g, "")
    assert not accepts(g, "x" * 41)
    with pytest.raises(ValueError):
        line_grammar(0)


@pytest.mark.parametrize("text, expected", [
    ('say "hi"', r'"say \"hi\""'),
    ("a\\b", r'"a\\b"'),
    ("line\nbreak\ttab", r'"line\nbreak\ttab"'),
    ("\x01", r'"\x01"'),
    ("[1]", '"[1]"'),
])
def test_literal_escaping(text: str, expected: str) -> None:
    assert gbnf_literal(text) == expected
    assert accepts(f"root ::= {gbnf_literal(text)}\n", text)


@pytest.mark.parametrize("grammar, message", [
    ("", "empty"),
    ('rot ::= "x"', "no 'root'"),
    ("root ::= foo", "undefined rule 'foo'"),
    ('root ::= "x', "unterminated string"),
    ("root ::= [a-", "unterminated character class"),
    ("root ::= []", "empty character class"),
    ('root ::= "\\q"', "unknown escape"),
    ('root ::= "\\x4"', "bad escape"),
    ('root_1 ::= "a"', "expected '::='"),
    ('root ::= ("a"', "expected ')'"),
    ("root ::= *", "nothing to repeat"),
    ('root ::= "a"{3,1}', "max below min"),
    ('root ::= "a"{x}', "malformed"),
    ('root ::= "a"\nroot ::= "b"', "defined twice"),
    ('root ::= "a" b ::= "c"', "missing newline"),
])
def test_check_gbnf_rejects(grammar: str, message: str) -> None:
    with pytest.raises(GrammarError, match=re.escape(message)):
        check_gbnf(grammar)


@pytest.mark.parametrize("grammar, message", [
    ('root ::= "a"*', "without a bound"),
    ('root ::= "a"+', "without a bound"),
    ('root ::= "a"{2,}', "without a bound"),
    ('root ::= a\na ::= "x" a?', "recursive"),
    ('root ::= a\na ::= b\nb ::= "(" a ")" | "x"', "recursive"),
])
def test_check_gbnf_bounded(grammar: str, message: str) -> None:
    check_gbnf(grammar)  # valid GBNF ...
    with pytest.raises(GrammarError, match=message):
        check_gbnf(grammar, bounded=True)  # ... but not a finite language


MULTILINE = r"""
# comments, rules spread over lines, groups and classes, as in llama.cpp's examples
root ::= (declaration)*

declaration ::= type name "(" param? ")" "{" stmt* "}"
type  ::= "int" ws | "char" ws
name ::= [a-zA-Z_] [a-zA-Z_0-9]*
param ::= type name
stmt ::=
    ( type name ws "=" ws num ";" ) |
    ( "return" ws num ";" )
num ::= [0-9]+ ws   # trailing comment
ws ::= [ \t\n]*
"""


def test_check_gbnf_accepts_multiline_rules_and_comments() -> None:
    check_gbnf(MULTILINE)
    with pytest.raises(GrammarError, match="without a bound"):
        check_gbnf(MULTILINE, bounded=True)
