"""The maps in a real browser: Debian's Chromium, headless, driven by Playwright, against a real
``cardiomapa serve`` holding the Palencia sample (on SpatiaLite and on PostGIS).

Screenshots go to ``test-artifacts/`` at the project root (look at them after a run). Nothing
leaves the machine: there is no basemap (``CARDIOMAPA_TILE_URL=""``) except in the test that
serves its own tiles, and shared files are opened with every http(s) request blocked.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import http.server
import itertools
import json
import math
import os
import re
import struct
import subprocess
import sys
import threading
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, cast

import httpx
import pytest
from axe import assert_no_serious
from conftest import BACKENDS, DATA_DIR, fresh_database
from playwright.sync_api import (
    Browser,
    Page,
)
from servers import ARTIFACTS, Server, Watched, open_page
from weeks import ORDINARY, clock_env

from geo.city import load_city_profile
from geo.core.layers import Layers
from geo.core.outcome_model import HOME_ARRESTS_NOTE
from geo.io.files import read_layers
from geo.io.store import Store
from geo.services.inputs import device_finder
from geo.services.tokens import issue_token

#: A 24/7 public device of the sample (data/defibrillators.geojson), and a point 60 m north.
HEALTH_CENTRE = {
    "id": "dea-012",
    "name": "DEA Centro de Salud La Puebla (exterior)",
    "lon": -4.525959,
    "lat": 42.006837,
}
NEAR = (42.006837 + 60 / 111_195, -4.525959)
PLANNER_LAYERS = [
    "Zonas CEAS por cobertura", "Alcance de los desfibriladores",
    "Huecos sin cobertura (ordenados)", "Desfibriladores", "Entidades del clúster",
    "Cohousing / coliving", "Propuesta de nuevos desfibriladores",
]  # fmt: skip


@dataclass
class Site:
    backend: str
    db_url: str
    base: str
    planner_token: str
    listed: int  # devices the citizen map lists (verified, active, fixed)


@pytest.fixture(scope="module", params=BACKENDS)
def site(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Site]:
    """The sample loaded into a fresh database, served by a real ``cardiomapa serve``."""
    folder = tmp_path_factory.mktemp(f"site-{request.param}")
    with fresh_database(request, folder) as url:
        city = load_city_profile(DATA_DIR / "city.json")
        with Store.open(url) as store:
            store.load(read_layers(DATA_DIR, city))
            secret = issue_token(store, role="planner", label="browser tests").secret
            listed = len(device_finder(store, city))
        # An ordinary Monday at 10:00: which devices are open "now" does not depend on the run.
        server = Server(
            url, folder / "server.log", env={"CARDIOMAPA_TILE_URL": "", **clock_env(ORDINARY)}
        )
        try:
            yield Site(request.param, url, server.base, secret, listed)
        finally:
            server.stop()


def wait_ready(page: Page) -> None:
    # wait_for_function would evaluate a string in the page, which its CSP forbids (no eval).
    page.wait_for_selector("body[data-cm-ready]", state="attached", timeout=30_000)


def screenshot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / name))


def set_view(page: Page, lat: float, lon: float, zoom: int) -> None:
    page.evaluate(
        "([lat, lon, zoom]) => cardiomapa.map.setView([lat, lon], zoom, {animate: false})",
        [lat, lon, zoom],
    )
    page.wait_for_timeout(400)  # clusters re-form after the move
    view = page.evaluate("() => [cardiomapa.map.getCenter(), cardiomapa.map.getZoom()]")
    assert view[1] == zoom and abs(view[0]["lat"] - lat) < 1e-5, f"the map is at {view}"


def shown_devices(page: Page) -> int:
    """Devices drawn in view: single markers plus the counts on cluster icons."""
    return int(
        page.evaluate(
            """() => document.querySelectorAll('.leaflet-marker-icon.cm-device').length +
            [...document.querySelectorAll('.cm-cluster span')]
                .reduce((n, s) => n + Number(s.textContent), 0)"""
        )
    )


def legend_counts(page: Page) -> list[int]:
    texts = page.locator("#cm-legend .cm-count").all_inner_texts()
    return [int(text.strip("()")) for text in texts]


def distance_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    x = math.radians(lon2 - lon1) * math.cos(math.radians((lat1 + lat2) / 2))
    return math.hypot(x, math.radians(lat2 - lat1)) * 6_371_000


# --- citizens ---------------------------------------------------------------------------------


def test_citizen_map_loads_clean_with_every_device(site: Site, browser: Browser) -> None:
    watched = open_page(browser)
    page = watched.page
    page.goto(site.base + "/")
    wait_ready(page)
    assert page.title() == "Desfibriladores de Palencia"
    assert int(page.locator("body").get_attribute("data-cm-ready") or 0) == site.listed
    assert sum(legend_counts(page)) == site.listed
    screenshot(page, f"citizen-map-{site.backend}.png")
    page.click(".leaflet-control-zoom-out")
    page.click(".leaflet-control-zoom-out")
    page.wait_for_timeout(800)
    assert shown_devices(page) == site.listed  # every device, in a cluster or on its own
    assert page.locator(".cm-cluster").count() >= 1  # grouped at this zoom
    assert watched.problems == []


def test_nearest_lookup_from_a_click_lists_the_right_device_first(
    site: Site, browser: Browser
) -> None:
    with Store.open(site.db_url) as store:
        devices = store.read_layer("defibrillators")
    others = devices[devices["id"] != HEALTH_CENTRE["id"]]
    nearest_other = min(
        distance_m(*NEAR, lat, lon)
        for lon, lat in zip(others.geometry.x, others.geometry.y, strict=True)
    )
    assert nearest_other > 100  # so the answer does not depend on the time of day

    watched = open_page(browser)
    page = watched.page
    page.goto(site.base + "/")
    wait_ready(page)
    set_view(page, *NEAR, 16)
    point = page.evaluate(
        "([lat, lon]) => cardiomapa.map.latLngToContainerPoint([lat, lon])", list(NEAR)
    )
    box = page.locator(".folium-map").bounding_box()
    assert box is not None
    x, y = box["x"] + point["x"], box["y"] + point["y"]
    under = page.evaluate(
        "([x, y]) => !document.elementFromPoint(x, y).closest('.leaflet-marker-icon, #cm-panel')",
        [x, y],
    )
    assert under, "the point to click is covered by a marker or the panel"
    with page.expect_request("**/api/nearest?**") as asked:
        page.mouse.click(x, y)  # a real click on the map
    query = dict(part.split("=") for part in asked.value.url.split("?", 1)[1].split("&"))
    assert float(query["lat"]) == pytest.approx(NEAR[0], abs=2e-5)
    assert float(query["lon"]) == pytest.approx(NEAR[1], abs=2e-5)
    first = page.locator("#cm-results li").first
    first.wait_for()
    assert first.get_attribute("data-device-id") == HEALTH_CENTRE["id"]
    text = first.inner_text()
    assert HEALTH_CENTRE["name"] in text and "Disponible ahora" in text
    assert "m · 1 min a pie" in text  # ~60 m × 1.3 detour
    directions = first.locator("a").get_attribute("href") or ""
    assert directions.startswith(
        "https://www.openstreetmap.org/directions?engine=fossgis_osrm_foot"
    )
    assert page.locator("path.leaflet-interactive[stroke-dasharray='8 8']").count() == 1  # the line
    assert page.locator("#cm-status").inner_text().startswith(("Los 3", "El desfibrilador"))
    screenshot(page, f"citizen-nearest-{site.backend}.png")
    assert watched.problems == []


def open_health_centre_popup(page: Page, url: str) -> None:
    """Open the map, zoom in on the health centre's device (no clustering at 18), click it."""
    page.goto(url)
    wait_ready(page)
    set_view(page, HEALTH_CENTRE["lat"], HEALTH_CENTRE["lon"], 18)
    page.locator(f".cm-device[title='{HEALTH_CENTRE['name']}']").click()
    page.locator(".cm-popup").wait_for()


