"""Following RSS and Atom feeds: read each feed, fetch each new entry's page, index its article.

An update of one feed costs as little as the feed allows: a conditional GET (the ETag and
Last-Modified it sent last time), and when the server answers 304 nothing else happens. When
the feed did change, entries already seen with the same updated/published stamp are skipped
without a request; new and edited entries have their pages fetched (hosts in parallel, each host
one request at a time) and extracted, and are indexed in one batch, so an edited page replaces
its article and an unchanged one is a no-op. The page's own title and date are used, the feed
entry's where the page has none.

Failures are reported per feed and per entry with their reason and never stop the rest. Entries
that failed for good (not HTML, too big, disallowed by robots.txt, no article text) are
remembered and not fetched again until the entry changes; entries that failed for now (timeout,
server error) are retried, and so that the next update sees them again the feed's validators are
not updated, and the feed is read in full next time.

``FeedRefresher`` runs updates on a background thread at an interval (``rag feed update
--every``, ``rag chat --feeds-every``); ``Feeds.update`` serialises updates of one index, so a
"refresh now" and the background refresher never overlap.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from html.parser import HTMLParser
from urllib.parse import urljoin, urlsplit

from .errors import ConfigError, InputError, RagError
from .feedstore import EntryRecord, FeedInfo, FeedStore, feed_store_for
from .fetch import Fetcher, FetchError, FetchSettings, Response, check_url, is_private_host
from .ingest import ParsedSource
from .web import PAGE_THREADS, fetch_page

log = logging.getLogger(__name__)

FEED_ACCEPT = ("application/rss+xml, application/atom+xml, application/xml;q=0.9, text/xml;q=0.9, "
               "text/html;q=0.5, */*;q=0.1")
FEED_MAX_BYTES = 10_000_000
MAX_NEW_ENTRIES = 200  # per feed and update; the rest wait for the next one
MIN_INTERVAL_S = 60.0
_FEED_TYPES = ("application/rss+xml", "application/atom+xml", "application/rdf+xml", "application/feed+json")


@dataclass(frozen=True)
class FeedEntry:
    """One entry of a parsed feed."""

    entry_id: str
    link: str | None
    title: str | None
    date: str | None  # ISO date, published (else updated)
    updated: str | None  # the raw updated/published stamp, compared to notice edits


@dataclass(frozen=True)
class ParsedFeed:
    title: str | None
    version: str  # feedparser's name, e.g. "rss20", "atom10"
    entries: list[FeedEntry]


@dataclass
class EntryResult:
    """What one entry became: added / updated / skipped / failed."""

    link: str | None
    title: str | None
    status: str
    article_id: str | None = None
    reason: str | None = None


@dataclass
class FeedResult:
    """One feed's update: "updated", "not modified" or "failed" (with ``reason``)."""

    url: str
    title: str | None
    status: str
    reason: str | None = None
    entries: list[EntryResult] = field(default_factory=list)
    requests: int = 0  # HTTP requests made for this feed (robots.txt included)
    page_requests: int = 0
    seconds: float = 0.0

    def count(self, status: str) -> int:
        return sum(1 for e in self.entries if e.status == status)

    def summary(self) -> str:
        if self.status != "updated":
            return self.status + (f": {self.reason}" if self.reason else "")
        return (f"{self.count('added')} added, {self.count('updated')} updated, {self.count('skipped')} skipped, "
                f"{self.count('failed')} failed")


@dataclass
class FeedUpdateReport:
    """Every feed's result from one ``Feeds.update``."""

    feeds: list[FeedResult] = field(default_factory=list)
    seconds: float = 0.0

    def count(self, status: str) -> int:
        return sum(f.count(status) for f in self.feeds)

    @property
    def failed_feeds(self) -> int:
        return sum(1 for f in self.feeds if f.status == "failed")

    def summary(self) -> str:
        nm = sum(1 for f in self.feeds if f.status == "not modified")
        return (f"{len(self.feeds)} feeds ({nm} not modified, {self.failed_feeds} failed): "
                f"{self.count('added')} articles added, {self.count('updated')} updated, "
                f"{self.count('skipped')} skipped, {self.count('failed')} failed ({self.seconds:.1f}s)")


