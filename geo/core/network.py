"""Walking-network distances: a pedestrian street graph as arrays, and shortest walks on it.

A pure computing module: no file, no HTTP, no SQL, no HTML, nothing computed at import time. The
OSM XML / PBF / GraphML readers that build a network from a file live in :mod:`geo.io.osm`.

The network is an undirected graph in a projected (metric) CRS — EPSG:25830 (ETRS89 / UTM 30N)
for Palencia — held as NumPy arrays in a frozen :class:`WalkingNetwork`. Every edge length is
measured along the edge geometry in that CRS and is never shorter than the straight segment
between its end nodes, so the walking distance this module reports between two points is never
shorter than the straight line between them.

Walking distance between an origin ``o`` and a target ``t`` (both points in the network's CRS) is

    |o − N(o)| + shortest path(N(t) → N(o)) + |t − N(t)|

where ``N(p)`` is the network node nearest to ``p`` (straight line, KD-tree). The path is found
by Dijkstra's algorithm (:func:`scipy.sparse.csgraph.dijkstra`) from the targets, which are
usually far fewer (defibrillators) than the origins (residents, buildings).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj
import shapely
from scipy.sparse import csr_array
from scipy.sparse.csgraph import dijkstra
from scipy.spatial import cKDTree

from geo.errors import CoordinatesError, NetworkError

__all__ = [
    "CoordinatesError",
    "NetworkError",
    "WalkingNetwork",
    "nearest_target",
    "network_from_frames",
    "network_to_frames",
    "pairs_within",
    "snap",
    "street_segments",
]

#: Targets processed per Dijkstra call in :func:`pairs_within`.
DEFAULT_CHUNK_SIZE = 256
#: Upper bound on the cells of one dense Dijkstra result (targets × nodes, float64: 64 MiB).
_MAX_DISTANCE_CELLS = 8 * 1024 * 1024
#: An edge length shorter than its straight chord by at most this much (rounding in a file) is
#: raised to the chord; anything shorter is rejected as a wrong length (units, CRS).
_CHORD_TOLERANCE_M = 0.01

# --- the network ------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class WalkingNetwork:
    """An undirected pedestrian graph in a projected (metric) CRS, as arrays.

    Built by :func:`load_network` or :func:`network_from_frames`. The arrays are copied and made
    read-only on construction. Equality is identity (``eq=False``): arrays do not compare as
    booleans, and networks stay hashable so that frozen results can hold them.

    Attributes
    ----------
    crs
        Projected CRS of every coordinate and length, as an authority string (``EPSG:25830``).
    node_ids
        ``int64`` ``(n,)``: OSM node ids (or ``0 … n−1`` when the source file has none), unique.
    node_xy
        ``float64`` ``(n, 2)``: node coordinates in metres in ``crs``.
    edge_u, edge_v
        ``int64`` ``(m,)``: end nodes of each edge, as indices into the node arrays (not OSM ids).
    edge_length_m
        ``float64`` ``(m,)``: length of each edge along its geometry, metres in ``crs``; never
        shorter than the straight chord between its end nodes.
    source
        Name of the file (or other origin) the network came from.
    edge_name
        ``object`` ``(m,)``: the street name of each edge (its OSM way's ``name``), ``None``
        where the way has none; ``None`` as a whole when no edge has a name (a network read
        from a file without names, or stored before names were kept).

    Raises
    ------
    NetworkError
        If the CRS is not projected in metres, the arrays disagree in shape, an edge names a
        node that does not exist, a coordinate or length is not finite, an edge is shorter than
        the straight line between its ends, node ids repeat, there is no edge, or the names
        are not one per edge.
    """

    crs: str
    node_ids: np.ndarray
    node_xy: np.ndarray
    edge_u: np.ndarray
    edge_v: np.ndarray
    edge_length_m: np.ndarray
    source: str
    edge_name: np.ndarray | None = None

    def __post_init__(self) -> None:
        where = f"red peatonal de {self.source}"
        crs = metric_crs_of(self.crs, where=where)
        node_ids = _frozen(self.node_ids, np.int64)
        node_xy = _frozen(self.node_xy, np.float64)
        edge_u = _frozen(self.edge_u, np.int64)
        edge_v = _frozen(self.edge_v, np.int64)
        length = np.array(self.edge_length_m, dtype=np.float64)
        n = len(node_ids)
        if node_ids.ndim != 1 or node_xy.shape != (n, 2):
            msg = (
                f"{where}: node_ids debe ser (n,) y node_xy (n, 2); "
                f"se recibieron {node_ids.shape} y {node_xy.shape}."
            )
            raise NetworkError(msg)
        if not (edge_u.ndim == 1 and edge_u.shape == edge_v.shape == length.shape):
            msg = (
                f"{where}: edge_u, edge_v y edge_length_m deben tener la misma longitud; "
                f"se recibieron {edge_u.shape}, {edge_v.shape} y {length.shape}."
            )
            raise NetworkError(msg)
        if len(edge_u) == 0:
            msg = f"{where}: la red no tiene ningún tramo peatonal."
            raise NetworkError(msg)
        if len(np.unique(node_ids)) != n:
            msg = f"{where}: hay identificadores de nodo repetidos."
            raise NetworkError(msg)
        if not np.isfinite(node_xy).all():
            msg = f"{where}: hay coordenadas de nodo no finitas."
            raise NetworkError(msg)
        ends = np.concatenate([edge_u, edge_v])
        if ends.min() < 0 or ends.max() >= n:
            msg = (
                f"{where}: hay tramos que apuntan a nodos inexistentes "
                f"(índices fuera de 0…{n - 1})."
            )
            raise NetworkError(msg)
        if not (np.isfinite(length).all() and (length >= 0).all()):
            msg = f"{where}: hay longitudes de tramo negativas o no finitas."
            raise NetworkError(msg)
        chord = chord_lengths(node_xy, edge_u, edge_v)
        short = length < chord - _CHORD_TOLERANCE_M
        if short.any():
            first = int(np.flatnonzero(short)[0])
            msg = (
                f"{where}: {int(short.sum())} tramos miden menos que la línea recta entre sus "
                f"extremos (p. ej. el tramo {first}: {length[first]:.3f} m frente a "
                f"{chord[first]:.3f} m); las longitudes deben estar en metros en {crs}."
            )
            raise NetworkError(msg)
        length = np.maximum(length, chord)  # rounding within the tolerance: keep the guarantee
        length.setflags(write=False)
        names = _edge_names(self.edge_name, n_edges=len(edge_u), where=where)
        object.__setattr__(self, "crs", crs)
        object.__setattr__(self, "node_ids", node_ids)
        object.__setattr__(self, "node_xy", node_xy)
        object.__setattr__(self, "edge_u", edge_u)
        object.__setattr__(self, "edge_v", edge_v)
        object.__setattr__(self, "edge_length_m", length)
        object.__setattr__(self, "edge_name", names)

    @property
    def n_nodes(self) -> int:
        """Number of nodes."""
        return len(self.node_ids)

    @property
    def n_edges(self) -> int:
        """Number of (undirected) edges."""
        return len(self.edge_u)

    def describe(self) -> str:
        """One line in Spanish: ``red peatonal de palencia_centro.osm (31 nodos, 53 tramos)``."""
        nodes = _count(self.n_nodes, "nodo", "nodos")
        edges = _count(self.n_edges, "tramo", "tramos")
        return f"red peatonal de {self.source} ({nodes}, {edges})"

    @cached_property
    def adjacency(self) -> csr_array:
        """Symmetric ``(n, n)`` CSR matrix of edge lengths (m); parallel edges keep the shortest.

        Explicit zeros (two nodes at the same place) are edges, as scipy's csgraph reads them.
        """
        rows, cols, lengths = self._arcs
        return csr_array((lengths, (rows, cols)), shape=(self.n_nodes, self.n_nodes))

    @cached_property
    def _arcs(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Both directions of every edge, one arc per ordered node pair (the shortest)."""
        rows = np.concatenate([self.edge_u, self.edge_v])
        cols = np.concatenate([self.edge_v, self.edge_u])
        lengths = np.concatenate([self.edge_length_m, self.edge_length_m])
        keep = rows != cols  # a self-loop never shortens a walk
        rows, cols, lengths = rows[keep], cols[keep], lengths[keep]
        order = np.lexsort((lengths, cols, rows))
        rows, cols, lengths = rows[order], cols[order], lengths[order]
        first = np.ones(len(rows), dtype=bool)
        first[1:] = (rows[1:] != rows[:-1]) | (cols[1:] != cols[:-1])
        return rows[first], cols[first], lengths[first]

    @cached_property
    def _tree(self) -> cKDTree:
        return cKDTree(self.node_xy)

    def _with_sources(self, nodes: np.ndarray, offsets_m: np.ndarray) -> csr_array:
        """The graph plus one virtual source per entry, ``n + i → nodes[i]`` of ``offsets_m[i]``.

        The virtual arcs only leave their source, so no path can pass through one: a Dijkstra
        run from virtual source ``n + i`` starts at ``nodes[i]`` already ``offsets_m[i]`` metres
        away (a target's snap distance).
        """
        n, k = self.n_nodes, len(nodes)
        rows, cols, lengths = self._arcs
        rows = np.concatenate([rows, n + np.arange(k, dtype=np.int64)])
        cols = np.concatenate([cols, nodes.astype(np.int64)])
        lengths = np.concatenate([lengths, offsets_m.astype(np.float64)])
        return csr_array((lengths, (rows, cols)), shape=(n + k, n + k))


# --- frames -----------------------------------------------------------------------------------


def network_to_frames(network: WalkingNetwork) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame]:
    """The network as a nodes frame and an edges frame, both in ``network.crs``.

    Returns
    -------
    nodes
        ``node_id`` (int64) and a ``Point`` geometry per node, in the network's node order.
    edges
        ``u_id``, ``v_id`` (int64 node ids, not indices), ``length_m`` (float64, along the real
        geometry), ``name`` (the street name or ``None``; only when the network has names) and
        a straight ``LineString`` between the two nodes, in edge order.
    """
    x, y = network.node_xy[:, 0], network.node_xy[:, 1]
    nodes = gpd.GeoDataFrame(
        {"node_id": np.array(network.node_ids)},
        geometry=gpd.points_from_xy(x, y),
        crs=network.crs,
    )
    coords = np.stack([network.node_xy[network.edge_u], network.node_xy[network.edge_v]], axis=1)
    columns: dict[str, Any] = {
        "u_id": network.node_ids[network.edge_u],
        "v_id": network.node_ids[network.edge_v],
        "length_m": np.array(network.edge_length_m),
    }
    if network.edge_name is not None:
        columns["name"] = pd.Series(network.edge_name, dtype=object)  # None stays None
    edges = gpd.GeoDataFrame(columns, geometry=shapely.linestrings(coords), crs=network.crs)
    return nodes, edges


