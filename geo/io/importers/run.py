"""The one pipeline every import format goes through: validate, match, find duplicates, write.

An importer (:mod:`geo.io.importers.osm`, :mod:`geo.io.importers.euskadi`…) reads a file into a
:class:`~geo.io.importers.base.ParsedImport`; :func:`import_devices` does the rest, the same way for
every format:

1. **Validate** each record as a GeoJSON Feature with :func:`geo.core.layers.parse_feature` against
   :data:`geo.core.layers.DEFIBRILLATORS`, so the API, the layer files and the imports accept
   exactly the same values. A record that fails (outside the municipality, a bad value) is
   *skipped* with the validator's Spanish message; the rest of the file is still imported. Dates
   are checked against the city's ``today`` the caller passes (a last check in the future is
   refused); an expiry already past is imported and *flagged*
   (:func:`geo.core.layers.upkeep_warnings`).
2. **Match** what is stored by ``(source, source_id)``. A known device with the same values is
   *unchanged*; with other values it is *updated* under its stored id (version bumped, audited).
   An import only owns the fields its format provides (the keys a parser puts in a record's
   properties) and the position; the rest — and the ``status`` and ``verification`` planners
   decided — stay as stored, unless the source says the device was removed
   (``status="removed"``). A device missing from a newer file is left alone: extracts may be
   partial.
3. **Duplicates**: a *new* record within ``duplicate_radius_m`` of a stored device from
   *another* source whose name looks alike (:func:`name_similarity` ≥ 0.5) or with the same
   serial number (tags ``numero_serie``, ``numserie``, ``serial``, ``ref``) is a probable
   duplicate: reported and not inserted, for a planner to merge.
4. **Write** everything in one transaction (:meth:`geo.io.store.Store.upsert_devices`): all or
   nothing. ``dry_run`` computes the same counts and writes nothing.

New devices get a stable id derived from the source (:func:`device_id`: ``osm-node-123``,
``euskadi-48-0012``) and enter with the verification of :data:`INITIAL_VERIFICATION` (the
pipeline's policy: a ``verification`` a parser puts in a record is ignored): official registers are
``verified``; OpenStreetMap, crowd-sourced, is ``pending`` until a planner checks it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import geopandas as gpd
import shapely

from geo.city import CityProfile
from geo.core.layers import DEFIBRILLATORS, WGS84, parse_feature, upkeep_warnings
from geo.core.text import fold
from geo.io.importers.base import DeviceRecord, ParsedImport, Skip
from geo.io.store import Store, record_from_row

#: How new devices of each format enter the registry. Official registers (regional health
#: authorities) are verified at the source; OpenStreetMap is crowd-sourced: a planner verifies.
#: A format not listed enters ``pending``.
INITIAL_VERIFICATION: Mapping[str, str] = {
    "osm": "pending",
    "madrid": "verified",
    "jcyl-desa": "verified",
    "euskadi": "verified",
}
#: The prefix of the ids of new devices, per format (default: the format's name).
ID_PREFIXES: Mapping[str, str] = {"jcyl-desa": "jcyl"}
#: Tags that hold a device's serial number, in any source.
SERIAL_TAGS = ("numero_serie", "numserie", "serial", "ref")
#: Words that say nothing about which device it is, left out when comparing names.
NAME_STOP_WORDS = frozenset(
    {"dea", "desa", "desfibrilador", "desfibriladores", "aed", "defibrillator",
     "de", "del", "la", "el", "los", "las", "y", "en", "a", "al",
     # street types: registers put the address in the name ("Centro deportivo, Calle Mayor 10")
     "calle", "c", "cl", "plaza", "pza", "pz", "avenida", "avda", "av", "paseo", "ps",
     "carretera", "ctra", "camino", "ronda", "travesia", "glorieta", "s", "n", "sn"}
)  # fmt: skip
#: Names sharing at least this share of their significant words (Jaccard) are "alike".
NAME_OVERLAP = 0.5
DEFAULT_DUPLICATE_RADIUS_M = 25.0

#: ``on_progress(stage, done, total)``: the stage in Spanish ("Validando", "Guardando").
ProgressCallback = Callable[[str, int, int], None]


@dataclass(frozen=True)
class Duplicate:
    """A new record taken for a device already stored from another source (not inserted)."""

    record: int
    source_id: str
    existing_id: str
    existing_source: str
    distance_m: float
    why: str


@dataclass(frozen=True)
class Flag:
    """Something to look at in a record that was imported (e.g. hours not understood)."""

    record: int
    source_id: str | None
    message: str


@dataclass(frozen=True)
class ImportReport:
    """What an import did or, with ``dry_run``, would do.

    ``read == inserted + updated + unchanged + len(skipped)``: every record of the file is
    accounted for. ``skipped`` holds the parser's skips, the records the validator refused and
    the probable duplicates (each also in ``duplicates``, with the device it duplicates), in
    record order. ``flagged`` lists records imported with something to check.
    """

    format: str
    file: str
    source: str
    licence: str
    read: int
    inserted: int
    updated: int
    unchanged: int
    skipped: tuple[Skip, ...]
    duplicates: tuple[Duplicate, ...]
    flagged: tuple[Flag, ...]
    notes: tuple[str, ...]
    dry_run: bool
    inserted_ids: tuple[str, ...] = ()
    updated_ids: tuple[str, ...] = ()


def import_devices(
    store: Store,
    parsed: ParsedImport,
    city: CityProfile,
    *,
    dry_run: bool,
    actor: str,
    today: dt.date,
    duplicate_radius_m: float = DEFAULT_DUPLICATE_RADIUS_M,
    on_progress: ProgressCallback | None = None,
) -> ImportReport:
    """Validate, match and store the devices an importer read, in one transaction.

    Parameters
    ----------
    parsed
        What the importer read.
    city
        Profile whose boundary every device must fall inside, and whose metric CRS measures
        the duplicate radius.
    dry_run
        Compute the same report, write nothing.
    actor
        Who imports, for the audit log.
    today
        The city's local date by the caller's clock: a record whose last check is later is
        skipped; one with an expiry before it is imported and flagged.
    duplicate_radius_m
        A new record this close (metres) to a stored device of another source, with a name
        alike or the same serial number, is a probable duplicate.
    on_progress
        Called as ``(stage, done, total)`` while validating and while writing.

    Raises
    ------
    ConflictError
        Another writer changed a matched device meanwhile; nothing was written.
    """
    stored = store.query_layer("defibrillators", with_version=True)
    by_key: dict[tuple[str, str], int] = {
        (source, source_id): position
        for position, (source, source_id) in enumerate(
            zip(stored["source"], stored["source_id"], strict=True)
        )
        if source_id is not None
    }
    skipped: list[Skip] = list(parsed.skipped)
    flagged: list[Flag] = []
    first_seen: dict[str, int] = {}
    ready: list[tuple[DeviceRecord, dict[str, Any]]] = []  # (record, validated row)
    total = len(parsed.records)
    for done, item in enumerate(parsed.records, start=1):
        row, skip = _validated(item, parsed, city, stored, by_key, first_seen, today=today)
        if skip is not None:
            skipped.append(skip)
        else:
            assert row is not None
            ready.append((item, row))
            source_id = item.properties.get("source_id")
            flagged.extend(Flag(item.record, source_id, flag) for flag in item.flags)
            flagged.extend(
                Flag(item.record, source_id, f'campo "{warning.field}": {warning.message}')
                for warning in upkeep_warnings(row, today=today, file=parsed.file)
            )
        if on_progress is not None:
            on_progress("Validando", done, total)

    new = [(item, row) for item, row in ready if "version" not in row]
    duplicates = _duplicates(new, stored, parsed.source, city, duplicate_radius_m)
    for duplicate in duplicates:
        skipped.append(Skip(duplicate.record, duplicate.source_id, _duplicate_reason(duplicate)))
    duplicated = {duplicate.record for duplicate in duplicates}
    rows = [row for item, row in ready if item.record not in duplicated]
    _assign_ids(rows, parsed.format, set(stored["id"]))

    written = 0

    def advance() -> None:
        nonlocal written
        written += 1
        if on_progress is not None:
            on_progress("Guardando", written, len(rows))

    changes: dict[str, list[str]] = {}
    counts = store.upsert_devices(
        rows, actor=actor, dry_run=dry_run, on_row=advance, changes=changes
    )
    skipped.sort(key=lambda skip: skip.record)
    return ImportReport(
        format=parsed.format,
        file=parsed.file,
        source=parsed.source,
        licence=parsed.licence,
        read=parsed.read,
        inserted=counts["inserted"],
        updated=counts["updated"],
        unchanged=counts["unchanged"],
        skipped=tuple(skipped),
        duplicates=tuple(duplicates),
        flagged=tuple(flagged),
        notes=tuple(parsed.notes),
        dry_run=dry_run,
        inserted_ids=tuple(changes.get("inserted", ())),
        updated_ids=tuple(changes.get("updated", ())),
    )


# --- validation and matching ------------------------------------------------------------------


def _validated(
    item: DeviceRecord,
    parsed: ParsedImport,
    city: CityProfile,
    stored: gpd.GeoDataFrame,
    by_key: Mapping[tuple[str, str], int],
    first_seen: dict[str, int],
    *,
    today: dt.date,
) -> tuple[dict[str, Any] | None, Skip | None]:
    """The device row to store for one record (merged with the stored device it matches), or
    why it is skipped."""
    properties = dict(item.properties)
    source_id = properties.get("source_id")
    if not isinstance(source_id, str) or not source_id.strip():
        return None, Skip(item.record, None, "sin identificador en el origen (source_id).",
                          "source_id")  # fmt: skip
    earlier = first_seen.setdefault(source_id, item.record)
    if earlier != item.record:
        reason = f"repetido: el identificador {source_id!r} ya aparece en el registro {earlier}."
        return None, Skip(item.record, source_id, reason, "source_id")
    position = by_key.get((parsed.source, source_id))
    placeholder = device_id(parsed.format, source_id)
    properties = {
        "status": "active",
        "access": "unknown",
        **properties,
        "verification": INITIAL_VERIFICATION.get(parsed.format, "pending"),
        "id": placeholder if position is None else str(stored["id"].iloc[position]),
        "source": parsed.source,
        "source_id": source_id,
    }
    feature = {
        "type": "Feature",
        "geometry": {"type": "Point", "coordinates": [item.lon, item.lat]},
        "properties": properties,
    }
    record, problems = parse_feature(feature, DEFIBRILLATORS, city, file=parsed.file, today=today)
    if record is None:
        reason = " ".join((f'campo "{p.field}": ' if p.field else "") + p.message for p in problems)
        return None, Skip(item.record, source_id, reason, problems[0].field if problems else None)
    if position is None:
        return record, None
    return _merged(stored, position, record, owned=set(item.properties)), None


def _merged(
    stored: gpd.GeoDataFrame, position: int, incoming: dict[str, Any], *, owned: set[str]
) -> dict[str, Any]:
    """The stored device with the fields the source owns (and its position) from ``incoming``.

    Status and verification stay as planners left them, unless the source says the device was
    removed.
    """
    merged = record_from_row(stored, position)
    for name in owned - {"id", "status", "verification"}:
        if name in DEFIBRILLATORS.field_names:
            merged[name] = incoming[name]
    if "status" in owned and incoming["status"] == "removed":
        merged["status"] = "removed"
    merged["geometry"] = incoming["geometry"]
    merged["version"] = int(merged["version"])
    return merged


def device_id(format: str, source_id: str) -> str:
    """The id a new device gets: the format's prefix and the slugified source id.

    ``device_id("osm", "node/123")`` → ``"osm-node-123"``; ``device_id("jcyl-desa", "A-12")`` →
    ``"jcyl-a-12"``. Ids are made unique against the stored ones when written (a short hash of
    the source id is appended on a clash).
    """
    prefix = ID_PREFIXES.get(format, format)
    slug = _slug(source_id)
    if not slug:
        slug = hashlib.sha256(source_id.encode("utf-8")).hexdigest()[:10]
    return f"{prefix}-{slug}"


def _slug(text: str) -> str:
    plain = fold(text)
    return re.sub(r"[^a-z0-9]+", "-", plain).strip("-")


def _assign_ids(rows: list[dict[str, Any]], format: str, taken: set[str]) -> None:
    """Make the ids of new rows unique against the stored ids and each other."""
    used = set(taken)
    for row in rows:
        if "version" in row:
            continue
        candidate = row["id"]
        if candidate in used:
            digest = hashlib.sha256(str(row["source_id"]).encode("utf-8")).hexdigest()
            length = 6
            candidate = f"{row['id']}-{digest[:length]}"
            while candidate in used:
                length += 2
                candidate = f"{row['id']}-{digest[:length]}"
        row["id"] = candidate
        used.add(candidate)


# --- duplicates -------------------------------------------------------------------------------


def name_tokens(name: str | None) -> frozenset[str]:
    """The significant words of a name: case and accents folded; stop words, street types and
    house numbers left out."""
    if not name:
        return frozenset()
    words = re.findall(r"[a-z0-9]+", fold(name))
    return frozenset(w for w in words if w not in NAME_STOP_WORDS and not w.isdigit())


def name_similarity(first: str | None, second: str | None) -> float:
    """Shared significant words over all the significant words of both names (0 to 1).

    ``"DEA Farmacia Mayor"`` and ``"Desfibrilador farmacia mayor, Palencia"`` → 2/3; a name and
    a street it merely shares (``"Centro deportivo, Calle Mayor 10"``, ``"DEA Plaza Mayor"``) →
    1/3; two names with no significant word (``"DEA"``) → 0.0.
    """
    a, b = name_tokens(first), name_tokens(second)
    if not a or not b:
        return 0.0
    return len(a & b) / len(a | b)


def serial_number(tags: Mapping[str, Any] | None) -> str | None:
    """A device's serial number from its tags (:data:`SERIAL_TAGS`), letters and digits only."""
    for key in SERIAL_TAGS:
        value = (tags or {}).get(key)
        if value is not None:
            serial = re.sub(r"[^a-z0-9]", "", fold(str(value)))
            if serial:
                return serial
    return None


