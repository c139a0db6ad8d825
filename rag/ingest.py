"""Reading article files: one reader per format, all producing ``Article`` objects.

Metadata (title, date, url) is taken from whatever the format offers, in the order a person
would trust it: explicit fields (JSON/CSV columns, front matter, HTML meta) before conventions
(a "date YYYY-MM-DD" marker, a headline line followed by a blank line) before guesses (the first
sentence as title). Every failure is an ``InputError`` that names the file (and record), so one
bad file is reported and skipped while the rest of the batch goes on.
"""

from __future__ import annotations

import csv
import email.utils
import hashlib
import io
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from .errors import InputError
from .extract import extract_page
from .models import Article

SUPPORTED_SUFFIXES = (".txt", ".md", ".markdown", ".html", ".htm", ".json", ".jsonl", ".csv")
MAX_FILE_BYTES = 20 * 1024 * 1024  # a news article is KBs; anything this large is a mistake
MAX_TITLE_CHARS = 200

TITLE_KEYS = ("title", "headline", "name")
DATE_KEYS = ("date", "published", "published_at", "publishedAt", "pubdate", "datetime", "time")
URL_KEYS = ("url", "link", "source", "href")
TEXT_KEYS = ("text", "body", "content", "article", "article_text", "description")
ID_KEYS = ("id", "guid", "slug")

_DATE_MARKER = re.compile(r"^\s*date:?\s+(\d{4}-\d{2}-\d{2})\b[ \t]*", re.IGNORECASE)
_MONTHS = {
    m: i
    for i, names in enumerate(
        [
            ("jan", "january"), ("feb", "february"), ("mar", "march"), ("apr", "april"),
            ("may",), ("jun", "june"), ("jul", "july"), ("aug", "august"),
            ("sep", "sept", "september"), ("oct", "october"), ("nov", "november"),
            ("dec", "december"),
        ],
        start=1,
    )
    for m in names
}


@dataclass(frozen=True)
class ParsedSource:
    """One article read from a file, before it gets a store id."""

    article: Article
    content_hash: str


def content_hash(text: str) -> str:
    """Hash of the normalised text: what makes two sources 'the same article'."""
    norm = " ".join(text.split()).lower()
    return hashlib.sha256(norm.encode("utf-8")).hexdigest()


def normalise_date(value: object) -> str | None:
    """Turns the usual date spellings into ISO ``YYYY-MM-DD``; None when it is not a date."""
    if value is None:
        return None
    s = str(value).strip()
    if not s:
        return None
    m = re.match(r"^(\d{4})-(\d{1,2})-(\d{1,2})", s)
    if m:
        y, mo, d = (int(x) for x in m.groups())
        return _iso(y, mo, d)
    m = re.match(r"^(\d{4})/(\d{1,2})/(\d{1,2})", s)
    if m:
        y, mo, d = (int(x) for x in m.groups())
        return _iso(y, mo, d)
    m = re.match(r"^(\d{1,2})\s+([A-Za-z]+)\.?,?\s+(\d{4})", s)  # 25 July 2023
    if m and m.group(2).lower() in _MONTHS:
        return _iso(int(m.group(3)), _MONTHS[m.group(2).lower()], int(m.group(1)))
    m = re.match(r"^([A-Za-z]+)\.?\s+(\d{1,2})(?:st|nd|rd|th)?,?\s+(\d{4})", s)  # July 25, 2023
    if m and m.group(1).lower() in _MONTHS:
        return _iso(int(m.group(3)), _MONTHS[m.group(1).lower()], int(m.group(2)))
    try:  # RFC 2822, as in RSS feeds
        dt = email.utils.parsedate_to_datetime(s)
        return dt.date().isoformat()
    except (TypeError, ValueError, IndexError):
        return None


def _iso(y: int, mo: int, d: int) -> str | None:
    try:
        return datetime(y, mo, d).date().isoformat()
    except ValueError:
        return None


def decode_bytes(data: bytes, source: str) -> str:
    """UTF-8 (with or without BOM) or UTF-16 with a BOM; anything else is named, not guessed."""
    if not data.strip():
        raise InputError(f"{source}: file is empty")
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError as e:
            raise InputError(f"{source}: not valid UTF-16 text ({e.reason})") from None
    if b"\x00" in data[:8192]:
        raise InputError(f"{source}: looks like a binary file, not text")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise InputError(
            f"{source}: not valid UTF-8 (byte 0x{data[e.start]:02x} at offset {e.start}); "
            "re-save the file as UTF-8"
        ) from None
    controls = sum(1 for ch in text[:8192] if ord(ch) < 32 and ch not in "\t\n\r\f")
    if controls > 0.01 * min(len(text), 8192) + 2:
        raise InputError(f"{source}: looks like a binary file, not text")
    return text


