"""The chat page in a real browser: Debian's chromium driven by playwright, on a copy of the seeds.

One server and one browser serve the whole module; the tests run in order as one visit (ask,
follow a citation, upload, ask about the upload, follow up, a second visitor, remove) and save a
screenshot of each step under their tmp_path. Waits are on selectors, never on sleeps.
"""

from __future__ import annotations

import shutil
import socket

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.browser]

from ui.screenshot import launch_chromium  # noqa: E402

TIMEOUT_MS = 120_000  # a generous bound on a loaded 2-core machine; waits end as soon as the page is ready
ARTICLE = """date 2024-03-02
Harbour Athletic sign striker Lumo Verrant from Vale Rovers

Harbour Athletic have completed the signing of striker Lumo Verrant from Vale Rovers for a club record fee of 41 million euros. Verrant scored 27 goals for Vale Rovers last season.

The 23-year-old has signed a five-year deal, and Verrant's contract with Harbour Athletic runs until June 2029. Fans greeted him with a banner reading <img src=x onerror="window.__pwned=1"> and <script>window.__pwned=2</script> at the stadium.

Harbour Athletic manager Odile Brenn said the striker was her first choice.
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def chat_server(seeds_index_dir, real_embedder, tmp_path_factory):
    """The page served by ``ui.serve`` on a free localhost port, over a private copy of the seeds index."""
    from rag import Assistant
    from ui import serve

    index = tmp_path_factory.mktemp("ui") / "index"
    shutil.copytree(seeds_index_dir, index)
    assistant = Assistant(index, embedder=real_embedder, seed=False, quiet=True)
    port = _free_port()
    demo = serve(assistant, host="127.0.0.1", port=port, block=False, quiet=True)
    yield f"http://127.0.0.1:{port}/", demo.rag_backend
    demo.close()
    assistant.close()


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = launch_chromium(p)
        yield b
        b.close()


@pytest.fixture(scope="module")
def visit(browser, chat_server):
    """One visitor's page, plus every request it made that did not go to the app itself."""
    url, _ = chat_server
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    elsewhere: list[str] = []
    page.on("request", lambda r: elsewhere.append(r.url)
            if not r.url.startswith((url, "data:", "blob:")) else None)
    page.goto(url)
    page.locator("#question textarea").wait_for()
    yield page, elsewhere
    context.close()


def ask(page, question: str, turn: int) -> str:
    """Types a question, waits for that turn's sources, returns the answer's text."""
    page.locator("#question textarea").fill(question)
    page.locator("#ask").click()
    page.locator(f"#sources #turn-{turn}").wait_for()
    return page.locator('#chat [data-testid="bot"]').last.inner_text()


def bot_messages(page) -> list[str]:
    return page.locator('#chat [data-testid="bot"]').all_inner_texts()


def test_answer_shows_cited_source_cards(visit, tmp_path):
    page, _ = visit
    text = ask(page, "When does Alonso's contract expire?", turn=1)
    page.screenshot(path=tmp_path / "1-answer.png")
    assert "June 2024" in text
    card = page.locator("#sources .src-card", has=page.locator(".src-title", has_text="Bayer Leverkusen manager Xabi Alonso"))
    assert card.count() == 1
    assert card.locator(".src-title").inner_text().startswith("Bayer Leverkusen manager Xabi Alonso")
    assert card.locator(".src-date").inner_text() == "2023-07-25"
    assert "seeds" in card.locator(".src-file").inner_text() and "002_" in card.locator(".src-file").inner_text()
    assert "June 2024" in card.locator("mark.quote").inner_text()
    # both seed articles are cited here, so no retrieved passage is left uncited
    cited = page.locator("#sources .turn").first.locator(".src-card").count()
    assert cited == 2 and page.locator("#sources .turn").first.locator("details.uncited").count() == 0


def test_clicking_a_citation_brings_its_card_into_view(visit, tmp_path):
    page, _ = visit
    card = page.locator("#src-1-1")
    page.evaluate("document.querySelector('#src-1-1').classList.remove('active')")
    page.locator('#chat a.cite[href="#src-1-1"]').first.click()
    page.wait_for_function("document.querySelector('#src-1-1').classList.contains('active')")
    assert card.is_visible()
    assert card.bounding_box() is not None
    page.mouse.move(0, 0)  # leave the link, so that hovering it again is a new mouseover
    page.evaluate("document.querySelector('#src-1-1').classList.remove('active')")
    page.locator('#chat a.cite[href="#src-1-1"]').first.hover()
    page.wait_for_function("document.querySelector('#src-1-1').classList.contains('active')")
    page.screenshot(path=tmp_path / "2-citation.png")