# ---------------------------------------------------------------------------- parsing


def parse_feed(body: bytes, url: str, content_type: str = "") -> ParsedFeed:
    """RSS 0.9x/1.0/2.0 or Atom, through feedparser (which also survives most broken XML).

    Raises:
        InputError: no feed could be read from the document.
    """
    import feedparser

    d = feedparser.parse(body, response_headers={"content-type": content_type or "application/xml",
                                                  "content-location": url})
    why = d.get("bozo_exception") if d.get("bozo") else None
    entries = []
    for e in d.entries:
        link = e.get("link") or next((lk.get("href") for lk in e.get("links", []) if lk.get("href")), None)
        link = urljoin(url, link) if link else None
        title = " ".join((e.get("title") or "").split()) or None
        if link is None and title is None:
            continue  # what a broken document leaves of an entry
        stamp = e.get("updated") or e.get("published")
        parsed = e.get("published_parsed") or e.get("updated_parsed")
        date = time.strftime("%Y-%m-%d", parsed) if parsed else None
        entry_id = e.get("id") or link or f"{title}|{stamp}"
        entries.append(FeedEntry(entry_id=str(entry_id), link=link, title=title, date=date, updated=stamp))
    if not entries and d.get("version") and why is not None:
        where = f" at line {why.getLineNumber()}" if hasattr(why, "getLineNumber") else ""
        raise InputError(f"{url}: broken XML, no entries could be read ({_why(why)}{where})")
    if not d.get("version") and not entries:
        ctype = content_type.split(";", 1)[0].strip().lower()
        detail = ctype if ctype and "xml" not in ctype else (_why(why) if why is not None else "")
        raise InputError(f"{url}: not an RSS or Atom feed" + (f" ({detail})" if detail else ""))
    title = " ".join((d.feed.get("title") or "").split()) or None
    return ParsedFeed(title=title, version=d.get("version") or "unknown", entries=entries)


def _why(exc: object) -> str:
    text = re.sub(r"^<unknown>:\d+:\d+:\s*", "", str(exc).strip()) or type(exc).__name__
    return text.splitlines()[0][:160]


class _FeedLinks(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.hrefs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k.lower(): (v or "") for k, v in attrs}
        if tag == "link" and "alternate" in a.get("rel", "").lower().split() and a.get("href") \
                and a.get("type", "").lower() in _FEED_TYPES:
            self.hrefs.append(a["href"])


def discover_feed(html: str, base_url: str) -> str | None:
    """The feed a web page advertises (``<link rel="alternate" type="application/rss+xml">``)."""
    p = _FeedLinks()
    try:
        p.feed(html[:500_000])
    except Exception:  # html.parser is lenient; a page it still rejects advertises nothing
        return None
    return urljoin(base_url, p.hrefs[0]) if p.hrefs else None


