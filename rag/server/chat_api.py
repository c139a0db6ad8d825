"""OpenAI-compatible endpoints: ``POST /v1/chat/completions`` and ``GET /v1/models``.

Any OpenAI client can talk to the assistant: the reply's content is the cited answer with its
``[n]`` markers, and the citations travel beside it as an extra ``citations`` field on the
message (on the last chunk's delta when streaming), so ordinary clients show the text and
aware clients show the sources. Streaming is server-sent events exactly as OpenAI sends them: a
first chunk with the role, one chunk per piece of text, a last chunk with ``finish_reason`` (and
the citations), optionally a usage chunk, then ``data: [DONE]``.

A streamed request is checked before the stream starts: the first piece of the answer is
computed while the request can still fail with a plain HTTP error, so a bad question is a 400
in OpenAI's error shape rather than a stream that breaks. An error after that (rare: the model
failing mid-answer) is sent as a ``data: {"error": ...}`` event, as OpenAI does. A client that
goes away stops the generation.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import anyio
from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import StreamingResponse

from ..errors import RagError
from ..models import Answer
from .guard import ApiError, require_key
from .schemas import (
    ERROR_RESPONSES,
    ChatCompletion,
    ChatCompletionRequest,
    ChatMessage,
    ErrorResponse,
    ModelCard,
    ModelList,
)
from .state import MODEL_IDS, ServerState, final_answer

log = logging.getLogger("rag.server")

MAX_HISTORY_TURNS = 20  # earlier turns given to the follow-up rewriting; older ones do not matter
TEXT_PARTS = frozenset({"text", "input_text"})
_END = object()

router = APIRouter(prefix="/v1", dependencies=[Depends(require_key)], responses=ERROR_RESPONSES,
                   tags=["OpenAI-compatible"])


# ------------------------------------------------------------------ the conversation


def _text(message: ChatMessage, i: int) -> str:
    content = message.content
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    parts = []
    for part in content:
        if part.type not in TEXT_PARTS:
            raise ApiError(400, f"messages[{i}]: only text content is answered, not '{part.type}'",
                           param=f"messages.{i}.content")
        parts.append(part.text or "")
    return "\n".join(parts)


def conversation(messages: Sequence[ChatMessage]) -> tuple[str, list[tuple[str, str]]]:
    """The question (the last message, the user's) and the earlier (question, answer) turns.

    System, developer and tool messages are not part of the conversation the assistant sees. A
    user message with no reply after it (a retried question) becomes a turn with an empty answer.
    """
    turns = [(m.role, _text(m, i)) for i, m in enumerate(messages) if m.role in ("user", "assistant")]
    if not turns or turns[-1][0] != "user":
        raise ApiError(400, "the last message must be the user's question", param="messages")
    question = turns[-1][1].strip()
    if not question:
        raise ApiError(400, "the question (the last user message) is empty", param="messages")
    history: list[tuple[str, str]] = []
    pending: str | None = None
    for role, text in turns[:-1]:
        if role == "user":
            if pending is not None:
                history.append((pending, ""))
            pending = text
        elif pending is not None:
            history.append((pending, text))
            pending = None
    if pending is not None:
        history.append((pending, ""))
    return question, history[-MAX_HISTORY_TURNS:]


# ------------------------------------------------------------------ replies


@dataclass(frozen=True)
class Reply:
    """What every chunk of one completion repeats, and what decides its finish reason."""

    id: str
    created: int
    model: str
    max_tokens: int | None
    include_usage: bool = False

    def chunk(self, delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
        out = {"id": self.id, "object": "chat.completion.chunk", "created": self.created, "model": self.model,
               "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}]}
        if self.include_usage:
            out["usage"] = None
        return out

    def finish_reason(self, answer: Answer) -> str:
        n = answer.timings.generated_tokens
        return "length" if answer.mode == "llm" and n and self.max_tokens and n >= self.max_tokens else "stop"


def usage(answer: Answer) -> dict[str, int]:
    prompt, completion = answer.timings.prompt_tokens or 0, answer.timings.generated_tokens or 0
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


def citations(answer: Answer) -> list[dict[str, Any]]:
    return [asdict(c) for c in answer.citations]


def completion(reply: Reply, answer: Answer) -> dict[str, Any]:
    return {
        "id": reply.id, "object": "chat.completion", "created": reply.created, "model": reply.model,
        "choices": [{"index": 0, "logprobs": None, "finish_reason": reply.finish_reason(answer),
                     "message": {"role": "assistant", "content": answer.text, "refusal": None,
                                 "citations": citations(answer)}}],
        "usage": usage(answer),
    }


def server_timing(answer: Answer) -> str:
    """The standard ``Server-Timing`` header: where the answer's time went (browsers' developer
    tools show it; ``make bench`` subtracts it from the wall time to get the API's own cost)."""
    t = answer.timings
    return f"retrieve;dur={t.retrieve_ms:.2f}, answer;dur={t.answer_ms:.2f}, total;dur={t.total_ms:.2f}"


def event(data: dict[str, Any]) -> bytes:
    return b"data: " + json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode("utf-8") + b"\n\n"


async def events(reply: Reply, first: Any, stream: Iterator[str | Answer]) -> AsyncIterator[bytes]:
    """The SSE body of a streamed completion; see the module docstring."""
    try:
        yield event(reply.chunk({"role": "assistant", "content": ""}))
        item: Any = first
        while not isinstance(item, Answer):
            if item is _END:
                raise RuntimeError("the answer stream ended without an Answer")
            if item:
                yield event(reply.chunk({"content": item}))
            item = await anyio.to_thread.run_sync(next, stream, _END)
        yield event(reply.chunk({"citations": citations(item)}, reply.finish_reason(item)))
        if reply.include_usage:
            yield event({"id": reply.id, "object": "chat.completion.chunk", "created": reply.created,
                         "model": reply.model, "choices": [], "usage": usage(item)})
        yield b"data: [DONE]\n\n"
    except RagError as e:
        yield event(ApiError(400, str(e)).body())
    except Exception as e:  # a bug: the client hears of it, the log gets the traceback
        log.exception("streamed completion %s failed", reply.id)
        yield event(ApiError(500, f"the answer failed ({type(e).__name__})", type="server_error").body())
    finally:
        with anyio.CancelScope(shield=True):  # also when the client went away: stop generating
            await anyio.to_thread.run_sync(stream.close)


# ------------------------------------------------------------------ routes


def _state(request: Request) -> ServerState:
    return request.app.state.rag


def _card(state: ServerState, model_id: str) -> ModelCard:
    return ModelCard(id=model_id, created=state.created)


@router.get("/models", response_model=ModelList, summary="The answerers this server offers")
async def list_models(request: Request) -> ModelList:
    """``football-rag`` answers with the server's answerer (its LLM when it has one),
    ``football-rag-extractive`` always quotes the sources."""
    state = _state(request)
    return ModelList(data=[_card(state, m) for m in MODEL_IDS])


@router.get("/models/{model_id}", response_model=ModelCard, summary="One model",
            responses={404: {"model": ErrorResponse, "description": "no such model"}})
async def get_model(model_id: str, request: Request) -> ModelCard:
    if model_id not in MODEL_IDS:
        raise ApiError(404, f"the model '{model_id}' does not exist; this server has {', '.join(MODEL_IDS)}",
                       param="model", code="model_not_found")
    return _card(_state(request), model_id)


@router.post(
    "/chat/completions", response_model=ChatCompletion, summary="Answer the last message, with citations",
    responses={
        200: {"description": "the completion, or with stream=true server-sent events of "
                             "ChatCompletionChunk objects ending in `data: [DONE]`",
              "content": {"text/event-stream": {"schema": {"type": "string"}}}},
        404: {"model": ErrorResponse, "description": "no such model"},
    },
)
async def chat_completions(body: ChatCompletionRequest, request: Request, response: Response) -> Any:
    """OpenAI's chat completions. Earlier user and assistant turns feed the rewriting of a
    follow-up question ("And Ancelotti's?"); the reply cites its sources with [n] markers and
    lists them in ``message.citations``."""
    state = _state(request)
    question, history = conversation(body.messages)
    requested = body.max_completion_tokens or body.max_tokens
    ceiling = state.max_tokens()
    reply = Reply(id=f"chatcmpl-{uuid.uuid4().hex}", created=int(time.time()), model=body.model,
                  max_tokens=min(requested, ceiling) if requested and ceiling else ceiling,
                  include_usage=bool(body.stream_options and body.stream_options.include_usage))

    def answer() -> Any:  # on a worker thread: retrieval and answering block
        stream = state.answer_stream(question, model=body.model, history=history, max_tokens=requested,
                                     temperature=body.temperature)
        if not body.stream:
            done = final_answer(stream)
            response.headers["Server-Timing"] = server_timing(done)
            return completion(reply, done)
        try:
            return stream, next(stream, _END)  # a bad question fails here, as a plain HTTP error
        except BaseException:
            stream.close()
            raise

    # One worker-thread hop per request: this coroutine runs on the event loop, and FastAPI would
    # run a plain function's body and then its response validation on two separate hops.
    result = await anyio.to_thread.run_sync(answer)
    if not body.stream:
        return result
    stream, first = result
    return StreamingResponse(events(reply, first, stream), media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
