"""The HTTP API in-process: OpenAI's shapes, the native endpoints, keys, limits and errors.

Fast lane: the real FastAPI app over an Assistant with the hash embedder (real SQLite and FAISS),
driven through Starlette's TestClient. The real server process, the official ``openai`` client,
the tiny LLM and concurrency are in test_server_openai.py; fuzzing in test_server_schema.py.
"""

from __future__ import annotations

import json
import socket
import time
from dataclasses import asdict

import pytest
from fastapi.testclient import TestClient
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route

from rag.cli import main
from rag.errors import ConfigError
from rag.server.app import JSON_BODY_LIMIT, create_app, openapi_document
from rag.server.chat_api import conversation
from rag.server.guard import FailureLimiter, LoginGuard, key_login
from rag.server.run import bind, check_access
from rag.server.schemas import ChatMessage

KEY = "test-key-123"
AUTH = {"Authorization": f"Bearer {KEY}"}
Q = "When does Alonso's contract expire?"
ARTICLE = ("date 2024-03-02\nWrexham Rovers sign goalkeeper Tomasz Quill\n\n"
           "Wrexham Rovers have signed goalkeeper Tomasz Quill on a deal running until June 2027.\n")


@pytest.fixture
def limiter():
    return FailureLimiter(max_failures=3, window_s=60)


@pytest.fixture
def client(fake_assistant, limiter):
    app = create_app(fake_assistant, api_key=KEY, chat=False, limiter=limiter)
    with TestClient(app) as c:
        yield c


def _chat(client, messages, **body):
    return client.post("/v1/chat/completions", json={"messages": messages, **body}, headers=AUTH)


def _events(text: str) -> list:
    """The SSE body as OpenAI sends it: ``data: ...`` events separated by blank lines."""
    assert text.endswith("\n\n")
    out = []
    for block in text[:-2].split("\n\n"):
        assert block.startswith("data: ") and "\n" not in block, block
        payload = block[len("data: "):]
        out.append(payload if payload == "[DONE]" else json.loads(payload))
    return out


# ------------------------------------------------------------------ the conversation


def _msgs(*pairs):
    return [ChatMessage(role=r, content=c) for r, c in pairs]


@pytest.mark.parametrize("messages, question, history", [
    (_msgs(("user", "Q1")), "Q1", []),
    (_msgs(("system", "be brief"), ("user", "Q1"), ("assistant", "A1"), ("user", " Q2 ")), "Q2", [("Q1", "A1")]),
    (_msgs(("assistant", "Hello!"), ("user", "Q1"), ("user", "Q1 again")), "Q1 again", [("Q1", "")]),
    (_msgs(("user", "Q1"), ("assistant", "A1"), ("tool", "x"), ("developer", "y"), ("user", "Q2")), "Q2",
     [("Q1", "A1")]),
    ([ChatMessage(role="user", content=[{"type": "text", "text": "part one"}, {"type": "text", "text": "two"}])],
     "part one\ntwo", []),
])
def test_the_last_user_message_is_the_question_and_earlier_turns_the_history(messages, question, history):
    assert conversation(messages) == (question, history)


@pytest.mark.parametrize("messages, message", [
    (_msgs(("user", "Q1"), ("assistant", "A1")), "the last message must be the user's question"),
    (_msgs(("system", "only a system prompt")), "the last message must be the user's question"),
    (_msgs(("user", "   ")), "the question (the last user message) is empty"),
    ([ChatMessage(role="user", content=[{"type": "image_url", "image_url": {"url": "x"}}])],
     "messages[0]: only text content is answered, not 'image_url'"),
])
def test_conversations_without_a_question_are_refused(messages, message):
    from rag.server.guard import ApiError

    with pytest.raises(ApiError) as e:
        conversation(messages)
    assert e.value.status == 400 and e.value.message == message


# ------------------------------------------------------------------ chat completions


