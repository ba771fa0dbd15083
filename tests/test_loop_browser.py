"""The whole registration loop, in a real browser, on SpatiaLite and on PostGIS.

An invitation link signs an entity in; on a phone it registers a device by tapping the map and
setting its hours in the weekly editor; the device is pending and absent from the citizens' map;
a planner approves it at ``/gestion``; it appears on the citizens' map with its hours in words;
the entity records a check; an overdue device produces exactly one e-mail in a real SMTP server on
localhost, and a second run sends none. Every page is checked with axe and photographed
(``test-artifacts/loop-*.png``); nothing leaves the machine (no basemap).
"""

from __future__ import annotations

import email
import email.policy
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from axe import assert_no_serious
from conftest import BACKENDS, DATA_DIR, fresh_database
from playwright.sync_api import Browser, Page
from servers import ARTIFACTS, Server, Watched, free_port, open_page
from weeks import ORDINARY, clock_at, clock_env

from geo.city import load_city_profile
from geo.io.files import read_layers
from geo.io.store import Store
from geo.services.tokens import issue_invitation, issue_token

PHONE = {"width": 390, "height": 844}
ENTITY = "ent-002"
NAME = "DEA Centro de Día Prueba (vestíbulo)"
#: What the hours editor must write for Monday–Friday 09:00–14:00 and 16:00–20:00, Saturday
#: 10:00–13:00, closed on public holidays.
HOURS = "Mo-Fr 09:00-14:00,16:00-20:00; Sa 10:00-13:00; PH off"
WORDS = "lunes a viernes 09:00–14:00 y 16:00–20:00"


