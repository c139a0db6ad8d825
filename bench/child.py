"""Benchmark jobs that run in a process of their own, so that their peak memory and start-up
are theirs alone. Each prints one JSON object on its last line of stdout.

    python bench/child.py ingest INDEX CORPUS [EMBEDDER]
    python bench/child.py build-store INDEX N_PASSAGES VECTORS.npz CHUNKS.json EMBEDDER_NAME
    python bench/child.py ask INDEX QUESTIONS.json REPEATS
    python bench/child.py concurrent INDEX QUESTIONS.json CLIENTS SECONDS

INDEX is a folder or a postgresql:// URL.
"""

from __future__ import annotations

import json
import resource
import statistics
import sys
import time
from pathlib import Path

import numpy as np


def peak_rss_mb() -> float:
    """This process's peak resident memory since exec (VmHWM).

    ``ru_maxrss`` is not used here: Linux carries the parent's peak over a fork into the child's
    value, so a child started by a parent holding a million vectors would report the parent's.
    """
    with open("/proc/self/status", encoding="utf-8") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # pragma: no cover


def _embedder(spec: str | None):
    """An embedder spec, plus the configurations the bench compares by name: "pytorch" (the
    sentence-transformers fp32 baseline), "onnx-fp32", "onnx-int8", "default"."""
    from rag.embed import DEFAULT_EMBEDDER, INT8_EMBEDDER, SentenceTransformerEmbedder

    if spec == "pytorch":
        return SentenceTransformerEmbedder()
    if spec == "onnx-fp32":
        from rag.onnx_embed import OnnxEmbedder

        return OnnxEmbedder(name=DEFAULT_EMBEDDER, precision="fp32")
    if spec == "onnx-int8":
        return INT8_EMBEDDER
    return None if spec in (None, "", "default") else spec


def ingest(index: str, corpus: str, embedder: str | None = None) -> dict:
    """Indexes a corpus with a warm embedder; the model load is timed apart from the ingest."""
    from rag import Assistant

    t0 = time.perf_counter()
    a = Assistant(index, embedder=_embedder(embedder), seed=False, quiet=True)
    a.embedder.encode(["warm up"])
    t1 = time.perf_counter()
    c1 = time.process_time()  # CPU seconds of all this process's threads: what other load does not change
    report = a.add([corpus])
    t2 = time.perf_counter()
    c2 = time.process_time()
    stats = a.store.stats()
    return {"embedder": a.embedder.name, "articles": report.added, "chunks": report.chunks,
            "failed": report.failed, "load_s": t1 - t0, "ingest_s": t2 - t1, "ingest_cpu_s": c2 - c1,
            "faiss": stats.faiss_type, "peak_rss_mb": peak_rss_mb()}


def build_store(index: str, n: str, vectors: str, chunks: str, embedder_name: str) -> dict:
    """Writes ``n`` synthetic passages through the real batch path (SQLite, FTS5, FAISS)."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from synthetic import RealVectors, synthetic_articles

    from contextlib import nullcontext

    from rag.ingest import content_hash
    from rag.models import Article, Chunk
    from rag.store import NewArticle
    from rag.stores import open_store

    z = np.load(vectors)
    real = RealVectors(z["base"], z["chunks"], json.loads(Path(chunks).read_text()), z["queries"], [])
    store = open_store(index, embedder_name=embedder_name)
    bulk = getattr(store, "bulk_load", nullcontext)()  # PostgreSQL: its indexes are built once, at the end
    bulk.__enter__()
    t0 = time.perf_counter()
    batch: list[NewArticle] = []
    n_batch = 0
    for aid, title, texts, vecs in synthetic_articles(real, int(n)):
        body = "\n\n".join(texts) + f"\n\n({aid})"  # unique, so each article has its own content hash
        chunks, start = [], 0
        for j, t in enumerate(texts):
            chunks.append(Chunk(0, aid, j, t, start, start + len(t)))
            start += len(t) + 2
        batch.append(NewArticle(Article(aid, title, "2005-01-01", f"synthetic/{aid}.txt", body), content_hash(body),
                                chunks, vecs))
        n_batch += len(texts)
        if n_batch >= 4000:
            store.write_batch(batch)
            batch, n_batch = [], 0
    if batch:
        store.write_batch(batch)
    t_rows = time.perf_counter()
    bulk.__exit__(None, None, None)
    if hasattr(store, "checkpoint"):  # older stores wrote the FAISS file after every batch
        store.checkpoint()
    t1 = time.perf_counter()
    stats = store.stats()
    return {"passages": stats.chunks, "articles": stats.articles, "write_s": t1 - t0, "rows_s": t_rows - t0,
            "index_build_s": t1 - t_rows, "faiss": stats.faiss_type, "size_mb": stats.size_bytes / 1e6,
            "peak_rss_mb": peak_rss_mb()}


def ask(index: str, questions: str, repeats: str) -> dict:
    """Opens an index as ``rag ask`` would and asks every question ``repeats`` times (warm)."""
    from rag import Assistant

    qs = json.loads(Path(questions).read_text())
    t0 = time.perf_counter()
    a = Assistant(index, seed=False, quiet=True)
    first = a.ask(qs[0])
    t1 = time.perf_counter()
    total, retrieve, answer = [], [], []
    for _ in range(int(repeats)):
        for q in qs:
            ans = a.ask(q)
            total.append(ans.timings.total_ms)
            retrieve.append(ans.timings.retrieve_ms)
            answer.append(ans.timings.answer_ms)
    return {"first_ask_s": t1 - t0, "mode": first.mode, "n": len(total), "faiss": a.store.stats().faiss_type,
            "median_ms": statistics.median(total), "p95_ms": float(np.percentile(total, 95)),
            "retrieve_median_ms": statistics.median(retrieve), "answer_median_ms": statistics.median(answer),
            "peak_rss_mb": peak_rss_mb()}


def concurrent(index: str, questions: str, clients: str, seconds: str) -> dict:
    """``clients`` threads sharing one Assistant (as an app server's workers do) ask questions in
    a loop for ``seconds``: throughput, latency percentiles and errors."""
    import random
    import threading

    from rag import Assistant

    qs = json.loads(Path(questions).read_text())
    a = Assistant(index, seed=False, quiet=True)
    a.ask(qs[0])  # warm: embedder and index loaded
    stop = time.perf_counter() + float(seconds)
    lat: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()

    def client(seed: int) -> None:
        rng = random.Random(seed)
        while time.perf_counter() < stop:
            t = time.perf_counter()
            try:
                a.ask(rng.choice(qs))
            except Exception as e:  # noqa: BLE001 - counted, not fatal
                with lock:
                    errors.append(repr(e)[:200])
                continue
            with lock:
                lat.append((time.perf_counter() - t) * 1000)

    t0 = time.perf_counter()
    threads = [threading.Thread(target=client, args=(i,)) for i in range(int(clients))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    a.close()
    return {"clients": int(clients), "seconds": wall, "questions": len(lat), "errors": len(errors),
            "error_samples": errors[:5], "per_s": len(lat) / wall, "median_ms": statistics.median(lat) if lat else 0,
            "p95_ms": float(np.percentile(lat, 95)) if lat else 0, "peak_rss_mb": peak_rss_mb()}


JOBS = {"ingest": ingest, "build-store": build_store, "ask": ask, "concurrent": concurrent}

if __name__ == "__main__":
    print(json.dumps(JOBS[sys.argv[1]](*sys.argv[2:])))
