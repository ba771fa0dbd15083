"""The staff desk (/gestion) in process: sessions, CSRF, roles, escaping, and every write.

Every test runs on SpatiaLite and on PostGIS (the ``db_url`` fixture) through the ASGI app with
its lifespan; the real-browser walk-through is in test_desk_browser.py.
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
from weeks import ORDINARY, clock_at

from api.app import create_app
from api.web import csrf_token
from geo.city import CityProfile
from geo.core.layers import Layers
from geo.errors import AuthenticationError
from geo.io.store import Store
from geo.services import registry
from geo.services.tokens import authenticate, check_invitation, issue_token
from geo.settings import Settings

EVIL = ("<script>alert(1)</script>", '"><img src=x onerror=alert(1)>')
PAGES = (
    "/gestion", "/gestion/avisos", "/gestion/avisos?estado=accepted", "/gestion/auditoria",
    "/gestion/mantenimiento", "/gestion/entidades",
)  # fmt: skip


@dataclass
class Desk:
    client: TestClient
    store: Store
    city: CityProfile
    tokens: dict[str, str]

    def sign_in(self, who: str, client: TestClient | None = None) -> httpx.Response:
        return (client or self.client).post(
            "/gestion/sesion", data={"token": self.tokens[who]}, follow_redirects=False
        )

    def post(self, url: str, who: str, data: dict[str, str] | None = None,
             **kwargs: Any) -> httpx.Response:  # fmt: skip
        """A form post with the session's CSRF field (the client must be signed in as ``who``)."""
        body = {"csrf": csrf_token(self.tokens[who]), **(data or {})}
        return self.client.post(url, data=body, follow_redirects=False, **kwargs)

    def register(self, who: str = "ent-1", **properties: Any) -> dict[str, Any]:
        principal = authenticate(self.store, self.tokens[who])
        values = {"name": "DEA Asociación de vecinos", "access": "yes",
                  "opening_hours": "Mo-Fr 09:00-14:00", "location_text": "entrada",
                  **properties}  # fmt: skip
        return registry.register_device(
            self.store, self.city, principal, properties=values,
            geometry={"type": "Point", "coordinates": [-4.53, 42.012]},
            today=dt.date(2026, 12, 7),
        )  # fmt: skip


@pytest.fixture
def desk(db_url: str, tiny_layers: Layers, city: CityProfile) -> Iterator[Desk]:
    # An ordinary week: upkeep, "today" and which devices count do not depend on the run (the
    # tiny devices' pads expire on 1 January 2027).
    with Store.open(db_url, clock=clock_at(ORDINARY - dt.timedelta(hours=1))) as store:
        store.load(tiny_layers)
        tokens = {
            "admin": issue_token(store, role="admin", label="Ana Admin").secret,
            "planner": issue_token(store, role="planner", label="Pedro Plan").secret,
            "ent-1": issue_token(store, role="entity", entity_id="ent-1").secret,
            "ent-2": issue_token(store, role="entity", entity_id="ent-2").secret,
        }
        settings = Settings(database_url=db_url, clock_start=ORDINARY)
        with TestClient(create_app(settings)) as client:
            yield Desk(client, store, city, tokens)


def cookie_headers(response: httpx.Response) -> list[str]:
    return response.headers.get_list("set-cookie")


def cookie_named(response: httpx.Response, name: str) -> str:
    found = [c for c in cookie_headers(response) if c.startswith(f"{name}=")]
    assert len(found) == 1, cookie_headers(response)
    return found[0]


def text(response: httpx.Response) -> str:
    """The page's visible text, roughly (tags dropped, entities decoded)."""
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", response.text)).split())


# --- sessions ---------------------------------------------------------------------------------


def test_home_without_session_is_the_sign_in_form(desk: Desk) -> None:
    response = desk.client.get("/gestion")
    assert response.status_code == 200
    assert 'action="/gestion/sesion"' in response.text
    assert 'name="token"' in response.text
    assert response.headers["cache-control"] == "no-store"


def test_sign_in_sets_strict_http_only_cookies(desk: Desk) -> None:
    response = desk.sign_in("planner")
    assert response.status_code == 303
    assert response.headers["location"] == "/gestion"
    session = cookie_named(response, "cardiomapa_gestion").lower()
    for part in ("httponly", "samesite=strict", "path=/gestion", "max-age=28800"):
        assert part in session, session
    assert "secure" not in session
    planners = cookie_named(response, "cardiomapa_token").lower()
    assert "path=/planificacion" in planners and "httponly" in planners
    assert desk.tokens["planner"].lower() in planners
    page = desk.client.get("/gestion")
    assert "Moderación" in page.text and "Pedro Plan" in page.text
    assert desk.client.get("/planificacion").status_code == 200  # the map's cookie works too


