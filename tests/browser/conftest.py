"""Real-browser fixtures: the app served on loopback in a thread, and headless Debian Chromium.

Every browser test is marked `browser`. The live server uses its own database (a SQLite file,
or the PostgreSQL test database when KARGO_TEST_DATABASE_URL is set) and is started per test,
so pages see exactly the rows the test created.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from flask import Flask
from playwright.sync_api import expect
from werkzeug.serving import make_server

CHROMIUM = os.environ.get("KARGO_CHROMIUM", "/usr/bin/chromium")
# Every wait of a page (actions, navigation, and `expect`, whose own default is 5 s) is bounded
# by this: generous for a loaded machine, free when the page is ready sooner. No test measures
# time with it.
TIMEOUT_MS = 30_000
expect.set_options(timeout=TIMEOUT_MS)
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def pytest_collection_modifyitems(items):
    for item in items:
        if "tests/browser" in str(item.fspath):
            item.add_marker(pytest.mark.browser)


@dataclass
class LiveServer:
    app: Flask
    url: str

    def path(self, path: str) -> str:
        return self.url + path


@pytest.fixture
def app_config() -> dict:
    # Browser tests exercise the real CSRF protection.
    return {"WTF_CSRF_ENABLED": True, "POLL_INTERVAL_SECONDS": 1}


@pytest.fixture
def live_server(app: Flask) -> Iterator[LiveServer]:
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield LiveServer(app=app, url=f"http://127.0.0.1:{server.server_port}")
    finally:
        server.shutdown()
        thread.join(timeout=5)


@pytest.fixture(scope="session")
def browser():
    if not os.path.exists(CHROMIUM):
        pytest.fail(f"Chromium not found at {CHROMIUM}; the test command installs it with apt")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        yield browser
        browser.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    yield page
    context.close()


@pytest.fixture
def new_page(browser):
    """Factory for extra, isolated browser contexts (a second person)."""
    contexts = []

    def make(width: int = 1280, height: int = 900):
        context = browser.new_context(viewport={"width": width, "height": height})
        context.set_default_timeout(TIMEOUT_MS)
        contexts.append(context)
        return context.new_page()

    yield make
    for context in contexts:
        context.close()
