"""The city's clock, end to end: every "now" and "today" comes from one injectable clock.

The app in process runs on ``Settings(clock_start=...)`` and the CLI on
``CARDIOMAPA_CLOCK_START``, pinned to a holiday week, the weeks the clocks change and New Year,
on SpatiaLite and PostGIS. Holiday-week tests assert machine fields (state, available,
next_change), not the words of holiday days. A last test keeps wall-clock reads out of the code.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient
from shapely.geometry import Point
from typer.testing import CliRunner
from weeks import (
    BEFORE_FALL_BACK,
    BEFORE_SPRING_FORWARD,
    HOLIDAY,
    NEW_YEAR,
    ORDINARY,
    TIMEZONE,
    clock_at,
    clock_env,
)

from api.app import create_app
from geo.cli import app as cli_app
from geo.clock import FixedClock, ShiftedClock, local_today
from geo.core.layers import Layers
from geo.errors import AuthenticationError
from geo.io.store import Store, record_from_row
from geo.services.tokens import check_invitation, issue_invitation, issue_token
from geo.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
MADRID = ZoneInfo(TIMEZONE)
#: A device of our own (not the tiny fixture's): weekdays only, closed on public holidays, with
#: its upkeep in date for years, so only its hours decide its state.
WEEKDAYS = "Mo-Fr 09:00-14:00; PH off"
DEVICE = "dea-laborables"
LON, LAT = -4.5300, 42.0110


@contextmanager
def app_at(
    db_url: str, tiny_layers: Layers, start: dt.datetime
) -> Iterator[tuple[TestClient, Store]]:
    """The app on the tiny city plus :data:`DEVICE`, its clock started at ``start`` (local)."""
    with Store.open(db_url, clock=clock_at(start)) as store:
        store.load(tiny_layers)
        record = record_from_row(tiny_layers["defibrillators"], 1) | {
            "id": DEVICE, "name": "DEA Oficina (laborables)", "opening_hours": WEEKDAYS,
            "operator_entity_id": "ent-1", "pads_expiry": dt.date(2031, 1, 1),
            "battery_expiry": dt.date(2031, 1, 1), "check_date": dt.date(2026, 10, 1),
        }  # fmt: skip
        record["geometry"] = Point(LON, LAT)
        store.insert_device(record, actor="test")
    app = create_app(Settings(database_url=db_url, tile_url="", clock_start=start))
    with TestClient(app) as client, Store.open(db_url, clock=app.state.clock) as store:
        yield client, store


def map_row(client: TestClient, device_id: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The citizens' map document and one device's row in it (state named, not indexed)."""
    document = client.get("/api/map/devices").json()
    rows = [dict(zip(document["columns"], row, strict=True)) for row in document["rows"]]
    (row,) = [r for r in rows if r["id"] == device_id]
    return document, row | {"state": document["states"][row["state"]]}


