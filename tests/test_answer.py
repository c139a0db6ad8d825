"""The extractive answerer's stages on hand-made passages: question analysis, typed spans,
candidate features, the fitted models, and how an answer is put together (two hops, dated
sources that disagree, agreeing sources, yes/no, honest uncertainty)."""

from __future__ import annotations

import json

import pytest

from rag.answer import ANSWER_FEATURES, UNSURE_TEXT, ExtractiveAnswerer
from rag.features import SENTENCE_FEATURES, candidates
from rag.models import Article, Chunk, Passage
from rag.question import description, frame, wanted
from rag.ranker import LinearModel, Ranker, default_ranker
from rag.retrieve import analyse
from rag.spans import SPAN_FEATURES, entity_type, spans


def _article(aid: str, text: str, date: str | None = None) -> Article:
    title = text.split("\n", 1)[0]
    return Article(id=aid, title=title, date=date, source=f"/corpus/{aid}.txt", text=text)


def _passages(*articles: Article) -> list[Passage]:
    out = []
    for i, a in enumerate(articles):
        out.append(Passage(chunk=Chunk(id=i, article_id=a.id, ordinal=0, text=a.text, start=0, end=len(a.text)),
                           article=a, score=1.0 / (i + 1)))
    return out


def ask(question: str, *articles: Article, **kw):
    return ExtractiveAnswerer(**kw).answer(analyse(question), _passages(*articles))


# ---------------------------------------------------------------- question analysis


@pytest.mark.parametrize("question, want", [
    ("When did Ronaldo join Manchester United?", "date"),
    ("How much did Arsenal pay for Reyes?", "money"),
    ("How old is Xabi Alonso?", "age"),
    ("How long is the deal Hoddle signed?", "duration"),
    ("How many goals did Hamm score?", "number"),
    ("What was the attendance at Highbury?", "number"),
    ("What was the score at Anfield?", "score"),
    ("Where did Sociedad sit in the table?", "position"),
    ("Who scored the winner?", "person"),
    ("Who did Chelsea beat in the final?", "club"),
    ("Which Blackburn midfielder's challenge broke Robben's foot?", "person"),
    ("Which French side knocked Rangers out?", "club"),
    ("Against which country did Giggs win his first cap?", "country"),
    ("At which hotel did the squad stay?", "place"),
    ("Which bookmaker paid out?", "org"),
    ("What was Michels called in his homeland?", "quote"),
    ("Which Premier League rule was breached?", "name"),
    ("Who was the Livingston manager when Hearts beat them?", "person"),
    ("Who won the 2005 Champions League final?", "club"),
    ("Why did Terry withdraw from the squad?", "reason"),
    ("Did Chelsea win the Carling Cup?", "yes_no"),
])
def test_what_a_question_wants(question, want):
    assert wanted(analyse(question))[0] == want


def test_nicknames_in_the_question_are_linked_to_the_club():
    fr = frame(analyse("How much did the Gunners pay Seville for Reyes?"))
    assert "arsenal" in fr.own_names and "gunners" in fr.own_names


@pytest.mark.parametrize("question, focus", [
    ("When did Ruud van Nistelrooy last play for United?", "play"),
    ("From which club had Chelsea originally signed him?", "sign"),
    ("How many top-flight goals had Fowler scored?", "goal"),
    ("Against which club did Graham Stuart's late winner keep the Toffees up?", "keep"),
])
def test_the_focus_word_skips_adverbs_and_modifiers(question, focus):
    assert frame(analyse(question)).focus == focus


@pytest.mark.parametrize("question, clause", [
    ("On what date is Middlesbrough's away tie against the side that knocked out Feyenoord?", "knocked out Feyenoord"),
    ("After how many minutes did Euro 2004's leading scorer come off the bench?", "Euro 2004's leading scorer"),
    ("Who scored the winner for Chelsea?", None),
])
def test_the_description_in_a_question(question, clause):
    assert description(question) == clause


# ---------------------------------------------------------------- spans


