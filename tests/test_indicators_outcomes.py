"""Lives saved, the lives the plan's devices add, and the cost per life-year, worked out by hand.

The town is in EPSG:25830 (metres), straight line × 1.3. The model's parameters are fixed (no
range) at round values, so every person has 100 arrests per 100,000 a year whatever their age
(the 65+ share of arrests equals the 65+ share of people, 0.2), half of them outside the home,
and with a device at hand (≤ 100 m on foot) one arrest in two gets a defibrillation that adds
0.4 to survival: a resident covered 24/7 is worth 0.001 × 0.5 × 0.5 × 0.4 = 0.0001 lives a year,
and a survivor 10 life-years. Hours are weighed evenly (day/night ratio 1).

Residents: u1 (1,000) at x = 0, u2 (2,000) at x = 1,000, u3 (500) at x = 3,000. The plan runs
2025–2028; the figures are taken on 2026-06-30 (2025 closed, 2026 in course).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import math
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

from geo.city import CarePlan, CityProfile, load_city_profile
from geo.core.indicators import (
    INDICATOR_LABELS,
    Indicators,
    compute_indicators,
    format_band,
    format_value,
    indicator_rows,
)
from geo.core.outcome_model import HOME_ARRESTS_NOTE, OutcomeParameters
from geo.core.outcomes import outcomes
from geo.core.plan_lives import BANDS
from geo.errors import CityProfileError
from tests.conftest import DATA_DIR

X, Y = 373_000.0, 4_651_000.0
CRS = "EPSG:25830"
AS_OF = dt.date(2026, 6, 30)
PER_RESIDENT = 0.001 * 0.5 * 0.5 * 0.4  # lives a year for one resident covered all week
OFFICE_HOURS = 25 / 168  # Mo–Fr 09:00–14:00: 5 of the 168 hours on 5 days (no holiday that week)
PLAN = CarePlan(
    name="Plan de prueba", action="Acción 1.3", goal="Liderar", start=dt.date(2025, 1, 1),
    end=dt.date(2028, 12, 31),
)  # fmt: skip
COSTED = dataclasses.replace(
    PLAN, device_cost_eur=2000.0, device_lifetime_years=8.0, device_upkeep_eur_per_year=150.0,
    device_cost_source="prueba",
)  # fmt: skip
PER_DEVICE_EUR = 2000 / 8 + 150  # 400 € a year
SQUARE = gpd.GeoSeries([shapely.box(X - 5000, Y - 5000, X + 5000, Y + 5000)], crs=CRS)
FIXED = {
    "incidence_per_100k": 100.0, "share_arrests_65_plus": 0.2, "share_65_plus_population": 0.2,
    "share_public": 0.5, "home_use_factor": 0.0, "use_probability": 0.5, "full_use_m": 100.0,
    "reach_m": 200.0, "survival_gain": 0.4, "day_night_ratio": 1.0,
    "life_years_per_survivor": 10.0,
}  # fmt: skip


def at(dx: float, dy: float = 0.0) -> shapely.Point:
    return shapely.Point(X + dx, Y + dy)


def frame(rows: list[dict[str, object]]) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(rows, geometry="geometry", crs=CRS)


def device(ident: str, where: shapely.Point, **extra: object) -> dict[str, object]:
    row = {"id": ident, "name": ident, "status": "active", "verification": "verified",
           "access": "yes", "is_mobile": False, "opening_hours": "24/7",
           "operator_entity_id": None, "installed_on": None, "removed_on": None,
           "geometry": where}  # fmt: skip
    return {**row, **extra}


POPULATION = frame([
    {"id": "u1", "residents": 1000, "residents_65_plus": 200, "geometry": at(0)},
    {"id": "u2", "residents": 2000, "residents_65_plus": 400, "geometry": at(1000)},
    {"id": "u3", "residents": 500, "residents_65_plus": 100, "geometry": at(3000)},
])  # fmt: skip
ZONES = frame([{"id": "z1", "name": "Zona", "geometry": shapely.box(X - 500, Y - 500, X + 3500,
                                                                    Y + 500)}])  # fmt: skip
DEVICES = frame([
    # before the plan, 50 m (65 m on foot) from u1
    device("dA", at(50), installed_on=dt.date(2018, 1, 1)),
    # new in 2025, at u2
    device("dB", at(1050), installed_on=dt.date(2025, 3, 1)),
    # before the plan, at u3, removed in September 2025: in neither term of the change
    device("dC", at(3050), installed_on=dt.date(2020, 1, 1), removed_on=dt.date(2025, 9, 30),
           status="removed"),
    # new in 2026 next to dA: adds nothing, but it costs
    device("dE", at(0, 30), installed_on=dt.date(2026, 2, 1)),
    # new in 2026 at u3, office hours only
    device("dF", at(3040), installed_on=dt.date(2026, 3, 1), opening_hours="Mo-Fr 09:00-14:00"),
    # rejected record at u3: no lives, no cost
    device("dG", at(3000, 40), installed_on=dt.date(2025, 5, 1), verification="rejected"),
    # pending moderation, next to dB: it stands (as for coverage), adds nothing, costs
    device("dH", at(1000, -40), installed_on=dt.date(2026, 3, 15), verification="pending"),
    # installed after the day the figures are taken on
    device("dI", at(3000, -40), installed_on=dt.date(2026, 9, 1)),
])  # fmt: skip
ENTITIES = frame([{"id": "e1", "name": "Entidad", "kind": "association",
                   "member_since": dt.date(2024, 1, 1), "geometry": at(40)}])  # fmt: skip
TRAINING = pd.DataFrame(columns=["held_on", "entity_id", "kind", "people_trained"])
USES = pd.DataFrame(columns=["used_at", "people_attended"])


def parameters(**ranges: tuple[float, float, float]) -> OutcomeParameters:
    rows = [
        {"key": key, "central": str(value), "low": str(value), "high": str(value),
         "source": "prueba"}
        for key, value in FIXED.items()
    ]  # fmt: skip
    fixed = OutcomeParameters.from_rows(rows, name="prueba.csv")
    return fixed.with_values(ranges) if ranges else fixed


@pytest.fixture(scope="module")
def town(city: CityProfile) -> CityProfile:
    return dataclasses.replace(
        city, population=3_500, plan=COSTED, boundary=SQUARE.to_crs("EPSG:4326").iloc[0]
    )


def indicators(town: CityProfile, outcome: OutcomeParameters | None, **extra: Any) -> Indicators:
    return compute_indicators(
        city=town, devices=DEVICES, entities=ENTITIES, zones=ZONES, population=POPULATION,
        training=TRAINING, uses=USES, references=[], as_of=AS_OF, radius_m=100,
        outcome_parameters=outcome, **extra,
    )  # fmt: skip


@pytest.fixture(scope="module")
def result(town: CityProfile) -> Indicators:
    return indicators(town, parameters())


def test_lives_at_each_year_end(result: Indicators) -> None:
    y2025, y2026 = result.year(2025), result.year(2026)
    # 2025 ends with dA (u1) and dB (u2) standing; dC was removed in September
    assert y2025["lives_saved"] == pytest.approx(3000 * PER_RESIDENT)  # 0.3
    # 2026: also dF at u3 in office hours; dE and dH add nothing; dG is rejected
    assert y2026["lives_saved"] == pytest.approx((3000 + 500 * OFFICE_HOURS) * PER_RESIDENT)
    # without a range the band is the value itself
    for row in (y2025, y2026):
        for key, (low, high) in BANDS.items():
            if key != "cost_per_life_year_eur":
                assert row[low] == pytest.approx(row[key]) == pytest.approx(row[high])
    # the model's week: the one holding 31 December 2025, and the one holding 30 June 2026
    assert y2025["outcome_week_start"] == dt.date(2025, 12, 29)
    assert y2026["outcome_week_start"] == dt.date(2026, 6, 29)
    assert result.year(2027)[["lives_saved", "cost_per_life_year_eur"]].isna().all()


def test_the_change_the_plans_devices_made(result: Indicators) -> None:
    y2025, y2026 = result.year(2025), result.year(2026)
    # only dA stood before the plan (dC too, but it is gone at both year ends)
    assert y2025["lives_saved_initial_only"] == pytest.approx(1000 * PER_RESIDENT)
    assert y2026["lives_saved_initial_only"] == pytest.approx(1000 * PER_RESIDENT)
    for row in (y2025, y2026):
        assert row["lives_saved_by_new_devices"] == pytest.approx(
            row["lives_saved"] - row["lives_saved_initial_only"]
        )
    assert y2025["lives_saved_by_new_devices"] == pytest.approx(2000 * PER_RESIDENT)  # 0.2
    added_2026 = (2000 + 500 * OFFICE_HOURS) * PER_RESIDENT
    assert y2026["lives_saved_by_new_devices"] == pytest.approx(added_2026)
    assert y2026["life_years_by_new_devices"] == pytest.approx(added_2026 * 10)


def test_cost_per_life_year(result: Indicators) -> None:
    y2025, y2026 = result.year(2025), result.year(2026)
    # the plan's devices standing: 2025 dB; 2026 dB, dE, dF and the pending dH (not dG, not dI)
    assert (y2025["plan_devices_in_place"], y2026["plan_devices_in_place"]) == (1, 4)
    assert y2025["new_devices_annual_cost_eur"] == pytest.approx(400.0)
    assert y2026["new_devices_annual_cost_eur"] == pytest.approx(4 * 400.0)
    # 400 € a year for 0.2 lives × 10 life-years = 200 € per life-year gained
    assert y2025["cost_per_life_year_eur"] == pytest.approx(400 / 2.0)
    life_years = (2000 + 500 * OFFICE_HOURS) * PER_RESIDENT * 10
    assert y2026["cost_per_life_year_eur"] == pytest.approx(1600 / life_years)
    assert y2026["cost_per_life_year_eur_low"] == pytest.approx(y2026["cost_per_life_year_eur"])
    assert COSTED.annual_cost_per_device_eur == PER_DEVICE_EUR
    assert not any("coste" in note for note in result.notes)


def test_without_a_cost_there_is_no_cost_per_life_year(town: CityProfile) -> None:
    plain = indicators(dataclasses.replace(town, plan=PLAN), parameters())
    row = plain.year(2025)
    assert row["lives_saved"] == pytest.approx(0.3)
    assert math.isnan(row["new_devices_annual_cost_eur"])
    assert math.isnan(row["cost_per_life_year_eur"])
    assert any("No hay coste de los desfibriladores" in note for note in plain.notes)
    document = plain.to_dict()
    assert document["plan"]["device_cost_eur"] is None
    assert document["plan"]["annual_cost_per_device_eur"] is None
    assert document["plan"]["device_lifetime_years"] == 10.0  # the stated default


def test_devices_that_add_no_life_year_have_no_cost_per_life_year(town: CityProfile) -> None:
    # only dE, redundant with dA, is new in the plan
    only = DEVICES[DEVICES["id"].isin(["dA", "dE"])]
    result = compute_indicators(
        city=town, devices=only, entities=ENTITIES, zones=ZONES, population=POPULATION,
        training=TRAINING, uses=USES, references=[], as_of=AS_OF,
        outcome_parameters=parameters(),
    )  # fmt: skip
    row = result.year(2026)
    assert row["lives_saved_by_new_devices"] == 0.0
    assert row["new_devices_annual_cost_eur"] == pytest.approx(400.0)
    assert math.isnan(row["cost_per_life_year_eur"])
    assert any("En 2026, los desfibriladores instalados en el plan no añaden" in n
               for n in result.notes)  # fmt: skip
    # 2025: no device of the plan stands, nothing to pay, nothing gained
    assert result.year(2025)["new_devices_annual_cost_eur"] == 0.0


def test_no_device_at_all(town: CityProfile) -> None:
    none = compute_indicators(
        city=town, devices=DEVICES.iloc[0:0], entities=ENTITIES, zones=ZONES,
        population=POPULATION, training=TRAINING, uses=USES, references=[], as_of=AS_OF,
        outcome_parameters=parameters(),
    )  # fmt: skip
    assert none.year(2026)["lives_saved"] == 0.0
    assert none.year(2026)["lives_saved_by_new_devices"] == 0.0


def test_bands_match_the_outcome_model_and_are_paired(town: CityProfile) -> None:
    # Only the survival gain varies: every figure is proportional to it, draw by draw.
    ranged = parameters(survival_gain=(0.2, 0.4, 0.5))
    result = indicators(town, ranged)
    row = result.year(2026)
    standing = DEVICES[DEVICES["id"].isin(["dA", "dB", "dE", "dF", "dG", "dH"])]
    model = outcomes(POPULATION, standing, town, ranged, week_of=AS_OF)
    for key in ("lives_saved", "lives_saved_low", "lives_saved_high"):
        assert row[key] == pytest.approx(model.city[key])
    assert row["life_years_by_new_devices"] > 0
    scale_low = row["lives_saved_low"] / row["lives_saved"]
    scale_high = row["lives_saved_high"] / row["lives_saved"]
    assert scale_low < 1 < scale_high
    added = row["lives_saved_by_new_devices"]
    assert row["lives_saved_by_new_devices_low"] == pytest.approx(added * scale_low)
    assert row["lives_saved_by_new_devices_high"] == pytest.approx(added * scale_high)
    # the cost per life-year falls as the gain rises: its low end goes with the high gain
    cost = row["cost_per_life_year_eur"]
    assert row["cost_per_life_year_eur_low"] == pytest.approx(cost / scale_high, rel=1e-3)
    assert row["cost_per_life_year_eur_high"] == pytest.approx(cost / scale_low, rel=1e-3)


def test_without_parameters_no_lives_are_estimated(town: CityProfile) -> None:
    result = indicators(town, None)
    assert result.lives is None
    assert result.years["lives_saved"].isna().all()
    assert any("Sin los parámetros del modelo" in note for note in result.notes)
    assert result.to_dict()["outcomes"] is None


def test_the_method_is_stated(result: Indicators) -> None:
    lives = result.lives
    assert lives is not None
    assert (lives.reach_m, lives.full_use_m) == (200.0, 100.0)
    assert lives.home_arrests == HOME_ARRESTS_NOTE
    document = json.loads(json.dumps(result.to_dict(), default=str))
    method = document["outcomes"]
    assert method["mode"] == "weekly" and method["band"]["percentiles"] == [5.0, 95.0]
    assert [p["key"] for p in method["parameters"]][:2] == [
        "incidence_per_100k", "share_arrests_65_plus"
    ]  # fmt: skip
    assert all(p["source"] == "prueba" for p in method["parameters"])
    years = {row["year"]: row for row in document["years"]}
    assert years[2025]["lives_saved"] == pytest.approx(0.3)
    assert years[2025]["cost_per_life_year_eur"] == pytest.approx(200.0)
    assert document["plan"]["annual_cost_per_device_eur"] == 400.0
    assert document["to_date"]["lives_saved"] == pytest.approx(
        (3000 + 500 * OFFICE_HOURS) * PER_RESIDENT
    )


def test_home_arrests_counted_when_asked(town: CityProfile) -> None:
    counted = indicators(town, parameters(home_use_factor=(0.1, 0.1, 0.1)))
    assert counted.lives is not None
    assert "se cuentan" in counted.lives.home_arrests and "0,100" in counted.lives.home_arrests
    # residents reached: the public half plus a tenth of the home half
    assert counted.year(2025)["lives_saved"] == pytest.approx(0.3 * (0.5 + 0.5 * 0.1) / 0.5)


def test_table_rows_carry_the_bands(result: Indicators) -> None:
    rows = indicator_rows(result, year=2026).set_index("indicator")
    assert rows.index.tolist()[-13:] == [
        "lives_saved", "lives_saved_low", "lives_saved_high",
        "lives_saved_by_new_devices", "lives_saved_by_new_devices_low",
        "lives_saved_by_new_devices_high",
        "life_years_by_new_devices", "life_years_by_new_devices_low",
        "life_years_by_new_devices_high",
        "new_devices_annual_cost_eur",
        "cost_per_life_year_eur", "cost_per_life_year_eur_low", "cost_per_life_year_eur_high",
    ]  # fmt: skip
    assert rows.loc["lives_saved", "2025"] == pytest.approx(0.3)
    assert rows.loc["lives_saved", "change_2026"] == pytest.approx(
        500 * OFFICE_HOURS * PER_RESIDENT
    )
    assert pd.isna(rows.loc["lives_saved_low", "change_2026"])
    assert set(INDICATOR_LABELS) <= set(rows.index)


@pytest.mark.parametrize(
    ("key", "value", "text"),
    [("lives_saved", 0.0152, "0,015"), ("lives_saved", 0.000882, "0,00088"),
     ("lives_saved", 1.2, "1,20"), ("lives_saved", 0.0, "0,00"),
     ("life_years_by_new_devices", 12.34, "12,34"),
     ("cost_per_life_year_eur", 56705.7, "56.706 €"), ("new_devices_annual_cost_eur", 400, "400 €"),
     ("cost_per_life_year_eur", float("nan"), "—")],
)  # fmt: skip
def test_format_of_the_estimates(key: str, value: float, text: str) -> None:
    assert format_value(key, value) == text


def test_format_band() -> None:
    assert format_band("lives_saved", 0.0152, 0.00893, 0.0234) == "0,015 (0,009–0,023)"
    assert format_band("cost_per_life_year_eur", 200, 150, np.nan) == "200 € (150 €–—)"
    assert format_band("lives_saved", None, 0.1, 0.2) == "—"


# --- the plan's cost fields in city.json ------------------------------------------------------


def write_profile(tmp_path: Path, **plan: object) -> Path:
    profile = json.loads((DATA_DIR / "city.json").read_text(encoding="utf-8"))
    profile["plan"] |= plan
    path = tmp_path / "city.json"
    path.write_text(json.dumps(profile, ensure_ascii=False), encoding="utf-8")
    return path


def test_palencias_plan_has_no_invented_cost() -> None:
    plan = load_city_profile(DATA_DIR / "city.json").plan
    assert plan is not None
    assert plan.device_cost_eur is None and plan.annual_cost_per_device_eur is None


def test_a_configured_cost(tmp_path: Path) -> None:
    path = write_profile(
        tmp_path,
        device_cost_eur=1800,
        device_upkeep_eur_per_year=120,
        device_cost_source="Presupuesto municipal 2025",
    )
    plan = load_city_profile(path).plan
    assert plan is not None
    assert (plan.device_cost_eur, plan.lifetime_years, plan.device_lifetime_years) == (
        1800.0, 10.0, None
    )  # fmt: skip
    assert plan.annual_cost_per_device_eur == pytest.approx(1800 / 10 + 120)


@pytest.mark.parametrize(
    ("fields", "messages"),
    [
        ({"device_cost_eur": 1500}, ["device_cost_eur necesita device_cost_source"]),
        ({"device_upkeep_eur_per_year": 100},
         ["device_upkeep_eur_per_year sin device_cost_eur"]),
        ({"device_cost_eur": "mil", "device_lifetime_years": 0, "device_cost_source": "x"},
         ["device_cost_eur debe ser un número de euros (se leyó 'mil')",
          "device_lifetime_years debe ser mayor que 0 (se leyó 0)"]),
        ({"device_cost_eur": -1, "device_cost_source": " "},
         ["device_cost_eur debe ser 0 o mayor", "device_cost_source debe ser un texto"]),
        ({"device_cost_eur": True, "device_cost_source": "x"}, ["debe ser un número de euros"]),
    ],
)  # fmt: skip
def test_bad_cost_fields_are_all_reported(
    tmp_path: Path, fields: dict[str, object], messages: list[str]
) -> None:
    with pytest.raises(CityProfileError) as caught:
        load_city_profile(write_profile(tmp_path, **fields))
    text = str(caught.value)
    assert text.startswith('city.json, campo "plan": ')
    for message in messages:
        assert message in text
