"""A small Playwright helper for browser tests: Debian's Chromium, and everything the page got wrong.

No browser download is possible here, so Playwright drives the system's
``/usr/bin/chromium`` (``apt-get install chromium``). ``Browser.page()`` opens
a page in a fresh context (its own sessionStorage and localStorage, like a
second person's browser) and records what a person would not see but a test
must: console errors, uncaught exceptions and failed requests
(``Watched.problems``).

One thing Chromium reports as a failure is not one: a ``text/event-stream``
response that the server ends normally (a run's ``bye``) is reported as
``net::ERR_ABORTED`` however it ended (DevTools tracks event streams
specially). A stream that answered 200 is therefore not a failed request;
a stream that never answered still is.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CHROMIUM = Path("/usr/bin/chromium")


@dataclass
class Watched:
    """A page and what went wrong in it."""

    page: Any  # playwright.sync_api.Page
    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    failed_requests: list[str] = field(default_factory=list)

    @property
    def problems(self) -> list[str]:
        return (
            [f"console error: {text}" for text in self.console_errors]
            + [f"page error: {text}" for text in self.page_errors]
            + [f"failed request: {text}" for text in self.failed_requests]
        )

    def _on_request_failed(self, request: Any) -> None:
        response = request.response()
        is_ended_stream = (
            response is not None
            and response.status == 200
            and response.headers.get("content-type", "").startswith("text/event-stream")
        )
        if not is_ended_stream:
            self.failed_requests.append(f"{request.method} {request.url}: {request.failure}")


class Browser:
    def __init__(self, playwright: Any, browser: Any) -> None:
        self._playwright = playwright
        self._browser = browser

    def page(self, url: str | None = None, *, width: int = 1400, height: int = 1000) -> Watched:
        """A page in a context of its own (a separate person), optionally opened at ``url``."""
        context = self._browser.new_context(viewport={"width": width, "height": height})
        page = context.new_page()
        watched = Watched(page)
        page.on("console", lambda message: _console(watched, message))
        page.on("pageerror", lambda error: watched.page_errors.append(str(error)))
        page.on("requestfailed", watched._on_request_failed)
        if url is not None:
            page.goto(url)
        return watched


def _console(watched: Watched, message: Any) -> None:
    if message.type == "error":
        watched.console_errors.append(message.text)


def introduce(watched: Watched, name: str, role: str | None = None) -> None:
    """The first visit in a browser asks who you are (the console's identity form)."""
    page = watched.page
    page.get_by_test_id("identity").wait_for()
    page.fill("#identity-name", name)
    if role is not None:
        page.select_option("#identity-role", role)
    page.press("#identity-name", "Enter")
    page.get_by_test_id("identity").wait_for(state="hidden")


def no_problems(*pages: Watched) -> None:
    problems = [problem for watched in pages for problem in watched.problems]
    assert problems == [], problems


@contextmanager
def chromium() -> Iterator[Browser]:
    """Headless Debian Chromium under Playwright; fails (not skips) when it is missing."""
    if not CHROMIUM.exists():
        raise RuntimeError(f"{CHROMIUM} is missing: apt-get install chromium (Debian)")
    from playwright.sync_api import sync_playwright

    playwright = sync_playwright().start()
    try:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        try:
            yield Browser(playwright, browser)
        finally:
            browser.close()
    finally:
        playwright.stop()
