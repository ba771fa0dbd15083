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
import itertools
import math
import os
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
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
from geo.core.coverage import NO_ZONE, Demand, prepare_demand
from geo.core.distance import (
    DistanceModel,
    StraightLine,
    device_points,
    metric_xy,
    model_notes,
    pairs_within,
)
from geo.core.outputs import plain, records
from geo.core.siting import SitingProblem, check_candidates
from geo.errors import CoverageInputError, OutcomeInputError

#: Parameters the model needs, in the order reports list them.
PARAMETER_KEYS = (
    "incidence_per_100k",
    "share_arrests_65_plus",
    "share_65_plus_population",
    "share_public",
    "home_use_factor",
    "use_probability",
    "full_use_m",
    "reach_m",
    "survival_gain",
    "day_night_ratio",
    "life_years_per_survivor",
)
_SHARES = frozenset(
    {
        "share_arrests_65_plus",
        "share_65_plus_population",
        "share_public",
        "home_use_factor",
        "use_probability",
        "survival_gain",
    }
)
#: Parameters that shape distances; fixed within a run (the band varies the others).
_FIXED_IN_RUN = frozenset({"full_use_m", "reach_m"})

#: Day hours for ``day_night_ratio`` and the "closed at night" marginal: 08:00–20:00.
DAY_START_HOUR, DAY_END_HOUR = 8, 20
DEFAULT_DRAWS = 1000
DEFAULT_SEED = 20251203
BAND_PERCENTILES = (5.0, 95.0)
HOME_ARRESTS_NOTE = (
    "Las paradas en domicilio no se cuentan como alcanzables por un DEA público "
    "(home_use_factor = 0)."
)


# --- parameters -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Parameter:
    """One model parameter: its central value, range and where it comes from."""

    key: str
    central: float
    low: float
    high: float
    unit: str = ""
    label: str = ""
    source: str = ""
    note: str = ""

    @property
    def fixed(self) -> bool:
        return self.low == self.high

    def to_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "central": self.central,
            "low": self.low,
            "high": self.high,
            "unit": self.unit,
            "label": self.label,
            "source": self.source,
            "note": self.note,
        }


