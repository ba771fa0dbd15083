"""Maintenance reminders: the pure plan, and real runs against a real SMTP server on 127.0.0.1
(aiosmtpd), on SpatiaLite and on PostGIS. Contacts never leave through public outputs."""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import geopandas as gpd
import pytest
from fastapi.testclient import TestClient
from shapely.geometry import Point
from typer.testing import CliRunner

from api.app import create_app
from geo.city import CityProfile
from geo.cli import app as cli_app
from geo.errors import AuthenticationError, MailConfigError
from geo.io.files import read_layers
from geo.io.store import Store
from geo.services.reminders import (
    SmtpTarget,
    message_html,
    parse_smtp_url,
    plan_reminders,
    send_reminders,
)
from geo.services.tokens import redeem_invitation
from geo.settings import Settings
from tests.smtp_server import Mailbox, free_port, smtp_server

TODAY = dt.date(2026, 12, 22)
NOW = dt.datetime(2026, 12, 22, 8, 0, tzinfo=dt.UTC)
EMAIL_1, EMAIL_2 = "ana.perez@residencia-uno.example", "luis@asociacion-dos.example"
SENDER = "Desfibriladores de Palencia <dea@palencia.example>"
BASE = "https://dea.example.org"
LINK = re.compile(re.escape(BASE) + r"/entidades/invitacion/(ci_[0-9]+_[A-Za-z0-9_-]{43})")
runner = CliRunner()


# --- the pure plan -----------------------------------------------------------------------------


def _device(id_: str, entity: str | None, **values: Any) -> dict[str, Any]:
    base = {"id": id_, "name": f"DEA {id_}", "location_text": None, "address": None,
            "operator_entity_id": entity, "status": "active", "verification": "verified",
            "check_date": dt.date(2026, 12, 1), "battery_expiry": dt.date(2030, 1, 1),
            "pads_expiry": dt.date(2030, 1, 1), "geometry": Point(-4.53, 42.01)}  # fmt: skip
    return base | values


def _frames() -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame]:
    devices = gpd.GeoDataFrame([
        # ent-1: pads in 10 days and last checked 204 days ago; a pending one, battery expired
        _device("d1", "ent-1", location_text="vestíbulo", address="Calle B 2",
                pads_expiry=dt.date(2027, 1, 1), check_date=dt.date(2026, 6, 1)),
        _device("d2", "ent-1", verification="pending", battery_expiry=dt.date(2026, 12, 17)),
        _device("d3", "ent-1", verification="rejected", check_date=None),  # never reminded
        _device("d4", "ent-1", status="removed", check_date=None),  # out of service for good
        _device("d5", "ent-1"),  # nothing due
        # ent-2: never checked, but only a phone
        _device("d6", "ent-2", check_date=None),
        # no operator; an operator not in the layer
        _device("d7", None, check_date=None),
        _device("d8", "ent-9", check_date=None),
    ], crs="EPSG:4326")  # fmt: skip
    entities = gpd.GeoDataFrame(
        {"id": ["ent-1", "ent-2"], "name": ["Residencia Uno", "Asociación Dos"]},
        geometry=[Point(-4.53, 42.01), Point(-4.52, 42.0)],
        crs="EPSG:4326",
    )
    return devices, entities


CONTACTS = {
    "ent-1": {"person": "Ana Pérez", "email": EMAIL_1, "phone": None},
    "ent-2": {"person": None, "email": None, "phone": "979 000 000"},
}


def _plan(sent: list[dict[str, Any]] | None = None, **options: int) -> Any:
    devices, entities = _frames()
    rules = {"within_days": 30, "unchecked_days": 183, "repeat_days": 7} | options
    return plan_reminders(devices, entities, CONTACTS, sent or [], today=TODAY, now=NOW, **rules)


