"""The device registry over HTTP: who may do what, what is refused and why, and what is kept.

Every test runs on SpatiaLite and on PostGIS (the ``db_url`` fixture), in-process through the
ASGI app with its lifespan; the real-server tests live in test_api.py and
test_api_concurrency.py.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from pyproj import Geod

from api.app import create_app
from api.schemas import (
    DeviceCollection,
    DeviceFeature,
    DeviceSaved,
    ErrorPublic,
    NearestPublic,
    WarningPublic,
)
from geo.clock import FixedClock
from geo.core.layers import Layers
from geo.errors import ConflictError
from geo.io.store import Store
from geo.services.tokens import issue_token
from geo.settings import Settings
from tests.servers import Api

NEW_DEVICE: dict[str, Any] = {
    "type": "Feature",
    "geometry": {"type": "Point", "coordinates": [-4.53, 42.012]},
    "properties": {
        "name": "DEA Asociación de vecinos",
        "access": "yes",
        "opening_hours": "Mo-Fr 09:00-14:00",
        "location_text": "entrada, junto al buzón",
        "check_date": "2026-10-01",
    },
    "emergency": {"cabinet_code": "4711", "key_holder": "Portería"},
}


#: Monday 7 December 2026, 12:00 in Palencia: "today" for the app in these tests (upkeep dates are
#: checked against it), whatever the day they run.
NOON = dt.datetime(2026, 12, 7, 11, 0, tzinfo=dt.UTC)


def pin_clock(client: TestClient, at: dt.datetime = NOON) -> None:
    """Run the app on a fixed clock (what ``app.state.clock`` holds once the app is built with
    one; routes read it through ``api.deps.app_clock`` and ``city_today``)."""
    client.app.state.clock = FixedClock(at)  # type: ignore[attr-defined]


@pytest.fixture
def api(db_url: str, tiny_layers: Layers) -> Iterator[Api]:
    with Store.open(db_url) as store:
        store.load(tiny_layers)
        tokens = {
            "admin": issue_token(store, role="admin").secret,
            "planner": issue_token(store, role="planner").secret,
            "ent-1": issue_token(store, role="entity", entity_id="ent-1").secret,
            "ent-2": issue_token(store, role="entity", entity_id="ent-2").secret,
        }
        revoked = issue_token(store, role="admin")
        store.revoke_token(revoked.record.id, actor="test")
        tokens["revoked"] = revoked.secret
        past = dt.datetime.now(tz=dt.UTC) - dt.timedelta(minutes=1)
        tokens["expired"] = issue_token(store, role="admin", expires_at=past).secret
        tokens["forged"] = tokens["admin"][:-4] + "AAAA"
        tokens["garbage"] = "hola"
        settings = Settings(
            database_url=db_url, report_rate_limit=3, cors_origins=["https://mapa.example.org"]
        )
        with TestClient(create_app(settings)) as client:
            pin_clock(client)
            yield Api(client, store, tokens)


def error(response: httpx.Response) -> ErrorPublic:
    return ErrorPublic.model_validate(response.json())


def register(api: Api, who: str = "ent-1", **changes: Any) -> dict[str, Any]:
    body = {**NEW_DEVICE, "properties": {**NEW_DEVICE["properties"], **changes}}
    response = api.call("POST", "/api/defibrillators", who, json=body)
    assert response.status_code == 201, response.text
    return dict(response.json())


# --- the auth matrix: every write route, every kind of caller ----------------------------------

WRITES: list[tuple[str, str, dict[str, Any] | None]] = [
    ("POST", "/api/defibrillators", NEW_DEVICE),
    ("PATCH", "/api/defibrillators/dea-1", {"properties": {"location_text": "recepción"}}),
    ("POST", "/api/defibrillators/dea-1/uses", {"used_at": "2026-11-01T10:00:00Z"}),
    ("POST", "/api/defibrillators/{pending}/review", {"decision": "verified"}),
    ("POST", "/api/reports/{report}/review", {"decision": "accepted"}),
]
#: Who may (2xx) and who is refused (401 without a valid token, 403 with the wrong one).
EXPECTED = {
    "POST /api/defibrillators": {"admin": 201, "planner": 403, "ent-1": 201, "ent-2": 201},
    "PATCH /api/defibrillators/dea-1": {"admin": 200, "planner": 403, "ent-1": 200, "ent-2": 403},
    "POST /api/defibrillators/dea-1/uses": {
        "admin": 201, "planner": 201, "ent-1": 201, "ent-2": 403,
    },
    "POST /api/defibrillators/{pending}/review": {
        "admin": 200, "planner": 200, "ent-1": 403, "ent-2": 403,
    },
    "POST /api/reports/{report}/review": {
        "admin": 200, "planner": 200, "ent-1": 403, "ent-2": 403,
    },
}  # fmt: skip


@pytest.mark.parametrize(("method", "path", "body"), WRITES, ids=[f"{m} {p}" for m, p, _ in WRITES])
def test_every_write_route_enforces_the_auth_matrix(
    api: Api, method: str, path: str, body: dict[str, Any] | None
) -> None:
    for who in (None, "revoked", "expired", "forged", "garbage"):
        url = _fill(api, path)
        response = api.call(method, url, who, json=body)
        assert response.status_code == 401, (who, response.text)
        assert error(response).code == "unauthenticated"
        assert response.headers["www-authenticate"] == "Bearer"
    for who, status in EXPECTED[f"{method} {path}"].items():
        response = api.call(method, _fill(api, path), who, json=body)
        assert response.status_code == status, (who, response.text)
        if status == 403:
            assert error(response).code == "forbidden"


def _fill(api: Api, path: str) -> str:
    if "{pending}" in path:
        path = path.replace("{pending}", register(api, "ent-2")["id"])
    if "{report}" in path:
        values = {"device_id": "dea-2", "kind": "broken", "message": "no enciende"}
        path = path.replace("{report}", str(api.store.insert_report(values, actor="test")))
    return path


def test_staff_read_routes_need_a_staff_token(api: Api) -> None:
    for url in ("/api/reports", "/api/uses", "/api/audit", "/api/coverage", "/api/gaps"):
        assert api.call("GET", url).status_code == 401, url
        assert api.call("GET", url, "ent-1").status_code == 403, url
        assert api.call("GET", url, "planner").status_code == 200, url


def test_a_dispatch_token_elsewhere_sees_what_the_public_sees(api: Api) -> None:
    """Only an entity's token owns devices: a dispatch token names no entity, and it is not the
    owner of the devices of no entity (dea-2), nor staff. The 112 centre reads the notes in its
    own feed only."""
    dispatch = issue_token(api.store, role="dispatch").secret
    headers = {"Authorization": f"Bearer {dispatch}"}
    before = api.store.device("dea-2")
    assert before is not None and before["operator_entity_id"] is None
    notes = {"cabinet_code": "CAB-dea-2", "key_holder": "LLAVE-dea-2", "notes": "NOTA-dea-2"}
    api.store.update_device(before, before, actor="test", private=notes)
    listed = api.client.get("/api/defibrillators", headers=headers)
    one = api.client.get("/api/defibrillators/dea-2", headers=headers)
    for response in (listed, one):
        assert response.status_code == 200, response.text
        assert not [text for text in notes.values() if text in response.text]
    assert [f["properties"]["emergency"] for f in listed.json()["features"]] == [None] * 3
    assert one.json()["properties"]["emergency"] is None
    staff = api.call("GET", "/api/defibrillators/dea-2", "admin").json()
    assert staff["properties"]["emergency"] == notes  # the notes are there to be seen
    pending = register(api, "admin")["id"]  # of no entity
    assert api.client.get(f"/api/defibrillators/{pending}", headers=headers).status_code == 404
    assert pending not in api.client.get("/api/defibrillators", headers=headers).text
    for url in ("/api/maintenance", "/api/reports", "/api/uses", "/api/audit", "/api/coverage"):
        assert api.client.get(url, headers=headers).status_code == 403, url


def test_a_revoked_token_is_refused_at_once(api: Api) -> None:
    issued = issue_token(api.store, role="entity", entity_id="ent-1")
    headers = {"Authorization": f"Bearer {issued.secret}"}
    assert api.client.get("/api/maintenance", headers=headers).status_code == 200
    api.store.revoke_token(issued.record.id, actor="test")
    response = api.client.get("/api/maintenance", headers=headers)
    assert response.status_code == 401
    assert "revocado" in error(response).message


def test_tokens_are_stored_only_as_hashes(api: Api) -> None:
    for record in api.store.tokens():
        assert len(record.secret_hash) == 64
        assert all(record.secret_hash not in secret for secret in api.tokens.values())
        assert all(secret.split("_")[-1] != record.secret_hash for secret in api.tokens.values())


# --- registration, moderation and visibility --------------------------------------------------


def test_a_registered_device_is_pending_and_hidden_until_verified(api: Api) -> None:
    created = register(api)
    device_id = created["id"]
    assert created["properties"]["verification"] == "pending"
    assert created["properties"]["operator_entity_id"] == "ent-1"
    assert created["properties"]["source"] == "entity-registration"
    assert api.call("GET", f"/api/defibrillators/{device_id}").status_code == 404
    assert api.call("GET", f"/api/defibrillators/{device_id}", "ent-2").status_code == 404
    assert api.call("GET", f"/api/defibrillators/{device_id}", "ent-1").status_code == 200
    public_ids = {f["id"] for f in api.call("GET", "/api/defibrillators").json()["features"]}
    assert device_id not in public_ids
    near = api.call("GET", "/api/nearest", params={"lon": -4.53, "lat": 42.012}).json()
    assert device_id not in {r["id"] for r in near["results"]}

    verified = api.call("POST", f"/api/defibrillators/{device_id}/review", "planner",
                        json={"decision": "verified", "note": "visto in situ"})  # fmt: skip
    assert verified.status_code == 200
    assert api.call("GET", f"/api/defibrillators/{device_id}").status_code == 200
    near = api.call(
        "GET", "/api/nearest", params={"lon": -4.53, "lat": 42.012, "at": "2026-11-23T10:00"}
    ).json()
    assert near["results"][0]["id"] == device_id
    again = api.call("POST", f"/api/defibrillators/{device_id}/review", "admin",
                     json={"decision": "rejected"})  # fmt: skip
    assert again.status_code == 409


def test_emergency_notes_are_never_public(api: Api) -> None:
    device_id = register(api)["id"]
    api.call("POST", f"/api/defibrillators/{device_id}/review", "admin",
             json={"decision": "verified"})  # fmt: skip
    public = api.call("GET", f"/api/defibrillators/{device_id}").json()
    assert public["properties"]["emergency"] is None
    assert "4711" not in api.call("GET", "/api/defibrillators").text
    assert "4711" not in api.call("GET", "/api/downloads/defibrillators.geojson").text
    assert "4711" not in api.call("GET", "/api/downloads/defibrillators.csv").text
    near = api.call("GET", "/api/nearest", params={"lon": -4.53, "lat": 42.012})
    assert "4711" not in near.text and "Portería" not in near.text
    other = api.call("GET", f"/api/defibrillators/{device_id}", "ent-2").json()
    assert other["properties"]["emergency"] is None
    own = api.call("GET", f"/api/defibrillators/{device_id}", "ent-1").json()
    assert own["properties"]["emergency"]["cabinet_code"] == "4711"
    staff = api.call("GET", f"/api/defibrillators/{device_id}", "planner").json()
    assert staff["properties"]["emergency"]["key_holder"] == "Portería"


def test_an_entity_updates_its_device_and_the_audit_log_keeps_before_and_after(api: Api) -> None:
    created = api.call("GET", "/api/defibrillators/dea-1", "ent-1")
    assert created.headers["etag"] == '"1"'
    changes = {
        "properties": {
            "opening_hours": "Mo-Sa 08:00-22:00",
            "pads_expiry": "2027-03-01",
            "battery_expiry": "2028-01-01",
            "check_date": "2026-11-20",
        }
    }
    response = api.call("PATCH", "/api/defibrillators/dea-1", "ent-1", json=changes,
                        headers={"If-Match": '"1"'})  # fmt: skip
    assert response.status_code == 200, response.text
    assert response.headers["etag"] == '"2"'
    updated = DeviceFeature.model_validate(response.json())
    assert updated.properties.opening_hours == "Mo-Sa 08:00-22:00"
    assert updated.properties.pads_expiry == dt.date(2027, 3, 1)
    assert updated.properties.verification == "verified"  # hours are not a reason to re-check
    stale = api.call("PATCH", "/api/defibrillators/dea-1", "ent-1", json=changes,
                     headers={"If-Match": '"1"'})  # fmt: skip
    assert stale.status_code == 412
    assert error(stale).code == "version_mismatch"
    log = api.call("GET", "/api/audit", "planner",
                   params={"record_type": "device", "record_id": "dea-1"}).json()  # fmt: skip
    assert log["numberMatched"] == 1
    entry = log["items"][0]
    assert entry["action"] == "update" and "ent-1" in entry["actor"]
    assert entry["before"]["opening_hours"] == "24/7"
    assert entry["after"]["opening_hours"] == "Mo-Sa 08:00-22:00"
    assert (entry["before"]["version"], entry["after"]["version"]) == (1, 2)


def test_moving_a_verified_device_sends_it_back_to_moderation(api: Api) -> None:
    moved = {"geometry": {"type": "Point", "coordinates": [-4.5351, 42.0101]}}
    response = api.call("PATCH", "/api/defibrillators/dea-1", "ent-1", json=moved)
    assert response.status_code == 200, response.text
    assert response.json()["properties"]["verification"] == "pending"
    assert response.json()["geometry"]["coordinates"] == [-4.5351, 42.0101]


def test_an_entity_cannot_touch_another_entitys_device(api: Api) -> None:
    before = api.store.device("dea-1")
    body = {"properties": {"status": "out_of_service"}}
    assert api.call("PATCH", "/api/defibrillators/dea-1", "ent-2", json=body).status_code == 403
    assert api.call("PATCH", "/api/defibrillators/dea-2", "ent-1", json=body).status_code == 403
    use = {"used_at": "2026-11-01T10:00:00Z"}
    assert api.call("POST", "/api/defibrillators/dea-1/uses", "ent-2", json=use).status_code == 403
    foreign = {**NEW_DEVICE, "operator_entity_id": "ent-2"}
    assert api.call("POST", "/api/defibrillators", "ent-1", json=foreign).status_code == 403
    assert api.store.device("dea-1") == before


def test_unknown_ids_are_404_with_a_spanish_message(api: Api) -> None:
    for method, url, who, body in (
        ("GET", "/api/defibrillators/no-existe", None, None),
        ("PATCH", "/api/defibrillators/no-existe", "admin", {"properties": {"level": "1"}}),
        ("POST", "/api/defibrillators/no-existe/reports", None,
         {"kind": "missing", "message": "x"}),
        ("POST", "/api/defibrillators/no-existe/uses", "admin", {"used_at": "2026-11-01T10:00Z"}),
        ("POST", "/api/reports/999/review", "admin", {"decision": "accepted"}),
        ("GET", "/api/entities/no-existe", None, None),
        ("GET", "/api/ceas/no-existe", None, None),
    ):  # fmt: skip
        response = api.call(method, url, who, json=body)
        assert response.status_code == 404, (url, response.text)
        assert error(response).code == "not_found"
        assert "No existe" in error(response).message


# --- bad input: a precise 4xx, a stable code, and nothing written ------------------------------


BAD_REGISTRATIONS: list[tuple[str, dict[str, Any], int, str, str]] = [
    ("outside", {"geometry": {"type": "Point", "coordinates": [-3.7, 40.4]}}, 422,
     "outside_municipality", "geometry"),
    ("swapped", {"geometry": {"type": "Point", "coordinates": [42.012, -4.53]}}, 422,
     "swapped_coordinates", "geometry"),
    ("hours", {"properties": {"opening_hours": "lunes a viernes"}}, 422,
     "invalid_opening_hours", "properties.opening_hours"),
    ("enum", {"properties": {"access": "everyone"}}, 422, "invalid_choice", "properties.access"),
    ("dates", {"properties": {"installed_on": "2026-05-01", "removed_on": "2025-01-01"}}, 422,
     "dates_out_of_order", "properties.removed_on"),
    ("bad date", {"properties": {"check_date": "01/10/2026"}}, 422, "invalid_date",
     "properties.check_date"),
    ("missing name", {"properties": {"name": None}}, 422, "missing_field", "properties.name"),
    ("unknown field", {"properties": {"colour": "rojo"}}, 422, "unknown_field",
     "properties.colour"),
    ("read-only field", {"properties": {"verification": "verified"}}, 422, "unknown_field",
     "properties.verification"),
    ("not a point", {"geometry": {"type": "Polygon", "coordinates": [-4.53, 42.012]}}, 422,
     "invalid_choice", "geometry.type"),
    ("nul", {"properties": {"name": "DEA\x00"}}, 422, "invalid_value", "properties.name"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("case", "change", "status", "code", "field"), BAD_REGISTRATIONS,
    ids=[case[0] for case in BAD_REGISTRATIONS],
)  # fmt: skip
def test_bad_registrations_are_refused_precisely_and_write_nothing(
    api: Api, case: str, change: dict[str, Any], status: int, code: str, field: str
) -> None:
    body = {**NEW_DEVICE, **{k: v for k, v in change.items() if k != "properties"}}
    properties = {**NEW_DEVICE["properties"], **change.get("properties", {})}
    body["properties"] = {k: v for k, v in properties.items() if v is not None}
    before = api.store.counts()["defibrillators"]
    response = api.call("POST", "/api/defibrillators", "ent-1", json=body)
    assert response.status_code == status, response.text
    problem = error(response)
    assert problem.code == code
    assert problem.problems and problem.problems[0].field == field
    assert api.store.counts()["defibrillators"] == before
    assert api.store.audit_entries(record_type="device")[1] == 0


def test_the_swapped_hint_names_the_expected_order(api: Api) -> None:
    response = api.call("GET", "/api/nearest", params={"lat": -4.53, "lon": 42.012})
    assert response.status_code == 422
    assert error(response).code == "swapped_coordinates"
    assert "[longitud, latitud]" in error(response).message


def test_malformed_json_and_oversized_bodies(api: Api) -> None:
    headers = {"Content-Type": "application/json"}
    broken = api.call("POST", "/api/defibrillators", "ent-1", content=b'{"type": ', headers=headers)
    assert broken.status_code == 422 and error(broken).code == "invalid_json"
    huge = {**NEW_DEVICE, "properties": {**NEW_DEVICE["properties"], "tags": "x" * 70_000}}
    response = api.call("POST", "/api/defibrillators", "ent-1", json=huge)
    assert response.status_code == 413
    assert error(response).code == "payload_too_large"

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted while read
        yield b'{"type": "Feature", "properties": {"name": "'
        for _ in range(100):
            yield b"x" * 1000
        yield b'"}}'

    streamed = api.call("POST", "/api/defibrillators", "ent-1", content=chunks(), headers=headers)
    assert streamed.status_code == 413
    assert api.store.counts()["defibrillators"] == 3


@pytest.mark.parametrize(
    "params",
    [{"bbox": "1,2,3"}, {"bbox": "a,b,c,d"}, {"bbox": "-4.5,42.1,-4.6,42.0"},
     {"bbox": "-4.6,42,-4.5,nan"}, {"limit": "0"}, {"limit": "100000"}, {"offset": "-1"},
     {"limit": "diez"}, {"status": "roto"}, {"open_at": "mañana"}],
)  # fmt: skip
def test_malformed_filters_and_paging_are_422(api: Api, params: dict[str, str]) -> None:
    response = api.call("GET", "/api/defibrillators", params=params)
    assert response.status_code == 422, response.text
    assert error(response).problems


@pytest.mark.parametrize(
    "params",
    [{"lat": "42.01"}, {"lat": "abc", "lon": "-4.53"}, {"lat": "95", "lon": "-4.53"},
     {"lat": "42.01", "lon": "-4.53", "limit": "0"}, {"lat": "40.4", "lon": "-3.7"},
     {"lat": "42.01", "lon": "-4.53", "at": "ayer"}],
)  # fmt: skip
def test_malformed_nearest_queries_are_422(api: Api, params: dict[str, str]) -> None:
    response = api.call("GET", "/api/nearest", params=params)
    assert response.status_code == 422, response.text
    assert error(response).message


# --- citizens ----------------------------------------------------------------------------------


def test_nearest_lists_open_devices_first_then_nearer_closed_ones(api: Api) -> None:
    # Sunday 23:00: dea-2 (here) and dea-1 (customers, 24/7) are open; dea-3 (Mo-Sa hours) not.
    params = {"lon": -4.5288, "lat": 42.0096, "at": "2026-11-22T23:00", "limit": 3}
    answer = NearestPublic.model_validate(api.call("GET", "/api/nearest", params=params).json())
    assert [(r.id, r.state) for r in answer.results] == [
        ("dea-2", "open"), ("dea-1", "open"), ("dea-3", "closed"),
    ]  # fmt: skip
    here, second, closed = answer.results
    assert here.distance_m == 0 and here.always_open and here.closes_at is None
    _, _, metres = Geod(ellps="GRS80").inv(-4.5288, 42.0096, -4.535, 42.01)
    assert second.distance_m == pytest.approx(1.3 * metres, rel=0.005)
    assert second.walk_min == pytest.approx(second.distance_m / 75, abs=0.05)
    assert closed.opens_at == dt.datetime(2026, 11, 23, 9, 30, tzinfo=closed.opens_at.tzinfo)
    assert closed.opens_at.utcoffset() == dt.timedelta(hours=1)
    assert "route=42.009600%2C-4.528800%3B42.015000%2C-4.518000" in closed.directions_url
    # With two wanted, the closed one lies beyond the second open one: not listed.
    params["limit"] = 2
    answer = NearestPublic.model_validate(api.call("GET", "/api/nearest", params=params).json())
    assert [r.id for r in answer.results] == ["dea-2", "dea-1"]
    # Monday 10:00 all three are open, nearest first.
    params |= {"at": "2026-11-23T10:00", "limit": 3}
    answer = NearestPublic.model_validate(api.call("GET", "/api/nearest", params=params).json())
    assert [(r.id, r.state) for r in answer.results] == [
        ("dea-2", "open"), ("dea-1", "open"), ("dea-3", "open"),
    ]  # fmt: skip
    assert answer.results[2].closes_at == dt.datetime(
        2026, 11, 23, 14, 0, tzinfo=dt.timezone(dt.timedelta(hours=1))
    )


def test_nearest_flags_a_restricted_device_and_sees_updates_at_once(api: Api) -> None:
    params = {"lon": -4.5288, "lat": 42.0096, "at": "2026-11-23T10:00", "limit": 1}
    assert api.call("GET", "/api/nearest", params=params).json()["results"][0]["id"] == "dea-2"
    api.call(
        "PATCH", "/api/defibrillators/dea-2", "admin", json={"properties": {"access": "private"}}
    )
    results = api.call("GET", "/api/nearest", params=params).json()["results"]
    assert [(r["id"], r["state"]) for r in results] == [("dea-1", "open"), ("dea-2", "restricted")]
    assert results[1]["state_text"].startswith("Acceso restringido")


def test_listing_filters_by_bbox_status_and_opening_and_pages(api: Api) -> None:
    listing = api.call("GET", "/api/defibrillators", params={"limit": 2})
    assert listing.headers["content-type"] == "application/geo+json"
    page = DeviceCollection.model_validate(listing.json())
    assert (page.numberMatched, page.numberReturned) == (3, 2)
    assert [link.rel for link in page.links] == ["self", "next"]
    assert "synthetic" in page.notice
    second = api.client.get(next(link.href for link in page.links if link.rel == "next")).json()
    assert [f["id"] for f in second["features"]] == ["dea-3"]
    box = api.call("GET", "/api/defibrillators", params={"bbox": "-4.54,42.0,-4.525,42.012"})
    assert [f["id"] for f in box.json()["features"]] == ["dea-1", "dea-2"]
    sunday = api.call("GET", "/api/defibrillators", params={"open_at": "2026-11-22T23:00"})
    assert [f["id"] for f in sunday.json()["features"]] == ["dea-1", "dea-2"]
    removed = api.call("GET", "/api/defibrillators", params={"status": "removed"})
    assert removed.json()["numberMatched"] == 0
    zones = api.call("GET", "/api/ceas").json()
    assert (
        zones["numberMatched"] == 2 and zones["features"][0]["geometry"]["type"] == "MultiPolygon"
    )


def test_downloads_state_source_and_licence(api: Api) -> None:
    geojson = api.call("GET", "/api/downloads/defibrillators.geojson")
    assert geojson.headers["content-type"] == "application/geo+json"
    assert "attachment" in geojson.headers["content-disposition"]
    document = geojson.json()
    assert len(document["features"]) == 3
    assert document["licence_by_source"]["synthetic"].startswith("CC0-1.0")
    assert {f["properties"]["source"] for f in document["features"]} == {"synthetic"}
    csv = api.call("GET", "/api/downloads/defibrillators.csv")
    assert csv.headers["content-type"].startswith("text/csv")
    header, *rows = csv.text.strip().splitlines()
    assert {"source", "licence", "lon", "lat"} <= set(header.split(","))
    assert len(rows) == 3 and rows[0].startswith("dea-1,")


def test_reports_go_to_moderation_and_never_edit_the_device(api: Api) -> None:
    before = api.store.device("dea-2")
    body = {"kind": "moved", "message": "Ahora está en la otra puerta", "lon": -4.5289,
            "lat": 42.0097, "contact": "vecina@example.org"}  # fmt: skip
    receipt = api.call("POST", "/api/defibrillators/dea-2/reports", json=body)
    assert receipt.status_code == 202 and receipt.json()["status"] == "pending"
    assert api.store.device("dea-2") == before
    queue = api.call("GET", "/api/reports", "planner", params={"status": "pending"}).json()
    assert queue["numberMatched"] == 1 and queue["items"][0]["kind"] == "moved"
    report_id = queue["items"][0]["id"]
    reviewed = api.call("POST", f"/api/reports/{report_id}/review", "planner",
                        json={"decision": "accepted", "note": "revisado"})  # fmt: skip
    assert reviewed.status_code == 200 and reviewed.json()["status"] == "accepted"
    twice = api.call("POST", f"/api/reports/{report_id}/review", "admin",
                     json={"decision": "rejected"})  # fmt: skip
    assert twice.status_code == 409
    outside = api.call("POST", "/api/defibrillators/dea-2/reports",
                       json={**body, "lon": -3.7, "lat": 40.4})  # fmt: skip
    assert outside.status_code == 422 and error(outside).code == "outside_municipality"
    half = api.call("POST", "/api/defibrillators/dea-2/reports", json={**body, "lat": None})
    assert half.status_code == 422


def test_public_reports_are_rate_limited(api: Api) -> None:
    body = {"kind": "broken", "message": "no tiene luz"}
    statuses = [
        api.call("POST", "/api/defibrillators/dea-3/reports", json=body).status_code
        for _ in range(4)
    ]
    assert statuses == [202, 202, 202, 429]
    limited = api.call("POST", "/api/defibrillators/dea-3/reports", json=body)
    assert error(limited).code == "rate_limited"
    assert int(limited.headers["retry-after"]) > 0
    assert api.store.reports()[1] == 3


def test_uses_are_recorded_as_the_regional_communication_asks(api: Api) -> None:
    use = {"used_at": "2026-11-20T18:30:00+01:00", "people_attended": 1, "emergency_called": True,
           "shock_delivered": True, "shocks": 2, "circulation_recovered": True,
           "transferred_to_hospital": True, "rescuer_trained": True, "patient_sex": "female",
           "patient_age_years": 67}  # fmt: skip
    response = api.call("POST", "/api/defibrillators/dea-1/uses", "ent-1", json=use)
    assert response.status_code == 201, response.text
    listed = api.call("GET", "/api/uses", "planner").json()
    assert listed["numberMatched"] == 1
    stored = listed["items"][0]
    assert stored["shocks"] == 2 and stored["used_at"].startswith("2026-11-20T17:30")
    future = {**use, "used_at": "2099-01-01T00:00:00Z"}
    refused = api.call("POST", "/api/defibrillators/dea-1/uses", "ent-1", json=future)
    assert refused.status_code == 422 and error(refused).code == "date_in_future"
    contradiction = {**use, "shock_delivered": False}
    refused = api.call("POST", "/api/defibrillators/dea-1/uses", "ent-1", json=contradiction)
    assert refused.status_code == 422 and error(refused).code == "inconsistent_values"
    age = {**use, "patient_age_years": 130}
    assert api.call("POST", "/api/defibrillators/dea-1/uses", "ent-1", json=age).status_code == 422
    assert api.store.uses()[1] == 1


def test_maintenance_lists_expiring_and_unchecked_devices(api: Api) -> None:
    api.call(
        "PATCH",
        "/api/defibrillators/dea-1",
        "admin",
        json={"properties": {"battery_expiry": "2026-12-10", "check_date": "2026-11-01"}},
    )
    api.call(
        "PATCH",
        "/api/defibrillators/dea-2",
        "admin",
        json={"properties": {"check_date": "2026-01-15", "pads_expiry": "2027-06-01"}},
    )
    api.call("PATCH", "/api/defibrillators/dea-3", "admin",
             json={"properties": {"check_date": "2026-11-01"}})  # fmt: skip
    params = {"today": "2026-11-22", "within_days": 30}
    due = api.call("GET", "/api/maintenance", "planner", params=params).json()
    assert [(i["id"], i["reasons"], i["days_left"]) for i in due["items"]] == [
        ("dea-1", ["battery_expiry"], 18), ("dea-2", ["unchecked"], None),
    ]  # fmt: skip
    own = api.call("GET", "/api/maintenance", "ent-1", params=params).json()
    assert [i["id"] for i in own["items"]] == ["dea-1"]


# --- upkeep dates: against the city's date by the app's clock ----------------------------------


def written(api: Api) -> tuple[int, int, int]:
    """Devices, uses and audit entries stored: what a refused request must leave as it was."""
    return (
        api.store.counts()["defibrillators"],
        api.store.uses()[1],
        api.store.audit_entries()[1],
    )


def test_a_future_check_date_is_a_422_naming_the_field_and_nothing_is_written(api: Api) -> None:
    before, device = written(api), api.store.device("dea-1")
    body = {**NEW_DEVICE, "properties": {**NEW_DEVICE["properties"], "check_date": "2027-01-15"}}
    response = api.call("POST", "/api/defibrillators", "ent-1", json=body)
    assert response.status_code == 422, response.text
    answer = error(response)
    assert answer.code == "date_in_future"
    assert answer.problems and answer.problems[0].field == "properties.check_date"
    message = answer.problems[0].message
    assert "15/01/2027 (2027-01-15)" in message and "hoy es 07/12/2026 en Palencia" in message
    patch = {"properties": {"check_date": "2027-01-15"}}
    response = api.call("PATCH", "/api/defibrillators/dea-1", "ent-1", json=patch)
    assert response.status_code == 422, response.text
    assert error(response).problems[0].field == "properties.check_date"  # type: ignore[index]
    assert written(api) == before and api.store.device("dea-1") == device
    # "today" is the city's date: at 23:30 UTC on the 7th it is already the 8th in Palencia
    pin_clock(api.client, dt.datetime(2026, 12, 7, 23, 30, tzinfo=dt.UTC))
    patch = {"properties": {"check_date": "2026-12-08"}}
    assert api.call("PATCH", "/api/defibrillators/dea-1", "ent-1", json=patch).status_code == 200


def test_a_check_before_installation_is_refused_at_its_field(api: Api) -> None:
    before = written(api)
    changes = {"installed_on": "2026-05-01", "check_date": "2026-04-30"}
    body = {**NEW_DEVICE, "properties": {**NEW_DEVICE["properties"], **changes}}
    response = api.call("POST", "/api/defibrillators", "ent-1", json=body)
    assert response.status_code == 422
    answer = error(response)
    assert answer.code == "dates_out_of_order"
    assert answer.problems and answer.problems[0].field == "properties.check_date"
    assert "anterior a la instalación, el 01/05/2026" in answer.problems[0].message
    # dea-3 was installed on 15 June 2025
    patch = {"properties": {"check_date": "2025-06-14"}}
    response = api.call("PATCH", "/api/defibrillators/dea-3", "admin", json=patch)
    assert response.status_code == 422 and error(response).code == "dates_out_of_order"
    assert written(api) == before


EXPIRED_PADS = WarningPublic(
    field="properties.pads_expiry",
    code="expired",
    message="Los parches caducaron el 06/12/2026: el desfibrilador aparece como mantenimiento "
    "vencido hasta que los cambie.",
)


def test_a_past_expiry_is_saved_with_a_warning(api: Api) -> None:
    saved = DeviceSaved.model_validate(register(api, pads_expiry="2026-12-06"))
    assert saved.warnings == [EXPIRED_PADS]
    assert saved.properties.pads_expiry == dt.date(2026, 12, 6)
    url = f"/api/defibrillators/{saved.id}"
    # every write says so while it lasts, and stops once new pads are entered
    changed = api.call("PATCH", url, "ent-1", json={"properties": {"phone": "979 000 000"}})
    assert DeviceSaved.model_validate(changed.json()).warnings == [EXPIRED_PADS]
    new_pads = {"properties": {"pads_expiry": "2028-06-30", "battery_expiry": "2026-01-31"}}
    changed = api.call("PATCH", url, "ent-1", json=new_pads)
    (battery,) = DeviceSaved.model_validate(changed.json()).warnings
    assert (battery.field, battery.code) == ("properties.battery_expiry", "expired")
    assert battery.message.startswith("La batería caducó el 31/01/2026")
    assert "warnings" not in api.call("GET", url, "ent-1").json()  # a read is a plain Feature
    # documented in the response model
    schema = api.call("GET", "/openapi.json").json()
    post = schema["paths"]["/api/defibrillators"]["post"]["responses"]["201"]["content"]
    assert post["application/geo+json"]["schema"]["$ref"].endswith("/DeviceSaved")
    assert "warnings" in schema["components"]["schemas"]["DeviceSaved"]["properties"]


def test_a_use_with_new_pads_updates_the_expiry_with_the_use(api: Api) -> None:
    before = api.store.device("dea-1")
    assert before is not None
    use = {"used_at": "2026-12-05T18:30:00+01:00", "pads_replaced": True,
           "pads_expiry": "2029-03-31"}  # fmt: skip
    response = api.call("POST", "/api/defibrillators/dea-1/uses", "ent-1", json=use)
    assert response.status_code == 201, response.text
    after = api.store.device("dea-1")
    assert after is not None
    assert after["pads_expiry"] == dt.date(2029, 3, 31)
    assert after["version"] == before["version"] + 1
    (stored_use,), _ = api.store.uses()
    entries, _ = api.store.audit_entries(record_type="device", record_id="dea-1")
    assert entries[0]["action"] == "update" and entries[0]["actor"] == stored_use["reported_by"]
    assert entries[0]["before"]["pads_expiry"] == "2027-01-01"
    assert entries[0]["after"]["pads_expiry"] == "2029-03-31"
    assert entries[0]["after"]["use_id"] == response.json()["id"]
    # a use without new pads leaves the device alone
    plain = {"used_at": "2026-12-06T10:00:00Z", "pads_replaced": False}
    assert (
        api.call("POST", "/api/defibrillators/dea-1/uses", "ent-1", json=plain).status_code == 201
    )
    assert api.store.device("dea-1")["version"] == after["version"]  # type: ignore[index]


BAD_PADS: list[tuple[str, dict[str, Any], str]] = [
    ("no expiry", {"pads_replaced": True}, "missing_field"),
    ("already past", {"pads_replaced": True, "pads_expiry": "2026-12-06"}, "date_in_past"),
    ("not after the use", {"used_at": "2026-12-07T10:00:00+01:00", "pads_replaced": True,
                           "pads_expiry": "2026-12-07"}, "dates_out_of_order"),
    ("expiry without new pads", {"pads_expiry": "2029-03-31"}, "inconsistent_values"),
    ("expiry with no new pads", {"pads_replaced": False, "pads_expiry": "2029-03-31"},
     "inconsistent_values"),
]  # fmt: skip


@pytest.mark.parametrize(("case", "change", "code"), BAD_PADS, ids=[case[0] for case in BAD_PADS])
def test_a_use_with_bad_new_pads_writes_nothing(
    api: Api, case: str, change: dict[str, Any], code: str
) -> None:
    before, device = written(api), api.store.device("dea-1")
    use = {"used_at": "2026-12-05T18:30:00+01:00", **change}
    response = api.call("POST", "/api/defibrillators/dea-1/uses", "ent-1", json=use)
    assert response.status_code == 422, response.text
    answer = error(response)
    assert answer.code == code
    assert answer.problems and answer.problems[0].field == "pads_expiry"
    assert written(api) == before and api.store.device("dea-1") == device


def test_a_use_whose_device_change_fails_is_not_written_either(api: Api) -> None:
    """The use and the new pads are one transaction: a stale device version undoes both."""
    read = api.store.device("dea-1")
    assert read is not None
    api.store.update_device(read, {**read, "phone": "979 111 111"}, actor="otra persona")
    before = written(api)
    use = {"device_id": "dea-1", "used_at": dt.datetime(2026, 12, 5, 17, 30), "people_attended": 1}
    with pytest.raises(ConflictError):
        api.store.insert_use(
            use, actor="prueba", device_change=(read, {**read, "pads_expiry": dt.date(2029, 3, 31)})
        )
    assert written(api) == before
    assert api.store.device("dea-1")["pads_expiry"] == dt.date(2027, 1, 1)  # type: ignore[index]


# --- analysis: the CLI's answers over HTTP ------------------------------------------------------


def test_analysis_routes_answer_like_the_cli(api: Api) -> None:
    coverage = api.call("GET", "/api/coverage", "planner", params={"radius_m": 100}).json()
    assert coverage["mode"] == "always" and coverage["radius_m"] == 100
    assert {"residents", "residents_covered", "zones"} <= set(coverage)
    weekly = api.call("GET", "/api/coverage", "planner",
                      params={"weekly": True, "week_of": "2026-11-23"}).json()  # fmt: skip
    assert len(weekly["slices"]) == 168
    gaps = api.call("GET", "/api/gaps", "planner", params={"radius_m": 100}).json()
    assert gaps["residents_uncovered"] == coverage["residents"] - coverage["residents_covered"]
    siting = api.call("GET", "/api/siting", "admin",
                      params={"new": 1, "method": "greedy", "candidates": "all"})  # fmt: skip
    assert siting.status_code == 200, siting.text
    assert siting.json()["new_devices"] == 1
    refused = api.call("GET", "/api/siting", "admin", params={"candidates": "/etc/passwd"})
    assert refused.status_code == 422


# --- the edges: CORS, headers, unknown routes -----------------------------------------------


def test_cors_only_for_configured_origins(api: Api) -> None:
    allowed = api.client.options("/api/defibrillators", headers={
        "Origin": "https://mapa.example.org", "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "Authorization",
    })  # fmt: skip
    assert allowed.headers["access-control-allow-origin"] == "https://mapa.example.org"
    other = api.client.get("/api/defibrillators", headers={"Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in other.headers


def test_security_headers_and_json_errors_everywhere(api: Api) -> None:
    response = api.client.get("/api/defibrillators")
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["x-frame-options"] == "DENY"
    missing = api.client.get("/api/no-such-thing")
    assert missing.status_code == 404 and error(missing).code == "not_found"
    wrong = api.client.delete("/api/defibrillators/dea-1")
    assert wrong.status_code == 405 and error(wrong).code == "method_not_allowed"


def test_html_pages_get_a_content_security_policy(tmp_path: Any) -> None:
    from fastapi.responses import HTMLResponse

    app = create_app(Settings(database_url=f"sqlite:///{tmp_path / 'x.sqlite'}"))

    @app.get("/pagina", response_class=HTMLResponse)
    def page() -> str:
        return "<!doctype html><title>mapa</title>"

    with TestClient(app) as client:
        html = client.get("/pagina")
        json_answer = client.get("/api/health")
    assert "default-src 'self'" in html.headers["content-security-policy"]
    assert html.headers["x-frame-options"] == "DENY"
    assert "content-security-policy" not in json_answer.headers


def test_an_admin_registering_for_an_unknown_entity_is_told_so(api: Api) -> None:
    body = {**NEW_DEVICE, "operator_entity_id": "ent-99"}
    response = api.call("POST", "/api/defibrillators", "admin", json=body)
    assert response.status_code == 422
    assert error(response).code == "unknown_entity"
    ok = api.call(
        "POST", "/api/defibrillators", "admin", json={**body, "operator_entity_id": "ent-2"}
    )
    assert ok.status_code == 201 and ok.json()["properties"]["operator_entity_id"] == "ent-2"
