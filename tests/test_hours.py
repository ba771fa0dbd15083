"""GET /api/opening-hours: the hours editor's check, on the project's one opening_hours parser."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from weeks import ORDINARY

from api.app import create_app
from api.routes.hours import OpeningHoursPublic
from api.schemas import ErrorPublic
from geo.settings import Settings

#: A Monday without public holidays in Palencia (2026-03-02 … 2026-03-08).
WEEK = "2026-03-04"


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    # The route reads no data: an empty SpatiaLite file is enough. The clock is pinned to an
    # ordinary week, the one "this week" means without week_of.
    app = create_app(
        Settings(database_url=f"sqlite:///{tmp_path / 'cardiomapa.sqlite'}", clock_start=ORDINARY)
    )
    with TestClient(app) as running:
        yield running


def check(client: TestClient, **params: str) -> OpeningHoursPublic:
    response = client.get("/api/opening-hours", params=params)
    assert response.status_code == 200, response.text
    return OpeningHoursPublic.model_validate(response.json())


def test_valid_hours_are_described_week_by_day(client: TestClient) -> None:
    text = "Mo-Fr 08:00-15:00,16:00-20:00; Sa 10:00-14:00; PH off"
    answer = check(client, text=text, week_of=WEEK)
    assert answer == OpeningHoursPublic(
        text=text,
        valid=True,
        words=("lunes a viernes 08:00–15:00 y 16:00–20:00; sábado 10:00–14:00; domingo cerrado"),
        message=None,
        always_open=False,
    )


def test_a_holiday_in_the_week_is_described(client: TestClient) -> None:
    # 2026-01-06 (Epifanía, a Tuesday) is a national holiday: PH off closes it.
    answer = check(client, text="Mo-Fr 08:00-15:00; PH off", week_of="2026-01-06")
    assert (
        answer.words
        == "lunes 08:00–15:00; martes 6 (festivo): cerrado; miércoles a viernes 08:00–15:00; "
        + ("sábado y domingo cerrado")
    )


def test_always_open(client: TestClient) -> None:
    answer = check(client, text="24/7", week_of=WEEK)
    assert answer.valid and answer.always_open
    assert answer.words == "abierto las 24 horas, todos los días"
    assert answer.message is None


def test_every_day_but_closed_on_holidays_is_not_always_open(client: TestClient) -> None:
    answer = check(client, text="Mo-Su 00:00-24:00; PH off", week_of=WEEK)
    assert answer.valid and not answer.always_open


def test_invalid_hours_say_why_in_spanish(client: TestClient) -> None:
    answer = check(client, text="lunes de 8 a 3", week_of=WEEK)
    assert not answer.valid and not answer.always_open and answer.words is None
    assert answer.message is not None
    assert "'lunes de 8 a 3' no es válido" in answer.message
    assert "Mo-Fr 08:00-15:00" in answer.message  # says what is accepted


@pytest.mark.parametrize("params", [{"text": ""}, {"text": "   "}, {}])
def test_empty_hours_are_not_valid(client: TestClient, params: dict[str, str]) -> None:
    answer = check(client, **params)
    assert not answer.valid and answer.words is None
    assert answer.message is not None and answer.message.startswith("Sin horario")


def test_week_of_defaults_to_this_week(client: TestClient) -> None:
    """Without week_of, the week described is the one the app's clock is in."""
    answer = check(client, text="Mo-Fr 08:00-15:00; Sa 10:00-14:00")
    assert answer.valid
    assert answer == check(
        client, text="Mo-Fr 08:00-15:00; Sa 10:00-14:00", week_of=ORDINARY.date().isoformat()
    )
    assert answer.words == "lunes a viernes 08:00–15:00; sábado 10:00–14:00; domingo cerrado"


@pytest.mark.parametrize(
    "params",
    [
        {"text": "x" * 501},
        {"text": "24/7", "week_of": "mañana"},
        {"text": "24/7", "week_of": "2026-13-01"},
    ],
)
def test_malformed_parameters_are_422(client: TestClient, params: dict[str, str]) -> None:
    response = client.get("/api/opening-hours", params=params)
    assert response.status_code == 422
    assert ErrorPublic.model_validate(response.json()).code


def test_the_route_is_documented(client: TestClient) -> None:
    operation = client.get("/openapi.json").json()["paths"]["/api/opening-hours"]["get"]
    assert {p["name"] for p in operation["parameters"]} == {"text", "week_of"}
