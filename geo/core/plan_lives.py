"""The plan's lives-saved indicators: expected lives at each plan year's end, with paired bands.

Every figure is a linear combination of the outcome model's parameter-free basis summed over the
city (:mod:`geo.core.outcomes`), so the band of a difference (the lives the plan's devices add)
and of the cost per life-year come from one set of Monte Carlo coefficients shared by every year.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd

from geo.city import CarePlan, CityProfile
from geo.core.distance import DistanceModel
from geo.core.outcome_model import (
    BAND_PERCENTILES,
    DEFAULT_DRAWS,
    DEFAULT_SEED,
    HOME_ARRESTS_NOTE,
    OutcomeParameters,
    weekly_coefficients,
)
from geo.core.outcomes import outcomes
from geo.core.outputs import spanish_number

#: Estimates with a band: the keys of its low (5th percentile) and high (95th) ends.
BANDS: dict[str, tuple[str, str]] = {
    key: (f"{key}_low", f"{key}_high")
    for key in (
        "lives_saved",
        "lives_saved_by_new_devices",
        "life_years_by_new_devices",
        "cost_per_life_year_eur",
    )
}


@dataclass(frozen=True)
class LivesModel:
    """How the lives-saved indicators were estimated (for the report's method and the JSON).

    ``reach_m`` and ``full_use_m`` are the outcome model's distances (walking metres),
    ``draws`` and ``seed`` those of its Monte Carlo band; ``home_arrests`` states how arrests at
    home are treated; ``notes`` are the model's own remarks (distance model, hours).
    """

    parameters: OutcomeParameters
    reach_m: float
    full_use_m: float
    draws: int
    seed: int
    home_arrests: str
    notes: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "mode": "weekly",
            "reach_m": self.reach_m,
            "full_use_m": self.full_use_m,
            "band": {"percentiles": list(BAND_PERCENTILES), "draws": self.draws,
                     "seed": self.seed},
            "home_arrests": self.home_arrests,
            "notes": list(self.notes),
            "parameters": self.parameters.to_records(),
        }  # fmt: skip


class PlanLives:
    """The lives-saved indicators of each year end (see the module docstring).

    Every figure is a linear combination of the outcome model's parameter-free basis summed over
    the city (2 age bands × 2 hour classes), so the paired band of a difference, and of the cost
    per life-year, comes from one set of Monte Carlo coefficients shared by every year.
    """

    def __init__(
        self,
        parameters: OutcomeParameters,
        population: gpd.GeoDataFrame,
        devices: gpd.GeoDataFrame,
        dated: pd.DataFrame,
        city: CityProfile,
        model: DistanceModel,
        plan: CarePlan,
        count_overdue: bool = False,
    ) -> None:
        self.parameters = parameters
        self.count_overdue = count_overdue
        self.population, self.devices, self.dated = population, devices, dated
        self.city, self.model, self.plan = city, model, plan
        self.initial = standing_on(dated, plan.start - dt.timedelta(days=1))
        self.rejected = (devices["verification"] == "rejected").to_numpy(dtype=bool)
        self.coefs = weekly_coefficients(parameters, draws=DEFAULT_DRAWS, seed=DEFAULT_SEED)
        self.model_notes: list[str] = []
        self.unanswered: list[int] = []

    def basis(self, standing: np.ndarray, week_of: dt.date) -> np.ndarray:
        """City sums of the basis (2 ages × 2 classes) for the devices ``standing``."""
        # Only the basis is read (the draws are self.coefs'): the fewest draws outcomes takes.
        result = outcomes(
            self.population, self.devices[standing], self.city, self.parameters,
            mode="weekly", week_of=week_of, model=self.model, draws=10, seed=DEFAULT_SEED,
            count_overdue=self.count_overdue,
        )  # fmt: skip
        assert result.basis is not None and result.hour_weights_origin == "day_night_ratio"
        for note in result.notes:
            if note not in self.model_notes:
                self.model_notes.append(note)
        return np.asarray(result.basis.unit_best.sum(axis=0))

    def draws(self, basis: np.ndarray, coefs: np.ndarray) -> np.ndarray:
        """The figure for the central values (first) and for each Monte Carlo draw."""
        return np.einsum("ac,dac->d", basis, coefs)

    def at_year_end(self, year: int, end: dt.date) -> dict[str, Any]:
        """The year's estimates, with the devices standing on ``end`` and the week holding it."""
        standing = standing_on(self.dated, end)
        every = self.basis(standing, end)
        initial = self.basis(standing & self.initial, end)
        lives = self.draws(every, self.coefs.lives)
        added = self.draws(every - initial, self.coefs.lives)
        life_years = self.draws(every - initial, self.coefs.life_years)
        plan_devices = int((standing & ~self.initial & ~self.rejected).sum())
        row: dict[str, Any] = {
            "outcome_week_start": end - dt.timedelta(days=end.weekday()),
            "lives_saved_initial_only": float(self.draws(initial, self.coefs.lives)[0]),
            "plan_devices_in_place": plan_devices,
        }
        for key, values in (
            ("lives_saved", lives),
            ("lives_saved_by_new_devices", added),
            ("life_years_by_new_devices", life_years),
        ):
            row[key] = float(values[0])
            row |= dict(zip(BANDS[key], band_ends(values[1:]), strict=True))
        per_device = self.plan.annual_cost_per_device_eur
        cost = math.nan if per_device is None else plan_devices * per_device
        row["new_devices_annual_cost_eur"] = cost
        row["cost_per_life_year_eur"] = math.nan
        row |= dict.fromkeys(BANDS["cost_per_life_year_eur"], math.nan)
        if per_device is not None and life_years[0] > 0:
            # A draw that adds no life-year has no finite cost: it lifts the top of the band.
            gained = np.where(life_years > 0, life_years, np.nan)
            ratio = np.where(np.isnan(gained), np.inf, cost / gained)
            low, high = band_ends(ratio[1:])
            row["cost_per_life_year_eur"] = float(ratio[0])
            row |= dict(zip(BANDS["cost_per_life_year_eur"], (low, high), strict=True))
        elif per_device is not None and plan_devices:
            self.unanswered.append(year)
        return row

    def method(self) -> LivesModel:
        reach = self.parameters.central("reach_m")
        return LivesModel(
            parameters=self.parameters,
            reach_m=reach,
            full_use_m=min(self.parameters.central("full_use_m"), reach),
            draws=DEFAULT_DRAWS,
            seed=DEFAULT_SEED,
            home_arrests=home_arrests_text(self.parameters),
            notes=tuple(n for n in self.model_notes if n != HOME_ARRESTS_NOTE),
        )

    def notes(self) -> list[str]:
        notes = []
        if self.plan.annual_cost_per_device_eur is None:
            notes.append(
                "No hay coste de los desfibriladores en el plan (device_cost_eur y "
                "device_cost_source en el campo plan de city.json): no se calcula el coste por "
                "año de vida ganado."
            )
        if self.unanswered:
            *first, last = (str(y) for y in self.unanswered)
            years = f"{', '.join(first)} y {last}" if first else last
            notes.append(
                f"En {years}, los desfibriladores instalados en el plan no añaden años de vida "
                "en el modelo: no hay coste por año de vida ganado."
            )
        return notes


def home_arrests_text(parameters: OutcomeParameters) -> str:
    """How the model treats cardiac arrests at home, in Spanish (the stated choice)."""
    factor = parameters.central("home_use_factor")
    if factor == 0:
        return HOME_ARRESTS_NOTE
    return (
        "Las paradas en domicilio se cuentan: un DEA público las alcanza con "
        f"{spanish_number(factor, 3)} veces la probabilidad de uso (home_use_factor)."
    )


def band_ends(values: np.ndarray) -> tuple[float, float]:
    """The band's ends over the draws (``NaN`` for an end that is not finite)."""
    with np.errstate(invalid="ignore"):  # inf − inf between two infinite draws
        low, high = (float(v) for v in np.percentile(values, BAND_PERCENTILES))
    return (low if math.isfinite(low) else math.nan, high if math.isfinite(high) else math.nan)


def standing_on(dated: pd.DataFrame, day: dt.date) -> np.ndarray:
    """Which devices stand on ``day`` (installed, not removed), whatever their moderation."""
    installed = np.array([d <= day for d in dated["installed_on"]], dtype=bool)
    gone = np.array([d is not None and d <= day for d in dated["removed_on"]], dtype=bool)
    return installed & ~gone & ~dated["removed_undated"].to_numpy()
