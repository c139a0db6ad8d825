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
import os
import re
import stat
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import datetime, timezone
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
    note: str | None = None  # something the reader could not use, e.g. a date it did not understand


def content_hash(text: str) -> str:
    """Hash of the normalised text: what makes two sources 'the same article'."""
    norm = " ".join(text.split()).lower()
    return hashlib.sha256(norm.encode("utf-8")).hexdigest()


def normalise_date(value: object) -> str | None:
    """Turns the usual date spellings into ISO ``YYYY-MM-DD``; None when it is not a date."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return _from_timestamp(value)
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


def _from_timestamp(value: float) -> str | None:
    """Seconds (or milliseconds) since 1970, as JSON feeds often give them; None if implausible."""
    if value != value or value <= 0:  # NaN, zero, negative
        return None
    seconds = value / 1000 if value > 1e11 else value
    if not 1e8 < seconds < 1e10:  # 1973 .. 2286
        return None
    return datetime.fromtimestamp(seconds, tz=timezone.utc).date().isoformat()


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


# Terminal escape sequences (colours, cursor moves, window titles) and other control characters
# are never article text; left in, they would reach terminals and pages verbatim.
_ESCAPES = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]{0,512}(?:\x07|\x1b\\)?|\x1b[@-_]?")
_CONTROLS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")


_SURROGATES = re.compile(r"[\ud800-\udfff]")  # only a JSON escape can make one; no encoding can store it


def strip_controls(text: str) -> str:
    """Removes terminal escape sequences, control characters and bidi overrides (not \\t, \\n,
    \\r), and replaces lone surrogates (from JSON escapes such as "\\ud800") with U+FFFD."""
    if "\x1b" in text:
        text = _ESCAPES.sub("", text)
    return _SURROGATES.sub("\ufffd", _CONTROLS.sub("", text))


def clean_text(text: str) -> str:
    """Normalises line endings and strips trailing space, keeping paragraph structure."""
    text = strip_controls(text)
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
    source: str, stem: str, title: str | None, date: str | None, text: str, url: str | None = None,
    date_raw: object = None,
) -> ParsedSource:
    """The article, with a note when a date was given but not understood (it is stored undated)."""
    text = clean_text(text)
    if not text.strip():
        raise InputError(f"{source}: no article text found")
    if title is None:
        title, text = split_headline(text)
    title = " ".join(strip_controls(title or "").split())[:MAX_TITLE_CHARS * 2] or title_from_first_sentence(text)
    if url is not None:
        url = " ".join(strip_controls(url).split())[:2000] or None
    display_source = source if url is None else f"{source} ({url})"
    art = Article(id=stem, title=title, date=date, source=display_source, text=text)
    note = None
    if date is None and date_raw is not None and str(date_raw).strip():
        note = f"date '{_shown(date_raw)}' not understood (use YYYY-MM-DD); stored without a date"
    return ParsedSource(article=art, content_hash=content_hash(text), note=note)


# ---------------------------------------------------------------- text and markdown


def parse_text(raw: str, source: str, stem: str) -> ParsedSource:
    """Plain text or Markdown: front matter, then a "date" marker, then a headline."""
    title: str | None = None
    date: str | None = None
    date_raw: str | None = None
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
        date_raw = next((meta[k.lower()] for k in DATE_KEYS if meta.get(k.lower())), None)
        date = normalise_date(date_raw)
        url = next((meta[k] for k in URL_KEYS if meta.get(k)), None)
        text = text[fm.end():]
    dm = _DATE_MARKER.match(text)
    if dm:
        if date is None:
            date_raw = dm.group(1)
            date = normalise_date(date_raw)
        text = text[dm.end():]
    if title is None:
        heading = re.match(r"^\s*#\s+([^\n]+)\n", text)
        if heading:
            title = heading.group(1).strip()
    return _make(source, stem, title, date, text, url, date_raw)


# ---------------------------------------------------------------- HTML

def parse_html(raw: str, source: str, stem: str) -> ParsedSource:
    """HTML page: title, date and main text from the article extractor (``rag.extract``)."""
    page = extract_page(raw, source)
    return _make(source, stem, page.title, page.date, page.text, page.url)


# ---------------------------------------------------------------- JSON, JSONL, CSV


def _shown(value: object, limit: int = 40) -> str:
    """A value from a file, safe to put in a one-line message: no control characters or line
    breaks, at most ``limit`` characters."""
    text = " ".join(strip_controls(str(value)).split())
    return text if len(text) <= limit else text[:limit] + "…"


def _pick(record: dict, keys: tuple[str, ...], source: str, what: str, *, numbers: bool = True,
          strict: bool = True) -> object:
    """The first non-empty field among ``keys`` (any case): a string, or a number where
    ``numbers``. A list, object or boolean is never turned into text: ``strict`` makes it an error
    naming the field; otherwise the field is passed over (``url`` may be a feed's source object).
    """
    lower = {str(k).lower(): (k, v) for k, v in record.items()}
    for k in keys:
        name, v = lower.get(k.lower(), (k, None))
        if v is None or v == "":
            continue
        if isinstance(v, str):
            return v
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            if numbers:
                return v
        elif not strict:
            continue
        raise InputError(f"{source}: field '{_shown(name)}' ({what}) is {_kind(v)}; expected text")
    return None


def _kind(v: object) -> str:
    if isinstance(v, bool):
        return "true/false"
    if isinstance(v, (int, float)):
        return "a number"
    return {list: "a list", dict: "an object"}.get(type(v), f"a {type(v).__name__}")


def _text_field(record: dict, keys: tuple[str, ...], source: str, what: str, *, strict: bool = True) -> str | None:
    v = _pick(record, keys, source, what, strict=strict)
    if v is None or isinstance(v, str):
        return v
    return str(int(v)) if isinstance(v, float) and v.is_integer() and abs(v) < 1e15 else str(v)


def parse_record(record: object, source: str, stem: str) -> ParsedSource:
    """One JSON object or CSV row with title/date/url/text-like fields."""
    if not isinstance(record, dict):
        raise InputError(f"{source}: expected a JSON object, got {type(record).__name__}")
    text = _pick(record, TEXT_KEYS, source, "the article text", numbers=False)
    if text is None:
        found = ", ".join(_shown(k) for k in list(record)[:20]) or "none"
        raise InputError(f"{source}: no text field (expected one of {', '.join(TEXT_KEYS)}; found {found})")
    rid = _text_field(record, ID_KEYS, source, "the id", strict=False)
    stem = _slug(rid) if rid else stem
    title = _text_field(record, TITLE_KEYS, source, "the title")
    bad_date = None
    try:
        date_raw = _pick(record, DATE_KEYS, source, "the date")
    except InputError as e:  # a list or object: the article is still good, its date is not
        date_raw, bad_date = None, str(e).split(": ", 1)[1].replace("expected text", "stored without a date")
    date = normalise_date(date_raw)
    if title is None:
        dm = _DATE_MARKER.match(text)
        if dm:
            if date is None and date_raw is None:
                date_raw = dm.group(1)
                date = normalise_date(date_raw)
            text = text[dm.end():]
    url = _text_field(record, URL_KEYS, source, "the url", strict=False)
    parsed = _make(source, stem, title, date, text, url, date_raw)
    return replace(parsed, note=bad_date) if bad_date and date is None else parsed


def _loads(raw: str, source: str, *, in_line: bool = False) -> object:
    """``json.loads`` with every way it can fail named: syntax, nesting too deep for the parser
    (a RecursionError otherwise), numbers too long to convert."""
    try:
        return json.loads(raw)
    except json.JSONDecodeError as e:
        where = f"column {e.colno}" if in_line else f"line {e.lineno} column {e.colno}"
        raise InputError(f"{source}: invalid JSON at {where}: {e.msg}") from None
    except RecursionError:
        raise InputError(f"{source}: JSON nested too deeply to read") from None
    except ValueError as e:  # e.g. an integer with more digits than Python converts
        raise InputError(f"{source}: invalid JSON ({e})") from None


def parse_json(raw: str, source: str, stem: str) -> list[ParsedSource | InputError]:
    """A JSON object, an array of objects, or an object holding an "articles"/"items" array."""
    data = _loads(raw, source)
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
            record = _loads(line, src, in_line=True)
        except InputError as e:
            out.append(e)
            continue
        out.append(_safe(parse_record, record, src, f"{stem}-{lineno}"))
    if not out:
        raise InputError(f"{source}: no JSON lines found")
    return out


def parse_csv(raw: str, source: str, stem: str) -> list[ParsedSource | InputError]:
    """A CSV with a header row naming a text/body column; a malformed row fails alone."""
    if csv.field_size_limit() < MAX_FILE_BYTES:  # an article longer than csv's 128 kB default
        csv.field_size_limit(MAX_FILE_BYTES)
    try:
        dialect = csv.Sniffer().sniff(raw[:4096], delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel
    reader = csv.DictReader(io.StringIO(raw, newline=""), dialect=dialect)
    try:
        fieldnames = reader.fieldnames or []
    except csv.Error as e:
        raise InputError(f"{source}: malformed CSV header: {e}") from None
    fields = [f.strip().lower() for f in fieldnames]
    if not any(k in fields for k in TEXT_KEYS):
        shown = ", ".join(_shown(f) for f in fields[:20]) or "none"
        raise InputError(
            f"{source}: CSV header has no text column (expected one of {', '.join(TEXT_KEYS)}; found {shown})"
        )
    out: list[ParsedSource | InputError] = []
    i = 0
    while True:
        first_line = reader.line_num + 1
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as e:
            i += 1
            out.append(InputError(f"{source}#{i}: malformed CSV row at line {first_line}: {e}"))
            continue
        i += 1
        row = {(k or "").strip(): v for k, v in row.items() if k is not None}
        out.append(_safe(parse_record, row, f"{source}#{i}", f"{stem}-{i}"))
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


def _read_regular(path: Path, source: str) -> bytes:
    """The bytes of a regular file of at most MAX_FILE_BYTES.

    Opened without blocking and checked on the open descriptor, so a FIFO, a device or a socket
    named as a file is refused at once instead of hanging the batch (and a file swapped for one
    between a check and the read is caught too); read with a cap, so a file that grows while it
    is read cannot exceed the limit.
    """
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    except OSError as e:
        raise InputError(f"{source}: cannot read file ({e.strerror or e})") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            kind = ("a FIFO (named pipe)" if stat.S_ISFIFO(st.st_mode) else "a device" if
                    stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode) else "a socket" if
                    stat.S_ISSOCK(st.st_mode) else "a folder" if stat.S_ISDIR(st.st_mode) else "not a regular file")
            raise InputError(f"{source}: is {kind}, not a file")
        if st.st_size > MAX_FILE_BYTES:
            raise InputError(f"{source}: file is {st.st_size / 2**20:.1f} MB, over the "
                             f"{MAX_FILE_BYTES / 2**20:.0f} MB limit")
        with os.fdopen(os.dup(fd), "rb") as fh:
            data = fh.read(MAX_FILE_BYTES + 1)
        if len(data) > MAX_FILE_BYTES:
            raise InputError(f"{source}: file grew over the {MAX_FILE_BYTES / 2**20:.0f} MB limit while read")
        return data
    except OSError as e:
        raise InputError(f"{source}: cannot read file ({e.strerror or e})") from None
    finally:
        os.close(fd)


def read_file(path: Path) -> list[ParsedSource | InputError]:
    """All articles in one file; per-record problems come back as InputError values."""
    source = str(path)
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        raise InputError(
            f"{source}: unsupported file type '{suffix or '(none)'}' "
            f"(supported: {', '.join(SUPPORTED_SUFFIXES)})"
        )
    data = _read_regular(path, source)
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
    """Files as given plus supported files found under folders (sorted, hidden ones skipped).
    A path that cannot be looked at (no permission, a loop of links) is an InputError naming it."""
    for p in paths:
        path = Path(p).expanduser()
        try:
            exists, is_dir = path.exists(), path.is_dir()
        except OSError as e:
            yield InputError(f"{p}: cannot read ({e.strerror or e})")
            continue
        if not exists:
            yield InputError(f"{p}: no such file or folder")
        elif is_dir:
            found = False
            try:
                entries = sorted(path.rglob("*"))
            except OSError as e:
                yield InputError(f"{p}: cannot read the folder ({e.strerror or e})")
                continue
            for f in entries:
                rel = f.relative_to(path)
                if any(part.startswith(".") for part in rel.parts):
                    continue
                try:
                    wanted = f.is_file() and f.suffix.lower() in SUPPORTED_SUFFIXES
                except OSError:
                    continue
                if wanted:
                    found = True
                    yield f.resolve()
            if not found:
                yield InputError(f"{p}: folder has no {'/'.join(SUPPORTED_SUFFIXES)} files")
        else:
            yield path.resolve()
