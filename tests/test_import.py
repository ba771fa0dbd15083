"""Importing devices: the OSM and Euskadi readers, the one pipeline, its storage, and the CLI.

Readers are pure; everything that stores runs on SpatiaLite and on PostGIS (the ``db_url``
fixture). Fixtures are hand-written, synthetic files in the real formats (see the READMEs in
``tests/fixtures/import/osm`` and ``…/euskadi``).
"""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from shapely.geometry import Point
from sqlalchemy.exc import IntegrityError
from typer.testing import CliRunner

from api.app import create_app
from geo.city import CityProfile
from geo.cli import app as cli_app
from geo.errors import ConflictError, ImportFormatError, LayerValidationError
from geo.io.files import read_layers
from geo.io.importers import IMPORTERS, LICENCES, euskadi, osm
from geo.io.importers.base import DeviceRecord, ParsedImport
from geo.io.importers.run import (
    ImportReport,
    device_id,
    import_devices,
    name_similarity,
    serial_number,
)
from geo.io.store import AUDIT_LOG, Store
from geo.settings import Settings
from tests.conftest import DATA_DIR

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "import"
OVERPASS = FIXTURES / "osm" / "overpass.json"
OPENAEDMAP = FIXTURES / "osm" / "openaedmap.geojson"
NEAR_SAMPLE = FIXTURES / "osm" / "near_sample.json"
MALFORMED = FIXTURES / "osm" / "malformed.json"
EUSKADI_UTM = FIXTURES / "euskadi" / "euskadi_25830.geojson"
EUSKADI_WGS84 = FIXTURES / "euskadi" / "euskadi_4326.geojson"

runner = CliRunner()
#: The city's date the imports run on (a pinned day, never the wall clock).
TODAY = dt.date(2026, 12, 7)


@pytest.fixture
def loaded(store: Store, city: CityProfile) -> Store:
    """A store holding the sample layers of ``data/`` (29 devices from other sources)."""
    store.load(read_layers(DATA_DIR, city))
    return store


def run(store: Store, path: Path, city: CityProfile, *, fmt: str = "osm",
        dry_run: bool = False) -> ImportReport:  # fmt: skip
    parsed = IMPORTERS[fmt](path, city=city)
    return import_devices(store, parsed, city, dry_run=dry_run, actor="prueba", today=TODAY)


def audit_count(store: Store) -> int:
    with store.engine.connect() as connection:
        return int(
            connection.execute(sa.select(sa.func.count()).select_from(AUDIT_LOG)).scalar_one()
        )


# --- readers (no database) --------------------------------------------------------------------


def test_overpass_elements_become_records_or_skips_with_reasons() -> None:
    parsed = osm.parse(OVERPASS)
    assert (parsed.format, parsed.source, parsed.read) == ("osm", "osm", 7)
    assert [r.properties["source_id"] for r in parsed.records] == [
        "node/990000000001",
        "node/990000000002",
        "way/990000000003",
        "node/990000000006",
        "node/990000000007",
    ]  # the node outside Palencia is refused later, by the layer validation
    assert [(s.record, s.source_id, s.field) for s in parsed.skipped] == [
        (4, "way/990000000004", "center"), (5, "node/990000000005", "emergency"),
    ]  # fmt: skip
    assert "out center" in parsed.skipped[0].reason
    assert "emergency=defibrillator" in parsed.skipped[1].reason
    assert parsed.licence == "ODbL 1.0 © OpenStreetMap contributors"
    assert any("ODbL" in note for note in parsed.notes)


