"""The Feeds section of the Articles tab in a real browser (Debian's chromium through playwright).

The chat runs over a copy of the real seeds index; the feeds and their pages come from an HTTP
server on 127.0.0.1 that the test starts. One visit, in order: follow a feed, see its articles,
refuse a broken one, refresh now (nothing new: 304), ask a question only a feed page answers,
remove the feed with its articles. Waits are on selectors, never on sleeps.
"""

from __future__ import annotations

import shutil
import socket

import pytest

from tests.webserver import WebServer

pytestmark = [pytest.mark.integration, pytest.mark.browser]

from ui.screenshot import launch_chromium  # noqa: E402

TIMEOUT_MS = 120_000


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def web():
    with WebServer() as w:
        for name in ("news-article", "live-blog", "undated"):
            w.fixture(f"/pages/{name}.html", f"{name}.html")
        w.fixture("/feeds/rss.xml", "rss.xml", content_type="application/rss+xml", etag='"rss-1"')
        w.fixture("/feeds/broken.xml", "broken.xml", content_type="application/rss+xml")
        yield w


@pytest.fixture(scope="module")
def page(seeds_index_dir, real_embedder, tmp_path_factory, web):
    from playwright.sync_api import sync_playwright

    from rag import Assistant
    from ui import serve

    index = tmp_path_factory.mktemp("ui-feeds") / "index"
    shutil.copytree(seeds_index_dir, index)
    assistant = Assistant(index, embedder=real_embedder, seed=False, quiet=True)
    port = _free_port()
    demo = serve(assistant, host="127.0.0.1", port=port, block=False, quiet=True)
    url = f"http://127.0.0.1:{port}/"
    with sync_playwright() as p:
        browser = launch_chromium(p)
        context = browser.new_context(viewport={"width": 1400, "height": 1400})
        pg = context.new_page()
        pg.set_default_timeout(TIMEOUT_MS)
        pg.goto(url)
        pg.locator("#question textarea").wait_for()
        pg.get_by_role("tab", name="Articles").click()
        pg.locator("#feed-url textarea, #feed-url input").first.wait_for()
        yield pg
        context.close()
        browser.close()
    demo.close()
    assistant.close()


def wait_text(page, selector: str, text: str) -> None:
    """Waits until the element's visible text (innerText) contains ``text``."""
    page.wait_for_function("([sel, t]) => (document.querySelector(sel)?.innerText || '').includes(t)",
                           arg=[selector, text])


def feed_box(page):
    return page.locator("#feed-url textarea, #feed-url input").first


def test_follow_a_feed(page, web, tmp_path):
    feed_box(page).fill(web.url("/feeds/rss.xml"))
    page.locator("#feed-add").click()
    page.locator("#feed-report tr.feed-updated").first.wait_for()
    page.screenshot(path=tmp_path / "1-follow.png", full_page=True)
    report = page.locator("#feed-report").inner_text()
    assert "Following Northern Sport - Football" in report and "3 added" in report
    assert page.locator("#feed-report tr.feed-added").count() == 3
    wait_text(page, "#feeds", "Northern Sport - Football")
    assert web.url("/feeds/rss.xml") in page.locator("#feeds").inner_text()
    wait_text(page, "#articles", "Kestrel Town clinch promotion with late Ambrose Tully winner")


def test_a_broken_feed_is_refused_with_its_reason(page, web):
    feed_box(page).fill(web.url("/feeds/broken.xml"))
    page.locator("#feed-add").click()
    page.locator("#feed-report .feed-error").wait_for()
    assert "broken XML" in page.locator("#feed-report").inner_text()
    assert "broken.xml" not in page.locator("#feeds").inner_text()


def test_refresh_now_with_nothing_new(page, web, tmp_path):
    web.reset_log()
    page.locator("#feed-refresh").click()
    page.locator("#feed-report tr.feed-not-modified").wait_for()
    page.screenshot(path=tmp_path / "2-refresh.png", full_page=True)
    assert "1 feeds (1 not modified, 0 failed)" in page.locator("#feed-report").inner_text()
    assert web.paths() == ["/feeds/rss.xml"]


def test_a_feed_article_answers_in_the_chat(page, web):
    page.get_by_role("tab", name="Chat").click()
    page.locator("#question textarea").fill("Who headed Kestrel Town's stoppage-time winner against Marlow Heath?")
    page.locator("#ask").click()
    page.locator("#sources #turn-1").wait_for()
    assert "Ambrose Tully" in page.locator('#chat [data-testid="bot"]').last.inner_text()
    card = page.locator("#src-1-1")
    assert card.locator(".src-date").inner_text() == "2024-04-27"
    assert card.locator(".src-file").inner_text() == web.url("/pages/news-article.html")


def test_remove_the_feed_and_its_articles(page, web, tmp_path):
    page.get_by_role("tab", name="Articles").click()
    page.locator("#feed-pick input").click()
    page.get_by_role("option", name="Northern Sport - Football").click()
    page.locator("#feed-purge input").check()
    page.locator("#feed-remove").click()
    wait_text(page, "#feed-report", "3 articles removed")
    page.screenshot(path=tmp_path / "3-remove.png", full_page=True)
    assert "Northern Sport" not in page.locator("#feeds").inner_text()
    assert "Kestrel Town clinch promotion" not in page.locator("#articles").inner_text()