def test_a_completion_is_the_cited_answer_with_its_citations(client, fake_assistant):
    expected = fake_assistant.ask(Q)
    r = _chat(client, [{"role": "user", "content": Q}])
    assert r.status_code == 200
    body = r.json()
    assert body["object"] == "chat.completion" and body["id"].startswith("chatcmpl-")
    assert body["model"] == "football-rag"
    (choice,) = body["choices"]
    assert choice["finish_reason"] == "stop"
    assert choice["message"]["role"] == "assistant"
    assert choice["message"]["content"] == expected.text and "[1]" in expected.text
    assert choice["message"]["citations"] == [asdict(c) for c in expected.citations]
    for c in choice["message"]["citations"]:
        assert fake_assistant.store.article(c["article_id"]).text[c["start"]:c["end"]] == c["quote"]
    assert body["usage"] == {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}
    timing = dict(part.split(";dur=") for part in r.headers["server-timing"].split(", "))
    assert set(timing) == {"retrieve", "answer", "total"} and float(timing["total"]) > 0


def test_a_streamed_completion_is_server_sent_events_as_openai_sends_them(client, fake_assistant):
    expected = fake_assistant.ask(Q)
    r = _chat(client, [{"role": "user", "content": Q}], stream=True)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
    events = _events(r.text)
    assert events[-1] == "[DONE]"
    chunks = events[:-1]
    assert len({c["id"] for c in chunks}) == 1 and all(c["object"] == "chat.completion.chunk" for c in chunks)
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks)
    assert text == expected.text
    last = chunks[-1]["choices"][0]
    assert last["finish_reason"] == "stop" and all(c["choices"][0]["finish_reason"] is None for c in chunks[:-1])
    assert last["delta"] == {"citations": [asdict(c) for c in expected.citations]}
    assert all("usage" not in c for c in chunks)


def test_stream_options_include_usage_adds_a_usage_chunk(client):
    r = _chat(client, [{"role": "user", "content": Q}], stream=True, stream_options={"include_usage": True})
    *chunks, usage, done = _events(r.text)
    assert done == "[DONE]"
    assert usage["choices"] == [] and usage["usage"] == {"prompt_tokens": 0, "completion_tokens": 0,
                                                         "total_tokens": 0}
    assert all(c["usage"] is None for c in chunks)


def test_a_follow_up_is_answered_with_the_conversation(client, fake_assistant):
    first = fake_assistant.ask(Q)
    follow = fake_assistant.ask("And Ancelotti's?", history=[(Q, first.text)])
    assert follow.retrieval_query == "When does Ancelotti's contract expire?"
    messages = [{"role": "system", "content": "You are helpful."}, {"role": "user", "content": Q},
                {"role": "assistant", "content": first.text}, {"role": "user", "content": "And Ancelotti's?"}]
    r = _chat(client, messages)
    assert r.json()["choices"][0]["message"]["content"] == follow.text != first.text
    alone = _chat(client, [{"role": "user", "content": "And Ancelotti's?"}]).json()
    assert alone["choices"][0]["message"]["content"] != follow.text  # the history made the difference


def test_the_extractive_model_answers_through_the_same_endpoint(client, fake_assistant):
    r = _chat(client, [{"role": "user", "content": Q}], model="football-rag-extractive", max_tokens=5,
              temperature=0.7)
    assert r.json()["choices"][0]["message"]["content"] == fake_assistant.ask(Q).text


def _error(r, status: int) -> dict:
    assert r.status_code == status, r.text
    body = r.json()
    assert set(body) == {"error"} and set(body["error"]) == {"message", "type", "param", "code"}
    return body["error"]


