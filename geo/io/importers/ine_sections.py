"""INE census sections + a population table → a population layer, one point per section.

The synthetic population layer of the sample can be replaced by real figures: the geometry of the
census sections (INE *secciones censales*: a shapefile or GeoJSON with ``CUSEC``, 10 digits
``PPMMMDDSSS``, and usually ``CUMUN``, ``CDIS``, ``CSEC``, ``NMUN``…; any CRS, INE publishes
EPSG:25830) and a CSV of residents per section (the section code, the total, and the residents
aged 65 or more).

Each section of the city's municipality (``CUMUN``, or the first five digits of ``CUSEC``, equal
to :attr:`geo.city.CityProfile.ine_code`) that has figures becomes one point of the
population layer (:data:`geo.core.layers.POPULATION`): a point guaranteed inside the section (its
representative point, computed in the city's metric CRS), with ``residents``,
``residents_65_plus``, ``section_code`` and ``source`` ``"ine"``. Sections found in only one of
the two files are reported, not invented. The layer is validated with the layer schema, and its
total is compared with the profile's population (reported, never a failure).

The population layer requires ``residents_65_plus``: a CSV without a 65-or-more column is refused
rather than filled with made-up numbers.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import geopandas as gpd
import pyogrio
import shapely
from pyogrio.errors import DataSourceError
from shapely.geometry import mapping

from geo.city import CityProfile
from geo.core.layers import POPULATION, WGS84, parse_feature, to_frame
from geo.core.outputs import spanish_number
from geo.core.text import fold
from geo.errors import ImportFormatError, LayerValidationError, Problem

FORMAT = "ine-sections"
SOURCE = "ine"
# Instituto Nacional de Estadística: its data may be reused citing the source ("Fuente: INE").
LICENCE = "Fuente: INE (reutilización con cita de la fuente)"

CODE_COLUMNS = (
    "cusec", "seccion", "secciones", "seccion_censal", "secciones_censales", "codigo",
    "codigo_seccion", "cod_seccion", "section_code", "code",
)  # fmt: skip
TOTAL_COLUMNS = (
    "total", "poblacion", "poblacion_total", "total_poblacion", "habitantes", "residentes",
    "residents", "personas", "total_personas", "ambos_sexos",
)  # fmt: skip
SENIOR_COLUMNS = (
    "65_mas", "65_y_mas", "65_o_mas", "mayores_65", "mayores_de_65", "de_65_y_mas",
    "poblacion_65_y_mas", "poblacion_65_mas", "residents_65_plus", "mayores65", "edad_65_mas",
)  # fmt: skip


@dataclass(frozen=True)
class SectionsImport:
    """A population layer built from census sections, and what it did not use.

    ``frame`` is the population layer (schema :data:`geo.core.layers.POPULATION`, EPSG:4326), one
    row per section with figures, ordered by section code. ``without_figures`` are sections of the
    city in the geometry but not in the CSV; ``without_geometry`` the other way round.
    """

    sections_file: str
    population_file: str
    frame: gpd.GeoDataFrame
    sections_read: int
    sections_in_city: int
    other_municipalities: int
    without_figures: tuple[str, ...]
    without_geometry: tuple[str, ...]
    residents: int
    residents_65_plus: int
    city_population: int
    notes: tuple[str, ...]

    @property
    def matched(self) -> int:
        """Sections with both a geometry and figures: the rows of ``frame``."""
        return len(self.frame)

    @property
    def difference(self) -> int:
        """Residents in the layer minus the profile's population."""
        return self.residents - self.city_population


