"""Walking distance: the straight-line and walking-network models, and pairs within a radius.

Two models measure how far a person walks to a device: :class:`StraightLine` (the straight line
times a detour factor, no street network needed) and :class:`NetworkDistance` (the shortest walk
on a pedestrian graph, :mod:`geo.core.network`). Every analysis (coverage, nearest device,
siting, outcomes) measures through :func:`pairs_within` and :func:`nearest`, in metres, in the
city's metric CRS (:func:`to_metric`, :func:`metric_xy`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import geopandas as gpd
import numpy as np
import shapely
from scipy.spatial import cKDTree

from geo.city import CityProfile
from geo.core import network as walking
from geo.core.availability import Availability, ReportFlag, device_availability
from geo.errors import CoverageInputError, MetricCRSError

DEFAULT_DETOUR_FACTOR = 1.3
WALKING_SPEED_M_PER_MIN = 75.0  # 4.5 km/h


@dataclass(frozen=True)
class StraightLine:
    """Straight-line distance times a detour factor (no street network needed)."""

    detour_factor: float = DEFAULT_DETOUR_FACTOR
    name: str = field(default="straight_line", init=False)

    def __post_init__(self) -> None:
        if not self.detour_factor >= 1.0:
            msg = f"El factor de rodeo debe ser ≥ 1 (recibido {self.detour_factor})."
            raise CoverageInputError(msg)

    def describe(self) -> str:
        factor = f"{self.detour_factor:g}".replace(".", ",")
        return (
            f"distancia en línea recta × {factor} (factor de rodeo); no hay red de calles cargada"
        )


@dataclass(frozen=True)
class NetworkDistance:
    """Shortest walking path on a pedestrian street graph."""

    network: walking.WalkingNetwork
    name: str = field(default="walking_network", init=False)

    def describe(self) -> str:
        return f"distancia a pie por la {self.network.describe()}"


DistanceModel = StraightLine | NetworkDistance


@dataclass(frozen=True)
class Reach:
    """Every (demand unit, device) pair within ``radius_m`` of walking, sorted by unit.

    ``unit`` and ``device`` index the rows of the frames the reach was computed from.
    """

    unit: np.ndarray
    device: np.ndarray
    distance_m: np.ndarray
    n_units: int
    n_devices: int
    radius_m: float


def pairs_within(
    units_xy: np.ndarray, devices_xy: np.ndarray, *, radius_m: float, model: DistanceModel
) -> Reach:
    """All unit–device pairs within ``radius_m`` of walking (coordinates in metres)."""
    check_radius(radius_m)
    if isinstance(model, NetworkDistance):
        unit, device, distance = walking.pairs_within(
            model.network, units_xy, devices_xy, radius_m=radius_m
        )
    else:
        unit, device, distance = _straight_pairs(
            units_xy, devices_xy, radius_m / model.detour_factor
        )
        distance = distance * model.detour_factor
    return Reach(unit, device, distance, len(units_xy), len(devices_xy), radius_m)


def _straight_pairs(
    units_xy: np.ndarray, devices_xy: np.ndarray, radius: float, *, k: int = 4
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pairs within ``radius`` (straight line), exact.

    A k-nearest query with a distance bound answers most units in one vectorised call; units
    whose k-th neighbour is still in range may have more, and are asked again in full.
    """
    empty = (np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0, np.float64))
    if len(units_xy) == 0 or len(devices_xy) == 0:
        return empty
    tree = cKDTree(devices_xy)
    k = min(k, len(devices_xy))
    # The bound is strict; nudge it so a device exactly at ``radius`` counts, as it does below.
    bound = np.nextafter(radius, np.inf)
    distance, device = tree.query(
        units_xy, k=k, distance_upper_bound=bound, workers=_workers(len(units_xy))
    )
    distance, device = distance.reshape(len(units_xy), k), device.reshape(len(units_xy), k)
    saturated = np.isfinite(distance[:, -1])
    found = np.isfinite(distance) & ~saturated[:, None]
    unit = np.broadcast_to(np.arange(len(units_xy))[:, None], found.shape)[found]
    parts_unit, parts_device, parts_distance = [unit], [device[found]], [distance[found]]
    if saturated.any():
        crowded = np.flatnonzero(saturated)
        neighbours = tree.query_ball_point(
            units_xy[crowded], radius, workers=_workers(len(units_xy))
        )
        counts = np.fromiter(map(len, neighbours), dtype=np.int64, count=len(crowded))
        more_device = np.concatenate([np.asarray(n, dtype=np.int64) for n in neighbours])
        more_unit = np.repeat(crowded, counts)
        gap = units_xy[more_unit] - devices_xy[more_device]
        parts_unit.append(more_unit)
        parts_device.append(more_device)
        parts_distance.append(np.hypot(gap[:, 0], gap[:, 1]))
    unit = np.concatenate(parts_unit).astype(np.int64)
    device = np.concatenate(parts_device).astype(np.int64)
    distance = np.concatenate(parts_distance)
    keep = distance <= radius
    order = np.lexsort((device[keep], unit[keep]))
    return unit[keep][order], device[keep][order], distance[keep][order]


