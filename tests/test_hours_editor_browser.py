"""The form components in a real browser: the opening-hours editor and the place picker.

Debian's Chromium, headless, driven by Playwright, on a harness page served from a real
``cardiomapa serve`` origin (so the editor's ``/api/opening-hours`` checks and the picker's
outline are same-origin requests to the real server), with the site's CSP. The editor is driven
with the keyboard alone. Screenshots at 390×844 go to ``test-artifacts/``.
"""

from __future__ import annotations

import html
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from axe import assert_no_serious
from conftest import DATA_DIR
from playwright.sync_api import (
    Browser,
    BrowserContext,
    ConsoleMessage,
    Locator,
    Page,
    Request,
    Route,
)
from servers import ARTIFACTS, Server

from api.security import html_headers
from geo.city import load_city_profile

#: Wednesday of a week without public holidays in Palencia, so the words are the same every run.
WEEK = "2026-03-04"
PHONE = {"width": 390, "height": 844}
#: The Plaza Mayor of Palencia, roughly: inside the municipality.
PLAZA = (-4.5327, 42.0096)


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real ``cardiomapa serve`` on an empty SpatiaLite database, without a basemap."""
    folder = tmp_path_factory.mktemp("hours-editor")
    server = Server(
        f"sqlite:///{folder / 'cardiomapa.sqlite'}", folder / "server.log",
        env={"CARDIOMAPA_TILE_URL": ""},
    )  # fmt: skip
    yield server.base
    server.stop()


def harness(hours: str = "", lon: str = "", lat: str = "") -> str:
    """A device form as the templates write it: the components' markup contract."""
    minlon, minlat, maxlon, maxlat = load_city_profile(DATA_DIR / "city.json").boundary.bounds
    bounds = f"{minlon},{minlat},{maxlon},{maxlat}"
    return f"""<!doctype html>
<html lang="es"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Alta de desfibrilador (prueba)</title>
<link rel="stylesheet" href="/static/people.css">
<link rel="stylesheet" href="/static/vendor/leaflet/leaflet.css">
<link rel="stylesheet" href="/static/hours-editor.css">
</head><body class="cm-people"><main id="main"><h1>Alta de desfibrilador</h1>
<form method="post" action="/nada">
<div class="cm-field" data-hours-editor data-check-url="/api/opening-hours?week_of={WEEK}">
  <label for="opening_hours">Horario (formato opening_hours de OpenStreetMap)</label>
  <input name="opening_hours" id="opening_hours" value="{html.escape(hours)}"
         autocomplete="off" spellcheck="false">
  <p data-hours-words aria-live="polite"></p>
</div>
<fieldset data-place-picker data-bounds="{bounds}" data-context-url="/entidades/contexto.geojson">
  <legend>Ubicación</legend>
  <div class="cm-field"><label for="lon">Longitud</label>
    <input type="number" step="any" name="lon" id="lon" value="{lon}"></div>
  <div class="cm-field"><label for="lat">Latitud</label>
    <input type="number" step="any" name="lat" id="lat" value="{lat}"></div>
  <button type="button" class="cm-button cm-secondary" data-use-location hidden>
    Usar mi ubicación</button>
</fieldset>
<p><button type="submit" class="cm-button" id="send">Enviar</button></p>
</form></main>
<script src="/static/vendor/leaflet/leaflet.js"></script>
<script src="/static/hours-editor.js"></script>
<script src="/static/map-context.js"></script>
<script src="/static/place-picker.js"></script>
</body></html>"""


@dataclass
class Harness:
    page: Page
    problems: list[str] = field(default_factory=list)

    @property
    def raw(self) -> Locator:
        return self.page.locator("#opening_hours")

    @property
    def words(self) -> Locator:
        return self.page.locator("[data-hours-words]")