def test_clicking_a_device_opens_its_popup(site: Site, browser: Browser) -> None:
    watched = open_page(browser)
    page = watched.page
    open_health_centre_popup(page, site.base + "/")
    popup = page.locator(".cm-popup")
    popup.wait_for()
    assert popup.get_attribute("data-device-id") == HEALTH_CENTRE["id"]
    text = popup.inner_text()
    for expected in (
        HEALTH_CENTRE["name"],
        "Disponible ahora · abierto las 24 horas",
        "cabina exterior junto a la entrada — Av. Modesto Lafuente 2",
        "esta semana: abierto las 24 horas, todos los días",
        "uso público",
        "en el exterior",
        "15/09/2026",
        "979 000 112",
        "Avisar de un problema",
    ):
        assert expected in text, f"{expected!r} missing from the popup:\n{text}"
    page.wait_for_timeout(300)
    screenshot(page, f"citizen-popup-{site.backend}.png")
    assert watched.problems == []


def test_a_citizen_reports_a_problem_from_the_popup(site: Site, browser: Browser) -> None:
    watched = open_page(browser)
    page = watched.page
    open_health_centre_popup(page, site.base + "/")
    page.click(".cm-report-open")
    page.select_option("#cm-report-kind", "broken")
    page.fill("#cm-report-message", "La luz de estado parpadea en rojo.")
    page.click("#cm-report-send")
    result = page.locator("#cm-report-result")
    result.filter(has_text="Gracias").wait_for()
    assert "El equipo municipal lo revisará" in result.inner_text()
    with Store.open(site.db_url) as store:
        reports, _count = store.reports(device_id=HEALTH_CENTRE["id"], limit=10, offset=0)
    assert (reports[0]["kind"], reports[0]["message"]) == (
        "broken", "La luz de estado parpadea en rojo.",
    )  # fmt: skip
    # Unconfirmed, the report marks the device on the map at once; dismissed, it is usable again
    # (and the module's other tests find the site as it was).
    assert _map_state(site, str(HEALTH_CENTRE["id"])) == "reported"
    with Store.open(site.db_url) as store:
        store.review_report(reports[0]["id"], status="rejected", note="prueba", actor="tests")
    time.sleep(1.1)  # the server checks the registry's revision once a second
    assert _map_state(site, str(HEALTH_CENTRE["id"])) == "open"
    assert watched.problems == []


