"""People read the city's local time, never UTC: pages, the CLI, e-mails and messages.

The clock is pinned to half past midnight in the city, when the UTC date is still the day
before: once in winter (UTC+1) and once in summer (UTC+2), so a page that showed UTC would
show another hour and, for dates, another day.
"""

from __future__ import annotations

import datetime as dt
import html
import re
from collections.abc import Iterator
from dataclasses import dataclass
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner
from weeks import TIMEZONE

from api.app import create_app
from api.pages.desk.audit import audit_changes
from geo.city import CityProfile
from geo.cli import app as cli
from geo.clock import FixedClock, local_text
from geo.core.layers import Layers
from geo.errors import AuthenticationError
from geo.io.store import Store
from geo.services import registry
from geo.services.tokens import (
    authenticate,
    check_invitation,
    issue_invitation,
    issue_token,
    redeem_invitation,
)
from geo.settings import Settings

ZONE = ZoneInfo(TIMEZONE)


@dataclass(frozen=True)
class Moment:
    """A pinned instant: local wall time, and how a page must write it (and must not)."""

    local: dt.datetime  # naive, in the city

    @property
    def utc(self) -> dt.datetime:
        return self.local.replace(tzinfo=ZONE).astimezone(dt.UTC)

    @property
    def shown(self) -> str:
        return f"{self.local:%d/%m/%Y %H:%M}"

    @property
    def shown_in_utc(self) -> str:
        return f"{self.utc:%d/%m/%Y %H:%M}"


#: 00:30 in Palencia: 23:30 UTC the day before (winter) and 22:30 (summer).
WINTER = Moment(dt.datetime(2026, 11, 24, 0, 30))
SUMMER = Moment(dt.datetime(2026, 7, 15, 0, 30))


@pytest.fixture(params=[WINTER, SUMMER], ids=["winter", "summer"])
def moment(request: pytest.FixtureRequest) -> Moment:
    moment: Moment = request.param
    return moment


def test_local_text_follows_the_change_of_time() -> None:
    assert local_text(dt.datetime(2026, 11, 23, 23, 30), TIMEZONE) == "24/11/2026 00:30"
    assert local_text(dt.datetime(2026, 7, 14, 22, 30), TIMEZONE) == "15/07/2026 00:30"
    aware = dt.datetime(2026, 7, 14, 22, 30, tzinfo=dt.UTC)
    assert local_text(aware, TIMEZONE, pattern="%H:%M") == "00:30"


@dataclass
class Site:
    client: TestClient
    store: Store
    invitation_code: str
    used_code: str
    device_id: str


@pytest.fixture
def site(db_url: str, tiny_layers: Layers, city: CityProfile, moment: Moment) -> Iterator[Site]:
    """The app with sample data written at the pinned instant: an audit entry for every write,
    a citizen's report, a use, an open invitation and a used one, a revoked token."""
    with Store.open(db_url, clock=FixedClock(moment.utc)) as store:
        store.load(tiny_layers)
        tokens = {
            "admin": issue_token(store, role="admin", label="Ana Admin").secret,
            "planner": issue_token(store, role="planner", label="Pedro Plan").secret,
            "ent-1": issue_token(store, role="entity", entity_id="ent-1").secret,
        }
        registry.report_problem(store, city, "dea-1", kind="broken", message="No enciende")
        principal = authenticate(store, tokens["ent-1"])
        registry.record_use(
            store, city, principal, "dea-1", now=moment.utc,
            values={"used_at": moment.utc - dt.timedelta(hours=3), "people_attended": 1},
        )  # fmt: skip
        invitation = issue_invitation(store, entity_id="ent-1", actor="test")
        used = issue_invitation(store, entity_id="ent-1", actor="test")
        redeem_invitation(store, used.code)
        spare = issue_token(store, role="planner", label="Antiguo")
        store.revoke_token(spare.record.id, actor="test")
        settings = Settings(database_url=db_url, clock_start=moment.local, tile_url="")
        with TestClient(create_app(settings)) as client:
            for path, who in (("/gestion/sesion", "admin"), ("/entidades/sesion", "ent-1"),
                              ("/planificacion/sesion", "planner")):  # fmt: skip
                signed = client.post(path, data={"token": tokens[who]}, follow_redirects=False)
                assert signed.status_code in (200, 303), (path, signed.text[:300])
            yield Site(client, store, invitation.code, used.code, "dea-1")


def _text(page: str) -> str:
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", page)).split())


def _pages(site: Site) -> dict[str, str]:
    """Every Spanish page the app serves (citizens, cabinet, portal, desk, planners)."""
    device = site.device_id
    paths = [
        "/", f"/dea/{device}", f"/dea/{device}/hoja",
        "/entidades", "/entidades/nuevo", "/entidades/contacto",
        f"/entidades/desfibriladores/{device}", f"/entidades/desfibriladores/{device}/uso",
        "/gestion", "/gestion/avisos", "/gestion/auditoria", "/gestion/mantenimiento",
        "/gestion/entidades", f"/gestion/desfibriladores/{device}",
        "/planificacion",
    ]  # fmt: skip
    pages = {}
    for path in paths:
        response = site.client.get(path)
        assert response.status_code == 200, (path, response.status_code)
        pages[path] = response.text
    # The invitation pages, signed out: an open one, a used one; and the desk's new link.
    anonymous = TestClient(site.client.app)
    for code in (site.invitation_code, site.used_code):
        response = anonymous.get(f"/entidades/invitacion/{code}")
        assert response.status_code in (200, 401), response.text[:300]
        pages[f"/entidades/invitacion/{code[:6]}"] = response.text
    created = site.client.post(
        "/gestion/entidades/ent-1/invitacion",
        data={"csrf": _csrf(site.client, "/gestion/entidades")},
        follow_redirects=True,
    )
    assert created.status_code == 200, created.text[:300]
    pages["/gestion/entidades/ent-1/invitacion"] = created.text
    return pages