def test_osm_tags_are_kept_verbatim_and_mapped_like_openaedmap() -> None:
    document = json.loads(OVERPASS.read_text(encoding="utf-8"))
    full, nameless, way, _outside, bad_hours = osm.parse(OVERPASS).records
    assert full.properties["tags"] == document["elements"][0]["tags"]
    assert (full.lon, full.lat) == (-4.53, 42.011)
    assert {k: full.properties[k] for k in (
        "name", "location_text", "address", "access", "opening_hours", "indoor", "level",
        "phone", "check_date")} == {
        "name": "DEA Centro Cívico Ficticio",
        "location_text": "Vestíbulo, junto a recepción",  # the :es variant first
        "address": "Calle Ficticia 1, 34001 Palencia",
        "access": "yes", "opening_hours": "Mo-Fr 08:00-15:00", "indoor": True, "level": "0",
        "phone": "+34 979 000 001", "check_date": "2026-05-10",
    }  # fmt: skip
    # No name: a Spanish one from the operator; access=public (common on AEDs) means yes.
    assert nameless.properties["name"] == "DEA Farmacia Ficticia Dos"
    assert nameless.properties["access"] == "yes"
    assert nameless.properties["tags"]["access"] == "public"
    assert nameless.properties["phone"] == "+34 979 000 002"  # contact:phone
    assert nameless.properties["check_date"] == "2025-12-01"  # survey:date
    assert nameless.properties["indoor"] is False
    assert (way.lon, way.lat) == (-4.535, 42.015)  # its center
    # Unreadable hours: imported without them, flagged, the text kept in tags.
    assert "opening_hours" not in bad_hours.properties
    assert bad_hours.properties["tags"]["opening_hours"] == "lunes a viernes mañanas"
    assert "check_date" not in bad_hours.properties
    assert len(bad_hours.flags) == 2 and "lunes a viernes mañanas" in bad_hours.flags[0]
    assert not full.flags


def test_openaedmap_and_overpass_turbo_geojson() -> None:
    parsed = osm.parse(OPENAEDMAP)
    assert parsed.read == 3
    assert [r.properties["source_id"] for r in parsed.records] == [
        "node/990000000011", "node/990000000012",
    ]  # fmt: skip
    first, second = parsed.records
    assert "@osm_version" not in first.properties["tags"]  # metadata, not a tag
    assert first.properties["tags"]["defibrillator:location"] == "junto a las taquillas"
    assert second.properties["name"] == "DEA Soportales de la plaza ficticia"
    assert [(s.record, s.field) for s in parsed.skipped] == [(3, "emergency")]


@pytest.mark.parametrize(
    ("content", "record", "field"),
    [
        ('{"elements": [{"type": "node", "id": 1, "lat": "x", "lon": 1}]}', 1, "lat"),
        ('{"elements": [{"type": "nodo", "id": 1}]}', 1, "type"),
        ('{"elements": [{"type": "node", "id": -5, "lat": 42, "lon": -4}]}', 1, "id"),
        ('{"elements": [1]}', 1, None),
        ('{"type": "FeatureCollection", "features": [{"type": "Feature", "properties": {}, '
         '"geometry": {"type": "Point", "coordinates": [-4.5, 42]}}]}', 1, "@osm_id"),
        ('{"datos": []}', None, None),
        ("{no es json", None, None),
    ],
)  # fmt: skip
def test_a_malformed_osm_file_names_record_and_field(
    tmp_path: Path, content: str, record: int | None, field: str | None
) -> None:
    path = tmp_path / "roto.json"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(ImportFormatError) as caught:
        osm.parse(path)
    assert (caught.value.file, caught.value.record, caught.value.field) == (
        "roto.json", record, field
    )  # fmt: skip
    assert str(caught.value).startswith("roto.json")


