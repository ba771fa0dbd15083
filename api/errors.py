"""Every error the API answers with: one status table, a stable ``code`` and a Spanish message."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match, Mount

from api.schemas import ErrorPublic, ProblemPublic
from geo.errors import (
    AuthenticationError,
    CardiomapaError,
    ChromiumNotFoundError,
    CityProfileError,
    ConflictError,
    CoordinatesError,
    CoverageInputError,
    DatabaseNotEmptyError,
    ForbiddenError,
    FormTooLargeError,
    ImportFormatError,
    IncomeDataError,
    IndicatorInputError,
    InputError,
    LayerValidationError,
    MailConfigError,
    MetricCRSError,
    NetworkError,
    NotFoundError,
    OutcomeInputError,
    PdfError,
    Problem,
    RateLimitedError,
    RecordValidationError,
    ReferenceDataError,
    ReportError,
    SitingError,
    StorageError,
    TokenError,
    VersionMismatchError,
)

logger = logging.getLogger(__name__)

INTERNAL_ERROR_MESSAGE = (
    "Error interno del servidor; no se ha guardado nada a medias. Avise al equipo."
)

#: Every kind of domain error (:mod:`geo.errors`) → its HTTP status. A class not listed takes
#: its nearest listed base's; one with none answers a logged 500 (never a silent 400), and
#: ``tests/test_errors.py`` fails until every class is listed or inherits a status on purpose.
ERROR_STATUS: Mapping[type[CardiomapaError], int] = {
    # The caller can fix the request.
    InputError: 422,  # LocalTimeError too
    LayerValidationError: 422,  # RecordValidationError too
    CoverageInputError: 422,
    MetricCRSError: 422,
    SitingError: 422,
    IndicatorInputError: 422,
    OutcomeInputError: 422,
    ReportError: 400,
    TokenError: 400,
    ImportFormatError: 400,
    NetworkError: 400,
    CoordinatesError: 400,
    CityProfileError: 400,
    DatabaseNotEmptyError: 400,
    FormTooLargeError: 413,
    # Who may do what.
    AuthenticationError: 401,
    ForbiddenError: 403,
    RateLimitedError: 429,
    # Records and the stored state.
    NotFoundError: 404,
    ConflictError: 409,
    VersionMismatchError: 412,
    # The installation, not the request: a broken reference table, mail or Chromium missing, the
    # database unreachable. Nothing the client can change; 503 says to try later.
    IncomeDataError: 503,
    ReferenceDataError: 503,
    MailConfigError: 503,
    ChromiumNotFoundError: 503,
    PdfError: 503,
    StorageError: 503,  # BackupError too
}


def status_of(exc: CardiomapaError) -> int | None:
    """The HTTP status of ``exc``: its class's, else its nearest listed base's; ``None`` if none
    is listed (the handlers answer 500 and log it)."""
    return next((ERROR_STATUS[cls] for cls in type(exc).__mro__ if cls in ERROR_STATUS), None)


_HTTP_MESSAGES = {
    # FastAPI's answer to a body it cannot even decode (e.g. not UTF-8).
    400: ("invalid_body", "No se puede leer el cuerpo de la petición: se espera JSON en UTF-8."),
    404: ("not_found", "No existe esa dirección en la API; vea /openapi.json."),
    405: ("method_not_allowed", "Método no admitido en esta dirección."),
}
_HTTP_CODES = {413: "payload_too_large"}

#: pydantic error types → (our code, Spanish message template using the error's context).
_PYDANTIC: dict[str, tuple[str, str]] = {
    "missing": ("missing_field", "falta este campo obligatorio."),
    "extra_forbidden": ("unknown_field", "campo no admitido."),
    "literal_error": ("invalid_choice", "valor no admitido; se admite: {expected}."),
    "enum": ("invalid_choice", "valor no admitido; se admite: {expected}."),
    "string_type": ("invalid_value", "se esperaba texto."),
    "string_too_long": ("too_long", "texto demasiado largo (máximo {max_length} caracteres)."),
    "string_too_short": ("missing_field", "no puede estar vacío."),
    "too_short": ("invalid_value", "hacen falta al menos {min_length} elementos."),
    "too_long": ("invalid_value", "admite como mucho {max_length} elementos."),
    "int_type": ("invalid_value", "se esperaba un número entero."),
    "int_parsing": ("invalid_value", "se esperaba un número entero."),
    "int_from_float": ("invalid_value", "se esperaba un número entero."),
    "float_type": ("invalid_value", "se esperaba un número."),
    "float_parsing": ("invalid_value", "se esperaba un número."),
    "finite_number": ("invalid_value", "se esperaba un número finito."),
    "bool_type": ("invalid_value", "se esperaba true o false."),
    "bool_parsing": ("invalid_value", "se esperaba true o false."),
    "greater_than_equal": ("out_of_range", "debe ser mayor o igual que {ge}."),
    "greater_than": ("out_of_range", "debe ser mayor que {gt}."),
    "less_than_equal": ("out_of_range", "debe ser menor o igual que {le}."),
    "less_than": ("out_of_range", "debe ser menor que {lt}."),
    "date_type": ("invalid_date", "se esperaba una fecha AAAA-MM-DD."),
    "date_out_of_range": ("out_of_range", "fecha fuera de los años admitidos ({first} a {last})."),
    "date_parsing": ("invalid_date", "fecha no válida; se admite AAAA-MM-DD, p. ej. 2026-03-01."),
    "date_from_datetime_parsing": ("invalid_date", "fecha no válida; se admite AAAA-MM-DD."),
    "date_from_datetime_inexact": ("invalid_date", "se esperaba una fecha sin hora."),
    "datetime_type": ("invalid_date", "se esperaba una fecha y hora ISO 8601."),
    "datetime_parsing": (
        "invalid_date",
        "fecha y hora no válidas; se admite ISO 8601, p. ej. 2026-11-23T22:00.",
    ),
    "datetime_from_date_parsing": (
        "invalid_date",
        "fecha y hora no válidas; se admite ISO 8601, p. ej. 2026-11-23T22:00.",
    ),
    "model_type": ("invalid_value", "se esperaba un objeto JSON."),
    "model_attributes_type": ("invalid_value", "se esperaba un objeto JSON."),
    "dict_type": ("invalid_value", "se esperaba un objeto JSON."),
    "list_type": ("invalid_value", "se esperaba una lista."),
    "json_invalid": ("invalid_json", "el cuerpo no es JSON válido."),
    "value_error": ("invalid_value", "{error}."),
    "string_unicode": ("invalid_value", "el texto no es Unicode válido."),
    "json_type": ("invalid_json", "el cuerpo no es JSON válido."),
}


def _where(loc: tuple[Any, ...]) -> str | None:
    parts = [str(part) for part in loc if part not in ("body", "query", "path", "header")]
    return ".".join(parts) or None


def _translate(error: dict[str, Any]) -> ProblemPublic:
    code, template = _PYDANTIC.get(error["type"], ("invalid_value", "valor no válido."))
    context = dict(error.get("ctx") or {})
    try:
        message = template.format(**context)
    except (KeyError, IndexError, ValueError):
        message = "valor no válido."
    field = _where(tuple(error.get("loc", ())))
    return ProblemPublic(field=field, code=code, message=message)


def translate_validation_error(errors: Any) -> list[ProblemPublic]:
    """pydantic's errors as problems in Spanish (what the API answers with 422)."""
    return [_translate(error) for error in errors]


