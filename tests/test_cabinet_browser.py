"""A cabinet's page, its A6 sheet and its QR code in a real browser: Debian's Chromium, headless,
driven by Playwright, at 390×844 (a phone), against a real ``cardiomapa serve`` holding the
Palencia sample (on SpatiaLite and on PostGIS).

The pages pass axe-core with no serious or critical violation; the 112 call is visible in the
first screen and is the first thing the keyboard reaches; every touch target is at least 44 px
high; a report is made in two taps with the keyboard alone; the QR code, drawn by the browser
from the served SVG and from the sheet, decodes to the page's public address; the sheet prints
to one A6 page. Screenshots are left in ``test-artifacts/cabinet-*.png``. The server's clock is
pinned to an ordinary Monday morning; no basemap, nothing leaves the machine.
"""

from __future__ import annotations

import datetime as dt
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import zxingcpp
from axe import assert_no_serious
from conftest import BACKENDS, DATA_DIR, fresh_database
from PIL import Image
from playwright.sync_api import Browser, Locator, Page
from servers import ARTIFACTS, Server, Watched, open_page
from weeks import ORDINARY, clock_at, clock_env

from geo.city import load_city_profile
from geo.io.files import read_layers
from geo.io.store import Store

PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1440, "height": 900}
#: The public address the server is configured with (not the address the tests reach it at).
PUBLIC = "https://dea.example.org"
#: DEA Farmacia Calle Mayor: open on a Monday morning, with an address.
PHARMACY = "dea-021"
#: DEA Centro de Salud La Puebla (exterior): open 24/7; the keyboard test reports it missing.
OUTSIDE = "dea-012"
#: DESA Instalaciones deportivas La Ensenada: the longest name of the sample's listed devices.
LONG_NAME = "dea-010"
#: What a person can tap or focus.
TARGETS = "a[href], button, input:not([type=hidden]), select, textarea, summary"


@dataclass
class Site:
    backend: str
    db_url: str
    base: str


@pytest.fixture(scope="module", params=BACKENDS)
def site(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Site]:
    folder = tmp_path_factory.mktemp(f"cabinet-{request.param}")
    with fresh_database(request, folder) as url:
        city = load_city_profile(DATA_DIR / "city.json")
        with Store.open(url, clock=clock_at(ORDINARY - dt.timedelta(hours=1))) as store:
            store.load(read_layers(DATA_DIR, city))
        env = {"CARDIOMAPA_TILE_URL": "", "CARDIOMAPA_PUBLIC_URL": PUBLIC, **clock_env(ORDINARY)}
        server = Server(url, folder / "server.log", env=env)
        try:
            yield Site(request.param, url, server.base)
        finally:
            server.stop()


def shot(page: Page, name: str, *, full_page: bool = True) -> bytes:
    ARTIFACTS.mkdir(exist_ok=True)
    return page.screenshot(path=str(ARTIFACTS / name), full_page=full_page)


def tab_to(page: Page, target: Locator, *, limit: int = 60) -> int:
    """Press Tab until ``target`` has the focus (what a keyboard user does); how many presses."""
    for presses in range(1, limit + 1):
        page.keyboard.press("Tab")
        if target.evaluate("el => el === document.activeElement"):
            return presses
    pytest.fail(f"Tab never reached {target}")


def small_targets(page: Page) -> list[str]:
    """Every visible tap target less than 44 px high (CSS pixels), described."""
    found: list[str] = page.evaluate(
        """(selector) => [...document.querySelectorAll(selector)]
            .filter((el) => el.getClientRects().length)
            .filter((el) => getComputedStyle(el).visibility !== "hidden")
            .map((el) => [el, el.getBoundingClientRect()])
            .filter(([, box]) => box.height < 44)
            .map(([el, box]) => `${el.tagName} «${el.textContent.trim()}» ${box.height}px`)""",
        TARGETS,
    )
    return found


def check(watched: Watched, name: str) -> None:
    assert not watched.problems, watched.problems
    assert_no_serious(watched.page, name)
    assert small_targets(watched.page) == [], name


