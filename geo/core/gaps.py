"""Where coverage falls short: the nearest available device of each point, the uncovered areas
ranked, the sites (entities, cohousing) with no device in reach, and coverage by income.

Built on a :class:`~geo.core.coverage.CoverageResult` or on the distance models
(:mod:`geo.core.distance`), in the city's metric CRS.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from geo.city import CityProfile
from geo.core.availability import (
    ReportFlag,
    available,
)
from geo.core.coverage import DEFAULT_RADIUS_M, CoverageResult, device_ids, shares_of
from geo.core.distance import (
    WALKING_SPEED_M_PER_MIN,
    DistanceModel,
    StraightLine,
    check_radius,
    device_points,
    metric_xy,
    nearest,
)
from geo.errors import CoverageInputError


def nearest_available(
    points: gpd.GeoDataFrame,
    devices: gpd.GeoDataFrame,
    city: CityProfile,
    *,
    at: dt.datetime | None = None,
    model: DistanceModel | None = None,
    max_distance_m: float = np.inf,
    reference_date: dt.date | None = None,
    count_overdue: bool = False,
    reports: Mapping[str, ReportFlag] | None = None,
) -> gpd.GeoDataFrame:
    """The nearest device available at ``at`` (24/7 if ``None``, see ``coverage``) for each point.

    Returns
    -------
    geopandas.GeoDataFrame
        ``points`` (metric CRS) with ``device_id`` (``None`` if none in reach), ``distance_m``
        and ``walk_min`` (at 4.5 km/h).
    """
    model = model or StraightLine()
    points_xy = metric_xy(points, "puntos")
    devices_xy, availability = device_points(
        devices, city, count_overdue=count_overdue, reports=reports
    )
    chosen = np.flatnonzero(available(availability, at=at, reference_date=reference_date))
    index, distance = nearest(
        points_xy, devices_xy[chosen], model=model, max_distance_m=max_distance_m
    )
    result = points.copy()
    result["device_id"] = device_ids(devices, chosen, index)
    result["distance_m"] = distance
    result["walk_min"] = distance / WALKING_SPEED_M_PER_MIN
    return result


#: Smallest gap cell: finer cells say nothing (coordinates are not that precise).
MIN_CELL_M = 1.0


def find_gaps(result: CoverageResult, *, cell_m: float | None = None) -> gpd.GeoDataFrame:
    """Uncovered residents gathered into square cells, ranked by uncovered residents then 65+.

    A cell's side defaults to 1.5 × ``radius_m`` (150 m for 100 m): about the footprint one new
    device would cover, so the top cells read as "where the next devices help most". Cells are
    aligned on multiples of ``cell_m`` in the metric CRS, so the same city always gives the same
    cells.

    Returns
    -------
    geopandas.GeoDataFrame
        One row per cell holding uncovered residents (metric CRS): ``rank`` (1 = most uncovered
        residents), ``residents``, ``residents_65_plus``, ``units``, ``zone_id`` (the zone holding
        most of its uncovered residents; ``None`` outside every zone), ``nearest_distance_m``
        (residents' mean distance to the nearest available device; ``inf`` when none is
        available anywhere), ``geometry`` (the cell).
    """
    side = 1.5 * result.radius_m if cell_m is None else cell_m
    if not (np.isfinite(side) and side >= MIN_CELL_M):
        msg = f"El lado de celda debe ser de al menos {MIN_CELL_M:g} m (recibido {side})."
        raise CoverageInputError(msg)
    units = result.units
    uncovered = units[~units["covered"] & (units["residents"] > 0)]
    columns = [
        "rank",
        "residents",
        "residents_65_plus",
        "units",
        "zone_id",
        "nearest_distance_m",
        "geometry",
    ]
    if uncovered.empty:
        return gpd.GeoDataFrame(columns=columns, geometry="geometry", crs=units.crs)
    xy = shapely.get_coordinates(uncovered.geometry.values)
    cell = np.floor(xy / side).astype(np.int64)
    residents = uncovered["residents"].to_numpy(dtype=np.int64)
    frame = pd.DataFrame(
        {
            "cx": cell[:, 0],
            "cy": cell[:, 1],
            "residents": residents,
            "residents_65_plus": uncovered["residents_65_plus"].to_numpy(dtype=np.int64),
            "zone_id": uncovered["zone_id"].to_numpy(dtype=object),
            "weighted_distance": uncovered["nearest_distance_m"].to_numpy(dtype=float) * residents,
        }
    )
    grouped = frame.groupby(["cx", "cy"]).agg(
        residents=("residents", "sum"),
        residents_65_plus=("residents_65_plus", "sum"),
        units=("residents", "size"),
        weighted_distance=("weighted_distance", "sum"),
    )
    grouped["nearest_distance_m"] = grouped["weighted_distance"] / grouped["residents"]
    by_zone = frame.groupby(["cx", "cy", "zone_id"], dropna=False)["residents"].sum()
    main_zone = (
        by_zone.reset_index()
        .sort_values("residents", ascending=False, kind="stable")
        .drop_duplicates(["cx", "cy"])
        .set_index(["cx", "cy"])["zone_id"]
    )
    grouped["zone_id"] = main_zone
    grouped = grouped.reset_index().sort_values(
        ["residents", "residents_65_plus", "cx", "cy"], ascending=[False, False, True, True]
    )
    x0, y0 = grouped["cx"].to_numpy() * side, grouped["cy"].to_numpy() * side
    cells = shapely.box(x0, y0, x0 + side, y0 + side)
    gaps = gpd.GeoDataFrame(grouped.reset_index(drop=True), geometry=list(cells), crs=units.crs)
    gaps["rank"] = np.arange(1, len(gaps) + 1)
    gaps["zone_id"] = gaps["zone_id"].astype(object).where(gaps["zone_id"].notna(), None)
    return gaps[columns]


def sites_without_device(
    sites: gpd.GeoDataFrame,
    devices: gpd.GeoDataFrame,
    city: CityProfile,
    *,
    radius_m: float = DEFAULT_RADIUS_M,
    at: dt.datetime | None = None,
    model: DistanceModel | None = None,
    reference_date: dt.date | None = None,
    count_overdue: bool = False,
    reports: Mapping[str, ReportFlag] | None = None,
) -> gpd.GeoDataFrame:
    """Entities or cohousing sites, with whether an available device is within ``radius_m``.

    ``at``, ``reference_date``, ``count_overdue`` and ``reports`` mean what they mean for
    :func:`coverage`.

    Returns
    -------
    geopandas.GeoDataFrame
        ``sites`` with ``holds_device`` (a working device of its own, by ``operator_entity_id``),
        ``nearest_device_id``, ``distance_m`` and ``covered``; sites lacking cover first, by
        distance. The plan's action 1.3 proposes a device for each site with ``covered`` false.
    """
    check_radius(radius_m)
    nearby = nearest_available(
        sites,
        devices,
        city,
        at=at,
        model=model,
        reference_date=reference_date,
        count_overdue=count_overdue,
        reports=reports,
    )
    working = devices[(devices["status"] == "active") & (devices["verification"] == "verified")]
    holders = set(working["operator_entity_id"].dropna())
    result = nearby.rename(columns={"device_id": "nearest_device_id"}).drop(columns="walk_min")
    result["holds_device"] = result["id"].isin(holders)
    result["covered"] = result["distance_m"] <= radius_m
    return result.sort_values(["covered", "distance_m"], ascending=[True, False])


def coverage_by_income(result: CoverageResult, incomes: pd.DataFrame) -> pd.DataFrame:
    """Coverage by income quintile of the residents' census section.

    Parameters
    ----------
    incomes
        ``code`` (census section, CUSEC) and ``income`` (e.g. INE ADRH mean income per person).

    Returns
    -------
    pandas.DataFrame
        One row per quintile (1 = poorest fifth of sections): ``quintile``, ``sections``,
        ``income_min``, ``income_max``, ``residents``, ``residents_covered``, ``share_covered``,
        ``residents_65_plus``, ``residents_65_plus_covered``, ``share_65_plus_covered``.
        Units whose section has no income are left out (their count is in ``attrs``).
    """
    units = result.units
    if "section_code" not in units:
        msg = "La capa de población no tiene section_code: no se puede cruzar con la renta."
        raise CoverageInputError(msg)
    sections = incomes.dropna(subset=["income"]).drop_duplicates("code").copy()
    if len(sections) < 5:
        msg = f"Hacen falta al menos 5 secciones con renta para formar quintiles ({len(sections)})."
        raise CoverageInputError(msg)
    sections["quintile"] = pd.qcut(sections["income"].rank(method="first"), 5, labels=False) + 1
    joined = units.merge(sections, how="left", left_on="section_code", right_on="code")
    missing = int(joined["quintile"].isna().sum())
    joined = joined.dropna(subset=["quintile"])
    joined["residents_covered"] = joined["residents"] * joined["covered"]
    joined["seniors_covered"] = joined["residents_65_plus"] * joined["covered"]
    table = joined.groupby("quintile").agg(
        sections=("code", "nunique"),
        income_min=("income", "min"),
        income_max=("income", "max"),
        residents=("residents", "sum"),
        residents_covered=("residents_covered", "sum"),
        residents_65_plus=("residents_65_plus", "sum"),
        residents_65_plus_covered=("seniors_covered", "sum"),
    )
    table["share_covered"] = shares_of(table["residents_covered"], table["residents"])
    table["share_65_plus_covered"] = shares_of(
        table["residents_65_plus_covered"], table["residents_65_plus"]
    )
    table = table.reset_index()
    table["quintile"] = table["quintile"].astype(int)
    table.attrs["units_without_income"] = missing
    return table
