"""Feeds and pages end to end against a real HTTP server on 127.0.0.1 that the tests start.

RSS and Atom fixtures written for the tests link to the fixture pages; the articles land in a real
SQLite/FAISS index (with the hash embedder here; test_feeds_real.py uses the real one). Tests marked
``BOTH_STORES`` run again against a database on the real PostgreSQL server (integration lane),
where the feed tables live beside the index's articles.
"""

from __future__ import annotations

import json
import shutil
import time

import pytest

from rag import Assistant
from rag.errors import ConfigError, InputError
from rag.feeds import FeedRefresher, parse_feed, parse_interval
from rag.fetch import FetchSettings, origin_of
from tests.webserver import FIXTURES, Route, WebServer, article_html, expected, match_feed, match_report

PAGES = ("news-article", "live-blog", "heavy-navigation", "amp", "undated")
STORES = ["sqlite", pytest.param("postgresql", marks=pytest.mark.integration)]
BOTH_STORES = pytest.mark.parametrize("index", STORES, indirect=True)


@pytest.fixture
def web():
    with WebServer() as w:
        for name in PAGES:
            w.fixture(f"/pages/{name}.html", f"{name}.html")
        w.fixture("/feeds/rss.xml", "rss.xml", content_type="application/rss+xml", etag='"rss-1"')
        w.fixture("/feeds/atom.xml", "atom.xml", content_type="application/atom+xml",
                  last_modified="Sat, 09 Mar 2024 08:15:00 GMT")
        w.fixture("/feeds/broken.xml", "broken.xml", content_type="application/rss+xml")
        yield w


@pytest.fixture
def index(request, tmp_path):
    """The index: a folder, unless a test is parametrised with ``BOTH_STORES`` (then also a fresh
    PostgreSQL database)."""
    if getattr(request, "param", "sqlite") == "sqlite":
        return tmp_path / "idx"
    return request.getfixturevalue("pg_dsn")


@pytest.fixture
def assistant(index, fake_embedder):
    a = Assistant(index, embedder=fake_embedder, seed=False, quiet=True)
    yield a
    a.close()


def by_title(assistant, title):
    return next(assistant.store.article(a.id) for a in assistant.articles() if a.title == title)


def test_parse_rss_and_atom_fixtures(web):
    rss = parse_feed(web.routes["/feeds/rss.xml"].body, web.url("/feeds/rss.xml"), "application/rss+xml")
    assert (rss.version, rss.title) == ("rss20", "Northern Sport - Football")
    assert [e.link for e in rss.entries] == [web.url(f"/pages/{p}.html") for p in ("live-blog", "news-article", "undated")]
    assert [e.date for e in rss.entries] == ["2024-05-04", "2024-04-27", "2024-04-25"]
    atom = parse_feed(web.routes["/feeds/atom.xml"].body, web.url("/feeds/atom.xml"), "application/atom+xml")
    assert atom.version == "atom10" and atom.title == "Grandstand Daily: Football"
    assert atom.entries[1].link == web.url("/pages/amp.html")  # relative href resolved
    assert (atom.entries[1].date, atom.entries[1].updated) == ("2024-02-16", "2024-02-16T12:05:00Z")


def test_broken_xml_and_non_feeds_are_named():
    broken = (FIXTURES / "broken.xml").read_bytes()
    with pytest.raises(InputError, match=r"http://x/f.xml: broken XML, no entries could be read \(not well-formed"):
        parse_feed(broken, "http://x/f.xml")
    with pytest.raises(InputError, match="not an RSS or Atom feed"):
        parse_feed(b"<html><body><p>a page</p></body></html>", "http://x/", "text/html")


@BOTH_STORES
def test_feed_add_indexes_each_entry_page_without_boilerplate(web, assistant):
    info, result = assistant.feeds.add(web.url("/feeds/rss.xml"))
    assert info.title == "Northern Sport - Football" and info.articles == 3
    assert result.summary() == "3 added, 0 updated, 0 skipped, 0 failed"
    info, result = assistant.feeds.add(web.url("/feeds/atom.xml"))
    assert result.count("added") == 2
    for name in PAGES:
        exp = expected(name)
        art = next(assistant.store.article(a.id) for a in assistant.articles()
                   if a.source == web.url(f"/pages/{name}.html"))
        assert all(" ".join(p.split()) in " ".join(art.text.split()) for p in exp["article"])
        assert not [b for b in exp["boilerplate"] if b in art.text], name  # target: no boilerplate indexed
        if exp["title"]:
            assert (art.title, art.date) == (exp["title"], exp["date"])


