"""The article extractor on fixture pages of real-world shapes (invented football text).

Each page in tests/fixtures/web/ has a sidecar .json: title, date, the article's paragraphs and
boilerplate strings (menus, cookie banners, footers, related links, adverts) that must not be
indexed. The same pages are read as files on disk and, in test_feeds.py, fetched from a server.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

from rag.errors import InputError
from rag.extract import extract_page
from rag.ingest import read_file
from tests.webserver import FIXTURES, expected

PAGES = sorted(p.name for p in FIXTURES.glob("*.html"))
SHAPED = [p for p in PAGES if p != "undated.html"]


def flat(text: str) -> str:
    return " ".join(text.split())


def test_fixture_shapes_are_all_there():
    shapes = {expected(p)["shape"] for p in PAGES}
    assert {"news article", "live blog", "page with heavy navigation and footers", "AMP page"} <= shapes


@pytest.mark.parametrize("name", PAGES)
def test_page_keeps_the_article_and_drops_boilerplate(name):
    exp = expected(name)
    page = extract_page((FIXTURES / name).read_text(encoding="utf-8"), name)
    text = flat(page.text)
    missing = [p for p in exp["article"] if flat(p) not in text]
    leaked = [b for b in exp["boilerplate"] if b in page.text]
    assert not missing and not leaked
    assert (page.title, page.date) == (exp["title"], exp["date"])
    if exp["title"]:
        assert page.text.startswith(exp["title"] + "\n\n")  # the headline leads, so it can be cited


@pytest.mark.parametrize("name", SHAPED)
def test_html_files_on_disk_read_the_same(tmp_path, name):
    exp = expected(name)
    path = tmp_path / name
    shutil.copy(FIXTURES / name, path)
    (ps,) = read_file(path)
    assert ps.article.title == exp["title"] and ps.article.date == exp["date"]
    assert all(flat(p) in flat(ps.article.text) for p in exp["article"])
    assert not [b for b in exp["boilerplate"] if b in ps.article.text]


def test_extractor_does_at_least_as_well_as_the_parser_it_replaced():
    """The hand-written parser (bench/html_baseline.py) is the floor on every page and measure."""
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))
    try:
        from extract import measure
    finally:
        sys.path.pop(0)
    rows = measure()
    by_page: dict[str, dict[str, object]] = {}
    for r in rows:
        by_page.setdefault(r.page, {})[r.extractor] = r
    for page, r in by_page.items():
        new, old = r["trafilatura"], r["baseline"]
        assert new.title_ok >= old.title_ok and new.date_ok >= old.date_ok, page
        assert new.paragraphs >= old.paragraphs and new.paragraphs == 1.0, page
        assert new.boilerplate_leaked <= old.boilerplate_leaked and new.boilerplate_leaked == 0, page
        assert new.precision >= old.precision, page


@pytest.mark.parametrize("raw, why", [
    ("just words, no markup", "not HTML"),
    ('{"title": "json, not html"}', "not HTML"),
    ("<html><head><title>t</title><script>x()</script></head><body></body></html>", "no article text"),
])
def test_pages_without_an_article_are_refused_with_the_reason(raw, why):
    with pytest.raises(InputError, match=why):
        extract_page(raw, "page.html")


def test_dates_come_from_markup_not_from_the_story():
    html = ("<html><head><title>Kestrel Town plan for the 2025 final</title></head><body><article>"
            "<h1>Kestrel Town plan for the 2025 final</h1><p>The final on 14 June 2025 will be played at Quarry "
            "Lane, the club confirmed, after the stadium passed its inspection on 2 March 2024. "
            "Tickets go on sale next week.</p></article></body></html>")
    assert extract_page(html, "p.html").date is None


def test_tag_soup_that_breaks_date_extraction_still_gives_its_text():
    """An svg before the doctype made htmldate's clean-up fail inside lxml (found by the fuzz
    lane): the page is read without its metadata instead of failing the batch."""
    soup = ('<svg>\t"/> <meta property="og:url" content="2005-02-13<meta property="article:published_time" '
            'content="A.d</time><style>\n\n=m<nav>1e999"/>ArsenalA.<template><a b=\'<br>no.<title><body></body>'
            '<meta property="og:url" content="! &nbsp;<!DOCTYPE html><meta property="og:title" content="yes')
    page = extract_page(soup, "soup.html")
    assert "ArsenalA." in page.text and page.date is None
