"""One port, both doors: the chat served by ``rag serve`` works in a real browser, behind the
login the API key gives it, while the API answers on the same port.

Debian's chromium through playwright, on a copy of the seeds index with the real embedder.
"""

from __future__ import annotations

import re
import shutil

import openai
import pytest

pytestmark = [pytest.mark.integration, pytest.mark.browser]

from ui.screenshot import launch_chromium  # noqa: E402

KEY = "browser-key"
TIMEOUT_MS = 120_000
Q = "When does Alonso's contract expire?"


@pytest.fixture(scope="module")
def server(seeds_index_dir, real_embedder, tmp_path_factory):
    from rag import Assistant
    from rag.server.run import start

    index = tmp_path_factory.mktemp("served") / "index"
    shutil.copytree(seeds_index_dir, index)
    assistant = Assistant(index, embedder=real_embedder, seed=False, quiet=True)
    running = start(assistant, api_key=KEY)  # no --auth: the chat's password is the key
    yield running
    running.stop()
    assistant.close()


def test_the_chat_logs_in_with_the_key_and_answers_beside_the_api(server, tmp_path):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = launch_chromium(p)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.set_default_timeout(TIMEOUT_MS)
            page.goto(server.url + "/")
            page.locator("input[type=password]").wait_for()
            page.locator("input[type=text]").first.fill("anyone")
            page.locator("input[type=password]").fill(KEY)
            page.get_by_role("button", name="Login").click()
            page.locator("#question textarea").wait_for()
            page.locator("#question textarea").fill(Q)
            page.locator("#ask").click()
            page.locator("#sources #turn-1").wait_for()
            page.screenshot(path=tmp_path / "served-chat.png")
            text = page.locator('#chat [data-testid="bot"]').last.inner_text()
        finally:
            browser.close()
    api = openai.OpenAI(base_url=server.url + "/v1", api_key=KEY, max_retries=0, timeout=60)
    reply = api.chat.completions.create(model="football-rag", messages=[{"role": "user", "content": Q}])
    assert "June 2024" in text and re.match(r"June 2024 (\[\d\])+\.", reply.choices[0].message.content)
