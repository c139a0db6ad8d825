"""Pure functions that turn answers, sources and ingest reports into HTML/markdown for the page.

Everything shown in the browser that came from an article, a question or a file name passes
through ``html.escape`` here, and only here: the app never builds markup itself. That keeps the
one rule that matters for safety (article text is data, never markup) in a module small enough
to test exhaustively without a browser. Highlighting works on character offsets into the
article text (``Citation.start``/``end``), so the highlighted span is exactly the quoted span.
"""

from __future__ import annotations

import html
import os
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from rag.errors import InputError
from rag.ingest import SUPPORTED_SUFFIXES
from rag.models import Answer, Article, Citation, IngestReport, Passage

#: Upload suffixes the Articles tab accepts (the readers' own list).
UPLOAD_SUFFIXES: tuple[str, ...] = SUPPORTED_SUFFIXES
MAX_NAME_CHARS = 100
CONTEXT_CHARS = 700  # the most article text shown around a quote on a source card
_CITE = re.compile(r"\[(\d{1,3})\]")
_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+!|~$])")  # < > & are HTML-escaped instead


def esc(text: object) -> str:
    """HTML-escapes any value (quotes included), so it can sit in text or an attribute."""
    return html.escape("" if text is None else str(text), quote=True)


# ------------------------------------------------------------------ file names


def sanitize_filename(name: str, *, allowed: tuple[str, ...] = UPLOAD_SUFFIXES) -> str:
    """A safe base name for an uploaded file, or InputError naming the file.

    Directory parts (``/`` or ``\\``) are dropped, the name is NFKC-normalised, every character
    outside ``[A-Za-z0-9._-]`` becomes ``-``, leading dots and dashes go (no hidden files, no
    ``..``), the stem is cut to ``MAX_NAME_CHARS`` and the suffix must be in ``allowed``.
    """
    base = re.split(r"[\\/]", str(name))[-1]
    base = unicodedata.normalize("NFKC", base).replace("\x00", "")
    stem, dot, suffix = base.rpartition(".")
    if not dot:
        stem, suffix = base, ""
    suffix = "." + suffix.lower() if suffix else ""
    if suffix not in allowed:
        raise InputError(
            f"{base or name!r}: unsupported file type '{suffix or '(none)'}' (supported: {', '.join(allowed)})"
        )
    stem = re.sub(r"[^A-Za-z0-9._-]+", "-", stem).strip(".-")
    stem = re.sub(r"\.{2,}", ".", stem)[:MAX_NAME_CHARS].strip(".-") or "upload"
    return stem + suffix


def display_source(source: str, roots: list[Path] | tuple[Path, ...] = ()) -> str:
    """A source path shortened for display: relative to the first root that contains it.
    A web page's source is its URL, shown whole."""
    if "://" in str(source):
        return str(source)
    src, _, record = str(source).partition("#")
    for root in roots:
        try:
            rel = os.path.relpath(src, root)
        except ValueError:
            continue
        if not rel.startswith(".."):
            return rel + (f"#{record}" if record else "")
    return str(source)


_ABSOLUTE_PATH = re.compile(r"(?<![\w.~-])/(?:[^\s/'\"`()]+/)+([^\s/'\"`()]*)")


def public_message(message: str, roots: list[Path] | tuple[Path, ...] = ()) -> str:
    """``message`` without absolute server paths, for the page: under one of ``roots`` a path is
    shown relative to it, any other absolute path by its last part."""
    for root in roots:
        message = message.replace(f"{root}{os.sep}", "")
    return _ABSOLUTE_PATH.sub(lambda m: m.group(1) or m.group(0).rstrip("/").rsplit("/", 1)[-1], message)


# ------------------------------------------------------------------ highlighting


@dataclass(frozen=True)
class Window:
    """A span of article text shown on a card: ``text[start:end]`` with the quote inside it.

    ``clipped_start``/``clipped_end`` say the window cuts a paragraph there (shown as "…").
    """

    start: int
    end: int
    clipped_start: bool = False
    clipped_end: bool = False


def context_window(text: str, start: int, end: int, max_chars: int = CONTEXT_CHARS) -> Window:
    """The paragraph around ``text[start:end]``, trimmed to about ``max_chars`` at word breaks."""
    start, end = max(0, min(start, len(text))), max(0, min(end, len(text)))
    p0 = text.rfind("\n\n", 0, start)
    p0 = 0 if p0 < 0 else p0 + 2
    p1 = text.find("\n\n", end)
    p1 = len(text) if p1 < 0 else p1
    clip0 = clip1 = False
    spare = max(0, max_chars - (end - start))
    if start - p0 > spare // 2:
        cut = start - spare // 2
        sp = text.find(" ", cut, start)
        p0, clip0 = (sp + 1 if sp >= 0 else cut), True
    if p1 - end > spare - (start - p0):
        cut = end + max(0, spare - (start - p0))
        sp = text.rfind(" ", end, cut)
        p1, clip1 = (sp if sp >= 0 else cut), True
    while p0 < start and text[p0].isspace():
        p0 += 1
    while p1 > end and text[p1 - 1].isspace():
        p1 -= 1
    return Window(p0, p1, clip0, clip1)