def words(locator: Locator) -> str:
    """The element's text as read aloud (visually hidden words included), spaces normalised."""
    return " ".join((locator.text_content() or "").split())


def decode(png: bytes) -> list[str]:
    image = Image.open(io.BytesIO(png)).convert("L")
    return [barcode.text for barcode in zxingcpp.read_barcodes(image)]


def pending_reports(site: Site, device_id: str) -> list[str]:
    with Store.open(site.db_url) as store:
        reports, _ = store.reports(status=["pending"], device_id=device_id)
    return [str(report["kind"]) for report in reports]


def test_the_page_reads_on_a_phone_with_112_first(browser: Browser, site: Site) -> None:
    watched = open_page(browser, **PHONE)
    page = watched.page
    page.goto(f"{site.base}/dea/{PHARMACY}")
    page.get_by_role("heading", level=1, name="DEA Farmacia Calle Mayor").wait_for()
    shot(page, "cabinet-page-first-screen.png", full_page=False)
    shot(page, "cabinet-page.png")
    check(watched, f"cabinet page ({site.backend})")

    call = page.get_by_role("link", name="Emergencia: llame al 112")
    assert call.get_attribute("href") == "tel:112"
    box = call.bounding_box()
    assert box is not None and box["y"] >= 0 and box["y"] + box["height"] <= PHONE["height"]
    assert box["height"] >= 44 and box["width"] >= PHONE["width"] - 1  # the whole width
    assert tab_to(page, call) == 1  # the keyboard reaches it first
    assert page.locator("a[href]").first.get_attribute("href") == "tel:112"

    assert words(page.locator(".cm-state-now")) == "Estado ahora: Disponible ahora"
    assert words(page.locator(".cm-state-change")) == "Cierra hoy a las 14:00."
    assert "lunes a viernes 09:30–14:00 y 17:00–20:30" in page.locator(".cm-hours").inner_text()
    assert page.locator(".cm-checked").inner_text() == "15/04/2026"
    directions = page.get_by_role("link", name=re.compile("Cómo llegar a pie"))
    assert (directions.get_attribute("href") or "").startswith(
        "https://www.openstreetmap.org/directions?engine=fossgis_osrm_foot&route=%3B42."
    )
    # nothing is wider than the phone
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]


def test_the_page_and_its_sheet_read_on_a_desktop_too(browser: Browser, site: Site) -> None:
    watched = open_page(browser, **DESKTOP)
    page = watched.page
    for path, name in ((f"/dea/{PHARMACY}", "page"), (f"/dea/{PHARMACY}/hoja", "sheet")):
        page.goto(site.base + path)
        page.get_by_role("heading", level=1).first.wait_for()
        shot(page, f"cabinet-{name}-desktop.png", full_page=False)
        check(watched, f"cabinet {name} on a desktop ({site.backend})")
        assert page.evaluate("document.documentElement.scrollWidth") <= DESKTOP["width"]
        if name == "page":  # the printed sheet says «llame al 112» in words
            box = page.locator("a[href='tel:112']").first.bounding_box()
            assert box is not None and box["y"] >= 0
            assert box["y"] + box["height"] <= DESKTOP["height"]


def test_a_report_takes_two_taps_with_the_keyboard(browser: Browser, site: Site) -> None:
    assert pending_reports(site, OUTSIDE) == []
    watched = open_page(browser, **PHONE)
    page = watched.page
    page.goto(f"{site.base}/dea/{OUTSIDE}")
    tab_to(page, page.get_by_role("button", name="No está"))
    page.keyboard.press("Enter")  # tap 1
    page.get_by_role("heading", level=1, name="¿Enviar este aviso?").wait_for()
    assert page.url == f"{site.base}/dea/{OUTSIDE}/aviso"
    assert pending_reports(site, OUTSIDE) == []
    shot(page, "cabinet-confirm.png")
    check(watched, f"cabinet report confirmation ({site.backend})")
    assert tab_to(page, page.get_by_role("link", name="Emergencia: llame al 112"), limit=1) == 1

    tab_to(page, page.get_by_role("button", name="Enviar aviso"))
    page.keyboard.press("Enter")  # tap 2
    page.wait_for_url(f"{site.base}/dea/{OUTSIDE}?aviso=enviado")
    thanks = page.get_by_role("status")
    assert thanks.inner_text() == (
        "Gracias: el aviso queda pendiente de revisión por el Ayuntamiento."
    )
    assert words(page.locator(".cm-state-now")) == (
        "Estado ahora: Avisado como desaparecido hace 0 min — sin confirmar"
    )
    shot(page, "cabinet-reported.png")
    check(watched, f"cabinet page after a report ({site.backend})")
    assert pending_reports(site, OUTSIDE) == ["missing"]