def test_the_plan_lists_each_entitys_devices_and_reasons_in_words() -> None:
    plan = _plan()
    assert [m.entity_id for m in plan.messages] == ["ent-1"]
    message = plan.messages[0]
    assert (message.recipient, message.person, message.entity_name) == (
        EMAIL_1, "Ana Pérez", "Residencia Uno")  # fmt: skip
    assert [d.device_id for d in message.devices] == ["d1", "d2"]
    d1, d2 = message.devices
    assert d1.where == "vestíbulo · Calle B 2"
    assert [(i.reason, i.day, i.text) for i in d1.items] == [
        ("pads_expiry", dt.date(2027, 1, 1), "los parches caducan el 01/01/2027 (en 10 días)"),
        ("unchecked", dt.date(2026, 6, 1), "sin revisar desde el 01/06/2026 (hace 204 días)"),
    ]
    assert [(i.reason, i.text) for i in d2.items] == [
        ("battery_expiry", "la batería caducó el 17/12/2026 (hace 5 días)")]  # fmt: skip
    assert message.pairs() == [("d1", "pads_expiry"), ("d1", "unchecked"),
                               ("d2", "battery_expiry")]  # fmt: skip
    skipped = {s.entity_id: s for s in plan.skipped}
    assert set(skipped) == {"ent-2", "ent-9"}
    assert skipped["ent-2"].reason == "sin correo electrónico de contacto (solo teléfono)"
    assert [(i.reason, i.text) for i in skipped["ent-2"].devices[0].items] == [
        ("never_checked", "nunca revisado: no consta ninguna revisión")]  # fmt: skip
    assert skipped["ent-9"].reason == "la entidad no está en la capa de entidades"
    assert plan.unassigned == ("d7",)
    assert plan.held_back == 0


def test_the_plan_holds_back_what_was_sent_within_the_repeat_days() -> None:
    sent = [
        {"device_id": "d1", "reason": "pads_expiry", "sent_at": dt.datetime(2026, 12, 19, 8)},
        {"device_id": "d1", "reason": "unchecked", "sent_at": dt.datetime(2026, 12, 14, 8)},
        {"device_id": "d2", "reason": "battery_expiry",
         "sent_at": dt.datetime(2026, 12, 21, 9, tzinfo=dt.timezone(dt.timedelta(hours=1)))},
    ]  # fmt: skip
    plan = _plan(sent)
    assert plan.held_back == 2  # 3 and 1 days ago; the one 8 days ago is sent again
    assert plan.messages[0].pairs() == [("d1", "unchecked")]
    assert not _plan(sent, repeat_days=0).held_back
    assert _plan(sent, repeat_days=30).messages == ()
    assert _plan(sent, repeat_days=30).held_back == 3


def test_expiry_today_and_in_one_day_read_well() -> None:
    devices, entities = _frames()
    devices = devices[devices["id"] == "d5"].assign(
        battery_expiry=[TODAY], pads_expiry=[TODAY + dt.timedelta(days=1)]
    )
    plan = plan_reminders(devices, entities, CONTACTS, [], today=TODAY, within_days=30,
                          unchecked_days=183, repeat_days=7, now=NOW)  # fmt: skip
    assert [i.text for i in plan.messages[0].devices[0].items] == [
        "la batería caduca hoy, 22/12/2026",
        "los parches caducan el 23/12/2026 (en 1 día)",
    ]


def test_entity_text_is_escaped_in_the_html_alternative() -> None:
    devices, entities = _frames()
    entities = entities.assign(name=['<script>alert("x")</script> & Cía', "Dos"])
    devices.loc[devices["id"] == "d1", "name"] = "<img src=x onerror=alert(1)>"
    contacts = {"ent-1": {"person": "<b>Ana</b>", "email": EMAIL_1}}
    plan = plan_reminders(devices, entities, contacts, [], today=TODAY, within_days=30,
                          unchecked_days=183, repeat_days=7, now=NOW)  # fmt: skip
    page = message_html(plan.messages[0], city_name="Palencia", link=f"{BASE}/x?a=1&b=2")
    assert "<script>" not in page and "<img" not in page and "<b>Ana" not in page
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; Cía" in page
    assert 'href="https://dea.example.org/x?a=1&amp;b=2"' in page


