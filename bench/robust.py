"""Benchmarks for the robustness targets: the embedder configurations side by side in one run
(the CPU's instruction sets decide which is the default), ingest time against corpus size, and
chunking a 20 MB article.

    python bench/run.py --only embedders,scaling,chunking

Copies of the BBC corpus are written to a temporary folder (each article prefixed with its copy
number so that no copy is skipped as a duplicate) and deleted afterwards; nothing from the
corpus is written into the project.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

# the configurations compared; "default" is what a new index gets on this CPU
EMBEDDERS = ("pytorch", "onnx-fp32", "onnx-int8", "default")


def cpu_line() -> dict:
    """The CPU model, the instruction sets that decide the embedder, and the default configuration."""
    from rag.embed import make_embedder
    from rag.onnx_embed import cpu_info, describe, preferred_precision

    info = cpu_info()
    return {"cpu_model": info.model, "isa": list(info.isa), "int8_dot": info.int8_dot,
            "precision": preferred_precision(), "default_embedder": describe(make_embedder(None))}


def bench_embedders(res, work: Path, corpus: Path, child, rounds: int = 2) -> None:
    """Ingest of the BBC corpus with each embedder configuration, in one run; target: the
    default at least 3x PyTorch fp32. The configurations take turns for ``rounds`` rounds and
    the medians are compared, in wall time and in CPU time (chunks per CPU-second: what load
    from other work on a shared machine does not change)."""
    import statistics

    wall: dict[str, list[float]] = {n: [] for n in EMBEDDERS}
    cpu: dict[str, list[float]] = {n: [] for n in EMBEDDERS}
    names = {}
    for _ in range(rounds):
        for name in EMBEDDERS:
            r = child("ingest", str(work / f"ingest-{name}"), str(corpus), name)
            shutil.rmtree(work / f"ingest-{name}", ignore_errors=True)
            wall[name].append(r["chunks"] / r["ingest_s"])
            cpu[name].append(r["chunks"] / r["ingest_cpu_s"])
            names[name] = r["embedder"]
            res.sections.setdefault(f"embedder_{name}", []).append(r)
    w = {n: statistics.median(v) for n, v in wall.items()}
    c = {n: statistics.median(v) for n, v in cpu.items()}
    for name in EMBEDDERS:
        res.add("ingest by embedder", f"{name}: {names[name]}", f"{w[name]:.1f} / {c[name]:.1f}",
                "chunks/s, per CPU-s")
    for name in EMBEDDERS[1:]:
        res.add("ingest by embedder", f"{name} / pytorch fp32, wall", w[name] / w["pytorch"], "x")
        res.add("ingest by embedder", f"{name} / pytorch fp32, CPU time", c[name] / c["pytorch"], "x",
                ">= 3" if name == "default" else "")


def copies(corpus: Path, folder: Path, factor: int) -> Path:
    """``factor`` distinct copies of every article of ``corpus`` under ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    for f in sorted(corpus.glob("*.txt")):
        text = f.read_text(encoding="utf-8")
        head, _, body = text.partition("\n")
        for k in range(factor):
            (folder / f"{f.stem}-{k}.txt").write_text(f"{head} ({k})\n{body}\nCopy {k}.\n", encoding="utf-8")
    return folder


def bench_scaling(res, work: Path, corpus: Path, child, factors: tuple[int, ...], embedder: str | None) -> None:
    """Ingest time for 1x, 4x, 16x the corpus: time per chunk should not grow with the corpus."""
    per_chunk = {}
    for factor in factors:
        folder = copies(corpus, work / f"corpus-{factor}x", factor)
        r = child("ingest", str(work / f"scale-{factor}x"), str(folder), embedder or "")
        shutil.rmtree(folder, ignore_errors=True)
        shutil.rmtree(work / f"scale-{factor}x", ignore_errors=True)
        per_chunk[factor] = r["ingest_cpu_s"] / r["chunks"] * 1000
        res.sections[f"scaling_{factor}x"] = r
        res.add("ingest vs corpus size", f"{factor}x BBC: {r['articles']} articles, {r['chunks']} chunks",
                r["ingest_s"], "s")
    first, last = factors[0], factors[-1]
    for factor in factors:
        res.add("ingest vs corpus size", f"{factor}x: CPU seconds per 1,000 chunks", per_chunk[factor], "s")
    res.add("ingest vs corpus size", f"time per chunk, {last}x / {first}x", per_chunk[last] / per_chunk[first], "x",
            "<= 1.25")


class _RandomEmbedder:
    """Unit vectors at no cost: isolates what ingest costs besides the model."""

    name = "random-384"
    dim = 384

    def encode(self, texts: list[str], *, batch_size: int = 64):
        import numpy as np

        v = np.random.default_rng(len(texts)).standard_normal((len(texts), self.dim)).astype(np.float32)
        return v / np.linalg.norm(v, axis=1, keepdims=True)


def bench_scaling_without_model(res, work: Path, corpus: Path, factors: tuple[int, ...]) -> None:
    """The same corpus sizes with the model taken out (random vectors): reading, chunking, SQLite,
    FTS5 and FAISS alone, which is where anything worse than linear would hide (the model's cost
    per chunk does not depend on the corpus), measured without the embedder's noise."""
    from rag import Assistant

    per_chunk = {}
    for factor in factors:
        folder = copies(corpus, work / f"corpus-{factor}x", factor)
        a = Assistant(work / f"nomodel-{factor}x", embedder=_RandomEmbedder(), seed=False, quiet=True)
        t0 = time.process_time()  # CPU time: what other load on the machine does not change
        report = a.add([folder])
        dt = time.process_time() - t0
        a.close()
        shutil.rmtree(folder, ignore_errors=True)
        shutil.rmtree(work / f"nomodel-{factor}x", ignore_errors=True)
        per_chunk[factor] = dt / report.chunks * 1000
        res.sections[f"scaling_without_model_{factor}x"] = {"chunks": report.chunks, "s": dt}
        res.add("ingest without the model", f"{factor}x: CPU ms per chunk ({report.chunks} chunks)",
                per_chunk[factor], "ms")
    first, last = factors[0], factors[-1]
    res.add("ingest without the model", f"time per chunk, {last}x / {first}x", per_chunk[last] / per_chunk[first],
            "x", "<= 1.25")


def bench_chunking(res, corpus: Path, mb: int = 20) -> None:
    """Chunking one article of ``mb`` MB (the corpus repeated), in this process."""
    from rag.chunk import chunk_article
    from rag.models import Article

    base = "\n\n".join(f.read_text(encoding="utf-8") for f in sorted(corpus.glob("*.txt")))
    text = (base * (mb * 2**20 // len(base) + 1))[: mb * 2**20]
    t0 = time.perf_counter()
    chunks = chunk_article(Article("big", "Big", None, "big.txt", text))
    dt = time.perf_counter() - t0
    res.sections["chunking"] = {"mb": mb, "chunks": len(chunks), "s": dt}
    res.add(f"chunking a {mb} MB article", f"{len(chunks)} chunks", dt, "s", "<= 5")
