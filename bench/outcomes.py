"""Benchmark of the outcome model (geo.core.outcomes): every device's marginal lives in one pass.

Run on demand, from the repository root::

    .venv/bin/python bench/outcomes.py            # Spain scale (1,000,000 units, 50,000 devices)
    .venv/bin/python bench/outcomes.py --quick    # smoke test: 20,000 units, 1,000 devices
    .venv/bin/python bench/outcomes.py --units 250000 --devices 5000 --sample 50

Three measurements on the same synthetic layers, weekly mode, reach 200 m (the parameter
``reach_m`` of ``data/reference/outcome_parameters.csv``), straight line × 1.3 (the default
model of both functions):

- **weekly coverage**: one ``geo.core.coverage.weekly_coverage`` (the reference: one pass over the
  same pairs and the same 168 hours);
- **ours**: ``geo.core.outcomes.outcomes(…, mode="weekly")``, end to end, which yields every
  device's ``marginal_lives`` (lives lost per year without it) with its band;
- **naive**: the total lives recomputed without one device, for a random sample of ``--sample``
  counted devices, extrapolated linearly to every counted device (running it for all of them
  would take hours at Spain scale). Each sampled device is also a check: total(all) − total
  (without it) must equal its ``marginal_lives`` (relative tolerance 1e-9, absolute 1e-12).

Each line prints both timings and their ratio (ours / peer: below 1 means ours is faster).
Nothing here asserts on time; the target (every marginal in less than 10 weekly coverages) is
reported as PASS or FAIL. Generating the data is never timed.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import gc
import math
import platform
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import scipy
from common import (
    HOURS_POOL,
    Scale,
    best_of,
    machine_line,
    peak_memory_mb,
    ratio,
    synthetic_region,
    yes,
)

from geo.city import CityProfile, load_city_profile
from geo.core.availability import device_availability
from geo.core.coverage import weekly_coverage
from geo.core.outcome_model import OutcomeParameters
from geo.core.outcomes import OutcomeResult, outcomes

ROOT = Path(__file__).resolve().parent.parent
CRS = "EPSG:25830"
PARAMETERS_CSV = ROOT / "data" / "reference" / "outcome_parameters.csv"
#: The reference week: the one holding Monday 2026-11-23 (no public holiday in Spain).
WEEK_OF = dt.date(2026, 11, 23)
#: Every marginal should cost less than this many weekly coverages.
TARGET_RATIO = 10.0
#: The naive recomputation needs only the total: the fewest Monte Carlo draws accepted.
NAIVE_DRAWS = 10
#: Share of synthetic devices that are private (``access=private``) or out of service:
#: they are in the layer but never count.
SHARE_PRIVATE, SHARE_OUT_OF_SERVICE = 0.05, 0.03
REL_TOL, ABS_TOL = 1e-9, 1e-12


# --- data -------------------------------------------------------------------------------------


#: Spain: the same region as bench/coverage.py's ``spain`` case (48 M residents).
SPAIN = Scale("spain", 1_000_000, 50_000, 8_000, 1_000_000.0, 850_000.0, 48.0, 0.21, seed=34)
#: ``--quick``: Spain reduced fiftyfold in units and area, with 1,000 devices.
SPAIN_QUICK = replace(SPAIN.resized(20_000, 1_000), name="spain-q")


def synthetic_layers(scale: Scale) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame, str]:
    """Population units clustered in towns, devices next to them; both in EPSG:25830.

    The region of :func:`common.synthetic_region` (that of bench/coverage.py). Hours
    come from ``common.HOURS_POOL`` (30 % 24/7; office, weekday mornings, shops, sports
    centres in the evenings and at weekends…); 5 % of the devices are private and 3 % out of
    service.
    """
    rng = np.random.default_rng(scale.seed)
    population, device_xy = synthetic_region(scale, rng, crs=CRS)
    texts = np.array([text for text, _ in HOURS_POOL], dtype=object)
    share = np.array([p for _, p in HOURS_POOL])
    kind = rng.choice(
        3, scale.n_devices, p=[1 - SHARE_PRIVATE - SHARE_OUT_OF_SERVICE, SHARE_PRIVATE,
                               SHARE_OUT_OF_SERVICE]
    )  # fmt: skip
    devices = gpd.GeoDataFrame(
        {
            "id": [f"{scale.name}-d{i:06d}" for i in range(scale.n_devices)],
            "name": [f"DEA {i}" for i in range(scale.n_devices)],
            "status": np.where(kind == 2, "out_of_service", "active"),
            "verification": "verified",
            "access": np.where(kind == 1, "private", "yes"),
            "is_mobile": False,
            "opening_hours": texts[rng.choice(len(texts), scale.n_devices, p=share)],
        },
        geometry=gpd.points_from_xy(device_xy[:, 0], device_xy[:, 1]),
        crs=CRS,
    )
    description = (
        f"synthetic: {scale.n_units:,} units, {int(population['residents'].sum()):,} residents, "
        f"{scale.n_devices:,} devices ({int((kind == 1).sum()):,} private, "
        f"{int((kind == 2).sum()):,} out of service), {scale.n_towns:,} towns over "
        f"{scale.width_m / 1000:.0f} × {scale.height_m / 1000:.0f} km"
    )
    return population, devices, description


def load_parameters() -> OutcomeParameters:
    """The cited parameters of the sample (``data/reference/outcome_parameters.csv``)."""
    with PARAMETERS_CSV.open(encoding="utf-8-sig", newline="") as handle:
        return OutcomeParameters.from_rows(list(csv.DictReader(handle)), name=PARAMETERS_CSV.name)


# --- printing ---------------------------------------------------------------------------------


def seconds(value: float) -> str:
    """A duration: 3 decimals under 10 s, 1 above."""
    return f"{value:.3f} s" if value < 10 else f"{value:,.1f} s"


def report(case: str, what: str, ours: float, peer_name: str, peer: float, note: str = "") -> None:
    """One measurement: both timings and their ratio (ours / peer)."""
    line = (
        f"{case:<8} {what:<22} ours {seconds(ours):>9}  {peer_name} {seconds(peer):>11}  "
        f"ratio {ratio(ours, peer):>6}  {note}"
    )
    print(line.rstrip(), flush=True)


# --- measurements -----------------------------------------------------------------------------


def total_lives(result: OutcomeResult) -> float:
    """Central lives saved per year, summed exactly over the units (``math.fsum``)."""
    return math.fsum(result.units["lives_saved"].to_numpy())


@dataclass(frozen=True)
class Naive:
    """The naive recomputation on a sample of devices."""

    per_device_s: float  # mean wall-clock time of one recomputation
    checked: int
    agreeing: int
    nonzero: int
    worst_rel: float
    worst_abs: float


def naive(
    population: gpd.GeoDataFrame,
    devices: gpd.GeoDataFrame,
    city: CityProfile,
    parameters: OutcomeParameters,
    ours: OutcomeResult,
    sample: np.ndarray,
) -> Naive:
    """Recompute the total without each sampled device; compare with its ``marginal_lives``.

    Dropping the device from the frame is not timed; the recomputation is ``outcomes`` end to
    end with ``NAIVE_DRAWS`` draws (the central value does not depend on them).
    """
    total = total_lives(ours)
    marginal = ours.devices["marginal_lives"].to_numpy()
    elapsed, agreeing, nonzero, worst_rel, worst_abs = 0.0, 0, 0, 0.0, 0.0
    for index in sample:
        without = devices.drop(index=devices.index[index])
        gc.collect()
        start = time.perf_counter()
        result = outcomes(
            population, without, city, parameters, mode="weekly", week_of=WEEK_OF,
            draws=NAIVE_DRAWS,
        )  # fmt: skip
        elapsed += time.perf_counter() - start
        lost = total - total_lives(result)
        expected = float(marginal[index])
        gap = abs(lost - expected)
        agreeing += math.isclose(lost, expected, rel_tol=REL_TOL, abs_tol=ABS_TOL)
        nonzero += expected != 0.0
        worst_abs = max(worst_abs, gap)
        if expected != 0.0:
            worst_rel = max(worst_rel, gap / abs(expected))
        del result, without
    count = max(1, len(sample))
    return Naive(elapsed / count, len(sample), agreeing, nonzero, worst_rel, worst_abs)


def run(
    scale: Scale, city: CityProfile, parameters: OutcomeParameters, args: argparse.Namespace
) -> list[str]:
    """Build the layers, time the three ways, print the lines; return the target lines."""
    population, devices, description = synthetic_layers(scale)
    reach_m = parameters.central("reach_m")
    print(f"{scale.name:<8} {'data':<22} {description}", flush=True)

    weekly_s, week = best_of(
        lambda: weekly_coverage(population, devices, city, week_of=WEEK_OF, radius_m=reach_m),
        args.repeats,
    )
    ours_s, result = best_of(
        lambda: outcomes(population, devices, city, parameters, mode="weekly", week_of=WEEK_OF),
        args.repeats,
    )
    counted = np.flatnonzero(
        device_availability(devices, timezone=city.timezone, calendar=city.calendar).counted()
    )
    marginal = result.devices["marginal_lives"].to_numpy()
    note = (
        f"{result.lives_saved:,.2f} lives/year ({result.city['lives_saved_low']:,.2f}–"
        f"{result.city['lives_saved_high']:,.2f}); {len(counted):,} counted devices, "
        f"{int((marginal > 0).sum()):,} with a marginal > 0; weekly mean covered "
        f"{100 * week.mean_share_covered:.1f} %"
    )
    report(scale.name, "all marginals", ours_s, "weekly coverage", weekly_s, note)

    rng = np.random.default_rng(args.seed)
    k = min(args.sample, len(counted))
    sample = np.sort(rng.choice(counted, k, replace=False))
    check = naive(population, devices, city, parameters, result, sample)
    naive_s = check.per_device_s * len(counted)
    note = (
        f"extrapolated: {len(counted):,} counted devices × {seconds(check.per_device_s)} "
        f"(mean of {check.checked} recomputations, not run for all); "
        f"naive / ours {naive_s / ours_s:,.0f}×"
    )
    report(scale.name, "marginals vs naive", ours_s, "naive", naive_s, note)
    same = check.agreeing == check.checked
    print(
        f"{scale.name:<8} {'check':<22} total(all) − total(without d) = marginal_lives(d): "
        f"{yes(same)} ({check.agreeing}/{check.checked} devices, {check.nonzero} with a "
        f"marginal ≠ 0; worst gap {check.worst_abs:.2g} lives, {check.worst_rel:.2g} relative; "
        f"tolerance {REL_TOL:g} relative / {ABS_TOL:g} absolute)",
        flush=True,
    )
    met = ours_s < TARGET_RATIO * weekly_s
    return [
        f"every marginal in < {TARGET_RATIO:g} weekly coverages ({scale.name}): "
        f"{'PASS' if met else 'FAIL'} ({seconds(ours_s)} = {ours_s / weekly_s:.2f} × "
        f"{seconds(weekly_s)})",
        f"naive check ({scale.name}): {'PASS' if same else 'FAIL'}",
    ]


def header(args: argparse.Namespace, reach_m: float) -> None:
    """Machine and library facts, and what each timing includes."""
    print(f"# cardiomapa outcomes benchmark, {dt.date.today().isoformat()}")
    print(machine_line())
    print(
        f"# python {platform.python_version()}, numpy {np.__version__}, scipy {scipy.__version__},"
        f" geopandas {gpd.__version__}, pandas {pd.__version__}"
    )
    print(
        f"# weekly mode, week of {WEEK_OF.isoformat()} (Europe/Madrid), reach {reach_m:g} m, "
        f"straight line × 1.3 (the default); best of {args.repeats}; ratio = ours / peer "
        "(< 1: ours faster)"
    )
    print(
        "# ours = geo.core.outcomes.outcomes end to end (every device's marginal_lives, 1,000-draw"
        " bands); weekly coverage = geo.core.coverage.weekly_coverage end to end; naive = outcomes"
        f" without one device ({NAIVE_DRAWS} draws), seed {args.seed}"
    )


def main(argv: list[str] | None = None) -> int:
    """Parse the options, run the case, print the measurements and the targets."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument(
        "--quick", action="store_true", help="smoke test: 20,000 units and 1,000 devices"
    )
    parser.add_argument("--units", type=int, help="population units (default 1,000,000)")
    parser.add_argument("--devices", type=int, help="devices (default 50,000)")
    parser.add_argument("--sample", type=int, default=20, help="devices recomputed the naive way")
    parser.add_argument("--seed", type=int, default=7, help="seed of the naive sample")
    parser.add_argument(
        "--repeats", type=int, default=3, help="runs of ours and of weekly coverage (best kept)"
    )
    args = parser.parse_args(argv)

    scale = SPAIN_QUICK if args.quick else SPAIN
    if args.units or args.devices:
        scale = scale.resized(args.units or scale.n_units, args.devices or scale.n_devices)
    parameters = load_parameters()
    header(args, parameters.central("reach_m"))
    city = load_city_profile(ROOT / "data" / "city.json")
    targets = run(scale, city, parameters, args)
    for target in targets:
        print(f"# target: {target}")
    print(f"# peak resident memory {peak_memory_mb():,.0f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
