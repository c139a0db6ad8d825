"""Sentence splitting and chunking keep exact offsets and sensible sizes."""

from __future__ import annotations

import pytest

from rag.chunk import chunk_article, embedding_text, split_sentences
from rag.ingest import read_file
from rag.models import Article
from tests.conftest import SEEDS


def test_sentences_offsets_and_abbreviations():
    text = 'Mr. Smith joined St. Mirren in Jan. 2005. He said: "It is great." Then he left!\nNew line here'
    sents = split_sentences(text)
    assert [s.text for s in sents] == [
        "Mr. Smith joined St. Mirren in Jan. 2005.", 'He said: "It is great."', "Then he left!", "New line here",
    ]
    for s in sents:
        assert text[s.start:s.end] == s.text


@pytest.mark.parametrize("seed", sorted(SEEDS.glob("*.txt")), ids=lambda p: p.name)
def test_chunks_cover_article_with_exact_offsets(seed):
    article = read_file(seed)[0].article
    chunks = chunk_article(article)
    assert chunks[0].start == 0
    assert chunks[-1].end == len(article.text.rstrip())
    for prev, ch in zip(chunks, chunks[1:]):
        assert ch.start <= prev.end  # contiguous or overlapping: nothing is lost between chunks
    for ch in chunks:
        assert article.text[ch.start:ch.end] == ch.text
        assert len(ch.text.split()) <= 200
    assert [c.ordinal for c in chunks] == list(range(len(chunks)))


def test_chunk_sizes_and_overlap():
    sentences = [f"Sentence number {i} talks about the match and the goals scored." for i in range(60)]
    art = Article("a", "T", None, "s", " ".join(sentences))
    chunks = chunk_article(art, target_words=50, max_words=80)
    assert len(chunks) > 5
    assert all(len(c.text.split()) <= 80 for c in chunks)
    assert all(len(c.text.split()) >= 30 for c in chunks[:-1])
    # one sentence of overlap between neighbours
    for a, b in zip(chunks, chunks[1:]):
        assert a.text.split(". ")[-1].rstrip(".") in b.text


def test_run_on_sentence_is_split_at_words():
    art = Article("a", "T", None, "s", " ".join(["Player"] * 450))
    chunks = chunk_article(art, target_words=120, max_words=200)
    assert all(len(c.text.split()) <= 200 for c in chunks)
    assert sum(len(c.text.split()) for c in chunks) >= 450


def test_bad_chunk_sizes():
    with pytest.raises(ValueError, match="target_words=0"):
        chunk_article(Article("a", "T", None, "s", "x"), target_words=0)


def test_embedding_text_adds_headline_context():
    art = Article("a", "Henry double", None, "s", "Henry double\n\nArsenal won. Then more text here.")
    chunks = chunk_article(art)
    assert embedding_text(art, chunks[0]) == chunks[0].text
    other = chunks[0].__class__(id=1, article_id="a", ordinal=1, text="Then more.", start=0, end=10)
    assert embedding_text(art, other) == "Henry double. Then more."
