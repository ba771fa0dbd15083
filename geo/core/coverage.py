"""Coverage: who lives within a short walk of an available defibrillator — by zone, by hour.

Pure functions: GeoDataFrames in, frozen results and GeoDataFrames out. Every layer handed to a
metric function must already be in a projected CRS (metres); :func:`to_metric` projects the
EPSG:4326 layers into the city's metric CRS (ETRS89 / UTM 30N for Palencia).

A resident is *covered* when a device available at that moment is within ``radius_m`` of walking.
Walking distance is either

- the straight line times a detour factor (:class:`StraightLine`, default 1.3: walking routes in
  compact European street grids run 20–40 % longer than the straight line), used when no street
  network is loaded; or
- the shortest path on a pedestrian graph (:class:`NetworkDistance`).

Which devices are available when is decided in :mod:`geo.core.availability`. For the weekly profile
the spatial work is done once: every (unit, device) pair in reach is found, and availability is a
per-device mask of 168 hourly slices; no spatial join is repeated per hour.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from geo.city import CityProfile
from geo.core.availability import (
    HOURS_PER_WEEK,
    Availability,
    HoursIssue,
    ReportFlag,
    WeeklyAvailability,
    available_both_ways,
    local_instant,
    slice_label,
    weekly_availability,
)
from geo.core.distance import (
    DistanceModel,
    Reach,
    StraightLine,
    check_radius,
    device_points,
    metric_xy,
    model_notes,
    nearest,
    pairs_within,
)
from geo.errors import CoverageInputError, MetricCRSError

DEFAULT_RADIUS_M = 100.0
SENSITIVITY_RADII_M = (100.0, 200.0, 300.0)
NO_ZONE = "sin zona"


# --- inputs -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Demand:
    """Population prepared for coverage: where people live, how many, and in which zone."""

    population: gpd.GeoDataFrame
    xy: np.ndarray
    residents: np.ndarray
    seniors: np.ndarray
    zone: np.ndarray  # index into zone_ids, −1 outside every zone
    zone_ids: tuple[str, ...]
    zone_names: tuple[str, ...]

    def units(self) -> gpd.GeoDataFrame:
        """The population's identifying columns, with ``zone_id`` (a new frame)."""
        wanted = ("id", "residents", "residents_65_plus", "section_code")
        columns = [column for column in wanted if column in self.population]
        units = self.population[[*columns, "geometry"]].copy()
        lookup = np.array([*self.zone_ids, None], dtype=object)  # index −1 → None
        units["zone_id"] = lookup[self.zone]
        return units


def prepare_demand(
    population: gpd.GeoDataFrame, *, zones: gpd.GeoDataFrame | None = None
) -> Demand:
    """Check the population layer and assign each unit its CEAS zone.

    Raises
    ------
    MetricCRSError
        The layers are not in a projected CRS.
    CoverageInputError
        Negative or missing residents, more residents 65+ than residents, or non-point units.
    """
    xy = metric_xy(population, "población")
    residents = _counts(population, "residents")
    seniors = _counts(population, "residents_65_plus")
    over = np.flatnonzero(seniors > residents)
    if len(over):
        msg = (
            f"{len(over)} unidades de población tienen más residentes de 65+ que residentes "
            f"(p. ej. {population['id'].iloc[over[0]]})."
        )
        raise CoverageInputError(msg)
    zone = np.full(len(population), -1, dtype=np.int64)
    zone_ids: tuple[str, ...] = ()
    zone_names: tuple[str, ...] = ()
    if zones is not None and len(zones):
        _check_same_crs(zones, population)
        zone_ids = tuple(zones["id"])
        zone_names = tuple(zones["name"])
        tree = shapely.STRtree(zones.geometry.values)
        point, polygon = tree.query(population.geometry.values, predicate="intersects")
        zone[point] = polygon  # a point on a shared edge goes to the last zone found
    return Demand(population, xy, residents, seniors, zone, zone_ids, zone_names)


def prepare_scene(
    population: gpd.GeoDataFrame,
    devices: gpd.GeoDataFrame,
    city: CityProfile,
    *,
    zones: gpd.GeoDataFrame | None,
    assume_unknown_open: bool,
    count_overdue: bool,
    reports: Mapping[str, ReportFlag] | None,
) -> tuple[Demand, np.ndarray, Availability]:
    """What every analysis starts from: the demand units (:func:`prepare_demand`), and the
    devices' coordinates and availability (:func:`geo.core.distance.device_points`)."""
    demand = prepare_demand(population, zones=zones)
    devices_xy, availability = device_points(
        devices,
        city,
        assume_unknown_open=assume_unknown_open,
        count_overdue=count_overdue,
        reports=reports,
    )
    return demand, devices_xy, availability


