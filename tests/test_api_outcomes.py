"""``GET /api/outcomes``: the lives-saved model over HTTP, on SpatiaLite and on PostGIS.

The tiny fixture (tests/fixtures/tiny) has two 24/7 devices (dea-1, dea-2) and a pharmacy
(dea-3, Mo-Fr 09:30-14:00,17:00-20:30; Sa 10:00-14:00) among 7,800 residents in two CEAS
zones. At the model's own reach (200 m) no resident has a device in reach, so most tests ask for
``radius_m=1000``, where every device serves someone.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from servers import Api, Server

from api.app import create_app
from api.routes import planning
from api.schemas import ErrorPublic
from geo.core import outputs
from geo.core.layers import Layers
from geo.core.outcome_model import HOME_ARRESTS_NOTE
from geo.io.store import Store
from geo.services.analysis import outcomes_analysis
from geo.services.inputs import load_inputs, outcome_parameters
from geo.services.tokens import issue_token
from geo.settings import Settings

WEEK = "2026-11-23"  # a Monday
REACH: dict[str, Any] = {"radius_m": 1000}


@pytest.fixture
def api(db_url: str, tiny_layers: Layers) -> Iterator[Api]:
    with Store.open(db_url) as store:
        store.load(tiny_layers)
        tokens = {
            "admin": issue_token(store, role="admin").secret,
            "planner": issue_token(store, role="planner").secret,
            "ent-1": issue_token(store, role="entity", entity_id="ent-1").secret,
        }
        with TestClient(create_app(Settings(database_url=db_url))) as client:
            yield Api(client, store, tokens)


def get(api: Api, who: str | None = "planner", **params: Any) -> httpx.Response:
    return api.call("GET", "/api/outcomes", who, params=params)


def error(response: httpx.Response) -> ErrorPublic:
    return ErrorPublic.model_validate(response.json())


def by_id(records: list[dict[str, Any]], key: str) -> dict[str, dict[str, Any]]:
    return {record[key]: record for record in records}


def test_only_staff_may_ask(api: Api) -> None:
    assert get(api, None).status_code == 401
    refused = get(api, "ent-1")
    assert refused.status_code == 403 and error(refused).code == "forbidden"
    for who in ("planner", "admin"):
        assert get(api, who, week_of=WEEK).status_code == 200, who


def test_every_planning_route_is_for_planners_and_admins_only(api: Api) -> None:
    paths = sorted(route.path for route in planning.router.routes if isinstance(route, APIRoute))
    assert len(paths) >= 5, paths
    for path in paths:
        assert api.call("GET", path, None).status_code == 401, path
        refused = api.call("GET", path, "ent-1")
        assert refused.status_code == 403 and error(refused).code == "forbidden", path


def test_the_weekly_document_is_the_analysis_document(api: Api, db_url: str) -> None:
    response = get(api, week_of=WEEK, **REACH)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    document = response.json()
    settings = Settings(database_url=db_url)
    with Store.open(db_url) as store:
        inputs = load_inputs(settings, store=store)
    expected = outcomes_analysis(
        inputs, outcome_parameters(settings), mode="weekly",
        at=None, week_of=dt.date(2026, 11, 23), radius_m=1000, detour_factor=1.3,
    ).document  # fmt: skip
    assert document == outputs.plain(expected)
    assert document["mode"] == "weekly" and document["reach_m"] == 1000
    assert document["week_start"].startswith(WEEK)
    assert HOME_ARRESTS_NOTE in document["warnings"]
    assert {p["key"] for p in document["parameters"]} >= {"survival_gain", "share_public"}
    totals = document["totals"]
    assert totals["lives_saved_low"] <= totals["lives_saved"] <= totals["lives_saved_high"]
    assert totals["lives_saved"] > 0 and totals["devices_counted"] == 3
    # The two zones hold every resident: their lives add up to the city's.
    zones = by_id(document["zones"], "zone_id")
    assert set(zones) == {"ceas-oeste", "ceas-este"}
    assert sum(z["lives_saved"] for z in zones.values()) == pytest.approx(
        totals["lives_saved"], abs=1e-5
    )


def test_device_marginals_follow_their_hours(api: Api) -> None:
    devices = by_id(get(api, week_of=WEEK, **REACH).json()["devices"], "device_id")
    pharmacy, always = devices["dea-3"], devices["dea-1"]
    assert pharmacy["marginal_night_lives"] == 0  # closed at night anyway
    assert pharmacy["gain_if_24_7"] > 0  # it would add the hours it is closed
    assert always["gain_if_24_7"] == 0  # already open every hour
    assert always["marginal_night_lives"] > 0
    for device in devices.values():
        for figure in ("lives_saved", "marginal_lives", "marginal_night_lives", "gain_if_24_7"):
            assert device[f"{figure}_low"] <= device[figure] <= device[f"{figure}_high"]


def test_instant_and_always_modes(api: Api) -> None:
    closed = by_id(get(api, at="2026-11-23T15:00", **REACH).json()["devices"], "device_id")
    assert closed["dea-3"]["lives_saved"] == 0  # the pharmacy's lunch break
    document = get(api, at="2026-11-23T10:30", **REACH).json()
    assert document["mode"] == "instant" and document["at"].startswith("2026-11-23T10:30")
    assert by_id(document["devices"], "device_id")["dea-3"]["lives_saved"] > 0
    always = get(api, always=True, week_of=WEEK, **REACH).json()
    assert always["mode"] == "always"
    devices = by_id(always["devices"], "device_id")
    assert devices["dea-3"]["lives_saved"] == 0 and devices["dea-1"]["lives_saved"] > 0
    assert devices["dea-1"]["marginal_night_lives"] is None  # weekly only


def test_geojson_of_zones_and_of_devices(api: Api) -> None:
    zones = get(api, format="geojson", week_of=WEEK, **REACH)
    assert zones.status_code == 200, zones.text
    assert zones.headers["content-type"] == "application/geo+json"
    collection = zones.json()
    assert collection["type"] == "FeatureCollection" and collection["layer"] == "zones"
    assert collection["totals"]["lives_saved"] > 0 and "zones" not in collection
    features = {f["properties"]["id"]: f for f in collection["features"]}
    assert set(features) == {"ceas-oeste", "ceas-este"}
    assert features["ceas-este"]["geometry"]["type"] in {"Polygon", "MultiPolygon"}
    assert features["ceas-este"]["properties"]["lives_saved"] > 0
    devices = get(api, format="geojson", layer="devices", week_of=WEEK, **REACH).json()
    points = {f["properties"]["device_id"]: f for f in devices["features"]}
    assert set(points) == {"dea-1", "dea-2", "dea-3"}
    lon, lat = points["dea-1"]["geometry"]["coordinates"]
    assert lon == pytest.approx(-4.535) and lat == pytest.approx(42.01)  # EPSG:4326
    assert points["dea-3"]["properties"]["gain_if_24_7"] > 0


@pytest.mark.parametrize(
    ("params", "field", "code"),
    [
        ({"at": "2026-11-23T10:30", "always": "true"}, "always", "conflicting_parameters"),
        ({"at": "2026-11-23T10:30", "week_of": WEEK}, "week_of", "conflicting_parameters"),
        ({"layer": "devices"}, "layer", "conflicting_parameters"),
        ({"format": "xml"}, "format", "invalid_choice"),
        ({"format": "geojson", "layer": "gaps"}, "layer", "invalid_choice"),
        ({"radius_m": "5"}, "radius_m", "out_of_range"),
        ({"radius_m": "lejos"}, "radius_m", "invalid_value"),
        ({"at": "mañana"}, "at", "invalid_date"),
        ({"week_of": "9999-12-31"}, "week_of", "out_of_range"),
        ({"detour_factor": "0.5"}, "detour_factor", "out_of_range"),
    ],
)
def test_bad_parameters_are_422_naming_the_field(
    api: Api, params: dict[str, str], field: str, code: str
) -> None:
    response = api.call("GET", "/api/outcomes", "planner", params=params)
    assert response.status_code == 422, response.text
    body = error(response)
    assert body.code == code
    assert body.problems and body.problems[0].field == field


def test_conflicting_parameters_say_what_to_do_in_spanish(api: Api) -> None:
    body = error(get(api, at="2026-11-23T10:30", always="true"))
    assert body.message.startswith("at y always=true no van juntos")
    assert "semana tipo" in body.message


def test_the_route_is_documented(api: Api) -> None:
    schema = api.client.get("/openapi.json").json()
    operation = schema["paths"]["/api/outcomes"]["get"]
    names = {p["name"] for p in operation["parameters"]}
    assert names >= {"at", "always", "week_of", "radius_m", "format", "layer"}
    assert set(operation["responses"]["200"]["content"]) == {
        "application/json",
        "application/geo+json",
    }
    assert operation["security"] == [{"HTTPBearer": []}]


@pytest.fixture
def server(db_url: str, tiny_layers: Layers, tmp_path: Path) -> Iterator[tuple[str, str]]:
    """``cardiomapa serve`` in its own process, and a planner's token."""
    with Store.open(db_url) as store:
        store.load(tiny_layers)
        secret = issue_token(store, role="planner").secret
    running = Server(db_url, tmp_path / "server.log")
    yield running.base, secret
    running.stop()


