"""A real ``rag serve`` process, used through the official ``openai`` package.

Three servers over private copies of the real seeds index (the packaged MiniLM, FAISS, SQLite):
the API alone with a key (completions plain and streamed, a follow-up, citations, a wrong key,
eight concurrent clients), the API with the tiny GGUF model (a streamed LLM answer, max_tokens),
and the API with the chat on the same port behind a login (one port gives both; failed logins
and failed keys share one limit).
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict

import openai
import pytest

from rag import Assistant
from tests.conftest import ROOT, SEEDS_QA
from tests.tiny_gguf import build_tiny_gguf

pytestmark = pytest.mark.integration

KEY = "sk-local-test-key"
Q = "When does Alonso's contract expire?"
CLIENTS = 8
CONCURRENT_SECONDS = 8


def _questions() -> list[str]:
    import json

    with open(SEEDS_QA, encoding="utf-8") as f:
        return [json.loads(line)["question"] for line in f if line.strip()]


class Server:
    """``rag serve ARGS`` on a free port; the banner line on stderr says it is up."""

    def __init__(self, index, *args: str) -> None:
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "GRADIO_ANALYTICS_ENABLED": "False",
               "OMP_WAIT_POLICY": "PASSIVE"}
        env.pop("RAG_API_KEY", None)
        self.proc = subprocess.Popen([sys.executable, "-m", "rag.cli", "serve", "--index", str(index), "--port",
                                      str(_free_port()), *args], cwd=ROOT, env=env, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                     text=True)

    def wait(self) -> str:
        line = self.proc.stderr.readline()  # blocks until the server is up (or the process ends)
        assert line.startswith("API running at http://127.0.0.1:"), line + self.proc.stderr.read()
        self.url = line.split()[3].rstrip(",").removesuffix("/v1")
        threading.Thread(target=self.proc.stderr.read, daemon=True).start()  # keep the pipe drained
        return self.url

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=30)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _copy(src, dst):
    shutil.copytree(src, dst)
    return dst


@pytest.fixture(scope="module")
def servers(seeds_index_dir, tmp_path_factory):
    """The three servers, started together so that they load in parallel."""
    root = tmp_path_factory.mktemp("serve")
    tiny = build_tiny_gguf(root / "tiny.gguf")
    api = Server(_copy(seeds_index_dir, root / "api"), "--api-key", KEY, "--no-chat")
    llm = Server(_copy(seeds_index_dir, root / "llm"), "--no-chat", "--model", str(tiny), "--threads", "1",
                 "--max-tokens", "32")
    chat = Server(_copy(seeds_index_dir, root / "chat"), "--api-key", KEY, "--auth", "ann:secret")
    try:
        for s in (api, llm, chat):
            s.wait()
        yield {"api": api, "llm": llm, "chat": chat, "index": root / "api"}
    finally:
        for s in (api, llm, chat):
            s.stop()


@pytest.fixture(scope="module")
def client(servers):
    return openai.OpenAI(base_url=servers["api"].url + "/v1", api_key=KEY, max_retries=0, timeout=60)


@pytest.fixture(scope="module")
def local(servers, real_embedder):
    """The same index, asked directly: what the API's answers must equal."""
    a = Assistant(servers["index"], embedder=real_embedder, seed=False, quiet=True)
    yield a
    a.close()


def _citations(obj) -> list[dict]:
    return [dict(c) for c in (obj.model_extra or {}).get("citations") or []]


def test_models_are_listed(client):
    assert [m.id for m in client.models.list()] == ["football-rag", "football-rag-extractive"]


def test_a_completion_carries_the_cited_answer_and_its_citations(client, local):
    expected = local.ask(Q)
    done = client.chat.completions.create(model="football-rag", messages=[{"role": "user", "content": Q}])
    msg = done.choices[0].message
    assert msg.content == expected.text and "June 2024" in msg.content and "[1]" in msg.content
    assert done.choices[0].finish_reason == "stop"
    cites = _citations(msg)
    assert cites == [asdict(c) for c in expected.citations] and cites
    for c in cites:
        assert set(c) >= {"n", "title", "date", "source", "quote", "start", "end", "supported"}
        assert local.store.article(c["article_id"]).text[c["start"]:c["end"]] == c["quote"]


