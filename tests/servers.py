"""A real ``cardiomapa serve`` process for the tests that need one (HTTP, browser, crash), and
the headless Chromium the browser tests drive."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx
import psutil
import pytest
from fastapi.testclient import TestClient
from playwright.sync_api import Browser, ConsoleMessage, Page, Request

from geo.io.store import Store

T = TypeVar("T")

#: Debian's Chromium (``make test`` installs it), headless, as root, with nothing phoning home.
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--no-first-run",
]  # fmt: skip
#: Screenshots and printed files the browser tests leave to be looked at (gitignored).
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"


def eventually(read: Callable[[], T], done: Callable[[T], bool], *, within_s: float = 5.0) -> T:
    """``read()`` until ``done`` holds of its value (``within_s`` at most); the last value read.

    For what another process is told asynchronously (PostgreSQL's notifications reach a
    worker's listener a few milliseconds after the commit).
    """
    deadline = time.monotonic() + within_s
    while True:
        value = read()
        if done(value) or time.monotonic() > deadline:
            return value
        time.sleep(0.01)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Server:
    """``cardiomapa serve`` in its own process; its log goes to a file (a pipe would fill up).

    ``env`` adds settings (``CARDIOMAPA_…``) to the process environment; ``workers`` > 1 serves
    through that many uvicorn worker processes (``serve --workers``).
    """

    def __init__(
        self, db_url: str, log: Path, *, env: dict[str, str] | None = None, workers: int = 1
    ) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log = log
        script = Path(sys.executable).parent / "cardiomapa"
        environment = {**os.environ, "CARDIOMAPA_DATABASE_URL": db_url, **(env or {})}
        with log.open("w") as output:
            self.process = subprocess.Popen(
                [str(script), "serve", "--port", str(self.port), "--workers", str(workers)],
                env=environment,
                stdout=output,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{self.base}/api/health", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                pytest.fail(f"the server did not start:\n{log.read_text()}")
            time.sleep(0.1)

    def workers(self) -> list[psutil.Process]:
        """The supervisor's worker processes (not multiprocessing's resource tracker)."""
        children = psutil.Process(self.process.pid).children()
        return [child for child in children if "spawn_main" in " ".join(child.cmdline())]

    def wait_until_listening(self, workers: int, *, within_s: float = 120) -> None:
        """Until ``workers`` worker processes listen on the port: one answering /api/health says
        nothing of the others, which may still be importing on a busy machine."""
        listening = eventually(
            lambda: [w for w in self.workers() if listens(w, self.port)],
            lambda found: len(found) == workers,
            within_s=within_s,
        )
        assert len(listening) == workers, (
            f"{len(listening)} worker(s) listen:\n{self.log.read_text()}"
        )

    def kill(self) -> None:
        """SIGKILL: no shutdown handler, no flush, no rollback in the process."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()


def listens(process: psutil.Process, port: int) -> bool:
    """Whether ``process`` listens on TCP ``port`` (``False`` once it is gone)."""
    try:
        connections = process.net_connections(kind="tcp")
    except psutil.NoSuchProcess:
        return False
    return any(
        c.status == psutil.CONN_LISTEN and c.laddr and c.laddr.port == port for c in connections
    )


@dataclass
class Api:
    """The app in process (ASGI, with its lifespan), its store, and tokens by who holds them."""

    client: TestClient
    store: Store
    tokens: dict[str, str]

    def call(self, method: str, url: str, who: str | None = None, **kwargs: Any) -> httpx.Response:
        """Request ``url`` as ``who`` (a key of ``tokens``; ``None``: without a token)."""
        headers = dict(kwargs.pop("headers", {}))
        if who is not None:
            headers["Authorization"] = f"Bearer {self.tokens[who]}"
        return self.client.request(method, url, headers=headers, **kwargs)


@dataclass
class Watched:
    """A browser page and everything that went wrong in it (console errors, page errors, failed
    requests)."""

    page: Page
    problems: list[str] = field(default_factory=list)

    def clear(self) -> None:
        self.problems.clear()


def open_page(
    browser: Browser, *, width: int = 1280, height: int = 800, **options: object
) -> Watched:
    """A new page in its own context (Spanish locale), watched for problems."""
    context = browser.new_context(
        viewport={"width": width, "height": height}, locale="es-ES", **options
    )  # type: ignore[arg-type]
    page = context.new_page()
    watched = Watched(page)

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error":
            watched.problems.append(f"console: {message.text}")

    page.on("console", on_console)
    page.on("pageerror", lambda error: watched.problems.append(f"page error: {error}"))
    page.on("requestfailed", lambda request: on_failed(watched, request))
    return watched


def on_failed(watched: Watched, request: Request) -> None:
    # Leaflet cancels the tiles of a zoom level it leaves: an abort is not a failure.
    if request.failure != "net::ERR_ABORTED":
        watched.problems.append(f"request failed: {request.url} ({request.failure})")