@dataclass(frozen=True)
class OutcomeParameters:
    """The model's parameters, checked: every key present, low ≤ central ≤ high, in range."""

    items: tuple[Parameter, ...]

    def __post_init__(self) -> None:
        keys = [item.key for item in self.items]
        missing = [key for key in PARAMETER_KEYS if key not in keys]
        if missing:
            msg = f"Faltan parámetros del modelo de vidas salvadas: {', '.join(missing)}."
            raise OutcomeInputError(msg)
        unknown = [key for key in keys if key not in PARAMETER_KEYS]
        if unknown:
            msg = (
                f"Parámetro desconocido: {', '.join(unknown)} "
                f"(se admiten {', '.join(PARAMETER_KEYS)})."
            )
            raise OutcomeInputError(msg)
        for item in self.items:
            _check_parameter(item)
        if self.central("full_use_m") > self.central("reach_m"):
            msg = (
                f"full_use_m ({self.central('full_use_m'):g} m) no puede superar el alcance "
                f"reach_m ({self.central('reach_m'):g} m)."
            )
            raise OutcomeInputError(msg)

    def __getitem__(self, key: str) -> Parameter:
        for item in self.items:
            if item.key == key:
                return item
        msg = f"Parámetro desconocido: {key!r}."
        raise OutcomeInputError(msg)

    def central(self, key: str) -> float:
        return self[key].central

    def with_values(
        self, values: Mapping[str, float | tuple[float, float, float]]
    ) -> OutcomeParameters:
        """A copy with some parameters replaced.

        A number sets the parameter to that value with no range (the planner knows it); a
        ``(low, central, high)`` triple sets the range too.
        """
        updated = []
        for item in self.items:
            if item.key not in values:
                updated.append(item)
                continue
            value = values[item.key]
            low, central, high = value if isinstance(value, tuple) else (value, value, value)
            updated.append(
                replace(
                    item,
                    low=float(low),
                    central=float(central),
                    high=float(high),
                    source=f"{item.source} — valor fijado por el usuario",
                )
            )
        full, reach = (next(i for i in updated if i.key == k) for k in ("full_use_m", "reach_m"))
        if "full_use_m" not in values and reach.central < full.central:
            # A shorter reach narrows the full use with it (u cannot be whole past the reach).
            narrowed = replace(full, low=reach.central, central=reach.central, high=reach.central)
            updated = [narrowed if item.key == "full_use_m" else item for item in updated]
        unknown = sorted(set(values) - set(PARAMETER_KEYS))
        if unknown:
            msg = (
                f"Parámetro desconocido: {', '.join(unknown)} "
                f"(se admiten {', '.join(PARAMETER_KEYS)})."
            )
            raise OutcomeInputError(msg)
        return OutcomeParameters(tuple(updated))

    @classmethod
    def from_rows(cls, rows: Iterable[Mapping[str, str]], *, name: str) -> OutcomeParameters:
        """Parameters from CSV rows (``key``, ``central``, ``low``, ``high``, ``unit``,
        ``label``, ``source``, ``note``); errors name the file, the line and the field."""
        items = []
        seen: dict[str, int] = {}
        for line, row in enumerate(rows, start=2):
            for column in ("key", "central", "low", "high", "source"):
                if not (row.get(column) or "").strip():
                    msg = f"{name}, línea {line}, campo {column}: falta el valor."
                    raise OutcomeInputError(msg)
            numbers = {}
            for column in ("central", "low", "high"):
                text = row[column].strip().replace(",", ".")
                try:
                    numbers[column] = float(text)
                except ValueError:
                    msg = f"{name}, línea {line}, campo {column}: {row[column]!r} no es un número."
                    raise OutcomeInputError(msg) from None
            item = Parameter(
                key=row["key"].strip(),
                central=numbers["central"],
                low=numbers["low"],
                high=numbers["high"],
                unit=(row.get("unit") or "").strip(),
                label=(row.get("label") or "").strip(),
                source=row["source"].strip(),
                note=(row.get("note") or "").strip(),
            )
            if item.key in seen:
                msg = (
                    f"{name}, línea {line}, campo key: {item.key} ya está en la línea "
                    f"{seen[item.key]}; cada parámetro va una sola vez."
                )
                raise OutcomeInputError(msg)
            seen[item.key] = line
            try:
                _check_parameter(item)
            except OutcomeInputError as exc:
                msg = f"{name}, línea {line}: {exc}"
                raise OutcomeInputError(msg) from None
            items.append(item)
        return cls(tuple(items))

    def to_records(self) -> list[dict[str, Any]]:
        return [self[key].to_dict() for key in PARAMETER_KEYS]


def _check_parameter(item: Parameter) -> None:
    values = (item.low, item.central, item.high)
    if not all(math.isfinite(v) for v in values):
        msg = f"{item.key}: los valores deben ser números finitos."
        raise OutcomeInputError(msg)
    if not item.low <= item.central <= item.high:
        msg = (
            f"{item.key}: debe cumplirse bajo ≤ central ≤ alto "
            f"(se leyó {item.low:g} ≤ {item.central:g} ≤ {item.high:g})."
        )
        raise OutcomeInputError(msg)
    if item.key in _SHARES and not (item.low >= 0.0 and item.high <= 1.0):
        msg = f"{item.key}: es una proporción, entre 0 y 1 (se leyó {item.low:g}–{item.high:g})."
        raise OutcomeInputError(msg)
    if item.key not in _SHARES and item.low < 0:
        msg = f"{item.key}: no puede ser negativo (se leyó {item.low:g})."
        raise OutcomeInputError(msg)
    if item.key in {"reach_m", "day_night_ratio"} and item.low <= 0:
        msg = f"{item.key}: debe ser mayor que 0 (se leyó {item.low:g})."
        raise OutcomeInputError(msg)
    if item.key == "share_65_plus_population" and not 0 < item.low <= item.high < 1:
        msg = f"{item.key}: debe estar entre 0 y 1, sin incluirlos."
        raise OutcomeInputError(msg)
    if item.key in _FIXED_IN_RUN and not item.fixed:
        msg = f"{item.key}: es una distancia o velocidad del modelo y no admite rango."
        raise OutcomeInputError(msg)