def test_euskadi_projected_coordinates_and_hours() -> None:
    parsed = euskadi.parse(EUSKADI_UTM)
    assert (parsed.format, parsed.source, parsed.read) == ("euskadi", "euskadi", 4)
    first, second, third = parsed.records
    # Reprojected from EPSG:25830 to the points the fixture was made from.
    assert first.lon == pytest.approx(-4.528, abs=1e-6)
    assert first.lat == pytest.approx(42.013, abs=1e-6)
    assert first.properties["opening_hours"] == "24/7"
    assert second.properties["opening_hours"] == "Mo-Fr 08:00-15:00"
    assert second.properties["name"] == "DEA Centro de Salud Ficticio"
    assert second.properties["location_text"] == "Planta baja, junto a admisión"
    assert second.properties["address"] == "Plaza Ficticia 2, Palencia"
    assert second.properties["tags"]["numserie"] == "SN-FICT-0002"
    assert set(second.properties["tags"]) == set(euskadi.FIELDS)
    assert "opening_hours" not in third.properties
    assert "Horario del centro comercial" in third.flags[0]
    assert "modelo" not in third.properties["tags"]  # null values are not tags
    assert [(s.record, s.source_id, s.field) for s in parsed.skipped] == [(4, None, "codigo_dea")]


def test_euskadi_in_degrees_without_crs() -> None:
    records = euskadi.parse(EUSKADI_WGS84).records
    assert [(r.lon, r.lat) for r in records] == [(-4.526, 42.016), (-4.532, 42.003)]
    assert records[0].properties["opening_hours"] == "Mo-Fr 09:00-14:00"
    assert records[1].properties["opening_hours"] == "Mo-Su 08:00-22:00"


def test_euskadi_unknown_crs_is_a_format_error(tmp_path: Path) -> None:
    document = json.loads(EUSKADI_UTM.read_text(encoding="utf-8"))
    document["crs"]["properties"]["name"] = "EPSG:no-existe"
    path = tmp_path / "dea.geojson"
    path.write_text(json.dumps(document), encoding="utf-8")
    with pytest.raises(ImportFormatError) as caught:
        euskadi.parse(path)
    assert caught.value.field == "crs" and "EPSG:25830" in str(caught.value)


def test_device_ids_are_stable_slugs_of_the_source_id() -> None:
    assert device_id("osm", "node/123") == "osm-node-123"
    assert device_id("euskadi", "EUS-0012") == "euskadi-eus-0012"
    assert device_id("jcyl-desa", "Ñu 12/B") == "jcyl-nu-12-b"
    assert device_id("madrid", "///").startswith("madrid-") and len(device_id("madrid", "//")) > 8


@pytest.mark.parametrize(
    ("tag", "access"),
    [("yes", "yes"), ("public", "yes"), ("customers", "customers"), ("private", "private"),
     ("delivery", None), (None, None)],
)  # fmt: skip
def test_osm_access_values_map_onto_the_layers(tag: str | None, access: str | None) -> None:
    """Values the layer does not know are left out: a new device gets unknown, a stored one
    keeps what a planner set."""
    assert osm.layer_access(tag) == access


def test_name_similarity_ignores_case_accents_and_stop_words() -> None:
    assert name_similarity("DEA Farmacia Mayor", "Desfibrilador farmacia MAYOR, Palencia") == (
        pytest.approx(2 / 3)
    )
    # a street shared in passing does not make two devices one
    assert name_similarity("Centro deportivo, CALLE MAYOR 10", "DEA Plaza Mayor") == (
        pytest.approx(1 / 3)
    )
    assert name_similarity("DESA Piscina Campos Góticos", "piscina campos goticos") == 1.0
    assert name_similarity("DEA Quiosco", "DESA Isla Dos Aguas") == 0.0
    assert name_similarity("DEA", "DESA") == 0.0
    assert serial_number({"numserie": "sn-12 34"}) == serial_number({"ref": "SN1234"}) == "sn1234"
    assert serial_number({"name": "x"}) is None


# --- the pipeline, on both databases -----------------------------------------------------------


