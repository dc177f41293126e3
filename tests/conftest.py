"""Fixtures every test folder may use: Debian's Chromium driven by Playwright (never
`playwright install`), one browser per test session (Playwright's sync API allows one per process)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

# tabulated landscapes (digits-slice) keep their tables here during the tests (git-ignored), never in
# the user's own cache; subprocesses the tests start inherit it
os.environ.setdefault("DESCENT_CACHE_DIR", str(Path(__file__).resolve().parent.parent / "out" / "test-cache"))

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="session")
def browser():
    if not Path(CHROMIUM).exists() and not shutil.which("chromium"):
        pytest.fail("Debian's chromium is missing: run `make browser` (make test does)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def deferring():
    """`descent.kernels.backend.defer_compiling` on for one test (an "auto" run does not wait for a
    kernel's compilation: it runs on torch while the kernel compiles on a thread)."""
    from descent.kernels.backend import defer_compiling

    defer_compiling(True)
    yield
    defer_compiling(False)
