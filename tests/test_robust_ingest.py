"""Hostile input to the readers and the chunker: each fails alone with a one-line reason, never
sinks its batch, never hangs, and never stores a Python repr or drops a date without a word."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import pytest

import rag.chunk
from rag import Assistant
from rag.chunk import chunk_article, split_sentences
from rag.errors import InputError
from rag.ingest import read_file
from rag.models import Article
from tests.conftest import write_file

BODY = "Arsenal beat Chelsea 2-1 at Highbury. Thierry Henry scored twice in the second half."


def write(tmp_path: Path, name: str, content: str | bytes) -> Path:
    return write_file(tmp_path / name, content)


def only(results):
    assert len(results) == 1
    return results[0]


# ------------------------------------------------------------------ JSON nesting


def test_deeply_nested_json_is_one_failed_file(tmp_path):
    p = write(tmp_path, "deep.json", "[" * 100_000 + "]" * 100_000)
    with pytest.raises(InputError, match=r"deep\.json: JSON nested too deeply"):
        read_file(p)


def test_deeply_nested_jsonl_line_fails_alone(tmp_path):
    good = json.dumps({"title": "Derby", "text": BODY})
    p = write(tmp_path, "feed.jsonl", good + "\n" + '{"text": ' + "[" * 100_000 + "\n")
    first, second = read_file(p)
    assert first.article.title == "Derby"
    assert isinstance(second, InputError) and "feed.jsonl#2: JSON nested too deeply" in str(second)


def test_nested_json_does_not_sink_the_batch(tmp_path, fake_embedder):
    docs = tmp_path / "docs"
    docs.mkdir()
    write(docs, "a.txt", f"Gunners edge Blues\n\n{BODY}")
    write(docs, "b.json", "{" + '"a":{' * 60_000 + "}" * 60_001)
    write(docs, "c.txt", "Spurs sign keeper\n\nTottenham signed a goalkeeper from Lyon on Monday.")
    a = Assistant(tmp_path / "idx", embedder=fake_embedder, seed=False, quiet=True)
    report = a.add([docs])
    assert (report.added, report.failed) == (2, 1), report
    assert "nested too deeply" in next(i.reason for i in report.items if i.status == "failed")
    a.close()


# ------------------------------------------------------------------ JSON field types


@pytest.mark.parametrize("value, kind", [(123, "a number"), (["a", "b"], "a list"), ({"p": "x"}, "an object"),
                                         (True, "true/false")])
def test_text_of_the_wrong_type_is_an_error_not_a_repr(tmp_path, value, kind):
    p = write(tmp_path, "x.json", json.dumps({"title": "T", "text": value}))
    err = only(read_file(p))
    assert isinstance(err, InputError)
    assert str(err) == f"{p}: field 'text' (the article text) is {kind}; expected text"


def test_title_of_the_wrong_type_is_an_error(tmp_path):
    err = only(read_file(write(tmp_path, "x.json", json.dumps({"title": ["a"], "text": BODY}))))
    assert isinstance(err, InputError) and "field 'title' (the title) is a list" in str(err)


def test_feed_source_object_is_passed_over_for_the_url(tmp_path):
    rec = {"source": {"id": "bbc", "name": "BBC"}, "title": "Derby", "content": BODY}
    ps = only(read_file(write(tmp_path, "x.json", json.dumps(rec))))
    assert "{" not in ps.article.source and ps.article.title == "Derby"


def test_numeric_id_and_timestamp(tmp_path):
    rec = {"id": 42, "title": "Derby", "text": BODY, "published": 1108252800}
    a = only(read_file(write(tmp_path, "x.json", json.dumps(rec)))).article
    assert a.id == "42" and a.date == "2005-02-13"


@pytest.mark.parametrize("date", ["next Tuesday", "2005-02-30", ["2005-02-13"]])
def test_a_date_not_understood_is_reported(tmp_path, date):
    ps = only(read_file(write(tmp_path, "x.json", json.dumps({"title": "T", "text": BODY, "date": date}))))
    assert ps.article.date is None
    assert ps.note and "stored without a date" in ps.note


def test_front_matter_and_marker_dates_not_understood_are_reported(tmp_path):
    ps = only(read_file(write(tmp_path, "x.md", f"---\ntitle: T\ndate: someday\n---\n{BODY}")))
    assert ps.article.date is None and "date 'someday' not understood" in ps.note
    ps = only(read_file(write(tmp_path, "y.txt", f"date 2005-13-45\n{BODY}")))
    assert ps.article.date is None and "date '2005-13-45' not understood" in ps.note


def test_note_reaches_the_report(tmp_path, fake_embedder):
    p = write(tmp_path, "x.json", json.dumps({"title": "T", "text": BODY, "date": "someday"}))
    a = Assistant(tmp_path / "idx", embedder=fake_embedder, seed=False, quiet=True)
    item = only(a.add([p]).items)
    assert item.status == "added" and "date 'someday' not understood" in item.note
    a.close()


# ------------------------------------------------------------------ CSV


def test_one_oversize_csv_field_does_not_fail_the_csv(tmp_path):
    long_text = " ".join([BODY] * 2500)  # ~220 kB: over csv's default 128 kB field limit
    rows = ["title,text", f'Short,"{BODY}"', f'Long,"{long_text}"', f'Third,"{BODY} Again."']
    results = read_file(write(tmp_path, "x.csv", "\n".join(rows) + "\n"))
    assert [r.article.title for r in results] == ["Short", "Long", "Third"]
    assert len(results[1].article.text) == len(long_text)


def test_a_bad_csv_row_fails_alone_with_its_own_line(monkeypatch):
    """A row csv rejects (here: a field over a lowered limit) fails alone, named by its line."""
    import csv

    import rag.ingest

    monkeypatch.setattr(rag.ingest, "MAX_FILE_BYTES", 1000)
    old = csv.field_size_limit(1000)
    try:
        raw = "title,text\n" + f'One,"{BODY}"\n' + 'Two,"' + "x" * 2000 + '"\n' + f'Three,"{BODY}"\n'
        results = rag.ingest.parse_csv(raw, "x.csv", "x")
    finally:
        csv.field_size_limit(old)
    assert [type(r).__name__ for r in results] == ["ParsedSource", "InputError", "ParsedSource"]
    assert str(results[1]).startswith("x.csv#2: malformed CSV row at line 3: field larger than field limit")
    assert results[2].article.title == "Three"


# ------------------------------------------------------------------ special files


def test_fifo_is_refused_without_hanging(tmp_path):
    fifo = tmp_path / "pipe.txt"
    os.mkfifo(fifo)
    result: list[object] = []
    t = threading.Thread(target=lambda: result.append(_try(read_file, fifo)), daemon=True)
    t.start()
    t.join(10)
    if t.is_alive():  # release the reader before failing
        with open(fifo, "w"):
            pass
        pytest.fail("reading a FIFO hung")
    assert isinstance(result[0], InputError) and "is a FIFO (named pipe), not a file" in str(result[0])


def _try(fn, *args):
    try:
        return fn(*args)
    except InputError as e:
        return e


def test_device_is_refused(tmp_path):
    link = tmp_path / "null.txt"  # /dev/zero would be read forever by a reader that does not check
    link.symlink_to("/dev/null")
    with pytest.raises(InputError, match="is a device, not a file"):
        read_file(link)


# ------------------------------------------------------------------ control characters


def test_escape_sequences_are_removed_from_titles_and_text(tmp_path):
    raw = ("\x1b]0;pwned\x07Gunners \x1b[31medge\x1b[0m Blues\u202e\n\nArsenal \x1b[2Jbeat Chelsea.\x07 Henry scored. "
           + BODY * 10)
    a = only(read_file(write(tmp_path, "x.txt", raw))).article
    assert a.title == "Gunners edge Blues"
    assert "\x1b" not in a.text and "\x07" not in a.text and "\u202e" not in a.text
    assert "Arsenal beat Chelsea." in a.text


# ------------------------------------------------------------------ chunking cost


def test_chunking_work_is_linear_in_sentences(monkeypatch):
    calls = []
    real = rag.chunk._words
    monkeypatch.setattr(rag.chunk, "_words", lambda s: calls.append(1) or real(s))
    text = " ".join(f"Sentence number {i} is about the match." for i in range(4000))
    chunks = chunk_article(Article("a", "T", None, "s", text))
    assert len(chunks) > 100
    assert len(calls) <= 3 * 4000  # was one pass over the rest of the article per chunk


def test_runs_of_initials_split_in_linear_time():
    """'A. B. C. ...' never moves the sentence start: each check must look at a bounded window."""
    text = "A. " * 400_000 + "The end."
    done = []
    t = threading.Thread(target=lambda: done.append(split_sentences(text)), daemon=True)
    t.start()
    t.join(60)  # linear: well under a second; quadratic: hours
    assert done, "sentence splitting is not linear"
    assert done[0][-1].text.endswith("The end.")


def test_abbreviation_window_keeps_long_words_intact():
    sents = split_sentences("He met the Ambassadorv. Then he left. Dr. Who came. It was no. 7.")
    assert [s.text for s in sents][:2] == ["He met the Ambassadorv.", "Then he left."]
    assert "Dr. Who came." in [s.text for s in sents]


def test_paths_that_cannot_be_looked_at(tmp_path, monkeypatch):
    from rag.ingest import expand_paths

    real = Path.exists

    def denied(self):
        if self.name == "secret.txt":
            raise PermissionError(13, "Permission denied")
        return real(self)

    monkeypatch.setattr(Path, "exists", denied)
    (out,) = list(expand_paths([tmp_path / "locked" / "secret.txt"]))
    assert isinstance(out, InputError) and str(out).endswith("secret.txt: cannot read (Permission denied)")
