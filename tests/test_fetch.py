"""The polite fetcher against a real HTTP server on 127.0.0.1: limits, redirects, robots.txt."""

from __future__ import annotations

import threading
import time

import pytest

from rag.errors import InputError
from rag.fetch import USER_AGENT, Fetcher, FetchError, FetchSettings, check_url
from tests.webserver import Route, WebServer


@pytest.fixture
def web():
    with WebServer() as w:
        yield w


def fetcher(**kw) -> Fetcher:
    return Fetcher(FetchSettings(**kw))


def test_get_sends_user_agent_and_decodes_gzip(web):
    url = web.route("/a.html", Route(body="<p>Caldermoor won 3–1</p>".encode(), gzip=True))
    with fetcher() as f:
        r = f.get(url)
    assert r.status == 200 and r.text() == "<p>Caldermoor won 3–1</p>"
    assert r.charset == "utf-8" and r.content_type == "text/html"
    assert web.hits("/a.html")[0].headers["user-agent"] == USER_AGENT


@pytest.mark.parametrize("url, why", [("ftp://127.0.0.1/x", "only http and https"), ("file:///etc/passwd", "only http"),
                                      ("http:///nohost", "has no host"), ("  ", "no URL")])
def test_only_http_urls(url, why):
    with pytest.raises(InputError, match=why):
        check_url(url)


def test_conditional_get_answers_304(web):
    url = web.route("/feed.xml", Route(body=b"<rss/>", etag='"v1"', last_modified="Sat, 04 May 2024 17:10:00 GMT"))
    with fetcher() as f:
        first = f.get(url)
        assert first.headers["etag"] == '"v1"'
        again = f.get(url, etag='"v1"')
        assert again.not_modified and again.body == b""
        by_date = f.get(url, last_modified="Sat, 04 May 2024 17:10:00 GMT")
        assert by_date.not_modified
        changed = f.get(url, etag='"v0"')
        assert changed.status == 200
    assert web.hits("/feed.xml")[1].headers["if-none-match"] == '"v1"'


def test_redirects_are_followed_within_limits(web):
    final = web.route("/new.html", Route(body=b"<p>moved here</p>"))
    web.route("/old.html", Route(status=301, headers={"Location": "/new.html"}))
    for i in range(7):
        web.route(f"/loop{i}", Route(status=302, headers={"Location": f"/loop{i + 1}"}))
    web.route("/to-ftp", Route(status=302, headers={"Location": "ftp://127.0.0.1/file"}))
    with fetcher(max_redirects=5) as f:
        r = f.get(web.url("/old.html"))
        assert (r.final_url, r.url, r.redirects) == (final, web.url("/old.html"), 1)
        with pytest.raises(FetchError, match="more than 5 redirects"):
            f.get(web.url("/loop0"))
        with pytest.raises(FetchError, match="not an http"):
            f.get(web.url("/to-ftp"))
    assert len(web.hits("/loop5")) == 1 and not web.hits("/loop6")


def test_slow_server_times_out(web):
    url = web.route("/slow.html", Route(body=b"<p>late</p>", delay_s=3))
    t0 = time.monotonic()
    with fetcher(timeout_s=0.5) as f, pytest.raises(FetchError, match="timed out after 0.5 s") as e:
        f.get(url)
    assert time.monotonic() - t0 < 2.5
    assert e.value.transient


def test_huge_responses_are_cut_off(web):
    declared = web.route("/declared.html", Route(body=b"x" * 300_000))
    streamed = web.route("/endless.html", Route(body=b"<html>", stream_bytes=50_000_000))
    with fetcher(max_bytes=100_000) as f:
        with pytest.raises(FetchError, match="the response is 300 kB, over the 100 kB limit") as e:
            f.get(declared)
        assert not e.value.transient
        t0 = time.monotonic()
        with pytest.raises(FetchError, match="over the 100 kB limit"):
            f.get(streamed)
        assert time.monotonic() - t0 < 5  # stopped at the cap, not after 50 MB


def test_http_errors_say_which_and_whether_to_retry(web):
    web.route("/gone", Route(status=410, body=b"gone"))
    web.route("/busy", Route(status=503, body=b"busy"))
    with fetcher() as f:
        with pytest.raises(FetchError, match="HTTP 410") as gone:
            f.get(web.url("/gone"))
        with pytest.raises(FetchError, match="HTTP 503") as busy:
            f.get(web.url("/busy"))
        with pytest.raises(FetchError, match="HTTP 404"):
            f.get(web.url("/missing"))
    assert not gone.value.transient and busy.value.transient


