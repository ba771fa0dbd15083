"""The frozen inputs and answers of the analyses: what the services compute and the renderers draw.

:class:`AnalysisInputs` is the scene an analysis reads (layers, their metric copies, the walking
network, the pending citizens' reports); the ``*Analysis`` classes are the answers the CLI and the
API give (:mod:`geo.services.analysis` builds them), each with its JSON document and map layers.
Plain containers: no file, no database.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, TypedDict

import geopandas as gpd
import pandas as pd

from geo.city import CityProfile
from geo.core.availability import ReportFlag
from geo.core.coverage import CoverageResult, WeeklyCoverage
from geo.core.distance import DistanceModel, NetworkDistance, StraightLine
from geo.core.indicators import Indicators
from geo.core.layers import Layers
from geo.core.network import WalkingNetwork
from geo.core.outcomes import OutcomeResult
from geo.core.siting import SitingResult


class SceneArguments(TypedDict):
    """What the core's analyses take from :class:`AnalysisInputs`, by keyword (its ``scene``)."""

    population: gpd.GeoDataFrame
    devices: gpd.GeoDataFrame
    city: CityProfile
    zones: gpd.GeoDataFrame
    model: DistanceModel
    count_overdue: bool
    reports: Mapping[str, ReportFlag]


@dataclass(frozen=True)
class AnalysisInputs:
    """Layers ready for analysis.

    Attributes
    ----------
    layers
        As read, in EPSG:4326.
    metric
        The same layers projected to the city's metric CRS.
    network
        The walking network, if one was given or is stored.
    origin
        Where the layers came from, for the output header (Spanish).
    count_overdue
        Count devices whose maintenance is overdue (the old count, for comparison).
    reports
        Pending citizen reports that a device is missing or broken (from the database): such
        devices do not count until staff or their entity answer.
    """

    city: CityProfile
    layers: Layers
    metric: Layers
    network: WalkingNetwork | None
    origin: str
    count_overdue: bool = False
    reports: Mapping[str, ReportFlag] = field(default_factory=dict)

    def counting(self) -> dict[str, Any]:
        """The keyword arguments every analysis passes on: which devices count."""
        return {"count_overdue": self.count_overdue, "reports": self.reports}

    def scene(self, model: DistanceModel) -> SceneArguments:
        """The metric population, devices and CEAS zones, the city, ``model`` and which devices
        count: the keyword arguments of the core's coverage, weekly coverage, outcomes and
        siting problems."""
        return SceneArguments(
            population=self.metric["population"],
            devices=self.metric["defibrillators"],
            city=self.city,
            zones=self.metric["ceas"],
            model=model,
            count_overdue=self.count_overdue,
            reports=self.reports,
        )

    def distance_model(self, *, detour_factor: float) -> DistanceModel:
        """Walking network when there is one, else straight line × ``detour_factor``."""
        if self.network is not None:
            return NetworkDistance(self.network)
        return StraightLine(detour_factor)


@dataclass(frozen=True)
class CoverageAnalysis:
    """An instant or 24/7 coverage result, with income quintiles when asked for."""

    result: CoverageResult
    income: pd.DataFrame | None
    document: dict[str, Any]
    layer: gpd.GeoDataFrame


@dataclass(frozen=True)
class WeeklyAnalysis:
    """Coverage in each of the 168 hours of a reference week."""

    week: WeeklyCoverage
    document: dict[str, Any]
    layer: gpd.GeoDataFrame


@dataclass(frozen=True)
class OutcomesAnalysis:
    """Expected lives saved per year: the result, its JSON document and map layers.

    ``zones`` is the CEAS zones layer with the zone figures; ``devices`` the defibrillators
    (EPSG:4326) with theirs.
    """

    result: OutcomeResult
    document: dict[str, Any]
    zones: gpd.GeoDataFrame
    devices: gpd.GeoDataFrame


@dataclass(frozen=True)
class GapsAnalysis:
    """Uncovered areas ranked, and the entities and cohousing sites without a device in reach."""

    result: CoverageResult
    areas: gpd.GeoDataFrame
    uncovered: dict[str, gpd.GeoDataFrame]
    document: dict[str, Any]
    layer: gpd.GeoDataFrame


@dataclass(frozen=True)
class SitingAnalysis:
    """A proposal of new sites, in greedy order with each one's gain, and zones before/after."""

    result: SitingResult
    chosen: gpd.GeoDataFrame
    document: dict[str, Any]


@dataclass(frozen=True)
class PlannerView:
    """Everything the planners' map draws, for one instant (or 24/7) and one radius.

    Attributes
    ----------
    coverage
        Zones shaded by coverage (``coverage.layer``) and the city totals.
    gaps
        Uncovered areas ranked (``gaps.areas``).
    devices
        The defibrillators with ``available`` (at the instant) — metric CRS.
    entities, cohousing
        Sites with ``holds_device`` (a device of their own) and ``covered`` (one in reach).
    siting
        The next ``new`` devices in greedy order, each with the residents it adds.
    reach_m
        Straight-line radius that stands for the walking radius (``radius_m / detour``, or
        ``radius_m`` itself with a walking network: an upper bound of what is reached).
    outcomes
        Expected lives saved per year over the reference week (weekly mode, the model's own
        reach), per CEAS zone and per device; ``None`` without the model's parameters.
    week
        Coverage in each hour of the reference week, city-wide and per zone (the hour-by-week
        chart: the profile of ``coverage --weekly`` and the report); ``None`` if not made.
    """

    coverage: CoverageAnalysis
    gaps: GapsAnalysis
    devices: gpd.GeoDataFrame
    entities: gpd.GeoDataFrame
    cohousing: gpd.GeoDataFrame
    siting: SitingAnalysis
    radius_m: float
    reach_m: float
    at: dt.datetime | None
    outcomes: OutcomesAnalysis | None = None
    week: WeeklyCoverage | None = None


@dataclass(frozen=True)
class IndicatorsAnalysis:
    """The plan's indicators, and the document the CLI's ``--format json`` and the API answer.

    With ``year``, the document's ``years`` and ``year_on_year`` hold that year only.
    """

    indicators: Indicators
    year: int | None
    document: dict[str, Any]
