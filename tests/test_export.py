"""Open data out: every layer in every format, read back as QGIS would (through GDAL), the
command that writes them and the API's downloads. On SpatiaLite and on PostGIS."""

from __future__ import annotations

import io
import json
import re
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import geopandas as gpd
import pandas as pd
import pyogrio
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from api.app import create_app
from geo.city import CityProfile
from geo.cli import app as cli_app
from geo.core.layers import LAYERS, LAYERS_BY_NAME, Kind, Layers
from geo.errors import InputError
from geo.io import export
from geo.io.export import ExportFormat
from geo.io.files import read_layers
from geo.io.store import Store
from geo.settings import Settings
from tests.conftest import DATA_DIR

LICENCE = "CC-BY-4.0"
#: Read a CSV export with GDAL: points from lon/lat, polygons from the WKT column.
CSV_POINTS = {"X_POSSIBLE_NAMES": "lon", "Y_POSSIBLE_NAMES": "lat", "KEEP_GEOM_COLUMNS": "NO"}
CSV_POLYGONS = {"GEOM_POSSIBLE_NAMES": "geometry", "KEEP_GEOM_COLUMNS": "NO"}
PRIVATE = {"cabinet_code": "CLAVE-4711", "key_holder": "Portería", "notes": "nota interna"}


@pytest.fixture(scope="session")
def sample_layers(city: CityProfile) -> Layers:
    return read_layers(DATA_DIR, city)


@pytest.fixture
def sample(db_url: str, sample_layers: Layers) -> Iterator[Store]:
    """The sample data of data/ (verified, pending and rejected devices; polygons; tags)."""
    with Store.open(db_url) as store:
        store.load(sample_layers)
        _add_private_notes(store)
        yield store


def _add_private_notes(store: Store) -> None:
    """A pending device with private notes, which no export may ever show."""
    record = store.device("dea-001")
    assert record is not None
    record = {**record, "id": "dea-privado", "verification": "pending"}
    store.insert_device(record, actor="test", private=PRIVATE)


def _expected(store: Store, name: str, *, public_only: bool = True) -> gpd.GeoDataFrame:
    if name == "defibrillators" and public_only:
        return store.query_layer(name, where={"verification": ["verified"]})
    return store.query_layer(name)


def _read_back(path: Path, name: str, fmt: ExportFormat) -> gpd.GeoDataFrame:
    if fmt is ExportFormat.CSV:
        points = LAYERS_BY_NAME[name].geometry_types == ("Point",)
        frame = gpd.read_file(path, **(CSV_POINTS if points else CSV_POLYGONS))
        assert frame.crs is None  # a CSV carries no CRS: lon/lat and WKT are EPSG:4326
        return frame.set_crs("EPSG:4326")
    return gpd.read_file(path)


def _assert_same_records(back: gpd.GeoDataFrame, expected: gpd.GeoDataFrame) -> None:
    assert len(back) == len(expected)
    assert list(back["id"]) == list(expected["id"])
    assert back.crs == "EPSG:4326"
    same = back.geometry.geom_equals_exact(expected.geometry, tolerance=1e-6, align=False)
    assert same.all()


def test_every_layer_round_trips_in_every_format(sample: Store, tmp_path: Path) -> None:
    folder = tmp_path / "exports"
    folder.mkdir()
    for schema in LAYERS:
        expected = _expected(sample, schema.name)
        for fmt in ExportFormat:
            out = folder / f"{schema.name}.{fmt.value}"
            result = export.export_layer(
                sample, schema.name, fmt=fmt, out=out, data_licence=LICENCE
            )
            assert (result.count, result.path, result.fmt) == (len(expected), out, fmt)
            back = _read_back(out, schema.name, fmt)
            _assert_same_records(back, expected)
            assert (back["licence"] != "").all()
            tags = [f.name for f in schema.fields if f.kind is Kind.TAGS]
            for column in tags:
                stored = list(expected[column])
                if fmt is ExportFormat.GEOJSON:
                    features = json.loads(out.read_text(encoding="utf-8"))["features"]
                    assert [f["properties"][column] for f in features] == stored
                else:
                    assert [json.loads(text) for text in back[column]] == stored
    written = {f"{s.name}.{f.value}" for s in LAYERS for f in ExportFormat}
    assert {p.name for p in folder.iterdir()} == written  # and no temporary file is left


