"""The maps without a browser: their data, their pages and assets, the planners' sign-in, the CLI.

What a browser does with the pages is in ``test_maps_browser.py``.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import geopandas as gpd
import pytest
from fastapi.testclient import TestClient
from weeks import ORDINARY, clock_env

from api.app import create_app
from geo.city import CityProfile
from geo.core.layers import Layers
from geo.core.nearest import DeviceFinder
from geo.core.results import PlannerView
from geo.io.store import Store
from geo.render.maps import DEVICE_COLUMNS, STATIC_DIR, citizen_data, self_contained
from geo.services.tokens import issue_token
from geo.settings import Settings

API_STATIC = Path(__file__).resolve().parent.parent / "api" / "static"

MADRID = ZoneInfo("Europe/Madrid")
#: Monday 23 November 2026, 15:00 in Palencia: the pharmacy (dea-3) is on its lunch break.
MONDAY_3PM = dt.datetime(2026, 11, 23, 15, 0, tzinfo=MADRID)
ASSET_TAGS = re.compile(r'<(?:script[^>]*\ssrc|link[^>]*\shref)="([^"]+)"')


def rows_by_id(data: dict) -> dict[str, dict]:
    return {row[0]: dict(zip(data["columns"], row, strict=True)) for row in data["rows"]}


def test_citizen_data_gives_each_device_its_state_and_hours_in_words(
    tiny_layers: Layers, city: CityProfile
) -> None:
    data = citizen_data(DeviceFinder(tiny_layers["defibrillators"], city), at=MONDAY_3PM)
    assert data["columns"] == list(DEVICE_COLUMNS)
    assert data["at"] == "2026-11-23T15:00:00+01:00"
    rows = rows_by_id(data)
    assert set(rows) == {"dea-1", "dea-2", "dea-3"}
    states = {key: data["states"][row["state"]] for key, row in rows.items()}
    assert states == {"dea-1": "open", "dea-2": "open", "dea-3": "closed"}
    assert rows["dea-1"]["always_open"] and rows["dea-1"]["next_change"] is None
    assert rows["dea-3"]["next_change"] == "2026-11-23T17:00:00+01:00"
    assert data["refresh_at"] == "2026-11-23T17:00:00+01:00"  # the first change of any device
    # Each schedule is sent once; rows point at it.
    assert data["hours"] == ["24/7", "Mo-Fr 09:30-14:00,17:00-20:30; Sa 10:00-14:00"]
    assert rows["dea-1"]["hours"] == rows["dea-2"]["hours"] == 0
    assert data["hours_text"][1] == (
        "esta semana: lunes a viernes 09:30–14:00 y 17:00–20:30; sábado 10:00–14:00; "
        "domingo cerrado"
    )
    assert rows["dea-2"] | {"hours": None} == {
        "id": "dea-2", "name": "DEA Plaza Mayor", "lon": -4.5288, "lat": 42.0096, "state": 0,
        "always_open": True, "next_change": None, "hours": None,
        "location_text": "columna exterior del ayuntamiento", "address": None, "access": "yes",
        "indoor": False, "level": None, "check_date": "2026-06-01", "phone": None,
        "maintenance": "ok", "state_text": "Disponible ahora",
    }  # fmt: skip
    assert data["state_text"][data["states"].index("closed")] == "Cerrado ahora"
    assert data["detour_factor"] == 1.3 and data["api_url"] is None


def test_unverified_inactive_and_mobile_devices_are_not_on_the_citizen_map(
    tiny_layers: Layers, city: CityProfile
) -> None:
    devices = tiny_layers["defibrillators"].copy()
    devices.loc[devices["id"] == "dea-1", "verification"] = "pending"
    devices.loc[devices["id"] == "dea-2", "is_mobile"] = True
    data = citizen_data(DeviceFinder(devices, city), at=MONDAY_3PM)
    assert set(rows_by_id(data)) == {"dea-3"}
    devices.loc[devices["id"] == "dea-3", "status"] = "inactive"
    assert citizen_data(DeviceFinder(devices, city), at=MONDAY_3PM)["rows"] == []


def test_restricted_and_unknown_hours_states(tiny_layers: Layers, city: CityProfile) -> None:
    devices = tiny_layers["defibrillators"].copy()
    devices.loc[devices["id"] == "dea-1", "access"] = "private"
    devices.loc[devices["id"] == "dea-2", "opening_hours"] = None
    data = citizen_data(DeviceFinder(devices, city), at=MONDAY_3PM)
    rows = rows_by_id(data)
    assert data["states"][rows["dea-1"]["state"]] == "restricted"
    assert data["states"][rows["dea-2"]["state"]] == "unknown_hours"
    assert rows["dea-2"]["hours"] is None and rows["dea-1"]["next_change"] is None


@pytest.fixture
def loaded_url(db_url: str, tiny_layers: Layers) -> str:
    with Store.open(db_url) as store:
        store.load(tiny_layers)
    return db_url


@pytest.fixture
def client(loaded_url: str) -> Iterator[TestClient]:
    # Apps here run on an ordinary week: which tiny devices count must not depend on the run
    # (their pads expire on 1 January 2027).
    settings = Settings(database_url=loaded_url, tile_url="", clock_start=ORDINARY)
    with TestClient(create_app(settings)) as test_client:
        yield test_client


def page_data(html: str, element: str = "cm-data") -> dict:
    found = re.search(rf'<script type="application/json" id="{element}">(.*?)</script>', html, re.S)
    assert found, f"no {element} in the page"
    return json.loads(found.group(1))


def test_citizen_page_loads_only_assets_served_by_the_app(client: TestClient) -> None:
    response = client.get("/")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    # no inline script but folium's two, by their hashes (test_csp.py)
    policy = response.headers["content-security-policy"]
    assert re.search(r"script-src 'self'( 'sha256-[A-Za-z0-9+/=]+'){2};", policy), policy
    html = response.text
    assert html.startswith("<!DOCTYPE html>") and '<html lang="es">' in html
    assert "<title>Desfibriladores de Palencia</title>" in html
    assets = [url for url in ASSET_TAGS.findall(html) if url != "/manifest.webmanifest"]
    assert len(assets) >= 7  # leaflet, markercluster, ours (js + css) and the icons
    for url in assets:
        assert url.startswith("/static/"), f"the page loads {url} from elsewhere"
        served = client.get(url)
        assert served.status_code == 200, url
        path = url.removeprefix("/static/")
        local = STATIC_DIR / path if (STATIC_DIR / path).is_file() else API_STATIC / path
        assert served.content == local.read_bytes()
    assert not re.search(r"(src|href)=\"(https?:)?//", html), "a script or style from outside"
    assert set(rows_by_id(page_data(html))) == {"dea-1", "dea-2", "dea-3"}
    assert page_data(html)["api_url"] == "/api"
    options = page_data(html, "cm-options")
    assert options["data_url"] == "/api/map/devices"
    assert options["notice"].startswith("20 de 20 registros son datos de muestra sintéticos")


def test_the_citizens_page_installs_and_keeps_an_offline_copy(client: TestClient) -> None:
    html = client.get("/").text
    assert '<link rel="manifest" href="/manifest.webmanifest"/>' in html
    options = page_data(html, "cm-options")
    assert options["offline_url"] == "/api/map/offline"
    assert options["service_worker"] == "/sw.js"
    manifest = client.get("/manifest.webmanifest")
    assert manifest.headers["content-type"].startswith("application/manifest+json")
    document = manifest.json()
    assert document["name"] == "Desfibriladores de Palencia" and document["lang"] == "es"
    assert document["start_url"] == "/" and document["display"] == "standalone"
    sizes = set()
    for icon in document["icons"]:
        served = client.get(icon["src"])
        assert served.status_code == 200 and served.headers["content-type"] == "image/png"
        assert served.content.startswith(b"\x89PNG")
        sizes.add((icon["sizes"], icon["purpose"]))
    assert {("192x192", "any"), ("512x512", "any"), ("512x512", "maskable")} <= sizes
    worker = client.get("/sw.js")
    assert worker.status_code == 200 and "javascript" in worker.headers["content-type"]
    assert worker.headers["service-worker-allowed"] == "/"
    for kept in ("/api/map/offline", "/static/cardiomapa.js", '"/"'):
        assert kept in worker.text


def test_the_offline_copy_says_when_each_device_can_be_used(
    client: TestClient, loaded_url: str
) -> None:
    with Store.open(loaded_url) as store:
        record = store.device("dea-1")
        assert record is not None
        notes = {"cabinet_code": "C-4471", "key_holder": "Portería"}
        store.update_device(record, record, actor="tests", private=notes)
    data = client.get("/api/map/offline").json()
    assert data["columns"] == list(DEVICE_COLUMNS)
    assert len(data["spans"]) == len(data["rows"]) == 3
    start = dt.datetime.fromisoformat(data["at"])
    assert dt.datetime.fromisoformat(data["offline_until"]) - start == dt.timedelta(days=7)
    for row, spans in zip(data["rows"], data["spans"], strict=True):
        assert len(spans) % 2 == 0 and spans == sorted(spans), row[0]
        assert all(0 <= minute <= 7 * 24 * 60 for minute in spans)
        state = data["states"][row[data["columns"].index("state")]]
        now_open = any(a <= 0 < b for a, b in zip(spans[::2], spans[1::2], strict=True))
        assert now_open == (state == "open"), (row[0], state, spans[:4])
    text = json.dumps(data)
    assert "C-4471" not in text and "Portería" not in text  # private notes never leave


def test_map_devices_route_serves_the_pages_data(client: TestClient) -> None:
    response = client.get("/api/map/devices")
    assert response.status_code == 200
    data = response.json()
    assert data["columns"] == list(DEVICE_COLUMNS)
    assert set(rows_by_id(data)) == {"dea-1", "dea-2", "dea-3"}
    assert dt.datetime.fromisoformat(data["at"]).tzinfo is not None


def test_a_device_name_cannot_inject_script_into_the_page(
    loaded_url: str, tiny_layers: Layers
) -> None:
    hostile = '</script><script>alert("x")</script> & <b>'
    devices = tiny_layers["defibrillators"].copy()
    devices.loc[devices["id"] == "dea-2", "name"] = hostile
    with Store.open(loaded_url) as store:
        store.load(Layers({**tiny_layers.frames, "defibrillators": devices}), replace=True)
    with TestClient(
        create_app(Settings(database_url=loaded_url, tile_url="", clock_start=ORDINARY))
    ) as client:
        html = client.get("/").text
    assert 'alert("x")' not in html and "<b>" not in html
    assert rows_by_id(page_data(html))["dea-2"]["name"] == hostile  # intact once parsed


def test_template_syntax_in_names_is_shown_not_run(loaded_url: str, tiny_layers: Layers) -> None:
    """folium re-renders its output as a Jinja template: ``{{ 7*7 }}`` must stay text."""
    devices = tiny_layers["defibrillators"].copy()
    devices.loc[devices["id"] == "dea-1", "name"] = "DEA {{ 7*7 }} {% if x %}"
    entities = tiny_layers["entities"].copy()
    entities.loc[entities["id"] == "ent-2", "name"] = "Asociación {{ 6*7 }} {# x"
    frames = {**tiny_layers.frames, "defibrillators": devices, "entities": entities}
    with Store.open(loaded_url) as store:
        store.load(Layers(frames), replace=True)
    settings = Settings(database_url=loaded_url, tile_url="", clock_start=ORDINARY)
    with TestClient(create_app(settings)) as client:
        citizen = client.get("/")
        client.post("/planificacion/sesion", data={"token": token(loaded_url, "planner")})
        planner = client.get("/planificacion")
    assert citizen.status_code == planner.status_code == 200
    assert rows_by_id(page_data(citizen.text))["dea-1"]["name"] == "DEA {{ 7*7 }} {% if x %}"
    for html in (citizen.text, planner.text):
        assert "DEA 49" not in html and "Asociación 42" not in html
    # inert, and looks the same (folium writes JSON with ASCII escapes)
    assert r"Asociaci\u00f3n {\u200b{ 6*7 }} {\u200b# x" in planner.text


def test_basemap_tiles_come_only_from_the_configured_server(loaded_url: str) -> None:
    settings = Settings(
        database_url=loaded_url, tile_url="http://{s}.tiles.example.org/{z}/{x}/{y}.png"
    )
    with TestClient(create_app(settings)) as client:
        response = client.get("/")
    policy = response.headers["content-security-policy"]
    assert "img-src 'self' data: https: http://*.tiles.example.org;" in policy
    assert "http://{s}.tiles.example.org/{z}/{x}/{y}.png" in response.text
    with TestClient(
        create_app(Settings(database_url=loaded_url, tile_url="", clock_start=ORDINARY))
    ) as client:
        html = client.get("/").text
    assert "tileLayer" not in html  # no basemap: zones and outline only
    assert "Zona CEAS" in html  # the zones tooltip


# --- planners' sign-in ---------------------------------------------------------------------------


def token(url: str, role: str, entity_id: str | None = None) -> str:
    with Store.open(url) as store:
        return issue_token(store, role=role, entity_id=entity_id).secret


def test_planner_map_asks_for_a_token(client: TestClient) -> None:
    response = client.get("/planificacion")
    assert response.status_code == 401
    assert '<form method="post" action="/planificacion/sesion">' in response.text
    assert "Cobertura" not in response.text


@pytest.mark.parametrize(
    ("secret", "status", "message"),
    [
        ("", 401, "Escriba su token."),
        ("cm_999_" + "a" * 43, 401, "Token no válido."),
        ("<script>", 401, "Token mal formado"),
    ],
)
def test_a_wrong_token_is_refused_with_a_message(
    client: TestClient, secret: str, status: int, message: str
) -> None:
    response = client.post(
        "/planificacion/sesion",
        content=f"token={secret}",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        follow_redirects=False,
    )
    assert response.status_code == status
    assert message in response.text
    assert "<script>" not in response.text.split("<body", 1)[1]
    assert "set-cookie" not in response.headers


def test_an_entity_token_does_not_open_the_planner_map(client: TestClient, loaded_url: str) -> None:
    secret = token(loaded_url, "entity", "ent-1")
    response = client.post("/planificacion/sesion", data={"token": secret}, follow_redirects=False)
    assert response.status_code == 403
    assert "hace falta uno de planificación" in response.text


def test_a_planner_signs_in_sees_the_map_and_signs_out(client: TestClient, loaded_url: str) -> None:
    secret = token(loaded_url, "planner")
    response = client.post("/planificacion/sesion", data={"token": secret}, follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"] == "/planificacion"
    cookie = response.headers["set-cookie"]
    for attribute in ("HttpOnly", "Path=/planificacion", "SameSite=strict", "Max-Age=28800"):
        assert attribute.lower() in cookie.lower()
    page = client.get("/planificacion", params={"dia": "0", "hora": "15", "radio_m": "300"})
    assert page.status_code == 200
    assert page.headers["cache-control"] == "no-store"
    for layer in (
        "Zonas CEAS por cobertura", "Alcance de los desfibriladores",
        "Huecos sin cobertura (ordenados)", "Desfibriladores", "Entidades del clúster",
        "Cohousing / coliving", "Propuesta de nuevos desfibriladores",
    ):  # fmt: skip
        assert json.dumps(layer) in page.text  # in the layer control (folium escapes to ASCII)
    options = page_data(page.text, "cm-options")
    assert options["form"] | {"days": None, "objectives": None} == {
        "action": "/planificacion", "day": 0, "hour": 15, "radius_m": 300.0, "new": 10,
        "days": None, "objective": "residents", "objectives": None, "extend_hours": False,
    }  # fmt: skip
    assert options["form"]["objectives"] == [
        ["residents", "residentes cubiertos"], ["lives", "vidas salvadas"],
    ]  # fmt: skip
    assert options["summary"]["proposal"].startswith("Con 10 nuevos: ")
    assert options["summary"]["when"].startswith("lunes ")
    assert options["summary"]["when"].endswith(" 15:30")
    assert options["summary"]["radius_m"] == 300
    bad = client.get("/planificacion", params={"dia": "9"})
    assert bad.status_code == 422 and bad.json()["problems"][0]["field"] == "dia"
    bad = client.get("/planificacion", params={"objetivo": "votos"})
    assert bad.status_code == 422 and bad.json()["problems"][0]["field"] == "objetivo"
    client.post("/planificacion/salir", follow_redirects=False)
    assert client.get("/planificacion").status_code == 401


def test_a_revoked_token_closes_the_planner_map(client: TestClient, loaded_url: str) -> None:
    secret = token(loaded_url, "planner")
    client.post("/planificacion/sesion", data={"token": secret}, follow_redirects=False)
    assert client.get("/planificacion").status_code == 200
    with Store.open(loaded_url) as store:
        store.revoke_token(int(secret.split("_")[1]), actor="test")
    assert client.get("/planificacion").status_code == 401


# --- the planner view's content ------------------------------------------------------------


def test_planner_map_marks_entities_with_and_without_a_device(loaded_url: str) -> None:
    """ent-1 holds dea-1 (its own, 24/7); ent-2 is ~1.3 km from any device."""
    from geo.services.analysis import planner_view
    from geo.services.inputs import load_inputs

    with Store.open(loaded_url) as store:
        inputs = load_inputs(Settings(database_url=loaded_url), store=store)
    view = planner_view(
        inputs, radius_m=300, at=None, new=2, reference_date=dt.date(2026, 11, 23),
        detour_factor=1.3,
    )  # fmt: skip
    entities = view.entities.set_index("id")
    assert bool(entities.loc["ent-1", "holds_device"]) and bool(entities.loc["ent-1", "covered"])
    assert not entities.loc["ent-2", "holds_device"] and not entities.loc["ent-2", "covered"]
    assert view.reach_m == pytest.approx(300 / 1.3)
    # 24/7: the pharmacy (dea-3) does not count; the two 24/7 devices do.
    assert dict(zip(view.devices["id"], view.devices["available"], strict=True)) == {
        "dea-1": True, "dea-2": True, "dea-3": False,
    }  # fmt: skip
    assert list(view.siting.chosen["step"]) == [1, 2]


# --- lives saved on the planners' map ------------------------------------------------------


def test_planner_view_has_the_weekly_outcomes_only_with_the_parameters(loaded_url: str) -> None:
    from geo.services.analysis import planner_view
    from geo.services.inputs import load_inputs, outcome_parameters

    settings = Settings(database_url=loaded_url)
    with Store.open(loaded_url) as store:
        inputs = load_inputs(settings, store=store)
    common: dict[str, Any] = {"radius_m": 300, "at": dt.datetime(2026, 11, 23, 15, 30), "new": 1,
              "reference_date": dt.date(2026, 11, 23), "detour_factor": 1.3}  # fmt: skip
    assert planner_view(inputs, **common).outcomes is None
    view = planner_view(inputs, **common, parameters=outcome_parameters(settings))
    assert view.outcomes is not None
    result = view.outcomes.result
    # The week of the map's day, whatever hour it shows; at the model's own reach (200 m).
    assert result.mode == "weekly" and result.at is None
    assert result.week_start is not None and result.week_start.date() == dt.date(2026, 11, 23)
    assert result.reach_m == 200
    assert list(view.outcomes.devices["device_id"]) == ["dea-1", "dea-2", "dea-3"]


def far_reaching_view(url: str) -> tuple[PlannerView, CityProfile]:
    """The tiny fixture's planner view with the model's reach at 1 km (at 200 m nobody is in
    reach of a device): every device saves someone."""
    from geo.services.analysis import planner_view
    from geo.services.inputs import load_inputs, outcome_parameters

    settings = Settings(database_url=url)
    with Store.open(url) as store:
        inputs = load_inputs(settings, store=store)
    parameters = outcome_parameters(settings).with_values({"reach_m": 1000.0})
    view = planner_view(
        inputs, radius_m=300, at=None, new=1, reference_date=dt.date(2026, 11, 23),
        detour_factor=1.3, parameters=parameters,
    )  # fmt: skip
    return view, inputs.city


def test_planner_map_gives_lives_saved_per_zone_and_device(loaded_url: str) -> None:
    from geo.core.outcome_model import HOME_ARRESTS_NOTE
    from geo.render.maps import Basemap, PlannerForm, planner_map
    from geo.render.planner_map import DEVICE_LIVES_FIELDS, LIVES_FIELD

    view, city = far_reaching_view(loaded_url)
    html = planner_map(
        view,
        city=city, basemap=Basemap(None), form=PlannerForm(None, None, 10, 300, 1),
    )  # fmt: skip
    options = page_data(html, "cm-options")
    lives = options["outcomes"]
    assert lives["title"] == "Vidas salvadas (estimación del modelo)"
    assert HOME_ARRESTS_NOTE in lives["notes"]
    assert any("estimaciones de un modelo" in note for note in lives["notes"])
    assert "domicilio" in options["legend"]["note"]
    assert re.fullmatch(
        r"Los 3 desfibriladores que cuentan salvan unas 0,\d+ vidas al año \(banda del 5 al "
        r"95 %: 0,\d+–0,\d+\), una cada [\d.]+ años, de 0,6 paradas al año fuera del domicilio\.",
        lives["summary"],
    ), lives["summary"]
    assert "Alcance del modelo: 1.000 m a pie" in lives["basis"]
    zones, removed, opened = lives["tables"]
    band = re.compile(r"0,\d+ \(0,\d+–0,\d+\)")
    assert [row[0] for row in zones["rows"]] == ["Este", "Oeste"]
    assert all(band.fullmatch(row[1]) for row in zones["rows"]), zones["rows"]
    assert removed["caption"] == "Los que más vidas perderían si se retiraran"
    assert {row[0] for row in removed["rows"]} == {
        "DEA Residencia Uno", "DEA Plaza Mayor", "DEA Farmacia",
    }  # fmt: skip
    # Only the pharmacy is not open 24/7: it alone would gain by opening every hour.
    assert [row[0] for row in opened["rows"]] == ["DEA Farmacia"]
    # The zone tooltips and the device popups (folium writes their JSON with ASCII escapes).
    for label in (LIVES_FIELD, *DEVICE_LIVES_FIELDS.values()):
        assert json.dumps(label) in html, label
    assert "bindPopup" in html
    assert view.outcomes is not None
    devices = view.outcomes.devices.set_index("device_id")
    pharmacy = devices.loc["dea-3"]
    from geo.render.planner_map import _lives_band

    assert json.dumps(_lives_band(pharmacy, "gain_if_24_7")) in html
    assert json.dumps("0 (0–0)") in html  # dea-1 gains nothing by opening 24/7: it already is


def test_planner_map_colours_zones_by_classes_of_the_weeks_shares(loaded_url: str) -> None:
    """The zone classes come from the shares shown (at the instant and in each hour of the
    week); the hour chart carries the weekly profile the CLI and the report use, Monday first."""
    from geo.render.map_classes import SHARE_PALETTE
    from geo.render.maps import Basemap, PlannerForm, planner_map

    view, city = far_reaching_view(loaded_url)
    assert view.week is not None
    tuesday_noon = dt.datetime(2026, 11, 24, 12, 30)
    view = PlannerView(**{**view.__dict__, "at": tuesday_noon})
    html = planner_map(
        view, city=city, basemap=Basemap(None), form=PlannerForm(None, 1, 12, 300, 1)
    )
    options = page_data(html, "cm-options")
    legend, week = options["legend"], options["week"]
    shares = sorted(
        {*view.week.zone_slices["share_covered"], *view.coverage.layer["share_covered"]}
    )
    colours = [colour for colour, _label in legend["zones"]["classes"]]
    assert len(colours) == min(len(shares), len(SHARE_PALETTE)) >= 2
    limits = [label.removesuffix(" %") for _colour, label in legend["zones"]["classes"]]
    # The first class starts at the lowest share shown and the last ends at the highest.
    low, high = limits[0].split("–")[0], limits[-1].split("–")[-1]
    decimals = len(high.split(",")[1]) if "," in high else 0
    assert low == f"{shares[0] * 100:.{decimals}f}".replace(".", ",")
    assert high == f"{shares[-1] * 100:.{decimals}f}".replace(".", ",")
    # 168 cells, Monday 00:00 first, each with the city's share of that hour.
    slices = view.week.slices.sort_values("slot")
    assert len(week["cells"]) == 168 and week["days"][0] == "lunes"
    first = week["cells"][0][1]
    assert first.startswith("lunes 00:00–01:00: ")
    share = slices["share_covered"].iloc[12 + 24]
    assert week["cells"][36][1].startswith("martes 12:00–13:00: ")
    assert f"{share * 100:.1f}".replace(".", ",") + " % cubiertos" in week["cells"][36][1]
    assert week["slot"] == 36  # the instant drawn: its cell is the one pressed
    # Each zone's class in each hour follows its share then: a higher share never gets a lower
    # class, and the week's shares fall in at least two classes.
    zone_ids = view.coverage.layer["id"].tolist()
    pairs = []
    for key, classes in week["zones"].items():
        own = view.week.zone_slices[view.week.zone_slices["zone_id"] == zone_ids[int(key)]]
        assert len(classes) == 168
        pairs += zip(own.sort_values("slot")["share_covered"], classes, strict=True)
    assert len(week["zones"]) == len(zone_ids) == 2
    pairs.sort()
    assert all(a[1] <= b[1] for a, b in itertools.pairwise(pairs))
    assert len({cls for _share, cls in pairs}) >= 2
    assert week["colours"] == colours
    # The gap cells have classes of their own, from the residents each leaves without cover.
    assert len(legend["gaps"]["classes"]) >= 1
    assert [shape for _cls, _label, shape in legend["symbols"]][:3] == ["area", "point", "point"]


def test_the_planner_map_proposes_by_lives_when_asked(client: TestClient, loaded_url: str) -> None:
    client.post("/planificacion/sesion", data={"token": token(loaded_url, "planner")})
    page = client.get("/planificacion", params={"objetivo": "vidas", "nuevos": "2"})
    assert page.status_code == 200, page.text
    options = page_data(page.text, "cm-options")
    assert options["form"]["objective"] == "lives"
    assert re.fullmatch(
        r"Con 2 nuevos elegidos por vidas salvadas \(semana tipo, alcance 200 m\): de 0 a "
        r"[\d,]+ vidas al año \(banda [\d,]+–[\d,]+\)\.",
        options["summary"]["proposal"],
    ), options["summary"]["proposal"]
    assert "vidas al año (modelo)" in page.text  # the proposal's tooltips


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (0.0087123, "0,0087"), (0.01234, "0,012"), (1.234, "1,2"), (12.34, "12"),
        (1234.5, "1.234"), (0.0, "0"), (float("nan"), "—"), (None, "—"),
        (0.000_000_3, "0,00000030"), (0.000_04, "0,000040"),  # a positive never shows as 0
    ],
)  # fmt: skip
def test_lives_are_written_in_spanish_with_two_significant_figures(
    value: float | None, text: str
) -> None:
    from geo.render.planner_map import _lives

    assert _lives(value) == text


def test_hostile_names_are_text_in_the_planner_map(loaded_url: str, tiny_layers: Layers) -> None:
    """folium's tooltips and popups set ``innerHTML``: names must arrive escaped."""
    hostile = "<img src=x onerror=alert(1)> `${1+1}`"
    devices = tiny_layers["defibrillators"].copy()
    devices.loc[devices["id"] == "dea-2", "name"] = hostile
    entities = tiny_layers["entities"].copy()
    entities.loc[entities["id"] == "ent-2", "name"] = "<b>Asociación</b>"
    frames = {**tiny_layers.frames, "defibrillators": devices, "entities": entities}
    with Store.open(loaded_url) as store:
        store.load(Layers(frames), replace=True)
    with TestClient(
        create_app(Settings(database_url=loaded_url, tile_url="", clock_start=ORDINARY))
    ) as client:
        client.post("/planificacion/sesion", data={"token": token(loaded_url, "planner")})
        html = client.get("/planificacion").text
    assert "<img src=x" not in html and "<b>Asociaci" not in html
    assert r"\u0026lt;img src=x onerror=alert(1)\u0026gt;" in html  # shown as text
    assert r"\u0026lt;b\u0026gt;Asociaci\u00f3n" in html


