"""Unit tests of follow-up rewriting: the heuristic, the model path's acceptance rules, and
``ask(..., history=...)`` through the extractive Assistant (hash embedder, no model)."""

from __future__ import annotations

import pytest

from rag.errors import InputError
from rag.followup import (
    accept_rewrite,
    check_history,
    heuristic_rewrite,
    is_club,
    looks_like_follow_up,
    names,
    rewrite,
)
from rag.models import Answer

ALONSO_Q = "When does Alonso's contract expire?"
H = [(ALONSO_Q, "Alonso's contract expires in June 2024 [1].")]


@pytest.mark.parametrize("follow_up, expected", [
    ("And Ancelotti's?", "When does Ancelotti's contract expire?"),
    ("What about Carlo Ancelotti?", "When does Carlo Ancelotti's contract expire?"),
    ("and  ancelotti's?", "When does ancelotti's contract expire?"),  # typed without a capital
    ("When does his contract expire?", "When does Alonso's contract expire?"),
    ("And in 2025?", "When does Alonso's contract expire in 2025?"),
    ("Why?", "Why? (When does Alonso's contract expire?)"),
    ("And?", ALONSO_Q),
])
def test_heuristic_carries_the_previous_question_over(follow_up: str, expected: str) -> None:
    assert heuristic_rewrite(follow_up, H) == expected


@pytest.mark.parametrize("follow_up, expected", [
    ("When does his contract expire?", "When does Xabi Alonso's contract expire?"),  # person from the answer
    ("How many games have they won?", "How many games have Leverkusen won?"),  # club from the question
    ("And Real Madrid?", "Who manages Real Madrid?"),  # club replaces club
    ("What about Arsenal?", "Who manages Arsenal?"),
])
def test_heuristic_resolves_by_kind(follow_up: str, expected: str) -> None:
    history = [("Who manages Leverkusen?", "Xabi Alonso manages Bayer Leverkusen [1].")]
    assert heuristic_rewrite(follow_up, history) == expected


def test_club_replaces_club_and_person_replaces_person() -> None:
    history = [("Did Alonso leave Real Madrid for Bayern Munich?", "Yes [1].")]
    assert heuristic_rewrite("And Liverpool?", history) == "Did Alonso leave Liverpool for Bayern Munich?"
    assert heuristic_rewrite("And Ancelotti?", history) == "Did Ancelotti leave Real Madrid for Bayern Munich?"


def test_the_latest_standalone_question_is_the_base() -> None:
    """A chain of follow-ups keeps working when the history holds Answers with retrieval_query."""
    prev = Answer(question="And Ancelotti's?", text="2024 [1].", citations=[], passages=[], abstained=False,
                  mode="extractive", retrieval_query="When does Ancelotti's contract expire?")
    r = rewrite("And Kroos's?", [H[0], ("And Ancelotti's?", prev)])
    assert r.standalone == "When does Kroos's contract expire?" and r.method == "heuristic"


@pytest.mark.parametrize("question, follow_up", [
    ("And Ancelotti's?", True),
    ("What about Real Madrid?", True),
    ("When does his contract expire?", True),
    ("Why?", True),
    ("When does Alonso's contract expire?", False),
    ("Who will replace Carlo Ancelotti at Real Madrid?", False),
])
def test_looks_like_follow_up(question: str, follow_up: bool) -> None:
    assert looks_like_follow_up(question) is follow_up


def test_standalone_questions_and_empty_history_are_left_alone() -> None:
    assert rewrite("Who will replace Carlo Ancelotti at Real Madrid?", H).method == "none"
    r = rewrite("And Ancelotti's?", [])
    assert (r.standalone, r.method) == ("And Ancelotti's?", "none")
    assert rewrite("And Ancelotti's?", None).method == "none"


def test_names_and_clubs() -> None:
    found = names("Who is Bayer Leverkusen's manager? And Xabi Alonso's?")
    assert [(n.text, n.possessive) for n in found] == [("Bayer Leverkusen", True), ("Xabi Alonso", True)]
    q = "Who is Bayer Leverkusen's manager?"
    assert q[found[0].start:found[0].end] == "Bayer Leverkusen"
    assert is_club("Leverkusen") and is_club("Real Madrid") and is_club("Los Blancos")
    assert not is_club("Alonso") and not is_club("Carlo Ancelotti")


def test_model_rewrite_is_used_when_it_keeps_the_names() -> None:
    calls = []

    def model(q, turns):
        calls.append((q, turns))
        return "  When does Carlo Ancelotti's contract\nexpire?  "

    r = rewrite("And Ancelotti's?", H, model)
    assert (r.standalone, r.method) == ("When does Carlo Ancelotti's contract expire?", "llm")
    assert calls == [("And Ancelotti's?", [(ALONSO_Q, H[0][1])])]


@pytest.mark.parametrize("reply", [
    "June 2024 [7].",  # not a question about Ancelotti: the tiny test model's script
    None,
    "",
    "When does Alonso's contract expire?",  # drops the follow-up's own name
    "What is Ancelotti's favourite colour?",  # shares nothing with the conversation
    "x" * 400,
])
def test_bad_model_rewrites_fall_back_to_the_heuristic(reply) -> None:
    r = rewrite("And Ancelotti's?", H, lambda q, turns: reply)
    assert (r.standalone, r.method) == ("When does Ancelotti's contract expire?", "heuristic")


def test_model_is_not_asked_for_standalone_questions() -> None:
    def model(q, turns):  # pragma: no cover - must not be called
        raise AssertionError("called")

    assert rewrite("Who will replace Carlo Ancelotti at Real Madrid?", H, model).method == "none"


def test_accept_rewrite() -> None:
    assert accept_rewrite("And Ancelotti's?", "When does Ancelotti's contract expire?", H)
    assert not accept_rewrite("And Ancelotti's?", "When does Ancelotti's contract\nexpire?", H)


@pytest.mark.parametrize("history, message", [
    ("When?", "got a string"),
    ([("only one",)], "item 0"),
    ([(1, "a")], "item 0"),
    ([H[0], "bad"], "item 1"),
])
def test_bad_history_is_an_input_error(history, message: str) -> None:
    with pytest.raises(InputError, match=message):
        check_history(history)


def test_ask_with_history_records_the_retrieval_query(fake_assistant) -> None:
    first = fake_assistant.ask(ALONSO_Q)
    assert first.retrieval_query == ALONSO_Q
    follow = fake_assistant.ask("And Ancelotti's?", history=[(ALONSO_Q, first)])
    assert follow.question == "And Ancelotti's?"
    assert follow.retrieval_query == "When does Ancelotti's contract expire?"
    assert follow.mode == "extractive"
    *pieces, final = list(fake_assistant.ask_stream("And Ancelotti's?", history=[(ALONSO_Q, first.text)]))
    assert final.retrieval_query == "When does Ancelotti's contract expire?"
    assert "".join(pieces) == final.text


def test_ask_rejects_bad_history(fake_assistant) -> None:
    with pytest.raises(InputError, match="history"):
        fake_assistant.ask("And Ancelotti's?", history="When does Alonso's contract expire?")
    with pytest.raises(InputError, match="empty"):
        fake_assistant.ask("  ", history=H)
