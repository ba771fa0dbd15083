"""A citizen's "missing"/"broken" report changes something: storage, the snapshot's revision, the
desk (dismiss, resolve, out of service and back, check), the portal's check, the staff e-mail
through a real SMTP server on 127.0.0.1, and the report throttle shared by every worker.

Every test runs on SpatiaLite and on PostGIS (the ``db_url`` fixture); the clock is pinned with
``time_machine`` (Wednesday 9 December 2026, 10:00 in Palencia), so no test depends on the day it
runs.
"""

from __future__ import annotations

import datetime as dt
import html
import logging
import re
import threading
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import time_machine
from fastapi.testclient import TestClient
from markupsafe import escape
from pydantic import ValidationError

from api.app import create_app
from api.deps import FinderCache
from api.security import duration_words
from api.web import csrf_token
from geo.city import CityProfile
from geo.core.availability import ReportFlag
from geo.core.layers import Layers
from geo.errors import ForbiddenError
from geo.io import changes
from geo.io.store import Store, Throttle
from geo.services import registry
from geo.services.tokens import authenticate, issue_invitation, issue_token
from geo.settings import Settings
from tests.servers import eventually
from tests.smtp_server import Mailbox, free_port, smtp_server

#: Wednesday 9 December 2026, 10:00 in Palencia (CET, UTC+1): no holiday, every tiny device open.
NOW = dt.datetime(2026, 12, 9, 9, 0, tzinfo=dt.UTC)
AT = "2026-12-09T10:30:00+01:00"
STAFF = "guardia@palencia.example"
SENDER = "Desfibriladores de Palencia <dea@palencia.example>"
BASE = "https://dea.example.org"
#: dea-2 of the tiny fixture: public, 24/7, pads in date; this point is right next to it.
HERE = {"lat": 42.0096, "lon": -4.5288}
EVIL = '<script>alert(1)</script>"><img src=x onerror=alert(1)>'


@dataclass
class Site:
    client: TestClient
    store: Store
    city: CityProfile
    tokens: dict[str, str]
    mailbox: Mailbox
    settings: Settings

    def sign_in(self, who: str) -> None:
        response = self.client.post(
            "/gestion/sesion", data={"token": self.tokens[who]}, follow_redirects=False
        )
        assert response.status_code == 303, response.text

    def post(self, url: str, who: str, data: dict[str, str] | None = None) -> httpx.Response:
        """A desk form post with the session's CSRF field."""
        body = {"csrf": csrf_token(self.tokens[who]), **(data or {})}
        return self.client.post(url, data=body, follow_redirects=False)

    def report(self, device_id: str, kind: str = "missing", **body: Any) -> httpx.Response:
        return self.client.post(
            f"/api/defibrillators/{device_id}/reports",
            json={"kind": kind, "message": "No está en su armario", **body},
        )

    def nearest(self) -> dict[str, dict[str, Any]]:
        response = self.client.get("/api/nearest", params={**HERE, "at": AT, "limit": 3})
        assert response.status_code == 200, response.text
        return {item["id"]: item for item in response.json()["results"]}


@pytest.fixture
def clock() -> Iterator[time_machine.Traveller]:
    with time_machine.travel(NOW, tick=True) as traveller:
        yield traveller


def _settings(db_url: str, port: int, **changes: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": db_url, "tile_url": "", "smtp_url": f"smtp://127.0.0.1:{port}",
        "mail_from": SENDER, "staff_emails": [STAFF], "public_url": BASE,
    }  # fmt: skip
    return Settings(**(values | changes))


@pytest.fixture
def site(
    db_url: str, tiny_layers: Layers, city: CityProfile, clock: time_machine.Traveller
) -> Iterator[Site]:
    mailbox = Mailbox()
    with smtp_server(mailbox) as port, Store.open(db_url) as store:
        store.load(tiny_layers)
        tokens = {
            "admin": issue_token(store, role="admin", label="Ana Admin").secret,
            "planner": issue_token(store, role="planner", label="Pedro Plan").secret,
        }
        settings = _settings(db_url, port)
        with TestClient(create_app(settings)) as client:
            yield Site(client, store, city, tokens, mailbox, settings)


