"""Sentence splitting and chunking, with exact character offsets.

Chunks are whole sentences packed to roughly ``target_words`` (never over ``max_words`` unless a
single sentence is longer), overlapping by the previous chunk's last sentence so that a fact
stated across a boundary is retrievable from either side. Sentences are the unit because they
are also the unit of citation: the answerer quotes sentences, and the offsets computed here are
the ones the UI highlights.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

from .models import Article, Chunk

# Words whose trailing period does not end a sentence.
_ABBREV = {
    "mr", "mrs", "ms", "dr", "st", "jr", "sr", "vs", "v", "no", "nos", "prof", "gen", "col",
    "capt", "lt", "sgt", "rev", "mt", "ft", "inc", "ltd", "co", "corp", "etc", "e.g", "i.e",
    "approx", "jan", "feb", "mar", "apr", "jun", "jul", "aug", "sep", "sept", "oct", "nov", "dec",
}
def _ci(word: str) -> str:
    """``word`` as a case-insensitive pattern over ASCII letters only ("mr" -> "[Mm][Rr]")."""
    return "".join(f"[{c.upper()}{c}]" if c.isalpha() else re.escape(c) for c in word)


def _end_pattern() -> re.Pattern[str]:
    """Sentence ends, with the abbreviation and initial checks inside the pattern.

    A candidate end is a run of ``.!?`` (then closing quotes or brackets) before whitespace, or a
    run of line breaks. The word before the run ("Mr", "e.g", a single letter "A") is checked by
    fixed-width look-behinds placed after the run's first character, so the pattern starts with a
    character class (SRE scans for it at C speed) and a run of initials ("A. B. C. ...") is
    rejected inside the regex engine instead of costing Python work per candidate. A word is a
    maximal run of ``[A-Za-z.]``; "at a boundary" means the character before it is none of those,
    or the text starts there.
    """
    not_word = "[^A-Za-z.]"
    behind = [f"(?<!{not_word}[A-Za-z].)", "(?<!^[A-Za-z].)"]  # a single letter: an initial
    for size in sorted({len(a) for a in _ABBREV}):  # one look-behind per width (they must be fixed)
        words = "|".join(_ci(a) for a in sorted(_ABBREV) if len(a) == size)
        behind += [f"(?<!{not_word}(?:{words}).)", f"(?<!^(?:{words}).)"]
    punct = "".join(behind)
    # (?<![.!?].): the run starts here, not in the middle of an earlier run
    return re.compile(r"[.!?\n](?:(?<=\n)\n*|(?<![.!?].)" + punct + r"[.!?]*[\"'”’)\]]*(?=\s))")


_END = _end_pattern()


@dataclass(frozen=True, slots=True)
class Sentence:
    """A sentence as a span of its article's text."""

    start: int
    end: int
    text: str


def split_sentences(text: str, offset: int = 0) -> list[Sentence]:
    """Splits on sentence punctuation and line breaks; offsets are into ``text`` plus ``offset``."""
    return list(iter_sentences(text, offset))


def iter_sentences(text: str, offset: int = 0) -> Iterator[Sentence]:
    """``split_sentences`` one sentence at a time. Linear in the length of the text: the regex
    engine finds the candidates, and the only Python work is per sentence found."""
    start = 0
    n = len(text)
    for m in _END.finditer(text):
        end = m.end()
        if text[m.start()] != "\n":
            nxt = text[end:end + 3].lstrip()
            if nxt and nxt[0].islower():  # "2-1 a.e.t. and" - not a sentence end
                continue
        else:
            end = m.start()
        s = _sentence(text, start, end, offset)
        if s is not None:
            yield s
        start = m.end()
    if start < n:
        s = _sentence(text, start, n, offset)
        if s is not None:
            yield s


def _sentence(text: str, start: int, end: int, offset: int) -> Sentence | None:
    seg = text[start:end]
    core = seg.strip()
    if not core:
        return None
    start += len(seg) - len(seg.lstrip())
    return Sentence(start + offset, start + len(core) + offset, core)