# --- SMTP settings -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("smtp://mail.example.org", SmtpTarget("mail.example.org", 25, "plain")),
        ("smtp://mail.example.org:2525", SmtpTarget("mail.example.org", 2525, "plain")),
        ("smtp+starttls://mail.example.org", SmtpTarget("mail.example.org", 587, "starttls")),
        ("SMTPS://mail.example.org", SmtpTarget("mail.example.org", 465, "tls")),
        ("smtps://dea%40palencia.es:p%C3%A1ss%3Aw@mail.example.org:4650",
         SmtpTarget("mail.example.org", 4650, "tls", "dea@palencia.es", "páss:w")),
    ],
)  # fmt: skip
def test_smtp_urls_are_parsed(url: str, expected: SmtpTarget) -> None:
    target = parse_smtp_url(url)
    assert target == expected
    assert target.password == expected.password


def test_credentials_come_from_the_url_or_their_own_settings() -> None:
    own = parse_smtp_url("smtp+starttls://mail.example.org", username="u", password="p")
    assert (own.username, own.password) == ("u", "p")
    url = parse_smtp_url("smtp://a:b@mail.example.org", username="u", password="p")
    assert (url.username, url.password) == ("a", "b")
    assert "b" not in repr(url).replace("mail.example.org", "")


@pytest.mark.parametrize("url", ["http://mail.example.org", "smtp://", "smtp://h:99999",
                                 "smtps://user:secreto@mail:xx"])  # fmt: skip
def test_bad_smtp_urls_are_explained_without_the_password(url: str) -> None:
    with pytest.raises(MailConfigError, match="CARDIOMAPA_SMTP_URL") as caught:
        parse_smtp_url(url)
    assert "secreto" not in str(caught.value)


# --- real runs ---------------------------------------------------------------------------------


@pytest.fixture
def loaded(store: Store, tiny_dir: Path, city: CityProfile) -> Store:
    """The tiny layers with devices due for two entities, and their contacts."""
    path = tiny_dir / "defibrillators.geojson"
    document = json.loads(path.read_text(encoding="utf-8"))
    first = document["features"][0]
    extra = [
        ("dea-4", "ent-1", {"verification": "pending", "check_date": "2026-12-01",
                            "battery_expiry": "2026-12-17", "pads_expiry": "2028-01-01"}),
        ("dea-5", "ent-2", {"check_date": None, "name": "DEA Asociación",
                            "pads_expiry": "2028-01-01"}),
        ("dea-6", "ent-2", {"verification": "rejected", "check_date": None}),
    ]  # fmt: skip
    for id_, entity, values in extra:
        feature = json.loads(json.dumps(first))
        feature["properties"] |= {"id": id_, "operator_entity_id": entity, **values}
        document["features"].append(feature)
    path.write_text(json.dumps(document), encoding="utf-8")
    store.load(read_layers(tiny_dir, city))
    store.set_contacts([
        {"entity_id": "ent-1", "person": "Ana Pérez", "email": EMAIL_1, "phone": None},
        {"entity_id": "ent-2", "person": None, "email": EMAIL_2, "phone": "979 111 222"},
    ], actor="test")  # fmt: skip
    return store


def _settings(store: Store, port: int | None, **values: Any) -> Settings:
    url = store.engine.url.render_as_string(hide_password=False)
    smtp = None if port is None else f"smtp://127.0.0.1:{port}"
    given: dict[str, Any] = {"database_url": url, "smtp_url": smtp, "mail_from": SENDER,
                             "public_url": BASE}  # fmt: skip
    return Settings(**(given | values))


@pytest.fixture
def mailbox() -> Mailbox:
    return Mailbox()


