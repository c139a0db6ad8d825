"""A real HTTP server on 127.0.0.1 for the feed, page and fetch tests (and ``make bench``).

Routes are plain data (``Route``): a body, a status, headers, an ETag or Last-Modified to
answer conditional requests with 304, a delay before answering (a slow server), a body streamed
in pieces without a length (a huge page), a redirect. Every request is logged with its headers,
and the server counts how many requests each host name had in flight at once, so tests can
assert "one conditional request and no page requests" or "one request at a time per host".
Nothing here touches any other network.
"""

from __future__ import annotations

import calendar
import gzip
import json
import threading
import time
from dataclasses import dataclass, field
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "web"


@dataclass
class Route:
    """What one path answers."""

    body: bytes = b""
    status: int = 200
    content_type: str = "text/html; charset=utf-8"
    headers: dict[str, str] = field(default_factory=dict)
    etag: str | None = None  # answers If-None-Match with 304
    last_modified: str | None = None  # answers If-Modified-Since with 304
    delay_s: float = 0.0  # before the status line
    stream_bytes: int = 0  # stream this many bytes of filler after ``body``, with no Content-Length
    gzip: bool = False


@dataclass
class Request:
    path: str
    host: str
    headers: dict[str, str]


class WebServer:
    """``with WebServer() as web: web.route("/feed.xml", Route(...)); web.url("/feed.xml")``."""

    def __init__(self) -> None:
        self.routes: dict[str, Route] = {}
        self.requests: list[Request] = []
        self.max_in_flight: dict[str, int] = {}
        self._in_flight: dict[str, int] = {}
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"

            def log_message(self, *args) -> None:  # keep test output clean
                pass

            def do_GET(self) -> None:
                server._serve(self)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.httpd.block_on_close = False
        self.port = self.httpd.server_address[1]
        self.base = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="test-web", daemon=True)

    def __enter__(self) -> WebServer:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}{path}"

    def route(self, path: str, route: Route) -> str:
        self.routes[path] = route
        return self.url(path)

    def fixture(self, path: str, name: str, content_type: str | None = None, **kw) -> str:
        """Serves a file of tests/fixtures/web, with ``{base}`` replaced by this server's address."""
        body = (FIXTURES / name).read_bytes().replace(b"{base}", self.base.encode())
        if content_type is None:
            content_type = {"xml": "application/xml", "html": "text/html; charset=utf-8"}.get(name.rsplit(".", 1)[-1],
                                                                                             "text/plain")
        return self.route(path, Route(body=body, content_type=content_type, **kw))

    def hits(self, path: str) -> list[Request]:
        with self._lock:
            return [r for r in self.requests if r.path == path]

    def paths(self) -> list[str]:
        with self._lock:
            return [r.path for r in self.requests]

    def reset_log(self) -> None:
        with self._lock:
            self.requests.clear()
            self.max_in_flight.clear()

    # ------------------------------------------------------------------ serving

    def _serve(self, h: BaseHTTPRequestHandler) -> None:
        host = (h.headers.get("Host") or "").rsplit(":", 1)[0]
        path = h.path.split("?", 1)[0]
        with self._lock:
            self.requests.append(Request(path, host, {k.lower(): v for k, v in h.headers.items()}))
            self._in_flight[host] = self._in_flight.get(host, 0) + 1
            self.max_in_flight[host] = max(self.max_in_flight.get(host, 0), self._in_flight[host])
        left = []

        def leave() -> None:
            """A request stops counting as in flight when its answer starts: once the client has
            read it, it may send the next one before this thread has returned."""
            if not left:
                left.append(True)
                with self._lock:
                    self._in_flight[host] -= 1

        try:
            self._answer(h, self.routes.get(path), leave)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (timeouts, size caps): that is what those tests want
        finally:
            leave()

    def _answer(self, h: BaseHTTPRequestHandler, route: Route | None, leave) -> None:
        if route is None:
            leave()
            h.send_response(404)
            h.send_header("Content-Type", "text/plain")
            h.end_headers()
            h.wfile.write(b"not found")
            return
        if route.delay_s:
            time.sleep(route.delay_s)
        leave()
        if (route.etag and h.headers.get("If-None-Match") == route.etag) or (
                route.last_modified and h.headers.get("If-Modified-Since") == route.last_modified):
            h.send_response(304)
            if route.etag:
                h.send_header("ETag", route.etag)
            h.end_headers()
            return
        body = gzip.compress(route.body) if route.gzip else route.body
        h.send_response(route.status)
        h.send_header("Content-Type", route.content_type)
        if route.gzip:
            h.send_header("Content-Encoding", "gzip")
        if route.etag:
            h.send_header("ETag", route.etag)
        if route.last_modified:
            h.send_header("Last-Modified", route.last_modified)
        for k, v in route.headers.items():
            h.send_header(k, v)
        if not route.stream_bytes:
            h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        h.wfile.write(body)
        sent, piece = 0, b"<p>" + b"filler " * 9000 + b"</p>\n"
        while sent < route.stream_bytes:
            h.wfile.write(piece)
            sent += len(piece)