def test_geopackage_holds_one_table_named_after_the_layer_with_typed_columns(
    sample: Store, tmp_path: Path
) -> None:
    out = tmp_path / "dea.gpkg"
    export.export_layer(sample, "defibrillators", fmt="gpkg", out=out, data_licence=LICENCE)
    assert [list(layer) for layer in pyogrio.list_layers(out)] == [["defibrillators", "Point"]]
    info = pyogrio.read_info(out, layer="defibrillators")
    assert info["crs"] == "EPSG:4326"
    types = dict(zip(info["fields"], info["ogr_types"], strict=True))
    subtypes = dict(zip(info["fields"], info["ogr_subtypes"], strict=True))
    assert types["installed_on"] == types["check_date"] == "OFTDate"
    assert subtypes["indoor"] == subtypes["is_mobile"] == "OFSTBoolean"
    back = gpd.read_file(out).set_index("id")
    expected = _expected(sample, "defibrillators").set_index("id")
    installed = expected.loc["dea-001", "installed_on"]
    assert back.loc["dea-001", "installed_on"] == pd.Timestamp(installed)
    assert back.loc["dea-028", "removed_on"] == pd.Timestamp("2025-06-30")
    assert pd.isna(back.loc["dea-001", "removed_on"])  # a null date stays null
    zones = tmp_path / "ceas.gpkg"
    export.export_layer(sample, "ceas", fmt="gpkg", out=zones, data_licence=LICENCE)
    assert [list(layer) for layer in pyogrio.list_layers(zones)] == [["ceas", "MultiPolygon"]]


#: Debian 12's GDAL (``gdal-bin``, 3.6), what QGIS LTR reads files with there.
OGRINFO = "/usr/bin/ogrinfo"
#: The OGR type ``ogrinfo`` reports for each kind of field.
OGR_TYPES = {Kind.DATE: "Date", Kind.INTEGER: "Integer64", Kind.BOOLEAN: "Integer(Boolean)"}


def ogrinfo_fields(path: Path) -> dict[str, str]:
    """The fields of the GeoPackage's only layer as Debian's ``ogrinfo -so -al`` reports them,
    after checking that it opened the file without a warning or an error."""
    run = subprocess.run(
        [OGRINFO, "-so", "-al", str(path)], capture_output=True, text=True, check=False
    )
    assert run.returncode == 0, run.stderr
    assert "using driver `GPKG' successful" in run.stdout
    for word in ("Warning", "partially supported", "ERROR"):
        assert word not in run.stderr, run.stderr
    fields = re.findall(r"^(\w+): (\S+) \(", run.stdout.split("Geometry Column")[1], re.M)
    return dict(fields)


def expected_ogr_types(name: str, *, public_only: bool = True) -> dict[str, str]:
    return {
        f.name: OGR_TYPES.get(f.kind, "String")
        for f in export.published_fields(name, public_only=public_only)
    }