def text(response: httpx.Response) -> str:
    """The page's visible text, roughly (tags dropped, entities decoded)."""
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", response.text)).split())


def pending_ids(store: Store, device_id: str) -> list[int]:
    reports, _ = store.reports(status=["pending"], device_id=device_id)
    return sorted(r["id"] for r in reports)


# --- storage ----------------------------------------------------------------------------------


def test_the_earliest_pending_missing_or_broken_report_of_each_device(
    store: Store, tiny_layers: Layers
) -> None:
    store.load(tiny_layers)
    times = [NOW + dt.timedelta(minutes=n) for n in range(5)]

    def report(at: dt.datetime, device_id: str, kind: str) -> int:
        with time_machine.travel(at, tick=False):
            return store.insert_report(
                {"device_id": device_id, "kind": kind, "message": "x"}, actor="test"
            )

    report(times[0], "dea-2", "wrong_hours")  # never downgrades
    report(times[1], "dea-1", "broken")
    report(times[2], "dea-1", "missing")
    answered = report(times[0], "dea-3", "missing")
    store.review_report(answered, status="rejected", note="Está", actor="test")
    assert store.downgrading_reports() == {"dea-1": ReportFlag("dea-1", "broken", times[1])}
    flag = store.downgrading_reports()["dea-1"]
    assert flag.reported_at.tzinfo is not None and flag.reported_at.utcoffset() == dt.timedelta(0)


def test_only_downgrading_reports_and_their_reviews_bump_the_devices_revision(
    store: Store, tiny_layers: Layers
) -> None:
    store.load(tiny_layers)
    revision = store.revision("defibrillators")
    other = store.insert_report(
        {"device_id": "dea-2", "kind": "other", "message": "x"}, actor="test"
    )
    store.review_report(other, status="accepted", note=None, actor="test")
    assert store.revision("defibrillators") == revision
    missing = store.insert_report(
        {"device_id": "dea-2", "kind": "missing", "message": "x"}, actor="test"
    )
    assert store.revision("defibrillators") == revision + 1
    store.review_report(missing, status="rejected", note=None, actor="test")
    assert store.revision("defibrillators") == revision + 2
    assert store.resolve_reports("dea-2", note="nada pendiente", actor="test") == []
    assert store.revision("defibrillators") == revision + 2


def test_another_worker_sees_a_report_and_its_review_through_the_database(
    db_url: str, tiny_layers: Layers, city: CityProfile
) -> None:
    with (
        Store.open(db_url) as first,
        Store.open(db_url) as second,
        closing(changes.watch(second.engine)) as watch,
    ):
        first.load(tiny_layers)
        # Another worker process: its own store (pool) and snapshot cache.
        other = FinderCache(second, city, watch=watch)
        before = other.get()
        assert before.reports == {}
        report_id = first.insert_report(
            {"device_id": "dea-2", "kind": "missing", "message": "x"}, actor="test"
        )
        # SQLite: at once; PostGIS: once the commit's notification reaches the listener (ms).
        seen = eventually(other.get, lambda finder: set(finder.reports) == {"dea-2"})
        assert seen is not before and seen.reports["dea-2"].kind == "missing"
        first.review_report(report_id, status="rejected", note=None, actor="test")
        assert eventually(other.get, lambda finder: finder.reports == {}).reports == {}


def test_throttle_counts_events_and_distinct_subjects(store: Store) -> None:
    events = Throttle("t-events", 2, 60)
    devices = Throttle("t-devices", 2, 600, distinct=True)
    start = NOW.replace(tzinfo=None)

    def hit(seconds: float, limit: Throttle, subject: str | None = None) -> int | None:
        refusal = store.throttle(
            "198.51.100.7", [(limit, subject)], now=start + dt.timedelta(seconds=seconds)
        )
        return None if refusal is None else refusal.retry_after_s

    assert [hit(0, events), hit(10, events), hit(20, events)] == [None, None, 40]
    assert hit(60, events) is None  # the first left the window
    assert store.throttle("203.0.113.9", [(events, None)], now=start) is None  # another client
    assert [hit(0, devices, "a"), hit(5, devices, "b"), hit(6, devices, "a")] == [None] * 3
    assert hit(7, devices, "c") == 600 - 7 + 5  # "b" stops counting 600 s after its report
    assert hit(606, devices, "c") is None