def _counts(frame: gpd.GeoDataFrame, column: str) -> np.ndarray:
    if column not in frame:
        msg = f"Falta la columna {column!r} en la capa de población."
        raise CoverageInputError(msg)
    values = pd.to_numeric(frame[column], errors="coerce")
    bad = values.isna() | (values < 0)
    if bad.any():
        first = int(np.flatnonzero(bad.to_numpy())[0])
        msg = (
            f"{int(bad.sum())} unidades de población tienen {column} negativo o vacío "
            f"(p. ej. {frame['id'].iloc[first]}: {frame[column].iloc[first]!r})."
        )
        raise CoverageInputError(msg)
    return values.to_numpy(dtype=np.int64)


def _check_same_crs(zones: gpd.GeoDataFrame, population: gpd.GeoDataFrame) -> None:
    if zones.crs != population.crs:
        msg = f"Las zonas ({zones.crs}) y la población ({population.crs}) no comparten CRS."
        raise MetricCRSError(msg)


# --- results ----------------------------------------------------------------------------------


def _share(part: float, whole: float) -> float:
    return float(part) / float(whole) if whole else 0.0


@dataclass(frozen=True)
class CoverageResult:
    """Residents covered at one moment (``instant``) or by always-available devices (``always``).

    ``by_zone`` has one row per CEAS zone, by name (plus ``sin zona``, last, when some units fall
    outside every zone): ``zone_id``, ``zone_name``, ``residents``, ``residents_covered``,
    ``share_covered``, ``residents_65_plus``, ``residents_65_plus_covered``,
    ``share_65_plus_covered``.
    ``units`` is the population (metric CRS) with ``zone_id``, ``covered``, ``nearest_device_id``
    and ``nearest_distance_m`` (to the nearest available device; ``inf`` when none at all).
    ``residents_only_overdue`` (and 65+) are the residents that only devices with overdue
    maintenance reach: the upkeep gap (counted as covered only with ``count_overdue``).
    """

    mode: str
    at: dt.datetime | None
    radius_m: float
    distance_model: str
    distance_model_description: str
    residents: int
    residents_covered: int
    residents_65_plus: int
    residents_65_plus_covered: int
    devices_available: int
    devices_total: int
    by_zone: pd.DataFrame
    units: gpd.GeoDataFrame
    hours_issues: tuple[HoursIssue, ...]
    notes: tuple[str, ...] = ()
    residents_only_overdue: int = 0
    residents_65_plus_only_overdue: int = 0
    count_overdue: bool = False

    @property
    def share_covered(self) -> float:
        return _share(self.residents_covered, self.residents)

    @property
    def share_65_plus_covered(self) -> float:
        return _share(self.residents_65_plus_covered, self.residents_65_plus)

    def to_dict(self) -> dict[str, Any]:
        """The stable JSON shape (documented in the README)."""
        return {
            "mode": self.mode,
            "at": self.at.isoformat() if self.at else None,
            "radius_m": self.radius_m,
            "distance_model": self.distance_model,
            "distance_model_description": self.distance_model_description,
            "devices_available": self.devices_available,
            "devices_total": self.devices_total,
            "residents": self.residents,
            "residents_covered": self.residents_covered,
            "share_covered": round(self.share_covered, 6),
            "residents_65_plus": self.residents_65_plus,
            "residents_65_plus_covered": self.residents_65_plus_covered,
            "share_65_plus_covered": round(self.share_65_plus_covered, 6),
            "count_overdue": self.count_overdue,
            "residents_only_overdue": self.residents_only_overdue,
            "residents_65_plus_only_overdue": self.residents_65_plus_only_overdue,
            "zones": _records(self.by_zone),
            "warnings": [*self.notes, *(str(issue) for issue in self.hours_issues)],
        }


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return [
        {k: (round(v, 6) if isinstance(v, float) else v) for k, v in row.items()}
        for row in frame.to_dict(orient="records")
    ]