def _words(s: str) -> int:
    return len(s.split())


def chunk_article(
    article: Article, *, target_words: int = 120, max_words: int = 200, overlap_sentences: int = 1
) -> list[Chunk]:
    """Packs sentences into chunks; ``chunk.text == article.text[chunk.start:chunk.end]``."""
    return list(iter_chunks(article, target_words=target_words, max_words=max_words,
                            overlap_sentences=overlap_sentences))


def iter_chunks(
    article: Article, *, target_words: int = 120, max_words: int = 200, overlap_sentences: int = 1
) -> Iterator[Chunk]:
    """``chunk_article`` one chunk at a time, in time linear in the article and memory bounded
    by one chunk's sentences: a caller can take a huge article a few chunks at a time (the
    indexer does, so that one huge upload does not hold up another's)."""
    if target_words <= 0 or max_words < target_words:
        raise ValueError(f"bad chunk sizes: target_words={target_words}, max_words={max_words}")
    units = _units(article.text, max_words)
    buf: list[tuple[Sentence, int]] = []  # sentences base.. that are still needed, with word counts
    base = 0
    done = False

    def have(k: int) -> bool:
        """Whether sentence k exists, reading ahead as far as needed."""
        nonlocal done
        while not done and k - base >= len(buf):
            nxt = next(units, None)
            if nxt is None:
                done = True
            else:
                buf.append(nxt)
        return k - base < len(buf)

    tail = target_words // 4
    ordinal = 0
    i = 0
    while have(i):
        j = i
        words = 0
        while have(j) and (j == i or words + buf[j - base][1] <= max_words):
            words += buf[j - base][1]
            j += 1
            if words >= target_words:
                break
        # avoid a tiny tail chunk: fold the remaining short sentences into this one
        # (each sentence has a word, so at most ``tail`` sentences are read ahead to know)
        rest, k = 0, j
        while rest < tail and have(k):
            rest += buf[k - base][1]
            k += 1
        if 0 < rest < tail and not have(k) and words + rest <= max_words:
            j = k
        start, end = buf[i - base][0].start, buf[j - 1 - base][0].end
        yield Chunk(id=-1, article_id=article.id, ordinal=ordinal, text=article.text[start:end],
                    start=start, end=end)
        ordinal += 1
        if not have(j):
            return
        nxt_i = max(j - overlap_sentences, i + 1)
        if overlap_sentences and buf[nxt_i - base][1] > target_words // 2:
            nxt_i = j  # do not repeat a long sentence
        del buf[: nxt_i - base]
        base = i = nxt_i


def _units(text: str, max_words: int) -> Iterator[tuple[Sentence, int]]:
    """Sentences with their word counts; a run-on "sentence" (a team sheet, say) is cut at word
    boundaries into pieces of ``max_words`` words."""
    for s in iter_sentences(text):
        n = _words(s.text)
        if n <= max_words:
            yield s, n
        else:
            for piece in _split_long(text, s, max_words):
                yield piece, _words(piece.text)


def _split_long(text: str, s: Sentence, max_words: int) -> Iterator[Sentence]:
    """A sentence of more than ``max_words`` words as pieces of ``max_words`` words (one regex
    match per piece, so a megabyte without punctuation costs no Python work per word)."""
    piece = re.compile(r"\S+(?:\s+\S+){0,%d}" % (max_words - 1))
    for m in piece.finditer(s.text):
        yield Sentence(s.start + m.start(), s.start + m.end(), m.group())


def embedding_text(article: Article, chunk: Chunk) -> str:
    """What the embedder sees: the headline as context, unless the chunk already starts with it."""
    if chunk.ordinal == 0 and chunk.text.startswith(article.title[:40]):
        return chunk.text
    return f"{article.title}. {chunk.text}"
