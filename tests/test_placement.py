"""The moderator is warned of a possible duplicate or a wrong pin: a device far from its address,
a long move, a device next to another. The pure checks on hand-made points, then the desk's
moderation page on SpatiaLite and PostGIS (each warning shown for a fixture that triggers it and
not otherwise).

The tiny layers: entity ent-1 «Residencia Uno», «Calle B 2», at (-4.535, 42.010), runs dea-1 at
the same point; dea-2 at (-4.5288, 42.0096); dea-3 at (-4.518, 42.015). At 42° N a degree of
longitude is about 82.8 km and one of latitude 111.1 km.
"""

# ruff: noqa: F811  (the tests take the fixture ``desk`` imported from test_desk)
from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from test_desk import Desk, desk, text  # noqa: F401  (the fixture ``desk``)

from api.pages.desk.moderation import previous_position
from geo.core.placement import (
    KnownPlace,
    Neighbour,
    address_key,
    check_placement,
    distance_m,
    locate_address,
)
from geo.services import registry
from geo.services.tokens import authenticate

RESIDENCE = KnownPlace("Calle B 2", -4.535, 42.010, "la entidad «Residencia Uno»")


def kinds(check: Any) -> list[str]:
    return [warning.kind for warning in check.warnings]


# --- the pure checks --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "typed", ["Calle B 2", "C/ B, nº 2", "calle b 2", "Cl. B 2, 34001 Palencia", "CALLE  B,2"]
)
def test_the_same_address_written_differently_is_found(typed: str) -> None:
    assert locate_address(typed, [RESIDENCE]) == RESIDENCE


def test_another_address_is_not_found() -> None:
    assert locate_address("Calle B 20", [RESIDENCE]) is None
    assert locate_address("", [RESIDENCE]) is None and address_key(None) == ""


def test_a_device_far_from_its_address_is_flagged() -> None:
    far = check_placement(lon=-4.5135, lat=42.010, address="C/ B 2", places=[RESIDENCE])
    assert kinds(far) == ["far_from_address"]
    assert 1700 < far.warnings[0].distance_m < 1900  # 0.0215° of longitude ≈ 1.8 km
    assert "Posible posición errónea" in far.warnings[0].message
    assert "«C/ B 2»" in far.warnings[0].message and "Residencia Uno" in far.warnings[0].message
    near = check_placement(lon=-4.5335, lat=42.011, address="Calle B 2", places=[RESIDENCE])
    assert near.warnings == () and near.address_place == RESIDENCE  # ≈ 166 m: within 250 m


def test_without_an_address_the_entity_location_is_used_and_said() -> None:
    check = check_placement(lon=-4.53, lat=42.012, address=None, places=[],
                            entity_place=RESIDENCE)  # fmt: skip
    assert kinds(check) == ["far_from_address"]
    assert "ubicación registrada" in check.warnings[0].message


def test_an_address_no_layer_knows_is_said_not_guessed() -> None:
    check = check_placement(lon=-4.0, lat=42.5, address="Calle Inventada 9", places=[RESIDENCE],
                            entity_place=RESIDENCE)  # fmt: skip
    assert check.warnings == () and check.address_place is None
    assert check.address_unknown is not None and "«Calle Inventada 9»" in check.address_unknown
    assert "geocodificador" in check.address_unknown


def test_a_long_move_is_flagged() -> None:
    assert kinds(check_placement(lon=0, lat=0, address=None, places=[], moved_m=389)) == [
        "long_move"
    ]
    assert check_placement(lon=0, lat=0, address=None, places=[], moved_m=111).warnings == ()
    assert check_placement(lon=0, lat=0, address=None, places=[], moved_m=None).warnings == ()


def test_a_device_next_to_another_is_flagged() -> None:
    other = Neighbour("dea-2", "DEA Dos", -4.5288, 42.0096)
    close = check_placement(lon=-4.5289, lat=42.0097, address=None, places=[], others=[other])
    assert kinds(close) == ["near_other"] and close.warnings[0].other_id == "dea-2"
    assert (
        "Posible duplicado" in close.warnings[0].message
        and "«DEA Dos»" in close.warnings[0].message
    )
    apart = check_placement(lon=-4.5284, lat=42.0096, address=None, places=[], others=[other])
    assert distance_m(-4.5284, 42.0096, -4.5288, 42.0096) > 30 and apart.warnings == ()


# --- on the desk ------------------------------------------------------------------------------


def register(desk: Desk, lon: float, lat: float, **properties: Any) -> dict[str, Any]:
    principal = authenticate(desk.store, desk.tokens["ent-1"])
    values = {"name": "DEA nuevo", "access": "yes", "opening_hours": "24/7", **properties}
    return registry.register_device(
        desk.store, desk.city, principal, properties=values,
        geometry={"type": "Point", "coordinates": [lon, lat]}, today=dt.date(2026, 12, 7),
    )  # fmt: skip


