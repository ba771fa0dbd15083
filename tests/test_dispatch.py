"""The 112 dispatch centre's feed (``/api/dispatch/defibrillators.geojson``), on SpatiaLite and
PostGIS: who may read it, what it says (the states of ``/api/nearest``, the usable spans of the
next 24 hours, the emergency-only notes), its conditional GET across edits and across worker
processes, and that those notes appear nowhere else.

The app's clock is pinned (``app.state.clock``, a :class:`FixedClock`) to known weeks of
``tests/weeks.py``: no answer depends on the day the tests run.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import http.client
import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
import sqlalchemy as sa
from fastapi.routing import iter_route_contexts
from fastapi.testclient import TestClient

from api.app import PUBLIC_LAYERS, create_app
from api.schemas import DispatchCollection, ErrorPublic, NearestPublic
from geo.city import CityProfile
from geo.clock import FixedClock
from geo.core.layers import Layers
from geo.io.export import PUBLISHED_LAYERS, ExportFormat, export_bytes
from geo.io.store import Store
from geo.services.inputs import device_finder
from geo.services.tokens import issue_token
from geo.settings import Settings
from tests.servers import Api, Server
from tests.test_portal import FORM, Portal, _version
from tests.weeks import (
    BEFORE_FALL_BACK,
    HOLIDAY,
    ORDINARY,
    TIMEZONE,
    clock_at,
    clock_env,
)

FEED = "/api/dispatch/defibrillators.geojson"
ZONE = ZoneInfo(TIMEZONE)
#: Monday 23 November 2026, 10:00 in Palencia.
AT = ORDINARY.replace(tzinfo=ZONE)
#: dea-1's notes (its entity, ent-1, wrote them).
DEA_1_NOTES = {"cabinet_code": "4711", "key_holder": "Conserjería", "notes": "Llamar al timbre"}


def pin(client: TestClient, at: dt.datetime) -> None:
    """Run the app on a fixed clock (routes read ``app.state.clock``)."""
    client.app.state.clock = FixedClock(at)  # type: ignore[attr-defined]


@pytest.fixture
def api(db_url: str, tiny_layers: Layers) -> Iterator[Api]:
    """The tiny layers; dea-1 with emergency notes; a token for each kind of caller."""
    with Store.open(db_url, clock=clock_at(ORDINARY)) as store:
        store.load(tiny_layers)
        before = store.device("dea-1")
        assert before is not None
        store.update_device(before, before, actor="test", private=DEA_1_NOTES)
        tokens = {
            role: issue_token(store, role=role, label=f"prueba {role}").secret
            for role in ("dispatch", "admin", "planner")
        }
        tokens["ent-1"] = issue_token(store, role="entity", entity_id="ent-1").secret
        settings = Settings(database_url=db_url, clock_start=ORDINARY, tile_url="")
        with TestClient(create_app(settings)) as client:
            pin(client, AT)
            yield Api(client, store, tokens)


def feed(api: Api, who: str | None = "dispatch", **headers: str) -> httpx.Response:
    return api.call("GET", FEED, who, headers=headers)


def features(response: httpx.Response) -> dict[str, dict[str, Any]]:
    """The feed's features by id, after checking the body against the documented model."""
    assert response.status_code == 200, response.text
    DispatchCollection.model_validate(response.json())
    return {feature["id"]: feature for feature in response.json()["features"]}


# --- who may read it -------------------------------------------------------------------------


def test_only_the_dispatch_centre_and_administrators_read_the_feed(api: Api) -> None:
    api.tokens["forged"] = api.tokens["dispatch"][:-4] + "AAAA"
    api.tokens["garbage"] = "hola"
    for who in (None, "forged", "garbage"):
        response = feed(api, who)
        assert response.status_code == 401, (who, response.text)
        assert ErrorPublic.model_validate(response.json()).code == "unauthenticated"
        assert response.headers["www-authenticate"] == "Bearer"
        assert "4711" not in response.text
    for who in ("ent-1", "planner"):
        response = feed(api, who)
        assert response.status_code == 403, (who, response.text)
        assert ErrorPublic.model_validate(response.json()).code == "forbidden"
        assert "4711" not in response.text
    for who in ("dispatch", "admin"):
        response = feed(api, who)
        assert response.status_code == 200, (who, response.text)
        assert response.headers["content-type"] == "application/geo+json"
        assert response.headers["cache-control"] == "private, no-cache"
        assert features(response)["dea-1"]["properties"]["emergency"] == DEA_1_NOTES