def test_osm_import_counts_and_a_second_import_changes_nothing(
    store: Store, city: CityProfile
) -> None:
    report = run(store, OVERPASS, city)
    assert (report.read, report.inserted, report.updated, report.unchanged) == (7, 4, 0, 0)
    assert [(s.record, s.field) for s in report.skipped] == [
        (4, "center"), (5, "emergency"), (6, "geometry"),
    ]  # fmt: skip
    assert "fuera del término municipal de Palencia" in report.skipped[2].reason
    assert [f.record for f in report.flagged] == [7, 7]
    assert report.inserted_ids == (
        "osm-node-990000000001", "osm-node-990000000002", "osm-way-990000000003",
        "osm-node-990000000007",
    )  # fmt: skip
    nameless = store.device("osm-node-990000000002")
    assert nameless is not None and nameless["access"] == "yes"
    device = store.device("osm-node-990000000001")
    assert device is not None
    assert device["verification"] == "pending" and device["status"] == "active"
    assert (device["source"], device["source_id"]) == ("osm", "node/990000000001")
    document = json.loads(OVERPASS.read_text(encoding="utf-8"))
    assert device["tags"] == document["elements"][0]["tags"]
    assert device["version"] == 1
    hours = store.device("osm-node-990000000007")
    assert hours is not None and hours["opening_hours"] is None
    assert hours["tags"]["opening_hours"] == "lunes a viernes mañanas"
    revision, audited = store.revision("defibrillators"), audit_count(store)

    again = run(store, OVERPASS, city)

    assert (again.inserted, again.updated, again.unchanged, len(again.skipped)) == (0, 0, 4, 3)
    assert store.counts()["defibrillators"] == 4
    assert store.revision("defibrillators") == revision
    assert audit_count(store) == audited


def test_every_record_is_accounted_for(store: Store, city: CityProfile) -> None:
    for path, fmt in ((OVERPASS, "osm"), (OPENAEDMAP, "osm"), (EUSKADI_UTM, "euskadi")):
        report = run(store, path, city, fmt=fmt)
        assert report.read == (
            report.inserted + report.updated + report.unchanged + len(report.skipped)
        )


def test_a_changed_record_is_updated_under_its_id_keeping_the_planners_decision(
    store: Store, city: CityProfile, tmp_path: Path
) -> None:
    run(store, OVERPASS, city)
    before = store.device("osm-node-990000000001")
    assert before is not None
    store.update_device(before, {**before, "verification": "verified", "pads_expiry": None},
                        actor="planificación", action="verify")  # fmt: skip
    document = json.loads(OVERPASS.read_text(encoding="utf-8"))
    document["elements"][0]["tags"]["name"] = "DEA Centro Cívico Ficticio (renovado)"
    document["elements"][0]["lat"] = 42.0111
    changed = tmp_path / "overpass.json"
    changed.write_text(json.dumps(document), encoding="utf-8")
    revision = store.revision("defibrillators")

    report = run(store, changed, city)

    assert (report.inserted, report.updated, report.unchanged) == (0, 1, 3)
    after = store.device("osm-node-990000000001")
    assert after is not None
    assert after["name"] == "DEA Centro Cívico Ficticio (renovado)"
    assert after["geometry"].equals(Point(-4.53, 42.0111))
    assert after["verification"] == "verified"  # decided by a planner: stays
    assert after["version"] == 3
    assert store.revision("defibrillators") == revision + 1
    entries, _ = store.audit_entries(record_type="device", record_id="osm-node-990000000001")
    assert entries[0]["actor"] == "prueba" and entries[0]["action"] == "update"
    assert entries[0]["before"]["name"] == "DEA Centro Cívico Ficticio"
    assert entries[0]["after"]["name"] == "DEA Centro Cívico Ficticio (renovado)"