def test_cookie_is_secure_over_https(desk: Desk) -> None:
    app = desk.client.app
    with TestClient(app, base_url="https://testserver") as secure:
        response = desk.sign_in("admin", secure)
    assert response.status_code == 303
    for name in ("cardiomapa_gestion", "cardiomapa_token"):
        assert "; secure" in cookie_named(response, name).lower()


def test_sign_out_clears_both_cookies(desk: Desk) -> None:
    desk.sign_in("planner")
    response = desk.post("/gestion/salir", "planner")
    assert response.status_code == 303
    for name in ("cardiomapa_gestion", "cardiomapa_token"):
        cleared = cookie_named(response, name).lower()
        assert "max-age=0" in cleared or "expires=" in cleared
    page = desk.client.get("/gestion")
    assert 'name="token"' in page.text and "Pedro Plan" not in page.text


def test_revoked_token_ends_the_session_at_the_next_request(desk: Desk) -> None:
    desk.sign_in("planner")
    assert "Pedro Plan" in desk.client.get("/gestion/avisos").text
    principal = authenticate(desk.store, desk.tokens["planner"])
    desk.store.revoke_token(principal.token_id, actor="test")
    response = desk.client.get("/gestion/avisos")
    assert response.status_code == 401
    assert 'name="token"' in response.text and "Su sesión ha terminado" in response.text
    assert "max-age=0" in cookie_named(response, "cardiomapa_gestion").lower()


def test_wrong_and_entity_tokens_are_refused(desk: Desk) -> None:
    response = desk.client.post("/gestion/sesion", data={"token": "cm_1_" + "A" * 43})
    assert response.status_code == 401 and "Token no válido" in response.text
    assert not cookie_headers(response)
    response = desk.sign_in("ent-1")
    assert response.status_code == 403
    assert "portal de entidades" in response.text
    assert not cookie_headers(response)
    assert desk.client.post("/gestion/sesion", data={"token": ""}).status_code == 401


def test_eleven_bad_sign_ins_are_throttled(desk: Desk) -> None:
    statuses = [
        desk.client.post("/gestion/sesion", data={"token": f"cm_{n}_" + "x" * 43}).status_code
        for n in range(1, 12)
    ]
    assert statuses == [401] * 10 + [429]
    response = desk.sign_in("planner")  # even the right token waits out the window
    assert response.status_code == 429
    assert "intentos de acceso fallidos" in response.text
    assert int(response.headers["retry-after"]) >= 1


def test_cross_site_sign_in_is_refused(desk: Desk) -> None:
    response = desk.client.post(
        "/gestion/sesion", data={"token": desk.tokens["planner"]},
        headers={"Origin": "https://evil.example"},
    )  # fmt: skip
    assert response.status_code == 403 and not cookie_headers(response)


# --- CSRF and roles ---------------------------------------------------------------------------


def test_cross_site_post_changes_nothing(desk: Desk) -> None:
    device = desk.register()
    desk.sign_in("planner")
    url = f"/gestion/desfibriladores/{device['id']}/verificar"
    response = desk.post(url, "planner", headers={"Origin": "https://evil.example"})
    assert response.status_code == 403
    assert "otro sitio web" in response.text
    assert desk.store.device(device["id"])["verification"] == "pending"  # type: ignore[index]


def test_post_without_csrf_changes_nothing(desk: Desk) -> None:
    device = desk.register()
    desk.sign_in("planner")
    response = desk.client.post(
        f"/gestion/desfibriladores/{device['id']}/rechazar", data={"nota": "no"},
        follow_redirects=False,
    )  # fmt: skip
    assert response.status_code == 403
    assert "El formulario ha caducado" in response.text
    assert desk.store.device(device["id"])["verification"] == "pending"  # type: ignore[index]
    wrong = desk.post(f"/gestion/desfibriladores/{device['id']}/verificar", "admin")
    assert wrong.status_code == 403  # another session's CSRF value