def _zone_table(demand: Demand, covered: np.ndarray) -> pd.DataFrame:
    n_zones = len(demand.zone_ids)
    slot = np.where(demand.zone >= 0, demand.zone, n_zones)  # last bin: outside every zone
    size = n_zones + 1
    residents = np.bincount(slot, weights=demand.residents, minlength=size)
    covered_r = np.bincount(slot, weights=demand.residents * covered, minlength=size)
    seniors = np.bincount(slot, weights=demand.seniors, minlength=size)
    covered_s = np.bincount(slot, weights=demand.seniors * covered, minlength=size)
    table = pd.DataFrame(
        {
            "zone_id": [*demand.zone_ids, None],
            "zone_name": [*demand.zone_names, NO_ZONE],
            "residents": residents.astype(np.int64),
            "residents_covered": covered_r.astype(np.int64),
            "residents_65_plus": seniors.astype(np.int64),
            "residents_65_plus_covered": covered_s.astype(np.int64),
        }
    )
    if n_zones and residents[-1] == 0:
        table = table.iloc[:-1]
    table["share_covered"] = shares_of(table["residents_covered"], table["residents"])
    table["share_65_plus_covered"] = shares_of(
        table["residents_65_plus_covered"], table["residents_65_plus"]
    )
    order = [
        "zone_id",
        "zone_name",
        "residents",
        "residents_covered",
        "share_covered",
        "residents_65_plus",
        "residents_65_plus_covered",
        "share_65_plus_covered",
    ]
    # Zones by name, whatever order the layer came in; units outside every zone last.
    table = table.sort_values("zone_name", key=lambda names: names.str.lower(), kind="stable")
    outside = table["zone_id"].isna()
    return pd.concat([table[~outside], table[outside]])[order].reset_index(drop=True)


def shares_of(part: pd.Series, whole: pd.Series) -> pd.Series:
    """``part / whole`` row by row, 0 where ``whole`` is 0."""
    return (part / whole.where(whole > 0)).fillna(0.0).astype(float)


# --- coverage at one moment -------------------------------------------------------------------


def coverage(
    population: gpd.GeoDataFrame,
    devices: gpd.GeoDataFrame,
    city: CityProfile,
    *,
    radius_m: float = DEFAULT_RADIUS_M,
    at: dt.datetime | None = None,
    zones: gpd.GeoDataFrame | None = None,
    model: DistanceModel | None = None,
    assume_unknown_open: bool = False,
    reference_date: dt.date | None = None,
    count_overdue: bool = False,
    reports: Mapping[str, ReportFlag] | None = None,
) -> CoverageResult:
    """Residents within ``radius_m`` of a device available at ``at`` (or always, if ``None``).

    Parameters
    ----------
    population, devices, zones
        Layers in a projected CRS (metres); see :func:`to_metric`.
    city
        Gives the time zone and country the opening hours are evaluated in.
    radius_m
        Walking distance that counts as covered (100 m ≈ 1.5 min, the literature's standard).
    at
        The instant (local time if it has no zone). ``None``: only devices available 24/7.
    model
        Distance model; default straight line × 1.3.
    assume_unknown_open
        Count devices with missing or unparseable hours as always open.
    reference_date
        With ``at=None``: "always" means open at every moment of the 366 days from the Monday of
        this date's week, public holidays included, and in date on that day (required then).
    count_overdue
        Count devices whose pads or battery expired (the old count, for comparison). Either
        way the result says how many residents only such devices protect.
    reports
        Pending citizen reports that a device is missing or broken: those do not count.
    """
    model = model or StraightLine()
    check_radius(radius_m)
    demand, devices_xy, availability = prepare_scene(
        population, devices, city, zones=zones, assume_unknown_open=assume_unknown_open,
        count_overdue=count_overdue, reports=reports,
    )  # fmt: skip
    instant = None if at is None else local_instant(at, city.timezone)
    strict, lenient = available_both_ways(availability, at=instant, reference_date=reference_date)
    return _coverage_with(
        demand,
        devices,
        devices_xy,
        lenient if count_overdue else strict,
        availability,
        model,
        radius_m,
        mode="always" if at is None else "instant",
        at=instant,
        other=strict if count_overdue else lenient,
        day=instant.date() if instant is not None else reference_date,
    )