def test_failed_credentials_on_the_feed_are_throttled(db_url: str, tiny_layers: Layers) -> None:
    """PrincipalDep counts a wrong token against the client's address, as on every route."""
    with Store.open(db_url) as store:
        store.load(tiny_layers)
        secret = issue_token(store, role="dispatch").secret
    settings = Settings(database_url=db_url, auth_failure_limit=3)
    with TestClient(create_app(settings)) as client:
        wrong = {"Authorization": f"Bearer {secret[:-4]}AAAA"}
        assert [client.get(FEED, headers=wrong).status_code for _ in range(3)] == [401] * 3
        refused = client.get(FEED, headers={"Authorization": f"Bearer {secret}"})
        assert refused.status_code == 429 and "retry-after" in refused.headers


def test_a_dispatch_token_opens_no_page_and_says_why(api: Api) -> None:
    origin = {"Origin": "http://testserver"}
    for url in ("/entidades/sesion", "/gestion/sesion", "/planificacion/sesion"):
        response = api.client.post(
            url, data={"token": api.tokens["dispatch"]}, headers=origin, follow_redirects=False
        )
        assert response.status_code == 403, url
        assert "set-cookie" not in response.headers, url
        if url == "/planificacion/sesion":
            assert "Su token (dispatch) no da acceso" in response.text
        else:  # not "a staff token" (portal) nor "an entity's token" (desk)
            assert "centro coordinador de emergencias 112" in response.text, url


def test_the_openapi_document_says_the_feed_is_for_the_112_centre_only(api: Api) -> None:
    document = api.client.get("/openapi.json").json()
    operation = document["paths"][FEED]["get"]
    assert operation["summary"].startswith("Centro coordinador 112")
    assert "Solo para el centro coordinador de emergencias 112" in operation["description"]
    assert operation["security"] == [{"HTTPBearer": []}]
    content = operation["responses"]["200"]["content"]
    assert content == {
        "application/geo+json": {"schema": {"$ref": "#/components/schemas/DispatchCollection"}}
    }
    assert {"304", "401", "403", "429"} <= set(operation["responses"])
    assert [p["name"] for p in operation["parameters"]] == ["if-none-match"]
    properties = document["components"]["schemas"]["DispatchProperties"]["properties"]
    assert {"open_next_24h", "emergency", "next_change", "state"} <= set(properties)


# --- what it says ----------------------------------------------------------------------------

#: Instants the states are compared at: all open (Monday 10:00); the pharmacy closed at lunch
#: (15:00, it opens at 17:00); a national holiday; the evening before the clocks go back; after
#: the pads of dea-1 and dea-3 expired (1 January 2027).
INSTANTS = {
    "ordinary": AT,
    "lunch": AT.replace(hour=15),
    "holiday": HOLIDAY.replace(tzinfo=ZONE),
    "fall-back": BEFORE_FALL_BACK.replace(tzinfo=ZONE),
    "pads-expired": dt.datetime(2027, 1, 5, 10, 0, tzinfo=ZONE),
}


