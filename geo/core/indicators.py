"""The plan's indicators: devices, cardioprotected entities, training, uses, coverage, density.

Pure (GeoDataFrames and DataFrames in, a frozen :class:`Indicators` out): the edges read the
layers, the training register and the reported uses, and pass them in.

Definitions (each one is also written, in Spanish, in the report's method section):

- A device **counts** on a day when it is ``verified``, installed on or before that day and not
  removed by then. A device without ``installed_on`` counts as in place before the plan (it was
  there when it was registered: counting it as new would inflate the plan's result). A device
  whose status is ``removed`` but has no ``removed_on`` cannot be placed in time and never counts.
  Out-of-service devices still count (they are in place, to be repaired); coverage leaves them out.
- **Initial** devices are those that counted the day before the plan started; **new** in a year,
  those installed in it; the **total** of a year, those that count on its last day (or on the
  ``as_of`` day for the year in course).
- A cluster entity is **cardioprotected** on a day when it is a member by then (``member_since``
  on or before it, or unknown) and a counted device is on its site: held by it
  (``operator_entity_id``) or within ``on_site_m`` metres of it. On the ``as_of`` day the device
  must also be ``active`` (the status is only known for now).
- **Coverage** at the end of each year is the share of residents within ``radius_m`` of a device
  that stood then (installed, not removed) and is available 24/7 by the coverage engine's rules
  (:func:`geo.core.coverage.coverage` with ``at=None``: active, not rejected — so a device pending
  moderation counts, as in ``cardiomapa coverage`` —, public access, fixed), and — a second
  figure — of one whatever its opening hours. The population layer is the current one for every
  year, and the status (active, out of service) is today's for every year.
- **Density** is counted devices per 100,000 inhabitants (the profile's official population) and
  per km² (the profile's municipal boundary), against a table of reference densities.
- **Lives saved** at the end of each year are the expected lives saved per year by the devices
  that stood then (the same devices as the coverage, counted by the outcome model's rules), from
  :func:`geo.core.outcomes.outcomes` in weekly mode over the week (Monday to Sunday) holding the
  year's last day — or the ``as_of`` day in the year in course —, at the model's own reach
  (``reach_m``), not the coverage radius. **Lives added by the plan's devices** is the same figure
  minus the one with only those of the standing devices that were already in place the day before
  the plan started (a device removed in the meantime leaves both terms: its loss is not charged
  to the plan, though what the plan's devices add may grow, as they take over what it covered):
  what the devices installed since the plan started add, cumulatively, at that year end. Its band
  comes from the same Monte Carlo draws for both terms (paired), not from subtracting two bands.
- **Cost per life-year gained** (only when the plan has a ``device_cost_eur``): the yearly cost
  of the plan's devices standing at the year end (purchase and installation spread evenly over
  the device's lifetime, no discounting, plus the yearly upkeep; a rejected record is left out)
  divided by the life-years per year they add (lives added × ``life_years_per_survivor``); its
  band is the 5th–95th percentile of that ratio over the same draws.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

import geopandas as gpd
import numpy as np
import pandas as pd

from geo.city import CarePlan, CityProfile
from geo.core.coverage import DEFAULT_RADIUS_M, coverage
from geo.core.density import DensityReference, density_benchmark, per_100k, per_km2
from geo.core.distance import DistanceModel, StraightLine
from geo.core.outcome_model import (
    BAND_PERCENTILES,
    OutcomeParameters,
)
from geo.core.outputs import significant_decimals, spanish_number
from geo.core.plan_lives import BANDS, LivesModel, PlanLives, standing_on
from geo.errors import IndicatorInputError

#: Distance within which a device held by someone else still protects an entity's site.
DEFAULT_ON_SITE_M = 30.0

#: Kinds of training action (plan action 1.3): basic life support and AED use, AED use alone,
#: basic life support alone, and a refresher of both (codes as stored).
TRAINING_KINDS = ("bls_aed", "aed", "bls", "refresher")
#: Spanish label of each kind of training action.
KIND_LABELS: Mapping[str, str] = {
    "bls_aed": "SVB + DEA",
    "aed": "Uso del DEA",
    "bls": "SVB (soporte vital básico)",
    "refresher": "Reciclaje SVB + DEA",
}

#: Spanish labels of the yearly indicators, in the order the table and the report show them.
INDICATOR_LABELS: dict[str, str] = {
    "devices_initial": "Desfibriladores iniciales (antes del plan)",
    "devices_new": "Desfibriladores nuevos en el año",
    "devices_removed": "Desfibriladores retirados en el año",
    "devices_total": "Desfibriladores en total (al cierre)",
    "devices_per_100k": "Desfibriladores por 100.000 habitantes",
    "entities_members": "Entidades del clúster",
    "entities_cardioprotected": "Entidades cardioprotegidas",
    "share_entities_cardioprotected": "Entidades cardioprotegidas (%)",
    "training_actions": "Acciones formativas",
    "people_trained": "Personas formadas",
    "uses": "Usos comunicados de los desfibriladores",
    "people_attended": "Personas atendidas con los desfibriladores",
    "share_covered": "Población a ≤ radio de un DEA 24 h (%)",
    "share_65_plus_covered": "Mayores de 65 a ≤ radio de un DEA 24 h (%)",
    "share_covered_any_hours": "Población a ≤ radio de un DEA, en su horario (%)",
    "lives_saved": "Vidas salvadas al año (estimación del modelo)",
    "lives_saved_by_new_devices": "Vidas al año que añaden los DEA del plan",
    "life_years_by_new_devices": "Años de vida al año que añaden los DEA del plan",
    "new_devices_annual_cost_eur": "Coste anual de los DEA del plan",
    "cost_per_life_year_eur": "Coste por año de vida ganado",
}
#: The model's estimates among the indicators (floats; ``NaN`` when they cannot be given).
OUTCOME_INDICATORS = (
    "lives_saved",
    "lives_saved_by_new_devices",
    "life_years_by_new_devices",
    "new_devices_annual_cost_eur",
    "cost_per_life_year_eur",
)
BAND_LABELS: dict[str, str] = {
    band: f"{INDICATOR_LABELS[key]}: banda {end} (percentil {percentile:g})"
    for key, bands in BANDS.items()
    for band, end, percentile in zip(bands, ("baja", "alta"), BAND_PERCENTILES, strict=True)
}
#: Further per-year columns of the estimates: the Monday of the week the model used, the lives
#: with only the devices already in place when the plan started, and how many of the plan's
#: devices stood at the year end (those the cost counts).
OUTCOME_COLUMNS = ("outcome_week_start", "lives_saved_initial_only", "plan_devices_in_place")
#: The bands' low and high columns, in the order of :data:`BANDS`.
BAND_COLUMNS = tuple(band for pair in BANDS.values() for band in pair)
#: Indicators that are counts over the year (the others are the state at its end).
FLOW_INDICATORS = frozenset(
    {"devices_new", "devices_removed", "training_actions", "people_trained", "uses",
     "people_attended"}
)  # fmt: skip
SHARE_INDICATORS = frozenset(k for k in INDICATOR_LABELS if k.startswith("share_"))
#: Whole-number indicators (the others are shares, densities or the model's estimates).
COUNT_INDICATORS = tuple(
    key for key in INDICATOR_LABELS
    if key not in SHARE_INDICATORS and key != "devices_per_100k" and key not in OUTCOME_INDICATORS
)  # fmt: skip


@dataclass(frozen=True)
class Indicators:
    """The plan's indicators on ``as_of``.

    Attributes
    ----------
    years
        One row per plan year (``year``, ``period_end``, ``status`` = ``closed`` / ``in_course`` /
        ``future``, then the columns of :data:`INDICATOR_LABELS`, the bands of :data:`BANDS` and
        :data:`OUTCOME_COLUMNS`; ``NaN`` for future years, and for the estimates without the
        model's parameters or, for the cost, without a device cost in the plan).
    to_date
        The plan so far: flows summed over its years, states on ``as_of``, plus
        ``devices_active``, ``devices_out_of_service`` and ``devices_pending`` now.
    zones
        Per CEAS zone on ``as_of``: ``zone_id``, ``zone_name``, ``residents``, ``devices_initial``,
        ``devices_new``, ``devices_total``, ``devices_per_100k``, ``share_covered``,
        ``share_covered_any_hours``.
    entities
        Per member entity (``id``, ``name``, ``kind``, ``member_since``, ``cardioprotected``,
        ``device_ids``), not cardioprotected first.
    training
        People and actions per year and kind (``year``, ``kind``, ``actions``, ``people_trained``).
    density
        The reference table plus this city (``is_city`` true) by density, highest first, with
        ``devices_needed``: new devices the city needs to pass each reference (0 if it does).
    """

    city: str
    plan: CarePlan
    as_of: dt.date
    radius_m: float
    distance_model: str
    population: int
    area_km2: float
    years: pd.DataFrame
    to_date: dict[str, Any]
    zones: pd.DataFrame
    entities: pd.DataFrame
    training: pd.DataFrame
    density: pd.DataFrame
    notes: tuple[str, ...] = ()
    lives: LivesModel | None = None

    def year(self, year: int) -> pd.Series:
        """The row of ``year``."""
        rows = self.years[self.years["year"] == year]
        if rows.empty:
            msg = (
                f"El año {year} está fuera del plan ({self.plan.start.year}–{self.plan.end.year})."
            )
            raise IndicatorInputError(msg)
        return rows.iloc[0]

    def to_dict(self) -> dict[str, Any]:
        """The stable JSON shape (documented in the README)."""
        return {
            "city": self.city,
            "plan": {
                "name": self.plan.name,
                "action": self.plan.action,
                "goal": self.plan.goal,
                "start": self.plan.start,
                "end": self.plan.end,
                "device_cost_eur": self.plan.device_cost_eur,
                "device_lifetime_years": self.plan.lifetime_years,
                "device_upkeep_eur_per_year": self.plan.device_upkeep_eur_per_year,
                "device_cost_source": self.plan.device_cost_source,
                "annual_cost_per_device_eur": self.plan.annual_cost_per_device_eur,
            },
            "as_of": self.as_of,
            "radius_m": self.radius_m,
            "distance_model": self.distance_model,
            "population": self.population,
            "area_km2": self.area_km2,
            "labels": INDICATOR_LABELS,
            "years": _records(self.years),
            "year_on_year": _records(year_on_year(self.years)),
            "to_date": self.to_date,
            "zones": _records(self.zones),
            "entities": _records(self.entities),
            "training": _records(self.training),
            "density": _records(self.density),
            "outcomes": None if self.lives is None else self.lives.to_dict(),
            "notes": list(self.notes),
        }


def indicator_rows(result: Indicators, *, year: int | None = None) -> pd.DataFrame:
    """One row per indicator (``indicator``, ``label``), one column per plan year and ``to_date``.

    With ``year``: the year before (if in the plan), ``year``, ``change_<year>`` and ``to_date``.
    Each estimate with a band is followed by the rows of its low and high ends (no change given).
    """
    years = result.years.set_index("year")
    change = year_on_year(result.years).set_index("year")
    if year is None:
        shown = list(years.index)
    else:
        result.year(year)  # a year outside the plan is an error
        shown = [y for y in (year - 1, year) if y in years.index]
    labels = row_labels()
    table = pd.DataFrame({"indicator": list(labels), "label": list(labels.values())})
    for y in shown:
        table[str(y)] = [_item(years.loc[y, key]) for key in labels]
    if year is not None:
        table[f"change_{year}"] = [
            _item(change.loc[year, key]) if key in INDICATOR_LABELS else None for key in labels
        ]
    table["to_date"] = [result.to_date.get(key) for key in labels]
    return table


def row_labels() -> dict[str, str]:
    """Every row of the indicators table in order: each indicator, then its band's ends."""
    labels: dict[str, str] = {}
    for key, label in INDICATOR_LABELS.items():
        labels[key] = label
        for band in BANDS.get(key, ()):
            labels[band] = BAND_LABELS[band]
    return labels


def format_value(key: str, value: Any, *, change: bool = False, decimals: int | None = None) -> str:
    """An indicator's value as Spanish text: ``1.234``, ``32,4``, ``12,3 %`` (``—`` if unknown).

    With ``change``, a signed difference: ``+3``, ``−1,2`` and shares in percentage points
    (``+3,2 p. p.``). Lives and life-years show two significant digits, with at least 2
    decimals (``0,018``, ``0,00088``, ``1,20``; a positive figure never shows as zero; see
    :func:`estimate_decimals`) unless ``decimals`` is given; euros show none (``12.345 €``).
    """
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return "—"
    number = float(value)
    sign = ("+" if number > 0 else "−" if number < 0 else "±") if change else ""
    magnitude = abs(number) if change else number
    if key in SHARE_INDICATORS:
        return sign + spanish_number(magnitude * 100, 1) + (" p. p." if change else " %")
    if key.startswith("devices_per_"):
        return sign + spanish_number(magnitude, 1)
    if key.startswith(("lives_", "life_years_")):
        places = estimate_decimals(magnitude) if decimals is None else decimals
        return sign + spanish_number(magnitude, places)
    if key.endswith("_eur") or "_eur_" in key:
        return sign + spanish_number(round(magnitude)) + " €"
    return sign + spanish_number(round(magnitude))


def estimate_decimals(value: float) -> int:
    """Decimals that show two significant digits of a lives figure, at least 2 (a table's
    column reads better aligned); a small figure never rounds to zero."""
    return max(2, significant_decimals(value))


def format_band(key: str, value: Any, low: Any, high: Any) -> str:
    """An estimate with its band, the ends with the estimate's decimals:
    ``0,018 (0,011–0,028)``; ``—`` for an unknown one."""
    central = format_value(key, value)
    if central == "—":
        return central
    places = estimate_decimals(float(value))
    ends = (format_value(key, end, decimals=places) for end in (low, high))
    return f"{central} ({'–'.join(ends)})"


def year_on_year(years: pd.DataFrame) -> pd.DataFrame:
    """Change of every indicator against the year before (``NaN`` for the first or a future year).

    For shares the change is in percentage points (as a fraction: 0.05 = 5 points). Two sums
    equal but for rounding (lives estimates summed in another order) change by exactly 0.
    """
    values = years[list(INDICATOR_LABELS)].astype(float)
    same = np.isclose(values.to_numpy(), values.shift().to_numpy(), rtol=1e-9, atol=0.0)
    change = values.diff().mask(same, 0.0)
    change.insert(0, "year", years["year"].to_numpy())
    return change.reset_index(drop=True)


def compute_indicators(
    *,
    city: CityProfile,
    devices: gpd.GeoDataFrame,
    entities: gpd.GeoDataFrame,
    zones: gpd.GeoDataFrame,
    population: gpd.GeoDataFrame,
    training: pd.DataFrame,
    uses: pd.DataFrame,
    references: Sequence[DensityReference],
    as_of: dt.date,
    radius_m: float = DEFAULT_RADIUS_M,
    model: DistanceModel | None = None,
    on_site_m: float = DEFAULT_ON_SITE_M,
    outcome_parameters: OutcomeParameters | None = None,
    count_overdue: bool = False,
) -> Indicators:
    """Compute the plan's indicators for every plan year up to ``as_of``.

    Parameters
    ----------
    city
        Must have a :class:`~geo.city.CarePlan` (``plan``).
    devices, entities, zones, population
        The layers in the city's metric CRS (see :func:`geo.core.distance.to_metric`).
    training
        The training register: ``held_on`` (date), ``entity_id``, ``kind``, ``people_trained``.
    uses
        Reported uses: ``used_at`` (naive values are UTC, as stored), ``people_attended``.
    references
        Published densities to compare with.
    as_of
        The day the figures are taken on (years after it are ``future``).
    radius_m, model
        Walking distance that counts as covered, and how it is measured (straight line × 1.3 by
        default).
    on_site_m
        A device held by someone else this close to an entity also protects it.
    outcome_parameters
        The outcome model's parameters (:func:`geo.services.inputs.outcome_parameters`): with them,
        the lives saved per year, the lives the plan's devices add and (with a device cost in the
        plan) the cost per life-year gained; without them those indicators are ``NaN``.
    """
    plan = _check_plan(city, as_of)
    _check_metric(devices, entities, zones, population)
    model = model or StraightLine()
    notes: list[str] = []
    dated = _device_dates(devices, notes)
    before_plan = plan.start - dt.timedelta(days=1)
    scene = _Scene(
        city=city, plan=plan, as_of=as_of, devices=devices, entities=entities, zones=zones,
        population=population, dated=dated, initial=_counted(dated, before_plan),
        trained=_training_frame(training), used=_uses_frame(uses, ZoneInfo(city.timezone)),
        radius_m=radius_m, model=model, on_site_m=on_site_m, count_overdue=count_overdue,
        lives=None if outcome_parameters is None else PlanLives(
            outcome_parameters, population, devices, dated, city, model, plan, count_overdue
        ),
    )  # fmt: skip
    years = _years(scene)
    now = _counted(dated, as_of)
    area = _area_km2(city)
    zone_table = _zones(zones, population, devices, dated, scene.initial, now, city, radius_m,
                        model, as_of, count_overdue)  # fmt: skip
    density = density_benchmark(
        int(now.sum()), city.name, city.population, area, references, current_year=as_of.year
    )
    return Indicators(
        city=city.name, plan=plan, as_of=as_of, radius_m=float(radius_m),
        distance_model=model.name, population=city.population, area_km2=area, years=years,
        to_date=_to_date(scene, years, now, area), zones=zone_table,
        entities=_entity_table(entities, devices, now, as_of, on_site_m),
        training=_training_by_kind(scene.trained, plan, as_of), density=density,
        notes=(*notes, *_data_notes(scene)),
        lives=None if scene.lives is None else scene.lives.method(),
    )  # fmt: skip


def _check_plan(city: CityProfile, as_of: dt.date) -> CarePlan:
    """The city's plan, checked to have started by ``as_of``."""
    plan = city.plan
    if plan is None:
        msg = "El perfil de ciudad no tiene plan (campo plan de city.json): no hay indicadores."
        raise IndicatorInputError(msg)
    if as_of < plan.start:
        msg = f"La fecha {as_of:%d/%m/%Y} es anterior al inicio del plan ({plan.start:%d/%m/%Y})."
        raise IndicatorInputError(msg)
    return plan


@dataclass(frozen=True)
class _Scene:
    """What every step of :func:`compute_indicators` reads (layers in the metric CRS)."""

    city: CityProfile
    plan: CarePlan
    as_of: dt.date
    devices: gpd.GeoDataFrame
    entities: gpd.GeoDataFrame
    zones: gpd.GeoDataFrame
    population: gpd.GeoDataFrame
    dated: pd.DataFrame
    initial: np.ndarray
    trained: pd.DataFrame
    used: pd.DataFrame
    radius_m: float
    model: DistanceModel
    on_site_m: float
    count_overdue: bool
    lives: PlanLives | None


def _years(scene: _Scene) -> pd.DataFrame:
    """One row per plan year: the indicators at its end (or on ``as_of``), future years empty."""
    rows = [_year_row(scene, year) for year in scene.plan.years]
    columns = ["year", "period_end", "status", *INDICATOR_LABELS, *BAND_COLUMNS, *OUTCOME_COLUMNS]
    years = pd.DataFrame(rows, columns=columns)
    floats = (*OUTCOME_INDICATORS, *BAND_COLUMNS, "lives_saved_initial_only")
    return years.astype(
        {key: "Int64" for key in (*COUNT_INDICATORS, "plan_devices_in_place")}
        | {key: "float64" for key in floats}
        | {"year": "int64"}
    )


def _year_row(scene: _Scene, year: int) -> dict[str, Any]:
    """The indicators of plan year ``year``, at its end or on ``as_of`` if it is in course."""
    plan, dated, devices = scene.plan, scene.dated, scene.devices
    first = max(dt.date(year, 1, 1), plan.start)
    last = min(dt.date(year, 12, 31), plan.end)
    if first > scene.as_of:
        return {"year": year, "period_end": last, "status": "future"}
    end = min(last, scene.as_of)
    counted = _counted(dated, end)
    in_year = dated["installed_on"].between(first, end) & dated["verified"]
    removed = dated["removed_on"].between(first, end) & dated["verified"]
    members, protected = _cardioprotected(
        scene.entities, devices, counted, end, scene.on_site_m, require_active=end == scene.as_of
    )
    train = scene.trained[scene.trained["held_on"].between(first, end)]
    use = scene.used[scene.used["used_on"].between(first, end)]
    standing = devices[standing_on(dated, end)]
    shares = _coverage_shares(
        scene.population,
        standing,
        scene.city,
        scene.radius_m,
        scene.model,
        end,
        scene.zones,
        scene.count_overdue,
    )
    lives = scene.lives
    return {
        "year": year, "period_end": end, "status": "closed" if end == last else "in_course",
        "devices_initial": int(scene.initial.sum()), "devices_new": int(in_year.sum()),
        "devices_removed": int(removed.sum()), "devices_total": int(counted.sum()),
        "devices_per_100k": per_100k(int(counted.sum()), scene.city.population),
        "entities_members": int(members.sum()),
        "entities_cardioprotected": int(protected.sum()),
        "share_entities_cardioprotected": _share(protected.sum(), members.sum()),
        "training_actions": len(train), "people_trained": int(train["people_trained"].sum()),
        "uses": len(use), "people_attended": int(use["people_attended"].sum()),
        **shares, **(lives.at_year_end(year, end) if lives else {}),
    }  # fmt: skip


def _to_date(
    scene: _Scene, years: pd.DataFrame, now: np.ndarray, area_km2: float
) -> dict[str, Any]:
    """The plan to ``as_of``: flows summed over the years, states as of the latest year."""
    done = years[years["status"] != "future"]
    latest = done.iloc[-1]
    to_date = {
        key: (int(done[key].sum()) if key in FLOW_INDICATORS else _item(latest[key]))
        for key in (*INDICATOR_LABELS, *BAND_COLUMNS, *OUTCOME_COLUMNS)
    }
    status = scene.devices["status"].to_numpy(dtype=object)
    verification = scene.devices["verification"].to_numpy(dtype=object)
    trained = scene.trained
    return to_date | {
        "devices_active": int((now & (status == "active")).sum()),
        "devices_out_of_service": int((now & (status == "out_of_service")).sum()),
        "devices_pending": int(((verification == "pending") & (status != "removed")).sum()),
        "devices_per_km2": per_km2(int(now.sum()), area_km2),
        "entities_with_training": int(
            trained.loc[trained["held_on"].between(scene.plan.start, scene.as_of), "entity_id"]
            .dropna()
            .nunique()
        ),
    }


def _data_notes(scene: _Scene) -> list[str]:
    """What the figures leave out, in Spanish."""
    notes = []
    if scene.trained.empty:
        notes.append("El registro de formación está vacío: no hay acciones formativas anotadas.")
    if scene.used.empty:
        notes.append("No se ha comunicado ningún uso de los desfibriladores.")
    notes.append(
        "La cobertura de cada año se calcula con la capa de población actual; la situación "
        "(estado activo, fuera de servicio) de años cerrados no se conoce y no se aplica."
    )
    if scene.lives is None:
        notes.append(
            "Sin los parámetros del modelo de vidas salvadas no se estiman las vidas ni el coste "
            "por año de vida ganado."
        )
    else:
        notes.extend(scene.lives.notes())
    return notes


# --- helpers -----------------------------------------------------------------------------------


def _check_metric(*frames: gpd.GeoDataFrame) -> None:
    for frame in frames:
        if frame.crs is None or not frame.crs.is_projected:
            msg = "Los indicadores necesitan las capas en el CRS métrico de la ciudad."
            raise IndicatorInputError(msg)


def _dates(values: pd.Series) -> pd.Series:
    """Dates as ``datetime.date`` objects (``None`` where missing), whatever the input dtype."""
    parsed = pd.to_datetime(values, errors="coerce")
    return pd.Series(
        [None if pd.isna(v) else v.date() for v in parsed], index=values.index, dtype=object
    )


def _device_dates(devices: gpd.GeoDataFrame, notes: list[str]) -> pd.DataFrame:
    installed = _dates(devices["installed_on"])
    removed = _dates(devices["removed_on"])
    verified = devices["verification"] == "verified"
    removed_undated = (devices["status"] == "removed") & removed.isna()
    undated = installed.isna() & verified
    if undated.any():
        notes.append(
            f"{int(undated.sum())} desfibrilador(es) verificados sin fecha de instalación se "
            "cuentan como anteriores al plan."
        )
    if (removed_undated & verified).any():
        notes.append(
            f"{int((removed_undated & verified).sum())} desfibrilador(es) retirados sin fecha de "
            "retirada no se cuentan en ningún año."
        )
    # Undated installations count from the beginning of time; compare with a sentinel date.
    return pd.DataFrame(
        {
            "installed_on": installed.where(installed.notna(), dt.date.min),
            "removed_on": removed,
            "verified": verified.to_numpy(dtype=bool),
            "removed_undated": removed_undated.to_numpy(dtype=bool),
        },
        index=devices.index,
    )


def _counted(dated: pd.DataFrame, day: dt.date) -> np.ndarray:
    """Which devices count on ``day`` (verified, installed, not removed)."""
    return dated["verified"].to_numpy() & standing_on(dated, day)


def _members(entities: gpd.GeoDataFrame, day: dt.date) -> np.ndarray:
    since = _dates(entities["member_since"]) if "member_since" in entities else None
    if since is None:
        return np.ones(len(entities), dtype=bool)
    return np.array([d is None or d <= day for d in since], dtype=bool)


def _site_devices(
    entities: gpd.GeoDataFrame,
    devices: gpd.GeoDataFrame,
    usable: np.ndarray,
    on_site_m: float,
) -> list[list[str]]:
    """For each entity, the ids of usable devices it holds or that stand on its site."""
    chosen = devices[usable]
    ids = chosen["id"].to_numpy(dtype=object)
    holders = chosen["operator_entity_id"].to_numpy(dtype=object)
    result: list[list[str]] = [[] for _ in range(len(entities))]
    if len(chosen) == 0:
        return result
    near = gpd.sjoin(
        entities[["geometry"]].reset_index(drop=True),
        chosen[["geometry"]].reset_index(drop=True),
        predicate="dwithin",
        distance=on_site_m,
    )
    for entity_pos, device_pos in zip(near.index, near["index_right"], strict=True):
        result[int(entity_pos)].append(str(ids[int(device_pos)]))
    for position, entity_id in enumerate(entities["id"].to_numpy(dtype=object)):
        held = [str(d) for d, h in zip(ids, holders, strict=True) if h == entity_id]
        result[position] = sorted(set(result[position]) | set(held))
    return result


def _cardioprotected(
    entities: gpd.GeoDataFrame,
    devices: gpd.GeoDataFrame,
    counted: np.ndarray,
    day: dt.date,
    on_site_m: float,
    *,
    require_active: bool,
) -> tuple[np.ndarray, np.ndarray]:
    usable = counted & (
        (devices["status"] == "active").to_numpy() if require_active else np.ones_like(counted)
    )
    members = _members(entities, day)
    sites = _site_devices(entities, devices, usable, on_site_m)
    protected = members & np.array([bool(s) for s in sites], dtype=bool)
    return members, protected


def _entity_table(
    entities: gpd.GeoDataFrame,
    devices: gpd.GeoDataFrame,
    counted: np.ndarray,
    day: dt.date,
    on_site_m: float,
) -> pd.DataFrame:
    usable = counted & (devices["status"] == "active").to_numpy()
    members = _members(entities, day)
    sites = _site_devices(entities, devices, usable, on_site_m)
    table = pd.DataFrame(
        {
            "id": entities["id"].to_numpy(dtype=object),
            "name": entities["name"].to_numpy(dtype=object),
            "kind": entities["kind"].to_numpy(dtype=object),
            "member_since": _dates(entities["member_since"]).to_numpy(dtype=object),
            "cardioprotected": [bool(s) for s in sites],
            "device_ids": sites,
        }
    )[members]
    return table.sort_values(["cardioprotected", "name"], kind="stable").reset_index(drop=True)


def _training_frame(training: pd.DataFrame) -> pd.DataFrame:
    columns = ["held_on", "entity_id", "kind", "people_trained"]
    missing = [c for c in columns if c not in training]
    if missing:
        msg = f"Al registro de formación le faltan las columnas {', '.join(missing)}."
        raise IndicatorInputError(msg)
    frame = training[columns].copy()
    frame["held_on"] = _dates(frame["held_on"])
    frame["people_trained"] = frame["people_trained"].astype("int64")
    return frame


def _uses_frame(uses: pd.DataFrame, timezone: ZoneInfo) -> pd.DataFrame:
    if not {"used_at", "people_attended"} <= set(uses.columns):
        msg = "A los usos comunicados les faltan las columnas used_at o people_attended."
        raise IndicatorInputError(msg)
    days = [_local_day(value, timezone) for value in uses["used_at"]]
    return pd.DataFrame(
        {"used_on": pd.Series(days, dtype=object), "people_attended": uses["people_attended"]}
    ).astype({"people_attended": "int64"})


def _local_day(value: dt.datetime, timezone: ZoneInfo) -> dt.date:
    aware = value if value.tzinfo else value.replace(tzinfo=dt.UTC)
    return aware.astimezone(timezone).date()


def _training_by_kind(trained: pd.DataFrame, plan: CarePlan, as_of: dt.date) -> pd.DataFrame:
    inside = trained[trained["held_on"].between(plan.start, min(plan.end, as_of))]
    years = [d.year for d in inside["held_on"]]
    grouped = (
        inside.assign(year=years)
        .groupby(["year", "kind"], sort=True)
        .agg(actions=("kind", "size"), people_trained=("people_trained", "sum"))
        .reset_index()
    )
    return grouped.astype({"year": "int64", "actions": "int64", "people_trained": "int64"})


def _coverage_shares(
    population: gpd.GeoDataFrame,
    devices: gpd.GeoDataFrame,
    city: CityProfile,
    radius_m: float,
    model: DistanceModel,
    day: dt.date,
    zones: gpd.GeoDataFrame,
    count_overdue: bool = False,
) -> dict[str, float]:
    always = coverage(population, devices, city, radius_m=radius_m, model=model,
                      reference_date=day, zones=zones, count_overdue=count_overdue)  # fmt: skip
    anytime = coverage(population, devices.assign(opening_hours="24/7"), city,
                       radius_m=radius_m, model=model, reference_date=day, zones=zones,
                       count_overdue=count_overdue)  # fmt: skip
    return {
        "share_covered": always.share_covered,
        "share_65_plus_covered": always.share_65_plus_covered,
        "share_covered_any_hours": anytime.share_covered,
    }


def _zones(
    zones: gpd.GeoDataFrame,
    population: gpd.GeoDataFrame,
    devices: gpd.GeoDataFrame,
    dated: pd.DataFrame,
    initial: np.ndarray,
    now: np.ndarray,
    city: CityProfile,
    radius_m: float,
    model: DistanceModel,
    as_of: dt.date,
    count_overdue: bool = False,
) -> pd.DataFrame:
    standing = devices[standing_on(dated, as_of)]
    always = coverage(population, standing, city, radius_m=radius_m, model=model,
                      reference_date=as_of, zones=zones, count_overdue=count_overdue)  # fmt: skip
    anytime = coverage(
        population,
        standing.assign(opening_hours="24/7"),
        city,
        radius_m=radius_m,
        model=model,
        reference_date=as_of,
        zones=zones,
        count_overdue=count_overdue,
    )
    located = gpd.sjoin(
        devices[["geometry"]].reset_index(drop=True),
        zones[["id", "geometry"]].rename(columns={"id": "zone_id"}),
        predicate="within",
        how="left",
    )
    located = located[~located.index.duplicated()]
    zone_of = located["zone_id"].to_numpy(dtype=object)
    new = now & ~initial
    table = always.by_zone[["zone_id", "zone_name", "residents", "share_covered"]].copy()
    table["share_covered_any_hours"] = anytime.by_zone["share_covered"].to_numpy()
    for column, mask in (
        ("devices_initial", initial),
        ("devices_new", new),
        ("devices_total", now),
    ):
        counts = pd.Series(zone_of[mask]).value_counts()
        table[column] = [int(counts.get(z, 0)) if z is not None else 0 for z in table["zone_id"]]
    table["devices_per_100k"] = [
        per_100k(total, residents)
        for total, residents in zip(table["devices_total"], table["residents"], strict=True)
    ]
    order = [
        "zone_id", "zone_name", "residents", "devices_initial", "devices_new", "devices_total",
        "devices_per_100k", "share_covered", "share_covered_any_hours",
    ]  # fmt: skip
    return table[order].reset_index(drop=True)


def _area_km2(city: CityProfile) -> float:
    boundary = gpd.GeoSeries([city.boundary], crs="EPSG:4326").to_crs(city.metric_crs)
    return float(boundary.area.iloc[0]) / 1e6


def _share(part: float, whole: float) -> float:
    return float(part) / float(whole) if whole else 0.0


def _item(value: Any) -> Any:
    if value is pd.NA:
        return None
    return value.item() if isinstance(value, np.generic) else value


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return [{key: _item(value) for key, value in row.items()} for row in frame.to_dict("records")]