def _coverage_with(
    demand: Demand,
    devices: gpd.GeoDataFrame,
    devices_xy: np.ndarray,
    available: np.ndarray,
    availability: Availability,
    model: DistanceModel,
    radius_m: float,
    *,
    mode: str,
    at: dt.datetime | None,
    other: np.ndarray,
    day: dt.date | None,
) -> CoverageResult:
    chosen = np.flatnonzero(available)
    index, distance = nearest(demand.xy, devices_xy[chosen], model=model)
    covered = distance <= radius_m
    # The upkeep gap: residents whom only devices with expired pads or battery reach. ``other``
    # is the count the other way round (overdue devices counted, or not).
    only_overdue = np.zeros(len(covered), dtype=bool)
    if (other != available).any():
        _, other_distance = nearest(demand.xy, devices_xy[np.flatnonzero(other)], model=model)
        other_covered = other_distance <= radius_m
        only_overdue = (
            covered & ~other_covered if availability.count_overdue else other_covered & ~covered
        )
    units = demand.units()
    units["covered"] = covered
    units["nearest_device_id"] = device_ids(devices, chosen, index)
    units["nearest_distance_m"] = distance
    return CoverageResult(
        mode=mode,
        at=at,
        radius_m=float(radius_m),
        distance_model=model.name,
        distance_model_description=model.describe(),
        residents=int(demand.residents.sum()),
        residents_covered=int(demand.residents[covered].sum()),
        residents_65_plus=int(demand.seniors.sum()),
        residents_65_plus_covered=int(demand.seniors[covered].sum()),
        devices_available=len(chosen),
        devices_total=len(devices),
        by_zone=_zone_table(demand, covered),
        units=units,
        hours_issues=availability.issues,
        notes=(
            *model_notes(model, demand.xy, radius_m),
            *availability.report_warnings(),
            *(availability.overdue_warnings(day) if day is not None else ()),
        ),
        residents_only_overdue=int(demand.residents[only_overdue].sum()),
        residents_65_plus_only_overdue=int(demand.seniors[only_overdue].sum()),
        count_overdue=availability.count_overdue,
    )


def device_ids(devices: gpd.GeoDataFrame, chosen: np.ndarray, index: np.ndarray) -> np.ndarray:
    """Ids of ``devices[chosen[index]]``, ``None`` where ``index`` is −1."""
    ids = np.full(len(index), None, dtype=object)
    found = index >= 0
    ids[found] = devices["id"].to_numpy(dtype=object)[chosen[index[found]]]
    return ids


# --- the week ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class WeeklyCoverage:
    """Coverage in each of the 168 hours of a reference week.

    ``slices`` has one row per hour: ``slot`` (0 = Monday 00:00–01:00), ``weekday`` (0 = Monday),
    ``hour``, ``label``, ``holiday`` (the hour falls on one of the city's holidays),
    ``devices_available``, ``residents_covered``, ``share_covered``,
    ``residents_65_plus_covered``, ``share_65_plus_covered``, ``share_lost`` (of the residents
    the same devices would cover if all were open 24/7). ``zone_slices`` is the long table
    ``zone_id``, ``slot``, ``residents_covered``, ``share_covered``.
    """

    week_start: dt.datetime
    radius_m: float
    distance_model: str
    distance_model_description: str
    residents: int
    residents_65_plus: int
    residents_covered_always: int
    residents_covered_potential: int
    slices: pd.DataFrame
    zone_slices: pd.DataFrame
    hours_issues: tuple[HoursIssue, ...]
    notes: tuple[str, ...] = ()
    residents_only_overdue: int = 0
    count_overdue: bool = False

    @property
    def mean_share_covered(self) -> float:
        return float(self.slices["share_covered"].mean())

    @property
    def share_lost_to_hours(self) -> float:
        """Share of the potential coverage lost to opening hours, averaged over the week."""
        return self.share_lost_in(np.arange(HOURS_PER_WEEK))

    def share_lost_in(self, slots: np.ndarray) -> float:
        """The same, averaged over some slots (e.g. evenings, nights and weekends)."""
        potential = self.residents_covered_potential
        covered = self.slices["residents_covered"].to_numpy()[slots].mean()
        return 1.0 - _share(covered, potential) if potential else 0.0

    def to_dict(self) -> dict[str, Any]:
        """The stable JSON shape (documented in the README)."""
        worst = self.slices.loc[self.slices["residents_covered"].idxmin()]
        return {
            "mode": "weekly",
            "week_start": self.week_start.isoformat(),
            "radius_m": self.radius_m,
            "distance_model": self.distance_model,
            "distance_model_description": self.distance_model_description,
            "residents": self.residents,
            "residents_65_plus": self.residents_65_plus,
            "residents_covered_always": self.residents_covered_always,
            "share_covered_always": round(_share(self.residents_covered_always, self.residents), 6),
            "residents_covered_potential": self.residents_covered_potential,
            "share_covered_potential": round(
                _share(self.residents_covered_potential, self.residents), 6
            ),
            "mean_share_covered": round(self.mean_share_covered, 6),
            "count_overdue": self.count_overdue,
            "residents_only_overdue": self.residents_only_overdue,
            "share_lost_to_hours": round(self.share_lost_to_hours, 6),
            "share_lost_off_hours": round(self.share_lost_in(off_hours_slots()), 6),
            "worst_slot": {
                "slot": int(worst["slot"]),
                "label": worst["label"],
                "share_covered": round(float(worst["share_covered"]), 6),
            },
            "slices": _records(self.slices),
            "zones": _records(self.zone_slices),
            "warnings": [*self.notes, *(str(issue) for issue in self.hours_issues)],
        }