def _map_state(site: Site, device_id: str) -> str:
    data = httpx.get(f"{site.base}/api/map/devices", timeout=30).json()
    column = data["columns"]
    row = next(r for r in data["rows"] if r[column.index("id")] == device_id)
    return str(data["states"][row[column.index("state")]])


def test_a_point_outside_the_municipality_gets_a_clear_message(
    site: Site, browser: Browser
) -> None:
    watched = open_page(browser)
    page = watched.page
    page.goto(site.base + "/")
    wait_ready(page)
    page.evaluate("cardiomapa.lookup(43.0, -4.53)")
    status = page.locator("#cm-status")
    status.filter(has_text="fuera del término municipal de Palencia").wait_for()
    assert page.locator("#cm-results li").count() == 0
    # The API answered 422, which the browser logs; nothing else went wrong.
    assert [p for p in watched.problems if "422" not in p] == []


def test_citizen_map_on_a_phone(site: Site, browser: Browser) -> None:
    watched = open_page(browser, width=390, height=844, is_mobile=True, has_touch=True)
    page = watched.page
    page.goto(site.base + "/")
    wait_ready(page)
    panel = page.locator("#cm-panel").bounding_box()
    assert panel is not None
    assert panel["y"] > 844 / 2 and panel["width"] == pytest.approx(390, abs=2)  # a bottom sheet
    screenshot(page, f"citizen-phone-{site.backend}.png")
    assert watched.problems == []


# --- planners ---------------------------------------------------------------------------------


def sign_in(page: Page, site: Site) -> None:
    page.goto(site.base + "/planificacion")
    page.fill("#token", site.planner_token)
    page.click("button[type=submit]")
    wait_ready(page)


def test_planner_map_shows_every_layer_and_recomputes(site: Site, browser: Browser) -> None:
    watched = open_page(browser)
    page = watched.page
    sign_in(page, site)
    watched.problems[:] = [p for p in watched.problems if "401" not in p]  # the sign-in form
    labels = [
        label.strip()
        for label in page.locator(".leaflet-control-layers-overlays label").all_inner_texts()
    ]
    assert labels == PLANNER_LAYERS
    assert page.locator(".leaflet-control-scale").count() == 1
    assert page.locator("#cm-legend").inner_text().startswith("Cobertura de la zona")
    assert page.locator(".cm-badge.cm-proposal").count() == 10  # numbered, in greedy order
    assert page.locator(".cm-badge.cm-proposal").first.inner_text() == "1"
    screenshot(page, f"planner-map-{site.backend}.png")
    page.select_option("#cm-day", "1")
    page.select_option("#cm-hour", "12")
    page.fill("#cm-radius", "300")
    page.fill("#cm-new", "5")
    assert page.locator("#cm-objective").input_value() == "residentes"
    page.click("#cm-selector button[type=submit]")
    page.wait_for_url("**/planificacion?dia=1&hora=12&radio_m=300&nuevos=5&objetivo=residentes")
    wait_ready(page)
    summary = page.locator("#cm-summary").inner_text()
    assert summary.startswith("martes ") and "12:30, radio 300 m" in summary
    assert summary.endswith("Con 5 nuevos: " + summary.rsplit("Con 5 nuevos: ", 1)[1])
    assert page.locator(".cm-badge.cm-proposal").count() == 5
    screenshot(page, f"planner-map-tuesday-{site.backend}.png")
    # The same proposal by lives saved: chosen from the keyboard, said in the summary.
    page.focus("#cm-objective")
    page.select_option("#cm-objective", label="vidas salvadas")
    page.keyboard.press("Tab")  # to «Recalcular», right after it
    assert page.evaluate("() => document.activeElement.textContent") == "Recalcular"
    page.keyboard.press("Enter")
    page.wait_for_url("**/planificacion?dia=1&hora=12&radio_m=300&nuevos=5&objetivo=vidas")
    wait_ready(page)
    assert page.locator("#cm-objective").input_value() == "vidas"
    summary = page.locator("#cm-summary").inner_text()
    assert "Con 5 nuevos elegidos por vidas salvadas (a esa hora, alcance 200 m): de " in summary
    assert page.locator(".cm-badge.cm-proposal").count() == 5
    page.locator(".cm-badge.cm-proposal").first.hover()
    assert "vidas al año" in page.locator(".leaflet-tooltip").last.inner_text()
    screenshot(page, f"planner-map-lives-{site.backend}.png")
    assert watched.problems == []


#: What has the keyboard focus, in a few words.
FOCUSED = """() => {
    const e = document.activeElement;
    return e ? `${e.tagName} ${e.id || e.className || ""} ${e.textContent.slice(0, 20)}` : "";
}"""