def test_fields_the_source_does_not_give_and_removal(store: Store, city: CityProfile) -> None:
    def parsed(**properties: Any) -> ParsedImport:
        record = DeviceRecord(1, -4.53, 42.011, {"name": "DEA Ficticio", "access": "yes",
                                                 "source_id": "R-1", **properties})  # fmt: skip
        return ParsedImport("madrid", "r.json", "registro-ficticio", "CC BY 4.0", 1, [record])

    import_devices(store, parsed(), city, dry_run=False, actor="prueba", today=TODAY)
    before = store.device("madrid-r-1")
    assert before is not None and before["verification"] == "verified"  # an official register
    store.update_device(before, {**before, "phone": "979 000 000", "status": "out_of_service"},
                        actor="planificación")  # fmt: skip
    again = import_devices(store, parsed(), city, dry_run=False, actor="prueba", today=TODAY)
    assert again.unchanged == 1
    device = store.device("madrid-r-1")
    assert device is not None
    assert (device["phone"], device["status"]) == ("979 000 000", "out_of_service")

    removed = import_devices(store, parsed(status="removed", removed_on="2026-10-01"), city,
                             dry_run=False, actor="prueba", today=TODAY)  # fmt: skip
    assert removed.updated == 1
    device = store.device("madrid-r-1")
    assert device is not None
    assert (device["status"], str(device["removed_on"])) == ("removed", "2026-10-01")
    assert device["phone"] == "979 000 000"


def test_a_dry_run_writes_nothing(store: Store, city: CityProfile) -> None:
    revision, audited = store.revision("defibrillators"), audit_count(store)
    report = run(store, OVERPASS, city, dry_run=True)
    assert report.dry_run and (report.inserted, report.updated, report.unchanged) == (4, 0, 0)
    assert store.counts()["defibrillators"] == 0
    assert store.revision("defibrillators") == revision and audit_count(store) == audited
    run(store, OVERPASS, city)
    assert run(store, OVERPASS, city, dry_run=True).unchanged == 4


def test_a_dry_run_names_what_would_change(
    store: Store, city: CityProfile, db_url: str, tmp_path: Path
) -> None:
    run(store, OVERPASS, city)
    document = json.loads(OVERPASS.read_text(encoding="utf-8"))
    document["elements"][0]["tags"]["name"] = "DEA Centro Cívico Ficticio (renovado)"
    document["elements"].append(
        {"type": "node", "id": 990000000042, "lat": 42.0125, "lon": -4.531,
         "tags": {"emergency": "defibrillator", "name": "DEA Ficticio Nuevo"}}
    )  # fmt: skip
    changed = tmp_path / "overpass.json"
    changed.write_text(json.dumps(document), encoding="utf-8")

    report = run(store, changed, city, dry_run=True)

    assert report.updated_ids == ("osm-node-990000000001",)
    assert report.inserted_ids == ("osm-node-990000000042",)
    code, out, err = cli(db_url, "import", "osm", str(changed), "--dry-run")
    assert code == 0, err
    assert "Se insertarían: osm-node-990000000042." in out
    assert "Se actualizarían: osm-node-990000000001." in out
    assert store.device("osm-node-990000000042") is None


def test_probable_duplicates_of_another_source_are_reported_not_inserted(
    loaded: Store, city: CityProfile
) -> None:
    report = run(loaded, NEAR_SAMPLE, city)
    assert (report.inserted, len(report.duplicates)) == (1, 1)
    duplicate = report.duplicates[0]
    assert (duplicate.record, duplicate.source_id, duplicate.existing_id) == (
        1, "node/990000000021", "dea-002"
    )  # fmt: skip
    assert duplicate.distance_m == pytest.approx(8.0, abs=0.2)
    assert "nombre parecido" in duplicate.why
    assert report.skipped[0].record == 1 and "posible duplicado de 'dea-002'" in (
        report.skipped[0].reason
    )
    # 8 m from dea-001 too, but with an unrelated name: a different device.
    assert report.inserted_ids == ("osm-node-990000000022",)
    assert loaded.device("osm-node-990000000021") is None
    assert loaded.counts()["defibrillators"] == 30


