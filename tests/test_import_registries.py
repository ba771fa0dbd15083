"""Importers of public registries: Spanish opening hours, Comunidad de Madrid, the Castilla y León
DESA register (geocoded against an address-points layer) and INE census sections."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import geopandas as gpd
import opening_hours
import pandas as pd
import pytest
from geopandas.testing import assert_geodataframe_equal
from sqlalchemy.exc import IntegrityError
from typer.testing import CliRunner

from geo.city import CityProfile
from geo.cli import app
from geo.core.layers import Layers
from geo.errors import ImportFormatError, LayerValidationError
from geo.io.importers import IMPORTERS, LICENCES, ine_sections, jcyl_desa, madrid
from geo.io.importers.base import ParsedImport, Skip
from geo.io.importers.hours import to_opening_hours
from geo.io.importers.run import import_devices
from geo.io.store import Store
from tests.conftest import TINY_DIR

# --- opening hours ----------------------------------------------------------------------------

CONVERTED = [
    ("24 horas", "24/7"),
    ("24h", "24/7"),
    ("24 H", "24/7"),
    ("Abierto 24 horas", "24/7"),
    ("Todos los días 24 horas", "24/7"),
    ("24h/7d", "24/7"),
    ("24 horas, 365 días al año", "24/7"),
    ("24/7", "24/7"),
    ("L-V 8:00-15:00", "Mo-Fr 08:00-15:00"),
    ("L-V: 8-15h, S: 9-14h", "Mo-Fr 08:00-15:00; Sa 09:00-14:00"),
    ("Lunes a viernes de 9:00 a 14:00 y de 16:00 a 20:00", "Mo-Fr 09:00-14:00,16:00-20:00"),
    ("De lunes a domingo de 8 a 22", "Mo-Su 08:00-22:00"),
    ("Sábados 10:00-14:00", "Sa 10:00-14:00"),
    ("L-V 9-14h; S 10-13h", "Mo-Fr 09:00-14:00; Sa 10:00-13:00"),
    ("L a V de 8 a 15 y S de 9 a 14", "Mo-Fr 08:00-15:00; Sa 09:00-14:00"),
    ("L-V 8:00-15:00. S 9:00-13:00", "Mo-Fr 08:00-15:00; Sa 09:00-13:00"),
    ("Lunes, miércoles y viernes de 9 a 13", "Mo,We,Fr 09:00-13:00"),
    ("lun. a vie. 9.30-13.30", "Mo-Fr 09:30-13:30"),
    ("9:00 a 21:00 de lunes a sábado", "Mo-Sa 09:00-21:00"),
    ("Lunes a viernes: 8:00 – 15:00", "Mo-Fr 08:00-15:00"),
    ("Lunes a Viernes 24 horas", "Mo-Fr 00:00-24:00"),
    ("L-V 24h; S 9-14", "Mo-Fr 00:00-24:00; Sa 09:00-14:00"),
    ("L-V 9:00-14:00 excepto festivos", "Mo-Fr 09:00-14:00; PH off"),
    ("Fines de semana 10-14", "Sa,Su 10:00-14:00"),
    ("Domingo cerrado", "Su off"),
    ("L-S 9-21, domingos cerrado", "Mo-Sa 09:00-21:00; Su off"),
    ("De 4 a 8 de la tarde", "16:00-20:00"),
    ("de 9 a 2 de la tarde", "09:00-14:00"),
    ("mañanas de 9 a 14 y tardes de 17 a 20", "09:00-14:00,17:00-20:00"),
    ("de 8 a 15", "08:00-15:00"),
    ("9h30-14h", "09:30-14:00"),
    ("V 20:00-02:00", "Fr 20:00-02:00"),
    ("Mo-Fr 08:00-15:00", "Mo-Fr 08:00-15:00"),  # already OSM syntax
]


@pytest.mark.parametrize(("text", "expected"), CONVERTED)
def test_spanish_hours_are_converted_to_valid_osm_syntax(text: str, expected: str) -> None:
    result, reason = to_opening_hours(text)
    assert (result, reason) == (expected, None)
    assert result is not None
    opening_hours.OpeningHours(result)  # the real parser accepts it


REFUSED = [
    ("horario del centro", "remite al horario de otro lugar"),
    ("Horario del centro", "remite al horario de otro lugar"),
    ("según horario de apertura", "remite a otro horario"),
    ("Horario de apertura del polideportivo", "remite al horario de otro lugar"),
    ("El del establecimiento", "remite al horario del establecimiento"),
    ("Durante los partidos", "depende de la apertura o de la actividad"),
    ("Verano de 9 a 14", "es estacional"),
    ("Días laborables de 8 a 15", "«laborables» es ambiguo"),
    ("Lunes a viernes", "faltan las horas"),
    ("L-V 25:00-26:00", "la hora «25:00» no existe"),
    ("L-V 9", "no forma un intervalo"),
    ("L-V 9-9", "empieza y acaba a la misma hora"),
    ("cerrado", "«cerrado» sin días"),
    ("Consultar en recepción", "depende de la apertura"),
    ("Hasta las 3 más o menos", "no se reconoce"),
    ("L-V 9-14 @", "no se reconoce el carácter «@»"),
    ("excepto", "«excepto» no va seguido de días"),
]


@pytest.mark.parametrize(("text", "why"), REFUSED)
def test_unconvertible_hours_are_refused_with_a_spanish_reason(text: str, why: str) -> None:
    result, reason = to_opening_hours(text)
    assert result is None
    assert reason is not None
    assert reason.startswith(f"horario «{text}» no convertido: ")
    assert why in reason


@pytest.mark.parametrize("text", [None, "", "   "])
def test_empty_hours_are_neither_converted_nor_flagged(text: str | None) -> None:
    assert to_opening_hours(text) == (None, None)


# --- Comunidad de Madrid ----------------------------------------------------------------------

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "import"
MADRID_FILE = FIXTURES / "madrid" / "dea_madrid_format.json"
#: The city's date the imports run on (a pinned day, never the wall clock).
TODAY = dt.date(2026, 12, 7)


def test_madrid_records_are_mapped_reprojected_and_kept_verbatim(city: CityProfile) -> None:
    parsed = madrid.parse(MADRID_FILE, city=city)
    assert (parsed.format, parsed.source, parsed.file, parsed.read) == (
        "madrid", "comunidad-madrid", "dea_madrid_format.json", 5,
    )  # fmt: skip
    assert "CC BY 4.0" in parsed.licence
    assert [r.record for r in parsed.records] == [1, 2, 4]
    first, second, fourth = parsed.records
    # UTM 30N (EPSG:25830) 373422 / 4651961 m → degrees.
    assert first.lon == pytest.approx(-4.5286026, abs=1e-6)
    assert first.lat == pytest.approx(42.0094984, abs=1e-6)
    # decimal commas in both a UTM pair and a latitude/longitude pair
    assert (second.lon, second.lat) == (-4.533, 42.012)
    assert fourth.lon == pytest.approx(-4.5249991, abs=1e-6)
    assert fourth.lat == pytest.approx(42.0049982, abs=1e-6)
    assert first.properties == {
        "name": "Centro deportivo, CALLE MAYOR 10",
        "location_text": "Vestíbulo, junto a recepción",
        "address": "CALLE MAYOR 10, 34001 Palencia",
        "opening_hours": "Mo-Fr 08:00-15:00",
        "status": "active",
        "source": "comunidad-madrid",
        "source_id": "DEA-28-000101",
        "tags": json.loads(MADRID_FILE.read_text(encoding="utf-8"))["data"][0],
    }
    assert first.flags == ()
    assert second.properties["address"] == "AVENIDA DE VALLADOLID 5, BJ A, 34002 Palencia"
    assert second.properties["opening_hours"] == "24/7"
    assert second.properties["tags"]["direccion_latitud"] == "42,0120000"


def test_madrid_hours_not_converted_are_flagged_and_kept_in_tags(city: CityProfile) -> None:
    parsed = madrid.parse(MADRID_FILE, city=city)
    fourth = parsed.records[2]
    assert "opening_hours" not in fourth.properties
    assert fourth.properties["tags"]["horario_acceso"] == "Horario del centro"
    assert fourth.flags == (
        "horario «Horario del centro» no convertido: remite al horario de otro lugar.",
    )
    assert any("1 horarios no se pudieron convertir" in note for note in parsed.notes)


def test_madrid_records_without_a_coordinate_pair_are_skipped(city: CityProfile) -> None:
    parsed = madrid.parse(MADRID_FILE, city=city)
    assert parsed.skipped == [
        Skip(
            3,
            "DEA-28-000103",
            "sin coordenadas: faltan direccion_coordenada_x/_y (UTM 30N) y "
            "direccion_latitud/direccion_longitud.",
            "direccion_coordenada_x",
        ),
        Skip(
            5,
            "DEA-28-000105",
            "coordenada longitud/latitud incompleta: falta direccion_longitud.",
            "direccion_longitud",
        ),
    ]


def _madrid_file(tmp_path: Path, data: object) -> Path:
    path = tmp_path / "madrid.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def test_madrid_non_numeric_coordinate_is_skipped(city: CityProfile, tmp_path: Path) -> None:
    record = {
        "codigo_dea": "X1",
        "direccion_coordenada_x": "373422",
        "direccion_coordenada_y": "n/d",
    }
    parsed = madrid.parse(_madrid_file(tmp_path, {"data": [record]}), city=city)
    assert parsed.records == []
    assert parsed.skipped == [
        Skip(1, "X1", "coordenada UTM 30N no numérica: 'n/d'.", "direccion_coordenada_y")
    ]


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("{not json", "madrid.json: no es JSON válido"),
        ('{"datos": []}', 'madrid.json, campo "data": se esperaba un objeto JSON con una lista'),
        ("[1, 2]", 'madrid.json, campo "data": se esperaba'),
        ('{"data": [{"codigo_dea": "A"}, "texto"]}', "madrid.json, registro 2: cada registro"),
        (
            '{"data": [{"codigo_dea": "A", "direccion_coordenada_x": 373422.0}]}',
            'madrid.json, registro 1, campo "direccion_coordenada_x": se esperaba texto',
        ),
        (
            '{"data": [{"codigo_dea": "", "direccion_latitud": "42,01"}]}',
            'madrid.json, registro 1, campo "codigo_dea": falta el código',
        ),
        (
            '{"data": [{"municipio_nombre": "Palencia"}]}',
            'madrid.json, registro 1, campo "codigo_dea"',
        ),
    ],
)
def test_madrid_malformed_files_name_record_and_field(
    city: CityProfile, tmp_path: Path, content: str, expected: str
) -> None:
    path = tmp_path / "madrid.json"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(ImportFormatError) as caught:
        madrid.parse(path, city=city)
    assert str(caught.value).startswith(expected)


def test_madrid_accepts_a_bom(city: CityProfile, tmp_path: Path) -> None:
    path = tmp_path / "bom.json"
    path.write_bytes(b"\xef\xbb\xbf" + MADRID_FILE.read_bytes())
    assert len(madrid.parse(path, city=city).records) == 3


@pytest.mark.parametrize(
    ("text", "value"),
    [("42,0120000", 42.012), ("-4,533", -4.533), ("373422", 373422.0), ("4.651.961,5", 4651961.5),
     ("373422.25", 373422.25), ("", None), ("abc", None), ("nan", None)],
)  # fmt: skip
def test_spanish_numbers(text: str, value: float | None) -> None:
    assert madrid.parse_number(text) == value


# --- Castilla y León DESA register ------------------------------------------------------------

JCYL_FILE = FIXTURES / "jcyl" / "desa_jcyl_sintetico.csv"
ADDRESSES = FIXTURES / "jcyl" / "portales_palencia_sintetico.geojson"


def _jcyl(city: CityProfile, path: Path = JCYL_FILE) -> ParsedImport:
    return jcyl_desa.parse(path, city=city, addresses=ADDRESSES)


def test_jcyl_register_is_geocoded_on_the_address_points(city: CityProfile) -> None:
    parsed = _jcyl(city)
    assert (parsed.format, parsed.source, parsed.read) == ("jcyl-desa", "jcyl-desa", 8)
    assert "CC BY 4.0" in parsed.licence
    by_record = {r.record: r for r in parsed.records}
    assert sorted(by_record) == [1, 2, 3, 7, 8]
    # exact: Calle Mayor 10 (CL → calle)
    assert (by_record[1].lon, by_record[1].lat, by_record[1].flags) == (-4.52988, 42.009, ())
    # approximate: no 6 on Avenida de Valladolid; 4 and 8 are both 2 away → the lower, 4
    assert (by_record[2].lon, by_record[2].lat) == (-4.53185, 42.0004)
    assert by_record[2].flags == (
        "número aproximado: el 6 de «AVDA DE VALLADOLID» se sitúa en el 4.",
    )
    # approximate: the 7 of Villamuriel's Calle Mayor is not Palencia's; the 5 is used
    assert (by_record[3].lon, by_record[3].lat) == (-4.53012, 42.0085)
    assert by_record[3].flags == ("número aproximado: el 7 de «C/ Mayor» se sitúa en el 5.",)
    # the street type given inside "via"
    assert (by_record[8].lon, by_record[8].lat, by_record[8].flags) == (-4.5288, 42.01, ())
    assert any("5 de 8 desfibriladores situados" in note for note in parsed.notes)


def test_jcyl_fields_are_mapped_and_kept_in_tags(city: CityProfile) -> None:
    by_record = {r.record: r for r in _jcyl(city).records}
    assert by_record[1].properties == {
        "name": "Gimnasio Sintético Centro",
        "location_text": "Recepción",
        "address": "CL MAYOR 10, PALENCIA",
        "status": "active",
        "installed_on": "2018-03-01",
        "removed_on": None,
        "source": "jcyl-desa",
        "source_id": "NS-0001",
        "tags": {
            "numero_serie": "NS-0001", "empresa": "Gimnasio Sintético Centro",
            "ubicacion": "Recepción", "tipo_via": "CL", "via": "MAYOR", "numero": "10",
            "escalera": "", "letra": "", "localidad": "PALENCIA", "provincia": "PALENCIA",
            "fecha_alta": "2018-03-01", "fecha_baja": "",
        },
    }  # fmt: skip
    assert by_record[3].properties["address"] == "C/ Mayor 7, esc. A, letra B, PALENCIA"
    removed = by_record[7].properties
    assert (removed["status"], removed["installed_on"], removed["removed_on"]) == (
        "removed", "2017-11-20", "2023-06-30",
    )  # fmt: skip
    assert by_record[8].properties["installed_on"] == "2019-05-14"  # from 14/05/2019


def test_jcyl_every_skip_reason(city: CityProfile) -> None:
    assert _jcyl(city).skipped == [
        Skip(4, "NS-0004", "calle no encontrada en el callejero: «CALLE INEXISTENTE».", "via"),
        Skip(
            5,
            "NS-0005",
            "número 31 no encontrado en «AV VALLADOLID» (ni otro del mismo lado a ±4).",
            "numero",
        ),
        Skip(6, "NS-0006", "fuera de Palencia: localidad «VILLAMURIEL DE CERRATO».", "localidad"),
    ]


def _register(tmp_path: Path, text: str, *, name: str = "desa.csv", bom: bool = False) -> Path:
    path = tmp_path / name
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + text.encode("utf-8"))
    return path


HEADER = ",".join(jcyl_desa.COLUMNS)


def test_jcyl_comma_csv_without_bom_and_missing_number(city: CityProfile, tmp_path: Path) -> None:
    text = (
        f"{HEADER}\n"
        'A1,"Bar, Sintético",Barra,AVENIDA,de Valladolid,8,,,Palencia,Palencia,,\n'
        "A2,Otro,,CALLE,Mayor,S/N,,,Palencia,Palencia,2020-13-01,\n"
        "A3,Sin localidad,,CALLE,Mayor,1,,,,Palencia,,\n"
        "A4,,,CALLE,Mayor,1,,,Palencia,Palencia,fecha rara,ayer\n"
    )
    parsed = _jcyl(city, _register(tmp_path, text))
    assert [r.properties["source_id"] for r in parsed.records] == ["A1", "A4"]
    assert parsed.records[0].properties["name"] == "Bar, Sintético"
    assert (parsed.records[0].lon, parsed.records[0].lat) == (-4.53185, 42.0008)
    unnamed = parsed.records[1]
    assert unnamed.properties["name"] == "DESA A4"
    assert unnamed.properties["status"] == "removed"  # a fecha_baja, even unreadable
    assert "installed_on" not in unnamed.properties and "removed_on" not in unnamed.properties
    assert unnamed.flags == (
        "fecha_alta «fecha rara» no es una fecha reconocible: se conserva en tags.",
        "fecha_baja «ayer» no es una fecha reconocible: se conserva en tags.",
    )
    assert parsed.skipped == [
        Skip(2, "A2", "sin número de portal (S/N) en «CALLE Mayor»: no se puede situar.", "numero"),
        Skip(3, "A3", "fuera de Palencia: localidad sin localidad.", "localidad"),
    ]


def test_jcyl_json_as_published(city: CityProfile, tmp_path: Path) -> None:
    records = [
        {"fields": {"numero_serie": "J1", "empresa": "Uno", "tipo_via": "PZ", "via": "Mayor",
                    "numero": 2, "localidad": "Palencia", "fecha_alta": "2019-05-14T00:00:00"}},
        {"numero_serie": "J2", "via": "Calle Mayor", "numero": "12", "localidad": "palencia"},
    ]  # fmt: skip
    for document in (records, {"results": records}):
        path = _register(tmp_path, json.dumps(document), name="desa.json")
        parsed = _jcyl(city, path)
        assert [(r.lon, r.lat) for r in parsed.records] == [(-4.5288, 42.01), (-4.52988, 42.0092)]
        assert parsed.records[0].properties["installed_on"] == "2019-05-14"
        assert parsed.records[0].properties["tags"]["numero"] == "2"


def test_jcyl_needs_the_address_points(city: CityProfile) -> None:
    with pytest.raises(ImportFormatError, match="indique un callejero de portales con --addresses"):
        jcyl_desa.parse(JCYL_FILE, city=city)


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("", "desa.csv: el archivo está vacío"),
        ("numero_serie;empresa;localidad\nA;B;C\n",
         'desa.csv, campo "via": faltan las columnas via, numero'),
        (f"{HEADER}\nA,B\n", "desa.csv, registro 1: tiene 2 columnas y la cabecera 12"),
        (f"{HEADER}\n,B,,,Mayor,1,,,Palencia,,,\n", 'desa.csv, registro 1, campo "numero_serie"'),
        ('[{"numero_serie": "A", "via": ["x"], "numero": "1", "localidad": "P"}]',
         'desa.csv, registro 1, campo "via"'),
        ('[{"numero_serie": "A", "numero": "1", "localidad": "P"}]',
         'desa.csv, registro 1, campo "via": faltan'),
        ('["x"]', "desa.csv, registro 1: cada registro debe ser un objeto"),
        ('{"total": 3}', "desa.csv: se esperaba una lista de registros"),
        ("[1,", "desa.csv: no es JSON válido"),
    ],
)  # fmt: skip
def test_jcyl_malformed_register(
    city: CityProfile, tmp_path: Path, content: str, expected: str
) -> None:
    with pytest.raises(ImportFormatError) as caught:
        _jcyl(city, _register(tmp_path, content))
    assert str(caught.value).startswith(expected)


def test_jcyl_register_not_utf8(city: CityProfile, tmp_path: Path) -> None:
    path = tmp_path / "desa.csv"
    path.write_bytes(f"{HEADER}\nA,Caña,,,Mayor,1,,,Palencia,,,\n".encode("cp1252"))
    with pytest.raises(ImportFormatError, match=r"desa.csv: el archivo no está en UTF-8"):
        _jcyl(city, path)


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("not a layer", 'calles.geojson, campo "addresses": no se puede leer el callejero'),
        (
            '{"type": "FeatureCollection", "features": [{"type": "Feature", "properties": '
            '{"calle_x": "Mayor"}, "geometry": {"type": "Point", "coordinates": [-4.53, 42.0]}}]}',
            'calles.geojson, campo "addresses": el callejero necesita un campo de calle',
        ),
        (
            '{"type": "FeatureCollection", "features": [{"type": "Feature", "properties": '
            '{"nombre_via": "Mayor", "numero": "1"}, "geometry": {"type": "LineString", '
            '"coordinates": [[-4.53, 42.0], [-4.52, 42.0]]}}]}',
            'calles.geojson, registro 1, campo "geometry": cada elemento del callejero',
        ),
    ],
)
def test_jcyl_bad_address_points(
    city: CityProfile, tmp_path: Path, content: str, expected: str
) -> None:
    path = tmp_path / "calles.geojson"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(ImportFormatError) as caught:
        jcyl_desa.parse(JCYL_FILE, city=city, addresses=path)
    assert str(caught.value).startswith(expected)


def test_address_points_in_another_crs_are_reprojected(city: CityProfile, tmp_path: Path) -> None:
    frame = gpd.read_file(ADDRESSES).to_crs("EPSG:25830")
    path = tmp_path / "portales.shp"
    frame.to_file(path)
    parsed = jcyl_desa.parse(JCYL_FILE, city=city, addresses=path)
    first = parsed.records[0]
    assert (first.lon, first.lat) == (
        pytest.approx(-4.52988, abs=1e-6),
        pytest.approx(42.009, abs=1e-6),
    )


@pytest.mark.parametrize(
    ("street_type", "name", "key"),
    [
        ("C/", "Mayor", ("calle", "mayor")),
        ("", "C/ MAYOR", ("calle", "mayor")),
        ("CL", "MAYOR", ("calle", "mayor")),
        ("AVDA.", "de Valladolid", ("avenida", "valladolid")),
        ("AV", "VALLADOLID", ("avenida", "valladolid")),
        ("", "Avenida de la Castilla", ("avenida", "castilla")),
        ("PZA", "Mayor", ("plaza", "mayor")),
        ("Pº", "del Salón de Isabel II", ("paseo", "salon isabel ii")),
        ("CTRA", "de Santander", ("carretera", "santander")),
        ("", "Don Sancho", ("", "don sancho")),
    ],
)
def test_street_keys(street_type: str, name: str, key: tuple[str, str]) -> None:
    assert jcyl_desa.street_key(street_type, name) == key


@pytest.mark.parametrize(
    ("text", "value"),
    [("2019-05-14", dt.date(2019, 5, 14)), ("14/05/2019", dt.date(2019, 5, 14)),
     ("2019-05-14T00:00:00", dt.date(2019, 5, 14)), ("1-2-2020", dt.date(2020, 2, 1)),
     ("2020-13-01", None), ("ayer", None)],
)  # fmt: skip
def test_register_dates(text: str, value: dt.date | None) -> None:
    assert jcyl_desa.parse_date(text) == value


# --- INE census sections ------------------------------------------------------------------------

SECTIONS = FIXTURES / "ine" / "secciones_sinteticas.geojson"
POPULATION_CSV = FIXTURES / "ine" / "poblacion_secciones_sintetica.csv"
MATCHED = ["3412001001", "3412001003", "3412001004", "3412002001", "3412002002"]


def test_sections_become_one_population_point_each(city: CityProfile) -> None:
    result = ine_sections.parse(SECTIONS, city=city, population=POPULATION_CSV)
    frame = result.frame
    assert list(frame["section_code"]) == MATCHED
    assert list(frame["id"]) == [f"ine-{code}" for code in MATCHED]
    assert list(frame["residents"]) == [1204, 987, 1530, 600, 0]
    assert list(frame["residents_65_plus"]) == [310, 255, 402, 83, 0]
    assert set(frame["source"]) == {"ine"}
    assert frame.crs == "EPSG:4326"
    polygons = gpd.read_file(SECTIONS).set_index("CUSEC").geometry
    for code, point in zip(frame["section_code"], frame.geometry, strict=True):
        assert polygons[code].contains(point)  # inside its own section
    # the squares' centres: representative points of rectangles in UTM are their middles
    assert frame.geometry.iloc[0].x == pytest.approx(-4.537, abs=1e-4)
    assert frame.geometry.iloc[0].y == pytest.approx(42.00525, abs=1e-4)
    assert (result.sections_read, result.sections_in_city, result.matched) == (7, 6, 5)
    assert result.without_figures == ("3412003001",)
    assert result.without_geometry == ("3412004001",)
    assert result.other_municipalities == 1
    assert (result.residents, result.residents_65_plus) == (4321, 1050)
    assert result.difference == 4321 - city.population
    assert result.notes[0] == (
        "Secciones con población: 5; 4.321 residentes frente a 77.157 del perfil de Palencia "
        "(2024); diferencia −72.836 (−94,4 %)."
    )
    assert "3412003001" in result.notes[1] and "3412004001" in result.notes[2]


def test_a_shapefile_in_utm_gives_the_same_layer(city: CityProfile, tmp_path: Path) -> None:
    shapefile = tmp_path / "secciones.shp"
    gpd.read_file(SECTIONS).to_crs("EPSG:25830").to_file(shapefile)
    from_shp = ine_sections.parse(shapefile, city=city, population=POPULATION_CSV).frame
    from_geojson = ine_sections.parse(SECTIONS, city=city, population=POPULATION_CSV).frame
    assert list(from_shp["section_code"]) == MATCHED
    for a, b in zip(from_shp.geometry, from_geojson.geometry, strict=True):
        assert a.distance(b) < 1e-6


def test_codes_from_cumun_cdis_csec_and_numeric_codes(city: CityProfile, tmp_path: Path) -> None:
    frame = gpd.read_file(SECTIONS).drop(columns="CUSEC")
    frame["CDIS"] = frame["CDIS"].astype(int)  # as a number: the leading zero is gone
    path = tmp_path / "sin_cusec.geojson"
    frame.to_file(path)
    csv_path = tmp_path / "poblacion.csv"
    csv_path.write_text(
        'seccion,poblacion,mayores_65\n3412001001,"1,204",310\n3412001003,987,255\n',
        encoding="utf-8",
    )
    result = ine_sections.parse(path, city=city, population=csv_path)
    assert list(result.frame["section_code"]) == ["3412001001", "3412001003"]
    assert list(result.frame["residents"]) == [1204, 987]


def _population(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "poblacion.csv"
    path.write_text(text, encoding="utf-8")
    return path


def test_a_table_without_65_plus_is_refused(city: CityProfile, tmp_path: Path) -> None:
    path = _population(tmp_path, "CUSEC;total\n3412001001;1204\n")
    with pytest.raises(ImportFormatError) as caught:
        ine_sections.parse(SECTIONS, city=city, population=path)
    assert str(caught.value).startswith(
        'poblacion.csv, campo "65+": la tabla no trae residentes de 65 o más'
    )
    assert "no se inventan" in str(caught.value)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", "poblacion.csv: el archivo está vacío"),
        ("nombre;total;65+\nx;1;0\n", 'poblacion.csv, campo "CUSEC": falta la columna del código'),
        ("CUSEC;65+\n3412001001;1\n", 'poblacion.csv, campo "total": falta la columna del total'),
        ("CUSEC;total;65+\n3412001001;mil;0\n",
         "poblacion.csv, campo \"total\": línea 2: 'mil' no es un número entero"),
        ("CUSEC;total;65+\n3412001001;10;2,5\n",
         "poblacion.csv, campo \"65+\": línea 2: '2,5' no es un número entero"),
        ("CUSEC;total;65+\n3412001001;10\n", "poblacion.csv: línea 2: tiene 2 columnas"),
        ("CUSEC;total;65+\n3412001001;10;1\n3412001001;11;1\n",
         'poblacion.csv, campo "CUSEC": línea 3: la sección 3412001001 aparece dos veces'),
        ("CUSEC;total;65+\n3412009001;10;1\n", "poblacion.csv: ninguna sección de Palencia"),
    ],
)  # fmt: skip
def test_malformed_population_tables(
    city: CityProfile, tmp_path: Path, text: str, expected: str
) -> None:
    with pytest.raises(ImportFormatError) as caught:
        ine_sections.parse(SECTIONS, city=city, population=_population(tmp_path, text))
    assert str(caught.value).startswith(expected)


def test_more_seniors_than_residents_breaks_the_layer_schema(
    city: CityProfile, tmp_path: Path
) -> None:
    path = _population(tmp_path, "CUSEC;total;65+\n3412001001;10;11\n")
    with pytest.raises(LayerValidationError) as caught:
        ine_sections.parse(SECTIONS, city=city, population=path)
    assert "11 residentes de 65 o más superan el total de residentes (10)" in str(caught.value)


def test_sections_errors(city: CityProfile, tmp_path: Path) -> None:
    with pytest.raises(ImportFormatError, match="indique con --population"):
        ine_sections.parse(SECTIONS, city=city)
    no_code = tmp_path / "sin_codigo.geojson"
    gpd.read_file(SECTIONS)[["NMUN", "geometry"]].to_file(no_code)
    with pytest.raises(ImportFormatError, match='campo "CUSEC": la capa de secciones necesita'):
        ine_sections.parse(no_code, city=city, population=POPULATION_CSV)
    bad = tmp_path / "malo.geojson"
    bad.write_text("no", encoding="utf-8")
    with pytest.raises(ImportFormatError, match="no se pueden leer las secciones"):
        ine_sections.parse(bad, city=city, population=POPULATION_CSV)
    no_crs = tmp_path / "sin_prj.shp"
    gpd.read_file(SECTIONS).to_crs("EPSG:25830").to_file(no_crs)
    no_crs.with_suffix(".prj").unlink()
    with pytest.raises(ImportFormatError, match="no declara su sistema de coordenadas"):
        ine_sections.parse(no_crs, city=city, population=POPULATION_CSV)


@pytest.mark.parametrize(
    ("value", "code"),
    [("3412001001", "3412001001"), ("3412001001 Palencia sección 01001", "3412001001"),
     (3412001001.0, "3412001001"), ("101901001", "0101901001"), ("34120", None),
     ("Total", None), (None, None), ("34120010011", None)],
)  # fmt: skip
def test_section_codes(value: object, code: str | None) -> None:
    assert ine_sections.section_code(value) == code


@pytest.mark.parametrize(
    ("text", "value"),
    [("1234", 1234), ("1.234", 1234), ("1 234", 1234), ("1,234", 1234), ("1.234.567", 1234567),
     ("12,0", 12), ("1.234,5", None), ("12.34", None), ("-5", None), ("", None),
     ("1.23.456", None)],
)  # fmt: skip
def test_population_counts(text: str, value: int | None) -> None:
    assert ine_sections.parse_count(text) == value


def test_replace_layer_swaps_only_the_population(
    store: Store, city: CityProfile, tiny_layers: Layers
) -> None:
    store.load(tiny_layers)
    before = store.counts()
    revisions = {name: store.revision(name) for name in before}
    result = ine_sections.parse(SECTIONS, city=city, population=POPULATION_CSV)

    assert store.replace_layer("population", result.frame, actor="prueba", source="ine") == (
        before["population"], 5,
    )  # fmt: skip

    after = store.counts()
    assert after == {**before, "population": 5}
    assert {n: store.revision(n) for n in before} == {
        **revisions,
        "population": revisions["population"] + 1,
    }
    stored = store.read_layer("population")
    assert_geodataframe_equal(stored, result.frame, check_less_precise=True)
    entries, _ = store.audit_entries(record_type="layer", record_id="population")
    assert [(e["action"], e["actor"], e["before"], e["after"]) for e in entries] == [
        ("replace", "prueba", {"rows": before["population"]}, {"rows": 5, "source": "ine"})
    ]


def test_replace_layer_is_all_or_nothing(
    store: Store, city: CityProfile, tiny_layers: Layers
) -> None:
    store.load(tiny_layers)
    frame = ine_sections.parse(SECTIONS, city=city, population=POPULATION_CSV).frame
    broken = pd.concat([frame, frame.iloc[:1]], ignore_index=True)  # a repeated id
    with pytest.raises(IntegrityError):
        store.replace_layer("population", gpd.GeoDataFrame(broken, crs=frame.crs), actor="prueba")
    assert store.counts()["population"] == len(tiny_layers["population"])


# --- end to end: the pipeline and the command line, on SpatiaLite and PostGIS -----------------

runner = CliRunner()


def cli(db_url: str, *args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args), env={"CARDIOMAPA_DATABASE_URL": db_url})
    return result.exit_code, result.stdout, result.stderr


def test_formats_are_registered_with_their_licences() -> None:
    assert IMPORTERS["madrid"] is madrid.parse
    assert IMPORTERS["jcyl-desa"] is jcyl_desa.parse
    assert LICENCES["comunidad-madrid"] == madrid.LICENCE
    assert LICENCES["jcyl-desa"] == jcyl_desa.LICENCE


def test_madrid_import_counts_and_reimport_is_idempotent(store: Store, city: CityProfile) -> None:
    devices_before = 0
    parsed = IMPORTERS["madrid"](MADRID_FILE, city=city)

    dry = import_devices(store, parsed, city, dry_run=True, actor="prueba", today=TODAY)
    assert (dry.read, dry.inserted, dry.updated, dry.unchanged, len(dry.skipped)) == (5, 3, 0, 0, 2)
    assert store.counts()["defibrillators"] == devices_before  # the dry run wrote nothing

    report = import_devices(store, parsed, city, dry_run=False, actor="prueba", today=TODAY)
    assert (report.inserted, report.updated, report.unchanged, len(report.skipped)) == (3, 0, 0, 2)
    assert [f.message for f in report.flagged] == [
        "horario «Horario del centro» no convertido: remite al horario de otro lugar."
    ]
    stored = store.read_layer("defibrillators")
    madrid_rows = stored[stored["source"] == "comunidad-madrid"].set_index("source_id")
    assert sorted(madrid_rows.index) == ["DEA-28-000101", "DEA-28-000102", "DEA-28-000104"]
    first = madrid_rows.loc["DEA-28-000101"]
    assert first["opening_hours"] == "Mo-Fr 08:00-15:00"
    assert first["tags"]["direccion_coordenada_x"] == "373422"
    assert first.geometry.x == pytest.approx(-4.5286026, abs=1e-6)

    again = import_devices(store, madrid.parse(MADRID_FILE, city=city), city, dry_run=False,
                           actor="prueba", today=TODAY)  # fmt: skip
    assert (again.inserted, again.updated, again.unchanged) == (0, 0, 3)
    assert store.counts()["defibrillators"] == devices_before + 3
    assert first["access"] == "unknown"  # the register does not say: unknown when new

    # the register says nothing of access, so what a planner sets survives a re-import
    device = store.device(str(first["id"]))
    assert device is not None
    store.update_device(device, {**device, "access": "customers"}, actor="planificación")
    third = import_devices(store, madrid.parse(MADRID_FILE, city=city), city, dry_run=False,
                           actor="prueba", today=TODAY)  # fmt: skip
    assert (third.updated, third.unchanged) == (0, 3)
    kept = store.device(str(first["id"]))
    assert kept is not None and kept["access"] == "customers"


def test_jcyl_import_through_the_cli(db_url: str) -> None:
    assert cli(db_url, "load", "--data-dir", str(TINY_DIR))[0] == 0
    with Store.open(db_url) as store:
        devices_before = store.counts()["defibrillators"]
    args = ("import", "jcyl-desa", str(JCYL_FILE), "--addresses", str(ADDRESSES))

    code, out, err = cli(db_url, *args, "--dry-run")
    assert code == 0, err
    assert "Simulación" in out
    with Store.open(db_url) as store:
        assert store.counts()["defibrillators"] == devices_before

    code, out, err = cli(db_url, *args)
    assert code == 0, err
    assert "calle no encontrada en el callejero" in out and "fuera de Palencia" in out
    assert "número aproximado" in out
    with Store.open(db_url) as store:
        stored = store.read_layer("defibrillators")
        assert store.counts()["defibrillators"] == devices_before + 5
    jcyl_rows = stored[stored["source"] == "jcyl-desa"].set_index("source_id")
    assert jcyl_rows.loc["NS-0007", "status"] == "removed"
    assert str(jcyl_rows.loc["NS-0007", "removed_on"]) == "2023-06-30"

    code, _, err = cli(db_url, *args)  # again: nothing new
    assert code == 0, err
    with Store.open(db_url) as store:
        assert store.counts()["defibrillators"] == devices_before + 5


def test_jcyl_without_addresses_fails_and_writes_nothing(db_url: str) -> None:
    code, _, err = cli(db_url, "import", "jcyl-desa", str(JCYL_FILE))
    assert code == 1
    assert "--addresses" in err


def test_ine_sections_replace_the_population_and_coverage_follows(db_url: str) -> None:
    assert cli(db_url, "load", "--data-dir", str(TINY_DIR))[0] == 0
    with Store.open(db_url) as store:
        before = store.counts()
    args = ("import", "ine-sections", str(SECTIONS), "--population", str(POPULATION_CSV))

    code, out, err = cli(db_url, *args, "--dry-run")
    assert code == 0, err
    assert "Simulación" in out
    with Store.open(db_url) as store:
        assert store.counts() == before

    code, out, err = cli(db_url, *args)
    assert code == 0, err
    for text in ("7", "5", "4.321", "77.157", "3412003001", "3412004001"):
        assert text in out
    with Store.open(db_url) as store:
        assert store.counts() == {**before, "population": 5}
        assert set(store.read_layer("population")["source"]) == {"ine"}

    code, out, err = cli(db_url, "coverage", "--always", "--format", "json")
    assert code == 0, err
    assert json.loads(out)["residents"] == 4321


def test_ine_sections_needs_population_and_refuses_other_options(db_url: str) -> None:
    code, _, err = cli(db_url, "import", "ine-sections", str(SECTIONS))
    assert code == 1 and "--population" in err
    code, _, err = cli(db_url, "import", "madrid", str(MADRID_FILE), "--population",
                       str(POPULATION_CSV))  # fmt: skip
    assert code == 2 and "--population" in err