def test_planner_map_gives_lives_saved_by_keyboard_and_in_device_popups(
    site: Site, browser: Browser
) -> None:
    watched = open_page(browser)
    page = watched.page
    sign_in(page, site)
    name = str(HEALTH_CENTRE["name"])
    lat, lon = cast(float, HEALTH_CENTRE["lat"]), cast(float, HEALTH_CENTRE["lon"])
    watched.problems[:] = [p for p in watched.problems if "401" not in p]  # the sign-in form
    section = page.locator("#cm-lives")
    assert section.locator("h2").inner_text() == "Vidas salvadas (estimación del modelo)"
    text = section.inner_text()
    assert "vidas al año (banda del 5 al 95 %:" in text
    assert HOME_ARRESTS_NOTE in text and "no un recuento de casos" in text
    assert "sin las paradas en domicilio" in page.locator("#cm-legend").inner_text()
    # The per-zone and per-device tables open from the keyboard.
    detail = page.locator("#cm-lives-detail")
    assert detail.get_attribute("open") is None
    reached: list[str] = []
    for _ in range(120):
        page.keyboard.press("Tab")
        reached.append(page.evaluate(FOCUSED))
        if page.evaluate("() => document.activeElement.closest('#cm-lives-detail') !== null"):
            break
    else:
        pytest.fail(f"Tab never reached the lives detail: {reached}")
    page.keyboard.press("Enter")
    assert detail.get_attribute("open") is not None
    captions = detail.locator("caption").all_inner_texts()
    assert captions == [
        "Vidas salvadas al año por zona CEAS",
        "Los que más vidas perderían si se retiraran",
        "Los que más ganarían abriendo 24/7",
    ]
    zones = detail.locator("table").first.locator("tbody tr")
    assert zones.count() == 8  # the sample's CEAS zones
    assert name in detail.locator("table").nth(1).inner_text()
    assert_no_serious(page, f"the planners' map with the lives tables open ({site.backend})")
    # A device's popup: its lives saved, lost if removed or closed at night, gained if 24/7.
    set_view(page, lat, lon, 18)
    box = page.locator("#map, .folium-map").first.bounding_box()
    assert box is not None
    page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    popup = page.locator(".cm-lives-popup")
    popup.wait_for()
    content = popup.inner_text()
    for expected in (
        name,
        "Vidas salvadas al año (modelo)",
        "Se perderían si se retirara",
        "Se perderían si cerrara de 20:00 a 08:00",
        "Se ganarían si abriera 24/7",
    ):
        assert expected in content, f"{expected!r} missing from the popup:\n{content}"
    assert "0 (0–0)" in content  # open 24/7 already: nothing to gain
    page.wait_for_timeout(300)  # the popup's fade-in
    assert_no_serious(page, f"the planners' map with a device popup open ({site.backend})")
    screenshot(page, f"planner-lives-popup-{site.backend}.png")
    assert watched.problems == []


#: Each CEAS zone's fill on the map, by its position (``cm_zone``).
ZONE_FILLS = """() => {
    const fills = {};
    cardiomapa.map.eachLayer((layer) => {
        const props = layer.feature && layer.feature.properties;
        if (props && props.cm_zone !== undefined) fills[props.cm_zone] = layer.options.fillColor;
    });
    return fills;
}"""
#: The fills of the gap cells.
GAP_FILLS = """() => {
    const fills = [];
    cardiomapa.map.eachLayer((layer) => {
        const props = layer.feature && layer.feature.properties;
        if (props && props.Hueco !== undefined) fills.push(layer.options.fillColor);
    });
    return fills;
}"""
#: What the zones' fills should be at ``slot``, from the page's own week data.
FILLS_AT = """(slot) => {
    const week = JSON.parse(document.getElementById("cm-options").textContent).week;
    return Object.fromEntries(
        Object.entries(week.zones).map(([key, classes]) => [key, week.colours[classes[slot]]]));
}"""
#: Every numbered badge (gaps and proposals) with its box on screen.
BADGES = """() => [...document.querySelectorAll('.cm-badge')].map((b) => {
    const r = b.getBoundingClientRect();
    return [`${b.className} ${b.textContent}`, {x: r.x, y: r.y, width: r.width, height: r.height}];
})"""


def assert_badges_apart(page: Page, expected: int) -> None:
    badges = cast(list[tuple[str, dict[str, float]]], page.evaluate(BADGES))
    assert len(badges) == expected
    for (one, a), (other, b) in itertools.combinations(badges, 2):
        assert not overlaps(a, b), f"{one} at {a} overlaps {other} at {b}"


