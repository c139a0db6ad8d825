"""The fault lane: processes killed mid-write, damaged SQLite pages, FAISS bytes and WAL, read-only
and full disks, two writers at once. Every case ends in a clear one-line error or a transparent
recovery: never a traceback, never a silently wrong answer, nothing committed lost.

Real components throughout: the default embedder, SQLite, FAISS, the `rag` command in child
processes. Read-only folders and full disks are made for real (tests/faults.py): a read-only
bind mount and a small tmpfs where the machine allows mounting, otherwise an unprivileged user
and the file-size limit. SIGKILL during an ingest is covered by tests/test_crash.py.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest

from rag import Assistant
from rag import assistant as assistant_mod
from rag.chunk import chunk_article
from rag.cli import main
from rag.integrity import check_index
from tests.conftest import ROOT, SEEDS
from tests.faults import can_mount, clean_end, read_only, small_disk

pytestmark = pytest.mark.integration

QUESTIONS = ["When does Alonso's contract expire?", "Who is the caretaker manager of Brazil?",
             "How much was the fee for Player007 Zandor?"]
CLUBS = ["Riverside", "Eastfield", "Northgate", "Westbrook", "Southmoor", "Hillcrest"]


def write_corpus(folder: Path, n: int, start: int = 0, words: int = 0) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(start, start + n):
        club = CLUBS[i % len(CLUBS)]
        extra = " ".join(f"The squad trained on day {d} of the week." for d in range(words // 9))
        (folder / f"signing-{i:03d}.txt").write_text(
            f"{club} sign Player{i:03d} Zandor\n\n{club} Rovers have signed striker Player{i:03d} Zandor. "
            f"The fee for Player{i:03d} Zandor was reported to be {i + 1} million pounds. {extra}\n",
            encoding="utf-8")
    return folder


@pytest.fixture(scope="module")
def embedder():
    from rag.embed import make_embedder

    emb = make_embedder(None)
    emb.encode(["warm up"])
    return emb


@pytest.fixture(scope="module")
def base_index(tmp_path_factory, embedder):
    """The seeds and 20 signings, indexed with the default embedder; answers to QUESTIONS."""
    d = tmp_path_factory.mktemp("fault-base") / "index"
    corpus = write_corpus(tmp_path_factory.mktemp("fault-corpus"), 20)
    a = Assistant(d, embedder=embedder, seed=False, quiet=True)
    a.add([SEEDS, corpus])
    answers = [a.ask(q).text for q in QUESTIONS]
    a.close()
    return d, answers


@pytest.fixture
def index(base_index, tmp_path):
    d = tmp_path / "index"
    shutil.copytree(base_index[0], d)
    return d, base_index[1]


def ask_in_process(index: Path, question: str, monkeypatch, embedder) -> tuple[int, str, str]:
    """``rag ask`` through the command line's own code; any exception but a RagError escapes."""
    monkeypatch.setattr(assistant_mod, "make_embedder", lambda spec: embedder)
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["ask", question, "--index", str(index)])
    return code, out.getvalue(), err.getvalue()


def consistent(index: Path, embedder) -> Assistant:
    """The index opens, every article has all its chunks, FAISS matches SQLite."""
    a = Assistant(index, embedder=embedder, quiet=True)
    for info in a.articles():
        assert info.chunks == len(chunk_article(a.store.article(info.id))) > 0, info
    assert a.store.faiss_index().ntotal == a.store.count()[1]
    return a


# ------------------------------------------------------------------ SIGKILL during remove

REMOVER = r"""
import json, sys
from rag import Assistant
a = Assistant(sys.argv[1], quiet=True)
for aid in sys.argv[2:]:
    print(json.dumps(["removing", aid]), flush=True)
    a.remove(aid)
    print(json.dumps(["removed", aid]), flush=True)
print(json.dumps(["done", ""]), flush=True)
"""


