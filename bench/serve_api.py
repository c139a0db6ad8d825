"""The HTTP API's costs: overhead over ``Assistant.ask``, first streamed token, 8 clients at once.

A real ``rag serve --no-chat`` process over the seeds index, asked over keep-alive HTTP
connections (httpx) by this process, which also holds its own Assistant on the same index to
time ``Assistant.ask`` directly. Extractive answers throughout, so the numbers are the API's own
costs and not a model's.

* Overhead, two ways: per request, the wall time minus the time the server's own Assistant took
  for that request (the ``total`` of the ``Server-Timing`` header), for
  ``POST /v1/chat/completions`` and ``POST /v1/ask``; and, as a cross-check across processes,
  the median wall time of completions minus the median of direct ``Assistant.ask`` calls in
  this process, interleaved with them (same questions, same index, same embedder).
* The floor: the round trip of ``GET /healthz``, which does no work. On a loaded machine most of
  the overhead is waiting for a core at each thread handoff, and this shows how much.
* First streamed token: request sent to the first ``data:`` event with answer text.
* 8 clients: each on its own connection and thread, asking the seed questions in turn for a
  fixed time; throughput and latency percentiles over all their requests.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

KEY = "bench-key"


def _start(cmd: list[str], index: Path, embedder: str | None, env: dict) -> tuple[subprocess.Popen, str]:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    argv = cmd + ["serve", "--no-chat", "--index", str(index), "--port", str(port), "--api-key", KEY]
    if embedder:
        argv += ["--embedder", embedder]
    proc = subprocess.Popen(argv, env=env, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    line = proc.stderr.readline()
    if not line.startswith("API running at"):
        proc.kill()
        raise SystemExit(f"bench: rag serve did not start: {line}{proc.stderr.read()[-2000:]}")
    threading.Thread(target=proc.stderr.read, daemon=True).start()
    return proc, f"http://127.0.0.1:{port}"


def _server_total(r) -> float:
    """The server's own answering time for a response, from its Server-Timing header."""
    r.raise_for_status()
    timing = dict(part.strip().split(";dur=") for part in r.headers["server-timing"].split(","))
    return float(timing["total"])


def _chat_body(q: str, stream: bool = False) -> dict:
    return {"model": "football-rag", "stream": stream, "messages": [{"role": "user", "content": q}]}


def _first_token_ms(http, url: str, q: str) -> float:
    t0 = time.perf_counter()
    first = None
    with http.stream("POST", f"{url}/v1/chat/completions", json=_chat_body(q, stream=True)) as r:
        for line in r.iter_lines():  # read to the end, so the connection is reused
            if first is None and line.startswith("data: {") and json.loads(line[6:])["choices"][0]["delta"].get("content"):
                first = (time.perf_counter() - t0) * 1000
    if first is None:
        raise SystemExit("bench: a streamed answer had no text")
    return first


def _clients(url: str, questions: list[str], n: int, seconds: float) -> dict:
    import httpx

    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    start = threading.Barrier(n)

    def run(i: int) -> None:
        with httpx.Client(headers={"Authorization": f"Bearer {KEY}"}, timeout=60) as http:
            start.wait()
            deadline = time.perf_counter() + seconds
            k = i
            while time.perf_counter() < deadline:
                q = questions[k % len(questions)]
                k += n
                t0 = time.perf_counter()
                r = http.post(f"{url}/v1/chat/completions", json=_chat_body(q))
                ms = (time.perf_counter() - t0) * 1000
                with lock:
                    (latencies.append(ms) if r.status_code == 200 else errors.append(r.text[:200]))

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    return {"clients": n, "seconds": wall, "requests": len(latencies), "errors": len(errors),
            "throughput_rps": len(latencies) / seconds, "median_ms": statistics.median(latencies),
            "p95_ms": float(np.percentile(latencies, 95)), "p99_ms": float(np.percentile(latencies, 99))}


def bench_serve(res, index: Path, embedder: str | None, questions: list[str], *, cmd: list[str], env: dict,
                repeats: int, seconds: float) -> None:
    """Adds the "HTTP API" rows to ``res`` (a ``bench.run.Results``)."""
    import httpx

    from rag import Assistant

    proc, url = _start(cmd, index, embedder, env)
    direct = Assistant(index, embedder=embedder, seed=False, quiet=True)
    try:
        with httpx.Client(headers={"Authorization": f"Bearer {KEY}"}, timeout=60) as http:
            for q in questions[:3]:  # warm both sides: embedder, FAISS file, connections
                direct.ask(q)
                http.post(f"{url}/v1/chat/completions", json=_chat_body(q)).raise_for_status()
            rtt = []  # the floor: a request that does nothing, on this machine under its current load
            for _ in range(200):
                t0 = time.perf_counter()
                http.get(f"{url}/healthz").raise_for_status()
                rtt.append((time.perf_counter() - t0) * 1000)
            chat_overhead, ask_overhead, api_ms, direct_ms, first_ms = [], [], [], [], []
            for _ in range(repeats):
                for q in questions:
                    t0 = time.perf_counter()
                    direct.ask(q)
                    direct_ms.append((time.perf_counter() - t0) * 1000)
                    t0 = time.perf_counter()
                    r = http.post(f"{url}/v1/chat/completions", json=_chat_body(q))
                    api_ms.append((time.perf_counter() - t0) * 1000)
                    chat_overhead.append(api_ms[-1] - _server_total(r))
                    t0 = time.perf_counter()
                    r = http.post(f"{url}/v1/ask", json={"question": q})
                    ask_overhead.append((time.perf_counter() - t0) * 1000 - _server_total(r))
                    first_ms.append(_first_token_ms(http, url, q))
        many = _clients(url, questions, 8, seconds)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        direct.close()
    res.sections["serve"] = {"healthz_ms": rtt, "direct_ms": direct_ms, "chat_ms": api_ms, "chat_overhead_ms": chat_overhead,
                             "ask_overhead_ms": ask_overhead, "first_token_ms": first_ms, "clients": many}
    s = "HTTP API (extractive)"
    res.add(s, "round trip of GET /healthz (the floor)", statistics.median(rtt), "ms")
    res.add(s, "overhead of a chat completion over its ask", statistics.median(chat_overhead), "ms", "<= 5")
    res.add(s, "overhead of /v1/ask over its ask", statistics.median(ask_overhead), "ms", "<= 5")
    res.add(s, "chat completion minus direct ask (medians)",
            statistics.median(api_ms) - statistics.median(direct_ms), "ms")
    res.add(s, "chat completion / direct ask, median",
            f"{statistics.median(api_ms):.1f} / {statistics.median(direct_ms):.1f}", "ms")
    res.add(s, "first streamed token", statistics.median(first_ms), "ms", "<= 100")
    res.add(s, "first streamed token, p95", float(np.percentile(first_ms, 95)), "ms")
    c = f"HTTP API, 8 clients for {seconds:.0f} s"
    res.add(c, "throughput", many["throughput_rps"], "answers/s")
    res.add(c, "latency median / p95", f"{many['median_ms']:.1f} / {many['p95_ms']:.1f}", "ms")
    res.add(c, "errors", many["errors"], "", "<= 0")


if __name__ == "__main__":  # pragma: no cover
    sys.exit("run it through bench/run.py: python bench/run.py --only serve")
