"""Accessibility of the pages in a real browser: axe-core (vendored, see ``tests/axe.py``) run in
Debian's headless Chromium against a real ``cardiomapa serve`` holding the Palencia sample, on
SpatiaLite and on PostGIS, on a phone and on a desktop screen; and the keyboard basics of the
citizens' map.

Fails on axe violations of impact *serious* or *critical*. Screenshots go to ``test-artifacts/``
(``a11y-….png``). No basemap (``CARDIOMAPA_TILE_URL=""``): nothing leaves the machine.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from axe import assert_no_serious, describe
from conftest import BACKENDS, DATA_DIR, fresh_database
from playwright.sync_api import Browser, Page
from servers import ARTIFACTS, Server
from weeks import ORDINARY, clock_env

from geo.city import load_city_profile
from geo.io.files import read_layers
from geo.io.store import Store
from geo.services.tokens import issue_token

#: A 24/7 public device of the sample (data/defibrillators.geojson).
HEALTH_CENTRE = ("DEA Centro de Salud La Puebla (exterior)", 42.006837, -4.525959)
#: (name, viewport, context options) of the screens every page is checked on.
SCREENS = {
    "phone": {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True},
    "desktop": {"viewport": {"width": 1280, "height": 800}},
}


@dataclass
class Site:
    backend: str
    base: str
    planner_token: str


@pytest.fixture(scope="module", params=BACKENDS)
def site(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Site]:
    """The sample loaded into a fresh database, served by a real ``cardiomapa serve``."""
    folder = tmp_path_factory.mktemp(f"a11y-{request.param}")
    with fresh_database(request, folder) as url:
        city = load_city_profile(DATA_DIR / "city.json")
        with Store.open(url) as store:
            store.load(read_layers(DATA_DIR, city))
            secret = issue_token(store, role="planner", label="accessibility tests").secret
        # An ordinary Monday at 10:00: the pages show the same states in any week.
        server = Server(
            url, folder / "server.log", env={"CARDIOMAPA_TILE_URL": "", **clock_env(ORDINARY)}
        )
        try:
            yield Site(request.param, server.base, secret)
        finally:
            server.stop()


@pytest.fixture(params=list(SCREENS))
def page(request: pytest.FixtureRequest, browser: Browser) -> Iterator[Page]:
    context = browser.new_context(locale="es-ES", **SCREENS[request.param])  # type: ignore[arg-type]
    opened = context.new_page()
    opened.cm_screen = request.param  # type: ignore[attr-defined]
    yield opened
    context.close()


def screen(page: Page) -> str:
    return str(page.cm_screen)  # type: ignore[attr-defined]


def screenshot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"a11y-{name}-{screen(page)}.png"))


def assert_clean(page: Page, name: str) -> None:
    """No serious or critical violation (the generic check), and on these pages none at all:
    they are clean today, so a moderate or minor one is a regression too."""
    violations = assert_no_serious(page, name)
    assert violations == [], f"axe found lesser violations on {name}:\n{describe(violations)}"


def assert_not_covered(page: Page, selector: str) -> None:
    """Every element matching ``selector`` is on top at its centre (no control, legend or sheet
    hides it: WCAG 2.4.11, which axe does not check)."""
    covered = page.evaluate(
        """(selector) => [...document.querySelectorAll(selector)].map((e) => {
            const r = e.getBoundingClientRect();
            const top = document.elementFromPoint(r.x + r.width / 2, r.y + r.height / 2);
            const html = (node) => (node ? node.outerHTML.slice(0, 80) : "nothing");
            return top && (e === top || e.contains(top)) ? null : `${html(e)} under ${html(top)}`;
        }).filter(Boolean)""",
        selector,
    )
    assert page.locator(selector).count() > 0 and covered == [], covered


def wait_ready(page: Page) -> None:
    page.wait_for_selector("body[data-cm-ready]", state="attached", timeout=30_000)


def open_popup(page: Page) -> None:
    """Zoom in on the health centre's device (no clustering at 18) and open its popup."""
    name, lat, lon = HEALTH_CENTRE
    page.evaluate(
        "([lat, lon]) => cardiomapa.map.setView([lat, lon], 18, {animate: false})", [lat, lon]
    )
    page.wait_for_timeout(400)  # clusters re-form after the move
    page.locator(f".cm-device[title='{name}']").click()
    page.locator(".cm-popup").wait_for()
    page.wait_for_timeout(300)  # the popup's fade-in


def test_citizen_map_has_no_serious_violations(site: Site, page: Page) -> None:
    page.goto(site.base + "/")
    wait_ready(page)
    assert int(page.locator("body").get_attribute("data-cm-ready") or 0) > 0
    where = f"({screen(page)}, {site.backend})"
    assert_clean(page, f"the citizen map {where}")
    screenshot(page, "citizen")
    page.evaluate("([_name, lat, lon]) => cardiomapa.lookup(lat + 0.0005, lon)", HEALTH_CENTRE)
    page.locator("#cm-results li").first.wait_for()
    assert_clean(page, f"the citizen map with the nearest devices listed {where}")
    screenshot(page, "citizen-nearest")
    open_popup(page)
    assert_clean(page, f"the citizen map with a popup open {where}")
    assert_not_covered(page, ".leaflet-popup-close-button")
    screenshot(page, "citizen-popup")
    page.click(".cm-report-open")
    page.locator("#cm-report").wait_for()
    assert_clean(page, f"the citizen map's problem report dialog {where}")
    screenshot(page, "citizen-report")


def test_planner_login_and_map_have_no_serious_violations(site: Site, page: Page) -> None:
    page.goto(site.base + "/planificacion")
    assert_clean(page, f"the planners' sign-in page ({screen(page)}, {site.backend})")
    screenshot(page, "planner-login")
    page.get_by_label("Token").fill(site.planner_token)
    page.get_by_role("button", name="Entrar").click()
    wait_ready(page)
    assert_clean(page, f"the planners' map ({screen(page)}, {site.backend})")
    assert_not_covered(page, ".leaflet-control-layers-overlays input")
    screenshot(page, "planner-map")


def test_keyboard_reaches_the_nearest_lookup_on_the_citizen_map(site: Site, page: Page) -> None:
    page.goto(site.base + "/")
    wait_ready(page)
    reached: list[str] = []
    for _ in range(40):
        page.keyboard.press("Tab")
        focused = page.evaluate(
            """() => {
                const e = document.activeElement;
                return e ? (e.id || e.getAttribute('aria-label') || e.tagName) : '';
            }"""
        )
        reached.append(focused)
        if focused == "cm-locate":
            break
    assert reached[-1] == "cm-locate", f"Tab never reached «Usar mi ubicación»: {reached}"
    outline = page.evaluate(
        """() => {
            const s = getComputedStyle(document.activeElement);
            return [s.outlineStyle, s.outlineWidth, s.boxShadow];
        }"""
    )
    assert outline[0] != "none" or outline[2] != "none", f"no visible focus: {outline}"
    screenshot(page, "citizen-keyboard")
    page.context.grant_permissions(["geolocation"])
    _name, lat, lon = HEALTH_CENTRE
    page.context.set_geolocation({"latitude": lat + 0.0005, "longitude": lon})
    with page.expect_request("**/api/nearest?**"):
        page.keyboard.press("Enter")  # the focused button works from the keyboard
    page.locator("#cm-results li").first.wait_for()
