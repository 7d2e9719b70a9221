"""A holder whose 'fault' is a marker file: present while held, removed at the end."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from chaosrunner.faults.holder import HolderSession


def hold(spec: dict[str, Any], session: HolderSession) -> None:
    marker = Path(spec["marker"])
    if spec.get("fail"):
        raise SystemExit("cannot hold: asked to fail")
    if spec.get("log"):
        logging.getLogger("sample").warning("connecting with %s", spec["log"])
    marker.write_text("held")
    session.ready()
    try:
        session.wait()
    finally:
        marker.unlink(missing_ok=True)
