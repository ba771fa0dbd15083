"""One errors module and one status table: every domain error has a status chosen on purpose.

Every exception cardiomapa raises on purpose is a :class:`geo.errors.CardiomapaError` defined in
``geo/errors.py``; ``api/errors.py`` maps each to an HTTP status. This walks every class that
exists once all of ``geo`` and ``api`` is imported, so a new error fails here until someone
decides its status; an error the table does not know answers a logged 500, never a silent 400.
"""

from __future__ import annotations

import importlib
import logging
import pkgutil
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

import api
import geo
import geo.errors
from api.app import create_app
from api.errors import ERROR_STATUS, status_of
from geo.errors import CardiomapaError
from geo.settings import Settings

#: The status of every error class, written out: the table's answer must match each one.
EXPECTED: dict[str, int] = {
    "CardiomapaError": 0,  # the base itself is never raised: no status
    "InputError": 422,
    "LocalTimeError": 422,
    "LayerValidationError": 422,
    "RecordValidationError": 422,
    "CoverageInputError": 422,
    "MetricCRSError": 422,
    "SitingError": 422,
    "IndicatorInputError": 422,
    "OutcomeInputError": 422,
    "ReportError": 400,
    "TokenError": 400,
    "ImportFormatError": 400,
    "NetworkError": 400,
    "CoordinatesError": 400,
    "CityProfileError": 400,
    "DatabaseNotEmptyError": 400,
    "FormTooLargeError": 413,
    "AuthenticationError": 401,
    "ForbiddenError": 403,
    "RateLimitedError": 429,
    "NotFoundError": 404,
    "ConflictError": 409,
    "VersionMismatchError": 412,
    "IncomeDataError": 503,
    "ReferenceDataError": 503,
    "MailConfigError": 503,
    "ChromiumNotFoundError": 503,
    "PdfError": 503,
    "StorageError": 503,
    "BackupError": 503,
}


def _every_error_class() -> list[type[CardiomapaError]]:
    for package in (geo, api):
        for module in pkgutil.walk_packages(package.__path__, prefix=f"{package.__name__}."):
            if ".migrations" not in module.name:
                importlib.import_module(module.name)
    found: list[type[CardiomapaError]] = []
    pending: list[type[CardiomapaError]] = [CardiomapaError]
    while pending:
        cls = pending.pop()
        found.append(cls)
        pending.extend(cls.__subclasses__())
    # Classes the tests themselves define (like the one below) are not the product's.
    return [cls for cls in found if cls.__module__.split(".")[0] in ("geo", "api")]


def test_every_error_class_lives_in_geo_errors() -> None:
    strays = [f"{c.__module__}.{c.__name__}" for c in _every_error_class()]
    assert all(name.startswith("geo.errors.") for name in strays), strays


def test_every_error_class_has_the_status_chosen_for_it() -> None:
    classes = {cls.__name__: cls for cls in _every_error_class()}
    assert sorted(classes) == sorted(EXPECTED), "a new error needs its status in EXPECTED"
    for name, cls in classes.items():
        exc = cls.__new__(cls)  # no arguments needed: only the class is looked up
        assert (status_of(exc) or 0) == EXPECTED[name], name


def test_every_error_class_has_its_own_code() -> None:
    codes = [cls.code for cls in _every_error_class() if cls is not CardiomapaError]
    assert "error" not in codes
    assert len(codes) == len(set(codes)), sorted(codes)


def test_the_table_names_only_classes_of_geo_errors() -> None:
    assert all(cls.__module__ == "geo.errors" for cls in ERROR_STATUS)


class _Unlisted(CardiomapaError):
    """An error nobody gave a status."""

    code = "unlisted"


def test_an_error_without_a_status_is_a_logged_500(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    app = create_app(Settings(database_url=f"sqlite:///{tmp_path / 'x.sqlite'}"))

    @app.get("/api/test-unlisted")
    async def unlisted() -> None:
        raise _Unlisted("algo")

    with caplog.at_level(logging.ERROR, logger="api.errors"), TestClient(app) as client:
        response = client.get("/api/test-unlisted")
    assert response.status_code == 500
    assert response.json()["code"] == "internal_error"
    assert "algo" not in response.text  # the message of an unknown error is not shown
    assert any(record.exc_info and record.exc_info[1] for record in caplog.records)


def test_a_listed_error_answers_its_status(tmp_path: Path) -> None:
    app = create_app(Settings(database_url=f"sqlite:///{tmp_path / 'x.sqlite'}"))

    @app.get("/api/test-listed")
    async def listed() -> None:
        raise geo.errors.ReportError("Ese año aún no ha empezado.")

    with TestClient(app) as client:
        response = client.get("/api/test-listed")
    assert response.status_code == 400
    assert response.json() == {
        "code": "invalid_report_request",
        "message": "Ese año aún no ha empezado.",
    }
