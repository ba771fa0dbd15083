"""Expected lives saved (:mod:`geo.core.outcomes`): hand-checked figures, a brute-force reference,
invariants, and bad parameters.

The hand-made city is in EPSG:25830 (metres) around Palencia, distances are straight lines with
no detour (``StraightLine(1.0)``), so every figure below can be worked out on paper. The brute
force is a deliberately slow, independent implementation of the model as the module docstring
states it: for each unit and each hour, the best open device's u(d), no basis, no ranking.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from zoneinfo import ZoneInfo

import geopandas as gpd
import numpy as np
import opening_hours
import pandas as pd
import pytest
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st

from geo.city import CityProfile
from geo.core.coverage import NO_ZONE
from geo.core.distance import StraightLine
from geo.core.outcome_model import (
    HOME_ARRESTS_NOTE,
    PARAMETER_KEYS,
    OutcomeParameters,
    age_rates,
    hour_weights,
    use_shape,
)
from geo.core.outcomes import OutcomeResult, outcomes
from geo.errors import OutcomeInputError
from geo.services.inputs import outcome_parameters
from geo.settings import Settings

X, Y = 373_000.0, 4_651_000.0
CRS = "EPSG:25830"
MONDAY = dt.date(2026, 11, 23)  # a week with no public holiday and no DST change
OFFICE = "Mo-Fr 08:00-20:00"  # 5 days × 12 h = 60 of the 168 hourly slices, all of them "day"
MORNING = "Mo-Sa 09:00-14:00"
EXACT = StraightLine(1.0)
DRAWS = 200

Value = float | tuple[float, float, float]

#: Round numbers for the hand-checked figures (central = low = high: no band).
HAND: dict[str, Value] = {
    "incidence_per_100k": 20.0,
    "share_arrests_65_plus": 0.5,
    "share_65_plus_population": 0.2,
    "share_public": 0.4,
    "home_use_factor": 0.0,
    "use_probability": 0.25,
    "full_use_m": 100.0,
    "reach_m": 200.0,
    "survival_gain": 0.3,
    "day_night_ratio": 1.0,
    "life_years_per_survivor": 10.0,
}
#: The same with ranges, for the band.
RANGED: dict[str, Value] = {
    **HAND,
    "incidence_per_100k": (15.0, 20.0, 25.0),
    "share_arrests_65_plus": (0.4, 0.5, 0.6),
    "share_public": (0.3, 0.4, 0.5),
    "home_use_factor": (0.0, 0.05, 0.1),
    "use_probability": (0.15, 0.25, 0.35),
    "survival_gain": (0.2, 0.3, 0.4),
    "day_night_ratio": (1.0, 2.0, 3.0),
    "life_years_per_survivor": (6.0, 10.0, 15.0),
}


def rows(values: Mapping[str, Value]) -> list[dict[str, str]]:
    """CSV rows (as :class:`csv.DictReader` gives them) for ``values``."""
    out = []
    for key, value in values.items():
        low, central, high = value if isinstance(value, tuple) else (value, value, value)
        out.append(
            {
                "key": key,
                "central": str(central),
                "low": str(low),
                "high": str(high),
                "unit": "",
                "label": key,
                "source": "prueba",
                "note": "",
            }
        )
    return out


def params(values: Mapping[str, Value] = HAND, **overrides: Value) -> OutcomeParameters:
    return OutcomeParameters.from_rows(rows({**values, **overrides}), name="prueba.csv")


def device(
    ident: str, x: float, y: float, hours: str | None = "24/7", **extra: object
) -> dict[str, object]:
    row = {"id": ident, "name": f"DEA {ident}", "status": "active", "verification": "verified",
           "access": "yes", "is_mobile": False, "opening_hours": hours,
           "operator_entity_id": None, "geometry": shapely.Point(X + x, Y + y)}  # fmt: skip
    return {**row, **extra}


DEVICE_COLUMNS = list(device("_", 0, 0))


def make_devices(rows_: list[dict[str, object]]) -> gpd.GeoDataFrame:
    frame = pd.DataFrame(rows_, columns=DEVICE_COLUMNS)
    return gpd.GeoDataFrame(frame, geometry="geometry", crs=CRS)


def make_population(units: list[tuple[str, float, float, int, int]]) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(
        {
            "id": [u[0] for u in units],
            "residents": [u[3] for u in units],
            "residents_65_plus": [u[4] for u in units],
        },
        geometry=[shapely.Point(X + u[1], Y + u[2]) for u in units],
        crs=CRS,
    )


# --- the hand-checked city --------------------------------------------------------------------
#
# A (24/7) at (0, 0); B (Mo-Fr 08:00-20:00) at (0, 250); C (private) on top of u2;
# D (out of service) on top of u3.
#
#   unit  at         residents  65+   distances (m)           shape u(d)/u(0)
#   u1    (50, 0)        1000   200   A 50,  B 255 (out)      A: 1
#   u2    (0, 150)       2000   500   A 150, B 100            A: (200−150)/100 = 0.5, B: 1
#   u3    (0, 370)       4000  1000   A 370 (out), B 120      B: (200−120)/100 = 0.8
#
# Rates: incidence 20 / 100 000 = 2e-4; rate 65+ = 2e-4 × 0.5 / 0.2 = 5e-4,
#        rate under 65 = 2e-4 × 0.5 / 0.8 = 1.25e-4 (per person and year).
# Arrests per year λ: u1 = 800 × 1.25e-4 + 200 × 5e-4 = 0.1 + 0.1 = 0.2
#                     u2 = 1500 × 1.25e-4 + 500 × 5e-4 = 0.1875 + 0.25 = 0.4375
#                     u3 = 3000 × 1.25e-4 + 1000 × 5e-4 = 0.375 + 0.5 = 0.875    (city 1.5125)
# π' = 0.4 + 0.6 × 0 = 0.4; lives per arrest and unit of shape k = π' × 0.25 × 0.3 = 0.03.
HAND_UNITS = [
    ("u1", 50.0, 0.0, 1000, 200),
    ("u2", 0.0, 150.0, 2000, 500),
    ("u3", 0.0, 370.0, 4000, 1000),
]
HAND_DEVICES = [
    device("A", 0, 0),
    device("B", 0, 250, OFFICE),
    device("C", 0, 150, access="private"),
    device("D", 0, 370, status="out_of_service"),
]
HAND_ZONES = gpd.GeoDataFrame(
    {"id": ["sur", "norte"], "name": ["Sur", "Norte"]},
    geometry=[
        shapely.box(X - 100, Y - 100, X + 100, Y + 200),
        shapely.box(X - 100, Y + 200, X + 100, Y + 500),
    ],
    crs=CRS,
)
K = 0.4 * 0.25 * 0.3
LAMBDA = {"u1": 0.2, "u2": 0.4375, "u3": 0.875}


def hand(
    city: CityProfile,
    *,
    parameters: OutcomeParameters | None = None,
    mode: str = "weekly",
    at: dt.datetime | None = None,
    reach_m: float | None = None,
    model: StraightLine = EXACT,
    weights: np.ndarray | None = None,
    draws: int = DRAWS,
) -> OutcomeResult:
    """The hand-checked city, flat hours (``day_night_ratio`` 1) unless told otherwise."""
    return outcomes(
        make_population(HAND_UNITS),
        make_devices(HAND_DEVICES),
        city,
        parameters or params(),
        mode=mode,
        at=at,
        week_of=MONDAY,
        reach_m=reach_m,
        zones=HAND_ZONES,
        model=model,
        weights=weights,
        draws=draws,
    )


def by_id(result: OutcomeResult) -> pd.DataFrame:
    return pd.DataFrame(result.devices.drop(columns="geometry")).set_index("device_id")


def test_the_building_blocks() -> None:
    under, over = age_rates(20.0, 0.5, 0.2)
    assert (float(under), float(over)) == pytest.approx((1.25e-4, 5e-4))
    assert use_shape(np.array([0, 100, 150, 120, 200, 250]), full_use_m=100, reach_m=200) == (
        pytest.approx([1, 1, 0.5, 0.8, 0, 0])
    )
    flat = hour_weights(1.0)
    assert flat == pytest.approx(np.full(168, 1 / 168))
    weights = hour_weights(2.0)  # 84 day hours × 2 + 84 night hours × 1 = 252
    assert weights.sum() == pytest.approx(1.0)
    assert weights[10] == pytest.approx(2 / 252) and weights[22] == pytest.approx(1 / 252)


def test_hand_checked_week_flat_hours(city: CityProfile) -> None:
    """day_night_ratio 1: every hour weighs 1/168; B is open 60 of them."""
    result = hand(city)
    # Lives per unit = λ × k × Σ_h w_h × shape(best open device in h)
    #   u1: A always, shape 1                         → 0.2 × 0.03 × 1               = 0.006
    #   u2: B (1) in 60 slices, A (0.5) in the other 108 → Σ = (60 + 54) / 168 = 114/168
    #       0.4375 × 0.03 × 114 / 168 = 0.013125 × 114 / 168                         = 0.00890625
    #   u3: B (0.8) in 60 slices, nothing otherwise    → 0.875 × 0.03 × 48 / 168     = 0.0075
    units = result.units.set_index("id")
    assert units["lives_saved"].to_dict() == pytest.approx(
        {"u1": 0.006, "u2": 0.00890625, "u3": 0.0075}
    )
    assert units["arrests_per_year"].to_dict() == pytest.approx(LAMBDA)
    city_ = result.city
    assert city_["lives_saved"] == pytest.approx(0.02240625)
    # No range in the parameters: the band collapses on the central figure.
    assert city_["lives_saved_low"] == pytest.approx(0.02240625)
    assert city_["lives_saved_high"] == pytest.approx(0.02240625)
    assert city_["arrests_per_year"] == pytest.approx(1.5125)
    assert city_["public_arrests_per_year"] == pytest.approx(1.5125 * 0.4)  # 0.605
    # Public arrests with some open device in reach: u1 0.2 × 0.4 = 0.08, u2 0.4375 × 0.4 = 0.175,
    # u3 0.875 × 0.4 × 60/168 = 0.125 → 0.38.
    assert city_["arrests_in_reach"] == pytest.approx(0.38)
    # Uses = lives / ΔS: 0.02240625 / 0.3 = 0.0746875.
    assert city_["uses_per_year"] == pytest.approx(0.0746875)
    assert city_["life_years_per_year"] == pytest.approx(0.2240625)  # × 10 years
    assert city_["lives_saved_per_million"] == pytest.approx(0.02240625 / 7000 * 1e6)
    assert (city_["residents"], city_["residents_65_plus"]) == (7000, 1700)
    assert (city_["devices_counted"], city_["devices_total"]) == (2, 4)
    assert HOME_ARRESTS_NOTE in result.notes

    zones = result.by_zone.set_index("zone_id")
    assert list(zones.index) == ["norte", "sur"]  # by name; nobody outside a zone
    assert zones.loc["sur", "residents"] == 3000 and zones.loc["norte", "residents"] == 4000
    assert zones.loc["sur", "lives_saved"] == pytest.approx(0.006 + 0.00890625)
    assert zones.loc["norte", "lives_saved"] == pytest.approx(0.0075)
    assert zones.loc["sur", "arrests_per_year"] == pytest.approx(0.6375)
    assert zones.loc["norte", "public_arrests_per_year"] == pytest.approx(0.35)
    assert zones.loc["sur", "arrests_in_reach"] == pytest.approx(0.255)
    assert zones.loc["norte", "arrests_in_reach"] == pytest.approx(0.125)
    assert zones.loc["norte", "uses_per_year"] == pytest.approx(0.025)

    devices = by_id(result)
    assert devices["counted"].to_dict() == {"A": True, "B": True, "C": False, "D": False}
    # A: in reach of u1 and u2 always: 0.08 + 0.175.
    assert devices.loc["A", "arrests_in_reach"] == pytest.approx(0.255)
    # A is the best for u1 always (0.006) and for u2 in 108 slices at 0.5:
    #   0.013125 × 0.5 × 108 / 168 = 0.00421875 → 0.01021875. Nothing is behind it (C is private),
    #   so removing it loses as much.
    assert devices.loc["A", "lives_saved"] == pytest.approx(0.01021875)
    assert devices.loc["A", "uses_per_year"] == pytest.approx(0.01021875 / 0.3)
    assert devices.loc["A", "marginal_lives"] == pytest.approx(0.01021875)
    # Closed 20:00–08:00 (84 night slices; B is never open then):
    #   u1 0.006 × 84/168 = 0.003; u2 0.013125 × 0.5 × 84/168 = 0.00328125 → 0.00628125.
    assert devices.loc["A", "marginal_night_lives"] == pytest.approx(0.00628125)
    assert devices.loc["A", "gain_if_24_7"] == pytest.approx(0.0)  # already open 24/7
    # B: in reach of u2 in its 60 slices (0.175 × 60/168 = 0.0625) and of u3 (0.125).
    assert devices.loc["B", "arrests_in_reach"] == pytest.approx(0.1875)
    # Best for u2 in 60 slices (0.013125 × 60/168 = 0.0046875) and for u3 (0.0075).
    assert devices.loc["B", "lives_saved"] == pytest.approx(0.0121875)
    # Without B: u2 drops from 1 to 0.5 in 60 slices (0.013125 × 0.5 × 60/168 = 0.00234375),
    # u3 from 0.8 to nothing (0.0075) → 0.00984375.
    assert devices.loc["B", "marginal_lives"] == pytest.approx(0.00984375)
    assert devices.loc["B", "marginal_night_lives"] == pytest.approx(0.0)  # closed at night anyway
    # Open 24/7, B adds its shape over the best in the 108 other slices:
    #   u2 (1 − 0.5) × 0.013125 × 108/168 = 0.00421875; u3 0.8 × 0.02625 × 108/168 = 0.0135.
    assert devices.loc["B", "gain_if_24_7"] == pytest.approx(0.01771875)
    # Served lives add up to the city's.
    assert devices["lives_saved"].sum() == pytest.approx(city_["lives_saved"])
    for column in ("arrests_in_reach", "lives_saved", "marginal_lives", "gain_if_24_7"):
        assert devices.loc[["C", "D"], column].eq(0).all()


def test_hand_checked_week_day_night_ratio_2(city: CityProfile) -> None:
    """day_night_ratio 2: a day hour weighs 2/252 = 1/126, a night hour 1/252.

    B's 60 day slices weigh 60/126 = 10/21 of the week; the other slices 11/21; the 84 night
    slices 84/252 = 1/3.
    """
    result = hand(city, parameters=params(day_night_ratio=2.0))
    # u1: 0.006 (A always). u2: Σ = 10/21 × 1 + 11/21 × 0.5 = 15.5/21 → 0.013125 × 15.5/21
    # = 0.0096875. u3: 0.02625 × 0.8 × 10/21 = 0.01. City 0.0256875.
    units = result.units.set_index("id")
    assert units["lives_saved"].to_dict() == pytest.approx(
        {"u1": 0.006, "u2": 0.0096875, "u3": 0.01}
    )
    assert result.lives_saved == pytest.approx(0.0256875)
    # Arrests in reach: 0.08 + 0.175 + 0.35 × 10/21 = 0.255 + 0.1666…
    assert result.city["arrests_in_reach"] == pytest.approx(0.255 + 0.35 * 10 / 21)
    devices = by_id(result)
    # A: u1 0.006 + u2 0.013125 × 0.5 × 11/21 = 0.0034375 → 0.0094375 (served = marginal).
    assert devices.loc["A", "lives_saved"] == pytest.approx(0.0094375)
    assert devices.loc["A", "marginal_lives"] == pytest.approx(0.0094375)
    # A closed at night: u1 0.006 × 1/3 = 0.002; u2 0.013125 × 0.5 × 1/3 = 0.0021875.
    assert devices.loc["A", "marginal_night_lives"] == pytest.approx(0.0041875)
    # B: u2 0.013125 × 0.5 × 10/21 = 0.003125; u3 0.01 → 0.013125.
    assert devices.loc["B", "marginal_lives"] == pytest.approx(0.013125)
    # B is the best for u2 in its slices (0.013125 × 10/21 = 0.00625) and for u3 (0.01).
    assert devices.loc["B", "lives_saved"] == pytest.approx(0.01625)
    assert devices.loc["B", "marginal_night_lives"] == pytest.approx(0.0)
    # 24/7: u2 0.013125 × 0.5 × 11/21 = 0.0034375; u3 0.021 × 11/21 = 0.011 → 0.0144375.
    assert devices.loc["B", "gain_if_24_7"] == pytest.approx(0.0144375)
    # Open 24/7, B would save u2 0.013125 and u3 0.021: the city would be 0.006 + 0.034125.
    assert result.lives_saved + devices.loc["B", "gain_if_24_7"] == pytest.approx(0.040125)


def test_hand_checked_instant_and_always(city: CityProfile) -> None:
    monday_10 = hand(city, mode="instant", at=dt.datetime(2026, 11, 23, 10, 0))
    # B open: u1 A (1), u2 B (1), u3 B (0.8): 0.03 × (0.2 + 0.4375 + 0.7) = 0.040125.
    assert monday_10.lives_saved == pytest.approx(0.040125)
    assert monday_10.city["arrests_in_reach"] == pytest.approx(0.605)  # everyone is in reach
    devices = by_id(monday_10)
    assert devices.loc["B", "marginal_lives"] == pytest.approx(0.03 * (0.4375 * 0.5 + 0.7))
    assert devices["marginal_night_lives"].isna().all()  # weekly only
    monday_22 = hand(city, mode="instant", at=dt.datetime(2026, 11, 23, 22, 0))
    # B closed: u1 1, u2 0.5, u3 nothing: 0.03 × (0.2 + 0.21875) = 0.0125625.
    assert monday_22.lives_saved == pytest.approx(0.0125625)
    assert by_id(monday_22).loc["B", "gain_if_24_7"] == pytest.approx(0.03 * (0.21875 + 0.7))
    always = hand(city, mode="always")
    # Only A is available 24/7: the same as Monday 22:00.
    assert always.lives_saved == pytest.approx(0.0125625)
    assert by_id(always).loc["B", "counted"]  # counted (may be open), but not in this mode
    assert by_id(always).loc["B", "lives_saved"] == 0.0


def test_reach_option_and_detour(city: CityProfile) -> None:
    # reach 300 (full use still to 100 m): u1–B at 254.95 m comes in but A (1) is better;
    # u2: A (150) = 0.75; u3: B (120) = 0.9, A (370) out. Flat week, B 60/168.
    result = hand(city, reach_m=300)
    u2 = 0.013125 * (60 + 108 * 0.75) / 168
    u3 = 0.02625 * 0.9 * 60 / 168
    assert result.reach_m == 300
    assert result.lives_saved == pytest.approx(0.006 + u2 + u3)
    # A detour factor of 1.25 turns u2–A into 187.5 m (shape 0.125) and u3–B into 150 m (0.5),
    # u2–B into 125 m (0.75), u1–A into 62.5 m (1).
    detour = hand(city, model=StraightLine(1.25))
    u2 = 0.013125 * (60 * 0.75 + 108 * 0.125) / 168
    u3 = 0.02625 * 0.5 * 60 / 168
    assert detour.lives_saved == pytest.approx(0.006 + u2 + u3)


def test_home_arrests_can_be_counted(city: CityProfile) -> None:
    # home_use_factor 0.5: π' = 0.4 + 0.6 × 0.5 = 0.7, so every lives figure is × 0.7 / 0.4.
    result = hand(city, parameters=params(home_use_factor=0.5))
    assert result.lives_saved == pytest.approx(0.02240625 * 0.7 / 0.4)
    assert result.city["arrests_in_reach"] == pytest.approx(0.38)  # public arrests only
    assert HOME_ARRESTS_NOTE not in result.notes


def test_the_json_shape(city: CityProfile) -> None:
    document = hand(city).to_dict()
    assert document["totals"]["lives_saved"] == pytest.approx(0.022406, abs=1e-6)
    assert [p["key"] for p in document["parameters"]] == list(PARAMETER_KEYS)
    assert {d["device_id"] for d in document["devices"]} == {"A", "B", "C", "D"}
    assert document["band"]["draws"] == DRAWS
    assert "parameters" not in hand(city).to_dict(parameters=False)


# --- a brute-force reference ------------------------------------------------------------------

HOURS_MIX = ("24/7", OFFICE, MORNING)
ZONE_SPLIT_X, ZONE_TOP_Y = 450.0, 700.0  # two zones below y = 700; above it nobody's zone


def random_city(seed: int) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame, gpd.GeoDataFrame]:
    rng = np.random.default_rng(seed)
    n_units = 60
    xy = rng.uniform(0, 900, size=(n_units, 2))
    residents = rng.integers(0, 600, size=n_units)
    seniors = rng.binomial(residents, 0.25)
    population = gpd.GeoDataFrame(
        {
            "id": [f"u{i}" for i in range(n_units)],
            "residents": residents,
            "residents_65_plus": seniors,
        },
        geometry=[shapely.Point(X + x, Y + y) for x, y in xy],
        crs=CRS,
    )
    places = rng.uniform(0, 900, size=(15, 2))
    rows_ = [
        device(f"d{i}", x, y, HOURS_MIX[int(rng.integers(0, 3))])
        for i, (x, y) in enumerate(places[:11])
    ]
    rows_ += [
        device("d11", places[11, 0], places[11, 1], OFFICE, access="customers"),  # counts
        device("d12", places[12, 0], places[12, 1], "24/7", access="private"),
        device("d13", places[13, 0], places[13, 1], "24/7", status="out_of_service"),
        device("d14", places[14, 0], places[14, 1], "24/7", access="no"),
    ]
    zones = gpd.GeoDataFrame(
        {"id": ["oeste", "este"], "name": ["Oeste", "Este"]},
        geometry=[
            shapely.box(X - 10, Y - 10, X + ZONE_SPLIT_X, Y + ZONE_TOP_Y),
            shapely.box(X + ZONE_SPLIT_X, Y - 10, X + 910, Y + ZONE_TOP_Y),
        ],
        crs=CRS,
    )
    return population, make_devices(rows_), zones


def brute_open(devices: gpd.GeoDataFrame, week_of: dt.date, timezone: str) -> np.ndarray:
    """(devices, 168): eligible and open at each hour's midpoint, straight from opening_hours."""
    zone = ZoneInfo(timezone)
    monday = week_of - dt.timedelta(days=week_of.weekday())
    midpoints = [
        dt.datetime.combine(monday + dt.timedelta(days=s // 24), dt.time(s % 24, 30), tzinfo=zone)
        for s in range(168)
    ]
    mask = np.zeros((len(devices), 168), dtype=bool)
    for d, row in enumerate(devices.itertuples()):
        eligible = (
            row.status == "active"
            and row.verification != "rejected"
            and row.access in {"yes", "permissive", "customers"}
            and not row.is_mobile
        )
        if eligible and row.opening_hours:
            hours = opening_hours.OpeningHours(row.opening_hours, timezone=zone, country="ES")
            mask[d] = [hours.is_open(m) for m in midpoints]
    return mask


def brute_lives(
    population: gpd.GeoDataFrame,
    devices: gpd.GeoDataFrame,
    open_: np.ndarray,
    values: Mapping[str, float],
    *,
    detour: float,
) -> np.ndarray:
    """Lives per unit: λ × π' × u × ΔS × Σ_h w_h × u(d to the best open device)/u(0)."""
    full, reach = values["full_use_m"], values["reach_m"]

    def shape(distance: float) -> float:
        if distance <= full:
            return 1.0
        if distance >= reach:
            return 0.0
        return (reach - distance) / (reach - full)

    weights = np.array([values["day_night_ratio"] if 8 <= s % 24 < 20 else 1.0 for s in range(168)])
    weights /= weights.sum()
    incidence = values["incidence_per_100k"] / 100_000
    s, p = values["share_arrests_65_plus"], values["share_65_plus_population"]
    public = values["share_public"]
    reached = public + (1 - public) * values["home_use_factor"]
    per_arrest = reached * values["use_probability"] * values["survival_gain"]
    lives = np.zeros(len(population))
    for i, unit in enumerate(population.itertuples()):
        seniors = float(unit.residents_65_plus)
        arrests = (float(unit.residents) - seniors) * incidence * (1 - s) / (1 - p)
        arrests += seniors * incidence * s / p
        best = np.zeros(168)
        for d, place in enumerate(devices.geometry):
            distance = unit.geometry.distance(place) * detour
            best = np.maximum(best, np.where(open_[d], shape(distance), 0.0))
        lives[i] = arrests * per_arrest * float(weights @ best)
    return lives


def central_values(values: Mapping[str, Value]) -> dict[str, float]:
    return {k: float(v[1] if isinstance(v, tuple) else v) for k, v in values.items()}


def test_brute_force_reference(city: CityProfile) -> None:
    population, devices, zones = random_city(seed=7)
    values = {**RANGED, "home_use_factor": (0.0, 0.1, 0.2)}
    detour = 1.3
    result = outcomes(
        population, devices, city, params(values), week_of=MONDAY, zones=zones,
        model=StraightLine(detour), draws=DRAWS,
    )  # fmt: skip
    central = central_values(values)
    open_ = brute_open(devices, MONDAY, city.timezone)
    assert open_[12:].sum() == 0  # private, out of service, access=no
    assert open_[:12].any(axis=1).all()

    def city_lives(mask: np.ndarray) -> float:
        return float(brute_lives(population, devices, mask, central, detour=detour).sum())

    per_unit = brute_lives(population, devices, open_, central, detour=detour)
    assert result.lives_saved > 0
    assert result.lives_saved == pytest.approx(per_unit.sum(), rel=1e-9)
    assert result.units["lives_saved"].to_numpy() == pytest.approx(per_unit, rel=1e-9, abs=1e-15)

    # Zones: by position (nobody lies on a border: the coordinates are random floats).
    x = population.geometry.x.to_numpy() - X
    y = population.geometry.y.to_numpy() - Y
    zone_name = np.where(y >= ZONE_TOP_Y, NO_ZONE, np.where(x < ZONE_SPLIT_X, "Oeste", "Este"))
    table = result.by_zone.set_index("zone_name")
    assert list(table.index) == ["Este", "Oeste", NO_ZONE]
    for name in ("Este", "Oeste", NO_ZONE):
        assert table.loc[name, "lives_saved"] == pytest.approx(
            per_unit[zone_name == name].sum(), rel=1e-9
        )
        assert table.loc[name, "residents"] == population["residents"][zone_name == name].sum()

    # Per device: recompute without it, closed at night, open always.
    night = np.array([not 8 <= s % 24 < 20 for s in range(168)])
    total = per_unit.sum()
    table_devices = by_id(result)
    for d, ident in enumerate(devices["id"]):
        row = table_devices.loc[ident]
        if d >= 12:
            assert not row["counted"]
            for column in ("lives_saved", "marginal_lives", "marginal_night_lives"):
                assert row[column] == 0.0
            assert row["gain_if_24_7"] == 0.0
            continue
        assert row["counted"]
        without = open_.copy()
        without[d] = False
        closed_at_night = open_.copy()
        closed_at_night[d] &= ~night
        always = open_.copy()
        always[d] = True
        assert row["marginal_lives"] == pytest.approx(total - city_lives(without), abs=1e-12)
        assert row["marginal_night_lives"] == pytest.approx(
            total - city_lives(closed_at_night), abs=1e-12
        )
        assert row["gain_if_24_7"] == pytest.approx(city_lives(always) - total, abs=1e-12)
    assert table_devices["lives_saved"].sum() == pytest.approx(total, rel=1e-9)
    assert table_devices["marginal_lives"].gt(0).sum() >= 3  # the fixture is not degenerate
    assert table_devices["gain_if_24_7"].gt(0).sum() >= 3


# --- properties -------------------------------------------------------------------------------

SHIPPED = outcome_parameters(Settings())

coordinate = st.floats(min_value=0, max_value=400, allow_nan=False)
unit_strategy = st.tuples(coordinate, coordinate, st.integers(0, 400), st.floats(0, 1))
device_strategy = st.tuples(coordinate, coordinate, st.sampled_from(HOURS_MIX))


def fixture_from(
    units: list[tuple[float, float, int, float]], places: list[tuple[float, float, str]]
) -> tuple[gpd.GeoDataFrame, list[dict[str, object]]]:
    population = make_population(
        [(f"u{i}", x, y, n, int(n * share)) for i, (x, y, n, share) in enumerate(units)]
    )
    return population, [device(f"d{i}", x, y, h) for i, (x, y, h) in enumerate(places)]


def run(
    city: CityProfile,
    population: gpd.GeoDataFrame,
    devices: list[dict[str, object]],
    parameters: OutcomeParameters = SHIPPED,
) -> OutcomeResult:
    return outcomes(population, make_devices(devices), city, parameters, week_of=MONDAY, draws=50)


LIVES_COLUMNS = [
    f"{name}{suffix}"
    for name in ("lives_saved", "marginal_lives", "marginal_night_lives", "gain_if_24_7")
    for suffix in ("", "_low", "_high")
]
CITY_LIVES = [
    f"{name}{suffix}"
    for name in ("lives_saved", "life_years_per_year")
    for suffix in ("", "_low", "_high")
]


@settings(max_examples=15, deadline=None)
@given(st.lists(unit_strategy, min_size=1, max_size=6), st.lists(device_strategy, max_size=4))
def test_lives_are_linear_in_residents(
    city: CityProfile, units: list[tuple[float, float, int, float]],
    places: list[tuple[float, float, str]],
) -> None:  # fmt: skip
    population, devices = fixture_from(units, places)
    doubled = population.assign(
        residents=population["residents"] * 2,
        residents_65_plus=population["residents_65_plus"] * 2,
    )
    one, two = run(city, population, devices), run(city, doubled, devices)
    for key in [*CITY_LIVES, "arrests_per_year", "arrests_in_reach", "uses_per_year"]:
        assert two.city[key] == pytest.approx(2 * one.city[key], rel=1e-9, abs=1e-15)
    for column in ["lives_saved", "lives_saved_low", "lives_saved_high", "arrests_in_reach"]:
        assert two.by_zone[column].to_numpy() == pytest.approx(
            2 * one.by_zone[column].to_numpy(), rel=1e-9, abs=1e-15
        )
    for column in LIVES_COLUMNS:
        assert two.devices[column].to_numpy() == pytest.approx(
            2 * one.devices[column].to_numpy(), rel=1e-9, abs=1e-15
        )


@settings(max_examples=15, deadline=None)
@given(
    st.lists(unit_strategy, min_size=1, max_size=6),
    st.lists(device_strategy, max_size=3),
    device_strategy,
)
def test_more_hours_never_save_fewer_lives(
    city: CityProfile,
    units: list[tuple[float, float, int, float]],
    places: list[tuple[float, float, str]],
    extra: tuple[float, float, str],
) -> None:
    population, devices = fixture_from(units, places)
    x, y, hours = extra
    limited = run(city, population, [*devices, device("new", x, y, hours)])
    always = run(city, population, [*devices, device("new", x, y, "24/7")])
    assert always.lives_saved >= limited.lives_saved - 1e-15
    new_limited, new_always = by_id(limited).loc["new"], by_id(always).loc["new"]
    for column in ("lives_saved", "marginal_lives"):
        assert new_always[column] >= new_limited[column] - 1e-15
    # And the 24/7 gain says by how much.
    assert always.lives_saved - limited.lives_saved == pytest.approx(
        new_limited["gain_if_24_7"], abs=1e-15
    )
    assert new_always["gain_if_24_7"] == pytest.approx(0.0, abs=1e-15)


@settings(max_examples=15, deadline=None)
@given(
    st.lists(unit_strategy, min_size=1, max_size=6),
    st.lists(device_strategy, max_size=3),
    device_strategy,
    st.sampled_from(
        [
            {"access": "private"},
            {"access": "no"},
            {"status": "out_of_service"},
            {"status": "removed"},
            {"verification": "rejected"},
            {"is_mobile": True},
        ]
    ),
)
def test_a_device_nobody_may_use_saves_none_and_changes_nothing(
    city: CityProfile,
    units: list[tuple[float, float, int, float]],
    places: list[tuple[float, float, str]],
    extra: tuple[float, float, str],
    why: dict[str, object],
) -> None:
    population, devices = fixture_from(units, places)
    x, y, _hours = extra
    before = run(city, population, devices)
    after = run(city, population, [*devices, device("x", x, y, "24/7", **why)])
    for key in CITY_LIVES:
        assert after.city[key] == pytest.approx(before.city[key], rel=1e-12, abs=1e-15)
    pd.testing.assert_frame_equal(after.by_zone, before.by_zone)
    added = by_id(after).loc["x"]
    assert not added["counted"]
    assert (added[[*LIVES_COLUMNS, "arrests_in_reach", "uses_per_year"]] == 0).all()
    others, alone = by_id(after).drop(index="x")[LIVES_COLUMNS], by_id(before)[LIVES_COLUMNS]
    assert list(others.index) == list(alone.index)
    np.testing.assert_array_equal(others.to_numpy(dtype=float), alone.to_numpy(dtype=float))


@settings(max_examples=15, deadline=None)
@given(
    st.lists(unit_strategy, min_size=1, max_size=6),
    st.lists(device_strategy, max_size=3),
    device_strategy,
)
def test_adding_a_device_never_lowers_the_total(
    city: CityProfile,
    units: list[tuple[float, float, int, float]],
    places: list[tuple[float, float, str]],
    extra: tuple[float, float, str],
) -> None:
    population, devices = fixture_from(units, places)
    before = run(city, population, devices)
    after = run(city, population, [*devices, device("new", *extra)])
    assert after.lives_saved >= before.lives_saved - 1e-15
    assert after.city["arrests_in_reach"] >= before.city["arrests_in_reach"] - 1e-15
    assert (after.by_zone["lives_saved"] >= before.by_zone["lives_saved"] - 1e-15).all()
    # Its marginal value is exactly what it added.
    assert after.lives_saved - before.lives_saved == pytest.approx(
        by_id(after).loc["new", "marginal_lives"], abs=1e-15
    )


def assert_band(frame: pd.DataFrame | Mapping[str, float], name: str) -> None:
    low, central, high = (np.asarray(frame[f"{name}{s}"]) for s in ("_low", "", "_high"))
    assert (low <= central + 1e-12).all() and (central <= high + 1e-12).all()


@pytest.mark.parametrize("parameters", [SHIPPED, params(RANGED)], ids=["shipped", "test"])
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_the_band_holds_the_central_figure(
    city: CityProfile, parameters: OutcomeParameters, seed: int
) -> None:
    population, devices, zones = random_city(seed)
    result = outcomes(
        population, devices, city, parameters, week_of=MONDAY, zones=zones, draws=DRAWS
    )
    assert result.city["lives_saved_low"] < result.lives_saved < result.city["lives_saved_high"]
    assert_band(result.city, "life_years_per_year")
    assert_band(result.by_zone, "lives_saved")
    for name in ("lives_saved", "marginal_lives", "marginal_night_lives", "gain_if_24_7"):
        assert_band(result.devices, name)


@pytest.mark.parametrize("slot", [0, 9, 13, 14, 33, 100, 130, 167])
def test_weekly_at_one_hour_equals_the_instant_at_its_midpoint(
    city: CityProfile, slot: int
) -> None:
    population, devices, zones = random_city(seed=11)
    weights = np.zeros(168)
    weights[slot] = 1.0
    parameters = params(RANGED)
    week = outcomes(
        population, devices, city, parameters, week_of=MONDAY, weights=weights, zones=zones
    )
    day, hour = divmod(slot, 24)
    at = dt.datetime.combine(MONDAY + dt.timedelta(days=day), dt.time(hour, 30))
    instant = outcomes(population, devices, city, parameters, mode="instant", at=at, zones=zones)
    assert week.hour_weights_origin == "given" and instant.mode == "instant"
    for key in [*CITY_LIVES, "arrests_in_reach", "uses_per_year"]:
        assert week.city[key] == pytest.approx(instant.city[key], rel=1e-9, abs=1e-15)
    columns = ["arrests_in_reach", "uses_per_year", "lives_saved", "lives_saved_low"]
    pd.testing.assert_frame_equal(week.by_zone[columns], instant.by_zone[columns])
    columns = [c for c in LIVES_COLUMNS if not c.startswith("marginal_night")]
    np.testing.assert_allclose(
        week.devices[columns].to_numpy(dtype=float),
        instant.devices[columns].to_numpy(dtype=float),
        rtol=1e-9,
        atol=1e-15,
    )


def test_the_band_is_reproducible(city: CityProfile) -> None:
    population, devices, zones = random_city(seed=5)

    def band(seed: int) -> np.ndarray:
        result = outcomes(
            population, devices, city, SHIPPED, week_of=MONDAY, zones=zones, seed=seed
        )
        return np.array(
            [result.city["lives_saved_low"], result.city["lives_saved_high"],
             *result.by_zone["lives_saved_low"], *result.by_zone["lives_saved_high"],
             *result.devices["marginal_lives_low"], *result.devices["marginal_lives_high"]]
        )  # fmt: skip

    first, again, other = band(1), band(1), band(2)
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)
    assert other == pytest.approx(first, rel=0.1, abs=1e-12)


# --- parameters -------------------------------------------------------------------------------


def broken(change: Callable[[list[dict[str, str]]], None]) -> list[dict[str, str]]:
    table = rows(HAND)
    change(table)
    return table


def at_key(key: str, **fields: str) -> Callable[[list[dict[str, str]]], None]:
    def change(table: list[dict[str, str]]) -> None:
        next(row for row in table if row["key"] == key).update(fields)

    return change


LINE_OF = {key: index + 2 for index, key in enumerate(HAND)}  # line 1 is the header


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            at_key("survival_gain", central="treinta"),
            rf"prueba\.csv, línea {LINE_OF['survival_gain']}, campo central: 'treinta' no es "
            "un número",
        ),
        (
            at_key("use_probability", high=""),
            rf"prueba\.csv, línea {LINE_OF['use_probability']}, campo high: falta el valor",
        ),
        (
            at_key("incidence_per_100k", source=" "),
            rf"prueba\.csv, línea {LINE_OF['incidence_per_100k']}, campo source: falta el valor",
        ),
        (
            at_key("incidence_per_100k", low="25"),
            rf"prueba\.csv, línea {LINE_OF['incidence_per_100k']}: incidence_per_100k: debe "
            r"cumplirse bajo ≤ central ≤ alto \(se leyó 25 ≤ 20 ≤ 20\)",
        ),
        (
            at_key("share_public", central="1.2", high="1.5"),
            rf"línea {LINE_OF['share_public']}: share_public: es una proporción, entre 0 y 1",
        ),
        (
            at_key("day_night_ratio", low="0", central="0", high="0"),
            rf"línea {LINE_OF['day_night_ratio']}: day_night_ratio: debe ser mayor que 0",
        ),
        (
            at_key("reach_m", low="150"),
            rf"línea {LINE_OF['reach_m']}: reach_m: es una distancia .* no admite rango",
        ),
        (
            at_key("full_use_m", low="300", central="300", high="300"),
            r"full_use_m \(300 m\) no puede superar el alcance reach_m \(200 m\)",
        ),
        (
            lambda table: table.remove(next(r for r in table if r["key"] == "survival_gain")),
            "Faltan parámetros del modelo de vidas salvadas: survival_gain",
        ),
        (
            lambda table: table.append({**table[3], "central": "0.9", "high": "0.9"}),
            rf"prueba\.csv, línea {len(HAND) + 2}, campo key: share_public ya está en la línea "
            rf"{LINE_OF['share_public']}",
        ),
        (
            lambda table: table.append({**table[0], "key": "coste_por_dea"}),
            r"Parámetro desconocido: coste_por_dea \(se admiten incidence_per_100k",
        ),
    ],
    ids=[
        "not-a-number",
        "empty-field",
        "empty-source",
        "low-above-central",
        "share-above-1",
        "ratio-zero",
        "distance-range",
        "full-beyond-reach",
        "missing-key",
        "duplicate-key",
        "unknown-key",
    ],
)
def test_bad_parameter_rows_are_refused(
    change: Callable[[list[dict[str, str]]], None], message: str
) -> None:
    with pytest.raises(OutcomeInputError, match=message):
        OutcomeParameters.from_rows(broken(change), name="prueba.csv")


