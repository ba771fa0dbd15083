"""The open-data page in Debian's headless Chromium against a real ``cardiomapa serve`` with the
Palencia sample: axe-clean on a phone and a desktop screen, and reached from both maps' panels.
No basemap (``CARDIOMAPA_TILE_URL=""``): nothing leaves the machine."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from axe import assert_no_serious, describe
from conftest import DATA_DIR
from playwright.sync_api import Browser, Page
from servers import ARTIFACTS, Server
from weeks import ORDINARY, clock_env

from geo.city import load_city_profile
from geo.io.files import read_layers
from geo.io.store import Store
from geo.services.tokens import issue_token

SCREENS = {
    "phone": {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True},
    "desktop": {"viewport": {"width": 1440, "height": 900}},
}
LINK_TEXT = "Datos abiertos: descargas y servicio para QGIS"


@dataclass
class Site:
    base: str
    planner_token: str


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    """The sample in a SpatiaLite file, served by a real ``cardiomapa serve`` (the page reads
    the store only through the exports, which test_export.py runs on both backends)."""
    folder: Path = tmp_path_factory.mktemp("open-data")
    url = f"sqlite:///{folder / 'cardiomapa.sqlite'}"
    city = load_city_profile(DATA_DIR / "city.json")
    with Store.open(url) as store:
        store.load(read_layers(DATA_DIR, city))
        secret = issue_token(store, role="planner", label="open data tests").secret
    server = Server(
        url, folder / "server.log", env={"CARDIOMAPA_TILE_URL": "", **clock_env(ORDINARY)}
    )
    try:
        yield Site(server.base, secret)
    finally:
        server.stop()


@pytest.fixture(params=list(SCREENS))
def page(request: pytest.FixtureRequest, browser: Browser) -> Iterator[Page]:
    context = browser.new_context(locale="es-ES", **SCREENS[request.param])  # type: ignore[arg-type]
    opened = context.new_page()
    opened.cm_screen = request.param  # type: ignore[attr-defined]
    yield opened
    context.close()


def test_the_open_data_page_is_accessible(site: Site, page: Page) -> None:
    screen = str(page.cm_screen)  # type: ignore[attr-defined]
    response = page.goto(site.base + "/datos")
    assert response is not None and response.status == 200
    assert page.locator("h1").inner_text() == "Datos abiertos de Palencia"
    violations = assert_no_serious(page, f"the open-data page ({screen})")
    assert violations == [], describe(violations)
    assert page.locator("#ogc-url").inner_text() == f"{site.base}/ogc"
    # Nothing wider than the screen on a phone.
    width = page.evaluate("() => document.documentElement.scrollWidth")
    assert width <= SCREENS[screen]["viewport"]["width"]  # type: ignore[index]
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"open-data-{screen}.png"), full_page=True)


def test_both_maps_link_to_the_open_data_page(site: Site, page: Page) -> None:
    page.goto(site.base + "/")
    page.wait_for_selector("body[data-cm-ready]", state="attached", timeout=30_000)
    link = page.get_by_role("link", name=LINK_TEXT)
    assert link.get_attribute("href") == "/datos"
    page.goto(site.base + "/planificacion")
    page.get_by_role("link", name="Datos abiertos").click()
    page.wait_for_url(site.base + "/datos")
    page.goto(site.base + "/planificacion")
    page.get_by_label("Token").fill(site.planner_token)
    page.get_by_role("button", name="Entrar").click()
    page.wait_for_selector("body[data-cm-ready]", state="attached", timeout=60_000)
    planner_link = page.locator("#cm-panel").get_by_role("link", name=LINK_TEXT)
    planner_link.scroll_into_view_if_needed()
    planner_link.click()
    page.wait_for_url(site.base + "/datos")