def _answer(
    code: str,
    message: str,
    status: int,
    problems: list[ProblemPublic] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    body = ErrorPublic(code=code, message=message, problems=problems)
    # Without problems the key is left out; a problem's field is always there (null: the body).
    content = body.model_dump(exclude={"problems"} if problems is None else None)
    return JSONResponse(content, status_code=status, headers=headers)


def _summary(problems: list[ProblemPublic]) -> tuple[str, str]:
    codes = {p.code for p in problems}
    code = problems[0].code if len(codes) == 1 else "invalid_request"
    head = "Hay 1 problema" if len(problems) == 1 else f"Hay {len(problems)} problemas"
    details = "; ".join(f"{p.field}: {p.message}" if p.field else p.message for p in problems[:5])
    return code, f"{head} en la petición: {details}"


def install(app: FastAPI) -> None:
    """Register the handlers that turn every error into an :class:`ErrorPublic`."""

    @app.exception_handler(CardiomapaError)
    async def domain_error(request: Request, exc: CardiomapaError) -> JSONResponse:
        status = status_of(exc)
        if status is None:
            logger.error("error sin estado HTTP en api.errors.ERROR_STATUS", exc_info=exc)
            return _answer("internal_error", INTERNAL_ERROR_MESSAGE, 500)
        if status >= 500:  # the installation's fault: the operator must hear of it
            logger.warning("%s %s: %s (%s)", request.method, request.url.path, exc, exc.code)
        headers: dict[str, str] = {}
        if isinstance(exc, AuthenticationError):
            headers["WWW-Authenticate"] = "Bearer"
        if isinstance(exc, RateLimitedError):
            headers["Retry-After"] = str(exc.retry_after_s)
        if isinstance(exc, LayerValidationError):
            flat = isinstance(exc, RecordValidationError)
            problems = [_problem(p, flat=flat) for p in exc.problems]
            code, message = _summary(problems)
            return _answer(code, message, status, problems, headers)
        if isinstance(exc, InputError):
            problem = ProblemPublic(field=exc.field, code=exc.code, message=str(exc))
            return _answer(exc.code, str(exc), status, [problem], headers)
        return _answer(exc.code, str(exc), status, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = [_translate(error) for error in exc.errors()]
        code, message = _summary(problems)
        return _answer(code, message, 422, problems)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        default = (_HTTP_CODES.get(exc.status_code, "http_error"), str(exc.detail))
        code, message = _HTTP_MESSAGES.get(exc.status_code, default)
        headers = dict(exc.headers or {})
        if exc.status_code == 405:
            headers = {k: v for k, v in headers.items() if k.lower() != "allow"}
            headers["Allow"] = allowed_methods(request, default=exc.headers)
        return _answer(code, message, exc.status_code, headers=headers)

    @app.exception_handler(DBAPIError)
    async def database_refused(request: Request, exc: DBAPIError) -> JSONResponse:
        if isinstance(exc, DataError):  # e.g. a NUL character in a path or query value
            message = "La petición contiene valores que la base de datos no admite."
            return _answer("invalid_value", message, 422)
        if isinstance(exc, IntegrityError):
            message = "El cambio contradice datos ya guardados; no se ha guardado nada."
            return _answer("conflict", message, 409)
        message = "La base de datos no responde; no se ha guardado nada. Inténtelo de nuevo."
        return _answer("storage_error", message, 503)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        return _answer("internal_error", INTERNAL_ERROR_MESSAGE, 500)


_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


def allowed_methods(request: Request, *, default: Mapping[str, str] | None = None) -> str:
    """Every method some route of the app answers at the request's path (the 405 ``Allow``).

    Starlette names only the methods of the first route whose path matched, and FastAPI makes
    one route per method, so ``PUT /api/defibrillators`` was told ``Allow: GET`` although
    ``POST`` is there too. Each route is asked whether it fully matches the path with each
    method (FastAPI's included routers answer that too). A mount (the static files) keeps the
    ``Allow`` it gave.
    """
    methods = {
        method
        for method in _METHODS
        for route in request.app.router.routes
        if not isinstance(route, Mount)  # a mount matches every method
        and route.matches({**request.scope, "method": method})[0] is Match.FULL
    }
    if not methods:
        given = {k.lower(): v for k, v in (default or {}).items()}
        return given.get("allow", "")
    return ", ".join(sorted(methods))


def _problem(problem: Problem, *, flat: bool) -> ProblemPublic:
    """A validation problem as the API answers it.

    A layer field is named as the request names it (``properties.…``); a flat record's field as
    is. A problem in a line of a sent file keeps its place in the message (file, line, field).
    """
    field = problem.field if flat else _request_field(problem.field)
    message = str(problem) if problem.line is not None else problem.message
    return ProblemPublic(field=field, code=problem.code, message=message)


def _request_field(field: str | None) -> str | None:
    """A layer field as the request names it (``opening_hours`` → ``properties.opening_hours``)."""
    if field is None or field == "geometry":
        return field
    return f"properties.{field}"
