"""Adding files to an index: parse, skip what is unchanged, chunk, embed, store in batches.

Work is committed one batch at a time (one SQLite transaction each), so an interrupted ingest
keeps every finished batch and loses only the one in flight. Memory stays bounded by the batch
size whatever the number of files, because files are read one at a time and a batch is written
as soon as it is full (also in the middle of a large JSONL or CSV file). The FAISS file is
written once at the end (``Store.checkpoint``), not after every batch.

Several ``add`` calls may run at once (the chat indexes each visitor's upload as it comes):
each step of bounded size (reading one file, embedding at most ``batch_chunks`` chunks, writing
one batch) takes a turn of a first-come-first-served lock, so a huge upload is interleaved with
a small one instead of holding it up for minutes. What another writer stored meanwhile is
detected when a batch is written (``Store.write_batch``) and reported as skipped.
"""

from __future__ import annotations

import contextlib
import itertools
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np

from .chunk import embedding_text, iter_chunks
from .embed import Embedder
from .errors import InputError
from .ingest import ParsedSource, expand_paths, read_file
from .models import IngestItem, IngestReport
from .store import NewArticle, Store

Progress = Callable[[int, int, str], None]  # (done, total, current source)


class FairLock:
    """A lock granted in the order it was asked for: a holder that asks again queues behind
    everyone already waiting, so ingests taking turns share the machine evenly."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._queue: deque[object] = deque()
        self._held = False

    def __enter__(self) -> None:
        me = object()
        with self._cond:
            self._queue.append(me)
            while self._held or self._queue[0] is not me:
                self._cond.wait()
            self._queue.popleft()
            self._held = True

    def __exit__(self, *exc) -> bool:
        with self._cond:
            self._held = False
            self._cond.notify_all()
        return False


class Indexer:
    """Turns paths into stored, embedded chunks.

    ``turn``: a lock (``FairLock``) taken for each bounded step, shared by ingests that may run
    at the same time; none by default.
    """

    def __init__(self, store: Store, embedder: Embedder, *, batch_chunks: int = 256,
                 target_words: int = 120, max_words: int = 200, turn: FairLock | None = None) -> None:
        self.store = store
        self.embedder = embedder
        self.batch_chunks = batch_chunks
        self.target_words = target_words
        self.max_words = max_words
        self.turn = turn if turn is not None else contextlib.nullcontext()

    def add(self, paths: Iterable[str | Path], *, progress: Progress | bool | None = None) -> IngestReport:
        t0 = time.perf_counter()
        report = IngestReport()
        files: list[Path] = []
        for p in expand_paths(list(paths)):
            if isinstance(p, InputError):
                report.items.append(IngestItem(source=str(p).split(": ", 1)[0], status="failed", reason=str(p)))
            else:
                files.append(p)
        bar = _progress_bar(len(files)) if progress is True else None
        pending: list[tuple[ParsedSource, str | None, IngestItem]] = []
        pending_chunks = 0
        batch_hashes: set[str] = set()
        for done, path in enumerate(files, start=1):
            with self.turn:
                try:
                    parsed = read_file(path)
                except InputError as e:
                    parsed = [e]
            for ps in parsed:
                if isinstance(ps, InputError):
                    src = str(ps).split(": ", 1)[0]
                    report.items.append(IngestItem(source=src, status="failed", reason=str(ps)))
                    continue
                item, replace = self._plan(ps, batch_hashes)
                item.note = ps.note if item.status in ("added", "updated") else None
                report.items.append(item)
                if item.status in ("added", "updated"):
                    batch_hashes.add(ps.content_hash)
                    pending.append((ps, replace, item))
                    pending_chunks += max(1, len(ps.article.text) // 700)
                if pending_chunks >= self.batch_chunks:  # also inside one big JSONL/CSV file
                    self._flush(pending)
                    pending, pending_chunks, batch_hashes = [], 0, set()
            if bar is not None:
                bar.update(1)
            elif callable(progress):
                progress(done, len(files), str(path))
        if pending:
            self._flush(pending)
        if bar is not None:
            bar.close()
        self.store.checkpoint()
        report.seconds = time.perf_counter() - t0
        return report

    def add_sources(self, sources: Iterable[ParsedSource | InputError], *,
                    progress: Progress | None = None) -> IngestReport:
        """Indexes articles read elsewhere (web pages, feed entries) with the same rules and
        batches as ``add``: unchanged sources are skipped, changed ones replaced."""
        t0 = time.perf_counter()
        report = IngestReport()
        sources = list(sources)
        pending: list[tuple[ParsedSource, str | None, IngestItem]] = []
        pending_chunks = 0
        batch_hashes: set[str] = set()
        for done, ps in enumerate(sources, start=1):
            if isinstance(ps, InputError):
                src = str(ps).split(": ", 1)[0]
                report.items.append(IngestItem(source=src, status="failed", reason=str(ps)))
            else:
                item, replace = self._plan(ps, batch_hashes)
                report.items.append(item)
                if item.status in ("added", "updated"):
                    batch_hashes.add(ps.content_hash)
                    pending.append((ps, replace, item))
                    pending_chunks += max(1, len(ps.article.text) // 700)
                if pending_chunks >= self.batch_chunks:
                    self._flush(pending)
                    pending, pending_chunks, batch_hashes = [], 0, set()
            if progress is not None:
                progress(done, len(sources), report.items[-1].source)
        if pending:
            self._flush(pending)
        self.store.checkpoint()
        report.seconds = time.perf_counter() - t0
        return report

    def _plan(self, ps: ParsedSource, batch_hashes: set[str]) -> tuple[IngestItem, str | None]:
        """Decides added / updated / skipped for one parsed source, before any work is done."""
        a = ps.article
        known = self.store.lookup_source(a.source)
        if known is not None and known[1] == ps.content_hash:
            return IngestItem(a.source, "skipped", known[0], "unchanged"), None
        dup = self.store.lookup_hash(ps.content_hash)
        if dup is not None and (known is None or dup != known[0]):
            return IngestItem(a.source, "skipped", dup, f"same text as article {dup}"), None
        if ps.content_hash in batch_hashes:
            return IngestItem(a.source, "skipped", None, "same text as another file in this batch"), None
        if known is not None:
            return IngestItem(a.source, "updated", known[0]), known[0]
        return IngestItem(a.source, "added", a.id), None

    def _flush(self, pending: list[tuple[ParsedSource, str | None, IngestItem]]) -> None:
        chunked = [(ps, replace, item, []) for ps, replace, item in pending]
        stream = ((k, ps.article, chunk) for k, (ps, _, _, _) in enumerate(chunked)
                  for chunk in iter_chunks(ps.article, target_words=self.target_words, max_words=self.max_words))
        parts: list[np.ndarray] = []
        while True:  # at most batch_chunks chunks are chunked and embedded per turn
            with self.turn:
                group = list(itertools.islice(stream, self.batch_chunks))
                if not group:
                    break
                group_texts = [embedding_text(article, chunk) for _, article, chunk in group]
                parts.append(self.embedder.encode(group_texts))
            for k, _, chunk in group:
                chunked[k][3].append(chunk)
        vecs = np.concatenate(parts) if parts else np.zeros((0, 1), dtype=np.float32)
        if len(vecs):
            self.store.check_dimension(int(vecs.shape[1]))
        batch: list[NewArticle] = []
        offset = 0
        replace_ids = []
        for ps, replace, item, chunks in chunked:
            v = vecs[offset: offset + len(chunks)]
            offset += len(chunks)
            batch.append(NewArticle(ps.article, ps.content_hash, chunks, v))
            item.chunks = len(chunks)
            if replace:
                replace_ids.append(replace)
        with self.turn:
            ids = self.store.write_batch(batch, replace=replace_ids)
        for ps, _, item, _ in chunked:
            if ps.article.source in ids:
                item.article_id = ids[ps.article.source]
            else:  # another writer stored it between planning and writing
                self._raced(ps, item)

    def _raced(self, ps: ParsedSource, item: IngestItem) -> None:
        """Reports a source that another writer stored while this batch was being embedded."""
        known = self.store.lookup_source(ps.article.source)
        item.status, item.chunks, item.note = "skipped", 0, None
        if known is not None and known[1] == ps.content_hash:
            item.article_id, item.reason = known[0], "unchanged (stored by another writer meanwhile)"
            return
        dup = self.store.lookup_hash(ps.content_hash)
        item.article_id = dup
        item.reason = f"same text as article {dup}" if dup else "stored by another writer meanwhile"


def _progress_bar(total: int):
    try:
        from tqdm import tqdm
    except ImportError:  # pragma: no cover - tqdm ships with sentence-transformers
        return None
    return tqdm(total=total, unit="file", desc="Indexing", file=sys.stderr, leave=False,
                disable=total < 2)
