"""Text for a terminal: titles, file names and feed entries come from outside and may carry
control characters that would drive the terminal if printed raw."""

from __future__ import annotations

# Control characters (escape sequences, bidi overrides) from titles, file names and article
# text are shown as visible escapes: printed raw, they would drive the terminal.
_UNPRINTABLE = {c: f"\\x{c:02x}" for c in (*range(0x00, 0x09), 0x0B, 0x0C, *range(0x0E, 0x20), *range(0x7F, 0xA0))}
_UNPRINTABLE.update({c: f"\\u{c:04x}" for c in (0x200E, 0x200F, *range(0x202A, 0x202F), *range(0x2066, 0x206A))})
_LINE = {**_UNPRINTABLE, 0x09: "\\t", 0x0A: "\\n", 0x0D: "\\r"}


def term(text: object, *, line: bool = False) -> str:
    """``text`` safe for a terminal: control characters shown as ``\\x1b``-style escapes (with
    ``line``, tabs and line breaks too, so that one item stays on one line)."""
    return str(text).translate(_LINE if line else _UNPRINTABLE)