def test_a_duplicate_by_serial_number_and_the_radius(
    store: Store, city: CityProfile, tmp_path: Path
) -> None:
    run(store, EUSKADI_UTM, city, fmt="euskadi")
    near = {"elements": [{"type": "node", "id": 990000000041, "lat": 42.01307, "lon": -4.528,
                          "tags": {"emergency": "defibrillator", "name": "DEA Bar Ficticio",
                                   "ref": "SN FICT 0001"}}]}  # fmt: skip
    path = tmp_path / "near.json"
    path.write_text(json.dumps(near), encoding="utf-8")
    parsed = osm.parse(path)
    report = import_devices(store, parsed, city, dry_run=True, actor="prueba", today=TODAY)
    assert [d.why for d in report.duplicates] == ["mismo número de serie"]
    assert report.duplicates[0].existing_id == "euskadi-eus-fict-0001"
    wider = import_devices(store, parsed, city, dry_run=True, actor="prueba", today=TODAY,
                           duplicate_radius_m=5.0)  # fmt: skip
    assert (wider.inserted, wider.duplicates) == (1, ())


def test_euskadi_devices_enter_verified(store: Store, city: CityProfile) -> None:
    report = run(store, EUSKADI_UTM, city, fmt="euskadi")
    assert (report.inserted, len(report.skipped), len(report.flagged)) == (3, 1, 1)
    device = store.device("euskadi-eus-fict-0002")
    assert device is not None
    assert (device["verification"], device["opening_hours"]) == ("verified", "Mo-Fr 08:00-15:00")
    assert LICENCES["euskadi"] == report.licence


def test_source_keys_are_unique_in_storage_and_writes_are_all_or_nothing(
    store: Store, city: CityProfile
) -> None:
    run(store, OVERPASS, city)
    device = store.device("osm-node-990000000001")
    assert device is not None
    with pytest.raises(IntegrityError):
        store.insert_device({**device, "id": "otra-copia"}, actor="prueba")
    fresh = {**device, "id": "nuevo", "source_id": "node/1"}
    taken = {**device, "id": "osm-node-990000000002", "source_id": "node/2"}
    with pytest.raises(ConflictError):
        store.upsert_devices([fresh, taken], actor="prueba")
    assert store.device("nuevo") is None and store.counts()["defibrillators"] == 4


def test_osm_records_are_published_under_odbl(db_url: str, store: Store, city: CityProfile) -> None:
    run(store, OVERPASS, city)
    before = store.device("osm-node-990000000001")
    assert before is not None
    store.update_device(before, {**before, "verification": "verified"}, actor="planificación")
    with TestClient(create_app(Settings(database_url=db_url))) as client:
        document = client.get("/api/downloads/defibrillators.geojson").json()
    assert [f["properties"]["id"] for f in document["features"]] == ["osm-node-990000000001"]
    assert document["licence_by_source"]["osm"].startswith("ODbL")
    assert LICENCES["osm"] == "ODbL 1.0 © OpenStreetMap contributors"


# --- the command line --------------------------------------------------------------------------


def cli(db_url: str, *args: str) -> tuple[int, str, str]:
    result = runner.invoke(cli_app, list(args), env={"CARDIOMAPA_DATABASE_URL": db_url})
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def empty_db(db_url: str) -> Iterator[str]:
    with Store.open(db_url):
        pass
    yield db_url


def test_cli_import_prints_counts_skips_and_licence(empty_db: str) -> None:
    code, out, err = cli(empty_db, "import", "osm", str(OVERPASS))
    assert code == 0, err
    assert "Simulación" not in out
    for label, count in (("leídos", 7), ("insertados", 4), ("sin cambios", 0), ("omitidos", 3)):
        assert any(label in line and f" {count} " in line for line in out.splitlines()), label
    assert "registro 4 (way/990000000004): vía sin centro" in out
    assert "registro 6 (node/990000000006)" in out and "fuera del término municipal" in out
    assert "registro 7 (node/990000000007): horario opening_hours" in out
    assert "ODbL" in out
    code, out, _ = cli(empty_db, "import", "osm", str(OVERPASS))
    assert code == 0
    assert any("sin cambios" in line and " 4 " in line for line in out.splitlines())
    with Store.open(empty_db) as store:
        assert store.counts()["defibrillators"] == 4


