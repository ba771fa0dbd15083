"""Entities' private contacts: who to write to about their defibrillators' upkeep.

A contact is a person's name, an e-mail address and a telephone number; it is private (never in
the public layers, downloads or the OGC API) and is used only by the staff desk and the
maintenance reminders (:mod:`geo.services.reminders`). One rule set validates the portal's and the
desk's forms and the CSV files the Ayuntamiento imports with ``cardiomapa contacts import``.

Rules:

- Every value is trimmed; empty means "not given". At least an e-mail or a telephone.
- E-mail: ``nombre@dominio.es`` (ASCII, a domain with a dot), at most 254 characters.
- Telephone: 6 to 20 characters among digits, spaces, ``+`` (only first), ``-``, ``(`` and ``)``,
  with at least 6 digits.
- Person: at most 200 characters, no control characters.
- A CSV file is UTF-8 (with or without BOM), comma- or semicolon-separated, with the header
  ``entity_id,person,email,phone`` (``entity_id`` required, the others optional). Every problem
  of every row is reported at once, with the file, the line and the column; nothing is written
  when there is any.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any

from geo.errors import Problem, RecordValidationError
from geo.io.store import CONTACT_FIELDS, Store
from geo.services.registers import REQUEST, ImportReport, Where, read_csv_register

#: Longest person's name, e-mail address and telephone.
MAX_PERSON = 200
MAX_EMAIL = 254
MIN_PHONE, MAX_PHONE = 6, 20
#: Columns of a contacts CSV file.
CSV_REQUIRED_COLUMNS = ("entity_id",)
CSV_OPTIONAL_COLUMNS = CONTACT_FIELDS
#: How each field is named in messages.
FIELD_LABELS: Mapping[str, str] = {
    "person": "La persona de contacto",
    "email": "El correo electrónico",
    "phone": "El teléfono",
    "entity_id": "La entidad",
}

_EMAIL = re.compile(
    r"(?P<local>[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*)"
    r"@(?P<domain>(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63})"
)
_PHONE = re.compile(r"\+?[0-9 ()-]+")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def validate_contact(values: Mapping[str, Any]) -> dict[str, str | None]:
    """A contact as it is stored: ``person``, ``email``, ``phone`` (``None`` when not given).

    Raises
    ------
    RecordValidationError
        With every problem found, each naming its field (``petición`` as the file).
    """
    contact, problems = check_contact(values, where=Where(REQUEST))
    if contact is None:
        raise RecordValidationError(problems)
    return contact


def check_contact(
    values: Mapping[str, Any], *, where: Where
) -> tuple[dict[str, str | None] | None, list[Problem]]:
    """Like :func:`validate_contact`, but returns the problems instead of raising them.

    Returns
    -------
    tuple
        The contact (``None`` when there are problems) and the problems.
    """
    problems = where.unknown_fields(values, CONTACT_FIELDS)
    cleaned: dict[str, str | None] = {}
    for name in CONTACT_FIELDS:
        value = values.get(name)
        if value is not None and not isinstance(value, str):
            message = f"{FIELD_LABELS[name]} debe ser texto."
            problems.append(where.problem(message, name))
            cleaned[name] = None
            continue
        cleaned[name] = (value or "").strip() or None
    person, email, phone = cleaned["person"], cleaned["email"], cleaned["phone"]
    if person is not None:
        if len(person) > MAX_PERSON:
            message = f"{FIELD_LABELS['person']} admite como mucho {MAX_PERSON} caracteres."
            problems.append(where.problem(message, "person", "too_long"))
        elif _CONTROL.search(person):
            message = f"{FIELD_LABELS['person']} contiene caracteres de control."
            problems.append(where.problem(message, "person"))
    if email is not None:
        problem = _email_problem(email)
        if problem is not None:
            problems.append(where.problem(problem, "email"))
    if phone is not None:
        problem = _phone_problem(phone)
        if problem is not None:
            problems.append(where.problem(problem, "phone"))
    if email is None and phone is None and not any(p.field in ("email", "phone") for p in problems):
        message = (
            "Indique al menos un correo electrónico o un teléfono de contacto: sin ellos no se "
            "le pueden enviar los avisos de mantenimiento."
        )
        problems.append(where.problem(message, "email", "missing_field"))
    if problems:
        return None, problems
    return cleaned, []


def _email_problem(email: str) -> str | None:
    label = FIELD_LABELS["email"]
    if len(email) > MAX_EMAIL:
        return f"{label} admite como mucho {MAX_EMAIL} caracteres."
    match = _EMAIL.fullmatch(email)
    if match is None or len(match["local"]) > 64:
        return (
            f"{label} {email[:80]!r} no es válido: se espera una sola dirección como "
            "nombre@dominio.es (sin espacios ni acentos)."
        )
    return None


def _phone_problem(phone: str) -> str | None:
    label = FIELD_LABELS["phone"]
    digits = sum(char.isdigit() for char in phone)
    if (
        not MIN_PHONE <= len(phone) <= MAX_PHONE
        or _PHONE.fullmatch(phone) is None
        or digits < MIN_PHONE
    ):
        return (
            f"{label} {phone[:40]!r} no es válido: se admiten de {MIN_PHONE} a {MAX_PHONE} "
            "caracteres entre cifras (al menos 6), espacios, +, - y paréntesis, p. ej. "
            "979 000 000 o +34 979 000 000."
        )
    return None


# --- CSV files -------------------------------------------------------------------------------


def read_contacts_csv(
    source: Path | str | bytes,
    *,
    name: str | None = None,
    entity_ids: Collection[str] | None = None,
) -> list[dict[str, str | None]]:
    """Read and validate a contacts CSV file (``entity_id,person,email,phone``).

    Parameters
    ----------
    source
        The file, or its content as bytes or text (then give ``name``).
    name
        The file name problems name (default: the path's name; ``datos.csv`` for content).
    entity_ids
        The entities an ``entity_id`` may name; ``None``: not checked here (the store refuses
        unknown entities anyway).

    Returns
    -------
    list of dict
        ``entity_id``, ``person``, ``email``, ``phone`` per row, in file order.

    Raises
    ------
    RecordValidationError
        With every problem of the file and of every row (file, line, column): an unreadable
        or non-UTF-8 file, a bad header, a bad value, an unknown entity, an entity repeated.
    """
    file = name or (source.name if isinstance(source, Path) else "datos.csv")
    rows = read_csv_register(
        source, name=file, required=CSV_REQUIRED_COLUMNS, optional=CSV_OPTIONAL_COLUMNS
    )
    problems: list[Problem] = []
    contacts: list[dict[str, str | None]] = []
    first_line: dict[str, int] = {}
    for row in rows:
        where = Where(file, row.line)
        entity_id = row.values.get("entity_id", "")
        found: list[Problem] = []
        if not entity_id:
            found.append(where.problem("falta el id de la entidad.", "entity_id",
                                       "missing_field"))  # fmt: skip
        elif entity_ids is not None and entity_id not in entity_ids:
            message = f"no existe la entidad {entity_id[:80]!r} en la capa de entidades."
            found.append(where.problem(message, "entity_id", "unknown_entity"))
        elif first_line.setdefault(entity_id, row.line) != row.line:
            message = (
                f"la entidad {entity_id!r} ya tiene contacto en la línea "
                f"{first_line[entity_id]}; deje una sola fila por entidad."
            )
            found.append(where.problem(message, "entity_id", "duplicate_record"))
        fields = {key: value for key, value in row.values.items() if key in CONTACT_FIELDS}
        contact, invalid = check_contact(fields, where=where)
        found.extend(invalid)
        problems.extend(found)
        if contact is not None and not found:
            contacts.append({"entity_id": entity_id, **contact})
    if problems:
        raise RecordValidationError(problems)
    return contacts


def import_contacts(
    store: Store,
    file: Path | str | bytes,
    *,
    actor: str,
    name: str | None = None,
    dry_run: bool = False,
) -> ImportReport:
    """Import a contacts CSV file: all rows in one transaction, or nothing on any problem.

    Raises
    ------
    RecordValidationError
        The file or any row is not acceptable (nothing is written).
    """
    file_name = name or (file.name if isinstance(file, Path) else "datos.csv")
    entity_ids = set(store.query_layer("entities")["id"])
    rows = read_contacts_csv(file, name=file_name, entity_ids=entity_ids)
    if dry_run:
        stored = store.contacts([str(row["entity_id"]) for row in rows])
        outcomes = [_outcome(stored.get(str(row["entity_id"])), row) for row in rows]
    else:
        outcomes = list(store.set_contacts(rows, actor=actor).values()) if rows else []
    return ImportReport(
        file=file_name,
        read=len(rows),
        inserted=outcomes.count("insert"),
        updated=outcomes.count("update"),
        unchanged=outcomes.count("unchanged"),
        dry_run=dry_run,
    )


def _outcome(before: Mapping[str, Any] | None, row: Mapping[str, Any]) -> str:
    """What :meth:`Store.set_contacts` would do with ``row``."""
    if before is None:
        return "insert"
    if all(before.get(name) == row.get(name) for name in CONTACT_FIELDS):
        return "unchanged"
    return "update"
