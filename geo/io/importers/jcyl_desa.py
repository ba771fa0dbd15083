"""Castilla y León register of semi-automatic defibrillators (DESA) → device records, geocoded.

The register is published on the Junta de Castilla y León open-data portal as CSV (``;`` or ``,``,
UTF-8 with or without BOM) or JSON (a list of objects, an object with a ``results`` list, or
records with a ``fields`` object), with the columns ``numero_serie`` (the register's id),
``empresa``, ``ubicacion``, ``tipo_via``, ``via``, ``numero``, ``escalera``, ``letra``,
``localidad``, ``provincia``, ``fecha_alta`` and ``fecha_baja``. It has **no coordinates**.

Geocoding uses an address-points layer the user supplies (``addresses=Path``, the CLI's
``--addresses FILE``): one point per street number, CartoCiudad-style properties ``tipo_via``,
``nombre_via`` (or ``via``), ``numero`` (or ``portal``), ``municipio`` (or ``localidad``),
optionally ``cod_postal``; any vector format geopandas reads, reprojected to EPSG:4326. The rules:

1. Streets are compared after normalising: case and accents folded, punctuation dropped,
   street-type abbreviations unified (``C/``, ``CL``, ``CALLE`` → calle; ``AV``, ``AVDA`` →
   avenida; ``PZ``, ``PZA`` → plaza; ``PS``, ``Pº`` → paseo; ``CTRA`` → carretera…), and the
   words ``de``, ``del``, ``la``, ``las``, ``los``, ``el`` removed. A street type missing on one
   side (or different, when the name alone is unambiguous) still matches.
2. The same street and the same number is an exact match.
3. Otherwise the nearest number on the same side of the street (same parity) within ±4 is used and
   the record is flagged ``número aproximado``.
4. Nothing else is invented: an unknown street, a number with no neighbour close enough, a
   missing number or a ``localidad`` other than the city are skipped, each with its reason.

Mapping: ``numero_serie`` → ``source_id``; ``empresa`` → ``name``; ``ubicacion`` →
``location_text``; the address columns → ``address``; ``fecha_alta`` → ``installed_on``;
``fecha_baja`` → ``removed_on`` and ``status`` ``removed`` (else ``active``); ``access``
``unknown``; ``verification`` is the pipeline's policy. Every original column is kept verbatim
in ``tags``.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyogrio
from pyogrio.errors import DataSourceError

from geo.city import CityProfile
from geo.core.text import fold
from geo.errors import ImportFormatError
from geo.io.importers.base import DeviceRecord, ParsedImport, Skip

FORMAT = "jcyl-desa"
SOURCE = "jcyl-desa"
# As published on the Junta de Castilla y León open-data portal (datosabiertos.jcyl.es); this
# could not be verified offline — check the dataset's page before redistributing.
LICENCE = "CC BY 4.0 (Portal de Datos Abiertos de la Junta de Castilla y León)"

ID_FIELD = "numero_serie"
COLUMNS = (
    "numero_serie", "empresa", "ubicacion", "tipo_via", "via", "numero", "escalera", "letra",
    "localidad", "provincia", "fecha_alta", "fecha_baja",
)  # fmt: skip
REQUIRED_COLUMNS = ("numero_serie", "via", "numero", "localidad")
MAX_NUMBER_GAP = 4

APPROXIMATE_FLAG = "número aproximado"

_STREET_TYPES: dict[str, str] = {
    **dict.fromkeys(("c", "cl", "cll", "calle", "call"), "calle"),
    **dict.fromkeys(("av", "avd", "avda", "avenida", "avnda"), "avenida"),
    **dict.fromkeys(("pl", "plz", "pz", "pza", "plaza", "placa"), "plaza"),
    **dict.fromkeys(("ps", "pso", "po", "paseo", "pseo"), "paseo"),
    **dict.fromkeys(("ctra", "crta", "cr", "carretera", "ctr"), "carretera"),
    **dict.fromkeys(("cm", "cno", "camino"), "camino"),
    **dict.fromkeys(("rd", "rda", "ronda"), "ronda"),
    **dict.fromkeys(("tr", "trv", "trav", "travesia"), "travesia"),
    **dict.fromkeys(("gl", "glta", "glorieta"), "glorieta"),
    **dict.fromkeys(("ur", "urb", "urbanizacion"), "urbanizacion"),
    **dict.fromkeys(("pj", "psje", "pasaje"), "pasaje"),
    **dict.fromkeys(("pg", "pol", "poligono"), "poligono"),
    **dict.fromkeys(("cj", "cjon", "callejon"), "callejon"),
    **dict.fromkeys(("bo", "barrio"), "barrio"),
}
_ARTICLES = frozenset({"de", "del", "la", "las", "los", "el"})


def parse(
    path: Path, *, city: CityProfile, addresses: Path | None = None, **options: Any
) -> ParsedImport:
    """Read the Castilla y León DESA register and place each device on an address point.

    Parameters
    ----------
    path
        The register, CSV or JSON as published.
    city
        The city profile: only devices whose ``localidad`` is the city are kept.
    addresses
        Address points (one per street number; GeoJSON, shapefile or GeoPackage; any CRS).

    Raises
    ------
    ImportFormatError
        No ``addresses`` given or unreadable; the register is not CSV/JSON, lacks a required
        column, has a row of the wrong length, a value that is not text, or a record without
        ``numero_serie``.
    """
    if addresses is None:
        msg = (
            "el registro DESA de Castilla y León no trae coordenadas: indique un callejero de "
            "portales con --addresses ARCHIVO (puntos con tipo_via, nombre_via, numero y "
            "municipio, p. ej. de CartoCiudad) para situar cada desfibrilador."
        )
        raise ImportFormatError(path.name, msg, field="addresses")
    gazetteer = read_address_points(Path(addresses), city=city)
    rows = read_register(path)
    city_key = _plain(city.name)
    records: list[DeviceRecord] = []
    skipped: list[Skip] = []
    for number, row in enumerate(rows, start=1):
        source_id = row[ID_FIELD]
        locality = row["localidad"]
        if _plain(locality) != city_key:
            where = f"«{locality}»" if locality else "sin localidad"
            reason = f"fuera de {city.name}: localidad {where}."
            skipped.append(Skip(number, source_id, reason, "localidad"))
            continue
        found = gazetteer.locate(row["tipo_via"], row["via"], row["numero"])
        if isinstance(found, str):
            field_name = "numero" if found.startswith(("número", "sin número")) else "via"
            skipped.append(Skip(number, source_id, found, field_name))
            continue
        records.append(_record(row, number, found))
    approximate = sum(1 for r in records if any(f.startswith(APPROXIMATE_FLAG) for f in r.flags))
    notes = [
        f"{len(records)} de {len(rows)} desfibriladores situados en el callejero "
        f"{Path(addresses).name} ({approximate} con número aproximado); {len(skipped)} omitidos.",
    ]
    return ParsedImport(
        format=FORMAT,
        file=path.name,
        source=SOURCE,
        licence=LICENCE,
        read=len(rows),
        records=records,
        skipped=skipped,
        notes=notes,
    )


# --- the register -------------------------------------------------------------------------------


def read_register(path: Path) -> list[dict[str, str]]:
    """The register's rows, every column as stripped text (``""`` when empty)."""
    text = _read_text(path)
    if text.lstrip().startswith(("[", "{")):
        items = _json_items(text, path.name)
    else:
        items = _csv_items(text, path.name)
    rows = [_row(item, path.name, number) for number, item in enumerate(items, start=1)]
    return rows


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise ImportFormatError(path.name, f"no se encuentra el archivo {path}.") from None
    except UnicodeDecodeError as exc:
        msg = f"el archivo no está en UTF-8 (byte {exc.start}); guárdelo como UTF-8."
        raise ImportFormatError(path.name, msg) from None


