"""Fixtures for the Arena: the Dash server on a free loopback port (a thread, stopped after) and
Debian's Chromium driven by Playwright (never `playwright install`). Screenshots go to artifacts/arena/."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from tests.conftest import CHROMIUM, CHROMIUM_ARGS  # noqa: F401  (the browser fixture lives there)

ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts" / "arena"


@pytest.fixture(scope="session")
def arena_url() -> Iterator[str]:
    """The Arena served on 127.0.0.1:<free port> from a thread of this process."""
    from werkzeug.serving import make_server

    from descent.arena import create_app

    torch.set_num_threads(1)
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = make_server("127.0.0.1", 0, create_app().server, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/"
    server.shutdown()
    thread.join(timeout=10)


@pytest.fixture(scope="module")
def page(browser, arena_url):
    """One page for a module's tests (each test goes to its own state inside it: no reload)."""
    context = browser.new_context(viewport={"width": 1600, "height": 1250}, accept_downloads=True)
    page = context.new_page()
    page.set_default_timeout(60_000)
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.arena_errors = errors  # type: ignore[attr-defined]
    yield page
    context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS
