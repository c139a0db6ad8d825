"""Question analysis, alias expansion, the retrieval modes, fusion settings, the bridge hop,
date filters and the reranking hook, over the seeds with the hash embedder (milliseconds)."""

from __future__ import annotations


import pytest

from rag.errors import ConfigError
from rag.models import Article, Chunk, Passage, Query
from rag.retrieve import (
    RetrievalConfig,
    Retriever,
    alias_links,
    analyse,
    expand_aliases,
    question_kind,
    widen,
)


@pytest.mark.parametrize("question, expected", [
    ("How much did the Toffees pay?", "everton"),
    ("Did Spurs win?", "tottenham hotspur"),
    ("Who manages Los Blancos?", "real madrid"),
    ("Where did Die Werkself finish?", "bayer leverkusen"),
    ("Who are the Red Devils playing?", "manchester united"),
    ("Who scored for Boro?", "middlesbrough"),
    ("Did the Hammers lose?", "west ham united"),
    ("Who is the Eastlands club's keeper?", "manchester city"),
])
def test_nicknames_expand_to_their_club(question, expected):
    assert expected in expand_aliases(question)


def test_club_names_expand_to_their_nicknames_only_when_asked():
    assert expand_aliases("Who did Arsenal sign?") == []
    assert "gunners" in expand_aliases("Who did Arsenal sign?", reverse=True)
    assert analyse("Did the Toffees win?").expanded == ["everton"]


def test_names_that_belong_to_several_clubs_do_not_expand():
    assert expand_aliases("Did United win?") == []  # Manchester, Newcastle, Leeds, West Ham...
    assert expand_aliases("Did City win?") == []


def test_alias_links_carry_the_other_names():
    links = {link.said: link.means for link in alias_links("How much did the Gunners pay?")}
    assert "arsenal" in links["the gunners"] and "highbury" in links["the gunners"]


@pytest.mark.parametrize("question, kind", [
    ("When does Alonso's contract expire?", "when"),
    ("How many games did he play?", "how_many"),
    ("Who is the coach?", "who"),
    ("Which club did he join?", "which"),
    ("Where did they finish?", "where"),
    ("What was the score?", "score"),
    ("What is total football?", "what"),
    ("Tell me about Alonso", "other"),
    ("After how many minutes did he come off the bench?", "how_many"),  # an opening preposition
    ("In which year was the Home International series done away with?", "when"),
    ("Against which club did he score his first goal?", "which"),
    ("How many goals did he score?", "how_many"),
])
def test_question_kind(question, kind):
    assert question_kind(question) == kind


def test_config_rejects_bad_settings():
    with pytest.raises(ConfigError, match="retrieval mode 'fuzzy'"):
        RetrievalConfig(mode="fuzzy")
    with pytest.raises(ConfigError, match="depth=0"):
        RetrievalConfig(depth=0)


@pytest.mark.parametrize("mode", ["hybrid", "rrf", "dense", "bm25"])
def test_every_mode_returns_ranked_passages(fake_assistant, mode):
    fake_assistant.retriever.config = RetrievalConfig(mode=mode)
    ps = fake_assistant.retrieve("How many games did Alonso play for Real Madrid?", top_k=4)
    assert 1 <= len(ps) <= 4
    assert [p.score for p in ps] == sorted((p.score for p in ps), reverse=True)
    if mode == "dense":
        assert all(p.lexical_rank is None and p.dense_rank is not None for p in ps)
    if mode == "bm25":
        assert all(p.dense_rank is None and p.lexical_rank is not None for p in ps)


def test_per_article_cap(fake_assistant):
    fake_assistant.retriever.config = RetrievalConfig(per_article=1)
    ps = fake_assistant.retrieve("Alonso Leverkusen Real Madrid", top_k=2)
    assert len({p.article.id for p in ps}) == len(ps) == 2  # one passage from each seed article
    uncapped = RetrievalConfig(per_article=0)
    fake_assistant.retriever.config = uncapped
    top2 = fake_assistant.retrieve("Alonso Leverkusen Real Madrid", top_k=2)
    assert len(top2) == 2
    # with too few articles for the cap, the rest is filled in rank order
    fake_assistant.retriever.config = RetrievalConfig(per_article=1)
    five = fake_assistant.retrieve("Alonso Leverkusen Real Madrid", top_k=5)
    fake_assistant.retriever.config = uncapped
    assert [p.chunk.id for p in five] == [p.chunk.id for p in fake_assistant.retrieve("Alonso Leverkusen Real Madrid", top_k=5)]


def test_rarity_weights_come_from_the_index(fake_assistant):
    fake_assistant.articles()  # builds the seeds index on first use
    q = fake_assistant.retriever.analyse("Did Alonso mention Osasuna or zzyzx?")
    assert q.rarity["alonso"] < q.rarity["osasuna"]  # Alonso is in every passage, Osasuna in one
    assert q.rarity["zzyzx"] == 0.5  # in no passage: neutral


