"""``rag index copy SRC DST``: an index moved between stores without embedding again.

Articles, their chunks (with offsets) and the stored vectors are read from the source in pages
of articles in id order and written to the destination through its ordinary batch path, one
transaction per page, so a copy that is interrupted leaves whole articles only, and running it
again resumes: an article already in the destination with the same text is skipped, a changed
one replaced. The destination records the source's embedder and dimension (or must already have
the same ones). Into an empty PostgreSQL index the vectors go in without the HNSW index, which is
built once at the end. The feeds the source follows come along, with their validators and
entries, so the copy goes on following them.
"""

from __future__ import annotations

import sys
import time
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import InputError
from .models import Article, Chunk
from .store import NewArticle
from .stores import describe_index, is_dsn, open_store, resolve_index, stored_embedder

PAGE = 100  # articles per read and per destination transaction


@dataclass
class CopyReport:
    """What one copy did."""

    copied: int = 0  # articles new in the destination
    updated: int = 0  # articles whose text had changed, replaced
    skipped: int = 0  # already there with the same text
    chunks: int = 0  # chunks written
    feeds: int = 0  # followed feeds copied, with their entries and validators
    seconds: float = 0.0

    def summary(self) -> str:
        feeds = f", {self.feeds} feeds" if self.feeds else ""
        return (f"{self.copied} copied, {self.updated} updated, {self.skipped} already there "
                f"({self.chunks} chunks{feeds}, {self.seconds:.1f}s)")


def export_page(store, after: str | None, limit: int) -> list[NewArticle]:
    """Up to ``limit`` articles with ids after ``after`` (id order), with chunks and vectors."""
    if hasattr(store, "export"):
        return store.export(after, limit)
    db = store.db  # the SQLite store: read its tables directly
    arts = db.execute("SELECT id, title, date, source, text, hash FROM articles WHERE id > ? ORDER BY id LIMIT ?",
                      (after or "", limit)).fetchall()
    if not arts:
        return []
    marks = ",".join("?" * len(arts))
    rows = db.execute(f'SELECT article_id, id, ordinal, text, start, "end", embedding FROM chunks '
                      f"WHERE article_id IN ({marks}) ORDER BY article_id, ordinal", [a[0] for a in arts]).fetchall()
    by_article: dict[str, list] = {}
    for r in rows:
        by_article.setdefault(r[0], []).append(r)
    dim = store.dimension or 0
    out = []
    for aid, title, date, source, text, h in arts:
        rs = by_article.get(aid, [])
        chunks = [Chunk(r[1], aid, r[2], r[3], r[4], r[5]) for r in rs]
        vecs = (np.frombuffer(b"".join(r[6] for r in rs), dtype=np.float32).reshape(len(rs), dim) if rs
                else np.zeros((0, dim), dtype=np.float32))
        out.append(NewArticle(Article(aid, title, date, source, text), h, chunks, vecs))
    return out


def _same(src, dst) -> bool:
    if is_dsn(src) or is_dsn(dst):
        return str(src) == str(dst)
    return Path(src).resolve() == Path(dst).resolve()


def copy_index(src: str | Path, dst: str | Path, *, progress: bool = False) -> CopyReport:
    """Copies every article of ``src`` into ``dst`` (created if new); see the module docstring."""
    t0 = time.perf_counter()
    src = resolve_index(str(src), Path(str(src)))
    dst = resolve_index(str(dst), Path(str(dst)))
    if _same(src, dst):
        raise InputError(f"{describe_index(src)}: source and destination are the same index")
    embedder = stored_embedder(src)
    source = open_store(src, embedder_name=embedder or "", create=False)
    report = CopyReport()
    try:
        if embedder is None or not source.count()[0]:
            raise InputError(f"{describe_index(src)}: the index is empty; nothing to copy")
        dest = open_store(dst, embedder_name=embedder)
        try:
            dest.check_dimension(int(source.dimension))
            bar = _bar(source.count()[0], progress)
            with getattr(dest, "bulk_load", nullcontext)():
                after = None
                while page := export_page(source, after, PAGE):
                    after = page[-1].article.id
                    _copy_page(page, dest, report)
                    if bar is not None:
                        bar.update(len(page))
            dest.checkpoint()
            if bar is not None:
                bar.close()
            report.feeds = copy_feeds(source, dest)
        finally:
            dest.close()
    finally:
        source.close()
    report.seconds = time.perf_counter() - t0
    return report


def copy_feeds(source, dest) -> int:
    """The feeds ``source`` follows, with their validators and what each entry became, into
    ``dest``: the copy goes on following them without fetching old entries again. Cached
    robots.txt files are not copied (they expire within a day). Returns the number of feeds."""
    from .feedstore import feed_store_for, has_feed_tables

    if not has_feed_tables(source):
        return 0
    src = feed_store_for(source)
    try:
        feeds = src.feeds()
        if not feeds:
            return 0
        dst = feed_store_for(dest)
        try:
            for f in feeds:
                if dst.feed(f.url) is None:
                    dst.add_feed(f.url, f.title)
                if f.status:
                    dst.record_check(f.url, status=f.status, error=f.error, title=f.title, etag=f.etag,
                                     last_modified=f.last_modified)
                dst.put_entries(f.url, list(src.entries(f.url).values()))
        finally:
            dst.close()
    finally:
        src.close()
    return len(feeds)


def _copy_page(page: list[NewArticle], dest, report: CopyReport) -> None:
    sources = [item.article.source for item in page]
    if hasattr(dest, "lookup_sources"):
        known = dest.lookup_sources(sources)
    else:
        known = {s: k for s in sources if (k := dest.lookup_source(s)) is not None}
    batch, replace = [], []
    for item in page:
        k = known.get(item.article.source)
        if k is not None and k[1] == item.content_hash:
            report.skipped += 1
            continue
        if k is None and dest.lookup_hash(item.content_hash) is not None:
            report.skipped += 1  # the same text under another source is there already
            continue
        if k is not None:
            replace.append(k[0])
            report.updated += 1
        else:
            report.copied += 1
        batch.append(item)
        report.chunks += len(item.chunks)
    if batch or replace:
        dest.write_batch(batch, replace=replace)


def _bar(total: int, progress: bool):
    if not progress:
        return None
    from tqdm import tqdm

    return tqdm(total=total, unit="article", desc="Copying", file=sys.stderr)