def nearest_device(client: TestClient, device_id: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """``/api/nearest`` at the device's door, without ``at`` (the app's "now")."""
    answer = client.get("/api/nearest", params={"lat": LAT, "lon": LON}).json()
    (device,) = [d for d in answer["results"] if d["id"] == device_id]
    return answer, device


def minute_of(iso: str) -> str:
    """``2026-12-08T10:00:12.3+01:00`` → ``2026-12-08T10:00+01:00`` (the clock keeps ticking)."""
    at = dt.datetime.fromisoformat(iso)
    return at.strftime("%Y-%m-%dT%H:%M") + at.strftime("%z")[:3] + ":" + at.strftime("%z")[3:]


# --- an ordinary week and a holiday week ------------------------------------------------------


@pytest.mark.parametrize(
    ("start", "state", "available", "change"),
    [
        # Tuesday 24 November 2026, 10:00: an ordinary Tuesday, open until 14:00.
        (ORDINARY + dt.timedelta(days=1), "open", True, "2026-11-24T14:00:00+01:00"),
        # Tuesday 8 December 2026, 10:00 (Inmaculada, national): closed until Wednesday.
        (HOLIDAY, "closed", False, "2026-12-09T09:00:00+01:00"),
    ],
    ids=["ordinary-tuesday", "holiday-tuesday"],
)
def test_now_is_the_apps_clock_and_a_national_holiday_closes_weekday_hours(
    db_url: str,
    tiny_layers: Layers,
    start: dt.datetime,
    state: str,
    available: bool,
    change: str,
) -> None:
    local = start.replace(tzinfo=MADRID)
    with app_at(db_url, tiny_layers, start) as (client, _):
        document, row = map_row(client, DEVICE)
        assert minute_of(document["at"]) == minute_of(local.isoformat())
        assert row["state"] == state and row["next_change"] == change
        answer, device = nearest_device(client, DEVICE)
        assert minute_of(answer["at"]) == minute_of(local.isoformat())
        assert device["state"] == state and device["available"] is available
        assert (device["closes_at"] if available else device["opens_at"]) == change


def test_this_weeks_hours_are_the_clocks_week(db_url: str, tiny_layers: Layers) -> None:
    """Without ``week_of``, the hours checker describes the week the app's clock is in."""
    with app_at(db_url, tiny_layers, ORDINARY) as (client, _):
        answer = client.get("/api/opening-hours", params={"text": WEEKDAYS}).json()
    assert answer["words"] == "lunes a viernes 09:00–14:00; sábado y domingo cerrado"


# --- the weeks the clocks change --------------------------------------------------------------


@pytest.mark.parametrize(
    ("start", "offset", "monday"),
    [
        # Saturday 27 March 2027, 20:00 CET; the clocks go forward on Sunday at 02:00.
        (BEFORE_SPRING_FORWARD, "+01:00", "2027-03-29T09:00:00+02:00"),
        # Saturday 24 October 2026, 20:00 CEST; the clocks go back on Sunday at 03:00.
        (BEFORE_FALL_BACK, "+02:00", "2026-10-26T09:00:00+01:00"),
    ],
    ids=["spring-forward", "fall-back"],
)
def test_instants_keep_local_wall_time_across_a_change_of_time(
    db_url: str, tiny_layers: Layers, start: dt.datetime, offset: str, monday: str
) -> None:
    """On Saturday evening a weekday device is closed until Monday morning, which is in the
    other offset: it opens at Monday 09:00 local, not an hour off."""
    with app_at(db_url, tiny_layers, start) as (client, _):
        document, row = map_row(client, DEVICE)
        assert document["at"].endswith(offset)
        assert minute_of(document["at"]) == minute_of(start.replace(tzinfo=MADRID).isoformat())
        assert row["state"] == "closed" and row["next_change"] == monday
        # The map asks again before Monday morning, at a time written in local time.
        refresh = dt.datetime.fromisoformat(document["refresh_at"])
        assert refresh.utcoffset() == refresh.astimezone(MADRID).utcoffset()
        assert start.replace(tzinfo=MADRID) < refresh <= dt.datetime.fromisoformat(monday)
        answer, device = nearest_device(client, DEVICE)
        assert answer["at"].endswith(offset)
        assert device["opens_at"] == monday and device["available"] is False


# --- New Year ---------------------------------------------------------------------------------


def test_new_year_is_the_citys_date_not_utcs(db_url: str, tiny_layers: Layers) -> None:
    """At 00:30 on 1 January 2027 in Palencia it is still 2026 in UTC: "today" is the city's
    (a check is dated 2027-01-01), and the holiday and the weekend keep a weekday device closed
    until Monday 4 January."""
    assert NEW_YEAR.replace(tzinfo=MADRID).astimezone(dt.UTC).year == 2026
    with app_at(db_url, tiny_layers, NEW_YEAR) as (client, store):
        document, row = map_row(client, DEVICE)
        assert minute_of(document["at"]) == "2027-01-01T00:30+01:00"
        assert row["state"] == "closed" and row["next_change"] == "2027-01-04T09:00:00+01:00"
        # The entity's portal: «Revisado hoy» writes the city's date.
        invitation = issue_invitation(store, entity_id="ent-1", actor="test")
        origin = {"Origin": "http://testserver"}
        signed = client.post(
            f"/entidades/invitacion/{invitation.code}", headers=origin, follow_redirects=False
        )
        assert signed.status_code == 303, signed.text
        page = client.get("/entidades").text
        csrf = re.search(r'name="csrf" value="([0-9a-f]+)"', page)
        assert csrf is not None
        checked = client.post(
            f"/entidades/desfibriladores/{DEVICE}/revisado",
            data={"csrf": csrf[1]},
            headers=origin,
            follow_redirects=False,
        )
        assert checked.status_code == 303, checked.text
        assert store.device(DEVICE)["check_date"] == dt.date(2027, 1, 1)
        # The maintenance list measures from the same day.
        token = issue_token(store, role="planner").secret
        upkeep = client.get("/api/maintenance", headers={"Authorization": f"Bearer {token}"})
        assert upkeep.status_code == 200 and upkeep.json()["today"] == "2027-01-01"


# --- the store, the tokens and the CLI on the same clock --------------------------------------


def test_the_store_stamps_and_expires_by_its_clock(db_url: str, tiny_layers: Layers) -> None:
    issued_at = dt.datetime(2027, 3, 28, 1, 59, tzinfo=MADRID)  # a minute before the change
    with Store.open(db_url, clock=FixedClock(issued_at)) as store:
        store.load(tiny_layers)
        invitation = issue_invitation(store, entity_id="ent-1", actor="test", days=7)
        record = invitation.record
        assert record.created_at == dt.datetime(2027, 3, 28, 0, 59)  # naive UTC, as stored
        assert record.expires_at == dt.datetime(2027, 4, 4, 0, 59)
        entries, _ = store.audit_entries(record_type="invitation", record_id=str(record.id))
        assert [entry["at"] for entry in entries] == [dt.datetime(2027, 3, 28, 0, 59)]
    # Seven days are 168 hours, one of them skipped by the change of time (exact in UTC).
    later = issued_at.astimezone(dt.UTC) + dt.timedelta(days=7, minutes=1)
    with (
        Store.open(db_url, clock=FixedClock(later)) as store,
        pytest.raises(AuthenticationError, match="caducó el 04/04/2027 a las 02:59"),
    ):  # 00:59 UTC is 02:59 in Palencia, summer time since the change
        check_invitation(store, invitation.code, timezone="Europe/Madrid")
    with Store.open(db_url, clock=FixedClock(later - dt.timedelta(minutes=2))) as store:
        assert check_invitation(store, invitation.code).id == record.id


def test_the_cli_runs_on_cardiomapa_clock_start(db_url: str, tiny_layers: Layers) -> None:
    with Store.open(db_url) as store:
        store.load(tiny_layers)
    env = {"CARDIOMAPA_DATABASE_URL": db_url, **clock_env(NEW_YEAR)}
    result = CliRunner().invoke(cli_app, ["entity", "invite", "ent-1", "--days", "3"], env=env)
    assert result.exit_code == 0, result.stderr
    with Store.open(db_url) as store:
        (record,) = store.invitations()
    started = NEW_YEAR.replace(tzinfo=MADRID).astimezone(dt.UTC).replace(tzinfo=None)
    assert dt.timedelta(0) <= record.created_at - started < dt.timedelta(minutes=5)
    assert abs(record.expires_at - record.created_at - dt.timedelta(days=3)) < dt.timedelta(
        seconds=5
    )  # two readings of a clock that ticks


def test_settings_clock_starts_at_local_time_and_ticks() -> None:
    clock = Settings(clock_start=HOLIDAY).clock(Settings().load_city())
    assert isinstance(clock, ShiftedClock)
    assert local_today(clock, TIMEZONE) == dt.date(2026, 12, 8)
    first = clock.now()
    assert dt.timedelta(0) <= first - HOLIDAY.replace(tzinfo=MADRID) < dt.timedelta(minutes=5)
    assert clock.now() >= first


# --- nothing else reads the wall clock --------------------------------------------------------

#: ``datetime.now()``, ``date.today()``, ``time.time()`` and a bare ``.today()`` (the city's
#: today without a clock).
WALL_CLOCK = re.compile(r"datetime\.now\(|date\.today\(|\btime\.time\(|\.today\(\)")
#: Reads still to be switched to a clock (file, text): none.
PENDING: set[tuple[str, str]] = set()


def test_only_the_clock_reads_the_wall_clock() -> None:
    found = []
    for path in sorted([*ROOT.glob("geo/**/*.py"), *ROOT.glob("api/**/*.py")]):
        name = path.relative_to(ROOT).as_posix()
        if name == "geo/clock.py":
            continue
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if WALL_CLOCK.search(line) and not any(
                name == file and text in line for file, text in PENDING
            ):
                found.append(f"{name}:{number}: {line.strip()}")
    assert not found, "take the clock (a Clock, or an explicit now/today) instead:\n" + "\n".join(
        found
    )