def age_rates(
    incidence_per_100k: np.ndarray | float,
    share_arrests_65_plus: np.ndarray | float,
    share_65_plus_population: np.ndarray | float,
) -> tuple[np.ndarray, np.ndarray]:
    """Arrests per person and year for residents under 65 and 65+ (calibrated to the mix)."""
    incidence = np.asarray(incidence_per_100k, dtype=float) / 100_000
    s = np.asarray(share_arrests_65_plus, dtype=float)
    p = np.asarray(share_65_plus_population, dtype=float)
    return incidence * (1 - s) / (1 - p), incidence * s / p


def use_shape(distance_m: np.ndarray, *, full_use_m: float, reach_m: float) -> np.ndarray:
    """u(d) / u(0): 1 up to ``full_use_m``, falling linearly to 0 at ``reach_m``."""
    distance = np.asarray(distance_m, dtype=float)
    full = min(full_use_m, reach_m)
    if reach_m <= full:
        return (distance <= reach_m).astype(float)
    return np.clip((reach_m - distance) / (reach_m - full), 0.0, 1.0)


def day_slots() -> np.ndarray:
    """``bool`` (168,): the slices from 08:00 to 20:00, every day."""
    hour = np.arange(HOURS_PER_WEEK) % 24
    return (hour >= DAY_START_HOUR) & (hour < DAY_END_HOUR)


def hour_weights(day_night_ratio: float) -> np.ndarray:
    """Share of arrests in each hour of the week (sums to 1)."""
    weights = np.where(day_slots(), float(day_night_ratio), 1.0)
    return weights / weights.sum()


# --- the basis --------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Slices:
    """Which counted devices are open in each slice, and how the slices weigh."""

    open: np.ndarray  # bool (devices, S)
    base: np.ndarray  # float (S,): relative weight before the day/night ratio
    day: np.ndarray  # bool (S,): weighted by the day/night ratio
    ratio_applies: bool


@dataclass(frozen=True)
class Basis:
    """Parameter-free sums, shape (n, 2 age bands, 2 hour classes): see the module docstring.

    ``reach``: residents × slice weight where some available device is in reach;
    ``best``: the same times u(d)/u(0) of the best available device;
    per device, ``in_reach`` (it is open and in reach), ``served`` (it is the best),
    ``loss`` (best minus the next best, where it is the best) and ``gain`` (what it would add
    open in every slice).
    """

    unit_reach: np.ndarray
    unit_best: np.ndarray
    device_in_reach: np.ndarray
    device_served: np.ndarray
    device_loss: np.ndarray
    device_gain: np.ndarray


def _group_weights(demand: Demand, risk_factor: np.ndarray | None = None) -> np.ndarray:
    """(units, 2): residents under 65 and 65+ (each unit times its risk factor, if given)."""
    residents = demand.residents.astype(float)
    seniors = demand.seniors.astype(float)
    groups = np.column_stack([residents - seniors, seniors])
    return groups if risk_factor is None else groups * risk_factor[:, None]


#: Float cells per chunk of the pair × slice arrays (≈ 32 MB each).
_CHUNK_CELLS = 4_000_000