def test_decimal_commas_are_read() -> None:
    parameters = OutcomeParameters.from_rows(
        broken(at_key("share_public", central="0,35", low="0,3", high="0,41")), name="prueba.csv"
    )
    assert (parameters["share_public"].low, parameters.central("share_public")) == (0.3, 0.35)


def test_overrides() -> None:
    base = params(RANGED)
    fixed = base.with_values({"use_probability": 0.5, "survival_gain": (0.1, 0.2, 0.3)})
    assert fixed["use_probability"].fixed and fixed.central("use_probability") == 0.5
    assert (fixed["survival_gain"].low, fixed["survival_gain"].high) == (0.1, 0.3)
    assert fixed["use_probability"].source.startswith("prueba — valor fijado por el usuario")
    assert base.central("use_probability") == 0.25  # frozen: the original is unchanged
    with pytest.raises(OutcomeInputError, match="Parámetro desconocido: coste"):
        base.with_values({"coste": 1.0})
    with pytest.raises(OutcomeInputError, match="share_public: es una proporción"):
        base.with_values({"share_public": 2.0})
    with pytest.raises(OutcomeInputError, match="Parámetro desconocido: 'coste'"):
        base["coste"]


def test_bad_run_options_are_refused(city: CityProfile) -> None:
    with pytest.raises(OutcomeInputError, match="Modo 'hourly' desconocido"):
        hand(city, mode="hourly")
    with pytest.raises(OutcomeInputError, match="necesita un instante"):
        hand(city, mode="instant")
    with pytest.raises(OutcomeInputError, match="al menos 10 simulaciones"):
        hand(city, draws=5)
    with pytest.raises(OutcomeInputError, match="168 números no negativos"):
        hand(city, weights=np.ones(24))
    with pytest.raises(OutcomeInputError, match="168 números no negativos"):
        hand(city, weights=np.zeros(168))


def test_the_shipped_parameters_load_and_cite_a_source() -> None:
    parameters = outcome_parameters(Settings())
    assert [item.key for item in parameters.items] == list(PARAMETER_KEYS)
    for item in parameters.items:
        assert item.source.strip(), item.key
        assert item.low <= item.central <= item.high
    assert parameters.central("home_use_factor") == 0.0  # the stated default choice
    assert parameters.central("full_use_m") <= parameters.central("reach_m")