def test_post_without_session_shows_sign_in(desk: Desk) -> None:
    device = desk.register()
    response = desk.post(f"/gestion/desfibriladores/{device['id']}/verificar", "planner")
    assert 'name="token"' in response.text
    assert desk.store.device(device["id"])["verification"] == "pending"  # type: ignore[index]


def test_planner_cannot_manage_entities(desk: Desk) -> None:
    desk.sign_in("planner")
    response = desk.client.get("/gestion/entidades")
    assert response.status_code == 403
    assert "solo para la administración" in response.text
    assert 'href="/gestion/entidades"' not in desk.client.get("/gestion").text
    for action in ("contacto", "invitacion", "revocar"):
        response = desk.post(f"/gestion/entidades/ent-1/{action}", "planner",
                             {"person": "X", "confirmar": "si"})  # fmt: skip
        assert response.status_code == 403, action
    assert desk.store.contact("ent-1") is None
    assert desk.store.invitations(entity_id="ent-1") == []
    authenticate(desk.store, desk.tokens["ent-1"])  # still valid


# --- escaping ---------------------------------------------------------------------------------


@pytest.mark.parametrize("evil", EVIL)
def test_text_typed_by_entities_is_escaped_everywhere(desk: Desk, evil: str) -> None:
    device = desk.register(name=evil, location_text=evil, address=evil)
    moved = desk.register(name=f"movido {evil}")
    desk.store.set_contacts([{"entity_id": "ent-1", "person": evil, "email": None}],
                            actor="test")  # fmt: skip
    report_device = "dea-1"
    desk.store.insert_report({"device_id": report_device, "kind": "other", "message": evil,
                              "contact": evil}, actor="test")  # fmt: skip
    admin = authenticate(desk.store, desk.tokens["admin"])
    registry.review_device(desk.store, admin, moved["id"], decision="rejected", note=evil)
    desk.sign_in("admin")
    urls = [*PAGES, f"/gestion/desfibriladores/{device['id']}",
            f"/gestion/auditoria?registro={device['id']}"]  # fmt: skip
    for url in urls:
        response = desk.client.get(url)
        assert response.status_code == 200, url
        assert evil not in response.text, url
        assert "<img src=x" not in response.text and "<script>alert" not in response.text, url
    assert str(escape(evil)) in desk.client.get("/gestion").text
    # a rejected device's note, in the audit diff
    assert str(escape(evil)) in desk.client.get("/gestion/auditoria?tipo=device").text


# --- moderation -------------------------------------------------------------------------------


def test_queue_lists_pending_devices_with_their_details(desk: Desk) -> None:
    device = desk.register(address="Calle Mayor 1", installed_on="2026-01-15")
    desk.sign_in("planner")
    page = desk.client.get("/gestion")
    body = text(page)
    assert device["name"] in body and "Residencia Uno" in body and "Calle Mayor 1" in body
    assert "entrada" in body and "15/01/2026" in body and "entity-registration" in body
    assert "uso público" in body and "lunes" in body.lower()
    assert 'id="desk-map"' in page.text and "/static/desk.js" in page.text
    assert "42.012000, -4.530000" in body


def test_moved_verified_device_shows_old_and_new_position(desk: Desk) -> None:
    entity = authenticate(desk.store, desk.tokens["ent-1"])
    registry.update_device(
        desk.store, desk.city, entity, "dea-1", changes={},
        geometry={"type": "Point", "coordinates": [-4.535, 42.011]},
        today=dt.date(2026, 12, 7),
    )  # fmt: skip
    assert desk.store.device("dea-1")["verification"] == "pending"  # type: ignore[index]
    desk.sign_in("planner")
    body = text(desk.client.get("/gestion"))
    assert "42.011000, -4.535000" in body  # now
    assert "Posición verificada anterior: 42.010000, -4.535000" in body
    assert "Se ha movido 111 m" in body


