"""The int8 ONNX embedder: how it is chosen, cached and exported, and that its vectors match.

Unit tests check the choice between the two MiniLM variants, the fallback without
onnxruntime and the cache keys, without loading any model. Integration tests export the real
model into a temporary cache once and compare its vectors with the PyTorch ones.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from rag import embed
from rag import onnx_embed
from rag.embed import DEFAULT_EMBEDDER, INT8_EMBEDDER, SentenceTransformerEmbedder, make_embedder, minilm_variant
from rag.errors import ConfigError
from rag.onnx_embed import OnnxEmbedder
from tests.conftest import ROOT

SENTENCES = [
    "Xabi Alonso's contract with Bayer Leverkusen runs until June 2024.",
    "Fernando Diniz was named caretaker manager of Brazil.",
    "The Gunners beat Spurs 2-1 in the north London derby.",
    "Rain stopped play at Old Trafford.",
    "Quinton Fortune scored Manchester United's first goal in the FA Cup win at Goodison Park, "
    "where Wayne Rooney returned to face Everton for the first time since his move.",
]


# ------------------------------------------------------------------ choosing (unit)


def test_default_is_int8_where_onnxruntime_runs(monkeypatch):
    monkeypatch.setattr(embed, "int8_available", lambda: True)
    monkeypatch.setattr(onnx_embed, "preferred_precision", lambda: "int8")
    e = make_embedder(None)
    assert isinstance(e, OnnxEmbedder)
    assert e.name == INT8_EMBEDDER and (e.precision, e.batch_size, e.max_length) == ("int8", 1, 256)
    assert e._session is None  # nothing loaded until the first encode


def test_without_int8_dot_products_the_default_is_fp32_onnx(monkeypatch):
    monkeypatch.setattr(embed, "int8_available", lambda: True)
    monkeypatch.setattr(embed, "_onnx_fp32_available", lambda: True)
    monkeypatch.delenv("RAG_EMBED_PRECISION", raising=False)
    zen2 = onnx_embed.CpuInfo("AMD EPYC 7B12", ("sse4_2", "avx", "avx2", "fma"), int8_dot=False)
    monkeypatch.setattr(onnx_embed, "cpu_info", lambda: zen2)
    assert onnx_embed.preferred_precision() == "fp32"
    e = make_embedder(None)
    assert isinstance(e, OnnxEmbedder) and e.name == DEFAULT_EMBEDDER
    assert (e.precision, e.batch_size, e.max_length) == ("fp32", onnx_embed.FP32_BATCH, 256)
    spr = onnx_embed.CpuInfo("Xeon", ("avx2", "avx512f", "avx512_vnni", "amx_int8"), int8_dot=True)
    monkeypatch.setattr(onnx_embed, "cpu_info", lambda: spr)
    assert make_embedder(None).name == INT8_EMBEDDER
    monkeypatch.setenv("RAG_EMBED_PRECISION", "fp32")
    assert make_embedder(None).name == DEFAULT_EMBEDDER
    monkeypatch.setenv("RAG_EMBED_PRECISION", "int4")
    with pytest.raises(ConfigError, match="RAG_EMBED_PRECISION must be int8, fp32 or auto, got 'int4'"):
        make_embedder(None)


def test_cpu_info_reads_the_instruction_sets():
    info = onnx_embed.cpu_info()
    assert info.model and isinstance(info.isa, tuple)
    flags = open("/proc/cpuinfo").read()
    assert info.int8_dot == any(f" {f}" in flags for f in onnx_embed.INT8_DOT)
    assert "ONNX" in onnx_embed.describe(OnnxEmbedder(name="x")) and info.model in onnx_embed.describe(
        OnnxEmbedder(name="x"))


def test_fallback_to_pytorch_without_onnxruntime(monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # `import onnxruntime` now fails
    assert not onnx_embed.onnxruntime_available()
    assert not embed.int8_available()
    e = make_embedder(None)
    assert isinstance(e, SentenceTransformerEmbedder)
    assert e.name == DEFAULT_EMBEDDER
    with pytest.raises(ConfigError, match="all-MiniLM-L6-v2-int8-256' needs onnxruntime"):
        make_embedder(INT8_EMBEDDER)


def test_an_index_keeps_the_variant_it_was_built_with(tmp_path):
    from rag import Assistant
    from rag.models import Article, Chunk
    from rag.store import NewArticle, Store

    for name, cls in ((DEFAULT_EMBEDDER, OnnxEmbedder), (INT8_EMBEDDER, OnnxEmbedder),
                      ("all-MiniLM-L6-v2-int8", OnnxEmbedder)):
        d = tmp_path / name
        store = Store(d, embedder_name=name)
        art = Article("a", "Title", None, str(d / "a.txt"), "Some text.")
        store.write_batch([NewArticle(art, "h", [Chunk(0, "a", 0, "Some text.", 0, 10)],
                                      np.ones((1, 384), dtype=np.float32) / np.sqrt(384))])
        store.close()
        a = Assistant(d, seed=False, quiet=True)
        assert type(a.embedder) is cls and a.embedder.name == name
        assert a.embedder.precision == ("fp32" if name == DEFAULT_EMBEDDER else "int8")
        assert a.embedder.max_length == (128 if name.endswith("int8") else 256)  # 128: the earlier variant
        a.close()
    assert minilm_variant("hash-64") is None and minilm_variant(None) is None


def test_embed_threads_from_environment(monkeypatch):
    monkeypatch.setenv("RAG_EMBED_THREADS", "1")
    assert embed.default_threads() == 1
    monkeypatch.setenv("RAG_EMBED_THREADS", "many")
    with pytest.raises(ConfigError, match="RAG_EMBED_THREADS must be a whole number, got 'many'"):
        embed.default_threads()


def test_bad_max_length_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="max_length must be at least 8, got 2"):
        OnnxEmbedder(tmp_path, name="x", max_length=2)


# ------------------------------------------------------------------ the cache (unit)


@pytest.fixture
def fake_model_dir(tmp_path):
    d = tmp_path / "model"
    d.mkdir()
    (d / "config.json").write_text(json.dumps({"hidden_size": 8}))
    (d / "tokenizer.json").write_text("{}")
    (d / "model.safetensors").write_bytes(b"\0" * 64)
    return d


def test_cache_root_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.delenv("RAG_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert onnx_embed.cache_root() == tmp_path / "xdg" / "football-rag"
    monkeypatch.setenv("RAG_CACHE", str(tmp_path / "mine"))
    assert onnx_embed.cache_root() == tmp_path / "mine"


def test_cache_key_changes_with_model_and_versions(fake_model_dir, monkeypatch):
    key = onnx_embed.cache_key(fake_model_dir)
    assert key == onnx_embed.cache_key(fake_model_dir)
    monkeypatch.setattr(onnx_embed, "_version", lambda dist: "99.0")
    assert onnx_embed.cache_key(fake_model_dir) != key
    monkeypatch.undo()
    (fake_model_dir / "config.json").write_text(json.dumps({"hidden_size": 16}))
    assert onnx_embed.cache_key(fake_model_dir) != key


def test_a_cached_file_is_reused_and_a_leftover_is_not(fake_model_dir, tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    calls = []

    def fake_export(model_dir, out_dir):
        calls.append(out_dir)
        out_dir.mkdir(parents=True)
        (out_dir / "model.onnx").write_bytes(b"onnx")
        (out_dir / "manifest.json").write_text("{}")
        return out_dir / "model.onnx"

    monkeypatch.setattr(onnx_embed, "export_int8", fake_export)
    folder = onnx_embed.cached_folder(fake_model_dir, cache)
    folder.mkdir(parents=True)
    (folder / "model.onnx").write_bytes(b"half-written")  # no manifest: an interrupted export
    path = onnx_embed.ensure_model(fake_model_dir, cache)
    assert calls == [folder] and path.read_bytes() == b"onnx"
    assert onnx_embed.ensure_model(fake_model_dir, cache) == path
    assert len(calls) == 1  # reused


def test_export_possible_from_the_cache_alone(fake_model_dir, tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    monkeypatch.setitem(sys.modules, "onnx", None)
    assert not onnx_embed.export_possible(fake_model_dir, cache)
    folder = onnx_embed.cached_folder(fake_model_dir, cache)
    folder.mkdir(parents=True)
    (folder / "manifest.json").write_text("{}")
    assert onnx_embed.export_possible(fake_model_dir, cache)


# ------------------------------------------------------------------ the real model (integration)


@pytest.fixture(scope="module")
def onnx_cache(tmp_path_factory):
    return tmp_path_factory.mktemp("onnx-cache")


@pytest.fixture(scope="module")
def int8(onnx_cache):
    """The real int8 embedder, exported once into a private cache."""
    e = OnnxEmbedder(name=INT8_EMBEDDER, cache=onnx_cache)
    e.encode(["warm up"])
    return e


@pytest.mark.integration
def test_export_writes_a_manifest_into_the_cache(int8, onnx_cache):
    folder = int8.model_path.parent
    assert folder.parent == onnx_cache / "onnx"
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["weights"].startswith("int8")
    assert not [p for p in onnx_cache.rglob("*") if p.name.startswith(".")]  # no temp folder left


@pytest.mark.integration
def test_int8_vectors_match_pytorch(int8, real_embedder):
    a = int8.encode(SENTENCES)
    b = real_embedder.encode(SENTENCES)
    assert a.shape == b.shape == (len(SENTENCES), 384)
    assert np.allclose(np.linalg.norm(a, axis=1), 1.0, atol=1e-4)
    cos = (a * b).sum(axis=1)
    assert cos.min() >= 0.98, cos
    # and they rank like the PyTorch vectors: each sentence is its own nearest neighbour
    assert (np.argmax(a @ b.T, axis=1) == np.arange(len(SENTENCES))).all()


@pytest.mark.integration
def test_tokenizer_matches_sentence_transformers(int8, real_embedder):
    st_tok = real_embedder.model.tokenizer
    for text in SENTENCES:
        assert int8._tokenizer.encode(text).ids == st_tok(text)["input_ids"]


@pytest.mark.integration
def test_a_text_gets_the_same_vector_whatever_else_is_encoded(int8):
    texts = SENTENCES + ["word " * 400, "Short."] * 3
    together = int8.encode(texts)
    alone = np.stack([int8.encode([t])[0] for t in texts])
    assert np.allclose(together, alone, atol=1e-6)
    # batched runs (sorted by length, padded) stay close, though activations are scaled per run
    batched = int8.encode(texts, batch_size=4)
    assert (batched * alone).sum(axis=1).min() > 0.97


@pytest.mark.integration
def test_worker_threads_give_the_same_vectors(onnx_cache, int8):
    texts = [f"{s} ({i})" for i, s in enumerate(SENTENCES * 20)]
    one = OnnxEmbedder(name=INT8_EMBEDDER, cache=onnx_cache, threads=1).encode(texts)
    two = OnnxEmbedder(name=INT8_EMBEDDER, cache=onnx_cache, threads=2).encode(texts)
    assert np.allclose(one, two, atol=1e-6)
    with pytest.raises(ConfigError, match="batch_size must be at least 1, got 0"):
        int8.encode(texts, batch_size=0)


@pytest.mark.integration
def test_reuses_the_cached_file_without_exporting(int8, onnx_cache, monkeypatch):
    def no_export(*args):
        raise AssertionError("exported again")

    monkeypatch.setattr(onnx_embed, "export_int8", no_export)
    again = OnnxEmbedder(name=INT8_EMBEDDER, cache=onnx_cache)
    assert np.allclose(again.encode(SENTENCES[:2]), int8.encode(SENTENCES[:2]), atol=1e-6)
    assert again.model_path == int8.model_path


@pytest.mark.integration
def test_encoding_imports_neither_torch_nor_sentence_transformers(int8, onnx_cache):
    code = (
        "import sys\n"
        "from rag.embed import make_embedder\n"
        "e = make_embedder('all-MiniLM-L6-v2-int8')\n"
        "print(e.encode(['When does the contract expire?']).shape)\n"
        "print(sorted(m for m in ('torch', 'sentence_transformers', 'transformers') if m in sys.modules))\n"
    )
    env = {**os.environ, "RAG_CACHE": str(onnx_cache)}
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split("\n")[:2] == ["(1, 384)", "[]"]


@pytest.fixture(scope="module")
def fp32(onnx_cache):
    e = OnnxEmbedder(name=DEFAULT_EMBEDDER, cache=onnx_cache, precision="fp32")
    e.encode(["warm up"])
    return e


@pytest.mark.integration
def test_fp32_onnx_vectors_are_the_pytorch_vectors(fp32, real_embedder):
    texts = SENTENCES + ["word " * 400, "Short.", "Über-Trainer Klopp in München."]
    a = fp32.encode(texts)
    b = real_embedder.encode(texts)
    assert (a * b).sum(axis=1).min() > 0.99999
    for t in texts:  # the same 256 word pieces
        assert fp32._tokenizer.encode(t).ids == real_embedder.model.tokenizer(
            t, truncation=True, max_length=256)["input_ids"]
    manifest = json.loads((fp32.model_path.parent / "manifest.json").read_text())
    assert manifest["weights"] == "fp32"


@pytest.mark.integration
def test_fp32_batches_do_not_change_a_vector(fp32):
    texts = SENTENCES + ["word " * 400, "Short."] * 3
    alone = np.stack([fp32.encode([t])[0] for t in texts])
    assert np.allclose(fp32.encode(texts), alone, atol=1e-5)