def clean_text(text: str) -> str:
    """Normalises line endings and strips trailing space, keeping paragraph structure."""
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\u00a0", " ")
    lines = [ln.rstrip() for ln in text.split("\n")]
    out = "\n".join(lines).strip("\n")
    return re.sub(r"\n{3,}", "\n\n", out).strip()


def title_from_first_sentence(text: str) -> str:
    """A title for an article without a headline: its first sentence, cut at a word boundary."""
    first = re.split(r"(?<=[.!?])\s+|\n", text.strip(), maxsplit=1)[0].strip()
    if len(first) > 120:
        first = first[:120].rsplit(" ", 1)[0] + "…"
    return first or "Untitled"


def split_headline(text: str) -> tuple[str | None, str]:
    """A first line followed by a blank line is the headline; the text keeps it (citable)."""
    m = re.match(r"^([^\n]{1,%d})\n\s*\n" % MAX_TITLE_CHARS, text)
    if m:
        return m.group(1).strip().lstrip("#").strip(), text
    return None, text


def _make(
    source: str, stem: str, title: str | None, date: str | None, text: str, url: str | None = None
) -> ParsedSource:
    text = clean_text(text)
    if not text.strip():
        raise InputError(f"{source}: no article text found")
    if title is None:
        title, text = split_headline(text)
    title = " ".join((title or "").split()) or title_from_first_sentence(text)
    display_source = source if url is None else f"{source} ({url})"
    art = Article(id=stem, title=title, date=date, source=display_source, text=text)
    return ParsedSource(article=art, content_hash=content_hash(text))


# ---------------------------------------------------------------- text and markdown


def parse_text(raw: str, source: str, stem: str) -> ParsedSource:
    """Plain text or Markdown: front matter, then a "date" marker, then a headline."""
    title: str | None = None
    date: str | None = None
    url: str | None = None
    text = raw.lstrip("\ufeff")
    fm = re.match(r"^---[ \t]*\n(.*?)\n---[ \t]*\n", text, re.DOTALL)
    if fm:
        meta = {}
        for line in fm.group(1).splitlines():
            if ":" in line:
                k, v = line.split(":", 1)
                meta[k.strip().lower()] = v.strip().strip("'\"")
        title = next((meta[k] for k in TITLE_KEYS if meta.get(k)), None)
        date = next((normalise_date(meta[k]) for k in DATE_KEYS if k.lower() in meta), None)
        url = next((meta[k] for k in URL_KEYS if meta.get(k)), None)
        text = text[fm.end():]
    dm = _DATE_MARKER.match(text)
    if dm:
        date = date or normalise_date(dm.group(1))
        text = text[dm.end():]
    if title is None:
        heading = re.match(r"^\s*#\s+([^\n]+)\n", text)
        if heading:
            title = heading.group(1).strip()
    return _make(source, stem, title, date, text, url)


# ---------------------------------------------------------------- HTML

def parse_html(raw: str, source: str, stem: str) -> ParsedSource:
    """HTML page: title, date and main text from the article extractor (``rag.extract``)."""
    page = extract_page(raw, source)
    return _make(source, stem, page.title, page.date, page.text, page.url)


# ---------------------------------------------------------------- JSON, JSONL, CSV


def _pick(record: dict, keys: tuple[str, ...]) -> str | None:
    lower = {str(k).lower(): v for k, v in record.items()}
    for k in keys:
        v = lower.get(k.lower())
        if v not in (None, ""):
            return str(v)
    return None


def parse_record(record: object, source: str, stem: str) -> ParsedSource:
    """One JSON object or CSV row with title/date/url/text-like fields."""
    if not isinstance(record, dict):
        raise InputError(f"{source}: expected a JSON object, got {type(record).__name__}")
    text = _pick(record, TEXT_KEYS)
    if text is None:
        raise InputError(
            f"{source}: no text field (expected one of {', '.join(TEXT_KEYS)}; "
            f"found {', '.join(map(str, record)) or 'none'})"
        )
    rid = _pick(record, ID_KEYS)
    stem = _slug(rid) if rid else stem
    title = _pick(record, TITLE_KEYS)
    date_raw = _pick(record, DATE_KEYS)
    date = normalise_date(date_raw)
    if title is None:
        dm = _DATE_MARKER.match(text)
        if dm:
            date = date or normalise_date(dm.group(1))
            text = text[dm.end():]
    return _make(source, stem, title, date, text, _pick(record, URL_KEYS))


