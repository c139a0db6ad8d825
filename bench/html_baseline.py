"""The hand-written HTML reader that ``rag/extract.py`` (trafilatura) replaced, kept as a baseline.

It walks the tags with ``html.parser``, drops the contents of script, style, nav, header,
footer, aside, form and a few more, and keeps every other piece of text. ``bench/extract.py``
measures it against the extractor on the fixture pages in tests/fixtures/web/.
"""

from __future__ import annotations

from html.parser import HTMLParser

from rag.extract import ExtractedPage
from rag.ingest import normalise_date

_SKIP_TAGS = {"script", "style", "nav", "header", "footer", "aside", "noscript", "form", "svg",
              "iframe", "button", "template"}
_BLOCK_TAGS = {"p", "div", "br", "li", "h1", "h2", "h3", "h4", "h5", "h6", "section", "article",
               "blockquote", "tr", "figcaption", "pre", "ul", "ol", "table", "main"}
_VOID_TAGS = {"br", "img", "meta", "link", "input", "hr", "source", "wbr", "area", "base", "col"}


class _ArticleHTML(HTMLParser):
    """Collects visible article text and the metadata a news page usually carries."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.skip_depth = 0
        self.title = ""
        self.h1 = ""
        self.meta: dict[str, str] = {}
        self._in: str | None = None
        self.time_datetime: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k.lower(): (v or "") for k, v in attrs}
        if tag == "meta":
            key = (a.get("property") or a.get("name") or a.get("itemprop") or "").lower()
            if key and a.get("content"):
                self.meta[key] = a["content"]
            return
        if tag == "time" and a.get("datetime") and not self.time_datetime:
            self.time_datetime = a["datetime"]
        if tag in _SKIP_TAGS:
            if tag not in _VOID_TAGS:
                self.skip_depth += 1
            return
        if tag in ("title", "h1"):
            self._in = tag
        if tag in _BLOCK_TAGS:
            self.parts.append("\n\n" if tag != "br" else "\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIP_TAGS:
            self.skip_depth = max(0, self.skip_depth - 1)
            return
        if tag == self._in:
            self._in = None
        if tag in _BLOCK_TAGS:
            self.parts.append("\n\n")

    def handle_data(self, data: str) -> None:
        if self._in == "title":
            self.title += data
            return
        if self.skip_depth:
            return
        if self._in == "h1":
            self.h1 += data
        self.parts.append(data)


def baseline_extract(raw: str) -> ExtractedPage:
    """<h1>/og:title/<title>, article:published_time or <time>, the text outside skipped tags."""
    p = _ArticleHTML()
    p.feed(raw)
    p.close()
    paragraphs = [" ".join(seg.split()) for seg in "".join(p.parts).split("\n\n")]
    text = "\n\n".join(s for s in paragraphs if s)
    title = (" ".join(p.h1.split()) or p.meta.get("og:title") or " ".join(p.title.split()) or None)
    date = None
    for key in ("article:published_time", "og:published_time", "datepublished", "date",
                "pubdate", "dc.date", "publish-date"):
        if key in p.meta:
            date = normalise_date(p.meta[key])
            if date:
                break
    date = date or normalise_date(p.time_datetime)
    return ExtractedPage(title=title, date=date, text=text, url=p.meta.get("og:url"))