def test_the_feeds_title_and_date_fill_in_for_a_bare_page(web, assistant):
    assistant.feeds.add(web.url("/feeds/rss.xml"))
    art = by_title(assistant, "Quarry Athletic's new Dunnage Stand delayed until next season")
    assert art.date == "2024-04-25"
    assert art.text.startswith("Quarry Athletic's new Dunnage Stand delayed until next season\n\nQuarry Athletic have")


@BOTH_STORES
def test_second_update_with_nothing_new_is_one_conditional_request(web, assistant):
    assistant.feeds.add(web.url("/feeds/rss.xml"))
    assistant.feeds.add(web.url("/feeds/atom.xml"))
    web.reset_log()
    report = assistant.feeds.update()
    assert [f.status for f in report.feeds] == ["not modified", "not modified"]
    assert web.paths() == ["/feeds/rss.xml", "/feeds/atom.xml"]  # no robots.txt, no pages
    rss_req, atom_req = web.requests
    assert rss_req.headers["if-none-match"] == '"rss-1"'
    assert atom_req.headers["if-modified-since"] == "Sat, 09 Mar 2024 08:15:00 GMT"
    assert [f.requests for f in report.feeds] == [1, 1] and report.count("added") == 0


def test_fifty_entries_in_one_update_then_nothing(web, assistant):
    url = match_feed(web, 50)
    assistant.feeds.add(url, update=False)
    first = assistant.feeds.update()
    assert first.count("added") == 50 and first.feeds[0].page_requests == 50
    assert len(assistant.articles()) == 50
    web.reset_log()
    second = assistant.feeds.update()
    assert second.feeds[0].status == "not modified"
    assert web.paths() == ["/feeds/matches.xml"]


@BOTH_STORES
def test_changed_feed_fetches_only_new_and_edited_entries(web, assistant):
    url = match_feed(web, 5, etag='"m1"')
    assistant.feeds.add(url)
    before = by_title(assistant, match_report(0)[0])
    # entry 0 is edited (new stamp, new text), entry 5 is new, entries 1-4 are as they were
    feed = web.routes["/feeds/matches.xml"].body.decode()
    new_title = "Ashby Vale beat Hallam Rangers in a replayed match 0"
    web.route("/match/0.html", Route(body=article_html(new_title, "2024-04-01", ["The match was replayed on "
              "Tuesday after a floodlight failure, and Ashby Vale won again, this time 2-0."])))
    feed = feed.replace("Mon, 01 Apr 2024 12:00:00 GMT", "Tue, 02 Apr 2024 12:00:00 GMT", 1)
    feed = feed.replace("</channel>", f"<item><title>New one</title><link>{web.url('/match/new.html')}</link>"
                                      "<guid>match-new</guid></item></channel>")
    web.route("/match/new.html", Route(body=article_html("Ravensholt appoint new goalkeeping coach", "2024-04-30",
                                                         ["Ravensholt have appointed Olu Barnard as goalkeeping coach."])))
    web.route("/feeds/matches.xml", Route(body=feed.encode(), content_type="application/rss+xml", etag='"m2"'))
    web.reset_log()
    report = assistant.feeds.update()
    result = report.feeds[0]
    assert sorted(web.paths()) == ["/feeds/matches.xml", "/match/0.html", "/match/new.html"]
    assert (result.count("updated"), result.count("added"), result.count("skipped")) == (1, 1, 4)
    after = assistant.store.article(before.id)
    assert after.title == new_title and "floodlight failure" in after.text
    assert not [a for a in assistant.articles() if a.title == before.title]  # replaced, not duplicated