@pytest.mark.parametrize("body, status, message, param", [
    ({}, 400, "messages: Field required", "messages"),
    ({"messages": []}, 400, "messages: List should have at least 1 item after validation, not 0", "messages"),
    ({"messages": [{"role": "robot", "content": "x"}]}, 400, "messages.0.role: Input should be", "messages.0.role"),
    ({"messages": [{"role": "user", "content": "x"}], "n": 2}, 400, "n: Input should be less than or equal to 1", "n"),
    ({"messages": [{"role": "user", "content": "x"}], "temperature": 3}, 400, "temperature: Input should be less",
     "temperature"),
    ({"messages": [{"role": "user", "content": "x" * 2001}]}, 400, "the question is 2001 characters; the limit is 2000",
     None),
    ({"messages": [{"role": "user", "content": "x"}], "model": "gpt-4o"}, 404,
     "the model 'gpt-4o' does not exist; this server has football-rag, football-rag-extractive", "model"),
])
def test_bad_requests_are_errors_in_openai_shape(client, body, status, message, param):
    err = _error(client.post("/v1/chat/completions", json=body, headers=AUTH), status)
    assert err["message"].startswith(message) and err["param"] == param
    assert err["type"] == "invalid_request_error"


def test_a_bad_question_fails_before_the_stream_starts(client):
    r = _chat(client, [{"role": "user", "content": "x" * 2001}], stream=True)
    assert _error(r, 400)["message"] == "the question is 2001 characters; the limit is 2000"


def test_a_body_that_is_not_json_is_a_400(client):
    r = client.post("/v1/chat/completions", content=b"{not json", headers={**AUTH, "Content-Type": "application/json"})
    assert _error(r, 400)["message"].startswith("the request body is not valid JSON")


def test_models_and_unknown_endpoints(client):
    models = client.get("/v1/models", headers=AUTH).json()
    assert models["object"] == "list"
    assert [m["id"] for m in models["data"]] == ["football-rag", "football-rag-extractive"]
    assert client.get("/v1/models/football-rag", headers=AUTH).json()["id"] == "football-rag"
    assert _error(client.get("/v1/models/gpt-4", headers=AUTH), 404)["code"] == "model_not_found"
    assert _error(client.get("/v1/embeddings", headers=AUTH), 404)["message"] == "unknown endpoint GET /v1/embeddings"
    r = client.get("/v1/chat/completions", headers=AUTH)
    assert _error(r, 405)["message"] == "GET is not allowed on /v1/chat/completions (use POST)"
    assert r.headers["allow"] == "POST"


# ------------------------------------------------------------------ keys, limits, sizes


def test_the_api_key_is_required_and_failures_are_limited_per_client(fake_assistant, limiter):
    app = create_app(fake_assistant, api_key=KEY, chat=False, limiter=limiter)
    with TestClient(app) as c, TestClient(app, client=("10.0.0.2", 4000)) as other:
        assert c.get("/healthz").json() == {"status": "ok"}  # no key needed
        assert c.get("/openapi.json").status_code == 200
        r = c.get("/v1/models")
        assert _error(r, 401)["message"] == "this server needs an API key: send the header 'Authorization: Bearer KEY'"
        assert r.headers["www-authenticate"] == "Bearer"
        assert _error(c.get("/v1/models", headers={"Authorization": "Bearer wrong"}), 401)["code"] == "invalid_api_key"
        assert c.get("/v1/models", headers=AUTH).status_code == 200  # a success does not reset the count
        assert c.get("/v1/stats", headers={"Authorization": "Basic a2V5"}).status_code == 401
        blocked = c.get("/v1/models", headers=AUTH)  # the right key too, while blocked
        err = _error(blocked, 429)
        assert err["type"] == "rate_limit_error" and err["code"] == "rate_limit_exceeded"
        assert err["message"].startswith("too many failed API keys or logins from this client; try again in ")
        assert 55 <= int(blocked.headers["retry-after"]) <= 60
        assert other.get("/v1/models", headers=AUTH).status_code == 200  # another client is not affected


