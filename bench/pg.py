"""The two stores side by side: a local PostgreSQL server for the benchmarks, and the sections that
measure the PostgreSQL store against the SQLite one (called from bench/run.py).

The server is the one the tests use (``tests/pg_server.py``: PostgreSQL 16 with pgvector from the
``pgserver`` package, on 127.0.0.1 and a free port, its data in a temp folder, stopped at the end),
with settings for a machine of this size rather than the tests' throw-away ones. Its durability
matches the SQLite store's (``synchronous=NORMAL`` in WAL mode: a commit does not wait for the
disk, a crash loses at most the last moments, never consistency): ``synchronous_commit=off``,
``fsync`` on. ``--pg DSN`` benchmarks a server of your own instead (databases are created on it).
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent

SETTINGS = {
    "shared_buffers": "2GB", "effective_cache_size": "8GB", "work_mem": "64MB",
    "maintenance_work_mem": "3GB",  # an HNSW graph of 1M 384-dim vectors builds in memory
    "max_parallel_maintenance_workers": "1", "max_wal_size": "8GB", "checkpoint_timeout": "30min",
    "synchronous_commit": "off", "max_connections": "100",
}


class Server:
    """Databases on the bench's server: one it started, or ``--pg DSN``."""

    def __init__(self, dsn: str | None) -> None:
        self.local = None
        self.dsn = dsn
        if dsn is None:
            sys.path.insert(0, str(ROOT))
            from tests.pg_server import LocalPostgres

            self.local = LocalPostgres(SETTINGS).start()
            self.dsn = self.local.dsn("postgres")

    def database(self, name: str) -> str:
        import psycopg

        with psycopg.connect(self.dsn, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{name}" TEMPLATE template0')
        return self.dsn.rsplit("/", 1)[0] + "/" + name

    def drop(self, dsn: str) -> None:
        import psycopg

        with psycopg.connect(self.dsn, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{dsn.rsplit("/", 1)[1]}" WITH (FORCE)')

    def close(self) -> None:
        if self.local is not None:
            self.local.stop()


def bench_ingest(res, run, server: Server, embedder: str | None) -> str:
    """The BBC corpus into PostgreSQL, as bench_ingest does it into a folder; the ratio to the
    SQLite store's chunks/s measured just before (same child, same warm embedder)."""
    dsn = server.database("bbc")
    r = run.child("ingest", dsn, str(run.CORPUS), embedder or "")
    res.sections["pg_ingest"] = r
    s = f"ingest into PostgreSQL ({r['embedder']})"
    rate = r["chunks"] / r["ingest_s"]
    res.add(s, "chunks/s", rate)
    sqlite = res.sections.get("ingest")
    if sqlite:
        ratio = rate / (sqlite["chunks"] / sqlite["ingest_s"])
        res.add(s, "chunks/s, PostgreSQL / SQLite", ratio, "", ">= 0.75")
    res.add(s, "articles, chunks", f"{r['articles']}, {r['chunks']}")
    res.add(s, "peak RSS of the ingesting process", r["peak_rss_mb"], "MB")
    return dsn


def bench_ask(res, run, dsn: str, embedder: str | None, repeats: int) -> None:
    """Warm extractive questions over the BBC index in PostgreSQL (the dev questions)."""
    from rag.embed import make_embedder

    r = run._warm_ask(dsn, run.jsonl_questions(run.DEV), repeats, make_embedder(embedder))
    res.sections["pg_ask_bbc"] = r
    s = f"warm ask @bbc, PostgreSQL ({r['mode']})"
    res.add(s, "median", r["median_ms"], "ms")
    res.add(s, "p95", r["p95_ms"], "ms")
    res.add(s, "retrieve / answer median", f"{r['retrieve_median_ms']:.1f} / {r['answer_median_ms']:.1f}", "ms")


def bench_concurrency(res, run, work: Path, indexes: dict[str, str], clients: int, seconds: float) -> None:
    """``clients`` threads of one app-server process asking for ``seconds``, for each store."""
    q_file = work / "dev-questions.json"
    q_file.write_text(json.dumps(run.jsonl_questions(run.DEV)))
    for name, index in indexes.items():
        r = run.child("concurrent", index, str(q_file), str(clients), str(seconds), timeout=seconds + 600)
        res.sections[f"concurrency_{name}"] = r
        s = f"{clients} clients for {seconds:.0f} s @bbc, {name}"
        res.add(s, "questions answered, errors", f"{r['questions']}, {r['errors']}")
        res.add(s, "errors", r["errors"], "", "<= 0")
        res.add(s, "throughput", r["per_s"], "questions/s")
        res.add(s, "median / p95", f"{r['median_ms']:.0f} / {r['p95_ms']:.0f}", "ms")


def _all_vectors(dsn: str) -> tuple[np.ndarray, np.ndarray]:
    """Every stored (id, embedding), read through a binary COPY."""
    import psycopg
    from pgvector.psycopg import register_vector

    ids, vecs = [], []
    with psycopg.connect(dsn) as conn:
        register_vector(conn)
        with conn.cursor() as cur:
            with cur.copy("COPY (SELECT id, embedding FROM chunks) TO STDOUT (FORMAT BINARY)") as copy:
                copy.set_types(["int8", "vector"])
                for cid, v in copy.rows():
                    ids.append(cid)
                    vecs.append(v.to_numpy())
    return np.array(ids, dtype=np.int64), np.stack(vecs).astype(np.float32)


def bench_scale(res, run, work: Path, server: Server, embedder: str | None, sizes: list[int], repeats: int,
                sqlite_sizes: list[int]) -> None:
    """For each size: ``n`` synthetic passages written into PostgreSQL through the store (its
    indexes built after the load), a fresh process asking the dev questions as ``rag ask``
    would, and recall@10 of the store's vector search against exact search over the same
    vectors. The SQLite store is asked at ``sqlite_sizes`` too, for the table."""
    sys.path.insert(0, str(BENCH))
    from synthetic import exact_top, real_vectors

    from rag.embed import make_embedder
    from rag.pgstore import PgStore

    emb = make_embedder(embedder)
    real = real_vectors(emb, run.CORPUS, [run.DEV, run.SEEDS_QA], run.RESULTS / "cache")
    vec_file = work / "real.npz"
    np.savez(vec_file, base=real.base, chunks=real.chunks, queries=real.queries)
    chunk_file = work / "chunks.json"
    chunk_file.write_text(json.dumps(real.chunk_texts))
    q_file = work / "questions.json"
    q_file.write_text(json.dumps(run.jsonl_questions(run.DEV)))
    for n in sizes:
        if n in sqlite_sizes:
            run.bench_ask_at_scale(res, work, embedder, n, repeats)
        dsn = server.database(f"scale_{n}")
        b = run.child("build-store", dsn, str(n), str(vec_file), str(chunk_file), emb.name, timeout=6 * 3600)
        r = run.child("ask", dsn, str(q_file), str(repeats))
        store = PgStore(dsn, embedder_name=emb.name)
        t0 = time.perf_counter()
        ids, x = _all_vectors(dsn)
        truth = ids[exact_top(x, real.queries, 10)]
        del x
        lat, recall = [], []
        for qi, t in zip(real.queries, truth):
            s = time.perf_counter()
            got = [c for c, _ in store.dense_search(qi, 40)]  # the retrieval depth of a question
            lat.append((time.perf_counter() - s) * 1000)
            recall.append(len(set(got[:10]) & set(t.tolist())) / 10)
        store.close()
        res.sections[f"pg_scale_{n}"] = {"build": b, "ask": r, "recall_at_10": float(np.mean(recall)),
                                         "dense_median_ms": statistics.median(lat), "recall_s": time.perf_counter() - t0}
        label = f"warm ask @{run._human(n)} passages, PostgreSQL ({r['mode']})"
        res.add(label, "median", r["median_ms"], "ms", {100_000: "<= 60", 1_000_000: "<= 150"}.get(n, ""))
        res.add(label, "p95", r["p95_ms"], "ms")
        res.add(label, "retrieve / answer median", f"{r['retrieve_median_ms']:.1f} / {r['answer_median_ms']:.1f}", "ms")
        res.add(label, "first question (open + load)", r["first_ask_s"], "s")
        res.add(label, "recall@10 of the vector search vs exact", float(np.mean(recall)), "",
                ">= 0.95" if n >= 100_000 else "")
        res.add(label, "vector search median (HNSW, 40)", statistics.median(lat), "ms")
        res.add(label, "rows written (no embedding)", b["passages"] / b["rows_s"], "passages/s")
        res.add(label, "GIN + HNSW index build", b["index_build_s"], "s")
        res.add(label, "database size", b["size_mb"], "MB")
        server.drop(dsn)
