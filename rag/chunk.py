"""Sentence splitting and chunking, with exact character offsets.

Chunks are whole sentences packed to roughly ``target_words`` (never over ``max_words`` unless a
single sentence is longer), overlapping by the previous chunk's last sentence so that a fact
stated across a boundary is retrievable from either side. Sentences are the unit because they
are also the unit of citation: the answerer quotes sentences, and the offsets computed here are
the ones the UI highlights.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .models import Article, Chunk

# Words whose trailing period does not end a sentence.
_ABBREV = {
    "mr", "mrs", "ms", "dr", "st", "jr", "sr", "vs", "v", "no", "nos", "prof", "gen", "col",
    "capt", "lt", "sgt", "rev", "mt", "ft", "inc", "ltd", "co", "corp", "etc", "e.g", "i.e",
    "approx", "jan", "feb", "mar", "apr", "jun", "jul", "aug", "sep", "sept", "oct", "nov", "dec",
}
_END = re.compile(r"[.!?]+[\"'”’)\]]*(?=\s)|\n+")


@dataclass(frozen=True)
class Sentence:
    """A sentence as a span of its article's text."""

    start: int
    end: int
    text: str


def split_sentences(text: str, offset: int = 0) -> list[Sentence]:
    """Splits on sentence punctuation and line breaks; offsets are into ``text`` plus ``offset``."""
    out: list[Sentence] = []
    start = 0
    n = len(text)
    for m in _END.finditer(text):
        end = m.end()
        if not m.group().startswith("\n"):
            w = _last_word(text, start, m.start())
            if w is not None and (w in _ABBREV or (len(w) == 1 and w.isalpha())):  # "Mr." or "A."
                continue
            nxt = text[end:end + 3].lstrip()
            if nxt and nxt[0].islower():  # "2-1 a.e.t. and" - not a sentence end
                continue
        else:
            end = m.start()
        _append(out, text, start, end, offset)
        start = m.end()
    if start < n:
        _append(out, text, start, n, offset)
    return out


_WORD_TAIL = re.compile(r"[A-Za-z.]+$")
_LONGEST_ABBREV = max(len(a) for a in _ABBREV) + 1


def _last_word(text: str, start: int, stop: int) -> str | None:
    """The word before the punctuation at ``stop``, lower-cased, if it could be an abbreviation.

    Only a short window before ``stop`` is looked at, so that a long run of initials or
    abbreviations ("A. B. C. ...", where the sentence start does not move) costs linear time.
    """
    lo = max(start, stop - _LONGEST_ABBREV - 1)
    m = _WORD_TAIL.search(text, lo, stop)
    if m is None:
        return None
    if m.start() == lo and lo > start and (text[lo - 1].isalpha() or text[lo - 1] == "."):
        return None  # the word goes on before the window: longer than any abbreviation
    return m.group().rstrip(".").lower()


def _append(out: list[Sentence], text: str, start: int, end: int, offset: int) -> None:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    if end > start:
        out.append(Sentence(start + offset, end + offset, text[start:end]))


def _words(s: str) -> int:
    return len(s.split())


def chunk_article(
    article: Article, *, target_words: int = 120, max_words: int = 200, overlap_sentences: int = 1
) -> list[Chunk]:
    """Packs sentences into chunks; ``chunk.text == article.text[chunk.start:chunk.end]``."""
    if target_words <= 0 or max_words < target_words:
        raise ValueError(f"bad chunk sizes: target_words={target_words}, max_words={max_words}")
    sentences: list[Sentence] = []
    for s in split_sentences(article.text):
        if _words(s.text) <= max_words:
            sentences.append(s)
        else:  # a run-on "sentence" (a team sheet, say): cut it at word boundaries
            sentences.extend(_split_long(article.text, s, max_words))
    counts = [_words(s.text) for s in sentences]
    after = [0] * (len(sentences) + 1)  # after[j]: words in sentences[j:] (linear, not per chunk)
    for k in range(len(sentences) - 1, -1, -1):
        after[k] = after[k + 1] + counts[k]
    chunks: list[Chunk] = []
    i = 0
    while i < len(sentences):
        j = i
        words = 0
        while j < len(sentences) and (j == i or words + counts[j] <= max_words):
            words += counts[j]
            j += 1
            if words >= target_words:
                break
        # avoid a tiny tail chunk: fold the remaining short sentences into this one
        rest = after[j]
        if 0 < rest < target_words // 4 and words + rest <= max_words:
            j = len(sentences)
        start, end = sentences[i].start, sentences[j - 1].end
        chunks.append(
            Chunk(id=-1, article_id=article.id, ordinal=len(chunks), text=article.text[start:end],
                  start=start, end=end)
        )
        if j >= len(sentences):
            break
        i = max(j - overlap_sentences, i + 1)
        if overlap_sentences and counts[i] > target_words // 2:
            i = j  # do not repeat a long sentence
    return chunks


def _split_long(text: str, s: Sentence, max_words: int) -> list[Sentence]:
    out = []
    spans = [(m.start(), m.end()) for m in re.finditer(r"\S+", text[s.start:s.end])]
    for k in range(0, len(spans), max_words):
        part = spans[k:k + max_words]
        a, b = s.start + part[0][0], s.start + part[-1][1]
        out.append(Sentence(a, b, text[a:b]))
    return out


def embedding_text(article: Article, chunk: Chunk) -> str:
    """What the embedder sees: the headline as context, unless the chunk already starts with it."""
    if chunk.ordinal == 0 and chunk.text.startswith(article.title[:40]):
        return chunk.text
    return f"{article.title}. {chunk.text}"
