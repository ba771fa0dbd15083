"""The plan's indicators on a hand-made city whose every number is worked out below.

The city is in EPSG:25830 (metres). Four groups of residents stand on a line 1 km apart; two CEAS
zones split them. The radius is 100 m on foot, straight line × 1.3, so a device 50 m away (65 m on
foot) covers a group and one 80 m away (104 m) does not. The plan runs 2025–2028; the figures are
taken on 2026-06-30, so 2025 is closed, 2026 is in course and 2027–2028 are future.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math

import geopandas as gpd
import pandas as pd
import pytest
import shapely

from geo.city import CarePlan, CityProfile
from geo.core.density import DensityReference, devices_needed
from geo.core.indicators import compute_indicators, format_value, indicator_rows, year_on_year
from geo.errors import IndicatorInputError

X, Y = 373_000.0, 4_651_000.0
CRS = "EPSG:25830"
AS_OF = dt.date(2026, 6, 30)
PLAN = CarePlan(
    name="Plan de prueba", action="Acción 1.3", goal="Liderar", start=dt.date(2025, 1, 1),
    end=dt.date(2028, 12, 31), region_reference="region",
)  # fmt: skip
# A 10 km × 10 km square, drawn in metres and handed over in lon/lat as a profile is.
SQUARE = gpd.GeoSeries([shapely.box(X - 5000, Y - 5000, X + 5000, Y + 5000)], crs=CRS)


def at(dx: float, dy: float = 0.0) -> shapely.Point:
    return shapely.Point(X + dx, Y + dy)


def frame(rows: list[dict[str, object]]) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(rows, geometry="geometry", crs=CRS)


def device(ident: str, where: shapely.Point, **extra: object) -> dict[str, object]:
    row = {"id": ident, "status": "active", "verification": "verified", "access": "yes",
           "is_mobile": False, "opening_hours": "24/7", "operator_entity_id": None,
           "installed_on": None, "removed_on": None, "geometry": where}  # fmt: skip
    return {**row, **extra}


POPULATION = frame([
    {"id": "u1", "residents": 100, "residents_65_plus": 30, "geometry": at(0)},
    {"id": "u2", "residents": 200, "residents_65_plus": 20, "geometry": at(1000)},
    {"id": "u3", "residents": 300, "residents_65_plus": 60, "geometry": at(2000)},
    {"id": "u4", "residents": 400, "residents_65_plus": 100, "geometry": at(3000)},
])  # fmt: skip
ZONES = frame([
    {"id": "z1", "name": "Zona Uno", "geometry": shapely.box(X - 500, Y - 500, X + 1500, Y + 500)},
    {"id": "z2", "name": "Zona Dos", "geometry": shapely.box(X + 1500, Y - 500, X + 3500,
                                                             Y + 500)},
])  # fmt: skip
DEVICES = frame([
    # before the plan, 24/7, 50 m from u1
    device("d1", at(50), installed_on=dt.date(2018, 1, 1)),
    # new in 2025, office hours, 50 m from u2
    device("d2", at(1050), installed_on=dt.date(2025, 3, 1), opening_hours="Mo-Fr 09:00-14:00"),
    # before the plan, removed in September 2025
    device("d3", at(2050), installed_on=dt.date(2020, 1, 1), removed_on=dt.date(2025, 9, 30),
           status="removed"),
    # new in 2026, out of service now
    device("d4", at(3050), installed_on=dt.date(2026, 2, 1), status="out_of_service"),
    # pending moderation: never counted
    device("d5", at(2050), installed_on=dt.date(2026, 3, 1), verification="pending"),
    # no installation date (counts as before the plan), held by e2, far from everybody
    device("d6", at(5000 - 1, 4000), operator_entity_id="e2"),
    # removed, date unknown: never counted
    device("d7", at(3050), installed_on=dt.date(2019, 1, 1), status="removed"),
    # installed after the day the figures are taken on
    device("d8", at(0, 50), installed_on=dt.date(2026, 9, 1)),
])  # fmt: skip
ENTITIES = frame([
    # 10 m from d1: on site
    {"id": "e1", "name": "Asociación Uno", "kind": "association",
     "member_since": dt.date(2024, 5, 1), "geometry": at(40)},
    # holds d6, a kilometre away
    {"id": "e2", "name": "Centro Dos", "kind": "social_centre",
     "member_since": dt.date(2025, 6, 1), "geometry": at(4000, 3000)},
    # 5 m from d4, which is out of service now
    {"id": "e3", "name": "Residencia Tres", "kind": "residence",
     "member_since": dt.date(2026, 1, 15), "geometry": at(3045)},
    # where d2 is; membership date unknown (a member all along)
    {"id": "e4", "name": "Farmacia Cuatro", "kind": "pharmacy", "member_since": None,
     "geometry": at(1050)},
    # joins in 2027
    {"id": "e5", "name": "Clínica Cinco", "kind": "clinic",
     "member_since": dt.date(2027, 1, 1), "geometry": at(0)},
])  # fmt: skip
TRAINING = pd.DataFrame([
    {"held_on": dt.date(2024, 11, 10), "entity_id": "e1", "kind": "bls_aed", "people_trained": 12},
    {"held_on": dt.date(2025, 2, 1), "entity_id": "e1", "kind": "bls_aed", "people_trained": 10},
    {"held_on": dt.date(2025, 10, 15), "entity_id": "e2", "kind": "aed", "people_trained": 8},
    {"held_on": dt.date(2026, 3, 3), "entity_id": "e1", "kind": "bls_aed", "people_trained": 15},
    {"held_on": dt.date(2026, 9, 1), "entity_id": "e3", "kind": "refresher", "people_trained": 5},
])  # fmt: skip
USES = pd.DataFrame([
    # 23:30 UTC on New Year's Eve is 00:30 on 1 January in Madrid: a use of 2026
    {"used_at": dt.datetime(2025, 12, 31, 23, 30), "people_attended": 1},
    {"used_at": dt.datetime(2025, 7, 1, 10, 0), "people_attended": 2},
    {"used_at": dt.datetime(2026, 8, 1, 10, 0), "people_attended": 1},
])  # fmt: skip
REFERENCES = [
    DensityReference("low", "Referencia baja", "region", 35.0, 2018, "", "prueba"),
    DensityReference("equal", "Referencia igual", "region", 40.0, None, "", "prueba"),
    DensityReference("high", "Referencia alta", "country", 50.0, 2022, "", "prueba"),
]


@pytest.fixture(scope="module")
def town(city: CityProfile) -> CityProfile:
    return dataclasses.replace(
        city, population=10_000, plan=PLAN, boundary=SQUARE.to_crs("EPSG:4326").iloc[0]
    )


@pytest.fixture(scope="module")
def result(town: CityProfile):
    return compute_indicators(
        city=town, devices=DEVICES, entities=ENTITIES, zones=ZONES, population=POPULATION,
        training=TRAINING, uses=USES, references=REFERENCES, as_of=AS_OF, radius_m=100,
    )  # fmt: skip


def test_years_and_their_status(result) -> None:
    assert result.years["year"].tolist() == [2025, 2026, 2027, 2028]
    assert result.years["status"].tolist() == ["closed", "in_course", "future", "future"]
    assert result.years["period_end"].tolist() == [
        dt.date(2025, 12, 31),
        AS_OF,
        dt.date(2027, 12, 31),
        dt.date(2028, 12, 31),
    ]
    assert result.years.loc[2:, "devices_total"].isna().all()


def test_devices_initial_new_removed_total(result) -> None:
    y2025, y2026 = result.year(2025), result.year(2026)
    # initial: d1, d3 and the undated d6 (d7's removal date is unknown; d5 is pending)
    assert (y2025["devices_initial"], y2026["devices_initial"]) == (3, 3)
    assert (y2025["devices_new"], y2025["devices_removed"], y2025["devices_total"]) == (1, 1, 3)
    # d4 counts although it is out of service; d8 comes after 30 June
    assert (y2026["devices_new"], y2026["devices_removed"], y2026["devices_total"]) == (1, 0, 4)
    assert y2025["devices_per_100k"] == pytest.approx(30.0)
    assert y2026["devices_per_100k"] == pytest.approx(40.0)


def test_cardioprotected_entities(result) -> None:
    y2025, y2026 = result.year(2025), result.year(2026)
    # 2025: e1 (d1 10 m away), e2 (holds d6), e4 (d2 on site); e3 and e5 not members yet
    assert (y2025["entities_members"], y2025["entities_cardioprotected"]) == (3, 3)
    assert y2025["share_entities_cardioprotected"] == pytest.approx(1.0)
    # now e3 is a member, but its only device (d4) is out of service
    assert (y2026["entities_members"], y2026["entities_cardioprotected"]) == (4, 3)
    assert y2026["share_entities_cardioprotected"] == pytest.approx(0.75)
    table = result.entities
    assert table["id"].tolist() == ["e3", "e1", "e2", "e4"]
    assert table["cardioprotected"].tolist() == [False, True, True, True]
    assert table["device_ids"].tolist() == [[], ["d1"], ["d6"], ["d2"]]


def test_training_and_uses(result) -> None:
    y2025, y2026 = result.year(2025), result.year(2026)
    assert (y2025["training_actions"], y2025["people_trained"]) == (2, 18)
    assert (y2026["training_actions"], y2026["people_trained"]) == (1, 15)
    assert (y2025["uses"], y2025["people_attended"]) == (1, 2)
    assert (y2026["uses"], y2026["people_attended"]) == (1, 1)
    assert result.training.to_dict("records") == [
        {"year": 2025, "kind": "aed", "actions": 1, "people_trained": 8},
        {"year": 2025, "kind": "bls_aed", "actions": 1, "people_trained": 10},
        {"year": 2026, "kind": "bls_aed", "actions": 1, "people_trained": 15},
    ]


def test_coverage_at_the_end_of_each_year(result) -> None:
    # 2025, 24/7: only d1 (u1: 100 of 1,000; 30 of 210 seniors); whatever the hours, d2 adds u2
    y2025 = result.year(2025)
    assert y2025["share_covered"] == pytest.approx(0.1)
    assert y2025["share_65_plus_covered"] == pytest.approx(30 / 210)
    assert y2025["share_covered_any_hours"] == pytest.approx(0.3)
    # 2026: d5 stands at u3 since March but is pending moderation: not usable until staff
    # verify it, so it covers nobody (d4 is out of service; d8 comes later)
    y2026 = result.year(2026)
    assert y2026["share_covered"] == pytest.approx(0.1)
    assert y2026["share_65_plus_covered"] == pytest.approx(30 / 210)
    assert y2026["share_covered_any_hours"] == pytest.approx(0.3)


def test_zones(result) -> None:
    zones = result.zones.set_index("zone_id")
    assert zones.loc["z1", ["devices_initial", "devices_new", "devices_total"]].tolist() == [
        1,
        1,
        2,
    ]
    # d3 was there when the plan started, and is gone; d4 is new; d6 lies in no zone
    assert zones.loc["z2", ["devices_initial", "devices_new", "devices_total"]].tolist() == [
        1,
        1,
        1,
    ]
    assert zones.loc["z1", "devices_per_100k"] == pytest.approx(2 / 300 * 100_000)
    assert zones.loc["z2", "devices_per_100k"] == pytest.approx(1 / 700 * 100_000)
    assert zones.loc["z1", "share_covered"] == pytest.approx(1 / 3)
    assert zones.loc["z1", "share_covered_any_hours"] == pytest.approx(1.0)
    # d5 (pending) is not usable: it covers nobody until staff verify it
    assert zones.loc["z2", "share_covered"] == pytest.approx(0.0)
    assert zones.loc["z2", "share_covered_any_hours"] == pytest.approx(0.0)


def test_plan_to_date(result) -> None:
    total = result.to_date
    assert {k: total[k] for k in ("devices_initial", "devices_new", "devices_removed",
                                  "devices_total", "training_actions", "people_trained",
                                  "uses", "people_attended", "entities_cardioprotected")} == {
        "devices_initial": 3, "devices_new": 2, "devices_removed": 1, "devices_total": 4,
        "training_actions": 3, "people_trained": 33, "uses": 2, "people_attended": 3,
        "entities_cardioprotected": 3,
    }  # fmt: skip
    assert (total["devices_active"], total["devices_out_of_service"]) == (3, 1)
    assert total["devices_pending"] == 1
    assert total["entities_with_training"] == 2
    assert result.area_km2 == pytest.approx(100.0, rel=1e-3)
    assert total["devices_per_km2"] == pytest.approx(0.04, rel=1e-3)


def test_density_benchmark(result) -> None:
    density = result.density
    # the city's 40 per 100,000 ties with "igual" and does not pass it
    assert density["id"].tolist() == ["high", "equal", "city", "low"]
    assert density.set_index("id")["devices_needed"].to_dict() == {
        "high": 2,
        "equal": 1,
        "city": 0,
        "low": 0,
    }
    assert density.set_index("id").loc["city", "devices_per_100k"] == pytest.approx(40.0)


@pytest.mark.parametrize(
    ("devices", "population", "per_100k", "needed"),
    [(4, 10_000, 50.0, 2), (4, 10_000, 40.0, 1), (4, 10_000, 39.99, 0), (25, 77_157, 32.8, 1),
     (0, 77_157, 298.0, 230)],
)  # fmt: skip
def test_devices_needed(devices: int, population: int, per_100k: float, needed: int) -> None:
    assert devices_needed(devices, population, per_100k) == needed
    assert (devices + needed) / population * 100_000 > per_100k


def test_year_on_year_and_table(result) -> None:
    change = year_on_year(result.years).set_index("year")
    assert change.loc[2026, "devices_total"] == 1
    assert change.loc[2026, "people_trained"] == -3
    assert change.loc[2026, "share_entities_cardioprotected"] == pytest.approx(-0.25)
    assert math.isnan(change.loc[2025, "devices_total"])
    table = indicator_rows(result).set_index("indicator")
    assert table.columns.tolist() == ["label", "2025", "2026", "2027", "2028", "to_date"]
    assert table.loc["people_trained", ["2025", "2026", "to_date"]].tolist() == [18, 15, 33]
    assert pd.isna(table.loc["people_trained", "2027"])
    one = indicator_rows(result, year=2026).set_index("indicator")
    assert one.columns.tolist() == ["label", "2025", "2026", "change_2026", "to_date"]
    assert one.loc["devices_total", "change_2026"] == 1
    first = indicator_rows(result, year=2025)
    assert first.columns.tolist() == ["indicator", "label", "2025", "change_2025", "to_date"]
    assert first["change_2025"].isna().all()


@pytest.mark.parametrize(
    ("key", "value", "change", "text"),
    [("share_covered", 0.1234, False, "12,3 %"), ("share_covered", 0.032, True, "+3,2 p. p."),
     ("devices_total", 1234, False, "1.234"), ("devices_total", -1, True, "−1"),
     ("devices_per_100k", 32.4014, False, "32,4"), ("people_trained", None, False, "—"),
     ("uses", 0, True, "±0"), ("people_trained", float("nan"), True, "—")],
)  # fmt: skip
def test_format_value(key: str, value: object, change: bool, text: str) -> None:
    assert format_value(key, value, change=change) == text


def test_to_dict_is_json_shaped(result) -> None:
    document = result.to_dict()
    assert document["as_of"] == AS_OF
    assert document["years"][0]["devices_total"] == 3
    assert document["years"][2]["devices_total"] is None  # future
    assert document["to_date"]["devices_total"] == 4
    assert any("sin fecha de instalación" in note for note in document["notes"])
    assert any("sin fecha de retirada" in note for note in document["notes"])


def test_empty_register_and_no_devices(town: CityProfile) -> None:
    empty_training = TRAINING.iloc[0:0]
    none = compute_indicators(
        city=town, devices=DEVICES.iloc[0:0], entities=ENTITIES, zones=ZONES,
        population=POPULATION, training=empty_training, uses=USES.iloc[0:0],
        references=REFERENCES, as_of=AS_OF,
    )  # fmt: skip
    assert none.year(2026)["devices_total"] == 0
    assert none.year(2026)["share_covered"] == 0.0
    assert none.year(2026)["entities_cardioprotected"] == 0
    assert none.to_date["people_trained"] == 0
    assert any("registro de formación está vacío" in note for note in none.notes)


def test_bad_inputs(town: CityProfile) -> None:
    common = dict(devices=DEVICES, entities=ENTITIES, zones=ZONES, population=POPULATION,
                  training=TRAINING, uses=USES, references=REFERENCES)  # fmt: skip
    with pytest.raises(IndicatorInputError, match="no tiene plan"):
        compute_indicators(city=dataclasses.replace(town, plan=None), as_of=AS_OF, **common)
    with pytest.raises(IndicatorInputError, match="anterior al inicio del plan"):
        compute_indicators(city=town, as_of=dt.date(2024, 12, 31), **common)
    with pytest.raises(IndicatorInputError, match="CRS métrico"):
        compute_indicators(
            city=town, as_of=AS_OF, **{**common, "devices": DEVICES.to_crs("EPSG:4326")}
        )
    with pytest.raises(IndicatorInputError, match="people_trained"):
        compute_indicators(
            city=town,
            as_of=AS_OF,
            **{**common, "training": TRAINING.drop(columns="people_trained")},
        )
    result = compute_indicators(city=town, as_of=AS_OF, **common)
    with pytest.raises(IndicatorInputError, match="fuera del plan"):
        result.year(2030)