def test_a_streamed_completion_joins_to_the_same_answer(client, local):
    expected = local.ask(Q)
    chunks = list(client.chat.completions.create(model="football-rag", stream=True,
                                                 messages=[{"role": "user", "content": Q}]))
    assert chunks[0].choices[0].delta.role == "assistant"
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == expected.text
    last = chunks[-1].choices[0]
    assert last.finish_reason == "stop"
    assert _citations(last.delta) == [asdict(c) for c in expected.citations]


def test_a_follow_up_uses_the_earlier_turns(client, local):
    first = local.ask(Q)
    follow = local.ask("And Ancelotti's?", history=[(Q, first.text)])
    assert follow.retrieval_query == "When does Ancelotti's contract expire?"
    done = client.chat.completions.create(model="football-rag", messages=[
        {"role": "user", "content": Q}, {"role": "assistant", "content": first.text},
        {"role": "user", "content": "And Ancelotti's?"}])
    assert done.choices[0].message.content == follow.text != first.text
    assert _citations(done.choices[0].message) == [asdict(c) for c in follow.citations]


def test_a_wrong_key_is_refused_with_401(servers):
    bad = openai.OpenAI(base_url=servers["api"].url + "/v1", api_key="wrong-key", max_retries=0, timeout=30)
    with pytest.raises(openai.AuthenticationError) as e:
        bad.chat.completions.create(model="football-rag", messages=[{"role": "user", "content": Q}])
    assert e.value.status_code == 401 and e.value.code == "invalid_api_key"
    assert e.value.body["message"] == "incorrect API key provided"


def test_eight_concurrent_clients_get_their_own_answers(servers, local):
    """8 clients for a bounded time, plain and streamed, each with its own questions and its own
    follow-up history: no errors, and every reply is the answer to its own question."""
    questions = _questions()
    expected = {q: local.ask(q).text for q in questions}
    follow_ups = {q: local.ask("And Ancelotti's?", history=[(q, expected[q])]).text for q in questions[:CLIENTS]}
    deadline = time.monotonic() + CONCURRENT_SECONDS

    def run(i: int) -> tuple[int, list[str]]:
        c = openai.OpenAI(base_url=servers["api"].url + "/v1", api_key=KEY, max_retries=0, timeout=60)
        mine = questions[i::CLIENTS]
        done, wrong, n = 0, [], 0
        while time.monotonic() < deadline or done < 3:
            q = mine[n % len(mine)]
            n += 1
            if n % 3 == 0:  # a follow-up on this client's own first question
                base = questions[i]
                got = c.chat.completions.create(model="football-rag", messages=[
                    {"role": "user", "content": base}, {"role": "assistant", "content": expected[base]},
                    {"role": "user", "content": "And Ancelotti's?"}]).choices[0].message.content
                want = follow_ups[base]
            elif n % 2:
                got = c.chat.completions.create(model="football-rag", messages=[{"role": "user", "content": q}]
                                                ).choices[0].message.content
                want = expected[q]
            else:
                got = "".join(ch.choices[0].delta.content or "" for ch in c.chat.completions.create(
                    model="football-rag", stream=True, messages=[{"role": "user", "content": q}]))
                want = expected[q]
            if got != want:
                wrong.append(f"client {i}: {q!r} got {got[:80]!r}")
            done += 1
        return done, wrong

    with ThreadPoolExecutor(CLIENTS) as pool:
        results = list(pool.map(run, range(CLIENTS)))  # any exception (an HTTP error) fails the test here
    assert [w for _, wrong in results for w in wrong] == []
    assert all(done >= 3 for done, _ in results)


