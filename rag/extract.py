"""The article extractor: a web page or an HTML file in, its title, date and main text out.

One extractor serves both ``rag index add page.html`` and pages fetched from the web (single
URLs and feed entries), so a page reads the same whichever way it arrives. The work is done by
trafilatura, which finds the main text of a page by its structure and by how text-like each
block is, rather than by tag names alone: news sites wrap menus, cookie banners, "most read"
lists and footers in plain ``<div>``s as often as in ``<nav>`` or ``<footer>``, and a reader that
only drops semantic tags keeps all of that. On the project's fixtures of real page shapes
(news article, live blog, heavy navigation, AMP) it keeps every article paragraph and no
boilerplate, where the hand-written parser it replaced leaked cookie and menu text
(docs/BENCHMARKS.md, "Article extraction").

Dates come from the page's markup only (meta tags, JSON-LD, ``<time>``, the URL), never from
the body text: a date mentioned in a match report is not the day it was published, and a feed
entry's own date is a better fallback than a guess.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .errors import InputError

MAX_TITLE_CHARS = 300
_DATE_PARAMS = {"extensive_search": False, "original_date": True}


@dataclass(frozen=True)
class ExtractedPage:
    """What a page says about itself; ``text`` starts with the title (so it can be cited)."""

    title: str | None
    date: str | None  # ISO YYYY-MM-DD
    text: str
    url: str | None  # the page's canonical URL when it declares one


def looks_like_html(raw: str) -> bool:
    """A tag near the start: enough to tell HTML from plain text or JSON."""
    return bool(re.search(r"<\s*(!doctype|html|head|body|div|p|article|meta|title|h1)\b", raw[:20000], re.I))


def extract_page(html: str, source: str, *, url: str | None = None) -> ExtractedPage:
    """Extracts the article of one HTML page.

    Args:
        html: the page, decoded.
        source: what to name in errors (a file path or URL).
        url: where the page came from, which helps resolve dates in URLs.

    Raises:
        InputError: the input is not HTML, or no article text was found in it.
    """
    from .ingest import normalise_date  # ingest imports this module for HTML files

    if not looks_like_html(html):
        raise InputError(f"{source}: not HTML (no tags found)")
    import trafilatura

    options = dict(url=url, include_comments=False, include_tables=True, include_images=False,
                   include_links=False, date_extraction_params=_DATE_PARAMS)
    try:
        doc = trafilatura.bare_extraction(html, with_metadata=True, **options)
    except Exception:  # noqa: BLE001 - lxml/htmldate on tag soup: any error; the text may still be had
        try:  # without the metadata pass (htmldate), which is where most tag soups fail
            doc = trafilatura.bare_extraction(html, with_metadata=False, **options)
        except Exception as e:  # noqa: BLE001 - one bad page is this page's failure, never the batch's
            raise InputError(f"{source}: malformed HTML ({type(e).__name__}: {e})") from None
    raw_text = (getattr(doc, "text", None) or "") if doc is not None else ""
    paragraphs = [" ".join(line.split()) for line in raw_text.splitlines()]
    paragraphs = [p for p in paragraphs if p]
    if not paragraphs:
        raise InputError(f"{source}: no article text found in the HTML")
    title = " ".join((getattr(doc, "title", None) or "").split())[:MAX_TITLE_CHARS] or None
    if title and paragraphs[0] != title:
        # The headline leads the text so that it can be cited; a kicker or byline line that
        # trafilatura kept above it goes after it.
        if title in paragraphs[:4]:
            paragraphs.remove(title)
        paragraphs.insert(0, title)
    date = normalise_date(getattr(doc, "date", None))
    page_url = getattr(doc, "url", None) or None
    return ExtractedPage(title=title, date=date, text="\n\n".join(paragraphs), url=page_url)
