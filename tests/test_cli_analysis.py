"""The analysis commands: coverage, gaps and the walking network, as a planner runs them."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from geo.city import CityProfile
from geo.cli import app
from geo.core.coverage import coverage
from geo.core.distance import StraightLine, to_metric
from geo.core.layers import Layers
from tests.conftest import DATA_DIR, TINY_DIR

runner = CliRunner()
NETWORK = Path(__file__).resolve().parent / "fixtures" / "network" / "palencia_centro.osm"
AT = "2026-11-23T11:00"


def run(*args: str, db_url: str | None = None) -> tuple[int, str, str]:
    env = {"CARDIOMAPA_DATABASE_URL": db_url} if db_url else {}
    result = runner.invoke(app, list(args), env=env)
    return result.exit_code, result.stdout, result.stderr


def run_json(*args: str, db_url: str | None = None) -> dict[str, object]:
    code, out, err = run(*args, "--format", "json", db_url=db_url)
    assert code == 0, err
    return json.loads(out)


def test_coverage_json_equals_the_engine(tiny_layers: Layers, city: CityProfile) -> None:
    document = run_json("coverage", "--data-dir", str(TINY_DIR), "--at", AT, "--radius-m", "400")
    metric = {name: to_metric(tiny_layers[name], city) for name in tiny_layers.frames}
    expected = coverage(
        metric["population"],
        metric["defibrillators"],
        city,
        at=dt.datetime.fromisoformat(AT),
        radius_m=400,
        zones=metric["ceas"],
        model=StraightLine(),
    )
    assert document["residents"] == 7800
    assert document["residents_covered"] == expected.residents_covered > 0
    assert document["mode"] == "instant" and document["radius_m"] == 400
    assert document["distance_model"] == "straight_line"
    assert "línea recta" in document["distance_model_description"]
    assert [zone["zone_id"] for zone in document["zones"]] == ["ceas-este", "ceas-oeste"]
    assert document["data_origin"].startswith("archivos de")


def test_database_and_files_give_the_same_answer(db_url: str) -> None:
    assert run("load", "--data-dir", str(TINY_DIR), db_url=db_url)[0] == 0
    from_db = run_json("coverage", "--at", AT, "--radius-m", "400", db_url=db_url)
    from_files = run_json("coverage", "--data-dir", str(TINY_DIR), "--at", AT, "--radius-m", "400")
    for key in ("residents", "residents_covered", "residents_65_plus_covered", "zones"):
        assert from_db[key] == from_files[key]
    assert from_db["data_origin"] == "base de datos"


def test_the_table_names_zones_and_the_distance_model() -> None:
    code, out, _ = run("coverage", "--data-dir", str(DATA_DIR), "--at", AT)
    assert code == 0
    assert "Cobertura de desfibriladores en Palencia" in out
    assert "La Puebla" in out and "línea recta" in out


def test_weekly_csv_has_168_hours() -> None:
    code, out, _ = run("coverage", "--data-dir", str(DATA_DIR), "--weekly",
                       "--week-of", "2026-11-25", "--format", "csv")  # fmt: skip
    assert code == 0
    rows = list(csv.DictReader(io.StringIO(out)))
    assert len(rows) == 168
    assert rows[0]["label"] == "lunes 00:00–01:00"
    assert float(rows[10]["share_covered"]) >= float(rows[0]["share_covered"])


def test_weekly_json_summarises_the_loss_to_opening_hours() -> None:
    document = run_json("coverage", "--data-dir", str(DATA_DIR), "--weekly",
                        "--week-of", "2026-11-23")  # fmt: skip
    assert document["mode"] == "weekly"
    assert document["week_start"].startswith("2026-11-23T00:00")
    assert 0 < document["share_lost_to_hours"] < 1
    assert document["share_covered_always"] <= document["mean_share_covered"]
    assert len(document["slices"]) == 168 and len(document["zones"]) == 8 * 168


def test_geojson_is_zones_with_their_coverage() -> None:
    code, out, _ = run("coverage", "--data-dir", str(DATA_DIR), "--format", "geojson")
    assert code == 0
    document = json.loads(out)
    assert document["type"] == "FeatureCollection" and document["mode"] == "always"
    assert len(document["features"]) == 8
    lon, lat = document["features"][0]["geometry"]["coordinates"][0][0][0]
    assert -4.6 < lon < -4.4 and 41.9 < lat < 42.1  # EPSG:4326 at the edge
    assert "share_covered" in document["features"][0]["properties"]


def test_coverage_by_income_quintile() -> None:
    document = run_json("coverage", "--data-dir", str(DATA_DIR), "--at", AT, "--by", "income")
    quintiles = document["income_quintiles"]
    assert [row["quintile"] for row in quintiles] == [1, 2, 3, 4, 5]
    assert sum(row["residents"] for row in quintiles) <= document["residents"]


def test_gaps_account_for_every_uncovered_resident() -> None:
    document = run_json("gaps", "--data-dir", str(DATA_DIR), "--at", "2026-11-23T22:00")
    areas = document["areas"]
    assert sum(area["residents"] for area in areas) == document["residents_uncovered"]
    assert [area["rank"] for area in areas[:3]] == [1, 2, 3]
    assert areas[0]["residents"] >= areas[1]["residents"]
    entities = document["entities_without_device"]
    assert entities and all(e["distance_m"] is None or e["distance_m"] > 100 for e in entities)


def test_gaps_table_and_geojson() -> None:
    code, out, _ = run("gaps", "--data-dir", str(DATA_DIR), "--top", "3")
    assert code == 0 and "Huecos de cobertura" in out and "Entidades del clúster" in out
    code, out, _ = run("gaps", "--data-dir", str(DATA_DIR), "--format", "geojson")
    kinds = {f["properties"]["kind"] for f in json.loads(out)["features"]}
    assert kinds == {"gap_area", "entity_without_device", "cohousing_without_device"}


def test_a_loaded_network_is_used_and_can_be_bypassed(db_url: str) -> None:
    assert run("load", "--data-dir", str(TINY_DIR), db_url=db_url)[0] == 0
    code, out, err = run("network", "load", str(NETWORK), db_url=db_url)
    assert code == 0, err
    assert "31 nodos" in out and "53 tramos" in out
    assert "palencia_centro.osm" in run("network", "info", db_url=db_url)[1]
    walking = run_json("coverage", "--at", AT, db_url=db_url)
    assert walking["distance_model"] == "walking_network"
    assert "palencia_centro.osm" in walking["distance_model_description"]
    straight = run_json("coverage", "--at", AT, "--no-network", db_url=db_url)
    assert straight["distance_model"] == "straight_line"
    assert run("network", "clear", db_url=db_url)[0] == 0
    assert "No hay red" in run("network", "info", db_url=db_url)[1]


def test_a_network_file_works_without_a_database() -> None:
    document = run_json("coverage", "--data-dir", str(TINY_DIR), "--network", str(NETWORK))
    assert document["distance_model"] == "walking_network"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["coverage", "--at", "lunes"], "ISO 8601"),
        (["coverage", "--at", AT, "--weekly"], "solo una"),
        (["coverage", "--weekly", "--week-of", "23/11/2026"], "AAAA-MM-DD"),
        (["gaps", "--at", AT, "--always"], "solo una"),
    ],
)
def test_bad_options_are_explained(args: list[str], message: str) -> None:
    code, _, err = run(*args, "--data-dir", str(TINY_DIR))
    assert code == 2
    assert message in err


def test_a_bad_network_file_is_explained(tmp_path: Path) -> None:
    bad = tmp_path / "calles.txt"
    bad.write_text("no es OSM", encoding="utf-8")
    code, _, err = run("coverage", "--data-dir", str(TINY_DIR), "--network", str(bad))
    assert code == 1
    assert "invalid_network" in err and "calles.txt" in err


def test_a_negative_radius_is_explained() -> None:
    code, _, err = run("coverage", "--data-dir", str(TINY_DIR), "--radius-m", "-5")
    assert code == 1
    assert "radio" in err


# --- siting -----------------------------------------------------------------------------------


def test_site_proposes_entities_in_order() -> None:
    document = run_json("site", "--data-dir", str(DATA_DIR), "--new", "3")
    assert document["method"] == "exact" and document["status"] == "optimal"
    sites = document["sites"]
    assert [site["step"] for site in sites] == [1, 2, 3]
    assert all(
        site["kind"] == "entity" and site["candidate_id"].startswith("ent-") for site in sites
    )
    gained = sum(site["residents_gained"] for site in sites)
    assert document["residents_covered_after"] == document["residents_covered_before"] + gained
    assert sites[-1]["share_covered_after"] == pytest.approx(document["share_covered_after"])
    zones = document["zones"]
    assert sum(z["residents_covered_after"] - z["residents_covered"] for z in zones) == gained


def test_site_greedy_never_beats_exact() -> None:
    args = ("site", "--data-dir", str(DATA_DIR), "--candidates", "all", "--new", "5")
    exact = run_json(*args)
    greedy = run_json(*args, "--method", "greedy")
    assert greedy["status"] == "greedy"
    assert greedy["residents_covered_after"] <= exact["residents_covered_after"]


def test_site_target_mode_reaches_the_goal() -> None:
    document = run_json("site", "--data-dir", str(DATA_DIR), "--candidates", "all",
                        "--target-share", "0.05", "--method", "greedy")  # fmt: skip
    assert document["mode"] == "target"
    assert document["share_covered_after"] >= 0.05
    assert document["new_devices"] == len(document["sites"]) > 0


def test_site_candidates_from_a_file(tmp_path: Path) -> None:
    path = tmp_path / "candidatos.geojson"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"id": "plaza", "name": "Plaza Mayor"},
         "geometry": {"type": "Point", "coordinates": [-4.5288, 42.0096]}},
        {"type": "Feature", "properties": {"id": "lejos", "name": "Afueras"},
         "geometry": {"type": "Point", "coordinates": [-4.46, 42.0]}},
    ]}), encoding="utf-8")  # fmt: skip
    document = run_json("site", "--data-dir", str(DATA_DIR), "--candidates", str(path))
    assert [site["candidate_id"] for site in document["sites"]] == ["plaza"]
    code, out, _ = run(
        "site", "--data-dir", str(DATA_DIR), "--candidates", str(path), "--format", "geojson"
    )
    assert code == 0
    assert json.loads(out)["features"][0]["properties"]["name"] == "Plaza Mayor"


@pytest.mark.parametrize(
    ("candidates", "message"),
    [("no-existe.geojson", "no existe"), ("outside", "fuera del término")],
)
def test_site_bad_candidates_are_explained(tmp_path: Path, candidates: str, message: str) -> None:
    if candidates == "outside":
        path = tmp_path / "fuera.geojson"
        madrid = {
            "type": "Feature",
            "properties": {"id": "madrid"},
            "geometry": {"type": "Point", "coordinates": [-3.70, 40.41]},
        }
        document = {"type": "FeatureCollection", "features": [madrid]}
        path.write_text(json.dumps(document), encoding="utf-8")
        candidates = str(path)
    code, _, err = run("site", "--data-dir", str(DATA_DIR), "--candidates", candidates)
    assert code == 1
    assert "invalid_siting" in err and message in err


def test_site_refuses_csv() -> None:
    code, _, err = run("site", "--data-dir", str(TINY_DIR), "--format", "csv")
    assert code == 2 and "geojson" in err


def test_24h_gaps_and_siting_check_the_year_of_their_reference_date() -> None:
    """Devices open around the clock until the end of 2027 are "always" there (every moment of
    the 366 days from the reference week) for a reference date in 2026, not in mid-2027."""
    import dataclasses

    from geo.services.analysis import gaps_analysis, siting_analysis
    from geo.services.inputs import load_inputs
    from geo.settings import Settings

    inputs = load_inputs(Settings(data_dir=TINY_DIR), store=None)
    metric = dict(inputs.metric.frames)
    metric["defibrillators"] = metric["defibrillators"].assign(
        opening_hours="2020-2027 00:00-24:00"
    )
    inputs = dataclasses.replace(inputs, metric=Layers(metric))
    common = {"radius_m": 400.0, "at": None, "detour_factor": 1.3}
    uncovered = {
        day: gaps_analysis(inputs, cell_m=None, reference_date=day, **common).document[
            "residents_uncovered"
        ]
        for day in (dt.date(2026, 1, 5), dt.date(2027, 6, 7))
    }
    assert uncovered[dt.date(2027, 6, 7)] == 7800  # nobody: every device closes in 2028
    assert uncovered[dt.date(2026, 1, 5)] < 7800
    before = {
        day: siting_analysis(
            inputs,
            new=1,
            method="greedy",
            candidates="entities",
            target_share=None,
            senior_weight=1.0,
            time_limit_s=10,
            reference_date=day,
            **common,
        ).document["residents_covered_before"]
        for day in (dt.date(2026, 1, 5), dt.date(2027, 6, 7))
    }
    assert before[dt.date(2027, 6, 7)] == 0
    assert before[dt.date(2026, 1, 5)] == 7800 - uncovered[dt.date(2026, 1, 5)]


def test_csv_outputs_keep_six_decimals_of_lon_lat() -> None:
    import geopandas as gpd
    import shapely

    from geo.core.outputs import to_csv

    frame = gpd.GeoDataFrame(
        {"share": [0.0289016]}, geometry=[shapely.Point(-4.528812, 42.009612)], crs="EPSG:4326"
    ).to_crs("EPSG:25830")  # results are metric; to_csv gives lon/lat
    rows = list(csv.DictReader(io.StringIO(to_csv(frame))))
    assert rows == [{"share": "0.0289016", "lon": "-4.528812", "lat": "42.009612"}]