@pytest.fixture
def port(mailbox: Mailbox) -> Iterator[int]:
    with smtp_server(mailbox) as bound:
        yield bound


def _run(store: Store, settings: Settings, *, days: int = 0, dry_run: bool = False) -> Any:
    later = dt.timedelta(days=days)
    return send_reminders(store, settings, today=TODAY + later, dry_run=dry_run, now=NOW + later)


def test_a_dry_run_sends_records_and_issues_nothing(
    loaded: Store, mailbox: Mailbox, port: int
) -> None:
    run = _run(loaded, _settings(loaded, port), dry_run=True)
    assert [m.entity_id for m in run.plan.messages] == ["ent-1", "ent-2"]
    assert (run.sent, run.failed) == ((), ())
    assert mailbox.received == []
    assert loaded.reminders_sent(since=dt.datetime(2000, 1, 1)) == []
    assert loaded.invitations() == []


def test_a_dry_run_needs_no_mail_settings(loaded: Store) -> None:
    run = _run(loaded, _settings(loaded, None, mail_from=None), dry_run=True)
    assert len(run.plan.messages) == 2


def test_a_run_sends_one_message_per_entity_with_its_devices(
    loaded: Store, mailbox: Mailbox, port: int
) -> None:
    run = _run(loaded, _settings(loaded, port))
    assert run.ok and [s.entity_id for s in run.sent] == ["ent-1", "ent-2"]
    assert [r.rcpt_tos for r in mailbox.received] == [(EMAIL_1,), (EMAIL_2,)]
    assert {r.mail_from for r in mailbox.received} == {"dea@palencia.example"}
    one, two = mailbox.received
    headers = one.message
    assert headers["Subject"] == "Desfibriladores: revisiones pendientes — Residencia Uno"
    assert headers["To"] == f"Ana Pérez <{EMAIL_1}>"
    assert headers["From"] == SENDER
    assert headers["Message-ID"].endswith("@palencia.example>")
    assert headers["Date"] == "Tue, 22 Dec 2026 08:00:00 +0000"
    text = one.text()
    assert text.startswith("Hola, Ana Pérez:\n")
    assert "* DEA Residencia Uno (vestíbulo, junto a recepción)" in text
    assert "  - los parches caducan el 01/01/2027 (en 10 días)" in text
    assert "  - sin revisar desde el 01/06/2026 (hace 204 días)" in text
    assert "  - la batería caducó el 17/12/2026 (hace 5 días)" in text
    assert "«Revisado hoy»" in text
    assert "DEA Plaza Mayor" not in text  # no operator: in no message
    assert LINK.search(one.html())
    assert two.text().startswith("Hola:\n")
    assert "* DEA Asociación" in two.text() and "nunca revisado" in two.text()
    assert two.text().count("* ") == 1  # the rejected device is never reminded of
    sent = loaded.reminders_sent(since=dt.datetime(2000, 1, 1))
    assert sorted((r["entity_id"], r["device_id"], r["reason"], r["recipient"]) for r in sent) == [
        ("ent-1", "dea-1", "pads_expiry", EMAIL_1), ("ent-1", "dea-1", "unchecked", EMAIL_1),
        ("ent-1", "dea-4", "battery_expiry", EMAIL_1),
        ("ent-2", "dea-5", "never_checked", EMAIL_2),
    ]  # fmt: skip
    assert {r["sent_at"] for r in sent} == {NOW.replace(tzinfo=None)}
    assert [i.created_by for i in loaded.invitations()] == ["recordatorios"] * 2


def test_runs_are_idempotent_within_the_repeat_days_and_repeat_after(
    loaded: Store, mailbox: Mailbox, port: int
) -> None:
    settings = _settings(loaded, port)
    assert len(_run(loaded, settings).sent) == 2
    again = _run(loaded, settings, days=1)
    assert again.sent == () and again.plan.held_back == 4
    assert len(mailbox.received) == 2
    assert len(_run(loaded, settings, days=6).sent) == 0
    later = _run(loaded, settings, days=8)
    assert [s.entity_id for s in later.sent] == ["ent-1", "ent-2"]
    assert len(mailbox.received) == 4
    assert len(loaded.invitations()) == 4