def test_throttle_holds_under_concurrent_workers(db_url: str) -> None:
    limit = Throttle("t-race", 5, 600)
    with Store.open(db_url) as first, Store.open(db_url) as second:
        allowed: list[bool] = []
        lock = threading.Lock()

        def worker(store: Store) -> None:
            for _ in range(6):
                ok = store.throttle("198.51.100.7", [(limit, None)]) is None
                with lock:
                    allowed.append(ok)

        threads = [threading.Thread(target=worker, args=(s,)) for s in (first, second) * 2]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert len(allowed) == 24 and sum(allowed) == 5


# --- end to end: the map changes at once --------------------------------------------------------


def test_a_missing_report_marks_the_device_unavailable_until_staff_dismiss_it(site: Site) -> None:
    """Waits for the lead's finder change (state ``reported``): written against the contract."""
    before = site.nearest()
    assert before["dea-2"]["available"] is True

    assert site.report("dea-2").status_code == 202
    during = site.nearest()
    assert during["dea-2"]["available"] is False
    assert during["dea-2"]["state"] == "reported"
    order = list(during)
    usable = [i for i, item in enumerate(during.values()) if item["available"]]
    assert all(i < order.index("dea-2") for i in usable)  # ranked after usable devices
    board = site.client.get("/api/map/devices").json()
    row = next(r for r in board["rows"] if r[0] == "dea-2")
    assert board["states"][row[4]] == "reported"

    (report_id,) = pending_ids(site.store, "dea-2")
    site.sign_in("planner")
    dismiss = {"decision": "rejected", "nota": "El equipo está en su sitio"}
    response = site.post(f"/gestion/avisos/{report_id}/revisar", "planner", dismiss)
    assert response.status_code == 303
    after = site.nearest()
    assert after["dea-2"]["available"] is True and after["dea-2"]["state"] == "open"


def test_the_snapshot_carries_the_report_at_once(site: Site) -> None:
    finders: FinderCache = site.client.app.state.finders  # type: ignore[attr-defined]
    site.nearest()  # the snapshot is built and fresh for a second
    assert site.report("dea-2", "broken").status_code == 202
    assert set(finders.get().reports) == {"dea-2"}
    (report_id,) = pending_ids(site.store, "dea-2")
    site.sign_in("planner")
    site.post(f"/gestion/avisos/{report_id}/revisar", "planner", {"decision": "rejected"})
    assert finders.get().reports == {}


# --- the desk -------------------------------------------------------------------------------


