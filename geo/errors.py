"""One exception hierarchy for cardiomapa.

Every class extends a built-in exception, so callers that do not know cardiomapa can still
catch ``ValueError`` or ``LookupError``. Messages are user-facing and therefore Spanish; each class
carries a stable machine ``code`` that the API and the CLI can report alongside the message.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


class CardiomapaError(Exception):
    """Base of every error cardiomapa raises on purpose."""

    code = "error"


@dataclass(frozen=True)
class Problem:
    """One thing wrong in an input file.

    Attributes
    ----------
    file
        File name (not the full path) the problem was found in.
    message
        What is wrong and what is accepted, in Spanish.
    feature
        Zero-based index of the feature in the file's ``features`` array, if the problem is in one.
    field
        Name of the property (or ``geometry``) at fault, if any.
    line
        One-based line of the file, for syntax errors.
    code
        Stable machine code of the kind of problem (``outside_municipality``,
        ``invalid_opening_hours``, ``invalid_choice``…), for the API.
    """

    file: str
    message: str
    feature: int | None = None
    field: str | None = None
    line: int | None = None
    code: str = "invalid_value"

    def __str__(self) -> str:
        where = [self.file]
        if self.line is not None:
            where.append(f"línea {self.line}")
        if self.feature is not None:
            where.append(f"elemento {self.feature}")
        if self.field is not None:
            where.append(f'campo "{self.field}"')
        return f"{', '.join(where)}: {self.message}"


class LayerValidationError(CardiomapaError, ValueError):
    """One or more layer files are not acceptable; ``problems`` lists every one found."""

    code = "invalid_layer"

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = tuple(problems)
        count = len(self.problems)
        head = "Se encontró 1 problema" if count == 1 else f"Se encontraron {count} problemas"
        lines = "\n".join(f"  - {p}" for p in self.problems[:50])
        more = f"\n  … y {count - 50} más" if count > 50 else ""
        super().__init__(f"{head} en los datos:\n{lines}{more}")


class RecordValidationError(LayerValidationError):
    """Records that are not layer features (rows of a CSV register, a request body) are not
    acceptable; each problem names its field as the record does (a CSV column, a body field)."""

    code = "invalid_record"


class CityProfileError(CardiomapaError, ValueError):
    """The city profile (name, boundary, CRS, time zone) is missing or malformed."""

    code = "invalid_city_profile"


class DatabaseNotEmptyError(CardiomapaError, RuntimeError):
    """Loading into a database that already holds layers, without asking to replace them."""

    code = "database_not_empty"


class StorageError(CardiomapaError, RuntimeError):
    """The database cannot be opened or prepared (missing SpatiaLite, PostGIS, bad URL…)."""

    code = "storage_error"


class NotFoundError(CardiomapaError, LookupError):
    """A record asked for by id does not exist (or is not visible to whoever asks)."""

    code = "not_found"


class ConflictError(CardiomapaError, RuntimeError):
    """A write that contradicts the stored state (a stale version, an already-decided review)."""

    code = "conflict"


class InputError(CardiomapaError, ValueError):
    """A request or command argument is malformed (dates in the wrong order, a bad bbox…)."""

    code = "invalid_input"

    def __init__(self, message: str, *, code: str | None = None, field: str | None = None) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code
        self.field = field
