"""Fast stand-ins for unit tests; the real components are tested in the integration lane."""

from __future__ import annotations

import hashlib

import numpy as np

from rag.text import stem, tokens


class HashEmbedder:
    """Deterministic bag-of-words vectors: each word stem hashes to a fixed random direction.

    Texts sharing words get similar vectors, which is enough to exercise retrieval and storage
    logic in milliseconds without loading a model.
    """

    def __init__(self, dim: int = 64, name: str | None = None) -> None:
        self.dim = dim
        self.name = name or f"hash-{dim}"
        self.calls = 0

    def _word(self, w: str) -> np.ndarray:
        seed = int.from_bytes(hashlib.sha1(w.encode()).digest()[:4], "little")
        return np.random.default_rng(seed).standard_normal(self.dim).astype(np.float32)

    def encode(self, texts: list[str], *, batch_size: int = 64) -> np.ndarray:
        self.calls += 1
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i, t in enumerate(texts):
            for w in tokens(t):
                out[i] += self._word(stem(w))
            n = np.linalg.norm(out[i])
            out[i] = out[i] / n if n else self._word("<empty>") / np.linalg.norm(self._word("<empty>"))
        return out
