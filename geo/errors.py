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


# --- Requests and files that cannot be used as given (the caller can fix them) ----------------


class LocalTimeError(InputError):
    """A wall-clock time the city's clocks skip (the hour lost when they go forward)."""

    code = "nonexistent_local_time"


class CoverageInputError(CardiomapaError, ValueError):
    """A layer cannot be analysed (negative residents, wrong geometry, missing columns…)."""

    code = "invalid_coverage_input"


class MetricCRSError(CardiomapaError, ValueError):
    """A layer in a geographic CRS (degrees) was handed to a function that works in metres."""

    code = "geographic_crs"


class SitingError(CardiomapaError, ValueError):
    """A siting problem that cannot be posed (no candidates, bad p, bad target…)."""

    code = "invalid_siting"


class OutcomeInputError(CardiomapaError, ValueError):
    """Outcome parameters or inputs that cannot be used (out of range, missing…)."""

    code = "invalid_outcome_input"


class IndicatorInputError(CardiomapaError, ValueError):
    """The inputs to the indicators are not usable (no plan, a year outside it…)."""

    code = "invalid_indicator_input"


class ReportError(CardiomapaError, ValueError):
    """The report cannot be built for what was asked (a year that has not started…)."""

    code = "invalid_report_request"


class TokenError(CardiomapaError, ValueError):
    """A token cannot be issued as asked."""

    code = "invalid_token_request"


class ImportFormatError(CardiomapaError, ValueError):
    """The file cannot be read as the format it claims to be."""

    code = "invalid_import_file"

    def __init__(
        self, file: str, message: str, *, record: int | None = None, field: str | None = None
    ) -> None:
        where = file
        if record is not None:
            where += f", registro {record}"
        if field is not None:
            where += f', campo "{field}"'
        super().__init__(f"{where}: {message}")
        self.file = file
        self.record = record
        self.field = field


class NetworkError(CardiomapaError, ValueError):
    """A street network file or frame cannot be used as a walking network."""

    code = "invalid_network"


class CoordinatesError(CardiomapaError, ValueError):
    """Points handed to a distance function are not an ``(n, 2)`` array of finite metres."""

    code = "invalid_coordinates"


class FormTooLargeError(CardiomapaError, ValueError):
    """A form body with more fields than any page sends (see :data:`api.web.MAX_FORM_FIELDS`)."""

    code = "too_many_fields"


# --- Who may do what --------------------------------------------------------------------------


class AuthenticationError(CardiomapaError, PermissionError):
    """No token, or one that is malformed, unknown, revoked or expired (HTTP 401)."""

    code = "unauthenticated"


class ForbiddenError(CardiomapaError, PermissionError):
    """A valid token whose role or entity may not do this (HTTP 403)."""

    code = "forbidden"


class RateLimitedError(CardiomapaError, RuntimeError):
    """Too many attempts from one client; ``retry_after_s`` says when to try again."""

    code = "rate_limited"

    def __init__(self, message: str, *, retry_after_s: int) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


# --- Writes against the stored state ----------------------------------------------------------


class VersionMismatchError(ConflictError):
    """The client's ``If-Match`` version is not the stored one (HTTP 412)."""

    code = "version_mismatch"


# --- The installation: reference data, storage, mail and printing -----------------------------


class IncomeDataError(CardiomapaError, ValueError):
    """The census-section income table is missing or malformed."""

    code = "invalid_income_table"


class ReferenceDataError(CardiomapaError, ValueError):
    """The table of reference densities is missing or malformed."""

    code = "invalid_reference_table"


class BackupError(StorageError):
    """A backup cannot be written, read or restored; the message names the file."""

    code = "backup_error"


class MailConfigError(CardiomapaError, ValueError):
    """Outgoing mail is not configured, or its settings are malformed."""

    code = "mail_not_configured"


class ChromiumNotFoundError(CardiomapaError, LookupError):
    """No Chromium (or Chrome) to print the PDF with."""

    code = "chromium_not_found"


class PdfError(CardiomapaError, RuntimeError):
    """Chromium ran but did not write a PDF."""

    code = "pdf_failed"