def open_harness(
    browser: Browser, base: str, *, context: BrowserContext | None = None, **markup: str
) -> Harness:
    if context is None:
        context = browser.new_context(viewport=PHONE, locale="es-ES")  # type: ignore[arg-type]
    page = context.new_page()
    opened = Harness(page)

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error":
            opened.problems.append(f"console: {message.text}")

    page.on("console", on_console)
    page.on("pageerror", lambda error: opened.problems.append(f"page error: {error}"))

    def on_failed(request: Request) -> None:
        # The editor aborts a check that a newer keystroke superseded: not a failure.
        if request.failure != "net::ERR_ABORTED":
            opened.problems.append(f"request failed: {request.url} {request.failure}")

    page.on("requestfailed", on_failed)
    headers = {name.decode(): value.decode() for name, value in html_headers(None)}

    def fulfil(route: Route) -> None:
        route.fulfill(body=harness(**markup), content_type="text/html; charset=utf-8",
                      headers=headers)  # fmt: skip

    page.route(base + "/prueba-formulario", fulfil)
    page.goto(base + "/prueba-formulario")
    page.wait_for_selector("[data-hours-ready]", state="attached")
    return opened


def tab_to(page: Page, target: Locator, *, limit: int = 200) -> None:
    """Press Tab until ``target`` has the focus: it is reachable with the keyboard."""
    for _ in range(limit):
        if target.evaluate("node => node === document.activeElement"):
            return
        page.keyboard.press("Tab")
    pytest.fail(f"{target} cannot be reached with Tab")


_TWELVE_HOUR: dict[int, bool] = {}


def twelve_hour_clock(browser: Browser) -> bool:
    """Whether this Chromium's time inputs take hours 1–12 and AM/PM (it follows the OS
    locale, which a bare Debian does not set), found by typing into one."""
    if id(browser) not in _TWELVE_HOUR:
        page = browser.new_page()
        page.set_content('<input type="time" id="t">')
        page.focus("#t")
        page.keyboard.type("0800")  # a 12-hour clock waits for AM/PM
        _TWELVE_HOUR[id(browser)] = page.input_value("#t") != "08:00"
        page.close()
    return _TWELVE_HOUR[id(browser)]


def type_time(page: Page, target: Locator, hhmm: str) -> None:
    """Tab to a time input and type ``hhmm`` the way its clock (24 h or AM/PM) wants it."""
    browser = page.context.browser
    twelve = browser is not None and twelve_hour_clock(browser)  # before the focus moves
    tab_to(page, target)
    hour, minute = int(hhmm[:2]), hhmm[3:]
    if twelve:
        keys = f"{(hour - 1) % 12 + 1:02d}{minute}{'A' if hour < 12 else 'P'}"
    else:
        keys = f"{hour:02d}{minute}"
    page.keyboard.type(keys)
    assert target.input_value() == hhmm


def expect_words(opened: Harness, text: str) -> None:
    opened.page.wait_for_function(
        "([node, text]) => node.textContent.includes(text)",
        arg=[opened.words.element_handle(), text],
        timeout=10_000,
    )


def screenshot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / name), full_page=True)


# --- opening hours ----------------------------------------------------------------------------