def highlight(text: str, start: int, end: int, window: Window | None = None) -> str:
    """HTML of ``text[window]`` with ``text[start:end]`` in ``<mark>``; all text escaped.

    Offsets outside the text are clamped; an empty span gives the window with no mark. The
    window always contains the span; a clipped side is shown as "…".
    """
    start, end = max(0, min(start, len(text))), max(0, min(end, len(text)))
    end = max(start, end)
    w = window or Window(0, len(text))
    a, b = max(0, min(w.start, start)), min(len(text), max(w.end, end))
    out = ["… " if w.clipped_start and a > 0 else "", esc(text[a:start])]
    if end > start:
        out.append(f'<mark class="quote">{esc(text[start:end])}</mark>')
    out += [esc(text[end:b]), " …" if w.clipped_end and b < len(text) else ""]
    return "".join(out)


def locate_quote(citation: Citation, article_text: str | None) -> tuple[int, int] | None:
    """Where the citation's quote is in the article: its offsets if they still match, else a search."""
    if article_text is None:
        return None
    if article_text[citation.start:citation.end] == citation.quote:
        return citation.start, citation.end
    i = article_text.find(citation.quote) if citation.quote else -1
    return (i, i + len(citation.quote)) if i >= 0 else None


# ------------------------------------------------------------------ the answer in the chat


def answer_markdown(text: str, turn: int, cited: set[int] | None = None) -> str:
    """Chat markdown for an answer: text escaped, each ``[n]`` a link to source card n of this turn.

    Markers that do not name a citation (``cited``) stay plain text.
    """
    out: list[str] = []
    pos = 0
    for m in _CITE.finditer(text):
        out.append(md_text(text[pos:m.start()]))
        n = int(m.group(1))
        if cited is None or n in cited:
            out.append(f'<a href="#src-{turn}-{n}" class="cite" data-src="src-{turn}-{n}">[{n}]</a>')
        else:
            out.append(md_text(m.group()))
        pos = m.end()
    out.append(md_text(text[pos:]))
    return "".join(out)


def md_text(text: str) -> str:
    """Text shown literally by a markdown renderer: markdown punctuation backslashed, HTML escaped."""
    return html.escape(_MD_SPECIAL.sub(r"\\\1", text), quote=False)


def chat_markdown(answer: Answer, turn: int) -> str:
    """The final chat message for an Answer: linked text, plus a note on unsupported claims."""
    md = answer_markdown(answer.text, turn, {c.n for c in answer.citations})
    conf = getattr(answer, "confidence", None)
    if answer.abstained and answer.citations and conf is not None:
        md += f"\n\n*Not sure (confidence {conf:.0%}): this is the closest evidence, not an answer.*"
    if answer.unsupported:
        items = "\n".join(f"- {md_text(s)}" for s in answer.unsupported)
        md += f"\n\n**Not supported by the cited sources:**\n{items}"
    return md


# ------------------------------------------------------------------ the sources panel


ArticleLookup = Callable[[str], "Article | None"]


def uncited_passages(answer: Answer) -> list[Passage]:
    """Retrieved passages that hold none of the answer's quotes."""
    out = []
    for p in answer.passages:
        if not any(c.article_id == p.article.id and c.start < p.chunk.end and c.end > p.chunk.start
                   for c in answer.citations):
            out.append(p)
    return out


def source_card(c: Citation, article: Article | None, turn: int,
                roots: tuple[Path, ...] | list[Path] = ()) -> str:
    """One citation as a card: number, title, date, file, passage with the quote highlighted."""
    text = article.text if article is not None else None
    where = locate_quote(c, text)
    if text is not None and where is not None:
        passage = highlight(text, *where, context_window(text, *where))
    else:
        passage = f'<mark class="quote">{esc(c.quote)}</mark>'
    flag = ""
    if not c.supported:
        flag = (f'<div class="src-flag" title="support {c.support:.2f}"><span class="badge">weak support</span> '
                f"this passage covers only {c.support:.0%} of the claim it is cited for</div>")
    cls = "src-card" + ("" if c.supported else " unsupported")
    return (
        f'<div class="{cls}" id="src-{turn}-{c.n}" data-n="{c.n}">'
        f'<div class="src-head"><span class="src-n">[{c.n}]</span> '
        f'<span class="src-title">{esc(c.title)}</span></div>'
        f'<div class="src-meta"><span class="src-date">{esc(c.date or "undated")}</span> · '
        f'<span class="src-file">{esc(display_source(c.source, roots))}</span> · '
        f'<span class="src-offsets">chars {c.start}–{c.end}</span></div>'
        f'<blockquote class="src-passage">{passage}</blockquote>{flag}</div>'
    )


