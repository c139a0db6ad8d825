"""What the routes share, and which answerer answers a request.

One ``ServerState`` per app: the Assistant, the chat's ``ChatBackend`` (the same object the
mounted chat uses, so uploads from the page and from the API take the same lock and the same
checks), the API key and the failure limiter. Nothing about a conversation is kept here: every
request brings its own history, so concurrent clients never see each other's turns.

A request's model picks the answerer: ``football-rag`` is the server's own (the LLM when one is
configured), ``football-rag-extractive`` always extractive. ``max_tokens`` and ``temperature``
apply to LLM answers through a per-request view of the Assistant that shares the loaded model
and its lock (``LlamaCppAnswerer.with_settings``); the server's ``--max-tokens`` stays the
ceiling, so a client cannot make generation longer than the operator allowed.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from ..models import Answer
from .guard import ApiError, FailureLimiter
from .schemas import DEFAULT_MODEL, EXTRACTIVE_MODEL

MODEL_IDS = (DEFAULT_MODEL, EXTRACTIVE_MODEL)


@dataclass
class ServerState:
    """Shared by every request; see the module docstring."""

    assistant: Any
    backend: Any  # ui.backend.ChatBackend
    api_key: str | None = None
    limiter: FailureLimiter = field(default_factory=FailureLimiter)
    created: int = field(default_factory=lambda: int(time.time()))

    @property
    def has_llm(self) -> bool:
        return bool(self.backend.has_llm)

    def answer_stream(self, question: str, *, model: str = DEFAULT_MODEL,
                      history: Iterable[tuple[str, Any]] = (), top_k: int | None = None,
                      since: str | None = None, until: str | None = None, max_tokens: int | None = None,
                      temperature: float | None = None) -> Iterator[str | Answer]:
        """Text pieces, then the final Answer, from the answerer ``model`` names."""
        from ui.backend import Turn

        if model not in MODEL_IDS:
            raise ApiError(404, f"the model '{model}' does not exist; this server has {', '.join(MODEL_IDS)}",
                           param="model", code="model_not_found")
        turns = [Turn(q, a) for q, a in history]
        if model == EXTRACTIVE_MODEL or not self.has_llm:
            return self.backend.ask_stream(question, turns, top_k=top_k, since=since, until=until,
                                           mode="extractive")
        target = self._llm_view(max_tokens, temperature)
        kwargs: dict[str, Any] = {"top_k": top_k, "since": since or None, "until": until or None}
        if turns:
            kwargs["history"] = [(t.question, t.answer) for t in turns]
        return target.ask_stream(question, **kwargs)

    def _llm_view(self, max_tokens: int | None, temperature: float | None) -> Any:
        answerer = self.assistant.answerer
        settings = getattr(answerer, "settings", None)
        with_settings = getattr(answerer, "with_settings", None)
        if settings is None or not callable(with_settings):
            return self.assistant
        changes: dict[str, Any] = {}
        if max_tokens is not None and max_tokens < settings.max_tokens:
            changes["max_tokens"] = max_tokens
        if temperature is not None and temperature != settings.temperature:
            changes["temperature"] = float(temperature)
        if not changes:
            return self.assistant
        view = copy.copy(self.assistant)  # shares store, embedder and retriever; only the answerer differs
        view.answerer = with_settings(**changes)
        return view

    def max_tokens(self) -> int | None:
        """The server's ceiling for LLM answers, or None without a model."""
        settings = getattr(self.assistant.answerer, "settings", None)
        return getattr(settings, "max_tokens", None) if self.has_llm else None


def final_answer(stream: Iterator[str | Answer]) -> Answer:
    """Runs a stream to its end; the Answer it finishes with."""
    answer = None
    for item in stream:
        if isinstance(item, Answer):
            answer = item
    if answer is None:  # the Assistant's contract is that every stream ends with its Answer
        raise RuntimeError("the answer stream ended without an Answer")
    return answer
