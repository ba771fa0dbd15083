"""Benchmark of the coverage engine (geo.core.coverage) against geopandas and brute force.

Run on demand, from the repository root::

    .venv/bin/python bench/coverage.py            # every case (~30 s and ~1 GB on 2 cores)
    .venv/bin/python bench/coverage.py --quick    # Palencia + a reduced Castilla y León case

Each measurement prints one line with both timings and their ratio (ours / peer: below 1 means
ours is faster). Nothing here asserts on time; the targets are reported as met or not met.

Every layer is already in EPSG:25830 (metres) before any clock starts: projecting from
EPSG:4326 (``geo.core.distance.to_metric``) and generating the synthetic data are never timed. Each
timing is the best of N runs (``--repeats``, default 3; the slow baselines at Spain scale run
once). See ``bench/README.md`` for what each line means and the figures measured.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import math
import os
import platform
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import scipy
import shapely
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
from geo.core.availability import available_at, device_availability
from geo.core.coverage import CoverageResult, WeeklyCoverage, coverage, weekly_coverage
from geo.core.distance import NetworkDistance, StraightLine, to_metric
from geo.core.network import WalkingNetwork
from geo.io.files import read_layers

ROOT = Path(__file__).resolve().parent.parent
CRS = "EPSG:25830"
RADIUS_M = 100.0
#: A Monday at 10:00 local time (Europe/Madrid), not a public holiday in Spain.
MONDAY_10 = dt.datetime(2026, 11, 23, 10, 0)
WEEK_OF = MONDAY_10.date()
MONDAY_10_SLOT = 10  # slot 10 of the week: Monday 10:00–11:00 (evaluated at 10:30)
SLICES = 168
#: Straight line, no detour: the same metric geopandas and the brute force use.
STRAIGHT = StraightLine(1.0)
#: Brute force runs on every unit when units × open devices stays under this, else on a sample.
BRUTE_MAX_CELLS = 400_000_000
#: Cells of one brute-force block (float64: 128 MiB).
BRUTE_BLOCK_CELLS = 16 * 1024 * 1024

# --- cases ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    """One benchmark input: a population and a device layer, both in EPSG:25830."""

    name: str
    description: str
    population: gpd.GeoDataFrame
    devices: gpd.GeoDataFrame
    repeats: int
    slow_repeats: int  # for the slow baselines (sjoin_nearest, brute force)


CYL = Scale("cyl", 250_000, 800, 2_250, 380_000.0, 300_000.0, 9.6, 0.26, seed=2026)
CYL_QUICK = Scale("cyl-q", 25_000, 80, 225, 120_000.0, 95_000.0, 9.6, 0.26, seed=2026)
SPAIN = Scale("spain", 1_000_000, 50_000, 8_000, 1_000_000.0, 850_000.0, 48.0, 0.21, seed=34)


def palencia_case(*, repeats: int) -> Case:
    """The real sample in data/ (EPSG:4326 files), projected to EPSG:25830 before timing."""
    city = load_city_profile(ROOT / "data" / "city.json")
    layers = read_layers(ROOT / "data", city)
    population = to_metric(layers["population"], city)
    devices = to_metric(layers["defibrillators"], city)
    return Case(
        "palencia",
        f"data/ sample: {len(population):,} units, {int(population['residents'].sum()):,} "
        f"residents, {len(devices)} devices",
        population,
        devices,
        repeats,
        repeats,
    )


def synthetic_case(scale: Scale, *, repeats: int, slow_repeats: int) -> Case:
    """Units clustered in towns over a region; devices placed next to units
    (:func:`common.synthetic_region`)."""
    rng = np.random.default_rng(scale.seed)
    population, device_xy = synthetic_region(scale, rng, crs=CRS)
    residents = population["residents"].to_numpy()
    devices = synthetic_devices(device_xy, rng, prefix=scale.name)
    description = (
        f"synthetic: {scale.n_units:,} units, {int(residents.sum()):,} residents, "
        f"{scale.n_devices:,} devices, {scale.n_towns:,} towns over "
        f"{scale.width_m / 1000:.0f} × {scale.height_m / 1000:.0f} km"
    )
    return Case(scale.name, description, population, devices, repeats, slow_repeats)


def synthetic_devices(xy: np.ndarray, rng: np.random.Generator, *, prefix: str) -> gpd.GeoDataFrame:
    """Public, active, verified, fixed devices at ``xy`` with hours drawn from the pool."""
    texts = [text for text, _ in HOURS_POOL]
    share = np.array([p for _, p in HOURS_POOL])
    n = len(xy)
    return gpd.GeoDataFrame(
        {
            "id": [f"{prefix}-d{i:06d}" for i in range(n)],
            "status": "active",
            "verification": "verified",
            "access": "yes",
            "is_mobile": False,
            "opening_hours": np.array(texts, dtype=object)[rng.choice(len(texts), n, p=share)],
        },
        geometry=gpd.points_from_xy(xy[:, 0], xy[:, 1]),
        crs=CRS,
    )


@dataclass(frozen=True)
class NetworkCase:
    """A Palencia-sized city on a synthetic street grid."""

    case: Case
    nodes_xy: np.ndarray
    edge_u: np.ndarray
    edge_v: np.ndarray
    edge_length_m: np.ndarray

    def network(self) -> WalkingNetwork:
        """A fresh network (its KD-tree and arc arrays are built lazily, on first use)."""
        return WalkingNetwork(
            crs=CRS,
            node_ids=np.arange(len(self.nodes_xy)),
            node_xy=self.nodes_xy,
            edge_u=self.edge_u,
            edge_v=self.edge_v,
            edge_length_m=self.edge_length_m,
            source="synthetic 100 × 100 grid",
        )


def network_case(*, repeats: int, side: int = 100, spacing_m: float = 75.0) -> NetworkCase:
    """A ``side`` × ``side`` street grid, 75 m apart, jittered, with ~8 % of its edges missing.

    Edge lengths are the chord times 1.00–1.10 (streets are not perfectly straight). The
    demand is ~2,500 units in a dozen neighbourhoods; 30 devices sit next to units.
    """
    rng = np.random.default_rng(7)
    origin = np.array([370_000.0, 4_645_000.0])
    col, row = np.meshgrid(np.arange(side), np.arange(side))
    grid = origin + np.column_stack([col.ravel(), row.ravel()]) * spacing_m
    nodes_xy = grid + rng.normal(scale=8.0, size=grid.shape)
    index = np.arange(side * side).reshape(side, side)
    u = np.concatenate([index[:, :-1].ravel(), index[:-1, :].ravel()])
    v = np.concatenate([index[:, 1:].ravel(), index[1:, :].ravel()])
    keep = rng.random(len(u)) >= 0.08
    u, v = u[keep], v[keep]
    chord = np.hypot(*(nodes_xy[u] - nodes_xy[v]).T)
    length = chord * rng.uniform(1.0, 1.10, len(u))

    extent = (side - 1) * spacing_m
    n_units, n_hoods = 2_500, 12
    hood = origin + rng.uniform(0.2 * extent, 0.8 * extent, size=(n_hoods, 2))
    which = rng.integers(0, n_hoods, n_units)
    xy = hood[which] + rng.normal(scale=rng.uniform(250, 600, n_hoods)[which, None],
                                  size=(n_units, 2))  # fmt: skip
    xy = np.clip(xy, origin, origin + extent)
    residents = 1 + rng.poisson(30, n_units)
    population = gpd.GeoDataFrame(
        {
            "id": [f"net-u{i:05d}" for i in range(n_units)],
            "residents": residents,
            "residents_65_plus": rng.binomial(residents, 0.26),
        },
        geometry=gpd.points_from_xy(xy[:, 0], xy[:, 1]),
        crs=CRS,
    )
    host = rng.choice(n_units, 30, replace=False)
    devices = synthetic_devices(xy[host] + rng.normal(scale=20.0, size=(30, 2)), rng, prefix="net")
    case = Case(
        "network",
        f"synthetic: {side}×{side} grid ({side * side:,} nodes, {len(u):,} edges, "
        f"{spacing_m:g} m), {n_units:,} units, 30 devices",
        population,
        devices,
        repeats,
        repeats,
    )
    return NetworkCase(case, nodes_xy, u, v, length)


# --- timing and printing ----------------------------------------------------------------------


def seconds(value: float) -> str:
    """A duration for the table: 3 decimals under 10 s, 1 above."""
    return f"{value:.3f} s" if value < 10 else f"{value:.1f} s"


def report(case: str, what: str, ours: float, peer_name: str, peer: float, note: str = "") -> None:
    """Print one measurement: both timings and their ratio."""
    line = (
        f"{case:<8} {what:<20} ours {seconds(ours):>9}  {peer_name} {seconds(peer):>9}  "
        f"ratio {ratio(ours, peer):>5}  {note}"
    )
    print(line.rstrip(), flush=True)


def percent(part: float, whole: float) -> str:
    """``part`` as a percentage of ``whole``, one decimal."""
    return f"{100 * part / whole:.1f} %" if whole else "n/a"


# --- baselines --------------------------------------------------------------------------------


def sjoin_covered(population: gpd.GeoDataFrame, open_devices: gpd.GeoDataFrame) -> tuple[int, int]:
    """Units and residents with an open device within ``RADIUS_M`` (geopandas.sjoin_nearest).

    ``max_distance`` is inclusive (a device at exactly ``RADIUS_M`` counts, as in
    geo.core.coverage). A unit equidistant from two devices appears twice in the join: ties are
    dropped before summing.
    """
    joined = gpd.sjoin_nearest(
        population, open_devices[["geometry"]], how="inner", max_distance=RADIUS_M
    )
    unique = joined.loc[~joined.index.duplicated(), "residents"]
    return len(unique), int(unique.sum())


def brute_covered(units_xy: np.ndarray, residents: np.ndarray, devices_xy: np.ndarray) -> int:
    """Residents with an open device within ``RADIUS_M``: full distance matrix, in blocks."""
    if len(devices_xy) == 0:
        return 0
    covered = np.zeros(len(units_xy), dtype=bool)
    block = max(1, BRUTE_BLOCK_CELLS // len(devices_xy))
    dx, dy = devices_xy[:, 0], devices_xy[:, 1]
    for first in range(0, len(units_xy), block):
        ux, uy = units_xy[first : first + block, 0], units_xy[first : first + block, 1]
        d2 = (ux[:, None] - dx[None, :]) ** 2 + (uy[:, None] - dy[None, :]) ** 2
        covered[first : first + block] = d2.min(axis=1) <= RADIUS_M**2
    return int(residents[covered].sum())


def xy_of(frame: gpd.GeoDataFrame) -> np.ndarray:
    """``(n, 2)`` coordinates of a point layer (metres)."""
    return shapely.get_coordinates(frame.geometry.values)


# --- measurements -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Timings:
    """What the weekly comparison and the targets need from a case's instant measurements."""

    instant_s: float
    sjoin_s: float
    residents_covered: int


