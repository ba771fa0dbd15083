"""Coverage, gaps and siting as documents: the answers the CLI and the API give, built once.

A service (like :mod:`geo.services.inputs`): it runs the pure computing modules on
:class:`geo.core.results.AnalysisInputs` and shapes their results into the JSON documents and
GeoJSON layers documented in the README, so ``cardiomapa gaps --format json`` and
``GET /api/gaps`` answer with the same thing.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

import geopandas as gpd
import pandas as pd

from geo.core import outputs
from geo.core.arrests import blended_hour_weights, observed_years, risk_surface
from geo.core.availability import available, device_availability
from geo.core.coverage import DEFAULT_RADIUS_M, weekly_coverage
from geo.core.coverage import coverage as run_coverage
from geo.core.density import DensityReference
from geo.core.distance import DistanceModel, StraightLine
from geo.core.gaps import coverage_by_income, find_gaps
from geo.core.indicators import compute_indicators, year_on_year
from geo.core.nearest import listed
from geo.core.network import street_segments
from geo.core.outcome_model import OutcomeParameters
from geo.core.outcomes import (
    lives_difference,
    lives_siting_problem,
    outcomes,
    with_extended_hours,
    with_new_devices,
)
from geo.core.places import device_place, known_places, near_places
from geo.core.results import (
    AnalysisInputs,
    CoverageAnalysis,
    GapsAnalysis,
    IndicatorsAnalysis,
    OutcomesAnalysis,
    PlannerView,
    SitingAnalysis,
    WeeklyAnalysis,
)
from geo.core.siting import (
    ACTIONS,
    OBJECTIVES,
    SitingProblem,
    SitingResult,
    build_problem,
    extension_candidates,
    objective_conflicts,
    solve_exact,
    solve_greedy,
    solve_target,
    with_extensions,
    zones_after,
)
from geo.errors import SitingError
from geo.services.inputs import site_cover, siting_candidates


def coverage_analysis(
    inputs: AnalysisInputs,
    *,
    radius_m: float,
    at: dt.datetime | None,
    reference_date: dt.date,
    detour_factor: float,
    assume_unknown_open: bool = False,
    incomes: pd.DataFrame | None = None,
) -> CoverageAnalysis:
    """Coverage at ``at`` (24/7 when ``None``), by CEAS zone, and by income if ``incomes``."""
    result = run_coverage(
        **inputs.scene(inputs.distance_model(detour_factor=detour_factor)),
        radius_m=radius_m,
        at=at,
        assume_unknown_open=assume_unknown_open,
        reference_date=reference_date,
    )
    income = coverage_by_income(result, incomes) if incomes is not None else None
    document = {"city": inputs.city.name, "data_origin": inputs.origin, **result.to_dict()}
    if income is not None:
        document["income_quintiles"] = outputs.records(income)
    layer = outputs.zones_with_coverage(inputs.metric["ceas"], result)
    return CoverageAnalysis(result, income, document, layer)


def weekly_analysis(
    inputs: AnalysisInputs,
    *,
    radius_m: float,
    week_of: dt.date,
    detour_factor: float,
    assume_unknown_open: bool = False,
) -> WeeklyAnalysis:
    """The weekly coverage profile of the week holding ``week_of``."""
    week = weekly_coverage(
        **inputs.scene(inputs.distance_model(detour_factor=detour_factor)),
        radius_m=radius_m,
        week_of=week_of,
        assume_unknown_open=assume_unknown_open,
    )
    zones = outputs.zones_with_week(inputs.metric["ceas"], week)
    return WeeklyAnalysis(week, week.to_dict(), zones)


def outcomes_analysis(
    inputs: AnalysisInputs,
    parameters: OutcomeParameters,
    *,
    mode: str,
    at: dt.datetime | None,
    week_of: dt.date,
    radius_m: float | None,
    detour_factor: float,
    assume_unknown_open: bool = False,
    arrests: gpd.GeoDataFrame | None = None,
    arrests_years: float | None = None,
) -> OutcomesAnalysis:
    """Lives saved per year for the city, per CEAS zone and per device (see geo.core.outcomes).

    With ``arrests`` (the private past-arrests layer, staff only), the hours of the week are
    blended with the observed ones (weekly mode) and the residents' incidence with the observed
    events (:mod:`geo.core.arrests`); the document then holds city totals of the blend only.
    ``arrests_years``: the years the arrests cover (default: the calendar years they span).
    """
    metric = inputs.metric
    weights, origin, factor, observed = None, "", None, None
    if arrests is not None and not arrests.empty:
        surface = risk_surface(
            metric["population"],
            arrests,
            parameters,
            observed_years=observed_years(arrests) if arrests_years is None else arrests_years,
        )
        factor = surface.factor
        observed = {
            "events": surface.events,
            "years": surface.observed_years,
            "unattributed": surface.unattributed,
            "bandwidth_m": surface.bandwidth_m,
            "prior_years": surface.prior_years,
            "model_per_year": surface.model_per_year,
            "observed_per_year": surface.observed_per_year,
            "blended_per_year": surface.blended_per_year,
        }
        if mode == "weekly":
            hours = blended_hour_weights(
                arrests, day_night_ratio=parameters.central("day_night_ratio")
            )
            weights, origin = hours.weights, hours.origin
    result = outcomes(
        **inputs.scene(inputs.distance_model(detour_factor=detour_factor)),
        parameters=parameters,
        mode=mode,
        at=at,
        week_of=week_of,
        reach_m=radius_m,
        assume_unknown_open=assume_unknown_open,
        weights=weights,
        weights_origin=origin,
        risk_factor=factor,
    )
    document = {"city": inputs.city.name, "data_origin": inputs.origin, **result.to_dict()}
    document["observed_arrests"] = observed
    figures = result.by_zone.drop(columns="zone_name").set_index("zone_id")
    zones = metric["ceas"][["id", "name", "geometry"]].join(figures, on="id").to_crs("EPSG:4326")
    devices = result.devices.to_crs("EPSG:4326")
    return OutcomesAnalysis(result, document, zones, devices)


def gaps_analysis(
    inputs: AnalysisInputs,
    *,
    radius_m: float,
    at: dt.datetime | None,
    cell_m: float | None,
    detour_factor: float,
    reference_date: dt.date,
) -> GapsAnalysis:
    """Where people live without a device in reach, and which sites lack one.

    With ``at=None`` (24/7), ``reference_date`` fixes the year checked (the edge passes the
    city's today by its clock).
    """
    model = inputs.distance_model(detour_factor=detour_factor)
    result = run_coverage(
        **inputs.scene(model), radius_m=radius_m, at=at, reference_date=reference_date
    )
    areas = find_gaps(result, cell_m=cell_m)
    uncovered = {}
    for name in ("entities", "cohousing"):
        sites = site_cover(
            inputs, name, radius_m=radius_m, at=at, model=model, reference_date=reference_date
        )
        uncovered[name] = sites[~sites["covered"]]
    header = outputs.result_header(result)
    document = {
        **header,
        "residents_uncovered": result.residents - result.residents_covered,
        "areas": outputs.records(areas.drop(columns="geometry")),
        "entities_without_device": outputs.records(uncovered["entities"]),
        "cohousing_without_device": outputs.records(uncovered["cohousing"]),
    }
    layer = pd.concat(
        [
            areas.assign(kind="gap_area"),
            uncovered["entities"].assign(kind="entity_without_device"),
            uncovered["cohousing"].assign(kind="cohousing_without_device"),
        ],
        ignore_index=True,
    )
    layer = gpd.GeoDataFrame(layer, geometry="geometry", crs=areas.crs)
    return GapsAnalysis(result, areas, uncovered, document, layer)


def siting_analysis(
    inputs: AnalysisInputs,
    *,
    new: int,
    radius_m: float | None,
    method: str,
    candidates: str,
    target_share: float | None,
    senior_weight: float,
    at: dt.datetime | None,
    time_limit_s: float,
    detour_factor: float,
    reference_date: dt.date,
    objective: str = "residents",
    parameters: OutcomeParameters | None = None,
    target_lives: float | None = None,
    actions: Sequence[str] = ("new",),
) -> SitingAnalysis:
    """Where the next ``new`` devices protect the most residents (or reach ``target_share``).

    ``actions`` (:data:`geo.core.siting.ACTIONS`) are what a step may do: ``new`` installs a
    device at a candidate site (``candidates``), ``extend_hours`` opens an existing device 24/7
    (:func:`geo.core.siting.extension_candidates`); with both, one ranked plan mixes them and
    ``new`` counts steps of either kind. Each step says where it is (``near``,
    :func:`geo.core.places.near_places`).

    With ``at=None`` (24/7), ``reference_date`` fixes the year checked (the edge passes the
    city's today by its clock).
    ``objective="lives"`` weighs each site by the expected lives per year it would add
    (:func:`geo.core.outcomes.lives_siting_problem`, weekly model unless ``at``), with
    ``target_lives`` (per year) as the goal instead of ``target_share``.
    """
    model = inputs.distance_model(detour_factor=detour_factor)
    if objective not in OBJECTIVES:
        msg = f"Objetivo {objective!r} desconocido; se admite residents o lives."
        raise SitingError(msg)
    conflicts = objective_conflicts(
        objective, target_share=target_share, target_lives=target_lives,
        senior_weight=senior_weight,
    )  # fmt: skip
    if conflicts:
        raise SitingError(conflicts[0].message)
    if objective == "lives":
        if parameters is None:
            msg = "El objetivo lives necesita los parámetros del modelo de vidas salvadas."
            raise SitingError(msg)
        return _lives_siting(
            inputs, parameters, new=new, radius_m=radius_m, method=method,
            candidates=candidates, target_lives=target_lives, at=at,
            time_limit_s=time_limit_s, model=model, reference_date=reference_date,
            actions=actions,
        )  # fmt: skip
    radius_m = DEFAULT_RADIUS_M if radius_m is None else radius_m
    sites, replaced = _candidate_sites(
        inputs, candidates, actions, radius_m=radius_m, at=at, model=model,
        reference_date=reference_date,
    )  # fmt: skip
    problem, baseline = build_problem(
        **inputs.scene(model),
        candidates=sites,
        radius_m=radius_m,
        at=at,
        senior_weight=senior_weight,
        reference_date=reference_date,
    )
    residents = int(baseline["residents"].sum())
    covered = int(baseline["residents_covered"].sum())
    needed = None if target_share is None else max(0.0, target_share * residents - covered)
    result = _solve(problem, new=new, method=method, needed=needed, time_limit_s=time_limit_s)
    zones = zones_after(baseline, problem, result)
    chosen = _chosen_sites(sites, result, residents, covered, inputs)
    after = covered + result.residents_gained
    document: dict[str, Any] = {
        "mode": "target" if target_share is not None else "budget",
        "method": result.method,
        "status": result.status,
        "gap": result.gap,
        "solver_seconds": result.seconds,
        "new_devices": int((chosen["action"] == "new").sum()),
        "extended_devices": int((chosen["action"] == "extend_hours").sum()),
        "actions": list(actions),
        "new_candidates_replaced": replaced,
        "target_share": target_share,
        "radius_m": radius_m,
        "distance_model": model.name,
        "distance_model_description": model.describe(),
        "objective": "residents",
        "senior_weight": senior_weight,
        "candidates": candidates,
        "candidates_count": len(sites),
        "residents": residents,
        "residents_covered_before": covered,
        "share_covered_before": covered / residents if residents else 0.0,
        "residents_covered_after": after,
        "share_covered_after": after / residents if residents else 0.0,
        "sites": outputs.records(chosen),
        "zones": outputs.records(zones),
    }
    return SitingAnalysis(result, chosen, document)


def _solve(
    problem: SitingProblem, *, new: int, method: str, needed: float | None, time_limit_s: float
) -> SitingResult:
    """The fewest sites that add ``needed`` weight when it is given, else the best ``new`` sites
    (greedy, or ``exact`` within ``time_limit_s``)."""
    if needed is not None:
        return solve_target(problem, weight_needed=needed, method=method, time_limit_s=time_limit_s)
    if method == "exact":
        return solve_exact(problem, p=new, time_limit_s=time_limit_s)
    return solve_greedy(problem, p=new)


def _lives_siting(
    inputs: AnalysisInputs,
    parameters: OutcomeParameters,
    *,
    new: int,
    radius_m: float | None,
    method: str,
    candidates: str,
    target_lives: float | None,
    at: dt.datetime | None,
    time_limit_s: float,
    model: DistanceModel,
    reference_date: dt.date,
    actions: Sequence[str],
) -> SitingAnalysis:
    """Siting by expected lives saved; the figures after are recomputed with the new sites
    and the extended hours."""
    week_of = reference_date
    reach = parameters.central("reach_m") if radius_m is None else radius_m
    mode = "weekly" if at is None else "instant"
    sites, replaced = _candidate_sites(
        inputs, candidates, actions, radius_m=reach, at=at, model=model,
        reference_date=reference_date,
    )  # fmt: skip
    problem, before = lives_siting_problem(
        **inputs.scene(model), candidates=sites, parameters=parameters, mode=mode, at=at,
        week_of=week_of, reach_m=reach,
    )  # fmt: skip
    needed = None if target_lives is None else max(0.0, target_lives - before.lives_saved)
    result = _solve(problem, new=new, method=method, needed=needed, time_limit_s=time_limit_s)
    chosen_ids = list(result.chosen)
    placed = sites.set_index("id").loc[chosen_ids].reset_index()
    extended = placed["action"] == "extend_hours"
    with_placed = inputs.scene(model)
    with_placed["devices"] = with_new_devices(
        with_extended_hours(with_placed["devices"], placed.loc[extended, "device_id"]),
        placed[~extended],
    )
    after = outcomes(
        **with_placed, parameters=parameters, mode=mode, at=at, week_of=week_of, reach_m=reach
    )
    gained, gained_low, gained_high = lives_difference(before, after)
    chosen = _chosen_sites(sites, result, int(before.city["residents"]), 0, inputs)
    chosen = chosen.drop(columns=["share_covered_after", "residents_covered_new"])
    chosen = chosen.rename(columns={"weight_gained": "lives_gained"})
    chosen["lives_saved_after"] = before.lives_saved + chosen["lives_gained"].cumsum()
    zones = before.by_zone[["zone_id", "zone_name", "residents", "lives_saved"]].merge(
        after.by_zone[["zone_id", "lives_saved"]], on="zone_id", suffixes=("", "_after")
    )
    figures = ("lives_saved", "lives_saved_low", "lives_saved_high")
    document: dict[str, Any] = {
        "mode": "target" if target_lives is not None else "budget",
        "objective": "lives",
        "method": result.method,
        "status": result.status,
        "gap": result.gap,
        "solver_seconds": result.seconds,
        "new_devices": int((chosen["action"] == "new").sum()),
        "extended_devices": int((chosen["action"] == "extend_hours").sum()),
        "actions": list(actions),
        "new_candidates_replaced": replaced,
        "target_lives": target_lives,
        "outcome_mode": mode,
        "week_start": before.week_start.isoformat() if before.week_start else None,
        "radius_m": reach,
        "distance_model": model.name,
        "distance_model_description": model.describe(),
        "candidates": candidates,
        "candidates_count": len(sites),
        "residents": before.city["residents"],
        "before": {key: before.city[key] for key in figures},
        "after": {key: after.city[key] for key in figures},
        "lives_gained": gained,
        "lives_gained_low": gained_low,
        "lives_gained_high": gained_high,
        "sites": outputs.records(chosen),
        "zones": outputs.records(zones),
        "warnings": list(before.notes),
    }
    return SitingAnalysis(result, chosen, document)


def _candidate_sites(
    inputs: AnalysisInputs,
    spec: str,
    actions: Sequence[str],
    *,
    radius_m: float,
    at: dt.datetime | None,
    model: DistanceModel,
    reference_date: dt.date,
) -> tuple[gpd.GeoDataFrame, int]:
    """The candidates of the ``actions`` asked for (columns ``id``, ``name``, ``kind``,
    ``action``, ``device_id``, ``geometry``), and how many new sites an extension replaced."""
    unknown = [action for action in actions if action not in ACTIONS]
    if unknown or not actions:
        msg = f"Acciones {list(actions)!r} no válidas; se admite new y extend_hours."
        raise SitingError(msg)
    crs = inputs.metric["population"].crs
    if "new" in actions:
        new = siting_candidates(
            spec, inputs, radius_m=radius_m, at=at, model=model, reference_date=reference_date
        )
    else:
        new = gpd.GeoDataFrame({"id": [], "name": [], "kind": []}, geometry=[], crs=crs)
    if "extend_hours" not in actions:
        return new.assign(action="new", device_id=None), 0
    extensions = extension_candidates(
        inputs.metric["defibrillators"], inputs.city, reference_date=reference_date,
        **inputs.counting(),
    )  # fmt: skip
    return with_extensions(new, extensions)


def _chosen_sites(
    sites: gpd.GeoDataFrame,
    result: SitingResult,
    residents: int,
    covered: int,
    inputs: AnalysisInputs,
) -> gpd.GeoDataFrame:
    columns = ["id", "name", "kind", "action", "device_id", "geometry"]
    steps = result.steps.merge(sites[columns], left_on="candidate_id", right_on="id").drop(
        columns="id"
    )
    chosen = gpd.GeoDataFrame(steps, geometry="geometry", crs=sites.crs)
    lonlat = chosen.geometry.to_crs("EPSG:4326")
    chosen["lon"], chosen["lat"] = lonlat.x.round(6), lonlat.y.round(6)
    covered_after = covered + chosen["residents_covered_new"]
    chosen["share_covered_after"] = covered_after / residents if residents else 0.0
    chosen["near"] = _near(chosen, inputs)
    return chosen


def _near(chosen: gpd.GeoDataFrame, inputs: AnalysisInputs) -> list[dict[str, Any] | None]:
    """Where each step is: an extension at its device, a new site near a known place, else on
    the nearest named street of the loaded walking network (when it has names)."""
    metric = inputs.metric
    devices = metric["defibrillators"].set_index(metric["defibrillators"]["id"].astype(str))
    places = known_places(  # addresses only of the devices citizens are shown
        entities=metric["entities"], cohousing=metric["cohousing"], devices=devices[listed(devices)]
    )
    # the street when no place is near, if the walking network knows street names
    streets = None if inputs.network is None else street_segments(inputs.network)
    found = near_places(chosen, places, streets=streets)
    near: list[dict[str, Any] | None] = []
    for row, place in zip(chosen.itertuples(), found, strict=True):
        if row.action == "extend_hours":
            device = devices.loc[str(row.device_id)]
            place = device_place(device.get("name"), device.get("address"))
        near.append(None if place is None else place.to_dict())
    return near


def planner_view(
    inputs: AnalysisInputs,
    *,
    radius_m: float,
    at: dt.datetime | None,
    new: int,
    reference_date: dt.date,
    detour_factor: float,
    parameters: OutcomeParameters | None = None,
    objective: str = "residents",
    actions: Sequence[str] = ("new",),
) -> PlannerView:
    """Coverage, gaps, sites with and without a device and a greedy proposal of ``new`` sites.

    With the outcome model's ``parameters``, also the lives saved per year over the week of
    ``reference_date`` (:func:`outcomes_analysis`, weekly: the hour shown does not change it).
    ``objective="lives"`` (needs ``parameters``) proposes the sites that add the most lives
    (:func:`siting_analysis`, at the model's own reach) instead of the most residents covered.
    """
    metric = inputs.metric
    model = inputs.distance_model(detour_factor=detour_factor)
    coverage = coverage_analysis(
        inputs, radius_m=radius_m, at=at, reference_date=reference_date,
        detour_factor=detour_factor,
    )  # fmt: skip
    gaps = gaps_analysis(
        inputs, radius_m=radius_m, at=at, cell_m=None, detour_factor=detour_factor,
        reference_date=reference_date,
    )  # fmt: skip
    sites = {
        name: site_cover(
            inputs, name, radius_m=radius_m, at=at, model=model, reference_date=reference_date
        )
        for name in ("entities", "cohousing")
    }
    devices = metric["defibrillators"]
    availability = device_availability(
        devices, timezone=inputs.city.timezone, calendar=inputs.city.calendar, **inputs.counting()
    )
    devices = devices.assign(
        available=available(availability, at=at, reference_date=reference_date)
    )
    siting = siting_analysis(
        inputs, new=new, radius_m=radius_m if objective == "residents" else None,
        method="greedy", candidates="all", target_share=None, senior_weight=1.0, at=at,
        time_limit_s=60.0, detour_factor=detour_factor, reference_date=reference_date,
        objective=objective, parameters=parameters, actions=actions,
    )  # fmt: skip
    reach_m = radius_m / model.detour_factor if isinstance(model, StraightLine) else radius_m
    lives = None
    if parameters is not None:
        lives = outcomes_analysis(
            inputs, parameters, mode="weekly", at=None, week_of=reference_date, radius_m=None,
            detour_factor=detour_factor,
        )  # fmt: skip
    week = weekly_analysis(
        inputs, radius_m=radius_m, week_of=reference_date, detour_factor=detour_factor
    ).week
    return PlannerView(
        coverage, gaps, devices, sites["entities"], sites["cohousing"], siting, radius_m,
        reach_m, at, lives, week,
    )  # fmt: skip


def indicators_analysis(
    inputs: AnalysisInputs,
    *,
    training: pd.DataFrame,
    uses: pd.DataFrame,
    references: list[DensityReference],
    as_of: dt.date,
    radius_m: float,
    detour_factor: float,
    outcome_parameters: OutcomeParameters,
    year: int | None = None,
) -> IndicatorsAnalysis:
    """The plan's indicators on ``as_of`` (see :mod:`geo.core.indicators`), for one year or all.

    ``outcome_parameters`` (:func:`geo.services.inputs.outcome_parameters`) give the lives saved per
    year at each year end, what the plan's devices add and, with a device cost in the plan,
    the cost per life-year gained.
    """
    metric = inputs.metric
    model = inputs.distance_model(detour_factor=detour_factor)
    indicators = compute_indicators(
        city=inputs.city,
        devices=metric["defibrillators"],
        entities=metric["entities"],
        zones=metric["ceas"],
        population=metric["population"],
        training=training,
        uses=uses,
        references=references,
        as_of=as_of,
        radius_m=radius_m,
        model=model,
        outcome_parameters=outcome_parameters,
        count_overdue=inputs.count_overdue,
    )
    document = {"data_origin": inputs.origin, **indicators.to_dict()}
    document["distance_model_description"] = model.describe()
    if year is not None:
        indicators.year(year)  # a year outside the plan is an error
        change = year_on_year(indicators.years)
        document["year"] = year
        document["years"] = outputs.records(indicators.years[indicators.years["year"] == year])
        document["year_on_year"] = outputs.records(change[change["year"] == year])
    return IndicatorsAnalysis(indicators, year, document)