def test_date_filters_in_ask(fake_assistant):
    dated = fake_assistant.retrieve("Alonso Real Madrid", top_k=5, since="2023-07-01")
    assert dated and all(p.article.date and p.article.date >= "2023-07-01" for p in dated)
    answer = fake_assistant.ask("How many games did Alonso play for Real Madrid?", since="2023-01-01",
                                until="2023-12-31")
    assert all(c.date == "2023-07-25" for c in answer.citations)
    assert all(p.article.date == "2023-07-25" for p in answer.passages)
    none = fake_assistant.ask("How many games did Alonso play for Real Madrid?", until="2020-01-01")
    assert none.abstained and none.passages == []
    with pytest.raises(ConfigError, match="since 2024-01-01 is after until 2023-01-01"):
        fake_assistant.ask("Who?", since="2024-01-01", until="2023-01-01")
    with pytest.raises(ConfigError, match="'last week' is not a date"):
        fake_assistant.ask("Who?", since="last week")


class _ReverseReranker:
    """Stands in for a cross-encoder: reverses the fused order."""

    candidates = 4

    def __init__(self) -> None:
        self.seen: list[int] = []

    def rerank(self, query: Query, passages, top_k: int):
        self.seen.append(len(passages))
        return list(reversed(passages))[:top_k]


def test_reranker_reorders_a_larger_pool(fake_assistant):
    question = "How many games did Alonso play for Real Madrid?"
    unwidened = RetrievalConfig(context_words=0)  # widening would merge the seeds' passages
    fake_assistant.retriever.config = unwidened
    pool = fake_assistant.retrieve(question, top_k=4)
    rr = _ReverseReranker()
    fake_assistant.retriever = Retriever(fake_assistant.store, fake_assistant.embedder, unwidened, reranker=rr)
    got = fake_assistant.retrieve(question, top_k=2)
    assert rr.seen == [4]
    assert [p.chunk.id for p in got] == [p.chunk.id for p in reversed(pool)][:2]


def test_a_rare_name_beats_words_every_article_has(tmp_path, fake_embedder):
    """Template articles: "fee" and "Zandor" are in every one, only the player number tells them
    apart. BM25 scores the common words ~0, and those accidental ranks must not outvote it."""
    from rag import Assistant

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for i in range(40):
        (corpus / f"signing-{i:03d}.txt").write_text(
            f"Riverside sign Player{i:03d} Zandor\n\nRiverside Rovers have signed Player{i:03d} Zandor from "
            f"Lakeside Athletic. The fee for Player{i:03d} Zandor was reported to be {i + 1} million pounds.\n")
    a = Assistant(tmp_path / "idx", embedder=fake_embedder, seed=False, quiet=True)
    a.add([corpus])
    for n in (7, 23, 38):
        answer = a.ask(f"How much was the fee for Player{n:03d} Zandor?")
        assert answer.passages[0].article.id == f"signing-{n:03d}"
        assert answer.short_answer == f"{n + 1} million pounds"
    a.close()


@pytest.mark.parametrize("a, b", [
    ("friendly", "friendlies"), ("injury", "injuries"), ("city", "cities"), ("play", "played"),
    ("referee", "refereed"), ("score", "scored"), ("pay", "paid"), ("deflection", "deflected"),
])
def test_inflections_share_a_stem(a, b):
    from rag.text import stem

    assert stem(a) == stem(b)


def _passage(article, start: int, end: int, cid: int = 1) -> Passage:
    ch = Chunk(id=cid, article_id=article.id, ordinal=0, text=article.text[start:end], start=start, end=end)
    return Passage(chunk=ch, article=article, score=1.0)


def test_widen_adds_whole_sentences_around_a_passage_and_merges_overlaps():
    sents = [f"Sentence number {i} says word{i} here." for i in range(12)]
    text = " ".join(sents)
    art = Article(id="a", title="T", date=None, source="a.txt", text=text)
    starts = [text.index(s) for s in sents]
    p = _passage(art, starts[5], starts[6] + len(sents[6]))
    (w,) = widen([p], 10)  # two 5-word sentences each side
    assert w.chunk.text == text[starts[3]: starts[8] + len(sents[8])]
    assert w.chunk.text == art.text[w.chunk.start: w.chunk.end]
    near = _passage(art, starts[9], starts[9] + len(sents[9]), cid=2)  # overlaps p once widened
    far = _passage(Article(id="b", title="U", date=None, source="b.txt", text=text), 0, len(sents[0]), cid=3)
    merged = widen([p, near, far], 10)
    assert [m.chunk.id for m in merged] == [1, 3]
    assert merged[0].chunk.start == starts[3] and merged[0].chunk.end == starts[11] + len(sents[11])
    assert widen([p], 0)[0].chunk.text == p.chunk.text
