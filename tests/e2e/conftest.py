"""Browser tests: the demo served on loopback, driven in Debian's Chromium by Playwright.

Chromium comes from the system (``/usr/bin/chromium``, installed by ``make test``); a browser
download cannot work on our machines. These tests run on SQLite: the database behaviour is
covered elsewhere on both databases.
"""

from __future__ import annotations

import dataclasses
import shutil
import threading
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from werkzeug.serving import make_server

CHROMIUM = "/usr/bin/chromium"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]

pytestmark = pytest.mark.browser


@pytest.fixture
def database_url(sqlite_template: Path, tmp_path: Path) -> str:
    """Browser tests use SQLite only (see the module docstring)."""
    target = tmp_path / "bookwise.db"
    shutil.copyfile(sqlite_template, target)
    return f"sqlite:///{target}"


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield launched
        launched.close()


@pytest.fixture
def open_context(browser: Any, now: datetime) -> Iterator[Callable[..., Any]]:
    """``open_context(**options)``: a new browser context whose clock starts at the test's
    instant, as the server's does (so page and server agree on "today"); closed at the end."""
    contexts: list[Any] = []

    def open_(**options: Any) -> Any:
        context = browser.new_context(**options)
        context.clock.install(time=now)
        contexts.append(context)
        return context

    yield open_
    for context in contexts:
        context.close()


@pytest.fixture
def live(app: Any) -> Iterator[str]:
    """The demo app served on 127.0.0.1 by a threaded server; its base URL."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    bookwise = app.extensions["bookwise"]
    bookwise.settings = dataclasses.replace(
        bookwise.settings, base_url=f"http://127.0.0.1:{server.server_port}"
    )
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join()