def parse_interval(text: str, *, minimum_s: float = MIN_INTERVAL_S) -> float:
    """"90s", "15m", "2h", "1d" (or bare seconds) -> seconds; polite intervals only."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*", str(text).lower())
    if not m:
        raise ConfigError(f"interval '{text}' is not a duration (use e.g. 90s, 15m, 2h)")
    seconds = float(m.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}[m.group(2)]
    if seconds < minimum_s:
        raise ConfigError(f"interval '{text}' is too short: feeds are checked at most every {minimum_s:g} s")
    return seconds


# ---------------------------------------------------------------------------- following


class Feeds:
    """The feeds of one index: add, list, remove, update. Shared by the CLI, the chat and servers.

    Args:
        assistant: the ``Assistant`` whose index holds the feeds and receives the articles.
        settings: fetch limits (timeouts, size cap, robots.txt) for every update.
    """

    def __init__(self, assistant, *, settings: FetchSettings | None = None, store: FeedStore | None = None) -> None:
        self.assistant = assistant
        self.settings = settings or FetchSettings()
        self.store: FeedStore = store or feed_store_for(assistant.store)
        self._update_lock = threading.Lock()

    def fetcher(self, settings: FetchSettings | None = None) -> Fetcher:
        """A fetcher whose robots.txt files are cached in the index."""
        return Fetcher(settings or self.settings, robots_cache=self.store)

    def list(self) -> list[FeedInfo]:
        return self.store.feeds()

    def add(self, url: str, *, update: bool = True, settings: FetchSettings | None = None) -> tuple[FeedInfo, FeedResult | None]:
        """Follows a feed: checks that it is one (a page advertising a feed is followed to it),
        stores it, and indexes its entries unless ``update`` is False (then nothing is fetched).

        Raises:
            InputError: not an http(s) URL, already followed, unreachable, or not a feed.
        """
        url = check_url(url)
        if not update:
            return self.store.add_feed(url, None), None
        with self._update_lock, self.store.updating(), self.fetcher(settings) as fetcher:
            resp = fetcher.get(url, accept=FEED_ACCEPT, max_bytes=FEED_MAX_BYTES)
            try:
                parsed = parse_feed(resp.body, resp.final_url, resp.headers.get("content-type", ""))
            except InputError:
                found = discover_feed(resp.text(), resp.final_url) if resp.content_type in ("text/html", "") else None
                if found is None or found == url:
                    raise
                url = check_url(found)
                resp = fetcher.get(url, accept=FEED_ACCEPT, max_bytes=FEED_MAX_BYTES)
                parsed = parse_feed(resp.body, resp.final_url, resp.headers.get("content-type", ""))
            info = self.store.add_feed(url, parsed.title)
            result = self._update_one(info, fetcher, prefetched=(resp, parsed))
        return self.store.feed(url) or info, result

    def remove(self, url: str, *, purge: bool = False) -> list[str]:
        """Stops following a feed; with ``purge`` its articles leave the index too.

        Returns the ids of the articles removed.
        """
        ids = self.store.remove_feed(url.strip())
        removed = []
        if purge:
            known = {a.id for a in self.assistant.articles()}
            for aid in ids:
                if aid in known:
                    self.assistant.remove(aid)
                    removed.append(aid)
        return removed

    def update(self, urls: Sequence[str] | None = None, *, settings: FetchSettings | None = None,
               progress: Callable[[FeedResult], None] | None = None) -> FeedUpdateReport:
        """Updates the given feeds (default: all), one after another; never raises for a feed."""
        t0 = time.perf_counter()
        report = FeedUpdateReport()
        with self._update_lock, self.store.updating(), self.fetcher(settings) as fetcher:
            feeds = self.store.feeds()
            if urls:
                by_url = {f.url: f for f in feeds}
                missing = [u for u in urls if u not in by_url]
                if missing:
                    raise InputError(f"{missing[0]}: no such feed (see `rag feed list`)")
                feeds = [by_url[u] for u in urls]
            for info in feeds:
                result = self._update_one(info, fetcher)
                report.feeds.append(result)
                if progress is not None:
                    progress(result)
        report.seconds = time.perf_counter() - t0
        return report

    # ------------------------------------------------------------------ one feed

    def _update_one(self, info: FeedInfo, fetcher: Fetcher,
                    prefetched: tuple[Response, ParsedFeed] | None = None) -> FeedResult:
        t0 = time.perf_counter()
        requests_before = fetcher.requests
        result = FeedResult(url=info.url, title=info.title, status="failed")
        try:
            if prefetched is not None:
                resp, parsed = prefetched
            else:
                resp = fetcher.get(info.url, etag=info.etag, last_modified=info.last_modified,
                                   accept=FEED_ACCEPT, max_bytes=FEED_MAX_BYTES)
                parsed = None if resp.not_modified else parse_feed(
                    resp.body, resp.final_url, resp.headers.get("content-type", ""))
            if parsed is None:
                result.status = "not modified"
                self.store.record_check(info.url, status=result.status, keep_validators=True)
            else:
                result.title = parsed.title or info.title
                complete = self._index_entries(info, parsed, fetcher, result)
                result.status = "updated"
                self.store.record_check(info.url, status="updated", title=parsed.title,
                                        etag=resp.headers.get("etag"),
                                        last_modified=resp.headers.get("last-modified"),
                                        keep_validators=not complete)
        except RagError as e:
            result.status, result.reason = "failed", str(e)
            self.store.record_check(info.url, status="failed", error=str(e), keep_validators=True)
        result.requests = fetcher.requests - requests_before
        result.seconds = time.perf_counter() - t0
        log.info("feed %s: %s", info.url, result.summary())
        return result

    def _index_entries(self, info: FeedInfo, parsed: ParsedFeed, fetcher: Fetcher, result: FeedResult) -> bool:
        """Fetches and indexes new and edited entries; False when some should be tried again."""
        known = self.store.entries(info.url)
        todo: list[FeedEntry] = []
        records: list[EntryRecord] = []
        complete = True
        seen: set[str] = set()
        for e in parsed.entries:
            if e.entry_id in seen:
                continue
            seen.add(e.entry_id)
            rec = known.get(e.entry_id)
            if rec is not None and rec.updated == e.updated:
                why = "already indexed" if rec.status == "indexed" else f"failed before: {rec.error}"
                result.entries.append(EntryResult(e.link, e.title, "skipped", rec.article_id, why))
            elif e.link is None:
                result.entries.append(EntryResult(None, e.title, "failed", None, "the entry has no link"))
                records.append(EntryRecord(e.entry_id, None, e.updated, None, "failed", "the entry has no link"))
            elif len(todo) >= MAX_NEW_ENTRIES:
                complete = False
            else:
                todo.append(e)

        # a feed on a public host may only send the indexer to public hosts
        private_ok = is_private_host(urlsplit(info.url).hostname or "")

        def page(e: FeedEntry) -> ParsedSource | InputError:
            try:
                return fetch_page(fetcher, e.link or "", title=e.title, date=e.date, private_ok=private_ok)
            except InputError as err:
                return err

        if todo:
            before = fetcher.requests
            with ThreadPoolExecutor(max_workers=min(PAGE_THREADS, len(todo)), thread_name_prefix="rag-feed") as pool:
                sources = list(pool.map(page, todo))
            result.page_requests = fetcher.requests - before
            report = self.assistant.add_sources(sources)
            for e, src, item in zip(todo, sources, report.items):
                result.entries.append(EntryResult(e.link, e.title, item.status, item.article_id, item.reason))
                if item.status != "failed":
                    records.append(EntryRecord(e.entry_id, e.link, e.updated, item.article_id, "indexed"))
                elif isinstance(src, FetchError) and src.transient:
                    complete = False  # not remembered: tried again next time
                else:
                    records.append(EntryRecord(e.entry_id, e.link, e.updated, None, "failed", item.reason))
        self.store.put_entries(info.url, records)
        return complete


class FeedRefresher:
    """Updates every feed of an index at an interval, on a daemon thread, until stopped.

    The chat server and ``rag serve`` start one when asked (``--feeds-every``)::

        refresher = FeedRefresher(assistant.feeds, every_s=900).start()
        ...
        refresher.stop()

    Args:
        feeds: the index's ``Feeds``.
        every_s: seconds from the end of one update to the start of the next.
        first_after_s: delay before the first update (0: at once).
        on_report: called with each ``FeedUpdateReport`` (e.g. to print it).
    """

    def __init__(self, feeds: Feeds, every_s: float, *, first_after_s: float = 0.0,
                 on_report: Callable[[FeedUpdateReport], None] | None = None) -> None:
        if every_s <= 0:
            raise ConfigError(f"the refresh interval must be positive, got {every_s}")
        self.feeds = feeds
        self.every_s = every_s
        self.first_after_s = first_after_s
        self.on_report = on_report
        self.last_report: FeedUpdateReport | None = None
        self.runs = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> FeedRefresher:
        if self._thread is None or not self._thread.is_alive():
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="rag-feed-refresher", daemon=True)
            self._thread.start()
        return self

    def stop(self, timeout: float | None = 30.0) -> None:
        """Asks the thread to stop and waits for an update in progress to finish."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _run(self) -> None:
        if self._stop.wait(self.first_after_s):
            return
        while True:
            try:
                report = self.feeds.update()
                self.last_report = report
                if self.on_report is not None:
                    self.on_report(report)
            except Exception:  # a background thread must outlive any one bad update
                log.exception("feed refresh failed")
            self.runs += 1
            if self._stop.wait(self.every_s):
                return