def test_cli_dry_run(empty_db: str) -> None:
    code, out, err = cli(empty_db, "import", "euskadi", str(EUSKADI_UTM), "--dry-run")
    assert code == 0, err
    assert "Simulación: no se ha guardado nada" in out
    assert any("se insertarían" in line and " 3 " in line for line in out.splitlines())
    with Store.open(empty_db) as store:
        assert store.counts()["defibrillators"] == 0


def test_cli_malformed_file_exits_1_and_writes_nothing(empty_db: str) -> None:
    code, _, err = cli(empty_db, "import", "osm", str(MALFORMED))
    assert code == 1
    assert 'malformed.json, registro 2, campo "lat"' in err
    assert "No se ha importado nada" in err
    with Store.open(empty_db) as store:
        assert store.counts()["defibrillators"] == 0


def test_cli_bad_usage_exits_2(empty_db: str) -> None:
    code, _, err = cli(empty_db, "import", "gpx", str(OVERPASS))
    assert code == 2 and "formato 'gpx' desconocido" in err and "osm" in err
    code, _, err = cli(empty_db, "import", "osm", str(OVERPASS), "--addresses", str(OVERPASS))
    assert code == 2 and "--addresses no se aplica al formato osm" in err
    code, _, _ = cli(empty_db, "import", "osm", "no-existe.json")
    assert code == 2


# --- upkeep dates ------------------------------------------------------------------------------

#: The clock of the CLI in these tests: noon of TODAY in Palencia (CARDIOMAPA_CLOCK_START).
PINNED = {"CARDIOMAPA_CLOCK_START": f"{TODAY.isoformat()}T12:00"}


def test_a_future_check_is_skipped_naming_its_field_and_a_past_expiry_is_flagged(
    store: Store, city: CityProfile
) -> None:
    records = [
        DeviceRecord(1, -4.530, 42.011, {"name": "DEA Uno", "source_id": "R-1",
                                          "check_date": "2027-01-15"}),
        DeviceRecord(2, -4.531, 42.012, {"name": "DEA Dos", "source_id": "R-2",
                                          "pads_expiry": "2026-12-06"}),
        DeviceRecord(3, -4.532, 42.013, {"name": "DEA Tres", "source_id": "R-3",
                                          "installed_on": "2026-05-01",
                                          "check_date": "2026-04-30"}),
    ]  # fmt: skip
    parsed = ParsedImport("madrid", "r.json", "registro-ficticio", "CC BY 4.0", 3, records)
    report = import_devices(store, parsed, city, dry_run=False, actor="prueba", today=TODAY)
    assert (report.inserted, len(report.skipped)) == (1, 2)
    future, before_install = report.skipped
    assert (future.record, future.source_id, future.field) == (1, "R-1", "check_date")
    assert future.reason.startswith('campo "check_date": la revisión del 15/01/2027 (2027-01-15)')
    assert "hoy es 07/12/2026" in future.reason
    assert (before_install.record, before_install.field) == (3, "check_date")
    assert "anterior a la instalación" in before_install.reason
    (flag,) = report.flagged
    assert (flag.record, flag.source_id) == (2, "R-2")
    assert flag.message == (
        'campo "pads_expiry": Los parches caducaron el 06/12/2026: el desfibrilador aparece '
        "como mantenimiento vencido hasta que los cambie."
    )
    stored = store.query_layer("defibrillators", where={"source": ["registro-ficticio"]})
    assert list(stored["source_id"]) == ["R-2"]
    assert stored["pads_expiry"].tolist() == [dt.date(2026, 12, 6)]


