"""Benchmarks for the sources beyond files: feeds, the watched folder, article extraction.

- feeds: a feed of 50 entries (invented match reports, each page wrapped in menus, a cookie
  banner and a footer) served by a local HTTP server, indexed by one ``Feeds.update``; then a
  second update with nothing new, counting its requests. Targets: all 50 indexed in the first
  update; the second makes one (conditional) request and no page requests.
- watch: a file dropped into a watched folder, timed until a question only it answers is
  answered from it, with the default embedder warm and the default debounce. Target: 5 s.
- extract: trafilatura against the hand-written parser it replaced, on the fixture pages
  (bench/extract.py): paragraphs kept, boilerplate leaked, precision.
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(ROOT))

WATCH_QUESTION = "How much did Harbour Athletic pay for Lumo Verrant in round {i}?"
WATCH_ARTICLE = """date 2024-05-01
Harbour Athletic sign striker Lumo Verrant in round {i}

Harbour Athletic have signed striker Lumo Verrant from Vale Rovers for {fee} million euros in transfer round {i}.
"""


def bench_feeds(res, work: Path, embedder: str | None) -> None:
    from rag import Assistant
    from tests.webserver import WebServer, match_feed

    with WebServer() as web:
        url = match_feed(web, 50)
        a = Assistant(work / "feeds-index", embedder=embedder, seed=False, quiet=True)
        try:
            a.embedder.encode(["warm up"])
            a.feeds.add(url, update=False)
            t0 = time.perf_counter()
            first = a.feeds.update()
            took = time.perf_counter() - t0
            f = first.feeds[0]
            res.add("feeds", "entries indexed by one update (of 50)", f.count("added"), "", ">= 50")
            res.add("feeds", "first update (50 pages fetched, extracted, embedded)", took, "s")
            res.add("feeds", "page requests in the first update", f.page_requests, "")
            web.reset_log()
            t0 = time.perf_counter()
            second = a.feeds.update().feeds[0]
            res.add("feeds", "second update, nothing new: requests", len(web.requests), "", "<= 1")
            res.add("feeds", "second update: page requests", second.page_requests, "", "<= 0")
            res.add("feeds", "second update", (time.perf_counter() - t0) * 1000, "ms")
            cond = web.requests[0].headers.get("if-none-match") if web.requests else None
            res.sections["feeds"] = {"second_update_status": second.status, "conditional_header": cond}
        finally:
            a.close()


def bench_watch(res, work: Path, embedder: str | None, rounds: int = 3) -> None:
    from rag import Assistant
    from rag.watch import FolderWatcher

    folder = work / "watched"
    folder.mkdir()
    a = Assistant(work / "watch-index", embedder=embedder, seed=ROOT / "seeds", quiet=True)
    times = []
    try:
        a.articles()  # the seeds are indexed and the embedder is warm before the clock starts
        a.ask("When does Alonso's contract expire?")
        with FolderWatcher(a, folder):
            for i in range(rounds):
                path = folder / f"verrant-{i}.txt"
                t0 = time.perf_counter()
                path.write_text(WATCH_ARTICLE.format(i=i, fee=40 + i), encoding="utf-8")
                while True:
                    ans = a.ask(WATCH_QUESTION.format(i=i))
                    if ans.citations and ans.citations[0].source == str(path.resolve()) and f"{40 + i} million" in ans.text:
                        break
                    if time.perf_counter() - t0 > 60:
                        raise RuntimeError("the dropped file was not answerable within 60 s")
                    time.sleep(0.02)
                times.append(time.perf_counter() - t0)
    finally:
        a.close()
    res.add("watch", "file dropped -> answerable (max of %d)" % rounds, max(times), "s", "<= 5")
    res.add("watch", "file dropped -> answerable (median)", statistics.median(times), "s")


def bench_extract(res) -> None:
    sys.path.insert(0, str(BENCH))
    from extract import measure

    rows = measure()
    res.sections["extract"] = [r.__dict__ for r in rows]
    for name in ("trafilatura", "baseline"):
        mine = [r for r in rows if r.extractor == name]
        label = "trafilatura" if name == "trafilatura" else "hand-written parser (before)"
        res.add("extract", f"{label}: article paragraphs kept", statistics.mean(r.paragraphs for r in mine), "",
                ">= 1" if name == "trafilatura" else "")
        res.add("extract", f"{label}: boilerplate strings leaked", sum(r.boilerplate_leaked for r in mine),
                f"of {sum(r.boilerplate_total for r in mine)}", "<= 0" if name == "trafilatura" else "")
        res.add("extract", f"{label}: precision (mean)", statistics.mean(r.precision for r in mine), "")
        res.add("extract", f"{label}: titles and dates right", sum(r.title_ok + r.date_ok for r in mine),
                f"of {2 * len(mine)}")
        res.add("extract", f"{label}: time per page (median)", statistics.median(r.ms for r in mine), "ms")


if __name__ == "__main__":  # python bench/sources.py: these sections alone
    sys.path.insert(0, str(BENCH))
    import run

    sys.exit(run.main(["--only", "feeds,watch,extract", *sys.argv[1:]]))

