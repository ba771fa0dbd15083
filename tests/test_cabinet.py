"""A cabinet's public page (/dea/{id}), its QR code and its A6 sheet, in process, on SpatiaLite
and PostGIS: what the page says (state and its reason, hours, last check, directions), which
devices have one (404 for the others), that no emergency-only note ever reaches it, the report in
two taps through the same door as the API (one pending report, the staff's e-mail, the same
limits), and the portal's link to the sheet.

The app's clock is pinned to Monday 23 November 2026, 10:00 in Palencia (``weeks.ORDINARY``),
so no test depends on the day it runs.
"""

from __future__ import annotations

import datetime as dt
import html
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from markupsafe import escape
from weeks import HOLIDAY, ORDINARY, clock_at

from api.app import create_app
from api.pages.cabinet import public_url
from geo.core.layers import Layers
from geo.io.store import Store
from geo.services.tokens import issue_invitation
from geo.settings import Settings
from tests.smtp_server import Mailbox, smtp_server

BASE = "https://dea.example.org"
STAFF = "guardia@palencia.example"
ORIGIN = {"Origin": "http://testserver"}
#: Emergency-only notes stored for dea-2: none of them may ever reach a public page.
SECRET = {
    "cabinet_code": "CLAVE-SECRETA-4711",
    "key_holder": "Conserje Sr. Centinela",
    "notes": "Nota interna centinela: la llave está bajo el felpudo",
}
EVIL = '<script>alert(1)</script>"><img src=x onerror=alert(1)>'
#: Copies of dea-2 (public, 24/7) that citizens are not shown, or shown with a problem.
EXTRA = {
    "dea-pendiente": {"verification": "pending"},
    "dea-rechazado": {"verification": "rejected"},
    "dea-retirado": {"status": "removed", "removed_on": dt.date(2026, 10, 1)},
    "dea-movil": {"is_mobile": True},
    "dea-parado": {"status": "out_of_service"},
    "dea-caducado": {"pads_expiry": dt.date(2026, 11, 1)},
    "dea-privado": {"access": "private"},
    "dea-sin-horario": {"opening_hours": None},
    "dea-horario-roto": {"opening_hours": "cuando se pueda"},
    "dea-oficina": {"opening_hours": "Mo-Fr 08:00-15:00; PH off"},
    "dea-raro": {"location_text": EVIL, "address": "Calle Mayor 1", "level": "-1"},
}
HIDDEN = ("dea-pendiente", "dea-rechazado", "dea-retirado", "dea-movil", "no-existe")


@dataclass
class Site:
    client: TestClient
    db_url: str
    mailbox: Mailbox
    settings: Settings

    def store(self) -> Store:
        return Store.open(self.db_url, clock=clock_at(ORDINARY))

    def tap_one(self, device_id: str, kind: str = "missing") -> httpx.Response:
        return self.client.post(f"/dea/{device_id}/aviso", data={"kind": kind})

    def tap_two(
        self, device_id: str, kind: str = "missing", *, headers: dict[str, str] | None = None,
        **fields: str,
    ) -> httpx.Response:  # fmt: skip
        return self.client.post(
            f"/dea/{device_id}/aviso/enviar", data={"kind": kind, **fields},
            headers=ORIGIN if headers is None else headers, follow_redirects=False,
        )  # fmt: skip


def _load(db_url: str, tiny_layers: Layers) -> None:
    with Store.open(db_url, clock=clock_at(ORDINARY)) as store:
        store.load(tiny_layers)
        plaza = store.device("dea-2")
        assert plaza is not None
        for device_id, changes in EXTRA.items():
            store.insert_device({**plaza, "id": device_id, **changes}, actor="test")
        store.update_device(plaza, plaza, actor="test", private=SECRET)
        assert store.private_notes(["dea-2"])["dea-2"] == SECRET  # the sentinels are stored


def _settings(db_url: str, **changes: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": db_url, "tile_url": "", "public_url": BASE, "clock_start": ORDINARY,
    }  # fmt: skip
    return Settings(**(values | changes))


