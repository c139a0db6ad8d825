"""Polite, bounded HTTP fetching for feeds and pages.

Everything the index reads from the web goes through ``Fetcher.get``, which is where the rules
live: only http(s); a User-Agent that names the program; a connect timeout and a deadline for
the whole response (a server that trickles bytes is cut off too); a size cap enforced while
reading, after decompression, so a huge or endless page costs at most the cap; redirects
followed by hand, a few at most, each hop checked again (scheme, robots.txt); one request at a
time per host (and the host's robots.txt ``Crawl-delay`` honoured, up to a bound); and
robots.txt respected unless turned off, read per RFC 9309: a 4xx means no rules, a 5xx or an
unreachable server means stay away for now.

robots.txt files are kept for a day, in memory and optionally in a ``RobotsCache`` (the feed
store keeps them in the index), so a feed checked every few minutes costs one request, not two.
Failures are ``FetchError``s naming the URL and the reason, and say whether trying again later
could help (``transient``), which is what lets a feed update retry a timeout but not a PDF.
"""

from __future__ import annotations

import ipaddress
import socket
import threading
import time
import urllib.robotparser
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol
from urllib.parse import urljoin, urlsplit

from .errors import InputError

USER_AGENT = "football-rag/0.1 (local news indexer; respects robots.txt)"
ROBOTS_AGENT = "football-rag"  # the product token robots.txt rules are matched against
ROBOTS_TTL_S = 24 * 3600
ROBOTS_RETRY_S = 300.0
MAX_CRAWL_DELAY_S = 10.0
_REDIRECTS = (301, 302, 303, 307, 308)


class FetchError(InputError):
    """A URL that could not be fetched; ``transient`` when trying later may work."""

    def __init__(self, message: str, *, transient: bool = False, status: int | None = None) -> None:
        super().__init__(message)
        self.transient = transient
        self.status = status


@dataclass(frozen=True)
class FetchSettings:
    """Limits for every request.

    Attributes:
        timeout_s: the deadline for one response, headers and body, per hop.
        connect_timeout_s: for the TCP/TLS connection alone.
        max_bytes: the largest body read (after decompression); bigger responses fail.
        max_redirects: hops followed before giving up.
        robots: respect robots.txt (the default).
        user_agent: sent with every request.
    """

    timeout_s: float = 20.0
    connect_timeout_s: float = 10.0
    max_bytes: int = 5_000_000
    max_redirects: int = 5
    robots: bool = True
    user_agent: str = USER_AGENT


@dataclass
class Response:
    """A fetched resource. ``status`` 304 means not modified (``body`` is empty)."""

    url: str  # as requested
    final_url: str  # after redirects
    status: int
    headers: Mapping[str, str]
    body: bytes = b""
    redirects: int = 0

    @property
    def not_modified(self) -> bool:
        return self.status == 304

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "").split(";", 1)[0].strip().lower()

    @property
    def charset(self) -> str | None:
        for part in self.headers.get("content-type", "").split(";")[1:]:
            k, _, v = part.partition("=")
            if k.strip().lower() == "charset" and v.strip():
                return v.strip().strip("\"'")
        return None

    def text(self) -> str:
        """The body as text: the declared charset, else UTF-8, else a detected encoding."""
        if self.charset:
            try:
                return self.body.decode(self.charset, errors="replace")
            except LookupError:
                pass
        try:
            return self.body.decode("utf-8-sig")
        except UnicodeDecodeError:
            from charset_normalizer import from_bytes

            best = from_bytes(self.body).best()
            return str(best) if best is not None else self.body.decode("utf-8", errors="replace")


class RobotsCache(Protocol):
    """Where robots.txt files outlive the process (the feed store implements it)."""

    def robots_get(self, origin: str) -> tuple[float, int, str] | None:
        """(fetched at, HTTP status or 0 for unreachable, body) of a stored robots.txt."""

    def robots_put(self, origin: str, fetched_at: float, status: int, body: str) -> None: ...


@dataclass
class _Host:
    lock: threading.Lock = field(default_factory=threading.Lock)
    next_at: float = 0.0  # monotonic time before which no request starts (Crawl-delay)


def check_url(url: str) -> str:
    """The URL if it can be fetched (http or https, with a host); else an InputError naming it."""
    if not isinstance(url, str) or not url.strip():
        raise InputError("no URL given")
    url = url.strip()
    parts = urlsplit(url)
    if parts.scheme.lower() not in ("http", "https"):
        raise InputError(f"{url}: only http and https URLs can be fetched")
    if not parts.hostname:
        raise InputError(f"{url}: the URL has no host")
    return url