def _workers(n_queries: int) -> int:
    """KD-tree threads: all cores for large queries; starting threads costs more on small ones."""
    return -1 if n_queries >= 50_000 else 1


def nearest(
    units_xy: np.ndarray,
    devices_xy: np.ndarray,
    *,
    model: DistanceModel,
    max_distance_m: float = np.inf,
) -> tuple[np.ndarray, np.ndarray]:
    """Index of the nearest device for each unit (−1 if none within reach) and its distance (m)."""
    if len(devices_xy) == 0:
        return np.full(len(units_xy), -1, np.int64), np.full(len(units_xy), np.inf)
    if isinstance(model, NetworkDistance):
        return walking.nearest_target(
            model.network, units_xy, devices_xy, max_distance_m=max_distance_m
        )
    bound = max_distance_m / model.detour_factor
    distance, device = cKDTree(devices_xy).query(
        units_xy,
        k=1,
        distance_upper_bound=np.nextafter(bound, np.inf),
        workers=_workers(len(units_xy)),
    )
    distance = distance * model.detour_factor
    missing = ~np.isfinite(distance) | (distance > max_distance_m)
    device = np.where(missing, -1, device).astype(np.int64)
    return device, np.where(missing, np.inf, distance)


def to_metric(frame: gpd.GeoDataFrame, city: CityProfile) -> gpd.GeoDataFrame:
    """``frame`` projected into the city's metric CRS (EPSG:25830 for Palencia)."""
    if frame.crs is None:
        msg = "La capa no declara su CRS; se esperaba EPSG:4326 o un CRS proyectado en metros."
        raise MetricCRSError(msg)
    return frame.to_crs(city.metric_crs)


def metric_xy(frame: gpd.GeoDataFrame, what: str) -> np.ndarray:
    """Point coordinates (n, 2) in metres; refuses geographic CRSs and non-point geometry."""
    if frame.crs is None or not frame.crs.is_projected:
        crs = "sin CRS" if frame.crs is None else frame.crs.to_string()
        msg = (
            f"La capa de {what} está en {crs} (grados); las distancias se calculan en metros. "
            "Proyéctela antes a un CRS métrico, p. ej. con geo.core.distance.to_metric "
            "(EPSG:25830)."
        )
        raise MetricCRSError(msg)
    if len(frame) and not (shapely.get_type_id(frame.geometry.values) == 0).all():  # 0: Point
        msg = f"La capa de {what} debe tener geometrías de tipo Point."
        raise CoverageInputError(msg)
    return shapely.get_coordinates(frame.geometry.values).reshape(len(frame), 2)


# --- checks shared by the analyses ----------------------------------------------------------


def model_notes(model: DistanceModel, xy: np.ndarray, radius_m: float) -> tuple[str, ...]:
    """Warn when a walking network leaves residents out of reach by construction."""
    if not isinstance(model, NetworkDistance) or len(xy) == 0:
        return ()
    _, snapped_m = walking.snap(model.network, xy)
    far = int((snapped_m > radius_m).sum())
    if far == 0:
        return ()
    return (
        f"{far} de {len(xy)} unidades de población ({far / len(xy):.0%}) están a más de "
        f"{radius_m:g} m del nodo más cercano de la {model.network.describe()}: no pueden quedar "
        "cubiertas; compruebe que la red cubre todo el municipio.",
    )


def device_points(
    devices: gpd.GeoDataFrame,
    city: CityProfile,
    *,
    assume_unknown_open: bool = False,
    count_overdue: bool = False,
    reports: Mapping[str, ReportFlag] | None = None,
) -> tuple[np.ndarray, Availability]:
    """Device coordinates (metres) and who may count when, in the city's time zone."""
    xy = metric_xy(devices, "desfibriladores")
    availability = device_availability(
        devices,
        timezone=city.timezone,
        calendar=city.calendar,
        assume_unknown_open=assume_unknown_open,
        count_overdue=count_overdue,
        reports=reports,
    )
    return xy, availability


def check_radius(radius_m: float) -> None:
    if not (np.isfinite(radius_m) and radius_m > 0):
        msg = f"El radio debe ser un número de metros mayor que 0 (recibido {radius_m})."
        raise CoverageInputError(msg)
