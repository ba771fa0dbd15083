"""The annual report in a real browser: Debian's Chromium, headless, offline.

The report written by ``cardiomapa report`` is opened from disk with every http(s) request
blocked; nothing may be attempted, nothing may fail, every chart must be drawn. Screenshots go to
``test-artifacts/`` (look at them after a run). ``cardiomapa report --pdf`` must print a real,
multi-page A4 PDF whose pages are filled and whose headings stay with their content, read back
with poppler's ``pdftotext`` (:mod:`tests.pdf_pages`).

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
from geo.render.report import print_pdf
from tests.axe import assert_no_serious
from tests.conftest import DATA_DIR
from tests.pdf_pages import heading_texts, read_pages, short_pages, stranded_headings
from tests.servers import ARTIFACTS, CHROMIUM
from tests.servers import CHROMIUM_FLAGS as FLAGS
from tests.weeks import ORDINARY, clock_env

A4_PX = {"width": 794, "height": 1123}  # 210 × 297 mm at 96 px per inch
#: Every page but the last (and one before a page a figure fills) is at least this full.
MIN_FILL = 0.5
#: A heading is followed on its page by at least this much of a page of its content.
MIN_FOLLOW = 0.1
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
        env=clock_env(ORDINARY),
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


@pytest.fixture(scope="module")
def printed_report(chromium: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The sample's report and its PDF, printed once for the tests that read it."""
    folder = tmp_path_factory.mktemp("printed")
    pdf = folder / "informe.pdf"
    return write_report(folder, "--pdf", str(pdf)), pdf


def test_the_report_prints_to_a_multi_page_a4_pdf(printed_report: tuple[Path, Path]) -> None:
    _, pdf = printed_report
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


def test_the_printed_pages_are_filled_and_headings_keep_their_content(
    printed_report: tuple[Path, Path],
) -> None:
    html, pdf = printed_report
    pages = read_pages(pdf)
    fills = [f"{page.fill:.0%}" for page in pages]
    assert len(pages) > 8, fills
    assert short_pages(pages, min_fill=MIN_FILL) == [], fills
    headings = heading_texts(html.read_text(encoding="utf-8"))
    stranded, found = stranded_headings(pages, headings, min_follow=MIN_FOLLOW)
    assert stranded == []
    assert found == headings  # every heading was found in the PDF, so each one was checked


def test_the_page_checks_see_a_bad_layout(chromium: Path, tmp_path: Path) -> None:
    """The same checks on a page printed without break rules: a heading left at the bottom of
    page 1 (its figure moved on), page 2 a quarter full; page 3 is short too, but a figure fills
    page 4."""
    block = '<div style="height: {}mm"></div>'
    figure = (
        '<figure style="margin: 0; break-inside: avoid"><div style="height: {}mm;'
        ' background: #ccc"></div><figcaption>Figura {}.</figcaption></figure>'
    )
    page = f"""<!DOCTYPE html><html lang="es"><head><meta charset="utf-8">
<style>@page {{ size: A4; margin: 17mm 15mm 16mm; }} body {{ margin: 0; font: 10pt sans-serif; }}
h2 {{ font-size: 14pt; margin: 0; }} p {{ margin: 0; }}</style></head><body>
<p>Primera página.</p>{block.format(200)}<h2>Sección suelta</h2><p>Introducción.</p>
{figure.format(120, 1)}
<p style="break-before: page">Tercera página.</p>{block.format(60)}
{figure.format(230, 2)}
</body></html>"""
    html = tmp_path / "mal.html"
    html.write_text(page, encoding="utf-8")
    pages = read_pages(print_pdf(html, tmp_path / "mal.pdf", chromium=chromium))
    assert len(pages) == 4, [p.lines() for p in pages]
    assert [short[:10] for short in short_pages(pages, min_fill=MIN_FILL)] == ["página 2: "]
    stranded, found = stranded_headings(pages, {"Sección suelta"}, min_follow=MIN_FOLLOW)
    assert found == {"Sección suelta"}
    assert [item[:28] for item in stranded] == ["página 1: «Sección suelta» ("]
