"""The FAISS half of the folder store: a derived cache of the vectors SQLite holds.

The FAISS index lives in memory and follows every batch incrementally (add and remove by chunk
id). It is written to ``faiss-<generation>.index`` (temp file, then an atomic rename) only at
checkpoints: at the end of an ``add`` or ``remove`` call, and during a long ingest once enough
has changed; each file's CRC-32 and size are recorded in SQLite when it is written and checked
when it is read. A reader whose file is older than SQLite's generation catches up from the
chunk generations and the removal log instead of rebuilding, and rebuilds from the stored
embeddings only when the file is missing, damaged, unreadable or too old for the log.

The FAISS type follows the size: exact inner product (``IndexFlatIP`` in an ``IndexIDMap2``)
up to ``FaissConfig.exact_max`` vectors, above that an inverted file with 8-bit scalar
quantisation (IVF-SQ8: a quarter of the memory, supports removal, recall@10 >= 0.97 against
exact search at the default probes). Files are memory-mapped when opened for searching.

``FaissCache`` is mixed into ``rag.store.Store``, whose SQLite tables, lock and meta it uses.
"""

from __future__ import annotations

import logging
import math
import os
import sqlite3
import time
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import EmbedderMismatchError

log = logging.getLogger(__name__)

CHECKSUM_KEY = "faiss_checksum:"  # meta key prefix: the checksum of the FAISS file of a generation


@dataclass(frozen=True)
class FaissConfig:
    """How the dense index is built, searched and written.

    Attributes:
        exact_max: up to this many vectors the search is exact (flat inner product); above it,
            IVF-SQ8. An IVF index goes back to exact below half of it.
        nprobe: inverted lists searched per query; None: ``nlist // 32``, within 64..256.
        retrain_growth: an IVF index is rebuilt (new centroids, more lists) once the number
            of lists it should have reaches this multiple of the lists it has.
        checkpoint_min, checkpoint_fraction: during an ingest, the file is rewritten once this
            many vectors (and this fraction of the index) changed since it was last written.
        mmap: memory-map files opened for searching (where the index type supports it).
        threads: OpenMP threads for building an index (k-means training, bulk adds); None: the
            embedder's default, at most 4. A search for one question runs on one thread: a
            second one only adds start-up cost at these sizes (see docs/BENCHMARKS.md).
    """

    exact_max: int = 50_000
    nprobe: int | None = None
    retrain_growth: int = 4
    checkpoint_min: int = 5_000
    checkpoint_fraction: float = 0.05
    mmap: bool = True
    threads: int | None = None