def test_marker_tooltip_text_cannot_leave_its_template_literal() -> None:
    from geo.render.map_text import markup_text as _markup_text

    text = _markup_text("<b>x</b> `${alert(1)}` \\u {{ 7*7 }}")
    assert "<" not in text and "`" not in text and "$" not in text and "\\" not in text
    assert "{\u200b{ 7*7 }}" in text


# --- files to share --------------------------------------------------------------------------


def run_cli(*args: str, url: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "CARDIOMAPA_DATABASE_URL": url,
        "CARDIOMAPA_TILE_URL": "",
        **clock_env(ORDINARY),
    }
    script = Path(sys.executable).parent / "cardiomapa"
    return subprocess.run(
        [str(script), *args], env=env, capture_output=True, text=True, timeout=300, check=False
    )


@pytest.mark.parametrize("kind", ["citizen", "planner"])
def test_cli_writes_a_self_contained_map(loaded_url: str, tmp_path: Path, kind: str) -> None:
    out = tmp_path / f"{kind}.html"
    done = run_cli("map", "--kind", kind, "--out", str(out), url=loaded_url)
    assert done.returncode == 0, done.stderr
    title = {"citizen": "Mapa ciudadano (", "planner": "Mapa de planificación ("}[kind]
    assert title in done.stdout and str(out) in done.stdout.replace("\n", "")
    html = out.read_text(encoding="utf-8")
    assert (
        "/static/" not in html
        and "<script src=" not in html
        and '<link rel="stylesheet"' not in html
    )
    assert "L.markerClusterGroup" in html  # the vendored library, inlined
    assert "url(data:image/png;base64," in html  # leaflet's images, inlined
    if kind == "citizen":
        assert page_data(html)["api_url"] is None  # lookups are done in the page
        assert page_data(html, "cm-options")["data_url"] is None
    else:
        assert page_data(html, "cm-options")["form"]["action"] is None


