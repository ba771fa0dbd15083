"""Past cardiac arrests: a private layer that tells the outcome model *when* and *where*.

Emergency services know the out-of-hospital cardiac arrests they attended: when, where, the kind
of place and, sometimes, what happened next (bystander CPR, a defibrillator used, survival). This
module turns such rows into a validated, coarsened frame and, from the stored arrests, into two
inputs of :func:`geo.core.outcomes.outcomes`: hour-of-week weights and a per-unit risk factor.

Pure: rows and frames in, frames and arrays out. Reading the CSV file and the database happens at
the edge (``cardiomapa import arrests``, :func:`geo.services.inputs.arrests_inputs`).

Privacy
-------
The layer is **private**: only the staff (the CLI, the staff's analyses) ever read it; it is never
served by a public route, a download, an export, the OGC API or a citizens' map. A position is
*coarsened* on import to the centre of its square cell of ``cell_m`` metres (default 100 m) on a
grid anchored at the origin of the city's metric CRS (EPSG:25830 for Palencia); only that centre
is returned (and stored), never the raw position, and an address is never kept. Times are kept
to the hour (the model needs the hour of the week and the year): a 100 m cell and an exact minute
together would say too much about a home.

Rows
----
A CSV row (columns are the English names below; values may be Spanish):

- ``occurred_at`` (required): local time of the city, ISO ``AAAA-MM-DDTHH:MM[:SS]`` (a space is
  accepted for ``T``; an offset or ``Z`` is converted to local time) or ``DD/MM/AAAA HH:MM``;
  never after ``now``. A date without a time is refused: the hour is what the weights need.
- ``lon``, ``lat``: degrees, EPSG:4326 (a decimal comma is accepted). Inside the municipality;
  swapped latitude and longitude are recognised and named. ``address``: there is no geocoder
  offline, so a row with an address but no coordinates is refused, saying coordinates are needed.
- ``place_type`` (required): ``home``, ``public`` or ``other``, or their Spanish labels
  (``domicilio``, ``vía pública``, ``lugar público``, ``otro``, ``residencia``…).
- ``bystander_cpr``, ``aed_used``, ``survived_30d``, ``discharged_alive`` (*alta*): optional
  booleans (``sí``/``no``, ``true``/``false``, ``1``/``0``; empty or ``desconocido``: unknown).
- ``id`` (the services' reference; unique within the file) and ``source`` (else ``source``).

Every problem of every row is reported at once, each naming the file, the line and the field.

Hour-of-week weights
--------------------
With p = :func:`geo.core.outcome_model.hour_weights` (``day_night_ratio``) as the prior and nₕ the
observed arrests outside the home in hour-of-week h (Monday 00:00–01:00 local is h = 0, as in
:mod:`geo.core.availability`), n = Σ nₕ, the weights are the posterior mean of a Dirichlet prior
worth α pseudo-arrests:

    wₕ = (α·pₕ + nₕ) / (α + n)

They sum to 1, equal the prior when nothing was observed and tend to the observed histogram as n
grows (α = 168 by default: the prior weighs as much as one arrest per hour of the week).

Risk surface
------------
The model puts each unit's arrests where its residents live: λᵢ per year from residents and the
age-banded rates of :func:`geo.core.outcomes.age_rates`, of which πλᵢ outside the home (π =
``share_public``; both at their central values). Observed: N arrests outside the home (``public``
and ``other``: the model's π is the share *outside the home*) over T years, at cell centres xₑ.
Each event is attributed to the units near it, in proportion to their expected arrests times a
Gaussian kernel of bandwidth h (default 200 m), cut at 3h:

    oᵢ = Σₑ λᵢ K(dᵢₑ) / Σⱼ λⱼ K(dⱼₑ),    K(d) = exp(−d² / 2h²) for d ≤ 3h, else 0

(an event with no resident within 3h is spread over all units in proportion to λ: it counts for
the total, not for the shape). Each unit's out-of-home rate has a Gamma prior with mean πλᵢ worth
τ years of observation (shape τπλᵢ, rate τ; default τ = 5); its posterior mean after oᵢ events
in T years, and the factor applied to λᵢ, are

    λ̂ᵢ = (τ·πλᵢ + oᵢ) / (τ + T),    fᵢ = λ̂ᵢ / (πλᵢ)

So units near observed events weigh more, and the city total is the registry-based total blended
with the observed rate, weighted τ : T:

    Σᵢ πλᵢ fᵢ = (τ·Σᵢ πλᵢ + N) / (τ + T)

With T = 0 (nothing observed) every fᵢ is 1. Units without residents keep fᵢ = 1 (they weigh
nothing). The model has one λ per unit, so fᵢ also scales its home arrests, which count only when
``home_use_factor`` > 0; and fᵢ is computed with central parameters, the Monte Carlo band varying
the others around it.

Honest limits: this assumes the file holds *every* arrest the services attended in the
municipality over T full years (by default the calendar years the arrests span,
:func:`observed_years`), that the registry's incidence counts the same kind of event (attended,
resuscitation attempted), and it moves arrests in the street to the residents' units nearby, as
the model places every arrest where people live.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol
from zoneinfo import ZoneInfo

import geopandas as gpd
import numpy as np
import pandas as pd
from scipy.spatial import cKDTree

from geo.city import CityProfile
from geo.core.availability import HOURS_PER_WEEK
from geo.core.coverage import prepare_demand
from geo.core.distance import metric_xy
from geo.core.layers import WGS84, check_inside
from geo.core.outcome_model import OutcomeParameters, age_rates, hour_weights
from geo.core.text import fold
from geo.errors import InputError, Problem, RecordValidationError

#: The ``cardiomapa import`` format of a CSV file of past arrests.
FORMAT = "arrests"
#: Kinds of place, as stored (``geo.io.store.ARREST_PLACE_TYPES``), with their Spanish labels.
PLACE_LABELS: Mapping[str, str] = {
    "home": "domicilio",
    "public": "vía o lugar público",
    "other": "otro lugar (residencia, trabajo, centro sanitario…)",
}
PLACE_TYPES = tuple(PLACE_LABELS)
#: Places outside the home: what the model's ``share_public`` (π) is the share of.
OUT_OF_HOME = ("public", "other")
#: Optional outcomes of an arrest (booleans; ``None`` when unknown).
OUTCOME_FIELDS = ("bystander_cpr", "aed_used", "survived_30d", "discharged_alive")

#: Columns of a CSV file of arrests (lower case).
CSV_REQUIRED_COLUMNS = ("occurred_at", "place_type")
CSV_OPTIONAL_COLUMNS = ("lon", "lat", "address", *OUTCOME_FIELDS, "id", "source")
#: Columns of :func:`parse_arrests`'s frame besides ``geometry`` (``geo.io.store.ARREST_COLUMNS``).
FRAME_COLUMNS = ("occurred_at", "place_type", *OUTCOME_FIELDS, "cell_m", "source", "source_id")

DEFAULT_CELL_M = 100.0
#: Grids finer than this are not coarsening; coarser than this say nothing about where.
MIN_CELL_M, MAX_CELL_M = 50.0, 5000.0
DEFAULT_BANDWIDTH_M = 200.0
#: The kernel is cut at this many bandwidths.
KERNEL_CUTOFF = 3.0
DEFAULT_PRIOR_YEARS = 5.0
DEFAULT_PRIOR_ARRESTS = float(HOURS_PER_WEEK)
FIRST_YEAR = 1980
MAX_TEXT = 200


class ArrestRow(Protocol):
    """One data row of a CSV file: its line (the header is line 1) and its cells by column
    (``geo.services.training.CsvRow`` is one)."""

    @property
    def line(self) -> int: ...

    @property
    def values(self) -> Mapping[str, str]: ...


# --- rows → frame -----------------------------------------------------------------------------


def parse_arrests(
    rows: Sequence[ArrestRow],
    *,
    file: str,
    city: CityProfile,
    now: dt.datetime,
    source: str,
    cell_m: float = DEFAULT_CELL_M,
) -> gpd.GeoDataFrame:
    """Validate the rows of a file of past arrests and coarsen their positions.

    Parameters
    ----------
    rows
        The file's data rows (cells stripped), as ``geo.services.training.read_csv_register`` reads
        them with :data:`CSV_REQUIRED_COLUMNS` and :data:`CSV_OPTIONAL_COLUMNS`.
    file
        The file name problems name.
    city
        Its boundary refuses positions outside the municipality; its metric CRS holds the grid.
    now
        No arrest may be later (local time of the city; a zone, if given, is converted).
    source
        Where rows without a ``source`` cell come from.
    cell_m
        Side of the grid cells positions are coarsened to, in metres (see :func:`coarsen`).

    Returns
    -------
    geopandas.GeoDataFrame
        EPSG:4326, one row per arrest in file order: :data:`FRAME_COLUMNS` (``occurred_at``
        datetime64[us] local and naive; ``source_id`` the ``id`` cell or ``None``) and
        ``geometry``, the centre of the arrest's grid cell.

    Raises
    ------
    RecordValidationError
        Every problem of every row (each naming the file, the line and the field), or a file
        without rows; nothing is returned.
    InputError
        ``cell_m`` out of range (``invalid_cell``).
    """
    check_cell(cell_m)
    zone = ZoneInfo(city.timezone)
    local_now = now.astimezone(zone).replace(tzinfo=None) if now.tzinfo else now
    problems: list[Problem] = []
    parsed: list[dict[str, Any]] = []
    first_line: dict[tuple[str, str], int] = {}
    if not rows:
        message = "el archivo no contiene ninguna parada (solo la cabecera, o nada)."
        raise RecordValidationError([Problem(file, message, line=2, code="no_rows")])
    for row in rows:
        record, found = _check_row(row, file=file, city=city, zone=zone, now=local_now)
        row_source = record.get("source") or source
        reference = record.get("source_id")
        if reference is not None and not found:
            key = (row_source, reference)
            seen = first_line.setdefault(key, row.line)
            if seen != row.line:
                message = f"id {reference!r} repetido (ya usado en la línea {seen})."
                found.append(Problem(file, message, line=row.line, field="id",
                                     code="duplicate_record"))  # fmt: skip
        problems.extend(found)
        if not found:
            parsed.append({**record, "source": row_source})
    if problems:
        raise RecordValidationError(problems)
    raw = gpd.GeoSeries(
        gpd.points_from_xy([r["lon"] for r in parsed], [r["lat"] for r in parsed]), crs=WGS84
    )
    centres = coarsen(metric_xy(gpd.GeoDataFrame(geometry=raw.to_crs(city.metric_crs)),
                                "paradas"), cell_m)  # fmt: skip
    cells = gpd.GeoSeries(gpd.points_from_xy(centres[:, 0], centres[:, 1]), crs=city.metric_crs)
    data: dict[str, Any] = {
        # Kept to the hour: the model needs the hour of the week and the year, no more.
        "occurred_at": pd.Series(
            [r["occurred_at"] for r in parsed], dtype="datetime64[us]"
        ).dt.floor("h"),
        "place_type": pd.Series([r["place_type"] for r in parsed], dtype="object"),
    }
    for name in OUTCOME_FIELDS:
        data[name] = pd.Series([r.get(name) for r in parsed], dtype="object")
    data["cell_m"] = pd.Series(np.full(len(parsed), float(cell_m)), dtype="float64")
    data["source"] = pd.Series([r["source"] for r in parsed], dtype="object")
    data["source_id"] = pd.Series([r.get("source_id") for r in parsed], dtype="object")
    return gpd.GeoDataFrame(data, geometry=cells.to_crs(WGS84).values, crs=WGS84)


def check_cell(cell_m: float) -> float:
    """``cell_m`` if it is a grid size cardiomapa accepts (metres).

    Raises
    ------
    InputError
        ``invalid_cell``: not a number from :data:`MIN_CELL_M` to :data:`MAX_CELL_M`.
    """
    if not (math.isfinite(cell_m) and MIN_CELL_M <= cell_m <= MAX_CELL_M):
        msg = (
            f"El tamaño de celda para agregar las posiciones debe estar entre {MIN_CELL_M:g} y "
            f"{MAX_CELL_M:g} m (recibido {cell_m:g})."
        )
        raise InputError(msg, code="invalid_cell", field="cell_m")
    return float(cell_m)


def coarsen(xy: np.ndarray, cell_m: float) -> np.ndarray:
    """The centres of the ``cell_m`` grid cells holding points ``xy`` (metric CRS, metres).

    The grid is anchored at the CRS origin: cell centres are at odd multiples of ``cell_m / 2``,
    so the same point always lands in the same cell, whatever else is imported.
    """
    points = np.asarray(xy, dtype=float).reshape(-1, 2)
    return (np.floor(points / cell_m) + 0.5) * cell_m


class _Invalid(Exception):  # an internal signal: never escapes this module
    def __init__(self, message: str, code: str = "invalid_value") -> None:
        self.message = message
        self.code = code


def _check_row(
    row: ArrestRow, *, file: str, city: CityProfile, zone: ZoneInfo, now: dt.datetime
) -> tuple[dict[str, Any], list[Problem]]:
    values = row.values
    problems: list[Problem] = []
    record: dict[str, Any] = {}

    def problem(message: str, field: str | None, code: str = "invalid_value") -> None:
        problems.append(Problem(file, message, line=row.line, field=field, code=code))

    def cell(name: str) -> str:
        return (values.get(name) or "").strip()

    for name, check in (("occurred_at", _occurred_at), ("place_type", _place_type)):
        text = cell(name)
        if not text:
            problem("falta este campo obligatorio.", name, "missing_field")
            continue
        try:
            record[name] = check(text, zone, now)
        except _Invalid as exc:
            problem(exc.message, name, exc.code)
    for name in OUTCOME_FIELDS:
        try:
            record[name] = _boolean(cell(name))
        except _Invalid as exc:
            problem(exc.message, name, exc.code)
    for name, key in (("id", "source_id"), ("source", "source")):
        text = cell(name)
        if "\x00" in text or len(text) > MAX_TEXT:
            problem(f"texto no admitido (máximo {MAX_TEXT} caracteres, sin \\u0000).", name)
        record[key] = text or None
    lon_text, lat_text = cell("lon"), cell("lat")
    if not lon_text and not lat_text:
        if cell("address"):
            problem(
                "la fila solo trae dirección y cardiomapa no tiene geocodificador sin conexión: "
                "se necesitan las coordenadas lon y lat (grados, EPSG:4326) de la parada.",
                "address",
                "needs_coordinates",
            )
        else:
            problem(
                "faltan las coordenadas: se necesitan lon y lat (grados, EPSG:4326).",
                "lon",
                "missing_field",
            )
        return record, problems
    coordinates: dict[str, float] = {}
    for name, text in (("lon", lon_text), ("lat", lat_text)):
        if not text:
            other = "lat" if name == "lon" else "lon"
            problem(f"falta este campo: con {other} hace falta también {name}.", name,
                    "missing_field")  # fmt: skip
            continue
        try:
            coordinates[name] = float(text.replace(",", "."))
        except ValueError:
            problem(f"{text!r} no es un número (grados, EPSG:4326, p. ej. "
                    f"{getattr(city, f'centre_{name}')}).", name)  # fmt: skip
    if len(coordinates) == 2:
        try:
            check_inside(coordinates["lon"], coordinates["lat"], city, field="lon/lat")
        except InputError as exc:
            message = str(exc)
            if exc.code == "swapped_coordinates":
                message = (
                    f"las coordenadas ({coordinates['lon']}, {coordinates['lat']}) caen fuera del "
                    f"término municipal de {city.name} y parecen tener latitud y longitud "
                    f"intercambiadas: lon lleva la longitud (p. ej. {city.centre_lon}) y lat la "
                    f"latitud (p. ej. {city.centre_lat})."
                )
            problem(message, "lon/lat", exc.code)
        record.update(coordinates)
    return record, problems


_ISO_TIME = re.compile(
    r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?(Z|[+-]\d{2}:?\d{2})?"
)
_ISO_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")
_DMY_TIME = re.compile(
    r"(?P<day>\d{1,2})/(?P<month>\d{1,2})/(?P<year>\d{4})[ T]"
    r"(?P<hour>\d{1,2}):(?P<minute>\d{2})(:(?P<second>\d{2}))?"
)
_DMY_DAY = re.compile(r"\d{1,2}/\d{1,2}/\d{4}")
_TIME_FORMS = "AAAA-MM-DDTHH:MM (2024-03-14T17:30, hora local) o DD/MM/AAAA HH:MM"


def _occurred_at(text: str, zone: ZoneInfo, now: dt.datetime) -> dt.datetime:
    if _ISO_DAY.fullmatch(text) or _DMY_DAY.fullmatch(text):
        raise _Invalid(
            f"falta la hora en {text!r}: se necesita la fecha y la hora, {_TIME_FORMS}.",
            "invalid_date",
        )
    try:
        if _ISO_TIME.fullmatch(text):
            value = dt.datetime.fromisoformat(text.replace(" ", "T", 1))
        elif (match := _DMY_TIME.fullmatch(text)) is not None:
            value = dt.datetime(
                int(match["year"]),
                int(match["month"]),
                int(match["day"]),
                int(match["hour"]),
                int(match["minute"]),
                int(match["second"] or 0),
            )
        else:
            raise ValueError(text)
    except ValueError:
        raise _Invalid(
            f"fecha y hora no válidas {text!r}; se admite {_TIME_FORMS}.", "invalid_date"
        ) from None
    if value.tzinfo is not None:
        value = value.astimezone(zone).replace(tzinfo=None)
    if value > now:
        raise _Invalid(
            f"la parada ({value.isoformat(timespec='minutes')}) es posterior a ahora "
            f"({now.isoformat(timespec='minutes')}); revise la fecha.",
            "date_in_future",
        )
    if value.year < FIRST_YEAR:
        raise _Invalid(f"la fecha {value.date().isoformat()} es anterior a {FIRST_YEAR}; "
                       "revise el año.", "out_of_range")  # fmt: skip
    return value


def _folded(text: str) -> str:
    """Lower case, no accents, letters and digits only: ``"Vía pública"`` → ``"viapublica"``."""
    return re.sub(r"[^0-9a-z]", "", fold(text))


#: Every way of writing a place type that is accepted (folded by :func:`_folded`) → its code.
_PLACE_ALIASES: Mapping[str, str] = {
    _folded(alias): code
    for code, aliases in {
        "home": ("home", "domicilio", "domicilio particular", "hogar", "casa", "vivienda"),
        "public": ("public", "público", "pública", "vía pública", "lugar público",
                   "espacio público", "calle", "establecimiento público", "public place",
                   "street"),
        "other": ("other", "otro", "otros", "otra", "otro lugar", "residencia",
                  "residencia de mayores", "centro sanitario", "centro de salud",
                  "lugar de trabajo", "trabajo"),
    }.items()
    for alias in aliases
}  # fmt: skip
_PLACES_TEXT = ", ".join(f"{code} ({label})" for code, label in PLACE_LABELS.items())


def _place_type(text: str, zone: ZoneInfo, now: dt.datetime) -> str:
    code = _PLACE_ALIASES.get(_folded(text))
    if code is None:
        raise _Invalid(f"tipo de lugar {text!r} no admitido; se admite: {_PLACES_TEXT}.",
                       "invalid_choice")  # fmt: skip
    return code


_TRUE = frozenset({"si", "s", "yes", "y", "true", "t", "1", "verdadero", "x"})
_FALSE = frozenset({"no", "n", "false", "f", "0", "falso"})
_UNKNOWN = frozenset({"", "desconocido", "ns", "nc", "nsnc", "unknown", "na"})


def _boolean(text: str) -> bool | None:
    folded = _folded(text)
    if folded in _TRUE:
        return True
    if folded in _FALSE:
        return False
    if folded in _UNKNOWN:
        return None
    raise _Invalid(
        f"{text!r} no es un sí o un no; se admite sí/no, true/false, 1/0, o vacío si no se sabe."
    )


# --- hours of the week ------------------------------------------------------------------------


def hour_of_week(times: pd.Series) -> np.ndarray:
    """Hour-of-week slot (0–167; Monday 00:00–01:00 is 0) of local, naive times."""
    stamps = pd.DatetimeIndex(pd.to_datetime(times))
    return np.asarray(stamps.day_of_week * 24 + stamps.hour, dtype=np.int64)


def hour_histogram(
    arrests: pd.DataFrame, *, place_types: Sequence[str] = OUT_OF_HOME
) -> np.ndarray:
    """Arrests of ``place_types`` in each of the 168 hours of the week (int64 counts)."""
    chosen = arrests.loc[arrests["place_type"].isin(list(place_types)), "occurred_at"]
    return np.bincount(hour_of_week(chosen), minlength=HOURS_PER_WEEK).astype(np.int64)


@dataclass(frozen=True)
class HourWeights:
    """Hour-of-week weights blended from a prior and observed arrests (see the module docstring).

    Attributes
    ----------
    weights
        (168,), sums to 1: what :func:`geo.core.outcomes.outcomes` takes as ``weights``.
    observed
        (168,) counts of the arrests outside the home in each hour.
    prior
        (168,) the prior shares (:func:`geo.core.outcome_model.hour_weights`).
    pseudo_arrests
        α, how many arrests the prior weighs as.
    origin
        A label for ``weights_origin``.
    """

    weights: np.ndarray
    observed: np.ndarray
    prior: np.ndarray
    pseudo_arrests: float
    origin: str


def blended_hour_weights(
    arrests: pd.DataFrame,
    *,
    day_night_ratio: float,
    pseudo_arrests: float = DEFAULT_PRIOR_ARRESTS,
) -> HourWeights:
    """wₕ = (α·pₕ + nₕ) / (α + n): the model's day/night prior updated by observed arrests.

    Parameters
    ----------
    arrests
        Stored arrests (``occurred_at`` local, ``place_type``); those outside the home count.
    day_night_ratio
        The prior's ratio of day (08:00–20:00) to night hours.
    pseudo_arrests
        α > 0: how many arrests the prior weighs as.

    Raises
    ------
    InputError
        ``pseudo_arrests`` or ``day_night_ratio`` not a positive number.
    """
    if not (math.isfinite(pseudo_arrests) and pseudo_arrests > 0):
        msg = (
            f"El peso del reparto horario previo debe ser mayor que 0 (recibido {pseudo_arrests})."
        )
        raise InputError(msg, code="invalid_prior", field="pseudo_arrests")
    if not (math.isfinite(day_night_ratio) and day_night_ratio > 0):
        msg = f"day_night_ratio debe ser mayor que 0 (recibido {day_night_ratio})."
        raise InputError(msg, code="invalid_prior", field="day_night_ratio")
    prior = hour_weights(day_night_ratio)
    observed = hour_histogram(arrests)
    n = int(observed.sum())
    weights = (pseudo_arrests * prior + observed) / (pseudo_arrests + n)
    origin = f"arrests:{n}+day_night_ratio:{day_night_ratio:g}(pseudo_arrests:{pseudo_arrests:g})"
    return HourWeights(weights, observed, prior, float(pseudo_arrests), origin)


def observed_years(arrests: pd.DataFrame) -> float:
    """Years the arrests cover: the calendar years from the first to the last (0 if none).

    An assumption: a file of the services covers whole calendar years. Give the period
    explicitly when it does not.
    """
    if arrests.empty:
        return 0.0
    years = pd.DatetimeIndex(pd.to_datetime(arrests["occurred_at"])).year
    return float(years.max() - years.min() + 1)


# --- the risk surface -------------------------------------------------------------------------


@dataclass(frozen=True)
class RiskSurface:
    """Per population unit, the factor on its arrests from observed events (module docstring).

    Attributes
    ----------
    factor
        (units,) fᵢ, in the population's order: what :func:`geo.core.outcomes.outcomes` takes as
        ``risk_factor``.
    units
        The population's ``id``, ``residents``… and ``geometry`` (its CRS), with
        ``public_arrests_model`` (πλᵢ per year), ``public_arrests_observed`` (oᵢ, events
        attributed over the period), ``public_arrests_blended`` (λ̂ᵢ per year) and
        ``risk_factor``. PRIVATE like the arrests it comes from.
    model_per_year, observed_per_year, blended_per_year
        City totals of arrests outside the home per year: the registry-based Σπλᵢ, N/T (0 when
        T = 0) and the blend Σλ̂ᵢ.
    events, unattributed
        N, and how many of them had no resident within the kernel's cut.
    """

    factor: np.ndarray
    units: gpd.GeoDataFrame
    bandwidth_m: float
    prior_years: float
    observed_years: float
    events: int
    unattributed: int
    model_per_year: float
    observed_per_year: float
    blended_per_year: float


def risk_surface(
    population: gpd.GeoDataFrame,
    arrests: gpd.GeoDataFrame,
    parameters: OutcomeParameters,
    *,
    observed_years: float,
    bandwidth_m: float = DEFAULT_BANDWIDTH_M,
    prior_years: float = DEFAULT_PRIOR_YEARS,
) -> RiskSurface:
    """Blend the residents' incidence with observed arrests outside the home (module docstring).

    Parameters
    ----------
    population
        Population units in a metric CRS (``residents``, ``residents_65_plus``).
    arrests
        Stored arrests (any CRS; projected to the population's): ``place_type`` and points.
    parameters
        The outcome model's parameters (central incidence, age mix and ``share_public``).
    observed_years
        T ≥ 0: the years the arrests cover (:func:`observed_years`).
    bandwidth_m
        h > 0: the Gaussian kernel's bandwidth, metres.
    prior_years
        τ > 0: how many years of observation the registry-based rates weigh as.

    Raises
    ------
    InputError
        A bandwidth, a prior or a period that is not a positive number; arrests without a period
        (T = 0) or without a CRS.
    MetricCRSError, CoverageInputError
        The population is not in a metric CRS or is malformed.
    """
    for name, value in (("bandwidth_m", bandwidth_m), ("prior_years", prior_years)):
        if not (math.isfinite(value) and value > 0):
            msg = f"{name} debe ser un número mayor que 0 (recibido {value})."
            raise InputError(msg, code="invalid_prior", field=name)
    if not (math.isfinite(observed_years) and observed_years >= 0):
        msg = f"observed_years debe ser un número de años ≥ 0 (recibido {observed_years})."
        raise InputError(msg, code="invalid_prior", field="observed_years")
    demand = prepare_demand(population)
    under, over = age_rates(
        parameters.central("incidence_per_100k"),
        parameters.central("share_arrests_65_plus"),
        parameters.central("share_65_plus_population"),
    )
    seniors = demand.seniors.astype(float)
    expected = (demand.residents - seniors) * float(under) + seniors * float(over)
    model = parameters.central("share_public") * expected  # πλᵢ per year
    outside = arrests.loc[arrests["place_type"].isin(list(OUT_OF_HOME))]
    if len(outside) and observed_years == 0:
        msg = "Hay paradas observadas pero el periodo observado es de 0 años."
        raise InputError(msg, code="invalid_prior", field="observed_years")
    if len(outside) and outside.crs is None:
        msg = "Las paradas no declaran su CRS; se esperaba EPSG:4326."
        raise InputError(msg, code="invalid_geometry", field="geometry")
    events_xy = (
        metric_xy(outside.to_crs(population.crs), "paradas") if len(outside) else np.zeros((0, 2))
    )
    attributed, unattributed = _attribute(demand.xy, model, events_xy, bandwidth_m)
    blended = (prior_years * model + attributed) / (prior_years + observed_years)
    factor = np.ones(len(model))
    np.divide(blended, model, out=factor, where=model > 0)
    units = demand.units()
    units["public_arrests_model"] = model
    units["public_arrests_observed"] = attributed
    units["public_arrests_blended"] = blended
    units["risk_factor"] = factor
    return RiskSurface(
        factor=factor,
        units=units,
        bandwidth_m=float(bandwidth_m),
        prior_years=float(prior_years),
        observed_years=float(observed_years),
        events=len(events_xy),
        unattributed=unattributed,
        model_per_year=float(model.sum()),
        observed_per_year=len(events_xy) / observed_years if observed_years else 0.0,
        blended_per_year=float(blended.sum()),
    )


def _attribute(
    units_xy: np.ndarray, weights: np.ndarray, events_xy: np.ndarray, bandwidth_m: float
) -> tuple[np.ndarray, int]:
    """oᵢ: each event shared among the units within the cut, ∝ weight × kernel (sums to the
    events); an event with no weighted unit in reach is shared ∝ weight. Also how many were."""
    attributed = np.zeros(len(units_xy))
    if len(events_xy) == 0 or not weights.sum() > 0:
        return attributed, len(events_xy)
    tree = cKDTree(units_xy)
    reach = KERNEL_CUTOFF * bandwidth_m
    unattributed = 0
    for point, near in zip(events_xy, tree.query_ball_point(events_xy, r=reach), strict=True):
        index = np.asarray(near, dtype=np.int64)
        distance2 = ((units_xy[index] - point) ** 2).sum(axis=1)
        share = weights[index] * np.exp(-distance2 / (2 * bandwidth_m**2))
        total = share.sum()
        if total > 0:
            attributed[index] += share / total
        else:
            unattributed += 1
    attributed += unattributed * weights / weights.sum()
    return attributed, unattributed
