"""The committed sample layers in ``data/``: reproducible, valid and plausible for Palencia.

The sample is synthetic (see ``data/README.md``); these tests pin the properties the rest of the
project relies on: it is exactly what ``scripts/generate_sample.py`` writes, it passes the layer
schemas, and its proportions stay near the real figures it imitates.
"""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import shapely

from geo.city import CityProfile, load_city_profile
from geo.core.layers import LAYERS, Layers
from geo.io.files import read_layers

REPO_ROOT = Path(__file__).resolve().parents[1]
DATA_DIR = REPO_ROOT / "data"
GENERATOR = REPO_ROOT / "scripts" / "generate_sample.py"

# The 64 census sections of Palencia (INE 34120): rows with level == "seccion" of INE's ADRH
# extract, shipped in data/reference/. District 01 has no section 002.
INE_CSV = DATA_DIR / "reference" / "palencia_34120_renta_media_secciones_2015_2016_INE_ADRH.csv"
with INE_CSV.open(encoding="utf-8", newline="") as _handle:
    REAL_SECTION_CODES = frozenset(
        row["code"] for row in csv.DictReader(_handle) if row["level"] == "seccion"
    )

# Origins a non-synthetic record may name (the real facts of data/README.md).
REAL_ORIGINS = ("JCyL registro de centros sanitarios", "prensa")


@pytest.fixture(scope="module")
def city() -> CityProfile:
    return load_city_profile(DATA_DIR / "city.json")


@pytest.fixture(scope="module")
def layers(city: CityProfile) -> Layers:
    return read_layers(DATA_DIR, city)


def _counted_devices(layers: Layers) -> gpd.GeoDataFrame:
    """Devices that exist and work: active, and not a rejected report."""
    devices = layers["defibrillators"]
    return devices[(devices["status"] == "active") & (devices["verification"] != "rejected")]


def test_real_section_codes_are_the_64_of_the_ine_table() -> None:
    assert len(REAL_SECTION_CODES) == 64


def test_generator_rewrites_the_committed_files_byte_for_byte(tmp_path: Path) -> None:
    python_path = [str(REPO_ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(python_path)}
    completed = subprocess.run(
        [sys.executable, str(GENERATOR), "--out", str(tmp_path)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    for file_name in [schema.file_name for schema in LAYERS] + ["training.csv"]:
        written = (tmp_path / file_name).read_bytes()
        committed = (DATA_DIR / file_name).read_bytes()
        assert written == committed, f"{file_name} differs: run `make sample` and commit"


def test_committed_files_are_compact_utf8_with_one_trailing_newline() -> None:
    for schema in LAYERS:
        raw = (DATA_DIR / schema.file_name).read_bytes()
        text = raw.decode("utf-8")
        assert text.endswith("]}\n") and not text.endswith("\n\n"), schema.file_name
        assert '"crs"' not in text.splitlines()[0], schema.file_name
    assert (DATA_DIR / "population.geojson").stat().st_size < 2_000_000


def test_sample_layers_pass_the_schemas(layers: Layers) -> None:
    counts = layers.counts()
    assert set(counts) == {schema.name for schema in LAYERS}
    assert all(count > 0 for count in counts.values())


def test_population_sums_exactly_to_the_profile(layers: Layers, city: CityProfile) -> None:
    population = layers["population"]
    assert int(population["residents"].sum()) == city.population == 77_157
    assert 1_000 <= len(population) <= 5_000


def test_population_is_older_than_average_and_varies_by_section(layers: Layers) -> None:
    population = layers["population"]
    share = population["residents_65_plus"].sum() / population["residents"].sum()
    assert 0.22 <= share <= 0.28
    by_section = population.groupby("section_code")[["residents", "residents_65_plus"]].sum()
    shares = by_section["residents_65_plus"] / by_section["residents"]
    assert shares.max() - shares.min() > 0.08


def test_population_is_denser_in_the_centre(layers: Layers, city: CityProfile) -> None:
    population = layers["population"].to_crs(city.metric_crs)
    centre = gpd.GeoSeries(
        [shapely.Point(city.centre_lon, city.centre_lat)], crs="EPSG:4326"
    ).to_crs(city.metric_crs)[0]
    distance_m = population.distance(centre)
    inner = population.loc[distance_m < 800, "residents"].mean()
    outer = population.loc[distance_m > 2000, "residents"].mean()
    assert inner > 2 * outer


def test_every_section_code_is_a_real_ine_code(layers: Layers) -> None:
    codes = set(layers["population"]["section_code"])
    assert codes <= REAL_SECTION_CODES
    assert codes == REAL_SECTION_CODES  # every real section has residents


def test_device_density_is_near_the_regional_figure(layers: Layers, city: CityProfile) -> None:
    per_100k = len(_counted_devices(layers)) / city.population * 100_000
    assert 25 <= per_100k <= 45  # Castilla y León: ~33 per 100,000


def test_about_a_third_of_members_hold_no_device(layers: Layers) -> None:
    entities = layers["entities"]
    devices = layers["defibrillators"]
    held = devices[(devices["status"] != "removed") & (devices["verification"] != "rejected")]
    holders = set(held["operator_entity_id"].dropna())
    without = (~entities["id"].isin(holders)).mean()
    assert 0.25 <= without <= 0.45


def test_most_devices_are_not_available_around_the_clock(layers: Layers) -> None:
    devices = _counted_devices(layers)
    around_the_clock = (devices["opening_hours"] == "24/7").mean()
    assert around_the_clock < 0.5
    assert (devices["opening_hours"] == "24/7").any()


def test_device_records_cover_the_lifecycle(layers: Layers) -> None:
    devices = layers["defibrillators"]
    assert (devices["status"] == "out_of_service").sum() >= 1
    removed = devices["status"] == "removed"
    assert removed.sum() >= 1
    assert devices.loc[removed, "removed_on"].notna().all()
    assert devices.loc[~removed, "removed_on"].isna().all()
    assert set(devices["verification"]) == {"verified", "pending", "rejected"}
    assert devices["is_mobile"].sum() == 1


def test_every_record_names_its_source(layers: Layers) -> None:
    for name in (schema.name for schema in LAYERS):
        for source in layers[name]["source"]:
            assert isinstance(source, str) and source.strip(), name
            if source != "synthetic":
                assert source.startswith(REAL_ORIGINS), f"{name}: unexpected source {source!r}"
                assert "aproximada" in source, f"{name}: {source!r} must say it is approximate"
    for name in ("population", "ceas"):
        assert set(layers[name]["source"]) == {"synthetic"}


def test_synthetic_devices_say_so(layers: Layers) -> None:
    devices = layers["defibrillators"]
    for source, tags, source_id in zip(
        devices["source"], devices["tags"], devices["source_id"], strict=True
    ):
        assert tags.get("sample") == "synthetic"
        assert source_id is None
        assert source == "synthetic" or "sintética" in source


def test_ceas_zones_do_not_overlap(layers: Layers, city: CityProfile) -> None:
    zones = layers["ceas"].to_crs(city.metric_crs)
    geometries = list(zones.geometry)
    for i, first in enumerate(geometries):
        for second in geometries[i + 1 :]:
            assert first.intersection(second).area < 1.0  # m²


def test_every_population_unit_is_in_exactly_one_ceas_zone(layers: Layers) -> None:
    zones = layers["ceas"]
    points = layers["population"].geometry.values
    tree = shapely.STRtree(zones.geometry.values)
    point_index, _ = tree.query(points, predicate="covered_by")
    hits = np.bincount(point_index, minlength=len(points))
    assert (hits == 1).all()
