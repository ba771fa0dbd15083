"""The entity portal (/entidades) in process, on SpatiaLite and PostGIS: sign-in by invitation and
token, registration, edits and conflicts, checks, status, uses, contact, and the security rules
(CSRF, throttling, cookies, isolation between entities, inert entity text)."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from zoneinfo import ZoneInfo

import httpx
import pytest
from fastapi.testclient import TestClient
from weeks import ORDINARY

from api.app import create_app
from geo.clock import FixedClock
from geo.core.layers import Layers
from geo.errors import AuthenticationError
from geo.io.store import Store
from geo.services.tokens import authenticate, issue_invitation, issue_token
from geo.settings import Settings

ORIGIN = {"Origin": "http://testserver"}
EVIL = {"Origin": "https://evil.example"}
#: A valid registration: inside the tiny city, hours the parser reads, emergency-only notes.
FORM = {
    "name": "DEA Asociación Vecinal (sala)",
    "lon": "-4.5300",
    "lat": "42.0110",
    "access": "yes",
    "opening_hours": "Mo-Fr 08:00-15:00; PH off",
    "location_text": "Sala principal, junto a la puerta",
    "indoor": "true",
    "model": "Philips HeartStart HS1",
    "serial_number": "A12B-0034",
    "battery_expiry": "2029-05-01",
    "cabinet_code": "4711",
    "key_holder": "Conserje (turno de mañana)",
}


class Portal:
    """A browser-like client of the portal, signed in as one entity."""

    def __init__(self, client: TestClient, store: Store) -> None:
        self.client = client
        self.store = store

    def sign_in(self, entity_id: str) -> None:
        invitation = issue_invitation(self.store, entity_id=entity_id, actor="test")
        response = self.client.post(
            f"/entidades/invitacion/{invitation.code}", headers=ORIGIN, follow_redirects=False
        )
        assert response.status_code == 303, response.text

    def csrf(self) -> str:
        page = self.client.get("/entidades")
        match = re.search(r'name="csrf" value="([0-9a-f]+)"', page.text)
        assert match, page.text
        return match.group(1)

    def post(self, url: str, data: dict[str, str], *, headers: dict[str, str] | None = None,
             csrf: bool = True) -> httpx.Response:  # fmt: skip
        body = {**data, "csrf": self.csrf()} if csrf else data
        return self.client.post(
            url, data=body, headers=ORIGIN if headers is None else headers, follow_redirects=False
        )

    def register(self, **changes: str) -> str:
        before = set(self.store.read_layer("defibrillators")["id"])
        response = self.post("/entidades/nuevo", {**FORM, **changes})
        assert response.status_code == 303, response.text
        assert response.headers["location"] == "/entidades?hecho=registrado"
        (new,) = set(self.store.read_layer("defibrillators")["id"]) - before
        return str(new)


#: Monday 7 December 2026, 12:00 in Palencia: the app's clock in these tests.
NOON = dt.datetime(2026, 12, 7, 11, 0, tzinfo=dt.UTC)


@pytest.fixture
def app(db_url: str, tiny_layers: Layers) -> Iterator[tuple[TestClient, Store]]:
    with Store.open(db_url) as store:
        store.load(tiny_layers)
    settings = Settings(database_url=db_url, tile_url="", auth_failure_limit=5)
    with TestClient(create_app(settings)) as client, Store.open(db_url) as store:
        # "today" for the portal's upkeep dates, whatever the day the tests run
        client.app.state.clock = FixedClock(NOON)  # type: ignore[attr-defined]
        yield client, store


@pytest.fixture
def portal(app: tuple[TestClient, Store]) -> Portal:
    client, store = app
    signed = Portal(client, store)
    signed.sign_in("ent-1")
    return signed


def field_error(html: str, name: str) -> str:
    match = re.search(rf'id="f-{name}-error">([^<]*)<', html)
    assert match, f"no error slot for {name}"
    return match.group(1)


def devices(store: Store) -> int:
    return len(store.read_layer("defibrillators"))


# --- signing in -------------------------------------------------------------------------------


def test_signed_out_page_explains_how_to_get_in(app: tuple[TestClient, Store]) -> None:
    client, _ = app
    page = client.get("/entidades")
    assert page.status_code == 401
    assert "invitación" in page.text and 'name="token"' in page.text
    assert page.headers["cache-control"] == "no-store"


def test_invitation_link_signs_in_once_with_a_strict_cookie(
    app: tuple[TestClient, Store],
) -> None:
    client, store = app
    invitation = issue_invitation(store, entity_id="ent-2", actor="test")
    landing = client.get(f"/entidades/invitacion/{invitation.code}")
    assert landing.status_code == 200
    assert "Entrar como Asociaci" in landing.text or "ent-2" in landing.text
    assert store.invitation(invitation.record.id).used_at is None  # a GET never spends it
    used = client.post(
        f"/entidades/invitacion/{invitation.code}", headers=ORIGIN, follow_redirects=False
    )
    assert used.status_code == 303
    cookie = used.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/entidades" in cookie
    assert "Max-Age=2592000" in cookie and "Secure" not in cookie
    home = client.get("/entidades")
    assert home.status_code == 200 and "Mis desfibriladores" in home.text
    again = TestClient(client.app).post(
        f"/entidades/invitacion/{invitation.code}", headers=ORIGIN, follow_redirects=False
    )
    assert again.status_code == 401 and "una sola vez" in again.text


def test_cookie_is_secure_behind_https(app: tuple[TestClient, Store]) -> None:
    client, store = app
    invitation = issue_invitation(store, entity_id="ent-1", actor="test")
    with TestClient(client.app, base_url="https://testserver") as secure:
        used = secure.post(
            f"/entidades/invitacion/{invitation.code}",
            headers={"Origin": "https://testserver"},
            follow_redirects=False,
        )
    assert used.status_code == 303 and "Secure" in used.headers["set-cookie"]


def test_expired_and_cross_site_invitations_are_refused(app: tuple[TestClient, Store]) -> None:
    client, store = app
    past = store.clock.now() - dt.timedelta(days=8)
    old = issue_invitation(store, entity_id="ent-1", actor="test", now=past)
    assert client.get(f"/entidades/invitacion/{old.code}").status_code == 401
    fresh = issue_invitation(store, entity_id="ent-1", actor="test")
    forged = client.post(f"/entidades/invitacion/{fresh.code}", headers=EVIL)
    assert forged.status_code == 403 and "otro sitio" in forged.text
    assert store.invitation(fresh.record.id).used_at is None


def test_pasted_token_signs_in_and_staff_tokens_are_sent_to_the_desk(
    app: tuple[TestClient, Store],
) -> None:
    client, store = app
    entity = issue_token(store, role="entity", entity_id="ent-1").secret
    planner = issue_token(store, role="planner").secret
    refused = client.post("/entidades/sesion", data={"token": planner}, headers=ORIGIN)
    assert refused.status_code == 403 and "/gestion" in refused.text
    ok = client.post(
        "/entidades/sesion", data={"token": entity}, headers=ORIGIN, follow_redirects=False
    )
    assert ok.status_code == 303 and "cardiomapa_entidad=" in ok.headers["set-cookie"]


def test_failed_sign_ins_are_throttled_per_client(app: tuple[TestClient, Store]) -> None:
    client, store = app
    good = issue_token(store, role="entity", entity_id="ent-1").secret
    statuses = [
        client.post("/entidades/sesion", data={"token": good[:-3] + "xyz"}, headers=ORIGIN)
        .status_code
        for _ in range(7)
    ]  # fmt: skip
    assert statuses[:5] == [401] * 5 and statuses[5:] == [429, 429]
    # The bearer API shares the count: the same client is held back there too.
    assert client.get("/api/uses", headers={"Authorization": f"Bearer {good}"}).status_code == 429


def test_bearer_token_guessing_is_throttled(app: tuple[TestClient, Store]) -> None:
    client, store = app
    good = issue_token(store, role="planner").secret
    wrong = {"Authorization": f"Bearer {good[:-3]}xyz"}
    statuses = [client.get("/api/uses", headers=wrong).status_code for _ in range(7)]
    assert statuses == [401] * 5 + [429, 429]
    limited = client.get("/api/uses", headers=wrong)
    assert int(limited.headers["retry-after"]) <= 60
    assert limited.json()["code"] == "rate_limited"
    # Asking with no token at all is no guess: it still gets the plain 401.
    fresh = TestClient(client.app)
    assert fresh.get("/api/health").status_code == 200


def test_revoking_the_entity_ends_its_session(portal: Portal) -> None:
    assert portal.client.get("/entidades").status_code == 200
    portal.store.revoke_entity_access("ent-1", actor="test")
    after = portal.client.get("/entidades")
    assert after.status_code == 401 and "terminado" in after.text
    assert 'cardiomapa_entidad=""' in after.headers["set-cookie"]


def test_sign_out(portal: Portal) -> None:
    response = portal.post("/entidades/salir", {})
    assert response.status_code == 303
    assert 'cardiomapa_entidad=""' in response.headers["set-cookie"]


# --- registering ------------------------------------------------------------------------------


def test_registration_is_pending_private_and_complete(portal: Portal) -> None:
    # "This week's" hours in words of an ordinary week (the fixture's week, that of 7 December,
    # has two holidays that change them).
    portal.client.app.state.clock = FixedClock(ORDINARY.replace(tzinfo=ZoneInfo("Europe/Madrid")))  # type: ignore[attr-defined]
    device_id = portal.register()
    record = portal.store.device(device_id)
    assert record is not None
    assert record["verification"] == "pending" and record["operator_entity_id"] == "ent-1"
    assert record["opening_hours"] == "Mo-Fr 08:00-15:00; PH off" and record["indoor"] is True
    assert record["tags"] == {"model": "Philips HeartStart HS1", "serial_number": "A12B-0034"}
    assert record["battery_expiry"] == dt.date(2029, 5, 1)
    assert portal.store.private_notes([device_id])[device_id]["cabinet_code"] == "4711"
    home = portal.client.get("/entidades?hecho=registrado")
    assert "Pendiente de verificación" in home.text and "pendiente de verificación" in home.text
    assert "lunes a viernes 08:00–15:00" in home.text
    # Not public until verified, and the notes never are.
    anonymous = TestClient(portal.client.app)
    assert anonymous.get(f"/api/defibrillators/{device_id}").status_code == 404
    assert "4711" not in anonymous.get("/api/defibrillators").text


@pytest.mark.parametrize(
    ("changes", "field", "words"),
    [
        ({"lon": "42.0110", "lat": "-4.5300"}, "lon", "intercambiadas"),
        ({"lon": "-3.70", "lat": "40.41"}, "lon", "fuera del término"),
        ({"lon": "", "lat": ""}, "lon", "Falta la posición"),
        ({"opening_hours": "de 8 a 3"}, "opening_hours", "opening_hours"),
        ({"name": ""}, "name", "Nombre"),
        ({"installed_on": "2026-02-30"}, "installed_on", "fecha no válida"),
        ({"access": "todos"}, "access", "todos"),
    ],
)
def test_bad_input_is_shown_next_to_its_field_and_nothing_is_saved(
    portal: Portal, changes: dict[str, str], field: str, words: str
) -> None:
    before = devices(portal.store)
    response = portal.post("/entidades/nuevo", {**FORM, **changes})
    assert response.status_code == 422
    assert words in field_error(response.text, field)
    assert 'aria-invalid="true"' in response.text and 'role="alert"' in response.text
    assert devices(portal.store) == before
    # What was typed is still in the form.
    assert "Sala principal, junto a la puerta" in response.text


def test_cross_site_posts_change_nothing(portal: Portal) -> None:
    before = devices(portal.store)
    forged = portal.post("/entidades/nuevo", FORM, headers=EVIL)
    assert forged.status_code == 403
    no_token = portal.post("/entidades/nuevo", FORM, csrf=False)
    assert no_token.status_code == 403 and "formulario" in no_token.text
    assert devices(portal.store) == before


def test_entity_text_is_inert(portal: Portal) -> None:
    nasty = '<script>alert(1)</script>"><img src=x onerror=alert(2)>'
    device_id = portal.register(name=nasty, location_text=nasty, key_holder=nasty)
    for url in ("/entidades", f"/entidades/desfibriladores/{device_id}"):
        html = portal.client.get(url).text
        assert "<script>alert(1)" not in html and "<img src=x" not in html
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


# --- looking after a device -------------------------------------------------------------------


def _version(html: str) -> str:
    match = re.search(r'name="version" value="(\d+)"', html)
    assert match
    return match.group(1)


def test_edit_and_conflict_keep_what_was_typed(portal: Portal) -> None:
    device_id = portal.register()
    url = f"/entidades/desfibriladores/{device_id}"
    version = _version(portal.client.get(url).text)
    # Someone else (staff, another tab) changes it meanwhile.
    other = portal.post(url, {**FORM, "version": version, "location_text": "Recepción"})
    assert other.status_code == 303
    stale = portal.post(url, {**FORM, "version": version, "name": "DEA sala nueva"})
    assert stale.status_code == 409
    assert 'value="DEA sala nueva"' in stale.text  # nothing typed is lost
    assert "Guardado ahora: Recepción" in stale.text and "Otra persona" in stale.text
    assert portal.store.device(device_id)["name"] == FORM["name"]
    retry = portal.post(url, {**FORM, "version": _version(stale.text), "name": "DEA sala nueva"})
    assert retry.status_code == 303
    assert portal.store.device(device_id)["name"] == "DEA sala nueva"


def test_checked_today_status_and_moving(portal: Portal) -> None:
    device_id = portal.register()
    url = f"/entidades/desfibriladores/{device_id}"
    checked = portal.post(f"{url}/revisado", {"pads_expiry": "2028-01-31"})
    assert checked.status_code == 303
    shown = portal.client.get(checked.headers["location"])
    assert "Revisión anotada con fecha de hoy." in shown.text
    record = portal.store.device(device_id)
    assert record["check_date"] == dt.date(2026, 12, 7)  # the app's clock, in Palencia
    assert record["pads_expiry"] == dt.date(2028, 1, 31)
    assert record["battery_expiry"] == dt.date(2029, 5, 1)
    status = portal.post(f"{url}/estado", {"status": "out_of_service"})
    assert "Estado actualizado." in portal.client.get(status.headers["location"]).text
    assert portal.store.device(device_id)["status"] == "out_of_service"
    assert portal.post(f"{url}/estado", {"status": "removed"}).status_code == 303
    removed = portal.store.device(device_id)
    assert removed["status"] == "removed" and removed["removed_on"] is not None
    wrong = portal.post(f"{url}/estado", {"status": "roto"})
    assert wrong.status_code == 422


def test_moving_a_verified_device_sends_it_back_to_moderation(portal: Portal) -> None:
    url = "/entidades/desfibriladores/dea-1"
    page = portal.client.get(url)
    assert page.status_code == 200
    values = {**FORM, "version": _version(page.text), "lon": "-4.5352", "lat": "42.0101"}
    assert portal.post(url, values).status_code == 303
    assert portal.store.device("dea-1")["verification"] == "pending"


def test_an_entity_never_reaches_another_entitys_devices(
    portal: Portal, app: tuple[TestClient, Store]
) -> None:
    _, store = app
    other = Portal(TestClient(portal.client.app), store)
    other.sign_in("ent-2")
    theirs = other.register(cabinet_code="9999")
    for url in (f"/entidades/desfibriladores/{theirs}", "/entidades/desfibriladores/dea-2"):
        page = portal.client.get(url)
        assert page.status_code == 404 and "9999" not in page.text
    version = str(store.device(theirs)["version"])
    attempts = [
        portal.post(f"/entidades/desfibriladores/{theirs}", {**FORM, "version": version}),
        portal.post(f"/entidades/desfibriladores/{theirs}/revisado", {}),
        portal.post(f"/entidades/desfibriladores/{theirs}/estado", {"status": "removed"}),
        portal.post(f"/entidades/desfibriladores/{theirs}/uso", {"used_at": "2026-11-01T10:00"}),
    ]
    assert [a.status_code for a in attempts] == [404] * 4
    record = store.device(theirs)
    assert record["status"] == "active" and record["check_date"] is None
    assert store.uses(device_id=theirs)[1] == 0
    assert theirs not in portal.client.get("/entidades").text


def test_reporting_a_use(portal: Portal) -> None:
    url = "/entidades/desfibriladores/dea-1/uso"
    form = portal.client.get(url)
    assert form.status_code == 200 and 'type="datetime-local"' in form.text
    wrong = portal.post(url, {"used_at": "2026-11-20T18:30", "people_attended": "0"})
    assert wrong.status_code == 422 and "Personas atendidas" in field_error(
        wrong.text, "people_attended"
    )
    inconsistent = portal.post(
        url, {"used_at": "2026-11-20T18:30", "shock_delivered": "false", "shocks": "2"}
    )
    assert inconsistent.status_code == 422
    ok = portal.post(
        url,
        {"used_at": "2026-11-20T18:30", "people_attended": "1", "emergency_called": "true",
         "shock_delivered": "true", "shocks": "2", "patient_sex": "female"},
    )  # fmt: skip
    assert ok.status_code == 303
    items, total = portal.store.uses(device_id="dea-1")
    assert total == 1 and items[0]["shocks"] == 2 and items[0]["emergency_called"] is True
    # 18:30 in Palencia in November is 17:30 UTC.
    assert items[0]["used_at"] == dt.datetime(2026, 11, 20, 17, 30)


# --- upkeep dates: against the city's date by the app's clock ----------------------------------


def summary(html: str) -> str:
    match = re.search(r'<div class="cm-error-summary".*?</div>', html, re.S)
    assert match, "no error summary"
    return match.group(0)


def test_a_future_check_date_is_refused_at_its_field_and_nothing_is_saved(
    portal: Portal,
) -> None:
    before, audit = devices(portal.store), portal.store.audit_entries()[1]
    response = portal.post("/entidades/nuevo", {**FORM, "check_date": "2027-01-15"})
    assert response.status_code == 422
    message = field_error(response.text, "check_date")
    assert message.startswith("Última revisión: la revisión del 15/01/2027 (2027-01-15)")
    assert "hoy es 07/12/2026" in message and "hoy o antes" in message
    assert "la revisión del 15/01/2027" in summary(response.text)
    assert 'value="2027-01-15"' in response.text and "Sala principal" in response.text
    assert devices(portal.store) == before and portal.store.audit_entries()[1] == audit
    # editing, and before the installation date
    url = f"/entidades/desfibriladores/{portal.register()}"
    stored = portal.store.device(url.rsplit("/", 1)[1])
    version = _version(portal.client.get(url).text)
    edit = {**FORM, "version": version, "installed_on": "2026-05-01", "check_date": "2026-04-30"}
    response = portal.post(url, edit)
    assert response.status_code == 422
    assert "anterior a la instalación" in field_error(response.text, "check_date")
    assert portal.store.device(url.rsplit("/", 1)[1]) == stored


def test_a_past_expiry_is_saved_and_the_portal_says_what_it_means(portal: Portal) -> None:
    response = portal.post("/entidades/nuevo", {**FORM, "pads_expiry": "2026-12-06"})
    assert response.status_code == 303
    location = response.headers["location"]
    assert location.startswith("/entidades?hecho=registrado&aviso=")
    device_id = location.rsplit("=", 1)[1]
    assert portal.store.device(device_id)["pads_expiry"] == dt.date(2026, 12, 6)  # type: ignore[index]
    shown = portal.client.get(location).text
    assert (
        "Los parches caducaron el 06/12/2026: el desfibrilador aparece como mantenimiento "
        "vencido hasta que los cambie." in shown
    )
    # «Revisado hoy» with pads already expired says so too; new pads end the warning
    url = f"/entidades/desfibriladores/{device_id}"
    checked = portal.post(f"{url}/revisado", {})
    assert "aviso=" in checked.headers["location"]
    assert "Los parches caducaron" in portal.client.get(checked.headers["location"]).text
    assert portal.store.device(device_id)["check_date"] == dt.date(2026, 12, 7)  # type: ignore[index]
    renewed = portal.post(f"{url}/revisado", {"pads_expiry": "2028-12-31"})
    assert "aviso=" not in renewed.headers["location"]
    # a link only ever shows what is true of the entity's own device
    assert "caducaron" not in portal.client.get(f"{url}?hecho=guardado&aviso={device_id}").text
    assert "caducaron" not in portal.client.get("/entidades?aviso=dea-2").text


def test_reporting_a_use_with_new_pads_updates_their_expiry(portal: Portal) -> None:
    url = "/entidades/desfibriladores/dea-1/uso"
    form = portal.client.get(url).text
    assert "¿Se pusieron parches nuevos después del uso?" in form and 'name="pads_expiry"' in form
    before = portal.store.device("dea-1")
    missing = portal.post(url, {"used_at": "2026-12-05T18:30", "pads_replaced": "true"})
    assert missing.status_code == 422
    assert field_error(missing.text, "pads_expiry").startswith("Caducidad de los parches nuevos:")
    past = portal.post(
        url, {"used_at": "2026-12-05T18:30", "pads_replaced": "true", "pads_expiry": "2026-11-30"}
    )
    assert past.status_code == 422 and "ya ha pasado" in field_error(past.text, "pads_expiry")
    assert 'value="2026-11-30"' in past.text  # what was typed is kept
    assert portal.store.uses(device_id="dea-1")[1] == 0
    assert portal.store.device("dea-1") == before
    ok = portal.post(
        url, {"used_at": "2026-12-05T18:30", "pads_replaced": "true", "pads_expiry": "2029-03-31"}
    )
    assert ok.status_code == 303
    assert (
        "caducidad de los parches nuevos anotada" in portal.client.get(ok.headers["location"]).text
    )
    after = portal.store.device("dea-1")
    assert after is not None and before is not None
    assert after["pads_expiry"] == dt.date(2029, 3, 31)
    assert after["version"] == before["version"] + 1
    assert portal.store.uses(device_id="dea-1")[1] == 1


def test_contact_is_private_and_validated(portal: Portal) -> None:
    bad = portal.post("/entidades/contacto", {"person": "Ana", "email": "ana@", "phone": ""})
    assert bad.status_code == 422 and portal.store.contact("ent-1") is None
    ok = portal.post(
        "/entidades/contacto",
        {"person": "Ana Pérez", "email": "ana.perez@example.org", "phone": "979 000 000"},
    )
    assert ok.status_code == 303
    assert portal.store.contact("ent-1")["email"] == "ana.perez@example.org"
    anonymous = TestClient(portal.client.app)
    for url in ("/api/entities", "/api/entities/ent-1", "/api/downloads/entities.geojson"):
        assert "ana.perez@example.org" not in anonymous.get(url).text


def test_session_token_is_an_entity_token(portal: Portal) -> None:
    cookie = portal.client.cookies.get("cardiomapa_entidad")
    assert cookie is not None
    principal = authenticate(portal.store, cookie)
    assert principal.role == "entity" and principal.entity_id == "ent-1"
    portal.store.revoke_entity_access("ent-1", actor="test")
    with pytest.raises(AuthenticationError):
        authenticate(portal.store, cookie)


def test_a_form_without_position_reports_every_other_problem_too(portal: Portal) -> None:
    before = devices(portal.store)
    response = portal.post(
        "/entidades/nuevo", {**FORM, "lon": "", "lat": "", "name": "", "opening_hours": "a veces"}
    )
    assert response.status_code == 422
    assert "Falta la posición" in field_error(response.text, "lon")
    assert "Nombre" in field_error(response.text, "name")
    assert "opening_hours" in field_error(response.text, "opening_hours")
    assert devices(portal.store) == before
