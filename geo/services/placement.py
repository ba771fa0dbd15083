"""Placement checks for the moderation desk: is each device where its address says, did it move
far, does it duplicate another? Reads the layers once, then :mod:`geo.core.placement` decides.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import geopandas as gpd
from shapely.geometry import mapping

from geo.city import CityProfile
from geo.core.nearest import listed
from geo.core.placement import KnownPlace, Neighbour, PlacementCheck, check_placement
from geo.io.store import Store


def _points(frame: gpd.GeoDataFrame) -> list[tuple[dict[str, Any], float, float]]:
    rows = []
    for row, geometry in zip(frame.to_dict("records"), frame.geometry, strict=True):
        if geometry is None or geometry.is_empty or geometry.geom_type != "Point":
            continue
        rows.append((row, float(geometry.x), float(geometry.y)))
    return rows


def placement_checks(
    store: Store, devices: Sequence[Mapping[str, Any]], *, moves_m: Mapping[str, float | None]
) -> dict[str, PlacementCheck]:
    """The placement check of each device in ``devices`` (records with ``id``, ``geometry``,
    ``address`` and ``operator_entity_id``), by id.

    ``moves_m`` gives the length of each device's last move (``None``: it never moved).
    Addresses are located among the entities, the cohousing sites and the verified devices;
    duplicates are looked for among every device that is neither removed nor rejected.
    """
    entities = _points(store.query_layer("entities"))
    cohousing = _points(store.query_layer("cohousing"))
    registered = _points(store.query_layer("defibrillators"))
    entity_places = {
        str(row["id"]): KnownPlace(
            str(row.get("address") or ""), lon, lat, f"la entidad «{row['name']}»"
        )
        for row, lon, lat in entities
    }
    places = [
        *(place for place in entity_places.values() if place.address),
        *(KnownPlace(str(row["address"]), lon, lat, f"el cohousing «{row['name']}»")
          for row, lon, lat in cohousing if row.get("address")),
    ]  # fmt: skip
    verified = [
        (row, lon, lat) for row, lon, lat in registered
        if row.get("verification") == "verified" and row.get("status") != "removed"
    ]  # fmt: skip
    candidates = [
        (row, lon, lat) for row, lon, lat in registered
        if row.get("verification") != "rejected" and row.get("status") != "removed"
    ]  # fmt: skip
    checks: dict[str, PlacementCheck] = {}
    for device in devices:
        geometry = device.get("geometry")
        if geometry is None or getattr(geometry, "geom_type", None) != "Point":
            continue
        device_id = str(device["id"])
        own = [
            KnownPlace(str(row["address"]), lon, lat, f"el desfibrilador «{row['name']}»")
            for row, lon, lat in verified
            if row.get("address") and str(row["id"]) != device_id
        ]
        others = [
            Neighbour(str(row["id"]), str(row["name"]), lon, lat)
            for row, lon, lat in candidates
            if str(row["id"]) != device_id
        ]
        checks[device_id] = check_placement(
            lon=float(geometry.x),
            lat=float(geometry.y),
            address=device.get("address"),
            places=[*places, *own],
            entity_place=entity_places.get(str(device.get("operator_entity_id") or "")),
            moved_m=moves_m.get(device_id),
            others=others,
        )
    return checks


def map_context(store: Store, city: CityProfile) -> dict[str, Any]:
    """The bearings of the small maps that may have no tiles (the desk's moderation map and the
    portal's place picker), as a GeoJSON FeatureCollection (WGS 84): the municipality
    (``kind: municipality``), its CEAS zones (``ceas``) and the devices on the citizens' map
    (``device``: :func:`geo.core.nearest.listed` — verified, fixed, not removed). Public fields
    only: name and id."""
    zones = store.read_layer("ceas")
    devices = store.query_layer("defibrillators", where={"verification": ["verified"]})
    devices = devices.loc[listed(devices)]
    features: list[dict[str, Any]] = [
        {"type": "Feature", "properties": {"name": city.name, "kind": "municipality"},
         "geometry": mapping(city.boundary)},
        *({"type": "Feature", "properties": {"name": str(row.name), "kind": "ceas"},
           "geometry": mapping(row.geometry)} for row in zones.itertuples()),
    ]  # fmt: skip
    for row, lon, lat in _points(devices):
        features.append({
            "type": "Feature",
            "properties": {"id": str(row["id"]), "name": str(row["name"]), "kind": "device"},
            "geometry": {"type": "Point", "coordinates": [round(lon, 6), round(lat, 6)]},
        })  # fmt: skip
    return {"type": "FeatureCollection", "features": features}
