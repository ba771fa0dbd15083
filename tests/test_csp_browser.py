"""Hostile text and the strict Content-Security-Policy in a real browser (Debian's Chromium,
headless, driven by Playwright) against a real ``cardiomapa serve`` holding the Palencia sample.

An entity registers devices whose name, place, address and private notes are HTML
(``<img src=x onerror=…>``, ``<script>…</script>``); one is verified and then moved, so the staff
desk's map shows its previous position. Every tooltip, popup and list that shows those texts is
opened (the desk's map, the citizens' map, the planners' map): no element may come out of them,
nothing may run (``window.__xss`` stays unset, no dialog opens) and the text must read as typed.
Because the policy would block an injected handler anyway, "nothing ran" alone proves little: the
tests also require that no ``<img>`` or ``<script>`` appears where the text is shown and that the
browser reports no policy violation. Then every page is opened with the browser listening for
violations: the pages must work under a policy without inline script.

One backend (SpatiaLite): what is tested is the pages, not the storage (the storage tests run on
both). No basemap (``CARDIOMAPA_TILE_URL=""``): nothing leaves the machine. The clock is pinned to
an ordinary week (``weeks.ORDINARY``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
from conftest import DATA_DIR, fresh_database
from playwright.sync_api import Browser, ConsoleMessage, Dialog, Page
from servers import Server, Watched, open_page
from weeks import ORDINARY, clock_at, clock_env

from geo.city import load_city_profile
from geo.core.layers import Layers
from geo.io.files import read_layers
from geo.io.store import Store
from geo.services import registry
from geo.services.inputs import device_finder
from geo.services.tokens import authenticate, issue_token

IMG = "<img src=x onerror=window.__xss=1>"
SCRIPT = "<script>window.__xss=2</script>"
#: Verified, then moved by its entity: pending again, with its previous position on the desk map.
MOVED = {
    "name": f"DEA {IMG} (vestíbulo)",
    "location_text": f"{SCRIPT} junto al ascensor",
    "address": f"Calle {IMG} 3",
    "access": "yes",
    "opening_hours": "24/7",
    "indoor": True,
    "level": "<b>1</b>",
}
#: Verified and left in place: on the citizens' map and the planners' map.
LISTED = {
    "name": f"DEA {SCRIPT} plaza",
    "location_text": f"{IMG} columna",
    "address": f"Plaza {SCRIPT} 1",
    "access": "yes",
    "opening_hours": "24/7",
    "indoor": False,
    "phone": "979 000 000",
}
PRIVATE = {"cabinet_code": IMG, "key_holder": SCRIPT, "notes": f"{IMG} {SCRIPT}"}
LISTED_AT = (-4.5390, 42.0180)  # lon, lat: open ground in the sample, nothing else on top
MOVED_FROM, MOVED_TO = (-4.5300, 42.0150), (-4.5330, 42.0170)
ENTITY = "ent-002"
ENTITY_NAME = f"Asociación {IMG} {SCRIPT}"
REPORT = f"Se ve {IMG} y {SCRIPT} en la pantalla"
#: Catches what the page reports about its policy, from before any of its own scripts run.
LISTEN = """
window.__violations = [];
document.addEventListener("securitypolicyviolation", (event) => {
  window.__violations.push(`${event.effectiveDirective} ${event.blockedURI} ${event.sample}`);
});
"""


@dataclass
class Site:
    base: str
    planner: str
    admin: str
    entity: str
    moved_id: str
    listed_id: str
    listed: int  # devices the citizens' map lists


@pytest.fixture(scope="module", params=["spatialite"])
def site(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Site]:
    folder = tmp_path_factory.mktemp("csp")
    with fresh_database(request, folder) as url:
        city = load_city_profile(DATA_DIR / "city.json")
        layers = read_layers(DATA_DIR, city)
        entities = layers["entities"].copy()
        entities.loc[entities["id"] == ENTITY, "name"] = ENTITY_NAME
        with Store.open(url, clock=clock_at(ORDINARY - dt.timedelta(hours=1))) as store:
            store.load(Layers({**layers.frames, "entities": entities}))
            planner = issue_token(store, role="planner", label="Marta (planificación)").secret
            admin = issue_token(store, role="admin", label="Jorge (administración)").secret
            entity_token = issue_token(store, role="entity", entity_id=ENTITY).secret
            entity = authenticate(store, entity_token)
            staff = authenticate(store, planner)
            today = ORDINARY.date()
            ids = []
            for properties, at in ((MOVED, MOVED_FROM), (LISTED, LISTED_AT)):
                record = registry.register_device(
                    store, city, entity, properties=properties, private=PRIVATE, today=today,
                    geometry={"type": "Point", "coordinates": list(at)},
                )  # fmt: skip
                registry.review_device(store, staff, record["id"], decision="verified")
                ids.append(str(record["id"]))
            registry.update_device(
                store, city, entity, ids[0], changes={}, today=today,
                geometry={"type": "Point", "coordinates": list(MOVED_TO)},
            )  # fmt: skip
            registry.report_problem(store, city, ids[1], kind="other", message=REPORT)
            listed = len(device_finder(store, city))
        server = Server(
            url, folder / "server.log", env={"CARDIOMAPA_TILE_URL": "", **clock_env(ORDINARY)}
        )
        try:
            yield Site(server.base, planner, admin, entity_token, ids[0], ids[1], listed)
        finally:
            server.stop()


@dataclass
class Guarded:
    """A watched page that also records dialogs and every policy violation it reports."""

    watched: Watched
    dialogs: list[str] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)

    @property
    def page(self) -> Page:
        return self.watched.page

    def signed_out(self) -> None:
        """Forget the 401 a sign-in form is answered with (the browser logs it as an error)."""
        self.watched.problems[:] = [p for p in self.watched.problems if "401" not in p]

    def check(self, where: str) -> None:
        """Nothing ran, nothing was blocked, nothing went wrong on the page now open."""
        page = self.page
        page.wait_for_timeout(300)  # an <img src=x> fails and fires its onerror asynchronously
        seen = page.evaluate("() => window.__violations || []")
        assert page.evaluate("() => window.__xss") is None, f"{where}: a hostile text ran"
        assert self.dialogs == [], f"{where}: dialogs {self.dialogs}"
        assert seen == [] and self.violations == [], f"{where}: {seen} {self.violations}"
        assert self.watched.problems == [], f"{where}: {self.watched.problems}"
        injected = page.evaluate(
            """() => [...document.querySelectorAll('img[src="x"], script:not([src])')]
                .filter((node) => node.tagName === 'IMG' || /^window.__xss=2$/.test(node.text))
                .map((node) => node.outerHTML)"""
        )
        assert injected == [], f"{where}: hostile text became elements: {injected}"


def guarded(browser: Browser) -> Guarded:
    watched = open_page(browser)
    guard = Guarded(watched)
    page = watched.page
    page.add_init_script(LISTEN)  # injected by the browser's protocol: not subject to the policy

    def on_console(message: ConsoleMessage) -> None:
        if "Content Security Policy" in message.text:
            guard.violations.append(message.text)

    def on_dialog(dialog: Dialog) -> None:
        guard.dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("console", on_console)
    page.on("dialog", on_dialog)
    return guard


def wait_ready(page: Page) -> None:
    page.wait_for_selector("body[data-cm-ready]", state="attached", timeout=60_000)


def desk_sign_in(page: Page, site: Site, token: str) -> None:
    page.goto(f"{site.base}/gestion")
    page.get_by_label("Token de acceso").fill(token)
    page.keyboard.press("Enter")
    page.get_by_role("heading", name="Moderación: desfibriladores pendientes").wait_for()


def planner_sign_in(page: Page, site: Site) -> None:
    page.goto(site.base + "/planificacion")
    page.fill("#token", site.planner)
    page.click("button[type=submit]")
    wait_ready(page)


def portal_sign_in(page: Page, site: Site) -> None:
    page.goto(site.base + "/entidades")
    page.fill("#f-token", site.entity)
    page.get_by_role("button", name="Entrar").click()
    page.wait_for_url(site.base + "/entidades")


def hover(page: Page, selector: str, index: int) -> str:
    """Move the mouse over the ``index``-th match of ``selector`` (an SVG circle) and return the
    text of the tooltip that opens."""
    box = page.locator(selector).nth(index).bounding_box()
    assert box is not None, f"{selector} #{index} is not drawn"
    page.mouse.move(0, 0)
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    tooltip = page.locator(".leaflet-tooltip:not(.cm-desk-label)").last
    tooltip.wait_for(timeout=5_000)
    return tooltip.inner_text()


# --- hostile text -------------------------------------------------------------------------------


def test_the_desk_map_shows_hostile_names_as_text(site: Site, browser: Browser) -> None:
    guard = guarded(browser)
    page = guard.page
    desk_sign_in(page, site, site.planner)
    page.locator("#desk-map.leaflet-container").wait_for()
    old = "#desk-map path.cm-desk-old"
    new = "#desk-map path.cm-desk-new"
    assert page.locator(old).count() >= 1 and page.locator(new).count() >= 2
    seen = [hover(page, old, n) for n in range(page.locator(old).count())]
    wanted = f"DEA {IMG} (vestíbulo) (posición anterior)"
    assert any(text.endswith(wanted) for text in seen), seen
    labels = page.locator("#desk-map .cm-desk-label").all_inner_texts()
    assert labels == [str(n) for n in range(1, len(labels) + 1)]
    for n in range(page.locator(new).count()):  # each number scrolls to its card
        box = page.locator(new).nth(n).bounding_box()
        assert box is not None
        page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    cards = page.locator("li.cm-card", has_text=MOVED["name"])
    assert cards.count() == 1
    card = cards.inner_text()
    for text in (MOVED["name"], MOVED["address"], MOVED["location_text"]):
        assert text in card, f"{text!r} not shown as text in the card"
    guard.check("the desk's moderation map")

    page.goto(f"{site.base}/gestion/desfibriladores/{site.moved_id}")
    body = page.locator("main").inner_text()
    for text in (MOVED["name"], MOVED["address"], MOVED["location_text"]):
        assert text in body, f"{text!r} not shown as text on the device's page"
    guard.check("the desk's device page")
    page.goto(f"{site.base}/gestion/avisos")
    assert REPORT in page.locator("main").inner_text()
    guard.check("the desk's reports")
    page.context.close()


def test_the_citizen_map_shows_hostile_text_as_text(site: Site, browser: Browser) -> None:
    guard = guarded(browser)
    page = guard.page
    page.goto(site.base + "/")
    wait_ready(page)
    lon, lat = LISTED_AT
    page.evaluate("([lat, lon]) => cardiomapa.lookup(lat, lon)", [lat, lon])
    result = page.locator(f"#cm-results li[data-device-id='{site.listed_id}']")
    result.wait_for()
    assert result.locator(".cm-result-name").inner_text() == LISTED["name"]
    result.locator(".cm-result-name").click()  # zooms to the marker and opens its popup
    popup = page.locator(f".cm-popup[data-device-id='{site.listed_id}']")
    popup.wait_for()
    assert popup.locator("h3").inner_text() == LISTED["name"]
    where = popup.locator(".cm-where").inner_text()
    assert where == f"{LISTED['location_text']} — {LISTED['address']}"
    titles = page.evaluate(
        "() => [...document.querySelectorAll('.cm-device')].map((node) => node.title)"
    )
    assert LISTED["name"] in titles  # the marker's title, as an attribute's text
    popup.get_by_role("button", name="Avisar de un problema").click()
    dialog = page.locator("#cm-report")
    dialog.wait_for()
    assert dialog.locator("h3").inner_text() == f"Avisar de un problema: {LISTED['name']}"
    guard.check("the citizens' map")
    page.context.close()


#: Opens every feature's tooltip and popup on the planners' map, one by one, as a hover or a click
#: does (the same event, so Leaflet renders the same content), and returns their text. folium
#: binds them to the GeoJSON layer (one per layer, the feature passed in) or to single markers.
OPEN_EVERY_FEATURE = """() => {
  const texts = [];
  const show = (owner, feature, type, bound, close) => {
    if (!bound) return;
    const latlng = feature.getLatLng ? feature.getLatLng() : feature.getCenter();
    feature.fire(type, { latlng }, true);
    if (!bound.isOpen()) throw new Error(`no ${type} content opened`);
    texts.push(bound.getElement().innerText);
    owner[close]();
  };
  cardiomapa.map.eachLayer((layer) => {
    const owners = layer.eachLayer ? [] : [[layer, layer]];
    if (layer.eachLayer) {
      layer.eachLayer((feature) => feature.feature && owners.push([layer, feature]));
    }
    for (const [owner, feature] of owners) {
      if (!feature._map) continue;
      show(owner, feature, "mouseover", owner.getTooltip && owner.getTooltip(), "closeTooltip");
      show(owner, feature, "click", owner.getPopup && owner.getPopup(), "closePopup");
    }
  });
  return texts;
}"""


def test_the_planner_map_shows_hostile_names_as_text(site: Site, browser: Browser) -> None:
    guard = guarded(browser)
    page = guard.page
    planner_sign_in(page, site)
    guard.signed_out()
    texts = page.evaluate(OPEN_EVERY_FEATURE)
    assert len(texts) > 50  # zones, devices, entities, cohousing, gaps
    assert any(LISTED["name"] in text for text in texts), "the listed device's tooltip"
    assert any(ENTITY_NAME in text for text in texts), "the entity's tooltip"
    guard.check("every feature of the planners' map")
    # and a real hover over the device, zoomed in so nothing else is under the mouse
    lon, lat = LISTED_AT
    page.evaluate(
        "([lat, lon]) => cardiomapa.map.setView([lat, lon], 19, {animate: false})", [lat, lon]
    )
    page.wait_for_timeout(300)
    point = page.evaluate(
        """([lat, lon]) => {
          const p = cardiomapa.map.latLngToContainerPoint([lat, lon]);
          const box = cardiomapa.map.getContainer().getBoundingClientRect();
          return [box.left + p.x, box.top + p.y];
        }""",
        [lat, lon],
    )
    page.mouse.move(point[0] + 1, point[1] + 1)
    tooltip = page.locator(".leaflet-tooltip", has_text=LISTED["name"])
    tooltip.wait_for(timeout=5_000)
    assert tooltip.locator("img, script").count() == 0
    guard.check("a hover on the planners' map")
    page.context.close()


# --- the policy on every page -------------------------------------------------------------------


def test_every_page_works_under_the_policy_without_inline_script(
    site: Site, browser: Browser
) -> None:
    guard = guarded(browser)
    page = guard.page
    page.goto(site.base + "/")
    wait_ready(page)
    assert page.get_attribute("body", "data-cm-ready") == str(site.listed)  # every marker
    assert page.locator(".cm-device, .cm-cluster").count() > 0
    guard.check("the citizens' map")

    page.goto(site.base + "/docs")
    page.locator(".opblock").first.wait_for(timeout=30_000)
    assert page.locator(".opblock").count() > 20
    guard.check("the API documentation")

    page.goto(site.base + "/planificacion")
    page.get_by_role("heading", name="Planificación de desfibriladores — Palencia").wait_for()
    guard.signed_out()
    guard.check("the planners' sign-in")
    planner_sign_in(page, site)
    assert page.locator("#cm-panel #cm-summary").inner_text()
    assert page.locator(".leaflet-overlay-pane path").count() > 20  # zones, reach, devices…
    guard.signed_out()
    guard.check("the planners' map")

    desk_sign_in(page, site, site.admin)  # every desk page: some are for administration only
    page.locator("#desk-map.leaflet-container").wait_for()
    guard.check("the desk's queue")
    for path, heading in [
        ("/gestion/avisos", "Avisos de la ciudadanía"),
        ("/gestion/auditoria", "Registro de cambios"),
        ("/gestion/mantenimiento", "Mantenimiento"),
        ("/gestion/entidades", "Acceso de las entidades"),
        (f"/gestion/desfibriladores/{site.listed_id}", None),
    ]:
        page.goto(site.base + path)
        if heading:
            page.get_by_role("heading", name=heading, exact=True).wait_for()
        guard.check(f"the desk's {path}")

    page.context.clear_cookies()
    page.goto(site.base + "/entidades")
    guard.signed_out()
    guard.check("the portal's sign-in")
    portal_sign_in(page, site)
    guard.signed_out()
    assert MOVED["name"] in page.locator("main").inner_text()
    guard.check("the portal's home")
    page.goto(site.base + "/entidades/nuevo")
    page.wait_for_selector("[data-place-ready]", state="attached")
    page.wait_for_selector("[data-hours-ready]", state="attached")
    page.locator(".leaflet-container").wait_for()
    guard.check("the portal's registration form (place picker, hours editor)")
    page.goto(f"{site.base}/entidades/desfibriladores/{site.moved_id}")
    assert page.locator("input[name=name]").input_value() == MOVED["name"]
    page.wait_for_selector("[data-hours-ready]", state="attached")
    guard.check("the portal's device form")
    for path in (f"/entidades/desfibriladores/{site.listed_id}/uso", "/entidades/contacto"):
        page.goto(site.base + path)
        guard.check(f"the portal's {path}")
    page.context.close()


def test_the_policy_blocks_what_an_injection_would_run(site: Site, browser: Browser) -> None:
    """The control: markup inserted into the page runs neither a handler nor an inline script,
    and the browser reports both."""
    guard = guarded(browser)
    page = guard.page
    page.goto(site.base + "/")
    wait_ready(page)
    page.evaluate(
        """() => {
          const box = document.createElement("div");
          box.innerHTML = '<img src="x" onerror="window.__xss = 1">';
          document.body.append(box);
          const script = document.createElement("script");
          script.textContent = "window.__xss = 2";
          document.body.append(script);
        }"""
    )
    page.wait_for_timeout(500)
    assert page.evaluate("() => window.__xss") is None
    seen = page.evaluate("() => window.__violations")
    directives = sorted(entry.split()[0] for entry in seen)
    assert directives == ["script-src-attr", "script-src-elem"], seen
    page.context.close()