def test_staff_take_a_device_out_of_service_and_back_with_a_reason(site: Site) -> None:
    site.sign_in("planner")
    url = "/gestion/desfibriladores/dea-2"
    page = site.client.get(url)
    assert page.status_code == 200
    # A labelled, required field and a real submit button: usable with the keyboard alone.
    assert '<label for="f-motivo">' in page.text and 'id="f-motivo" name="motivo"' in page.text
    assert 'action="/gestion/desfibriladores/dea-2/fuera-de-servicio"' in page.text
    assert re.search(r'<textarea id="f-motivo" name="motivo" required', page.text)
    assert "Dejar «" in text(page)

    missing = site.post(f"{url}/fuera-de-servicio", "planner", {"motivo": "   "})
    assert missing.status_code == 422 and 'aria-invalid="true"' in missing.text
    assert "Escriba el motivo" in text(missing)
    refused = site.client.post(f"{url}/fuera-de-servicio", data={"motivo": "sin csrf"})
    assert refused.status_code == 403
    assert site.store.device("dea-2")["status"] == "active"  # type: ignore[index]

    response = site.post(f"{url}/fuera-de-servicio", "planner", {"motivo": f"Robado {EVIL}"})
    assert response.status_code == 303 and response.headers["location"] == url
    assert site.store.device("dea-2")["status"] == "out_of_service"  # type: ignore[index]
    answered = site.nearest().get("dea-2")  # at once: listed only as out of service
    assert answered is None or (answered["state"], answered["available"]) == (
        "out_of_service",
        False,
    )
    page = site.client.get(url)
    assert "queda fuera de servicio" in text(page) and "Pedro Plan" in text(page)
    assert EVIL not in page.text and str(escape(EVIL)) in page.text
    entries, _ = site.store.audit_entries(record_type="device", record_id="dea-2")
    entry = entries[0]
    assert entry["action"] == "out_of_service" and "Pedro Plan" in entry["actor"]
    assert entry["after"]["status_reason"] == f"Robado {EVIL}" and entry["at"] is not None
    audit = site.client.get("/gestion/auditoria?tipo=device&registro=dea-2")
    assert EVIL not in audit.text
    words = text(audit)
    assert "Fuera de servicio" in words and f"Robado {EVIL}" in words and "Pedro Plan" in words
    assert "en servicio → fuera de servicio" in words  # codes read as words

    twice = site.post(f"{url}/fuera-de-servicio", "planner", {"motivo": "otra vez"})
    assert twice.status_code == 409

    # Back in service: a reason too; it also answers the pending "missing" reports.
    site.store.insert_report({"device_id": "dea-2", "kind": "missing", "message": "x"},
                             actor="test")  # fmt: skip
    assert site.post(f"{url}/en-servicio", "planner", {"motivo": ""}).status_code == 422
    back = site.post(f"{url}/en-servicio", "planner", {"motivo": "Recuperado por la Policía Local"})
    assert back.status_code == 303
    assert site.store.device("dea-2")["status"] == "active"  # type: ignore[index]
    assert pending_ids(site.store, "dea-2") == []
    (resolved,), _ = site.store.reports(device_id="dea-2")
    assert resolved["status"] == "accepted"
    assert resolved["review_note"] == (
        "El personal municipal volvió a poner el equipo en servicio el 09/12/2026: "
        "Recuperado por la Policía Local"
    )
    entries, _ = site.store.audit_entries(record_type="device", record_id="dea-2")
    assert entries[0]["action"] == "back_in_service"
    assert site.nearest()["dea-2"]["available"] is True


def test_only_staff_change_the_service(site: Site) -> None:
    entity = authenticate(
        site.store, issue_token(site.store, role="entity", entity_id="ent-1").secret
    )
    with pytest.raises(ForbiddenError):
        registry.set_in_service(site.store, entity, "dea-1", in_service=False, reason="x")
    assert site.store.device("dea-1")["status"] == "active"  # type: ignore[index]


def test_resolving_a_missing_report_can_take_the_device_out_of_service(site: Site) -> None:
    assert site.report("dea-2").status_code == 202
    assert site.report("dea-3", "broken").status_code == 202
    (first,), (second,) = pending_ids(site.store, "dea-2"), pending_ids(site.store, "dea-3")
    site.sign_in("planner")
    page = site.client.get("/gestion/avisos")
    assert f'id="fuera-{first}" name="fuera_de_servicio" value="si" checked' in page.text
    assert f'<label for="fuera-{first}">' in page.text

    response = site.post(f"/gestion/avisos/{first}/revisar", "planner",
                         {"decision": "accepted", "nota": "Confirmado por teléfono",
                          "fuera_de_servicio": "si"})  # fmt: skip
    assert response.status_code == 303
    assert "queda fuera de servicio" in text(site.client.get("/gestion/avisos"))
    assert site.store.device("dea-2")["status"] == "out_of_service"  # type: ignore[index]
    entries, _ = site.store.audit_entries(record_type="device", record_id="dea-2")
    assert entries[0]["action"] == "out_of_service"
    assert entries[0]["after"]["status_reason"] == (
        f"Aviso ciudadano {first} confirmado (No está / ha desaparecido): Confirmado por teléfono"
    )
    # Dismissing never touches the device, whatever the box says.
    site.post(f"/gestion/avisos/{second}/revisar", "planner",
              {"decision": "rejected", "fuera_de_servicio": "si"})  # fmt: skip
    assert site.store.device("dea-3")["status"] == "active"  # type: ignore[index]
    assert site.store.downgrading_reports() == {}


