"""The native API: ask with the options of ``rag ask``, manage the articles, read the stats.

``POST /v1/ask`` returns the whole Answer as ``rag ask --json`` prints it (passages, timings,
the standalone question). ``POST /v1/articles`` takes multipart file uploads and runs them
through the chat's own upload path (``ui.backend.ChatBackend.add_uploads``): the same safe
names, suffix whitelist, 10 MB cap, copy into ``<index>/uploads`` through a temporary file and a
rename, and the previous upload of a name restored when its replacement fails to index.
``DELETE /v1/articles/{id}`` removes an article (and a file uploaded for it). ``/healthz`` needs
no key, for load balancers and container health checks.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import asdict
from pathlib import Path
from typing import Any

import anyio
from fastapi import APIRouter, Depends, File, Request, Response, UploadFile

from ..errors import InputError
from ..models import IndexStats, IngestReport
from .chat_api import server_timing
from .guard import ApiError, require_key
from .schemas import (
    DEFAULT_MODEL,
    ERROR_RESPONSES,
    EXTRACTIVE_MODEL,
    AnswerOut,
    ArticleList,
    AskRequest,
    ErrorResponse,
    Health,
    Removed,
    UploadReport,
)
from .state import ServerState, final_answer

MAX_FILES_PER_UPLOAD = 20

router = APIRouter(prefix="/v1", dependencies=[Depends(require_key)], responses=ERROR_RESPONSES, tags=["native"])
health_router = APIRouter(tags=["native"])


def _state(request: Request) -> ServerState:
    return request.app.state.rag


@router.post("/ask", response_model=AnswerOut, summary="Answer one question, with everything behind the answer")
async def ask(body: AskRequest, request: Request, response: Response) -> dict[str, Any]:
    state = _state(request)
    if body.mode == "llm" and not state.has_llm:
        raise ApiError(400, "mode 'llm' needs a model: start the server with --model GGUF", param="mode")
    model = EXTRACTIVE_MODEL if body.mode == "extractive" else DEFAULT_MODEL

    def answer() -> dict[str, Any]:
        done = final_answer(state.answer_stream(body.question, model=model, top_k=body.top_k, since=body.since,
                                                until=body.until))
        response.headers["Server-Timing"] = server_timing(done)
        return done.to_dict()

    return await anyio.to_thread.run_sync(answer)  # one hop (see chat_api.chat_completions)


@router.get("/articles", response_model=ArticleList, summary="The indexed articles")
async def list_articles(request: Request) -> dict[str, Any]:
    rows = await anyio.to_thread.run_sync(_state(request).backend.articles)
    return {"articles": [asdict(a) for a in rows], "count": len(rows)}


@router.post("/articles", response_model=UploadReport, summary="Add article files (multipart upload)")
def upload_articles(request: Request,
                    files: list[UploadFile] = File(description=".txt .md .html .json .jsonl .csv files, "
                                                               "10 MB each at most")) -> dict[str, Any]:
    """Each file is reported as added, updated, skipped or failed (with the reason), or as
    rejected before indexing (an unsupported type, an empty or oversized file)."""
    from ui.render import sanitize_filename

    if len(files) > MAX_FILES_PER_UPLOAD:
        raise ApiError(400, f"{len(files)} files in one upload; the limit is {MAX_FILES_PER_UPLOAD}", param="files")
    backend = _state(request).backend
    rejected: list[tuple[str, str]] = []
    with tempfile.TemporaryDirectory(prefix="rag-upload-") as tmp:
        paths: list[Path] = []
        for i, f in enumerate(files):
            shown = f.filename or f"file {i + 1}"
            try:
                name = sanitize_filename(shown)
            except InputError as e:
                rejected.append((shown, str(e)))
                continue
            path = Path(tmp) / str(i) / name  # one folder per file: same names reach the backend's check
            path.parent.mkdir()
            with path.open("wb") as out:
                shutil.copyfileobj(f.file, out)
            paths.append(path)
        report = IngestReport()
        if paths:
            result = backend.add_uploads(paths)
            report = result.report
            rejected += result.rejected
    return {"items": [asdict(i) for i in report.items],
            "rejected": [{"file": name, "reason": reason} for name, reason in rejected],
            "summary": report.summary() + (f"; {len(rejected)} rejected" if rejected else "")}


@router.delete("/articles/{article_id}", response_model=Removed, summary="Remove an article",
               responses={404: {"model": ErrorResponse, "description": "no article with this id"}})
def delete_article(article_id: str, request: Request) -> dict[str, Any]:
    backend = _state(request).backend
    if not any(a.id == article_id for a in backend.articles()):
        raise ApiError(404, f"no article with id '{article_id}' (see GET /v1/articles)",
                       param="article_id", code="not_found")
    info = backend.remove(article_id)
    return {"id": info.id, "title": info.title, "deleted": True}


@router.get("/stats", response_model=IndexStats, summary="Index statistics, as `rag index stats` prints them")
async def stats(request: Request) -> dict[str, Any]:
    return asdict(await anyio.to_thread.run_sync(_state(request).assistant.stats))


@health_router.get("/healthz", response_model=Health, summary="Liveness: no key needed")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}