def test_cli_planner_map_proposes_by_lives(loaded_url: str, tmp_path: Path) -> None:
    out = tmp_path / "planner.html"
    done = run_cli("map", "--kind", "planner", "--objective", "lives", "--new", "3",
                   "--out", str(out), url=loaded_url)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "por vidas salvadas" in done.stdout
    assert page_data(out.read_text(encoding="utf-8"), "cm-options")["form"]["objective"] == "lives"


def test_cli_map_errors_name_the_option(loaded_url: str, tmp_path: Path) -> None:
    done = run_cli("map", "--out", str(tmp_path / "no" / "such" / "x.html"), url=loaded_url)
    assert done.returncode == 2 and "la carpeta de --out" in done.stderr
    done = run_cli("map", "--out", str(tmp_path / "x.html"), "--at", "mañana", url=loaded_url)
    assert done.returncode == 2 and "--at 'mañana' no es una fecha" in done.stderr
    done = run_cli("map", "--kind", "tourist", "--out", str(tmp_path / "x.html"), url=loaded_url)
    assert done.returncode == 2 and "--kind" in done.stderr
    assert not (tmp_path / "x.html").exists()


def test_self_contained_refuses_a_page_it_cannot_complete() -> None:
    with pytest.raises(ValueError, match="cannot inline"):
        self_contained("<html><head></head><body></body></html>")


