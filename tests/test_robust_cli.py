"""The command line with awkward input: every id of `rag index rm` is tried, and escape codes in
titles, file names and errors are shown, never sent to the terminal (unit lane)."""

from __future__ import annotations

import sqlite3

from rag.cli import term
from tests.conftest import SEEDS
from tests.conftest import run_cli as run

ESC = "\x1b"


def test_rm_tries_every_id_and_says_which_were_not_removed(fake_cli, tmp_path, capsys):
    idx = str(tmp_path / "idx")
    assert run(["index", "add", str(SEEDS), "--index", idx], capsys)[0] == 0
    code, out, err = run(["index", "rm", "000_a976052e113d48e1", "nope", "002_0df7e0b7cc0cc3af", "--index", idx],
                         capsys)
    assert code == 2
    assert out.splitlines() == ["removed 000_a976052e113d48e1", "removed 002_0df7e0b7cc0cc3af"]
    assert err.strip() == "rag: error: no article with id 'nope' (see `rag index list`); the other 2 removed"
    code, _, err = run(["index", "rm", "a", "b", "--index", idx], capsys)
    assert err.strip() == "rag: error: no article with id 'a', 'b' (see `rag index list`); nothing removed"


def test_escape_codes_in_an_index_are_shown_not_obeyed(fake_cli, tmp_path, capsys):
    idx = tmp_path / "idx"
    assert run(["index", "add", str(SEEDS), "--index", str(idx)], capsys)[0] == 0
    db = sqlite3.connect(idx / "rag.sqlite3")  # an index written before titles were cleaned
    db.execute("UPDATE articles SET title = ? || title, source = source || ?", (f"{ESC}]0;owned{ESC}\\", f"{ESC}[2J"))
    db.commit()
    db.close()
    code, out, _ = run(["ask", "When does Alonso's contract expire?", "--index", str(idx)], capsys)
    assert code == 0 and ESC not in out
    assert "\\x1b]0;owned\\x1b\\" in out and "\\x1b[2J" in out
    code, out, _ = run(["index", "list", "--index", str(idx)], capsys)
    assert ESC not in out and "\\x1b]0;owned" in out


def test_escape_codes_in_file_names_are_shown_not_obeyed(fake_cli, tmp_path, capsys):
    bad = tmp_path / f"evil{ESC}[31m\nname.txt"
    bad.write_text("Gunners edge Blues\n\nArsenal beat Chelsea 2-1 at Highbury on Sunday.", encoding="utf-8")
    code, out, err = run(["index", "add", str(bad), "--index", str(tmp_path / "idx")], capsys)
    assert code == 0 and ESC not in out
    assert "evil\\x1b[31m\\nname.txt" in out
    code, out, err = run(["index", "add", str(tmp_path / f"gone{ESC}[1m.txt"), "--index", str(tmp_path / "idx")],
                         capsys)
    assert ESC not in err and "gone\\x1b[1m.txt: no such file" in err


def test_term():
    assert term("a\x1b[31mb\x07\u202ec\n") == "a\\x1b[31mb\\x07\\u202ec\n"
    assert term("one\nline\t", line=True) == "one\\nline\\t"