def test_kill_during_remove(index, embedder):
    d, _ = index
    a = Assistant(d, embedder=embedder, quiet=True)
    ids = sorted(i.id for i in a.articles() if i.id.startswith("signing"))
    a.close()
    rng = random.Random(os.getpid())
    child = subprocess.Popen([sys.executable, "-c", REMOVER, str(d), *ids], cwd=ROOT, text=True,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             env={**os.environ, "PYTHONPATH": str(ROOT)})
    removed: set[str] = set()
    in_flight = None
    kill_after = rng.randint(2, 6)

    def follow(line: str) -> None:
        nonlocal in_flight
        event, aid = json.loads(line)
        if event == "removing":
            in_flight = aid
        elif event == "removed":
            removed.add(aid)
            in_flight = None

    try:
        for line in child.stdout:
            follow(line)
            if len(removed) == kill_after:
                time.sleep(rng.uniform(0, 0.008))  # land anywhere in the next removals (ms each)
                child.send_signal(signal.SIGKILL)
                break
        else:
            pytest.fail("the removals finished before they could be killed")
        for line in child.stdout:  # what the child printed before the signal landed
            follow(line)
    finally:
        child.kill()
        child.wait(timeout=30)
    assert len(removed) < len(ids), "the removals finished before they could be killed"
    a = consistent(d, embedder)
    left = {i.id for i in a.articles()}
    assert not removed & left
    assert set(ids) - removed - {in_flight} <= left
    assert not a.ask(QUESTIONS[0]).abstained
    a.close()
    report = check_index(d, repair=True)
    assert report.ok, report.text()


# ------------------------------------------------------------------ SIGKILL during a checkpoint

CHECKPOINTER = r"""
import sys
import numpy as np
from rag.ingest import content_hash
from rag.models import Article, Chunk
from rag.store import FaissConfig, NewArticle, Store

store = Store(sys.argv[1], embedder_name="random-384", faiss=FaissConfig(checkpoint_min=10**9))
r = int(sys.argv[2])
rng = np.random.default_rng(r)
for b in range(1000):
    items = []
    for k in range(20):
        n = 100
        words = [f"w{r}-{b}-{k}-{j}." for j in range(n)]
        text = " ".join(words)
        a = Article(f"a{r}-{b}-{k}", "t", None, f"src-{r}-{b}-{k}", text)
        chunks, pos = [], 0
        for j, w in enumerate(words):
            chunks.append(Chunk(-1, a.id, j, w, pos, pos + len(w)))
            pos += len(w) + 1
        v = rng.standard_normal((n, 384)).astype(np.float32)
        items.append(NewArticle(a, content_hash(text), chunks, v / np.linalg.norm(v, axis=1, keepdims=True)))
    store.write_batch(items)
    print("checkpointing", store.generation, flush=True)
    store.checkpoint()
    print("checkpointed", store.generation, flush=True)
"""