def parse(sections: Path, *, city: CityProfile, population: Path | None = None) -> SectionsImport:
    """Build the population layer from census-section geometry and a residents CSV.

    Parameters
    ----------
    sections
        Section polygons (shapefile, GeoJSON, GeoPackage; any CRS) with ``CUSEC``, or ``CUMUN`` +
        ``CDIS`` + ``CSEC``.
    city
        Only sections of ``city.ine_code`` are kept; points must fall inside its boundary.
    population
        CSV (``;``, ``,`` or tab; UTF-8, with or without BOM) with the section code, the total of
        residents and the residents aged 65 or more.

    Raises
    ------
    ImportFormatError
        No ``population`` given; a file unreadable or without the needed columns; a count that is
        not a whole number; no section of the city with figures.
    LayerValidationError
        If the resulting layer breaks the population schema (e.g. more people aged 65 or more
        than residents in a section), with every problem.
    """
    if population is None:
        msg = (
            "falta la tabla de población: indique con --population un CSV con el código de "
            "sección, el total de residentes y los de 65 o más."
        )
        raise ImportFormatError(sections.name, msg, field="population")
    geometry, read, others = read_sections(sections, city=city)
    figures, other_rows = read_population(population, city=city)
    codes = sorted(set(geometry) & set(figures))
    without_figures = tuple(sorted(set(geometry) - set(figures)))
    without_geometry = tuple(sorted(set(figures) - set(geometry)))
    if not codes:
        msg = (
            f"ninguna sección de {city.name} (código INE {city.ine_code}) está a la vez en "
            f"{sections.name} y en {population.name}."
        )
        raise ImportFormatError(population.name, msg)
    points, moved = _points({code: geometry[code] for code in codes}, city)
    data: dict[str, list[Any]] = {name: [] for name in POPULATION.field_names}
    shapes = []
    problems: list[Problem] = []
    for index, code in enumerate(codes):
        residents, seniors = figures[code]
        feature = {
            "type": "Feature",
            "geometry": mapping(points[code]),
            "properties": {
                "id": f"ine-{code}",
                "residents": residents,
                "residents_65_plus": seniors,
                "section_code": code,
                "source": SOURCE,
            },
        }
        record, found = parse_feature(feature, POPULATION, city, file=sections.name, index=index)
        problems.extend(found)
        if record is not None:
            for name in POPULATION.field_names:
                data[name].append(record[name])
            shapes.append(record["geometry"])
    if problems:
        raise LayerValidationError(problems)
    frame = to_frame(data, shapes, POPULATION)
    total = int(frame["residents"].sum())
    seniors_total = int(frame["residents_65_plus"].sum())
    notes = _notes(
        city, total, len(codes), without_figures, without_geometry, moved, other_rows, others
    )
    return SectionsImport(
        sections_file=sections.name,
        population_file=population.name,
        frame=frame,
        sections_read=read,
        sections_in_city=len(geometry),
        other_municipalities=others,
        without_figures=without_figures,
        without_geometry=without_geometry,
        residents=total,
        residents_65_plus=seniors_total,
        city_population=city.population,
        notes=tuple(notes),
    )


def _notes(
    city: CityProfile,
    total: int,
    matched: int,
    without_figures: tuple[str, ...],
    without_geometry: tuple[str, ...],
    moved: list[str],
    other_rows: int,
    other_sections: int,
) -> list[str]:
    notes = []
    difference = total - city.population
    share = 100 * difference / city.population if city.population else 0.0
    sign = "+" if difference > 0 else ""
    notes.append(
        f"Secciones con población: {matched}; {spanish_number(total)} residentes frente a "
        f"{spanish_number(city.population)} del perfil de {city.name} ({city.population_year}); "
        f"diferencia {sign}{spanish_number(difference)} ({sign}{spanish_number(share, 1)} %)."
    )
    if without_figures:
        notes.append(
            f"Secciones del mapa sin cifras en la tabla ({len(without_figures)}; no entran en la "
            f"capa): {', '.join(without_figures)}."
        )
    if without_geometry:
        notes.append(
            f"Secciones de la tabla sin geometría ({len(without_geometry)}; no entran en la "
            f"capa): {', '.join(without_geometry)}."
        )
    if moved:
        notes.append(
            f"Secciones con su punto interior fuera del límite del perfil ({len(moved)}; se "
            f"sitúan en su parte dentro del término): {', '.join(moved)}."
        )
    if other_sections:
        notes.append(f"Secciones de otros municipios ignoradas: {other_sections}.")
    if other_rows:
        notes.append(f"Filas de la tabla de otros municipios o de totales ignoradas: {other_rows}.")
    return notes


