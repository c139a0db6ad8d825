"""`rag index watch` and `rag feed update --every` as real processes, stopped with Ctrl+C (SIGINT).

They run with the default embedder, against a folder and a local HTTP server the test owns.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.webserver import WebServer


RAG = [sys.executable, "-m", "rag.cli"]
DEADLINE_S = 180  # the first use on a fresh machine exports the int8 embedder (~10 s); usually seconds


class Proc:
    """A running ``rag`` command whose output lines are collected as they come."""

    def __init__(self, *args: str) -> None:
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        self.p = subprocess.Popen([*RAG, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                                  cwd=Path(__file__).resolve().parent.parent)
        self.lines: list[str] = []
        self._lock = threading.Lock()
        for stream in (self.p.stdout, self.p.stderr):
            threading.Thread(target=self._read, args=(stream,), daemon=True).start()

    def _read(self, stream) -> None:
        for line in stream:
            with self._lock:
                self.lines.append(line.rstrip("\n"))

    def wait_for(self, text: str) -> str:
        end = time.monotonic() + DEADLINE_S
        while time.monotonic() < end:
            with self._lock:
                hit = next((ln for ln in self.lines if text in ln), None)
            if hit is not None:
                return hit
            if self.p.poll() is not None:
                break
            time.sleep(0.05)
        self.stop()
        raise AssertionError(f"no line with {text!r}; got: {self.lines}")

    def stop(self) -> int:
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGINT)
        try:
            return self.p.wait(30)
        except subprocess.TimeoutExpired:
            self.p.kill()
            return self.p.wait()


@pytest.mark.integration
def test_rag_index_watch(tmp_path):
    folder = tmp_path / "inbox"
    folder.mkdir()
    (folder / "before.txt").write_text("date 2024-05-01\nKestrel Town news\n\nKestrel Town have a new kit.\n")
    proc = Proc("index", "watch", str(folder), "--index", str(tmp_path / "idx"), "--debounce", "0.2")
    try:
        proc.wait_for("Watching")
        assert any("1 added" in ln for ln in proc.lines)  # caught up with the file already there
        (folder / "new.md").write_text("# Caldermoor sign a keeper\n\nCaldermoor have signed Lars Whitcombe.\n")
        proc.wait_for(f"added    {folder / 'new.md'} -> new")
        (folder / "before.txt").unlink()
        proc.wait_for(f"removed  {folder / 'before.txt'}")
    finally:
        code = proc.stop()
    assert code == 130 and "rag: interrupted" in proc.lines[-1]


@pytest.fixture(params=["sqlite", "postgresql"])
def index(request, tmp_path):
    """An index folder, or a fresh database on the real PostgreSQL server."""
    return str(tmp_path / "idx") if request.param == "sqlite" else request.getfixturevalue("pg_dsn")


@pytest.mark.integration
def test_rag_feed_update_every(index):
    """Four processes share one index's feeds: one follows a feed, one updates it every minute,
    one lists it, and one more update asks the feed's server once (robots.txt and validators
    come from the index)."""
    with WebServer() as web:
        web.fixture("/pages/amp.html", "amp.html")
        web.fixture("/pages/heavy-navigation.html", "heavy-navigation.html")
        feed = web.fixture("/feeds/atom.xml", "atom.xml", content_type="application/atom+xml", etag='"a1"')
        idx = index
        added = subprocess.run([*RAG, "feed", "add", feed, "--index", idx, "--no-fetch"], capture_output=True,
                               text=True, timeout=DEADLINE_S)
        assert added.returncode == 0 and "following" in added.stdout
        proc = Proc("feed", "update", "--every", "1m", "--index", idx)
        try:
            proc.wait_for("Updating 1 feeds every 1m")
            proc.wait_for("2 articles added")
        finally:
            code = proc.stop()
        assert code == 130
        listed = subprocess.run([*RAG, "feed", "list", "--index", idx], capture_output=True, text=True,
                                timeout=DEADLINE_S)
        assert "Grandstand Daily: Football" in listed.stdout and "2 articles" in listed.stdout
        web.reset_log()
        again = subprocess.run([*RAG, "feed", "update", "--index", idx], capture_output=True, text=True,
                               timeout=DEADLINE_S)
        assert again.returncode == 0 and "not modified" in again.stdout, again.stderr
        assert web.paths() == ["/feeds/atom.xml"]


@pytest.mark.integration
def test_rag_chat_refreshes_feeds_in_the_background(tmp_path, seeds_index_dir):
    import shutil
    import socket

    idx = tmp_path / "idx"
    shutil.copytree(seeds_index_dir, idx)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with WebServer() as web:
        web.fixture("/pages/amp.html", "amp.html")
        web.fixture("/pages/heavy-navigation.html", "heavy-navigation.html")
        feed = web.fixture("/feeds/atom.xml", "atom.xml", content_type="application/atom+xml", etag='"a1"')
        added = subprocess.run([*RAG, "feed", "add", feed, "--index", str(idx), "--no-fetch"], capture_output=True,
                               text=True, timeout=DEADLINE_S)
        assert added.returncode == 0, added.stderr
        proc = Proc("chat", "--index", str(idx), "--port", str(port), "--feeds-every", "1m")
        try:
            proc.wait_for("feeds: 1 feeds (0 not modified, 0 failed): 2 articles added")
            proc.wait_for("Chat running at")
        finally:
            proc.stop()
        assert web.hits("/pages/amp.html") and web.hits("/pages/heavy-navigation.html")


def test_rag_chat_refuses_a_short_feed_interval_at_once(capsys):
    from rag.cli import main

    assert main(["chat", "--feeds-every", "5s"]) == 2
    assert "too short" in capsys.readouterr().err
