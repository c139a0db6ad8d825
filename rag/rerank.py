"""Optional cross-encoder reranking of the fused passages.

A cross-encoder reads the question and a passage together and scores how well the passage
answers it: slower than the bi-encoder (one model call per pair) but better at telling the
passage that *answers* from the one that merely shares words. It is off by default because no
cross-encoder weights ship with the project and nothing is downloaded: give any
sentence-transformers ``CrossEncoder`` by local path (or by name, if it is already in the local
Hugging Face cache). The retriever fuses more candidates than it returns, the reranker orders
them, and the top ones go to the answerer.
"""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

from .errors import ConfigError
from .offline import LazyModel, offline_env
from .models import Passage, Query

DEFAULT_CANDIDATES = 20


class CrossEncoderReranker(LazyModel):
    """Reorders passages with a sentence-transformers ``CrossEncoder``, loaded on first use.

    Args:
        model: a local model folder, or a model name already in the Hugging Face cache.
        candidates: how many fused passages to rerank (at least the number returned).
        device: torch device.
    """

    def __init__(self, model: str | os.PathLike[str], *, candidates: int = DEFAULT_CANDIDATES,
                 device: str = "cpu") -> None:
        ref = str(model).strip()
        if not ref:
            raise ConfigError("reranker name is empty")
        if candidates < 1:
            raise ConfigError(f"reranker candidates must be at least 1, got {candidates}")
        path = Path(ref).expanduser()
        if (path.is_absolute() or ref.startswith(".")) and not path.exists():
            raise ConfigError(f"reranker path {path} does not exist")
        if path.exists() and not (path / "config.json").exists():
            raise ConfigError(f"reranker path {path} is not a model folder (no config.json)")
        self.name = str(path.resolve()) if path.exists() else ref
        self.candidates = candidates
        self.device = device
        self._model = None

    def _load(self):
        offline_env()
        from sentence_transformers import CrossEncoder

        try:
            return CrossEncoder(self.name, device=self.device)
        except Exception as e:  # OSError offline, ValueError for a folder that is not a model, ...
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise ConfigError(f"cannot load reranker '{self.name}': {first}") from None

    def scores(self, question: str, passages: list[Passage]) -> list[float]:
        """The cross-encoder's score for each (question, headline + passage) pair."""
        if not passages:
            return []
        pairs = [(question, f"{p.article.title}. {p.chunk.text}") for p in passages]
        out = self.model.predict(pairs, show_progress_bar=False)
        return [float(x) for x in out]

    def rerank(self, query: Query, passages: list[Passage], top_k: int) -> list[Passage]:
        """The ``top_k`` passages by cross-encoder score (ties keep the fused order)."""
        scored = self.scores(query.text, passages)
        order = sorted(range(len(passages)), key=lambda i: (-scored[i], i))
        return [replace(passages[i], score=scored[i]) for i in order[:top_k]]


def make_reranker(spec: str | os.PathLike[str] | CrossEncoderReranker | None) -> CrossEncoderReranker | None:
    """A reranker from a name or path, an existing reranker, or None (no reranking)."""
    if spec is None or isinstance(spec, CrossEncoderReranker):
        return spec
    if isinstance(spec, (str, os.PathLike)):
        return CrossEncoderReranker(spec)
    if callable(getattr(spec, "rerank", None)):
        return spec  # any object with rerank(query, passages, top_k)
    raise ConfigError(f"reranker must be a model name or path, got {spec!r}")
