"""Maps that keep their bearings without tiles, in a real browser (Debian's Chromium, headless,
Playwright) against a real ``cardiomapa serve`` with the Palencia sample and no basemap
(``CARDIOMAPA_TILE_URL=""``).

The desk's moderation map and the portal's place picker draw the municipal boundary, the CEAS
zones and the registered devices as SVG paths (counted here against the layers); the desk warns,
next to the item, of a pin far from its address and of a possible duplicate; axe finds nothing
serious on either page.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from axe import assert_no_serious
from conftest import DATA_DIR, fresh_database
from playwright.sync_api import Browser, Page
from servers import ARTIFACTS, Server, open_page
from weeks import ORDINARY, clock_at, clock_env

from geo.city import load_city_profile
from geo.core.nearest import listed
from geo.io.files import read_layers
from geo.io.store import Store
from geo.services import registry
from geo.services.tokens import authenticate, issue_token

FAR = "DEA Centro de salud (en otra calle)"
TWIN = "DEA Calle Mayor repetido"


@dataclass
class Site:
    base: str
    planner: str
    entity: str
    zones: int
    devices: int


@pytest.fixture(scope="module", params=["spatialite"])
def site(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Site]:
    """The sample; ent-002 registers a device 1.8 km from its own address, and one 10 m from
    dea-001."""
    folder = tmp_path_factory.mktemp("bearings")
    with fresh_database(request, folder) as url:
        city = load_city_profile(DATA_DIR / "city.json")
        with Store.open(url, clock=clock_at(ORDINARY - dt.timedelta(hours=1))) as store:
            store.load(read_layers(DATA_DIR, city))
            planner = issue_token(store, role="planner", label="Marta (planificación)").secret
            entity_token = issue_token(store, role="entity", entity_id="ent-002").secret
            entity = authenticate(store, entity_token)
            for name, address, (lon, lat) in (
                (FAR, "Avda. Modesto Lafuente, 2", (-4.5045, 42.0069)),
                (TWIN, None, (-4.54508, 42.00955)),
            ):
                registry.register_device(
                    store, city, entity,
                    properties={"name": name, "access": "yes", "opening_hours": "24/7",
                                "address": address},
                    geometry={"type": "Point", "coordinates": [lon, lat]},
                    today=dt.date(2026, 12, 7),
                )  # fmt: skip
            zones = len(store.read_layer("ceas"))
            # the devices citizens are shown: verified, fixed (not mobile), not removed
            devices = int(listed(store.read_layer("defibrillators")).sum())
        server = Server(
            url, folder / "server.log", env={"CARDIOMAPA_TILE_URL": "", **clock_env(ORDINARY)}
        )
        try:
            yield Site(server.base, planner, entity_token, zones, devices)
        finally:
            server.stop()


def layer_counts(page: Page, box: str) -> dict[str, int]:
    """SVG paths of each context layer drawn inside ``box``."""
    page.wait_for_selector(f"{box} path.cm-ctx-device", state="attached", timeout=30_000)
    return {
        kind: page.locator(f"{box} path.cm-ctx-{kind}").count()
        for kind in ("boundary", "zone", "device")
    }


def no_tiles(page: Page) -> None:
    assert page.locator(".leaflet-tile").count() == 0


def test_the_desk_map_has_bearings_and_the_warnings_sit_by_their_item(
    site: Site, browser: Browser
) -> None:
    watched = open_page(browser, width=1280, height=900)
    page = watched.page
    page.clock.set_fixed_time(ORDINARY)
    page.goto(f"{site.base}/gestion")
    page.get_by_label("Token de acceso").fill(site.planner)
    page.keyboard.press("Enter")
    page.get_by_role("heading", name="Moderación: desfibriladores pendientes").wait_for()
    counts = layer_counts(page, "#desk-map")
    assert counts == {"boundary": 1, "zone": site.zones, "device": site.devices}, counts
    no_tiles(page)
    # The pending devices stay on top of the context (their pane is above it).
    assert page.locator("#desk-map path.cm-desk-new").count() >= 2

    far = page.locator("li.cm-card", has_text=FAR)
    warning = far.locator('[data-placement="far_from_address"]')
    assert warning.is_visible()
    assert "Posible posición errónea" in warning.inner_text()
    assert "Modesto Lafuente" in warning.inner_text()
    assert far.locator('[data-placement="near_other"]').count() == 0
    twin = page.locator("li.cm-card", has_text=TWIN)
    duplicate = twin.locator('[data-placement="near_other"]')
    assert duplicate.is_visible() and "Posible duplicado" in duplicate.inner_text()
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "desk-bearings.png"), full_page=True)
    assert_no_serious(page, "desk queue with bearings")
    assert watched.problems == [], watched.problems
    page.context.close()


def test_the_place_picker_has_bearings(site: Site, browser: Browser) -> None:
    watched = open_page(browser, width=390, height=844)
    page = watched.page
    page.clock.set_fixed_time(ORDINARY)
    page.goto(f"{site.base}/entidades")
    page.fill("#f-token", site.entity)
    page.get_by_role("button", name="Entrar").click()
    page.wait_for_url(f"{site.base}/entidades")
    watched.clear()  # the sign-in page answers 401 by design, which Chromium logs
    page.goto(f"{site.base}/entidades/nuevo")
    page.wait_for_selector("[data-place-ready]", state="attached")
    counts = layer_counts(page, ".cm-place-map")
    assert counts == {"boundary": 1, "zone": site.zones, "device": site.devices}, counts
    no_tiles(page)
    # The context takes no tap: a click on the map still places the pin.
    box = page.locator(".cm-place-map")
    width, height = box.evaluate("node => [node.clientWidth, node.clientHeight]")
    box.click(position={"x": width / 2, "y": height / 2})
    assert page.locator("[data-place-status]").inner_text().startswith("Punto marcado")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "picker-bearings.png"), full_page=True)
    assert_no_serious(page, "place picker with bearings")
    assert watched.problems == [], watched.problems
    page.context.close()