@pytest.mark.parametrize("at", INSTANTS.values(), ids=INSTANTS.keys())
def test_the_feed_says_what_nearest_says_and_when_each_device_can_be_used(
    api: Api, city: CityProfile, at: dt.datetime
) -> None:
    reported = api.client.post(
        "/api/defibrillators/dea-2/reports", json={"kind": "missing", "message": "No está"}
    )
    assert reported.status_code == 202, reported.text
    pin(api.client, at)
    response = feed(api)
    found = features(response)
    document = response.json()
    assert document["generated_at"] == at.isoformat()
    assert (document["city"], document["timezone"]) == ("Palencia", TIMEZONE)
    finder = device_finder(api.store, city)
    assert list(found) == [fields["id"] for fields in finder.fields] == ["dea-1", "dea-2", "dea-3"]
    start = at.astimezone(dt.UTC)  # 24 real hours, whatever the clocks do
    spans = finder.usable_spans(start, start + dt.timedelta(hours=24))
    states = finder.states(start)
    for (device_id, feature), usable, state in zip(found.items(), spans, states, strict=True):
        properties = feature["properties"]
        assert properties["open_next_24h"] == [[a.isoformat(), b.isoformat()] for a, b in usable]
        change = state.next_change
        assert properties["next_change"] == (change.isoformat() if change else None), device_id
        lon, lat = feature["geometry"]["coordinates"]
        answer = api.client.get(
            "/api/nearest", params={"lat": lat, "lon": lon, "at": at.isoformat(), "limit": 10}
        )
        assert answer.status_code == 200, answer.text
        results = NearestPublic.model_validate(answer.json()).results
        (nearby,) = [device for device in results if device.id == device_id]
        for name in ("state", "state_text", "available", "maintenance", "notice", "name"):
            assert properties[name] == getattr(nearby, name), (device_id, name)
        # /api/nearest says when a closed device opens and an open one closes.
        if nearby.state in ("open", "closed"):
            assert change == (nearby.opens_at or nearby.closes_at), device_id
        assert (properties["phone"], properties["access"]) == (nearby.phone, nearby.access)
    assert found["dea-2"]["properties"]["state"] == "reported"
    assert found["dea-2"]["properties"]["open_next_24h"] == []
    assert found["dea-1"]["properties"]["emergency"] == DEA_1_NOTES
    assert found["dea-3"]["properties"]["emergency"] == dict.fromkeys(DEA_1_NOTES)


def test_the_24_hours_are_real_hours_across_a_change_of_time(api: Api) -> None:
    """From 20:00 CEST on the Saturday the clocks go back, 24 hours end at 19:00 CET."""
    pin(api.client, BEFORE_FALL_BACK.replace(tzinfo=ZONE))
    always = features(feed(api))["dea-1"]["properties"]  # 24/7
    assert always["open_next_24h"] == [["2026-10-24T20:00:00+02:00", "2026-10-25T19:00:00+01:00"]]
    assert always["state_text"] == "Disponible ahora (24 h)" and always["next_change"] is None


def test_the_lunch_break_and_the_next_opening_are_in_local_time(api: Api) -> None:
    pin(api.client, AT.replace(hour=15))
    pharmacy = features(feed(api))["dea-3"]["properties"]
    assert (pharmacy["state"], pharmacy["available"]) == ("closed", False)
    assert pharmacy["next_change"] == "2026-11-23T17:00:00+01:00"
    # Until Tuesday 15:00: this evening, and Tuesday morning (it reopens at 17:00).
    assert pharmacy["open_next_24h"] == [
        ["2026-11-23T17:00:00+01:00", "2026-11-23T20:30:00+01:00"],
        ["2026-11-24T09:30:00+01:00", "2026-11-24T14:00:00+01:00"],
    ]


# --- conditional GET and the render cache ----------------------------------------------------