def open_devices(case: Case, city: CityProfile) -> tuple[gpd.GeoDataFrame, float]:
    """The devices open at ``MONDAY_10`` (``geo.core.availability``) and the selection's time."""
    start = time.perf_counter()
    availability = device_availability(case.devices, timezone=city.timezone, calendar=city.calendar)
    mask = available_at(availability, MONDAY_10)
    elapsed = time.perf_counter() - start
    return case.devices[mask], elapsed


def instant(case: Case, city: CityProfile) -> Timings:
    """One instant: ours vs sjoin_nearest (all units) and vs brute force (all or a sample)."""
    population, devices = case.population, case.devices
    chosen, select_s = open_devices(case, city)
    print(
        f"{case.name:<8} {'open devices':<20} {len(chosen):,} of {len(devices):,} at "
        f"Monday 10:00 (selection by geo.core.availability {seconds(select_s)}: inside ours, "
        "not inside the baselines)",
        flush=True,
    )

    def ours_run(units: gpd.GeoDataFrame = population) -> CoverageResult:
        return coverage(units, devices, city, radius_m=RADIUS_M, at=MONDAY_10, model=STRAIGHT)

    ours_s, result = best_of(ours_run, case.repeats)
    sjoin_s, (sjoin_units, sjoin) = best_of(
        lambda: sjoin_covered(population, chosen), case.slow_repeats
    )
    gap = sjoin - result.residents_covered
    unit_gap = sjoin_units - int(result.units["covered"].sum())
    note = (
        f"covered {percent(result.residents_covered, result.residents)} "
        f"({result.residents_covered:,} residents; same answer: {yes(gap == unit_gap == 0)}"
        + (
            f"; sjoin_nearest differs by {unit_gap:+,} units, {gap:+,} residents"
            if gap or unit_gap
            else ""
        )
        + ")"
    )
    report(case.name, f"instant {RADIUS_M:g} m", ours_s, "sjoin_nearest", sjoin_s, note)

    n_open = max(1, len(chosen))
    if len(population) * n_open <= BRUTE_MAX_CELLS:
        sample, label = population, "all units"
    else:
        size = BRUTE_MAX_CELLS // n_open
        pick = np.random.default_rng(0).choice(len(population), size, replace=False)
        sample, label = population.iloc[np.sort(pick)], f"sample of {size:,} units"
    sample_xy, chosen_xy = xy_of(sample), xy_of(chosen)
    sample_residents = sample["residents"].to_numpy()
    if sample is population:
        small_s, small = ours_s, result
    else:
        small_s, small = best_of(lambda: ours_run(sample), case.repeats)
    brute_s, brute = best_of(
        lambda: brute_covered(sample_xy, sample_residents, chosen_xy), case.slow_repeats
    )
    note = (
        f"{label}; covered {percent(small.residents_covered, small.residents)} "
        f"(same answer: {yes(brute == small.residents_covered)})"
    )
    report(case.name, "instant, brute force", small_s, "numpy matrix", brute_s, note)
    return Timings(ours_s, sjoin_s, result.residents_covered)


