"""Many processes, one PostgreSQL index, for real: two ingests at once, questions during an
ingest, two app servers (what one adds or removes the other answers from at once, without a
restart), and an ingest killed with SIGKILL that loses nothing it committed.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import threading

import pytest

import tests.test_crash as crash
from rag import Assistant
from rag.chunk import chunk_article
from tests.conftest import ROOT, SEEDS
from tests.fakes import HashEmbedder

pytestmark = pytest.mark.integration

INGEST = r"""
import json, sys
import rag.indexer
from rag import Assistant
from tests.fakes import HashEmbedder

rag.indexer.Indexer.__init__.__kwdefaults__["batch_chunks"] = 8  # many small transactions
a = Assistant(sys.argv[1], embedder=HashEmbedder(), seed=False, quiet=True)
print("ready", flush=True)
sys.stdin.readline()  # both start together
r = a.add(sys.argv[2:])
print(json.dumps({"added": r.added, "skipped": r.skipped, "failed": r.failed}), flush=True)
"""

APP_SERVER = r"""
import json, sys
from rag import Assistant

a = Assistant(sys.argv[1], seed=False, quiet=True)
print(json.dumps({"ready": True}), flush=True)
for line in sys.stdin:
    ans = a.ask(json.loads(line))
    print(json.dumps({"text": ans.text, "cited": [c.article_id for c in ans.citations],
                      "passages": [p.article.id for p in ans.passages],
                      "quotes_hold": all(a.store.article(c.article_id).text[c.start:c.end] == c.quote
                                         for c in ans.citations)}), flush=True)
"""

BRANDT = """Wanderers sign keeper

