"""Coverage engine: hand-checked answers, invariants, and bad input.

The hand-made city below is in EPSG:25830 (metres) around Palencia, so every distance can be
checked with a ruler. Straight-line distances are multiplied by the detour factor (1.3 default).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from geo.city import CityProfile
from geo.core import network as walking
from geo.core.coverage import coverage, off_hours_slots, weekly_coverage
from geo.core.distance import NetworkDistance, StraightLine, pairs_within, to_metric
from geo.core.gaps import coverage_by_income, find_gaps, nearest_available, sites_without_device
from geo.errors import CoverageInputError, MetricCRSError
from geo.io import osm as osm_files
from geo.io.files import read_layers

X, Y = 373_000.0, 4_651_000.0
CRS = "EPSG:25830"
MONDAY = dt.date(2026, 11, 23)
MONDAY_10 = dt.datetime(2026, 11, 23, 10, 0)
MONDAY_20 = dt.datetime(2026, 11, 23, 20, 0)
OFFICE = "Mo-Fr 09:00-14:00"


def device(ident: str, dx: float, hours: str | None = "24/7", **extra: object) -> dict[str, object]:
    row = {"id": ident, "status": "active", "verification": "verified", "access": "yes",
           "is_mobile": False, "opening_hours": hours, "operator_entity_id": None,
           "geometry": shapely.Point(X + dx, Y)}  # fmt: skip
    return {**row, **extra}


def make_devices(*rows: dict[str, object]) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(list(rows), geometry="geometry", crs=CRS)


DEVICES = make_devices(
    device("A", 0),  # 24/7, public
    device("B", 1000, OFFICE),  # office hours
    device("C", 2000, access="private"),  # never counts
    device("D", 3000, status="out_of_service"),  # never counts
    device("E", 4000, None),  # unknown hours
)

# id, dx, dy, residents, 65+   (distance to the nearest device in comments, straight line)
UNITS = [
    ("u1", 50, 0, 100, 30),  # 50 m from A
    ("u2", 90, 0, 200, 50),  # 90 m from A
    ("u3", 1000, 60, 300, 100),  # 60 m from B
    ("u4", 1000, 150, 400, 0),  # 150 m from B
    ("u5", 2010, 0, 500, 200),  # 10 m from C (private)
    ("u6", 3000, 0, 50, 10),  # on D (out of service)
    ("u7", 4020, 0, 60, 60),  # 20 m from E (unknown hours)
    ("u8", 0, 5000, 1000, 250),  # far from everything
]
POPULATION = gpd.GeoDataFrame(
    {
        "id": [u[0] for u in UNITS],
        "residents": [u[3] for u in UNITS],
        "residents_65_plus": [u[4] for u in UNITS],
        "section_code": ["s1", "s1", "s2", "s2", "s3", "s4", "s5", "s5"],
    },
    geometry=[shapely.Point(X + u[1], Y + u[2]) for u in UNITS],
    crs=CRS,
)
ZONES = gpd.GeoDataFrame(
    {"id": ["oeste", "este"], "name": ["Oeste", "Este"]},
    geometry=[
        shapely.box(X - 500, Y - 500, X + 1500, Y + 5500),
        shapely.box(X + 1500, Y - 500, X + 4500, Y + 5500),
    ],
    crs=CRS,
)
TOTAL = 2610


def covered(result_units: gpd.GeoDataFrame) -> list[str]:
    return sorted(result_units.loc[result_units["covered"], "id"])


def test_always_counts_only_24_7_public_devices(city: CityProfile) -> None:
    result = coverage(POPULATION, DEVICES, city, zones=ZONES, reference_date=MONDAY)
    assert covered(result.units) == ["u1"]  # u2 is 90 m × 1.3 = 117 m from A
    assert (result.residents, result.residents_covered) == (TOTAL, 100)
    assert (result.residents_65_plus, result.residents_65_plus_covered) == (700, 30)
    assert result.devices_available == 1
    assert result.mode == "always" and result.at is None
    assert [issue.device_id for issue in result.hours_issues] == ["E"]


def test_an_instant_adds_devices_open_then(city: CityProfile) -> None:
    morning = coverage(POPULATION, DEVICES, city, at=MONDAY_10)
    assert covered(morning.units) == ["u1", "u3"]
    assert morning.residents_covered == 400
    assert morning.share_covered == pytest.approx(400 / TOTAL)
    assert morning.at == dt.datetime(2026, 11, 23, 10, tzinfo=morning.at.tzinfo)
    evening = coverage(POPULATION, DEVICES, city, at=MONDAY_20)
    assert covered(evening.units) == ["u1"]


def test_radius_and_detour_factor(city: CityProfile) -> None:
    wide = coverage(POPULATION, DEVICES, city, at=MONDAY_10, radius_m=200)
    assert covered(wide.units) == ["u1", "u2", "u3", "u4"]  # 117 m and 195 m now in reach
    plain = coverage(POPULATION, DEVICES, city, at=MONDAY_10, model=StraightLine(1.0))
    assert covered(plain.units) == ["u1", "u2", "u3"]


def test_unknown_hours_can_be_counted_on_request(city: CityProfile) -> None:
    result = coverage(POPULATION, DEVICES, city, at=MONDAY_20, assume_unknown_open=True)
    assert covered(result.units) == ["u1", "u7"]


def test_zones_table(city: CityProfile) -> None:
    result = coverage(POPULATION, DEVICES, city, zones=ZONES, at=MONDAY_10)
    table = result.by_zone.set_index("zone_id")
    assert table.loc["oeste", "residents"] == 2000
    assert table.loc["oeste", "residents_covered"] == 400
    assert table.loc["oeste", "share_covered"] == pytest.approx(0.2)
    assert table.loc["oeste", "residents_65_plus_covered"] == 130
    assert table.loc["este", "residents"] == 610
    assert table.loc["este", "residents_covered"] == 0
    assert list(table.index) == ["este", "oeste"]  # by name; no "sin zona": everyone is in one


def test_nearest_device_is_reported_per_unit(city: CityProfile) -> None:
    units = coverage(POPULATION, DEVICES, city, at=MONDAY_10).units.set_index("id")
    assert units.loc["u3", "nearest_device_id"] == "B"
    assert units.loc["u3", "nearest_distance_m"] == pytest.approx(60 * 1.3)
    assert units.loc["u5", "nearest_device_id"] == "B"  # C is private
    assert units.loc["u5", "nearest_distance_m"] == pytest.approx(1010 * 1.3)


def test_weekly_profile(city: CityProfile) -> None:
    week = weekly_coverage(POPULATION, DEVICES, city, zones=ZONES, week_of=MONDAY)
    slices = week.slices.set_index("slot")
    office = [day * 24 + hour for day in range(5) for hour in range(9, 14)]
    assert (slices.loc[office, "residents_covered"] == 400).all()
    others = [slot for slot in range(168) if slot not in office]
    assert (slices.loc[others, "residents_covered"] == 100).all()
    assert slices.loc[office, "devices_available"].eq(2).all()
    assert week.residents_covered_always == 100
    assert week.residents_covered_potential == 400
    mean = (25 * 400 + 143 * 100) / 168
    assert week.share_lost_to_hours == pytest.approx(1 - mean / 400)
    assert week.share_lost_in(off_hours_slots()) == pytest.approx(0.75)
    zones = week.zone_slices.set_index(["zone_id", "slot"])
    assert zones.loc[("oeste", 10), "residents_covered"] == 400
    assert zones.loc[("este", 10), "residents_covered"] == 0
    payload = week.to_dict()
    assert payload["worst_slot"]["share_covered"] == pytest.approx(100 / TOTAL, abs=1e-6)
    assert len(payload["slices"]) == 168


def test_weekly_slot_equals_the_instant_at_its_midpoint(city: CityProfile) -> None:
    week = weekly_coverage(POPULATION, DEVICES, city, week_of=MONDAY, radius_m=200)
    for slot in (0, 9, 13, 14, 33, 130):
        day, hour = divmod(slot, 24)
        at = dt.datetime.combine(MONDAY + dt.timedelta(days=day), dt.time(hour, 30))
        instant = coverage(POPULATION, DEVICES, city, at=at, radius_m=200)
        assert week.slices.loc[slot, "residents_covered"] == instant.residents_covered


def test_gaps_are_ranked_cells_of_uncovered_residents(city: CityProfile) -> None:
    result = coverage(POPULATION, DEVICES, city, zones=ZONES, at=MONDAY_10)
    gaps = find_gaps(result)
    assert gaps["residents"].tolist() == [1000, 500, 400, 200, 60, 50]
    assert gaps["rank"].tolist() == [1, 2, 3, 4, 5, 6]
    assert gaps["residents"].sum() == TOTAL - result.residents_covered
    assert gaps.loc[1, "zone_id"] == "este"
    assert gaps.geometry.area.round().eq(150.0**2).all()
    assert gaps.crs == CRS


def test_gap_cells_below_a_metre_are_refused(city: CityProfile) -> None:
    result = coverage(POPULATION, DEVICES, city, zones=ZONES, at=MONDAY_10)
    with pytest.raises(CoverageInputError, match="al menos 1 m"):
        find_gaps(result, cell_m=0.001)
    assert len(find_gaps(result, cell_m=1.0)) >= 6


def test_entities_without_an_available_device_nearby(city: CityProfile) -> None:
    sites = gpd.GeoDataFrame(
        {"id": ["e-a", "e-c", "e-far"], "name": ["cerca de A", "junto a C", "lejos"]},
        geometry=[
            shapely.Point(X + 30, Y),
            shapely.Point(X + 2000, Y + 5),
            shapely.Point(X, Y + 9000),
        ],
        crs=CRS,
    )
    devices = DEVICES.copy()
    devices.loc[devices["id"] == "C", "operator_entity_id"] = "e-c"
    result = sites_without_device(sites, devices, city, at=MONDAY_10).set_index("id")
    assert result.loc["e-a", "covered"] and result.loc["e-a", "nearest_device_id"] == "A"
    assert not result.loc["e-c", "covered"]  # its own device is private
    assert result.loc["e-c", "holds_device"]
    assert not result.loc["e-far", "covered"]


def test_nearest_available_reports_walking_time(city: CityProfile) -> None:
    points = POPULATION.iloc[[2]]
    at_night = nearest_available(points, DEVICES, city, at=MONDAY_20)
    assert at_night["device_id"].tolist() == ["A"]
    assert at_night["distance_m"].iloc[0] == pytest.approx(np.hypot(1000, 60) * 1.3)
    assert at_night["walk_min"].iloc[0] == pytest.approx(at_night["distance_m"].iloc[0] / 75)


def test_coverage_by_income_quintile(city: CityProfile) -> None:
    result = coverage(POPULATION, DEVICES, city, at=MONDAY_10)
    incomes = pd.DataFrame({"code": ["s1", "s2", "s3", "s4", "s5"],
                            "income": [9000, 10000, 11000, 12000, 20000]})  # fmt: skip
    table = coverage_by_income(result, incomes).set_index("quintile")
    assert table["residents"].sum() == TOTAL
    assert table.loc[1, "residents_covered"] == 100  # s1 (poorest): u1 covered, u2 not
    assert table.loc[2, "residents_covered"] == 300  # s2: u3
    assert table.loc[5, "residents_covered"] == 0


# --- invariants -------------------------------------------------------------------------------

Point = tuple[float, float]
coords = st.tuples(st.floats(0, 600), st.floats(0, 600))
HOURS = st.sampled_from(["24/7", OFFICE, "Mo-Sa 17:00-21:00", "Sa,Su 10:00-14:00"])


def random_city(
    unit_xy: list[Point], device_xy: list[Point], hours: list[str]
) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame]:
    population = gpd.GeoDataFrame(
        {"id": [f"p{i}" for i in range(len(unit_xy))], "residents": 10, "residents_65_plus": 3},
        geometry=[shapely.Point(X + x, Y + y) for x, y in unit_xy],
        crs=CRS,
    )
    devices = make_devices(
        *(
            {**device(f"d{i}", 0, hours[i % len(hours)]), "geometry": shapely.Point(X + x, Y + y)}
            for i, (x, y) in enumerate(device_xy)
        )
    )
    return population, devices


PROPERTY = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPERTY
@given(
    unit_xy=st.lists(coords, min_size=1, max_size=40),
    device_xy=st.lists(coords, min_size=1, max_size=6),
    hours=st.lists(HOURS, min_size=1, max_size=6),
    extra=coords,
    slot=st.integers(0, 167),
)
def test_adding_a_device_never_lowers_coverage(
    city: CityProfile,
    unit_xy: list[Point],
    device_xy: list[Point],
    hours: list[str],
    extra: Point,
    slot: int,
) -> None:
    device_hours = [hours[i % len(hours)] for i in range(len(device_xy))]
    population, devices = random_city(unit_xy, device_xy, device_hours)
    _, more = random_city(unit_xy, [*device_xy, extra], [*device_hours, "Mo-Fr 08:00-15:00"])
    at = dt.datetime.combine(MONDAY + dt.timedelta(days=slot // 24), dt.time(slot % 24, 30))
    assert (coverage(population, more, city, at=at).residents_covered
            >= coverage(population, devices, city, at=at).residents_covered)  # fmt: skip
    before = weekly_coverage(population, devices, city, week_of=MONDAY).slices["residents_covered"]
    after = weekly_coverage(population, more, city, week_of=MONDAY).slices["residents_covered"]
    assert (after >= before).all()


@PROPERTY
@given(
    unit_xy=st.lists(coords, min_size=1, max_size=40),
    device_xy=st.lists(coords, min_size=1, max_size=6),
    hours=st.lists(HOURS, min_size=1, max_size=6),
    radii=st.tuples(st.floats(1, 400), st.floats(1, 400)).map(sorted),
)
def test_a_larger_radius_never_lowers_coverage(
    city: CityProfile,
    unit_xy: list[Point],
    device_xy: list[Point],
    hours: list[str],
    radii: list[float],
) -> None:
    population, devices = random_city(unit_xy, device_xy, hours)
    small, large = radii
    for at in (None, MONDAY_10):
        narrow = coverage(population, devices, city, at=at, radius_m=small, reference_date=MONDAY)
        wide = coverage(population, devices, city, at=at, radius_m=large, reference_date=MONDAY)
        assert wide.residents_covered >= narrow.residents_covered


@PROPERTY
@given(
    unit_xy=st.lists(coords, min_size=1, max_size=40),
    device_xy=st.lists(coords, min_size=1, max_size=6),
    hours=st.lists(HOURS, min_size=1, max_size=6),
    minutes=st.integers(0, 7 * 24 * 60 - 1),
)
def test_24_7_coverage_is_at_most_coverage_at_any_instant(
    city: CityProfile,
    unit_xy: list[Point],
    device_xy: list[Point],
    hours: list[str],
    minutes: int,
) -> None:
    population, devices = random_city(unit_xy, device_xy, hours)
    at = dt.datetime.combine(MONDAY, dt.time()) + dt.timedelta(minutes=minutes)
    always = coverage(population, devices, city, reference_date=MONDAY)
    instant = coverage(population, devices, city, at=at)
    assert always.residents_covered <= instant.residents_covered
    week = weekly_coverage(population, devices, city, week_of=MONDAY)
    assert week.residents_covered_always == always.residents_covered
    assert (week.slices["residents_covered"] >= always.residents_covered).all()
    assert (week.slices["residents_covered"] <= week.residents_covered_potential).all()


@PROPERTY
@given(
    unit_xy=st.lists(coords, min_size=0, max_size=60),
    device_xy=st.lists(coords, min_size=0, max_size=12),
    radius=st.floats(1, 300),
)
def test_pairs_within_equals_brute_force(
    unit_xy: list[Point], device_xy: list[Point], radius: float
) -> None:
    units = np.array(unit_xy, dtype=float).reshape(-1, 2)
    devices = np.array(device_xy, dtype=float).reshape(-1, 2)
    reach = pairs_within(units, devices, radius_m=radius, model=StraightLine(1.0))
    distance = np.hypot(*(units[:, None, :] - devices[None, :, :]).transpose(2, 0, 1))
    unit, dev = np.nonzero(distance <= radius)
    assert list(zip(reach.unit, reach.device, strict=True)) == list(zip(unit, dev, strict=True))
    assert np.allclose(reach.distance_m, distance[unit, dev])


def test_crowded_units_get_every_device_in_reach() -> None:
    units = np.array([[0.0, 0.0]])
    devices = np.array([[float(i), 0.0] for i in range(10)])  # 10 devices within 10 m
    reach = pairs_within(units, devices, radius_m=100, model=StraightLine(1.0))
    assert reach.device.tolist() == list(range(10))


# --- bad input --------------------------------------------------------------------------------


def test_geographic_layers_are_refused(city: CityProfile) -> None:
    with pytest.raises(MetricCRSError, match="grados"):
        coverage(POPULATION.to_crs(4326), DEVICES, city)


def test_negative_residents_are_refused(city: CityProfile) -> None:
    population = POPULATION.copy()
    population.loc[3, "residents"] = -4
    with pytest.raises(CoverageInputError, match="u4"):
        coverage(population, DEVICES, city)


def test_more_seniors_than_residents_are_refused(city: CityProfile) -> None:
    population = POPULATION.copy()
    population.loc[0, "residents_65_plus"] = 101
    with pytest.raises(CoverageInputError, match="65"):
        coverage(population, DEVICES, city)


@pytest.mark.parametrize("radius", [0, -10, float("nan"), float("inf")])
def test_bad_radius(city: CityProfile, radius: float) -> None:
    with pytest.raises(CoverageInputError, match="radio"):
        coverage(POPULATION, DEVICES, city, radius_m=radius)


def test_detour_factor_below_one_is_refused() -> None:
    with pytest.raises(CoverageInputError, match="rodeo"):
        StraightLine(0.8)


def test_an_unparseable_device_is_reported_not_fatal(city: CityProfile) -> None:
    devices = make_devices(device("A", 0), device("Z", 20, "cuando abra el bar"))
    result = coverage(POPULATION, devices, city, at=MONDAY_10)
    assert [issue.device_id for issue in result.hours_issues] == ["Z"]
    assert result.to_dict()["warnings"] == ["Z: horario no interpretable: 'cuando abra el bar'"]


def test_the_palencia_sample_runs_end_to_end(city: CityProfile) -> None:
    layers = read_layers(Path(__file__).resolve().parent.parent / "data", city)
    population, devices, zones = (
        to_metric(layers[n], city) for n in ("population", "defibrillators", "ceas")
    )
    result = coverage(population, devices, city, zones=zones, at=MONDAY_10)
    assert result.residents == city.population
    assert 0 < result.residents_covered < result.residents
    assert result.by_zone["residents"].sum() == city.population
    assert set(result.by_zone["zone_id"]) == set(layers["ceas"]["id"])


# --- walking network --------------------------------------------------------------------------

NETWORK_FILE = Path(__file__).resolve().parent / "fixtures" / "network" / "palencia_centro.osm"


@pytest.fixture(scope="module")
def street_network() -> walking.WalkingNetwork:
    return osm_files.load_network(NETWORK_FILE, crs=CRS)


def test_network_coverage_uses_street_distance(
    city: CityProfile, street_network: walking.WalkingNetwork
) -> None:
    nodes = street_network.node_xy
    device_xy = nodes[0]
    farthest = nodes[np.argmax(np.hypot(*(nodes - device_xy).T))]
    x0, y0 = device_xy
    x1, y1 = farthest
    devices = make_devices({**device("N", 0), "geometry": shapely.Point(*device_xy)})
    population = gpd.GeoDataFrame(
        {"id": ["a", "b"], "residents": [10, 20], "residents_65_plus": [1, 2]},
        geometry=[shapely.Point(*device_xy), shapely.Point(*farthest)],
        crs=CRS,
    )
    model = NetworkDistance(street_network)
    result = coverage(population, devices, city, at=MONDAY_10, model=model, radius_m=50)
    assert covered(result.units) == ["a"]
    assert result.notes == ()  # both units are on the network
    far = population.assign(geometry=[shapely.Point(x0, y0), shapely.Point(x1 + 5000, y1)])
    warned = coverage(far, devices, city, at=MONDAY_10, model=model, radius_m=50)
    assert len(warned.notes) == 1 and "1 de 2 unidades" in warned.notes[0]
    assert warned.to_dict()["warnings"][0] == warned.notes[0]
    week = weekly_coverage(far, devices, city, week_of=MONDAY, model=model, radius_m=50)
    assert week.notes == warned.notes
    assert result.distance_model == "walking_network"
    assert "palencia_centro.osm" in result.distance_model_description
    assert np.hypot(x1 - x0, y1 - y0) > 50


@PROPERTY
@given(
    unit_fraction=st.lists(st.tuples(st.floats(0, 1), st.floats(0, 1)), min_size=1, max_size=30),
    device_fraction=st.lists(st.tuples(st.floats(0, 1), st.floats(0, 1)), min_size=1, max_size=5),
    radius=st.floats(20, 400),
)
def test_network_coverage_never_exceeds_straight_line_coverage(
    city: CityProfile,
    street_network: walking.WalkingNetwork,
    unit_fraction: list[Point],
    device_fraction: list[Point],
    radius: float,
) -> None:
    low = street_network.node_xy.min(axis=0)
    span = street_network.node_xy.max(axis=0) - low
    place = lambda f: shapely.Point(*(low + np.array(f) * span))  # noqa: E731
    population = gpd.GeoDataFrame(
        {"id": [f"p{i}" for i in range(len(unit_fraction))], "residents": 5,
         "residents_65_plus": 1},
        geometry=[place(f) for f in unit_fraction],
        crs=CRS,
    )  # fmt: skip
    devices = make_devices(
        *({**device(f"d{i}", 0), "geometry": place(f)} for i, f in enumerate(device_fraction))
    )
    on_streets = coverage(population, devices, city, at=MONDAY_10, radius_m=radius,
                          model=NetworkDistance(street_network))  # fmt: skip
    straight = coverage(population, devices, city, at=MONDAY_10, radius_m=radius,
                        model=StraightLine(1.0))  # fmt: skip
    assert set(covered(on_streets.units)) <= set(covered(straight.units))
    assert (
        on_streets.units["nearest_distance_m"] + 1e-6 >= straight.units["nearest_distance_m"]
    ).all()
