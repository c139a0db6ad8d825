"""Web pages as articles: fetch a URL politely, extract its article, make it a ``ParsedSource``.

The URL as given is the article's source (its identity in the index), so adding the same page
again is a no-op and a changed page replaces its old version, exactly as for files. Pages of
different hosts are fetched in parallel (a few threads); the ``Fetcher`` keeps each host to one
request at a time.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import PurePosixPath
from urllib.parse import unquote, urlsplit

from .errors import InputError
from .extract import extract_page, looks_like_html
from .fetch import Fetcher, FetchError, check_url
from .ingest import ParsedSource, clean_text, content_hash, title_from_first_sentence
from .models import Article

HTML_ACCEPT = "text/html, application/xhtml+xml;q=0.9, */*;q=0.1"
HTML_TYPES = ("text/html", "application/xhtml+xml", "application/xml", "text/xml", "")
PAGE_THREADS = 4


def is_url(value: object) -> bool:
    """Whether an ``add`` argument is a web address rather than a path."""
    return isinstance(value, str) and bool(re.match(r"^[A-Za-z][A-Za-z0-9+.-]*://", value.strip()))


def article_id_for(url: str) -> str:
    """A readable id from the URL: its last path segment without extension, else its host."""
    parts = urlsplit(url)
    name = PurePosixPath(unquote(parts.path)).stem if parts.path not in ("", "/") else ""
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", name or (parts.hostname or "page")).strip("-.")
    return slug[:80] or "page"


def fetch_page(fetcher: Fetcher, url: str, *, title: str | None = None, date: str | None = None,
               private_ok: bool = True) -> ParsedSource:
    """Fetches one page and extracts its article.

    Args:
        title, date: what to use where the page gives none (a feed entry's own).
        private_ok: whether the page may be on a local or private address (``Fetcher.get``).

    Raises:
        FetchError: the page could not be fetched, or is not an HTML page.
        InputError: the page has no article text, or the URL is not http(s).
    """
    url = check_url(url)
    resp = fetcher.get(url, accept=HTML_ACCEPT, private_ok=private_ok)
    ctype = resp.content_type
    if ctype not in HTML_TYPES:
        raise FetchError(f"{url}: not an HTML page ({ctype})")
    raw = resp.text()
    if not looks_like_html(raw):
        raise FetchError(f"{url}: not an HTML page ({ctype or 'no content type'}, no tags found)")
    page = extract_page(raw, url, url=resp.final_url)
    text = clean_text(page.text)
    heading = page.title or title
    if heading and not page.title:
        text = f"{heading}\n\n{text}"  # the feed's title leads the text, so it can be cited
    article = Article(
        id=article_id_for(url), title=heading or title_from_first_sentence(text),
        date=page.date or date, source=url, text=text,
    )
    return ParsedSource(article=article, content_hash=content_hash(text))


def fetch_pages(fetcher: Fetcher, urls: Iterable[str]) -> list[ParsedSource | InputError]:
    """Fetches several pages (hosts in parallel); a page that fails comes back as its error."""
    urls = list(dict.fromkeys(urls))

    def one(url: str) -> ParsedSource | InputError:
        try:
            return fetch_page(fetcher, url)
        except InputError as e:
            return e

    if len(urls) <= 1:
        return [one(u) for u in urls]
    with ThreadPoolExecutor(max_workers=min(PAGE_THREADS, len(urls)), thread_name_prefix="rag-fetch") as pool:
        return list(pool.map(one, urls))
