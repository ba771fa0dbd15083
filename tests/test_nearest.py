"""The citizen's nearest-device lookup, checked by hand and against a brute-force scan."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from shapely.geometry import Point

from geo.city import CityProfile
from geo.core.availability import PUBLIC_ACCESS, ReportFlag, device_availability, open_state
from geo.core.distance import NetworkDistance, StraightLine, to_metric
from geo.core.layers import Layers
from geo.core.nearest import DeviceFinder, walking_directions_url
from geo.core.network import nearest_target
from geo.io.files import read_layers
from geo.io.osm import load_network
from tests.conftest import DATA_DIR

SUNDAY_NIGHT = dt.datetime(2026, 11, 22, 23, 0)
MONDAY_MORNING = dt.datetime(2026, 11, 23, 10, 0)


@pytest.fixture(scope="module")
def sample(city: CityProfile) -> Layers:
    return read_layers(DATA_DIR, city)


def test_tiny_city_by_hand(tiny_layers: Layers, city: CityProfile) -> None:
    finder = DeviceFinder(tiny_layers["defibrillators"], city)
    found = finder.nearest(-4.5288, 42.0096, at=SUNDAY_NIGHT, limit=3)
    assert [(d.device_id, d.state) for d in found] == [
        ("dea-2", "open"), ("dea-1", "open"), ("dea-3", "closed"),
    ]  # fmt: skip
    assert found[0].distance_m == 0 and found[0].always_open
    opens = found[2].next_change
    assert opens is not None and opens.utcoffset() == dt.timedelta(hours=1)
    assert opens.replace(tzinfo=None) == dt.datetime(2026, 11, 23, 9, 30)
    assert finder.nearest(-4.5288, 42.0096, at=SUNDAY_NIGHT, limit=0) == []


def test_unlisted_devices_are_never_answered(tiny_layers: Layers, city: CityProfile) -> None:
    devices = tiny_layers["defibrillators"].copy()
    devices.loc[devices["id"] == "dea-2", "verification"] = "pending"
    devices.loc[devices["id"] == "dea-1", "is_mobile"] = True
    devices.loc[devices["id"] == "dea-3", "status"] = "removed"
    assert DeviceFinder(devices, city).nearest(-4.5288, 42.0096, at=MONDAY_MORNING) == []


def test_one_device_is_found_by_id_and_its_state_is_the_one_states_gives(
    tiny_layers: Layers, city: CityProfile
) -> None:
    tiny = tiny_layers["defibrillators"]
    plaza = tiny[tiny["id"] == "dea-2"]  # public, 24/7, in date
    devices = gpd.GeoDataFrame(
        pd.concat([tiny, *[plaza] * 6], ignore_index=True), geometry="geometry", crs=tiny.crs
    )
    ids = [*tiny["id"], "pending", "removed", "mobile", "stopped", "expired", "reported"]
    devices["id"] = ids
    devices.loc[devices["id"] == "pending", "verification"] = "pending"
    devices.loc[devices["id"] == "removed", "status"] = "removed"
    devices.loc[devices["id"] == "mobile", "is_mobile"] = True
    devices.loc[devices["id"] == "stopped", "status"] = "out_of_service"
    devices.loc[devices["id"] == "expired", "pads_expiry"] = dt.date(2026, 11, 1)
    when = dt.datetime(2026, 11, 22, 8, tzinfo=dt.UTC)
    finder = DeviceFinder(
        devices, city, reports={"reported": ReportFlag("reported", "missing", when)}
    )
    assert [finder.index(i) for i in ("pending", "removed", "mobile", "no-such-device")] == [
        None
    ] * 4
    listed = [*tiny["id"], "stopped", "expired", "reported"]
    for at in (SUNDAY_NIGHT, MONDAY_MORNING):
        states = finder.states(at)
        for device_id in listed:
            index = finder.index(device_id)
            assert index is not None and finder.fields[index]["id"] == device_id
            assert finder.state(index, at) == states[index]
    by_id = {i: finder.state(finder.index(i) or 0, MONDAY_MORNING) for i in listed}
    assert [by_id[i].state for i in ("dea-3", "stopped", "expired", "reported")] == [
        "open", "out_of_service", "maintenance_overdue", "reported",
    ]  # fmt: skip
    with pytest.raises(IndexError):
        finder.state(len(finder), MONDAY_MORNING)


def test_walking_directions_go_to_the_device_from_a_point_or_from_anywhere() -> None:
    osm = "https://www.openstreetmap.org/directions?engine=fossgis_osrm_foot&route="
    assert walking_directions_url(-4.5288, 42.0096, from_lon=-4.5, from_lat=42.0) == (
        osm + "42.000000%2C-4.500000%3B42.009600%2C-4.528800"
    )
    assert walking_directions_url(-4.5288, 42.0096) == osm + "%3B42.009600%2C-4.528800"


def test_a_device_out_of_service_is_answered_as_such(
    tiny_layers: Layers, city: CityProfile
) -> None:
    devices = tiny_layers["defibrillators"].copy()
    devices.loc[devices["id"] != "dea-3", "verification"] = "pending"
    devices.loc[devices["id"] == "dea-3", "status"] = "out_of_service"
    (found,) = DeviceFinder(devices, city).nearest(-4.5288, 42.0096, at=MONDAY_MORNING)
    assert (found.device_id, found.state, found.available) == ("dea-3", "out_of_service", False)
    assert found.state_text == "Fuera de servicio"


def test_unknown_hours_and_restricted_access_are_flagged_after_open_ones(
    tiny_layers: Layers, city: CityProfile
) -> None:
    devices = tiny_layers["defibrillators"].copy()
    devices.loc[devices["id"] == "dea-2", "opening_hours"] = None
    devices.loc[devices["id"] == "dea-1", "access"] = "private"
    finder = DeviceFinder(devices, city)
    found = finder.nearest(-4.5288, 42.0096, at=MONDAY_MORNING, limit=2)
    # dea-3 is the only usable one; the nearer ones follow, flagged, nearest first.
    assert [(d.device_id, d.state, d.available) for d in found] == [
        ("dea-3", "open", True), ("dea-2", "unknown_hours", False),
        ("dea-1", "restricted", False),
    ]  # fmt: skip


def _brute_force(
    devices: Layers, city: CityProfile, lon: float, lat: float, at: dt.datetime
) -> tuple[str, float] | None:
    frame = devices["defibrillators"]
    listed = (
        (frame["verification"] == "verified")
        & (frame["status"] == "active")
        & ~frame["is_mobile"].astype(bool)
    )
    best: tuple[str, float] | None = None
    metric = to_metric(frame, city)
    point = gpd.GeoSeries([Point(lon, lat)], crs="EPSG:4326").to_crs(city.metric_crs).iloc[0]
    for row, geom in zip(frame[listed].itertuples(), metric.geometry[listed], strict=True):
        if row.access not in PUBLIC_ACCESS or row.opening_hours is None:
            continue
        if not open_state(row.opening_hours, at, timezone=city.timezone, calendar=city.calendar)[0]:
            continue
        expiries = [d for d in (row.pads_expiry, row.battery_expiry) if isinstance(d, dt.date)]
        if any(day < at.date() for day in expiries):  # maintenance overdue: not usable
            continue
        distance = geom.distance(point) * StraightLine().detour_factor
        if best is None or distance < best[1]:
            best = (row.id, distance)
    return best


@settings(max_examples=60, deadline=None, derandomize=True)
@given(
    dx=st.floats(-0.03, 0.03),
    dy=st.floats(-0.02, 0.02),
    hour=st.integers(0, 167),
)
def test_the_first_answer_is_the_nearest_available_device_by_brute_force(
    sample: Layers, city: CityProfile, dx: float, dy: float, hour: int
) -> None:
    finder = DeviceFinder(sample["defibrillators"], city)
    lon, lat = city.centre_lon + dx, city.centre_lat + dy
    at = dt.datetime(2026, 11, 23) + dt.timedelta(hours=hour, minutes=17)
    found = finder.nearest(lon, lat, at=at, limit=1)
    expected = _brute_force(sample, city, lon, lat, at)
    available = [d for d in found if d.available]
    if expected is None:
        assert available == []
        return
    assert available[0].device_id == expected[0]
    assert available[0].distance_m == pytest.approx(expected[1], rel=1e-9)
    assert all(not d.available and d.distance_m < expected[1] for d in found[1:])


def test_every_listed_device_is_reachable_with_a_large_limit(
    sample: Layers, city: CityProfile
) -> None:
    finder = DeviceFinder(sample["defibrillators"], city)
    found = finder.nearest(city.centre_lon, city.centre_lat, at=MONDAY_MORNING, limit=len(finder))
    availability = device_availability(
        sample["defibrillators"], timezone=city.timezone, calendar=city.calendar
    )
    assert len({d.device_id for d in found}) == len(found)
    distances = np.array([d.distance_m for d in found if d.available])
    assert (np.diff(distances) >= 0).all()
    assert sum(d.available for d in found) <= int(availability.eligible.sum())


NETWORK_FILE = DATA_DIR.parent / "tests" / "fixtures" / "network" / "palencia_centro.osm"


def test_with_a_walking_network_the_answer_is_the_network_nearest(
    tiny_layers: Layers, city: CityProfile
) -> None:
    network = load_network(NETWORK_FILE, crs=city.metric_crs)
    to_lonlat = gpd.GeoSeries(gpd.points_from_xy(*network.node_xy.T), crs=city.metric_crs)
    lonlat = to_lonlat.to_crs("EPSG:4326")
    devices = tiny_layers["defibrillators"].copy()
    devices["opening_hours"] = "24/7"
    devices["access"] = "yes"
    devices = devices.set_geometry(list(lonlat.iloc[[3, 12, 25]]), crs="EPSG:4326")
    finder = DeviceFinder(devices, city, model=NetworkDistance(network))
    straight = DeviceFinder(devices, city, model=StraightLine(1.0))
    for origin in (0, 7, 18, 30):
        lon, lat = lonlat.iloc[origin].x, lonlat.iloc[origin].y
        found = finder.nearest(lon, lat, at=MONDAY_MORNING, limit=3)
        index, distance = nearest_target(
            network, network.node_xy[[origin]], network.node_xy[[3, 12, 25]]
        )
        assert found[0].device_id == devices["id"].iloc[int(index[0])]
        assert found[0].distance_m == pytest.approx(float(distance[0]))
        by_line = {
            d.device_id: d.distance_m
            for d in straight.nearest(lon, lat, at=MONDAY_MORNING, limit=3)
        }
        assert all(d.distance_m >= by_line[d.device_id] - 1e-6 for d in found)
        assert [d.distance_m for d in found] == sorted(d.distance_m for d in found)


@pytest.mark.parametrize(
    "start",
    [
        dt.datetime(2026, 12, 5, 9, 0),  # the week of 6 and 8 December, holidays in Castilla y León
        dt.datetime(2026, 3, 26, 12, 0),  # clocks go forward on the 29th
        dt.datetime(2026, 10, 22, 18, 30),  # and back on the 25th
        dt.datetime(2026, 12, 29, 20, 0),  # New Year
    ],
)
def test_usable_spans_agree_with_the_state_at_every_hour(
    sample: Layers, city: CityProfile, start: dt.datetime
) -> None:
    devices = sample["defibrillators"].copy()
    first = devices.index[0]
    devices.loc[first, "pads_expiry"] = (start + dt.timedelta(days=2)).date()  # expires midweek
    reported = str(devices.loc[devices.index[1], "id"])
    reports = {reported: ReportFlag(reported, "broken", dt.datetime(2026, 1, 1, tzinfo=dt.UTC))}
    finder = DeviceFinder(devices, city, reports=reports)
    spans = finder.usable_spans(start, start + dt.timedelta(days=7))
    assert len(spans) == len(finder)
    assert any(spans) and spans[finder.fields.index(
        next(f for f in finder.fields if f["id"] == reported))] == []  # fmt: skip
    zone = ZoneInfo(city.timezone)
    for hour in range(0, 7 * 24, 1):
        at = (start.replace(tzinfo=zone) + dt.timedelta(hours=hour, minutes=7)).astimezone(zone)
        states = finder.states(at)
        for index, state in enumerate(states):
            inside = any(opens <= at < closes for opens, closes in spans[index])
            assert inside == state.available, (finder.fields[index]["id"], at)
