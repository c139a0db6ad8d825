"""The `rag` command: output, JSON, index management, and one-line errors with exit status 2."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

from rag.cli import main
from tests.conftest import ROOT, SEEDS
from tests.conftest import run_cli as run


def test_index_add_list_stats_rm(fake_cli, tmp_path, capsys):
    idx = str(tmp_path / "idx")
    code, out, err = run(["index", "add", str(SEEDS), "--index", idx], capsys)
    assert code == 0, err
    assert "added" in out and "2 added, 0 updated, 0 skipped, 0 failed" in out
    code, out, _ = run(["index", "add", str(SEEDS), "--index", idx], capsys)
    assert "0 added, 0 updated, 2 skipped" in out
    code, out, _ = run(["index", "list", "--index", idx], capsys)
    assert "002_0df7e0b7cc0cc3af\t2023-07-25" in out and "2 articles" in out
    code, out, _ = run(["index", "list", "--index", idx, "--json"], capsys)
    assert {r["id"] for r in json.loads(out)} == {"000_a976052e113d48e1", "002_0df7e0b7cc0cc3af"}
    code, out, _ = run(["index", "stats", "--index", idx, "--json"], capsys)
    stats = json.loads(out)
    assert stats["articles"] == 2 and stats["chunks"] >= 4 and stats["embedder"] == "hash-64"
    code, out, _ = run(["index", "rm", "000_a976052e113d48e1", "--index", idx], capsys)
    assert code == 0 and "removed 000_a976052e113d48e1" in out
    code, _, err = run(["index", "rm", "000_a976052e113d48e1", "--index", idx], capsys)
    assert code == 2 and err.strip() == "rag: error: no article with id '000_a976052e113d48e1' (see `rag index list`)"


def test_index_add_reports_failures(fake_cli, tmp_path, capsys):
    (tmp_path / "bad.json").write_text("[1,", encoding="utf-8")
    code, out, err = run(["index", "add", str(tmp_path / "bad.json"), "--index", str(tmp_path / "idx")], capsys)
    assert code == 1
    assert "bad.json: invalid JSON" in err
    assert "0 added, 0 updated, 0 skipped, 1 failed" in out


def test_ask_text_and_json(fake_cli, tmp_path, capsys):
    idx = str(tmp_path / "idx")
    run(["index", "add", str(SEEDS), "--index", idx], capsys)
    code, out, _ = run(["ask", "When does Alonso's contract expire?", "--index", idx], capsys)
    assert code == 0
    assert out.startswith("June 2024 [1]")
    assert "Sources:" in out and "[1] Bayer Leverkusen manager" in out and "(2023-07-25)" in out
    code, out, _ = run(["ask", "When does Alonso's contract expire?", "--index", idx, "--json", "--top-k", "3"], capsys)
    data = json.loads(out)
    assert "2024" in data["short_answer"] and data["abstained"] is False and data["mode"] == "extractive"
    # at most 3; the seeds are two short articles, so widened passages of one article merge
    assert 1 <= len(data["passages"]) <= 3
    assert len({(p["article_id"], p["start"]) for p in data["passages"]}) == len(data["passages"])
    assert data["citations"][0]["source"].endswith(".txt") and data["citations"][0]["quote"]


@pytest.mark.parametrize(
    "argv, message",
    [
        (["ask", "   "], "rag: error: the question is empty"),
        (["ask", "x", "--top-k", "0"], "rag: error: top_k must be at least 1, got 0"),
        (["ask", "x", "--since", "last week"], "rag: error: since: 'last week' is not a date (use YYYY-MM-DD)"),
        (["index", "rm", "nope"], "rag: error: no article with id 'nope'"),
    ],
)
def test_user_errors_are_one_line(fake_cli, tmp_path, capsys, argv, message):
    code, out, err = run(argv + ["--index", str(tmp_path / "idx")], capsys)
    assert code == 2
    assert err.startswith(message)
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_unknown_option_and_command(capsys):
    for argv in (["ask", "x", "--bogus"], ["frobnicate"], ["ask"]):
        with pytest.raises(SystemExit) as e:
            main(argv)
        assert e.value.code == 2
        err = capsys.readouterr().err
        assert "error:" in err and "Traceback" not in err


def test_corrupt_index_is_one_line(fake_cli, tmp_path, capsys):
    d = tmp_path / "idx"
    d.mkdir()
    (d / "rag.sqlite3").write_bytes(b"\x00garbage" * 64)
    code, _, err = run(["index", "list", "--index", str(d)], capsys)
    assert code == 2 and "rag.sqlite3: cannot open the index" in err


@pytest.mark.integration
def test_rag_ask_process_on_fresh_index(tmp_path):
    """The acceptance path: a new process, no index yet, builds it from seeds/ and answers."""
    env = {**os.environ, "RAG_INDEX": str(tmp_path / "idx")}
    rag = shutil.which("rag", path=os.path.dirname(sys.executable)) or "rag"
    p = subprocess.run([rag, "ask", "When does Alonso's contract expire?"], capture_output=True, text=True,
                       env=env, cwd=ROOT, timeout=300)
    assert p.returncode == 0, p.stderr
    assert "indexing the articles in" in p.stderr
    assert "June 2024" in p.stdout.splitlines()[0]
    assert "002_0df7e0b7cc0cc3af.txt" in p.stdout and "2023-07-25" in p.stdout
    p = subprocess.run([rag, "ask", "Who won the 2023 Ballon d'Or?"], capture_output=True, text=True, env=env,
                       cwd=ROOT, timeout=300)
    assert p.returncode == 0 and "don't say" in p.stdout
    p = subprocess.run([rag, "index", "add", str(tmp_path / "missing")], capture_output=True, text=True,
                       env=env, timeout=300)
    assert p.returncode == 1 and "missing: no such file or folder" in p.stderr and "Traceback" not in p.stderr