def test_approve_and_reject_change_records_and_land_in_the_audit(desk: Desk) -> None:
    first, second = desk.register(name="DEA uno"), desk.register(name="DEA dos")
    desk.sign_in("planner")
    response = desk.post(f"/gestion/desfibriladores/{first['id']}/verificar", "planner")
    assert response.status_code == 303 and response.headers["location"] == "/gestion"
    page = desk.client.get("/gestion")
    assert "«DEA uno» verificado" in page.text
    assert "«DEA uno» verificado" not in desk.client.get("/gestion").text  # shown once
    assert desk.store.device(first["id"])["verification"] == "verified"  # type: ignore[index]
    assert any(d["id"] == first["id"] for d in desk.client.get("/api/defibrillators").json()
               ["features"])  # fmt: skip

    url = f"/gestion/desfibriladores/{second['id']}/rechazar"
    missing = desk.post(url, "planner", {"nota": "  "})
    assert missing.status_code == 422 and "motivo del rechazo" in missing.text
    assert desk.store.device(second["id"])["verification"] == "pending"  # type: ignore[index]
    assert desk.post(url, "planner", {"nota": "Foto borrosa"}).status_code == 303
    assert desk.store.device(second["id"])["verification"] == "rejected"  # type: ignore[index]

    again = desk.post(url, "planner", {"nota": "otra vez"})
    assert again.status_code == 409 and "no está pendiente" in again.text
    unknown = desk.post("/gestion/desfibriladores/dea-nada/verificar", "planner")
    assert unknown.status_code == 404

    entries, _ = desk.store.audit_entries(record_type="device", record_id=second["id"])
    assert entries[0]["action"] == "reject" and entries[0]["after"]["review_note"] == "Foto borrosa"
    audit = text(desk.client.get(f"/gestion/auditoria?tipo=device&registro={second['id']}"))
    assert "Rechazo" in audit and "Foto borrosa" in audit and "Pedro Plan" in audit
    assert "pendiente → rechazado" in audit  # codes read as words


def test_reports_resolve_and_dismiss(desk: Desk) -> None:
    city = desk.city
    one = registry.report_problem(desk.store, city, "dea-1", kind="broken", message="No enciende")
    two = registry.report_problem(desk.store, city, "dea-2", kind="wrong_hours", message="Cierra")
    desk.sign_in("planner")
    page = text(desk.client.get("/gestion/avisos"))
    assert "Averiado o sin batería" in page and "Horario incorrecto" in page
    assert "No enciende" in page
    response = desk.post(f"/gestion/avisos/{one}/revisar", "planner",
                         {"decision": "accepted", "nota": "Avisada la entidad"})  # fmt: skip
    assert response.status_code == 303
    response = desk.post(f"/gestion/avisos/{two}/revisar", "planner", {"decision": "rejected"})
    assert response.status_code == 303
    reports = {r["id"]: r for r in desk.store.reports()[0]}
    assert (
        reports[one]["status"] == "accepted" and reports[one]["review_note"] == "Avisada la entidad"
    )
    assert reports[two]["status"] == "rejected"
    assert "No enciende" not in text(desk.client.get("/gestion/avisos"))
    assert "Avisada la entidad" in text(desk.client.get("/gestion/avisos?estado=accepted"))
    assert desk.post(f"/gestion/avisos/{one}/revisar", "planner",
                     {"decision": "rejected"}).status_code == 409  # fmt: skip
    assert desk.post("/gestion/avisos/999/revisar", "planner",
                     {"decision": "accepted"}).status_code == 404  # fmt: skip
    entries, _ = desk.store.audit_entries(record_type="report", record_id=str(one))
    assert entries[0]["action"] == "review"


def test_audit_filters_and_pages(desk: Desk) -> None:
    for n in range(55):
        desk.store.set_contacts([{"entity_id": "ent-2", "person": f"P{n}"}], actor="test")
    desk.sign_in("planner")
    first = desk.client.get("/gestion/auditoria?tipo=contact")
    assert "Página 1 de 2" in text(first)
    assert "pagina=2" in first.text
    second = text(desk.client.get("/gestion/auditoria?tipo=contact&pagina=2"))
    assert "Página 2 de 2" in second and "P0" in second
    assert "Ningún cambio" in text(desk.client.get("/gestion/auditoria?registro=nada"))
    assert desk.client.get("/gestion/auditoria?tipo=raro&pagina=x").status_code == 200


def test_audit_never_shows_secrets(desk: Desk) -> None:
    desk.sign_in("admin")
    desk.post("/gestion/entidades/ent-1/invitacion", "admin")
    body = desk.client.get("/gestion/auditoria").text
    for token in desk.tokens.values():
        assert token not in body
        assert token.split("_", 2)[2] not in body
    for record in desk.store.tokens():
        assert record.secret_hash not in body


# --- upkeep -----------------------------------------------------------------------------------