def test_a_refused_entity_is_reported_and_retried_while_others_are_not_resent(
    loaded: Store, city: CityProfile
) -> None:
    refusing = Mailbox(refuse={EMAIL_1})
    with smtp_server(refusing) as bound:
        run = _run(loaded, _settings(loaded, bound))
    assert not run.ok
    assert [s.entity_id for s in run.sent] == ["ent-2"]
    [failure] = run.failed
    assert failure.entity_id == "ent-1" and failure.recipient == EMAIL_1
    assert "550" in failure.error and "rechazó" in failure.error
    recorded = loaded.reminders_sent(since=dt.datetime(2000, 1, 1))
    assert {r["entity_id"] for r in recorded} == {"ent-2"}
    invitations = {i.entity_id: i for i in loaded.invitations()}
    assert invitations["ent-1"].revoked_at is not None  # its link was never delivered
    assert invitations["ent-2"].revoked_at is None
    accepting = Mailbox()
    with smtp_server(accepting) as bound:
        retry = _run(loaded, _settings(loaded, bound), days=1)
    assert retry.ok and [s.entity_id for s in retry.sent] == ["ent-1"]
    assert [r.rcpt_tos for r in accepting.received] == [(EMAIL_1,)]


def test_an_unreachable_server_fails_every_entity_and_records_nothing(loaded: Store) -> None:
    run = _run(loaded, _settings(loaded, free_port()))
    assert run.sent == () and [f.entity_id for f in run.failed] == ["ent-1", "ent-2"]
    assert all("no se pudo conectar" in f.error for f in run.failed)
    assert loaded.reminders_sent(since=dt.datetime(2000, 1, 1)) == []
    assert all(i.revoked_at is not None for i in loaded.invitations())


def test_required_starttls_that_the_server_does_not_offer_sends_nothing(
    loaded: Store, mailbox: Mailbox, port: int
) -> None:
    settings = _settings(loaded, port).model_copy(
        update={"smtp_url": f"smtp+starttls://127.0.0.1:{port}"}
    )
    run = _run(loaded, settings)
    assert run.sent == () and all("STARTTLS" in f.error for f in run.failed)
    assert mailbox.received == []


@pytest.mark.parametrize(
    ("unset", "named"),
    [({"smtp_url": None}, "CARDIOMAPA_SMTP_URL"), ({"mail_from": None}, "CARDIOMAPA_MAIL_FROM")],
)
def test_unset_mail_settings_explain_what_to_set_and_send_nothing(
    loaded: Store, unset: dict[str, None], named: str
) -> None:
    settings = _settings(loaded, 25).model_copy(update=unset)
    with pytest.raises(MailConfigError, match=named) as caught:
        _run(loaded, settings)
    assert "--dry-run" in str(caught.value)
    assert loaded.invitations() == [] and loaded.reminders_sent(since=dt.datetime(2000, 1, 1)) == []


def test_the_link_in_the_mail_signs_the_entity_in_once(
    loaded: Store, mailbox: Mailbox, port: int
) -> None:
    _run(loaded, _settings(loaded, port))
    match = LINK.search(mailbox.received[1].text())
    assert match is not None
    token = redeem_invitation(loaded, match[1])
    assert token.record.entity_id == "ent-2" and token.record.role == "entity"
    with pytest.raises(AuthenticationError, match="ya se usó"):
        redeem_invitation(loaded, match[1])


def _env(settings: Settings) -> dict[str, str]:
    return {
        "CARDIOMAPA_DATABASE_URL": settings.database_url,
        "CARDIOMAPA_PUBLIC_URL": BASE,
        "CARDIOMAPA_SMTP_URL": str(settings.smtp_url),
        "CARDIOMAPA_MAIL_FROM": SENDER,
    }