def test_planner_map_classes_labels_and_hour_chart(site: Site, browser: Browser) -> None:
    """Zone and gap colours come from classes of the data, the numbered gaps and proposals do
    not overlap, and the hour-by-week chart sets the zones' hour by mouse and keyboard."""
    watched = open_page(browser, width=1440, height=900)
    page = watched.page
    sign_in(page, site)
    watched.problems[:] = [p for p in watched.problems if "401" not in p]  # the sign-in form
    # Classes from the data: several zone colours, and the legend's limits are the data's.
    fills = page.evaluate(ZONE_FILLS)
    assert len(fills) == 8 and len(set(fills.values())) >= 2, fills
    legend = page.locator("#cm-legend").inner_text()
    assert legend.startswith("Cobertura de la zona (% de residentes)")
    limits = re.findall(r"^ ?(\d+,\d)(?:–(\d+,\d))? %$", legend, re.M)
    assert len(limits) >= 2 and limits[-1][1] != "20,0", legend  # not the fixed 20 % steps
    assert len(set(page.evaluate(GAP_FILLS))) >= 2  # the gap cells are graded, not one pink
    # Polygons are squares in the legend, points circles.
    radius = "(s) => getComputedStyle(document.querySelector(s)).borderRadius"
    assert page.evaluate(radius, "#cm-legend .cm-area") == "2px"
    assert page.evaluate(radius, "#cm-legend .cm-point") == "50%"
    # Ten gaps (diamonds) and ten proposals (circles), none over another, at two zooms.
    assert_badges_apart(page, 20)
    page.evaluate("() => cardiomapa.map.setZoom(cardiomapa.map.getZoom() - 1, {animate: false})")
    assert_badges_apart(page, 20)
    screenshot(page, f"planner-badges-{site.backend}.png")
    # The chart: Tuesday 12:00 by a click colours the zones for that hour and sets the selector.
    before = page.evaluate(ZONE_FILLS)
    page.locator(".cm-cell[data-slot='36']").click()
    assert page.locator("body").get_attribute("data-cm-hour") == "36"
    assert page.locator(".cm-cell[data-slot='36']").get_attribute("aria-pressed") == "true"
    assert "martes 12:00–13:00" in page.locator("#cm-map-hour").inner_text()
    assert page.locator("#cm-day").input_value() == "1"
    assert page.locator("#cm-hour").input_value() == "12"
    after = page.evaluate(ZONE_FILLS)
    assert {str(k): v for k, v in after.items()} == page.evaluate(FILLS_AT, 36)
    assert after != before  # the sample's 24/7 coverage is not Tuesday noon's
    assert "Recalcular" in page.locator("#cm-hour-note").inner_text()
    # …and by keyboard: one tab stop, the arrows move, Enter and Space pick.
    page.keyboard.press("ArrowRight")  # the focus is still on the clicked cell
    page.keyboard.press("Enter")
    assert page.locator("body").get_attribute("data-cm-hour") == "37"
    page.keyboard.press("ArrowUp")
    page.keyboard.press("Space")
    assert page.locator("body").get_attribute("data-cm-hour") == "13"
    assert "lunes 13:00–14:00" in page.locator("#cm-map-hour").inner_text()
    assert page.locator("#cm-day").input_value() == "0"
    assert {str(k): v for k, v in page.evaluate(ZONE_FILLS).items()} == page.evaluate(FILLS_AT, 13)
    assert page.locator(".cm-cell[tabindex='0']").count() == 1
    assert_no_serious(page, f"the planners' map after picking an hour ({site.backend})")
    # «Recalcular» then computes everything at the hour picked.
    page.click("#cm-selector button[type=submit]")
    page.wait_for_url("**/planificacion?dia=0&hora=13&**")
    wait_ready(page)
    assert page.locator("#cm-summary").inner_text().startswith("lunes ")
    assert page.locator(".cm-cell[data-slot='13']").get_attribute("aria-pressed") == "true"
    assert page.locator("#cm-hour-note").is_hidden()
    assert watched.problems == []


def test_planner_map_on_a_phone_keeps_the_legend_off_the_layer_control(
    site: Site, browser: Browser
) -> None:
    watched = open_page(browser, width=390, height=844, is_mobile=True, has_touch=True)
    page = watched.page
    sign_in(page, site)
    watched.problems[:] = [p for p in watched.problems if "401" not in p]  # the sign-in form
    layers = box_of(page, ".leaflet-control-layers")
    assert not overlaps(box_of(page, "#cm-legend"), layers)
    page.locator("#cm-legend").scroll_into_view_if_needed()
    legend = box_of(page, "#cm-legend")
    assert legend["y"] < 844 and not overlaps(legend, layers)
    assert page.locator("#cm-panel #cm-legend").count() == 1  # in the sheet, under the chart
    page.locator(".cm-cell[data-slot='60']").tap()  # Wednesday 12:00
    assert "miércoles 12:00–13:00" in page.locator("#cm-map-hour").inner_text()
    screenshot(page, f"planner-phone-{site.backend}.png")
    assert_no_serious(page, f"the planners' map on a phone ({site.backend})")
    assert watched.problems == []


def test_api_docs_page_is_served_locally(site: Site, browser: Browser) -> None:
    watched = open_page(browser)
    page = watched.page
    outside: list[str] = []
    page.on("request", lambda r: None if r.url.startswith(site.base) else outside.append(r.url))
    page.goto(site.base + "/docs")
    page.locator(".opblock").first.wait_for()
    assert page.title() == "cardiomapa — API de Palencia"
    assert page.locator(".opblock").count() > 20  # every operation of /openapi.json
    assert outside == [] and watched.problems == []


# --- shared files and basemaps ----------------------------------------------------------------