def test_upkeep_groups_by_entity_with_contact_and_words(desk: Desk) -> None:
    desk.register(name="DEA caducado", battery_expiry="2020-01-31", check_date="2020-01-01")
    desk.store.set_contacts([{"entity_id": "ent-1", "person": "Lucía", "email": "l@r.es",
                              "phone": "979 111 222"}], actor="test")  # fmt: skip
    desk.sign_in("planner")
    page = desk.client.get("/gestion/mantenimiento")
    body = text(page)
    assert "Residencia Uno" in body and "Lucía" in body and "l@r.es" in body
    assert "La batería caducó el 31/01/2020" in body and "Caducado" in body
    assert "Sin revisar desde el 01/01/2020" in body
    assert 'href="mailto:l@r.es"' in page.text


# --- entities (administrators) ----------------------------------------------------------------


def test_admin_edits_an_entity_contact(desk: Desk) -> None:
    desk.sign_in("admin")
    page = text(desk.client.get("/gestion/entidades"))
    assert "Residencia Uno" in page and "residencia" in page and "Asociación Dos" in page
    response = desk.post("/gestion/entidades/ent-1/contacto", "admin",
                         {"person": "Lucía Gil", "email": "lucia@residencia.es",
                          "phone": "979 000 000"})  # fmt: skip
    assert response.status_code == 303
    contact = desk.store.contact("ent-1")
    assert contact is not None and contact["person"] == "Lucía Gil"
    assert "lucia@residencia.es" in desk.client.get("/gestion/entidades").text
    entries, _ = desk.store.audit_entries(record_type="contact", record_id="ent-1")
    assert entries[0]["after"]["email"] == "lucia@residencia.es"

    bad = desk.post("/gestion/entidades/ent-1/contacto", "admin", {"email": "no-es-correo"})
    assert bad.status_code == 422 and 'aria-invalid="true"' in bad.text
    assert desk.store.contact("ent-1")["email"] == "lucia@residencia.es"  # type: ignore[index]
    assert desk.post("/gestion/entidades/ent-9/contacto", "admin",
                     {"person": "X"}).status_code == 404  # fmt: skip


def test_invitation_link_is_shown_once_and_accepted(desk: Desk) -> None:
    desk.sign_in("admin")
    response = desk.post("/gestion/entidades/ent-2/invitacion", "admin")
    assert response.status_code == 200
    links = re.findall(r"http://testserver/entidades/invitacion/(ci_[0-9]+_[A-Za-z0-9_-]{43})",
                       response.text)  # fmt: skip
    assert len(set(links)) == 1
    record = check_invitation(desk.store, links[0])
    assert record.entity_id == "ent-2"
    listing = desk.client.get("/gestion/entidades").text
    assert links[0] not in listing and f"n.º {record.id}" in listing


def test_revoke_needs_confirmation_then_ends_the_entity_tokens(desk: Desk) -> None:
    desk.sign_in("admin")
    desk.post("/gestion/entidades/ent-1/invitacion", "admin")
    unconfirmed = desk.post("/gestion/entidades/ent-1/revocar", "admin")
    assert unconfirmed.status_code == 422 and "confirmación" in unconfirmed.text
    authenticate(desk.store, desk.tokens["ent-1"])
    response = desk.post("/gestion/entidades/ent-1/revocar", "admin", {"confirmar": "si"})
    assert response.status_code == 303
    assert "1 token(s) y 1 invitación(es)" in desk.client.get("/gestion/entidades").text
    with pytest.raises(AuthenticationError):
        authenticate(desk.store, desk.tokens["ent-1"])
    authenticate(desk.store, desk.tokens["ent-2"])  # the other entity keeps its access
    entries, _ = desk.store.audit_entries(record_type="entity", record_id="ent-1")
    assert entries[0]["action"] == "revoke_access"


def test_domain_errors_are_never_500(desk: Desk) -> None:
    desk.sign_in("admin")
    for url, data in [
        ("/gestion/desfibriladores/a%2Fb/verificar", {}),
        ("/gestion/avisos/1/revisar", {"decision": "quizá"}),
        ("/gestion/entidades/nada/invitacion", {}),
        ("/gestion/entidades/nada/revocar", {"confirmar": "si"}),
    ]:
        response = desk.post(url, "admin", data)
        assert 400 <= response.status_code < 500, (url, response.status_code)
        assert 'role="alert"' in response.text
    assert desk.client.get("/gestion/desfibriladores/nada").status_code == 404
