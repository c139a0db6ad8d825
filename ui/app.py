"""The Gradio page: a chat whose answers link to visible sources, an articles tab, settings.

The page is a thin adapter: ``ChatBackend`` does the work and ``ui.render`` builds every piece of
markup (escaping article text), so this module only wires components to callbacks. History and
the per-turn source cards live in each browser session's own ``gr.State``; nothing about one
conversation is held at module or app level, so concurrent users never see each other's turns.
Requests go through Gradio's queue: answering runs a few at a time (the LLM itself behind one
lock), uploads a few at a time in their own queue so they never hold up questions; uploads being
indexed take turns in small steps, so a huge file does not hold up someone else's small one.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import gradio as gr  # noqa: E402

from rag.errors import ConfigError, RagError  # noqa: E402
from rag.models import Answer  # noqa: E402

from . import render  # noqa: E402
from .backend import ChatBackend, Turn, human_size  # noqa: E402
from .config import DEFAULT_HOST, DEFAULT_PORT, check_port, exposure_warning, parse_auth  # noqa: E402
from .feeds import build_feeds_section  # noqa: E402

CHAT_CONCURRENCY = 4  # retrieval + extractive answers are quick; the LLM is serialised by a lock
UPLOAD_CONCURRENCY = 4  # uploads indexed at once; they take turns in bounded steps (rag.indexer)
SEED_EXAMPLES = (
    "When does Alonso's contract expire?",
    "Who is the caretaker manager of Brazil?",
    "Which Premier League club is interested in the Leverkusen manager?",
)
MODE_LABELS = {"Extractive (quotes the sources)": "extractive", "LLM (local GGUF model)": "llm"}

SOURCES_CSS = """
.rag-sources { font-size: 0.92rem; line-height: 1.45; }
.rag-sources.empty { color: var(--body-text-color-subdued); padding: 0.5rem; }
.turn-q { font-weight: 600; margin: 0.2rem 0 0.6rem; }
.turn-rq { color: var(--body-text-color-subdued); font-size: 0.82rem; margin: -0.4rem 0 0.6rem; }
.src-card { border: 1px solid var(--border-color-primary); border-radius: 8px; padding: 0.6rem 0.75rem;
  margin-bottom: 0.6rem; background: var(--block-background-fill); scroll-margin: 1rem;
  transition: box-shadow 0.2s, border-color 0.2s; }