def test_cli_import_names_the_record_and_field_of_a_future_check(
    empty_db: str, tmp_path: Path
) -> None:
    document = json.loads(OVERPASS.read_text(encoding="utf-8"))
    document["elements"][0]["tags"]["check_date"] = "2027-01-15"
    path = tmp_path / "overpass.json"
    path.write_text(json.dumps(document), encoding="utf-8")
    env = {"CARDIOMAPA_DATABASE_URL": empty_db, **PINNED}
    result = runner.invoke(cli_app, ["import", "osm", str(path)], env=env)
    assert result.exit_code == 0, result.stderr
    assert "Importación osm de overpass.json" in result.stdout
    assert (
        'registro 1 (node/990000000001): campo "check_date": la revisión del 15/01/2027 '
        "(2027-01-15) está en el futuro: hoy es 07/12/2026" in " ".join(result.stdout.split())
    )
    with Store.open(empty_db) as opened:
        assert opened.device("osm-node-990000000001") is None


def test_load_refuses_a_future_check_and_lists_past_expiries(db_url: str, tiny_dir: Path) -> None:
    path = tiny_dir / "defibrillators.geojson"
    document = json.loads(path.read_text(encoding="utf-8"))
    document["features"][2]["properties"]["check_date"] = "2027-01-15"
    path.write_text(json.dumps(document), encoding="utf-8")
    env = {"CARDIOMAPA_DATABASE_URL": db_url, **PINNED}
    result = runner.invoke(cli_app, ["load", "--data-dir", str(tiny_dir)], env=env)
    assert result.exit_code == 1
    err = " ".join(result.stderr.split())
    assert (
        'defibrillators.geojson, elemento 2, campo "check_date": la revisión del 15/01/2027' in err
    )
    assert "No se ha cargado nada" in err
    with Store.open(db_url) as opened:
        assert opened.is_empty()

    document["features"][2]["properties"]["check_date"] = "2026-06-01"
    document["features"][1]["properties"]["pads_expiry"] = "2026-12-06"
    path.write_text(json.dumps(document), encoding="utf-8")
    result = runner.invoke(cli_app, ["load", "--data-dir", str(tiny_dir)], env=env)
    assert result.exit_code == 0, result.stderr
    out = " ".join(result.stdout.split())
    assert "Avisos (1), cargados igualmente:" in out
    assert (
        'defibrillators.geojson, elemento 1, campo "pads_expiry": Los parches caducaron el '
        "06/12/2026" in out
    )
    with Store.open(db_url) as opened:
        assert opened.counts()["defibrillators"] == 3


def test_a_layer_file_with_a_repeated_source_id_is_refused(
    tiny_dir: Path, city: CityProfile
) -> None:
    path = tiny_dir / "defibrillators.geojson"
    document = json.loads(path.read_text(encoding="utf-8"))
    for feature in document["features"][:2]:
        feature["properties"]["source_id"] = "node/1"
    path.write_text(json.dumps(document), encoding="utf-8")
    with pytest.raises(LayerValidationError) as caught:
        read_layers(tiny_dir, city)
    assert [(p.feature, p.field) for p in caught.value.problems] == [(1, "source_id")]


def test_the_readers_are_pure() -> None:
    """Parsers only read files: no database, web or HTML (run.py is the edge that stores)."""
    code = (
        "import sys, geo.io.importers, geo.io.importers.osm, geo.io.importers.euskadi\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in "
        "('fastapi', 'starlette', 'sqlalchemy', 'geoalchemy2', 'alembic', 'folium', 'api'))\n"
        "print(','.join(bad))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert done.stdout.strip() == ""


def test_hours_a_planner_entered_survive_a_reimport_of_unreadable_ones(
    store: Store, city: CityProfile
) -> None:
    run(store, OVERPASS, city)
    before = store.device("osm-node-990000000007")
    assert before is not None and before["opening_hours"] is None
    store.update_device(before, {**before, "opening_hours": "Mo-Fr 09:00-14:00"},
                        actor="planificación")  # fmt: skip
    report = run(store, OVERPASS, city)
    assert (report.updated, report.unchanged) == (0, 4)
    after = store.device("osm-node-990000000007")
    assert after is not None and after["opening_hours"] == "Mo-Fr 09:00-14:00"
