"""Headless Chromium for the page tests: the DOM a page leaves once its scripts ran, with no network."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest

CHROMIUM = next((path for name in ("chromium", "chromium-browser", "google-chrome") if (path := shutil.which(name))),
                None)
needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason="headless Chromium is not installed (apt-get install "
                                                              "chromium; CI's workflow installs it)")


def dump_dom(url: str, budget_ms: int = 15_000, timeout_s: float = 120) -> str:
    """The DOM of ``url`` after its scripts ran (virtual time, so timers settle). Every request to the network
    goes to a proxy that is not there: a page that needs the network fails here."""
    found = subprocess.run(
        [CHROMIUM, "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run", "--proxy-server=127.0.0.1:9",
         f"--virtual-time-budget={budget_ms}", "--dump-dom", url],
        capture_output=True, text=True, timeout=timeout_s)
    assert found.returncode == 0, found.stderr[-2000:]
    return found.stdout


def body_data(dom: str) -> dict[str, str]:
    """The ``data-*`` attributes of the page's ``<body>``, by their dataset names (``data-drawn-ms``: drawnMs)."""
    body = re.search(r"<body([^>]*)>", dom)
    attributes = dict(re.findall(r'data-([\w-]+)="([^"]*)"', body.group(1) if body else ""))
    return {re.sub(r"-(\w)", lambda m: m.group(1).upper(), k): v for k, v in attributes.items()}