def test_entry_failures_are_reported_and_the_rest_indexed(web, assistant):
    web.route("/robots.txt", Route(body=b"User-agent: *\nDisallow: /private/\n", content_type="text/plain"))
    web.route("/report.pdf", Route(body=b"%PDF-1.4 binary", content_type="application/pdf"))
    web.route("/huge.html", Route(body=b"<html><body>", stream_bytes=8_000_000))
    web.route("/slow.html", Route(body=b"<p>late</p>", delay_s=2))
    web.route("/moved.html", Route(status=301, headers={"Location": "/pages/news-article.html"}))
    web.route("/private/x.html", Route(body=b"<p>members only</p>"))
    links = ["/report.pdf", "/huge.html", "/slow.html", "/gone.html", "/private/x.html", "/moved.html",
             "/pages/amp.html"]
    items = "".join(f"<item><title>Entry {i}</title><link>{web.url(p)}</link><guid>e{i}</guid></item>"
                    for i, p in enumerate(links))
    feed = web.route("/feeds/mixed.xml", Route(body=f'<rss version="2.0"><channel><title>Mixed</title>{items}'
                                                     "</channel></rss>".encode(), content_type="application/rss+xml",
                                               etag='"mixed-1"'))
    settings = FetchSettings(timeout_s=0.5, max_bytes=1_000_000)
    assistant.feeds.add(feed, update=False)
    result = assistant.feeds.update(settings=settings).feeds[0]
    reasons = {e.link.rsplit("/", 1)[1]: (e.status, e.reason) for e in result.entries}
    assert reasons["report.pdf"] == ("failed", f"{web.url('/report.pdf')}: not an HTML page (application/pdf)")
    assert "over the 1.0 MB limit" in reasons["huge.html"][1]
    assert "timed out after 0.5 s" in reasons["slow.html"][1]
    assert "HTTP 404" in reasons["gone.html"][1]
    assert "disallowed by robots.txt" in reasons["x.html"][1]
    assert reasons["moved.html"][0] == "added" and reasons["amp.html"][0] == "added"
    assert not web.hits("/private/x.html")
    moved = by_title(assistant, "Kestrel Town clinch promotion with late Ambrose Tully winner")
    assert moved.source == web.url("/moved.html")  # the link as the feed gave it is the identity
    # The timeout may pass: the feed is read in full next time and only that entry is tried again.
    web.route("/slow.html", Route(body=article_html("Late news from Fenwick United", "2024-05-01",
                                                    ["Fenwick United have extended the contract of Noor Ibsen."])))
    web.reset_log()
    again = assistant.feeds.update(settings=settings).feeds[0]
    assert "if-none-match" not in web.hits("/feeds/mixed.xml")[0].headers
    assert sorted(web.paths()) == ["/feeds/mixed.xml", "/slow.html"]
    assert again.count("added") == 1 and again.count("failed") == 0
    assert [e.reason for e in again.entries if e.link.endswith(".pdf")][0].startswith("failed before: ")
    web.reset_log()
    assert assistant.feeds.update(settings=settings).feeds[0].status == "not modified"


def test_feed_failures_are_reported_and_never_stop_the_rest(web, assistant):
    with WebServer() as gone:
        dead = gone.url("/feed.xml")
    web.route("/feeds/slow.xml", Route(body=web.routes["/feeds/rss.xml"].body, delay_s=2,
                                       content_type="application/rss+xml"))
    web.route("/feeds/page.html", Route(body=b"<html><body><p>No feed here.</p></body></html>"))
    web.route("/feeds/image.png", Route(body=b"\x89PNG\r\n\x1a\n\x00\x00", content_type="image/png"))
    urls = [web.url("/feeds/broken.xml"), dead, web.url("/feeds/slow.xml"), web.url("/feeds/page.html"),
            web.url("/feeds/image.png"), web.url("/feeds/atom.xml")]
    for u in urls:
        assistant.feeds.add(u, update=False)
    report = assistant.feeds.update(settings=FetchSettings(timeout_s=0.5))
    status = {f.url: (f.status, f.reason) for f in report.feeds}
    assert status[web.url("/feeds/atom.xml")] == ("updated", None)
    assert "broken XML" in status[web.url("/feeds/broken.xml")][1]
    assert "connection refused" in status[dead][1] or "robots.txt" in status[dead][1]
    assert "timed out" in status[web.url("/feeds/slow.xml")][1]
    assert "not an RSS or Atom feed" in status[web.url("/feeds/page.html")][1]
    assert "not an RSS or Atom feed" in status[web.url("/feeds/image.png")][1]
    assert report.failed_feeds == 5 and report.count("added") == 2
    listed = {f.url: f for f in assistant.feeds.list()}
    assert listed[web.url("/feeds/broken.xml")].status == "failed"
    assert "broken XML" in listed[web.url("/feeds/broken.xml")].error


def test_adding_a_page_follows_the_feed_it_advertises(web, assistant):
    page = web.route("/", Route(body='<html><head><link rel="alternate" type="application/atom+xml" '
                                     'href="/feeds/atom.xml"></head><body><p>Home</p></body></html>'.encode()))
    info, result = assistant.feeds.add(page)
    assert info.url == web.url("/feeds/atom.xml") and result.count("added") == 2


