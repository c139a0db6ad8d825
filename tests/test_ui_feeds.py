"""The chat's feed callbacks without a browser: ChatBackend's feed methods and the report HTML."""

from __future__ import annotations

import pytest

from rag import Assistant
from rag.errors import ConfigError, InputError
from rag.feeds import EntryResult, FeedResult
from tests.webserver import WebServer
from ui.backend import ChatBackend
from ui.feeds import feed_rows, report_html


@pytest.fixture
def web():
    with WebServer() as w:
        w.fixture("/pages/amp.html", "amp.html")
        w.fixture("/pages/heavy-navigation.html", "heavy-navigation.html")
        w.fixture("/feeds/atom.xml", "atom.xml", content_type="application/atom+xml", etag='"a1"')
        yield w


@pytest.fixture
def backend(tmp_path, fake_embedder):
    a = Assistant(tmp_path / "idx", embedder=fake_embedder, seed=False, quiet=True)
    yield ChatBackend(a)
    a.close()


def test_follow_refresh_and_unfollow(web, backend):
    assert backend.has_feeds and backend.feeds() == []
    info, result = backend.follow_feed("  " + web.url("/feeds/atom.xml") + " ")
    assert info.title == "Grandstand Daily: Football" and result.count("added") == 2
    (row,) = feed_rows(backend.feeds())
    assert row[:3] == ["Grandstand Daily: Football", web.url("/feeds/atom.xml"), 2] and row[4] == "updated"
    report = backend.refresh_feeds()
    assert report.feeds[0].status == "not modified"
    assert sorted(backend.unfollow_feed(web.url("/feeds/atom.xml"), purge=True)) == ["amp", "heavy-navigation"]
    assert backend.feeds() == [] and backend.articles() == []


def test_bad_input_is_an_error_the_page_can_show(web, backend):
    with pytest.raises(InputError, match="enter the address"):
        backend.follow_feed("   ")
    with pytest.raises(InputError, match="no feed selected"):
        backend.unfollow_feed(None)
    with pytest.raises(InputError, match="HTTP 404"):
        backend.follow_feed(web.url("/feeds/missing.xml"))


def test_an_assistant_without_feeds():
    class Plain:
        index_dir = "."
        embedder = object()

    b = ChatBackend(Plain())
    assert not b.has_feeds and b.feeds() == []
    with pytest.raises(ConfigError, match="cannot follow feeds"):
        b.refresh_feeds()


def test_report_html_escapes_what_feeds_say():
    evil = FeedResult(url="http://x/<feed>", title="<script>alert(1)</script>", status="updated", entries=[
        EntryResult("http://x/a", "<img src=x onerror=alert(2)>", "failed", None, "http://x/a: not an HTML page (<b>)"),
        EntryResult("http://x/b", "Fine & dandy", "added", "b"),
        EntryResult("http://x/c", "Seen", "skipped", "c", "already indexed"),
    ])
    html = report_html([evil], "1 feeds")
    assert "<script>" not in html and "<img" not in html and "<b>" not in html
    assert "&lt;script&gt;" in html and "Fine &amp; dandy" in html
    assert 'class="feed-failed"' in html and 'class="feed-added"' in html and "Seen" not in html
    assert "follow one first" in report_html([])


def test_page_builds_with_the_feeds_section(backend):
    from ui.app import build_app

    demo = build_app(backend.assistant)
    ids = {getattr(b, "elem_id", None) for b in demo.blocks.values()}
    assert {"feed-url", "feed-add", "feeds", "feed-pick", "feed-purge", "feed-remove", "feed-refresh",
            "feed-report"} <= ids
