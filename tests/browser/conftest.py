"""Fixtures for browser tests: Debian's Chromium driven by Playwright, the real server, artifacts.

No browser is downloaded: Playwright drives Debian's chromium package (`apt-get install chromium`).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, expect, sync_playwright
from playwright.sync_api import Error as PlaywrightError

from tests.databases import fresh_database
from tests.direct import DirectDatabase
from tests.servers import running_server

CHROMIUM = "/usr/bin/chromium"
# Chromium's calls home are refused on a closed network, noisily and slowly; none is needed.
CHROMIUM_ARGS = ["--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync"]
TIMEOUT_MS = 15_000


@pytest.fixture
def artifacts(tmp_path) -> Path:
    """Where screenshots go: $AGENTOS_SESSIONS_ARTIFACTS if set, else the test's tmp_path."""
    directory = Path(os.environ.get("AGENTOS_SESSIONS_ARTIFACTS") or tmp_path)
    directory.mkdir(parents=True, exist_ok=True)
    return directory


@pytest.fixture
def browser() -> Iterator[Browser]:
    """Debian's Chromium, headless."""
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(f"{CHROMIUM} is missing: install Debian's Chromium (apt-get install chromium)", pytrace=False)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def console_errors() -> list[str]:
    """The errors the page logged to its console, and those it did not catch."""
    return []


@pytest.fixture
def page(browser, console_errors) -> Iterator[Page]:
    """A fresh page that records its console errors in ``console_errors``."""

    def record(message: ConsoleMessage) -> None:
        if message.type == "error":
            console_errors.append(f"{message.text} ({message.location.get('url')})")

    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.set_default_timeout(TIMEOUT_MS)
    expect.set_options(timeout=TIMEOUT_MS)
    page.on("console", record)
    page.on("pageerror", lambda error: console_errors.append(f"uncaught: {error}"))
    yield page
    page.close()


@pytest.fixture
def served(tmp_path) -> Iterator[tuple[str, DirectDatabase]]:
    """The base URL of an open server on a fresh database, and direct access to that database."""
    database = fresh_database(tmp_path)
    direct = DirectDatabase(database)
    with running_server(database, tmp_path / "server", "--no-access-log") as url:
        yield url, direct
    direct.dispose()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    """A browser test that failed: a full-page screenshot kept with the artifacts, and the console errors."""
    report = yield
    page, artifacts = item.funcargs.get("page"), item.funcargs.get("artifacts")
    if report.when == "call" and report.failed and page is not None and artifacts is not None:
        report.sections.append(("console errors", "\n".join(item.funcargs["console_errors"]) or "none"))
        shot = artifacts / f"{item.name}-failure.png"
        try:
            page.screenshot(path=shot, full_page=True)
        except PlaywrightError as error:  # the browser itself may be what failed
            report.sections.append(("screenshot", f"none taken: {error}"))
        else:
            report.sections.append(("screenshot", str(shot)))
            print(f"\nscreenshot of the failure: {shot}")
    return report