@BOTH_STORES
def test_add_twice_bad_urls_and_unknown_feeds_are_errors(web, assistant):
    assistant.feeds.add(web.url("/feeds/atom.xml"))
    with pytest.raises(InputError, match="already followed"):
        assistant.feeds.add(web.url("/feeds/atom.xml"))
    with pytest.raises(InputError, match="only http and https"):
        assistant.feeds.add("file:///etc/passwd")
    with pytest.raises(InputError, match="broken XML"):
        assistant.feeds.add(web.url("/feeds/broken.xml"))
    with pytest.raises(InputError, match="no such feed"):
        assistant.feeds.remove(web.url("/feeds/nope.xml"))
    with pytest.raises(InputError, match="no such feed"):
        assistant.feeds.update([web.url("/feeds/nope.xml")])
    assert [f.url for f in assistant.feeds.list()] == [web.url("/feeds/atom.xml")]


@BOTH_STORES
def test_remove_keeps_articles_unless_purged(web, assistant):
    assistant.feeds.add(web.url("/feeds/rss.xml"))
    assistant.feeds.add(web.url("/feeds/atom.xml"))
    assert assistant.feeds.remove(web.url("/feeds/rss.xml")) == []
    assert len(assistant.articles()) == 5
    removed = assistant.feeds.remove(web.url("/feeds/atom.xml"), purge=True)
    assert sorted(removed) == ["amp", "heavy-navigation"] and len(assistant.articles()) == 3
    assert assistant.feeds.list() == []


def test_feeds_travel_with_the_index(web, tmp_path, fake_embedder):
    a = Assistant(tmp_path / "one", embedder=fake_embedder, seed=False, quiet=True)
    a.feeds.add(web.url("/feeds/rss.xml"))
    a.close()
    shutil.copytree(tmp_path / "one", tmp_path / "two")
    b = Assistant(tmp_path / "two", embedder=fake_embedder, seed=False, quiet=True)
    try:
        (info,) = b.feeds.list()
        assert (info.url, info.title, info.articles, info.etag) == (web.url("/feeds/rss.xml"),
                                                                    "Northern Sport - Football", 3, '"rss-1"')
        web.reset_log()
        assert b.feeds.update().feeds[0].status == "not modified"
        assert web.paths() == ["/feeds/rss.xml"]  # robots.txt travelled too
    finally:
        b.close()


@BOTH_STORES
def test_robots_txt_is_cached_in_the_index(web, index, fake_embedder):
    web.route("/robots.txt", Route(body=b"User-agent: *\nDisallow: /private/\n", content_type="text/plain"))
    a = Assistant(index, embedder=fake_embedder, seed=False, quiet=True)
    try:
        a.feeds.add(web.url("/feeds/rss.xml"))
        fetched_at, status, body = a.feeds.store.robots_get(origin_of(web.url("/")))
        assert (status, body) == (200, "User-agent: *\nDisallow: /private/\n")
        assert abs(fetched_at - time.time()) < 60
    finally:
        a.close()
    web.reset_log()
    b = Assistant(index, embedder=fake_embedder, seed=False, quiet=True)  # as another process would
    try:
        result = b.add([web.url("/pages/amp.html")])
        assert result.items[0].status == "added"
        assert web.paths() == ["/pages/amp.html"]  # robots.txt came from the index, not the server
    finally:
        b.close()


@BOTH_STORES
def test_timestamps_keep_their_fractions(assistant):
    """Times are stored as doubles in both stores (a PostgreSQL REAL would round them to minutes)."""
    store = assistant.feeds.store
    store.robots_put("http://a.example", 1767225600.123456, 404, "")
    assert store.robots_get("http://a.example") == (1767225600.123456, 404, "")
    before = time.time()
    info = store.add_feed("http://a.example/feed.xml", None)
    store.record_check(info.url, status="not modified", keep_validators=True)
    info = store.feed(info.url)
    assert before <= info.added_at <= info.checked_at <= time.time()


