"""``rag chat`` / ``python -m ui``: options checked up front, the page served with a login."""

from __future__ import annotations

import http.cookiejar
import os
import shutil
import signal
import socket
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request

import pytest

from rag.cli import main
from rag.errors import ConfigError
from tests.conftest import ROOT
from ui.config import exposure_warning, parse_auth


def test_parse_auth():
    assert parse_auth("ann:s3cr:et") == ("ann", "s3cr:et")
    assert parse_auth(None) is None
    for bad in ("ann", "ann:", ":pw", ""):
        with pytest.raises(ConfigError, match="--auth must be USER:PASSWORD"):
            parse_auth(bad)


def test_exposure_warning_only_beyond_localhost_without_a_login():
    for local in ("127.0.0.1", "localhost", "::1", "127.0.1.1"):
        assert exposure_warning(local, None) is None
    assert exposure_warning("0.0.0.0", ("ann", "pw")) is None
    warning = exposure_warning("0.0.0.0", None)
    assert warning.startswith("warning: serving on 0.0.0.0 without --auth") and "--auth USER:PASSWORD" in warning


@pytest.mark.parametrize("argv, message", [
    (["chat", "--auth", "nocolon"], "rag: error: --auth must be USER:PASSWORD with both parts non-empty"),
    (["chat", "--port", "70000"], "rag: error: --port must be 1-65535, got 70000"),
])
def test_bad_chat_options_are_one_line_errors(argv, message, capsys):
    assert main(argv) == 2
    assert capsys.readouterr().err.strip() == message


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.integration
def test_python_m_ui_serves_the_page_behind_a_login(seeds_index_dir, tmp_path):
    index = tmp_path / "index"
    shutil.copytree(seeds_index_dir, index)
    port = _free_port()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "GRADIO_ANALYTICS_ENABLED": "False"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "ui", "--index", str(index), "--port", str(port), "--auth", "ann:secret"],
        cwd=ROOT, env=env, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True,
    )
    try:
        line = proc.stderr.readline()  # blocks until the server is up (or the process ends)
        assert line.strip() == f"Chat running at http://127.0.0.1:{port}/ (Ctrl+C to stop)"
        base = f"http://127.0.0.1:{port}"
        with pytest.raises(urllib.error.HTTPError) as denied:
            urllib.request.urlopen(f"{base}/config", timeout=30)
        assert denied.value.code == 401
        jar = http.cookiejar.CookieJar()
        opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
        body = urllib.parse.urlencode({"username": "ann", "password": "secret"}).encode()
        assert opener.open(f"{base}/login", data=body, timeout=30).status == 200
        config = opener.open(f"{base}/config", timeout=30).read().decode()
        assert "Football news Q&A" in config and "Add to index" in config
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=60) == 130
        assert "rag: interrupted" in proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stderr.close()