def test_zones_are_context_in_any_crs(tiny_layers: Layers, city: CityProfile) -> None:
    from geo.render.maps import Basemap, citizen_map

    zones: gpd.GeoDataFrame = tiny_layers["ceas"].to_crs(city.metric_crs)
    html = citizen_map(
        DeviceFinder(tiny_layers["defibrillators"], city), zones=zones, at=MONDAY_3PM,
        basemap=Basemap(None),
    )  # fmt: skip
    assert "Oeste" in html and "Este" in html
    assert re.search(r"\[-4\.5\d+, 42\.0\d+\]", html), "zones drawn in lon/lat"


def test_page_cache_serves_the_last_page_while_the_next_one_renders() -> None:
    from api.deps import RenderCache

    cache = RenderCache[str](serve_stale=lambda cached, wanted: True)
    release = threading.Event()
    renders: list[str] = []

    def render(text: str, *, wait: bool = False) -> Callable[[], str]:
        def run() -> str:
            if wait:
                assert release.wait(10)
            renders.append(text)
            return text

        return run

    assert cache.get(("a",), render("page a")) == "page a"  # the first page: rendered at once
    assert cache.get(("a",), render("never")) == "page a"  # same key: no render
    assert cache.get(("b",), render("page b", wait=True)) == "page a"  # stale, without waiting
    assert cache.get(("b",), render("twice")) == "page a"  # one render at a time
    release.set()
    for _ in range(200):
        if cache.get(("b",), render("never")) == "page b":
            break
        time.sleep(0.01)
    assert cache.get(("b",), render("never")) == "page b"
    assert renders == ["page a", "page b"]