@BOTH_STORES
def test_two_assistants_share_the_feeds(web, index, fake_embedder):
    """Two assistants on one index (two app servers on one database): one follows a feed, the
    other sees it with its validators and entries, updates it with one conditional request and
    removes it, and the first sees it gone."""
    a = Assistant(index, embedder=fake_embedder, seed=False, quiet=True)
    b = Assistant(index, embedder=fake_embedder, seed=False, quiet=True)
    try:
        a.feeds.add(web.url("/feeds/rss.xml"))
        (info,) = b.feeds.list()
        assert (info.url, info.title, info.articles, info.etag) == (web.url("/feeds/rss.xml"),
                                                                    "Northern Sport - Football", 3, '"rss-1"')
        web.reset_log()
        assert b.feeds.update().feeds[0].status == "not modified"
        assert web.paths() == ["/feeds/rss.xml"]
        assert a.feeds.list()[0].status == "not modified"
        assert len(b.feeds.remove(web.url("/feeds/rss.xml"), purge=True)) == 3
        assert a.feeds.list() == [] and a.articles() == []
    finally:
        a.close()
        b.close()


@BOTH_STORES
def test_two_refreshers_on_one_index_take_turns(web, index, fake_embedder):
    """Two processes' refreshers updating one index at once (a terminal and a server, or two app
    servers on one database): each page is fetched once; the second update finds the feed
    unchanged and its entries indexed."""
    import threading

    for name in ("live-blog", "news-article", "undated"):  # slow pages: the two updates overlap
        web.routes[f"/pages/{name}.html"].delay_s = 0.3
    a = Assistant(index, embedder=fake_embedder, seed=False, quiet=True)
    b = Assistant(index, embedder=fake_embedder, seed=False, quiet=True)
    try:
        a.feeds.add(web.url("/feeds/rss.xml"), update=False)
        web.reset_log()
        reports = []
        threads = [threading.Thread(target=lambda x=x: reports.append(x.feeds.update())) for x in (a, b)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        pages = [p for p in web.paths() if p.startswith("/pages/")]
        assert sorted(pages) == ["/pages/live-blog.html", "/pages/news-article.html", "/pages/undated.html"]
        assert web.paths().count("/feeds/rss.xml") == 2
        assert sorted(r.feeds[0].status for r in reports) == ["not modified", "updated"]
        assert len(a.articles()) == 3
    finally:
        a.close()
        b.close()


def test_index_add_a_single_page(web, assistant):
    report = assistant.add([web.url("/pages/heavy-navigation.html"), web.url("/pages/nothing.html")])
    assert [i.status for i in report.items] == ["added", "failed"]
    assert report.items[1].reason == f"{web.url('/pages/nothing.html')}: HTTP 404"
    art = assistant.store.article(report.items[0].article_id)
    assert art.title == "Stanmere City appoint Teodora Vasquez-Lind as head coach" and art.date == "2024-03-09"
    assert assistant.add(web.url("/pages/heavy-navigation.html")).items[0].status == "skipped"


def test_refresher_updates_in_the_background_until_stopped(web, assistant):
    assistant.feeds.add(web.url("/feeds/atom.xml"), update=False)
    seen = []
    refresher = FeedRefresher(assistant.feeds, every_s=0.2, on_report=seen.append).start()
    try:
        deadline = time.monotonic() + 20
        while len(seen) < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        refresher.stop()
    assert not refresher.running
    assert [r.feeds[0].status for r in seen[:3]] == ["updated", "not modified", "not modified"]
    assert seen[0].count("added") == 2
    runs = refresher.runs
    time.sleep(0.5)
    assert refresher.runs == runs


@pytest.mark.parametrize("text, seconds", [("15m", 900), ("2h", 7200), ("90s", 90), ("1d", 86400), ("120", 120)])
def test_parse_interval(text, seconds):
    assert parse_interval(text) == seconds


@pytest.mark.parametrize("text, why", [("soon", "not a duration"), ("10s", "too short"), ("-5m", "not a duration")])
def test_parse_interval_refuses(text, why):
    with pytest.raises(ConfigError, match=why):
        parse_interval(text)


# ---------------------------------------------------------------------------- the command line


def run_cli(capsys, *argv) -> tuple[int, str, str]:
    from rag.cli import main

    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@BOTH_STORES
def test_cli_feed_commands(web, index, capsys, monkeypatch):
    from tests.fakes import HashEmbedder

    monkeypatch.setattr("rag.assistant.make_embedder", lambda e: HashEmbedder())
    idx = ["--index", str(index)]
    code, out, _ = run_cli(capsys, "feed", "add", web.url("/feeds/rss.xml"), *idx)
    assert code == 0 and "following Northern Sport - Football" in out and "3 added" in out
    code, out, _ = run_cli(capsys, "feed", "add", web.url("/feeds/broken.xml"), *idx)
    code, _, err = run_cli(capsys, "feed", "add", web.url("/feeds/broken.xml"), *idx)
    assert code == 2 and err.startswith("rag: error: ") and "broken XML" in err and err.count("\n") == 1
    code, out, _ = run_cli(capsys, "feed", "list", *idx)
    assert code == 0 and web.url("/feeds/rss.xml") in out and "3 articles" in out and "1 feeds" in out
    code, out, _ = run_cli(capsys, "feed", "update", *idx)
    assert code == 0 and "not modified" in out
    code, out, _ = run_cli(capsys, "feed", "list", "--json", *idx)
    assert json.loads(out)[0]["status"] == "not modified"
    code, out, _ = run_cli(capsys, "index", "add", web.url("/pages/amp.html"), *idx)
    assert code == 0 and "added" in out and "-> amp" in out
    code, out, _ = run_cli(capsys, "feed", "rm", web.url("/feeds/rss.xml"), "--purge", *idx)
    assert code == 0 and "3 articles removed" in out
    code, _, err = run_cli(capsys, "feed", "update", "--every", "5s", *idx)
    assert code == 2 and "too short" in err
    code, _, err = run_cli(capsys, "feed", "add", "ftp://127.0.0.1/feed", *idx)
    assert code == 2 and "only http and https" in err
    assert "rag-test-pw" not in out + err


@pytest.mark.integration
def test_feed_articles_answer_questions_with_their_urls(web, seeds_assistant):
    """The real embedder and index: a question only a feed's page can answer cites that page."""
    seeds_assistant.feeds.add(web.url("/feeds/rss.xml"))
    ans = seeds_assistant.ask("Who headed Kestrel Town's stoppage-time winner against Marlow Heath?")
    assert "Ambrose Tully" in ans.text
    cite = ans.citations[0]
    assert (cite.source, cite.date) == (web.url("/pages/news-article.html"), "2024-04-27")
    ans = seeds_assistant.ask("Who thanked Quarry Athletic supporters for their patience?")
    assert "Annika Sorrell" in ans.text and ans.citations[0].date == "2024-04-25"  # the feed's date


def test_a_public_feed_cannot_send_the_indexer_to_local_addresses(web, assistant, monkeypatch):
    """Entries of a feed on the internet that link into the local network are refused."""
    monkeypatch.setattr("rag.feeds.is_private_host", lambda host: False)  # as if the feed were public
    info, result = assistant.feeds.add(web.url("/feeds/atom.xml"))
    assert result.count("failed") == 2 and result.count("added") == 0
    assert all("is a local or private address" in e.reason for e in result.entries)
    assert not web.hits("/pages/amp.html")


def test_a_store_without_feed_storage_says_so():
    from rag.feedstore import feed_store_for

    class OtherStore:
        pass

    with pytest.raises(ConfigError, match=r"this index \(OtherStore\) cannot keep feeds"):
        feed_store_for(OtherStore())


# ---------------------------------------------------------------------------- PostgreSQL only


@pytest.mark.integration
def test_postgres_feed_tables_created_by_many_at_once(pg_dsn):
    """Processes opening a fresh database together all get the tables (no catalogue race)."""
    from concurrent.futures import ThreadPoolExecutor

    from rag.pgfeedstore import PostgresFeedStore

    with ThreadPoolExecutor(8) as pool:
        stores = list(pool.map(lambda _: PostgresFeedStore(pg_dsn), range(8)))
    stores[0].add_feed("http://a.example/feed.xml", "A")
    assert [[f.url for f in s.feeds()] for s in stores] == [["http://a.example/feed.xml"]] * 8
    for s in stores:
        s.close()


@pytest.mark.integration
def test_postgres_feed_store_reconnects_after_the_server_drops_it(pg_dsn):
    import psycopg

    from rag.errors import IndexUnavailableError
    from rag.pgfeedstore import PostgresFeedStore

    store = PostgresFeedStore(pg_dsn)
    store.add_feed("http://a.example/feed.xml", "A")
    with psycopg.connect(pg_dsn, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", (store._db.info.backend_pid,))
    with pytest.raises(IndexUnavailableError, match=r"feeds of index postgresql://rag@127\.0\.0\.1:\d+/\w+: "
                                                    "lost the connection") as e:
        store.feeds()
    assert "rag-test-pw" not in str(e.value)
    assert [f.title for f in store.feeds()] == ["A"]  # a new connection
    store.close()