def nlist_for(n: int) -> int:
    """Inverted lists for ``n`` vectors: the power of two nearest 4*sqrt(n), within 64..65536,
    and never fewer than 39 training vectors per list (FAISS's minimum for k-means)."""
    lists = int(min(65536, max(64, 2 ** round(math.log2(max(1.0, 4 * math.sqrt(n)))))))
    return max(1, min(lists, n // 39))


def training_size(n: int) -> int:
    """Vectors sampled to train the IVF centroids: 64 per list (more adds time, not recall)."""
    return min(n, 64 * nlist_for(n))


def nprobe_for(nlist: int, config: FaissConfig) -> int:
    """Lists searched per query: ``config.nprobe``, else nlist/32 within 64..256."""
    if config.nprobe:
        return min(nlist, config.nprobe)
    return min(nlist, max(64, min(256, nlist // 32)))


def new_index(kind: str, dim: int, n: int, train: np.ndarray | None, config: FaissConfig):
    """An empty index for about ``n`` vectors: ``"flat"`` (exact) or ``"ivf"`` (IVF-SQ8, trained
    on ``train``). Ids are chunk ids in both."""
    faiss = _faiss()
    if kind == "flat":
        return faiss.IndexIDMap2(faiss.IndexFlatIP(dim))
    if train is None or len(train) == 0:
        raise ValueError("an IVF index needs training vectors")
    nlist = max(1, min(nlist_for(n), len(train) // 39))
    index = faiss.IndexIVFScalarQuantizer(
        faiss.IndexFlatIP(dim), dim, nlist, faiss.ScalarQuantizer.QT_8bit, faiss.METRIC_INNER_PRODUCT
    )
    index.cp.niter = 10  # k-means iterations: 10 reach the recall of the default 25 in 40% of the time
    index.cp.max_points_per_centroid = 64
    with _building(config.threads):
        index.train(np.ascontiguousarray(train, dtype=np.float32))
    tune(index, config)
    return index


def tune(index, config: FaissConfig) -> None:
    """Sets the search-time parameters (IVF probes) that a file does not carry."""
    faiss = _faiss()
    ivf = faiss.try_extract_index_ivf(index)
    if ivf is not None:
        ivf.nprobe = nprobe_for(ivf.nlist, config)


_faiss_ready = False


def _faiss(threads: int | None = None):
    """The faiss module, set to search on one OpenMP thread (``_building`` widens it)."""
    global _faiss_ready
    # idle OpenMP threads sleep instead of spinning on cores the embedder and llama.cpp need
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    import faiss

    if not _faiss_ready:
        faiss.omp_set_num_threads(1)
        _faiss_ready = True
    return faiss


class _building:
    """Within: FAISS uses ``threads`` OpenMP threads (default: the embedder's), then one again."""

    def __init__(self, threads: int | None) -> None:
        from .embed import default_threads

        self.threads = threads or default_threads()

    def __enter__(self):
        _faiss().omp_set_num_threads(self.threads)

    def __exit__(self, *exc):
        _faiss().omp_set_num_threads(1)
        return False


class FaissCache:
    """The FAISS file and in-memory index of a folder store (mixed into ``Store``)."""

    def _faiss_path(self, gen: int) -> Path:
        return self.dir / f"faiss-{gen}.index"

    def _faiss_files(self) -> list[tuple[int, Path]]:
        """FAISS files on disk, newest generation first (anything else by that name is ignored)."""
        out = [(_file_gen(f), f) for f in self.dir.glob("faiss-*.index")]
        return sorted(((g, f) for g, f in out if g >= 0 and f.is_file()), reverse=True)

    def recorded_checksum(self, gen: int) -> str | None:
        """The checksum recorded when the FAISS file of generation ``gen`` was written."""
        return self._meta(f"{CHECKSUM_KEY}{gen}")

    def _read_faiss(self, path: Path, *, mmap: bool):
        """Reads a FAISS file after checking it against the checksum recorded when it was
        written; any mismatch (damaged bytes, a file not written by this index) raises
        RuntimeError, and the caller rebuilds from SQLite instead of trusting it."""
        faiss = _faiss()
        want = self.recorded_checksum(_file_gen(path))
        if want is None:
            raise RuntimeError("no checksum recorded for it")
        got = file_checksum(path)
        if got != want:
            raise RuntimeError(f"its checksum does not match the one recorded when it was written "
                               f"({got} instead of {want}): damaged")
        flags = 0
        if mmap and self.faiss_config.mmap:
            with open(path, "rb") as fh:
                magic = fh.read(4)
            # IVF files map their inverted lists; flat files map their vectors.
            flags = faiss.IO_FLAG_MMAP if magic.startswith(b"Iw") else faiss.IO_FLAG_MMAP_IFC
        index = faiss.read_index(str(path), flags)
        if index.d != self.dimension:
            raise RuntimeError(f"dimension {index.d}, expected {self.dimension}")
        self._tune(index)
        return index, bool(flags)

    def _write_faiss(self, index, gen: int) -> bool:
        """Writes the file for ``gen`` (temp file, checksum recorded, atomic rename); True if written.

        The file is a cache: when it cannot be written (read-only folder, full disk, something in
        the way) the index in memory still answers, a warning says why, and the next process
        rebuilds it from SQLite.
        """
        if self.read_only:
            return False
        faiss = _faiss()
        final = self._faiss_path(gen)
        tmp = self.dir / f"{final.name}.tmp{os.getpid()}"
        try:
            faiss.write_index(index, str(tmp))
            digest = file_checksum(tmp)
            # Recorded and renamed under SQLite's write lock: two processes writing the file of
            # the same generation cannot leave one's file with the other's checksum.
            if self.db.in_transaction:
                self._set_meta(f"{CHECKSUM_KEY}{gen}", digest)
                os.replace(tmp, final)
            else:
                with self._tx():
                    self._set_meta(f"{CHECKSUM_KEY}{gen}", digest)
                    os.replace(tmp, final)
        except (RuntimeError, OSError, sqlite3.Error) as e:
            try:
                tmp.unlink()
            except OSError:
                pass
            log.warning("%s: cannot write the FAISS file (%s); answers are unaffected, and it is "
                        "rebuilt from SQLite when the index is next opened", final, e)
            return False
        self._file_gen = gen
        for old in self.dir.glob("faiss-*.index*"):
            if ".tmp" in old.name:
                if _pid_alive(old.name.rsplit(".tmp", 1)[1]):
                    continue  # another process is writing it right now
            elif old == final or _file_gen(old) >= gen or not old.is_file():
                continue  # a newer file written by another process stays
            try:
                old.unlink()
            except OSError:
                pass
        self._forget_checksums(below=gen)
        return True

    def _forget_checksums(self, *, below: int) -> None:
        """Drops the recorded checksums of files older than ``below`` that are gone."""
        try:
            keys = [r[0] for r in self.db.execute("SELECT key FROM meta WHERE key LIKE ?", (f"{CHECKSUM_KEY}%",))]
            stale = [k for k in keys if int(k[len(CHECKSUM_KEY):]) < below
                     and not self._faiss_path(int(k[len(CHECKSUM_KEY):])).exists()]
            if stale:
                with self._tx():
                    self.db.executemany("DELETE FROM meta WHERE key = ?", [(k,) for k in stale])
        except (sqlite3.Error, ValueError) as e:  # tidying only
            log.debug("could not drop old checksums: %s", e)

    # ------------------------------------------------------------------ dense: index types

    def _tune(self, index) -> None:
        tune(index, self.faiss_config)

    def _wanted_type(self, n: int, index=None) -> str | None:
        """"flat" or "ivf" when ``index`` should be rebuilt as that type for ``n`` vectors, else None."""
        faiss = _faiss()
        ivf = faiss.try_extract_index_ivf(index) if index is not None else None
        if ivf is None:
            return "ivf" if n > self.faiss_config.exact_max else None
        if n < self.faiss_config.exact_max // 2:
            return "flat"
        if nlist_for(n) >= self.faiss_config.retrain_growth * ivf.nlist:
            return "ivf"
        return None

    def _build(self, kind: str, n: int):
        """An empty index of ``kind``, trained on a sample of the stored vectors for IVF."""
        sample = None
        if kind == "ivf":
            all_ids = np.array([r[0] for r in self.db.execute("SELECT id FROM chunks")], dtype=np.int64)
            rng = np.random.default_rng(0)
            size = min(len(all_ids), training_size(n))
            sample = self._vectors_for(np.sort(rng.choice(all_ids, size=size, replace=False)))
        return new_index(kind, self.dimension, n, sample, self.faiss_config)

    def _vectors_for(self, ids: np.ndarray) -> np.ndarray:
        dim = self.dimension
        out = np.empty((len(ids), dim), dtype=np.float32)
        for s in range(0, len(ids), 900):
            part = [int(i) for i in ids[s: s + 900]]
            q = ",".join("?" * len(part))
            rows = dict(self.db.execute(f"SELECT id, embedding FROM chunks WHERE id IN ({q})", part).fetchall())
            for j, cid in enumerate(part):
                out[s + j] = np.frombuffer(rows[cid], dtype=np.float32)
        return out

    def _add_stored(self, index, since_gen: int | None) -> None:
        """Adds the stored vectors (those of generations after ``since_gen``) in blocks."""
        dim = self.dimension
        sql = "SELECT id, embedding FROM chunks" + (" WHERE gen > ?" if since_gen is not None else "")
        cur = self.db.execute(sql + " ORDER BY id", () if since_gen is None else (since_gen,))
        while True:
            rows = cur.fetchmany(10000)
            if not rows:
                break
            ids = np.array([r[0] for r in rows], dtype=np.int64)
            vecs = np.frombuffer(b"".join(r[1] for r in rows), dtype=np.float32).reshape(len(rows), dim)
            index.add_with_ids(vecs, ids)

    def _rebuild(self, gen: int, kind: str | None = None):
        """A new index from every stored vector, written as the file for ``gen``."""
        dim = self.dimension
        if dim is None:
            return None
        n = self.count()[1]
        kind = kind or ("ivf" if n > self.faiss_config.exact_max else "flat")
        t0 = time.perf_counter()
        index = self._build(kind, n)
        with _building(self.faiss_config.threads):
            self._add_stored(index, None)
        self._write_faiss(index, gen)
        log.info("%s: rebuilt the %s index of %d vectors in %.1fs", self.dir, kind, n, time.perf_counter() - t0)
        return index

    # ------------------------------------------------------------------ dense: following SQLite

    def _writable(self):
        """The in-memory index, re-read without memory mapping if it was mapped (mapped = read-only)."""
        if self._faiss_mmapped and self._faiss_index is not None:
            path = self._faiss_path(self._faiss_gen)
            try:
                self._faiss_index, self._faiss_mmapped = self._read_faiss(path, mmap=False)
            except (RuntimeError, OSError):
                self._faiss_index, self._faiss_gen, self._faiss_mmapped = None, -1, False
        return self._faiss_index

    def _catch_up(self, index, from_gen: int) -> None:
        removed = [r[0] for r in self.db.execute("SELECT chunk_id FROM removed_chunks WHERE gen > ?", (from_gen,))]
        if removed:
            index.remove_ids(np.array(removed, dtype=np.int64))
        self._add_stored(index, from_gen)

    def _log_floor(self) -> int:
        return int(self._meta("log_floor") or 0)

    def faiss_index(self):
        """The FAISS index for the current generation: in memory, read from disk and brought up to
        date from SQLite, or rebuilt from the stored embeddings if no usable file exists."""
        with self._lock:
            return self._faiss_current()

    def _follow(self, ids: np.ndarray, vecs: np.ndarray | None, removed: list[int], gen: int) -> None:
        """Applies a committed batch to the in-memory index (or leaves it for a catch-up)."""
        if self._faiss_index is None or self._faiss_gen != gen - 1:
            self._faiss_current()
            return
        index = self._writable()
        if index is None:
            self._faiss_current()
            return
        if removed:
            index.remove_ids(np.array(removed, dtype=np.int64))
        if vecs is not None and len(ids):
            index.add_with_ids(np.ascontiguousarray(vecs, dtype=np.float32), ids)
        self._faiss_gen = gen

    def checkpoint(self, *, final: bool = True) -> bool:
        """Writes the FAISS file for the current generation if it is due; True if written.

        ``final`` (the end of an ``add`` or ``remove`` call): due whenever something changed, or
        for large indexes once ``checkpoint_min`` vectors changed. Otherwise (between batches):
        due once ``checkpoint_min`` and ``checkpoint_fraction`` of the index changed. An index that
        outgrew its type is rebuilt here. Writing prunes the removal log up to that generation.
        """
        cfg = self.faiss_config
        if self.read_only:
            return False
        with self._lock:
            index = self._faiss_current()
            if index is None:
                return False
            gen = self._faiss_gen
            kind = self._wanted_type(index.ntotal, index)
            if kind is not None:
                index = self._rebuild(gen, kind)
                self._faiss_index, self._faiss_mmapped = index, False
            elif self._file_gen == gen:
                return False
            else:
                pending = self._pending_since(self._file_gen)
                large = index.ntotal > cfg.exact_max
                if final:
                    due = pending > 0 and (not large or pending >= cfg.checkpoint_min)
                else:
                    due = pending >= max(cfg.checkpoint_min, cfg.checkpoint_fraction * index.ntotal)
                if not due:
                    return False
                if not self._write_faiss(index, gen):
                    return False
            if self._file_gen != gen:  # not written: a later reader still needs the removal log
                return False
            with self._tx():
                self.db.execute("DELETE FROM removed_chunks WHERE gen <= ?", (gen,))
                self._set_meta("log_floor", gen)
            return True

    def _pending_since(self, gen: int) -> int:
        """Vectors added or removed after generation ``gen`` (everything if no file is known)."""
        if gen < 0:
            return int(self.db.execute("SELECT COUNT(*) FROM chunks").fetchone()[0]) or 1
        added = self.db.execute("SELECT COUNT(*) FROM chunks WHERE gen > ?", (gen,)).fetchone()[0]
        removed = self.db.execute("SELECT COUNT(*) FROM removed_chunks WHERE gen > ?", (gen,)).fetchone()[0]
        return int(added) + int(removed)

    # ------------------------------------------------------------------ dense: search

    def dense_search(self, qvec: np.ndarray, n: int, since: str | None = None,
                     until: str | None = None) -> list[tuple[int, float]]:
        """Inner-product top-n; (chunk id, cosine) best first."""
        with self._lock:
            index = self._faiss_current()
            if index is None or index.ntotal == 0:
                return []
            q = np.ascontiguousarray(qvec.reshape(1, -1), dtype=np.float32)
            if q.shape[1] != index.d:
                raise EmbedderMismatchError(f"{self.dir}: query vector dimension {q.shape[1]} != index {index.d}")
            faiss = _faiss()
            params = None
            ivf = faiss.try_extract_index_ivf(index)
            if since or until:
                allowed = self.chunk_ids_in_range(since, until)
                if allowed.size == 0:
                    return []
                sel = faiss.IDSelectorBatch(allowed)
                params = (faiss.SearchParametersIVF(sel=sel, nprobe=ivf.nprobe) if ivf is not None
                          else faiss.SearchParameters(sel=sel))
            k = min(n, index.ntotal)
            scores, ids = index.search(q, k, params=params) if params else index.search(q, k)
        return [(int(i), float(s)) for i, s in zip(ids[0], scores[0]) if i >= 0]


def file_checksum(path: Path) -> str:
    """CRC-32 and size of a file ("crc32:1a2b3c4d:4096"), read in 1 MB blocks.

    The checksum guards against damage, not tampering, so speed decides: CRC-32 runs at over
    1 GB/s, several times SHA-256 here, which keeps the check to a fraction of a second even for
    the 400 MB file of a million passages; damage goes unnoticed with odds of 1 in 4 billion.
    """
    crc, size = 0, 0
    with open(path, "rb") as fh:
        while block := fh.read(1 << 20):
            crc = zlib.crc32(block, crc)
            size += len(block)
    return f"crc32:{crc:08x}:{size}"


def _file_gen(path: Path) -> int:
    """The generation in a ``faiss-<generation>.index`` name; -1 for anything else."""
    try:
        return int(path.name.removeprefix("faiss-").split(".", 1)[0])
    except ValueError:
        return -1


def _pid_alive(text: str) -> bool:
    try:
        os.kill(int(text), 0)
    except (ValueError, ProcessLookupError):
        return False
    except PermissionError:  # pragma: no cover - another user's process
        return True
    return int(text) != os.getpid()