def test_weekly_hours_with_the_keyboard_alone(browser: Browser, base: str) -> None:
    opened = open_harness(browser, base)
    page = opened.page
    expect_words(opened, "Sin horario")
    assert opened.raw.input_value() == ""

    tab_to(page, page.get_by_label("Abierto el lunes"))
    page.keyboard.press("Space")
    type_time(page, page.get_by_label("Desde (lunes, tramo 1)"), "08:00")
    type_time(page, page.get_by_label("Hasta (lunes, tramo 1)"), "15:00")
    assert opened.raw.input_value() == "Mo 08:00-15:00; PH off"
    tab_to(page, page.get_by_role("button", name="Añadir tramo el lunes"))
    page.keyboard.press("Enter")
    # The new range has the focus: type it straight away.
    assert page.get_by_label("Desde (lunes, tramo 2)").evaluate(
        "node => node === document.activeElement"
    )
    type_time(page, page.get_by_label("Desde (lunes, tramo 2)"), "16:00")
    type_time(page, page.get_by_label("Hasta (lunes, tramo 2)"), "20:00")
    tab_to(page, page.get_by_role("button", name="Copiar lunes a laborables"))
    page.keyboard.press("Enter")
    tab_to(page, page.get_by_label("Abierto el sábado"))
    page.keyboard.press("Space")
    type_time(page, page.get_by_label("Desde (sábado, tramo 1)"), "10:00")
    type_time(page, page.get_by_label("Hasta (sábado, tramo 1)"), "14:00")
    assert opened.raw.input_value() == "Mo-Fr 08:00-15:00,16:00-20:00; Sa 10:00-14:00; PH off"
    expect_words(
        opened,
        "Esta semana: lunes a viernes 08:00–15:00 y 16:00–20:00; sábado 10:00–14:00; "
        "domingo cerrado.",
    )
    assert opened.words.get_attribute("data-hours-valid") == "true"

    # Friday afternoons closed: Shift+Tab back to its second range's remove button.
    remove = page.get_by_role("button", name="Quitar tramo 2 del viernes")
    for _ in range(40):
        if remove.evaluate("node => node === document.activeElement"):
            break
        page.keyboard.press("Shift+Tab")
    page.keyboard.press("Enter")
    assert opened.raw.input_value() == (
        "Mo-Th 08:00-15:00,16:00-20:00; Fr 08:00-15:00; Sa 10:00-14:00; PH off"
    )

    holidays = page.get_by_label("Festivos")
    tab_to(page, holidays)
    page.keyboard.press("ArrowDown")  # abierto con el horario del día: no PH rule
    assert opened.raw.input_value() == (
        "Mo-Th 08:00-15:00,16:00-20:00; Fr 08:00-15:00; Sa 10:00-14:00"
    )
    page.keyboard.press("ArrowDown")  # abierto 24 h
    assert opened.raw.input_value().endswith("; Sa 10:00-14:00; PH 00:00-24:00")
    page.keyboard.press("ArrowUp")
    page.keyboard.press("ArrowUp")
    expect_words(opened, "viernes 08:00–15:00; sábado 10:00–14:00; domingo cerrado.")
    screenshot(page, "hours-editor.png")
    assert_no_serious(page, "hours editor")
    assert opened.problems == []


def test_half_typed_ranges_are_pointed_out(browser: Browser, base: str) -> None:
    opened = open_harness(browser, base)
    page = opened.page
    tab_to(page, page.get_by_label("Abierto el martes"))
    page.keyboard.press("Space")
    type_time(page, page.get_by_label("Desde (martes, tramo 1)"), "09:00")
    expect_words(opened, "Complete las horas del martes")
    assert opened.words.get_attribute("data-hours-valid") == "false"
    assert opened.problems == []


def test_open_all_the_time(browser: Browser, base: str) -> None:
    opened = open_harness(browser, base, hours="Mo-Fr 08:00-15:00; PH off")
    page = opened.page
    always = page.get_by_label("Abierto 24 horas, todos los días (24/7)")
    tab_to(page, always)
    page.keyboard.press("Space")
    assert opened.raw.input_value() == "24/7"
    assert page.locator(".cm-hours-days").is_hidden()
    expect_words(opened, "Esta semana: abierto las 24 horas, todos los días.")
    page.keyboard.press("Space")  # unticked: the week typed before comes back
    assert opened.raw.input_value() == "Mo-Fr 08:00-15:00; PH off"
    assert opened.problems == []


@pytest.mark.parametrize(
    ("text", "open_days", "holidays"),
    [
        ("Mo-Fr 08:00-15:00,16:00-20:00; Sa 10:00-14:00; PH off", "Mo Tu We Th Fr Sa", "off"),
        ("Sa,Su 10:00-14:00", "Sa Su", "same"),
        ("Mo 00:00-24:00; Tu-Th 22:00-02:00; PH 00:00-24:00", "Mo Tu We Th", "open"),
        ("24/7", "", "off"),
    ],
)
def test_existing_hours_are_read_back_and_left_alone(
    browser: Browser, base: str, text: str, open_days: str, holidays: str
) -> None:
    opened = open_harness(browser, base, hours=text)
    page = opened.page
    names = ["lunes", "martes", "miércoles", "jueves", "viernes", "sábado", "domingo"]
    codes = ["Mo", "Tu", "We", "Th", "Fr", "Sa", "Su"]
    ticked = [page.get_by_label(f"Abierto el {name}").is_checked() for name in names]
    assert ticked == [code in open_days.split() for code in codes]
    assert page.get_by_label("Festivos").input_value() == holidays
    assert page.get_by_label("Abierto 24 horas, todos los días (24/7)").is_checked() == (
        text == "24/7"
    )
    assert page.locator(".cm-hours-advanced").is_hidden()
    assert opened.raw.input_value() == text
    # What the editor writes for what it read is the same text.
    assert page.evaluate("t => cardiomapaHours.serialise(cardiomapaHours.parse(t))", text) == text
    expect_words(opened, "Esta semana:")
    assert opened.problems == []