def test_gdal_3_6_opens_every_geopackage_without_a_warning_and_types_its_fields(
    sample: Store, tmp_path: Path
) -> None:
    version = subprocess.run([OGRINFO, "--version"], capture_output=True, text=True, check=True)
    assert version.stdout.startswith("GDAL 3.6")  # the one that warns about GeoPackage 1.4
    cases = [(schema.name, True) for schema in LAYERS] + [("defibrillators", False)]
    for name, public_only in cases:
        out = tmp_path / f"{name}-{public_only}.gpkg"
        export.export_layer(
            sample, name, fmt="gpkg", out=out, public_only=public_only, data_licence=LICENCE
        )
        with sqlite3.connect(out) as db:  # GeoPackage 1.2: "GPKG" and 10200
            assert db.execute("PRAGMA application_id").fetchone() == (0x47504B47,)
            assert db.execute("PRAGMA user_version").fetchone() == (10200,)
        fields = ogrinfo_fields(out)
        assert fields == expected_ogr_types(name, public_only=public_only), name
    # The staff's export holds the moderation fields and the expiry dates, as dates.
    staff = ogrinfo_fields(tmp_path / "defibrillators-False.gpkg")
    assert staff["battery_expiry"] == staff["removed_on"] == "Date"
    assert staff["verification"] == "String"
    assert ogrinfo_fields(tmp_path / "cohousing-True.gpkg")["dwellings"] == "Integer64"


def test_csv_is_utf8_with_a_bom_comma_separated_with_point_decimals(
    sample: Store, tmp_path: Path
) -> None:
    out = tmp_path / "dea.csv"
    export.export_layer(sample, "defibrillators", fmt="csv", out=out, data_licence=LICENCE)
    raw = out.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    table = pd.read_csv(io.BytesIO(raw), encoding="utf-8-sig", dtype=str, keep_default_na=False)
    assert list(table.columns[-3:]) == ["licence", "lon", "lat"]
    assert table.loc[table["id"] == "dea-002", "name"].item() == "DESA Piscina Campos Góticos"
    row = table.loc[table["id"] == "dea-001"].iloc[0]
    assert (row["lon"], row["lat"]) == ("-4.5452", "42.0095")
    assert row["installed_on"] == "2017-06-01"
    zones = tmp_path / "ceas.csv"
    export.export_layer(sample, "ceas", fmt="csv", out=zones, data_licence=LICENCE)
    ceas = pd.read_csv(zones, encoding="utf-8-sig")
    assert ceas["geometry"].str.startswith("MULTIPOLYGON ((").all()


def test_geojson_is_rfc7946_with_name_notice_and_licences(sample: Store, tmp_path: Path) -> None:
    out = tmp_path / "dea.geojson"
    export.export_layer(sample, "defibrillators", fmt="geojson", out=out, data_licence=LICENCE)
    document = json.loads(out.read_text(encoding="utf-8"))
    assert document["type"] == "FeatureCollection" and "crs" not in document
    assert document["name"] == "desfibriladores"
    assert "registros son datos de muestra sintéticos" in document["notice"]
    sources = {f["properties"]["source"] for f in document["features"]}
    assert set(document["licence_by_source"]) == sources
    assert document["licence_by_source"]["synthetic"].startswith("CC0-1.0")
    assert LICENCE in document["licence_by_source"].values()  # the city's own records


def test_public_device_export_holds_verified_devices_and_public_fields_only(
    sample: Store, tmp_path: Path
) -> None:
    every = sample.query_layer("defibrillators")
    hidden = set(every.loc[every["verification"] != "verified", "id"])
    assert {"dea-privado"} < hidden and len(hidden) >= 3  # pending and rejected ones
    for fmt in ExportFormat:
        public = tmp_path / f"public.{fmt.value}"
        staff = tmp_path / f"staff.{fmt.value}"
        export.export_layer(sample, "defibrillators", fmt=fmt, out=public, data_licence=LICENCE)
        export.export_layer(sample, "defibrillators", fmt=fmt, out=staff, data_licence=LICENCE,
                            public_only=False)  # fmt: skip
        shown = _read_back(public, "defibrillators", fmt)
        assert not hidden & set(shown["id"])
        assert not {"verification", "battery_expiry", "pads_expiry"} & set(shown.columns)
        everything = _read_back(staff, "defibrillators", fmt)
        assert set(everything["id"]) == set(every["id"])
        assert {"verification", "battery_expiry", "pads_expiry"} <= set(everything.columns)
        for path in (public, staff):
            raw = path.read_bytes()
            assert all(secret.encode() not in raw for secret in PRIVATE.values())