def make_map(site: Site, kind: str, out: Path) -> None:
    env = {**os.environ, "CARDIOMAPA_DATABASE_URL": site.db_url, "CARDIOMAPA_TILE_URL": ""}
    script = Path(sys.executable).parent / "cardiomapa"
    done = subprocess.run(
        [str(script), "map", "--kind", kind, "--out", str(out)],
        env=env, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr


def open_shared_file(
    site: Site, browser: Browser, kind: str, out: Path
) -> tuple[Watched, list[str]]:
    """``cardiomapa map --kind KIND`` opened from disk with every http(s) request blocked (and
    listed in the second value)."""
    make_map(site, kind, out)
    watched = open_page(browser)
    outside: list[str] = []
    watched.page.route(
        "http*://**", lambda route: (outside.append(route.request.url), route.abort())
    )
    watched.page.goto(out.as_uri())
    wait_ready(watched.page)
    return watched, outside


def test_a_shared_citizen_file_works_offline(site: Site, browser: Browser, tmp_path: Path) -> None:
    watched, outside = open_shared_file(site, browser, "citizen", tmp_path / "mapa.html")
    page = watched.page
    assert sum(legend_counts(page)) == site.listed
    page.evaluate("([lat, lon]) => cardiomapa.lookup(lat, lon)", list(NEAR))
    first = page.locator("#cm-results li").first
    first.wait_for()
    assert first.get_attribute("data-device-id") == HEALTH_CENTRE["id"]  # computed in the page
    page.wait_for_timeout(800)  # the map's flight to the answer ends before it is moved again
    set_view(page, HEALTH_CENTRE["lat"], HEALTH_CENTRE["lon"], 18)
    page.locator(f".cm-device[title='{HEALTH_CENTRE['name']}']").click()
    assert "use el mapa en línea" in page.locator(".cm-popup").inner_text()
    assert page.locator(".cm-report-open").count() == 0  # no server to report to
    assert outside == [] and watched.problems == []


def test_a_shared_planner_file_works_offline(site: Site, browser: Browser, tmp_path: Path) -> None:
    watched, outside = open_shared_file(site, browser, "planner", tmp_path / "plan.html")
    page = watched.page
    labels = [
        label.strip()
        for label in page.locator(".leaflet-control-layers-overlays label").all_inner_texts()
    ]
    assert labels == PLANNER_LAYERS
    assert page.locator("#cm-day").is_disabled()  # fixed parameters, said in the panel
    assert "Mapa exportado" in page.locator("#cm-panel").inner_text()
    assert outside == [] and watched.problems == []


def _png_1x1() -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)  # 1×1, 8-bit RGB
    pixels = zlib.compress(b"\x00\xdd\xe6\xee")
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")
    )


class _Tiles(http.server.BaseHTTPRequestHandler):
    """A tile server that answers every /z/x/y.png with a 1×1 PNG and remembers what it served."""

    PNG = _png_1x1()
    served: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        type(self).served.append(self.path)
        self.send_response(200)
        self.send_header("Content-Type", "image/png")
        self.send_header("Content-Length", str(len(self.PNG)))
        self.end_headers()
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            self.wfile.write(self.PNG)  # unless Leaflet cancelled the tile (the map moved on)

    def log_message(self, format: str, *args: object) -> None:
        return


def test_basemap_tiles_come_from_the_configured_server(
    browser: Browser, tmp_path: Path, tiny_layers: Layers
) -> None:
    url = f"sqlite:///{tmp_path / 'tiles.sqlite'}"  # the database plays no part here
    with Store.open(url) as store:
        store.load(tiny_layers)
    tiles = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Tiles)
    threading.Thread(target=tiles.serve_forever, daemon=True).start()
    tile_url = f"http://127.0.0.1:{tiles.server_address[1]}/{{z}}/{{x}}/{{y}}.png"
    server = Server(
        url, tmp_path / "server.log", env={"CARDIOMAPA_TILE_URL": tile_url, **clock_env(ORDINARY)}
    )
    try:
        watched = open_page(browser)
        page = watched.page
        page.goto(server.base + "/")
        wait_ready(page)
        page.locator(".leaflet-tile-loaded").first.wait_for()
        assert any(path.endswith(".png") and path.count("/") == 3 for path in _Tiles.served)
        assert watched.problems == []  # the CSP lets the configured tile server in
    finally:
        server.stop()
        tiles.shutdown()
        tiles.server_close()


# --- the citizens' map as an emergency tool ---------------------------------------------------

#: A phone (the issue's 390 × 844) and a desktop screen.
SCREENS = {"phone": (390, 844), "desktop": (1440, 900)}
#: Where the person stands: Palencia's Plaza Mayor, a few hundred metres from several devices.
PLAZA = (42.0096, -4.5327)


def emergency_page(browser: Browser, screen: str, url: str | None = None) -> Watched:
    """A page on ``screen`` where the person stands at the Plaza Mayor; with ``url``, opened
    there and ready."""
    width, height = SCREENS[screen]
    phone = screen == "phone"
    watched = open_page(
        browser, width=width, height=height, is_mobile=phone, has_touch=phone,
        geolocation={"latitude": PLAZA[0], "longitude": PLAZA[1]}, permissions=["geolocation"],
    )  # fmt: skip
    if url is not None:
        watched.page.goto(url)
        wait_ready(watched.page)
    return watched


def box_of(page: Page, selector: str) -> dict[str, float]:
    box = page.locator(selector).first.bounding_box()
    assert box is not None, f"{selector} is not shown"
    return box