def test_kill_during_checkpoint(tmp_path):
    """Each batch adds 2,000 vectors and rewrites the FAISS file; kills land mid-write."""
    from rag.store import Store

    d = tmp_path / "index"
    rng = random.Random(os.getpid())
    for round_ in range(4):
        child = subprocess.Popen([sys.executable, "-c", CHECKPOINTER, str(d), str(round_)], cwd=ROOT, text=True,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                 env={**os.environ, "PYTHONPATH": str(ROOT)})
        try:
            for line in child.stdout:
                if line.startswith("checkpointing") and rng.random() < 0.5:
                    time.sleep(rng.uniform(0, 0.03))  # inside write_index, usually
                    child.send_signal(signal.SIGKILL)
                    break
        finally:
            child.kill()
            child.wait(timeout=30)
        store = Store(d, embedder_name="random-384")
        n = store.count()[1]
        assert store.faiss_index().ntotal == n > 0
        probe = store.chunks([n // 2 + 1])  # the stored vector of a chunk finds that chunk
        vec = store._vectors_for(np.array(list(probe)))[0]
        assert store.dense_search(vec, 1)[0][0] == next(iter(probe))
        store.close()
    report = check_index(d, repair=True)
    assert report.ok, report.text()
    assert check_index(d).ok


# ------------------------------------------------------------------ damaged SQLite pages


def test_every_damaged_sqlite_page(index, tmp_path, monkeypatch, embedder):
    """Each page of the database overwritten with zeros and with random bytes: `rag ask` gives
    the same answer or one line saying the index is damaged, and `rag index check` names it."""
    d, good = index
    db = sqlite3.connect(d / "rag.sqlite3")
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    pages, size = db.execute("PRAGMA page_count").fetchone()[0], db.execute("PRAGMA page_size").fetchone()[0]
    db.close()
    rng = random.Random(0)
    outcomes = {"same": 0, "error": 0}
    for page in range(1, pages + 1):
        for fill in ("zeros", "random"):
            copy = tmp_path / f"p{page}-{fill}"
            shutil.copytree(d, copy)
            skip = 100 if page == 1 else 0  # the file header: a different failure, tested elsewhere
            with open(copy / "rag.sqlite3", "r+b") as fh:
                fh.seek((page - 1) * size + skip)
                fh.write(bytes(size - skip) if fill == "zeros" else rng.randbytes(size - skip))
            damaged = False
            for q, expected in zip(QUESTIONS, good):
                code, out, err = ask_in_process(copy, q, monkeypatch, embedder)
                if code == 0:
                    assert out.startswith(expected), (page, fill, q, out)  # never silently wrong
                    outcomes["same"] += 1
                else:
                    assert code == 2 and err.count("rag: error: ") == 1, err
                    assert "damaged" in err or "cannot open the index" in err, err
                    outcomes["error"] += 1
                    damaged = True
            report = check_index(copy)
            if damaged:
                assert not report.ok, (page, fill, report.text())
            shutil.rmtree(copy)
    assert outcomes["same"] and outcomes["error"]


# ------------------------------------------------------------------ damaged FAISS bytes


def test_damaged_faiss_bytes(index, tmp_path, monkeypatch, embedder, caplog):
    d, good = index
    faiss_file = sorted(d.glob("faiss-*.index"))[-1]
    size = faiss_file.stat().st_size
    rng = random.Random(1)
    for trial in range(12):
        copy = tmp_path / f"t{trial}"
        shutil.copytree(d, copy)
        f = copy / faiss_file.name
        data = bytearray(f.read_bytes())
        at = rng.randrange(0, size)
        n = rng.choice([1, 4, 64, 4096])
        data[at:at + n] = rng.randbytes(len(data[at:at + n]))
        f.write_bytes(bytes(data))
        caplog.clear()
        with caplog.at_level(logging.WARNING):
            for q, expected in zip(QUESTIONS, good):
                code, out, err = ask_in_process(copy, q, monkeypatch, embedder)
                assert code == 0 and out.startswith(expected), (trial, at, n, out, err)
        assert any("rebuilding it from SQLite" in r.getMessage() for r in caplog.records)
        assert check_index(copy).ok  # the rebuilt file was written back and is consistent


# ------------------------------------------------------------------ damaged WAL

WAL_WRITER = r"""
import os, sys
from rag import Assistant
a = Assistant(sys.argv[1], quiet=True)
a.add([sys.argv[2]])
os._exit(0)  # no close: the last transactions stay in the write-ahead log
"""


@pytest.mark.parametrize("damage", ["last frame", "middle", "header", "truncated"])
def test_damaged_wal(index, tmp_path, embedder, damage):
    d, good = index
    extra = write_corpus(tmp_path / "extra", 8, start=100)
    subprocess.run([sys.executable, "-c", WAL_WRITER, str(d), str(extra)], cwd=ROOT, check=True, timeout=300,
                   env={**os.environ, "PYTHONPATH": str(ROOT)})
    wal = d / "rag.sqlite3-wal"
    data = bytearray(wal.read_bytes())
    assert len(data) > 32 + 4096, "the writer left nothing in the WAL"
    frame = 24 + 4096
    rng = random.Random(damage)
    if damage == "last frame":
        at = len(data) - rng.randrange(1, 4000)
        data[at] ^= 0xFF
    elif damage == "middle":
        at = 32 + frame * rng.randrange(0, (len(data) - 32) // frame) + 24 + 100
        data[at:at + 16] = rng.randbytes(16)
    elif damage == "header":
        data[0:32] = rng.randbytes(32)
    else:
        data = data[: len(data) // 2]
    wal.write_bytes(bytes(data))
    a = consistent(d, embedder)
    assert [a.ask(q).text for q in QUESTIONS] == good  # what was committed before is all there
    a.close()
    assert check_index(d, repair=True).ok
    assert check_index(d).ok


# ------------------------------------------------------------------ read-only index


def readable_corpus(n: int, start: int) -> Path:
    """A corpus any user may read (the read-only cases may run as an unprivileged user)."""
    folder = Path(tempfile.mkdtemp(prefix="rag-corpus-"))
    folder.chmod(0o755)
    write_corpus(folder, n, start=start)
    for f in folder.iterdir():
        f.chmod(0o644)
    return folder


def test_a_read_only_index_answers(index, tmp_path):
    d, good = index
    for f in d.glob("faiss-*.index"):  # and has to rebuild its FAISS index in memory
        f.unlink()
    new = readable_corpus(1, start=500)
    with read_only(d) as view:
        got = view.rag("ask", QUESTIONS[0], "--index", str(view.path))
        clean_end(got, 0)
        assert got.stdout.startswith(good[0]), (view.how, got.stdout, got.stderr)
        clean_end(view.rag("index", "stats", "--index", str(view.path)), 0)
        clean_end(view.rag("index", "list", "--index", str(view.path)), 0)
        check = view.rag("index", "check", "--index", str(view.path))
        assert check.returncode in (0, 2) and "Traceback" not in check.stderr, check.stderr
        assert "FAISS files and checksums" in check.stdout and "not checked" not in check.stdout, check.stdout
        for args in (["index", "add", str(new)], ["index", "rm", "signing-000"], ["index", "check", "--repair"]):
            got = view.rag(*args, "--index", str(view.path))
            clean_end(got, 2)
            assert "read-only" in got.stderr or "write access" in got.stderr, (view.how, got.stderr)
    assert not list(d.glob("faiss-*.index"))  # nothing was written
    shutil.rmtree(new)


def test_adding_into_a_read_only_folder_that_has_no_index(tmp_path):
    parent = tmp_path / "share"
    parent.mkdir()
    new = readable_corpus(1, start=0)
    with read_only(parent) as view:
        got = view.rag("index", "add", str(new), "--index", str(view.path / "idx"))
        clean_end(got, 2)
        assert "cannot create the index folder" in got.stderr
    shutil.rmtree(new)


# ------------------------------------------------------------------ full disk


def test_a_full_disk(base_index, tmp_path, embedder):
    src, good = base_index
    used = sum(f.stat().st_size for f in src.iterdir())
    corpus = write_corpus(tmp_path / "many", 150, start=1000, words=200)
    with small_disk(used + 300_000) as disk:
        d = disk.path / "index"
        shutil.copytree(src, d)
        got = disk.rag("index", "add", str(corpus), "--index", str(d))
        clean_end(got, 2)
        assert "disk" in got.stderr or "file size" in got.stderr, (disk.how, got.stderr)
        asked = disk.rag("ask", QUESTIONS[0], "--index", str(d))
        clean_end(asked, 0)
        assert asked.stdout.startswith(good[0])
        kept = tmp_path / "kept"
        shutil.copytree(d, kept)
    a = consistent(kept, embedder)  # every batch committed before the disk filled is whole
    assert a.store.count()[0] >= 22
    assert [a.ask(q).text for q in QUESTIONS] == good
    report = a.add([corpus])  # with room again, the rest goes in
    assert report.failed == 0 and a.store.count()[0] == 22 + 150
    a.close()
    assert check_index(kept, repair=True).ok


# ------------------------------------------------------------------ two writers


def test_two_writers_at_once(index, tmp_path, embedder):
    d, _ = index
    one = write_corpus(tmp_path / "one", 120, start=200)
    two = tmp_path / "two"
    shutil.copytree(one, two)  # the same 120 files under other names, plus 60 more
    write_corpus(two, 60, start=400)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    procs = [subprocess.Popen([sys.executable, "-m", "rag.cli", "index", "add", str(p), "--index", str(d)],
                              cwd=ROOT, env=env, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
             for p in (one, two)]
    for p in procs:
        out, err = p.communicate(timeout=600)
        clean_end(subprocess.CompletedProcess(p.args, p.returncode, out, err), 0)
    a = consistent(d, embedder)
    texts = {a.store.article(i.id).text for i in a.articles()}
    assert len(texts) == a.store.count()[0] == 22 + 180  # each text stored once
    a.close()
    assert check_index(d).ok


def test_the_machine_can_run_the_real_fault_cases():
    """Read-only mounts and small tmpfs disks are what the fault lane means by 'for real'; where
    mounting is not allowed the lane falls back to an unprivileged user and the file-size limit.
    Report which ones this run used."""
    assert can_mount() or os.geteuid() != 0 or shutil.which("setpriv"), (
        "need mount (root), or setpriv to run as an unprivileged user")
