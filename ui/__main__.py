"""``python -m ui [options]``: the same as ``rag chat [options]``."""

import sys

from rag.cli import main

if __name__ == "__main__":
    sys.exit(main(["chat", *sys.argv[1:]]))