def assert_call_in_first_view(page: Page) -> None:
    """The tel:112 link is on screen, in the first viewport, and nothing covers it."""
    call = page.locator("#cm-call")
    assert call.get_attribute("href") == "tel:112"
    box = box_of(page, "#cm-call")
    viewport = page.viewport_size
    assert viewport is not None
    assert box["y"] >= 0 and box["y"] + box["height"] <= 100, box  # at the top, never pushed
    assert box["x"] >= 0 and box["x"] + box["width"] <= viewport["width"], box
    assert box["height"] >= 44
    on_top = page.evaluate(
        """() => { const r = document.getElementById('cm-call').getBoundingClientRect();
        const e = document.elementFromPoint(r.x + r.width / 2, r.y + r.height / 2);
        return Boolean(e && e.closest('#cm-call')); }"""
    )
    assert on_top, "something covers the call to 112"


def overlaps(a: dict[str, float], b: dict[str, float]) -> bool:
    across = min(a["x"] + a["width"], b["x"] + b["width"]) - max(a["x"], b["x"])
    down = min(a["y"] + a["height"], b["y"] + b["height"]) - max(a["y"], b["y"])
    return across > 0 and down > 0


def uncovered_map(page: Page) -> dict[str, float]:
    """The rectangle of the map that neither the panel/sheet nor the call button covers."""
    viewport = page.viewport_size
    assert viewport is not None
    panel = box_of(page, "#cm-panel")
    call = box_of(page, "#cm-call")
    top, left, right = call["y"] + call["height"], 0.0, float(viewport["width"])
    bottom = float(viewport["height"])
    if panel["y"] > viewport["height"] / 3:  # a bottom sheet
        bottom = panel["y"]
    else:
        left = panel["x"] + panel["width"]
    return {"top": top, "left": left, "right": right, "bottom": bottom}


@pytest.mark.parametrize("screen", list(SCREENS))
def test_the_call_to_112_and_the_way_to_the_device_stay_in_view(
    site: Site, browser: Browser, screen: str
) -> None:
    watched = emergency_page(browser, screen, site.base + "/")
    page = watched.page
    assert_call_in_first_view(page)
    guide = page.locator("#cm-guide").inner_text()
    for step in ("Llame al 112", "compresiones", "Mande a alguien", "siga su voz"):
        assert step in guide
    page.click("#cm-locate")
    first = page.locator("#cm-results li.cm-open").first
    first.wait_for()
    page.wait_for_timeout(400)
    assert_call_in_first_view(page)  # the results never push the call down
    trip = first.locator(".cm-trip").inner_text()
    assert trip.startswith("Ida y vuelta a pie:")
    minutes_there = float(first.get_attribute("data-walk-min") or "nan")
    if 2 * minutes_there > 3:
        assert "no deje a la persona" in trip and "envíelo a por el desfibrilador" in trip
    else:
        assert "vaya usted" in trip
    # The person and the nearest usable device lie in the part of the map nothing covers.
    free = uncovered_map(page)
    name = first.locator(".cm-result-name").inner_text()
    for selector in (f".cm-device[title='{name}']", "path.leaflet-interactive[stroke='#fff']"):
        box = box_of(page, selector)
        centre_x, centre_y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
        assert free["left"] <= centre_x <= free["right"], (selector, box, free)
        assert free["top"] <= centre_y <= free["bottom"], (selector, box, free)
    screenshot(page, f"emergency-{screen}-{site.backend}.png")
    assert watched.problems == []


@pytest.mark.parametrize("screen", list(SCREENS))
def test_popups_are_whole_on_screen_and_their_buttons_answer(
    site: Site, browser: Browser, screen: str
) -> None:
    watched = emergency_page(browser, screen, site.base + "/")
    page = watched.page
    page.click("#cm-locate")
    page.locator("#cm-results li").first.wait_for()
    page.locator("#cm-results .cm-result-name").first.click()
    page.locator(".leaflet-popup .cm-popup").wait_for()
    page.wait_for_timeout(500)  # the pan and the popup's fade-in
    viewport = page.viewport_size
    assert viewport is not None
    popup = box_of(page, ".leaflet-popup-content-wrapper")
    assert popup["x"] >= 0 and popup["y"] >= 0, popup
    assert popup["x"] + popup["width"] <= viewport["width"], popup
    assert popup["y"] + popup["height"] <= viewport["height"], popup
    panel = box_of(page, "#cm-panel")
    overlap_x = min(popup["x"] + popup["width"], panel["x"] + panel["width"]) - max(
        popup["x"], panel["x"]
    )
    overlap_y = min(popup["y"] + popup["height"], panel["y"] + panel["height"]) - max(
        popup["y"], panel["y"]
    )
    assert overlap_x <= 0 or overlap_y <= 0, "the popup lies under the panel or the sheet"
    page.click(".cm-popup .cm-report-open")  # a real click: it fails if anything intercepts it
    page.locator("#cm-report").wait_for()
    assert page.locator("#cm-report").is_visible()
    screenshot(page, f"emergency-popup-{screen}-{site.backend}.png")
    assert watched.problems == []