def street_segments(network: WalkingNetwork) -> gpd.GeoDataFrame:
    """The named edges of the network as straight segments (``u`` → ``v``), in its CRS.

    Columns ``name`` and a ``LineString`` geometry, one row per edge that has a street name, in
    edge order; empty when the network has no names. What
    :func:`geo.core.places.near_places` takes as ``streets``.
    """
    if network.edge_name is None:
        return gpd.GeoDataFrame({"name": []}, geometry=[], crs=network.crs)
    named = np.flatnonzero([name is not None for name in network.edge_name])
    u, v = network.edge_u[named], network.edge_v[named]
    coords = np.stack([network.node_xy[u], network.node_xy[v]], axis=1)
    return gpd.GeoDataFrame(
        {"name": pd.Series(network.edge_name[named], dtype=object)},
        geometry=shapely.linestrings(coords) if len(named) else [],
        crs=network.crs,
    )


def network_from_frames(
    nodes: gpd.GeoDataFrame, edges: gpd.GeoDataFrame, *, source: str
) -> WalkingNetwork:
    """The network described by a nodes frame and an edges frame (see :func:`network_to_frames`).

    Node coordinates come from the nodes' ``Point`` geometries; the edges' geometries are not
    read (``length_m`` is the length). The inverse of :func:`network_to_frames`, exactly.

    Parameters
    ----------
    nodes
        Columns ``node_id`` (unique integers) and ``Point`` geometries, in a metric CRS.
    edges
        Columns ``u_id``, ``v_id`` (ids present in ``nodes``) and ``length_m`` (metres), and
        optionally ``name`` (street names, missing values for none), in the same CRS as
        ``nodes``.
    source
        Where the frames came from, for messages and :meth:`WalkingNetwork.describe`.

    Raises
    ------
    NetworkError
        If a column is missing, the frames lack a CRS or disagree on it, a node geometry is not
        a point, or an edge names an unknown node; or the network itself is invalid.
    """
    for frame, what, columns in (
        (nodes, "nodos", ("node_id",)),
        (edges, "tramos", ("u_id", "v_id", "length_m")),
    ):
        missing = [column for column in columns if column not in frame.columns]
        if missing:
            msg = f"{source}: a la tabla de {what} le faltan las columnas {', '.join(missing)}."
            raise NetworkError(msg)
    if nodes.crs is None or edges.crs is None:
        msg = f"{source}: las tablas de nodos y tramos deben declarar su CRS (métrico)."
        raise NetworkError(msg)
    if not nodes.crs.equals(edges.crs):
        msg = (
            f"{source}: los nodos están en {nodes.crs.to_string()} y los tramos en "
            f"{edges.crs.to_string()}; deben estar en el mismo CRS."
        )
        raise NetworkError(msg)
    geometry = nodes.geometry.to_numpy()
    is_point = shapely.get_type_id(geometry) == shapely.GeometryType.POINT
    if not (is_point & ~shapely.is_empty(geometry)).all():
        msg = f"{source}: todas las geometrías de nodos deben ser puntos no vacíos."
        raise NetworkError(msg)
    try:
        node_ids = _integer_column(nodes["node_id"])
        u_ids = _integer_column(edges["u_id"])
        v_ids = _integer_column(edges["v_id"])
        length = np.asarray(edges["length_m"], dtype=np.float64)
    except (TypeError, ValueError):
        msg = f"{source}: node_id, u_id y v_id deben ser enteros y length_m un número."
        raise NetworkError(msg) from None
    order = np.argsort(node_ids, kind="stable")
    sorted_ids = node_ids[order]
    indices = []
    for ids in (u_ids, v_ids):
        position = np.clip(np.searchsorted(sorted_ids, ids), 0, max(len(sorted_ids) - 1, 0))
        unknown = (sorted_ids[position] != ids) if len(sorted_ids) else np.ones(len(ids), bool)
        if unknown.any():
            msg = (
                f"{source}: hay tramos con nodos que no están en la tabla de nodos "
                f"(p. ej. {ids[unknown][0]})."
            )
            raise NetworkError(msg)
        indices.append(order[position])
    xy = np.column_stack([shapely.get_x(geometry), shapely.get_y(geometry)])
    return WalkingNetwork(
        crs=nodes.crs.to_string(),
        node_ids=node_ids,
        node_xy=xy,
        edge_u=indices[0],
        edge_v=indices[1],
        edge_length_m=length,
        source=source,
        edge_name=edges["name"].to_numpy(dtype=object) if "name" in edges.columns else None,
    )