def _csrf(client: TestClient, path: str) -> str:
    found = re.search(r'name="csrf" value="([0-9a-f]+)"', client.get(path).text)
    assert found is not None
    return found.group(1)


def test_no_spanish_page_says_utc_and_each_shows_the_local_hour(site: Site, moment: Moment) -> None:
    pages = _pages(site)
    for path, page in pages.items():
        assert "UTC" not in _text(page), path
    audit = _text(pages["/gestion/auditoria"])
    assert moment.shown in audit  # the stamps of the writes made at the pinned instant
    assert moment.shown_in_utc not in audit
    # Field names as words, and instants inside the changes in local time too.
    assert f"revocado el {moment.shown}" in audit
    for raw in ("revoked_at", "people_attended", "used_at", "entity_id", "expires_at"):
        assert raw not in audit, raw
    assert moment.shown in _text(pages["/gestion/avisos"])  # the citizen's report, received
    # Invitations last 7 days: their expiry is the city's date (the UTC date is a day earlier).
    expiry = f"{moment.local + dt.timedelta(days=7):%d/%m/%Y}"
    expiry_utc = f"{moment.utc + dt.timedelta(days=7):%d/%m/%Y}"
    open_page = _text(pages[f"/entidades/invitacion/{site.invitation_code[:6]}"])
    assert f"caduca el {expiry}" in open_page and expiry_utc not in open_page
    used_page = _text(pages[f"/entidades/invitacion/{site.used_code[:6]}"])
    assert f"ya se usó el {moment.local:%d/%m/%Y a las %H:%M}" in used_page
    assert f"caduca el {expiry}" in _text(pages["/gestion/entidades"])


def test_messages_about_tokens_give_the_local_time(
    db_url: str, tiny_layers: Layers, moment: Moment
) -> None:
    later = (moment.utc + dt.timedelta(minutes=1)).replace(tzinfo=None)  # naive UTC, as stored
    with Store.open(db_url, clock=FixedClock(moment.utc)) as store:
        store.load(tiny_layers)
        issued = issue_token(store, role="planner", expires_at=moment.utc)
        with pytest.raises(AuthenticationError) as expired:
            authenticate(store, issued.secret, now=later, timezone=TIMEZONE)
        assert str(expired.value) == f"Este token caducó el {moment.local:%d/%m/%Y a las %H:%M}."
        with pytest.raises(AuthenticationError) as without_zone:
            authenticate(store, issued.secret, now=later)
        assert str(without_zone.value) == "Este token caducó."  # no UTC time for a person
        invitation = issue_invitation(store, entity_id="ent-1", actor="test")
        redeem_invitation(store, invitation.code)
        with pytest.raises(AuthenticationError) as used:
            check_invitation(store, invitation.code, now=later, timezone=TIMEZONE)
        assert f"ya se usó el {moment.local:%d/%m/%Y a las %H:%M}." in str(used.value)


def test_the_cli_says_until_when_an_invitation_lasts_in_local_time(
    db_url: str, tiny_layers: Layers, moment: Moment
) -> None:
    with Store.open(db_url) as store:
        store.load(tiny_layers)
    env = {"CARDIOMAPA_DATABASE_URL": db_url, "CARDIOMAPA_CLOCK_START": moment.local.isoformat()}
    runner = CliRunner()
    result = runner.invoke(cli, ["entity", "invite", "ent-1"], env=env)
    assert result.exit_code == 0, result.output
    said = " ".join(result.stderr.split())
    # The clock ticks from the pinned instant: the expiry is a week later, the same minute.
    expiry = moment.local + dt.timedelta(days=7)
    assert f"válida hasta el {expiry:%d/%m/%Y %H:%M}" in said, said
    assert "UTC" not in said
    listed = runner.invoke(cli, ["token", "list"], env=env)
    assert listed.exit_code == 0 and "UTC" not in listed.output


def test_audit_changes_read_as_words_and_local_times() -> None:
    """Field names, codes and instants of an audit entry as the desk shows them."""
    rows = audit_changes(
        {"status": "active", "access": "yes", "verification": "pending"},
        {"status": "out_of_service", "access": "private", "verification": "verified",
         "revoked_at": "2026-07-14T22:30:00", "people_attended": 2},
        timezone=TIMEZONE,
    )  # fmt: skip
    shown = {row["label"]: (row["before"], row["after"]) for row in rows}
    assert shown == {
        "estado": ("en servicio", "fuera de servicio"),
        "acceso": ("uso público", "privado"),
        "verificación": ("pendiente", "verificado"),
        "revocado el": ("—", "15/07/2026 00:30"),
        "personas atendidas": ("—", "2"),
    }
