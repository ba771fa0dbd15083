"""Siting with more actions (a new device, or an existing one opened 24/7) and proposals with a
place (``near``), checked by hand on a fixture built here.

The fixture (metres from an origin O in the tiny fixture's CEAS zones, EPSG:25830):

- device ``dea-noche`` "DEA Farmacia Noche" (Calle Mayor 48) at O, open every day 08:00–23:00:
  closed 9 night hours a day (23:00–08:00), so never available 24/7;
- unit A, 1,000 residents (200 aged 65+), 50 m from the device;
- entity ``ent-sj`` "Residencia San Juan" (Calle B 2) at O + (1,000, 0), with no device, and
  unit B, 300 residents (60 aged 65+), 40 m from it;
- unit C, 500 residents (100 aged 65+), 1,000 m north of O, out of everyone's reach.

Residents (24/7 coverage, 100 m): nobody is covered; opening the device 24/7 covers A (+1,000),
a new device at the residence covers B (+300). So the extension comes first.

Lives (weekly model, reach 200 m, full use up to 100 m, day hours twice as likely): both units
are within full use of their site and share one age mix, so each gain is residents × the
weight of the hours it adds. The extension adds the 63 night hours the device is closed
(weight 1 each): 1,000 × 63. The new device adds every hour: 300 × (84 × 2 + 84) = 300 × 252.
The new device comes first, by 75,600 / 63,000 = 1.2.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import shutil
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pytest
import shapely
from fastapi.testclient import TestClient
from servers import Api
from typer.testing import CliRunner

from api.app import create_app
from geo.city import CityProfile
from geo.cli import app
from geo.core.distance import to_metric
from geo.core.outcomes import outcomes
from geo.core.places import known_places, near_places, near_text
from geo.core.siting import parse_actions
from geo.errors import InputError
from geo.io.files import read_layers
from geo.io.store import Store
from geo.services.inputs import outcome_parameters
from geo.services.tokens import issue_token
from geo.settings import Settings
from tests.conftest import TINY_DIR
from tests.weeks import ORDINARY, clock_at

runner = CliRunner()
WEEK = "2026-11-23"  # a Monday, with no holiday in its week
METRIC = "EPSG:25830"
ORIGIN = {"Origin": "http://testserver"}
CENTRE = (372_100.0, 4_651_300.0)  # inside the tiny fixture's CEAS zones


def lonlat(dx: float, dy: float) -> list[float]:
    point = gpd.GeoSeries([shapely.Point(CENTRE[0] + dx, CENTRE[1] + dy)], crs=METRIC)
    geographic = point.to_crs("EPSG:4326").iloc[0]
    return [round(geographic.x, 8), round(geographic.y, 8)]


def feature(template: dict[str, Any], at: list[float], **properties: Any) -> dict[str, Any]:
    return {
        "type": "Feature",
        "properties": {**template["properties"], **properties},
        "geometry": {"type": "Point", "coordinates": at},
    }


def write_layer(folder: Path, name: str, features: list[dict[str, Any]]) -> None:
    (folder / name).write_text(
        json.dumps({"type": "FeatureCollection", "features": features}), encoding="utf-8"
    )


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("actions")
    for name in ("ceas.geojson", "cohousing.geojson"):
        shutil.copy(TINY_DIR / name, folder / name)

    def template(name: str) -> dict[str, Any]:
        features = json.loads((TINY_DIR / name).read_text(encoding="utf-8"))["features"]
        return features[0]

    device = template("defibrillators.geojson")
    write_layer(folder, "defibrillators.geojson", [
        feature(device, lonlat(0, 0), id="dea-noche", name="DEA Farmacia Noche",
                address="Calle Mayor 48", access="yes", opening_hours="Mo-Su 08:00-23:00",
                operator_entity_id=None),
    ])  # fmt: skip
    entity = template("entities.geojson")
    write_layer(folder, "entities.geojson", [
        feature(entity, lonlat(1000, 0), id="ent-sj", name="Residencia San Juan",
                address="Calle B 2"),
    ])  # fmt: skip
    unit = template("population.geojson")
    write_layer(folder, "population.geojson", [
        feature(unit, lonlat(0, 50), id="pop-a", residents=1000, residents_65_plus=200),
        feature(unit, lonlat(1000, 40), id="pop-b", residents=300, residents_65_plus=60),
        feature(unit, lonlat(0, 1000), id="pop-c", residents=500, residents_65_plus=100),
    ])  # fmt: skip
    return folder


def site(data_dir: Path, *args: str) -> dict[str, Any]:
    result = runner.invoke(
        app,
        ["site", "--data-dir", str(data_dir), "--week-of", WEEK, "--format", "json", *args],
    )
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


def steps(document: dict[str, Any], *columns: str) -> list[tuple[Any, ...]]:
    return [tuple(row[c] for c in columns) for row in document["sites"]]


@pytest.mark.parametrize("method", ["greedy", "exact"])
def test_the_extension_comes_first_where_it_covers_more(data_dir: Path, method: str) -> None:
    document = site(data_dir, "--actions", "new,extend-hours", "--new", "2", "--method", method)
    assert document["actions"] == ["new", "extend_hours"]
    assert steps(document, "action", "device_id", "candidate_id") == [
        ("extend_hours", "dea-noche", "extend_hours:dea-noche"),
        ("new", None, "ent-sj"),
    ]
    assert steps(document, "residents_gained", "residents_65_plus_gained") == [
        (1000, 200),
        (300, 60),
    ]
    assert [row["residents_covered_new"] for row in document["sites"]] == [1000, 1300]
    assert [row["share_covered_after"] for row in document["sites"]] == pytest.approx(
        [1000 / 1800, 1300 / 1800]
    )
    assert document["residents_covered_before"] == 0
    assert document["residents_covered_after"] == 1300
    assert (document["new_devices"], document["extended_devices"]) == (1, 1)
    extension, new = (row["near"] for row in document["sites"])
    assert extension["kind"] == "device"
    assert extension["text"] == "en DEA Farmacia Noche (Calle Mayor 48)"
    assert new["kind"] == "entity" and new["name"] == "Residencia San Juan"
    assert new["distance_m"] == pytest.approx(0.0, abs=0.01)
    assert new["text"] == "junto a Residencia San Juan (Calle B 2)"


def test_one_action_is_the_extension(data_dir: Path) -> None:
    for method in ("greedy", "exact"):
        document = site(data_dir, "--actions", "new,extend-hours", "--new", "1",
                        "--method", method)  # fmt: skip
        assert steps(document, "action", "residents_gained") == [("extend_hours", 1000)]


def test_new_only_keeps_to_new_devices(data_dir: Path) -> None:
    for args in (("--actions", "new"), ()):  # the default is today's behaviour
        document = site(data_dir, *args, "--new", "2")
        assert steps(document, "action", "candidate_id", "residents_gained") == [
            ("new", "ent-sj", 300)
        ]
        assert document["extended_devices"] == 0 and document["actions"] == ["new"]


def test_extend_hours_only(data_dir: Path) -> None:
    document = site(data_dir, "--actions", "extend-hours", "--new", "3")
    assert steps(document, "action", "residents_gained") == [("extend_hours", 1000)]


def test_lives_ranks_by_lives(data_dir: Path, city: CityProfile) -> None:
    common = ("--actions", "new,extend-hours", "--new", "2", "--objective", "lives")
    greedy = site(data_dir, *common, "--method", "greedy")
    exact = site(data_dir, *common, "--method", "exact")
    for document in (greedy, exact):
        assert steps(document, "action", "candidate_id") == [
            ("new", "ent-sj"),
            ("extend_hours", "extend_hours:dea-noche"),
        ]
        new, extension = (row["lives_gained"] for row in document["sites"])
        # The JSON rounds to 6 decimals (figures of ~0.005 lives a year): 1e-3 relative.
        assert new / extension == pytest.approx(300 * 252 / (1000 * 63), rel=1e-3)
        assert document["lives_gained"] == pytest.approx(new + extension, rel=1e-3)
    # The extension's gain is what `outcomes` calls the device's gain if open 24/7.
    layers = read_layers(data_dir, city)
    metric = {name: to_metric(frame, city) for name, frame in layers.frames.items()}
    baseline = outcomes(
        metric["population"], metric["defibrillators"], city,
        outcome_parameters(Settings(data_dir=data_dir)), mode="weekly",
        week_of=dt.date.fromisoformat(WEEK),
    )  # fmt: skip
    gain = baseline.devices.set_index("device_id").loc["dea-noche", "gain_if_24_7"]
    assert greedy["sites"][1]["lives_gained"] == pytest.approx(gain, rel=1e-3)


@pytest.mark.parametrize("value", ["new,open-24h", "", "nuevo"])
def test_a_bad_action_is_refused_in_spanish(data_dir: Path, value: str) -> None:
    result = runner.invoke(
        app, ["site", "--data-dir", str(data_dir), "--actions", value, "--format", "json"]
    )
    assert result.exit_code == 2
    assert "--actions" in result.stderr and "se admite new" in result.stderr
    assert "extend-hours" in result.stderr and "Traceback" not in result.stderr


def test_parse_actions() -> None:
    assert parse_actions("extend-hours, new") == ("new", "extend_hours")
    assert parse_actions(["extend_hours"]) == ("extend_hours",)
    with pytest.raises(InputError, match="«cabinet» no es una acción") as caught:
        parse_actions("new,cabinet")
    assert caught.value.code == "invalid_actions" and caught.value.field == "actions"


# --- near -------------------------------------------------------------------------------------


def points(*offsets: tuple[float, float]) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(
        geometry=[shapely.Point(CENTRE[0] + dx, CENTRE[1] + dy) for dx, dy in offsets], crs=METRIC
    )


def test_near_names_the_nearest_place_within_range_and_none_beyond() -> None:
    entities = points((0, 0), (300, 0)).assign(
        name=["Residencia San Juan", "Centro Cívico"], address=["Calle B 2", None]
    )
    devices = points((0, 120)).assign(name=["DEA Bar"], address=["Plaza Mayor 1"])
    places = known_places(entities=entities, devices=devices)
    found = near_places(points((40, 0), (0, 100), (600, 600), (295, 3)), places)
    assert found[0] is not None and found[0].kind == "entity"
    assert (found[0].name, found[0].distance_m) == ("Residencia San Juan", 40.0)
    assert found[0].text == "a 40 m de Residencia San Juan (Calle B 2)"
    assert found[1] is not None and found[1].kind == "address"  # 20 m from the device's address
    assert found[1].text == "a 20 m de Plaza Mayor 1"
    assert found[2] is None  # 424 m from the nearest place: beyond 150 m
    assert found[3] is not None and found[3].text == "junto a Centro Cívico"
    # Past 150 m, with a named street near: the street.
    streets = gpd.GeoDataFrame(
        {"name": ["Calle Mayor"]},
        geometry=[shapely.LineString([(CENTRE[0], CENTRE[1] + 630), (CENTRE[0] + 900,
                                                                    CENTRE[1] + 630)])],
        crs=METRIC,
    )  # fmt: skip
    street = near_places(points((600, 600)), places, streets=streets)[0]
    assert street is not None and street.kind == "street" and street.text == "a 30 m de Calle Mayor"
    assert near_places(points((600, 600)), places, within_m=20, streets=streets) == [None]


def write_streets(path: Path) -> None:
    """A walking network as OSM XML: "Calle Mayor" east–west 30 m north of unit C (from
    (−200, 1,030) to (200, 1,030)), and a footway with no name north from its middle."""
    at = {1: (-200, 1030), 2: (0, 1030), 3: (200, 1030), 4: (0, 1200)}
    nodes = "".join(
        f'<node id="{i}" lat="{lat:.9f}" lon="{lon:.9f}"/>'
        for i, (lon, lat) in ((i, lonlat(*xy)) for i, xy in at.items())
    )
    ways = (
        '<way id="10"><nd ref="1"/><nd ref="2"/><nd ref="3"/>'
        '<tag k="highway" v="residential"/><tag k="name" v="Calle Mayor"/></way>'
        '<way id="11"><nd ref="2"/><nd ref="4"/><tag k="highway" v="footway"/></way>'
    )
    path.write_text(f'<osm version="0.6">{nodes}{ways}</osm>', encoding="utf-8")


def test_a_grid_site_far_from_every_place_names_its_street(data_dir: Path, tmp_path: Path) -> None:
    """Through ``site`` with a walking network that has names: the grid site that covers unit C
    (1,000 m north, no entity, cohousing or address within 150 m) is on Calle Mayor."""
    network = tmp_path / "calles.osm"
    write_streets(network)
    args = ("--candidates", "all", "--new", "1")
    document = site(data_dir, *args, "--network", str(network))
    (step,) = document["sites"]
    assert (step["kind"], step["residents_gained"]) == ("grid", 500)
    at = gpd.GeoSeries([shapely.Point(step["lon"], step["lat"])], crs="EPSG:4326")
    point = at.to_crs(METRIC).iloc[0]
    x, y = point.x - CENTRE[0], point.y - CENTRE[1]  # metres from O
    assert min(np.hypot(x, y), np.hypot(x - 1000, y)) > 150  # the device, the residence
    near = step["near"]
    assert (near["kind"], near["name"], near["address"]) == ("street", "Calle Mayor", None)
    assert near["distance_m"] == pytest.approx(abs(1030 - y), abs=0.1)
    assert near["text"] == near_text("Calle Mayor", None, abs(1030 - y))
    assert re.fullmatch(r"a \d+ m de Calle Mayor", near["text"])


def test_near_text_rounds_to_ten_metres() -> None:
    assert near_text("Residencia San Juan", None, 44.9) == "a 40 m de Residencia San Juan"
    assert near_text("Residencia San Juan", "Calle B 2", 5) == (
        "junto a Residencia San Juan (Calle B 2)"
    )


# --- the API ----------------------------------------------------------------------------------


def test_api_siting_answers_the_same_plan(data_dir: Path, db_url: str, city: CityProfile) -> None:
    with Store.open(db_url, clock=clock_at(ORDINARY)) as store:
        store.load(read_layers(data_dir, city))
        token = issue_token(store, role="planner").secret
        settings = Settings(database_url=db_url, clock_start=ORDINARY)
        with TestClient(create_app(settings)) as client:
            api = Api(client, store, {"planner": token})
            query = {"new": 2, "week_of": WEEK, "method": "exact"}
            response = api.call(
                "GET", "/api/siting", "planner", params={**query, "actions": "new,extend-hours"}
            )
            assert response.status_code == 200, response.text
            document = response.json()
            cli = site(data_dir, "--actions", "new,extend-hours", "--new", "2")
            keys = ("action", "device_id", "candidate_id", "residents_gained", "near")
            assert steps(document, *keys) == steps(cli, *keys)
            assert steps(document, "action", "residents_gained") == [
                ("extend_hours", 1000),
                ("new", 300),
            ]
            default = api.call("GET", "/api/siting", "planner", params=query).json()
            assert steps(default, "action") == [("new",)]
            bad = api.call(
                "GET", "/api/siting", "planner", params={**query, "actions": "new,cabinet"}
            )
            assert bad.status_code == 422, bad.text
            body = bad.json()
            assert body["code"] == "invalid_actions"
            assert body["problems"][0]["field"] == "actions"
            assert "«cabinet» no es una acción" in body["message"]


def test_the_planners_page_offers_and_labels_extensions(
    data_dir: Path, db_url: str, city: CityProfile
) -> None:
    with Store.open(db_url, clock=clock_at(ORDINARY)) as store:
        store.load(read_layers(data_dir, city))
        token = issue_token(store, role="planner").secret
    settings = Settings(database_url=db_url, clock_start=ORDINARY, tile_url="")
    with TestClient(create_app(settings)) as client:
        signed = client.post(
            "/planificacion/sesion", data={"token": token}, headers=ORIGIN, follow_redirects=False
        )
        assert signed.status_code == 303
        plain = client.get("/planificacion", params={"nuevos": 2})
        assert plain.status_code == 200
        assert page_options(plain.text)["form"]["extend_hours"] is False
        assert "abrir 24 h" not in plain.text
        assert "n.º 2: nuevo desfibrilador en " in plain.text
        both = client.get("/planificacion", params={"nuevos": 2, "abrir_24h": "1"})
        assert both.status_code == 200
        options = page_options(both.text)
        assert options["form"]["extend_hours"] is True
        assert options["summary"]["proposal"].startswith("Con 1 nuevos y 1 abiertos 24 h: ")
        # The grid point C's device would stand on: no known place near, its coordinates.
        assert (
            "n.º 1: abrir 24 h (o vitrina exterior) DEA Farmacia Noche (Calle Mayor 48) — "
            "+1.000 residentes" in both.text
        )
        assert re.search(r"n\.º 2: nuevo desfibrilador en punto de rejilla, en 42,\d{5}, −4,\d{5}",
                         both.text)  # fmt: skip


def page_options(html: str) -> dict[str, Any]:
    found = re.search(r'id="cm-options">(.*?)</script>', html, re.S)
    assert found is not None
    return dict(json.loads(found.group(1)))
