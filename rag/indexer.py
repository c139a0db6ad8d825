"""Adding files to an index: parse, skip what is unchanged, chunk, embed, store in batches.

Work is committed one batch at a time (one SQLite transaction each), so an interrupted ingest
keeps every finished batch and loses only the one in flight. Memory stays bounded by the batch
size whatever the number of files, because files are read one at a time and a batch is written
as soon as it is full (also in the middle of a large JSONL or CSV file). The FAISS file is
written once at the end (``Store.checkpoint``), not after every batch.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np

from .chunk import chunk_article, embedding_text
from .embed import Embedder
from .errors import InputError
from .ingest import ParsedSource, expand_paths, read_file
from .models import IngestItem, IngestReport
from .store import NewArticle, Store

Progress = Callable[[int, int, str], None]  # (done, total, current source)


class Indexer:
    """Turns paths into stored, embedded chunks."""

    def __init__(self, store: Store, embedder: Embedder, *, batch_chunks: int = 256,
                 target_words: int = 120, max_words: int = 200) -> None:
        self.store = store
        self.embedder = embedder
        self.batch_chunks = batch_chunks
        self.target_words = target_words
        self.max_words = max_words

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
        chunked = []
        texts: list[str] = []
        for ps, replace, item in pending:
            chunks = chunk_article(ps.article, target_words=self.target_words, max_words=self.max_words)
            chunked.append((ps, replace, item, chunks))
            texts.extend(embedding_text(ps.article, c) for c in chunks)
        vecs = self.embedder.encode(texts) if texts else np.zeros((0, 1), dtype=np.float32)
        if len(texts):
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
        ids = self.store.write_batch(batch, replace=replace_ids)
        for ps, _, item, _ in chunked:
            item.article_id = ids.get(ps.article.source, item.article_id)


def _progress_bar(total: int):
    try:
        from tqdm import tqdm
    except ImportError:  # pragma: no cover - tqdm ships with sentence-transformers
        return None
    return tqdm(total=total, unit="file", desc="Indexing", file=sys.stderr, leave=False,
                disable=total < 2)