def passage_item(p: Passage, roots: tuple[Path, ...] | list[Path] = ()) -> str:
    """A retrieved passage with its fused score and each retriever's rank."""
    ranks = ", ".join(
        f"{name} #{r}" for name, r in (("dense", p.dense_rank), ("BM25", p.lexical_rank)) if r is not None
    )
    return (
        f'<div class="passage"><div class="passage-head"><span class="src-title">{esc(p.article.title)}</span>'
        f'<span class="passage-score">score {p.score:.4f}{" (" + esc(ranks) + ")" if ranks else ""}</span></div>'
        f'<div class="src-meta"><span class="src-date">{esc(p.article.date or "undated")}</span> · '
        f'<span class="src-file">{esc(display_source(p.article.source, roots))}</span></div>'
        f'<div class="passage-text">{esc(p.chunk.text)}</div></div>'
    )


def sources_html(answer: Answer, lookup: ArticleLookup, turn: int,
                 roots: tuple[Path, ...] | list[Path] = ()) -> str:
    """The sources of one answer: cited cards, unsupported claims, uncited passages (collapsed)."""
    parts = [f'<section class="turn" id="turn-{turn}" data-turn="{turn}">'
             f'<div class="turn-q">Sources for <q>{esc(answer.question)}</q></div>']
    rq = getattr(answer, "retrieval_query", None)
    if rq and rq.strip() != answer.question.strip():
        parts.append(f'<div class="turn-rq">searched as <q>{esc(rq)}</q> (the question with the conversation filled in)</div>')
    if answer.citations and answer.abstained:
        parts.append('<div class="src-flag uncertain"><span class="badge">closest evidence</span> '
                     "the articles do not say it directly; this is the nearest they come</div>")
    if answer.citations:
        for c in answer.citations:
            parts.append(source_card(c, _safe_lookup(lookup, c.article_id), turn, roots))
    else:
        parts.append('<div class="no-sources">No passage supported an answer, so nothing is cited.</div>')
    if answer.unsupported:
        items = "".join(f"<li>{esc(s)}</li>" for s in answer.unsupported)
        parts.append(f'<div class="src-flag unsupported-claims"><span class="badge">unsupported</span> '
                     f"not backed by the cited sources:<ul>{items}</ul></div>")
    rest = uncited_passages(answer)
    if rest:
        items = "".join(passage_item(p, roots) for p in rest)
        parts.append(f'<details class="uncited"><summary>Retrieved but not cited ({len(rest)})</summary>'
                     f"{items}</details>")
    parts.append("</section>")
    return "".join(parts)


def _safe_lookup(lookup: ArticleLookup, article_id: str) -> Article | None:
    try:
        return lookup(article_id)
    except KeyError:
        return None  # removed since the answer was given: the card falls back to the quote


def sources_panel(turns: list[str]) -> str:
    """All turns' sources, newest first; older turns folded so [n] links of old answers still land."""
    if not turns:
        return ('<div class="rag-sources empty">Sources appear here: each [n] in an answer links to '
                "its passage, with the quoted sentence highlighted.</div>")
    newest, older = turns[-1], turns[-2::-1]
    body = newest
    if older:
        body += ('<details class="earlier"><summary>Earlier answers</summary>' + "".join(older) + "</details>")
    return f'<div class="rag-sources">{body}</div>'


# ------------------------------------------------------------------ articles tab


def ingest_report_html(report: IngestReport, rejected: list[tuple[str, str]] = (),
                       roots: tuple[Path, ...] | list[Path] = ()) -> str:
    """A table of what happened to each uploaded file (rejections before indexing included)."""
    rows = [(name, "failed", "", public_message(reason, roots)) for name, reason in rejected]
    for it in report.items:
        detail = f"{it.chunks} chunk{'' if it.chunks == 1 else 's'}" if it.status in ("added", "updated") else ""
        if getattr(it, "note", None):
            detail = f"{detail}; {it.note}"
        rows.append((public_message(display_source(it.source, roots), roots), it.status, it.article_id or "",
                     public_message(it.reason or detail, roots)))
    counts = {s: sum(1 for r in rows if r[1] == s) for s in ("added", "updated", "skipped", "failed")}
    summary = ", ".join(f"{n} {s}" for s, n in counts.items())
    body = "".join(
        f'<tr class="ingest-{esc(st)}"><td>{esc(src)}</td><td class="status">{esc(st)}</td>'
        f"<td>{esc(aid)}</td><td>{esc(why)}</td></tr>"
        for src, st, aid, why in rows
    )
    return (f'<div class="ingest-report"><p class="ingest-summary">{esc(summary)}</p>'
            f"<table><thead><tr><th>file</th><th>status</th><th>article</th><th>details</th></tr></thead>"
            f"<tbody>{body}</tbody></table></div>")
