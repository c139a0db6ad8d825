"""The Feeds section of the Articles tab: follow a feed, list, remove, refresh now.

Built inside the Articles tab by ``ui.app`` (one call), wired to ``ChatBackend``'s feed methods.
Following and refreshing run in the same one-at-a-time queue as uploads, so the page never
indexes two batches at once; a background refresher (``rag chat --feeds-every``) and the button
are serialised by ``Feeds.update`` itself. Reports are HTML built here, every value escaped.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import gradio as gr

from rag.errors import RagError

from .backend import ChatBackend
from .render import esc

FEEDS_CSS = """
.feed-report table { width: 100%; border-collapse: collapse; font-size: 0.9rem; }
.feed-report th, .feed-report td { text-align: left; padding: 0.25rem 0.5rem;
  border-bottom: 1px solid var(--border-color-primary); vertical-align: top; }
.feed-report .feed-head td { font-weight: 600; background: var(--block-background-fill); }
.feed-added .status, .feed-updated .status { color: #15803d; font-weight: 600; }
.feed-failed .status { color: #b91c1c; font-weight: 600; }
.feed-skipped .status, .feed-not-modified .status { color: var(--body-text-color-subdued); }
"""
HEADERS = ["title", "feed", "articles", "last checked", "status"]


def feed_rows(feeds: list[Any]) -> list[list[Any]]:
    """The feeds table: title, URL, articles indexed from it, when it was checked, how it went."""
    rows = []
    for f in feeds:
        checked = time.strftime("%Y-%m-%d %H:%M", time.localtime(f.checked_at)) if f.checked_at else "never"
        status = (f.status or "not checked yet") + (f": {f.error}" if f.error else "")
        rows.append([f.title or "(untitled)", f.url, f.articles, checked, status])
    return rows


def message(text: str, *, error: bool = False) -> str:
    cls = "feed-summary feed-error" if error else "feed-summary"
    return f'<div class="feed-report"><p class="{cls}">{esc(text)}</p></div>'


def report_html(results: list[Any], summary: str | None = None) -> str:
    """One row per feed, then one per entry that was added, updated or failed (with its reason)."""
    if not results:
        return message("No feeds to refresh: follow one first.")
    rows = []
    for r in results:
        cls = "feed-" + r.status.replace(" ", "-")
        name = r.title or r.url
        rows.append(f'<tr class="feed-head {cls}"><td class="status">{esc(r.status)}</td>'
                    f'<td>{esc(name)}</td><td>{esc(r.reason or r.summary())}</td></tr>')
        for e in r.entries:
            if e.status == "skipped":
                continue
            what = e.reason if e.status == "failed" else f"→ {e.article_id}"
            rows.append(f'<tr class="feed-{esc(e.status)}"><td class="status">{esc(e.status)}</td>'
                        f'<td>{esc(e.title or e.link or "")}</td><td>{esc(what or "")}</td></tr>')
    head = f'<p class="feed-summary">{esc(summary)}</p>' if summary else ""
    return (f'<div class="feed-report">{head}<table><thead><tr><th>status</th><th>feed / entry</th>'
            f'<th>details</th></tr></thead><tbody>{"".join(rows)}</tbody></table></div>')


def build_feeds_section(demo: gr.Blocks, backend: ChatBackend, articles_outputs: list[Any],
                        articles_table: Callable[[], tuple]) -> None:
    """The section's components and callbacks; ``articles_outputs`` (the articles table and its
    remove picker) are refreshed with ``articles_table()`` when feeds bring or take articles."""
    if not backend.has_feeds:
        return
    gr.Markdown("### Feeds\nFollow an RSS or Atom feed (or a site's page that links to one): each new "
                "entry's page is fetched, its article extracted and indexed. Pages are fetched politely "
                "(robots.txt respected, one request at a time per site).")
    with gr.Row():
        url = gr.Textbox(label="Feed address", placeholder="https://example.com/football/rss.xml", scale=4,
                         elem_id="feed-url")
        follow = gr.Button("Follow feed", variant="primary", scale=1, elem_id="feed-add")
    table = gr.Dataframe(headers=HEADERS, datatype=["str", "str", "number", "str", "str"],
                         column_widths=["28%", "32%", "10%", "14%", "16%"],
                         interactive=False, wrap=True, elem_id="feeds")
    with gr.Row():
        pick = gr.Dropdown(label="Feed to remove", choices=[], scale=3, elem_id="feed-pick")
        purge = gr.Checkbox(label="Also remove its articles", value=False, scale=1, elem_id="feed-purge")
        remove = gr.Button("Remove feed", variant="stop", scale=1, elem_id="feed-remove")
    refresh = gr.Button("Refresh feeds now", elem_id="feed-refresh")
    report = gr.HTML(elem_id="feed-report", css_template=FEEDS_CSS)

    def listing() -> tuple:
        feeds = backend.feeds()
        choices = [(f"{f.title or f.url} ({f.url})", f.url) for f in feeds]
        return feed_rows(feeds), gr.update(choices=choices, value=None)

    def on_follow(address: str) -> tuple:
        try:
            info, result = backend.follow_feed(address)
            html = report_html([result] if result else [], f"Following {info.title or info.url}.")
            cleared = ""
        except RagError as e:
            html, cleared = message(f"Error: {e}", error=True), gr.update()
        return (html, cleared, *listing(), *articles_table())

    def on_remove(feed_url: str | None, also_articles: bool) -> tuple:
        try:
            removed = backend.unfollow_feed(feed_url, purge=bool(also_articles))
            html = message(f"Stopped following {feed_url}" + (
                f"; {len(removed)} articles removed." if also_articles else "."))
        except RagError as e:
            html = message(f"Error: {e}", error=True)
        return (html, *listing(), *articles_table())

    def on_refresh() -> tuple:
        try:
            rep = backend.refresh_feeds()
            html = report_html(rep.feeds, rep.summary())
        except RagError as e:
            html = message(f"Error: {e}", error=True)
        return (html, *listing(), *articles_table())

    queue = dict(concurrency_limit=1, concurrency_id="ingest")
    follow.click(on_follow, [url], [report, url, table, pick, *articles_outputs], **queue)
    url.submit(on_follow, [url], [report, url, table, pick, *articles_outputs], **queue)
    remove.click(on_remove, [pick, purge], [report, table, pick, *articles_outputs], **queue)
    refresh.click(on_refresh, None, [report, table, pick, *articles_outputs], **queue)
    demo.load(listing, None, [table, pick], queue=False)
