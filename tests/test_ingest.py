"""Readers: every supported format, its metadata, and every bad input with its message."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rag.errors import InputError
from rag.ingest import (
    MAX_FILE_BYTES,
    expand_paths,
    normalise_date,
    read_file,
)
from tests.conftest import SEEDS
from tests.conftest import write_file

BODY = "Arsenal beat Chelsea 2-1 at Highbury. Thierry Henry scored twice in the second half."


def one(path: Path):
    results = read_file(path)
    assert len(results) == 1
    assert not isinstance(results[0], InputError), results[0]
    return results[0].article


def write(tmp_path: Path, name: str, content: str | bytes) -> Path:
    return write_file(tmp_path / name, content)


# ------------------------------------------------------------------ formats


def test_seed_with_date_marker():
    a = one(SEEDS / "002_0df7e0b7cc0cc3af.txt")
    assert a.date == "2023-07-25"
    assert a.title.startswith("Bayer Leverkusen manager Xabi Alonso")
    assert not a.text.lstrip().lower().startswith("date")
    assert a.id == "002_0df7e0b7cc0cc3af"


def test_seed_headline_line():
    a = one(SEEDS / "000_a976052e113d48e1.txt")
    assert a.date is None
    assert a.title == "Real Madrid legend Xabi Alonso has ruled out a return to the club and has pledged his future to Bayer Leverkusen."
    assert a.text.startswith(a.title)  # the headline stays citable


def test_txt_headline_then_blank(tmp_path):
    a = one(write(tmp_path, "x.txt", f"Gunners edge Blues\n\n{BODY}\n"))
    assert a.title == "Gunners edge Blues"
    assert "Henry scored twice" in a.text


def test_txt_without_headline_gets_first_sentence(tmp_path):
    a = one(write(tmp_path, "x.txt", BODY))
    assert a.title == "Arsenal beat Chelsea 2-1 at Highbury."


def test_markdown_front_matter(tmp_path):
    md = f"---\ntitle: Derby day\ndate: 2005-02-13\nurl: https://example.org/derby\n---\n# Ignored heading\n\n{BODY}\n"
    a = one(write(tmp_path, "derby.md", md))
    assert a.title == "Derby day"
    assert a.date == "2005-02-13"
    assert "example.org/derby" in a.source
    assert "---" not in a.text


def test_markdown_heading_as_title(tmp_path):
    a = one(write(tmp_path, "h.md", f"# Henry double sinks Chelsea\n\n{BODY}"))
    assert a.title == "Henry double sinks Chelsea"


def test_html_meta_and_stripping(tmp_path):
    html = f"""<!doctype html><html><head><title>Site | Henry double</title>
    <meta property="article:published_time" content="2005-02-13T15:00:00Z">
    <script>var tracking = "do not index me";</script><style>.x{{color:red}}</style></head>
    <body><nav>Home | Football | Cricket</nav><header>Site header</header>
    <article><h1>Henry double sinks Chelsea</h1><p>{BODY}</p><p>Wenger was &quot;delighted&quot;.</p></article>
    <footer>Copyright footer</footer></body></html>"""
    a = one(write(tmp_path, "page.html", html))
    assert a.title == "Henry double sinks Chelsea"
    assert a.date == "2005-02-13"
    assert "Henry scored twice" in a.text
    assert 'Wenger was "delighted".' in a.text
    for junk in ("do not index me", "color:red", "Home | Football", "Site header", "Copyright footer"):
        assert junk not in a.text


def test_json_object_and_array(tmp_path):
    obj = {"headline": "Henry double", "published": "13 February 2005", "url": "u", "body": BODY}
    a = one(write(tmp_path, "a.json", json.dumps(obj)))
    assert (a.title, a.date) == ("Henry double", "2005-02-13")
    arr = [{"title": "One", "date": "2005-01-01", "text": BODY}, {"title": "Two", "text": BODY + " More."}]
    res = read_file(write(tmp_path, "b.json", json.dumps({"articles": arr})))
    assert [r.article.title for r in res] == ["One", "Two"]
    assert res[0].article.source.endswith("b.json#1")
    assert res[0].article.id != res[1].article.id


def test_jsonl_bad_line_fails_alone(tmp_path):
    lines = [json.dumps({"id": "a1", "title": "One", "text": BODY}), "{not json", json.dumps({"title": "No text"}),
             json.dumps({"title": "Three", "content": BODY + " Three."})]
    res = read_file(write(tmp_path, "f.jsonl", "\n".join(lines)))
    assert len(res) == 4
    assert res[0].article.id == "a1"
    assert isinstance(res[1], InputError) and "f.jsonl#2" in str(res[1]) and "invalid JSON" in str(res[1])
    assert isinstance(res[2], InputError) and "no text field" in str(res[2])
    assert res[3].article.title == "Three"


def test_csv(tmp_path):
    csv_text = 'title,date,body\nHenry double,2005-02-13,"' + BODY + '"\nSecond,,"Another, with comma."\n'
    res = read_file(write(tmp_path, "f.csv", csv_text))
    assert [r.article.title for r in res] == ["Henry double", "Second"]
    assert res[0].article.date == "2005-02-13"
    assert res[1].article.text == "Another, with comma."


@pytest.mark.parametrize(
    "raw, iso",
    [("2023-07-25", "2023-07-25"), ("2023-07-25T10:00:00+02:00", "2023-07-25"), ("25 July 2023", "2023-07-25"),
     ("July 25, 2023", "2023-07-25"), ("Tue, 25 Jul 2023 10:00:00 GMT", "2023-07-25"), ("2023/7/5", "2023-07-05"),
     ("yesterday", None), ("2023-02-30", None), ("", None), (None, None)],
)
def test_normalise_date(raw, iso):
    assert normalise_date(raw) == iso


# ------------------------------------------------------------------ bad input


@pytest.mark.parametrize(
    "name, content, message",
    [
        ("empty.txt", b"", "file is empty"),
        ("blank.txt", b"   \n\n  ", "file is empty"),
        ("bin.txt", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00", "binary"),
        ("latin1.txt", "Bayern M\u00fcnchen won".encode("latin-1"), "not valid UTF-8 (byte 0xfc at offset 8)"),
        ("bad.json", b'{"title": "x", "text": ', "invalid JSON at line 1"),
        ("scalar.json", b"42", "expected a JSON object or array"),
        ("empty.json", b"[]", "the JSON array is empty"),
        ("notags.html", b"just words, no markup", "not HTML"),
        ("emptybody.html", b"<html><head><title>t</title><script>x()</script></head><body></body></html>", "no article text"),
        ("nocol.csv", b"title,date\nA,2005-01-01\n", "CSV header has no text column"),
        ("headeronly.csv", b"title,text\n", "no rows"),
        ("image.png", b"\x89PNG", "unsupported file type '.png'"),
    ],
)
def test_bad_files_name_the_file(tmp_path, name, content, message):
    path = write(tmp_path, name, content)
    with pytest.raises(InputError) as e:
        read_file(path)
    assert name in str(e.value)
    assert message in str(e.value)


def test_huge_file(tmp_path):
    p = tmp_path / "huge.txt"
    with p.open("wb") as f:
        f.seek(MAX_FILE_BYTES + 1)
        f.write(b"x")
    with pytest.raises(InputError, match=r"huge.txt: file is .* over the 20 MB limit"):
        read_file(p)


def test_utf16_with_bom(tmp_path):
    p = write(tmp_path, "u16.txt", ("Headline\n\n" + BODY).encode("utf-16"))
    assert one(p).title == "Headline"


def test_expand_paths(tmp_path):
    (tmp_path / "d" / "sub").mkdir(parents=True)
    write(tmp_path / "d", "a.txt", BODY)
    write(tmp_path / "d" / "sub", "b.md", BODY)
    write(tmp_path / "d", "skip.png", b"x")
    (tmp_path / "d" / ".hidden").mkdir()
    write(tmp_path / "d" / ".hidden", "c.txt", BODY)
    (tmp_path / "empty").mkdir()
    found = list(expand_paths([tmp_path / "d", tmp_path / "missing.txt", tmp_path / "empty"]))
    files = [f.name for f in found if isinstance(f, Path)]
    errors = [str(e) for e in found if isinstance(e, InputError)]
    assert files == ["a.txt", "b.md"]
    assert any("missing.txt: no such file or folder" in e for e in errors)
    assert any("empty: folder has no" in e for e in errors)
