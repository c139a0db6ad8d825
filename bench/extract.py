"""Article extraction measured on the fixture pages: trafilatura (rag/extract.py) against the
hand-written parser it replaced (bench/html_baseline.py).

Each page in tests/fixtures/web/ has a sidecar .json with its title, date, the article's
paragraphs and strings of boilerplate (menus, cookie banners, footers, related links, adverts)
that must not be indexed. Per page and extractor:

- title, date: exactly right or not;
- paragraphs: the share of article paragraphs found whole in the extracted text;
- boilerplate: how many of the page's boilerplate strings leaked into the text;
- precision: the share of extracted words that belong to the article (title and, for the live
  blog, its entry headings included).

    python bench/extract.py            # the table
    python bench/extract.py --json
"""

from __future__ import annotations

import json
import re
import sys
import time
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
FIXTURES = ROOT / "tests" / "fixtures" / "web"
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(BENCH))


@dataclass
class PageScore:
    page: str
    shape: str
    extractor: str
    title_ok: bool
    date_ok: bool
    paragraphs: float
    boilerplate_leaked: int
    boilerplate_total: int
    precision: float
    ms: float
    leaked: list[str]


def _words(text: str) -> list[str]:
    return re.findall(r"\w+", text.lower())


def score(page: Path, extractor: str) -> PageScore:
    from html_baseline import baseline_extract

    from rag.extract import extract_page

    expected = json.loads(page.with_suffix(".json").read_text(encoding="utf-8"))
    html = page.read_text(encoding="utf-8")
    t0 = time.perf_counter()
    got = extract_page(html, str(page)) if extractor == "trafilatura" else baseline_extract(html)
    ms = (time.perf_counter() - t0) * 1000
    flat = " ".join(got.text.split())
    found = sum(1 for p in expected["article"] if " ".join(p.split()) in flat)
    leaked = [b for b in expected["boilerplate"] if b in got.text]
    gold = Counter(_words(" ".join([expected["title"] or "", *expected["article"], *expected.get("headings", [])])))
    words = _words(got.text)
    inside = sum((Counter(words) & gold).values())
    return PageScore(page.stem, expected["shape"], extractor, got.title == expected["title"],
                     got.date == expected["date"], found / len(expected["article"]), len(leaked),
                     len(expected["boilerplate"]), inside / max(1, len(words)), ms, leaked)


def measure(extractors: tuple[str, ...] = ("trafilatura", "baseline")) -> list[PageScore]:
    pages = sorted(FIXTURES.glob("*.html"))
    for name in extractors:  # warm up imports and caches so timings are per page
        score(pages[0], name)
    return [score(p, name) for p in pages for name in extractors]


def table(rows: list[PageScore]) -> str:
    head = f"{'page':<20} {'extractor':<12} {'title':>5} {'date':>5} {'paras':>6} {'leaked':>8} {'precision':>9} {'ms':>7}"
    lines = [head, "-" * len(head)]
    for r in rows:
        lines.append(f"{r.page:<20} {r.extractor:<12} {'yes' if r.title_ok else 'no':>5} {'yes' if r.date_ok else 'no':>5} "
                     f"{r.paragraphs:>6.2f} {f'{r.boilerplate_leaked}/{r.boilerplate_total}':>8} {r.precision:>9.2f} "
                     f"{r.ms:>7.1f}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    rows = measure()
    if argv and "--json" in argv:
        print(json.dumps([asdict(r) for r in rows], indent=2))
    else:
        print(table(rows))
        for r in rows:
            if r.leaked:
                print(f"  {r.page} / {r.extractor} leaked: {', '.join(r.leaked)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