def off_hours_slots() -> np.ndarray:
    """Evenings, nights and weekends: weekdays 20:00–08:00 and all of Saturday and Sunday."""
    slot = np.arange(HOURS_PER_WEEK)
    weekday, hour = np.divmod(slot, 24)
    return np.flatnonzero((weekday >= 5) | (hour >= 20) | (hour < 8))


def weekly_coverage(
    population: gpd.GeoDataFrame,
    devices: gpd.GeoDataFrame,
    city: CityProfile,
    *,
    week_of: dt.date,
    radius_m: float = DEFAULT_RADIUS_M,
    zones: gpd.GeoDataFrame | None = None,
    model: DistanceModel | None = None,
    assume_unknown_open: bool = False,
    count_overdue: bool = False,
    reports: Mapping[str, ReportFlag] | None = None,
) -> WeeklyCoverage:
    """Coverage in each hour of the week holding ``week_of``.

    The (unit, device) pairs in reach are found once; each device's availability is a mask of
    168 slices; per unit the masks of its devices are OR-ed, and units with the same combined
    mask are summed together, so the cost of the 168 slices is that of a few hundred masks.
    A device counts in a slice only while its maintenance is in date (unless
    ``count_overdue``); ``residents_only_overdue`` averages, over the week, the residents that
    only devices with overdue maintenance reach.
    """
    model = model or StraightLine()
    check_radius(radius_m)
    demand, devices_xy, availability = prepare_scene(
        population, devices, city, zones=zones, assume_unknown_open=assume_unknown_open,
        count_overdue=count_overdue, reports=reports,
    )  # fmt: skip
    counted = np.flatnonzero(availability.counted())
    reach = pairs_within(demand.xy, devices_xy[counted], radius_m=radius_m, model=model)
    week = weekly_availability(availability, week_of=week_of)
    figures = _week_figures(demand, reach, week, counted)
    other = week.recounted(count_overdue=not count_overdue)
    only_overdue = 0.0
    if (other.slices != week.slices).any():
        other_covered = _week_figures(demand, reach, other, counted).covered
        gap = figures.covered - other_covered if count_overdue else other_covered - figures.covered
        only_overdue = float(gap.mean())
    residents = int(demand.residents.sum())
    seniors = int(demand.seniors.sum())
    potential = int(demand.residents[figures.reached].sum())
    covered, covered_seniors = figures.covered, figures.covered_seniors
    slot = np.arange(HOURS_PER_WEEK)
    slices = pd.DataFrame(
        {
            "slot": slot,
            "weekday": slot // 24,
            "hour": slot % 24,
            "label": [slice_label(int(s)) for s in slot],
            "holiday": week.holidays,
            "devices_available": week.slices[counted].sum(axis=0).astype(np.int64),
            "residents_covered": covered,
            "share_covered": covered / residents if residents else 0.0,
            "residents_65_plus_covered": covered_seniors,
            "share_65_plus_covered": covered_seniors / seniors if seniors else 0.0,
            "share_lost": 1.0 - covered / potential if potential else 0.0,
        }
    )
    days = [(week.week_start + dt.timedelta(days=d)).date() for d in range(7)]
    overdue = [availability.overdue_warnings(day) for day in days]
    return WeeklyCoverage(
        week_start=week.week_start,
        radius_m=float(radius_m),
        distance_model=model.name,
        distance_model_description=model.describe(),
        residents=residents,
        residents_65_plus=seniors,
        residents_covered_always=int(demand.residents[figures.reached][figures.unit_always].sum()),
        residents_covered_potential=potential,
        slices=slices,
        zone_slices=_zone_slices(
            demand, figures.group_zone, figures.group_residents, figures.group_open
        ),
        hours_issues=availability.issues,
        notes=(
            *model_notes(model, demand.xy, radius_m),
            *availability.report_warnings(),
            *dict.fromkeys(line for lines in overdue for line in lines),
        ),
        residents_only_overdue=round(only_overdue),
        count_overdue=count_overdue,
    )


