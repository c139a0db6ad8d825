"""The data model: one dataclass per pipeline stage result.

Offsets (``start``/``end``) are always character offsets into ``Article.text`` so that any
citation can be highlighted in the UI and asserted in a test with ``text[start:end]``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any


@dataclass(frozen=True)
class Article:
    """A parsed article. ``id`` is stable across re-ingestion of the same source."""

    id: str
    title: str
    date: str | None  # ISO "YYYY-MM-DD", or None when the source gives no date
    source: str  # file path (plus "#n" for records inside a JSONL/CSV/JSON array)
    text: str


@dataclass(frozen=True)
class Chunk:
    """A span of an article's text; ``text == article.text[start:end]``."""

    id: int
    article_id: str
    ordinal: int
    text: str
    start: int
    end: int


@dataclass(frozen=True)
class Query:
    """A question after analysis: what retrieval and answering actually use."""

    text: str
    terms: list[str]  # content words of the question, lower-cased
    expanded: list[str]  # extra phrases from the alias table (e.g. "real madrid" for "los blancos")
    kind: str  # when / who / which / how_many / where / what / other
    since: str | None = None
    until: str | None = None
    rarity: dict[str, float] = field(default_factory=dict, compare=False)  # term -> 0..1 IDF in the index


@dataclass
class Passage:
    """A retrieved chunk with its article and how each retriever ranked it (None = not found)."""

    chunk: Chunk
    article: Article
    score: float
    dense_rank: int | None = None
    lexical_rank: int | None = None

    @property
    def source(self) -> str:
        return self.article.source


@dataclass
class Citation:
    """A numbered source: the exact sentence ``quote == article.text[start:end]``."""

    n: int
    article_id: str
    title: str
    date: str | None
    source: str
    quote: str
    start: int
    end: int
    supported: bool = True
    support: float = 1.0  # 0..1, how well the quote supports the claim that cites it


@dataclass
class Timings:
    """Milliseconds spent per stage, for the CLI's --verbose output and the benchmarks."""

    retrieve_ms: float = 0.0
    answer_ms: float = 0.0
    total_ms: float = 0.0
    first_token_ms: float | None = None  # question to first streamed answer text (LLM mode)
    prompt_tokens: int | None = None  # LLM mode: tokens in the rendered prompt
    generated_tokens: int | None = None  # LLM mode: tokens generated for the answer


@dataclass
class Answer:
    """What ``ask`` returns. ``text`` carries ``[n]`` markers that index ``citations``."""

    question: str
    text: str
    citations: list[Citation]
    passages: list[Passage]
    abstained: bool
    mode: str  # "extractive" or "llm"
    short_answer: str | None = None
    unsupported: list[str] = field(default_factory=list)  # answer sentences lacking support
    timings: Timings = field(default_factory=Timings)
    retrieval_query: str | None = None  # the standalone question used for retrieval
    confidence: float | None = None  # extractive: P(the answer is right); below the threshold it abstains

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (used by ``rag ask --json``); passages carry no article text."""
        d = asdict(replace(self, passages=[]))  # passages are summarised below: do not deep-copy their articles
        d["passages"] = [
            {
                "article_id": p.article.id,
                "title": p.article.title,
                "date": p.article.date,
                "source": p.article.source,
                "chunk_id": p.chunk.id,
                "text": p.chunk.text,
                "start": p.chunk.start,
                "end": p.chunk.end,
                "score": p.score,
                "dense_rank": p.dense_rank,
                "lexical_rank": p.lexical_rank,
            }
            for p in self.passages
        ]
        return d


@dataclass
class IngestItem:
    """The outcome for one source: status is added / updated / skipped / failed."""

    source: str
    status: str
    article_id: str | None = None
    reason: str | None = None
    chunks: int = 0
    note: str | None = None  # stored, but something in it was not used (e.g. a date not understood)


@dataclass
class IngestReport:
    """The outcome of one ``add`` call; a bad file never aborts the batch."""

    items: list[IngestItem] = field(default_factory=list)
    seconds: float = 0.0

    def _count(self, status: str) -> int:
        return sum(1 for i in self.items if i.status == status)

    @property
    def added(self) -> int:
        return self._count("added")

    @property
    def updated(self) -> int:
        return self._count("updated")

    @property
    def skipped(self) -> int:
        return self._count("skipped")

    @property
    def failed(self) -> int:
        return self._count("failed")

    @property
    def chunks(self) -> int:
        return sum(i.chunks for i in self.items)

    def summary(self) -> str:
        return (
            f"{self.added} added, {self.updated} updated, {self.skipped} skipped, "
            f"{self.failed} failed ({self.chunks} chunks, {self.seconds:.1f}s)"
        )


@dataclass(frozen=True)
class ArticleInfo:
    """A row of ``rag index list``."""

    id: str
    title: str
    date: str | None
    source: str
    chunks: int


@dataclass(frozen=True)
class IndexStats:
    """What ``rag index stats`` prints."""

    articles: int
    chunks: int
    embedder: str
    dimension: int
    generation: int
    faiss_type: str
    size_bytes: int
    path: str
