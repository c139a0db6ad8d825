"""Unit tests of checking a generated answer against its sources (no model needed)."""

from __future__ import annotations

import pytest

from rag.grounding import ground, is_abstention, split_claims
from rag.models import Article, Chunk, Passage
from rag.prompt import Source

OLD = Article(
    id="old", title="Alonso in contact with Madrid", date="2023-07-25", source="old.txt",
    text=("Bayer Leverkusen manager Xabi Alonso is in contact with Real Madrid. "
          "Alonso is currently serving as Leverkusen's manager with his contract expiring in June 2024. "
          "The 41-year-old led the German club to a sixth-placed finish last season."),
)
NEW = Article(
    id="new", title="Alonso stays", date=None, source="new.txt",
    text=("The Italian coach's contract expires in 2024. "
          "Alonso's contract with Leverkusen expires in 2024 which coincides with Ancelotti's deal. "
          "He has overseen 17 wins in 34 games."),
)


def src(n: int, article: Article, start: int = 0, end: int | None = None) -> Source:
    end = len(article.text) if end is None else end
    chunk = Chunk(id=n, article_id=article.id, ordinal=0, text=article.text[start:end], start=start, end=end)
    return Source(n, Passage(chunk=chunk, article=article, score=1.0), start, end)


SOURCES = [src(1, OLD), src(2, NEW)]


def test_split_claims() -> None:
    claims = split_claims("Alonso's deal ends in June 2024 [1][2]. He won 17 games. [2] Nothing else [9].")
    assert [(c.text, c.markers) for c in claims] == [
        ("Alonso's deal ends in June 2024.", (1, 2)),
        ("He won 17 games.", (2,)),  # a marker opening a sentence belongs to the one before
        ("Nothing else.", (9,)),
    ]
    assert split_claims("") == []


def test_citation_quotes_are_exact_and_support_the_claim() -> None:
    g = ground("Alonso's contract expires in June 2024 [1].", SOURCES, "When does Alonso's contract expire?")
    assert not g.abstained and g.unsupported == []
    (c,) = g.citations
    assert (c.n, c.article_id, c.title, c.date, c.source) == (1, "old", OLD.title, "2023-07-25", "old.txt")
    assert c.quote == OLD.text[c.start:c.end]
    assert "June 2024" in c.quote and c.supported and c.support >= 0.9


def test_tie_between_quotes_goes_to_the_question() -> None:
    """"2024" is in two sentences of NEW; the one about Alonso's contract is quoted."""
    g = ground("2024 [2].", SOURCES, "When does Alonso's contract expire?")
    (c,) = g.citations
    assert c.quote.startswith("Alonso's contract with Leverkusen")
    assert c.quote == NEW.text[c.start:c.end]


def test_quotes_come_only_from_the_span_the_model_saw() -> None:
    cut = NEW.text.index("He has")
    sources = [src(1, NEW, 0, cut)]
    g = ground("He has overseen 17 wins in 34 games [1].", sources)
    (c,) = g.citations
    assert c.end <= cut
    assert not c.supported and g.unsupported == ["He has overseen 17 wins in 34 games."]


def test_weak_support_uncited_and_unknown_sources_are_flagged() -> None:
    text = ("Alonso's contract expires in June 2024 [1]. Chelsea won the Champions League [2]. "
            "Alonso will join Liverpool. Xabi Alonso is in contact with Real Madrid [5].")
    g = ground(text, SOURCES)
    assert g.unsupported == [
        "Chelsea won the Champions League.",
        "Alonso will join Liverpool.",
        "Xabi Alonso is in contact with Real Madrid.",
    ]
    by_n = {c.n: c for c in g.citations}
    assert set(by_n) == {1, 2}  # [5] names no source: no citation, the sentence is flagged
    assert by_n[1].supported and not by_n[2].supported
    for c in g.citations:
        article = OLD if c.article_id == "old" else NEW
        assert c.quote == article.text[c.start:c.end]


def test_claim_spread_over_two_sources_is_supported() -> None:
    g = ground("Alonso's contract expires in June 2024, and he has overseen 17 wins in 34 games [1][2].", SOURCES)
    assert g.unsupported == []
    assert [c.n for c in g.citations] == [1, 2]


def test_same_sentence_cited_twice_gives_one_citation() -> None:
    g = ground("The contract expires in June 2024 [1]. It ends in June 2024 [1].", SOURCES)
    assert len(g.citations) == 1


@pytest.mark.parametrize("text", [
    "The sources don't say.",
    "The sources don't say when the contract expires.",
    "The articles do not mention his salary.",
    "That is not mentioned in the sources.",
    "I don't know.",
])
def test_abstention(text: str) -> None:
    assert is_abstention(text)
    g = ground(text, SOURCES)
    assert g.abstained and g.citations == [] and g.unsupported == []


def test_abstention_with_a_cited_answer_is_not_an_abstention() -> None:
    g = ground("The sources don't say the day, but the contract expires in June 2024 [1].", SOURCES)
    assert not g.abstained and g.citations


@pytest.mark.parametrize("text", ["Alonso's contract expires in June 2024.", "June 2024 [1]."])
def test_answers_are_not_abstentions(text: str) -> None:
    assert not is_abstention(text)
