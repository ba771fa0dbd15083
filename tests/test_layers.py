"""Reading and validating layer files: every kind of bad input gets a precise message."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from geo.city import CityProfile
from geo.core.layers import DEFIBRILLATORS, LAYERS, POPULATION, parse_feature, upkeep_warnings
from geo.errors import LayerValidationError, Problem
from geo.io.files import read_layer, read_layers

Document = dict[str, Any]


def edit(directory: Path, file_name: str, change: Callable[[Document], None]) -> None:
    path = directory / file_name
    document = json.loads(path.read_text(encoding="utf-8"))
    change(document)
    path.write_text(json.dumps(document, ensure_ascii=False, indent=1), encoding="utf-8")


def problems_of(directory: Path, city: CityProfile) -> list[Problem]:
    with pytest.raises(LayerValidationError) as caught:
        read_layers(directory, city)
    return list(caught.value.problems)


def only_problem(directory: Path, city: CityProfile) -> Problem:
    problems = problems_of(directory, city)
    assert len(problems) == 1, problems
    return problems[0]


def set_property(index: int, name: str, value: Any) -> Callable[[Document], None]:
    def change(document: Document) -> None:
        document["features"][index]["properties"][name] = value

    return change


def test_the_tiny_fixture_reads_with_the_schema_columns(city: CityProfile) -> None:
    from tests.conftest import TINY_DIR

    layers = read_layers(TINY_DIR, city)
    assert layers.counts() == {
        "ceas": 2, "entities": 2, "defibrillators": 3, "cohousing": 1, "population": 12,
    }  # fmt: skip
    for schema in LAYERS:
        assert list(layers[schema.name].columns) == [*schema.field_names, "geometry"]
        assert layers[schema.name].crs == "EPSG:4326"
    assert int(layers["population"]["residents"].sum()) == 100 * sum(range(1, 13))


def test_invalid_json_names_the_file_and_line(tiny_dir: Path, city: CityProfile) -> None:
    path = tiny_dir / "entities.geojson"
    lines = path.read_text(encoding="utf-8").splitlines()
    lines[8] = lines[8].rstrip(",")  # drop the comma after "id": "ent-1" (line 9)
    path.write_text("\n".join(lines), encoding="utf-8")
    problem = only_problem(tiny_dir, city)
    assert problem.file == "entities.geojson"
    assert problem.line == 10  # where the JSON parser finds the missing comma
    assert "JSON no válido" in problem.message


def test_not_a_feature_collection(tiny_dir: Path, city: CityProfile) -> None:
    (tiny_dir / "cohousing.geojson").write_text('{"type": "Feature"}', encoding="utf-8")
    assert "FeatureCollection" in only_problem(tiny_dir, city).message


def test_missing_file_is_named(tiny_dir: Path, city: CityProfile) -> None:
    (tiny_dir / "ceas.geojson").unlink()
    problem = only_problem(tiny_dir, city)
    assert problem.file == "ceas.geojson"
    assert "no se encuentra" in problem.message


def test_wrong_geometry_type(tiny_dir: Path, city: CityProfile) -> None:
    def to_line(document: Document) -> None:
        document["features"][2]["geometry"] = {
            "type": "LineString",
            "coordinates": [[-4.53, 42.01], [-4.52, 42.01]],
        }

    edit(tiny_dir, "defibrillators.geojson", to_line)
    problem = only_problem(tiny_dir, city)
    assert (problem.file, problem.feature, problem.field) == (
        "defibrillators.geojson",
        2,
        "geometry",
    )
    assert "LineString" in problem.message and "Point" in problem.message


def test_coordinates_outside_the_municipality(tiny_dir: Path, city: CityProfile) -> None:
    def to_madrid(document: Document) -> None:
        document["features"][0]["geometry"]["coordinates"] = [-3.7038, 40.4168]

    edit(tiny_dir, "entities.geojson", to_madrid)
    problem = only_problem(tiny_dir, city)
    assert (problem.feature, problem.field) == (0, "geometry")
    assert "fuera del término municipal de Palencia" in problem.message


def test_swapped_lat_lon_gets_a_hint(tiny_dir: Path, city: CityProfile) -> None:
    def swap(document: Document) -> None:
        lon, lat = document["features"][1]["geometry"]["coordinates"]
        document["features"][1]["geometry"]["coordinates"] = [lat, lon]

    edit(tiny_dir, "defibrillators.geojson", swap)
    problem = only_problem(tiny_dir, city)
    assert problem.feature == 1
    assert "intercambiadas" in problem.message


def test_projected_coordinates_get_a_hint(tiny_dir: Path, city: CityProfile) -> None:
    def to_utm(document: Document) -> None:
        document["features"][0]["geometry"]["coordinates"] = [373_500.0, 4_651_600.0]

    edit(tiny_dir, "cohousing.geojson", to_utm)
    assert "EPSG:4326" in only_problem(tiny_dir, city).message


def test_a_declared_projected_crs_is_refused(tiny_dir: Path, city: CityProfile) -> None:
    def declare(document: Document) -> None:
        document["crs"] = {"type": "name", "properties": {"name": "urn:ogc:def:crs:EPSG::25830"}}

    edit(tiny_dir, "population.geojson", declare)
    problem = only_problem(tiny_dir, city)
    assert problem.field == "crs"
    assert "25830" in problem.message


def test_missing_required_field(tiny_dir: Path, city: CityProfile) -> None:
    def drop_source(document: Document) -> None:
        del document["features"][1]["properties"]["source"]

    edit(tiny_dir, "entities.geojson", drop_source)
    problem = only_problem(tiny_dir, city)
    assert (problem.file, problem.feature, problem.field) == ("entities.geojson", 1, "source")
    assert "obligatorio" in problem.message


def test_duplicate_id_names_both_features(tiny_dir: Path, city: CityProfile) -> None:
    edit(tiny_dir, "population.geojson", set_property(7, "id", "pop-02"))
    problem = only_problem(tiny_dir, city)
    assert (problem.feature, problem.field) == (7, "id")
    assert "repetido" in problem.message and "elemento 1" in problem.message


def test_unknown_enum_value_lists_the_accepted_ones(tiny_dir: Path, city: CityProfile) -> None:
    edit(tiny_dir, "defibrillators.geojson", set_property(0, "access", "public"))
    problem = only_problem(tiny_dir, city)
    assert (problem.feature, problem.field) == (0, "access")
    assert "'public'" in problem.message and "permissive" in problem.message


def test_unknown_field_is_not_silently_dropped(tiny_dir: Path, city: CityProfile) -> None:
    edit(tiny_dir, "defibrillators.geojson", set_property(0, "opening_hour", "24/7"))
    problem = only_problem(tiny_dir, city)
    assert problem.field == "opening_hour"
    assert "campo desconocido" in problem.message and "opening_hours" in problem.message


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("opening_hours", "Lunes a viernes de 9 a 14", "opening_hours"),
        ("installed_on", "15/06/2025", "AAAA-MM-DD"),
        ("installed_on", "2025-02-30", "AAAA-MM-DD"),
        ("indoor", "sí", "true o false"),
        ("tags", ["a"], "objeto"),
        ("name", "  ", "vacío"),
        ("name", 12, "texto"),
    ],
)
def test_bad_values_are_explained(
    tiny_dir: Path, city: CityProfile, field: str, value: Any, expected: str
) -> None:
    edit(tiny_dir, "defibrillators.geojson", set_property(2, field, value))
    problem = only_problem(tiny_dir, city)
    assert (problem.file, problem.feature, problem.field) == ("defibrillators.geojson", 2, field)
    assert expected in problem.message


def test_negative_residents(tiny_dir: Path, city: CityProfile) -> None:
    edit(tiny_dir, "population.geojson", set_property(3, "residents", -5))
    problem = only_problem(tiny_dir, city)
    assert (problem.feature, problem.field) == (3, "residents")
    assert "mínimo" in problem.message


def test_more_seniors_than_residents(tiny_dir: Path, city: CityProfile) -> None:
    edit(tiny_dir, "population.geojson", set_property(0, "residents_65_plus", 101))
    problem = only_problem(tiny_dir, city)
    assert problem.field == "residents_65_plus"


def test_removal_before_installation(tiny_dir: Path, city: CityProfile) -> None:
    edit(tiny_dir, "defibrillators.geojson", set_property(0, "removed_on", "2020-01-01"))
    assert only_problem(tiny_dir, city).field == "removed_on"


def test_dangling_entity_reference(tiny_dir: Path, city: CityProfile) -> None:
    edit(tiny_dir, "defibrillators.geojson", set_property(2, "operator_entity_id", "ent-99"))
    problem = only_problem(tiny_dir, city)
    assert (problem.feature, problem.field) == (2, "operator_entity_id")
    assert "ent-99" in problem.message


def test_overlapping_zones(tiny_dir: Path, city: CityProfile) -> None:
    def widen(document: Document) -> None:
        ring = document["features"][0]["geometry"]["coordinates"][0]
        for point in ring:
            if point[0] == -4.5288:
                point[0] = -4.5200

    edit(tiny_dir, "ceas.geojson", widen)
    problem = only_problem(tiny_dir, city)
    assert problem.field == "geometry" and "se solapa" in problem.message


def test_self_intersecting_polygon(tiny_dir: Path, city: CityProfile) -> None:
    def bowtie(document: Document) -> None:
        document["features"][1]["geometry"]["coordinates"] = [
            [[-4.52, 42.00], [-4.515, 42.01], [-4.515, 42.00], [-4.52, 42.01], [-4.52, 42.00]]
        ]

    edit(tiny_dir, "ceas.geojson", bowtie)
    assert "no válida" in only_problem(tiny_dir, city).message


def test_every_problem_in_every_file_is_reported_at_once(tiny_dir: Path, city: CityProfile) -> None:
    edit(tiny_dir, "defibrillators.geojson", set_property(0, "status", "broken"))
    edit(tiny_dir, "defibrillators.geojson", set_property(1, "verification", "ok"))
    edit(tiny_dir, "population.geojson", set_property(4, "residents", "many"))
    problems = problems_of(tiny_dir, city)
    assert {(p.file, p.feature, p.field) for p in problems} == {
        ("defibrillators.geojson", 0, "status"),
        ("defibrillators.geojson", 1, "verification"),
        ("population.geojson", 4, "residents"),
    }
    message = str(LayerValidationError(problems))
    assert message.startswith("Se encontraron 3 problemas")
    assert 'population.geojson, elemento 4, campo "residents"' in message


def test_read_layer_reads_one_file(city: CityProfile) -> None:
    from tests.conftest import TINY_DIR

    frame = read_layer(TINY_DIR / POPULATION.file_name, POPULATION, city)
    assert str(frame["residents"].dtype) == "Int64"


def test_parse_feature_validates_a_single_feature(city: CityProfile) -> None:
    feature = {
        "type": "Feature",
        "properties": {"id": "x", "name": "Nuevo", "access": "yes", "status": "active",
                       "verification": "pending", "source": "entidad"},
        "geometry": {"type": "Point", "coordinates": [-4.53, 42.01]},
    }  # fmt: skip
    record, problems = parse_feature(feature, DEFIBRILLATORS, city, file="petición")
    assert problems == []
    assert record is not None
    assert record["is_mobile"] is False and record["tags"] == {}


# --- upkeep dates -----------------------------------------------------------------------------

#: The city's date these tests run on: passed in, never read from the wall clock.
TODAY = dt.date(2026, 12, 7)


def device(**properties: Any) -> dict[str, Any]:
    return {
        "type": "Feature",
        "properties": {"id": "x", "name": "Nuevo", "access": "yes", "status": "active",
                       "verification": "pending", "source": "entidad", **properties},
        "geometry": {"type": "Point", "coordinates": [-4.53, 42.01]},
    }  # fmt: skip


def test_a_check_date_after_today_is_refused_at_its_field(city: CityProfile) -> None:
    record, problems = parse_feature(
        device(check_date="2027-01-15"), DEFIBRILLATORS, city, file="f.geojson", index=4,
        today=TODAY,
    )  # fmt: skip
    assert record is None
    (problem,) = problems
    assert (problem.file, problem.feature, problem.field, problem.code) == (
        "f.geojson", 4, "check_date", "date_in_future",
    )  # fmt: skip
    # what is wrong, the date read, what is accepted
    assert "15/01/2027 (2027-01-15)" in problem.message and "en el futuro" in problem.message
    assert "hoy es 07/12/2026 en Palencia" in problem.message and "hoy o antes" in problem.message
    # today itself is fine, and without a today only that rule is left out
    assert parse_feature(device(check_date="2026-12-07"), DEFIBRILLATORS, city, file="f",
                         today=TODAY)[1] == []  # fmt: skip
    assert parse_feature(device(check_date="2027-01-15"), DEFIBRILLATORS, city, file="f")[1] == []


def test_a_check_date_before_installation_is_refused_at_its_field(city: CityProfile) -> None:
    _, problems = parse_feature(
        device(installed_on="2026-05-01", check_date="2026-04-30"), DEFIBRILLATORS, city,
        file="f", today=TODAY,
    )  # fmt: skip
    (problem,) = problems
    assert (problem.field, problem.code) == ("check_date", "dates_out_of_order")
    assert "30/04/2026 (2026-04-30)" in problem.message and "01/05/2026" in problem.message
    assert "desde la instalación hasta hoy" in problem.message
    same_day = device(installed_on="2026-05-01", check_date="2026-05-01")
    assert parse_feature(same_day, DEFIBRILLATORS, city, file="f", today=TODAY)[1] == []
    # checked without a today too: it does not depend on the date
    assert parse_feature(device(installed_on="2026-05-01", check_date="2026-04-30"),
                         DEFIBRILLATORS, city, file="f")[1] != []  # fmt: skip


def test_a_layer_file_with_a_future_check_names_file_element_and_field(
    tiny_dir: Path, city: CityProfile
) -> None:
    edit(tiny_dir, DEFIBRILLATORS.file_name, set_property(2, "check_date", "2027-01-15"))
    with pytest.raises(LayerValidationError) as caught:
        read_layers(tiny_dir, city, today=TODAY)
    (problem,) = caught.value.problems
    assert str(problem).startswith(
        'defibrillators.geojson, elemento 2, campo "check_date": la revisión del 15/01/2027'
    )
    assert read_layers(tiny_dir, city, today=dt.date(2027, 1, 15)).counts()["defibrillators"] == 3


def test_expiries_already_past_are_accepted_with_a_warning(city: CityProfile) -> None:
    record, problems = parse_feature(
        device(pads_expiry="2026-12-06", battery_expiry="2026-12-07"), DEFIBRILLATORS, city,
        file="f", index=1, today=TODAY,
    )  # fmt: skip
    assert problems == [] and record is not None
    (warning,) = upkeep_warnings(record, today=TODAY, file="f", index=1)
    assert (warning.feature, warning.field, warning.code) == (1, "pads_expiry", "expired")
    assert warning.message == (
        "Los parches caducaron el 06/12/2026: el desfibrilador aparece como mantenimiento "
        "vencido hasta que los cambie."
    )
    # the battery expires today: still in date
    both = upkeep_warnings({**record, "battery_expiry": dt.date(2026, 1, 31)}, today=TODAY,
                           file="f")  # fmt: skip
    assert [w.field for w in both] == ["pads_expiry", "battery_expiry"]
    assert both[1].message.startswith("La batería caducó el 31/01/2026")
    assert upkeep_warnings({**record, "status": "removed"}, today=TODAY, file="f") == []
