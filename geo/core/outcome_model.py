"""The outcome model's parts: its parameters, the basis (who is reached, when, how far) and the
coefficients that turn the basis into expected lives; :mod:`geo.core.outcomes` runs them.

See :mod:`geo.core.outcomes` for the model and its sources.
"""

from __future__ import annotations

import itertools
import math
import os
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from geo.core.availability import (
    HOURS_PER_WEEK,
)
from geo.core.coverage import Demand
from geo.core.distance import (
    DistanceModel,
    pairs_within,
)
from geo.errors import OutcomeInputError

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
class Slices:
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


def group_weights(demand: Demand, risk_factor: np.ndarray | None = None) -> np.ndarray:
    """(units, 2): residents under 65 and 65+ (each unit times its risk factor, if given)."""
    residents = demand.residents.astype(float)
    seniors = demand.seniors.astype(float)
    groups = np.column_stack([residents - seniors, seniors])
    return groups if risk_factor is None else groups * risk_factor[:, None]


#: Float cells per chunk of the pair × slice arrays (≈ 32 MB each).
CHUNK_CELLS = 4_000_000


def compute_basis(
    demand: Demand,
    devices_xy: np.ndarray,
    slices: Slices,
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
    groups = group_weights(demand)
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
    # Chunks of whole units, about CHUNK_CELLS / 8 pairs each (a pair holds a few masks).
    per_chunk = max(1, CHUNK_CELLS // 8)
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
    slices: Slices,
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
    weekly = Slices(
        np.zeros((0, HOURS_PER_WEEK), dtype=bool), np.ones(HOURS_PER_WEEK), day_slots(), True
    )
    return coefficients(parameters, weekly, draws=draws, seed=seed)


def lives_central(basis: np.ndarray, coefs: np.ndarray) -> np.ndarray:
    return np.einsum("nac,ac->n", basis, coefs[0])


def lives_band(basis: np.ndarray, coefs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
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
