"""Expected lives saved: an outcome model behind coverage, siting, the map and the report.

Pure functions: GeoDataFrames in, frozen results and GeoDataFrames out (no HTTP, no SQL).

The model
---------
Expected lives saved per year by the public defibrillators is

    Σ over demand units i and hourly slices h of  λᵢ · w_h · π · A(h) · u(dᵢ(h)) · ΔS

- λᵢ: cardiac arrests per year among unit i's residents: residents under 65 and 65+ times an
  age-banded rate. The rates are calibrated so that the national age mix reproduces the
  registry's incidence: rate₆₅₊ = incidence × s / p and rate₍₋₆₅₎ = incidence × (1 − s) / (1 − p),
  with s the share of arrests in people 65+ and p the share of 65+ in the population then.
- w_h: share of arrests in hour-of-week h: hours from 08:00 to 20:00 are ``day_night_ratio``
  times as likely as the others (or weights given, e.g. observed in past arrests).
- π: share of arrests outside the home (``share_public``). Home arrests are reached with
  ``home_use_factor`` times the probability of use: by default 0, a public device does not
  reach a home arrest; the choice is stated in every output.
- A(h), dᵢ(h): the devices available in slice h (:mod:`geo.core.availability`) and the walking
  distance (:mod:`geo.core.coverage`'s distance models) to the nearest of them.
- u(d): probability that a device at walking distance d is fetched and used: ``use_probability``
  up to ``full_use_m``, then falling linearly to 0 at the reach (``reach_m``, ``--radius-m``).
- ΔS: survival gain of bystander defibrillation over none (``survival_gain``).

Each parameter has low / central / high values and its source (``data/reference/
outcome_parameters.csv``). Central figures use the central values; the band is the 5th–95th
percentile of a Monte Carlo over the parameters (triangular distributions on low–central–high,
fixed seed), so a run is reproducible.

How it is computed
------------------
The spatial and temporal work is done once and is parameter-free: every (unit, device) pair in
reach is found; within each unit the devices are ranked by distance; for each slice the best and
the second-best open devices are kept. From them come, per unit, zone and device, sums split by
age band (under 65, 65+) and hour class (day, night) — the *basis*. Every figure, for any
parameter values, is a small linear combination of the basis, so the Monte Carlo costs a matrix
product, and each device's marginal value (what is lost without it: the hours it is the best
open device, times the drop to the second best) comes out of the same pass instead of one
recomputation per device.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd

from geo.city import CityProfile
from geo.core.availability import (
    HOURS_PER_WEEK,
    Availability,
    HoursIssue,
    ReportFlag,
    available,
    local_instant,
    weekly_availability,
)
from geo.core.coverage import NO_ZONE, Demand, prepare_scene
from geo.core.distance import (
    DistanceModel,
    StraightLine,
    metric_xy,
    model_notes,
    pairs_within,
)
from geo.core.outcome_model import (
    BAND_PERCENTILES,
    CHUNK_CELLS,
    DAY_END_HOUR,
    DAY_START_HOUR,
    DEFAULT_DRAWS,
    DEFAULT_SEED,
    HOME_ARRESTS_NOTE,
    Basis,
    Coefficients,
    OutcomeParameters,
    Slices,
    age_rates,
    coefficients,
    compute_basis,
    day_slots,
    group_weights,
    lives_band,
    lives_central,
    use_shape,
    weekly_coefficients,
)
from geo.core.outputs import plain, records
from geo.core.siting import SitingProblem, check_candidates
from geo.errors import CoverageInputError, OutcomeInputError


def lives_difference(before: OutcomeResult, after: OutcomeResult) -> tuple[float, float, float]:
    """``after − before`` lives per year: central, low and high, with paired draws.

    Both results must come from the same parameters, mode and seed (their draws are then the
    same): the band is that of the difference, draw by draw, not two bands subtracted.
    """
    if before.basis is None or after.basis is None:
        msg = "Hace falta la base de los dos resultados para la diferencia."
        raise OutcomeInputError(msg)
    if (before.mode, before.seed, before.draws, before.hour_weights_origin) != (
        after.mode, after.seed, after.draws, after.hour_weights_origin
    ) or before.parameters != after.parameters:  # fmt: skip
        msg = "Los dos resultados no comparten parámetros, modo y semilla."
        raise OutcomeInputError(msg)
    if before.hour_weights_origin == "day_night_ratio":
        coefs = weekly_coefficients(before.parameters, draws=before.draws, seed=before.seed)
    else:  # one slice, or weights given: no day/night ratio
        one = Slices(np.zeros((0, 1), dtype=bool), np.ones(1), np.array([True]), False)
        coefs = coefficients(before.parameters, one, draws=before.draws, seed=before.seed)
    gain = (after.basis.unit_best.sum(axis=0) - before.basis.unit_best.sum(axis=0))[None]
    low, high = lives_band(gain, coefs.lives)
    return float(lives_central(gain, coefs.lives)[0]), float(low[0]), float(high[0])


# --- results ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class OutcomeResult:
    """Expected arrests, uses and lives saved per year: for the city, per zone, per device.

    ``city`` holds the figures for the whole city (see :meth:`to_dict`). ``by_zone`` has one row
    per CEAS zone: ``zone_id``, ``zone_name``, ``residents``, ``arrests_per_year``,
    ``public_arrests_per_year``, ``arrests_in_reach``, ``uses_per_year``, ``lives_saved``,
    ``lives_saved_low``, ``lives_saved_high``. ``devices`` (metric CRS) has per device
    ``device_id``, ``name``, ``counted``, ``arrests_in_reach`` (open and in reach, overlaps
    counted for each device), ``uses_per_year`` and ``lives_saved`` (as the best device at
    hand), ``marginal_lives`` (lost if it were removed), ``marginal_night_lives`` (lost if it
    closed from 20:00 to 08:00; weekly only), ``gain_if_24_7`` (added if open in every slice),
    each lives figure with ``_low`` and ``_high``. ``units`` is the population with
    ``arrests_per_year`` and ``lives_saved`` (central).
    """

    mode: str
    at: dt.datetime | None
    week_start: dt.datetime | None
    reach_m: float
    full_use_m: float
    distance_model: str
    distance_model_description: str
    parameters: OutcomeParameters
    draws: int
    seed: int
    hour_weights_origin: str
    city: dict[str, float]
    by_zone: pd.DataFrame
    devices: gpd.GeoDataFrame
    units: gpd.GeoDataFrame
    hours_issues: tuple[HoursIssue, ...]
    notes: tuple[str, ...] = ()
    basis: Basis | None = field(default=None, repr=False, compare=False)

    @property
    def lives_saved(self) -> float:
        return self.city["lives_saved"]

    def to_dict(self, *, parameters: bool = True) -> dict[str, Any]:
        """The stable JSON shape (documented in the README)."""
        document: dict[str, Any] = {
            "mode": self.mode,
            "at": self.at.isoformat() if self.at else None,
            "week_start": self.week_start.isoformat() if self.week_start else None,
            "reach_m": self.reach_m,
            "full_use_m": self.full_use_m,
            "distance_model": self.distance_model,
            "distance_model_description": self.distance_model_description,
            "band": {
                "percentiles": list(BAND_PERCENTILES),
                "draws": self.draws,
                "seed": self.seed,
            },
            "hour_weights": self.hour_weights_origin,
            "totals": plain(self.city),
            "zones": records(self.by_zone),
            "devices": records(self.devices),
            "warnings": [*self.notes, *(str(issue) for issue in self.hours_issues)],
        }
        if parameters:
            document["parameters"] = self.parameters.to_records()
        return document


def outcomes(
    population: gpd.GeoDataFrame,
    devices: gpd.GeoDataFrame,
    city: CityProfile,
    parameters: OutcomeParameters,
    *,
    mode: str = "weekly",
    at: dt.datetime | None = None,
    week_of: dt.date | None = None,
    reach_m: float | None = None,
    zones: gpd.GeoDataFrame | None = None,
    model: DistanceModel | None = None,
    assume_unknown_open: bool = False,
    weights: np.ndarray | None = None,
    weights_origin: str = "",
    risk_factor: np.ndarray | None = None,
    draws: int = DEFAULT_DRAWS,
    seed: int = DEFAULT_SEED,
    count_overdue: bool = False,
    reports: Mapping[str, ReportFlag] | None = None,
) -> OutcomeResult:
    """Expected lives saved per year by ``devices`` for ``population`` (metric CRS layers).

    Parameters
    ----------
    mode
        ``weekly`` (every hour of the week holding ``week_of``, weighted by when arrests
        happen: the expected value), ``instant`` (as if every hour were like ``at``) or
        ``always`` (only devices available 24/7 over the 366 days from ``week_of``'s week).
    reach_m
        Walking distance at which the probability of use falls to 0 (default: the
        parameter ``reach_m``).
    weights
        Weekly mode: the share of arrests in each of the 168 hours (e.g. observed); replaces
        the day/night ratio.
    risk_factor
        One non-negative factor per population unit (in its order) multiplying the unit's
        arrests λᵢ, e.g. :func:`geo.core.arrests.risk_surface` from observed arrests; ``None``: 1.
    draws, seed
        Monte Carlo draws for the band, and the seed that makes it reproducible.
    count_overdue, reports
        As for :func:`geo.core.coverage.coverage`: devices with overdue maintenance count only with
        ``count_overdue``; devices reported missing or broken never do.
    """
    model = model or StraightLine()
    setup = _setup(
        population, devices, city, parameters, mode=mode, at=at, week_of=week_of,
        reach_m=reach_m, zones=zones, assume_unknown_open=assume_unknown_open,
        weights=weights, weights_origin=weights_origin, count_overdue=count_overdue,
        reports=reports,
    )  # fmt: skip
    if draws < 10:
        msg = f"Hacen falta al menos 10 simulaciones para la banda (recibidas {draws})."
        raise OutcomeInputError(msg)
    result = _evaluate(setup, devices, model, draws=draws, seed=seed, risk_factor=risk_factor)[0]
    day = setup.at.date() if setup.at is not None else week_of
    overdue = setup.availability.overdue_warnings(day) if day is not None else ()
    left_out = (*setup.availability.report_warnings(), *overdue)
    return replace(result, notes=(*result.notes, *left_out)) if left_out else result


@dataclass(frozen=True)
class _Setup:
    """What :func:`outcomes` and :func:`lives_siting_problem` both start from."""

    mode: str
    parameters: OutcomeParameters
    reach_m: float
    full_use_m: float
    demand: Demand
    devices_xy: np.ndarray
    availability: Availability
    slices: Slices  # every device's rows
    counted: np.ndarray
    at: dt.datetime | None
    week_start: dt.datetime | None
    origin: str

    @property
    def counted_slices(self) -> Slices:
        return replace(self.slices, open=self.slices.open[self.counted])


def _setup(
    population: gpd.GeoDataFrame,
    devices: gpd.GeoDataFrame,
    city: CityProfile,
    parameters: OutcomeParameters,
    *,
    mode: str,
    at: dt.datetime | None,
    week_of: dt.date | None,
    reach_m: float | None,
    zones: gpd.GeoDataFrame | None,
    assume_unknown_open: bool,
    weights: np.ndarray | None,
    weights_origin: str,
    count_overdue: bool = False,
    reports: Mapping[str, ReportFlag] | None = None,
) -> _Setup:
    """The inputs checked: mode, reach, demand, devices and when each is open."""
    if mode not in {"weekly", "instant", "always"}:
        msg = f"Modo {mode!r} desconocido; se admite weekly, instant o always."
        raise OutcomeInputError(msg)
    if mode == "instant" and at is None:
        msg = "El modo instant necesita un instante (at)."
        raise OutcomeInputError(msg)
    if reach_m is not None:
        if not (math.isfinite(reach_m) and reach_m > 0):
            msg = f"El alcance debe ser un número de metros mayor que 0 (recibido {reach_m:g})."
            raise CoverageInputError(msg)
        parameters = parameters.with_values({"reach_m": float(reach_m)})
    reach = parameters.central("reach_m")  # > 0: the parameters are checked
    demand, devices_xy, availability = prepare_scene(
        population, devices, city, zones=zones, assume_unknown_open=assume_unknown_open,
        count_overdue=count_overdue, reports=reports,
    )  # fmt: skip
    instant = None if at is None else local_instant(at, city.timezone)
    if week_of is None and instant is None:
        msg = f"El modo {mode} necesita la semana de referencia (week_of)."
        raise OutcomeInputError(msg)
    slices, week_start, origin = _slices_for(
        availability,
        mode=mode,
        at=instant,
        week_of=week_of if week_of is not None else instant.date(),  # type: ignore[union-attr]
        weights=weights,
    )
    return _Setup(
        mode=mode,
        parameters=parameters,
        reach_m=reach,
        full_use_m=min(parameters.central("full_use_m"), reach),
        demand=demand,
        devices_xy=devices_xy,
        availability=availability,
        slices=slices,
        counted=np.flatnonzero(availability.counted()),
        at=instant,
        week_start=week_start,
        origin=weights_origin or origin,
    )


def _evaluate(
    setup: _Setup,
    devices: gpd.GeoDataFrame,
    model: DistanceModel,
    *,
    draws: int,
    seed: int,
    risk_factor: np.ndarray | None,
) -> tuple[OutcomeResult, Coefficients]:
    """The basis, the coefficients and the result for ``setup``."""
    demand = setup.demand
    basis_demand = demand
    if risk_factor is not None:
        risk_factor = np.asarray(risk_factor, dtype=float)
        if (
            risk_factor.shape != (len(demand.xy),)
            or not np.isfinite(risk_factor).all()
            or (risk_factor < 0).any()
        ):
            msg = (
                f"El factor de riesgo debe tener un número finito ≥ 0 por unidad de población "
                f"({len(demand.xy)}); se recibió la forma {risk_factor.shape}."
            )
            raise OutcomeInputError(msg)
        # The basis weighs each unit by group_weights(demand): scaling both head counts by the
        # factor scales the unit's λ; the figures below count the real residents.
        basis_demand = replace(
            demand, residents=demand.residents * risk_factor, seniors=demand.seniors * risk_factor
        )
    counted_slices = setup.counted_slices
    basis = compute_basis(
        basis_demand,
        setup.devices_xy[setup.counted],
        counted_slices,
        reach_m=setup.reach_m,
        full_use_m=setup.full_use_m,
        model=model,
    )
    coefs = coefficients(setup.parameters, counted_slices, draws=draws, seed=seed)
    result = _result(
        demand,
        devices,
        setup.counted,
        basis,
        coefs,
        setup.parameters,
        mode=setup.mode,
        at=setup.at,
        week_start=setup.week_start,
        reach_m=setup.reach_m,
        full_use_m=setup.full_use_m,
        model=model,
        availability=setup.availability,
        draws=draws,
        seed=seed,
        origin=setup.origin,
        risk_factor=risk_factor,
    )
    if risk_factor is None or not len(risk_factor):
        return result, coefs
    note = (
        "Las paradas de cada unidad de población van multiplicadas por un factor de riesgo "
        f"(de {risk_factor.min():.2f} a {risk_factor.max():.2f}), p. ej. por paradas observadas."
    )
    return replace(result, notes=(*result.notes, note)), coefs


def _slices_for(
    availability: Availability,
    *,
    mode: str,
    at: dt.datetime | None,
    week_of: dt.date,
    weights: np.ndarray | None,
) -> tuple[Slices, dt.datetime | None, str]:
    if mode == "instant":
        assert at is not None
        is_day = DAY_START_HOUR <= at.hour < DAY_END_HOUR
        open_ = available(availability, at=at, reference_date=at.date())[:, None]
        return Slices(open_, np.ones(1), np.array([is_day]), False), None, "instant"
    week = weekly_availability(availability, week_of=week_of)
    if mode == "always":
        return Slices(week.always[:, None], np.ones(1), np.array([True]), False), None, "always"
    if weights is None:
        base, ratio_applies, origin = np.ones(HOURS_PER_WEEK), True, "day_night_ratio"
    else:
        base = np.asarray(weights, dtype=float)
        if base.shape != (HOURS_PER_WEEK,) or (base < 0).any() or not base.sum() > 0:
            msg = "Los pesos horarios deben ser 168 números no negativos con suma mayor que 0."
            raise OutcomeInputError(msg)
        base, ratio_applies, origin = base / base.sum(), False, "given"
    return Slices(week.slices, base, day_slots(), ratio_applies), week.week_start, origin


def _result(
    demand: Demand,
    devices: gpd.GeoDataFrame,
    counted: np.ndarray,
    basis: Basis,
    coefs: Coefficients,
    parameters: OutcomeParameters,
    *,
    mode: str,
    at: dt.datetime | None,
    week_start: dt.datetime | None,
    reach_m: float,
    full_use_m: float,
    model: DistanceModel,
    availability: Availability,
    draws: int,
    seed: int,
    origin: str,
    risk_factor: np.ndarray | None = None,
) -> OutcomeResult:
    unit_arrests = _unit_arrests(demand, parameters, risk_factor)
    share_public = parameters.central("share_public")
    units = demand.units()
    units["arrests_per_year"] = unit_arrests
    units["lives_saved"] = lives_central(basis.unit_best, coefs.lives)
    return OutcomeResult(
        mode=mode,
        at=at,
        week_start=week_start,
        reach_m=reach_m,
        full_use_m=full_use_m,
        distance_model=model.name,
        distance_model_description=model.describe(),
        parameters=parameters,
        draws=draws,
        seed=seed,
        hour_weights_origin=origin,
        city=_city_figures(demand, devices, counted, basis, coefs, unit_arrests, share_public),
        by_zone=_zone_figures(demand, basis, coefs, unit_arrests, share_public),
        devices=_device_table(devices, counted, basis, coefs, weekly=mode == "weekly"),
        units=units,
        hours_issues=availability.issues,
        notes=_result_notes(model, demand, reach_m, parameters, risk_factor),
        basis=basis,
    )


def _unit_arrests(
    demand: Demand, parameters: OutcomeParameters, risk_factor: np.ndarray | None
) -> np.ndarray:
    """Expected arrests a year in each demand unit: its people by age band times the age rates."""
    groups = group_weights(demand, risk_factor)
    under, over = age_rates(
        parameters.central("incidence_per_100k"),
        parameters.central("share_arrests_65_plus"),
        parameters.central("share_65_plus_population"),
    )
    return np.asarray(groups @ np.array([float(under), float(over)]))


def _zone_figures(
    demand: Demand,
    basis: Basis,
    coefs: Coefficients,
    unit_arrests: np.ndarray,
    share_public: float,
) -> pd.DataFrame:
    """The figures of each CEAS zone (sums of its units' basis), by name, "sin zona" last."""
    n_zones = len(demand.zone_ids)
    slot = np.where(demand.zone >= 0, demand.zone, n_zones)
    zone_reach = _by_slot(basis.unit_reach, slot, n_zones + 1)
    zone_best = _by_slot(basis.unit_best, slot, n_zones + 1)
    zone_low, zone_high = lives_band(zone_best, coefs.lives)
    residents = np.bincount(slot, weights=demand.residents, minlength=n_zones + 1)
    arrests = np.bincount(slot, weights=unit_arrests, minlength=n_zones + 1)
    zones = pd.DataFrame(
        {
            "zone_id": [*demand.zone_ids, None],
            "zone_name": [*demand.zone_names, NO_ZONE],
            "residents": residents.astype(np.int64),
            "arrests_per_year": arrests,
            "public_arrests_per_year": arrests * share_public,
            "arrests_in_reach": lives_central(zone_reach, coefs.arrests),
            "uses_per_year": lives_central(zone_best, coefs.uses),
            "lives_saved": lives_central(zone_best, coefs.lives),
            "lives_saved_low": zone_low,
            "lives_saved_high": zone_high,
        }
    )
    if n_zones and residents[-1] == 0:
        zones = zones.iloc[:-1]
    zones = zones.sort_values("zone_name", key=lambda n: n.str.lower(), kind="stable")
    outside = zones["zone_id"].isna()
    return pd.concat([zones[~outside], zones[outside]]).reset_index(drop=True)


def _city_figures(
    demand: Demand,
    devices: gpd.GeoDataFrame,
    counted: np.ndarray,
    basis: Basis,
    coefs: Coefficients,
    unit_arrests: np.ndarray,
    share_public: float,
) -> dict[str, float]:
    """The whole city's figures: the units' basis summed, with the bands of lives and life-years."""
    city_reach, city_best = basis.unit_reach.sum(axis=0)[None], basis.unit_best.sum(axis=0)[None]
    city_low, city_high = lives_band(city_best, coefs.lives)
    ly_low, ly_high = lives_band(city_best, coefs.life_years)
    lives = float(lives_central(city_best, coefs.lives)[0])
    return {
        "residents": int(demand.residents.sum()),
        "residents_65_plus": int(demand.seniors.sum()),
        "arrests_per_year": float(unit_arrests.sum()),
        "public_arrests_per_year": float(unit_arrests.sum() * share_public),
        "arrests_in_reach": float(lives_central(city_reach, coefs.arrests)[0]),
        "uses_per_year": float(lives_central(city_best, coefs.uses)[0]),
        "lives_saved": lives,
        "lives_saved_low": float(city_low[0]),
        "lives_saved_high": float(city_high[0]),
        "lives_saved_per_million": _per_million(lives, int(demand.residents.sum())),
        "life_years_per_year": float(lives_central(city_best, coefs.life_years)[0]),
        "life_years_per_year_low": float(ly_low[0]),
        "life_years_per_year_high": float(ly_high[0]),
        "devices_counted": len(counted),
        "devices_total": len(devices),
    }


def _result_notes(
    model: DistanceModel,
    demand: Demand,
    reach_m: float,
    parameters: OutcomeParameters,
    risk_factor: np.ndarray | None,
) -> tuple[str, ...]:
    """What the reader must know about the figures: reach, home arrests, observed risk."""
    notes = list(model_notes(model, demand.xy, reach_m))
    if parameters.central("home_use_factor") == 0:
        notes.append(HOME_ARRESTS_NOTE)
    if risk_factor is not None:
        notes.append(
            "Riesgo mezclado con paradas observadas: el factor de cada unidad se calcula con los "
            "valores centrales, así que la banda refleja los parámetros y no se estrecha con lo "
            "observado."
        )
    return tuple(notes)


def _by_slot(basis: np.ndarray, slot: np.ndarray, size: int) -> np.ndarray:
    out = np.zeros((size, *basis.shape[1:]))
    np.add.at(out, slot, basis)
    return out


def _per_million(lives: float, residents: int) -> float:
    return lives / residents * 1_000_000 if residents else 0.0


def _device_table(
    devices: gpd.GeoDataFrame,
    counted: np.ndarray,
    basis: Basis,
    coefs: Coefficients,
    *,
    weekly: bool,
) -> gpd.GeoDataFrame:
    n = len(devices)

    def spread(values: np.ndarray) -> np.ndarray:
        full = np.zeros(n)
        full[counted] = values
        return full

    table = gpd.GeoDataFrame(
        {
            "device_id": devices["id"].to_numpy(dtype=object),
            "name": devices["name"].to_numpy(dtype=object)
            if "name" in devices
            else np.full(n, None, dtype=object),
            "counted": np.isin(np.arange(n), counted),
        },
        geometry=devices.geometry.values,
        crs=devices.crs,
    )
    table["arrests_in_reach"] = spread(lives_central(basis.device_in_reach, coefs.arrests))
    table["uses_per_year"] = spread(lives_central(basis.device_served, coefs.uses))
    night = basis.device_loss.copy()
    night[:, :, 0] = 0.0  # the night class only
    for column, values in (
        ("lives_saved", basis.device_served),
        ("marginal_lives", basis.device_loss),
        ("marginal_night_lives", night),
        ("gain_if_24_7", basis.device_gain),
    ):
        low, high = lives_band(values, coefs.lives)
        table[column] = spread(lives_central(values, coefs.lives))
        table[f"{column}_low"] = spread(low)
        table[f"{column}_high"] = spread(high)
        if column == "marginal_night_lives" and not weekly:
            for suffix in ("", "_low", "_high"):
                table[f"{column}{suffix}"] = np.nan
    return table


# --- siting by lives --------------------------------------------------------------------------

#: What a proposed device is assumed to be: a public, always-open outdoor cabinet.
NEW_DEVICE = {
    "status": "active",
    "verification": "verified",
    "access": "yes",
    "is_mobile": False,
    "opening_hours": "24/7",
}


def with_new_devices(devices: gpd.GeoDataFrame, sites: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """``devices`` plus one public 24/7 device at each of ``sites`` (``id``, ``name``)."""
    new = gpd.GeoDataFrame(
        {
            "id": sites["id"].to_numpy(dtype=object),
            "name": sites["name"].to_numpy(dtype=object)
            if "name" in sites
            else sites["id"].to_numpy(dtype=object),
            **{key: [value] * len(sites) for key, value in NEW_DEVICE.items()},
        },
        geometry=sites.geometry.values,
        crs=sites.crs,
    )
    if devices.crs != sites.crs:
        msg = (
            f"Los desfibriladores ({devices.crs}) y los emplazamientos ({sites.crs}) "
            "no comparten CRS."
        )
        raise OutcomeInputError(msg)
    merged = pd.concat([devices, new], ignore_index=True)
    return gpd.GeoDataFrame(merged, geometry="geometry", crs=devices.crs)


def with_extended_hours(devices: gpd.GeoDataFrame, device_ids: Any) -> gpd.GeoDataFrame:
    """``devices`` with the ones in ``device_ids`` open 24/7 (hours extended, or moved to an
    outdoor cabinet at the same spot: the model reaches the same people either way)."""
    wanted = {str(i) for i in device_ids}
    if not wanted:
        return devices
    extended = devices.copy()
    chosen = extended["id"].astype(str).isin(wanted)
    extended.loc[chosen, "opening_hours"] = "24/7"
    return extended


def lives_siting_problem(
    population: gpd.GeoDataFrame,
    devices: gpd.GeoDataFrame,
    candidates: gpd.GeoDataFrame,
    city: CityProfile,
    parameters: OutcomeParameters,
    *,
    mode: str = "weekly",
    at: dt.datetime | None = None,
    week_of: dt.date | None = None,
    reach_m: float | None = None,
    zones: gpd.GeoDataFrame | None = None,
    model: DistanceModel | None = None,
    count_overdue: bool = False,
    reports: Mapping[str, ReportFlag] | None = None,
) -> tuple[SitingProblem, OutcomeResult]:
    """The survival-weighted covering problem: each candidate's value at each unit is the
    expected lives per year (central parameters) a new public 24/7 device there would add,
    given the devices available in each slice — Σ_h λ·w_h·π'·u_max·ΔS·max(0, u(d)/u_max −
    best now).

    Returns the :class:`geo.core.siting.SitingProblem` (solved with :mod:`geo.core.siting`'s greedy
    or exact solvers as for coverage) and the baseline :class:`OutcomeResult`.
    """
    check_candidates(candidates)
    model = model or StraightLine()
    setup = _setup(
        population, devices, city, parameters, mode=mode, at=at, week_of=week_of,
        reach_m=reach_m, zones=zones, assume_unknown_open=False, weights=None, weights_origin="",
        count_overdue=count_overdue, reports=reports,
    )  # fmt: skip
    baseline, coefs = _evaluate(
        setup, devices, model, draws=DEFAULT_DRAWS, seed=DEFAULT_SEED, risk_factor=None
    )
    reach, full, demand = setup.reach_m, setup.full_use_m, setup.demand
    slices, counted = setup.slices, setup.counted
    candidate_xy = metric_xy(candidates, "candidatos")
    offer = pairs_within(demand.xy, candidate_xy, radius_m=reach, model=model)
    units, local = np.unique(offer.unit, return_inverse=True)
    best = _best_shape(
        demand.xy[units], setup.devices_xy[counted], slices.open[counted], reach, full, model
    )
    classes = np.column_stack([slices.base * slices.day, slices.base * ~slices.day])
    slice_worth = group_weights(demand)[units] @ (coefs.lives[0] @ classes.T)  # (U, S)
    shape = use_shape(offer.distance_m, full_use_m=full, reach_m=reach)
    worth = np.zeros(len(shape))
    step = max(1, CHUNK_CELLS // slices.open.shape[1])
    for lo in range(0, len(shape), step):
        part = slice(lo, lo + step)
        gain = np.maximum(shape[part, None] - best[local[part]], 0.0)
        worth[part] = (gain * slice_worth[local[part]]).sum(axis=1)
    zone_ids = demand.units()["zone_id"].to_numpy(dtype=object)
    per_unit = np.zeros(len(units))
    np.maximum.at(per_unit, local, worth)
    problem = SitingProblem.from_pairs(
        local,
        offer.device,
        weight=per_unit,
        residents=demand.residents[units],
        seniors=demand.seniors[units],
        candidate_ids=candidates["id"].to_numpy(dtype=object),
        zone=zone_ids[units],
        value=worth,
    )
    return problem, baseline


def _best_shape(
    units_xy: np.ndarray,
    devices_xy: np.ndarray,
    open_: np.ndarray,
    reach_m: float,
    full_use_m: float,
    model: DistanceModel,
) -> np.ndarray:
    """(units, slices): u(d)/u(0) of the best device open in each slice (0 if none)."""
    best = np.zeros((len(units_xy), open_.shape[1]))
    near = pairs_within(units_xy, devices_xy, radius_m=reach_m, model=model)
    shape = use_shape(near.distance_m, full_use_m=full_use_m, reach_m=reach_m)
    step = max(1, CHUNK_CELLS // open_.shape[1])
    for lo in range(0, len(shape), step):
        part = slice(lo, lo + step)
        np.maximum.at(best, near.unit[part], shape[part, None] * open_[near.device[part]])
    return best
