"""football-rag: cited answers to questions over football news articles, fully local.

    from rag import ask
    print(ask("When does Alonso's contract expire?").text)

The public surface is ``Assistant``, ``ask`` and ``Answer`` (plus the other result dataclasses
in ``rag.models`` and the errors in ``rag.errors``). Heavy libraries load on first use.
"""

from .assistant import Assistant, ask
from .errors import RagError
from .models import Answer, Article, Chunk, Citation, IngestReport, Passage

__all__ = ["Assistant", "ask", "Answer", "Article", "Chunk", "Citation", "IngestReport", "Passage", "RagError"]
__version__ = "0.1.0"