def test_names_are_typed_by_the_words_before_them():
    assert entity_type("Yeading", "a trip to Ryman Premier League leaders ") == "side?"
    assert entity_type("Yeading", "a goal by ") == "name"
    assert entity_type("Craig Bryson", "The home side's ") == "name"  # the side's player, not a side


def test_question_names_are_never_a_span_and_codes_are_names():
    fr = frame(analyse("Who did Xabi Alonso succeed as Leverkusen coach?"))
    text = "Xabi Alonso has won 17 games since succeeding Gerardo Seoane at Leverkusen."
    assert [s.text for s in spans(fr, text, 0, "")] == ["Gerardo Seoane"]
    fr = frame(analyse("Which Premier League rule would Chelsea have breached?"))
    assert "K3" in [s.text for s in spans(fr, "It would be in breach of Premier League rule K3.", 0, "")]


def test_a_stadium_question_gets_no_club_spans():
    fr = frame(analyse("Which stadium hosted the final of Women's Euro 2005?"))
    found = [s.text for s in spans(fr, "Manchester United hosted the final at Ewood Park.", 0, "")]
    assert "Manchester United" not in found and "Ewood Park" in found


# ---------------------------------------------------------------- features


def test_features_are_complete_and_relative_to_the_best_sentence():
    art = _article("r", "Madrid\n\nHis men won the Copa del Rey by beating Osasuna 2-1 on May 6. It rained in Madrid.")
    fr = frame(analyse("Which team did Real Madrid beat to win the Copa del Rey?"))
    cands = candidates(fr, "Which team did Real Madrid beat to win the Copa del Rey?", _passages(art))
    assert cands and all(len(c.features) == len(SENTENCE_FEATURES) for c in cands)
    gap = SENTENCE_FEATURES.index("coverage_gap")
    assert max(c.features[gap] for c in cands) == 0.0 and min(c.features[gap] for c in cands) < 0.0


def test_an_article_without_the_questions_number_is_flagged():
    question = "Who won the 2005 Champions League final?"
    final = _article("cl", "Deschamps honours\n\nDidier Deschamps won the Champions League in 1993 with Marseille.")
    dated = Article(id="d", title="Liverpool triumph", date="2005-05-26", source="/corpus/d.txt",
                    text="Liverpool triumph\n\nLiverpool won the Champions League final on penalties in Istanbul.")
    fr = frame(analyse(question))
    flag = SENTENCE_FEATURES.index("numbers_missing")
    by_article = {c.passage.article.id: c.features[flag] for c in candidates(fr, question, _passages(final, dated))}
    assert by_article == {"cl": 1.0, "d": 0.0}  # the article's date gives the year


# ---------------------------------------------------------------- the fitted models


def test_a_linear_model_is_a_logistic_of_standardised_features():
    m = LinearModel(("a", "b"), (2.0, -1.0), 0.5, (1.0, 0.0), (2.0, 1.0))
    z = 0.5 + 2.0 * (3.0 - 1.0) / 2.0 - 1.0 * 1.0
    assert m.probability([3.0, 1.0]) == pytest.approx(1 / (1 + 2.718281828459045 ** -z))
    with pytest.raises(ValueError, match="expected 2 features"):
        m.probability([1.0])
    with pytest.raises(ValueError, match="one weight"):
        LinearModel.from_dict({"features": ["a"], "weights": [1.0, 2.0], "bias": 0, "mean": [0], "scale": [1]})


def test_the_shipped_models_match_the_features_of_the_code(tmp_path):
    r = default_ranker()
    assert r.sentence.features == SENTENCE_FEATURES
    assert r.span.features == tuple(SPAN_FEATURES) + ("sentence",)
    assert r.answer.features == ANSWER_FEATURES
    assert 0.0 < r.threshold < 1.0
    raw = {"sentence": r.sentence.to_dict(), "span": r.span.to_dict(), "answer": r.answer.to_dict(), "threshold": 0.3}
    (tmp_path / "r.json").write_text(json.dumps(raw))
    assert Ranker.load(tmp_path / "r.json").threshold == 0.3


# ---------------------------------------------------------------- answers