def _duplicates(
    new: list[tuple[DeviceRecord, dict[str, Any]]],
    stored: gpd.GeoDataFrame,
    source: str,
    city: CityProfile,
    radius_m: float,
) -> list[Duplicate]:
    others = stored[stored["source"] != source]
    if not new or others.empty:
        return []
    metric = others.geometry.to_crs(city.metric_crs)
    points = gpd.GeoSeries([row["geometry"] for _, row in new], crs=WGS84).to_crs(city.metric_crs)
    tree = shapely.STRtree(metric.values)
    found = []
    for (item, row), point in zip(new, points.values, strict=True):
        near = tree.query(point, predicate="dwithin", distance=radius_m)
        ranked = sorted((float(metric.values[i].distance(point)), int(i)) for i in near)
        for distance_m, i in ranked:
            why = _alike(row, others.iloc[i])
            if why is not None:
                found.append(Duplicate(item.record, row["source_id"], str(others["id"].iloc[i]),
                                       str(others["source"].iloc[i]), distance_m, why))  # fmt: skip
                break
    return found


def _alike(row: Mapping[str, Any], other: Any) -> str | None:
    serial = serial_number(row.get("tags"))
    if serial is not None and serial == serial_number(other["tags"]):
        return "mismo número de serie"
    similarity = name_similarity(row["name"], other["name"])
    if similarity >= NAME_OVERLAP:
        return f"nombre parecido («{row['name']}» / «{other['name']}»)"
    return None


def _duplicate_reason(duplicate: Duplicate) -> str:
    return (
        f"posible duplicado de {duplicate.existing_id!r} (procedencia "
        f"{duplicate.existing_source!r}) a {duplicate.distance_m:.0f} m: {duplicate.why}; "
        "no se ha importado."
    )
