"""One definition of "usable at an instant": holidays, maintenance, reports — the same answer
from the nearest lookup, the citizens' map data, coverage and the lives model."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import geopandas as gpd
import pytest
from fastapi.testclient import TestClient
from shapely.geometry import Point
from typer.testing import CliRunner

from api.app import create_app
from geo.calendar import HolidayCalendar, LocalHoliday
from geo.city import CityProfile, load_city_profile
from geo.cli import app
from geo.core.availability import (
    ReportFlag,
    available_at,
    device_availability,
    local_instant,
    maintenance_on,
    open_state,
    week_in_words,
    weekly_availability,
)
from geo.core.coverage import coverage, weekly_coverage
from geo.core.distance import StraightLine, to_metric
from geo.core.layers import Layers
from geo.core.nearest import DeviceFinder
from geo.core.outcomes import outcomes
from geo.errors import CityProfileError
from geo.io.store import Store
from geo.render.maps import citizen_data
from geo.services.inputs import outcome_parameters
from geo.settings import Settings
from tests.conftest import DATA_DIR

MADRID = "Europe/Madrid"
MONDAY_10 = dt.datetime(2026, 11, 23, 10, 0)
runner = CliRunner()


# --- the city's holiday calendar ------------------------------------------------------------


@pytest.mark.parametrize(
    ("day", "is_open"),
    [
        (dt.date(2027, 4, 23), False),  # Fiesta de Castilla y León (a Friday in 2027)
        (dt.date(2027, 3, 25), False),  # Jueves Santo (regional)
        (dt.date(2026, 12, 8), False),  # Inmaculada (national)
        (dt.date(2026, 12, 7), False),  # Monday after Constitution Day (a regional transfer)
        (dt.date(2026, 11, 2), False),  # Monday after All Saints (a regional transfer)
        (dt.date(2027, 4, 16), True),  # an ordinary Friday: no invented local day
        (dt.date(2027, 4, 22), True),  # the day before the regional holiday
    ],
)
def test_ph_follows_the_regional_calendar(city: CityProfile, day: dt.date, is_open: bool) -> None:
    at = dt.datetime.combine(day, dt.time(10))
    state, _ = open_state("Mo-Fr 09:00-14:00; PH off", at, timezone=MADRID, calendar=city.calendar)
    assert state is is_open


def test_a_local_day_in_the_profile_closes_ph_hours() -> None:
    calendar = HolidayCalendar(
        country="ES",
        subdivision="CL",
        local_days=(LocalHoliday(dt.date(2027, 4, 16), "Fiesta local", "BOP, prueba"),),
    )
    hours = "Mo-Fr 09:00-14:00; PH off"
    is_open, change = open_state(
        hours, dt.datetime(2027, 4, 16, 10), timezone=MADRID, calendar=calendar
    )
    assert not is_open
    assert change is not None and change.replace(tzinfo=None) == dt.datetime(2027, 4, 19, 9)


def test_the_next_change_crosses_holidays(city: CityProfile) -> None:
    # Friday 4 December 2026, 15:00: Monday 7 and Tuesday 8 are holidays in Castilla y León.
    _, change = open_state(
        "Mo-Fr 09:00-14:00; PH off",
        dt.datetime(2026, 12, 4, 15),
        timezone=MADRID,
        calendar=city.calendar,
    )
    assert change is not None
    assert change.replace(tzinfo=None) == dt.datetime(2026, 12, 9, 9, 0)
    # Hours that only PH rules open: open on the holiday, closed the day after.
    state, change = open_state(
        "Sa,PH 10:00-14:00", dt.datetime(2026, 12, 7, 11), timezone=MADRID, calendar=city.calendar
    )
    assert (
        state and change is not None and change.replace(tzinfo=None) == dt.datetime(2026, 12, 7, 14)
    )


@pytest.mark.parametrize(
    "hours",
    [
        "Mo-Fr 09:00-18:00; PH off",
        "Mo-Fr 07:30-22:00; Sa,Su 09:00-14:00; PH off",
        "Sa,PH 10:00-14:00",
        "Jun 15-Sep 10 11:00-20:30; PH off",
        "24/7; PH off",
        "Mo-Fr 22:00-02:00; PH off",
        "Mo-Su 00:00-24:00",
        "Mo-Su 02:00-02:30",
        "Mo-Fr 08:00-15:00",
    ],
)
def test_the_next_change_is_the_first_instant_the_state_differs(
    city: CityProfile, hours: str
) -> None:
    """The next change is found in growing windows of intervals (the library's own search
    takes seconds on rules that never change again: ``PH off`` on a holiday, ``Mo-Su
    00:00-24:00``). Checked against a plain scan of the state every 15 minutes (every change
    in these hours falls on a quarter hour) around the holidays of early December, Easter, both
    DST changes, New Year, and 8 and 64 days before the hour the clocks skip (where a window's
    end would fall in that hour if counted on the wall clock)."""
    from geo.core.availability import city_hours

    parsed = city_hours(hours, MADRID, city.calendar)
    starts = [
        *(dt.datetime(2026, 12, 4, 15) + dt.timedelta(hours=7 * k) for k in range(12)),
        dt.datetime(2026, 12, 31, 23, 59),
        dt.datetime(2027, 3, 25, 12),  # Jueves Santo
        dt.datetime(2027, 3, 28, 1, 30),  # spring forward at 02:00
        dt.datetime(2027, 3, 20, 2, 30),  # 8 days before it
        dt.datetime(2027, 1, 23, 2, 7),  # 64 days before it
        dt.datetime(2026, 10, 25, 2, 30),  # fall back: the first 02:30
        dt.datetime(2027, 9, 10, 20, 0),  # the seasonal hours' last evening
    ]
    quarter = dt.timedelta(minutes=15)
    for start in starts:
        instant = local_instant(start, MADRID)
        state = parsed.is_open(instant)
        if hours == "Mo-Su 02:00-02:30" and start.month == 10:
            continue  # the repeated 02:00-02:30 opens once (the library's intervals), not twice
        base = instant.astimezone(dt.UTC).replace(second=0, microsecond=0)
        first = base + dt.timedelta(minutes=(15 - base.minute % 15) or 15)
        expected = None
        for step in range(10 * 24 * 4):  # ten days of quarter hours, in elapsed time
            moment = (first + step * quarter).astimezone(parsed.zone)
            if parsed.is_open(moment) != state:
                expected = moment
                break
        found = parsed.next_change(instant)
        if expected is None:
            assert found is None or found > instant + dt.timedelta(days=10), (hours, start)
        else:
            assert found == expected, (hours, start, found, expected)


def test_hours_in_words_name_the_holidays(city: CityProfile) -> None:
    words = week_in_words(
        "Mo-Fr 08:00-15:00; PH off",
        week_of=dt.date(2026, 12, 9),
        timezone=MADRID,
        calendar=city.calendar,
    )
    assert words == (
        "lunes 7 (festivo): cerrado; martes 8 (festivo): cerrado; miércoles a viernes "
        "08:00–15:00; sábado y domingo cerrado"
    )
    # A holiday that does not change the day's hours is not mentioned.
    assert week_in_words(
        "Mo-Fr 08:00-15:00", week_of=dt.date(2026, 12, 9), timezone=MADRID, calendar=city.calendar
    ) == ("lunes a viernes 08:00–15:00; sábado y domingo cerrado")
    # The week of the regional day in 2027.
    assert "viernes 23 (festivo): cerrado" in week_in_words(
        "Mo-Fr 08:00-15:00; PH off",
        week_of=dt.date(2027, 4, 19),
        timezone=MADRID,
        calendar=city.calendar,
    )


def test_the_weekly_view_marks_holiday_hours(city: CityProfile, tiny_layers: Layers) -> None:
    availability = device_availability(
        tiny_layers["defibrillators"], timezone=MADRID, calendar=city.calendar
    )
    week = weekly_availability(availability, week_of=dt.date(2026, 12, 9))
    assert week.holidays.reshape(7, 24)[:, 0].tolist() == [True, True] + [False] * 5


def test_the_palencia_profile_has_the_region_and_no_invented_local_days(
    city: CityProfile,
) -> None:
    assert city.calendar.subdivision == "CL"
    assert city.calendar.local_days == ()
    assert len(city.calendar.days(2026)) == 12


def test_profile_holidays_are_checked(tmp_path: Path) -> None:
    raw = json.loads((DATA_DIR / "city.json").read_text(encoding="utf-8"))
    raw["holidays"] = {"subdivision": "CL", "local": [{"date": "2027-09-02", "name": "X"}]}
    path = tmp_path / "city.json"
    path.write_text(json.dumps(raw), encoding="utf-8")
    with pytest.raises(CityProfileError, match="source"):
        load_city_profile(path)
    raw["holidays"] = {"subdivision": "XX"}
    path.write_text(json.dumps(raw), encoding="utf-8")
    with pytest.raises(CityProfileError, match="subdivisión 'XX' desconocida"):
        load_city_profile(path)
    raw["holidays"] = {
        "subdivision": "CL",
        "local": [{"date": "2027-09-02", "name": "San Antolín", "source": "BOP de prueba"}],
    }
    path.write_text(json.dumps(raw), encoding="utf-8")
    calendar = load_city_profile(path).calendar
    assert calendar.name(dt.date(2027, 9, 2)) == "San Antolín"


# --- maintenance ----------------------------------------------------------------------------


def test_maintenance_states() -> None:
    day = dt.date(2026, 11, 23)
    assert maintenance_on({}, day).state == "unknown"
    assert maintenance_on({"pads_expiry": day}, day).state == "ok"  # the last good day
    late = maintenance_on({"pads_expiry": dt.date(2026, 11, 22)}, day)
    assert (late.state, late.text) == ("overdue", "parches caducados el 22/11/2026")
    both = maintenance_on(
        {"pads_expiry": dt.date(2026, 11, 1), "battery_expiry": dt.date(2026, 10, 1)}, day
    )
    assert both.expired_on == dt.date(2026, 10, 1)
    assert both.text == "batería caducada el 01/10/2026 y parches caducados el 01/11/2026"


def _one_device_city(tiny_layers: Layers, **changes: object) -> gpd.GeoDataFrame:
    """The tiny fixture with only dea-1 (24/7, customers), changed."""
    devices = tiny_layers["defibrillators"]
    frame = devices[devices["id"] == "dea-1"].copy()
    for name, value in changes.items():
        frame[name] = [value]
    return frame


def test_a_24_7_device_with_pads_expired_yesterday_does_not_count(
    tiny_layers: Layers, city: CityProfile
) -> None:
    devices = _one_device_city(tiny_layers, pads_expiry=dt.date(2026, 11, 22))
    metric = {name: to_metric(tiny_layers[name], city) for name in ("population", "ceas")}
    args = dict(radius_m=2000, at=MONDAY_10, zones=metric["ceas"], model=StraightLine())
    strict = coverage(metric["population"], to_metric(devices, city), city, **args)
    lenient = coverage(
        metric["population"],
        to_metric(devices, city),
        city,
        count_overdue=True,
        **args,
    )
    assert strict.residents_covered == 0 and strict.devices_available == 0
    assert lenient.residents_covered > 0 and lenient.devices_available == 1
    # Both say how many residents only the overdue device protects.
    assert strict.residents_only_overdue == lenient.residents_covered
    assert lenient.residents_only_overdue == lenient.residents_covered
    assert any("dea-1: mantenimiento vencido" in note for note in strict.notes)
    # The day before, it was in date: it counts.
    earlier = coverage(
        metric["population"],
        to_metric(devices, city),
        city,
        **{**args, "at": dt.datetime(2026, 11, 22, 10)},
    )
    assert earlier.residents_covered == lenient.residents_covered


def test_the_weekly_count_drops_a_device_the_day_after_its_pads_expire(
    tiny_layers: Layers, city: CityProfile
) -> None:
    devices = _one_device_city(tiny_layers, pads_expiry=dt.date(2026, 11, 25))  # a Wednesday
    metric = {name: to_metric(tiny_layers[name], city) for name in ("population", "ceas")}
    week = weekly_coverage(
        metric["population"],
        to_metric(devices, city),
        city,
        week_of=MONDAY_10.date(),
        radius_m=2000,
        zones=metric["ceas"],
    )
    counted = week.slices["devices_available"].to_numpy().reshape(7, 24)
    assert counted[:3].min() == 1 and counted[3:].max() == 0  # Monday–Wednesday, then none
    assert week.residents_only_overdue > 0
    assert week.residents_covered_always > 0  # in date on the reference day (Monday)


def test_the_cli_counts_overdue_devices_only_when_asked(tiny_dir: Path) -> None:
    path = tiny_dir / "defibrillators.geojson"
    document = json.loads(path.read_text(encoding="utf-8"))
    for feature in document["features"]:
        feature["properties"]["pads_expiry"] = "2026-11-22"
    path.write_text(json.dumps(document), encoding="utf-8")
    base = ["coverage", "--data-dir", str(tiny_dir), "--at", "2026-11-23T11:00", "--radius-m"]
    strict = runner.invoke(app, [*base, "2000", "--format", "json"])
    lenient = runner.invoke(app, [*base, "2000", "--format", "json", "--count-overdue"])
    assert strict.exit_code == 0 and lenient.exit_code == 0, strict.stderr + lenient.stderr
    strict_doc, lenient_doc = json.loads(strict.stdout), json.loads(lenient.stdout)
    assert strict_doc["residents_covered"] == 0
    assert lenient_doc["residents_covered"] > 0
    assert strict_doc["residents_only_overdue"] == lenient_doc["residents_covered"]
    assert strict_doc["count_overdue"] is False and lenient_doc["count_overdue"] is True
    assert any("mantenimiento vencido" in warning for warning in strict_doc["warnings"])
    table = runner.invoke(app, [*base, "2000"])
    assert "Protegidos solo por desfibriladores con mantenimiento vencido" in table.stdout


# --- one usable set for every consumer --------------------------------------------------------


def _mixed_devices(city: CityProfile) -> gpd.GeoDataFrame:
    """Seven devices 1 km apart, each with one reason to be (un)usable on Tuesday 8 December
    2026 at 11:00 (a national holiday), each with residents on top of it."""
    base = {
        "name": "DEA", "location_text": None, "address": None, "access": "yes",
        "opening_hours": "24/7", "indoor": False, "level": None, "operator_entity_id": None,
        "phone": None, "status": "active", "verification": "verified",
        "installed_on": dt.date(2024, 1, 1), "removed_on": None,
        "check_date": dt.date(2026, 11, 1), "battery_expiry": dt.date(2028, 1, 1),
        "pads_expiry": dt.date(2027, 6, 1), "is_mobile": False, "source": "synthetic",
        "source_id": None, "tags": {},
    }  # fmt: skip
    rows = [
        {"id": "ok"},
        {"id": "overdue", "pads_expiry": dt.date(2026, 12, 7)},
        {"id": "reported"},
        {"id": "holiday", "opening_hours": "Mo-Fr 09:00-14:00; PH off"},
        {"id": "out", "status": "out_of_service"},
        {"id": "pending", "verification": "pending"},
        {"id": "private", "access": "private"},
    ]
    records = [{**base, **row} for row in rows]
    points = [Point(city.centre_lon + 0.012 * i - 0.036, city.centre_lat) for i in range(7)]
    return gpd.GeoDataFrame(records, geometry=points, crs="EPSG:4326")


def test_nearest_map_coverage_and_outcomes_agree_on_the_usable_set(city: CityProfile) -> None:
    devices = _mixed_devices(city)
    at = dt.datetime(2026, 12, 8, 11, 0)
    reports = {
        "reported": ReportFlag("reported", "missing", dt.datetime(2026, 12, 8, 9, tzinfo=dt.UTC))
    }
    expected = {"ok"}

    availability = device_availability(
        devices, timezone=city.timezone, calendar=city.calendar, reports=reports
    )
    core = set(devices["id"][available_at(availability, at)])

    finder = DeviceFinder(devices, city, reports=reports)
    answered = finder.nearest(city.centre_lon, city.centre_lat, at=at, limit=7)
    by_id = {d.device_id: d for d in answered}
    nearest = {d.device_id for d in answered if d.available}

    data = citizen_data(finder, at=at)
    column = {name: i for i, name in enumerate(data["columns"])}
    on_map = {
        row[column["id"]] for row in data["rows"] if data["states"][row[column["state"]]] == "open"
    }

    population = gpd.GeoDataFrame(
        {
            "id": [f"u-{i}" for i in range(7)],
            "residents": [100] * 7,
            "residents_65_plus": [20] * 7,
            "section_code": [None] * 7,
            "source": ["synthetic"] * 7,
        },
        geometry=list(devices.geometry),
        crs="EPSG:4326",
    )
    metric_population, metric_devices = to_metric(population, city), to_metric(devices, city)
    covered = coverage(metric_population, metric_devices, city, radius_m=50, at=at, reports=reports)
    by_coverage = set(covered.units.loc[covered.units["covered"], "nearest_device_id"])

    parameters = outcome_parameters(Settings())
    lives = outcomes(
        metric_population, metric_devices, city, parameters, mode="instant", at=at,
        reports=reports, draws=10,
    )  # fmt: skip
    saving = set(lives.devices.loc[lives.devices["lives_saved"] > 0, "device_id"])

    assert core == nearest == on_map == by_coverage == saving == expected
    assert covered.devices_available == 1
    # Why the others are not usable, in machine fields.
    assert by_id["overdue"].state == "maintenance_overdue"
    assert by_id["overdue"].maintenance == "overdue"
    assert by_id["ok"].maintenance == "ok"
    assert by_id["reported"].state == "reported"
    assert by_id["reported"].state_text == "Avisado como desaparecido hace 1 h — sin confirmar"
    assert by_id["holiday"].state == "closed"
    assert by_id["out"].state == "out_of_service"
    assert by_id["private"].state == "restricted"
    assert "pending" not in by_id
    # The usable device comes first; the others follow, flagged.
    assert answered[0].device_id == "ok"


# --- the API, on both databases -------------------------------------------------------------


@pytest.fixture
def overdue_url(db_url: str, tiny_layers: Layers) -> str:
    """The tiny layers with dea-1 (24/7) whose pads expired on 22 November 2026."""
    frames = dict(tiny_layers.frames)
    devices = frames["defibrillators"].copy()
    devices.loc[devices["id"] == "dea-1", "pads_expiry"] = dt.date(2026, 11, 22)
    frames["defibrillators"] = devices
    with Store.open(db_url) as store:
        store.load(Layers(frames))
    return db_url


def test_the_api_marks_overdue_maintenance(overdue_url: str) -> None:
    where = {"lat": 42.01, "lon": -4.535, "limit": 3}
    with TestClient(create_app(Settings(database_url=overdue_url))) as client:
        monday = client.get("/api/nearest", params={**where, "at": "2026-11-23T10:00"}).json()
        sunday = client.get("/api/nearest", params={**where, "at": "2026-11-22T10:00"}).json()
        listed = client.get("/api/defibrillators", params={"open_at": "2026-11-23T10:00"}).json()
    results = {r["id"]: r for r in monday["results"]}
    assert results["dea-1"]["maintenance"] == "overdue"
    assert results["dea-1"]["available"] is False
    assert results["dea-1"]["state"] == "maintenance_overdue"
    assert results["dea-1"]["state_text"] == "Abierto, pero con parches caducados el 22/11/2026"
    assert monday["results"][0]["id"] != "dea-1"  # a usable device comes first
    assert {r["maintenance"] for r in monday["results"] if r["id"] != "dea-1"} == {"ok"}
    # On the last good day it is usable.
    first = sunday["results"][0]
    assert (first["id"], first["available"], first["maintenance"]) == ("dea-1", True, "ok")
    assert "dea-1" not in {feature["id"] for feature in listed["features"]}


def test_analyses_from_the_database_leave_out_reported_devices(
    db_url: str, tiny_layers: Layers
) -> None:
    with Store.open(db_url) as store:
        store.load(tiny_layers)
    env = {"CARDIOMAPA_DATABASE_URL": db_url}
    args = ["coverage", "--at", "2026-11-23T11:00", "--radius-m", "2000", "--format", "json"]
    before = json.loads(runner.invoke(app, args, env=env).stdout)
    with Store.open(db_url) as store:
        store.insert_report(
            {"device_id": "dea-2", "kind": "missing", "message": "No está."},
            actor="ciudadanía (aviso público)",
        )
    after = json.loads(runner.invoke(app, args, env=env).stdout)
    assert after["devices_available"] == before["devices_available"] - 1
    assert any(w.startswith("dea-2: avisado por la ciudadanía") for w in after["warnings"])
    # A report of another kind (wrong hours) changes nothing.
    with Store.open(db_url) as store:
        store.insert_report(
            {"device_id": "dea-1", "kind": "wrong_hours", "message": "Cierra antes."},
            actor="ciudadanía (aviso público)",
        )
    assert (
        json.loads(runner.invoke(app, args, env=env).stdout)["devices_available"]
        == (after["devices_available"])
    )
