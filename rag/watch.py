"""A watched folder: files added or changed in it are indexed, files deleted are removed.

watchdog reports file-system events as they happen (inotify on Linux, FSEvents on macOS,
ReadDirectoryChangesW on Windows, polling elsewhere). Events are not acted on one by one: an
editor's save, a copy of a large file or a burst of 200 new files produces many events for the
same paths, so paths are collected and handled together once the folder has been quiet for
``debounce_s`` (or ``max_wait_s`` after the first event at the latest, so a folder that never
goes quiet is still indexed). Each batch is one ``Assistant.add`` (unchanged files are skipped
by content hash, changed ones replaced) plus the removal of articles whose files are gone.

Nothing is lost across a stop: on start the watcher catches up with the folder as it is now
(indexes every file, which skips the unchanged ones, and removes articles of files that
disappeared while it was not running), after the observer is already running, so events during
the catch-up are handled too. Hidden files (editor swap files, ``.#locks``), unsupported
types and the index's own folder are ignored.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from .errors import InputError
from .ingest import SUPPORTED_SUFFIXES
from .models import IngestReport

log = logging.getLogger(__name__)


@dataclass
class WatchBatch:
    """One round of work: what was indexed, and which articles were removed for deleted files."""

    report: IngestReport
    removed: list[tuple[str, str]] = field(default_factory=list)  # (article id, source)
    catch_up: bool = False

    @property
    def empty(self) -> bool:
        return not self.removed and not any(i.status != "skipped" for i in self.report.items)


class FolderWatcher:
    """Keeps an index in step with one folder (and its sub-folders) while running.

    Args:
        assistant: the ``Assistant`` whose index follows the folder.
        folder: the folder to watch.
        debounce_s: quiet time after the last event before a batch is handled.
        max_wait_s: the longest a path waits after its first event, however busy the folder.
        on_batch: called with each ``WatchBatch`` (the CLI prints it).
        polling: use watchdog's polling observer (for file systems without events, e.g. NFS).
    """

    def __init__(self, assistant, folder: str | Path, *, debounce_s: float = 0.5, max_wait_s: float = 3.0,
                 on_batch: Callable[[WatchBatch], None] | None = None, polling: bool = False) -> None:
        self.assistant = assistant
        self.folder = Path(folder).expanduser().resolve()
        if not self.folder.is_dir():
            raise InputError(f"{folder}: no such folder")
        # the index's own folder (its README, the chat's uploads) is never read as articles
        self._skip = Path(getattr(assistant, "index_dir", self.folder / ".none")).expanduser().resolve()
        self.debounce_s = debounce_s
        self.max_wait_s = max_wait_s
        self.on_batch = on_batch
        self.polling = polling
        self.batches = 0
        self._pending: dict[str, float] = {}  # path -> time of its first event in this batch
        self._last_event = 0.0
        self._cond = threading.Condition()
        self._stop = False
        self._observer = None
        self._worker: threading.Thread | None = None

    # ------------------------------------------------------------------ life cycle

    def start(self) -> WatchBatch:
        """Starts watching, then catches up with the folder; returns the catch-up batch."""
        from watchdog.events import FileSystemEventHandler
        from watchdog.observers import Observer
        from watchdog.observers.polling import PollingObserver

        watcher = self

        class Handler(FileSystemEventHandler):
            def on_any_event(self, event) -> None:
                if event.event_type in ("opened", "closed_no_write"):
                    return
                watcher._note(os.fsdecode(event.src_path))
                dest = getattr(event, "dest_path", "")
                if dest:
                    watcher._note(os.fsdecode(dest))

        self._stop = False
        self._observer = PollingObserver(timeout=1) if self.polling else Observer()
        self._observer.schedule(Handler(), str(self.folder), recursive=True)
        self._observer.start()
        self._worker = threading.Thread(target=self._run, name="rag-watch", daemon=True)
        self._worker.start()
        batch = self.catch_up()
        return batch

    def stop(self) -> None:
        """Stops watching; a batch being indexed is finished first, pending events are handled."""
        if self._observer is not None:
            self._observer.stop()
            self._observer.join(10)
            self._observer = None
        with self._cond:
            self._stop = True
            self._cond.notify_all()
        if self._worker is not None:
            self._worker.join()
            self._worker = None

    def __enter__(self) -> FolderWatcher:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    # ------------------------------------------------------------------ work

    def catch_up(self) -> WatchBatch:
        """Indexes the folder as it is and removes articles of files no longer in it."""
        files = [str(p) for p in self._supported_files(self.folder)]
        gone = [src for _, src in self._indexed_under(self.folder) if not Path(_file_of(src)).is_file()]
        return self._handle(files, gone, catch_up=True)

    def _note(self, path: str) -> None:
        if not self._relevant(path):
            return
        now = time.monotonic()
        with self._cond:
            self._pending.setdefault(path, now)
            self._last_event = now
            self._cond.notify_all()

    def _relevant(self, path: str) -> bool:
        p = Path(path)
        try:
            rel = p.relative_to(self.folder)
        except ValueError:
            return False
        if any(part.startswith(".") for part in rel.parts) or p == self._skip or self._skip in p.parents:
            return False
        # a folder (created, moved in or deleted) has no suffix; its files are looked at later
        return p.suffix.lower() in SUPPORTED_SUFFIXES or p.is_dir() or not p.suffix

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._pending and not self._stop:
                    self._cond.wait()
                if not self._pending and self._stop:
                    return
                while not self._stop:
                    now = time.monotonic()
                    quiet_at = self._last_event + self.debounce_s
                    deadline = min(self._pending.values()) + self.max_wait_s
                    due = min(quiet_at, deadline)
                    if now >= due:
                        break
                    self._cond.wait(due - now)
                paths, self._pending = list(self._pending), {}
            try:
                self._handle_paths(paths)
            except Exception:  # the watcher must outlive one bad batch (a bug is logged, not fatal)
                log.exception("watched folder: a batch failed")

    def _handle_paths(self, paths: list[str]) -> WatchBatch:
        files: list[str] = []
        gone: list[str] = []
        indexed = None
        for path in sorted(set(paths)):
            p = Path(path)
            if p.is_file():
                if p.suffix.lower() in SUPPORTED_SUFFIXES:
                    files.append(path)
            elif p.is_dir():
                files.extend(str(f) for f in self._supported_files(p))
            else:  # deleted (a file, or a folder with everything in it)
                if indexed is None:
                    indexed = self._indexed_under(self.folder)
                gone.extend(src for _, src in indexed if _file_of(src) == path or src.startswith(path + os.sep))
        return self._handle(files, gone)

    def _handle(self, files: list[str], gone_sources: list[str], *, catch_up: bool = False) -> WatchBatch:
        """Removes the articles of deleted files first, then indexes the files: a renamed file
        (same text, new name) would otherwise be skipped as a duplicate of its old self."""
        removed = []
        if gone_sources:
            by_source = {src: aid for aid, src in self._indexed_under(self.folder)}
            for src in dict.fromkeys(gone_sources):
                aid = by_source.get(src)
                if aid is None or Path(_file_of(src)).exists():
                    continue  # already removed, or the file came back
                try:
                    self.assistant.remove(aid)
                    removed.append((aid, src))
                except InputError:
                    pass  # removed by someone else meanwhile
        if removed and not catch_up:
            # a copy that was skipped as a duplicate of a removed file is its text's home now
            indexed = {_file_of(src) for _, src in self._indexed_under(self.folder)}
            files = files + [str(f) for f in self._supported_files(self.folder) if str(f) not in indexed]
        report = self.assistant.add(sorted(set(files))) if files else IngestReport()
        batch = WatchBatch(report=report, removed=removed, catch_up=catch_up)
        self.batches += 1
        if self.on_batch is not None:
            self.on_batch(batch)
        return batch

    def _supported_files(self, folder: Path) -> list[Path]:
        out = []
        for f in sorted(folder.rglob("*")):
            rel = f.relative_to(self.folder)
            if any(part.startswith(".") for part in rel.parts) or self._skip in f.parents:
                continue
            if f.suffix.lower() in SUPPORTED_SUFFIXES and f.is_file():
                out.append(f.resolve())
        return out

    def _indexed_under(self, folder: Path) -> list[tuple[str, str]]:
        """(article id, source) of every indexed article read from a file under ``folder``."""
        prefix = str(folder) + os.sep
        return [(a.id, a.source) for a in self.assistant.articles() if a.source.startswith(prefix)]


def _file_of(source: str) -> str:
    """The file a source came from: ``/x/a.jsonl#3`` -> ``/x/a.jsonl`` (and no "(url)" suffix)."""
    return source.split(" (", 1)[0].split("#", 1)[0]


def describe(batch: WatchBatch) -> list[str]:
    """Lines for people: what was added, updated, failed and removed (unchanged files are quiet)."""
    lines = []
    for item in batch.report.items:
        if item.status == "failed":
            lines.append(f"failed   {item.reason}")
        elif item.status in ("added", "updated"):
            lines.append(f"{item.status:<8} {item.source} -> {item.article_id} ({item.chunks} chunks)")
    lines.extend(f"removed  {src} ({aid})" for aid, src in batch.removed)
    return lines

