"""The ``rag`` subcommands for sources beyond files: ``rag feed ...``, ``rag index watch`` and the
options they share (``--ignore-robots``), plus the feed refresher ``rag chat --feeds-every`` starts.

Kept apart from ``rag/cli.py`` so that the command line stays readable; like the rest of the CLI,
nothing heavy is imported until a command runs.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable

from .terminal import term


def add_fetch_opts(p: argparse.ArgumentParser) -> None:
    """``--ignore-robots``, for every command that fetches pages."""
    p.add_argument("--ignore-robots", action="store_true",
                   help="fetch pages that robots.txt asks this program not to (default: respect it)")


def fetch_settings(args: argparse.Namespace):
    """The ``FetchSettings`` a command's options ask for."""
    from .fetch import FetchSettings

    return FetchSettings(robots=not getattr(args, "ignore_robots", False))


def add_watch_parser(isub, add_index_opts: Callable[[argparse.ArgumentParser], None]) -> None:
    """``rag index watch DIR``."""
    watch = isub.add_parser("watch", help="keep the index in step with a folder: new and changed files are "
                                          "indexed, deleted ones removed (until Ctrl+C)")
    watch.add_argument("folder", metavar="DIR")
    add_index_opts(watch)
    watch.add_argument("--debounce", type=float, default=0.5, metavar="SECONDS",
                       help="quiet time before a burst of changes is indexed (default 0.5)")
    watch.add_argument("--polling", action="store_true",
                       help="poll instead of file-system events (network file systems)")


def add_feed_parser(sub, add_index_opts: Callable[[argparse.ArgumentParser], None]) -> None:
    """``rag feed add|list|rm|update``."""
    feed = sub.add_parser("feed", help="follow RSS/Atom feeds: their entries' pages are indexed")
    fsub = feed.add_subparsers(dest="feed_command", metavar="ACTION")
    fsub.required = True
    fadd = fsub.add_parser("add", help="follow a feed (or the feed a page advertises) and index its entries")
    fadd.add_argument("url", metavar="URL")
    add_index_opts(fadd)
    fadd.add_argument("--no-fetch", action="store_true", help="only store the feed; index at the next update")
    add_fetch_opts(fadd)
    flist = fsub.add_parser("list", help="list followed feeds")
    add_index_opts(flist)
    flist.add_argument("--json", action="store_true")
    frm = fsub.add_parser("rm", help="stop following a feed")
    frm.add_argument("urls", nargs="+", metavar="URL")
    add_index_opts(frm)
    frm.add_argument("--purge", action="store_true", help="also remove the articles its entries became")
    fup = fsub.add_parser("update", help="index new and changed entries of every feed (or of the ones given)")
    fup.add_argument("urls", nargs="*", metavar="URL")
    add_index_opts(fup)
    fup.add_argument("--every", metavar="INTERVAL",
                     help="keep updating at this interval, e.g. 15m or 2h (until Ctrl+C)")
    fup.add_argument("--json", action="store_true", help="print the report as JSON")
    add_fetch_opts(fup)


def watch(assistant, args: argparse.Namespace) -> int:
    """``rag index watch DIR``: catch up, then follow the folder until Ctrl+C."""
    import time

    from .watch import FolderWatcher, describe

    def show(batch) -> None:
        for line in describe(batch):
            print(f"{time.strftime('%H:%M:%S')} {line}", flush=True)

    watcher = FolderWatcher(assistant, args.folder, debounce_s=args.debounce, on_batch=show, polling=args.polling)
    first = watcher.start()
    print(f"Watching {watcher.folder} ({first.report.summary()}, {len(first.removed)} removed on start; "
          "Ctrl+C to stop)", file=sys.stderr, flush=True)
    try:
        while True:
            time.sleep(3600)
    finally:
        watcher.stop()


def print_feed(result, out=None) -> None:
    """One feed's outcome, then its entries that were added, updated or failed."""
    out = out or sys.stdout
    name = f"{result.title} ({result.url})" if result.title else result.url
    print(term(f"{name}: {result.summary()}"), file=out)
    for e in result.entries:
        if e.status == "failed":
            print(term(f"  failed   {e.reason}", line=True), file=out)
        elif e.status in ("added", "updated"):
            print(term(f"  {e.status:<8} {e.link} -> {e.article_id}", line=True), file=out)


def cmd_feed(args: argparse.Namespace, assistant) -> int:
    """``rag feed add|list|rm|update``."""
    from dataclasses import asdict

    feeds = assistant.feeds
    if args.feed_command == "add":
        info, result = feeds.add(args.url, update=not args.no_fetch, settings=fetch_settings(args))
        print(term(f"following {info.title or info.url}" + (f" ({info.url})" if info.title else ""), line=True))
        if result is not None:
            print_feed(result)
        return 0
    if args.feed_command == "list":
        rows = feeds.list()
        if args.json:
            print(json.dumps([asdict(f) for f in rows], ensure_ascii=False, indent=2))
            return 0
        import time

        for f in rows:
            checked = time.strftime("%Y-%m-%d %H:%M", time.localtime(f.checked_at)) if f.checked_at else "never"
            state = f.status or "not checked yet"
            if f.error:
                state += f": {f.error}"
            print(f"{term(f.url, line=True)}\t{term(f.title or '(untitled)', line=True)}\t{f.articles} articles"
                  f"\tchecked {checked}\t{term(state, line=True)}")
        print(f"{len(rows)} feeds")
        return 0
    if args.feed_command == "rm":
        for url in args.urls:
            removed = feeds.remove(url, purge=args.purge)
            print(f"stopped following {url}" + (f" ({len(removed)} articles removed)" if args.purge else ""))
        return 0
    if args.feed_command == "update":
        settings = fetch_settings(args)
        if args.every:
            return update_every(feeds, args, settings)
        report = feeds.update(args.urls or None, settings=settings,
                              progress=None if args.json else print_feed)
        if args.json:
            print(json.dumps(asdict(report), ensure_ascii=False, indent=2))
        else:
            print(report.summary())
        return 1 if report.feeds and report.failed_feeds == len(report.feeds) else 0
    raise AssertionError(args.feed_command)


def update_every(feeds, args: argparse.Namespace, settings) -> int:
    """``rag feed update --every INTERVAL``: update, sleep, repeat until Ctrl+C."""
    import time

    from .feeds import parse_interval

    every = parse_interval(args.every)
    print(f"Updating {len(feeds.list())} feeds every {args.every} (Ctrl+C to stop)", file=sys.stderr, flush=True)
    while True:
        report = feeds.update(args.urls or None, settings=settings, progress=print_feed)
        print(f"{time.strftime('%H:%M:%S')} {report.summary()}", flush=True)
        time.sleep(every)


def start_refresher(assistant, every_s: float):
    """A ``FeedRefresher`` for the index's feeds, printing each update's summary on stderr."""
    from .feeds import FeedRefresher

    def note(report) -> None:
        print(f"feeds: {report.summary()}", file=sys.stderr, flush=True)

    return FeedRefresher(assistant.feeds, every_s, on_report=note).start()
