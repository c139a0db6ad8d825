"""The ``rag`` command line.

Heavy libraries (torch, sentence-transformers, FAISS, llama.cpp, gradio) are imported only by
the subcommands that need them, so ``rag --help`` and ``rag index list`` start instantly. Every
``RagError`` becomes one line on stderr and exit status 2; a traceback means a bug.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

EXIT_USER_ERROR = 2


def _add_index_opts(p: argparse.ArgumentParser) -> None:
    p.add_argument("--index", metavar="DIR|URL",
                   help="index folder, or postgresql://USER:PASSWORD@HOST:PORT/DB for an index in PostgreSQL "
                        "(default: $RAG_INDEX or ./index of the project)")
    p.add_argument("--embedder", metavar="NAME_OR_PATH",
                   help="all-MiniLM-L6-v2-int8 (ONNX), all-MiniLM-L6-v2 (PyTorch) or a sentence-transformers "
                        "model (default: int8 where onnxruntime is installed; an index keeps its own)")


def add_llm_options(p: argparse.ArgumentParser) -> None:
    """--model and the llama.cpp settings; shared by ``rag ask`` and ``rag chat``."""
    g = p.add_argument_group("LLM answers (a local GGUF model through llama.cpp)")
    g.add_argument("--model", metavar="GGUF",
                   help="GGUF model file, or a file name from `rag model list` (default: $RAG_MODEL; "
                        "unset = extractive answers)")
    g.add_argument("--n-ctx", type=int, metavar="N", help="context window in tokens (default 4096)")
    g.add_argument("--threads", type=int, metavar="N", help="CPU threads (default: physical cores)")
    g.add_argument("--max-tokens", type=int, metavar="N", help="longest answer in tokens (default 256)")
    g.add_argument("--temperature", type=float, metavar="T", help="sampling temperature (default 0: reproducible)")


def llm_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    """``model=`` and ``llm=`` for ``Assistant`` from the options of ``add_llm_options``."""
    from .errors import ConfigError
    from .llm import LLMSettings

    given = {k: v for k, v in (("n_ctx", args.n_ctx), ("n_threads", args.threads), ("max_tokens", args.max_tokens),
                               ("temperature", args.temperature)) if v is not None}
    if given and not (args.model or os.environ.get("RAG_MODEL")):
        flag = "--" + next(iter(given)).replace("n_threads", "threads").replace("_", "-")
        raise ConfigError(f"{flag} needs a model (--model GGUF or $RAG_MODEL)")
    return {"model": args.model, "llm": LLMSettings(**given) if given else None}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rag", description="Ask questions of your football news articles; answers cite their sources.")
    parser.add_argument("--version", action="version", version="football-rag 0.1.0")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    ask = sub.add_parser("ask", help="answer a question with numbered citations")
    ask.add_argument("question", help="the question, in quotes")
    _add_index_opts(ask)
    ask.add_argument("--top-k", type=int, default=5, metavar="N", help="passages to retrieve (default 5)")
    ask.add_argument("--since", metavar="YYYY-MM-DD", help="only articles dated on or after this day")
    ask.add_argument("--until", metavar="YYYY-MM-DD", help="only articles dated on or before this day")
    ask.add_argument("--json", action="store_true", help="print the Answer as JSON")
    ask.add_argument("--verbose", "-v", action="store_true", help="also print retrieved passages and timings")
    ask.add_argument("--reranker", metavar="NAME_OR_PATH",
                     help="a sentence-transformers CrossEncoder to rerank passages (default: none)")
    add_llm_options(ask)

    chat = sub.add_parser("chat", help="serve the chat page (Gradio) at http://127.0.0.1:7860")
    _add_index_opts(chat)
    chat.add_argument("--host", default="127.0.0.1", metavar="HOST",
                      help="address to bind (default 127.0.0.1; 0.0.0.0 exposes it on the network)")
    chat.add_argument("--port", type=int, default=7860, metavar="PORT", help="port (default 7860)")
    chat.add_argument("--auth", metavar="USER:PASSWORD", help="require this login to use the page")
    chat.add_argument("--top-k", type=int, default=5, metavar="N", help="default passages per answer (default 5)")
    add_llm_options(chat)

    index = sub.add_parser("index", help="manage the articles in the index")
    isub = index.add_subparsers(dest="index_command", metavar="ACTION")
    isub.required = True
    add = isub.add_parser("add", help="index files or folders (.txt .md .html .json .jsonl .csv)")
    add.add_argument("paths", nargs="+", metavar="PATH")
    _add_index_opts(add)
    add.add_argument("--json", action="store_true", help="print the report as JSON")
    lst = isub.add_parser("list", help="list indexed articles")
    _add_index_opts(lst)
    lst.add_argument("--json", action="store_true")
    rm = isub.add_parser("rm", help="remove an article by id")
    rm.add_argument("ids", nargs="+", metavar="ID")
    _add_index_opts(rm)
    st = isub.add_parser("stats", help="index statistics")
    _add_index_opts(st)
    st.add_argument("--json", action="store_true")
    cp = isub.add_parser("copy", help="copy an index to another store (folder <-> PostgreSQL), without "
                                      "embedding again; run again to resume")
    cp.add_argument("src", metavar="SRC", help="the index to copy: a folder or a postgresql:// URL")
    cp.add_argument("dst", metavar="DST", help="where to: a folder or a postgresql:// URL (created if new)")
    cp.add_argument("--json", action="store_true", help="print the report as JSON")

    model = sub.add_parser("model", help="download and list GGUF models for LLM answers")
    msub = model.add_subparsers(dest="model_command", metavar="ACTION")
    msub.required = True
    pull = msub.add_parser("pull", help="download a GGUF file from the Hugging Face Hub (needs a network)")
    pull.add_argument("repo", metavar="REPO", help="Hub repository, e.g. bartowski/Qwen2.5-1.5B-Instruct-GGUF")
    pull.add_argument("file", metavar="FILE", help="GGUF file in it, e.g. Qwen2.5-1.5B-Instruct-Q4_K_M.gguf")
    pull.add_argument("--dir", metavar="DIR", help="model cache (default: $RAG_MODEL_DIR or ~/.cache/football-rag/models)")
    pull.add_argument("--force", action="store_true", help="download again even if cached")
    mlist = msub.add_parser("list", help="list cached GGUF models")
    mlist.add_argument("--dir", metavar="DIR", help="model cache (default: $RAG_MODEL_DIR or ~/.cache/football-rag/models)")

    ev = sub.add_parser("eval", help="measure answer quality on a QA file (JSONL)")
    ev.add_argument("qa", metavar="QA.jsonl", help="questions with accepted answers and gold files")
    ev.add_argument("--corpus", metavar="DIR",
                    help="index this folder first (into --index, or a cache folder reused across runs)")
    _add_index_opts(ev)
    ev.add_argument("--top-k", type=int, default=5, metavar="N", help="passages per answer (default 5)")
    ev.add_argument("--retrieval", choices=["hybrid", "rrf", "dense", "bm25"], default="hybrid",
                    help="retrieval method: hybrid (default) or a baseline")
    ev.add_argument("--reranker", metavar="NAME_OR_PATH",
                    help="a sentence-transformers CrossEncoder to rerank passages (default: none)")
    ev.add_argument("--json", action="store_true", help="print the full report as JSON")
    ev.add_argument("--verbose", "-v", action="store_true", help="list every question, not only the misses")
    add_llm_options(ev)
    return parser


def _assistant(args: argparse.Namespace, **kw: Any):
    from .assistant import Assistant

    return Assistant(args.index, embedder=args.embedder, **kw)


def _display_source(source: str) -> str:
    try:
        return os.path.relpath(source) if Path(source).is_absolute() and not os.path.relpath(source).startswith("../..") else source
    except ValueError:
        return source


def print_answer(answer, out=None, *, verbose: bool = False, text: bool = True) -> None:
    """The answer (unless it was streamed already), then its numbered sources with title, date,
    file and quote."""
    out = out or sys.stdout
    if text:
        print(answer.text, file=out)
    if answer.citations:
        print("\nSources:", file=out)
        for c in answer.citations:
            flag = "" if c.supported else "  (weak support)"
            print(f"  [{c.n}] {c.title} ({c.date or 'undated'}) — {_display_source(c.source)}{flag}", file=out)
            print(f"      “{' '.join(c.quote.split())}”  (chars {c.start}-{c.end})", file=out)
    if getattr(answer, "unsupported", None):
        print("\nNot supported by the cited sources:", file=out)
        for s in answer.unsupported:
            print(f"  - {s}", file=out)
    if verbose:
        print("\nRetrieved passages:", file=out)
        for i, p in enumerate(answer.passages, start=1):
            print(f"  {i}. {p.article.id} #{p.chunk.ordinal} score={p.score:.4f} dense={p.dense_rank} "
                  f"bm25={p.lexical_rank}: {p.chunk.text[:90]!r}", file=out)
        t = answer.timings
        print(f"\nTimings: retrieve {t.retrieve_ms:.1f} ms, answer {t.answer_ms:.1f} ms, total {t.total_ms:.1f} ms",
              file=out)
        if getattr(t, "first_token_ms", None) is not None:
            gen_s = (t.total_ms - t.first_token_ms) / 1000
            rate = f", {(t.generated_tokens - 1) / gen_s:.1f} tokens/s" if t.generated_tokens and t.generated_tokens > 1 and gen_s > 0 else ""
            print(f"LLM: first token after {t.first_token_ms:.0f} ms, prompt {t.prompt_tokens} tokens, "
                  f"answer {t.generated_tokens} tokens{rate}", file=out)


def cmd_ask(args: argparse.Namespace) -> int:
    assistant = _assistant(args, top_k=args.top_k, reranker=args.reranker, **llm_kwargs(args))
    if args.json or assistant.answerer.mode != "llm":
        answer = assistant.ask(args.question, since=args.since, until=args.until)
        if args.json:
            print(json.dumps(answer.to_dict(), ensure_ascii=False, indent=2))
        else:
            print_answer(answer, verbose=args.verbose)
        return 0
    answer = None
    for item in assistant.ask_stream(args.question, since=args.since, until=args.until):
        if isinstance(item, str):
            sys.stdout.write(item)
            sys.stdout.flush()
        else:
            answer = item
    sys.stdout.write("\n")
    print_answer(answer, verbose=args.verbose, text=False)
    return 0


def cmd_model(args: argparse.Namespace) -> int:
    from . import model_cache

    if args.model_command == "pull":
        m = model_cache.pull(args.repo, args.file, cache_dir=args.dir, force=args.force)
        state = "downloaded" if m.downloaded else "already cached"
        print(f"{state}: {m.path} ({m.size_bytes / 1e6:.0f} MB)\nuse it with: rag ask --model {m.path} \"QUESTION\"")
        return 0
    if args.model_command == "list":
        rows = model_cache.list_cached(args.dir)
        for m in rows:
            print(f"{m.path}\t{m.size_bytes / 1e6:.0f} MB\t{m.repo}")
        print(f"{len(rows)} models in {args.dir or model_cache.default_model_dir()}")
        return 0
    raise AssertionError(args.model_command)


def cmd_index(args: argparse.Namespace) -> int:
    if args.index_command == "copy":
        return cmd_index_copy(args)
    assistant = _assistant(args, seed=False if args.index_command == "add" else None)
    if args.index_command == "add":
        report = assistant.add(args.paths, progress=not args.json and sys.stderr.isatty())
        if args.json:
            from dataclasses import asdict

            print(json.dumps({"items": [asdict(i) for i in report.items], "seconds": report.seconds}, indent=2))
        else:
            for item in report.items:
                if item.status == "failed":
                    print(f"failed   {item.reason}", file=sys.stderr)
                elif item.status == "skipped":
                    print(f"skipped  {_display_source(item.source)} ({item.reason})")
                else:
                    print(f"{item.status:<8} {_display_source(item.source)} -> {item.article_id} ({item.chunks} chunks)")
            print(report.summary())
        return 1 if report.failed and not (report.added or report.updated or report.skipped) else 0
    if args.index_command == "list":
        rows = assistant.articles()
        if args.json:
            from dataclasses import asdict

            print(json.dumps([asdict(r) for r in rows], ensure_ascii=False, indent=2))
        else:
            for r in rows:
                print(f"{r.id}\t{r.date or '----------'}\t{r.chunks:>3} chunks\t{r.title}")
            print(f"{len(rows)} articles")
        return 0
    if args.index_command == "rm":
        for aid in args.ids:
            assistant.remove(aid)
            print(f"removed {aid}")
        return 0
    if args.index_command == "stats":
        st = assistant.stats()
        if args.json:
            from dataclasses import asdict

            print(json.dumps(asdict(st), indent=2))
        else:
            vectors = "vectors:  " if st.path.startswith("postgresql://") else "faiss:    "
            print(f"index:     {st.path}\narticles:  {st.articles}\nchunks:    {st.chunks}\n"
                  f"embedder:  {st.embedder} ({st.dimension}-dim)\n{vectors} {st.faiss_type}\n"
                  f"generation {st.generation}\nsize:      {st.size_bytes / 1e6:.2f} MB")
        return 0
    raise AssertionError(args.index_command)


def cmd_index_copy(args: argparse.Namespace) -> int:
    from dataclasses import asdict

    from .transfer import copy_index

    report = copy_index(args.src, args.dst, progress=not args.json and sys.stderr.isatty())
    print(json.dumps(asdict(report), indent=2) if args.json else report.summary())
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from .assistant import Assistant
    from .embed import make_embedder
    from .errors import ConfigError
    from .evaluate import eval_index_dir, evaluate, load_records, sync_corpus
    from .stores import describe_index

    if args.top_k < 1:
        raise ConfigError(f"--top-k must be at least 1, got {args.top_k}")
    records = load_records(args.qa)
    embedder = args.embedder
    index = args.index
    if index is None and args.corpus:
        embedder = make_embedder(args.embedder)  # the cache folder is keyed by the embedder's name
        index = eval_index_dir(args.corpus, embedder.name)
    assistant = Assistant(index, embedder=embedder, seed=False if args.corpus else None,
                          top_k=args.top_k, quiet=True, reranker=args.reranker, **llm_kwargs(args))
    assistant.retriever.config = replace(assistant.retriever.config, mode=args.retrieval)
    if args.corpus:
        if sys.stderr.isatty():
            print(f"Indexing {args.corpus} into {describe_index(assistant.index_dir)}…", file=sys.stderr)
        sync_corpus(assistant, args.corpus)
    tty = sys.stderr.isatty()

    def progress(done: int, total: int) -> None:
        if tty:
            print(f"\r{done}/{total} questions", end="" if done < total else "\n", file=sys.stderr, flush=True)

    report = evaluate(assistant, records, top_k=args.top_k, name=Path(args.qa).name, progress=progress)
    if args.json:
        print(json.dumps(report.to_dict(), ensure_ascii=False, indent=2))
    else:
        print(report.table(per_question=args.verbose))
    return 0


def cmd_chat(args: argparse.Namespace) -> int:
    from ui.config import check_port, parse_auth

    auth = parse_auth(args.auth)  # bad options fail before anything heavy loads
    check_port(args.port)
    from ui.app import serve

    assistant = _assistant(args, top_k=args.top_k, **llm_kwargs(args))
    serve(assistant, host=args.host, port=args.port, auth=auth)
    return 0


COMMANDS = {"ask": cmd_ask, "index": cmd_index, "eval": cmd_eval, "model": cmd_model, "chat": cmd_chat}


def main(argv: list[str] | None = None) -> int:
    from .errors import RagError

    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except RagError as e:
        print(f"rag: error: {e}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print("rag: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
