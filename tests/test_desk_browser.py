"""The staff desk (/gestion) in a real browser: Debian's Chromium, headless, driven by Playwright,
against a real ``cardiomapa serve`` holding the Palencia sample (on SpatiaLite and on PostGIS).

A planner signs in and moderates with the keyboard only; then every desk page is photographed
at 390×844 (``test-artifacts/desk-*.png``) and checked with axe. No basemap
(``CARDIOMAPA_TILE_URL=""``): nothing leaves the machine.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from axe import assert_no_serious
from conftest import BACKENDS, DATA_DIR, fresh_database
from playwright.sync_api import Browser, Locator, Page
from servers import ARTIFACTS, Server, Watched, open_page
from weeks import ORDINARY, clock_at, clock_env

from geo.city import load_city_profile
from geo.io.files import read_layers
from geo.io.store import Store
from geo.services import registry
from geo.services.tokens import authenticate, issue_token

PHONE = {"width": 390, "height": 844}
APPROVE = "DEA Peña de vecinos (entrada)"
REJECT = "DEA Bar sin nombre"
LEFT = "DEA Club de jubilados"


@dataclass
class Site:
    backend: str
    db_url: str
    base: str
    planner: str
    admin: str
    report_id: int


@pytest.fixture(scope="module", params=BACKENDS)
def site(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Site]:
    """The sample with three pending registrations, a moved device and a citizen's report."""
    folder = tmp_path_factory.mktemp(f"desk-{request.param}")
    with fresh_database(request, folder) as url:
        city = load_city_profile(DATA_DIR / "city.json")
        with Store.open(url, clock=clock_at(ORDINARY - dt.timedelta(hours=1))) as store:
            store.load(read_layers(DATA_DIR, city))
            planner = issue_token(store, role="planner", label="Marta (planificación)").secret
            admin = issue_token(store, role="admin", label="Jorge (administración)").secret
            entity = authenticate(
                store, issue_token(store, role="entity", entity_id="ent-002").secret
            )
            for n, name in enumerate((APPROVE, REJECT, LEFT)):
                registry.register_device(
                    store, city, entity,
                    properties={"name": name, "access": "yes", "opening_hours": "Mo-Fr 09:00-20:00",
                                "location_text": "recepción", "address": f"Calle Mayor {n + 1}"},
                    geometry={"type": "Point", "coordinates": [-4.532 + n * 0.004, 42.010]},
                    today=dt.date(2026, 12, 7),
                )  # fmt: skip
            registry.update_device(  # a verified device its entity moved: pending again
                store, city, entity, "dea-012", changes={},
                geometry={"type": "Point", "coordinates": [-4.5262, 42.0075]},
                today=dt.date(2026, 12, 7),
            )  # fmt: skip
            report_id = registry.report_problem(
                store, city, "dea-001", kind="broken", message="La luz del equipo parpadea en rojo."
            )
        # An ordinary week; the data above was written an hour before it (upkeep, "now").
        server = Server(
            url, folder / "server.log", env={"CARDIOMAPA_TILE_URL": "", **clock_env(ORDINARY)}
        )
        try:
            yield Site(request.param, url, server.base, planner, admin, report_id)
        finally:
            server.stop()


def open_phone(browser: Browser) -> Watched:
    return open_page(browser, **PHONE)


def tab_to(page: Page, target: Locator, *, limit: int = 400) -> None:
    """Press Tab until ``target`` has the focus (what a keyboard user does)."""
    for _ in range(limit):
        page.keyboard.press("Tab")
        if target.evaluate("el => el === document.activeElement"):
            return
    pytest.fail(f"Tab never reached {target}")


def check_page(watched: Watched, name: str, shot: str | None = None) -> None:
    page = watched.page
    assert not watched.problems, watched.problems
    if shot is not None:
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / shot), full_page=True)
    assert_no_serious(page, name)


def sign_in(page: Page, site: Site, token: str) -> None:
    page.goto(f"{site.base}/gestion")
    field_ = page.get_by_label("Token de acceso")
    tab_to(page, field_)
    page.keyboard.type(token)
    page.keyboard.press("Enter")
    page.wait_for_url(f"{site.base}/gestion")
    page.get_by_role("heading", name="Moderación: desfibriladores pendientes").wait_for()


def device_state(site: Site, name: str) -> str:
    with Store.open(site.db_url) as store:
        frame = store.query_layer("defibrillators", where={"name": [name]})
        return str(frame["verification"].iloc[0])