def _json_items(text: str, file: str) -> list[Any]:
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        msg = f"no es JSON válido: {exc.msg} (línea {exc.lineno}, columna {exc.colno})."
        raise ImportFormatError(file, msg) from None
    if isinstance(document, dict):
        document = document.get("results", document.get("records", document.get("data")))
    if not isinstance(document, list):
        msg = 'se esperaba una lista de registros (o un objeto con una lista "results").'
        raise ImportFormatError(file, msg)
    return [
        item["fields"] if isinstance(item, dict) and isinstance(item.get("fields"), dict) else item
        for item in document
    ]


def _csv_items(text: str, file: str) -> list[dict[str, str]]:
    first_line = text.split("\n", 1)[0]
    delimiter = ";" if first_line.count(";") >= first_line.count(",") else ","
    reader = csv.reader(io.StringIO(text), delimiter=delimiter)
    header = next(reader, None)
    if header is None or not any(h.strip() for h in header):
        raise ImportFormatError(file, "el archivo está vacío (falta la fila de cabecera).")
    names = [_column_name(h) for h in header]
    missing = [c for c in REQUIRED_COLUMNS if c not in names]
    if missing:
        msg = (
            f"faltan las columnas {', '.join(missing)}; se esperan las del registro DESA: "
            f"{', '.join(COLUMNS)} (separadas por «;» o «,»)."
        )
        raise ImportFormatError(file, msg, field=missing[0])
    items = []
    for number, values in enumerate(reader, start=1):
        if not any(v.strip() for v in values):
            continue
        if len(values) != len(names):
            msg = f"tiene {len(values)} columnas y la cabecera {len(names)}."
            raise ImportFormatError(file, msg, record=number)
        items.append(dict(zip(names, values, strict=True)))
    return items


