"""Faults that once answered 500 or were too lenient (issue 20), on SpatiaLite and PostGIS:
local times the clocks skip or repeat, forms with too many fields, reference days out of range
or given as numbers, 405 answers that left methods out, and coordinates sent as text."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterator
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient
from test_portal import ORIGIN, Portal, field_error
from weeks import BEFORE_SPRING_FORWARD, ORDINARY, TIMEZONE

from api.app import create_app
from api.schemas import ErrorPublic
from api.web import MAX_FORM_FIELDS
from geo.clock import city_instant
from geo.core.layers import Layers
from geo.errors import LocalTimeError
from geo.io.store import Store
from geo.services.tokens import issue_token
from geo.settings import Settings

#: 02:30 on Sunday 29 March 2026 does not exist in Madrid (02:00 CET → 03:00 CEST).
SKIPPED = "2026-03-29T02:30"
#: 02:30 on Sunday 25 October 2026 happens twice (03:00 CEST → 02:00 CET).
REPEATED = "2026-10-25T02:30"
HERE = {"lat": 42.01, "lon": -4.53}
FORM = {**ORIGIN, "Content-Type": "application/x-www-form-urlencoded"}
#: Every route that takes a local time: (path, parameter, who, other query parameters).
TIMED_ROUTES = [
    ("/api/nearest", "at", None, HERE),
    ("/api/defibrillators", "open_at", None, {}),
    ("/api/coverage", "at", "planner", {}),
    ("/api/gaps", "at", "planner", {}),
    ("/api/siting", "at", "planner", {"new": 1, "method": "greedy"}),
    ("/api/outcomes", "at", "planner", {}),
]


class Client:
    def __init__(self, client: TestClient, tokens: dict[str, str]) -> None:
        self.client = client
        self.tokens = tokens

    def get(self, url: str, who: str | None = None, **params: object) -> object:
        headers = {"Authorization": f"Bearer {self.tokens[who]}"} if who else {}
        return self.client.get(url, params=params, headers=headers)


@pytest.fixture
def api(db_url: str, tiny_layers: Layers) -> Iterator[Client]:
    with Store.open(db_url) as store:
        store.load(tiny_layers)
        tokens = {"planner": issue_token(store, role="planner").secret}
    settings = Settings(database_url=db_url, clock_start=ORDINARY, tile_url="")
    with TestClient(create_app(settings)) as client:
        yield Client(client, tokens)


def _error(response: object) -> ErrorPublic:
    return ErrorPublic.model_validate(response.json())  # type: ignore[attr-defined]


# --- local times -------------------------------------------------------------------------------


def test_city_instant_reads_wall_clock_times_and_refuses_the_skipped_hour() -> None:
    madrid = ZoneInfo(TIMEZONE)
    with pytest.raises(LocalTimeError, match="no existe") as caught:
        city_instant(dt.datetime.fromisoformat(SKIPPED), TIMEZONE, field="open_at")
    assert caught.value.field == "open_at" and caught.value.code == "nonexistent_local_time"
    # The repeated hour is its first occurrence, still summer time; an offset picks the second.
    first = city_instant(dt.datetime.fromisoformat(REPEATED), TIMEZONE)
    assert first.utcoffset() == dt.timedelta(hours=2)
    assert first.astimezone(dt.UTC) == dt.datetime(2026, 10, 25, 0, 30, tzinfo=dt.UTC)
    second = city_instant(dt.datetime.fromisoformat(REPEATED + "+01:00"), TIMEZONE)
    assert second.astimezone(dt.UTC) == dt.datetime(2026, 10, 25, 1, 30, tzinfo=dt.UTC)
    # The same instant with an offset is fine: 02:30+01:00 is 03:30 summer time.
    skipped_with_offset = city_instant(dt.datetime.fromisoformat(SKIPPED + "+01:00"), TIMEZONE)
    assert skipped_with_offset == dt.datetime(2026, 3, 29, 3, 30, tzinfo=madrid)
    # Ordinary times are unchanged.
    assert city_instant(dt.datetime(2026, 11, 23, 10), TIMEZONE) == dt.datetime(
        2026, 11, 23, 10, tzinfo=madrid
    )


@pytest.mark.parametrize(("path", "name", "who", "extra"), TIMED_ROUTES)
def test_a_skipped_local_time_is_a_422_on_every_route(
    api: Client, path: str, name: str, who: str | None, extra: dict[str, object]
) -> None:
    response = api.get(path, who, **{**extra, name: SKIPPED})
    assert response.status_code == 422, response.text  # type: ignore[attr-defined]
    error = _error(response)
    assert error.code == "nonexistent_local_time"
    assert "2026-03-29 02:30 no existe en Europe/Madrid" in error.message
    assert error.problems is not None and error.problems[0].field == name


@pytest.mark.parametrize(("path", "name", "who", "extra"), TIMED_ROUTES)
def test_the_repeated_local_hour_is_answered_on_every_route(
    api: Client, path: str, name: str, who: str | None, extra: dict[str, object]
) -> None:
    response = api.get(path, who, **{**extra, name: REPEATED})
    assert response.status_code == 200, response.text  # type: ignore[attr-defined]
    if path == "/api/nearest":  # the instant it answered for: the first 02:30 (summer time)
        assert response.json()["at"] == "2026-10-25T02:30:00+02:00"  # type: ignore[attr-defined]


def test_a_use_reported_in_the_skipped_hour_is_refused_at_its_field(
    db_url: str, tiny_layers: Layers
) -> None:
    with Store.open(db_url) as store:
        store.load(tiny_layers)
    settings = Settings(database_url=db_url, clock_start=ORDINARY, tile_url="")
    with TestClient(create_app(settings)) as client, Store.open(db_url) as store:
        portal = Portal(client, store)
        portal.sign_in("ent-1")
        response = portal.post("/entidades/desfibriladores/dea-1/uso", {"used_at": SKIPPED})
        assert response.status_code == 422
        assert "no existe" in field_error(response.text, "used_at")
        assert store.uses(device_id="dea-1")[1] == 0


def test_the_planners_map_at_a_skipped_hour_is_a_422(db_url: str, tiny_layers: Layers) -> None:
    with Store.open(db_url) as store:
        store.load(tiny_layers)
        token = issue_token(store, role="planner").secret
    # The week of Sunday 28 March 2027, when 02:30 does not exist.
    settings = Settings(database_url=db_url, clock_start=BEFORE_SPRING_FORWARD, tile_url="")
    with TestClient(create_app(settings)) as client:
        signed = client.post("/planificacion/sesion", data={"token": token}, headers=ORIGIN,
                             follow_redirects=False)  # fmt: skip
        assert signed.status_code == 303
        response = client.get("/planificacion", params={"dia": 6, "hora": 2})
        assert response.status_code == 422
        assert response.headers["content-type"].startswith("text/html")
        assert 'role="alert"' in response.text and "no existe" in response.text
        assert 'href="/planificacion"' in response.text
        assert client.get("/planificacion", params={"dia": 6, "hora": 3}).status_code == 200


# --- forms -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path", ["/entidades/sesion", "/entidades/salir", "/gestion/sesion", "/planificacion/sesion"]
)
def test_a_form_with_too_many_fields_is_refused(api: Client, path: str) -> None:
    fields = "&".join(f"campo{i}=x" for i in range(MAX_FORM_FIELDS + 1))
    response = api.client.post(
        path,
        content=fields,
        headers={**ORIGIN, "Content-Type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 413, response.text
    error = _error(response)
    assert error.code == "too_many_fields" and "demasiados campos" in error.message
    # At the limit the form is read (and refused for what it says, not for its size).
    fields = "&".join(f"campo{i}=x" for i in range(MAX_FORM_FIELDS))
    response = api.client.post(path, content=fields, headers=FORM, follow_redirects=False)
    assert response.status_code not in (413, 500)


# --- reference days ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "week_of", ["9999-12-31", "1899-12-31", "3000-01-01", "0", "20260301", "1e3"]
)
def test_opening_hours_refuses_days_out_of_range_or_given_as_numbers(
    api: Client, week_of: str
) -> None:
    response = api.get("/api/opening-hours", text="Mo-Fr 08:00-15:00", week_of=week_of)
    assert response.status_code == 422, response.text  # type: ignore[attr-defined]
    error = _error(response)
    assert error.problems is not None and error.problems[0].field == "week_of"
    assert error.problems[0].code in {"out_of_range", "invalid_date"}


def test_opening_hours_takes_iso_days_within_range(api: Client) -> None:
    for week_of in ("1900-01-01", "2026-11-23", "2999-12-31"):
        response = api.get("/api/opening-hours", text="Mo-Fr 08:00-15:00", week_of=week_of)
        assert response.status_code == 200, (week_of, response.text)  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("path", "who", "params"),
    [
        ("/api/coverage", "planner", {"weekly": True, "week_of": "0"}),
        ("/api/outcomes", "planner", {"week_of": "0"}),
        ("/api/nearest", None, {**HERE, "at": "0"}),
        ("/api/defibrillators", None, {"open_at": "1700000000"}),
    ],
)
def test_numbers_are_not_days_or_instants(
    api: Client, path: str, who: str | None, params: dict[str, object]
) -> None:
    response = api.get(path, who, **params)
    assert response.status_code == 422, response.text  # type: ignore[attr-defined]
    assert _error(response).code == "invalid_date"


# --- 405 ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("PUT", "/api/defibrillators", "GET, POST"),
        ("DELETE", "/api/defibrillators", "GET, POST"),
        ("PUT", "/api/defibrillators/dea-1", "GET, PATCH"),
        ("POST", "/api/nearest", "GET"),
        ("GET", "/api/defibrillators/dea-1/reports", "POST"),
        ("PUT", "/entidades/sesion", "POST"),
        ("POST", "/static/favicon.svg", "GET, HEAD"),
    ],
)
def test_405_lists_every_method_of_the_path(
    api: Client, method: str, path: str, allow: str
) -> None:
    response = api.client.request(method, path)
    assert response.status_code == 405
    assert response.headers["allow"] == allow
    assert _error(response).code == "method_not_allowed"


# --- coordinates as text -----------------------------------------------------------------------


def test_coordinates_sent_as_text_are_refused(db_url: str, tiny_layers: Layers) -> None:
    with Store.open(db_url) as store:
        store.load(tiny_layers)
        entity = issue_token(store, role="entity", entity_id="ent-1").secret
    headers = {"Authorization": f"Bearer {entity}"}
    settings = Settings(database_url=db_url, clock_start=ORDINARY, tile_url="")
    properties = {"name": "DEA Texto", "access": "yes", "opening_hours": "24/7"}
    with TestClient(create_app(settings)) as client:
        for coordinates in (["-4.531", 42.012], [-4.531, "42.012"]):
            body = {
                "type": "Feature",
                "geometry": {"type": "Point", "coordinates": coordinates},
                "properties": properties,
            }
            response = client.post("/api/defibrillators", json=body, headers=headers)
            assert response.status_code == 422, response.text
            assert _error(response).problems[0].field.startswith("geometry.coordinates")  # type: ignore[index,union-attr]
        move = {"geometry": {"type": "Point", "coordinates": ["-4.531", "42.012"]}}
        response = client.patch("/api/defibrillators/dea-1", json=move, headers=headers)
        assert response.status_code == 422
        report = {"kind": "moved", "message": "Está en la otra puerta.", "lat": "42.012",
                  "lon": -4.531}  # fmt: skip
        response = client.post("/api/defibrillators/dea-2/reports", json=report)
        assert response.status_code == 422
        assert _error(response).problems[0].field == "lat"  # type: ignore[index]
        # Numbers, integers included, are still numbers.
        body = {
            "type": "Feature",
            "geometry": {"type": "Point", "coordinates": [-4.531, 42.012]},
            "properties": properties,
        }
        assert client.post("/api/defibrillators", json=body, headers=headers).status_code == 201


def test_a_broken_reference_table_is_the_installation_s_fault_a_503(
    db_url: str, tiny_layers: Layers, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A planner cannot fix the server's reference tables: the answer is a 503 naming the file
    and line (for the operator, who also finds it in the log), never a 400 blaming the request."""
    (tmp_path / "reference").mkdir()
    (tmp_path / "reference" / "dea_density_references.csv").write_text(
        "id,name,scope,devices_per_100k,year,basis,source\nes,España,país,,2024,x,y\n",
        encoding="utf-8",
    )
    with Store.open(db_url) as store:
        store.load(tiny_layers)
        secret = issue_token(store, role="planner").secret
    settings = Settings(database_url=db_url, clock_start=ORDINARY, tile_url="", data_dir=tmp_path)
    with TestClient(create_app(settings)) as client, caplog.at_level(logging.WARNING):
        response = client.get("/api/indicators", headers={"Authorization": f"Bearer {secret}"})
    assert response.status_code == 503
    error = _error(response)
    assert error.code == "invalid_reference_table"
    assert "línea 2, campo devices_per_100k" in error.message
    assert any("invalid_reference_table" in r.getMessage() for r in caplog.records)
