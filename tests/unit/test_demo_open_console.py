"""`demo --interactive` opens the console without putting its token on a command line."""

from __future__ import annotations

import stat
import webbrowser
from pathlib import Path

import pytest

from chaosrunner.cli.demo_commands import open_in_browser

LINK = "http://127.0.0.1:41385/#token=s3cret-facilitator-token"


def test_the_browser_gets_a_private_file_that_forwards_to_the_link(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    opened: list[str] = []
    monkeypatch.setenv("DISPLAY", ":0")
    monkeypatch.setattr(webbrowser, "open", lambda url, new=0: opened.append(url) or True)
    open_in_browser(LINK, tmp_path)
    [url] = opened
    assert "s3cret" not in url and url.startswith("file://")  # argv of the browser is public
    page = Path(url.removeprefix("file://"))
    assert stat.S_IMODE(page.stat().st_mode) == 0o600
    assert '"http://127.0.0.1:41385/#token=s3cret-facilitator-token"' in page.read_text()


def test_without_a_desktop_nothing_is_opened(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.setattr(webbrowser, "open", lambda *_: pytest.fail("a text browser would take the terminal"))
    open_in_browser(LINK, tmp_path)
    assert not list(tmp_path.iterdir())