@pytest.fixture
def site(db_url: str, tiny_layers: Layers) -> Iterator[Site]:
    _load(db_url, tiny_layers)
    mailbox = Mailbox()
    with smtp_server(mailbox) as port:
        settings = _settings(
            db_url, smtp_url=f"smtp://127.0.0.1:{port}", mail_from="dea@palencia.example",
            staff_emails=[STAFF],
        )  # fmt: skip
        with TestClient(create_app(settings)) as client:
            yield Site(client, db_url, mailbox, settings)


def text(response: httpx.Response) -> str:
    """The page's visible text, roughly (tags dropped, entities decoded)."""
    body = re.sub(r"<(script|style)\b.*?</\1>", " ", response.text, flags=re.S)
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", body)).split())


def state_line(response: httpx.Response) -> str:
    match = re.search(r'<div class="cm-state cm-state-(\w+)">(.*?)</div>', response.text, re.S)
    assert match, response.text
    words = " ".join(html.unescape(re.sub(r"<[^>]+>", " ", match.group(2))).split())
    return f"{match.group(1)}: {words}"


def pending(site: Site, device_id: str) -> list[dict[str, Any]]:
    with site.store() as store:
        reports, _ = store.reports(status=["pending"], device_id=device_id)
    return reports


# --- the page -----------------------------------------------------------------------------------


def test_the_page_says_state_hours_last_check_and_how_to_get_there(site: Site) -> None:
    page = site.client.get("/dea/dea-3")  # the pharmacy: open on a Monday morning
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    words = text(page)
    assert state_line(page) == "ok: Estado ahora: Disponible ahora Cierra hoy a las 14:00."
    assert "DEA Farmacia" in words
    assert (
        "Esta semana lunes a viernes 09:30–14:00 y 17:00–20:30; sábado 10:00–14:00; "
        "domingo cerrado" in words
    )
    assert "Última revisión 01/06/2026" in words
    assert "Interior o exterior Dentro del edificio" in words
    directions = (
        "https://www.openstreetmap.org/directions?engine=fossgis_osrm_foot&amp;"
        "route=%3B42.015000%2C-4.518000"
    )
    assert f'href="{directions}"' in page.text
    # 112 comes first: the first link of the page calls it
    assert re.findall(r'<a\b[^>]*href="([^"]+)"', page.text)[0] == "tel:112"
    # the same headers as every other page
    policy = page.headers["content-security-policy"]
    assert "script-src 'self';" in policy and "form-action 'self'" in policy
    assert page.headers["x-frame-options"] == "DENY"
    assert page.headers["cache-control"] == "no-store"

    plaza = site.client.get("/dea/dea-2")
    assert state_line(plaza) == "ok: Estado ahora: Disponible ahora (24 h)"
    assert "Sitio exacto columna exterior del ayuntamiento" in text(plaza)
    assert "Interior o exterior En el exterior" in text(plaza)
    assert "abierto las 24 horas, todos los días" in text(plaza)


def test_the_state_gives_its_reason(site: Site) -> None:
    assert state_line(site.client.get("/dea/dea-parado")) == "bad: Estado ahora: Fuera de servicio"
    assert state_line(site.client.get("/dea/dea-caducado")) == (
        "warn: Estado ahora: Abierto, pero con parches caducados el 01/11/2026"
    )
    assert state_line(site.client.get("/dea/dea-privado")) == (
        "warn: Estado ahora: Acceso restringido (no es de uso público)"
    )
    unknown = site.client.get("/dea/dea-sin-horario")
    assert state_line(unknown) == "warn: Estado ahora: Horario desconocido"
    assert "Esta semana Horario desconocido." in text(unknown)
    unreadable = site.client.get("/dea/dea-horario-roto")
    assert state_line(unreadable) == "warn: Estado ahora: Horario desconocido"
    assert "Esta semana Horario no interpretable: «cuando se pueda»." in text(unreadable)
    response = site.client.post(
        "/api/defibrillators/dea-2/reports", json={"kind": "broken", "message": "Pita sin parar"}
    )
    assert response.status_code == 202
    assert state_line(site.client.get("/dea/dea-2")) == (
        "bad: Estado ahora: Avisado como averiado hace 0 min — sin confirmar"
    )