def is_private_host(host: str) -> bool:
    """Whether a host is, or resolves to, a loopback, private, link-local or reserved address."""
    host = host.strip("[]")
    try:
        return not ipaddress.ip_address(host.split("%", 1)[0]).is_global
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None)
    except (socket.gaierror, UnicodeError):
        return False  # the request itself will fail and say why
    return any(not ipaddress.ip_address(str(i[4][0]).split("%", 1)[0]).is_global for i in infos)


def origin_of(url: str) -> str:
    p = urlsplit(url)
    return f"{p.scheme.lower()}://{p.netloc.lower()}"


class Fetcher:
    """Fetches URLs by the rules above; safe to share between threads."""

    def __init__(self, settings: FetchSettings | None = None, *, robots_cache: RobotsCache | None = None) -> None:
        import httpx

        self.settings = settings or FetchSettings()
        self.robots_cache = robots_cache
        s = self.settings
        self._client = httpx.Client(
            follow_redirects=False,
            timeout=httpx.Timeout(s.timeout_s, connect=s.connect_timeout_s),
            headers={"User-Agent": s.user_agent, "Accept-Encoding": "gzip, deflate"},
        )
        self._hosts: dict[str, _Host] = {}
        # origin -> (fetched at, parser or None, reason to stay away or None, status)
        self._robots: dict[str, tuple[float, urllib.robotparser.RobotFileParser | None, str | None, int]] = {}
        self._lock = threading.Lock()
        self._robots_lock = threading.Lock()
        self.requests = 0  # every request made, robots.txt included (for reports and tests)

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> Fetcher:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ------------------------------------------------------------------ requests

    def get(self, url: str, *, etag: str | None = None, last_modified: str | None = None,
            accept: str | None = None, max_bytes: int | None = None, private_ok: bool = True) -> Response:
        """GETs a URL, following redirects; conditional when ``etag``/``last_modified`` are given.

        ``private_ok=False`` refuses hosts on loopback, private or link-local addresses (at every
        hop): a feed on the internet must not make the indexer read a machine on the local
        network and put its pages into the index.

        Raises:
            FetchError: refused scheme or address, robots.txt, timeout, too large, too many
                redirects, an HTTP error status, or a network error.
        """
        url = check_url(url)
        headers = {"Accept": accept or "*/*"}
        if etag:
            headers["If-None-Match"] = etag
        if last_modified:
            headers["If-Modified-Since"] = last_modified
        current = url
        for hop in range(self.settings.max_redirects + 1):
            host = urlsplit(current).hostname or ""
            if not private_ok and is_private_host(host):
                raise FetchError(f"{url}: refused: {host} is a local or private address"
                                 + (f" (redirected to {current})" if current != url else ""))
            if self.settings.robots:
                self._check_robots(current)
            resp = self._request(current, headers, max_bytes or self.settings.max_bytes)
            if resp.status in _REDIRECTS and resp.headers.get("location"):
                target = urljoin(current, resp.headers["location"])
                try:
                    current = check_url(target)
                except InputError:
                    raise FetchError(f"{url}: redirected to {target}, which is not an http(s) URL") from None
                continue
            resp.url, resp.redirects = url, hop
            if resp.status == 304 or 200 <= resp.status < 300:
                return resp
            transient = resp.status in (408, 425, 429) or resp.status >= 500
            raise FetchError(f"{url}: HTTP {resp.status}" + (f" (at {current})" if current != url else ""),
                             transient=transient, status=resp.status)
        raise FetchError(f"{url}: more than {self.settings.max_redirects} redirects")

    def _host(self, url: str) -> _Host:
        key = origin_of(url)
        with self._lock:
            return self._hosts.setdefault(key, _Host())

    def _request(self, url: str, headers: dict[str, str], max_bytes: int) -> Response:
        """One request, under the host's lock, with the deadline and the size cap."""
        import httpx

        host = self._host(url)
        s = self.settings
        with host.lock:
            wait = host.next_at - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            deadline = time.monotonic() + s.timeout_s
            with self._lock:
                self.requests += 1
            try:
                with self._client.stream("GET", url, headers=headers) as r:
                    hdrs = {k.lower(): v for k, v in r.headers.items()}
                    if r.status_code in _REDIRECTS or r.status_code == 304 or r.status_code >= 400:
                        return Response(url, url, r.status_code, hdrs)
                    declared = hdrs.get("content-length", "")
                    if declared.isdigit() and int(declared) > max_bytes:
                        raise FetchError(f"{url}: the response is {_size(int(declared))}, over the "
                                         f"{_size(max_bytes)} limit")
                    chunks: list[bytes] = []
                    got = 0
                    for chunk in r.iter_bytes(65536):
                        got += len(chunk)
                        if got > max_bytes:
                            raise FetchError(f"{url}: the response is over the {_size(max_bytes)} limit")
                        chunks.append(chunk)
                        if time.monotonic() > deadline:
                            raise FetchError(f"{url}: timed out after {s.timeout_s:g} s", transient=True)
                    if time.monotonic() > deadline:
                        raise FetchError(f"{url}: timed out after {s.timeout_s:g} s", transient=True)
                    return Response(url, url, r.status_code, hdrs, b"".join(chunks))
            except httpx.TimeoutException:
                raise FetchError(f"{url}: timed out after {s.timeout_s:g} s", transient=True) from None
            except httpx.TooManyRedirects:  # pragma: no cover - redirects are followed by hand
                raise FetchError(f"{url}: too many redirects") from None
            except httpx.HTTPError as e:
                raise FetchError(f"{url}: {_network_reason(e)}", transient=True) from None
            finally:
                delay = self._crawl_delay(url)
                host.next_at = time.monotonic() + delay if delay else 0.0

    # ------------------------------------------------------------------ robots.txt

    def allowed(self, url: str) -> bool:
        """Whether robots.txt lets this program fetch the URL (True when robots are ignored)."""
        if not self.settings.robots:
            return True
        parser, problem = self._robots_for(origin_of(check_url(url)))
        return problem is None and (parser is None or parser.can_fetch(ROBOTS_AGENT, url))

    def _check_robots(self, url: str) -> None:
        parser, problem = self._robots_for(origin_of(url))
        if problem:
            raise FetchError(f"{url}: {problem}", transient=True)
        if parser is not None and not parser.can_fetch(ROBOTS_AGENT, url):
            raise FetchError(f"{url}: disallowed by robots.txt")

    def _crawl_delay(self, url: str) -> float:
        entry = self._robots.get(origin_of(url))
        if not entry or entry[1] is None:
            return 0.0
        try:
            delay = entry[1].crawl_delay(ROBOTS_AGENT)
        except (TypeError, ValueError):
            return 0.0
        return min(float(delay), MAX_CRAWL_DELAY_S) if delay else 0.0

    def _robots_for(self, origin: str) -> tuple[urllib.robotparser.RobotFileParser | None, str | None]:
        """(parser or None for "no rules", a reason to stay away or None)."""
        cached = self._robots.get(origin)
        if cached is not None and time.time() - cached[0] <= _ttl(cached[3]):
            return cached[1], cached[2]
        with self._robots_lock:  # one download per origin, however many threads ask
            cached = self._robots.get(origin)
            now = time.time()
            if cached is not None and now - cached[0] <= _ttl(cached[3]):
                return cached[1], cached[2]
            stored = self.robots_cache.robots_get(origin) if self.robots_cache is not None else None
            if stored is not None and now - stored[0] <= _ttl(stored[1]):
                fetched_at, status, body = stored
            else:
                fetched_at, (status, body) = now, self._download_robots(origin)
                if self.robots_cache is not None:
                    self.robots_cache.robots_put(origin, fetched_at, status, body)
            parser, problem = _robots_rules(origin, status, body)
            self._robots[origin] = (fetched_at, parser, problem, status)
            return parser, problem

    def _download_robots(self, origin: str) -> tuple[int, str]:
        """(status, body) of robots.txt; status 0 when the server could not be reached."""
        url = origin + "/robots.txt"
        for _ in range(self.settings.max_redirects + 1):
            try:
                resp = self._request(url, {"Accept": "text/plain, */*"}, 500_000)
            except FetchError as e:
                return 0, str(e).split(": ", 1)[-1]
            if resp.status in _REDIRECTS and resp.headers.get("location"):
                url = urljoin(url, resp.headers["location"])
                if urlsplit(url).scheme not in ("http", "https"):
                    return 404, ""
                continue
            return resp.status, resp.text() if resp.status < 300 else ""
        return 404, ""  # RFC 9309: a robots.txt lost in redirects counts as unavailable


def _robots_rules(origin: str, status: int, body: str) -> tuple[urllib.robotparser.RobotFileParser | None, str | None]:
    if 200 <= status < 300:
        parser = urllib.robotparser.RobotFileParser(origin + "/robots.txt")
        parser.parse(body.splitlines())
        return parser, None
    if 400 <= status < 500:
        return None, None  # unavailable: no rules apply
    why = f"HTTP {status}" if status else (body or "unreachable")
    return None, f"robots.txt of {origin} could not be read ({why}); not fetching for now"


def _ttl(status: int) -> float:
    """A robots.txt that was read (or absent) is good for a day; a failure is retried soon."""
    return ROBOTS_TTL_S if 200 <= status < 500 else ROBOTS_RETRY_S


def _size(n: int) -> str:
    return f"{n / 1e6:.1f} MB" if n >= 1_000_000 else f"{n / 1e3:.0f} kB"


def _network_reason(e: Exception) -> str:
    text = str(e) or type(e).__name__
    for hint in ("Connection refused", "Name or service not known", "nodename nor servname",
                 "Temporary failure in name resolution", "certificate verify failed"):
        if hint in text:
            return hint.lower()
    return text.splitlines()[0][:200]