def test_page_cache_keeps_the_last_good_page_when_a_render_fails(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from api.deps import RenderCache

    cache = RenderCache[str](serve_stale=lambda cached, wanted: True)
    cache.get(("a",), lambda: "page a")

    def broken() -> str:
        msg = "la base de datos no responde"
        raise RuntimeError(msg)

    assert cache.get(("b",), broken) == "page a"
    for _ in range(200):
        if not cache._refreshing:
            break
        time.sleep(0.01)
    assert cache.get(("b",), lambda: "page b") == "page a"  # retried, in the background
    for _ in range(200):
        if cache.get(("b",), lambda: "never") == "page b":
            break
        time.sleep(0.01)
    assert cache.get(("b",), lambda: "never") == "page b"
    assert "no se pudo volver a dibujar" in caplog.text


def test_render_cache_without_stale_values_renders_once_for_concurrent_callers() -> None:
    from api.deps import RenderCache

    cache = RenderCache[str]()
    assert cache.get(("a",), lambda: "a") == "a"
    calls: list[int] = []

    def slow() -> str:
        calls.append(1)
        time.sleep(0.2)
        return "b"

    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda _i: cache.get(("b",), slow), range(8)))
    assert answers == ["b"] * 8  # nobody got the stale "a"
    assert len(calls) == 1


def test_the_citizens_page_is_never_stale_after_new_data() -> None:
    """Only the minute changed: the last page, while the next renders. New devices (another
    snapshot) or new zones: the first caller waits for the new page."""
    from api.deps import RenderCache
    from api.pages.citizens import same_data

    cache = RenderCache[str](serve_stale=same_data)
    snapshot, newer = object(), object()
    assert cache.get((snapshot, 1, 7), lambda: "10:00") == "10:00"
    release = threading.Event()

    def next_minute() -> str:
        assert release.wait(10)
        return "10:01"

    assert cache.get((snapshot, 2, 7), next_minute) == "10:00"  # stale, without waiting
    release.set()
    for _ in range(200):
        if not cache._refreshing:
            break
        time.sleep(0.01)
    assert cache.get((newer, 2, 7), lambda: "new devices") == "new devices"
    assert cache.get((newer, 2, 8), lambda: "new zones") == "new zones"
