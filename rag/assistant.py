"""The public entry point: ``Assistant`` ties store, embedder, retriever and answerer together.

Construction is cheap: the store opens (SQLite only) and nothing heavy loads until the first
question or ingest, so ``rag index list`` stays fast and a UI can start before the model is warm.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from .answer import Answerer, ExtractiveAnswerer
from .embed import Embedder, make_embedder, minilm_variant
from .errors import ConfigError, IndexAccessError, InputError
from .followup import Rewrite, check_history, rewrite
from .indexer import FairLock, Indexer, Progress
from .llm import LlamaCppAnswerer, LLMSettings, resolve_model
from .ingest import ParsedSource, normalise_date
from .models import Answer, ArticleInfo, IndexStats, IngestReport, Passage
from .rerank import CrossEncoderReranker, make_reranker
from .retrieve import RetrievalConfig, Retriever
from .store import DB_NAME
from .stores import describe_index, index_exists, open_store, resolve_index, stored_embedder

if TYPE_CHECKING:  # feeds and fetching load only when used: `rag ask` stays fast
    from .feeds import Feeds
    from .fetch import FetchSettings

PROJECT_ROOT = Path(__file__).resolve().parent.parent
MAX_QUESTION_CHARS = 2000


def default_index_dir() -> Path | str:
    """``$RAG_INDEX`` (a folder or a ``postgresql://`` URL), else the project's ``index/`` folder."""
    return resolve_index(None, PROJECT_ROOT / "index")


def default_seeds_dir() -> Path:
    env = os.environ.get("RAG_SEEDS")
    return Path(env).expanduser() if env else PROJECT_ROOT / "seeds"


def _check_date(name: str, value: str | None) -> str | None:
    if value is None or value == "":
        return None
    iso = normalise_date(value)
    if iso is None:
        raise ConfigError(f"{name}: '{value}' is not a date (use YYYY-MM-DD)")
    return iso


class Assistant:
    """Question answering over one index.

    Args:
        index_dir: the index folder, or a ``postgresql://user:password@host:port/db`` URL for an
            index in PostgreSQL (default: ``$RAG_INDEX`` or the project's ``index/``).
        embedder: a sentence-transformers model name or path, or an ``Embedder`` object;
            default: the packaged all-MiniLM-L6-v2, int8 in ONNX Runtime where available
            (an existing index keeps the variant it was built with; see ``rag.embed``).
        seed: when the index does not exist yet, build it from this folder first
            (default: the project's ``seeds/``; ``False`` to start empty).
        answerer: an ``Answerer``; default: the LLM answerer when a model is configured,
            else extractive.
        model: a GGUF file for LLM answers (default: ``$RAG_MODEL``; unset = extractive).
            The file is checked here; llama.cpp loads it on the first question.
        llm: context size, threads, answer length and temperature for ``model``
            (an ``rag.llm.LLMSettings``).
        top_k: passages retrieved per question.
        retrieval: fusion settings (``rag.retrieve.RetrievalConfig``).
        reranker: a sentence-transformers CrossEncoder (local path, or a name already in the
            Hugging Face cache) that reorders the fused passages; default: none.
        quiet: do not print first-use messages to stderr.
    """

    def __init__(
        self,
        index_dir: str | Path | None = None,
        *,
        embedder: str | Embedder | None = None,
        seed: str | Path | bool | None = None,
        answerer: Answerer | None = None,
        model: str | Path | None = None,
        llm: LLMSettings | None = None,
        top_k: int = 5,
        retrieval: RetrievalConfig | None = None,
        reranker: str | Path | CrossEncoderReranker | None = None,
        quiet: bool = False,
    ) -> None:
        if top_k < 1:
            raise ConfigError(f"top_k must be at least 1, got {top_k}")
        if answerer is not None and model is not None:
            raise ConfigError("give either answerer or model, not both")
        if answerer is None:
            model_path = resolve_model(model)
            if model_path is not None:
                answerer = LlamaCppAnswerer(model_path, llm)
        self.index_dir = resolve_index(index_dir, PROJECT_ROOT / "index")
        if embedder is None:  # an existing index keeps the MiniLM variant it was built with
            embedder = minilm_variant(stored_embedder(self.index_dir))
        self.embedder = make_embedder(embedder)
        fresh = not index_exists(self.index_dir)
        folder_existed = isinstance(self.index_dir, Path) and self.index_dir.exists()
        self.store = open_store(self.index_dir, embedder_name=self.embedder.name)
        # A first add that fails (the embedder cannot load, say) leaves no empty index behind.
        self._made_here = (fresh, folder_existed)
        self._discarded = False
        self.retriever = Retriever(self.store, self.embedder, retrieval, reranker=make_reranker(reranker))
        self.answerer: Answerer = answerer or ExtractiveAnswerer()
        self.top_k = top_k
        self.quiet = quiet
        self._turn = FairLock()  # ingests and removals take turns in bounded steps
        self._feeds: Feeds | None = None
        self._feeds_lock = threading.Lock()
        seeds = default_seeds_dir() if seed is None or seed is True else (Path(seed) if seed else None)
        self._pending_seed = seeds if (fresh and seeds is not None and seeds.is_dir()) else None

    # ---------------------------------------------------------------- first use

    def _ensure_seeded(self) -> None:
        if self._pending_seed is None:
            return
        seeds, self._pending_seed = self._pending_seed, None
        if self.store.count()[0]:
            return
        if not self.quiet:
            print(f"No index yet at {describe_index(self.index_dir)}: indexing the articles in {seeds} (first use)…",
                  file=sys.stderr)
        report = self.add([seeds], progress=not self.quiet)
        if not self.quiet:
            print(f"Indexed {report.summary()}", file=sys.stderr)

    # ---------------------------------------------------------------- articles

    def add(self, paths: Iterable[str | Path] | str | Path, *, progress: Progress | bool | None = None,
            fetch: FetchSettings | None = None) -> IngestReport:
        """Indexes files, folders and web pages (http(s) URLs); see ``IngestReport`` for what
        happened to each. Pages are fetched politely (``fetch``: timeouts, size cap, robots.txt)
        before the index is locked, so a slow site never holds up other writers."""
        if isinstance(paths, (str, Path)):
            paths = [paths]
        paths = list(paths)
        if not paths:
            raise InputError("no paths given")
        self._pending_seed = None
        self._check_open()
        if getattr(self.store, "read_only", False):  # before any file is read or embedded
            self.store._require_writable()
        from .web import fetch_pages, is_url

        urls = [p for p in paths if is_url(p)]
        files = [p for p in paths if not is_url(p)]
        pages = []
        if urls:
            with self.feeds.fetcher(fetch) as fetcher:
                pages = fetch_pages(fetcher, [str(u) for u in urls])
        try:
            indexer = Indexer(self.store, self.embedder, turn=self._turn)
            report = indexer.add(files, progress=progress) if files else IngestReport()
            if pages:
                web = indexer.add_sources(pages)
                report.items.extend(web.items)
                report.seconds += web.seconds
            return report
        except BaseException:
            self._discard_if_empty()
            raise

    def add_sources(self, sources: Iterable[ParsedSource | InputError], *,
                    progress: Progress | None = None) -> IngestReport:
        """Indexes articles already read (web pages, feed entries); failures are reported."""
        self._pending_seed = None
        self._check_open()
        return Indexer(self.store, self.embedder, turn=self._turn).add_sources(sources, progress=progress)

    @property
    def feeds(self) -> Feeds:
        """The feeds this index follows (``rag.feeds.Feeds``), created on first use."""
        from .feeds import Feeds

        with self._feeds_lock:
            if self._feeds is None:
                self._feeds = Feeds(self)
            return self._feeds

    def _discard_if_empty(self) -> None:
        """After a failed add: an index this Assistant created and that holds nothing is removed
        again (its files, and its folder if this Assistant made it)."""
        fresh, folder_existed = self._made_here
        if not isinstance(self.index_dir, Path):  # a database: its schema stays, it costs nothing
            return
        try:
            if not fresh or self.store.generation != 0 or self.store.count() != (0, 0):
                return
        except Exception:  # the failure may have been the store itself: leave it for inspection
            return
        self.store.close()
        self._discarded = True
        for f in list(self.index_dir.glob(f"{DB_NAME}*")) + list(self.index_dir.glob("faiss-*.index*")):
            try:
                f.unlink()
            except OSError:
                pass
        if not folder_existed:
            try:
                self.index_dir.rmdir()
            except OSError:
                pass

    def _check_open(self) -> None:
        if self._discarded:
            raise IndexAccessError(f"{self.index_dir}: the new index was removed again after its first add "
                                   "failed; make a new Assistant to try again")

    def remove(self, article_id: str) -> None:
        self._check_open()
        with self._turn:
            if not self.store.remove(article_id):
                raise InputError(f"no article with id '{article_id}' (see `rag index list`)")

    def articles(self) -> list[ArticleInfo]:
        self._check_open()
        self._ensure_seeded()
        return self.store.list_articles()

    def stats(self) -> IndexStats:
        self._check_open()
        self._ensure_seeded()
        return self.store.stats()

    # ---------------------------------------------------------------- questions

    def retrieve(self, question: str, *, top_k: int | None = None, since: str | None = None,
                 until: str | None = None) -> list[Passage]:
        query = self._query(question, since, until)
        return self.retriever.retrieve(query, top_k or self.top_k)

    def _query(self, question: str, since: str | None, until: str | None):
        if not isinstance(question, str) or not question.strip():
            raise InputError("the question is empty")
        if len(question) > MAX_QUESTION_CHARS:
            raise InputError(f"the question is {len(question)} characters; the limit is {MAX_QUESTION_CHARS}")
        since, until = _check_date("since", since), _check_date("until", until)
        if since and until and since > until:
            raise ConfigError(f"since {since} is after until {until}")
        self._check_open()
        self._ensure_seeded()
        return self.retriever.analyse(question, since=since, until=until)

    def standalone(self, question: str, history: Iterable[tuple[str, object]] | None) -> Rewrite:
        """The question as retrieval should see it: a follow-up such as "And Ancelotti's?" is
        rewritten with the conversation (by the model when one is configured)."""
        if not isinstance(question, str) or not question.strip():
            raise InputError("the question is empty")
        turns = check_history(history)
        model_rewrite = getattr(self.answerer, "rewrite", None)
        return rewrite(question, turns, model_rewrite if callable(model_rewrite) else None)

    def _prepare(self, question: str, history, top_k: int | None, since: str | None, until: str | None):
        if top_k is not None and top_k < 1:
            raise ConfigError(f"top_k must be at least 1, got {top_k}")
        t0 = time.perf_counter()
        rw = self.standalone(question, history)
        query = self._query(rw.standalone, since, until)
        passages = self.retriever.retrieve(query, top_k or self.top_k)  # checked against their articles
        return t0, rw, query, passages

    @staticmethod
    def _finish(answer: Answer, question: str, rw: Rewrite, t0: float, t1: float) -> Answer:
        t2 = time.perf_counter()
        answer.question = question
        answer.retrieval_query = rw.standalone
        answer.timings.retrieve_ms = (t1 - t0) * 1000
        answer.timings.answer_ms = (t2 - t1) * 1000
        answer.timings.total_ms = (t2 - t0) * 1000
        if answer.timings.first_token_ms is not None:
            answer.timings.first_token_ms += (t1 - t0) * 1000
        return answer

    def ask(self, question: str, *, history: Iterable[tuple[str, object]] | None = None,
            top_k: int | None = None, since: str | None = None, until: str | None = None) -> Answer:
        """Answers from the indexed articles, with numbered citations (or abstains).

        ``history`` holds earlier (question, answer) turns, oldest first; answers may be text or
        Answers. A follow-up is rewritten into a standalone question for retrieval, recorded in
        ``Answer.retrieval_query``.
        """
        t0, rw, query, passages = self._prepare(question, history, top_k, since, until)
        t1 = time.perf_counter()
        return self._finish(self.answerer.answer(query, passages), question, rw, t0, t1)

    def ask_stream(self, question: str, *, history: Iterable[tuple[str, object]] | None = None,
                   top_k: int | None = None, since: str | None = None,
                   until: str | None = None) -> Iterator[str | Answer]:
        """Yields text pieces as they are generated, then the final Answer.

        The pieces join to ``Answer.text``. The extractive answerer yields its text whole.
        """
        t0, rw, query, passages = self._prepare(question, history, top_k, since, until)
        t1 = time.perf_counter()
        stream = getattr(self.answerer, "stream", None)
        if not callable(stream):
            answer = self._finish(self.answerer.answer(query, passages), question, rw, t0, t1)
            yield answer.text
            yield answer
            return
        for item in stream(query, passages):
            yield self._finish(item, question, rw, t0, t1) if isinstance(item, Answer) else item

    def close(self) -> None:
        close = getattr(self.answerer, "close", None)
        if callable(close):
            close()
        if self._feeds is not None:
            self._feeds.store.close()
        self.store.close()


_default: dict[str, Assistant] = {}
_default_lock = threading.Lock()


def ask(question: str, index_dir: str | Path | None = None, **kwargs) -> Answer:
    """One-line convenience: ``ask("When does Alonso's contract expire?")``.

    Keeps one Assistant per index folder so repeated calls do not reload the embedder.
    """
    index = resolve_index(index_dir, PROJECT_ROOT / "index")
    key = index if isinstance(index, str) else str(index.resolve())
    with _default_lock:
        assistant = _default.get(key)
        if assistant is None:
            assistant = _default[key] = Assistant(key)
    return assistant.ask(question, **kwargs)