def weekly(case: Case, city: CityProfile, timings: Timings) -> float:
    """The 168-slice weekly profile vs one instant and vs 168 sjoin_nearest calls."""

    def run() -> WeeklyCoverage:
        return weekly_coverage(
            case.population, case.devices, city, week_of=WEEK_OF, radius_m=RADIUS_M, model=STRAIGHT
        )

    weekly_s, result = best_of(run, case.repeats)
    slot = int(result.slices["residents_covered"].iloc[MONDAY_10_SLOT])
    note = (
        f"mean covered {100 * result.mean_share_covered:.1f} %; "
        f"Monday 10:00 slot = instant: {yes(slot == timings.residents_covered)}"
    )
    report(case.name, f"weekly {SLICES} slices", weekly_s, "1 instant", timings.instant_s, note)
    report(
        case.name,
        f"weekly {SLICES} slices",
        weekly_s,
        f"{SLICES} × sjoin_nearest",
        SLICES * timings.sjoin_s,
        f"(extrapolated: {SLICES} × {seconds(timings.sjoin_s)}, not run)",
    )
    return weekly_s


def walking(net: NetworkCase, city: CityProfile) -> float:
    """Walking-network coverage (instant and weekly) vs the straight line × 1.3 on the same data.

    The network is rebuilt (untimed) before each cold run, so a cold timing includes the lazy
    KD-tree of nodes and the arc arrays; a warm timing reuses one network already used once.
    """
    case = net.case
    population, devices = case.population, case.devices
    straight = StraightLine()

    def instant_with(model: NetworkDistance | StraightLine) -> CoverageResult:
        return coverage(population, devices, city, radius_m=RADIUS_M, at=MONDAY_10, model=model)

    def weekly_with(model: NetworkDistance | StraightLine) -> WeeklyCoverage:
        return weekly_coverage(
            population, devices, city, week_of=WEEK_OF, radius_m=RADIUS_M, model=model
        )

    cold_s = math.inf
    for _ in range(case.repeats):
        model = NetworkDistance(net.network())
        seconds_once, result = best_of(lambda m=model: instant_with(m), 1)
        cold_s = min(cold_s, seconds_once)
    warm = NetworkDistance(net.network())
    instant_with(warm)
    warm_s, result = best_of(lambda: instant_with(warm), case.repeats)
    line_s, line_result = best_of(lambda: instant_with(straight), case.repeats)
    note = (
        f"covered {percent(result.residents_covered, result.residents)} by the network, "
        f"{percent(line_result.residents_covered, line_result.residents)} by the line × 1.3"
    )
    report(case.name, "instant, cold", cold_s, "line × 1.3", line_s, note)
    report(case.name, "instant, warm", warm_s, "line × 1.3", line_s)

    weekly_cold_s = math.inf
    for _ in range(case.repeats):
        model = NetworkDistance(net.network())
        seconds_once, week = best_of(lambda m=model: weekly_with(m), 1)
        weekly_cold_s = min(weekly_cold_s, seconds_once)
    week_line_s, week_line = best_of(lambda: weekly_with(straight), case.repeats)
    note = (
        f"mean covered {100 * week.mean_share_covered:.1f} % by the network, "
        f"{100 * week_line.mean_share_covered:.1f} % by the line × 1.3"
    )
    report(case.name, "weekly, cold", weekly_cold_s, "line × 1.3", week_line_s, note)
    weekly_with(warm)
    weekly_warm_s, _ = best_of(lambda: weekly_with(warm), case.repeats)
    report(case.name, "weekly, warm", weekly_warm_s, "line × 1.3", week_line_s)
    return max(cold_s, weekly_cold_s)