def test_a_read_back_range_keeps_its_times(browser: Browser, base: str) -> None:
    opened = open_harness(browser, base, hours="Mo-Fr 08:00-15:00,16:00-20:00; Sa 10:00-14:00")
    page = opened.page
    assert page.get_by_label("Desde (miércoles, tramo 2)").input_value() == "16:00"
    assert page.get_by_label("Hasta (sábado, tramo 1)").input_value() == "14:00"
    assert page.get_by_label("Desde (domingo, tramo 1)").is_hidden()
    assert opened.problems == []


def test_advanced_hours_are_left_as_text(browser: Browser, base: str) -> None:
    text = "Mo-Fr 08:00-15:00; Jul,Aug off; PH off"
    opened = open_harness(browser, base, hours=text)
    page = opened.page
    assert page.get_by_text("Horario avanzado: edítelo como texto").is_visible()
    assert page.locator(".cm-hours-week").is_hidden()
    expect_words(opened, "Esta semana: lunes a viernes 08:00–15:00")  # the server reads it
    assert opened.raw.input_value() == text

    restart = page.get_by_role("button", name="Sustituir por un horario del editor")
    tab_to(page, restart)
    page.keyboard.press("Enter")
    assert opened.raw.input_value() == ""
    assert page.locator(".cm-hours-week").is_visible()
    assert opened.problems == []


def test_typing_the_text_updates_the_editor(browser: Browser, base: str) -> None:
    opened = open_harness(browser, base)
    page = opened.page
    tab_to(page, opened.raw)
    page.keyboard.type("Sa 10:00-14:00; PH off")
    expect_words(opened, "sábado 10:00–14:00")
    assert page.get_by_label("Abierto el sábado").is_checked()
    assert page.get_by_label("Desde (sábado, tramo 1)").input_value() == "10:00"

    page.keyboard.press("Control+a")
    page.keyboard.type("de 8 a 3")
    expect_words(opened, "no es válido")
    assert opened.words.get_attribute("data-hours-valid") == "false"
    assert page.get_by_text("Horario avanzado: edítelo como texto").is_visible()
    assert opened.problems == []


# --- place picker -----------------------------------------------------------------------------


def marker_at(page: Page) -> tuple[float, float] | None:
    picker = page.locator("[data-place-picker]")
    lon, lat = picker.get_attribute("data-place-lon"), picker.get_attribute("data-place-lat")
    return (float(lon), float(lat)) if lon and lat else None


def test_tapping_the_map_writes_the_position(browser: Browser, base: str) -> None:
    opened = open_harness(browser, base)
    page = opened.page
    box = page.locator(".cm-place-map")
    assert box.get_attribute("aria-label", timeout=1000)
    page.wait_for_selector(".cm-place-map path.leaflet-interactive, .cm-place-map svg path")
    size = box.bounding_box()
    assert size is not None and size["width"] >= 300 and size["height"] >= 220
    centre = page.evaluate(
        """() => { const c = document.querySelector('[data-place-picker]').cardiomapaMap
                   .getCenter(); return [c.lng, c.lat]; }"""
    )
    # Click positions are relative to the padding box: the map's own pixels.
    width, height = box.evaluate("node => [node.clientWidth, node.clientHeight]")
    box.click(position={"x": width / 2, "y": height / 2})
    lon, lat = page.locator("#lon").input_value(), page.locator("#lat").input_value()
    assert len(lon.split(".")[1]) == 6 and len(lat.split(".")[1]) == 6
    assert abs(float(lon) - centre[0]) < 1e-3 and abs(float(lat) - centre[1]) < 1e-3  # 1 px
    assert marker_at(page) == (float(lon), float(lat))
    assert page.locator(".leaflet-marker-icon").count() == 1
    assert page.locator("[data-place-status]").inner_text().startswith("Punto marcado")

    # A second tap moves the same marker.
    box.click(position={"x": width / 4, "y": height / 4})
    assert page.locator(".leaflet-marker-icon").count() == 1
    assert float(page.locator("#lon").input_value()) < float(lon)
    assert float(page.locator("#lat").input_value()) > float(lat)
    screenshot(page, "place-picker.png")
    assert opened.problems == []