def test_a_real_server_answers_outcomes(server: tuple[str, str]) -> None:
    base, secret = server
    headers = {"Authorization": f"Bearer {secret}"}
    params: dict[str, Any] = {"format": "geojson", "layer": "devices", "week_of": WEEK, **REACH}
    response = httpx.get(f"{base}/api/outcomes", params=params, headers=headers, timeout=60)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/geo+json"
    assert len(response.json()["features"]) == 3
    refused = httpx.get(
        f"{base}/api/outcomes", params={"at": "2026-11-23T10:30", "always": "true"},
        headers=headers, timeout=60,
    )  # fmt: skip
    assert refused.status_code == 422 and refused.json()["code"] == "conflicting_parameters"


# --- siting by lives ----------------------------------------------------------------------------


def siting(api: Api, **params: Any) -> httpx.Response:
    return api.call("GET", "/api/siting", "planner", params=params)


def test_siting_by_lives_adds_lives_and_says_so(api: Api) -> None:
    common = {"new": 1, "method": "greedy", "candidates": "all", "week_of": WEEK, **REACH}
    residents = siting(api, **common)
    assert residents.status_code == 200, residents.text
    assert residents.json()["objective"] == "residents"  # the default
    response = siting(api, objective="lives", **common)
    assert response.status_code == 200, response.text
    document = response.json()
    assert document["objective"] == "lives" and document["radius_m"] == 1000
    assert document["new_devices"] == 1 and len(document["sites"]) == 1
    before, after = document["before"]["lives_saved"], document["after"]["lives_saved"]
    assert document["lives_gained"] > 0 and after > before
    assert document["sites"][0]["lives_gained"] == pytest.approx(after - before, rel=1e-3)
    assert HOME_ARRESTS_NOTE in document["warnings"]


def test_siting_by_lives_to_a_target(api: Api) -> None:
    document = siting(api, objective="lives", method="greedy", candidates="all",
                      target_lives=0.0, week_of=WEEK, **REACH).json()  # fmt: skip
    assert document["mode"] == "target" and document["new_devices"] == 0  # already there


@pytest.mark.parametrize(
    ("params", "field", "code"),
    [
        ({"objective": "votes"}, "objective", "invalid_choice"),
        ({"objective": "lives", "target_share": "0.5"}, "target_share", "conflicting_parameters"),
        ({"objective": "lives", "senior_weight": "2"}, "senior_weight", "conflicting_parameters"),
        ({"target_lives": "1"}, "target_lives", "conflicting_parameters"),
        ({"objective": "lives", "target_lives": "-1"}, "target_lives", "out_of_range"),
    ],
)
def test_siting_objective_parameters_are_checked(
    api: Api, params: dict[str, str], field: str, code: str
) -> None:
    response = siting(api, **params)
    assert response.status_code == 422, response.text
    body = error(response)
    assert body.code == code and body.problems and body.problems[0].field == field
