"""Crash safety for real: an ingest killed with SIGKILL leaves an index that opens, answers, and
holds exactly the articles of the batches it committed - none half-stored, none lost.

The ingest runs in a child process through ``Assistant.add`` with the default (real) embedder.
The child reports each batch before and after its commit; the parent kills it at a random
moment after a few commits, so the kill lands while embedding, writing SQLite or updating FAISS.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time

import pytest

from rag import Assistant
from rag.chunk import chunk_article
from tests.conftest import ROOT

N_ARTICLES = 240
CLUBS = ["Riverside", "Eastfield", "Northgate", "Westbrook", "Southmoor", "Hillcrest"]

CHILD = r"""
import json, sys
import rag.indexer
from rag import Assistant
from rag.store import Store

rag.indexer.Indexer.__init__.__kwdefaults__["batch_chunks"] = 24  # many small batches
write_batch = Store.write_batch

def reporting(self, items, **kw):
    sources = [i.article.source for i in items]
    print(json.dumps(["committing", sources]), flush=True)
    ids = write_batch(self, items, **kw)
    print(json.dumps(["committed", sources]), flush=True)
    return ids

Store.write_batch = reporting
Assistant(sys.argv[1], seed=False, quiet=True).add([sys.argv[2]])
print(json.dumps(["done", []]), flush=True)
"""


def write_corpus(folder):
    folder.mkdir()
    for i in range(N_ARTICLES):
        club = CLUBS[i % len(CLUBS)]
        sentences = [
            f"{club} Rovers have signed striker Player{i:03d} Zandor from Lakeside Athletic.",
            f"Player{i:03d} Zandor, aged {18 + i % 15}, agreed a contract until June {2025 + i % 5}.",
            f"The fee for Player{i:03d} Zandor was reported to be {i + 1} million pounds.",
        ] + [f"Manager number {i} said the squad had trained well on day {d}." for d in range(i % 7)]
        (folder / f"signing-{i:03d}.txt").write_text(
            f"{club} sign Player{i:03d} Zandor\n\n" + " ".join(sentences) + "\n", encoding="utf-8")


def run_and_kill(index_dir, corpus, rng: random.Random) -> tuple[set[str], set[str]]:
    """Runs the ingest, kills it after a few commits; (committed sources, in-flight sources)."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(index_dir), str(corpus)], cwd=ROOT, env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    committed: set[str] = set()
    in_flight: set[str] = set()
    commits = 0
    kill_after = rng.randint(2, 4)

    def follow(line: str) -> None:
        """Tracks the child's batches from the events it prints."""
        nonlocal in_flight, commits
        event, sources = json.loads(line)
        if event == "committing":
            in_flight = set(sources)
        elif event == "committed":
            committed.update(sources)
            in_flight = set()
            commits += 1

    try:
        for line in child.stdout:
            follow(line)
            if commits == kill_after:
                time.sleep(rng.uniform(0.0, 0.4))  # land anywhere in the next batch
                child.send_signal(signal.SIGKILL)
                break
        else:
            pytest.fail("the ingest finished before it could be killed")
        for line in child.stdout:  # whatever the child managed to print before the signal landed
            follow(line)
    finally:
        child.kill()
        child.wait(timeout=30)
    assert child.returncode == -signal.SIGKILL, child.stderr.read()
    return committed, in_flight


@pytest.mark.integration
def test_killed_ingest_keeps_exactly_the_committed_batches(tmp_path):
    corpus = tmp_path / "corpus"
    write_corpus(corpus)
    index_dir = tmp_path / "idx"
    committed, in_flight = run_and_kill(index_dir, corpus, random.Random(os.getpid()))
    assert 0 < len(committed) < N_ARTICLES

    a = Assistant(index_dir, seed=False, quiet=True)
    stored = {info.source for info in a.articles()}
    # the batch being committed when the signal came is either all there or not there at all
    assert stored in (committed, committed | in_flight), (len(stored), len(committed), len(in_flight))
    for info in a.articles():  # no article lost part of its chunks
        art = a.store.article(info.id)
        assert info.chunks == len(chunk_article(art)) > 0, info
    index = a.store.faiss_index()
    assert index.ntotal == a.store.count()[1]

    some = sorted(stored)[len(stored) // 2]
    n = int(some.rsplit("-", 1)[1].split(".")[0])
    answer = a.ask(f"How much was the fee for Player{n:03d} Zandor?")
    assert not answer.abstained and f"{n + 1} million" in answer.text, answer.text
    assert answer.citations[0].source == some

    # ingesting again picks up where the killed run stopped
    report = a.add([corpus])
    assert report.skipped == len(stored) and report.added == N_ARTICLES - len(stored)
    assert a.store.count()[0] == N_ARTICLES
    assert a.store.faiss_index().ntotal == a.store.count()[1]
    a.close()