def test_if_none_match_gives_304_until_a_cabinet_code_changes(api: Api) -> None:
    first = feed(api)
    etag = first.headers["etag"]
    assert etag == f'"{hashlib.sha256(first.content).hexdigest()}"'  # strong: the bytes' hash
    for sent in (etag, f'"otro", {etag}', f"W/{etag}", "*"):
        again = feed(api, **{"If-None-Match": sent})
        assert again.status_code == 304, sent
        assert again.content == b""
        assert again.headers["etag"] == etag
        assert again.headers["cache-control"] == "private, no-cache"
    assert feed(api, **{"If-None-Match": '"otro"'}).status_code == 200
    changed = api.call(
        "PATCH",
        "/api/defibrillators/dea-1",
        "ent-1",
        json={"emergency": {**DEA_1_NOTES, "cabinet_code": "2468"}},
    )
    assert changed.status_code == 200, changed.text
    # The same minute (the clock is pinned): only the data changed.
    after = feed(api, **{"If-None-Match": etag})
    assert after.status_code == 200
    assert after.headers["etag"] != etag
    assert features(after)["dea-1"]["properties"]["emergency"]["cabinet_code"] == "2468"
    assert feed(api, **{"If-None-Match": after.headers["etag"]}).status_code == 304


def test_a_cabinet_code_edited_in_the_portal_is_in_the_next_poll(api: Api) -> None:
    """The way entities change their notes: the portal's form (a new device, verified by staff,
    then edited)."""
    portal = Portal(api.client, api.store)
    portal.sign_in("ent-1")
    device_id = portal.register()
    assert device_id not in features(feed(api))  # pending: not on the citizens' map
    verified = api.call(
        "POST", f"/api/defibrillators/{device_id}/review", "planner", json={"decision": "verified"}
    )
    assert verified.status_code == 200, verified.text
    listed = feed(api)
    assert features(listed)[device_id]["properties"]["emergency"]["cabinet_code"] == "4711"
    url = f"/entidades/desfibriladores/{device_id}"
    version = _version(api.client.get(url).text)
    saved = portal.post(url, {**FORM, "version": version, "cabinet_code": "8080 (nuevo)"})
    assert saved.status_code == 303, saved.text
    polled = feed(api, **{"If-None-Match": listed.headers["etag"]})
    assert polled.status_code == 200
    emergency = features(polled)[device_id]["properties"]["emergency"]
    assert emergency == {
        "cabinet_code": "8080 (nuevo)",
        "key_holder": FORM["key_holder"],
        "notes": None,
    }


