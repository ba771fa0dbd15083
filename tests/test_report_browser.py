"""The annual report in a real browser: Debian's Chromium, headless, offline.

The report written by ``cardiomapa report`` is opened from disk with every http(s) request
blocked; nothing may be attempted, nothing may fail, every chart must be drawn. Screenshots go to
``test-artifacts/`` (look at them after a run). ``cardiomapa report --pdf`` must print a real,
multi-page A4 PDF.

Playwright runs in a worker thread: its sync API allows one instance per thread, and the map
tests keep theirs open for the whole session.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pytest
from playwright.sync_api import ConsoleMessage, Route, sync_playwright
from typer.testing import CliRunner

from geo.cli import app
from tests.axe import assert_no_serious
from tests.conftest import DATA_DIR
from tests.servers import ARTIFACTS, CHROMIUM
from tests.servers import CHROMIUM_FLAGS as FLAGS

A4_PX = {"width": 794, "height": 1123}  # 210 × 297 mm at 96 px per inch
CHARTS = ["density", "zones", "week", "map-coverage", "map-gaps", "map-proposal"]
T = TypeVar("T")
runner = CliRunner()


def in_own_thread(work: Callable[..., T], *args: Any) -> T:
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(work, *args).result()


def write_report(folder: Path, *extra: str) -> Path:
    out = folder / "informe.html"
    result = runner.invoke(
        app,
        ["report", "--year", "2026", "--as-of", "2026-11-23", "--out", str(out),
         "--data-dir", str(DATA_DIR), *extra],
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    return out


@pytest.fixture(scope="module")
def chromium() -> Path:
    if not CHROMIUM.exists():
        pytest.fail("Chromium is not installed: run `make test` (scripts/install-browser.sh).")
    return CHROMIUM


@pytest.fixture(scope="module")
def report_file(chromium: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_report(tmp_path_factory.mktemp("report"))


@dataclass
class Seen:
    """What the page did and showed."""

    outside: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    charts: list[dict[str, Any]] = field(default_factory=list)
    images: list[dict[str, Any]] = field(default_factory=list)
    title: str = ""
    headings: list[str] = field(default_factory=list)
    overflow_px: int = 0
    print_overflow_px: int = 0
    axe: list[str] = field(default_factory=list)


def look_at(path: Path) -> Seen:
    """Open ``path`` offline at A4 width, record everything, save the screenshots."""
    seen = Seen()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=FLAGS)
        try:
            context = browser.new_context(viewport=A4_PX, locale="es-ES")
            page = context.new_page()

            def block(route: Route) -> None:
                seen.outside.append(route.request.url)
                route.abort()

            def on_console(message: ConsoleMessage) -> None:
                if message.type in ("error", "warning"):
                    seen.problems.append(f"console {message.type}: {message.text}")

            page.route("http*://**", block)
            page.on("console", on_console)
            page.on("pageerror", lambda error: seen.problems.append(f"page error: {error}"))
            page.on("requestfailed",
                    lambda request: seen.problems.append(f"failed: {request.url}"))  # fmt: skip
            page.on("request", lambda request: None if request.url.startswith("file://")
                    else seen.outside.append(request.url))  # fmt: skip
            page.goto(path.as_uri(), wait_until="load")
            seen.title = page.title()
            seen.headings = page.locator("h1, h2").all_inner_texts()
            seen.charts = page.evaluate(
                """() => [...document.querySelectorAll('svg.chart')].map(svg => {
                    const box = svg.getBoundingClientRect();
                    return {name: svg.dataset.chart, width: box.width, height: box.height,
                            shapes: svg.querySelectorAll('path, use').length,
                            label: svg.getAttribute('aria-label')};
                })"""
            )
            seen.images = page.evaluate(
                "() => [...document.images].map(i => ({src: i.src.slice(0, 40),"
                " width: i.naturalWidth, complete: i.complete}))"
            )
            seen.overflow_px = page.evaluate(
                "() => document.documentElement.scrollWidth - window.innerWidth"
            )
            # axe-core: no serious or critical violation (it raises); the lesser ones are kept
            seen.axe = [v["id"] for v in assert_no_serious(page, "the annual report")]
            ARTIFACTS.mkdir(exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / "report-first-page.png"))
            page.screenshot(path=str(ARTIFACTS / "report-full-page.png"), full_page=True)
            page.emulate_media(media="print")
            seen.print_overflow_px = page.evaluate(
                "() => document.documentElement.scrollWidth - window.innerWidth"
            )
            page.screenshot(path=str(ARTIFACTS / "report-print-media.png"), full_page=True)
            context.close()
        finally:
            browser.close()
    return seen


def test_the_report_renders_offline(report_file: Path) -> None:
    seen = in_own_thread(look_at, report_file)
    assert seen.outside == []
    assert seen.problems == []
    assert seen.title.startswith("Informe de evaluación 2026 · ")
    assert seen.headings[0] == "Informe de evaluación 2026"
    assert "3. Vidas salvadas estimadas" in seen.headings
    assert "11. Método y fuentes" in seen.headings
    assert [chart["name"] for chart in seen.charts] == CHARTS
    for chart in seen.charts:
        assert chart["width"] > 300 and chart["height"] > 100, chart
        assert chart["shapes"] > 20, chart
        assert chart["label"]
    assert all(image["complete"] and image["width"] > 0 for image in seen.images)
    assert seen.overflow_px <= 0 and seen.print_overflow_px <= 0  # nothing wider than A4
    for name in ("report-first-page.png", "report-full-page.png", "report-print-media.png"):
        assert (ARTIFACTS / name).stat().st_size > 10_000


def test_the_report_prints_to_a_multi_page_a4_pdf(chromium: Path, tmp_path: Path) -> None:
    pdf = tmp_path / "informe.pdf"
    write_report(tmp_path, "--pdf", str(pdf))
    data = pdf.read_bytes()
    assert data.startswith(b"%PDF-")
    pages = re.findall(rb"/Type\s*/Page\b(?!s)", data)
    assert len(pages) > 1
    sizes = {
        (round(float(w)), round(float(h)))
        for w, h in re.findall(rb"/MediaBox\s*\[\s*0\s+0\s+([\d.]+)\s+([\d.]+)\s*\]", data)
    }
    assert sizes == {(595, 842)}  # A4 in points
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "report.pdf").write_bytes(data)
