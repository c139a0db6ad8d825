"""The fuzz lane: generated hostile input for every reader and for questions.

Each reader (txt, md, html, json, jsonl, csv) is fed ``FUZZ_EXAMPLES`` inputs (10,000 by default,
the CI setting) built from its format's own pieces: front matter and date markers, tag soup
with meta tags, comments and entities, JSON of every type at every field, CSV with quotes,
delimiters and line breaks in fields, plus raw bytes, byte-order marks and control characters.
The properties: a file is either read into articles or refused with an ``InputError`` naming it;
nothing else escapes. Every article read has text and a title without control characters, an
ISO date or none, and chunks whose offsets are exact. Questions (``FUZZ_QUESTIONS``) go through
the whole assistant over a small real index: an Answer whose every quote is its article's text
at its offsets, or a RagError.

    make test-fuzz                       # the CI lane (about 2 minutes on 2 cores)
    FUZZ_EXAMPLES=500 pytest -m fuzz     # a quick look
"""

from __future__ import annotations

import json
import os
import re
import string
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rag import Assistant
from rag.chunk import chunk_article, split_sentences
from rag.errors import InputError, RagError
from rag.ingest import ParsedSource, read_file
from tests.conftest import SEEDS
from tests.fakes import HashEmbedder

pytestmark = pytest.mark.fuzz

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "10000"))
QUESTIONS = int(os.environ.get("FUZZ_QUESTIONS", str(max(1, EXAMPLES // 5))))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=False,
                suppress_health_check=list(HealthCheck))
CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
ISO = re.compile(r"^\d{4}-\d{2}-\d{2}$")

# ------------------------------------------------------------------ pieces of documents

WORDS = ["Arsenal", "beat", "Chelsea", "2-1", "Mr.", "St.", "e.g.", "A.", "v", "no.", "Jan.", "said", "the",
         "£3m", "'", '"', "“quoted”", "Müller", "İstanbul", "ß", "ﬁ", "日本", "🙂", "\u200b", "\u00a0", "\u202e",
         "\x1b[31m", "\x1b]0;t\x07", "\x07", "\x00", "\r\n", "\r", "\t", "\ufeff", "&amp;", "<", ">", "\ud800",
         "a.e.t.", "U.S.", "x" * 300]
SEPARATORS = [" ", " ", " ", "\n", "\n\n", ". ", "! ", "? ", "... ", ".\n", "\n\n\n", "", "  "]
DATES = ["2005-02-13", "2005-2-3", "13 February 2005", "Feb 13, 2005", "2005/02/13",
         "Sun, 13 Feb 2005 10:00:00 GMT", "2005-02-30", "2005-13-45", "yesterday", "", "0000-00-00",
         "99999-01-01", "2005-02-13T25:61:00Z", "1e999", "-1", "1108252800"]
FIELDS = ["title", "headline", "name", "date", "published", "publishedAt", "url", "link", "source", "text",
          "body", "content", "description", "id", "guid", "slug", "TEXT", "Title", "", "x"]
TXT = WORDS + SEPARATORS + DATES + ["---\n", "---", "title: ", "date: ", "url: ", "date ", "Date: ", "# ",
                                    "\n---\n", ":", "'", "\n\n"]
HTML = WORDS + SEPARATORS + DATES + [
    "<p>", "</p>", "<div>", "</div>", "<h1>", "</h1>", "<title>", "</title>", "<script>", "</script>",
    "<style>", "</style>", "<nav>", "</nav>", "<header>", "<footer>", "<article>", "</article>", "<br>", "<br/>",
    "<li>", "<pre>", "<svg>", "</svg>", "<template>", "<noscript>", "<iframe>", "<img src=x onerror=alert(1)>",
    '<meta property="og:title" content="', '<meta property="article:published_time" content="',
    '<meta name="date" content="', '<meta property="og:url" content="', '">', '"/>', '<time datetime="',
    "</time>", "<!--", "-->", "<![CDATA[", "]]>", "<!DOCTYPE html>", "&#0;", "&#x110000;", "&#99999999999;",
    "&nbsp;", "&lt;", "</", "<", "<?xml?>", "<a b='", "=", "<html>", "<body>", "</body>", "<p", "<main>"]
SCALARS = ["null", "true", "false", "0", "-0", "1e999", "-1e999", "1.5", "123", "99999999999999999999999",
           '""', '" "', '"\\u0000"', '"\\ud800"', '"\\u001b[31m"', "[]", "{}", '["a", "b"]', '{"a": 1}',
           '"2005-02-13"', "1108252800", "1108252800000", "NaN", "Infinity", "1" * 5000]
JSON_TOKENS = ["{", "}", "[", "]", ",", ":", '"', "\\", '"text"', '"title"', '"date"', '"articles"'] + SCALARS
CSV_FIELDS = WORDS + DATES + ['"', '""', '"a"b"', ",", ";", "\t", "|", "\n", "\r\n", "x" * 200_000]


class Maker:
    """Builds documents from a format's vocabulary with one random generator.

    Hypothesis hands each example its own generator (``st.randoms``): drawing every piece
    through Hypothesis costs milliseconds per document, this costs tens of microseconds, which
    is what fits tens of thousands of inputs per reader in the lane's time. A failure shows the
    exact bytes that failed.
    """

    def __init__(self, rng) -> None:
        self.r = rng

    def text(self, n: int = 4) -> str:
        r = self.r
        alphabet = r.choice([string.ascii_letters + " .", "\x00\x1b\x7f\x85\u2028\u2029\ufeff\ud800\udfff",
                             "".join(map(chr, range(0x20, 0x250))), "日本語🙂\u200b\u202e"])
        return "".join(r.choice(alphabet) for _ in range(r.randint(0, n)))

    def pieces(self, vocab: list[str], n: int) -> str:
        r = self.r
        return "".join(r.choice(vocab) if r.random() < 0.9 else self.text() for _ in range(r.randint(0, n)))

    def prose(self, n: int = 30) -> str:
        return self.pieces(WORDS + SEPARATORS, n)

    def date(self) -> str:
        return self.r.choice(DATES) if self.r.random() < 0.85 else self.text(12)

    def txt(self) -> str:
        r = self.r
        out = ""
        if r.random() < 0.3:
            out += "---\n" + "".join(f"{r.choice(FIELDS)}: {self.date() if r.random() < .5 else self.prose(5)}\n"
                                     for _ in range(r.randint(0, 4))) + r.choice(["---\n", "---", ""])
        if r.random() < 0.3:
            out += f"{r.choice(['date ', 'Date: ', 'date:'])}{self.date()}\n"
        if r.random() < 0.3:
            out += f"# {self.prose(6)}\n\n"
        return out + self.pieces(TXT, 60)

    def html(self) -> str:
        return self.pieces(HTML, 70)

    def json_value(self, depth: int = 0) -> str:
        r = self.r
        roll = r.random()
        if roll < 0.4:
            return r.choice(SCALARS)
        if roll < 0.7:
            return json.dumps(self.prose(12) if r.random() < 0.7 else self.date())
        if roll < 0.85 and depth < 3:
            return "[" + ", ".join(self.json_value(depth + 1) for _ in range(r.randint(0, 3))) + "]"
        if depth < 3:
            return self.record(depth + 1)
        return r.choice(SCALARS)

    def record(self, depth: int = 0) -> str:
        r = self.r
        keys = [r.choice(FIELDS) if r.random() < 0.9 else self.text(6) for _ in range(r.randint(0, 6))]
        return "{" + ", ".join(f"{json.dumps(k)}: {self.json_value(depth)}" for k in keys) + "}"

    def json(self) -> str:
        r = self.r
        roll = r.random()
        if roll < 0.3:
            return self.record()
        if roll < 0.5:
            return "[" + ", ".join(self.record() for _ in range(r.randint(0, 4))) + "]"
        if roll < 0.6:
            key = r.choice(["articles", "items", "data", "results"])
            return '{"%s": [%s]}' % (key, ", ".join(self.record() for _ in range(r.randint(0, 3))))
        if roll < 0.7:
            depth = r.choice([10, 500, 999, 1000, 5000, 200_000])
            opener, closer = r.choice([("[", "]"), ('{"a":', "}"), ('[{"text":', "}]"), ('{"text": [', "]}")])
            return opener * depth + (closer * depth if r.random() < 0.5 else "")
        if roll < 0.85:
            return self.mutate(self.record())
        return self.pieces(JSON_TOKENS + WORDS, 40)

    def jsonl(self) -> str:
        r = self.r
        lines = [self.record() if r.random() < 0.6 else self.json() for _ in range(r.randint(0, 5))]
        return r.choice(["\n", "\r\n", "\n\n"]).join(lines)

    def csv(self) -> str:
        r = self.r
        if r.random() < 0.2:
            return self.pieces(CSV_FIELDS + FIELDS + [","] * 5, 40)
        delim = r.choice([",", ";", "\t", "|"])
        header = [r.choice(FIELDS) if r.random() < 0.85 else self.text(3) for _ in range(r.randint(1, 5))]
        rows = [[self.pieces(CSV_FIELDS, 3) for _ in range(r.randint(0, 5))] for _ in range(r.randint(0, 4))]

        def quote(f: str) -> str:
            return '"' + f.replace('"', '""') + '"' if any(c in f for c in ',;\t"\n|') and r.random() < 0.9 else f

        lines = [delim.join(quote(h) for h in header)] + [delim.join(quote(f) for f in row) for row in rows]
        return r.choice(["\n", "\r\n"]).join(lines)

    def mutate(self, doc: str) -> str:
        r = self.r
        for _ in range(r.randint(1, 3)):
            at = r.randint(0, len(doc))
            doc = doc[:at] + r.choice(['"', "{", "}", "[", "]", ",", ":", "\\", "\\u", "\\ud800", "\n",
                                       "'", "<", ">", "\x00"]) + doc[at + r.randint(0, 2):]
        return doc

    def encode(self, doc: str) -> bytes:
        """UTF-8 (with or without BOM), UTF-16 with a BOM, damaged bytes, or just bytes."""
        r = self.r
        roll = r.random()
        if roll < 0.6:
            return doc.encode("utf-8", "surrogatepass")
        if roll < 0.7:
            return b"\xef\xbb\xbf" + doc.encode("utf-8", "surrogatepass")
        if roll < 0.8:
            return doc.encode("utf-16", "surrogatepass")
        if roll < 0.95:
            data = doc.encode("utf-8", "surrogatepass")
            at = r.randint(0, len(data))
            return data[:at] + r.randbytes(r.randint(1, 6)) + data[at:]
        return r.randbytes(r.randint(0, 200))


BATCH = 10  # documents per Hypothesis example: its per-example bookkeeping costs more than a read


def documents(kind: str) -> st.SearchStrategy[list[bytes]]:
    """``BATCH`` documents of a kind ("txt", "html", "json", "jsonl", "csv"), as bytes."""
    def make(rng) -> list[bytes]:
        m = Maker(rng)
        return [m.encode(getattr(m, kind)()) for _ in range(BATCH)]

    return st.randoms(use_true_random=True).map(make)


def prose_texts() -> st.SearchStrategy[list[str]]:
    return st.randoms(use_true_random=True).map(lambda rng: [Maker(rng).prose(40) for _ in range(BATCH)])


dates = st.randoms(use_true_random=True).map(lambda rng: Maker(rng).date())


class Scratch:
    """One file per format, rewritten in place for every input (reopening and truncating a
    file costs a millisecond on some disks; this costs microseconds)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.fds: dict[str, int] = {}

    def write(self, suffix: str, data: bytes) -> Path:
        path = self.folder / f"doc{suffix}"
        fd = self.fds.get(suffix)
        if fd is None:
            fd = self.fds[suffix] = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        os.pwrite(fd, data, 0)
        os.ftruncate(fd, len(data))
        return path

    def close(self) -> None:
        for fd in self.fds.values():
            os.close(fd)


def check_file(path: Path, data: bytes) -> None:
    """Reads ``data`` (already written at ``path``); any failure names the input."""
    try:
        _check_file(path)
    except BaseException as e:
        raise AssertionError(f"reading {path.suffix} input {data[:3000]!r} ({len(data)} bytes): "
                             f"{type(e).__name__}: {e}") from e


def _check_file(path: Path) -> None:
    try:
        results = read_file(path)
    except InputError as e:
        assert str(e).startswith(str(path)), e
        assert "\n" not in str(e).strip(), e
        return
    assert isinstance(results, list) and results
    for r in results:
        if isinstance(r, InputError):
            assert str(r).startswith(str(path)), r
            continue
        assert isinstance(r, ParsedSource)
        a = r.article
        assert a.text.strip() and a.title.strip()
        assert not CONTROL.search(a.text), repr(a.text)
        assert not CONTROL.search(a.title), repr(a.title)
        assert a.date is None or ISO.match(a.date), a.date
        for c in chunk_article(a):
            assert a.text[c.start:c.end] == c.text and c.text.strip()


@pytest.fixture(scope="module")
def scratch(tmp_path_factory):
    sc = Scratch(tmp_path_factory.mktemp("fuzz"))
    yield sc
    sc.close()


def fuzz_reader(scratch: Scratch, kind: str, suffix: str) -> None:
    """Reads ``EXAMPLES`` generated documents of ``kind`` as ``suffix`` files."""
    seen = []

    @settings(FUZZ, max_examples=max(1, EXAMPLES // BATCH))
    @given(documents(kind))
    def run(batch):
        for data in batch:
            check_file(scratch.write(suffix, data), data)
        seen.append(len(batch))

    run()
    assert sum(seen) >= EXAMPLES, f"only {sum(seen)} inputs were tried"


@pytest.mark.parametrize("suffix", [".txt", ".md"])
def test_text_and_markdown(scratch, suffix):
    fuzz_reader(scratch, "txt", suffix)


def test_html(scratch):
    fuzz_reader(scratch, "html", ".html")


def test_json(scratch):
    fuzz_reader(scratch, "json", ".json")


def test_jsonl(scratch):
    fuzz_reader(scratch, "jsonl", ".jsonl")


def test_csv(scratch):
    fuzz_reader(scratch, "csv", ".csv")


# ------------------------------------------------------------------ the sentence splitter

_OLD_END = re.compile(r"[.!?]+[\"'”’)\]]*(?=\s)|\n+")


def reference_split(text: str) -> list[tuple[int, int]]:
    """The straightforward (quadratic) splitter the fast one must agree with."""
    from rag.chunk import _ABBREV

    out, start = [], 0
    for m in _OLD_END.finditer(text):
        end = m.end()
        if not m.group().startswith("\n"):
            word = re.search(r"([A-Za-z.]+)[.!?]*[\"'”’)\]]*$", text[start:end])
            if word:
                w = word.group(1).rstrip(".").lower()
                if w in _ABBREV or (len(w) == 1 and w.isalpha()):
                    continue
            nxt = text[end:end + 3].lstrip()
            if nxt and nxt[0].islower():
                continue
        else:
            end = m.start()
        _add_stripped(out, text, start, end)
        start = m.end()
    _add_stripped(out, text, start, len(text))
    return out


def _add_stripped(out: list[tuple[int, int]], text: str, s: int, e: int) -> None:
    """Appends text[s:e] without its surrounding white space, unless nothing is left."""
    while s < e and text[s].isspace():
        s += 1
    while e > s and text[e - 1].isspace():
        e -= 1
    if e > s:
        out.append((s, e))


def test_sentence_splitter_agrees_with_the_reference():
    @settings(FUZZ, max_examples=max(1, EXAMPLES // BATCH))
    @given(prose_texts())
    def run(texts):
        for text in texts:
            assert [(s.start, s.end) for s in split_sentences(text)] == reference_split(text), repr(text)

    run()


# ------------------------------------------------------------------ questions

QUESTION_BITS = ["When", "does", "Alonso's", "contract", "expire", "?", "who", "Leverkusen", "Real Madrid",
                 '"', "*", "^", ":", "(", ")", "-", "NEAR(", "AND", "OR", "NOT", "'; DROP TABLE articles; --",
                 "%", "_", "\\", "\x00", "\x1b[2J", "日本", "🙂", "  ", "\n", "Los Blancos", "2024", "£3m"]
questions = st.one_of(
    st.lists(st.sampled_from(QUESTION_BITS) | st.text(max_size=10), max_size=15).map(" ".join),
    st.text(max_size=60),
    st.integers(1990, 2100).map(lambda y: f"Who won in {y}?"),
    st.just("x" * 2001),
)


@pytest.fixture(scope="module")
def assistant(tmp_path_factory):
    a = Assistant(tmp_path_factory.mktemp("fuzz-index"), embedder=HashEmbedder(), seed=SEEDS, quiet=True)
    a.articles()
    yield a
    a.close()


def test_questions(assistant):
    @settings(FUZZ, max_examples=QUESTIONS)
    @given(questions, st.none() | st.integers(-2, 12), st.none() | dates, st.none() | dates,
           st.lists(st.tuples(questions, st.text(max_size=30)), max_size=2))
    def run(question, top_k, since, until, history):
        try:
            answer = assistant.ask(question, top_k=top_k, since=since, until=until, history=history)
        except RagError as e:
            assert "\n" not in str(e).strip()
            return
        assert isinstance(answer.text, str)
        for c in answer.citations:
            assert assistant.store.article(c.article_id).text[c.start:c.end] == c.quote

    run()