def test_consoles_polling_in_the_same_minute_share_one_rendering(api: Api) -> None:
    """The private notes are read in one query for every device, once per minute and snapshot,
    however many consoles ask."""
    statements: list[str] = []

    def seen(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if "device_private_notes" in statement:
            statements.append(statement)

    engine = api.client.app.state.store.engine  # type: ignore[attr-defined]
    sa.event.listen(engine, "before_cursor_execute", seen)
    try:
        bodies = {feed(api, who).content for who in ("dispatch", "admin", "dispatch", "admin")}
        assert len(bodies) == 1 and len(statements) == 1
        pin(api.client, AT + dt.timedelta(seconds=59))
        assert feed(api).content in bodies and len(statements) == 1
        pin(api.client, AT + dt.timedelta(minutes=1))
        next_minute = feed(api)
        assert next_minute.json()["generated_at"] == "2026-11-23T10:01:00+01:00"
        assert len(statements) == 2
    finally:
        sa.event.remove(engine, "before_cursor_execute", seen)


# --- several worker processes ----------------------------------------------------------------


@pytest.fixture
def dispatch_secret(db_url: str, tiny_layers: Layers) -> str:
    with Store.open(db_url, clock=clock_at(ORDINARY)) as store:
        store.load(tiny_layers)
        before = store.device("dea-1")
        assert before is not None
        store.update_device(before, before, actor="test", private=DEA_1_NOTES)
        return issue_token(store, role="dispatch").secret


@pytest.fixture
def two_workers(db_url: str, dispatch_secret: str, tmp_path: Path) -> Iterator[Server]:
    """``cardiomapa serve --workers 2`` with its clock from Monday 23 November 2026, 10:00 (as
    tests/test_api_workers.py starts it)."""
    server = Server(db_url, tmp_path / "server.log", env=clock_env(ORDINARY), workers=2)
    try:
        server.wait_until_listening(2)
        yield server
    finally:
        server.stop()


def _poll(server: Server, secret: str, etag: str | None = None) -> tuple[int, int, str, bytes]:
    """One poll on a connection of its own: the pid of the worker that answered (found by the
    connection's port while it is open), the status, the ETag and the body."""
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
    try:
        headers = {"Authorization": f"Bearer {secret}"}
        if etag is not None:
            headers["If-None-Match"] = etag
        connection.request("GET", FEED, headers=headers)
        response = connection.getresponse()
        body = response.read()
        port = connection.sock.getsockname()[1]
        (worker,) = [
            w.pid
            for w in server.workers()
            if any(c.raddr and c.raddr.port == port for c in w.net_connections(kind="tcp"))
        ]
        return worker, response.status, response.getheader("ETag") or "", body
    finally:
        connection.close()


def _same_minute_round(server: Server, secret: str) -> str | None:
    """16 polls; for a minute both workers answered in: the one tag they gave, once each worker
    answered a poll that sent it with 304 (``None`` if the minute or the 304s were missed)."""
    by_minute: dict[str, dict[int, set[tuple[str, bytes]]]] = {}
    for worker, status, etag, body in (_poll(server, secret) for _ in range(16)):
        assert status == 200, body
        assert etag == f'"{hashlib.sha256(body).hexdigest()}"'
        minute = json.loads(body)["generated_at"]
        by_minute.setdefault(minute, {}).setdefault(worker, set()).add((etag, body))
    for minute, answers in by_minute.items():
        if len(answers) < 2:
            continue
        distinct = set().union(*answers.values())
        assert len(distinct) == 1, f"two workers, one minute ({minute}), two answers"
        ((etag, body),) = distinct
        assert b'"cabinet_code":"4711"' in body
        not_modified = set()
        for worker, status, tag, again in (_poll(server, secret, etag) for _ in range(16)):
            if status == 304:
                assert (tag, again) == (etag, b"")
                not_modified.add(worker)
            else:  # only when that worker's minute has moved on
                assert status == 200 and json.loads(again)["generated_at"] != minute
        if len(not_modified) == 2:
            return etag
    return None


def test_every_worker_gives_the_same_etag_for_the_same_minute(
    two_workers: Server, dispatch_secret: str
) -> None:
    """Each worker renders the feed itself (its own snapshot, its own cache); the tag is a hash
    of the bytes, so a console may poll any worker with the tag another one gave. Each worker's
    clock starts when the worker does, so their minutes may differ for a few seconds of each
    minute: answers are compared within one ``generated_at``, and a round that falls across a
    minute is tried again."""
    deadline = time.monotonic() + 90
    while (etag := _same_minute_round(two_workers, dispatch_secret)) is None:
        assert time.monotonic() < deadline, "no minute in which both workers answered"
        time.sleep(5)
    assert etag.startswith('"')


# --- the notes never leak --------------------------------------------------------------------

#: Path parameters the walk cannot fill: an invitation code is a credential, and a made-up one
#: counts as a failed sign-in.
UNFILLABLE = {"/entidades/invitacion/{code}"}


@pytest.fixture
def sentinel(api: Api) -> dict[str, str]:
    """A verified device of no entity, registered by an administrator with unique notes."""
    mark = uuid.uuid4().hex[:12]
    notes = {
        "cabinet_code": f"CAB-{mark}",
        "key_holder": f"LLAVE-{mark}",
        "notes": f"NOTA-{mark}",
    }
    body = {
        "type": "Feature",
        "geometry": {"type": "Point", "coordinates": [-4.5301, 42.0121]},
        "properties": {
            "name": f"DEA centinela {mark}",
            "access": "yes",
            "opening_hours": "24/7",
            "location_text": "junto a la puerta",
        },
        "emergency": notes,
    }
    created = api.call("POST", "/api/defibrillators", "admin", json=body)
    assert created.status_code == 201, created.text
    device_id = created.json()["id"]
    verified = api.call(
        "POST", f"/api/defibrillators/{device_id}/review", "planner", json={"decision": "verified"}
    )
    assert verified.status_code == 200, verified.text
    return {"id": device_id, "name": body["properties"]["name"], **notes}


def _secrets(sentinel: dict[str, str]) -> list[bytes]:
    return [sentinel[name].encode() for name in ("cabinet_code", "key_holder", "notes")]


def _public_urls(api: Api, sentinel: dict[str, str]) -> list[str]:
    """Every GET route of the app, its path parameters filled (the sentinel device where a
    device goes), and the downloads in every format."""
    first_ids = {
        layer: str(api.store.read_layer(layer)["id"].iloc[0]) for layer in PUBLISHED_LAYERS
    }
    first_ids["defibrillators"] = sentinel["id"]
    record_paths = {
        f"/api/{segment}/{{record_id}}": layer for segment, layer in PUBLIC_LAYERS.items()
    }
    urls: list[str] = []
    for route in iter_route_contexts(api.client.app.routes):  # type: ignore[attr-defined]
        path = route.path
        if "GET" not in (route.methods or set()) or path in UNFILLABLE:
            continue
        if path == "/api/downloads/{layer}.{fmt}":
            urls += [f"/api/downloads/{layer}.{fmt.value}" for layer in PUBLISHED_LAYERS
                     for fmt in ExportFormat]  # fmt: skip
            continue
        if "{collectionId}" in path:
            urls += [
                path.replace("{collectionId}", layer).replace("{featureId}", first_ids[layer])
                for layer in PUBLISHED_LAYERS
            ]
            continue
        if path in record_paths:
            path = path.replace("{record_id}", first_ids[record_paths[path]])
        path = path.replace("{device_id:path}", sentinel["id"]).replace(
            "{device_id}", sentinel["id"]
        )
        assert "{" not in path, f"a new path parameter the walk does not fill: {route.path}"
        urls.append(path)
    return urls


def test_the_private_notes_appear_in_no_public_answer_nor_export(
    api: Api, sentinel: dict[str, str]
) -> None:
    secrets = _secrets(sentinel)
    urls = _public_urls(api, sentinel)
    query = {"/api/nearest": {"lat": "42.0121", "lon": "-4.5301"}}
    shown_in: set[str] = set()
    statuses: dict[str, int] = {}
    for url in urls:
        response = api.client.get(url, params=query.get(url))
        statuses[url] = response.status_code
        seen = response.content + str(response.headers).encode()
        assert not [s for s in secrets if s in seen], url
        if sentinel["name"].encode() in response.content:
            shown_in.add(url)
    # The walk reached the device where the public sees it: the notes were there to leak.
    device = f"/api/defibrillators/{sentinel['id']}"
    expected = {
        "/", "/api/map/devices", "/api/nearest", "/api/defibrillators", device,
        "/api/downloads/defibrillators.geojson", "/api/downloads/defibrillators.csv",
        "/api/downloads/defibrillators.gpkg", "/ogc/collections/defibrillators/items",
        f"/ogc/collections/defibrillators/items/{sentinel['id']}",
    }  # fmt: skip
    assert expected <= shown_in, (expected - shown_in, statuses)
    assert statuses[device] == 200 and statuses["/api/map/devices"] == 200
    assert len(urls) > 40
    # The exports, the staff's (every device and field) too.
    for layer in PUBLISHED_LAYERS:
        for fmt in ExportFormat:
            for public_only in (True, False):
                content, _ = export_bytes(
                    api.store, layer, fmt, public_only=public_only, data_licence="CC-BY-4.0"
                )
                assert not [s for s in secrets if s in content], (layer, fmt, public_only)
                if layer == "defibrillators":
                    assert sentinel["name"].encode() in content
    # And the feed carries them, all three.
    carried = feed(api)
    assert all(s in carried.content for s in secrets)
    assert features(carried)[sentinel["id"]]["properties"]["emergency"] == {
        name: sentinel[name] for name in ("cabinet_code", "key_holder", "notes")
    }
