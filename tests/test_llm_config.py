"""Unit tests of model configuration: settings, bad model paths, RAG_MODEL, the model cache and
``rag model pull`` offline. Nothing here loads a model or touches the network."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from rag import Assistant
from rag.cli import main
from rag.errors import ConfigError, ModelError
from rag.llm import LlamaCppAnswerer, LLMSettings, check_gguf, physical_cores, resolve_model
from rag.model_cache import default_model_dir, find_cached, list_cached, pull


@pytest.fixture(autouse=True)
def _no_model_env(monkeypatch, tmp_path):
    monkeypatch.delenv("RAG_MODEL", raising=False)
    monkeypatch.setenv("RAG_MODEL_DIR", str(tmp_path / "models"))


@pytest.fixture
def fake_gguf(tmp_path) -> Path:
    """A file with the GGUF magic bytes: enough for the path checks, which load nothing."""
    p = tmp_path / "model.gguf"
    p.write_bytes(b"GGUF" + b"\0" * 60)
    return p


def test_default_settings_suit_a_laptop() -> None:
    s = LLMSettings()
    assert (s.n_ctx, s.max_tokens, s.temperature) == (4096, 256, 0.0)
    assert s.n_threads is None and s.threads == physical_cores() >= 1
    assert physical_cores() <= (os.cpu_count() or 1)
    assert LLMSettings(n_threads=3).threads == 3


def test_repack_is_off_by_default_only_on_amx_cpus(monkeypatch) -> None:
    monkeypatch.setattr("rag.llm.cpu_has_amx", lambda: True)
    assert LLMSettings().use_repack is False
    assert LLMSettings(repack=True).use_repack is True
    monkeypatch.setattr("rag.llm.cpu_has_amx", lambda: False)
    assert LLMSettings().use_repack is True
    assert LLMSettings(repack=False).use_repack is False


@pytest.mark.parametrize("kwargs, message", [
    ({"n_ctx": 16}, "n_ctx must be"),
    ({"n_threads": 0}, "n_threads must be"),
    ({"max_tokens": 0}, "max_tokens must be"),
    ({"n_ctx": 512, "max_tokens": 512}, "max_tokens must be 1..511"),
    ({"temperature": -0.1}, "temperature must be"),
    ({"temperature": "hot"}, "temperature must be"),
    ({"n_batch": 0}, "n_batch must be"),
])
def test_bad_settings_name_the_value(kwargs, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        LLMSettings(**kwargs)


def test_missing_model_path(tmp_path) -> None:
    missing = tmp_path / "nope.gguf"
    with pytest.raises(ModelError, match=f"model file not found: {missing}"):
        check_gguf(missing)


def test_directory_is_not_a_model(tmp_path) -> None:
    with pytest.raises(ModelError, match=f"not a file: {tmp_path}"):
        check_gguf(tmp_path)


@pytest.mark.parametrize("content", [b"", b"GGU", b"\x7fELF....", b"PK\x03\x04 a zip"])
def test_non_gguf_file(tmp_path, content: bytes) -> None:
    p = tmp_path / "model.gguf"
    p.write_bytes(content)
    with pytest.raises(ModelError, match=rf"not a GGUF model file .*: {p}$"):
        check_gguf(p)
    with pytest.raises(ModelError, match=str(p)):
        LlamaCppAnswerer(p)


def test_bad_model_fails_before_touching_the_index(tmp_path) -> None:
    index = tmp_path / "idx"
    with pytest.raises(ModelError, match="nope.gguf"):
        Assistant(index, model=tmp_path / "nope.gguf", seed=False)
    assert not index.exists()


def test_model_selects_the_llm_answerer_without_loading(fake_gguf, fake_embedder, tmp_path) -> None:
    a = Assistant(tmp_path / "idx", embedder=fake_embedder, seed=False, quiet=True, model=fake_gguf,
                  llm=LLMSettings(n_ctx=1024))
    try:
        assert a.answerer.mode == "llm"
        assert a.answerer.path == fake_gguf and a.answerer.settings.n_ctx == 1024
        assert a.answerer._llm is None  # llama.cpp loads on the first question
    finally:
        a.close()


def test_rag_model_env(monkeypatch, fake_gguf, fake_embedder, tmp_path) -> None:
    assert resolve_model(None) is None
    monkeypatch.setenv("RAG_MODEL", "")
    assert resolve_model(None) is None
    monkeypatch.setenv("RAG_MODEL", str(fake_gguf))
    assert resolve_model(None) == fake_gguf
    a = Assistant(tmp_path / "idx", embedder=fake_embedder, seed=False, quiet=True)
    assert a.answerer.mode == "llm"
    a.close()
    monkeypatch.setenv("RAG_MODEL", str(tmp_path / "gone.gguf"))
    with pytest.raises(ModelError, match="gone.gguf"):
        resolve_model(None)


def test_answerer_and_model_together_is_a_config_error(fake_gguf, tmp_path) -> None:
    from rag.answer import ExtractiveAnswerer

    with pytest.raises(ConfigError, match="either answerer or model"):
        Assistant(tmp_path / "idx", answerer=ExtractiveAnswerer(), model=fake_gguf, seed=False)


def test_bare_file_name_is_found_in_the_model_cache(tmp_path) -> None:
    cached = default_model_dir() / "Org--Repo-GGUF" / "small-q4_k_m.gguf"
    cached.parent.mkdir(parents=True)
    cached.write_bytes(b"GGUF" + b"\0" * 8)
    assert find_cached("small-q4_k_m.gguf") == cached
    assert resolve_model("small-q4_k_m.gguf") == cached
    (m,) = list_cached()
    assert (m.repo, m.filename, m.path, m.size_bytes) == ("Org/Repo-GGUF", "small-q4_k_m.gguf", cached, 12)
    # already cached: pull needs no network, even offline
    again = pull("Org/Repo-GGUF", "small-q4_k_m.gguf")
    assert again.path == cached and not again.downloaded


def test_pull_offline_fails_fast_with_one_line(monkeypatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelError) as e:
        pull("Qwen/Qwen2.5-1.5B-Instruct-GGUF", "qwen2.5-1.5b-instruct-q4_k_m.gguf")
    msg = str(e.value)
    assert "\n" not in msg
    assert "Qwen/Qwen2.5-1.5B-Instruct-GGUF/qwen2.5-1.5b-instruct-q4_k_m.gguf" in msg and "offline" in msg
    assert not any(default_model_dir().rglob("*.gguf"))


def test_pull_with_unreachable_hub_fails_fast(monkeypatch) -> None:
    """A closed port on this machine: refused at once, never retried against the real Hub."""
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    for var in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    with pytest.raises(ModelError, match=r"cannot download Org/Repo/m\.gguf: cannot reach http://127\.0\.0\.1:9"):
        pull("Org/Repo", "m.gguf", endpoint="http://127.0.0.1:9", timeout_s=2)


@pytest.mark.parametrize("repo, filename, message", [
    ("not-a-repo", "m.gguf", "OWNER/NAME"),
    ("a/b/c", "m.gguf", "OWNER/NAME"),
    ("Org/Repo", "model.safetensors", "only GGUF"),
    ("Org/Repo", "../escape.gguf", "file name inside"),
    ("Org/Repo", "", "file name inside"),
])
def test_pull_rejects_bad_names(repo: str, filename: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        pull(repo, filename)


def test_cli_model_pull_offline(monkeypatch, capsys) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert main(["model", "pull", "Qwen/Qwen2.5-1.5B-Instruct-GGUF", "qwen2.5-1.5b-instruct-q4_k_m.gguf"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("rag: error: cannot download Qwen/Qwen2.5-1.5B-Instruct-GGUF/") and err.count("\n") == 1


def test_cli_model_list(capsys, tmp_path) -> None:
    assert main(["model", "list", "--dir", str(tmp_path / "empty")]) == 0
    assert "0 models" in capsys.readouterr().out


def test_cli_bad_model_path(tmp_path, capsys) -> None:
    bad = tmp_path / "notes.gguf"
    bad.write_text("hello")
    assert main(["ask", "--model", str(bad), "When?"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "not a GGUF model file" in err and str(bad) in err


def test_cli_llm_option_without_model(capsys) -> None:
    assert main(["ask", "--n-ctx", "2048", "When?"]) == 2
    assert "--n-ctx needs a model" in capsys.readouterr().err


def test_cli_bad_llm_setting(fake_gguf, capsys) -> None:
    assert main(["ask", "--model", str(fake_gguf), "--temperature", "9", "When?"]) == 2
    assert "temperature must be 0..2, got 9.0" in capsys.readouterr().err
