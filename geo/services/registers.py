"""CSV registers as people keep them in a spreadsheet: reading their rows, saying where a
problem is, and what an import of one did.

Shared by the registers the CLI and the API import (training, entity contacts, arrests): the
header is checked against the register's columns, and every problem names its file and line.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from geo.errors import Problem, RecordValidationError

#: Where a problem in a request body is said to be.
REQUEST = "petición"


@dataclass(frozen=True)
class Where:
    """Where a record comes from, for its problems: a file (or ``petición``) and a line."""

    file: str
    line: int | None = None

    def problem(self, message: str, field: str | None, code: str = "invalid_value") -> Problem:
        return Problem(self.file, message, field=field, line=self.line, code=code)

    def unknown_fields(self, values: Mapping[str, Any], known: Sequence[str]) -> list[Problem]:
        """One problem for each field of ``values`` that is not in ``known``, in name order."""
        message = f"campo desconocido; se admiten: {', '.join(known)}."
        return [
            self.problem(message, name, "unknown_field")
            for name in sorted(set(values) - set(known))
        ]


@dataclass(frozen=True)
class CsvRow:
    """One data row of a CSV register: its line (the header is line 1) and its cells by column,
    stripped of surrounding spaces."""

    line: int
    values: Mapping[str, str]


@dataclass(frozen=True)
class ImportReport:
    """What an import did (or, with ``dry_run``, would do)."""

    file: str
    read: int
    inserted: int
    updated: int
    unchanged: int
    dry_run: bool


def read_csv_register(
    source: Path | str | bytes,
    *,
    name: str | None = None,
    required: Sequence[str],
    optional: Sequence[str] = (),
) -> list[CsvRow]:
    """Read the rows of a CSV register (structure only; values are checked later).

    Parameters
    ----------
    source
        A file (:class:`~pathlib.Path`), or its content as bytes or text.
    name
        The file name problems name (default: the path's name; ``datos.csv`` for content).
    required, optional
        The columns the header must have and may have (lower case; the header is compared
        without regard to case).

    Returns
    -------
    list of CsvRow
        The data rows, blank rows left out, each with its line number.

    Raises
    ------
    RecordValidationError
        The file is unreadable, not UTF-8, has no header, a missing, unknown or repeated column,
        a row with more or fewer cells than the header, or broken quoting.
    """
    file = name or (source.name if isinstance(source, Path) else "datos.csv")
    text = _decoded(source, file)
    first = next((line for line in text.splitlines() if line.strip()), None)
    if first is None:
        message = (
            "el archivo está vacío; la primera línea debe ser la cabecera con las columnas "
            f"{', '.join(required)}."
        )
        raise RecordValidationError([Problem(file, message, line=1, code="missing_header")])
    delimiter = ";" if first.count(";") > first.count(",") else ","
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    problems: list[Problem] = []
    rows: list[CsvRow] = []
    header: list[str] | None = None
    line = 1
    try:
        for cells in reader:
            start, line = line, reader.line_num + 1
            if not any(cell.strip() for cell in cells):
                continue
            if header is None:
                header = _header(cells, file, start, required=required, optional=optional)
                continue
            values = [cell.strip() for cell in cells]
            if len(values) > len(header) and not any(values[len(header) :]):
                values = values[: len(header)]
            if len(values) != len(header):
                message = (
                    f"la fila tiene {len(values)} valores y la cabecera {len(header)} columnas "
                    f"(separador {delimiter!r})."
                )
                problems.append(Problem(file, message, line=start, code="wrong_column_count"))
                continue
            rows.append(CsvRow(start, dict(zip(header, values, strict=True))))
    except csv.Error:
        message = "CSV mal formado: unas comillas sin cerrar o caracteres sueltos tras ellas."
        problems.append(Problem(file, message, line=line, code="invalid_csv"))
    if problems:
        raise RecordValidationError(problems)
    return rows


def _decoded(source: Path | str | bytes, file: str) -> str:
    if isinstance(source, str):
        return source.removeprefix("\ufeff")
    if isinstance(source, Path):
        try:
            source = source.read_bytes()
        except OSError as exc:
            message = f"no se puede leer el archivo ({exc.strerror or exc})."
            raise RecordValidationError([Problem(file, message)]) from None
    try:
        return source.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = source[: exc.start].count(b"\n") + 1
        message = (
            f"el archivo no está en UTF-8 (byte {exc.start}); guárdelo como «CSV UTF-8» en la "
            "hoja de cálculo."
        )
        raise RecordValidationError([Problem(file, message, line=line, code="not_utf8")]) from None


def _header(
    cells: list[str], file: str, line: int, *, required: Sequence[str], optional: Sequence[str]
) -> list[str]:
    names = [cell.strip().casefold() for cell in cells]
    while names and not names[-1]:
        names.pop()  # spreadsheets leave empty trailing columns
    problems = []
    accepted = f"obligatorias: {', '.join(required)}" + (
        f"; opcionales: {', '.join(optional)}" if optional else ""
    )
    columns = (*required, *optional)
    seen: set[str] = set()
    for position, column in enumerate(names, start=1):
        if not column:
            message = f"la columna {position} de la cabecera no tiene nombre ({accepted})."
            problems.append(Problem(file, message, line=line, code="unknown_field"))
        elif column in seen:
            message = "columna repetida en la cabecera."
            problems.append(Problem(file, message, line=line, field=column, code="duplicate_field"))
        elif column not in columns:
            message = f"columna desconocida; se admiten las columnas {accepted}."
            problems.append(Problem(file, message, line=line, field=column, code="unknown_field"))
        seen.add(column)
    for column in required:
        if column not in seen:
            message = f"falta esta columna en la cabecera ({accepted})."
            problems.append(Problem(file, message, line=line, field=column, code="missing_field"))
    if problems:
        raise RecordValidationError(problems)
    return names