def test_an_existing_file_is_replaced(sample: Store, tmp_path: Path) -> None:
    folder = tmp_path / "exports"
    folder.mkdir()
    out = folder / "cohousing.geojson"
    out.write_text("antiguo", encoding="utf-8")
    result = export.export_layer(sample, "cohousing", fmt="geojson", out=out, data_licence=LICENCE)
    assert result.count == 4 and json.loads(out.read_text(encoding="utf-8"))["features"]
    assert [p.name for p in folder.iterdir()] == ["cohousing.geojson"]


def test_bad_requests_are_refused_in_spanish(store: Store, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="las capas son: ceas, entities, defibrillators") as bad:
        export.export_layer(store, "deas", fmt="csv", out=tmp_path / "x", data_licence=LICENCE)
    assert bad.value.code == "unknown_layer"
    with pytest.raises(InputError, match="los formatos son: geojson, csv, gpkg") as bad:
        export.export_layer(store, "ceas", fmt="shp", out=tmp_path / "x", data_licence=LICENCE)
    assert bad.value.code == "unknown_format"
    missing = tmp_path / "no-existe" / "ceas.csv"
    with pytest.raises(InputError, match="no existe") as bad:
        export.export_layer(store, "ceas", fmt="csv", out=missing, data_licence=LICENCE)
    assert bad.value.code == "missing_folder"


# --- the command ------------------------------------------------------------------------------

runner = CliRunner()


def cli(db_url: str, *args: str) -> tuple[int, str, str]:
    result = runner.invoke(cli_app, list(args), env={"CARDIOMAPA_DATABASE_URL": db_url})
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def tiny_url(db_url: str, tiny_layers: Layers) -> str:
    """The tiny fixture (3 verified devices) plus one pending device with private notes."""
    with Store.open(db_url) as store:
        store.load(tiny_layers)
        record = store.device("dea-1")
        assert record is not None
        store.insert_device({**record, "id": "dea-pendiente", "verification": "pending"},
                            actor="test", private=PRIVATE)  # fmt: skip
    return db_url


def test_cli_exports_a_layer_and_says_what_it_wrote(tiny_url: str, tmp_path: Path) -> None:
    out = tmp_path / "deas.gpkg"
    code, stdout, stderr = cli(tiny_url, "export", "--layer", "defibrillators", "--out", str(out))
    assert code == 0, stderr
    assert stdout.strip().splitlines()[-1] == (
        f"3 registros de defibrillators escritos en {out} (GeoPackage)"
    )
    assert "solo desfibriladores verificados" in stderr
    code, stdout, _ = cli(tiny_url, "export", "--format", "csv", "--layer", "defibrillators",
                          "--out", str(tmp_path / "todo.txt"), "--all-devices")  # fmt: skip
    assert code == 0 and stdout.strip().endswith("(CSV)") and stdout.startswith("4 registros")
    code, stdout, _ = cli(tiny_url, "export", "--layer", "population", "--out",
                          str(tmp_path / "p.geojson"))  # fmt: skip
    assert code == 0 and stdout.startswith("12 registros de population")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--layer", "deas", "--out", "{tmp}/x.csv"],
         "las capas son: ceas, entities, defibrillators, cohousing, population"),
        (["--layer", "ceas", "--out", "{tmp}/no-existe/x.csv"], "no existe"),
        (["--layer", "ceas", "--out", "{tmp}/x.shp"], "use --format geojson, csv o gpkg"),
        (["--layer", "ceas", "--format", "shp", "--out", "{tmp}/x.shp"],
         "los formatos son: geojson, csv, gpkg"),
        (["--layer", "ceas", "--all-devices", "--out", "{tmp}/x.csv"],
         "--all-devices solo se aplica a la capa defibrillators"),
    ],
)  # fmt: skip
def test_cli_usage_errors_exit_2_in_spanish(tmp_path: Path, args: list[str], message: str) -> None:
    url = f"sqlite:///{tmp_path / 'never.sqlite'}"
    code, _, stderr = cli(url, "export", *(a.format(tmp=tmp_path) for a in args))
    assert code == 2
    assert message in stderr
    assert not (tmp_path / "never.sqlite").exists()  # refused before opening anything