def test_upload_an_article(visit, chat_server, tmp_path):
    page, _ = visit
    _, backend = chat_server
    src = tmp_path / "harbour-athletic.txt"
    src.write_text(ARTICLE, encoding="utf-8")
    page.get_by_role("tab", name="Articles").click()
    page.locator('#upload input[type="file"]').set_input_files(str(src))
    page.locator("#upload").get_by_text("harbour-athletic.txt").first.wait_for()
    page.locator("#add").click()
    row = page.locator("#ingest-report tr.ingest-added")
    row.wait_for()
    page.screenshot(path=tmp_path / "3-upload.png")
    assert "uploads/harbour-athletic.txt" in row.inner_text()
    assert "1 added, 0 updated, 0 skipped, 0 failed" in page.locator(".ingest-summary").inner_text()
    page.locator("#articles").get_by_text("Harbour Athletic sign striker Lumo Verrant").first.wait_for()
    assert (backend.uploads_dir / "harbour-athletic.txt").read_text(encoding="utf-8") == ARTICLE


def test_question_only_the_upload_answers_is_cited_from_it(visit, tmp_path):
    page, _ = visit
    page.get_by_role("tab", name="Chat").click()
    text = ask(page, "How much did Harbour Athletic pay for Lumo Verrant?", turn=2)
    page.screenshot(path=tmp_path / "4-uploaded-answer.png")
    assert "41 million" in text
    card = page.locator("#src-2-1")
    assert card.locator(".src-title").inner_text() == "Harbour Athletic sign striker Lumo Verrant from Vale Rovers"
    assert card.locator(".src-date").inner_text() == "2024-03-02"
    assert card.locator(".src-file").inner_text() == "uploads/harbour-athletic.txt"
    assert "41 million euros" in card.locator("mark.quote").inner_text()
    assert page.locator("#sources details.earlier #turn-1").count() == 1  # the first answer, folded


def test_follow_up_uses_the_conversation_and_article_html_stays_text(visit, tmp_path):
    page, _ = visit
    text = ask(page, "When does his contract expire?", turn=3)
    page.screenshot(path=tmp_path / "5-follow-up.png")
    assert "June 2029" in text
    assert "Lumo Verrant" in page.locator("#turn-3 .turn-rq").inner_text()  # the follow-up, filled in
    passage = page.locator("#src-3-1 .src-passage")
    assert "June 2029" in passage.locator("mark.quote").inner_text()
    assert '<script>window.__pwned=2</script>' in passage.inner_text()  # shown, not run
    assert page.locator("#sources img, #sources script, #chat .message script").count() == 0
    assert page.evaluate("window.__pwned") is None
    assert len(bot_messages(page)) == 3


def test_a_second_visitor_clicks_an_example_in_a_conversation_of_their_own(browser, chat_server, visit, tmp_path):
    page, _ = visit
    url, _ = chat_server
    other = browser.new_context(viewport={"width": 1200, "height": 900})
    try:
        p2 = other.new_page()
        p2.set_default_timeout(TIMEOUT_MS)
        p2.goto(url)
        p2.locator("#question textarea").wait_for()
        assert bot_messages(p2) == []
        p2.locator("#examples").get_by_role("button", name="Who is the caretaker manager of Brazil?").click()
        p2.locator("#sources #turn-1").wait_for()
        p2.screenshot(path=tmp_path / "6-second-visitor.png")
        assert "Diniz" in bot_messages(p2)[-1] and len(bot_messages(p2)) == 1
    finally:
        other.close()
    assert len(bot_messages(page)) == 3 and "Diniz" not in " ".join(bot_messages(page))


def test_clearing_the_chat_starts_a_new_conversation(visit, tmp_path):
    page, _ = visit
    page.locator('#chat button[aria-label="Clear"]').click()
    page.locator("#sources .rag-sources.empty").wait_for()
    assert bot_messages(page) == []
    ask(page, "When does his contract expire?", turn=1)  # turns count from 1 again
    page.screenshot(path=tmp_path / "7-new-conversation.png")
    assert page.locator("#turn-1 .turn-rq").count() == 0  # no history: searched as asked
    assert len(bot_messages(page)) == 1


