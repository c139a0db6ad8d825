"""Shared fixtures: every test gets its own index folder; real models load once per session."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

ROOT = Path(__file__).resolve().parent.parent
SEEDS = ROOT / "seeds"
SHARED = ROOT.parent / "shared"
SEEDS_QA = SHARED / "eval" / "seeds_qa.jsonl"
BBC = SHARED / "corpora" / "bbc-football"


@pytest.fixture(autouse=True)
def _isolated_index(tmp_path, monkeypatch):
    """No test reads or writes the project's own index/ folder."""
    monkeypatch.setenv("RAG_INDEX", str(tmp_path / "default-index"))
    monkeypatch.delenv("RAG_MODEL", raising=False)  # a developer's model must not change answers


@pytest.fixture
def fake_embedder():
    from tests.fakes import HashEmbedder

    return HashEmbedder()


@pytest.fixture
def fake_assistant(tmp_path, fake_embedder):
    """An Assistant over the seeds with the hash embedder: real SQLite/FAISS, no model."""
    from rag import Assistant

    a = Assistant(tmp_path / "idx", embedder=fake_embedder, seed=SEEDS, quiet=True)
    yield a
    a.close()


@pytest.fixture(scope="session")
def real_embedder():
    """The packaged all-MiniLM-L6-v2, loaded once for the whole session."""
    from rag.embed import SentenceTransformerEmbedder

    emb = SentenceTransformerEmbedder()
    emb.encode(["warm up"])
    return emb


@pytest.fixture(scope="session")
def seeds_index_dir(tmp_path_factory, real_embedder):
    """A real index of seeds/ built once; tests that change it must copy it first."""
    from rag import Assistant

    d = tmp_path_factory.mktemp("seeds-index")
    a = Assistant(d, embedder=real_embedder, seed=False, quiet=True)
    report = a.add([SEEDS])
    assert report.added == 2, report
    a.close()
    return d


@pytest.fixture
def seeds_assistant(seeds_index_dir, real_embedder, tmp_path):
    """A private copy of the real seeds index."""
    from rag import Assistant

    d = tmp_path / "seeds-index"
    shutil.copytree(seeds_index_dir, d)
    a = Assistant(d, embedder=real_embedder, seed=False, quiet=True)
    yield a
    a.close()


# ---------------------------------------------------------------- PostgreSQL


@pytest.fixture(scope="session")
def pg_server():
    """A real PostgreSQL 16 with pgvector on 127.0.0.1 and a free port, its data in a temp folder;
    started once for the session (under a second) and stopped at the end."""
    from tests.pg_server import LocalPostgres

    server = LocalPostgres().start()
    yield server
    server.stop()


@pytest.fixture
def pg_dsn(pg_server, request):
    """A fresh empty database on the session's server; dropped after the test."""
    import re

    name = "t_" + re.sub(r"[^a-z0-9]+", "_", request.node.name.lower())[:40] + f"_{os.getpid()}"
    pg_server.drop_database(name)
    dsn = pg_server.create_database(name)
    yield dsn
    pg_server.drop_database(name)


@pytest.fixture
def fake_cli(monkeypatch):
    """The CLI with the hash embedder (fast; the real embedder is tested elsewhere)."""
    from rag import assistant as assistant_mod
    from tests.fakes import HashEmbedder

    emb = HashEmbedder()
    monkeypatch.setattr(assistant_mod, "make_embedder", lambda spec: emb)
    return emb


def run_cli(argv: list[str], capsys) -> tuple[int, str, str]:
    """``rag ARGV`` in this process: (exit status, stdout, stderr)."""
    from rag.cli import main

    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


BRANDT_ARTICLE = """Wanderers sign keeper

Riverside Wanderers have signed goalkeeper Tomas Brandt from Eastfield Rovers for a fee of £3m.
Brandt, 27, agreed a four-year contract and will wear the number 13 shirt.
"""


def write_file(path: Path, content: str | bytes) -> Path:
    """Writes ``content`` at ``path`` (UTF-8 for text), making its folders; returns the path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path