@pytest.mark.parametrize(
    ("start", "state", "hours"),
    [
        (ORDINARY, "ok: Estado ahora: Disponible ahora Cierra hoy a las 15:00.",
         "Esta semana lunes a viernes 08:00–15:00; sábado y domingo cerrado Última"),
        # Tuesday 8 December, the Inmaculada; Monday 7 is Castilla y León's holiday
        (HOLIDAY, "closed: Estado ahora: Cerrado ahora Abre mañana a las 08:00.",
         "Esta semana lunes 7 (festivo): cerrado; martes 8 (festivo): cerrado; "
         "miércoles a viernes 08:00–15:00; sábado y domingo cerrado Última"),
    ],
)  # fmt: skip
def test_the_state_and_the_week_follow_the_app_clock(
    db_url: str, tiny_layers: Layers, start: dt.datetime, state: str, hours: str
) -> None:
    _load(db_url, tiny_layers)
    with TestClient(create_app(_settings(db_url, clock_start=start))) as client:
        page = client.get("/dea/dea-oficina")
    assert state_line(page) == state
    assert hours in text(page)


@pytest.mark.parametrize("device_id", HIDDEN)
def test_devices_citizens_are_not_shown_have_no_page(site: Site, device_id: str) -> None:
    for url in (f"/dea/{device_id}", f"/dea/{device_id}/hoja", f"/dea/{device_id}/qr.svg"):
        response = site.client.get(url)
        assert response.status_code == 404, url
        assert response.headers["content-type"].startswith("text/html")
        assert "No hay ningún desfibrilador público con el código" in text(response)
        assert 'href="tel:112"' in response.text  # an emergency still gets the number
    assert site.tap_one(device_id).status_code == 404
    assert site.tap_two(device_id).status_code == 404
    assert pending(site, device_id) == []


def test_no_emergency_only_note_ever_reaches_the_public(site: Site) -> None:
    pages = [
        site.client.get("/dea/dea-2"),
        site.client.get("/dea/dea-2/hoja"),
        site.client.get("/dea/dea-2/qr.svg"),
        site.tap_one("dea-2"),
        site.tap_two("dea-2", detalle="x" * 1001),  # the confirmation again, with an error
        site.client.get("/dea/dea-2?aviso=enviado"),
    ]
    assert [page.status_code for page in pages] == [200, 200, 200, 200, 422, 200]
    for page in pages:
        for secret in SECRET.values():
            assert secret not in page.text
            assert html.escape(secret) not in page.text


def test_what_entities_typed_is_escaped(site: Site) -> None:
    page = site.client.get("/dea/dea-raro")
    assert page.status_code == 200
    assert EVIL not in page.text and "<script>alert" not in page.text
    assert str(escape(EVIL)) in page.text
    assert "Sitio exacto " + EVIL in text(page)
    assert "Dirección Calle Mayor 1" in text(page)
    assert "Planta -1 (bajo la calle)" in text(page)
    confirm = site.tap_one("dea-raro")
    assert confirm.status_code == 200 and "<script>alert" not in confirm.text
    again = site.tap_two("dea-raro", detalle=EVIL + "x" * 1000)
    assert again.status_code == 422 and "<script>alert" not in again.text


# --- reporting in two taps ----------------------------------------------------------------------