# --- main -------------------------------------------------------------------------------------


def header(args: argparse.Namespace) -> None:
    """Machine and library facts, and what each timing includes."""
    print(f"# cardiomapa coverage benchmark, {dt.date.today().isoformat()}")
    print(machine_line())
    print(
        f"# python {platform.python_version()}, numpy {np.__version__}, scipy {scipy.__version__},"
        f" geopandas {gpd.__version__}, shapely {shapely.__version__}, pandas {pd.__version__}"
    )
    if "OPENBLAS_CORETYPE" in os.environ:
        print(f"# OPENBLAS_CORETYPE={os.environ['OPENBLAS_CORETYPE']}")
    when = MONDAY_10.strftime("%A %Y-%m-%d %H:%M")
    print(
        f"# radius {RADIUS_M:g} m, straight line × 1.0 unless said, instant {when} Europe/Madrid;"
        f" best of {args.repeats} (slow baselines at Spain scale: 1); "
        "ratio = ours / peer (< 1: ours faster)"
    )
    print(
        "# ours = geo.core.coverage.coverage / weekly_coverage end to end (input checks, opening"
        " hours of every device, search, result frames); inputs already in EPSG:25830, no"
        " projection"
    )
    print(
        "# sjoin_nearest / numpy matrix = the join or distance matrix + summing residents, on the"
        " devices open at that instant, selected beforehand (untimed)"
    )


