"""Defibrillator density: the city's devices per 100,000 people and per km² beside published
references, and how many devices a reference density would need.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from geo.core.outputs import spanish_number


@dataclass(frozen=True)
class DensityReference:
    """A published density of defibrillators to compare with (one row of the reference table)."""

    id: str
    name: str
    scope: str
    devices_per_100k: float
    year: int | None
    basis: str
    source: str


def density_benchmark(
    devices: int,
    name: str,
    population: int,
    area_km2: float,
    references: Iterable[DensityReference],
    *,
    current_year: int,
) -> pd.DataFrame:
    """The city's density among the references, highest first.

    ``devices_needed`` is how many more devices the city needs to be strictly above each
    reference: the smallest ``n`` with ``(devices + n) / population × 100,000 > reference``.
    """
    rows = [
        {
            "id": ref.id, "name": ref.name, "scope": ref.scope,
            "devices_per_100k": ref.devices_per_100k, "year": ref.year, "basis": ref.basis,
            "source": ref.source, "is_city": False,
            "devices_needed": devices_needed(devices, population, ref.devices_per_100k),
        }
        for ref in references
    ]  # fmt: skip
    rows.append({
        "id": "city", "name": name, "scope": "city",
        "devices_per_100k": per_100k(devices, population), "year": current_year,
        "basis": f"{spanish_number(devices)} desfibriladores verificados, "
        f"{spanish_number(population)} habitantes, "
        f"{spanish_number(per_km2(devices, area_km2), 2)} por km²",
        "source": "cardiomapa", "is_city": True, "devices_needed": 0,
    })  # fmt: skip
    frame = pd.DataFrame(rows)
    # Highest first; at a tie the reference goes first (the city does not pass it).
    order = np.lexsort((frame["is_city"].to_numpy(), -frame["devices_per_100k"].to_numpy()))
    return frame.iloc[order].reset_index(drop=True)


def devices_needed(devices: int, population: int, per_100k: float) -> int:
    """New devices needed for ``devices`` to be strictly above ``per_100k`` per 100,000 people."""
    threshold = per_100k * population / 100_000
    return max(0, math.floor(threshold) + 1 - devices)


def per_100k(devices: int, population: int) -> float:
    """Devices per 100,000 inhabitants (0 for no population)."""
    return devices / population * 100_000 if population else 0.0


def per_km2(devices: int, area_km2: float) -> float:
    """Devices per km² (0 for no area)."""
    return devices / area_km2 if area_km2 else 0.0