class Mailbox:
    """An aiosmtpd handler that keeps every message it accepts."""

    def __init__(self) -> None:
        self.messages: list[tuple[list[str], email.message.EmailMessage]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        parsed = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(parsed, email.message.EmailMessage)
        self.messages.append((list(envelope.rcpt_tos), parsed))
        return "250 OK"


@dataclass
class Site:
    backend: str
    db_url: str
    base: str
    planner: str
    smtp_url: str
    mailbox: Mailbox
    folder: Path


@pytest.fixture(params=BACKENDS)
def site(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Site]:
    """The sample in a fresh database, a real server and a real SMTP server on localhost."""
    with fresh_database(request, tmp_path) as url:
        city = load_city_profile(DATA_DIR / "city.json")
        with Store.open(url, clock=clock_at(ORDINARY)) as store:
            store.load(read_layers(DATA_DIR, city))
            planner = issue_token(store, role="planner", label="Marta (planificación)").secret
            store.set_contacts(
                [{"entity_id": ENTITY, "person": "Lucía Gómez", "email": "lucia@centro.example"}],
                actor="test",
            )
        mailbox = Mailbox()
        port = free_port()
        controller = Controller(mailbox, hostname="127.0.0.1", port=port, ready_timeout=10)
        controller.start()
        # An ordinary week: the hours in words are this week's, and a holiday would change them.
        server = Server(
            url, tmp_path / "server.log", env={"CARDIOMAPA_TILE_URL": "", **clock_env(ORDINARY)}
        )
        try:
            smtp = f"smtp://127.0.0.1:{port}"
            yield Site(request.param, url, server.base, planner, smtp, mailbox, tmp_path)
        finally:
            server.stop()
            controller.stop()


def open_phone(browser: Browser) -> Watched:
    return open_page(browser, **PHONE)


def check(watched: Watched, name: str, shot: str) -> None:
    assert not watched.problems, watched.problems
    ARTIFACTS.mkdir(exist_ok=True)
    watched.page.screenshot(path=str(ARTIFACTS / shot), full_page=True)
    assert_no_serious(watched.page, name)
    width = watched.page.evaluate("() => document.documentElement.scrollWidth")
    assert width <= PHONE["width"], f"{name}: the page scrolls sideways ({width} px)"


def stored(site: Site, name: str) -> dict[str, Any]:
    with Store.open(site.db_url) as store:
        frame = store.query_layer("defibrillators", where={"name": [name]})
        assert len(frame) == 1, f"{name!r}: {len(frame)} devices"
        record = store.device(str(frame["id"].iloc[0]))
    assert record is not None
    return record


def citizen_ids(page: Page, base: str) -> set[str]:
    document = page.evaluate(f"() => fetch('{base}/api/map/devices').then(r => r.json())")
    column = document["columns"].index("id")
    return {row[column] for row in document["rows"]}


def set_hours(page: Page) -> None:
    """Monday to Friday 09:00–14:00 and 16:00–20:00, Saturday 10:00–13:00, holidays closed."""
    page.get_by_label("Abierto el lunes", exact=True).check()
    page.get_by_label("Desde (lunes, tramo 1)").fill("09:00")
    page.get_by_label("Hasta (lunes, tramo 1)").fill("14:00")
    page.get_by_role("button", name="Añadir tramo el lunes").click()
    page.get_by_label("Desde (lunes, tramo 2)").fill("16:00")
    page.get_by_label("Hasta (lunes, tramo 2)").fill("20:00")
    page.get_by_role("button", name=re.compile("^Copiar lunes a laborables")).click()
    page.get_by_label("Abierto el sábado", exact=True).check()
    page.get_by_label("Desde (sábado, tramo 1)").fill("10:00")
    page.get_by_label("Hasta (sábado, tramo 1)").fill("13:00")
    page.get_by_label("Festivos").select_option("off")


def reminders(site: Site, *extra: str) -> subprocess.CompletedProcess[str]:
    script = Path(sys.executable).parent / "cardiomapa"
    env = {**os.environ, "CARDIOMAPA_DATABASE_URL": site.db_url,
           "CARDIOMAPA_SMTP_URL": site.smtp_url, "CARDIOMAPA_MAIL_FROM": "dea@palencia.example",
           "CARDIOMAPA_PUBLIC_URL": site.base, **clock_env(ORDINARY)}  # fmt: skip
    return subprocess.run(
        [str(script), "reminders", "send", *extra],
        env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


def test_the_whole_loop(browser: Browser, site: Site) -> None:
    started = time.monotonic()
    # 1. An administrator's invitation link signs the entity in.
    with Store.open(site.db_url, clock=clock_at(ORDINARY)) as store:
        link = issue_invitation(store, entity_id=ENTITY, actor="test").url(site.base)
    entity = open_phone(browser)
    page = entity.page
    page.goto(link)
    check(entity, "invitation", "loop-invitation.png")
    page.get_by_role("button", name=re.compile("^Entrar como")).click()
    page.get_by_role("heading", name="Mis desfibriladores").wait_for()
    check(entity, "portal home", "loop-portal-home.png")

    # 2. It registers a device: taps the map, fills the form, sets the hours in the editor.
    registration = time.monotonic()
    page.get_by_role("link", name="Registrar un desfibrilador").first.click()
    page.get_by_role("heading", name="Registrar un desfibrilador").wait_for()
    page.locator(".cm-place-map.leaflet-container").wait_for()
    check(entity, "registration form", "loop-register-empty.png")
    box = page.locator(".cm-place-map").bounding_box()
    assert box is not None
    page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    lon = page.get_by_label("Longitud").input_value()
    lat = page.get_by_label("Latitud").input_value()
    assert lon and lat, "tapping the map did not set the position"
    page.get_by_label("Nombre").fill(NAME)
    page.get_by_label("Dónde está exactamente").fill("Vestíbulo, a la izquierda de la entrada")
    page.get_by_label("Quién puede usarlo").select_option("yes")
    set_hours(page)
    assert page.locator("#opening_hours").input_value() == HOURS
    page.locator("[data-hours-words]").filter(has_text=WORDS).wait_for()
    page.get_by_label("Caducidad de la batería").fill("2020-01-31")  # long overdue
    page.get_by_label("Código del armario").fill("C-1234")
    check(entity, "registration form, filled", "loop-register-filled.png")
    page.get_by_role("button", name="Registrar el desfibrilador").click()
    page.get_by_role("status").filter(has_text="pendiente de verificación").wait_for()
    registration_s = time.monotonic() - registration
    record = stored(site, NAME)
    assert record["verification"] == "pending" and record["opening_hours"] == HOURS
    assert record["operator_entity_id"] == ENTITY
    assert abs(record["geometry"].x - float(lon)) < 1e-6
    card = page.locator("li.cm-card", has_text=NAME)
    assert "Pendiente de verificación" in card.inner_text()
    assert "Atención" in card.inner_text()  # the battery expired
    assert record["id"] not in citizen_ids(page, site.base)

    # 3. A planner approves it at /gestion.
    planner = open_phone(browser)
    desk = planner.page
    desk.goto(f"{site.base}/gestion")
    desk.get_by_label("Token de acceso").fill(site.planner)
    desk.keyboard.press("Enter")
    desk.get_by_role("heading", name="Moderación: desfibriladores pendientes").wait_for()
    check(planner, "moderation queue", "loop-desk-queue.png")
    desk.get_by_role("button", name=f"Verificar «{NAME}»").click()
    desk.get_by_role("status").filter(has_text=f"«{NAME}» verificado").wait_for()
    assert stored(site, NAME)["verification"] == "verified"

    # 4. It appears on the citizens' map, with its hours in words.
    citizen = open_phone(browser)
    view = citizen.page
    view.goto(site.base + "/")
    view.wait_for_selector("body[data-cm-ready]", state="attached", timeout=30_000)
    assert record["id"] in citizen_ids(view, site.base)
    view.evaluate(
        "([lat, lon]) => cardiomapa.map.setView([lat, lon], 18, {animate: false})",
        [record["geometry"].y, record["geometry"].x],
    )
    view.wait_for_timeout(400)
    view.locator(f".cm-device[title='{NAME}']").click()
    popup = view.locator(".cm-popup")
    popup.wait_for()
    assert WORDS in popup.inner_text() and "C-1234" not in popup.inner_text()
    view.wait_for_timeout(300)
    check(citizen, "citizen map with the new device", "loop-citizen-popup.png")

    # 5. The entity records a check.
    page.goto(f"{site.base}/entidades")
    page.locator("li.cm-card", has_text=NAME).get_by_role("button", name="Revisado hoy").click()
    page.get_by_role("status").filter(has_text="Revisión anotada").wait_for()
    assert stored(site, NAME)["check_date"] is not None
    check(entity, "device page after a check", "loop-checked.png")

    # 6. The overdue battery gives exactly one e-mail; a second run sends none.
    first = reminders(site)
    assert first.returncode == 0, first.stdout + first.stderr
    to_entity = [m for rcpt, m in site.mailbox.messages if rcpt == ["lucia@centro.example"]]
    assert len(to_entity) == 1, [m["Subject"] for _, m in site.mailbox.messages]
    body = to_entity[0].get_body(preferencelist=("plain",))
    assert body is not None
    text = body.get_content()
    assert NAME in text and "batería" in text and "/entidades/invitacion/ci_" in text
    sent = len(site.mailbox.messages)
    second = reminders(site)
    assert second.returncode == 0, second.stdout + second.stderr
    assert len(site.mailbox.messages) == sent
    # The link in the mail signs the entity in (a fresh browser, no cookie).
    mailed = re.search(r"https?://\S+/entidades/invitacion/ci_\S+", text)
    assert mailed
    fresh = open_phone(browser)
    fresh.page.goto(mailed.group(0))
    fresh.page.get_by_role("button", name=re.compile("^Entrar como")).click()
    fresh.page.get_by_role("heading", name="Mis desfibriladores").wait_for()
    for watched in (entity, planner, citizen, fresh):
        assert not watched.problems, watched.problems
        watched.page.context.close()
    print(
        f"\n[{site.backend}] registration in the browser: {registration_s:.1f} s; "
        f"whole loop {time.monotonic() - started:.1f} s"
    )


def tab_to(page: Page, target: Any, *, limit: int = 300) -> None:
    """Press Tab until ``target`` has the focus (what a keyboard user does)."""
    for _ in range(limit):
        page.keyboard.press("Tab")
        if target.evaluate("el => el === document.activeElement"):
            return
    pytest.fail(f"Tab never reached {target}")


def test_registering_with_the_keyboard_alone(browser: Browser, site: Site) -> None:
    """Errors are announced and tied to their fields; the whole form works without a mouse."""
    with Store.open(site.db_url, clock=clock_at(ORDINARY)) as store:
        link = issue_invitation(store, entity_id=ENTITY, actor="test").url(site.base)
    watched = open_phone(browser)
    page = watched.page
    page.goto(link)
    tab_to(page, page.get_by_role("button", name=re.compile("^Entrar como")))
    page.keyboard.press("Enter")
    page.get_by_role("heading", name="Mis desfibriladores").wait_for()
    tab_to(page, page.get_by_role("link", name="Registrar un desfibrilador").last)
    page.keyboard.press("Enter")
    page.get_by_role("heading", name="Registrar un desfibrilador").wait_for()
    # Sent empty: a summary (an alert) lists each problem and links to its field.
    tab_to(page, page.get_by_role("button", name="Registrar el desfibrilador"))
    page.keyboard.press("Enter")
    summary = page.get_by_role("alert").filter(has_text="Revise")
    summary.wait_for()
    assert "Falta la posición" in summary.inner_text() and "Nombre" in summary.inner_text()
    name = page.get_by_label("Nombre")
    assert name.get_attribute("aria-invalid") == "true"
    described = name.get_attribute("aria-describedby") or ""
    assert "f-name-error" in described
    assert "Nombre" in page.locator("#f-name-error").inner_text()
    # The form comes back with 422, which Chromium logs; that one line is expected.
    assert watched.problems == [
        "console: Failed to load resource: the server responded with a status of 422 "
        "(Unprocessable Entity)"
    ]
    watched.clear()
    check(watched, "registration form with errors", "loop-register-errors.png")
    # Fixed with the keyboard: position typed, name, 24/7 ticked with the space bar.
    tab_to(page, page.get_by_label("Longitud"))
    page.keyboard.type("-4.5300")
    page.keyboard.press("Tab")
    assert page.get_by_label("Latitud").evaluate("el => el === document.activeElement")
    page.keyboard.type("42.0110")
    tab_to(page, name)
    page.keyboard.type("DEA teclado (conserjería)")
    tab_to(page, page.get_by_label("Abierto 24 horas, todos los días (24/7)"))
    page.keyboard.press("Space")
    page.locator("[data-hours-words]").filter(has_text="24 horas").wait_for()
    assert page.locator("#opening_hours").input_value() == "24/7"
    tab_to(page, page.get_by_role("button", name="Registrar el desfibrilador"))
    page.keyboard.press("Enter")
    page.get_by_role("status").filter(has_text="pendiente de verificación").wait_for()
    record = stored(site, "DEA teclado (conserjería)")
    assert record["opening_hours"] == "24/7" and record["verification"] == "pending"
    assert (round(record["geometry"].x, 4), round(record["geometry"].y, 4)) == (-4.53, 42.011)
    assert not watched.problems, watched.problems
    page.context.close()
