"""The training register: who was trained in basic life support and defibrillator use, and where.

Action 1.3 of the plan "Palencia, Ciudad de los Cuidados" trains people in basic life support
(*soporte vital básico*, SVB) and the use of a defibrillator (DEA). Each training action held is
one record: the day, the cluster entity that organised or hosted it (if any), the place, the kind
of training and how many people completed it.

An edge service like :mod:`geo.services.registry`: it validates records (one rule set for CSV
files, the CLI and the API), reads the registers organisers keep in spreadsheets, and hands the
writes to :class:`geo.io.store.Store`, which makes them atomic and audited.

Rules:

- A record is refused with *every* problem found, each naming the file (or ``petición``), the
  line (1-based; the header is line 1) and the field.
- Dates are ISO ``AAAA-MM-DD`` or ``DD/MM/AAAA`` (what a Spanish spreadsheet writes), never after
  ``today``. Kinds are the codes of :data:`KIND_LABELS` or their Spanish labels, in any case.
- A CSV file is UTF-8 (with or without BOM), comma- or semicolon-separated, with a header row.
  Its ``id`` column (the organiser's reference) identifies each row; without it a row is
  identified by its content (date, entity, place, kind and people), so importing the same file
  again changes nothing. A malformed file changes nothing either.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from geo.core.indicators import KIND_LABELS
from geo.core.text import describe, fold
from geo.errors import Problem, RecordValidationError
from geo.io.store import TRAINING_FIELDS, Store
from geo.services.registers import REQUEST, CsvRow, ImportReport, Where, read_csv_register
from geo.services.tokens import Principal, require_role

#: More people than this in one action is a typing error, not a training session.
MAX_PEOPLE_PER_ACTION = 1000
#: Longest place, trainer, entity id or CSV id; longest notes.
MAX_TEXT = 200
MAX_NOTES = 2000
#: Source of the records created through the API.
API_SOURCE = "api"
#: The register's file in a data folder (``cardiomapa load`` imports it when present).
TRAINING_FILE = "training.csv"


@dataclass(frozen=True)
class TrainingField:
    """One field of a training record."""

    name: str
    required: bool
    description: str


#: The kinds as a Spanish list: "bls_aed (SVB + DEA), aed (Uso del DEA), …".
KINDS_TEXT = ", ".join(f"{code} ({label})" for code, label in KIND_LABELS.items())

#: The fields of a training record, in order (what :func:`parse_training` accepts).
FIELDS: tuple[TrainingField, ...] = (
    TrainingField("held_on", True, "Día en que se impartió (AAAA-MM-DD o DD/MM/AAAA)."),
    TrainingField("entity_id", False, "Entidad del clúster que la organizó o acogió."),
    TrainingField("place", True, "Dónde se impartió."),
    TrainingField("kind", True, f"Tipo de formación: {KINDS_TEXT}."),
    TrainingField("people_trained", True, f"Personas formadas (de 1 a {MAX_PEOPLE_PER_ACTION})."),
    TrainingField("trainer", False, "Quién la impartió."),
    TrainingField("notes", False, "Observaciones."),
)
FIELD_NAMES = tuple(spec.name for spec in FIELDS)
assert FIELD_NAMES == TRAINING_FIELDS

#: Columns of a CSV register: the record's required fields, then optional ones. ``id`` is the
#: organiser's reference (stored as ``source_id``); ``source`` overrides where rows come from.
CSV_REQUIRED_COLUMNS = ("held_on", "entity_id", "place", "kind", "people_trained")
CSV_OPTIONAL_COLUMNS = ("trainer", "notes", "id", "source")
CSV_COLUMNS = (*CSV_REQUIRED_COLUMNS, *CSV_OPTIONAL_COLUMNS)


@dataclass(frozen=True)
class TrainingRecord:
    """A validated training action (what it says; provenance is added when it is stored)."""

    held_on: dt.date
    entity_id: str | None
    place: str
    kind: str
    people_trained: int
    trainer: str | None
    notes: str | None

    def values(self) -> dict[str, Any]:
        return asdict(self)


# --- one record ----------------------------------------------------------------------------


def parse_training(
    values: Mapping[str, Any],
    *,
    entity_ids: Collection[str],
    today: dt.date,
    where: Where,
) -> TrainingRecord:
    """Validate one training record.

    Parameters
    ----------
    values
        Field name → value: text as a CSV cell holds it, or typed values (a
        :class:`datetime.date`, an ``int``) as the API passes them. Empty text and ``None`` are
        "not given".
    entity_ids
        Ids of the entities layer; ``entity_id`` must be one of them.
    today
        No action may be held after this day.
    where
        The file and line (or the request) the values come from, for the problems.

    Raises
    ------
    RecordValidationError
        With every problem found, each naming ``where`` and the field.
    """
    record, problems = check_training(values, entity_ids=entity_ids, today=today, where=where)
    if problems or record is None:
        raise RecordValidationError(problems)
    return record


def check_training(
    values: Mapping[str, Any],
    *,
    entity_ids: Collection[str],
    today: dt.date,
    where: Where,
) -> tuple[TrainingRecord | None, list[Problem]]:
    """Like :func:`parse_training`, but returns the problems instead of raising them.

    Returns
    -------
    tuple
        The record (``None`` when there are problems) and the problems.
    """
    problems = where.unknown_fields(values, FIELD_NAMES)
    parsed: dict[str, Any] = {}
    for spec in FIELDS:
        value = values.get(spec.name)
        if isinstance(value, str):
            value = value.strip()
        if value is None or value == "":
            if spec.required:
                problems.append(where.problem("falta este campo obligatorio.", spec.name,
                                              "missing_field"))  # fmt: skip
            parsed[spec.name] = None
            continue
        try:
            parsed[spec.name] = _CHECKS[spec.name](value, entity_ids, today)
        except _Invalid as exc:
            problems.append(where.problem(exc.message, spec.name, exc.code))
    if problems:
        return None, problems
    return TrainingRecord(**parsed), []


class _Invalid(Exception):  # an internal signal: never escapes this module
    def __init__(self, message: str, code: str = "invalid_value") -> None:
        self.message = message
        self.code = code


_DMY = re.compile(r"(?P<day>\d{1,2})/(?P<month>\d{1,2})/(?P<year>\d{4})")
_ISO = re.compile(r"\d{4}-\d{2}-\d{2}")
FIRST_YEAR = 1900


def parse_day(text: str) -> dt.date:
    """``AAAA-MM-DD`` or ``DD/MM/AAAA`` (also ``D/M/AAAA``) → a date.

    Raises
    ------
    ValueError
        Neither form, or no such day.
    """
    value = text.strip()
    if _ISO.fullmatch(value):
        return dt.date.fromisoformat(value)
    match = _DMY.fullmatch(value)
    if match is None:
        msg = f"not a date: {text!r}"
        raise ValueError(msg)
    return dt.date(int(match["year"]), int(match["month"]), int(match["day"]))


def _held_on(value: Any, entity_ids: Collection[str], today: dt.date) -> dt.date:
    if isinstance(value, dt.datetime) or not isinstance(value, dt.date | str):
        raise _Invalid(
            f"se esperaba una fecha AAAA-MM-DD o DD/MM/AAAA y llegó {_describe(value)}.",
            "invalid_date",
        )
    if isinstance(value, str):
        try:
            value = parse_day(value)
        except ValueError:
            raise _Invalid(
                f"fecha no válida {value!r}; se admite AAAA-MM-DD (2025-03-14) o DD/MM/AAAA "
                "(14/03/2025).",
                "invalid_date",
            ) from None
    if value > today:
        raise _Invalid(
            f"la fecha {value.isoformat()} es posterior a hoy ({today.isoformat()}): "
            "registre solo formaciones ya impartidas.",
            "date_in_future",
        )
    if value.year < FIRST_YEAR:
        raise _Invalid(
            f"la fecha {value.isoformat()} es anterior a {FIRST_YEAR}; revise el año.",
            "out_of_range",
        )
    return value


def _entity_id(value: Any, entity_ids: Collection[str], today: dt.date) -> str:
    text = _text(value, MAX_TEXT)
    if text not in entity_ids:
        raise _Invalid(f"no existe la entidad {text!r} en la capa de entidades.", "unknown_entity")
    return text


def _place(value: Any, entity_ids: Collection[str], today: dt.date) -> str:
    return _text(value, MAX_TEXT)


def _notes(value: Any, entity_ids: Collection[str], today: dt.date) -> str:
    return _text(value, MAX_NOTES)


def _kind(value: Any, entity_ids: Collection[str], today: dt.date) -> str:
    if isinstance(value, str):
        code = _KIND_ALIASES.get(_folded(value))
        if code is not None:
            return code
    raise _Invalid(
        f"tipo de formación {_describe(value)} no admitido; se admite: {KINDS_TEXT}.",
        "invalid_choice",
    )


def _people(value: Any, entity_ids: Collection[str], today: dt.date) -> int:
    if isinstance(value, str) and re.fullmatch(r"[+-]?\d{1,9}", value):
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise _Invalid(
            f"se esperaba un número entero de personas y llegó {_describe(value)}.",
            "invalid_value",
        )
    if value < 1:
        raise _Invalid(f"debe haber al menos 1 persona formada y llegó {value}.", "out_of_range")
    if value > MAX_PEOPLE_PER_ACTION:
        raise _Invalid(
            f"{value} personas en una sola acción no es verosímil (máximo "
            f"{MAX_PEOPLE_PER_ACTION}); revise la cifra o registre cada grupo por separado.",
            "out_of_range",
        )
    return value


def _text(value: Any, max_length: int) -> str:
    if not isinstance(value, str):
        raise _Invalid(f"se esperaba texto y llegó {_describe(value)}.")
    if "\x00" in value:
        raise _Invalid("el texto contiene caracteres nulos (\\u0000).")
    if len(value) > max_length:
        raise _Invalid(f"texto demasiado largo (máximo {max_length} caracteres).", "too_long")
    return value


_CHECKS = {
    "held_on": _held_on,
    "entity_id": _entity_id,
    "place": _place,
    "kind": _kind,
    "people_trained": _people,
    "trainer": _place,
    "notes": _notes,
}


def _folded(text: str) -> str:
    """Lower case, no accents, no spaces: ``"SVB + DEA"`` → ``"svb+dea"``."""
    return re.sub(r"\s+", "", fold(text))


#: Every way of writing a kind that is accepted (folded by :func:`_folded`) → its code.
_KIND_ALIASES: Mapping[str, str] = {
    _folded(alias): code
    for code, aliases in {
        "bls_aed": ("bls_aed", "SVB + DEA", "SVB y DEA", "SVB + DESA", "SVB y DESA",
                    "SVB-DEA", "SVB/DEA"),
        "aed": ("aed", "Uso del DEA", "Uso de DEA", "DEA", "Uso del DESA", "DESA"),
        "bls": ("bls", "SVB (soporte vital básico)", "SVB", "Soporte vital básico"),
        "refresher": ("refresher", "Reciclaje SVB + DEA", "Reciclaje SVB y DEA", "Reciclaje",
                      "Reciclaje SVB", "Reciclaje DEA"),
    }.items()
    for alias in aliases
}  # fmt: skip


def _describe(value: Any) -> str:
    """A value as a training message quotes it: a text as itself, in quotes."""
    return repr(value) if isinstance(value, str) else describe(value)


# --- CSV registers ---------------------------------------------------------------------------


def read_training_csv(source: Path | str | bytes, *, name: str | None = None) -> list[CsvRow]:
    """Read the rows of a CSV training register (structure only; values are checked later).

    See :func:`read_csv_register`, with the training register's columns.
    """
    return read_csv_register(
        source, name=name, required=CSV_REQUIRED_COLUMNS, optional=CSV_OPTIONAL_COLUMNS
    )


def training_rows(
    rows: Sequence[CsvRow],
    *,
    file: str,
    entity_ids: Collection[str],
    today: dt.date,
    source: str,
) -> list[dict[str, Any]]:
    """Validate the rows of a CSV register into rows the store can upsert.

    Each row gets ``source`` (its ``source`` cell, else the ``source`` given) and ``source_id``
    (its ``id`` cell, else a key of its content: date, entity, place, kind and people).

    Raises
    ------
    RecordValidationError
        With every problem of every row, and every row repeated (same ``id``, or the same
        content without ``id``) naming the line it repeats.
    """
    problems: list[Problem] = []
    prepared: list[dict[str, Any]] = []
    first_line: dict[tuple[str, str], int] = {}
    for row in rows:
        where = Where(file, row.line)
        fields = {name: value for name, value in row.values.items() if name in FIELD_NAMES}
        record, found = check_training(fields, entity_ids=entity_ids, today=today, where=where)
        reference, row_source = row.values.get("id") or None, row.values.get("source") or source
        for column, value in (("id", reference), ("source", row_source)):
            if value is not None and ("\x00" in value or len(value) > MAX_TEXT):
                message = f"texto no admitido (máximo {MAX_TEXT} caracteres, sin \\u0000)."
                found.append(where.problem(message, column))
        problems.extend(found)
        if record is None or found:
            continue
        key = (row_source, reference or content_key(record))
        seen = first_line.setdefault(key, row.line)
        if seen != row.line:
            if reference is not None:
                message = f"id {reference!r} repetido (ya usado en la línea {seen})."
                problems.append(where.problem(message, "id", "duplicate_record"))
            else:
                message = (
                    f"fila repetida: misma fecha, entidad, lugar, tipo y personas que la línea "
                    f"{seen}; si son acciones distintas, distíngalas con una columna id."
                )
                problems.append(where.problem(message, None, "duplicate_record"))
            continue
        prepared.append({**record.values(), "source": key[0], "source_id": key[1]})
    if problems:
        raise RecordValidationError(problems)
    return prepared


def content_key(record: TrainingRecord) -> str:
    """A stable id for a record without one: a hash of its date, entity, place, kind, people.

    The place is compared without regard to case or repeated spaces.
    """
    place = " ".join(record.place.casefold().split())
    parts = (record.held_on.isoformat(), record.entity_id or "", place, record.kind,
             str(record.people_trained))  # fmt: skip
    return "auto-" + hashlib.sha256("\x1f".join(parts).encode("utf-8")).hexdigest()[:20]


@dataclass(frozen=True)
class PreparedImport:
    """A CSV register read and validated, ready for :meth:`Store.upsert_trainings`."""

    file: str
    read: int
    rows: tuple[dict[str, Any], ...]


def prepare_import(
    file: Path | str | bytes,
    *,
    today: dt.date,
    entity_ids: Collection[str],
    name: str | None = None,
    source: str | None = None,
) -> PreparedImport:
    """Read and validate a CSV register without touching any database.

    Parameters are those of :func:`import_training`; ``entity_ids`` is required here.

    Raises
    ------
    RecordValidationError
        The file or any row is not acceptable.
    """
    file_name = name or (file.name if isinstance(file, Path) else "datos.csv")
    rows = read_training_csv(file, name=file_name)
    prepared = training_rows(rows, file=file_name, entity_ids=entity_ids, today=today,
                             source=source or f"csv:{file_name}")  # fmt: skip
    return PreparedImport(file_name, len(rows), tuple(prepared))


def store_import(
    store: Store, prepared: PreparedImport, *, actor: str, dry_run: bool = False
) -> ImportReport:
    """Write a prepared import (one transaction, audited) or, with ``dry_run``, count it."""
    counts = store.upsert_trainings(prepared.rows, actor=actor, dry_run=dry_run)
    return ImportReport(file=prepared.file, read=prepared.read, dry_run=dry_run, **counts)


def import_training(
    store: Store,
    file: Path | str | bytes,
    *,
    today: dt.date,
    actor: str,
    name: str | None = None,
    source: str | None = None,
    dry_run: bool = False,
    entity_ids: Collection[str] | None = None,
) -> ImportReport:
    """Import a CSV training register: insert new rows, update changed ones, in one transaction.

    Rows are matched on ``(source, source_id)``: importing the same file again changes nothing,
    and a row whose values changed (same ``id``, or without ``id`` the same date, entity, place,
    kind and people but another trainer or notes) is updated.

    Parameters
    ----------
    file
        The CSV file, or its content (bytes or text; then give ``name``).
    today
        No action may be held after this day.
    actor
        Who imports, for the audit log.
    name
        The file name problems name and the default source uses (default: the path's name).
    source
        Where rows without a ``source`` cell come from (default ``csv:<file name>``).
    dry_run
        Validate and count, write nothing.
    entity_ids
        The entities an ``entity_id`` may name (default: the stored entities layer).

    Raises
    ------
    RecordValidationError
        The file or any row is not acceptable; nothing is written.
    """
    if entity_ids is None:
        entity_ids = set(store.query_layer("entities")["id"])
    prepared = prepare_import(file, today=today, entity_ids=entity_ids, name=name, source=source)
    return store_import(store, prepared, actor=actor, dry_run=dry_run)


# --- through the API --------------------------------------------------------------------------


def record_training(
    store: Store, principal: Principal, values: Mapping[str, Any], *, today: dt.date
) -> dict[str, Any]:
    """Register one training action (planners and administrators); returns the stored row.

    Raises
    ------
    ForbiddenError
        The principal is not a planner or an administrator.
    RecordValidationError
        Any field is not acceptable (all problems at once, ``petición`` as the file).
    """
    require_role(principal, "planner", "admin")
    entity_id = values.get("entity_id")
    known: set[str] = set()
    if isinstance(entity_id, str) and entity_id.strip():
        known = set(store.query_layer("entities", ids=[entity_id.strip()])["id"])
    record = parse_training(values, entity_ids=known, today=today, where=Where(REQUEST))
    row = {**record.values(), "source": API_SOURCE, "source_id": None}
    stored = store.training(store.insert_training(row, actor=principal.actor))
    assert stored is not None
    return stored


def delete_training(store: Store, principal: Principal, training_id: int) -> None:
    """Delete a training action (planners and administrators); audited.

    Raises
    ------
    ForbiddenError, NotFoundError
    """
    require_role(principal, "planner", "admin")
    store.delete_training(training_id, actor=principal.actor)