def _column_name(header: str) -> str:
    return _plain(header).replace(" ", "_")


def _row(item: Any, file: str, number: int) -> dict[str, str]:
    if not isinstance(item, dict):
        raise ImportFormatError(file, "cada registro debe ser un objeto.", record=number)
    row: dict[str, str] = {}
    for key, value in item.items():
        name = _column_name(str(key))
        if value is None:
            row[name] = ""
        elif isinstance(value, str):
            row[name] = value.strip()
        elif isinstance(value, int | float) and not isinstance(value, bool):
            row[name] = str(int(value)) if float(value).is_integer() else str(value)
        else:
            msg = f"se esperaba texto o un número y llegó {type(value).__name__}."
            raise ImportFormatError(file, msg, record=number, field=str(key))
    missing = [c for c in REQUIRED_COLUMNS if c not in row]
    if missing:
        msg = f"faltan los campos {', '.join(missing)}."
        raise ImportFormatError(file, msg, record=number, field=missing[0])
    for column in COLUMNS:
        row.setdefault(column, "")
    if not row[ID_FIELD]:
        msg = "falta el número de serie, necesario para reconocer el aparato en otra importación."
        raise ImportFormatError(file, msg, record=number, field=ID_FIELD)
    return row


def parse_date(text: str) -> dt.date | None:
    """``2019-05-14``, ``2019-05-14T00:00:00``, ``14/05/2019``, ``14-05-2019``; None if not."""
    text = text.strip()
    match = re.fullmatch(r"(\d{4})[-/](\d{1,2})[-/](\d{1,2})(?:[T ].*)?", text)
    if match:
        year, month, day = (int(g) for g in match.groups())
    else:
        match = re.fullmatch(r"(\d{1,2})[-/.](\d{1,2})[-/.](\d{4})(?: .*)?", text)
        if not match:
            return None
        day, month, year = (int(g) for g in match.groups())
    try:
        return dt.date(year, month, day)
    except ValueError:
        return None


def _record(row: dict[str, str], number: int, found: _Found) -> DeviceRecord:
    flags: list[str] = []
    if found.note:
        flags.append(found.note)
    installed = _date(row, "fecha_alta", flags)
    removed = _date(row, "fecha_baja", flags)
    properties: dict[str, Any] = {
        "name": row["empresa"] or f"DESA {row[ID_FIELD]}",
        "location_text": row["ubicacion"] or None,
        "address": _address(row),
        "status": "removed" if row["fecha_baja"] else "active",
        "installed_on": installed,
        "removed_on": removed,
        "source": SOURCE,
        "source_id": row[ID_FIELD],
        "tags": dict(row),
    }
    for field_name, column in (("installed_on", "fecha_alta"), ("removed_on", "fecha_baja")):
        if row[column] and properties[field_name] is None:
            del properties[field_name]  # unreadable: flagged, and a stored date is kept
    return DeviceRecord(
        record=number, lon=found.lon, lat=found.lat, properties=properties, flags=tuple(flags)
    )


def _date(row: dict[str, str], column: str, flags: list[str]) -> str | None:
    text = row[column]
    if not text:
        return None
    value = parse_date(text)
    if value is None:
        flags.append(f"{column} «{text}» no es una fecha reconocible: se conserva en tags.")
        return None
    return value.isoformat()


def _address(row: dict[str, str]) -> str | None:
    street = " ".join(p for p in (row["tipo_via"], row["via"], row["numero"]) if p)
    extra = ", ".join(
        f"{label} {row[c]}" for label, c in (("esc.", "escalera"), ("letra", "letra")) if row[c]
    )
    parts = [p for p in (street, extra, row["localidad"]) if p]
    return ", ".join(parts) or None


# --- the address points ---------------------------------------------------------------------


def _plain(text: str) -> str:
    """Casefolded, accent-free, single-spaced."""
    return " ".join(fold(text).split())


def street_key(street_type: str, name: str) -> tuple[str, str]:
    """``(type, name)`` of a street after normalisation; type ``""`` when none is given.

    ``street_key("C/", "Mayor Principal")`` and ``street_key("", "CALLE MAYOR PRINCIPAL")`` are
    both ``("calle", "mayor principal")``; ``street_key("AVDA", "de Valladolid")`` is
    ``("avenida", "valladolid")``.
    """
    text = _plain(f"{street_type} {name}").replace("º", "o ").replace("ª", "a ")
    words = re.sub(r"[^\w]+", " ", text).split()
    kind = ""
    if words and words[0] in _STREET_TYPES:
        kind = _STREET_TYPES[words.pop(0)]
    words = [w for w in words if w not in _ARTICLES]
    return kind, " ".join(words)