def test_planner_moderates_with_the_keyboard(browser: Browser, site: Site) -> None:
    watched = open_phone(browser)
    page = watched.page
    page.goto(f"{site.base}/gestion")
    check_page(watched, f"desk sign-in ({site.backend})")
    sign_in(page, site, site.planner)
    # the map shows every pending device (three new, one moved, the sample's) and an old position
    page.locator("#desk-map.leaflet-container").wait_for()
    pending = page.locator("li.cm-card").count()
    assert page.locator("#desk-map path.cm-desk-new").count() == pending >= 4
    assert page.locator("#desk-map path.cm-desk-old").count() >= 1
    assert "Posición verificada anterior" in page.content()
    check_page(watched, f"desk queue ({site.backend})", "desk-queue.png")

    tab_to(page, page.get_by_role("button", name=f"Verificar «{APPROVE}»"))
    page.keyboard.press("Enter")
    page.get_by_role("status").filter(has_text=f"«{APPROVE}» verificado").wait_for()
    assert device_state(site, APPROVE) == "verified"

    card = page.locator("li.cm-card", has_text=REJECT)
    tab_to(page, card.locator("summary"))
    page.keyboard.press("Enter")
    page.keyboard.press("Tab")
    assert card.get_by_label("Motivo del rechazo").evaluate("el => el === document.activeElement")
    page.keyboard.type("No hay foto ni dirección exacta: vuelva a registrarlo con la calle.")
    tab_to(page, card.get_by_role("button", name=f"Rechazar «{REJECT}»"))
    page.keyboard.press("Enter")
    page.get_by_role("status").filter(has_text=f"«{REJECT}» rechazado").wait_for()
    assert device_state(site, REJECT) == "rejected"

    tab_to(
        page, page.get_by_role("navigation", name="Secciones").get_by_role("link", name="Avisos")
    )
    page.keyboard.press("Enter")
    page.get_by_role("heading", name="Avisos de la ciudadanía").wait_for()
    check_page(watched, f"desk reports ({site.backend})", "desk-reports.png")
    tab_to(page, page.get_by_label("Nota de revisión"))
    page.keyboard.type("Avisada la entidad: cambia la batería esta semana.")
    tab_to(page, page.get_by_role("button", name=f"Resolver aviso {site.report_id}"))
    page.keyboard.press("Enter")
    page.get_by_role("status").filter(has_text=f"Aviso {site.report_id} resuelto").wait_for()
    with Store.open(site.db_url) as store:
        (report,), _ = store.reports(status=["accepted"])
    assert report["id"] == site.report_id and report["review_note"].startswith("Avisada")
    assert not watched.problems, watched.problems
    page.context.close()


def test_every_desk_page_on_a_phone(browser: Browser, site: Site) -> None:
    watched = open_phone(browser)
    page = watched.page
    sign_in(page, site, site.admin)
    for path, heading, shot in [
        ("/gestion/auditoria", "Registro de cambios", "desk-audit.png"),
        ("/gestion/mantenimiento", "Mantenimiento", "desk-upkeep.png"),
        ("/gestion/entidades", "Acceso de las entidades", "desk-entities.png"),
    ]:
        page.goto(site.base + path)
        page.get_by_role("heading", name=heading, exact=True).wait_for()
        width = page.evaluate("() => document.documentElement.scrollWidth")
        assert width <= PHONE["width"], f"{path} scrolls sideways ({width} px)"
        check_page(watched, f"desk {path} ({site.backend})", shot)
    page.goto(f"{site.base}/gestion/auditoria?tipo=device")
    page.locator("details summary").first.click()
    assert page.locator("details[open] .cm-diff").count() == 1
    check_page(watched, f"desk audit with a diff open ({site.backend})")
    page.goto(f"{site.base}/gestion/entidades")
    page.locator("li.cm-card").first.get_by_role("button", name="Crear invitación").click()
    link = page.get_by_label("Enlace de invitación").input_value()
    assert link.startswith(f"{site.base}/entidades/invitacion/ci_")
    check_page(watched, f"desk invitation ({site.backend})")
    page.context.close()


def device_status(site: Site, device_id: str) -> str:
    with Store.open(site.db_url) as store:
        record = store.device(device_id)
        assert record is not None
        return str(record["status"])


def test_staff_take_a_device_out_of_service_and_back_with_the_keyboard(
    browser: Browser, site: Site
) -> None:
    watched = open_phone(browser)
    page = watched.page
    sign_in(page, site, site.planner)
    page.goto(f"{site.base}/gestion/desfibriladores/dea-002")
    page.get_by_role("heading", name="Servicio", exact=True).wait_for()
    check_page(watched, f"desk device ({site.backend})", "desk-device.png")

    tab_to(page, page.get_by_label("Motivo para dejarlo fuera de servicio"))
    page.keyboard.type("La entidad lo ha enviado a reparar.")
    tab_to(page, page.get_by_role("button", name="Dejar «DESA Piscina Campos Góticos» fuera"
                                  " de servicio"))  # fmt: skip
    page.keyboard.press("Enter")
    page.get_by_role("status").filter(has_text="queda fuera de servicio").wait_for()
    assert device_status(site, "dea-002") == "out_of_service"
    assert "La entidad lo ha enviado a reparar." in page.content()  # the last change, and why
    check_page(watched, f"desk device out of service ({site.backend})")

    tab_to(page, page.get_by_label("Motivo para volver a ponerlo en servicio"))
    page.keyboard.type("Reparado: la entidad envió el parte del técnico.")
    tab_to(page, page.get_by_role("button", name="Volver a poner «DESA Piscina Campos Góticos»"
                                  " en servicio"))  # fmt: skip
    page.keyboard.press("Enter")
    page.get_by_role("status").filter(has_text="vuelve a estar en servicio").wait_for()
    assert device_status(site, "dea-002") == "active"
    assert not watched.problems, watched.problems
    page.context.close()