def test_failed_logins_and_failed_keys_share_one_limiter(fake_assistant, limiter):
    """The chat's login form (Gradio answers a wrong password with 400) behind the same guard."""

    async def login(request):
        form = await request.form()
        ok = form.get("password") == "pw"
        return JSONResponse({"success": True} if ok else {"detail": "Incorrect credentials."}, 200 if ok else 400)

    chat = LoginGuard(Starlette(routes=[Route("/login", login, methods=["POST"])]), limiter)
    api = create_app(fake_assistant, api_key=KEY, chat=False, limiter=limiter)
    with TestClient(chat) as page, TestClient(api) as c:
        assert page.post("/login", data={"username": "ann", "password": "pw"}).status_code == 200
        assert page.post("/login", data={"username": "ann", "password": "no"}).status_code == 400
        assert page.post("/login", data={"username": "ann", "password": "nope"}).status_code == 400
        assert c.get("/v1/models", headers={"Authorization": "Bearer guess"}).status_code == 401
        r = page.post("/login", data={"username": "ann", "password": "pw"})
        assert r.status_code == 429 and r.json()["detail"].startswith("too many failed API keys or logins")
        assert c.get("/v1/models", headers=AUTH).status_code == 429


def test_the_limiter_forgets_failures_once_they_leave_the_window():
    lim = FailureLimiter(max_failures=2, window_s=1)
    lim.failed("a")
    assert lim.blocked_for("a") is None
    lim.failed("a")
    assert lim.blocked_for("a") >= 1 and lim.blocked_for("b") is None
    time.sleep(1.1)
    assert lim.blocked_for("a") is None


def test_the_key_login_takes_any_user_name_with_the_key():
    check = key_login(KEY)
    assert check("anyone", KEY) and check("", KEY)
    assert not check("anyone", "wrong") and not check(KEY, "")


def test_request_bodies_over_the_limit_are_refused(client):
    big = {"messages": [{"role": "user", "content": "x" * JSON_BODY_LIMIT}]}
    err = _error(client.post("/v1/chat/completions", json=big, headers=AUTH), 413)
    assert err["message"] == f"the request body is over the {JSON_BODY_LIMIT:,} byte limit"

    def chunks():  # no Content-Length: counted as it arrives
        for _ in range(20):
            yield b" " * 100_000

    r = client.post("/v1/ask", content=chunks(), headers={**AUTH, "Content-Type": "application/json"})
    assert _error(r, 413)["code"] == "request_too_large"


# ------------------------------------------------------------------ native API


def test_ask_returns_the_whole_answer(client, fake_assistant):
    r = client.post("/v1/ask", json={"question": Q, "top_k": 3, "since": "2023-01-01"}, headers=AUTH)
    body = r.json()
    assert r.headers["server-timing"].endswith(f"total;dur={body['timings']['total_ms']:.2f}")
    expected = fake_assistant.ask(Q, top_k=3, since="2023-01-01").to_dict()
    for d in (body, expected):
        d.pop("timings")
    assert body == expected and len(body["passages"]) <= 3


@pytest.mark.parametrize("body, status, message", [
    ({"question": Q, "mode": "llm"}, 400, "mode 'llm' needs a model: start the server with --model GGUF"),
    ({"question": Q, "since": "yesterday"}, 400, "since: 'yesterday' is not a date (use YYYY-MM-DD)"),
    ({"question": Q, "since": "2024-02-01", "until": "2024-01-01"}, 400, "since 2024-02-01 is after until 2024-01-01"),
    ({"question": Q, "top_k": 0}, 400, "top_k: Input should be greater than or equal to 1"),
    ({"question": Q, "colour": "red"}, 400, "colour: Extra inputs are not permitted"),
])
def test_bad_asks_name_the_value(client, body, status, message):
    assert _error(client.post("/v1/ask", json=body, headers=AUTH), status)["message"] == message