def compute_basis(
    demand: Demand,
    devices_xy: np.ndarray,
    slices: _Slices,
    *,
    reach_m: float,
    full_use_m: float,
    model: DistanceModel,
) -> Basis:
    """The basis for the counted devices at ``devices_xy`` (rows of ``slices.open``).

    The pairs in reach are ranked by distance within each unit (ties by device) and handed to
    :func:`_chunk_basis` in chunks of whole units.
    """
    n_units, n_devices = len(demand.xy), len(devices_xy)
    classes = np.column_stack([slices.base * slices.day, slices.base * ~slices.day])  # (S, 2)
    groups = _group_weights(demand)
    unit_reach = np.zeros((n_units, 2, 2))
    unit_best = np.zeros((n_units, 2, 2))
    per_device = [np.zeros((n_devices, 2, 2)) for _ in range(4)]
    reach = pairs_within(demand.xy, devices_xy, radius_m=reach_m, model=model)
    if len(reach.unit) == 0:
        return Basis(unit_reach, unit_best, *per_device)
    order = np.lexsort((reach.device, reach.distance_m, reach.unit))
    unit, device = reach.unit[order], reach.device[order]
    shape = use_shape(reach.distance_m[order], full_use_m=full_use_m, reach_m=reach_m)
    starts = np.flatnonzero(np.r_[True, unit[1:] != unit[:-1]])
    rank = np.arange(len(unit)) - np.repeat(starts, np.diff(np.r_[starts, len(unit)]))
    # Chunks of whole units, about _CHUNK_CELLS / 8 pairs each (a pair holds a few masks).
    per_chunk = max(1, _CHUNK_CELLS // 8)
    cuts = starts[np.searchsorted(starts, np.arange(per_chunk, len(unit), per_chunk), "right") - 1]
    bounds = [0, *np.unique(cuts[cuts > 0]).tolist(), len(unit)]
    for lo, hi in itertools.pairwise(bounds):
        _chunk_basis(
            unit[lo:hi],
            device[lo:hi],
            shape[lo:hi],
            rank[lo:hi],
            slices.open,
            classes,
            groups,
            unit_reach,
            unit_best,
            per_device,
        )
    return Basis(unit_reach, unit_best, *per_device)


def _bit_masks(open_: np.ndarray) -> np.ndarray:
    """``bool`` (n, S) as bit masks (n, ⌈S/64⌉) ``uint64``: byte j holds slices 8j to 8j + 7.

    Only bitwise operations are applied to the words, so the byte order does not matter.
    """
    packed = np.packbits(open_, axis=1, bitorder="little")
    words = -(-open_.shape[1] // 64)
    padded = np.zeros((len(open_), 8 * words), dtype=np.uint8)
    padded[:, : packed.shape[1]] = packed
    return padded.view(np.uint64)


def _class_table(classes: np.ndarray, *, bits: int) -> np.ndarray:
    """(⌈S/bits⌉, 2**bits, 2): the class weights of the slices set in each ``bits``-bit piece
    of a mask (8 or 16 bits: 16 halves the look-ups, but its table takes longer to build)."""
    n_slices, n_classes = classes.shape
    n_bytes = -(-n_slices // bits) * (bits // 8)
    padded = np.zeros((8 * n_bytes, n_classes))
    padded[:n_slices] = classes
    bit = ((np.arange(256)[:, None] >> np.arange(8)) & 1).astype(float)  # (256 values, 8)
    per_byte = np.einsum("vb,jbc->jvc", bit, padded.reshape(n_bytes, 8, n_classes))
    if bits == 8:
        return per_byte
    # A little-endian 16-bit piece v holds byte 2j (v & 255) then byte 2j + 1 (v >> 8).
    pairs = per_byte[1::2, :, None, :] + per_byte[0::2, None, :, :]  # [j, high, low]
    return pairs.reshape(n_bytes // 2, 65536, n_classes)


def _class_sums(masks: np.ndarray, table: np.ndarray) -> np.ndarray:
    """(n, 2): the class weights of the slices set in each bit mask (rows of ``masks``)."""
    out = np.zeros((len(masks), table.shape[2]))
    rows = np.flatnonzero(masks.any(axis=1))  # an empty mask weighs 0
    pieces = np.ascontiguousarray(masks[rows]).view(np.uint8 if table.shape[1] == 256 else "<u2")
    total = np.zeros((len(rows), table.shape[2]))
    part = np.empty_like(total)
    for j in range(len(table)):
        np.take(table[j], pieces[:, j], axis=0, out=part)
        total += part
    out[rows] = total
    return out


def _chunk_basis(
    unit: np.ndarray,
    device: np.ndarray,
    shape: np.ndarray,
    rank: np.ndarray,
    open_: np.ndarray,
    classes: np.ndarray,
    groups: np.ndarray,
    unit_reach: np.ndarray,
    unit_best: np.ndarray,
    per_device: list[np.ndarray],
) -> None:
    """Add the basis of whole units' pairs, sorted by unit then distance (``rank`` 0 nearest).

    Open states are bit masks, one bit per slice. Walking each unit's ranks outwards,
    ``before`` (a nearer device is open) and ``twice`` (two are) give each pair's slices as the
    best open device (``first``) and as the second best (``second``); walking back, ``later``
    (a farther device is open). Every figure is then a sum over pairs of u(d)/u(0) times the
    class weights of a mask, read from tables 16 slices at a time: a device's loss is, over
    its ``first`` slices, its u minus the second best's (the pair whose ``second`` slices they
    are; 0 where nothing farther is open); its gain open always is its u minus the best one's
    where a farther device or none is the best. No pair × slice array is built.
    """
    in_reach, served, loss, gain = per_device
    n_devices = len(open_)
    table = _class_table(classes, bits=16 if len(unit) >= 65536 else 8)
    device_masks = _bit_masks(open_)
    new_unit = np.r_[True, unit[1:] != unit[:-1]]
    units, local = unit[new_unit], np.cumsum(new_unit) - 1
    n_units = len(units)
    mask = device_masks[device]  # (pairs, words)
    by_rank = np.argsort(rank, kind="stable")
    levels = [by_rank[a:b] for a, b in itertools.pairwise(np.r_[0, np.cumsum(np.bincount(rank))])]
    before = np.zeros_like(mask)
    twice = np.zeros_like(mask)
    for at in levels[1:]:
        prev = at - 1  # the same unit's pair one rank nearer
        before[at] = before[prev] | mask[prev]
        twice[at] = twice[prev] | (before[prev] & mask[prev])
    first = mask & ~before
    second = mask & before & ~twice
    last = np.r_[new_unit[1:], True]
    reached = before[last] | mask[last]  # (units, words): some device open
    del twice, before

    weights = groups[units]  # (U, 2 ages)
    pair_weights = weights[local]  # (pairs, 2 ages)
    unit_reach[units] = weights[:, :, None] * _class_sums(reached, table)[:, None, :]
    pair_reach = _class_sums(device_masks, table)[device]  # (pairs, 2 classes): open
    # Where each pair is the best open device: all its open slices at rank 0.
    with_first = np.flatnonzero(first.any(axis=1))
    first_weight = np.where((rank == 0)[:, None], pair_reach, 0.0)
    farther = with_first[rank[with_first] > 0]
    first_weight[farther] = _class_sums(first[farther], table)
    kept = shape[:, None] * first_weight
    unit_kept = np.column_stack(
        [np.bincount(local, weights=kept[:, c], minlength=n_units) for c in range(2)]
    )
    unit_best[units] = weights[:, :, None] * unit_kept[:, None, :]

    # Walking back from the farthest rank: what is open farther away, and the suffix sums
    # that give each pair's gain open always: Σ over farther ranks t of (u_{t−1} − u_t) × the
    # weight of the slices where a device at rank ≥ t is the best.
    later = np.zeros_like(mask)
    suffix = first_weight.copy()
    ahead = np.zeros_like(first_weight)
    for at in reversed(levels[1:]):
        prev = at - 1
        later[prev] = later[at] | mask[at]
        suffix[prev] += suffix[at]
        ahead[prev] = ahead[at] + (shape[prev] - shape[at])[:, None] * suffix[at]
    unreached = _class_sums(~reached, table)  # the padding bits weigh 0
    pair_gain = shape[:, None] * unreached[local] + ahead

    # The drop where a pair is the best: to 0 where nothing farther is open, else to the
    # second best: the same unit's pair whose ``second`` slices it shares.
    drop = shape[:, None] * first_weight
    shadowed = with_first[(first[with_first] & later[with_first]).any(axis=1)]
    drop[shadowed] = shape[shadowed, None] * _class_sums(first[shadowed] & ~later[shadowed], table)
    with_second = np.flatnonzero(second.any(axis=1))
    n_first = np.bincount(local[with_first], minlength=n_units)
    offset = np.cumsum(n_first) - n_first
    count = n_first[local[with_second]]
    q = np.repeat(with_second, count)
    within = np.arange(len(q)) - np.repeat(np.cumsum(count) - count, count)
    p = with_first[offset[local[q]] + within]
    differ = shape[p] != shape[q]  # else the drop to the second best is 0
    p, q = p[differ], q[differ]
    step = (shape[p] - shape[q])[:, None] * _class_sums(first[p] & second[q], table)

    for g in range(2):
        for c in range(2):
            served[:, g, c] += np.bincount(
                device, weights=pair_weights[:, g] * kept[:, c], minlength=n_devices
            )
            loss[:, g, c] += np.bincount(
                device, weights=pair_weights[:, g] * drop[:, c], minlength=n_devices
            )
            loss[:, g, c] += np.bincount(
                device[p], weights=pair_weights[p, g] * step[:, c], minlength=n_devices
            )
            in_reach[:, g, c] += np.bincount(
                device, weights=pair_weights[:, g] * pair_reach[:, c], minlength=n_devices
            )
            gain[:, g, c] += np.bincount(
                device, weights=pair_weights[:, g] * pair_gain[:, c], minlength=n_devices
            )


# --- from basis to figures --------------------------------------------------------------------


@dataclass(frozen=True)
class Coefficients:
    """Per parameter draw, what one unit of basis is worth: (draws, 2 ages, 2 classes).

    ``arrests``: public arrests per year; ``uses``: uses per year; ``lives``: lives per year.
    Draw 0 is the central one.
    """

    arrests: np.ndarray
    uses: np.ndarray
    lives: np.ndarray
    life_years: np.ndarray


def coefficients(
    parameters: OutcomeParameters,
    slices: _Slices,
    *,
    draws: int = DEFAULT_DRAWS,
    seed: int = DEFAULT_SEED,
) -> Coefficients:
    """Central values first, then ``draws`` Monte Carlo draws (triangular, fixed seed)."""
    rng = np.random.default_rng(seed)
    values: dict[str, np.ndarray] = {}
    for key in PARAMETER_KEYS:
        item = parameters[key]
        sampled = (
            np.full(draws, item.central)
            if item.fixed or key in _FIXED_IN_RUN
            else rng.triangular(item.low, item.central, item.high, size=draws)
        )
        values[key] = np.concatenate([[item.central], sampled])
    under, over = age_rates(
        values["incidence_per_100k"],
        values["share_arrests_65_plus"],
        values["share_65_plus_population"],
    )
    rates = np.stack([under, over], axis=1)  # (D, 2 ages)
    if slices.ratio_applies:
        ratio = values["day_night_ratio"]
    else:
        ratio = np.ones_like(values["day_night_ratio"])
    day_weight = float(slices.base[slices.day].sum())
    night_weight = float(slices.base[~slices.day].sum())
    total = ratio * day_weight + night_weight
    per_class = np.stack([ratio / total, 1.0 / total], axis=1)  # (D, 2 classes)
    public = values["share_public"]
    reached = public + (1 - public) * values["home_use_factor"]
    arrests = public[:, None, None] * rates[:, :, None] * per_class[:, None, :]
    uses = (reached * values["use_probability"])[:, None, None] * rates[:, :, None]
    uses = uses * per_class[:, None, :]
    lives = uses * values["survival_gain"][:, None, None]
    life_years = lives * values["life_years_per_survivor"][:, None, None]
    return Coefficients(arrests, uses, lives, life_years)


def weekly_coefficients(
    parameters: OutcomeParameters, *, draws: int = DEFAULT_DRAWS, seed: int = DEFAULT_SEED
) -> Coefficients:
    """The coefficients :func:`outcomes` uses in weekly mode (no given hour weights).

    They do not depend on the devices, so figures for two sets of devices computed with them
    share their draws: the band of a difference is then paired, not two bands subtracted.
    """
    weekly = _Slices(
        np.zeros((0, HOURS_PER_WEEK), dtype=bool), np.ones(HOURS_PER_WEEK), day_slots(), True
    )
    return coefficients(parameters, weekly, draws=draws, seed=seed)


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
        one = _Slices(np.zeros((0, 1), dtype=bool), np.ones(1), np.array([True]), False)
        coefs = coefficients(before.parameters, one, draws=before.draws, seed=before.seed)
    gain = (after.basis.unit_best.sum(axis=0) - before.basis.unit_best.sum(axis=0))[None]
    low, high = _band(gain, coefs.lives)
    return float(_central(gain, coefs.lives)[0]), float(low[0]), float(high[0])


def _central(basis: np.ndarray, coefs: np.ndarray) -> np.ndarray:
    return np.einsum("nac,ac->n", basis, coefs[0])


def _band(basis: np.ndarray, coefs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """5th and 95th percentiles over the draws (chunked: draws × rows can be large).

    A row of zeros (a device that changes nothing) has a band of 0 without drawing; the other
    rows go in chunks, over the CPU cores when there are several chunks (numpy's matrix
    product and percentiles release the GIL).
    """
    n = len(basis)
    low, high = np.zeros(n), np.zeros(n)
    flat = basis.reshape(n, math.prod(basis.shape[1:]))
    rows = np.flatnonzero(flat.any(axis=1))
    draws = coefs[1:].reshape(len(coefs) - 1, -1)
    step = max(1, 5_000_000 // max(1, len(draws)))

    def band_of(lo: int) -> None:
        chosen = rows[lo : lo + step]
        low[chosen], high[chosen] = np.percentile(flat[chosen] @ draws.T, BAND_PERCENTILES, axis=1)

    starts = range(0, len(rows), step)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    workers = min(len(starts), cores or 1)
    if workers > 1:
        with ThreadPoolExecutor(workers) as pool:
            list(pool.map(band_of, starts))
    else:
        for lo in starts:
            band_of(lo)
    return low, high


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
    slices: _Slices  # every device's rows
    counted: np.ndarray
    at: dt.datetime | None
    week_start: dt.datetime | None
    origin: str

    @property
    def counted_slices(self) -> _Slices:
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
    demand = prepare_demand(population, zones=zones)
    devices_xy, availability = device_points(
        devices,
        city,
        assume_unknown_open=assume_unknown_open,
        count_overdue=count_overdue,
        reports=reports,
    )
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
        # The basis weighs each unit by _group_weights(demand): scaling both head counts by the
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
) -> tuple[_Slices, dt.datetime | None, str]:
    if mode == "instant":
        assert at is not None
        is_day = DAY_START_HOUR <= at.hour < DAY_END_HOUR
        open_ = available(availability, at=at, reference_date=at.date())[:, None]
        return _Slices(open_, np.ones(1), np.array([is_day]), False), None, "instant"
    week = weekly_availability(availability, week_of=week_of)
    if mode == "always":
        return _Slices(week.always[:, None], np.ones(1), np.array([True]), False), None, "always"
    if weights is None:
        base, ratio_applies, origin = np.ones(HOURS_PER_WEEK), True, "day_night_ratio"
    else:
        base = np.asarray(weights, dtype=float)
        if base.shape != (HOURS_PER_WEEK,) or (base < 0).any() or not base.sum() > 0:
            msg = "Los pesos horarios deben ser 168 números no negativos con suma mayor que 0."
            raise OutcomeInputError(msg)
        base, ratio_applies, origin = base / base.sum(), False, "given"
    return _Slices(week.slices, base, day_slots(), ratio_applies), week.week_start, origin


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
    groups = _group_weights(demand, risk_factor)
    under, over = age_rates(
        parameters.central("incidence_per_100k"),
        parameters.central("share_arrests_65_plus"),
        parameters.central("share_65_plus_population"),
    )
    unit_arrests = groups @ np.array([float(under), float(over)])
    share_public = parameters.central("share_public")

    # The city and the zones: sums of the units' basis.
    n_zones = len(demand.zone_ids)
    slot = np.where(demand.zone >= 0, demand.zone, n_zones)
    zone_reach = _by_slot(basis.unit_reach, slot, n_zones + 1)
    zone_best = _by_slot(basis.unit_best, slot, n_zones + 1)
    zone_low, zone_high = _band(zone_best, coefs.lives)
    city_reach, city_best = basis.unit_reach.sum(axis=0)[None], basis.unit_best.sum(axis=0)[None]
    city_low, city_high = _band(city_best, coefs.lives)
    ly_low, ly_high = _band(city_best, coefs.life_years)
    residents = np.bincount(slot, weights=demand.residents, minlength=n_zones + 1)
    arrests = np.bincount(slot, weights=unit_arrests, minlength=n_zones + 1)
    zones = pd.DataFrame(
        {
            "zone_id": [*demand.zone_ids, None],
            "zone_name": [*demand.zone_names, NO_ZONE],
            "residents": residents.astype(np.int64),
            "arrests_per_year": arrests,
            "public_arrests_per_year": arrests * share_public,
            "arrests_in_reach": _central(zone_reach, coefs.arrests),
            "uses_per_year": _central(zone_best, coefs.uses),
            "lives_saved": _central(zone_best, coefs.lives),
            "lives_saved_low": zone_low,
            "lives_saved_high": zone_high,
        }
    )
    if n_zones and residents[-1] == 0:
        zones = zones.iloc[:-1]
    zones = zones.sort_values("zone_name", key=lambda n: n.str.lower(), kind="stable")
    outside = zones["zone_id"].isna()
    zones = pd.concat([zones[~outside], zones[outside]]).reset_index(drop=True)

    lives = float(_central(city_best, coefs.lives)[0])
    city_figures: dict[str, float] = {
        "residents": int(demand.residents.sum()),
        "residents_65_plus": int(demand.seniors.sum()),
        "arrests_per_year": float(unit_arrests.sum()),
        "public_arrests_per_year": float(unit_arrests.sum() * share_public),
        "arrests_in_reach": float(_central(city_reach, coefs.arrests)[0]),
        "uses_per_year": float(_central(city_best, coefs.uses)[0]),
        "lives_saved": lives,
        "lives_saved_low": float(city_low[0]),
        "lives_saved_high": float(city_high[0]),
        "lives_saved_per_million": _per_million(lives, int(demand.residents.sum())),
        "life_years_per_year": float(_central(city_best, coefs.life_years)[0]),
        "life_years_per_year_low": float(ly_low[0]),
        "life_years_per_year_high": float(ly_high[0]),
        "devices_counted": len(counted),
        "devices_total": len(devices),
    }
    notes = list(model_notes(model, demand.xy, reach_m))
    if parameters.central("home_use_factor") == 0:
        notes.append(HOME_ARRESTS_NOTE)
    if risk_factor is not None:
        notes.append(
            "Riesgo mezclado con paradas observadas: el factor de cada unidad se calcula con los "
            "valores centrales, así que la banda refleja los parámetros y no se estrecha con lo "
            "observado."
        )
    units = demand.units()
    units["arrests_per_year"] = unit_arrests
    units["lives_saved"] = _central(basis.unit_best, coefs.lives)
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
        city=city_figures,
        by_zone=zones,
        devices=_device_table(devices, counted, basis, coefs, weekly=mode == "weekly"),
        units=units,
        hours_issues=availability.issues,
        notes=tuple(notes),
        basis=basis,
    )


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
    table["arrests_in_reach"] = spread(_central(basis.device_in_reach, coefs.arrests))
    table["uses_per_year"] = spread(_central(basis.device_served, coefs.uses))
    night = basis.device_loss.copy()
    night[:, :, 0] = 0.0  # the night class only
    for column, values in (
        ("lives_saved", basis.device_served),
        ("marginal_lives", basis.device_loss),
        ("marginal_night_lives", night),
        ("gain_if_24_7", basis.device_gain),
    ):
        low, high = _band(values, coefs.lives)
        table[column] = spread(_central(values, coefs.lives))
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
    slice_worth = _group_weights(demand)[units] @ (coefs.lives[0] @ classes.T)  # (U, S)
    shape = use_shape(offer.distance_m, full_use_m=full, reach_m=reach)
    worth = np.zeros(len(shape))
    step = max(1, _CHUNK_CELLS // slices.open.shape[1])
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
    step = max(1, _CHUNK_CELLS // open_.shape[1])
    for lo in range(0, len(shape), step):
        part = slice(lo, lo + step)
        np.maximum.at(best, near.unit[part], shape[part, None] * open_[near.device[part]])
    return best
