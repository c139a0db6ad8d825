"""The HTTP API's request and response bodies, as pydantic models.

They validate what clients send (a bad field is a 400 naming it, in OpenAI's error shape) and
they are the OpenAPI spec at ``/openapi.json``. The OpenAI-compatible bodies follow OpenAI's
field names and accept fields this server has no use for (``top_p``, ``user``, ``seed``...)
without complaint, so that ordinary clients work unchanged; what a client may rely on is
exactly what is declared here. The answer's citations travel as the extra field ``citations``
on the message (and on the last streamed chunk's delta). The native bodies reuse the library's
own dataclasses (``Citation``, ``Timings``, ``ArticleInfo``, ``IngestItem``, ``IndexStats``), so
the API cannot drift from what ``rag ask --json`` prints.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from ..assistant import MAX_QUESTION_CHARS
from ..models import ArticleInfo, Citation, IngestItem, Timings

DEFAULT_MODEL = "football-rag"  # the server's answerer: the LLM when one is configured
EXTRACTIVE_MODEL = "football-rag-extractive"  # always the extractive answerer
MAX_MESSAGES = 200  # a conversation longer than this is not a chat client's doing
MAX_TOP_K = 50

# ------------------------------------------------------------------ errors (OpenAI's shape)


class ErrorDetail(BaseModel):
    message: str = Field(description="what went wrong, naming the bad value")
    type: str = Field(description="invalid_request_error, rate_limit_error or server_error")
    param: str | None = Field(None, description="the request field at fault, when there is one")
    code: str | None = Field(None, description="e.g. invalid_api_key, model_not_found, not_found")


class ErrorResponse(BaseModel):
    """Every error, on every endpoint: ``{"error": {"message", "type", "param", "code"}}``."""

    error: ErrorDetail


ERROR_RESPONSES: dict[int | str, dict] = {
    status: {"model": ErrorResponse, "description": text}
    for status, text in ((400, "a bad request: the message names the field or value"),
                         (401, "missing or incorrect API key"),
                         (413, "the request body is too large"),
                         (429, "too many failed API keys or logins from this client (see Retry-After)"),
                         (503, "the index or the model cannot be used"))
}

# ------------------------------------------------------------------ OpenAI: chat completions


class ContentPart(BaseModel):
    """A part of a message's content; only text parts are answered."""

    model_config = ConfigDict(extra="allow")
    type: str
    text: str | None = None


class ChatMessage(BaseModel):
    """One message of the conversation. System and developer messages are accepted and not
    used: the answerer's own instructions (answer from the sources, cite them) always apply."""

    model_config = ConfigDict(extra="allow")
    role: Literal["system", "developer", "user", "assistant", "tool", "function"]
    content: str | list[ContentPart] | None = None


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="allow")
    include_usage: bool = False


class ChatCompletionRequest(BaseModel):
    """``POST /v1/chat/completions``. The last message is the question; earlier user and
    assistant turns are the conversation that follow-up questions are rewritten with."""

    model_config = ConfigDict(extra="allow")
    model: str = Field(DEFAULT_MODEL, max_length=256,
                       description=f"'{DEFAULT_MODEL}' (the server's answerer) or '{EXTRACTIVE_MODEL}'")
    messages: list[ChatMessage] = Field(min_length=1, max_length=MAX_MESSAGES)
    stream: bool | None = Field(False, description="server-sent events, as OpenAI sends them")
    stream_options: StreamOptions | None = None
    max_tokens: int | None = Field(None, ge=1, description="LLM answers: at most this many tokens "
                                   "(the server's --max-tokens is the ceiling); ignored by extractive answers")
    max_completion_tokens: int | None = Field(None, ge=1, description="the newer name of max_tokens")
    temperature: float | None = Field(None, ge=0, le=2, description="LLM answers only")
    n: int | None = Field(1, ge=1, le=1, description="one answer per request")


class AssistantMessage(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str = Field(description="the answer, with [n] markers that index citations")
    refusal: None = None
    citations: list[Citation] = Field(description="the numbered sources: the quoted sentence with its "
                                      "character offsets into the article (quote == text[start:end])")


class Choice(BaseModel):
    index: int = 0
    message: AssistantMessage
    finish_reason: Literal["stop", "length"]
    logprobs: None = None


class Usage(BaseModel):
    """LLM tokens (the prompt with its sources, the answer); 0 for extractive answers."""

    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class ChatCompletion(BaseModel):
    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[Choice]
    usage: Usage


class Delta(BaseModel):
    role: Literal["assistant"] | None = None
    content: str | None = None
    citations: list[Citation] | None = Field(None, description="on the last chunk only")


class ChunkChoice(BaseModel):
    index: int = 0
    delta: Delta
    finish_reason: Literal["stop", "length"] | None = None
    logprobs: None = None


class ChatCompletionChunk(BaseModel):
    """One server-sent event of a streamed completion (``data: {...}``); ``data: [DONE]`` ends it."""

    id: str
    object: Literal["chat.completion.chunk"] = "chat.completion.chunk"
    created: int
    model: str
    choices: list[ChunkChoice]
    usage: Usage | None = None


class ModelCard(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str = "football-rag"


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]


# ------------------------------------------------------------------ native API


class AskRequest(BaseModel):
    """``POST /v1/ask``: one question, with the options of ``rag ask``."""

    model_config = ConfigDict(extra="forbid")
    question: str = Field(min_length=1, max_length=MAX_QUESTION_CHARS)
    top_k: int | None = Field(None, ge=1, le=MAX_TOP_K, description="passages to retrieve (server default 5)")
    since: str | None = Field(None, max_length=64, description="only articles dated on or after (YYYY-MM-DD)")
    until: str | None = Field(None, max_length=64, description="only articles dated on or before (YYYY-MM-DD)")
    mode: Literal["extractive", "llm"] | None = Field(None, description="default: llm when the server has a model")


class PassageOut(BaseModel):
    article_id: str
    title: str
    date: str | None
    source: str
    chunk_id: int
    text: str
    start: int
    end: int
    score: float
    dense_rank: int | None
    lexical_rank: int | None


class AnswerOut(BaseModel):
    """The whole Answer, as ``rag ask --json`` prints it."""

    question: str
    text: str
    citations: list[Citation]
    passages: list[PassageOut]
    abstained: bool
    mode: str
    short_answer: str | None
    unsupported: list[str]
    timings: Timings
    retrieval_query: str | None
    confidence: float | None = Field(None, description="extractive answers: P(the answer is right); below the "
                                                        "answerer's threshold it gives only the closest evidence")


class ArticleList(BaseModel):
    articles: list[ArticleInfo]
    count: int


class Rejected(BaseModel):
    file: str
    reason: str


class UploadReport(BaseModel):
    """What became of each uploaded file: indexed (added, updated, skipped, failed) or refused
    before indexing (name, type, size)."""

    items: list[IngestItem]
    rejected: list[Rejected]
    summary: str


class Removed(BaseModel):
    id: str
    title: str
    deleted: bool = True


class Health(BaseModel):
    status: Literal["ok"] = "ok"