def _integer_column(values: Iterable[Any]) -> np.ndarray:
    array = np.asarray(values)
    if array.dtype.kind not in "iu":
        msg = "not integers"
        raise TypeError(msg)
    return array.astype(np.int64)


# --- distances --------------------------------------------------------------------------------


def snap(network: WalkingNetwork, xy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The nearest network node to each point, and the straight distance to it.

    Parameters
    ----------
    network
        The walking network.
    xy
        ``(n, 2)`` points in ``network.crs`` (metres).

    Returns
    -------
    node, distance_m
        ``int64`` node indices and ``float64`` distances (m), one per point.
    """
    points = _points(xy, name="xy")
    if len(points) == 0:
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float64)
    distance, node = network._tree.query(points, k=1)
    return np.asarray(node, dtype=np.int64), np.asarray(distance, dtype=np.float64)


def pairs_within(
    network: WalkingNetwork,
    origins_xy: np.ndarray,
    targets_xy: np.ndarray,
    *,
    radius_m: float,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every (origin, target) pair within ``radius_m`` of walking, and its walking distance.

    Walking distance is the origin's snap distance, plus the shortest path between the snapped
    nodes, plus the target's snap distance (see the module docstring). Dijkstra runs from the
    targets, ``chunk_size`` at a time (fewer on very large networks, so that one dense result
    stays under 64 MiB), and stops at ``radius_m``; a target whose snap distance alone exceeds
    ``radius_m`` is skipped.

    Parameters
    ----------
    network
        The walking network.
    origins_xy, targets_xy
        ``(n, 2)`` and ``(k, 2)`` points in ``network.crs`` (metres).
    radius_m
        Largest walking distance kept (m), inclusive; ``inf`` keeps every connected pair.
    chunk_size
        Targets per Dijkstra call; the result does not depend on it.

    Returns
    -------
    origin, target, distance_m
        ``int64`` row indices into ``origins_xy`` and ``targets_xy`` and ``float64`` walking
        distances (m), sorted by origin then target.

    Raises
    ------
    CoordinatesError
        If a point array is not ``(n, 2)`` finite numbers, or ``radius_m`` is negative or NaN.
    """
    origins = _points(origins_xy, name="origins_xy")
    targets = _points(targets_xy, name="targets_xy")
    radius = _bound(radius_m, name="radius_m")
    if not (isinstance(chunk_size, int | np.integer) and chunk_size >= 1):
        msg = f"chunk_size debe ser un entero ≥ 1 (recibido {chunk_size!r})."
        raise CoordinatesError(msg)
    empty = (np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0, np.float64))
    if len(origins) == 0 or len(targets) == 0:
        return empty
    n = network.n_nodes
    target_node, target_snap = snap(network, targets)
    active = np.flatnonzero(target_snap <= radius)
    origin_node, origin_snap = snap(network, origins)
    near = np.flatnonzero(origin_snap <= radius)
    if len(active) == 0 or len(near) == 0:
        return empty
    # origins grouped by node: those at node j are near[by_node[start[j] : start[j] + count[j]]]
    by_node = near[np.argsort(origin_node[near], kind="stable")]
    count = np.bincount(origin_node[near], minlength=n)
    start = np.cumsum(count) - count
    graph = network._with_sources(target_node[active], target_snap[active])
    step = int(max(1, min(chunk_size, _MAX_DISTANCE_CELLS // (n + len(active)))))
    parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    for first in range(0, len(active), step):
        sources = n + np.arange(first, min(first + step, len(active)))
        # distance from each target (virtual source: its snap distance is the first arc)
        reach = dijkstra(graph, directed=True, indices=sources, limit=radius)[:, :n]
        row, node = np.nonzero(np.isfinite(reach))  # Dijkstra leaves inf beyond the limit
        hit = count[node] > 0
        row, node = row[hit], node[hit]
        repeats = count[node]
        row_r, node_r = np.repeat(row, repeats), np.repeat(node, repeats)
        offset = np.arange(len(row_r)) - np.repeat(np.cumsum(repeats) - repeats, repeats)
        origin = by_node[start[node_r] + offset]
        distance = origin_snap[origin] + reach[row_r, node_r]
        keep = distance <= radius
        parts.append((origin[keep], active[first + row_r[keep]], distance[keep]))
    origin = np.concatenate([p[0] for p in parts]).astype(np.int64)
    target = np.concatenate([p[1] for p in parts]).astype(np.int64)
    distance = np.concatenate([p[2] for p in parts]).astype(np.float64)
    order = np.lexsort((target, origin))
    return origin[order], target[order], distance[order]


def nearest_target(
    network: WalkingNetwork,
    origins_xy: np.ndarray,
    targets_xy: np.ndarray,
    *,
    max_distance_m: float = np.inf,
) -> tuple[np.ndarray, np.ndarray]:
    """For each origin, the nearest target by walking distance, and that distance.

    One multi-source Dijkstra run: each target is a virtual source joined to its snapped node
    by an arc as long as its snap distance, so the search is exact (a target farther from its
    node does not win against a nearer one). Of several targets snapped to one node only the
    nearest to it (then the lowest index) can win.

    ``network``, ``origins_xy`` and ``targets_xy`` are as for :func:`pairs_within`; targets
    farther than ``max_distance_m`` of walking are not considered.

    Returns
    -------
    target, distance_m
        ``int64`` index into ``targets_xy`` per origin (−1 when none is within
        ``max_distance_m`` or reachable) and ``float64`` walking distance (m; ``inf`` then).

    Raises
    ------
    CoordinatesError
        If a point array is not ``(n, 2)`` finite numbers, or ``max_distance_m`` is negative or
        NaN.
    """
    origins = _points(origins_xy, name="origins_xy")
    targets = _points(targets_xy, name="targets_xy")
    bound = _bound(max_distance_m, name="max_distance_m")
    none = np.full(len(origins), -1, dtype=np.int64), np.full(len(origins), np.inf)
    if len(origins) == 0 or len(targets) == 0:
        return none
    n = network.n_nodes
    target_node, target_snap = snap(network, targets)
    # per node, the target nearest to it (lowest index on ties)
    order = np.lexsort((np.arange(len(targets)), target_snap, target_node))
    first = np.ones(len(order), dtype=bool)
    first[1:] = target_node[order][1:] != target_node[order][:-1]
    candidate = order[first]
    graph = network._with_sources(target_node[candidate], target_snap[candidate])
    reach, _, source = dijkstra(
        graph,
        directed=True,
        indices=n + np.arange(len(candidate)),
        limit=bound,
        min_only=True,
        return_predecessors=True,
    )
    origin_node, origin_snap = snap(network, origins)
    distance = origin_snap + reach[origin_node]
    found = np.isfinite(distance) & (distance <= bound)
    target = np.full(len(origins), -1, dtype=np.int64)
    target[found] = candidate[source[origin_node[found]] - n]
    return target, np.where(found, distance, np.inf)


# --- helpers ----------------------------------------------------------------------------------


def metric_crs_of(crs: str, *, where: str) -> str:
    """``crs`` as an authority string, after checking it is projected in metres."""
    try:
        parsed = pyproj.CRS.from_user_input(crs)
    except pyproj.exceptions.CRSError:
        msg = (
            f"{where}: CRS desconocido {crs!r}; se necesita un CRS proyectado en metros, "
            "p. ej. EPSG:25830."
        )
        raise NetworkError(msg) from None
    units = {axis.unit_name for axis in parsed.axis_info}
    if not parsed.is_projected or not units <= {"metre", "meter"}:
        msg = (
            f"{where}: {crs} no es un CRS proyectado en metros (¿grados?); las distancias a pie "
            "se miden en metros, p. ej. en EPSG:25830."
        )
        raise NetworkError(msg)
    return str(parsed.to_string())


def _frozen(values: Any, dtype: type[np.generic]) -> np.ndarray:
    array = np.array(values, dtype=dtype)
    array.setflags(write=False)
    return array


def chord_lengths(xy: np.ndarray, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Straight-line length of each edge ``u[i]``–``v[i]`` between the nodes at ``xy``."""
    gap = xy[u] - xy[v]
    return np.hypot(gap[:, 0], gap[:, 1])


def street_name(value: Any) -> str | None:
    """An OSM ``name`` value as one street name, or ``None`` when there is none.

    Text is stripped (empty: ``None``); a missing value (``None``, NaN) is ``None``; a list or
    tuple (osmnx's merged ways) keeps its distinct names in order, joined by ``" / "``.
    """
    if isinstance(value, list | tuple | np.ndarray):
        names = dict.fromkeys(name for name in map(street_name, value) if name is not None)
        return " / ".join(names) or None
    if value is None or (not isinstance(value, str) and bool(pd.isna(value))):
        return None
    text = str(value).strip()
    return text or None


def _edge_names(values: Any, *, n_edges: int, where: str) -> np.ndarray | None:
    """One street name (or ``None``) per edge, read-only; ``None`` when no edge has one."""
    if values is None:
        return None
    raw = list(values) if isinstance(values, Iterable) and not isinstance(values, str) else None
    if raw is None or len(raw) != n_edges:
        got = "un valor" if raw is None else f"{len(raw)}"
        msg = f"{where}: edge_name debe tener un nombre (o None) por tramo ({n_edges}); hay {got}."
        raise NetworkError(msg)
    names = np.empty(n_edges, dtype=object)
    names[:] = [street_name(value) for value in raw]
    if all(name is None for name in names):
        return None
    names.setflags(write=False)
    return names


def _count(n: int, singular: str, plural: str) -> str:
    return f"{n:,} {singular if n == 1 else plural}".replace(",", ".")


def _points(xy: Any, *, name: str) -> np.ndarray:
    try:
        points = np.asarray(xy, dtype=np.float64)
    except (TypeError, ValueError):
        msg = f"{name}: se esperaba una matriz (n, 2) de coordenadas en metros."
        raise CoordinatesError(msg) from None
    if points.size == 0:
        return points.reshape(0, 2)
    if points.ndim != 2 or points.shape[1] != 2:
        msg = (
            f"{name}: se esperaba una matriz (n, 2) de coordenadas en metros; forma {points.shape}."
        )
        raise CoordinatesError(msg)
    if not np.isfinite(points).all():
        msg = f"{name}: hay coordenadas no finitas (NaN o infinitas)."
        raise CoordinatesError(msg)
    return points


def _bound(value: float, *, name: str) -> float:
    bound = float(value)
    if not bound >= 0:
        msg = f"{name} debe ser un número ≥ 0 en metros (recibido {value!r})."
        raise CoordinatesError(msg)
    return bound