def main(argv: list[str] | None = None) -> int:
    """Parse the options, build the cases one by one, print the measurements and the targets."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick", action="store_true", help="only Palencia and a reduced Castilla y León case"
    )
    parser.add_argument("--repeats", type=int, default=3, help="runs per timing (best is kept)")
    args = parser.parse_args(argv)

    header(args)
    city = load_city_profile(ROOT / "data" / "city.json")
    scales = [CYL_QUICK] if args.quick else [CYL, SPAIN]
    targets: list[str] = []

    builders: list[Callable[[], Case]] = [lambda: palencia_case(repeats=args.repeats)]
    for scale in scales:
        slow = 1 if scale is SPAIN else args.repeats
        builders.append(
            lambda s=scale, r=slow: synthetic_case(s, repeats=args.repeats, slow_repeats=r)
        )
    for build in builders:
        case = build()
        print(f"{case.name:<8} {'data':<20} {case.description}", flush=True)
        timings = instant(case, city)
        weekly_s = weekly(case, city, timings)
        met = timings.instant_s <= timings.sjoin_s
        targets.append(
            f"one instant no slower than sjoin_nearest ({case.name}): {_met(met)} "
            f"({seconds(timings.instant_s)} vs {seconds(timings.sjoin_s)})"
        )
        if case.name == "spain":
            met = weekly_s < 3.0
            targets.append(
                f"weekly profile at Spain scale < 3 s: {_met(met)} ({seconds(weekly_s)})"
            )
        del case
        gc.collect()

    if not args.quick:
        net = network_case(repeats=args.repeats)
        print(f"{'network':<8} {'data':<20} {net.case.description}", flush=True)
        slowest = walking(net, city)
        targets.append(
            f"walking-network coverage of a Palencia-size city < 1 s: {_met(slowest < 1.0)} "
            f"(slowest cold run {seconds(slowest)})"
        )

    for target in targets:
        print(f"# target: {target}")
    peak_mb = peak_memory_mb()
    print(f"# peak resident memory {peak_mb:,.0f} MB")
    return 0


def _met(flag: bool) -> str:
    return "met" if flag else "NOT met"


if __name__ == "__main__":
    sys.exit(main())
