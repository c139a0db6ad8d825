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

from . import cli_sources as sources
from .terminal import term

EXIT_USER_ERROR = 2


def _add_index_opts(p: argparse.ArgumentParser) -> None:
    p.add_argument("--index", metavar="DIR|URL",
                   help="index folder, or postgresql://USER:PASSWORD@HOST:PORT/DB for an index in PostgreSQL "
                        "(default: $RAG_INDEX or ./index of the project)")
    p.add_argument("--embedder", metavar="NAME_OR_PATH",
                   help="all-MiniLM-L6-v2-int8-256 (int8, ONNX), all-MiniLM-L6-v2 (fp32) or a sentence-transformers "
                        "model (default: int8 on CPUs with int8 dot-product instructions, else fp32; "
                        "$RAG_EMBED_PRECISION overrides; an index keeps its own)")


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
    chat.add_argument("--feeds-every", metavar="INTERVAL",
                      help="update the index's feeds in the background at this interval, e.g. 15m")
    add_llm_options(chat)

    from .server.cli import add_serve_parser

    add_serve_parser(sub)

    index = sub.add_parser("index", help="manage the articles in the index")
    isub = index.add_subparsers(dest="index_command", metavar="ACTION")
    isub.required = True
    add = isub.add_parser("add", help="index files, folders (.txt .md .html .json .jsonl .csv) or web pages (URLs)")
    add.add_argument("paths", nargs="+", metavar="PATH_OR_URL")
    _add_index_opts(add)
    add.add_argument("--json", action="store_true", help="print the report as JSON")
    sources.add_fetch_opts(add)
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
    chk = isub.add_parser("check", help="check the index for damage (SQLite, full-text index, vectors, checksums)")
    _add_index_opts(chk)
    chk.add_argument("--repair", action="store_true",
                     help="rebuild what can be rebuilt from the stored articles (full-text index, FAISS file)")
    chk.add_argument("--json", action="store_true", help="print the report as JSON")
    sources.add_watch_parser(isub, _add_index_opts)
    sources.add_feed_parser(sub, _add_index_opts)

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
    ev.add_argument("--split", action="append", metavar="NAME",
                    help="only the questions of this split (train, dev, test; repeatable; default: all, "
                         "each reported on its own)")
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
        print(term(answer.text), file=out)
    if answer.citations:
        print("\nSources:", file=out)
        for c in answer.citations:
            flag = "" if c.supported else "  (weak support)"
            print(term(f"  [{c.n}] {c.title} ({c.date or 'undated'}) — {_display_source(c.source)}{flag}", line=True),
                  file=out)
            print(term(f"      “{' '.join(c.quote.split())}”  (chars {c.start}-{c.end})", line=True), file=out)
    if getattr(answer, "unsupported", None):
        print("\nNot supported by the cited sources:", file=out)
        for s in answer.unsupported:
            print(term(f"  - {s}", line=True), file=out)
    if verbose:
        print("\nRetrieved passages:", file=out)
        for i, p in enumerate(answer.passages, start=1):
            print(term(f"  {i}. {p.article.id} #{p.chunk.ordinal} score={p.score:.4f} dense={p.dense_rank} "
                       f"bm25={p.lexical_rank}: {p.chunk.text[:90]!r}"), file=out)
        if getattr(answer, "confidence", None) is not None:
            print(f"\nConfidence: {answer.confidence:.2f}" + (" (below the answer threshold: closest evidence only)"
                                                           if answer.abstained and answer.citations else ""), file=out)
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
            sys.stdout.write(term(item))
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


def cmd_check(args: argparse.Namespace) -> int:
    """``rag index check``: works on an index too damaged to open as an Assistant."""
    from .assistant import default_index_dir
    from .integrity import check_index

    embedder = None
    if args.embedder:
        from .embed import make_embedder

        embedder = make_embedder(args.embedder)
    report = check_index(args.index or default_index_dir(), repair=args.repair, embedder=embedder)
    if args.json:
        print(json.dumps(report.to_dict(), ensure_ascii=False, indent=2))
    else:
        print(term(report.text()))
    return 0 if report.ok else EXIT_USER_ERROR


def cmd_index(args: argparse.Namespace) -> int:
    if args.index_command == "copy":
        return cmd_index_copy(args)
    if args.index_command == "check":
        return cmd_check(args)
    assistant = _assistant(args, seed=False if args.index_command in ("add", "watch") else None)
    if args.index_command == "watch":
        return sources.watch(assistant, args)
    if args.index_command == "add":
        report = assistant.add(args.paths, progress=not args.json and sys.stderr.isatty(),
                               fetch=sources.fetch_settings(args))
        if args.json:
            from dataclasses import asdict

            print(json.dumps({"items": [asdict(i) for i in report.items], "seconds": report.seconds}, indent=2))
        else:
            for item in report.items:
                if item.status == "failed":
                    print(term(f"failed   {item.reason}", line=True), file=sys.stderr)
                elif item.status == "skipped":
                    print(term(f"skipped  {_display_source(item.source)} ({item.reason})", line=True))
                else:
                    note = f"; {item.note}" if item.note else ""
                    print(term(f"{item.status:<8} {_display_source(item.source)} -> {item.article_id} "
                               f"({item.chunks} chunks{note})", line=True))
            print(report.summary())
        return 1 if report.failed and not (report.added or report.updated or report.skipped) else 0
    if args.index_command == "list":
        rows = assistant.articles()
        if args.json:
            from dataclasses import asdict

            print(json.dumps([asdict(r) for r in rows], ensure_ascii=False, indent=2))
        else:
            for r in rows:
                print("\t".join(term(x, line=True) for x in (r.id, r.date or "----------", f"{r.chunks:>3} chunks",
                                                              r.title)))
            print(f"{len(rows)} articles")
        return 0
    if args.index_command == "rm":
        from .errors import InputError

        missing = []
        for aid in args.ids:  # every id is tried: one unknown id does not keep the others
            try:
                assistant.remove(aid)
            except InputError:
                missing.append(aid)
                continue
            print(term(f"removed {aid}", line=True))
        if missing:
            done = len(args.ids) - len(missing)
            names = ", ".join(f"'{m}'" for m in missing)
            rest = "" if len(args.ids) == 1 else f"; {f'the other {done} removed' if done else 'nothing removed'}"
            raise InputError(f"no article with id {names} (see `rag index list`){rest}")
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


def cmd_feed(args: argparse.Namespace) -> int:
    return sources.cmd_feed(args, _assistant(args, seed=False))


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
    if args.split:
        wanted = {x.strip() for s in args.split for x in s.split(",") if x.strip()}
        present = {r.split for r in records}
        unknown = wanted - present
        if unknown:
            raise ConfigError(f"--split {', '.join(sorted(unknown))}: {args.qa} has splits {', '.join(sorted(present))}")
        records = [r for r in records if r.split in wanted]
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
    from .server.cli import run_chat  # the chat on the API's server, without the API

    return run_chat(args)


def cmd_serve(args: argparse.Namespace) -> int:
    from .server.cli import run_serve

    return run_serve(args)


COMMANDS = {"ask": cmd_ask, "index": cmd_index, "eval": cmd_eval, "model": cmd_model, "chat": cmd_chat,
            "serve": cmd_serve, "feed": cmd_feed}


def main(argv: list[str] | None = None) -> int:
    from .errors import RagError

    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except RagError as e:
        print(term(f"rag: error: {e}", line=True), file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print("rag: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