def test_two_taps_store_exactly_one_pending_report_and_tell_the_staff(site: Site) -> None:
    page = site.client.get("/dea/dea-2")
    assert 'action="/dea/dea-2/aviso"' in page.text
    assert re.findall(r'name="kind" value="(\w+)">([^<]+)<', page.text) == [
        ("missing", "No está"), ("broken", "No funciona"),
    ]  # fmt: skip

    confirm = site.tap_one("dea-2", "missing")  # tap 1: nothing is stored yet
    assert confirm.status_code == 200
    assert "¿Enviar este aviso?" in text(confirm)
    assert "No está: el desfibrilador no está en su armario" in text(confirm)
    assert 'action="/dea/dea-2/aviso/enviar"' in confirm.text
    assert '<input type="hidden" name="kind" value="missing">' in confirm.text
    assert pending(site, "dea-2") == []

    sent = site.tap_two("dea-2", "missing")  # tap 2: «Enviar aviso»
    assert sent.status_code == 303
    assert sent.headers["location"] == "/dea/dea-2?aviso=enviado"
    (report,) = pending(site, "dea-2")
    assert report["kind"] == "missing"
    assert report["message"] == "No está (aviso desde la página del armario)."
    assert report["contact"] is None

    after = site.client.get(sent.headers["location"])
    assert "Gracias: el aviso queda pendiente de revisión por el Ayuntamiento." in text(after)
    # the finder was invalidated: the page (and the map) show the report at once
    assert state_line(after) == (
        "bad: Estado ahora: Avisado como desaparecido hace 0 min — sin confirmar"
    )
    # the staff were told, after the answer, as for the API's reports
    (mail,) = site.mailbox.received
    assert mail.rcpt_tos == (STAFF,)
    assert "Desfibrilador: DEA Plaza Mayor (dea-2)" in mail.text()
    assert "No está (aviso desde la página del armario)." in mail.text()


def test_what_the_citizen_adds_is_the_message(site: Site) -> None:
    sent = site.tap_two("dea-3", "broken", detalle="  Parpadea una luz roja  ")
    assert sent.status_code == 303
    (report,) = pending(site, "dea-3")
    assert (report["kind"], report["message"]) == ("broken", "Parpadea una luz roja")

    too_long = site.tap_two("dea-2", "broken", detalle="x" * 1001)
    assert too_long.status_code == 422
    assert "demasiado largo" in text(too_long)
    assert 'aria-invalid="true"' in too_long.text and "x" * 1001 in too_long.text  # kept
    assert pending(site, "dea-2") == []


def test_a_report_from_another_site_or_of_another_kind_is_refused(site: Site) -> None:
    evil = site.tap_two("dea-2", headers={"Origin": "https://evil.example"})
    assert evil.status_code == 403
    assert "llega desde otro sitio web" in text(evil)
    by_referer = site.tap_two("dea-2", headers={"Referer": "https://evil.example/pagina"})
    assert by_referer.status_code == 403
    for kind in ("moved", "other", ""):
        assert site.tap_one("dea-2", kind).status_code == 422
        assert site.tap_two("dea-2", kind).status_code == 422
    assert pending(site, "dea-2") == []
    # no Origin at all (a browser that sends none): accepted, as the project's forms are
    assert site.tap_two("dea-2", headers={}).status_code == 303
    assert len(pending(site, "dea-2")) == 1


def test_a_reload_of_a_report_step_goes_back_to_the_page(site: Site) -> None:
    for url in ("/dea/dea-2/aviso", "/dea/dea-2/aviso/enviar"):
        response = site.client.get(url, follow_redirects=False)
        assert response.status_code == 303
        assert response.headers["location"] == "/dea/dea-2#avisar"
    assert pending(site, "dea-2") == []


def test_the_page_and_the_api_share_the_report_limit(db_url: str, tiny_layers: Layers) -> None:
    _load(db_url, tiny_layers)
    settings = _settings(db_url, report_rate_limit=3)
    with TestClient(create_app(settings)) as client:
        site = Site(client, db_url, Mailbox(), settings)
        assert site.tap_two("dea-2", "missing").status_code == 303
        api = client.post(
            "/api/defibrillators/dea-3/reports", json={"kind": "other", "message": "Sucio"}
        )
        assert api.status_code == 202
        assert site.tap_two("dea-3", "broken").status_code == 303
        refused = site.tap_two("dea-2", "broken")
        assert refused.status_code == 429
        assert "Demasiados avisos desde esta dirección: 3 cada 10 min" in text(refused)
        assert 0 < int(refused.headers["retry-after"]) <= 600
        assert 'href="tel:112"' in refused.text
        assert (
            client.post(
                "/api/defibrillators/dea-2/reports", json={"kind": "other", "message": "Sucio"}
            ).status_code
            == 429
        )
    assert len(pending(site, "dea-2")) == 1
    assert len(pending(site, "dea-3")) == 2