def test_a_check_at_the_desk_resolves_the_pending_reports(site: Site) -> None:
    assert site.report("dea-3", "broken").status_code == 202
    assert site.report("dea-3", "wrong_hours").status_code == 202
    site.sign_in("planner")
    page = site.client.get("/gestion/desfibriladores/dea-3")
    assert "sin confirmar" in text(page) and "Revisado hoy" in text(page)
    response = site.post("/gestion/desfibriladores/dea-3/comprobado", "planner")
    assert response.status_code == 303
    device = site.store.device("dea-3")
    assert device is not None and device["check_date"] == dt.date(2026, 12, 9)
    reports = {r["kind"]: r for r in site.store.reports(device_id="dea-3")[0]}
    assert reports["broken"]["status"] == "accepted"
    assert (
        reports["broken"]["review_note"] == "El personal municipal confirmó el equipo el 09/12/2026"
    )
    assert reports["wrong_hours"]["status"] == "pending"  # not about whether it works
    entries, _ = site.store.audit_entries(
        record_type="report", record_id=str(reports["broken"]["id"])
    )
    assert entries[0]["action"] == "review" and "Pedro Plan" in entries[0]["actor"]
    assert site.store.downgrading_reports() == {}


# --- the portal -------------------------------------------------------------------------------


def test_revisado_hoy_in_the_portal_resolves_the_entitys_pending_reports(site: Site) -> None:
    assert site.report("dea-1", "missing").status_code == 202
    assert site.report("dea-2", "missing").status_code == 202  # another entity's device
    invitation = issue_invitation(site.store, entity_id="ent-1", actor="test")
    origin = {"Origin": "http://testserver"}
    signed = site.client.post(f"/entidades/invitacion/{invitation.code}", headers=origin,
                              follow_redirects=False)  # fmt: skip
    assert signed.status_code == 303
    page = site.client.get("/entidades")
    csrf = re.search(r'name="csrf" value="([0-9a-f]+)"', page.text)
    assert csrf is not None
    response = site.client.post("/entidades/desfibriladores/dea-1/revisado",
                                data={"csrf": csrf.group(1)}, headers=origin,
                                follow_redirects=False)  # fmt: skip
    assert response.status_code == 303, response.text
    (report,), _ = site.store.reports(device_id="dea-1")
    assert report["status"] == "accepted"
    assert report["review_note"] == "La entidad confirmó el equipo el 09/12/2026"
    assert "entidad ent-1" in str(report["reviewed_by"])
    entries, _ = site.store.audit_entries(record_type="report", record_id=str(report["id"]))
    assert entries[0]["action"] == "review" and entries[0]["after"]["status"] == "accepted"
    assert set(site.store.downgrading_reports()) == {"dea-2"}


# --- the staff e-mail -------------------------------------------------------------------------


def test_staff_get_an_email_for_each_report(site: Site) -> None:
    message = "Han roto el cristal <b>y</b> no está.\nLo vi esta mañana."
    response = site.report("dea-2", message=message, contact="vecina@example.org")
    assert response.status_code == 202
    (received,) = site.mailbox.received
    assert received.rcpt_tos == (STAFF,)
    mail = received.message
    assert not mail.is_multipart() and mail.get_content_type() == "text/plain"
    assert "No está / ha desaparecido" in str(mail["Subject"])
    body = received.text()
    device = site.store.device("dea-2")
    assert device is not None
    assert f"Desfibrilador: {device['name']} (dea-2)" in body
    assert "Aviso: No está / ha desaparecido" in body
    assert "Recibido: miércoles 09/12/2026 a las 10:00 (hora de Palencia)" in body
    assert "  Han roto el cristal <b>y</b> no está.\n  Lo vi esta mañana." in body
    assert f"{BASE}/gestion/avisos" in body and f"{BASE}/gestion/desfibriladores/dea-2" in body
    assert "sin confirmar" in body
    raw = received.message.as_string()
    assert "vecina@example.org" not in raw and "example.org" not in raw.replace(BASE, "")
    assert "contacto" in body  # staff know there is one, and read it at the desk