@dataclass(frozen=True)
class _WeekFigures:
    reached: np.ndarray
    unit_always: np.ndarray
    covered: np.ndarray
    covered_seniors: np.ndarray
    group_zone: np.ndarray
    group_residents: np.ndarray
    group_open: np.ndarray


def _week_figures(
    demand: Demand, reach: Reach, week: WeeklyAvailability, counted: np.ndarray
) -> _WeekFigures:
    masks = np.packbits(week.slices[counted], axis=1)  # (devices, 21) uint8
    always = week.always[counted]
    reached, starts = np.unique(reach.unit, return_index=True)
    # A unit is covered in a slot when any device in its reach is open: OR of their masks.
    unit_masks = np.bitwise_or.reduceat(masks[reach.device], starts, axis=0)
    unit_always = np.logical_or.reduceat(always[reach.device], starts)
    # Group units by their combined mask and zone: a few hundred groups instead of every unit.
    n_zone_bins = len(demand.zone_ids) + 1
    zone_bin = np.where(demand.zone[reached] >= 0, demand.zone[reached], n_zone_bins - 1)
    keys = np.ascontiguousarray(np.column_stack([unit_masks, _zone_bytes(zone_bin)]))
    distinct, group = np.unique(
        keys.view(np.dtype((np.void, keys.shape[1]))).ravel(), return_inverse=True
    )
    n_groups = len(distinct)
    group_residents = np.bincount(group, weights=demand.residents[reached], minlength=n_groups)
    group_seniors = np.bincount(group, weights=demand.seniors[reached], minlength=n_groups)
    raw = distinct.view(np.uint8).reshape(n_groups, keys.shape[1])
    group_open = np.unpackbits(raw[:, : masks.shape[1]], axis=1)[:, :HOURS_PER_WEEK]
    group_open = group_open.astype(np.int64)
    return _WeekFigures(
        reached=reached,
        unit_always=unit_always,
        covered=group_residents.astype(np.int64) @ group_open,
        covered_seniors=group_seniors.astype(np.int64) @ group_open,
        group_zone=_zone_from_bytes(raw[:, masks.shape[1] :]),
        group_residents=group_residents,
        group_open=group_open,
    )


def _zone_bytes(zone_bin: np.ndarray) -> np.ndarray:
    return zone_bin.astype(">u4").view(np.uint8).reshape(len(zone_bin), 4)


def _zone_from_bytes(raw: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(raw).view(">u4").ravel().astype(np.int64)


def _zone_slices(
    demand: Demand, group_zone: np.ndarray, group_residents: np.ndarray, group_open: np.ndarray
) -> pd.DataFrame:
    n_zones = len(demand.zone_ids)
    if n_zones == 0:
        return pd.DataFrame(columns=["zone_id", "slot", "residents_covered", "share_covered"])
    zone_residents = np.bincount(
        np.where(demand.zone >= 0, demand.zone, n_zones),
        weights=demand.residents,
        minlength=n_zones + 1,
    )[:n_zones]
    per_zone = np.zeros((n_zones + 1, len(group_residents)), dtype=np.int64)
    per_zone[group_zone, np.arange(len(group_residents))] = group_residents.astype(np.int64)
    covered = (per_zone @ group_open)[:n_zones]  # (zones, 168)
    with np.errstate(invalid="ignore", divide="ignore"):
        share = np.where(zone_residents[:, None] > 0, covered / zone_residents[:, None], 0.0)
    return pd.DataFrame(
        {
            "zone_id": np.repeat(np.array(demand.zone_ids, dtype=object), HOURS_PER_WEEK),
            "slot": np.tile(np.arange(HOURS_PER_WEEK), n_zones),
            "residents_covered": covered.ravel(),
            "share_covered": share.ravel(),
        }
    )