def test_articles_are_uploaded_with_the_chats_checks_listed_and_deleted(client, fake_assistant):
    backend = client.app.state.rag.backend
    backend.max_upload_bytes = 400
    files = [("files", ("../../quill signing.txt", ARTICLE.encode())), ("files", ("tool.exe", b"MZ")),
             ("files", ("empty.md", b"")), ("files", ("huge.txt", b"word " * 100))]
    r = client.post("/v1/articles", files=files, headers=AUTH)
    assert r.status_code == 200, r.text
    body = r.json()
    (item,) = body["items"]
    saved = backend.uploads_dir / "quill-signing.txt"
    assert item["status"] == "added" and item["source"] == str(saved) and saved.read_text() == ARTICLE
    assert {x["file"]: x["reason"] for x in body["rejected"]} == {
        "tool.exe": "'tool.exe': unsupported file type '.exe' (supported: .txt, .md, .markdown, .html, .htm, "
                    ".json, .jsonl, .csv)",
        "empty.md": "empty.md: the file is empty",
        "huge.txt": "huge.txt: 500 B is over the 400 B upload limit",
    }
    assert body["summary"].startswith("1 added, 0 updated, 0 skipped, 0 failed") and body["summary"].endswith("3 rejected")
    listed = client.get("/v1/articles", headers=AUTH).json()
    assert listed["count"] == 3 and item["article_id"] in {a["id"] for a in listed["articles"]}
    assert client.get("/v1/stats", headers=AUTH).json()["articles"] == 3
    r = client.delete(f"/v1/articles/{item['article_id']}", headers=AUTH)
    assert r.json() == {"id": item["article_id"], "title": "Wrexham Rovers sign goalkeeper Tomasz Quill", "deleted": True}
    assert not saved.exists() and len(fake_assistant.articles()) == 2
    assert _error(client.delete(f"/v1/articles/{item['article_id']}", headers=AUTH), 404)["code"] == "not_found"


def test_an_upload_with_too_many_files_is_refused(client):
    files = [("files", (f"a{i}.txt", b"x")) for i in range(21)]
    assert _error(client.post("/v1/articles", files=files, headers=AUTH), 400)["message"] == (
        "21 files in one upload; the limit is 20")


def test_the_served_spec_is_the_document_and_has_no_422s(client):
    spec = client.get("/openapi.json").json()
    assert spec == openapi_document()
    assert "422" not in json.dumps(spec["paths"])
    assert {"/v1/chat/completions", "/v1/models", "/v1/ask", "/v1/articles", "/v1/articles/{article_id}",
            "/v1/stats", "/healthz"} <= set(spec["paths"])
    assert "ChatCompletionChunk" in spec["components"]["schemas"]
    assert spec["components"]["securitySchemes"]["APIKey"]["scheme"] == "bearer"


# ------------------------------------------------------------------ serving options


def test_beyond_localhost_the_api_needs_a_key():
    assert check_access("127.0.0.1", api=True, api_key=None, auth=None) is None
    assert check_access("0.0.0.0", api=True, api_key="k", auth=None) is None
    with pytest.raises(ConfigError, match="refusing to serve the API on 0.0.0.0 without an API key"):
        check_access("0.0.0.0", api=True, api_key=None, auth=None)
    with pytest.raises(ConfigError, match="the API key is empty"):
        check_access("127.0.0.1", api=True, api_key="  ", auth=None)
    assert check_access("0.0.0.0", api=False, api_key=None, auth=None).startswith("warning: serving on 0.0.0.0")


@pytest.mark.parametrize("argv, message", [
    (["serve", "--host", "0.0.0.0"], "rag: error: refusing to serve the API on 0.0.0.0 without an API key: anyone "
     "who can reach this machine could use it (give --api-key KEY or set RAG_API_KEY, or bind to 127.0.0.1)"),
    (["serve", "--port", "0"], "rag: error: --port must be 1-65535, got 0"),
    (["serve", "--auth", "ann"], "rag: error: --auth must be USER:PASSWORD with both parts non-empty"),
    (["serve", "--top-k", "0"], "rag: error: --top-k must be at least 1, got 0"),
])
def test_bad_serve_options_are_one_line_errors(argv, message, capsys, monkeypatch):
    monkeypatch.delenv("RAG_API_KEY", raising=False)
    assert main(argv) == 2
    assert capsys.readouterr().err.strip() == message


def test_a_port_in_use_is_a_one_line_error():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        with pytest.raises(ConfigError, match=f"cannot serve on 127.0.0.1:{port}: Address already in use"):
            bind("127.0.0.1", port)
