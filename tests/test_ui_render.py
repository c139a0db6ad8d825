"""The page's markup builders: citations to links, highlighting by offsets, escaping, file names."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from rag.errors import InputError
from rag.models import Answer, Article, Chunk, Citation, IngestItem, IngestReport, Passage
from ui import render

EVIL = '<script>alert(1)</script> <img src=x onerror="alert(2)"> & "quotes"'
TEXT = (
    "date 2023-07-25 Bayer Leverkusen manager Xabi Alonso is in contact with Real Madrid.\n\n"
    "Alonso is currently serving as Leverkusen's manager with his contract expiring in June 2024. "
    "The 41-year-old won every major trophy as a player.\n\n"
    "Ancelotti is expected to see out his contract."
)
QUOTE = "Alonso is currently serving as Leverkusen's manager with his contract expiring in June 2024."


def _article(text: str = TEXT, title: str = "Bayer Leverkusen manager Xabi Alonso", aid: str = "002") -> Article:
    return Article(id=aid, title=title, date="2023-07-25", source="/data/seeds/002.txt", text=text)


def _citation(article: Article, quote: str, n: int = 1, supported: bool = True) -> Citation:
    start = article.text.index(quote)
    return Citation(n=n, article_id=article.id, title=article.title, date=article.date, source=article.source,
                    quote=quote, start=start, end=start + len(quote), supported=supported,
                    support=1.0 if supported else 0.25)


def _passage(article: Article, start: int, end: int, cid: int = 1, score: float = 0.03) -> Passage:
    chunk = Chunk(id=cid, article_id=article.id, ordinal=cid, text=article.text[start:end], start=start, end=end)
    return Passage(chunk=chunk, article=article, score=score, dense_rank=2, lexical_rank=1)


def _answer(article: Article, citations: list[Citation], passages: list[Passage], text: str,
            unsupported: list[str] | None = None) -> Answer:
    return Answer(question="When does Alonso's contract expire?", text=text, citations=citations,
                  passages=passages, abstained=not citations, mode="extractive",
                  unsupported=unsupported or [])


def _tags(html: str) -> list[str]:
    return [t.lower() for t in re.findall(r"<\s*([a-zA-Z][a-zA-Z0-9]*)", html)]


# ------------------------------------------------------------------ highlighting


def test_highlight_marks_exactly_the_offsets():
    a = _article()
    c = _citation(a, QUOTE)
    html = render.highlight(a.text, c.start, c.end)
    marked = re.findall(r'<mark class="quote">(.*?)</mark>', html)
    assert marked == [QUOTE.replace("'", "&#x27;")]
    assert html.count("<mark") == 1


def test_highlight_escapes_article_html_inside_and_around_the_quote():
    text = f"Before {EVIL} middle. The quoted {EVIL} sentence. After {EVIL}."
    start = text.index("The quoted")
    end = text.index(" After")
    html = render.highlight(text, start, end)
    assert _tags(html) == ["mark"]  # the only element is ours
    assert "<script" not in html and "<img" not in html
    assert html.count("&lt;script&gt;alert(1)&lt;/script&gt;") == 3
    assert "onerror=&quot;alert(2)&quot;" in html


def test_highlight_clamps_bad_offsets_and_handles_empty_span():
    assert render.highlight("abc", -5, 99) == '<mark class="quote">abc</mark>'
    assert render.highlight("abc", 2, 2) == "abc"
    assert render.highlight("a<b", 1, 0) == "a&lt;b"


def test_context_window_is_the_paragraph_of_the_quote():
    a = _article()
    c = _citation(a, QUOTE)
    w = render.context_window(a.text, c.start, c.end)
    shown = a.text[w.start:w.end]
    assert shown.startswith("Alonso is currently") and shown.endswith("as a player.")
    assert not w.clipped_start and not w.clipped_end
    html = render.highlight(a.text, c.start, c.end, w)
    assert "…" not in html and "Bayer" not in html and "Ancelotti" not in html


def test_context_window_clips_long_paragraphs_at_word_breaks():
    words = " ".join(f"word{i}" for i in range(400))
    text = f"{words} THE QUOTE HERE. {words}"
    start = text.index("THE QUOTE")
    end = start + len("THE QUOTE HERE.")
    w = render.context_window(text, start, end, max_chars=200)
    assert w.start <= start and w.end >= end
    assert w.clipped_start and w.clipped_end
    assert w.end - w.start <= 220
    assert text[w.start - 1] == " " and text[w.end] == " "  # whole words only
    html = render.highlight(text, start, end, w)
    assert html.startswith("… ") and html.endswith(" …")


def test_locate_quote_falls_back_to_search_when_offsets_are_stale():
    a = _article()
    c = _citation(a, QUOTE)
    assert render.locate_quote(c, a.text) == (c.start, c.end)
    edited = "New first line.\n\n" + a.text
    assert render.locate_quote(c, edited) == (c.start + 17, c.end + 17)
    assert render.locate_quote(c, "nothing like it") is None
    assert render.locate_quote(c, None) is None


# ------------------------------------------------------------------ the answer in the chat


def test_answer_markdown_links_each_citation_to_its_card():
    md = render.answer_markdown("June 2024 [1][2]. Also [9].", turn=3, cited={1, 2})
    assert '<a href="#src-3-1" class="cite"' in md and '<a href="#src-3-2" class="cite"' in md
    assert "#src-3-9" not in md and r"\[9\]" in md  # not a citation: literal text


def test_answer_markdown_escapes_html_and_markdown_in_answer_text():
    md = render.answer_markdown(f"{EVIL} *bold* `code` [link](http://x) $$x$$ [1]", turn=1, cited={1})
    assert _tags(md) == ["a"]  # only the citation link
    assert "&lt;script&gt;" in md and "&lt;img" in md
    assert r"\*bold\*" in md and r"\`code\`" in md and r"\[link\]\(http://x\)" in md and r"\$\$x\$\$" in md


def test_chat_markdown_lists_unsupported_claims():
    a = _article()
    ans = _answer(a, [_citation(a, QUOTE)], [], "June 2024 [1]. He will join Real Madrid.",
                  unsupported=["He will join <b>Real Madrid</b>."])
    md = render.chat_markdown(ans, turn=1)
    assert "Not supported by the cited sources" in md
    assert "&lt;b&gt;Real Madrid&lt;/b&gt;" in md and "<b>" not in md


# ------------------------------------------------------------------ the sources panel


def test_source_card_shows_title_date_file_and_highlighted_passage():
    a = _article()
    c = _citation(a, QUOTE)
    html = render.source_card(c, a, turn=2, roots=(Path("/data"),))
    assert 'id="src-2-1"' in html
    assert '<span class="src-title">Bayer Leverkusen manager Xabi Alonso</span>' in html
    assert '<span class="src-date">2023-07-25</span>' in html
    assert '<span class="src-file">seeds/002.txt</span>' in html
    assert "expiring in June 2024.</mark>" in html
    assert "src-flag" not in html


def test_source_card_flags_weak_support_and_escapes_title():
    a = _article(title=EVIL)
    c = _citation(a, QUOTE, supported=False)
    html = render.source_card(c, a, turn=1)
    assert "unsupported" in html and "weak support" in html and "25%" in html
    assert "<script" not in html and "<img" not in html
    assert set(_tags(html)) <= {"div", "span", "blockquote", "mark"}


def test_source_card_without_the_article_shows_the_quote():
    a = _article()
    c = _citation(a, QUOTE)
    html = render.source_card(c, None, turn=1)
    assert "expiring in June 2024.</mark>" in html


def test_sources_html_collapses_uncited_passages_with_scores():
    a = _article()
    other = _article(text="Fernando Diniz is the caretaker manager of Brazil.", title="Brazil", aid="000")
    c = _citation(a, QUOTE)
    cited = _passage(a, c.start - 5, c.end + 10, cid=1)
    uncited = _passage(other, 0, len(other.text), cid=2, score=0.0312)
    ans = _answer(a, [c], [cited, uncited], "June 2024 [1].")
    html = render.sources_html(ans, {"002": a, "000": other}.__getitem__, turn=1)
    head, _, details = html.partition('<details class="uncited">')
    assert 'id="src-1-1"' in head and "Fernando Diniz" not in head
    assert "Retrieved but not cited (1)" in details
    assert "score 0.0312 (dense #2, BM25 #1)" in details and "Fernando Diniz" in details


def test_sources_html_for_an_abstention_and_a_removed_article():
    a = _article()
    ans = _answer(a, [], [_passage(a, 0, 40)], "I could not find that.")
    html = render.sources_html(ans, {}.__getitem__, turn=1)
    assert "nothing is cited" in html and "Retrieved but not cited (1)" in html
    gone = _answer(a, [_citation(a, QUOTE)], [], "June 2024 [1].")
    html = render.sources_html(gone, {}.__getitem__, turn=1)  # KeyError: article removed since
    assert "expiring in June 2024.</mark>" in html


def test_an_unsure_answer_is_shown_as_closest_evidence():
    a = _article()
    ans = Answer(question="When was Alonso born?", text=f"The indexed articles don't say directly; the closest is: {QUOTE} [1]",
                 citations=[_citation(a, QUOTE)], passages=[], abstained=True, mode="extractive", confidence=0.31)
    md = render.chat_markdown(ans, turn=1)
    assert "Not sure (confidence 31%)" in md and "#src-1-1" in md
    html = render.sources_html(ans, {a.id: a}.__getitem__, turn=1)
    assert "closest evidence" in html and 'id="src-1-1"' in html
    sure = Answer(question="q", text="June 2024 [1].", citations=[_citation(a, QUOTE)], passages=[],
                  abstained=False, mode="extractive", confidence=0.9)
    assert "Not sure" not in render.chat_markdown(sure, turn=1)
    assert "closest evidence" not in render.sources_html(sure, {a.id: a}.__getitem__, turn=1)


def test_sources_html_shows_how_a_follow_up_was_searched():
    a = _article()
    ans = _answer(a, [_citation(a, QUOTE)], [], "June 2024 [1].")
    ans.question, ans.retrieval_query = "And <his> contract?", "When does Alonso's <b>contract</b> expire?"
    html = render.sources_html(ans, {"002": a}.__getitem__, turn=2)
    assert "searched as <q>When does Alonso&#x27;s &lt;b&gt;contract&lt;/b&gt; expire?</q>" in html
    ans.retrieval_query = ans.question
    assert "searched as" not in render.sources_html(ans, {"002": a}.__getitem__, turn=2)


def test_sources_panel_puts_the_newest_answer_first_and_folds_older_ones():
    assert "Sources appear here" in render.sources_panel([])
    html = render.sources_panel(["<section>one</section>", "<section>two</section>", "<section>three</section>"])
    newest, _, older = html.partition('<details class="earlier">')
    assert "three" in newest and "one" not in newest
    assert older.index("two") < older.index("one")


# ------------------------------------------------------------------ file names and reports


@pytest.mark.parametrize("name, safe", [
    ("article.txt", "article.txt"),
    ("../../etc/passwd.txt", "passwd.txt"),
    ("..\\..\\windows\\evil.md", "evil.md"),
    ("/abs/path/news.HTML", "news.html"),
    (".hidden.json", "hidden.json"),
    ("a b?c*<d>.jsonl", "a-b-c-d.jsonl"),
    ("....txt", "upload.txt"),
    ("x..y.csv", "x.y.csv"),
    ("ﬁnal.md", "final.md"),  # NFKC folds the ligature
    ("tab\tnew\nline\x00.txt", "tab-new-line.txt"),
    ("<script>.txt", "script.txt"),
])
def test_sanitize_filename(name, safe):
    assert render.sanitize_filename(name) == safe


def test_sanitize_filename_cuts_long_names_and_keeps_the_suffix():
    out = render.sanitize_filename("x" * 500 + ".txt")
    assert out == "x" * render.MAX_NAME_CHARS + ".txt"


@pytest.mark.parametrize("name", ["payload.exe", "noextension", "archive.tar.gz", "..", "", "script.txt.sh"])
def test_sanitize_filename_refuses_other_types(name):
    with pytest.raises(InputError, match="unsupported file type"):
        render.sanitize_filename(name)


def test_display_source_is_relative_to_a_containing_root():
    assert render.display_source("/idx/uploads/a.txt", (Path("/idx"),)) == "uploads/a.txt"
    assert render.display_source("/idx/uploads/a.jsonl#3", (Path("/idx"),)) == "uploads/a.jsonl#3"
    assert render.display_source("/elsewhere/a.txt", (Path("/idx"),)) == "/elsewhere/a.txt"


def test_ingest_report_html_counts_statuses_and_escapes_reasons():
    report = IngestReport(items=[
        IngestItem("/idx/uploads/a.txt", "added", "a", chunks=3),
        IngestItem("/idx/uploads/b.txt", "skipped", "b", "unchanged"),
        IngestItem("/idx/uploads/c.json", "failed", None, f"c.json: bad JSON {EVIL}"),
    ])
    html = render.ingest_report_html(report, [("x.exe", "x.exe: unsupported file type '.exe'")], (Path("/idx"),))
    assert "1 added, 0 updated, 1 skipped, 2 failed" in html
    assert '<tr class="ingest-added"><td>uploads/a.txt</td><td class="status">added</td><td>a</td><td>3 chunks</td>' in html
    assert "unsupported file type" in html
    assert "<script" not in html and "<img" not in html
