"""``python -m ui.screenshot [OUT.png]``: the README's picture of the chat, taken in a real browser.

It serves the page on a free localhost port over a throwaway index of the seeds, asks the
first example question in Debian's chromium (through playwright, never a downloaded browser) and
saves the page. The browser tests launch chromium the same way, with ``launch_chromium``.
"""

from __future__ import annotations

import socket
import sys
import tempfile
from pathlib import Path
from typing import Any

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--no-first-run", "--disable-sync", "--disable-quic",
]


def launch_chromium(playwright: Any, executable: str = CHROMIUM) -> Any:
    """A headless chromium for playwright's sync API, with nothing that phones home."""
    if not Path(executable).exists():
        from rag.errors import ConfigError

        raise ConfigError(f"{executable} not found: install Debian's chromium package (apt-get install chromium)")
    return playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)


def take(out: Path, question: str = "When does Alonso's contract expire?") -> Path:
    from playwright.sync_api import sync_playwright

    from rag import Assistant
    from rag.assistant import default_seeds_dir

    from .app import serve

    with tempfile.TemporaryDirectory() as tmp:
        assistant = Assistant(Path(tmp) / "index", seed=default_seeds_dir(), quiet=True)
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        demo = serve(assistant, port=port, block=False, quiet=True)
        try:
            with sync_playwright() as p:
                browser = launch_chromium(p)
                page = browser.new_page(viewport={"width": 1280, "height": 860})
                page.set_default_timeout(120_000)
                page.goto(f"http://127.0.0.1:{port}/")
                page.locator("#question textarea").fill(question)
                page.locator("#ask").click()
                page.locator("#sources #turn-1").wait_for()
                page.locator('#chat a.cite[href="#src-1-1"]').first.hover()
                page.wait_for_function("document.querySelector('#src-1-1').classList.contains('active')")
                out.parent.mkdir(parents=True, exist_ok=True)
                page.screenshot(path=str(out), full_page=False)
                browser.close()
        finally:
            demo.close()
            assistant.close()
    return out


if __name__ == "__main__":
    target = Path(sys.argv[1] if len(sys.argv) > 1 else "docs/screenshot.png")
    print(take(target))