def test_unreachable_server_is_a_transient_failure():
    with WebServer() as w:
        url = w.url("/feed.xml")
    with fetcher(timeout_s=2) as f, pytest.raises(FetchError, match="connection refused|robots.txt") as e:
        f.get(url)
    assert e.value.transient


def test_robots_txt_is_respected_and_read_once(web):
    web.route("/robots.txt", Route(body=b"User-agent: *\nDisallow: /private/\n\nUser-agent: football-rag\n"
                                        b"Disallow: /no-bots/\n", content_type="text/plain"))
    ok = web.route("/news/a.html", Route(body=b"<p>ok</p>"))
    web.route("/no-bots/b.html", Route(body=b"<p>secret</p>"))
    with fetcher() as f:
        f.get(ok)
        f.get(ok)
        with pytest.raises(FetchError, match="disallowed by robots.txt"):
            f.get(web.url("/no-bots/b.html"))
        assert not f.allowed(web.url("/no-bots/b.html")) and f.allowed(ok)
    assert len(web.hits("/robots.txt")) == 1
    assert not web.hits("/no-bots/b.html")
    with fetcher(robots=False) as f:  # --ignore-robots
        assert f.get(web.url("/no-bots/b.html")).body == b"<p>secret</p>"


def test_robots_txt_server_error_means_stay_away_and_404_means_no_rules(web):
    web.route("/robots.txt", Route(status=500, body=b"oops"))
    web.route("/a.html", Route(body=b"<p>a</p>"))
    with fetcher() as f, pytest.raises(FetchError, match="robots.txt of .* could not be read .*HTTP 500") as e:
        f.get(web.url("/a.html"))
    assert e.value.transient and not web.hits("/a.html")
    del web.routes["/robots.txt"]
    with fetcher() as f:
        assert f.get(web.url("/a.html")).status == 200


def test_robots_txt_is_kept_in_a_cache_across_fetchers(web):
    class Cache(dict):
        def robots_get(self, origin):
            return self.get(origin)

        def robots_put(self, origin, fetched_at, status, body):
            self[origin] = (fetched_at, status, body)

    cache = Cache()
    web.route("/robots.txt", Route(body=b"User-agent: *\nDisallow: /x/\n", content_type="text/plain"))
    page = web.route("/a.html", Route(body=b"<p>a</p>"))
    for _ in range(3):
        with Fetcher(robots_cache=cache) as f:
            f.get(page)
    assert len(web.hits("/robots.txt")) == 1 and len(web.hits("/a.html")) == 3
    assert cache[web.base][1] == 200


def test_crawl_delay_spaces_requests_to_a_host(web):
    web.route("/robots.txt", Route(body=b"User-agent: *\nCrawl-delay: 1\n", content_type="text/plain"))
    page = web.route("/a.html", Route(body=b"<p>a</p>"))
    with fetcher() as f:
        f.get(page)
        t0 = time.monotonic()
        f.get(page)
        assert time.monotonic() - t0 >= 0.9


def test_one_request_at_a_time_per_host_but_hosts_in_parallel(web):
    for i in range(6):
        web.route(f"/p{i}.html", Route(body=b"<p>x</p>", delay_s=0.15))
    with fetcher() as f:
        urls = [web.url(f"/p{i}.html", host) for i in range(6) for host in ("127.0.0.1", "localhost")]
        threads = [threading.Thread(target=f.get, args=(u,)) for u in urls]
        t0 = time.monotonic()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        took = time.monotonic() - t0
    assert web.max_in_flight == {"127.0.0.1": 1, "localhost": 1} or (
        web.max_in_flight.get("127.0.0.1") == 1 and web.max_in_flight.get("localhost") == 1)
    assert took < 12 * 0.15  # the two hosts overlapped


@pytest.mark.parametrize("host, private", [("127.0.0.1", True), ("localhost", True), ("10.1.2.3", True),
                                           ("192.168.0.10", True), ("169.254.169.254", True), ("[::1]", True),
                                           ("8.8.8.8", False), ("2001:4860:4860::8888", False)])
def test_private_hosts(host, private):
    from rag.fetch import is_private_host

    assert is_private_host(host) is private


def test_private_addresses_can_be_refused(web):
    page = web.route("/a.html", Route(body=b"<p>intranet</p>"))
    with fetcher() as f:
        assert f.get(page).status == 200  # a URL the user gives may be local
        with pytest.raises(FetchError, match="refused: 127.0.0.1 is a local or private address"):
            f.get(page, private_ok=False)
    assert len(web.hits("/a.html")) == 1