def test_a_mail_failure_never_loses_the_report(
    db_url: str, tiny_layers: Layers, clock: time_machine.Traveller,
    caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    refusing = Mailbox(refuse={STAFF})
    with smtp_server(refusing) as port, Store.open(db_url) as store:
        store.load(tiny_layers)
        for settings in (_settings(db_url, port), _settings(db_url, free_port())):  # refused, down
            with TestClient(create_app(settings)) as client, caplog.at_level(logging.WARNING):
                body = {"kind": "broken", "message": "No enciende"}
                response = client.post("/api/defibrillators/dea-2/reports", json=body)
                assert response.status_code == 202
        assert refusing.received == []
        assert store.reports(device_id="dea-2")[1] == 2
        assert set(store.downgrading_reports()) == {"dea-2"}
    warnings = [r.getMessage() for r in caplog.records if r.name == "geo.services.notices"]
    assert len(warnings) == 2 and all("no se pudo avisar al personal" in w for w in warnings)


def test_staff_emails_must_be_addresses() -> None:
    with pytest.raises(ValidationError, match="no es una dirección de correo"):
        Settings(staff_emails=["guardia"])
    assert Settings(staff_emails=["Guardia <guardia@palencia.example>"]).staff_emails


# --- the throttle -----------------------------------------------------------------------------


def test_one_client_cannot_downgrade_many_devices_on_any_worker(
    db_url: str, tiny_layers: Layers, clock: time_machine.Traveller
) -> None:
    with Store.open(db_url) as store:
        store.load(tiny_layers)
    settings = Settings(database_url=db_url, tile_url="", report_rate_limit=100,
                        report_downgrade_limit=2, report_downgrade_window_s=86_400)  # fmt: skip
    # Two apps on the same database: two worker processes behind one address.
    with TestClient(create_app(settings)) as one, TestClient(create_app(settings)) as two:

        def report(client: TestClient, device_id: str, kind: str = "missing") -> httpx.Response:
            return client.post(f"/api/defibrillators/{device_id}/reports",
                               json={"kind": kind, "message": "No está"})  # fmt: skip

        assert report(one, "dea-1").status_code == 202
        assert report(two, "dea-2", "broken").status_code == 202
        assert report(one, "dea-1").status_code == 202  # the same device again: still two
        for client in (one, two):
            refused = report(client, "dea-3")
            assert refused.status_code == 429
            assert refused.json()["code"] == "rate_limited"
            assert "2 desfibriladores distintos en 24 h" in refused.json()["message"]
            assert 0 < int(refused.headers["retry-after"]) <= 86_400
            assert "Podrá avisar de otro en 24 h" in refused.json()["message"]
        assert report(two, "dea-3", "wrong_hours").status_code == 202  # not a downgrade
        with Store.open(db_url) as store:
            assert set(store.downgrading_reports()) == {"dea-1", "dea-2"}
        clock.shift(dt.timedelta(days=1, seconds=1))
        assert report(two, "dea-3").status_code == 202


def test_waits_are_said_in_words() -> None:
    assert [duration_words(s) for s in (30, 90, 600, 5400, 86_399, 86_400)] == [
        "30 s", "2 min", "10 min", "1 h 30 min", "24 h", "24 h",
    ]  # fmt: skip


def test_the_report_rate_limit_is_shared_by_the_workers(
    db_url: str, tiny_layers: Layers, clock: time_machine.Traveller
) -> None:
    with Store.open(db_url) as store:
        store.load(tiny_layers)
    settings = Settings(database_url=db_url, tile_url="", report_rate_limit=3)
    with TestClient(create_app(settings)) as one, TestClient(create_app(settings)) as two:
        body = {"kind": "other", "message": "La señal está torcida"}
        statuses = [
            client.post("/api/defibrillators/dea-2/reports", json=body).status_code
            for client in (one, two, one, two)
        ]
        assert statuses == [202, 202, 202, 429]
