"""Where a point is, in words a person can act on: the nearest named place or street.

A proposed site reads "a 40 m de Residencia San Juan (Calle Mayor 3)" rather than a pair of
coordinates. Pure: GeoDataFrames in a projected CRS (metres) in, plain records out.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from scipy.spatial import cKDTree

from geo.core.distance import metric_xy

#: How far (straight line, metres) a place may be and still say where a point is.
NEAR_WITHIN_M = 150.0
#: Under this distance a point is "junto a" the place rather than "a N m de" it.
BESIDE_M = 10.0

#: The kinds of place, as a sentence names them.
PLACE_KINDS = {
    "entity": "entidad",
    "cohousing": "cohousing",
    "address": "dirección conocida",
    "street": "calle",
    "device": "desfibrilador existente",
}


@dataclass(frozen=True)
class Near:
    """The place a point is near.

    ``kind`` is one of :data:`PLACE_KINDS`; ``distance_m`` is the straight-line distance in
    metres (0 for a device's own place); ``text`` is the Spanish phrase for maps and reports.
    """

    kind: str
    name: str
    address: str | None
    distance_m: float
    text: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "name": self.name,
            "address": self.address,
            "distance_m": self.distance_m,
            "text": self.text,
        }


def _text(value: object) -> str | None:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None
    text = str(value).strip()
    return text or None


def known_places(
    *,
    entities: gpd.GeoDataFrame | None = None,
    cohousing: gpd.GeoDataFrame | None = None,
    devices: gpd.GeoDataFrame | None = None,
) -> gpd.GeoDataFrame:
    """Named places of the loaded layers: columns ``kind``, ``name``, ``address``, ``geometry``.

    Entities and cohousing sites by their name (with their address when known); devices only
    where their address is known, named by it (``kind`` = ``address``). All layers must share
    one projected CRS; a polygon stands at its representative point.
    """
    parts = []
    crs = None
    for kind, frame in (("entity", entities), ("cohousing", cohousing), ("address", devices)):
        if frame is None or frame.empty:
            continue
        crs = crs or frame.crs
        names = frame["name"] if "name" in frame else pd.Series([None] * len(frame))
        addresses = frame["address"] if "address" in frame else pd.Series([None] * len(frame))
        rows = pd.DataFrame(
            {
                "kind": kind,
                "name": [_text(v) for v in names.to_numpy(dtype=object)],
                "address": [_text(v) for v in addresses.to_numpy(dtype=object)],
            }
        )
        geometry = frame.geometry.to_crs(crs).representative_point().to_numpy()
        if kind == "address":
            keep = rows["address"].notna().to_numpy()
            rows = rows[keep].assign(name=rows.loc[keep, "address"], address=None)
            geometry = geometry[keep]
        else:
            keep = rows["name"].notna().to_numpy()
            rows, geometry = rows[keep], geometry[keep]
        parts.append(gpd.GeoDataFrame(rows.reset_index(drop=True), geometry=geometry, crs=crs))
    if not parts:
        return gpd.GeoDataFrame({"kind": [], "name": [], "address": []}, geometry=[], crs=crs)
    return gpd.GeoDataFrame(pd.concat(parts, ignore_index=True), geometry="geometry", crs=crs)


def near_text(name: str, address: str | None, distance_m: float) -> str:
    """``"a 40 m de Residencia San Juan (Calle Mayor 3)"``; ``"junto a …"`` under 10 m.

    The distance is rounded to 10 m: a straight-line figure, not a walking one.
    """
    place = f"{name} ({address})" if address and address != name else name
    if distance_m < BESIDE_M:
        return f"junto a {place}"
    return f"a {round(distance_m / 10) * 10:.0f} m de {place}"


def near_places(
    points: gpd.GeoDataFrame,
    places: gpd.GeoDataFrame,
    *,
    within_m: float = NEAR_WITHIN_M,
    streets: gpd.GeoDataFrame | None = None,
) -> list[Near | None]:
    """For each point, the nearest place within ``within_m`` (straight line), else the nearest
    named street within ``within_m`` when ``streets`` (lines with ``name``) are given, else
    ``None`` (the caller keeps the coordinates).

    ``points`` (Point geometries), ``places`` (:func:`known_places`) and ``streets`` share one
    projected CRS; ties go to the first place listed.
    """
    xy = metric_xy(points, "emplazamientos")
    found: list[Near | None] = [None] * len(xy)
    if len(xy) == 0:
        return found
    if not places.empty:
        place_xy = metric_xy(places.to_crs(points.crs), "lugares")
        distance, index = cKDTree(place_xy).query(xy, k=1, distance_upper_bound=within_m)
        for i, (d, j) in enumerate(zip(distance, index, strict=True)):
            if np.isfinite(d):
                row = places.iloc[int(j)]
                name, address = str(row["name"]), _text(row["address"])
                found[i] = Near(
                    str(row["kind"]), name, address, round(float(d), 1),
                    near_text(name, address, float(d)),
                )  # fmt: skip
    if streets is not None and not streets.empty:
        named = streets[[_text(v) is not None for v in streets["name"].to_numpy(dtype=object)]]
        lines = named.geometry.to_crs(points.crs).to_numpy()
        for i in [i for i, near in enumerate(found) if near is None]:
            point = shapely.Point(xy[i])
            distances = shapely.distance(lines, point)
            if len(distances) and distances.min() <= within_m:
                j = int(np.argmin(distances))
                name = str(named["name"].iloc[j]).strip()
                d = float(distances[j])
                found[i] = Near("street", name, None, round(d, 1), near_text(name, None, d))
    return found


def device_place(name: object, address: object) -> Near:
    """An existing device's own place (an extension of its hours happens where it stands)."""
    label = _text(name) or "desfibrilador"
    where = _text(address)
    text = f"en {label} ({where})" if where else f"en {label}"
    return Near("device", label, where, 0.0, text)
