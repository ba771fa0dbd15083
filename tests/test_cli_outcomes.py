"""`cardiomapa outcomes`: lives saved per year for the city, its zones and its devices."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from geo.cli import app
from geo.core.outcome_model import HOME_ARRESTS_NOTE, PARAMETER_KEYS
from tests.conftest import DATA_DIR, TINY_DIR

runner = CliRunner()
WEEK = ("--week-of", "2026-10-01")


def run(*args: str, db_url: str | None = None) -> tuple[int, str, str]:
    env = {"CARDIOMAPA_DATABASE_URL": db_url} if db_url else {}
    result = runner.invoke(app, list(args), env=env)
    return result.exit_code, result.stdout, result.stderr


def run_json(*args: str, db_url: str | None = None) -> dict:  # type: ignore[type-arg]
    code, out, err = run("outcomes", *args, *WEEK, "--format", "json", db_url=db_url)
    assert code == 0, err
    return json.loads(out)


def sample(*args: str) -> dict:  # type: ignore[type-arg]
    return run_json("--data-dir", str(DATA_DIR), *args)


def test_the_document_has_city_zones_devices_band_and_sources() -> None:
    document = sample()
    assert document["mode"] == "weekly" and document["reach_m"] == 200
    assert document["week_start"].startswith("2026-09-28")
    totals = document["totals"]
    assert totals["lives_saved_low"] <= totals["lives_saved"] <= totals["lives_saved_high"]
    assert totals["lives_saved"] > 0
    assert totals["public_arrests_per_year"] < totals["arrests_per_year"]
    assert sum(z["lives_saved"] for z in document["zones"]) == pytest.approx(
        totals["lives_saved"], abs=1e-5
    )
    devices = {d["device_id"]: d for d in document["devices"]}
    assert sum(d["lives_saved"] for d in devices.values()) == pytest.approx(
        totals["lives_saved"], abs=1e-5
    )
    private = [d for d in devices.values() if not d["counted"]]
    assert private and all(d["lives_saved"] == d["gain_if_24_7"] == 0 for d in private)
    for device in devices.values():
        assert device["marginal_night_lives"] <= device["marginal_lives"] + 1e-12
    assert [p["key"] for p in document["parameters"]] == list(PARAMETER_KEYS)
    assert all(p["source"] for p in document["parameters"])
    assert document["band"]["percentiles"] == [5.0, 95.0]
    assert HOME_ARRESTS_NOTE in document["warnings"]


def test_the_same_seed_gives_the_same_band() -> None:
    assert sample()["totals"] == sample()["totals"]


def test_a_parameter_set_by_hand_scales_the_lives() -> None:
    base = sample()["totals"]
    central = next(p for p in sample()["parameters"] if p["key"] == "use_probability")
    doubled = sample("--set", f"use_probability={2 * central['central']}")["totals"]
    assert doubled["lives_saved"] == pytest.approx(2 * base["lives_saved"], abs=2e-6)  # 6 decimals
    assert doubled["arrests_in_reach"] == pytest.approx(base["arrests_in_reach"], rel=1e-9)


def test_with_every_parameter_fixed_the_band_is_the_central_value() -> None:
    fixed: list[str] = []
    for row in sample()["parameters"]:
        fixed += ["--set", f"{row['key']}={row['central']}"]
    totals = sample(*fixed)["totals"]
    assert totals["lives_saved_low"] == pytest.approx(totals["lives_saved"], rel=1e-9)
    assert totals["lives_saved_high"] == pytest.approx(totals["lives_saved"], rel=1e-9)


def test_only_24_7_devices_save_fewer_lives_than_the_week() -> None:
    weekly = sample()["totals"]["lives_saved"]
    always = sample("--always")["totals"]["lives_saved"]
    assert 0 < always <= weekly


def test_a_longer_reach_saves_at_least_as_many() -> None:
    longer = sample("--radius-m", "300")["totals"]
    assert longer["lives_saved"] >= sample()["totals"]["lives_saved"]


def test_csv_by_devices_and_geojson_by_zones() -> None:
    code, out, err = run("outcomes", "--data-dir", str(DATA_DIR), *WEEK, "--by", "devices",
                         "--format", "csv")  # fmt: skip
    assert code == 0, err
    rows = list(csv.DictReader(io.StringIO(out)))
    assert {"device_id", "marginal_lives", "gain_if_24_7_high"} <= set(rows[0])
    code, out, err = run("outcomes", "--data-dir", str(DATA_DIR), *WEEK, "--format", "geojson")
    assert code == 0, err
    layer = json.loads(out)
    assert layer["type"] == "FeatureCollection" and layer["mode"] == "weekly"
    assert {"lives_saved", "lives_saved_low", "lives_saved_high"} <= set(
        layer["features"][0]["properties"]
    )


def test_the_table_speaks_of_lives_with_their_band() -> None:
    code, out, err = run("outcomes", "--data-dir", str(DATA_DIR), *WEEK)
    assert code == 0, err
    assert "Vidas salvadas al año" in out and "banda del 5 al 95 %" in out
    assert "Lo que se perdería sin cada desfibrilador" in out
    assert "abierto 24/7" in out
    assert "domicilio" in err


def test_database_and_files_give_the_same_answer(db_url: str) -> None:
    assert run("load", "--data-dir", str(TINY_DIR), db_url=db_url)[0] == 0
    from_db = run_json(db_url=db_url)
    from_files = run_json("--data-dir", str(TINY_DIR))
    assert from_db["totals"] == from_files["totals"]
    assert from_db["zones"] == from_files["zones"]
    assert from_db["data_origin"] == "base de datos"


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["--at", "2026-10-05T10:00", "--always"], 2, "solo una"),
        (["--set", "share_public"], 2, "clave=valor"),
        (["--set", "share_public=1.5"], 1, "share_public"),
        (["--set", "luck=0.5"], 1, "luck"),
        (["--set", "use_probability=0.3:0.2:0.4"], 1, "bajo ≤ central ≤ alto"),
        (["--parameters", "no-existe.csv"], 2, "no-existe.csv"),
        (["--by", "parameters", "--format", "geojson"], 2, "csv o json"),
        (["--radius-m", "-5"], 1, "alcance"),
    ],
)
def test_bad_options_are_explained(args: list[str], code: int, message: str) -> None:
    got, _, err = run("outcomes", "--data-dir", str(TINY_DIR), *args)
    assert got == code, err
    assert message in err


def test_a_bad_parameters_file_names_the_line_and_field(tmp_path: Path) -> None:
    shipped = (DATA_DIR / "reference" / "outcome_parameters.csv").read_text(encoding="utf-8")
    bad = tmp_path / "parametros.csv"
    bad.write_text(shipped.replace("survival_gain,0.29", "survival_gain,mucha"), encoding="utf-8")
    code, _, err = run("outcomes", "--data-dir", str(TINY_DIR), "--parameters", str(bad))
    assert code == 1
    assert "parametros.csv, línea" in err and "central" in err


def test_a_published_figure_is_reproduced_in_order_of_magnitude() -> None:
    # Weisfeldt et al., J Am Coll Cardiol 2010: 289 AED applications in 18 months among
    # 21 million people, survival 24 % vs 9 % → lives saved per million inhabitants and year.
    published = 289 * (0.24 - 0.09) / 1.5 / 21
    assert published == pytest.approx(1.38, abs=0.01)
    totals = sample()["totals"]  # the week of 1 October 2026 (WEEK)
    per_million = totals["lives_saved_per_million"]
    assert published / 10 <= per_million <= published * 10
    # The README states the sample's figure and band for that week: keep it true.
    assert round(per_million, 2) == 0.25
    band = [round(totals[key] / 77157 * 1e6, 2) for key in ("lives_saved_low", "lives_saved_high")]
    assert band == [0.14, 0.38]


def test_past_arrests_blend_into_the_model(db_url: str) -> None:
    arrests = Path(__file__).resolve().parent / "fixtures" / "arrests" / "arrests.csv"
    assert run("load", "--data-dir", str(DATA_DIR), db_url=db_url)[0] == 0
    code, _, err = run("outcomes", "--arrests", *WEEK, db_url=db_url)
    assert code == 1 and "import arrests" in err
    assert run("import", "arrests", str(arrests), db_url=db_url)[0] == 0
    plain = run_json(db_url=db_url)
    blended = run_json("--arrests", db_url=db_url)
    assert plain["observed_arrests"] is None and plain["hour_weights"] == "day_night_ratio"
    observed = blended["observed_arrests"]
    assert observed["events"] == 6 and observed["years"] == 1
    # The city's arrests outside the home blend the model (as 5 years) with the observed year.
    assert observed["blended_per_year"] == pytest.approx(
        (5 * observed["model_per_year"] + observed["observed_per_year"]) / 6
    )
    assert blended["hour_weights"].startswith("arrests:6")
    assert blended["totals"]["lives_saved"] != plain["totals"]["lives_saved"]
    # The document holds totals only: no arrest's time or place.
    assert "occurred_at" not in json.dumps(blended)
    # A file covering half a year, said so: the observed rate doubles.
    half = run_json("--arrests", "--arrests-years", "0.5", db_url=db_url)["observed_arrests"]
    assert half["observed_per_year"] == pytest.approx(2 * observed["observed_per_year"])