def queue_warnings(desk: Desk) -> dict[str, list[str]]:
    """The placement warnings shown in each card of the queue, by device name."""
    desk.sign_in("planner")
    page = desk.client.get("/gestion")
    assert page.status_code == 200
    shown: dict[str, list[str]] = {}
    for card in page.text.split('<li class="cm-card"')[1:]:
        name = text_of(card.split("<h2>")[1].split("</h2>")[0]).removesuffix(" pendiente")
        shown[name] = [
            part.split('"')[0] for part in card.split('data-placement="')[1:]
            if not part.startswith("address_unknown")
        ]  # fmt: skip
    return shown


def text_of(markup: str) -> str:
    import html
    import re

    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", markup)).split()).lstrip("> 0123456789")


def test_the_queue_warns_of_a_pin_far_from_its_address(desk: Desk) -> None:
    register(desk, -4.5135, 42.010, name="DEA lejos", address="C/ B, nº 2")
    register(desk, -4.5335, 42.011, name="DEA cerca", address="Calle B 2")
    shown = queue_warnings(desk)
    assert shown == {"DEA lejos": ["far_from_address"], "DEA cerca": []}
    body = text(desk.client.get("/gestion"))
    assert "Posible posición errónea: el punto está a 1.78" in body


def test_the_queue_says_when_an_address_cannot_be_checked(desk: Desk) -> None:
    register(desk, -4.5135, 42.010, name="DEA sin sitio", address="Calle Inventada 9")
    assert queue_warnings(desk) == {"DEA sin sitio": []}
    assert "No se puede comprobar la posición con la dirección «Calle Inventada 9»" in text(
        desk.client.get("/gestion")
    )


def test_the_queue_warns_of_a_long_move_only(desk: Desk) -> None:
    entity = authenticate(desk.store, desk.tokens["ent-1"])
    registry.update_device(
        desk.store, desk.city, entity, "dea-1", changes={"address": "Calle B 2"},
        geometry={"type": "Point", "coordinates": [-4.535, 42.0135]}, today=dt.date(2026, 12, 7),
    )  # fmt: skip
    shown = queue_warnings(desk)
    # 389 m from where it was, and from its address (the residence, where it stood).
    assert shown == {"DEA Residencia Uno": ["far_from_address", "long_move"]}
    assert "Traslado largo: se ha movido 389 m" in text(desk.client.get("/gestion"))


def test_a_move_staff_verified_is_no_longer_news(desk: Desk) -> None:
    entity = authenticate(desk.store, desk.tokens["ent-1"])
    registry.update_device(
        desk.store, desk.city, entity, "dea-1", changes={},
        geometry={"type": "Point", "coordinates": [-4.535, 42.0135]}, today=dt.date(2026, 12, 7),
    )  # fmt: skip
    device = desk.store.device("dea-1")
    moved = previous_position(desk.store, device)
    assert moved is not None and moved["distance_m"] == 389 and not moved["reviewed"]
    planner = authenticate(desk.store, desk.tokens["planner"])
    registry.review_device(desk.store, planner, "dea-1", decision="verified")
    moved = previous_position(desk.store, desk.store.device("dea-1"))
    assert moved is not None and moved["reviewed"]  # still shown as history, no longer a warning


def test_a_short_move_is_not_warned(desk: Desk) -> None:
    entity = authenticate(desk.store, desk.tokens["ent-1"])
    registry.update_device(
        desk.store, desk.city, entity, "dea-1", changes={"address": "Calle B 2"},
        geometry={"type": "Point", "coordinates": [-4.535, 42.011]}, today=dt.date(2026, 12, 7),
    )  # fmt: skip
    assert queue_warnings(desk) == {"DEA Residencia Uno": []}


def test_the_queue_warns_of_a_possible_duplicate(desk: Desk) -> None:
    register(desk, -4.5289, 42.0097, name="DEA repetido", address="Calle B 2")
    register(desk, -4.5284, 42.0120, name="DEA aparte")
    shown = queue_warnings(desk)
    assert "near_other" in shown["DEA repetido"] and "near_other" not in shown["DEA aparte"]
    assert "Posible duplicado" in text(desk.client.get("/gestion"))


def test_the_device_page_shows_the_warnings_of_a_pending_device(desk: Desk) -> None:
    device = register(desk, -4.5289, 42.0097, name="DEA repetido")
    desk.sign_in("planner")
    page = desk.client.get(f"/gestion/desfibriladores/{device['id']}")
    assert page.status_code == 200 and 'data-placement="near_other"' in page.text
    verified = desk.client.get("/gestion/desfibriladores/dea-2")  # not checked: not pending
    assert verified.status_code == 200 and "data-placement" not in verified.text


def test_the_context_layer_has_bearings_and_no_private_field(desk: Desk) -> None:
    body = desk.client.get("/entidades/contexto.geojson")
    assert body.status_code == 200
    assert body.headers["content-type"].startswith("application/geo+json")
    features = body.json()["features"]
    kinds_ = [feature["properties"]["kind"] for feature in features]
    assert kinds_.count("municipality") == 1 and kinds_.count("ceas") >= 1
    devices = {f["properties"]["id"] for f in features if f["properties"]["kind"] == "device"}
    assert devices == {"dea-1", "dea-2", "dea-3"}
    assert all(set(f["properties"]) == {"id", "name", "kind"} for f in features
               if f["properties"]["kind"] == "device")  # fmt: skip
