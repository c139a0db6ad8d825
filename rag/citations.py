"""Citations: numbered pointers to an exact sentence of an exact article.

Both answerers end here. A Citation always carries ``quote == article.text[start:end]`` (checked
on construction), and a support score that says how much of the claim's content the quote
covers, so an answer sentence that its source does not back can be flagged instead of trusted.
"""

from __future__ import annotations

from .chunk import Sentence, split_sentences
from .models import Article, Citation
from .text import STOPWORDS, QUESTION_WORDS, stem, tokens

SUPPORT_THRESHOLD = 0.5


def make_citation(n: int, article: Article, start: int, end: int, support: float = 1.0) -> Citation:
    """A Citation for ``article.text[start:end]``; offsets are validated, never trusted."""
    if not (0 <= start < end <= len(article.text)):
        raise ValueError(f"citation offsets {start}:{end} outside article {article.id}")
    return Citation(
        n=n, article_id=article.id, title=article.title, date=article.date, source=article.source,
        quote=article.text[start:end], start=start, end=end,
        supported=support >= SUPPORT_THRESHOLD, support=round(support, 3),
    )


def _content_stems(text: str) -> set[str]:
    out = set()
    for t in tokens(text):
        if t in STOPWORDS or t in QUESTION_WORDS:
            continue
        out.add(stem(t))
        if "-" in t:
            out.update(stem(p) for p in t.split("-") if p and p not in STOPWORDS)
    return out


def support(claim: str, evidence: str) -> float:
    """Share of the claim's content words (numbers counted twice) found in the evidence."""
    c = _content_stems(claim)
    if not c:
        return 1.0
    e = _content_stems(evidence)
    weight = {w: (2.0 if any(ch.isdigit() for ch in w) else 1.0) for w in c}
    total = sum(weight.values())
    return sum(weight[w] for w in c if w in e) / total


def best_sentence(claim: str, article: Article, within: tuple[int, int] | None = None) -> tuple[Sentence, float]:
    """The sentence of the article (or of a span of it) that best supports the claim."""
    start, end = within or (0, len(article.text))
    sentences = split_sentences(article.text[start:end], offset=start) or [
        Sentence(start, end, article.text[start:end])
    ]
    scored = [(support(claim, s.text), -i, s) for i, s in enumerate(sentences)]
    sc, _, s = max(scored, key=lambda t: (t[0], t[1]))
    return s, sc