# --- geometry -----------------------------------------------------------------------------------


def _plain(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", fold(text.replace("+", "_mas"))).strip("_")


def section_code(value: Any) -> str | None:
    """The 10-digit CUSEC in a value (``3412001001``, ``"3412001001 Palencia sección 01001"``,
    ``3412001001.0``), or None."""
    if value is None:
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    text = str(value).strip()
    if re.fullmatch(r"\d{9}", text):  # a code read as a number loses its leading zero
        text = "0" + text
    match = re.match(r"(\d{10})(?!\d)", text)
    return match.group(1) if match else None


def read_sections(path: Path, *, city: CityProfile) -> tuple[dict[str, shapely.Geometry], int, int]:
    """Polygons of the city's sections by CUSEC, in EPSG:4326.

    Returns
    -------
    tuple
        ``(geometry by code, features read, features of other municipalities)``.
    """
    name = path.name
    try:
        frame = pyogrio.read_dataframe(path)
    except (DataSourceError, ValueError, OSError) as exc:
        msg = f"no se pueden leer las secciones como capa vectorial (shapefile, GeoJSON…): {exc}."
        raise ImportFormatError(name, msg) from None
    if frame.crs is None:
        msg = (
            "la capa de secciones no declara su sistema de coordenadas (¿falta el .prj?); "
            "el INE la publica en EPSG:25830."
        )
        raise ImportFormatError(name, msg)
    frame = frame.to_crs(WGS84)
    columns = {_plain(str(c)): c for c in frame.columns if c != "geometry"}
    read = len(frame)
    codes: list[str | None]
    if "cusec" in columns:
        codes = [section_code(v) for v in frame[columns["cusec"]]]
    elif {"cumun", "cdis", "csec"} <= set(columns):
        codes = [
            section_code(f"{str(m).zfill(5)}{str(d).zfill(2)}{str(s).zfill(3)}")
            for m, d, s in zip(
                frame[columns["cumun"]], frame[columns["cdis"]], frame[columns["csec"]], strict=True
            )
        ]
    else:
        msg = "la capa de secciones necesita el campo CUSEC (o CUMUN, CDIS y CSEC)."
        raise ImportFormatError(name, msg, field="CUSEC")
    municipality = (
        [str(v).strip().zfill(5) for v in frame[columns["cumun"]]] if "cumun" in columns else None
    )
    pieces: dict[str, list[shapely.Geometry]] = {}
    others = 0
    for index, (code, geom) in enumerate(zip(codes, frame.geometry, strict=True)):
        if code is None:
            value = frame[columns["cusec"]].iloc[index] if "cusec" in columns else None
            msg = f"código de sección no válido {value!r}; se esperan 10 dígitos (PPMMMDDSSS)."
            raise ImportFormatError(name, msg, record=index + 1, field="CUSEC")
        town = municipality[index] if municipality is not None else code[:5]
        if town != city.ine_code and code[:5] != city.ine_code:
            others += 1
            continue
        if geom is None or geom.is_empty or geom.geom_type not in ("Polygon", "MultiPolygon"):
            msg = "cada sección debe ser un polígono."
            raise ImportFormatError(name, msg, record=index + 1, field="geometry")
        pieces.setdefault(code, []).append(shapely.make_valid(geom))
    geometry = {code: shapely.union_all(parts) for code, parts in pieces.items()}
    return geometry, read, others


def _points(
    geometry: dict[str, shapely.Geometry], city: CityProfile
) -> tuple[dict[str, shapely.Point], list[str]]:
    """A point inside each section (and inside the city's boundary when it can be)."""
    series = gpd.GeoSeries(list(geometry.values()), index=list(geometry), crs=WGS84)
    inside = series.to_crs(city.metric_crs).representative_point().to_crs(WGS84)
    points: dict[str, shapely.Point] = {}
    moved: list[str] = []
    for code, point in inside.items():
        point = shapely.set_precision(point, 1e-7)
        if not city.boundary.covers(point):
            part = geometry[str(code)].intersection(city.boundary)
            if not part.is_empty and part.area > 0:
                point = shapely.set_precision(part.representative_point(), 1e-7)
                if city.boundary.covers(point):
                    moved.append(str(code))
        points[str(code)] = point
    return points, moved


# --- figures --------------------------------------------------------------------------------------


def parse_count(text: str) -> int | None:
    """A whole number as published: ``1234``, ``1.234``, ``1 234``, ``1,234``; None if not."""
    cleaned = text.strip().replace("\u00a0", " ")
    if re.fullmatch(r"\d+", cleaned):
        return int(cleaned)
    if (
        re.fullmatch(r"\d{1,3}(?:[. ,]\d{3})+", cleaned)
        and len(set(re.sub(r"\d", "", cleaned))) == 1
    ):
        return int(re.sub(r"\D", "", cleaned))
    if re.fullmatch(r"\d+[.,]0+", cleaned):
        return int(re.split(r"[.,]", cleaned)[0])
    return None


def read_population(path: Path, *, city: CityProfile) -> tuple[dict[str, tuple[int, int]], int]:
    """Residents and residents aged 65 or more by CUSEC, for the city's sections.

    Returns
    -------
    tuple
        ``(figures by code, rows ignored: other municipalities or totals)``.
    """
    name = path.name
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise ImportFormatError(name, f"no se encuentra el archivo {path}.") from None
    except UnicodeDecodeError as exc:
        msg = f"el archivo no está en UTF-8 (byte {exc.start}); guárdelo como UTF-8."
        raise ImportFormatError(name, msg) from None
    first = text.split("\n", 1)[0]
    delimiter = max((";", ",", "\t"), key=first.count)
    rows = list(csv.reader(io.StringIO(text), delimiter=delimiter))
    if not rows or not any(cell.strip() for cell in rows[0]):
        raise ImportFormatError(name, "el archivo está vacío (falta la fila de cabecera).")
    header = [_plain(cell) for cell in rows[0]]
    code_at = _column(header, CODE_COLUMNS)
    total_at = _column(header, TOTAL_COLUMNS)
    senior_at = _column(header, SENIOR_COLUMNS)
    if senior_at is None:
        senior_at = next(
            (i for i, h in enumerate(header) if "65" in h.split("_") and i != total_at), None
        )
    accepted = "código de sección (CUSEC o seccion), total (total o poblacion), 65 o más (65+)"
    if code_at is None or total_at is None:
        missing = "código de sección" if code_at is None else "total de residentes"
        msg = f"falta la columna del {missing}; columnas esperadas: {accepted}."
        raise ImportFormatError(name, msg, field="CUSEC" if code_at is None else "total")
    if senior_at is None:
        msg = (
            "la tabla no trae residentes de 65 o más (columna 65+ o mayores_65); la capa de "
            "población los exige y no se inventan. Añada esa columna."
        )
        raise ImportFormatError(name, msg, field="65+")
    figures: dict[str, tuple[int, int]] = {}
    ignored = 0
    for line, cells in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in cells):
            continue
        if len(cells) != len(header):
            msg = f"tiene {len(cells)} columnas y la cabecera {len(header)}."
            raise ImportFormatError(name, f"línea {line}: {msg}")
        code = section_code(cells[code_at])
        if code is None or code[:5] != city.ine_code:
            ignored += 1  # a total row, a district, another municipality
            continue
        values = []
        for at in (total_at, senior_at):
            count = parse_count(cells[at])
            if count is None:
                msg = f"línea {line}: {cells[at]!r} no es un número entero de personas."
                raise ImportFormatError(name, msg, field=rows[0][at].strip())
            values.append(count)
        if code in figures:
            msg = f"línea {line}: la sección {code} aparece dos veces."
            raise ImportFormatError(name, msg, field=rows[0][code_at].strip())
        figures[code] = (values[0], values[1])
    return figures, ignored


def _column(header: list[str], names: tuple[str, ...]) -> int | None:
    for name in names:
        if name in header:
            return header.index(name)
    return None