# ---------------------------------------------------------------------------- generated content

CLUBS = ["Ashby Vale", "Caldermoor", "Fenwick United", "Hallam Rangers", "Harbourside", "Kestrel Town",
         "Linthorpe Albion", "Marlow Heath", "Ravensholt", "Quarry Athletic", "Stanmere City", "Wexcombe Rovers"]
SCORERS = ["Ambrose Tully", "Tobias Marchetti", "Sione Halloran", "Femi Adeyoola", "Kasimir Doyle", "Noor Ibsen",
           "Dervla Nkemelu", "Jonas Ekwueme", "Wren Castellanos", "Yusuf Brannagh", "Callum Rooke"]


def match_report(i: int) -> tuple[str, str, list[str]]:
    """(title, ISO date, paragraphs) of invented match report number ``i``: every one different."""
    home, away = CLUBS[i % len(CLUBS)], CLUBS[(i * 5 + 3) % len(CLUBS)]
    if home == away:
        away = CLUBS[(i + 1) % len(CLUBS)]
    scorer, other = SCORERS[i % len(SCORERS)], SCORERS[(i + 4) % len(SCORERS)]
    crowd = 8000 + 137 * i
    day = 1 + i % 28
    title = f"{home} beat {away} as {scorer} scores twice in match {i}"
    paras = [
        f"{scorer} scored twice as {home} beat {away} 3-1 in front of {crowd:,} supporters in match number {i} of the season.",
        f"{other} had given {away} the lead after {10 + i % 70} minutes with a header from a corner.",
        f"{scorer} equalised before half-time and added a second from the penalty spot, and a late goal from a "
        f"substitute made sure of the points for {home}.",
        f"The result leaves {home} on {20 + i} points, while {away} have now gone {1 + i % 6} games without a win.",
    ]
    return title, f"2024-04-{day:02d}", paras


def article_html(title: str, date: str, paragraphs: list[str]) -> bytes:
    """A news page around the article: menu, cookie banner, related links and footer included."""
    body = "".join(f"<p>{p}</p>" for p in paragraphs)
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>{title} | Test Sport</title>
<meta property="og:title" content="{title}"><meta property="article:published_time" content="{date}T12:00:00Z"></head>
<body><div class="cookie-banner">We use cookies to improve your experience. Accept all cookies</div>
<header><nav><a href="/">Home</a> <a href="/football">Football</a> <a href="/scores">Scores &amp; Fixtures</a></nav></header>
<main><article><h1>{title}</h1><div class="byline">By Test Reporter</div>{body}</article>
<aside class="related"><h2>Related stories</h2><a href="/x">Another story about a different match</a></aside></main>
<footer>Copyright 2024 Test Sport Media. All rights reserved.</footer></body></html>""".encode()


def rss(title: str, items: list[dict]) -> bytes:
    """An RSS 2.0 document; items have title, link, guid, pubDate (RFC 822) and description."""
    parts = []
    for it in items:
        parts.append("<item>" + "".join(f"<{k}>{_xml(v)}</{k}>" for k, v in it.items() if v is not None) + "</item>")
    return (f'<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel><title>{_xml(title)}</title>'
            f'<link>http://127.0.0.1/</link><description>test feed</description>{"".join(parts)}</channel></rss>').encode()


def match_feed(web: WebServer, n: int, *, prefix: str = "/match", feed_path: str = "/feeds/matches.xml",
               etag: str | None = '"matches-v1"') -> str:
    """Serves ``n`` match report pages and an RSS feed of them; returns the feed's URL."""
    items = []
    for i in range(n):
        title, date, paras = match_report(i)
        link = web.route(f"{prefix}/{i}.html", Route(body=article_html(title, date, paras)))
        stamp = formatdate(calendar.timegm(time.strptime(date, "%Y-%m-%d")) + 3600 * 12, usegmt=True)
        items.append({"title": title, "link": link, "guid": f"match-{i}", "pubDate": stamp, "description": paras[0]})
    return web.route(feed_path, Route(body=rss("Test Sport: match reports", items),
                                      content_type="application/rss+xml", etag=etag))


def _xml(v: object) -> str:
    return str(v).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def expected(name: str) -> dict:
    """The sidecar expectations of a fixture page (title, date, paragraphs, boilerplate)."""
    return json.loads((FIXTURES / name).with_suffix(".json").read_text(encoding="utf-8"))