def test_the_qr_code_opens_the_public_page(browser: Browser, site: Site) -> None:
    watched = open_page(browser, width=400, height=400)
    page = watched.page
    response = page.goto(f"{site.base}/dea/{PHARMACY}/qr.svg")
    assert response is not None and response.status == 200
    assert response.headers["content-type"] == "image/svg+xml"
    png = shot(page, "cabinet-qr.png", full_page=False)
    assert decode(png) == [f"{PUBLIC}/dea/{PHARMACY}"]
    assert not watched.problems, watched.problems


def test_the_a6_sheet_has_everything_and_prints_on_one_a6_page(
    browser: Browser, site: Site
) -> None:
    watched = open_page(browser, **PHONE)
    page = watched.page
    page.goto(f"{site.base}/dea/{PHARMACY}/hoja")
    page.get_by_role("heading", level=1, name="DEA").wait_for()
    shot(page, "cabinet-sheet.png")
    check(watched, f"cabinet sheet ({site.backend})")
    sheet = words(page.locator(".cm-sheet"))
    for line in (
        "DEA Farmacia Calle Mayor",
        "En una emergencia llame al 112",
        f"{PUBLIC.split('://')[1]}/dea/{PHARMACY}",
        "Escanee para ver si funciona, cómo llegar y avisar de un problema",
    ):
        assert line in sheet
    assert decode(page.locator(".cm-sheet-qr").screenshot()) == [f"{PUBLIC}/dea/{PHARMACY}"]

    # printed: one A6 page (105 × 148 mm = 298 × 420 pt), nothing cut off, the QR still reads
    pdf = page.pdf(prefer_css_page_size=True, print_background=True)
    (ARTIFACTS / "cabinet-sheet.pdf").write_bytes(pdf)
    assert len(re.findall(rb"/Type\s*/Page\b(?!s)", pdf)) == 1
    sizes = {
        (round(float(w)), round(float(h)))
        for w, h in re.findall(rb"/MediaBox\s*\[\s*0\s+0\s+([\d.]+)\s+([\d.]+)\s*\]", pdf)
    }
    assert sizes == {(298, 420)}
    page.emulate_media(media="print")
    page.set_viewport_size({"width": 397, "height": 559})  # A6 at 96 px an inch
    for device_id in (PHARMACY, LONG_NAME):
        page.goto(f"{site.base}/dea/{device_id}/hoja")
        assert page.locator(".cm-sheet-help").is_hidden()
        sheet, last = page.evaluate(
            """() => [".cm-sheet", ".cm-sheet-hint"].map(
                (selector) => document.querySelector(selector).getBoundingClientRect().toJSON())"""
        )
        assert abs(sheet["height"] - 559) < 2 and last["bottom"] <= sheet["bottom"], (sheet, last)
        png = shot(page, f"cabinet-sheet-print-{device_id}.png", full_page=False)
        assert decode(png) == [f"{PUBLIC}/dea/{device_id}"]


def test_a_device_citizens_are_not_shown_gets_a_spanish_404(browser: Browser, site: Site) -> None:
    watched = open_page(browser, **PHONE)
    page = watched.page
    response = page.goto(f"{site.base}/dea/dea-028")  # removed
    assert response is not None and response.status == 404
    page.get_by_role("heading", level=1, name="Desfibrilador no encontrado").wait_for()
    assert page.locator("a[href]").first.get_attribute("href") == "tel:112"
    watched.problems = [p for p in watched.problems if "404" not in p]  # the page's own status
    check(watched, f"cabinet 404 ({site.backend})")
