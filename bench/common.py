"""Helpers every benchmark shares: timing, ratios and the machine line of the header."""

from __future__ import annotations

import gc
import math
import os
import platform
import resource
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import geopandas as gpd
import numpy as np

T = TypeVar("T")

#: Opening hours given to synthetic devices, and how often each occurs (~30 % are 24/7).
#: Shared so every benchmark's synthetic devices keep the same hours.
HOURS_POOL: tuple[tuple[str, float], ...] = (
    ("24/7", 0.30),
    ("Mo-Fr 08:00-15:00", 0.15),
    ("Mo-Fr 09:30-14:00,17:00-20:30; Sa 10:00-14:00", 0.15),
    ("Mo-Sa 07:00-22:00", 0.15),
    ("Mo-Fr 08:00-21:00; Sa 09:00-14:00", 0.10),
    ("Mo-Fr 16:00-21:00; Sa,Su 10:00-14:00", 0.05),
    ("Sa,Su 10:00-14:00", 0.05),
    ("Mo-Su 09:00-21:00", 0.05),
)


def best_of(run: Callable[[], T], repeats: int) -> tuple[float, T]:
    """Best wall-clock time (s) of ``repeats`` calls, and the last call's result."""
    best = math.inf
    result: T
    for _ in range(max(1, repeats)):
        gc.collect()
        start = time.perf_counter()
        result = run()
        best = min(best, time.perf_counter() - start)
    return best, result


def ratio(ours: float, peer: float) -> str:
    """``ours / peer``, with two significant digits when it is small."""
    r = ours / peer if peer > 0 else math.inf
    return f"{r:.2g}" if r < 0.1 else f"{r:.2f}"


def yes(flag: bool) -> str:
    """``yes`` / ``NO`` (capitals, so a mismatch stands out)."""
    return "yes" if flag else "NO"


def machine_line() -> str:
    """``# machine: Linux x86_64, <CPU model>, nproc N``."""
    try:
        cpuinfo = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        cpuinfo = []
    cpu = next(
        (line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name")),
        platform.processor() or "unknown CPU",
    )
    return (
        f"# machine: {platform.system()} {platform.machine()}, {cpu}, "
        f"nproc {len(os.sched_getaffinity(0))}"
    )


def git_describe(root: Path) -> str:
    """``git describe --always --dirty`` of the tree at ``root`` (``unknown`` without git)."""
    done = subprocess.run(
        ["git", "-C", str(root), "describe", "--always", "--dirty"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    return done.stdout.strip() or "unknown"


def peak_memory_mb() -> float:
    """Peak resident memory of this process, in MB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# --- synthetic regions ------------------------------------------------------------------------


@dataclass(frozen=True)
class Scale:
    """A synthetic region: towns with Gaussian spreads, devices next to people."""

    name: str
    n_units: int
    n_devices: int
    n_towns: int
    width_m: float
    height_m: float
    residents_per_unit: float
    share_65_plus: float
    seed: int

    def resized(self, n_units: int, n_devices: int) -> Scale:
        """The same density of towns and people over an area proportional to ``n_units``."""
        factor = n_units / self.n_units
        return Scale(
            f"{n_units // 1000}k",
            n_units,
            n_devices,
            max(1, round(self.n_towns * factor)),
            self.width_m * math.sqrt(factor),
            self.height_m * math.sqrt(factor),
            self.residents_per_unit,
            self.share_65_plus,
            self.seed,
        )


def synthetic_region(
    scale: Scale, rng: np.random.Generator, *, crs: str
) -> tuple[gpd.GeoDataFrame, np.ndarray]:
    """Population units clustered in towns, and where devices go (metres, ``crs``).

    Town sizes follow a Zipf-like law (a few cities, many villages); each town's units are a
    Gaussian around its centre whose spread grows with its size (150 m for a hamlet, up to
    2.5 km for the largest city). Devices sit within a few tens of metres of a unit drawn with
    probability proportional to residents, so they cluster where people live. The draws come
    in a fixed order from ``rng``: the same seed, the same region in every benchmark.
    """
    x0, y0 = 150_000.0, 4_000_000.0
    centre = np.column_stack(
        [x0 + rng.uniform(0, scale.width_m, scale.n_towns),
         y0 + rng.uniform(0, scale.height_m, scale.n_towns)]
    )  # fmt: skip
    weight = 1.0 / np.arange(1, scale.n_towns + 1) ** 0.9
    town_units = rng.multinomial(scale.n_units - scale.n_towns, weight / weight.sum()) + 1
    spread = np.clip(150.0 + 12.0 * np.sqrt(town_units), 150.0, 2_500.0)
    town = np.repeat(np.arange(scale.n_towns), town_units)
    xy = centre[town] + rng.normal(size=(scale.n_units, 2)) * spread[town, None]
    residents = 1 + rng.poisson(scale.residents_per_unit - 1, scale.n_units)
    population = gpd.GeoDataFrame(
        {
            "id": [f"{scale.name}-u{i:07d}" for i in range(scale.n_units)],
            "residents": residents,
            "residents_65_plus": rng.binomial(residents, scale.share_65_plus),
        },
        geometry=gpd.points_from_xy(xy[:, 0], xy[:, 1]),
        crs=crs,
    )
    host = rng.choice(scale.n_units, scale.n_devices, p=residents / residents.sum())
    device_xy = xy[host] + rng.normal(scale=25.0, size=(scale.n_devices, 2))
    return population, device_xy