def test_remove_the_uploaded_article(visit, chat_server, tmp_path):
    page, _ = visit
    _, backend = chat_server
    page.get_by_role("tab", name="Articles").click()
    page.locator("#remove-pick input").click()
    page.get_by_role("option", name="Harbour Athletic sign striker").click()
    page.locator("#remove").click()
    page.locator("#remove-status").get_by_text("Removed").wait_for()
    page.screenshot(path=tmp_path / "8-removed.png")
    assert page.locator("#articles").get_by_text("Harbour Athletic sign striker").count() == 0
    assert not (backend.uploads_dir / "harbour-athletic.txt").exists()
    assert len(backend.articles()) == 2


def test_settings_show_what_answers_and_check_the_date_range(visit, tmp_path):
    page, _ = visit
    page.get_by_role("tab", name="Chat").click()
    page.locator("#settings").get_by_text("Settings").first.click()
    info = page.locator("#settings-info")
    info.get_by_text("all-MiniLM-L6-v2").wait_for()
    assert "none configured" in info.inner_text()
    assert page.get_by_label("LLM (local GGUF model)").is_disabled()
    page.locator("#since textarea, #since input").first.fill("soon")
    page.locator("#question textarea").fill("When does Alonso's contract expire?")
    page.locator("#ask").click()
    page.locator('#chat [data-testid="bot"]').last.get_by_text("is not a date").wait_for()
    page.screenshot(path=tmp_path / "9-settings.png")
    assert "since: 'soon' is not a date" in bot_messages(page)[-1]
    page.locator("#since textarea, #since input").first.fill("")


def test_the_page_fetched_nothing_from_elsewhere(visit):
    _, elsewhere = visit
    assert elsewhere == []


# ------------------------------------------------------------------ with a (tiny, real) LLM


@pytest.fixture(scope="module")
def llm_page(browser, seeds_index_dir, real_embedder, tmp_path_factory):
    """The page over the seeds with a tiny GGUF that always claims something the sources don't say."""
    from rag import Assistant
    from rag.llm import LLMSettings
    from tests.tiny_gguf import build_tiny_gguf
    from ui import serve

    d = tmp_path_factory.mktemp("ui-llm")
    model = build_tiny_gguf(d / "chelsea.gguf", script=("Chelsea", " won", " the", " league", " [", "1", "]", "."))
    shutil.copytree(seeds_index_dir, d / "index")
    assistant = Assistant(d / "index", embedder=real_embedder, seed=False, quiet=True, model=model,
                          llm=LLMSettings(n_threads=1, max_tokens=64))
    port = _free_port()
    demo = serve(assistant, host="127.0.0.1", port=port, block=False, quiet=True)
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    page.goto(f"http://127.0.0.1:{port}/")
    page.locator("#question textarea").wait_for()
    yield page
    context.close()
    demo.close()
    assistant.close()


@pytest.mark.llm
def test_llm_answer_with_an_unsupported_claim_is_flagged(llm_page, tmp_path):
    page = llm_page
    page.locator("#settings").get_by_text("Settings").first.click()
    page.locator("#settings-info").get_by_text("chelsea.gguf").wait_for()
    assert page.get_by_label("LLM (local GGUF model)").is_checked()
    text = ask(page, "Who won the league?", turn=1)
    page.screenshot(path=tmp_path / "llm-1-unsupported.png")
    assert text.startswith("Chelsea won the league [1].")
    assert "Not supported by the cited sources" in text
    assert page.locator("#src-1-1.unsupported .src-flag").get_by_text("weak support").count() == 1
    assert "Chelsea won the league." in page.locator("#turn-1 .unsupported-claims").inner_text()


@pytest.mark.llm
def test_extractive_mode_can_be_chosen_when_a_model_is_configured(llm_page, tmp_path):
    page = llm_page
    page.get_by_label("Extractive (quotes the sources)").check()
    text = ask(page, "When does Alonso's contract expire?", turn=2)
    page.screenshot(path=tmp_path / "llm-2-extractive.png")
    assert "June 2024" in text and "Chelsea" not in text