def test_an_llm_answer_streams_through_the_api(servers):
    c = openai.OpenAI(base_url=servers["llm"].url + "/v1", api_key="unused", max_retries=0, timeout=120)
    chunks = list(c.chat.completions.create(model="football-rag", stream=True,
                                            stream_options={"include_usage": True},
                                            messages=[{"role": "user", "content": Q}]))
    pieces = [ch.choices[0].delta.content for ch in chunks if ch.choices and ch.choices[0].delta.content]
    assert len(pieces) > 2 and "".join(pieces) == "June 2024 [1]."  # the tiny model's [7] made valid
    final = [ch for ch in chunks if ch.choices][-1].choices[0]
    assert final.finish_reason == "stop"
    (cite,) = _citations(final.delta)
    assert cite["n"] == 1 and "2024" in cite["quote"]
    usage = chunks[-1].usage
    assert chunks[-1].choices == [] and usage.prompt_tokens > 100 and usage.completion_tokens > 2
    cut = c.chat.completions.create(model="football-rag", max_tokens=2, messages=[{"role": "user", "content": Q}])
    assert cut.choices[0].finish_reason == "length" and cut.usage.completion_tokens == 2
    assert cut.choices[0].message.content == "June 2024"
    extractive = c.chat.completions.create(model="football-rag-extractive", messages=[{"role": "user", "content": Q}])
    text = extractive.choices[0].message.content
    assert re.match(r"June 2024 (\[\d\])+\.\n", text) and "\nAlonso is currently serving" in text
    assert extractive.usage.completion_tokens == 0


def _login(url: str, password: str) -> int:
    body = urllib.parse.urlencode({"username": "ann", "password": password}).encode()
    try:
        return urllib.request.urlopen(f"{url}/login", data=body, timeout=30).status
    except urllib.error.HTTPError as e:
        return e.code


def test_one_port_serves_the_chat_behind_a_login_with_a_limit_shared_with_the_api(servers):
    url = servers["chat"].url
    page = urllib.request.urlopen(f"{url}/", timeout=30).read().decode()
    assert "<html" in page.lower()
    with pytest.raises(urllib.error.HTTPError) as denied:  # the chat's config needs the login
        urllib.request.urlopen(f"{url}/config", timeout=30)
    assert denied.value.code == 401
    api = openai.OpenAI(base_url=url + "/v1", api_key=KEY, max_retries=0, timeout=60)
    assert [m.id for m in api.models.list()][0] == "football-rag"
    assert _login(url, "secret") == 200
    assert [_login(url, f"guess-{i}") for i in range(10)] == [400] * 10
    assert _login(url, "secret") == 429  # blocked, right password or not
    with pytest.raises(openai.RateLimitError) as e:  # and the API door shares the limit
        api.models.list()
    assert e.value.response.headers["retry-after"].isdigit()


@pytest.mark.llm
def test_a_client_that_goes_away_stops_the_generation(seeds_index_dir, real_embedder, tmp_path):
    """The random-weights model writes 1,300 tokens for this question under the citation grammar;
    a streaming client that leaves after three pieces must stop it within a few tokens."""
    import httpx

    from rag.llm import LLMSettings
    from rag.server.run import start

    model = build_tiny_gguf(tmp_path / "random.gguf", random_weights=True, seed=0, context_length=8192)
    assistant = Assistant(_copy(seeds_index_dir, tmp_path / "index"), embedder=real_embedder, seed=False,
                          quiet=True, model=model, llm=LLMSettings(n_threads=1, n_ctx=8192, max_tokens=3000))
    generated = []
    generate = assistant.answerer._generate

    def counting(*args, **kwargs):
        for item in generate(*args, **kwargs):
            generated.append(item)
            yield item

    assistant.answerer._generate = counting
    running = start(assistant, chat=False)
    try:
        body = {"model": "football-rag", "stream": True, "messages": [{"role": "user", "content": Q}]}
        with httpx.stream("POST", f"{running.url}/v1/chat/completions", json=body, timeout=60) as r:
            pieces = 0
            for line in r.iter_lines():
                pieces += '"content":"' in line and '"content":""' not in line
                if pieces == 3:
                    break  # leaving the block closes the connection
        # the next answer waits for the model lock, so it starts only once the first generation ended
        after = httpx.post(f"{running.url}/v1/chat/completions", timeout=120, json={
            "model": "football-rag", "max_tokens": 1, "messages": [{"role": "user", "content": Q}]}).json()
        assert after["usage"]["completion_tokens"] == 1
        assert 3 <= len(generated) - 1 < 400  # against 1,313 when nobody stops it
    finally:
        running.stop()
        assistant.close()