# --- the API's downloads ----------------------------------------------------------------------


@pytest.fixture
def client(tiny_url: str) -> Iterator[TestClient]:
    with TestClient(create_app(Settings(database_url=tiny_url))) as test_client:
        yield test_client


def _parse(content: bytes, name: str, fmt: ExportFormat, tmp_path: Path) -> gpd.GeoDataFrame:
    path = tmp_path / f"download-{name}.{fmt.value}"
    path.write_bytes(content)
    return _read_back(path, name, fmt)


def test_every_published_layer_downloads_in_every_format(
    client: TestClient, tiny_layers: Layers, tmp_path: Path
) -> None:
    stems = {"defibrillators": "desfibriladores", "ceas": "zonas_ceas", "entities": "entidades",
             "cohousing": "cohousing"}  # fmt: skip
    media = {"geojson": "application/geo+json", "csv": "text/csv; charset=utf-8",
             "gpkg": "application/geopackage+sqlite3"}  # fmt: skip
    for name in export.PUBLISHED_LAYERS:
        for fmt in ExportFormat:
            response = client.get(f"/api/downloads/{name}.{fmt.value}")
            assert response.status_code == 200, response.text
            assert response.headers["content-type"] == media[fmt.value]
            assert response.headers["content-disposition"] == (
                f'attachment; filename="{stems[name]}.{fmt.value}"'
            )
            assert response.headers["x-content-type-options"] == "nosniff"
            back = _parse(response.content, name, fmt, tmp_path)
            expected = tiny_layers[name]  # the pending device is not served
            assert list(back["id"]) == sorted(expected["id"])
            assert "CLAVE-4711" not in response.content.decode("utf-8", errors="replace")


def test_the_apis_geopackages_open_in_gdal_3_6_without_a_warning(
    client: TestClient, tmp_path: Path
) -> None:
    for name in export.PUBLISHED_LAYERS:
        response = client.get(f"/api/downloads/{name}.gpkg")
        assert response.status_code == 200, response.text
        path = tmp_path / f"{name}.gpkg"
        path.write_bytes(response.content)
        assert ogrinfo_fields(path) == expected_ogr_types(name)


def test_unknown_downloads_are_404_in_spanish(client: TestClient) -> None:
    cases: dict[str, str] = {
        "/api/downloads/deas.csv": "se descargan: defibrillators, ceas, entities, cohousing",
        "/api/downloads/population.csv": "se descargan:",
        "/api/downloads/ceas.shp": "los formatos son: geojson, csv, gpkg",
        "/api/downloads/ceas": "No existe esa dirección",
    }
    for url, message in cases.items():
        response = client.get(url)
        assert response.status_code == 404, url
        body: dict[str, Any] = response.json()
        assert body["code"] == "not_found" and message in body["message"]


@pytest.mark.parametrize(
    ("source", "licence"),
    [
        ("synthetic", "CC0-1.0 (datos de muestra sintéticos, no son el registro oficial)"),
        ("osm", "ODbL 1.0 © OpenStreetMap contributors"),
        ("comunidad-madrid", "CC BY 4.0 (Portal de Datos Abiertos de la Comunidad de Madrid)"),
        ("jcyl-desa", "CC BY 4.0 (Portal de Datos Abiertos de la Junta de Castilla y León)"),
        ("euskadi", "CC BY 4.0 (Open Data Euskadi, Gobierno Vasco)"),
        ("entity-registration", LICENCE),
    ],
)
def test_each_record_keeps_its_registers_licence(source: str, licence: str) -> None:
    assert export.licence_of(source, LICENCE) == licence
