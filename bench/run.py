"""Benchmarks: ingestion, warm and cold questions, index size, dense search at scale, LLM speed.

Prints one table and writes it as JSON to bench/results/latest.json (git-ignored; the numbers
worth keeping go into docs/BENCHMARKS.md with the machine and its load). Every run records the
machine: cores, CPU model, memory, load average before and after, library versions, commit.

    python bench/run.py                 # everything: 10k, 100k and 1M passages (~10 min, 2 cores)
    python bench/run.py --quick         # the same sections at 10k passages only (~1-2 min)
    python bench/run.py --model x.gguf  # also time to first token and tokens/s of a GGUF model
    python bench/run.py --embedder all-MiniLM-L6-v2   # the fp32 embedder instead
    python bench/run.py --only serve    # the HTTP API alone: overhead, first token, 8 clients
    python bench/run.py --only embedders,scaling,chunking  # the robustness targets (bench/robust.py)

Ingestion and the large-index questions run in child processes (bench/child.py) so that their
peak RSS and start-up are their own. Timings are wall clock and medians unless said otherwise;
they are only as quiet as the machine, so the load average is part of the result.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
import robust  # noqa: E402  (bench/robust.py: the robustness targets)
ROOT = BENCH.parent
SHARED = Path(os.environ.get("RAG_SHARED", ROOT.parent / "shared"))
CORPUS = SHARED / "corpora" / "bbc-football"
DEV = ROOT / "eval" / "bbc_bank.jsonl"  # the question bank (its questions only)
SEEDS_QA = SHARED / "eval" / "seeds_qa.jsonl"
SEEDS = ROOT / "seeds"
RESULTS = BENCH / "results"
COLD_QUESTION = "When does Alonso's contract expire?"


@dataclass
class Row:
    """One line of the table."""

    section: str
    metric: str
    value: float | str
    unit: str = ""
    target: str = ""
    ok: bool | None = None


@dataclass
class Results:
    machine: dict
    settings: dict
    sections: dict = field(default_factory=dict)
    rows: list[Row] = field(default_factory=list)

    def add(self, section: str, metric: str, value, unit: str = "", target: str = "") -> None:
        ok = None
        if target and isinstance(value, (int, float)):
            op, limit = target.split(" ", 1)
            ok = value >= float(limit) if op == ">=" else value <= float(limit)
        self.rows.append(Row(section, metric, round(value, 3) if isinstance(value, float) else value, unit, target, ok))


# ---------------------------------------------------------------------------------- machine


def _version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "-"


def machine() -> dict:
    cpu = "unknown"
    with open("/proc/cpuinfo", encoding="utf-8") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem_kb = 0
    with open("/proc/meminfo", encoding="utf-8") as f:
        for line in f:
            if line.startswith("MemTotal"):
                mem_kb = int(line.split()[1])
    try:
        commit = subprocess.run(["git", "describe", "--always", "--dirty"], cwd=ROOT, capture_output=True,
                                text=True, timeout=10).stdout.strip()
    except OSError:
        commit = "-"
    import rag
    from robust import cpu_line

    return {
        **cpu_line(),
        "cpu": cpu, "cores": os.cpu_count(), "usable_cores": len(os.sched_getaffinity(0)),
        "memory_gb": round(mem_kb / 1e6, 1), "load_before": os.getloadavg(), "python": platform.python_version(),
        "rag_code": str(Path(rag.__file__).resolve().parent), "commit": commit,
        "versions": {d: _version(d) for d in ("numpy", "faiss-cpu", "onnxruntime", "torch",
                                              "sentence-transformers", "llama-cpp-python")},
        "env": {k: os.environ.get(k) for k in ("OMP_WAIT_POLICY", "RAG_EMBED_THREADS", "OMP_NUM_THREADS")},
    }


# ---------------------------------------------------------------------------------- helpers


def child(job: str, *args: str, env: dict | None = None, timeout: float = 1800) -> dict:
    """Runs a bench/child.py job; its JSON result."""
    out = subprocess.run([sys.executable, str(BENCH / "child.py"), job, *args], capture_output=True, text=True,
                         env={**_env(), **(env or {})}, timeout=timeout)
    if out.returncode != 0:
        raise SystemExit(f"bench: child job {job} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def _env() -> dict:
    env = dict(os.environ)
    env.pop("RAG_MODEL", None)  # extractive answers unless a model is benchmarked on purpose
    env.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    return env


def rag_command() -> list[str]:
    script = Path(sys.executable).parent / "rag"
    return [str(script)] if script.exists() else [sys.executable, "-m", "rag.cli"]


def jsonl_questions(path: Path) -> list[str]:
    if not path.exists():
        return []
    return [json.loads(line)["question"] for line in path.read_text().splitlines() if line.strip()]


def dir_bytes(path: Path, prefix: str = "") -> int:
    return sum(f.stat().st_size for f in path.iterdir() if f.is_file() and f.name.startswith(prefix))


# ---------------------------------------------------------------------------------- sections


def bench_ingest(res: Results, work: Path, embedder: str | None, full: bool) -> Path:
    """Ingestion of the BBC corpus in a child process: throughput and peak RSS."""
    index = work / "bbc-index"
    r = child("ingest", str(index), str(CORPUS), embedder or "")
    peak_children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    r["peak_rss_children_mb"] = peak_children
    res.sections["ingest"] = r
    s = f"ingest ({r['embedder']})"
    res.add(s, "chunks/s", r["chunks"] / r["ingest_s"], "", ">= 150")
    res.add(s, "articles/s", r["articles"] / r["ingest_s"])
    res.add(s, "articles, chunks", f"{r['articles']}, {r['chunks']}")
    res.add(s, "ingest time", r["ingest_s"], "s")
    res.add(s, "model load", r["load_s"], "s")
    res.add(s, "peak RSS", peak_children, "MB")  # the first child: no larger one ran before it
    if full:  # one embedding thread: how much the second core adds
        r1 = child("ingest", str(work / "bbc-index-1thread"), str(CORPUS), embedder or "",
                   env={"RAG_EMBED_THREADS": "1"})
        res.sections["ingest_1_thread"] = r1
        res.add(s, "chunks/s, 1 embedding thread", r1["chunks"] / r1["ingest_s"])
        shutil.rmtree(work / "bbc-index-1thread", ignore_errors=True)
    return index


def bench_size(res: Results, index: Path) -> None:
    from rag.store import DB_NAME

    chunks = res.sections["ingest"]["chunks"]
    sqlite_b = dir_bytes(index, DB_NAME)
    faiss_b = dir_bytes(index, "faiss-")
    res.sections["size"] = {"sqlite_bytes": sqlite_b, "faiss_bytes": faiss_b, "chunks": chunks}
    res.add("index size", "per chunk", (sqlite_b + faiss_b) / chunks / 1024, "KB")
    res.add("index size", "SQLite / FAISS per chunk", f"{sqlite_b / chunks / 1024:.2f} / {faiss_b / chunks / 1024:.2f}",
            "KB")


def _warm_ask(index: Path, questions: list[str], repeats: int, embedder) -> dict:
    from rag import Assistant

    a = Assistant(index, embedder=embedder, seed=False, quiet=True)
    first = a.ask(questions[0])  # loads the embedder and the FAISS file
    total, retrieve, answer = [], [], []
    for _ in range(repeats):
        for q in questions:
            ans = a.ask(q)
            total.append(ans.timings.total_ms)
            retrieve.append(ans.timings.retrieve_ms)
            answer.append(ans.timings.answer_ms)
    a.close()
    return {"mode": first.mode, "n": len(total), "median_ms": statistics.median(total),
            "p95_ms": float(np.percentile(total, 95)), "retrieve_median_ms": statistics.median(retrieve),
            "answer_median_ms": statistics.median(answer)}


def seeds_index(work: Path, embedder: str | None) -> Path:
    from rag import Assistant

    index = work / "seeds-index"
    a = Assistant(index, embedder=embedder, seed=False, quiet=True)
    a.add([SEEDS])
    a.close()
    return index


def bench_ask(res: Results, seeds: Path, bbc_index: Path | None, embedder: str | None, repeats: int) -> None:
    """Warm extractive questions at the seeds and over the BBC corpus."""
    from rag.embed import make_embedder

    emb = make_embedder(embedder)
    cases = [("seeds", seeds, jsonl_questions(SEEDS_QA) or [COLD_QUESTION])]
    if bbc_index is not None:
        cases.append(("bbc", bbc_index, jsonl_questions(DEV)))
    for name, index, qs in cases:
        r = _warm_ask(index, qs, repeats, emb)
        res.sections[f"ask_{name}"] = r
        s = f"warm ask @{name} ({r['mode']})"
        res.add(s, "median", r["median_ms"], "ms", "<= 50" if name == "seeds" else "")
        res.add(s, "p95", r["p95_ms"], "ms")
        res.add(s, "retrieve / answer median", f"{r['retrieve_median_ms']:.1f} / {r['answer_median_ms']:.1f}", "ms")


def bench_cold(res: Results, indexes: dict[str, Path], runs: int) -> None:
    """``rag ask`` as a whole new process: interpreter, imports, index and model load, answer."""
    cmd = rag_command()
    for name, index in indexes.items():
        argv = cmd + ["ask", COLD_QUESTION, "--index", str(index)]
        subprocess.run(argv, capture_output=True, env=_env(), timeout=600)  # file cache warm, as after a first use
        times = []
        for _ in range(runs):
            t0 = time.perf_counter()
            out = subprocess.run(argv, capture_output=True, text=True, env=_env(), timeout=600)
            times.append(time.perf_counter() - t0)
            if out.returncode != 0:
                raise SystemExit(f"bench: {' '.join(argv)} failed:\n{out.stderr[-2000:]}")
        res.sections[f"cold_{name}"] = {"runs_s": times}
        res.add(f"cold `rag ask` @{name}", "median wall", statistics.median(times), "s", "<= 3")


def bench_scale(res: Results, work: Path, embedder: str | None, sizes: list[int]) -> None:
    """Dense search at scale as the store builds it: type, build time, latency, recall@10."""
    sys.path.insert(0, str(BENCH))
    import faiss
    from synthetic import exact_top, real_vectors, replicate

    from rag.embed import make_embedder
    from rag.faisscache import FaissConfig, _building, new_index, training_size

    emb = make_embedder(embedder)
    real = real_vectors(emb, CORPUS, [DEV, SEEDS_QA], RESULTS / "cache")
    res.sections["scale_base"] = {"base_vectors": len(real.base), "queries": len(real.queries)}
    config = FaissConfig()
    q = real.queries
    for n in sizes:
        x = replicate(real.base, n, seed=n)
        t0 = time.perf_counter()
        kind = "ivf" if n > config.exact_max else "flat"
        rng = np.random.default_rng(0)
        train = x[np.sort(rng.choice(n, training_size(n), replace=False))] if kind == "ivf" else None
        index = new_index(kind, x.shape[1], n, train, config)
        t1 = time.perf_counter()
        with _building(config.threads):  # as the store adds in bulk
            index.add_with_ids(x, np.arange(n, dtype=np.int64))
        t2 = time.perf_counter()
        truth = exact_top(x, q, 10)
        lat, found = [], []
        for qi in q:
            s = time.perf_counter()
            _, ids = index.search(qi[None, :], 40)  # the retrieval depth of a question
            lat.append((time.perf_counter() - s) * 1000)
            found.append(ids[0][:10])
        recall = float(np.mean([len(set(f.tolist()) & set(t.tolist())) / 10 for f, t in zip(found, truth)]))
        exact_lat = []  # what an exact search of every vector costs (one thread, numpy): the reference
        for qi in q[:20]:
            s = time.perf_counter()
            np.argpartition(-(x @ qi), 40)[:40]
            exact_lat.append((time.perf_counter() - s) * 1000)
        path = work / f"scale-{n}.index"
        faiss.write_index(index, str(path))
        ivf = faiss.try_extract_index_ivf(index)
        r = {"n": n, "type": type(index).__name__, "nlist": ivf.nlist if ivf else None,
             "nprobe": ivf.nprobe if ivf else None, "train_s": t1 - t0, "add_s": t2 - t1,
             "median_ms": statistics.median(lat), "p95_ms": float(np.percentile(lat, 95)), "recall_at_10": recall,
             "file_mb": path.stat().st_size / 1e6, "exact_median_ms": statistics.median(exact_lat)}
        if n == max(sizes):  # FAISS threads: what a second one would do to a search
            threads = os.cpu_count() or 1
            with _building(threads):
                lat_n = []
                for qi in q:
                    s = time.perf_counter()
                    index.search(qi[None, :], 40)
                    lat_n.append((time.perf_counter() - s) * 1000)
            r["median_ms_n_threads"] = statistics.median(lat_n)
            r["threads"] = threads
        res.sections[f"scale_{n}"] = r
        label = f"dense @{_human(n)} ({'IVF-SQ8 ' + str(r['nlist']) + '/' + str(r['nprobe']) if ivf else 'exact'})"
        res.add(label, "recall@10 vs exact", recall, "", ">= 0.97" if n >= 1_000_000 else "")
        res.add(label, "search median / p95", f"{r['median_ms']:.2f} / {r['p95_ms']:.2f}", "ms")
        res.add(label, "exact search of all vectors, median", r["exact_median_ms"], "ms")
        res.add(label, "build (train + add)", r["train_s"] + r["add_s"], "s")
        res.add(label, "file", r["file_mb"], "MB")
        if "median_ms_n_threads" in r:
            res.add(label, f"search median, 1 vs {r['threads']} FAISS threads",
                    f"{r['median_ms']:.2f} / {r['median_ms_n_threads']:.2f}", "ms")
        del x, index
        path.unlink()


def bench_ask_at_scale(res: Results, work: Path, embedder: str | None, n: int, repeats: int) -> None:
    """The whole question path over an index of ``n`` synthetic passages (SQLite + FTS5 + FAISS)."""
    sys.path.insert(0, str(BENCH))
    from synthetic import real_vectors

    from rag.embed import make_embedder

    emb = make_embedder(embedder)
    real = real_vectors(emb, CORPUS, [DEV, SEEDS_QA], RESULTS / "cache")
    vec_file = work / "real.npz"
    np.savez(vec_file, base=real.base, chunks=real.chunks, queries=real.queries)
    chunk_file = work / "chunks.json"
    chunk_file.write_text(json.dumps(real.chunk_texts))
    q_file = work / "questions.json"
    q_file.write_text(json.dumps(jsonl_questions(DEV)))
    index = work / f"store-{n}"
    b = child("build-store", str(index), str(n), str(vec_file), str(chunk_file), emb.name)
    r = child("ask", str(index), str(q_file), str(repeats))
    res.sections[f"ask_{n}"] = {"build": b, "ask": r}
    s = f"warm ask @{_human(n)} passages ({r['mode']}, {r['faiss']})"
    res.add(s, "median", r["median_ms"], "ms", "<= 100" if n >= 1_000_000 else "")
    res.add(s, "p95", r["p95_ms"], "ms")
    res.add(s, "retrieve / answer median", f"{r['retrieve_median_ms']:.1f} / {r['answer_median_ms']:.1f}", "ms")
    res.add(s, "first question (open + load)", r["first_ask_s"], "s")
    res.add(s, "peak RSS of the asking process", r["peak_rss_mb"], "MB", "<= 4096" if n >= 1_000_000 else "")
    res.add(s, "index on disk", b["size_mb"], "MB")
    res.add(s, "bulk write (no embedding)", b["passages"] / b["write_s"], "passages/s")
    shutil.rmtree(index, ignore_errors=True)


def _llm_run(index: Path, model: Path, embedder: str | None, threads: int | None) -> dict:
    from rag import Assistant
    from rag.llm import LLMSettings

    a = Assistant(index, embedder=embedder, model=model, llm=LLMSettings(n_threads=threads), seed=False, quiet=True)
    qs = (jsonl_questions(SEEDS_QA) or [COLD_QUESTION])[:6]
    a.ask(qs[0])  # loads the model
    first, rates = [], []
    for q in qs:
        t = a.ask(q).timings
        if t.first_token_ms is not None:
            first.append(t.first_token_ms)
        if t.generated_tokens and t.first_token_ms is not None and t.answer_ms > t.first_token_ms:
            rates.append((t.generated_tokens - 1) / ((t.answer_ms - t.first_token_ms) / 1000))
    used = a.answerer.settings.threads
    a.close()
    return {"threads": used, "first_token_ms": first, "tokens_per_s": rates}


def bench_llm(res: Results, index: Path, model: Path, embedder: str | None) -> None:
    """Time to first token and decoding speed of a GGUF model on the seed questions, with the
    default threads (the physical cores) and with one."""
    runs = [_llm_run(index, model, embedder, None), _llm_run(index, model, embedder, 1)]
    res.sections["llm"] = {"model": str(model), "runs": runs}
    for r in runs:
        s = f"LLM ({model.name}, {r['threads']} thread{'s' if r['threads'] > 1 else ''})"
        if r["first_token_ms"]:
            res.add(s, "time to first token", statistics.median(r["first_token_ms"]), "ms")
        if r["tokens_per_s"]:
            res.add(s, "decoding", statistics.median(r["tokens_per_s"]), "tokens/s")


def bench_postgresql(res: Results, work: Path, args, only: set[str], sizes: list[int], repeats: int,
                     bbc_index: Path | None, ask_at: int) -> None:
    """The PostgreSQL store beside the SQLite one (bench/pg.py): ingest, warm questions, the
    concurrency run for both stores, and questions at scale."""
    import pg

    run = sys.modules[__name__]
    server = pg.Server(args.pg)
    try:
        pg_bbc = None
        if only & {"pg-ingest", "pg-ask", "concurrency"}:
            pg_bbc = pg.bench_ingest(res, run, server, args.embedder)
        if "pg-ask" in only:
            pg.bench_ask(res, run, pg_bbc, args.embedder, repeats)
        if "concurrency" in only:
            indexes = ({"SQLite": str(bbc_index)} if bbc_index else {}) | {"PostgreSQL": pg_bbc}
            pg.bench_concurrency(res, run, work, indexes, args.clients, 10 if args.quick else 60)
        if "pg-scale" in only:
            pg.bench_scale(res, run, work, server, args.embedder, sizes, repeats,
                           sqlite_sizes=[n for n in sizes if not ("ask-at-scale" in only and n == ask_at)])
    finally:
        server.close()


# ---------------------------------------------------------------------------------- output


def _human(n: int) -> str:
    return f"{n // 1_000_000}M" if n >= 1_000_000 and n % 1_000_000 == 0 else f"{n // 1000}k" if n >= 1000 else str(n)


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:,.3f}" if abs(v) < 10 else f"{v:,.1f}"
    return str(v)


def table(res: Results) -> str:
    m = res.machine
    lines = [f"{m['cpu']}, {m['usable_cores']} cores, {m['memory_gb']} GB; load {m['load_before'][0]:.2f} before, "
             f"{m['load_after'][0]:.2f} after; {m['commit']}",
             f"ISA: {' '.join(m['isa']) or 'none found'}; int8 dot products: {'yes' if m['int8_dot'] else 'no'}; "
             f"embedder for new indexes: {m['default_embedder']}"]
    w1 = max(len(r.section) for r in res.rows)
    w2 = max(len(r.metric) for r in res.rows)
    section = None
    for r in res.rows:
        flag = "" if r.ok is None else ("  ok" if r.ok else "  MISSED")
        target = f"  (target {r.target}{' ' + r.unit if r.unit else ''})" if r.target else ""
        lines.append(f"{(r.section if r.section != section else ''):<{w1}}  {r.metric:<{w2}}  "
                     f"{_fmt(r.value):>12} {r.unit:<10}{target}{flag}")
        section = r.section
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="10k passages only, fewer repeats")
    p.add_argument("--model", type=Path, help="a GGUF model: also time to first token and tokens/s")
    p.add_argument("--embedder", help="embedder to benchmark (default: the default for a new index)")
    p.add_argument("--scale", help="passage counts for dense search, e.g. 10000,100000,1000000")
    p.add_argument("--ask-at", type=int, help="passages in the large index asked end to end")
    p.add_argument("--only", help="comma-separated sections: ingest,ask,cold,scale,ask-at-scale,llm,"
                                  "feeds,watch,extract,serve,embedders,scaling,chunking, and for the "
                                  "PostgreSQL store pg-ingest,pg-ask,pg-scale,concurrency")
    p.add_argument("--pg", metavar="DSN", help="PostgreSQL server to benchmark on (default: start a local one)")
    p.add_argument("--pg-scale", help="passage counts asked end to end in PostgreSQL (default 100000,1000000)")
    p.add_argument("--clients", type=int, default=8, help="concurrent clients in the concurrency section")
    p.add_argument("--out", type=Path, default=RESULTS / "latest.json")
    args = p.parse_args(argv)
    if not CORPUS.is_dir():
        print(f"bench: the corpus {CORPUS} is missing (set RAG_SHARED)", file=sys.stderr)
        return 2
    if args.model and not args.model.is_file():
        print(f"bench: model {args.model} not found", file=sys.stderr)
        return 2
    sizes = [int(s) for s in args.scale.split(",")] if args.scale else ([10_000] if args.quick else
                                                                         [10_000, 100_000, 1_000_000])
    ask_at = args.ask_at or (10_000 if args.quick else 1_000_000)
    only = set(args.only.split(",")) if args.only else {"ingest", "ask", "cold", "scale", "ask-at-scale", "llm",
                                                        "feeds", "watch", "extract", "serve",
                                                        "embedders", "scaling", "chunking",
                                                        "pg-ingest", "pg-ask", "pg-scale", "concurrency"}
    pg_sizes = [int(s) for s in args.pg_scale.split(",")] if args.pg_scale else ([10_000] if args.quick else
                                                                                 [100_000, 1_000_000])
    repeats = 1 if args.quick else 3
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    res = Results(machine(), {"quick": args.quick, "embedder": args.embedder or "default", "scale": sizes,
                              "ask_at": ask_at, "repeats": repeats})
    work = Path(tempfile.mkdtemp(prefix="rag-bench-"))
    t0 = time.perf_counter()
    try:
        bbc_index = None
        if only & {"ingest", "ask", "cold"}:
            bbc_index = bench_ingest(res, work, args.embedder, full=not args.quick)
            bench_size(res, bbc_index)
        seeds = seeds_index(work, args.embedder) if only & {"ask", "cold", "llm", "serve"} else None
        if "ask" in only:
            bench_ask(res, seeds, bbc_index, args.embedder, repeats)
        if "cold" in only:
            indexes = {"seeds": seeds} | ({"bbc": bbc_index} if bbc_index else {})
            bench_cold(res, indexes, 2 if args.quick else 5)
        if "scale" in only:
            bench_scale(res, work, args.embedder, sizes)
        if "ask-at-scale" in only:
            bench_ask_at_scale(res, work, args.embedder, ask_at, repeats)
        if "serve" in only:
            sys.path.insert(0, str(BENCH))
            from serve_api import bench_serve

            bench_serve(res, seeds, args.embedder, jsonl_questions(SEEDS_QA) or [COLD_QUESTION], cmd=rag_command(),
                        env=_env(), repeats=3 * repeats, seconds=5 if args.quick else 15)
        if "llm" in only and args.model:
            bench_llm(res, seeds, args.model.resolve(), args.embedder)
        if only & {"feeds", "watch", "extract"}:
            import sources

            if "feeds" in only:
                sources.bench_feeds(res, work, args.embedder)
            if "watch" in only:
                sources.bench_watch(res, work, args.embedder)
            if "extract" in only:
                sources.bench_extract(res)
        if "embedders" in only:
            robust.bench_embedders(res, work, CORPUS, child)
        if "scaling" in only:
            factors = (1, 4) if args.quick else (1, 4, 16)
            robust.bench_scaling_without_model(res, work, CORPUS, factors)
            robust.bench_scaling(res, work, CORPUS, child, factors, args.embedder)
        if "chunking" in only:
            robust.bench_chunking(res, CORPUS)
        if only & {"pg-ingest", "pg-ask", "pg-scale", "concurrency"}:
            bench_postgresql(res, work, args, only, pg_sizes, repeats, bbc_index, ask_at)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    res.machine["load_after"] = os.getloadavg()
    res.machine["bench_s"] = time.perf_counter() - t0
    print(table(res))
    print(f"\n{res.machine['bench_s']:.0f}s; written to {args.out}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"machine": res.machine, "settings": res.settings, "sections": res.sections,
                                    "rows": [asdict(r) for r in res.rows]}, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
