"""Past cardiac arrests (:mod:`geo.core.arrests`): parsing and coarsening, storage on both
databases, the command line, the hour-of-week blend, the risk surface — and that nothing public
shows them.

Parsing, the weights and the risk surface are pure; everything that stores runs on SpatiaLite
and on PostGIS (the ``db_url`` and ``store`` fixtures). ``fixtures/arrests/arrests.csv`` is
synthetic: eight invented arrests in 2024 near the tiny fixture's population units.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Iterator
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj
import pytest
import shapely
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from api.app import create_app
from geo.city import CityProfile
from geo.cli import app as cli_app
from geo.core.arrests import (
    CSV_OPTIONAL_COLUMNS,
    CSV_REQUIRED_COLUMNS,
    DEFAULT_PRIOR_ARRESTS,
    FRAME_COLUMNS,
    blended_hour_weights,
    coarsen,
    hour_histogram,
    hour_of_week,
    observed_years,
    parse_arrests,
    risk_surface,
)
from geo.core.distance import StraightLine, to_metric
from geo.core.layers import LAYERS_BY_NAME, Layers
from geo.core.outcome_model import OutcomeParameters, hour_weights
from geo.core.outcomes import outcomes
from geo.errors import ConflictError, InputError, RecordValidationError
from geo.io import export
from geo.io.export import ExportFormat
from geo.io.store import Store
from geo.services.inputs import arrests_inputs
from geo.services.registers import CsvRow, read_csv_register
from geo.settings import Settings

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "arrests" / "arrests.csv"
NOW = dt.datetime(2025, 1, 1, 12, 0)
CRS = "EPSG:25830"
#: Raw positions of the fixture's rows (lon, lat), for checking the coarsening by hand.
RAW = [
    (-4.5290, 42.0096), (-4.5355, 42.0041), (-4.5240, 42.0043), (-4.5162, 42.0038),
    (-4.5398, 42.0102), (-4.5291, 42.0094), (-4.5319, 42.0043), (-4.5250, 42.0100),
]  # fmt: skip
HEADER = "id,occurred_at,lon,lat,place_type,bystander_cpr,aed_used,survived_30d,address,source"


def read(text: str) -> list[CsvRow]:
    return read_csv_register(
        text, name="paradas.csv", required=CSV_REQUIRED_COLUMNS, optional=CSV_OPTIONAL_COLUMNS
    )


def parse(text: str, city: CityProfile, **options: float) -> gpd.GeoDataFrame:
    return parse_arrests(
        read(text), file="paradas.csv", city=city, now=NOW, source="csv:paradas.csv", **options
    )


def fixture_frame(city: CityProfile, **options: float) -> gpd.GeoDataFrame:
    return parse(FIXTURE.read_text(encoding="utf-8"), city, **options)


def problems_of(text: str, city: CityProfile) -> list[tuple[int | None, str | None, str]]:
    with pytest.raises(RecordValidationError) as bad:
        parse(text, city)
    assert all(problem.file == "paradas.csv" for problem in bad.value.problems)
    return [(p.line, p.field, p.code) for p in bad.value.problems]


# --- rows → frame (pure) -----------------------------------------------------------------------


def test_the_fixture_parses_with_spanish_labels_booleans_and_times(city: CityProfile) -> None:
    frame = fixture_frame(city)
    assert list(frame.columns) == [*FRAME_COLUMNS, "geometry"]
    assert frame.crs == "EPSG:4326"
    assert list(frame["place_type"]) == [
        "public", "home", "public", "other", "home", "public", "public", "other",
    ]  # fmt: skip
    assert frame["occurred_at"].dtype == "datetime64[us]"
    # Kept to the hour (privacy): 20:30 → 20:00, 16:45 → 16:00.
    assert frame["occurred_at"].iloc[3] == pd.Timestamp("2024-04-12 20:00")  # DD/MM/AAAA HH:MM
    assert frame["occurred_at"].iloc[6] == pd.Timestamp("2024-07-01 16:00")  # +02:00 = local
    assert frame["bystander_cpr"].tolist()[:4] == [True, False, True, None]
    assert frame["survived_30d"].iloc[4] is None  # "desconocido"
    assert frame["discharged_alive"].tolist()[1:3] == [False, True]
    assert set(frame["source"]) == {"synthetic"}
    assert frame["source_id"].tolist() == [f"SYN-00{i}" for i in range(1, 9)]
    assert set(frame["cell_m"]) == {100.0}


def test_positions_are_coarsened_to_the_centres_of_100_m_cells(city: CityProfile) -> None:
    frame = fixture_frame(city)
    centres = shapely.get_coordinates(frame.to_crs(CRS).geometry.values)
    to_utm = pyproj.Transformer.from_crs("EPSG:4326", CRS, always_xy=True)
    raw = np.array([to_utm.transform(lon, lat) for lon, lat in RAW])
    np.testing.assert_allclose(centres % 100, 50.0, atol=1e-6)  # odd multiples of 50 m
    np.testing.assert_allclose(centres, (np.floor(raw / 100) + 0.5) * 100, atol=1e-6)
    assert (np.abs(centres - raw) <= 50 + 1e-6).all()
    assert not np.isclose(centres, raw, atol=0.01).all(axis=1).any()  # no raw position kept
    # Rows 1 and 6 are 22 m apart, in the same cell: they become the same point.
    assert frame.geometry.iloc[0].equals(frame.geometry.iloc[5])


def test_the_grid_is_configurable(city: CityProfile) -> None:
    frame = fixture_frame(city, cell_m=250.0)
    centres = shapely.get_coordinates(frame.to_crs(CRS).geometry.values)
    np.testing.assert_allclose(centres % 250, 125.0, atol=1e-6)
    assert set(frame["cell_m"]) == {250.0}
    with pytest.raises(InputError) as bad:
        fixture_frame(city, cell_m=1.0)
    assert bad.value.code == "invalid_cell"


def test_coarsen_by_hand() -> None:
    points = np.array([[373_349.9, 4_651_900.0], [373_300.0, 4_651_999.99], [-10.0, 0.0]])
    expected = [[373_350.0, 4_651_950.0], [373_350.0, 4_651_950.0], [-50.0, 50.0]]
    np.testing.assert_allclose(coarsen(points, 100.0), expected)
    np.testing.assert_allclose(coarsen(points[:1], 1000.0), [[373_500.0, 4_651_500.0]])


def test_every_bad_row_is_named_by_line_and_field(city: CityProfile) -> None:
    text = "\n".join(
        [
            HEADER,
            "A1,2024-01-08T09:15,-4.529,42.0096,vía pública,sí,no,no,,",  # good (line 2)
            "A2,2024-13-08T09:15,-4.529,42.0096,domicilio,,,,,",  # no month 13
            "A3,2024-01-08,-4.529,42.0096,domicilio,,,,,",  # no time
            "A4,2030-01-08T09:15,-4.529,42.0096,domicilio,,,,,",  # in the future
            "A5,2024-01-08T09:15,-4.529,42.0096,tejado,,,,,",  # unknown place
            "A6,2024-01-08T09:15,-4.529,42.0096,domicilio,quizá,,,,",  # not a boolean
            "A7,2024-01-08T09:15,oeste,42.0096,domicilio,,,,,",  # not a number
            "A8,2024-01-08T09:15,-4.529,,domicilio,,,,,",  # lat missing
            'A9,2024-01-08T09:15,,,domicilio,,,,"C/ Mayor 1, Palencia",',  # address only
            "A1,2024-01-09T10:00,-4.529,42.0096,domicilio,,,,,",  # id repeated
            ",,-4.529,42.0096,,,,,,",  # both required fields missing
            "A12,2024-01-08T09:15,,,domicilio,,,,,",  # no position at all
        ]
    )
    assert problems_of(text, city) == [
        (3, "occurred_at", "invalid_date"),
        (4, "occurred_at", "invalid_date"),
        (5, "occurred_at", "date_in_future"),
        (6, "place_type", "invalid_choice"),
        (7, "bystander_cpr", "invalid_value"),
        (8, "lon", "invalid_value"),
        (9, "lat", "missing_field"),
        (10, "address", "needs_coordinates"),
        (11, "id", "duplicate_record"),
        (12, "occurred_at", "missing_field"),
        (12, "place_type", "missing_field"),
        (13, "lon", "missing_field"),
    ]


def test_messages_say_what_is_wrong_and_what_is_accepted(city: CityProfile) -> None:
    text = (
        f"{HEADER}\n"
        'B1,2024-01-08T09:15,,,domicilio,,,,"C/ Mayor 1",\n'
        "B2,2024-01-08,-4.529,42.0096,domicilio,,,,,\n"
        "B3,2024-01-08T09:15,-4.529,42.0096,tejado,,,,,\n"
    )
    with pytest.raises(RecordValidationError) as bad:
        parse(text, city)
    message = str(bad.value)
    assert 'paradas.csv, línea 2, campo "address": la fila solo trae dirección' in message
    assert "se necesitan las coordenadas lon y lat" in message
    assert "C/ Mayor" not in message  # an address is never echoed
    assert 'línea 3, campo "occurred_at": falta la hora' in message
    assert "se admite: home (domicilio), public (vía o lugar público)" in message


def test_outside_the_municipality_and_swapped_coordinates(city: CityProfile) -> None:
    text = (
        f"{HEADER}\n"
        "C1,2024-01-08T09:15,-3.7038,40.4168,vía pública,,,,,\n"  # Madrid
        "C2,2024-01-08T09:15,42.0096,-4.5290,vía pública,,,,,\n"  # Palencia, swapped
        "C3,2024-01-08T09:15,373350,4651950,vía pública,,,,,\n"  # metres, not degrees
    )
    assert problems_of(text, city) == [
        (2, "lon/lat", "outside_municipality"),
        (3, "lon/lat", "swapped_coordinates"),
        (4, "lon/lat", "not_degrees"),
    ]
    with pytest.raises(RecordValidationError) as bad:
        parse(text, city)
    message = str(bad.value)
    assert "fuera del término municipal de Palencia" in message
    assert "intercambiadas: lon lleva la longitud" in message


def test_a_file_without_rows_is_refused(city: CityProfile) -> None:
    assert problems_of(HEADER + "\n", city) == [(2, None, "no_rows")]


# --- hours of the week (pure) -------------------------------------------------------------------


def times_frame(*rows: tuple[str, str]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "occurred_at": pd.Series([pd.Timestamp(t) for t, _ in rows], dtype="datetime64[us]"),
            "place_type": pd.Series([p for _, p in rows], dtype="object"),
        }
    )


def test_hour_of_week_starts_on_monday_at_midnight() -> None:
    times = pd.Series(pd.to_datetime(["2024-01-08 00:10", "2024-01-08 09:15", "2024-01-14 23:59"]))
    assert hour_of_week(times).tolist() == [0, 9, 167]


def test_the_weights_sum_to_one_and_equal_the_prior_with_no_events() -> None:
    empty = times_frame()
    blended = blended_hour_weights(empty, day_night_ratio=2.0)
    np.testing.assert_allclose(blended.weights, hour_weights(2.0))
    assert blended.observed.sum() == 0
    home_only = times_frame(("2024-01-08 09:15", "home"))
    np.testing.assert_allclose(
        blended_hour_weights(home_only, day_night_ratio=2.0).weights, hour_weights(2.0)
    )
    frame = times_frame(
        ("2024-01-08 09:15", "public"), ("2024-01-15 09:40", "other"),
        ("2024-01-10 03:00", "public"), ("2024-01-10 03:30", "home"),
    )  # fmt: skip
    weights = blended_hour_weights(frame, day_night_ratio=2.0).weights
    assert weights.shape == (168,)
    assert weights.sum() == pytest.approx(1.0)
    assert (weights > 0).all()


def test_the_blend_by_hand() -> None:
    # A flat prior (ratio 1: 1/168 per hour) worth 168 arrests, and 2 arrests on Monday 09:xx.
    frame = times_frame(("2024-01-08 09:15", "public"), ("2024-01-15 09:40", "other"))
    blended = blended_hour_weights(frame, day_night_ratio=1.0)
    assert blended.pseudo_arrests == DEFAULT_PRIOR_ARRESTS == 168
    assert blended.weights[9] == pytest.approx((1 + 2) / 170)
    assert blended.weights[10] == pytest.approx(1 / 170)
    assert blended.origin == "arrests:2+day_night_ratio:1(pseudo_arrests:168)"
    strong = blended_hour_weights(frame, day_night_ratio=1.0, pseudo_arrests=2.0)
    assert strong.weights[9] == pytest.approx((2 / 168 + 2) / 4)
    assert hour_histogram(frame).tolist()[9] == 2
    with pytest.raises(InputError):
        blended_hour_weights(frame, day_night_ratio=1.0, pseudo_arrests=0.0)


def test_observed_years_are_the_calendar_years_spanned() -> None:
    assert observed_years(times_frame()) == 0.0
    assert observed_years(times_frame(("2024-03-01 10:00", "home"))) == 1.0
    two = times_frame(("2022-12-31 23:00", "home"), ("2024-01-01 00:30", "public"))
    assert observed_years(two) == 3.0


# --- the risk surface (pure) --------------------------------------------------------------------

X, Y = 373_000.0, 4_651_000.0
#: Rates: incidence 20 / 100 000, half the arrests in the 20 % who are 65+: 1.25e-4 under 65 and
#: 5e-4 for 65+; 80 + 20 residents → λ = 0.01 + 0.01 = 0.02 a year; π = 0.4 → 0.008 outside home.
HAND = {
    "incidence_per_100k": 20.0, "share_arrests_65_plus": 0.5, "share_65_plus_population": 0.2,
    "share_public": 0.4, "home_use_factor": 0.0, "use_probability": 0.25, "full_use_m": 100.0,
    "reach_m": 200.0, "survival_gain": 0.3, "day_night_ratio": 1.0,
    "life_years_per_survivor": 10.0,
}  # fmt: skip
PUBLIC_PER_UNIT = 0.008


def hand_parameters(**changes: float) -> OutcomeParameters:
    rows = [
        {"key": key, "central": str(value), "low": str(value), "high": str(value),
         "unit": "", "label": key, "source": "prueba", "note": ""}
        for key, value in {**HAND, **changes}.items()
    ]  # fmt: skip
    return OutcomeParameters.from_rows(rows, name="prueba.csv")


def hand_population() -> gpd.GeoDataFrame:
    """A at (0, 0), B at (1000, 0), C at (5000, 0): 100 residents, 20 of them 65+, each."""
    return gpd.GeoDataFrame(
        {"id": ["A", "B", "C"], "residents": [100] * 3, "residents_65_plus": [20] * 3},
        geometry=[shapely.Point(X + dx, Y) for dx in (0.0, 1000.0, 5000.0)],
        crs=CRS,
    )


def events(*points: tuple[float, str]) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(
        {"place_type": [place for _, place in points]},
        geometry=[shapely.Point(X + dx, Y) for dx, _ in points],
        crs=CRS,
    ).to_crs("EPSG:4326")


def surface(
    *points: tuple[float, str], years: float = 1.0, **options: float
) -> tuple[np.ndarray, float]:
    result = risk_surface(
        hand_population(), events(*points), hand_parameters(), observed_years=years, **options
    )
    assert result.model_per_year == pytest.approx(3 * PUBLIC_PER_UNIT)
    return result.factor, result.blended_per_year


def test_no_observation_leaves_every_unit_alone() -> None:
    factor, total = surface(years=0.0)
    np.testing.assert_allclose(factor, 1.0)
    assert total == pytest.approx(3 * PUBLIC_PER_UNIT)


def test_an_event_weighs_on_the_units_near_it_by_hand() -> None:
    # τ = 5 years of prior, T = 1 year, one public arrest on A (B and C are beyond 3h = 600 m).
    factor, total = surface((0.0, "public"), (1000.0, "home"))  # the home arrest does not count
    tau_model = 5 * PUBLIC_PER_UNIT
    np.testing.assert_allclose(
        factor,
        [(tau_model + 1) / (6 * PUBLIC_PER_UNIT), 5 / 6, 5 / 6],
    )
    # The total: (τ·Σπλ + N) / (τ + T), the registry's rate blended with the observed one.
    assert total == pytest.approx((5 * 3 * PUBLIC_PER_UNIT + 1) / 6)


def test_an_event_between_two_units_is_shared_and_a_lonely_one_spread() -> None:
    halfway, _ = surface((500.0, "other"))
    assert halfway[0] == pytest.approx(halfway[1])
    assert halfway[0] == pytest.approx((5 * PUBLIC_PER_UNIT + 0.5) / (6 * PUBLIC_PER_UNIT))
    lonely = risk_surface(
        hand_population(), events((3000.0, "public")), hand_parameters(), observed_years=1.0
    )
    assert lonely.unattributed == 1
    np.testing.assert_allclose(lonely.factor, (5 * PUBLIC_PER_UNIT + 1 / 3) / (6 * PUBLIC_PER_UNIT))


@pytest.mark.parametrize("years", [1.0, 3.0, 10.0])
@pytest.mark.parametrize("prior_years", [0.5, 5.0, 50.0])
def test_the_total_is_the_blend_whatever_the_events(years: float, prior_years: float) -> None:
    rng = np.random.default_rng(20251205)
    offsets = rng.uniform(-500, 5500, size=12)
    points = [(float(dx), str(rng.choice(["home", "public", "other"]))) for dx in offsets]
    outside = sum(place != "home" for _, place in points)
    result = risk_surface(hand_population(), events(*points), hand_parameters(),
                          observed_years=years, prior_years=prior_years)  # fmt: skip
    model = result.units["public_arrests_model"].to_numpy()
    expected = (prior_years * model.sum() + outside) / (prior_years + years)
    assert float((model * result.factor).sum()) == pytest.approx(expected)
    assert result.blended_per_year == pytest.approx(expected)
    assert result.units["public_arrests_observed"].sum() == pytest.approx(outside)
    assert (result.factor > 0).all()


def test_bad_risk_options_are_refused() -> None:
    with pytest.raises(InputError):
        surface((0.0, "public"), years=0.0)  # events need a period
    with pytest.raises(InputError):
        surface(bandwidth_m=0.0)
    with pytest.raises(InputError):
        surface(prior_years=-1.0)


# --- into the outcome model (pure) --------------------------------------------------------------


def tiny_model_inputs(
    tiny_layers: Layers, city: CityProfile
) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame, OutcomeParameters]:
    metric = {name: to_metric(tiny_layers[name], city) for name in ("population", "defibrillators")}
    return metric["population"], metric["defibrillators"], hand_parameters()


def run_outcomes(
    tiny_layers: Layers, city: CityProfile, **options: object
) -> tuple[dict[str, float], pd.DataFrame, pd.DataFrame]:
    population, devices, parameters = tiny_model_inputs(tiny_layers, city)
    result = outcomes(population, devices, city, parameters, week_of=dt.date(2026, 11, 23),
                      model=StraightLine(1.0), draws=50, **options)  # type: ignore[arg-type]  # fmt: skip
    return result.city, result.units, pd.DataFrame(result.devices.drop(columns="geometry"))


def test_a_factor_of_one_changes_nothing(tiny_layers: Layers, city: CityProfile) -> None:
    base_city, base_units, base_devices = run_outcomes(tiny_layers, city)
    n = len(base_units)
    same_city, same_units, same_devices = run_outcomes(tiny_layers, city, risk_factor=np.ones(n))
    assert same_city == base_city
    pd.testing.assert_frame_equal(same_units.drop(columns="geometry"),
                                  base_units.drop(columns="geometry"))  # fmt: skip
    pd.testing.assert_frame_equal(same_devices, base_devices)


def test_the_factor_multiplies_each_units_arrests_and_lives(
    tiny_layers: Layers, city: CityProfile
) -> None:
    base_city, base_units, _ = run_outcomes(tiny_layers, city)
    factor = np.linspace(0.5, 2.0, len(base_units))
    city_figures, units, _ = run_outcomes(tiny_layers, city, risk_factor=factor)
    np.testing.assert_allclose(units["arrests_per_year"], base_units["arrests_per_year"] * factor)
    np.testing.assert_allclose(units["lives_saved"], base_units["lives_saved"] * factor)
    assert city_figures["residents"] == base_city["residents"]  # people are not scaled
    assert city_figures["lives_saved"] == pytest.approx(float(units["lives_saved"].sum()))
    with pytest.raises(ValueError, match="factor de riesgo"):
        run_outcomes(tiny_layers, city, risk_factor=np.ones(2))


def test_stored_arrests_feed_the_model(tiny_layers: Layers, city: CityProfile) -> None:
    arrests = fixture_frame(city)
    population, devices, parameters = tiny_model_inputs(tiny_layers, city)
    weights = blended_hour_weights(arrests, day_night_ratio=parameters.central("day_night_ratio"))
    risk = risk_surface(population, arrests, parameters, observed_years=observed_years(arrests))
    assert risk.events == 6 and risk.observed_years == 1.0
    result = outcomes(population, devices, city, parameters, week_of=dt.date(2026, 11, 23),
                      weights=weights.weights, weights_origin=weights.origin,
                      risk_factor=risk.factor, draws=50)  # fmt: skip
    assert result.hour_weights_origin.startswith("arrests:6+")
    # All the city's arrests scale as the blend says (one λ per unit, home arrests too).
    expected = risk.blended_per_year / parameters.central("share_public")
    assert result.city["arrests_per_year"] == pytest.approx(expected)
    assert any("factor de riesgo" in note for note in result.notes)


# --- storage (both databases) -------------------------------------------------------------------


def test_store_replaces_appends_and_reads_back(store: Store, city: CityProfile) -> None:
    empty = store.arrests_frame()
    assert empty.empty and empty.crs == "EPSG:4326"
    assert list(empty.columns) == ["id", *FRAME_COLUMNS, "geometry"]
    frame = fixture_frame(city)
    assert store.replace_arrests(frame, actor="prueba") == (0, 8)
    back = store.arrests_frame()
    assert back["occurred_at"].dtype == "datetime64[us]"
    assert back["id"].dtype == "int64" and back["cell_m"].dtype == "float64"
    pd.testing.assert_frame_equal(
        pd.DataFrame(back.drop(columns=["id", "geometry"])),
        pd.DataFrame(frame.drop(columns="geometry")),
    )
    metres = shapely.get_coordinates(back.to_crs(CRS).geometry.values)
    np.testing.assert_allclose(metres % 100, 50.0, atol=1e-6)
    assert store.replace_arrests(frame.iloc[:3], actor="prueba") == (8, 3)
    later = frame.assign(source="synthetic-2025", occurred_at=frame["occurred_at"])
    assert store.append_arrests(later, actor="prueba") == 11
    with pytest.raises(ConflictError, match="no se ha guardado nada"):
        store.append_arrests(frame, actor="prueba")
    assert len(store.arrests_frame()) == 11
    with pytest.raises(InputError, match="aparece dos veces"):
        store.replace_arrests(pd.concat([frame, frame]), actor="prueba")
    assert len(store.arrests_frame()) == 11
    audit, _ = store.audit_entries(record_type="arrests")
    assert audit and all("occurred_at" not in json.dumps(entry["after"]) for entry in audit)


def test_the_layers_are_loaded_and_replaced_without_touching_the_arrests(
    store: Store, city: CityProfile, tiny_layers: Layers
) -> None:
    store.replace_arrests(fixture_frame(city), actor="prueba")
    store.load(tiny_layers)
    store.load(tiny_layers, replace=True)
    assert "arrests" not in store.counts()
    assert len(store.arrests_frame()) == 8


# --- the command line (both databases) ----------------------------------------------------------

runner = CliRunner()


def cli(db_url: str, *args: str) -> tuple[int, str, str]:
    env = {"CARDIOMAPA_DATABASE_URL": db_url, "COLUMNS": "200"}
    result = runner.invoke(cli_app, list(args), env=env)
    return result.exit_code, result.stdout, result.stderr


def stored(db_url: str) -> gpd.GeoDataFrame:
    with Store.open(db_url) as store:
        return store.arrests_frame()


def test_cli_imports_and_reimports_replacing(db_url: str, tmp_path: Path) -> None:
    code, out, err = cli(db_url, "import", "arrests", str(FIXTURE), "--dry-run")
    assert code == 0, err
    assert "Simulación" in out and stored(db_url).empty
    code, out, err = cli(db_url, "import", "arrests", str(FIXTURE))
    assert code == 0, err
    text = " ".join(out.split())
    assert "8 leídas (domicilio: 2 · vía o lugar público: 4" in text
    assert "celdas de 100 m" in text and "Capa privada" in text
    assert "sustituyen a las 0 anteriores" in text
    code, out, err = cli(db_url, "import", "arrests", str(FIXTURE))  # again: replaced
    assert code == 0, err
    assert "sustituyen a las 8 anteriores" in " ".join(out.split())
    assert len(stored(db_url)) == 8
    more = tmp_path / "mas.csv"
    more.write_text(
        "id,occurred_at,lon,lat,place_type,source\n"
        "N-1,2023-05-01T10:00,-4.5290,42.0096,calle,synthetic\n",
        encoding="utf-8",
    )
    code, out, err = cli(db_url, "import", "arrests", str(more), "--append", "--cell-m", "200")
    assert code == 0, err
    frame = stored(db_url)
    assert len(frame) == 9 and sorted(set(frame["cell_m"])) == [100.0, 200.0]
    code, _, err = cli(db_url, "import", "arrests", str(more), "--append")
    assert code == 1 and "no se ha guardado nada" in " ".join(err.split())
    assert len(stored(db_url)) == 9
    # Without ids an append could not tell a row already stored: refused, nothing written.
    unkeyed = tmp_path / "sin_id.csv"
    unkeyed.write_text(
        "occurred_at,lon,lat,place_type,source\n2023-05-02T10:00,-4.5290,42.0096,calle,synthetic\n",
        encoding="utf-8",
    )
    code, _, err = cli(db_url, "import", "arrests", str(unkeyed), "--append")
    assert code == 1 and "no tienen id" in " ".join(err.split())
    assert len(stored(db_url)) == 9
    code, _, err = cli(db_url, "import", "arrests", str(more), "--cell-m", "10")
    assert code == 2 and "--cell-m" in err


def test_cli_refuses_a_bad_file_and_writes_nothing(db_url: str, tmp_path: Path) -> None:
    assert cli(db_url, "import", "arrests", str(FIXTURE))[0] == 0
    bad = tmp_path / "malas.csv"
    bad.write_text(
        f"{HEADER}\n"
        "M1,2024-01-08T09:15,-4.529,42.0096,vía pública,,,,,\n"
        'M2,2024-01-08T09:15,,,domicilio,,,,"C/ Mayor 1",\n'
        "M3,2024-01-08T09:15,42.0096,-4.529,vía pública,,,,,\n",
        encoding="utf-8",
    )
    code, _, err = cli(db_url, "import", "arrests", str(bad))
    assert code == 1
    text = " ".join(err.split())
    assert 'malas.csv, línea 3, campo "address"' in text
    assert 'malas.csv, línea 4, campo "lon/lat"' in text and "intercambiadas" in text
    assert "No se ha importado nada" in text
    assert stored(db_url)["source_id"].tolist() == [f"SYN-00{i}" for i in range(1, 9)]


def test_cli_options_of_arrests_are_refused_elsewhere(db_url: str) -> None:
    code, _, err = cli(db_url, "import", "osm", str(FIXTURE), "--cell-m", "200")
    assert code == 2 and "solo se aplican al formato arrests" in err
    code, _, err = cli(db_url, "import", "nada", str(FIXTURE))
    assert code == 2 and "arrests" in err


def test_the_staff_loader_reads_them_in_metres(db_url: str) -> None:
    assert cli(db_url, "import", "arrests", str(FIXTURE))[0] == 0
    with Store.open(db_url) as store:
        frame = arrests_inputs(store, Settings(database_url=db_url).load_city())
    assert frame.crs == CRS and len(frame) == 8
    np.testing.assert_allclose(shapely.get_coordinates(frame.geometry.values) % 100, 50.0,
                               atol=1e-6)  # fmt: skip


# --- privacy: nothing public shows them (both databases) ----------------------------------------


PUBLIC_PAGES = (
    "/", "/api", "/api/layers", "/api/entities", "/api/ceas", "/api/cohousing",
    "/api/defibrillators", "/ogc", "/ogc/collections", "/openapi.json",
)  # fmt: skip
NEAREST = "/api/nearest?lon=-4.5288&lat=42.0096&at=2026-11-23T10:00:00"


def public_urls(client: TestClient) -> list[str]:
    urls = [*PUBLIC_PAGES, NEAREST]
    collections = client.get("/ogc/collections").json()["collections"]
    for collection in collections:
        urls.append(f"/ogc/collections/{collection['id']}")
        urls.append(f"/ogc/collections/{collection['id']}/items?limit=1000")
    for name in (*LAYERS_BY_NAME, *HIDDEN):
        urls.extend(f"/api/downloads/{name}.{fmt.value}" for fmt in ExportFormat)
    for name in HIDDEN:
        urls.extend([f"/api/{name}", f"/ogc/collections/{name}", f"/ogc/collections/{name}/items"])
    return urls


#: Names a careless route might serve the arrests under: all must be 404, like the population
#: (counted per unit, never downloaded).
HIDDEN = ("arrests", "cardiac_arrests")
NOT_SERVED = ("population", *HIDDEN)


#: OGC item pages say when they were made.
TIME_STAMP = re.compile(rb'"timeStamp":"[^"]*"')


def snapshot(client: TestClient) -> dict[str, tuple[int, bytes]]:
    taken = {}
    for url in public_urls(client):
        response = client.get(url)
        taken[url] = (response.status_code, TIME_STAMP.sub(b"", response.content))
    return taken


@pytest.fixture
def tiny_url(db_url: str, tiny_layers: Layers) -> Iterator[str]:
    with Store.open(db_url) as store:
        store.load(tiny_layers)
    yield db_url


def test_public_routes_and_downloads_are_the_same_with_arrests_stored(
    tiny_url: str, city: CityProfile
) -> None:
    with TestClient(create_app(Settings(database_url=tiny_url))) as client:
        before = snapshot(client)
        for url, (status, _) in before.items():
            assert status == (404 if any(name in url for name in NOT_SERVED) else 200), url
        with Store.open(tiny_url) as store:
            store.replace_arrests(fixture_frame(city), actor="prueba")
        after = snapshot(client)
        paths = client.get("/openapi.json").json()["paths"]
    assert after.keys() == before.keys()
    for url, (status, body) in after.items():
        if url.endswith(".gpkg"):
            continue  # a GeoPackage stamps its creation time; its layers are compared below
        assert (status, body) == before[url], url
    for status, body in after.values():
        assert b"SYN-00" not in body
        assert status == 404 or b"cardiac_arrests" not in body
    assert not [path for path in paths if "arrest" in path or "parada" in path]


def test_exports_never_hold_arrests(tiny_url: str, city: CityProfile, tmp_path: Path) -> None:
    with Store.open(tiny_url) as store:
        before = {
            (name, fmt): export.export_bytes(store, name, fmt, data_licence="CC-BY-4.0")[1]
            for name in LAYERS_BY_NAME
            for fmt in ExportFormat
        }
        geojson = {
            name: export.export_bytes(store, name, "geojson", data_licence="CC-BY-4.0")[0]
            for name in LAYERS_BY_NAME
        }
        store.replace_arrests(fixture_frame(city), actor="prueba")
        for (name, fmt), count in before.items():
            content, after = export.export_bytes(store, name, fmt, data_licence="CC-BY-4.0")
            assert after == count
            assert b"SYN-00" not in content
            if fmt is ExportFormat.GEOJSON:
                assert content == geojson[name]
        for name in LAYERS_BY_NAME:
            out = tmp_path / f"{name}.geojson"
            export.export_layer(store, name, fmt="geojson", out=out, public_only=False,
                                data_licence="CC-BY-4.0")  # fmt: skip
            assert "SYN-00" not in out.read_text(encoding="utf-8")