def parse_json(raw: str, source: str, stem: str) -> list[ParsedSource | InputError]:
    """A JSON object, an array of objects, or an object holding an "articles"/"items" array."""
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as e:
        raise InputError(f"{source}: invalid JSON at line {e.lineno} column {e.colno}: {e.msg}") from None
    if isinstance(data, dict):
        for key in ("articles", "items", "data", "results"):
            if isinstance(data.get(key), list):
                data = data[key]
                break
    if isinstance(data, dict):
        return [_safe(parse_record, data, source, stem)]
    if not isinstance(data, list):
        raise InputError(f"{source}: expected a JSON object or array, got {type(data).__name__}")
    if not data:
        raise InputError(f"{source}: the JSON array is empty")
    return [_safe(parse_record, r, f"{source}#{i + 1}", f"{stem}-{i + 1}") for i, r in enumerate(data)]


def parse_jsonl(raw: str, source: str, stem: str) -> list[ParsedSource | InputError]:
    """One JSON object per line; a bad line fails alone."""
    out: list[ParsedSource | InputError] = []
    for lineno, line in enumerate(raw.splitlines(), start=1):
        if not line.strip():
            continue
        src = f"{source}#{lineno}"
        try:
            record = json.loads(line)
        except json.JSONDecodeError as e:
            out.append(InputError(f"{src}: invalid JSON at column {e.colno}: {e.msg}"))
            continue
        out.append(_safe(parse_record, record, src, f"{stem}-{lineno}"))
    if not out:
        raise InputError(f"{source}: no JSON lines found")
    return out


def parse_csv(raw: str, source: str, stem: str) -> list[ParsedSource | InputError]:
    """A CSV with a header row naming a text/body column."""
    try:
        dialect = csv.Sniffer().sniff(raw[:4096], delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel
    reader = csv.DictReader(io.StringIO(raw), dialect=dialect)
    fields = [f.strip().lower() for f in (reader.fieldnames or [])]
    if not any(k in fields for k in TEXT_KEYS):
        raise InputError(
            f"{source}: CSV header has no text column (expected one of {', '.join(TEXT_KEYS)}; "
            f"found {', '.join(fields) or 'none'})"
        )
    out: list[ParsedSource | InputError] = []
    try:
        for i, row in enumerate(reader, start=1):
            row = {(k or "").strip(): v for k, v in row.items() if k is not None}
            out.append(_safe(parse_record, row, f"{source}#{i}", f"{stem}-{i}"))
    except csv.Error as e:
        raise InputError(f"{source}: malformed CSV at line {reader.line_num}: {e}") from None
    if not out:
        raise InputError(f"{source}: the CSV has a header but no rows")
    return out


def _safe(fn, record, source: str, stem: str) -> ParsedSource | InputError:
    try:
        return fn(record, source, stem)
    except InputError as e:
        return e


def _slug(s: str) -> str:
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", s).strip("-.")
    return slug[:80] or "article"


# ---------------------------------------------------------------- files and folders


def read_file(path: Path) -> list[ParsedSource | InputError]:
    """All articles in one file; per-record problems come back as InputError values."""
    source = str(path)
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        raise InputError(
            f"{source}: unsupported file type '{suffix or '(none)'}' "
            f"(supported: {', '.join(SUPPORTED_SUFFIXES)})"
        )
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise InputError(
                f"{source}: file is {size / 2**20:.1f} MB, over the {MAX_FILE_BYTES / 2**20:.0f} MB limit"
            )
        data = path.read_bytes()
    except OSError as e:
        raise InputError(f"{source}: cannot read file ({e.strerror or e})") from None
    raw = decode_bytes(data, source)
    stem = _slug(path.stem)
    if suffix in (".html", ".htm"):
        return [parse_html(raw, source, stem)]
    if suffix == ".json":
        return parse_json(raw, source, stem)
    if suffix == ".jsonl":
        return parse_jsonl(raw, source, stem)
    if suffix == ".csv":
        return parse_csv(raw, source, stem)
    return [parse_text(raw, source, stem)]


def expand_paths(paths: list[str | Path]) -> Iterator[Path | InputError]:
    """Files as given plus supported files found under folders (sorted, hidden ones skipped)."""
    for p in paths:
        path = Path(p).expanduser()
        if not path.exists():
            yield InputError(f"{p}: no such file or folder")
        elif path.is_dir():
            found = False
            for f in sorted(path.rglob("*")):
                rel = f.relative_to(path)
                if any(part.startswith(".") for part in rel.parts):
                    continue
                if f.is_file() and f.suffix.lower() in SUPPORTED_SUFFIXES:
                    found = True
                    yield f.resolve()
            if not found:
                yield InputError(f"{p}: folder has no {'/'.join(SUPPORTED_SUFFIXES)} files")
        else:
            yield path.resolve()