LEAGUE_CUP = _article("010", "Chelsea win Carling Cup\n\n"
                             "John Arne Riise scored the quickest-ever goal in a League Cup final after 45 seconds. "
                             "Chelsea came back to win 3-2 after extra time in Cardiff.")
TRANSFER = _article("060", "Reyes homesick\n\nJose Antonio Reyes is homesick, his agent says. "
                           "The striker joined the Gunners from Seville for £17m at the start of 2004.")


def test_who_question_leads_with_the_person_and_quotes_the_sentence():
    a = ask("Who scored the quickest-ever goal in a League Cup final?", LEAGUE_CUP)
    assert not a.abstained and a.confidence >= default_ranker().threshold
    assert a.short_answer == "John Arne Riise" and a.text.startswith("John Arne Riise [1].")
    c = a.citations[0]
    assert LEAGUE_CUP.text[c.start:c.end] == c.quote and "quickest-ever" in c.quote


def test_unsure_answers_show_the_closest_evidence_cited_and_abstain():
    a = ask("When was Jose Mourinho born?", LEAGUE_CUP, TRANSFER)
    assert a.abstained and a.confidence < default_ranker().threshold
    assert a.text.startswith(UNSURE_TEXT) and a.text.endswith("[1]") and len(a.citations) == 1
    c = a.citations[0]
    assert {"010": LEAGUE_CUP, "060": TRANSFER}[c.article_id].text[c.start:c.end] == c.quote
    sure = ask("When was Jose Mourinho born?", LEAGUE_CUP, TRANSFER, threshold=0.0)
    assert not sure.abstained and sure.confidence == a.confidence  # the threshold alone decides


def test_no_passages_is_a_plain_abstention():
    a = ExtractiveAnswerer().answer(analyse("Who scored?"), [])
    assert a.abstained and a.citations == [] and a.confidence == 0.0 and "don't say" in a.text


def test_two_hops_lead_with_the_answer_and_cite_the_bridge():
    scorer = _article("249", "Liverpool edge Charlton\n\n"
                             "Fernando Morientes scored his first Premiership goal in Liverpool's 2-1 win at Charlton.")
    fee = _article("252", "Morientes deal done\n\nLiverpool have paid Real Madrid £6.3m for Morientes, "
                          "who signed a three-and-a-half-year contract.")
    a = ask("How much did Liverpool pay for the striker who scored his first Premiership goal in their 2-1 win "
            "at Charlton?", scorer, fee, threshold=0.0)
    assert a.short_answer == "£6.3m"
    assert [c.article_id for c in a.citations] == ["252", "249"]


def test_disagreeing_dated_sources_newer_leads_and_both_are_shown():
    old = _article("a", "Alonso contract\n\nXabi Alonso's contract at Leverkusen expires in June 2024.", "2023-01-10")
    new = _article("b", "Alonso extends\n\nXabi Alonso's contract at Leverkusen expires in June 2026.", "2024-03-01")
    a = ask("When does Xabi Alonso's contract at Leverkusen expire?", old, new, threshold=0.0)
    assert a.short_answer == "June 2026"
    assert [c.article_id for c in a.citations] == ["b", "a"]
    assert "(2024-03-01) [1]" in a.text and "(2023-01-10) [2]" in a.text


def test_agreeing_sources_share_the_marker():
    one = _article("a", "Deal\n\nReyes joined Arsenal from Seville for £17m.", "2004-01-01")
    two = _article("b", "Reyes\n\nArsenal bought Reyes from Seville for £17m.", "2004-02-01")
    a = ask("How much did Arsenal pay Seville for Reyes?", one, two, threshold=0.0)
    assert a.short_answer == "£17m" and a.text.startswith("£17m [1][2].")


def test_yes_no_questions_lead_with_yes_or_no():
    assert ask("Did Chelsea come back to win after extra time in Cardiff?", LEAGUE_CUP, threshold=0.0).short_answer == "Yes"
    assert ask("Did Chelsea not come back to win after extra time in Cardiff?", LEAGUE_CUP,
               threshold=0.0).short_answer == "No"
