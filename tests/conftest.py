"""Fixtures shared by several test modules."""
from __future__ import annotations

import shutil

import pytest


@pytest.fixture(scope="module")
def browser():
    """A real headless Chromium (Debian's ``chromium``) driven by Playwright; one per module."""
    playwright = pytest.importorskip("playwright.sync_api", reason="pip install playwright")
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    assert chromium, "Debian's chromium is required: `make browser` installs it (apt-get install chromium)"
    with playwright.sync_playwright() as p:
        b = p.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        yield b
        b.close()