def house_number(text: str) -> int | None:
    """The integer part of a street number (``"12"``, ``"12 B"``, ``"12bis"`` → 12), or None."""
    match = re.match(r"\s*(?:n[ºo.]?\s*)?(\d+)", _plain(text))
    return int(match.group(1)) if match else None


@dataclass(frozen=True)
class _Found:
    lon: float
    lat: float
    note: str | None


@dataclass(frozen=True)
class AddressPoints:
    """Street number → point (EPSG:4326), by normalised street key."""

    file: str
    streets: dict[tuple[str, str], dict[int, tuple[float, float]]]

    def locate(self, street_type: str, street: str, number_text: str) -> _Found | str:
        """The point for an address, or the Spanish reason it cannot be placed."""
        label = " ".join(p for p in (street_type, street) if p)
        numbers = self._street(*street_key(street_type, street))
        if numbers is None:
            return f"calle no encontrada en el callejero: «{label}»."
        number = house_number(number_text)
        if number is None:
            shown = number_text or "vacío"
            return f"sin número de portal ({shown}) en «{label}»: no se puede situar."
        if number in numbers:
            lon, lat = numbers[number]
            return _Found(lon, lat, None)
        near = sorted(
            (abs(n - number), n)
            for n in numbers
            if n % 2 == number % 2 and abs(n - number) <= MAX_NUMBER_GAP
        )
        if not near:
            return (
                f"número {number} no encontrado en «{label}» (ni otro del mismo lado a ±"
                f"{MAX_NUMBER_GAP})."
            )
        used = near[0][1]
        lon, lat = numbers[used]
        return _Found(
            lon, lat, f"{APPROXIMATE_FLAG}: el {number} de «{label}» se sitúa en el {used}."
        )

    def _street(self, kind: str, name: str) -> dict[int, tuple[float, float]] | None:
        if (kind, name) in self.streets:
            return self.streets[(kind, name)]
        # A type missing or different on one side: accept the name if it is unambiguous.
        same_name = [key for key in self.streets if key[1] == name]
        if len(same_name) == 1:
            return self.streets[same_name[0]]
        return None


def _first(properties: dict[str, Any], names: Iterable[str]) -> str:
    for name in names:
        value = properties.get(name)
        if value is not None and str(value).strip() and str(value) != "nan":
            text = str(value).strip()
            return text[:-2] if re.fullmatch(r"\d+\.0", text) else text
    return ""


def read_address_points(path: Path, *, city: CityProfile) -> AddressPoints:
    """Read an address-points layer (any CRS) into a street-number gazetteer of ``city``.

    Points whose ``municipio``/``localidad`` names another municipality are left out.

    Raises
    ------
    ImportFormatError
        Unreadable file, not points, or without street name and number fields.
    """
    name = path.name
    if not path.exists():
        raise ImportFormatError(name, f"no se encuentra el callejero {path}.", field="addresses")
    try:
        frame = pyogrio.read_dataframe(path)
    except (DataSourceError, ValueError, OSError) as exc:
        msg = f"no se puede leer el callejero como capa vectorial (GeoJSON, shapefile…): {exc}."
        raise ImportFormatError(name, msg, field="addresses") from None
    if frame.crs is not None:
        frame = frame.to_crs("EPSG:4326")
    columns = {_column_name(str(c)): c for c in frame.columns if c != "geometry"}
    street_names = [c for c in ("nombre_via", "via", "calle") if c in columns]
    number_names = [c for c in ("numero", "portal", "num") if c in columns]
    if not street_names or not number_names:
        msg = (
            "el callejero necesita un campo de calle (nombre_via o via) y uno de número "
            "(numero o portal) en cada punto."
        )
        raise ImportFormatError(name, msg, field="addresses")
    city_key = _plain(city.name)
    streets: dict[tuple[str, str], dict[int, tuple[float, float]]] = {}
    for index, (values, geom) in enumerate(
        zip(frame.drop(columns="geometry").to_dict("records"), frame.geometry, strict=True),
        start=1,
    ):
        props = {_column_name(str(k)): v for k, v in values.items()}
        town = _first(props, ("municipio", "localidad", "nombre_municipio"))
        if town and _plain(town) != city_key:
            continue
        if geom is None or geom.is_empty or geom.geom_type != "Point":
            msg = "cada elemento del callejero debe ser un punto (un portal)."
            raise ImportFormatError(name, msg, record=index, field="geometry")
        number = house_number(_first(props, number_names))
        street = _first(props, street_names)
        if number is None or not street:
            continue
        key = street_key(_first(props, ("tipo_via", "tipo")), street)
        streets.setdefault(key, {}).setdefault(number, (float(geom.x), float(geom.y)))
    return AddressPoints(name, streets)