.src-card.active { border-color: var(--color-accent); box-shadow: 0 0 0 2px var(--color-accent-soft); }
.src-card.unsupported { border-color: #d97706; }
.src-head { font-weight: 600; }
.src-n { color: var(--color-accent); margin-right: 0.25rem; }
.src-meta { color: var(--body-text-color-subdued); font-size: 0.82rem; margin: 0.15rem 0 0.4rem; }
.src-date { font-weight: 600; }
.src-passage { margin: 0; padding: 0.35rem 0.6rem; border-left: 3px solid var(--border-color-primary);
  white-space: pre-wrap; }
mark.quote { background: #fde68a; color: #111; padding: 0 1px; border-radius: 2px; }
.src-flag { color: #b45309; font-size: 0.85rem; margin-top: 0.4rem; }
.badge { display: inline-block; background: #fef3c7; color: #92400e; border: 1px solid #f59e0b;
  border-radius: 4px; padding: 0 0.3rem; font-size: 0.75rem; font-weight: 600; text-transform: uppercase; }
.src-flag ul { margin: 0.2rem 0 0 1.2rem; }
.no-sources { color: var(--body-text-color-subdued); margin-bottom: 0.6rem; }
details.uncited, details.earlier { margin-top: 0.5rem; }
details > summary { cursor: pointer; color: var(--body-text-color-subdued); }
.passage { border-top: 1px dashed var(--border-color-primary); padding: 0.4rem 0; }
.passage-head { display: flex; justify-content: space-between; gap: 0.5rem; }
.passage-head .src-title { font-weight: 600; }
.passage-score { font-family: var(--font-mono); font-size: 0.8rem; white-space: nowrap; }
.passage-text { white-space: pre-wrap; font-size: 0.85rem; }
"""

REPORT_CSS = """
.ingest-report table { width: 100%; border-collapse: collapse; font-size: 0.9rem; }
.ingest-report th, .ingest-report td { text-align: left; padding: 0.25rem 0.5rem;
  border-bottom: 1px solid var(--border-color-primary); vertical-align: top; }
.ingest-added .status, .ingest-updated .status { color: #15803d; font-weight: 600; }
.ingest-failed .status { color: #b91c1c; font-weight: 600; }
.ingest-skipped .status { color: var(--body-text-color-subdued); }
"""

# Clicking or hovering a [n] link in an answer brings its source card into view (and opens the
# folded "earlier answers" section when the link belongs to an older answer).
CITATION_JS = """
if (!window.__ragCitations) {
  window.__ragCitations = true;
  const show = (id, scroll) => {
    const card = document.getElementById(id);
    if (!card) return;
    for (let d = card.closest('details'); d; d = d.parentElement && d.parentElement.closest('details')) d.open = true;
    document.querySelectorAll('.src-card.active').forEach((e) => e.classList.remove('active'));
    card.classList.add('active');
    if (scroll) card.scrollIntoView({behavior: 'smooth', block: 'nearest'});
  };
  const link = (e) => e.target && e.target.closest ? e.target.closest('a[href^="#src-"]') : null;
  document.addEventListener('click', (e) => {
    const a = link(e);
    if (!a) return;
    e.preventDefault();
    e.stopPropagation();
    show(a.getAttribute('href').slice(1), true);
  }, true);
  document.addEventListener('mouseover', (e) => {
    const a = link(e);
    if (a) show(a.getAttribute('href').slice(1), true);
  });
}
"""

PAGE_CSS = """
.gradio-container a.cite { text-decoration: none; font-weight: 600; padding: 0 1px; }
.gradio-container a.cite:hover { text-decoration: underline; }
#settings-info { font-size: 0.85rem; }
"""


def _roots(backend: ChatBackend) -> tuple[Path, ...]:
    return (backend.index_dir, Path.cwd())


def _articles_table(backend: ChatBackend) -> tuple[list[list[Any]], Any]:
    rows = backend.articles()
    table = [[a.date or "", a.title, a.chunks, render.display_source(a.source, _roots(backend)), a.id]
             for a in rows]
    choices = [(f"{a.title[:80]} ({a.date or 'undated'}) [{a.id}]", a.id) for a in rows]
    return table, gr.update(choices=choices, value=None)


def _settings_info(backend: ChatBackend) -> str:
    model = backend.model_name
    try:
        n_articles = len(backend.articles())
    except RagError:
        n_articles = 0
    lines = [
        f"**Embedder:** `{backend.embedder_name}`",
        f"**LLM:** `{model}`" if model else "**LLM:** none configured (`rag chat --model FILE.gguf`); answers are extractive",
        f"**Index:** `{backend.index_label}` ({n_articles} articles)",
    ]
    return "  \n".join(lines)


def build_app(assistant: Any, *, examples: tuple[str, ...] | list[str] = SEED_EXAMPLES,
              title: str = "Football news Q&A") -> gr.Blocks:
    """The whole page for one Assistant. Launch it with ``serve`` (or ``.launch()`` yourself)."""
    backend = ChatBackend(assistant)
    has_llm = backend.has_llm
    mode_choices = list(MODE_LABELS)
    default_mode = mode_choices[1] if has_llm else mode_choices[0]

    with gr.Blocks(title=title, analytics_enabled=False) as demo:
        turns = gr.State([])  # list[Turn]: this session's history, given back for follow-ups
        messages = gr.State([])  # list[dict]: the chat as shown (rendered markdown)
        cards = gr.State([])  # list[str]: this session's sources HTML per turn
        gr.Markdown(f"## {title}\nAnswers come from the indexed articles only, and every claim "
                    "cites its source: click or hover a **[n]** to see the passage.")
        with gr.Tabs():
            with gr.Tab("Chat", id="chat"):
                with gr.Row(equal_height=False):
                    with gr.Column(scale=3, min_width=360):
                        chatbot = gr.Chatbot(label="Conversation", height=460, elem_id="chat",
                                             feedback_options=None, buttons=[],
                                             placeholder="Ask about the football news in the index.")
                        with gr.Row():
                            question = gr.Textbox(placeholder="Ask a question, e.g. " + (examples[0] if examples else ""),
                                                  show_label=False, scale=5, elem_id="question",
                                                  max_lines=4, autofocus=True)
                            send = gr.Button("Ask", variant="primary", scale=1, min_width=80, elem_id="ask")
                        if examples:
                            with gr.Row(elem_id="examples"):
                                example_buttons = [gr.Button(q, size="sm", variant="secondary") for q in examples]
                        else:
                            example_buttons = []
                        with gr.Accordion("Settings", open=False, elem_id="settings"):
                            top_k = gr.Slider(1, 20, value=getattr(assistant, "top_k", 5), step=1,
                                              label="Passages to retrieve (top k)", elem_id="top-k")
                            with gr.Row():
                                since = gr.Textbox(label="From date", placeholder="YYYY-MM-DD", elem_id="since")
                                until = gr.Textbox(label="To date", placeholder="YYYY-MM-DD", elem_id="until")
                            mode = gr.Radio(mode_choices, value=default_mode, label="Answer mode",
                                            interactive=has_llm, elem_id="mode",
                                            info=None if has_llm else "LLM mode needs a GGUF model (--model)")
                            info = gr.Markdown(elem_id="settings-info")
                    with gr.Column(scale=2, min_width=320):
                        gr.Markdown("### Sources")
                        sources = gr.HTML(render.sources_panel([]), elem_id="sources",
                                          css_template=SOURCES_CSS, js_on_load=CITATION_JS,
                                          max_height=720, autoscroll=False)
            with gr.Tab("Articles", id="articles"):
                gr.Markdown("Add articles as .txt, .md, .html, .json, .jsonl or .csv files "
                            f"(up to {human_size(backend.max_upload_bytes)} each). A leading "
                            "`date YYYY-MM-DD`, front matter, a JSON `date` field or HTML meta gives "
                            "an article its date.")
                files = gr.File(label="Article files", file_count="multiple", type="filepath",
                                file_types=list(render.UPLOAD_SUFFIXES), elem_id="upload")
                add = gr.Button("Add to index", variant="primary", elem_id="add")
                report = gr.HTML(elem_id="ingest-report", css_template=REPORT_CSS, js_on_load=None)
                gr.Markdown("### Indexed articles")
                table = gr.Dataframe(headers=["date", "title", "chunks", "source", "id"],
                                     datatype=["str", "str", "number", "str", "str"],
                                     column_widths=["8em", "46%", "5em", "24%", "14%"],
                                     interactive=False, wrap=True, elem_id="articles")
                with gr.Row():
                    pick = gr.Dropdown(label="Article to remove", choices=[], scale=4, elem_id="remove-pick")
                    remove = gr.Button("Remove", variant="stop", scale=1, elem_id="remove")
                removed = gr.Markdown(elem_id="remove-status")
                build_feeds_section(demo, backend, [table, pick], lambda: _articles_table(backend))

        # ------------------------------------------------------------ callbacks

        def respond(message: str, chat: list[dict], history: list[Turn], shown: list[str], k: float,
                    date_from: str, date_to: str, mode_label: str) -> Iterator[tuple]:
            message = (message or "").strip()
            if not message:
                yield gr.update(), chat, chat, history, shown, gr.update()
                return
            chat = list(chat) + [{"role": "user", "content": render.md_text(message)},
                                       {"role": "assistant", "content": "…"}]
            turn = len(history) + 1
            yield "", chat, chat, history, shown, gr.update()
            final: Answer | None = None
            streamed = ""
            try:
                for piece in backend.ask_stream(message, list(history), top_k=int(k), since=(date_from or "").strip(),
                                                until=(date_to or "").strip(), mode=MODE_LABELS.get(mode_label)):
                    if isinstance(piece, Answer):
                        final = piece
                        break
                    streamed += piece
                    chat[-1] = {"role": "assistant", "content": render.answer_markdown(streamed, turn)}
                    yield "", chat, chat, history, shown, gr.update()
            except RagError as e:
                chat[-1] = {"role": "assistant", "content": f"**Error:** {render.md_text(backend.public(str(e)))}"}
                yield "", chat, chat, history, shown, gr.update()
                return
            except Exception:  # a bug: say so in the chat, and let Gradio log the traceback
                chat[-1] = {"role": "assistant", "content": "**Error:** something went wrong (see the server log)."}
                yield "", chat, chat, history, shown, gr.update()
                raise
            if final is None:  # a stream that ended without its Answer: keep what was said
                final_text = streamed
                html = None
            else:
                final_text = final.text
                chat[-1] = {"role": "assistant", "content": render.chat_markdown(final, turn)}
                html = render.sources_html(final, backend.article, turn, _roots(backend))
            history = list(history) + [Turn(message, final if final is not None else final_text)]
            shown = list(shown) + ([html] if html else [])
            yield "", chat, chat, history, shown, render.sources_panel(shown)

        chat_inputs = [question, messages, turns, cards, top_k, since, until, mode]
        chat_outputs = [question, chatbot, messages, turns, cards, sources]
        common = dict(outputs=chat_outputs, concurrency_limit=CHAT_CONCURRENCY, concurrency_id="chat",
                      show_progress="minimal")
        question.submit(respond, chat_inputs, **common)
        send.click(respond, chat_inputs, **common)
        for b in example_buttons:
            b.click(respond, [b] + chat_inputs[1:], **common)
        # the chat's own clear button starts a new conversation: history and sources go too
        chatbot.clear(lambda: ("", [], [], [], [], render.sources_panel([])), None, chat_outputs, queue=False)

        def add_files(paths: list[str] | None, progress: gr.Progress = gr.Progress()) -> tuple:
            if not paths:
                return ('<p class="ingest-summary">Choose one or more files first.</p>',
                        *_articles_table(backend), gr.update())
            progress(0, desc="Indexing (the embedder loads on first use)…")

            def step(done: int, total: int, source: str) -> None:
                progress((done, total), desc=f"Indexed {Path(source).name}", unit="files")

            result = backend.add_uploads(paths, progress=step)
            html = render.ingest_report_html(result.report, result.rejected, _roots(backend))
            return html, *_articles_table(backend), None

        add.click(add_files, [files], [report, table, pick, files], concurrency_limit=UPLOAD_CONCURRENCY,
                  concurrency_id="ingest")

        def remove_article(article_id: str | None) -> tuple:
            try:
                info = backend.remove(article_id or "")
                msg = f"Removed **{render.md_text(info.title)}** ({render.md_text(info.id)})."
            except RagError as e:
                msg = f"**Error:** {render.md_text(backend.public(str(e)))}"
            return msg, *_articles_table(backend)

        remove.click(remove_article, [pick], [removed, table, pick], concurrency_limit=UPLOAD_CONCURRENCY,
                     concurrency_id="ingest")

        def refresh() -> tuple:
            return (*_articles_table(backend), _settings_info(backend))

        demo.load(refresh, None, [table, pick, info], queue=False)
    demo.queue(default_concurrency_limit=1)
    demo.rag_backend = backend  # for callers that want the same backend (tests, serve)
    return demo


def launch_kwargs() -> dict[str, Any]:
    """Page-level options every launch should use (CSS, no footer links off the machine)."""
    # system fonts: nothing to fetch, and every weight renders (some bundled woff2 subsets do not)
    theme = gr.themes.Default(font=("ui-sans-serif", "system-ui", "Segoe UI", "Helvetica", "Arial", "sans-serif"),
                              font_mono=("ui-monospace", "SFMono-Regular", "Menlo", "Consolas", "monospace"))
    return {"css": PAGE_CSS, "theme": theme, "footer_links": [], "show_error": False}


def serve(assistant: Any, *, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT,
          auth: str | tuple[str, str] | None = None, block: bool = True,
          quiet: bool = False) -> gr.Blocks:
    """Builds the page and serves it on host:port (blocking unless ``block=False``)."""
    port = check_port(port)
    creds = parse_auth(auth) if isinstance(auth, str) or auth is None else auth
    warning = exposure_warning(host, creds)
    if warning:
        print(warning, file=sys.stderr)
    assistant.articles()  # a fresh index is built from the seeds now, not on the first page load
    demo = build_app(assistant)
    try:
        demo.launch(server_name=host, server_port=port, auth=creds, share=False,
                    prevent_thread_lock=True, quiet=True, inbrowser=False,
                    max_file_size=demo.rag_backend.max_upload_bytes, **launch_kwargs())
    except OSError as e:
        raise ConfigError(f"cannot serve on {host}:{port}: {e}") from None
    warm = getattr(assistant.embedder, "encode", None)
    warming = None
    if callable(warm):  # load the embedder while the page opens, so the first answer is quick
        warming = threading.Thread(target=lambda: warm(["warm up"]), name="rag-warm-up", daemon=True)
        warming.start()
    if not quiet:
        shown = f"[{host}]" if ":" in host else host
        print(f"Chat running at http://{shown}:{port}/ (Ctrl+C to stop)", file=sys.stderr)
    if block:
        try:
            while demo.is_running:  # Ctrl+C reaches the caller as KeyboardInterrupt
                time.sleep(0.2)
        finally:
            demo.close()
            if warming is not None:  # a model half-loaded by native threads must not be torn down
                warming.join(timeout=60)  # under them at exit (ONNX Runtime aborts the process)
    return demo
