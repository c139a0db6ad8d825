"""What the page does, without the page: ask with history, add uploaded files, list and remove.

The Gradio callbacks in ``ui.app`` are thin wrappers over ``ChatBackend`` so that the behaviour
that matters (which keywords reach the assistant, the one-at-a-time LLM lock, where uploads are
written and what happens to a bad one) is testable without a browser. Nothing here keeps
per-user state: a conversation's history is passed in by the caller (it lives in each browser
session's own ``gr.State``), so two people never see each other's turns.
"""

from __future__ import annotations

import copy
import inspect
import logging
import os
import shutil
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rag.errors import ConfigError, InputError, RagError
from rag.models import Answer, ArticleInfo, IngestItem, IngestReport
from rag.stores import describe_index, is_dsn, uploads_dir

from .render import public_message, sanitize_filename

log = logging.getLogger(__name__)

MAX_UPLOAD_BYTES = 10_000_000  # news articles are KBs; a bigger file is a mistake
UPLOADS_DIRNAME = "uploads"
MODES = ("extractive", "llm")


@dataclass(frozen=True)
class Turn:
    """One finished exchange, as the assistant gets it back for follow-up questions.

    ``answer`` is the Answer when there is one (its ``retrieval_query`` lets a chain of
    follow-ups keep its subject), else the text that was shown.
    """

    question: str
    answer: Answer | str


@dataclass
class UploadResult:
    """What became of a batch of uploaded files: the indexer's report plus files refused before it."""

    report: IngestReport
    rejected: list[tuple[str, str]] = field(default_factory=list)  # (file name, reason)
    saved: list[Path] = field(default_factory=list)


def human_size(n: int) -> str:
    """Bytes for people: "812 B", "4.1 kB", "10 MB"."""
    if n < 1000:
        return f"{n} B"
    value, unit = (n / 1e3, "kB") if n < 1_000_000 else (n / 1e6, "MB")
    return f"{value:.1f} {unit}".replace(".0 ", " ")