def test_the_cli_dry_run_and_send(loaded: Store, mailbox: Mailbox, port: int) -> None:
    settings = _settings(loaded, port)
    env = _env(settings)
    dry = runner.invoke(cli_app, ["reminders", "send", "--dry-run", "--today", "2026-12-22",
                                  "--format", "json"], env=env)  # fmt: skip
    assert dry.exit_code == 0, dry.output
    summary = json.loads(dry.stdout)
    assert [(m["entity_id"], m["recipient"], m["status"]) for m in summary["messages"]] == [
        ("ent-1", EMAIL_1, "would_send"), ("ent-2", EMAIL_2, "would_send")]  # fmt: skip
    assert summary["unassigned"] == ["dea-2", "dea-3"]
    assert mailbox.received == [] and loaded.invitations() == []
    table = runner.invoke(cli_app, ["reminders", "send", "--dry-run", "--today", "2026-12-22",
                                    "--within-days", "5"], env=env)  # fmt: skip
    assert table.exit_code == 0, table.output
    assert "se enviaría" in table.stdout and "parches" not in table.stdout
    assert "Simulación" in table.stdout
    sent = runner.invoke(cli_app, ["reminders", "send", "--today", "2026-12-22"], env=env)
    assert sent.exit_code == 0, sent.output
    assert "Enviados 2 correo(s)." in sent.stdout
    assert len(mailbox.received) == 2
    unset = runner.invoke(cli_app, ["reminders", "send"],
                          env={**env, "CARDIOMAPA_SMTP_URL": ""})  # fmt: skip
    assert unset.exit_code == 1 and "CARDIOMAPA_SMTP_URL" in unset.stderr


def test_the_cli_exits_non_zero_when_a_send_fails(loaded: Store) -> None:
    refusing = Mailbox(refuse={EMAIL_2})
    with smtp_server(refusing) as bound:
        settings = _settings(loaded, bound)
        env = _env(settings)
        result = runner.invoke(cli_app, ["reminders", "send", "--today", "2026-12-22"], env=env)
    assert result.exit_code == 1
    assert "FALLÓ" in result.stdout and "se reintentarán" in result.stdout


# --- contacts never leak -----------------------------------------------------------------------


def test_contacts_never_leave_through_public_outputs(loaded: Store, tmp_path: Path) -> None:
    url = loaded.engine.url.render_as_string(hide_password=False)
    secrets = (EMAIL_1, EMAIL_2, "Ana Pérez", "979 111 222")
    paths = ["/api", "/api/layers", "/api/entities", "/api/entities/ent-1",
             "/api/defibrillators", "/api/defibrillators/dea-1",
             "/api/downloads/entities.geojson", "/api/downloads/entities.csv",
             "/api/downloads/defibrillators.geojson", "/api/downloads/defibrillators.csv",
             "/ogc/collections/entities/items", "/ogc/collections/entities/items/ent-1",
             "/ogc/collections/defibrillators/items"]  # fmt: skip
    with TestClient(create_app(Settings(database_url=url))) as client:
        for path in paths:
            body = client.get(path).text
            assert not any(secret in body for secret in secrets), path
        served = client.get("/api/downloads/entities.geojson")
        assert served.status_code == 200 and "Residencia Uno" in served.text
    env = {"CARDIOMAPA_DATABASE_URL": url}
    for layer in ("entities", "defibrillators"):
        for suffix in ("geojson", "csv", "gpkg"):
            out = tmp_path / f"{layer}.{suffix}"
            done = runner.invoke(cli_app, ["export", "--layer", layer, "--out", str(out)], env=env)
            assert done.exit_code == 0, done.output
            data = out.read_bytes()
            assert not any(s.encode("utf-8") in data for s in secrets), out.name
            assert not any(s.encode("utf-16-le") in data for s in secrets), out.name
