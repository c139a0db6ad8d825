"""The errors a user can cause, as one small hierarchy.

Every message names the offending file or value, so the CLI can print ``str(err)`` on one line
and exit non-zero instead of showing a traceback. Anything that is *not* a RagError is a bug.
"""

from __future__ import annotations


class RagError(Exception):
    """Base class: a problem the user can fix (bad input, bad option, broken index)."""


class InputError(RagError):
    """A file, record or value that cannot be turned into an article or a query."""


class ConfigError(RagError):
    """An unknown option or an out-of-range setting."""


class IndexCorruptError(RagError):
    """The on-disk index cannot be read; nothing in it was changed."""


class EmbedderMismatchError(RagError):
    """The index was built with another embedder; mixing vectors would give silent garbage."""


class ModelError(RagError):
    """A GGUF model path that is missing, unreadable or not a GGUF file."""


class IndexUnavailableError(RagError):
    """The index's database server cannot be used: unreachable, login refused, no such database,
    or pgvector missing. Messages name the server, never the password."""


class IndexAccessError(RagError):
    """The index cannot be written (read-only, disk full, busy) or its folder cannot be created;
    what was already stored is intact."""