Riverside Wanderers have signed goalkeeper Tomas Brandt from Eastfield Rovers for a fee of £3m.
Brandt, 27, agreed a four-year contract and will wear the number 13 shirt.
"""


def signing(i: int) -> str:
    return (f"Club{i % 7} sign Striker{i:03d}\n\nClub{i % 7} have signed striker Striker{i:03d} Quell for "
            f"{i + 1} million pounds. Striker{i:03d} Quell agreed a deal until June {2025 + i % 5}.\n")


def child(script: str, *args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", script, *args], cwd=ROOT, stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})


def consistent(a: Assistant) -> None:
    """Counters agree with the rows, and every article has all of its chunks."""
    with a.store._read() as conn:
        real = conn.execute("SELECT (SELECT count(*) FROM articles), (SELECT count(*) FROM chunks), "
                            "(SELECT count(DISTINCT hash) FROM articles)").fetchone()
    assert a.store.count() == (real[0], real[1]) and real[2] == real[0]
    for info in a.articles():
        assert info.chunks == len(chunk_article(a.store.article(info.id))) > 0, info


def test_two_ingests_at_once(pg_dsn, tmp_path):
    x, y = tmp_path / "x", tmp_path / "y"
    x.mkdir(), y.mkdir()
    for i in range(60):  # the same texts under other names, first in both: stored once
        (x / f"a{i:03d}.txt").write_text(signing(i), encoding="utf-8")
        (y / f"b{i:03d}.txt").write_text(signing(i), encoding="utf-8")
    for i in range(60, 135):
        (x if i % 2 else y).joinpath(f"u{i:03d}.txt").write_text(signing(i), encoding="utf-8")
    for i in range(10):  # the same file names with different texts: two articles, two ids
        (x / f"clash{i}.txt").write_text(signing(1000 + i), encoding="utf-8")
        (y / f"clash{i}.txt").write_text(signing(2000 + i), encoding="utf-8")
    Assistant(pg_dsn, embedder=HashEmbedder(), seed=False, quiet=True).close()  # the schema
    procs = [child(INGEST, pg_dsn, str(folder)) for folder in (x, y)]
    for p in procs:
        assert p.stdout.readline().strip() == "ready", p.stderr.read()
    for p in procs:
        p.stdin.write("go\n")
        p.stdin.flush()
    results = []
    for p in procs:
        out, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
        results.append(json.loads(out.strip().splitlines()[-1]))
    assert all(r["failed"] == 0 for r in results)
    a = Assistant(pg_dsn, embedder=HashEmbedder(), seed=False, quiet=True)
    consistent(a)
    assert a.store.count()[0] == 135 + 20
    ids = {info.id for info in a.articles()}
    assert {f"clash{i}" for i in range(10)} | {f"clash{i}-2" for i in range(10)} <= ids
    answer = a.ask("How much did Club3 pay for Striker101 Quell?")
    assert "102 million" in answer.text
    a.close()


def test_questions_during_an_ingest(pg_dsn, tmp_path):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for i in range(200):
        (corpus / f"s{i:03d}.txt").write_text(signing(i), encoding="utf-8")
    a = Assistant(pg_dsn, embedder=HashEmbedder(), seed=False, quiet=True)
    a.add([SEEDS])
    ingest = child(INGEST, pg_dsn, str(corpus))
    assert ingest.stdout.readline().strip() == "ready", ingest.stderr.read()
    ingest.stdin.write("go\n")
    ingest.stdin.flush()
    asked, errors, seen = 0, [], set()

    def ask_loop():
        nonlocal asked
        rng = random.Random(0)
        while ingest.poll() is None:
            i = rng.randrange(200)
            try:
                ans = a.ask(f"How much did Club{i % 7} pay for Striker{i:03d} Quell?")
                for c in ans.citations:
                    assert a.store.article(c.article_id).text[c.start:c.end] == c.quote
                seen.update(p.article.id for p in ans.passages)
                asked += 1
            except Exception as e:  # noqa: BLE001 - collected and reported below
                errors.append(repr(e))

    threads = [threading.Thread(target=ask_loop) for _ in range(3)]
    for t in threads:
        t.start()
    out, err = ingest.communicate(timeout=300)
    for t in threads:
        t.join()
    assert ingest.returncode == 0, err
    assert errors == [] and asked > 0
    assert len(seen - {"000_a976052e113d48e1", "002_0df7e0b7cc0cc3af"}) > 0  # it answered from new articles
    consistent(a)
    assert a.store.count()[0] == 202
    a.close()


def test_two_app_servers_see_each_others_changes_at_once(pg_dsn, tmp_path):
    question = json.dumps("How much did Riverside Wanderers pay for Tomas Brandt?") + "\n"
    a = Assistant(pg_dsn, seed=False, quiet=True)  # the default embedder, as a server runs it
    a.add([SEEDS])
    b = child(APP_SERVER, pg_dsn)
    try:
        assert json.loads(b.stdout.readline()) == {"ready": True}, b.stderr.read()

        def ask_b() -> dict:
            b.stdin.write(question)
            b.stdin.flush()
            return json.loads(b.stdout.readline())

        assert "brandt" not in ask_b()["passages"]
        f = tmp_path / "brandt.txt"
        f.write_text(BRANDT, encoding="utf-8")
        a.add([f])
        got = ask_b()
        assert got["cited"][:1] == ["brandt"] and "£3m" in got["text"] and got["quotes_hold"], got
        f.write_text(BRANDT.replace("£3m", "£4.5m").replace("Brandt, 27,", "The keeper, 27,"), encoding="utf-8")
        a.add([f])  # the same article id, a new text: no stale copy may answer
        got = ask_b()
        assert "£4.5m" in got["text"] and "£3m" not in got["text"] and got["quotes_hold"], got
        a.remove("brandt")
        got = ask_b()
        assert "brandt" not in got["passages"] + got["cited"], got
    finally:
        b.stdin.close()
        b.wait(timeout=60)
        a.close()
    assert b.returncode == 0, b.stderr.read()


def test_killed_ingest_keeps_exactly_the_committed_batches(pg_dsn, tmp_path, monkeypatch):
    monkeypatch.setattr(crash, "CHILD", crash.CHILD.replace("from rag.store import Store",
                                                            "from rag.pgstore import PgStore as Store"))
    corpus = tmp_path / "corpus"
    crash.write_corpus(corpus)
    committed, in_flight = crash.run_and_kill(pg_dsn, corpus, random.Random(os.getpid()))
    assert 0 < len(committed) < crash.N_ARTICLES

    a = Assistant(pg_dsn, seed=False, quiet=True)
    stored = {info.source for info in a.articles()}
    assert stored in (committed, committed | in_flight), (len(stored), len(committed), len(in_flight))
    consistent(a)
    some = sorted(stored)[len(stored) // 2]
    n = int(some.rsplit("-", 1)[1].split(".")[0])
    answer = a.ask(f"How much was the fee for Player{n:03d} Zandor?")
    assert not answer.abstained and f"{n + 1} million" in answer.text, answer.text
    report = a.add([corpus])  # ingesting again picks up where the killed run stopped
    assert report.skipped == len(stored) and report.added == crash.N_ARTICLES - len(stored)
    consistent(a)
    a.close()
