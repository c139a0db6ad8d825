"""Synthetic scale from real text: MiniLM vectors of the BBC corpus, replicated with noise.

Random vectors make approximate search look better (or worse) than it is, because real
embeddings cluster by topic. So the vectors here are real: every sentence, every window of three
sentences and every chunk of the corpus, embedded by the embedder under test (about 8,000
vectors, cached in bench/results/cache). To reach 10k..1M passages each real vector is copied
with Gaussian noise of norm 0.4..1.0 before re-normalising (a copy keeps a cosine of 0.71..0.93
with its original), so near neighbours are many, close and in realistic clusters. Queries are
the embedded questions of the dev and seeds sets.

For the full-pipeline measurement at scale, passages also need text for BM25: each synthetic
passage is a real chunk whose names and numbers are swapped for others from the corpus, so
posting lists grow with the index as they would with more football news.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

_NAME = re.compile(r"\b[A-Z][a-z]{2,}\b")
_NUMBER = re.compile(r"\b\d+\b")


@dataclass
class RealVectors:
    """Embedded texts of a corpus: ``base`` for replication, ``chunks`` with their texts."""

    base: np.ndarray
    chunks: np.ndarray
    chunk_texts: list[str]
    queries: np.ndarray
    questions: list[str]


def corpus_texts(corpus: Path) -> tuple[list[str], list[str]]:
    """(texts for base vectors: sentences, 3-sentence windows and chunks; chunk texts)."""
    from rag.chunk import chunk_article, embedding_text, split_sentences
    from rag.ingest import read_file

    base: list[str] = []
    chunks: list[str] = []
    for f in sorted(corpus.glob("*.txt")):
        for ps in read_file(f):
            if not hasattr(ps, "article"):
                continue
            a = ps.article
            sentences = [s.text for s in split_sentences(a.text) if len(s.text.split()) >= 4]
            base += sentences
            base += [" ".join(sentences[i: i + 3]) for i in range(0, max(0, len(sentences) - 2), 2)]
            chunks += [c.text for c in chunk_article(a)]
            base += [embedding_text(a, c) for c in chunk_article(a)]
    return base, chunks


def questions(paths: list[Path]) -> list[str]:
    out: list[str] = []
    for p in paths:
        if p.exists():
            out += [json.loads(line)["question"] for line in p.read_text().splitlines() if line.strip()]
    return out


def real_vectors(embedder, corpus: Path, question_files: list[Path], cache_dir: Path) -> RealVectors:
    """Embeds the corpus texts and the questions once per embedder; later runs load the cache."""
    base_texts, chunk_texts = corpus_texts(corpus)
    qs = questions(question_files)
    key = hashlib.sha256(json.dumps([embedder.name, base_texts, chunk_texts, qs]).encode()).hexdigest()[:12]
    path = cache_dir / f"vectors-{embedder.name}-{key}.npz"
    if path.exists():
        z = np.load(path)
        return RealVectors(z["base"], z["chunks"], chunk_texts, z["queries"], qs)
    base = embedder.encode(base_texts)
    chunks = embedder.encode(chunk_texts)
    queries = embedder.encode(qs)
    cache_dir.mkdir(parents=True, exist_ok=True)
    np.savez(path, base=base, chunks=chunks, queries=queries)
    return RealVectors(base, chunks, chunk_texts, queries, qs)


def noisy_copies(vectors: np.ndarray, picks: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Unit vectors near ``vectors[picks]``: Gaussian noise of norm 0.4..1.0, re-normalised."""
    g = rng.standard_normal((len(picks), vectors.shape[1])).astype(np.float32)
    g /= np.linalg.norm(g, axis=1, keepdims=True)
    r = rng.uniform(0.4, 1.0, (len(picks), 1)).astype(np.float32)
    x = vectors[picks] + r * g
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x.astype(np.float32)


def replicate(base: np.ndarray, n: int, seed: int = 0, block: int = 100_000) -> np.ndarray:
    """``n`` noisy copies of the base vectors (each base vector about equally often)."""
    rng = np.random.default_rng(seed)
    out = np.empty((n, base.shape[1]), dtype=np.float32)
    for s in range(0, n, block):
        e = min(n, s + block)
        out[s:e] = noisy_copies(base, rng.integers(0, len(base), e - s), rng)
    return out


def exact_top(x: np.ndarray, queries: np.ndarray, k: int, block: int = 100_000) -> np.ndarray:
    """Row ids of the exact top-k inner products for each query, computed block by block."""
    best_s = np.full((len(queries), k), -np.inf, dtype=np.float32)
    best_i = np.zeros((len(queries), k), dtype=np.int64)
    for s in range(0, len(x), block):
        scores = queries @ x[s: s + block].T
        kk = min(k, scores.shape[1])
        part = np.argpartition(-scores, kk - 1, axis=1)[:, :kk]
        cand_s = np.concatenate([best_s, np.take_along_axis(scores, part, axis=1)], axis=1)
        cand_i = np.concatenate([best_i, part + s], axis=1)
        order = np.argsort(-cand_s, axis=1)[:, :k]
        best_s = np.take_along_axis(cand_s, order, axis=1)
        best_i = np.take_along_axis(cand_i, order, axis=1)
    return best_i


class TextShuffler:
    """Rewrites a chunk with other names and numbers from the corpus (same length and shape)."""

    def __init__(self, texts: list[str], seed: int = 0) -> None:
        self.names = sorted({m for t in texts for m in _NAME.findall(t)})
        self.rng = np.random.default_rng(seed)

    def __call__(self, text: str) -> str:
        names, rng = self.names, self.rng

        def name(m: re.Match) -> str:
            return names[int(rng.integers(len(names)))] if rng.random() < 0.5 else m.group(0)

        def number(m: re.Match) -> str:
            return str(int(rng.integers(1, 10 ** len(m.group(0)))))

        return _NUMBER.sub(number, _NAME.sub(name, text))


def synthetic_articles(real: RealVectors, n_chunks: int, per_article: int = 8,
                       seed: int = 0) -> Iterator[tuple[str, str, list[str], np.ndarray]]:
    """(id, title, chunk texts, vectors) for articles totalling ``n_chunks`` passages."""
    rng = np.random.default_rng(seed)
    shuffle = TextShuffler(real.chunk_texts, seed)
    made = 0
    i = 0
    while made < n_chunks:
        k = min(per_article, n_chunks - made)
        picks = rng.integers(0, len(real.chunk_texts), k)
        texts = [shuffle(real.chunk_texts[p]) for p in picks]
        vecs = noisy_copies(real.chunks, picks, rng)
        yield f"synthetic-{i:07d}", f"Synthetic report {i}", texts, vecs
        made += k
        i += 1