def test_typing_the_position_moves_the_marker_and_focus_is_not_trapped(
    browser: Browser, base: str
) -> None:
    opened = open_harness(browser, base)
    page = opened.page
    tab_to(page, page.locator("#lon"))
    page.keyboard.type(str(PLAZA[0]))
    tab_to(page, page.locator("#lat"))
    page.keyboard.type(str(PLAZA[1]))
    assert marker_at(page) == PLAZA
    # Tab leaves the inputs, crosses the button and the map and reaches the submit button.
    tab_to(page, page.locator("#send"), limit=15)

    page.locator("#lat").focus()
    page.keyboard.press("Control+a")
    page.keyboard.type(str(PLAZA[0]))  # the longitude in the latitude box
    page.locator("#lon").focus()
    page.keyboard.press("Control+a")
    page.keyboard.type(str(PLAZA[1]))
    status = page.locator("[data-place-status]")
    assert "intercambiado" in status.inner_text()
    assert opened.problems == []


def test_prefilled_position_shows_the_marker(browser: Browser, base: str) -> None:
    opened = open_harness(browser, base, lon=str(PLAZA[0]), lat=str(PLAZA[1]))
    assert marker_at(opened.page) == PLAZA
    assert opened.problems == []


def test_use_my_location(browser: Browser, base: str) -> None:
    context = browser.new_context(viewport=PHONE, locale="es-ES")  # type: ignore[arg-type]
    context.grant_permissions(["geolocation"], origin=base)
    context.set_geolocation({"longitude": PLAZA[0], "latitude": PLAZA[1], "accuracy": 12})
    opened = open_harness(browser, base, context=context)
    page = opened.page
    button = page.get_by_role("button", name="Usar mi ubicación")
    tab_to(page, button)
    page.keyboard.press("Enter")
    status = page.locator("[data-place-status]")
    page.wait_for_function(
        "node => node.textContent.startsWith('Ubicación obtenida')",
        arg=status.element_handle(),
    )
    assert "± 12 m" in status.inner_text()
    assert page.locator("#lon").input_value() == f"{PLAZA[0]:.6f}"
    assert page.locator("#lat").input_value() == f"{PLAZA[1]:.6f}"
    assert marker_at(page) == PLAZA
    assert opened.problems == []
    context.close()


def test_location_refused_is_reported_in_spanish(browser: Browser, base: str) -> None:
    context = browser.new_context(viewport=PHONE, locale="es-ES")  # type: ignore[arg-type]
    context.grant_permissions([], origin=base)
    opened = open_harness(browser, base, context=context)
    page = opened.page
    page.get_by_role("button", name="Usar mi ubicación").click()
    status = page.locator("[data-place-status]")
    page.wait_for_function(
        "node => node.textContent.startsWith('No se ha dado permiso')",
        arg=status.element_handle(),
    )
    assert page.locator("#lon").input_value() == ""
    assert opened.problems == []
    context.close()


def test_the_form_has_no_serious_accessibility_problem(browser: Browser, base: str) -> None:
    opened = open_harness(browser, base, hours="Mo-Fr 08:00-15:00; PH off")
    expect_words(opened, "Esta semana:")
    assert_no_serious(opened.page, "device form components")
    assert opened.problems == []


def test_the_static_files_exist() -> None:
    static = Path(__file__).resolve().parent.parent / "api" / "static"
    for name in ("hours-editor.js", "hours-editor.css", "place-picker.js"):
        assert (static / name).is_file()