def test_the_sheet_folds_by_keyboard_and_every_control_is_big_enough(
    site: Site, browser: Browser
) -> None:
    watched = emergency_page(browser, "phone", site.base + "/")
    page = watched.page
    panel = page.locator("#cm-panel")
    heights = {}
    handle = page.locator("#cm-sheet")
    handle.focus()
    for key, expected in (("ArrowDown", "collapsed"), ("ArrowUp", "half"), ("ArrowUp", "full")):
        page.keyboard.press(key)
        assert panel.get_attribute("data-sheet") == expected
        heights[expected] = box_of(page, "#cm-panel")["height"]
    assert heights["collapsed"] < heights["half"] < heights["full"]
    page.keyboard.press("Enter")  # a tap or Enter steps round: full → collapsed
    assert panel.get_attribute("data-sheet") == "collapsed"
    assert_call_in_first_view(page)  # above the sheet in every position
    page.keyboard.press("Enter")
    page.click("#cm-locate")
    page.locator("#cm-results li").first.wait_for()
    small = page.evaluate(
        """() => [...document.querySelectorAll(
            '#cm-call, #cm-sheet, #cm-locate, #cm-panel .cm-result-name, #cm-panel .cm-directions,'
            + ' #cm-guide summary, .leaflet-control-zoom a')]
          .filter((e) => e.getClientRects().length)
          .map((e) => [e.id || e.className || e.tagName, e.getBoundingClientRect().height])
          .filter(([, h]) => h < 44)"""
    )
    assert small == [], f"controls under 44 px: {small}"
    scale = page.locator(".leaflet-control-scale-line")
    assert scale.count() == 1 and scale.inner_text().endswith(("m", "km"))
    assert "ft" not in page.locator(".leaflet-control-scale").inner_text()
    attribution = box_of(page, ".leaflet-control-attribution")
    assert attribution["height"] <= 20  # one line
    assert watched.problems == []


def test_without_a_network_the_page_still_finds_the_nearest_usable_device(
    site: Site, browser: Browser
) -> None:
    watched = emergency_page(browser, "phone")
    page = watched.page
    offline_copy = httpx.get(site.base + "/api/map/offline", timeout=30).json()
    assert "cabinet_code" not in json.dumps(offline_copy)  # public fields only
    # The browser's clock, pinned half an hour after the server's (which started on an
    # ordinary Monday at 10:00): the age of the kept copy and the device usable "now" are
    # known, whatever day the suite runs.
    later = dt.datetime.fromisoformat(offline_copy["at"]) + dt.timedelta(minutes=30)
    page.clock.set_fixed_time(later)
    page.goto(site.base + "/")
    wait_ready(page)
    controlled = page.evaluate(
        """async () => { await navigator.serviceWorker.ready;
        for (let i = 0; i < 100 && !navigator.serviceWorker.controller; i++) {
            await new Promise((r) => setTimeout(r, 100)); }
        return Boolean(navigator.serviceWorker.controller); }"""
    )
    assert controlled, "the service worker does not control the page"
    kept = page.evaluate(
        """async () => { const cache = await caches.open('cardiomapa-v1');
        return (await cache.keys()).map((r) => new URL(r.url).pathname); }"""
    )
    for path in ("/", "/api/map/offline", "/static/cardiomapa.js"):
        assert path in kept, kept
    watched.clear()
    page.context.set_offline(True)
    page.reload()
    wait_ready(page)
    page.click("#cm-locate")
    first = page.locator("#cm-results li").first
    first.wait_for()
    assert "Disponible ahora" in first.inner_text()
    stamp = page.locator("#cm-stamp").inner_text()
    assert stamp.startswith("Sin conexión: datos guardados a las "), stamp
    assert re.search(r"\(hace (2[89]|3[01]) min\)", stamp), stamp
    # The answer is the one the server gives for the same instant.
    page.context.set_offline(False)
    wanted = httpx.get(
        f"{site.base}/api/nearest",
        params={"lat": PLAZA[0], "lon": PLAZA[1], "limit": 1, "at": later.isoformat()},
        timeout=30,
    ).json()["results"][0]["id"]
    assert first.get_attribute("data-device-id") == wanted
    screenshot(page, f"emergency-offline-{site.backend}.png")
    failures = [p for p in watched.problems if "ERR_INTERNET_DISCONNECTED" not in p]
    assert failures == []


def test_the_planner_form_offers_opening_devices_24_h(site: Site, browser: Browser) -> None:
    watched = open_page(browser)
    page = watched.page
    sign_in(page, site)
    watched.problems[:] = [p for p in watched.problems if "401" not in p]  # the sign-in form
    box = page.locator("#cm-extend")
    assert box.get_attribute("type") == "checkbox" and not box.is_checked()
    assert page.locator("label[for=cm-extend]").inner_text().startswith("Proponer también abrir")
    box.check()
    page.click("#cm-selector button[type=submit]")
    page.wait_for_url("**/planificacion?*abrir_24h=1*")
    wait_ready(page)
    assert page.locator("#cm-extend").is_checked()
    assert page.locator(".cm-badge.cm-proposal").count() == 10
    assert watched.problems == []