def test_one_client_cannot_mark_many_devices_missing_from_their_pages(
    db_url: str, tiny_layers: Layers
) -> None:
    _load(db_url, tiny_layers)
    settings = _settings(db_url, report_rate_limit=100, report_downgrade_limit=2)
    with TestClient(create_app(settings)) as client:
        site = Site(client, db_url, Mailbox(), settings)
        assert site.tap_two("dea-2", "missing").status_code == 303
        assert site.tap_two("dea-3", "broken").status_code == 303
        assert site.tap_two("dea-2", "broken").status_code == 303  # the same device again
        refused = site.tap_two("dea-parado", "missing")
        assert refused.status_code == 429
        assert "2 desfibriladores distintos en 24 h" in text(refused)
    assert pending(site, "dea-parado") == []


# --- the QR code and the sheet ------------------------------------------------------------------


def test_the_qr_code_is_an_svg_of_the_public_address(site: Site) -> None:
    response = site.client.get("/dea/dea-2/qr.svg", headers={"Host": "otro.example"})
    assert response.status_code == 200
    assert response.headers["content-type"] == "image/svg+xml"
    assert response.headers["cache-control"] == "public, max-age=86400"
    assert response.headers["content-security-policy"] == "default-src 'none'"
    assert response.text.lstrip().startswith("<?xml") and "<svg" in response.text
    assert "<script" not in response.text
    assert public_url(site.settings, "dea-2") == f"{BASE}/dea/dea-2"  # not the Host header's


def test_the_a6_sheet_has_dea_112_the_qr_code_and_the_address(site: Site) -> None:
    sheet = site.client.get("/dea/dea-2/hoja")
    assert sheet.status_code == 200
    words = text(sheet)
    assert re.search(r'<h1 class="cm-sheet-title">DEA</h1>', sheet.text)
    assert "DEA Plaza Mayor" in words
    assert "En una emergencia llame al 112" in words
    assert "dea.example.org/dea/dea-2" in words
    assert "Escanee para ver si funciona, cómo llegar y avisar de un problema" in words
    assert re.search(r'<div class="cm-sheet-qr" role="img" aria-label="[^"]+"><svg ', sheet.text)
    assert "<script" not in sheet.text
    css = site.client.get("/static/cabinet.css")
    assert css.status_code == 200 and "@page { size: 105mm 148mm; size: A6;" in css.text


def test_the_portal_links_each_device_shown_to_citizens_to_its_sheet(site: Site) -> None:
    with site.store() as store:
        invitation = issue_invitation(store, entity_id="ent-1", actor="test")
        plaza = store.device("dea-2")
        assert plaza is not None
        own = {**plaza, "operator_entity_id": "ent-1"}
        store.insert_device({**own, "id": "dea-espera", "verification": "pending"}, actor="test")
        store.insert_device({**own, "id": "dea-furgoneta", "is_mobile": True}, actor="test")
    signed = site.client.post(
        f"/entidades/invitacion/{invitation.code}", headers=ORIGIN, follow_redirects=False
    )
    assert signed.status_code == 303
    listed = site.client.get("/entidades/desfibriladores/dea-1")
    assert listed.status_code == 200
    link = '<a class="cm-button cm-secondary" href="/dea/dea-1/hoja">Hoja para el armario (A6)</a>'
    assert link in listed.text
    assert site.client.get("/dea/dea-1/hoja").status_code == 200
    waiting = site.client.get("/entidades/desfibriladores/dea-espera")
    assert waiting.status_code == 200
    assert "/hoja" not in waiting.text
    assert "estará aquí cuando el Ayuntamiento lo verifique" in text(waiting)
    mobile = site.client.get("/entidades/desfibriladores/dea-furgoneta")
    assert mobile.status_code == 200
    assert "/hoja" not in mobile.text
    assert "Un desfibrilador móvil no tiene página pública" in text(mobile)