def _accepted_keywords(fn: Callable[..., Any], fallback: Callable[..., Any] | None = None) -> set[str] | None:
    """Keyword names ``fn`` accepts; ``None`` means anything. ``**kwargs`` defers to ``fallback``."""
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return None
    names = {p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
    if any(p.kind is p.VAR_KEYWORD for p in params):
        if fallback is None:
            return None
        inner = _accepted_keywords(fallback)
        return None if inner is None else names | inner
    return names


class ChatBackend:
    """One per app, shared by every browser session; safe to call from Gradio's worker threads."""

    def __init__(self, assistant: Any, *, max_upload_bytes: int = MAX_UPLOAD_BYTES) -> None:
        self.assistant = assistant
        self.max_upload_bytes = max_upload_bytes
        self.ingest_lock = threading.Lock()  # held briefly, for the uploads folder's files only
        self._in_flight: set[str] = set()  # upload names being indexed right now
        index = assistant.index_dir
        self.uploads_dir = uploads_dir(index)  # <index>/uploads, or a cache folder for a database
        self.index_dir = Path(index).resolve() if not is_dsn(index) else self.uploads_dir.parent
        self.index_label = describe_index(index) if is_dsn(index) else self.index_dir.name  # no password, no server path
        stream = getattr(assistant, "ask_stream", None)
        self._extractive: Any = None
        self._stream_kw = _accepted_keywords(stream, getattr(assistant, "ask", None)) if stream else set()

    # ------------------------------------------------------------------ what is configured

    @property
    def embedder_name(self) -> str:
        return str(getattr(self.assistant.embedder, "name", type(self.assistant.embedder).__name__))

    @property
    def model_name(self) -> str | None:
        """The GGUF model answering in LLM mode (its file name), or None when there is none."""
        for owner in (self.assistant, getattr(self.assistant, "answerer", None),
                      getattr(self.assistant, "llm", None)):
            if owner is None:
                continue
            for attr in ("model_path", "path", "model"):
                value = getattr(owner, attr, None)
                if isinstance(value, (str, Path)) and str(value):
                    return Path(value).name
        return None

    @property
    def has_llm(self) -> bool:
        if self.model_name is not None:
            return True
        return getattr(getattr(self.assistant, "answerer", None), "mode", "extractive") == "llm"

    def supports(self, keyword: str) -> bool:
        """Whether ``ask_stream`` takes this keyword (history, top_k, since, until, mode...)."""
        return self._stream_kw is None or keyword in self._stream_kw

    # ------------------------------------------------------------------ questions

    def ask_stream(self, question: str, history: list[Turn], *, top_k: int | None = None,
                   since: str | None = None, until: str | None = None,
                   mode: str | None = None) -> Iterator[str | Answer]:
        """Text pieces, then the final Answer; keywords the assistant lacks are left out.

        ``mode`` "extractive" answers without the LLM even when one is configured; "llm" (or
        None) uses the assistant's own answerer, which generates for one question at a time.
        """
        if mode is not None and mode not in MODES:
            raise ConfigError(f"answer mode must be one of {', '.join(MODES)}, got '{mode}'")
        use_llm = self.has_llm and mode != "extractive"
        target = self.assistant if use_llm or not self.has_llm else self._extractive_view()
        wanted: dict[str, Any] = {"top_k": top_k, "since": since or None, "until": until or None}
        if history:
            wanted["history"] = [(t.question, t.answer) for t in history]
        kwargs = {k: v for k, v in wanted.items() if v is not None and self.supports(k)}
        # The assistant's stream holds no lock between items (the LLM answerer generates on a
        # thread of its own, one question at a time), so Gradio may advance it from any worker
        # thread, and closing it when the page goes away stops the generation.
        return target.ask_stream(question, **kwargs)

    def _extractive_view(self) -> Any:
        """The assistant with the extractive answerer: same store, embedder and retriever.

        A shallow copy shares everything heavy; only the answerer differs, and without a model
        a follow-up is rewritten by the heuristic, so extractive mode never waits for the LLM.
        """
        if self._extractive is None:
            from rag.answer import ExtractiveAnswerer

            view = copy.copy(self.assistant)
            view.answerer = ExtractiveAnswerer()
            self._extractive = view
        return self._extractive

    def article(self, article_id: str):
        """The stored article (for highlighting quotes in context); KeyError if it is gone."""
        return self.assistant.store.article(article_id)

    # ------------------------------------------------------------------ articles

    def articles(self) -> list[ArticleInfo]:
        return self.assistant.articles()

    def remove(self, article_id: str) -> ArticleInfo:
        """Removes an article; a file this page uploaded for it is deleted too."""
        if not article_id:
            raise InputError("no article selected")
        info = next((a for a in self.articles() if a.id == article_id), None)
        if info is None:
            raise InputError(f"no article with id '{article_id}'")
        with self.ingest_lock:
            self.assistant.remove(article_id)
            path = Path(info.source.split("#", 1)[0])
            if self._in_uploads(path) and path.is_file() and not self._source_used(path):
                path.unlink()
        return info

    def _source_used(self, path: Path) -> bool:
        """Whether another record of the same file (JSONL/CSV rows) is still indexed."""
        return any(a.source.split("#", 1)[0] == str(path) for a in self.articles())

    def _in_uploads(self, path: Path) -> bool:
        try:
            return path.resolve().parent == self.uploads_dir
        except OSError:
            return False

    def add_uploads(self, files: list[str | Path],
                    progress: Callable[[int, int, str], None] | None = None) -> UploadResult:
        """Copies uploaded files into ``<index>/uploads/`` under safe names and indexes them.

        Names are sanitised (no directories, no hidden files, whitelisted suffix), sizes are
        checked before anything is copied, and every write stays inside the uploads folder. A
        file that fails to index leaves the previous upload of the same name in place, and
        whatever happens (a bad file, an internal error) no copy is left behind that is not an
        indexed article. Several uploads are indexed at once, taking turns in small steps (see
        ``rag.indexer``), so a huge file does not hold up someone else's small one.
        """
        result = UploadResult(report=IngestReport())
        planned: dict[str, Path] = {}
        for f in files:
            src = Path(f)
            shown = src.name
            try:
                name = sanitize_filename(shown)
                size = src.stat().st_size
            except InputError as e:
                result.rejected.append((shown, str(e)))
                continue
            except OSError as e:
                result.rejected.append((shown, f"{shown}: cannot read the upload ({e.strerror or e})"))
                continue
            if size > self.max_upload_bytes:
                result.rejected.append((shown, f"{shown}: {human_size(size)} is over the "
                                               f"{human_size(self.max_upload_bytes)} upload limit"))
            elif size == 0:
                result.rejected.append((shown, f"{shown}: the file is empty"))
            elif name in planned:
                result.rejected.append((shown, f"{shown}: another file in this upload has the name {name}"))
            else:
                planned[name] = src
        if not planned:
            return result
        backups: dict[Path, Path] = {}
        reserved: list[str] = []
        try:
            with self.ingest_lock:
                self.uploads_dir.mkdir(parents=True, exist_ok=True)
                for name, src in planned.items():
                    if name in self._in_flight:
                        result.rejected.append((src.name, f"{src.name}: another upload of {name} is being indexed; "
                                                          "try again when it is done"))
                        continue
                    dest = (self.uploads_dir / name).resolve()
                    if dest.parent != self.uploads_dir:  # defence in depth: sanitize_filename forbids it
                        result.rejected.append((src.name, f"{src.name}: refused file name"))
                        continue
                    tmp = self.uploads_dir / f".incoming-{uuid.uuid4().hex}{dest.suffix}"
                    try:
                        shutil.copyfile(src, tmp)
                    except OSError as e:  # a full disk, say: this file is refused, nothing is left
                        tmp.unlink(missing_ok=True)
                        result.rejected.append((src.name, f"{src.name}: cannot store the upload ({e.strerror or e})"))
                        continue
                    if dest.exists():
                        backup = self.uploads_dir / f".previous-{uuid.uuid4().hex}-{name}"
                        os.replace(dest, backup)
                        backups[dest] = backup
                    os.replace(tmp, dest)
                    self._in_flight.add(name)
                    reserved.append(name)
                    result.saved.append(dest)
            if result.saved:
                try:
                    result.report = self.assistant.add(result.saved, progress=progress)
                except RagError as e:
                    result.report = IngestReport(items=[IngestItem(str(p), "failed", reason=str(e))
                                                        for p in result.saved])
                except Exception:  # a bug: each file says so, the copies go, the log has the traceback
                    log.exception("indexing an upload failed")
                    result.report = IngestReport(items=[
                        IngestItem(str(p), "failed", reason=f"{p.name}: indexing stopped by an internal error "
                                                            "(see the server log)") for p in result.saved])
        finally:
            with self.ingest_lock:
                self._settle(result, backups)
                self._in_flight.difference_update(reserved)
        return result

    def _settle(self, result: UploadResult, backups: dict[Path, Path]) -> None:
        """Keeps copies that were indexed; restores or drops the rest (also when indexing was
        interrupted: then a copy stays only if its article is in the index)."""
        status: dict[str, set[str]] = {}
        for item in result.report.items:
            status.setdefault(item.source.split("#", 1)[0].split(": ", 1)[0], set()).add(item.status)
        for dest in result.saved:
            got = status.get(str(dest), set())
            if not got:  # no report for it: interrupted
                indexed = self._indexed_any(dest)
            else:
                indexed = bool(got & {"added", "updated"}) or got == {"skipped"} and self._indexed(dest)
            backup = backups.get(dest)
            if indexed:
                if backup is not None:
                    backup.unlink(missing_ok=True)
            elif backup is not None:
                os.replace(backup, dest)
            else:
                dest.unlink(missing_ok=True)

    def _indexed(self, path: Path) -> bool:
        return self.assistant.store.lookup_source(str(path)) is not None

    # ------------------------------------------------------------------ feeds

    @property
    def has_feeds(self) -> bool:
        """Whether the assistant's index can follow feeds (``rag.feeds.Feeds``)."""
        if getattr(type(self.assistant), "feeds", None) is None:
            return False
        try:
            self.assistant.feeds
        except RagError:  # a store without feed storage
            return False
        return True

    def _feeds(self) -> Any:
        if not self.has_feeds:
            raise ConfigError("this index cannot follow feeds")
        return self.assistant.feeds

    def feeds(self) -> list[Any]:
        """The followed feeds (``rag.feedstore.FeedInfo``), oldest first."""
        return self._feeds().list() if self.has_feeds else []

    def follow_feed(self, url: str) -> tuple[Any, Any]:
        """Follows a feed (or the feed a page advertises) and indexes its entries now.

        Returns (``FeedInfo``, ``FeedResult``). Fetching happens outside the ingest lock; the
        articles are written under the assistant's own write lock, like any other add.
        """
        url = (url or "").strip()
        if not url:
            raise InputError("enter the address of an RSS or Atom feed")
        return self._feeds().add(url)

    def unfollow_feed(self, url: str | None, *, purge: bool = False) -> list[str]:
        """Stops following a feed; with ``purge`` its articles are removed too (their ids)."""
        if not url:
            raise InputError("no feed selected")
        return self._feeds().remove(url, purge=purge)

    def refresh_feeds(self) -> Any:
        """Updates every feed now (waits for a background refresh in progress to finish)."""
        return self._feeds().update()

    def _indexed_any(self, path: Path) -> bool:
        """Whether the file or any record of it (JSONL/CSV rows) is indexed."""
        try:
            return self._indexed(path) or self._source_used(path)
        except Exception:  # noqa: BLE001 - the index itself failing: the copy cannot be vouched for
            return False

    def public(self, message: str) -> str:
        """A message for the page: paths on the server shown relative to the index folder or
        the uploads folder (visitors see file names, never the server's directory layout)."""
        return public_message(message, (self.index_dir,))
