"""Walking networks read from files: OSM XML, OSM PBF and osmnx GraphML → :class:`WalkingNetwork`.

osmnx and pyrosm are imported lazily inside :func:`load_network` (both are slow to import) and
are only ever used on local files: osmnx's cache and its Overpass rate-limit probe are switched
off before use, and pyrosm only reads the ``.osm.pbf`` file it is given (it never downloads).
The network itself, and the distances on it, are the core's (:mod:`geo.core.network`).
"""

from __future__ import annotations

import json
import re
import warnings
import xml.etree.ElementTree as ET
import zlib
from collections.abc import Hashable
from pathlib import Path
from typing import Any

import geopandas as gpd
import networkx as nx
import numpy as np
import pyproj
import shapely
from shapely.errors import ShapelyError

from geo.core.network import WalkingNetwork, chord_lengths, metric_crs_of, street_name
from geo.errors import NetworkError

#: File name endings accepted by :func:`load_network`, and what each one is read as.
OSM_XML_SUFFIXES = (".osm", ".osm.xml")
OSM_PBF_SUFFIXES = (".osm.pbf",)
GRAPHML_SUFFIXES = (".graphml",)
ACCEPTED_FILES = "OSM XML (.osm, .osm.xml), OSM PBF (.osm.pbf) o GraphML de osmnx (.graphml)"

#: osmnx 2.1's "walk" network filter (``osmnx._overpass._get_network_filter("walk")`` with the
#: default ``settings.default_access``): a way is walkable when it has a ``highway`` tag and none
#: of these Overpass ``["key"!~"regex"]`` clauses excludes it (a clause excludes a way whose tag
#: ``key`` is present and its value matches ``regex`` anywhere, case-sensitively).
WALK_EXCLUSIONS: tuple[tuple[str, str], ...] = (
    ("area", "yes"),
    ("access", "private"),
    (
        "highway",
        "abandoned|bus_guideway|construction|cycleway|motor|no|planned|platform|proposed|"
        "raceway|razed|rest_area|services",
    ),
    ("foot", "no"),
    ("service", "private"),
    ("sidewalk", "separate"),
    ("sidewalk:both", "separate"),
    ("sidewalk:left", "separate"),
    ("sidewalk:right", "separate"),
)
_WALK_EXCLUSION_PATTERNS = tuple((key, re.compile(regex)) for key, regex in WALK_EXCLUSIONS)


# --- loading ----------------------------------------------------------------------------------


def load_network(path: Path, *, crs: str) -> WalkingNetwork:
    """Read a walking network from an OSM XML, OSM PBF or GraphML file, in a metric CRS.

    OSM XML (``.osm``, ``.osm.xml``) is read with :func:`osmnx.graph_from_xml`, keeping only the
    ways osmnx's ``"walk"`` network type keeps (:data:`WALK_EXCLUSIONS`; one-way streets are
    walkable both ways), then, as osmnx does for a downloaded network, the largest connected
    component, simplified (interstitial nodes become edge geometry). OSM PBF (``.osm.pbf``,
    which osmnx cannot read) is decoded with pyrosm and then goes through the very same steps:
    the same walk filter on the same tags, both directions of every segment, the largest
    connected component, :func:`osmnx.simplify_graph` (see :func:`_graph_from_osm_pbf`), so an
    extract gives the same network in either format; only a clipped extract (ways cut at its
    edge) is read differently: rejected as OSM XML, cut where the file ends as OSM PBF. GraphML
    (``.graphml``, as written by :func:`osmnx.save_graphml`) is read with
    :func:`osmnx.load_graphml` and taken as a walking network as it is.

    The graph is projected to ``crs`` and made undirected; every edge length is measured again
    along its geometry (the straight segment when it has none) in ``crs``; self-loops, nodes
    left without edges and all but the shortest of parallel edges are dropped. Each edge keeps
    its OSM way's ``name`` (:attr:`WalkingNetwork.edge_name`; ways osmnx merged into one edge
    give their distinct names joined by ``" / "``).

    Parameters
    ----------
    path
        The network file.
    crs
        Projected CRS in metres for the result, e.g. ``"EPSG:25830"``.

    Returns
    -------
    WalkingNetwork
        Nodes sorted by OSM id; ``source`` is the file name.

    Raises
    ------
    NetworkError
        If ``crs`` is unknown or geographic, the file is missing, its extension is not accepted,
        it is not well-formed OSM XML / a readable OSM PBF / GraphML, or it holds no walkable
        edge.
    """
    path = Path(path)
    where = f"{path.name}"
    crs = metric_crs_of(crs, where=where)
    name = path.name.lower()
    if name.endswith(OSM_XML_SUFFIXES):
        reader = _graph_from_osm_xml
    elif name.endswith(OSM_PBF_SUFFIXES):
        reader = _graph_from_osm_pbf
    elif name.endswith(GRAPHML_SUFFIXES):
        reader = _graph_from_graphml
    else:
        msg = f"{path.name}: formato de red peatonal no admitido; se acepta {ACCEPTED_FILES}."
        raise NetworkError(msg)
    if not path.is_file():
        msg = (
            f"{path.name}: no se encuentra el archivo de red peatonal ({path}); "
            f"se acepta {ACCEPTED_FILES}."
        )
        raise NetworkError(msg)
    _osmnx_offline()
    graph = reader(path)
    return _network_from_graph(_project(graph, crs=crs, where=where), crs=crs, source=path.name)


def _osmnx_offline() -> None:
    """Make sure osmnx never touches the network (nor writes a cache) while reading files."""
    import osmnx as ox

    ox.settings.use_cache = False
    if hasattr(ox.settings, "overpass_rate_limit"):
        ox.settings.overpass_rate_limit = False


def _is_walkable(tags: dict[str, str]) -> bool:
    """Whether a way with these OSM tags belongs to osmnx's ``"walk"`` network."""
    if "highway" not in tags:
        return False
    return not any(
        key in tags and pattern.search(tags[key]) for key, pattern in _WALK_EXCLUSION_PATTERNS
    )


def _walkable_way_ids(path: Path) -> set[int]:
    """Ids of the walkable ways of an OSM XML file, after checking the file is usable.

    Raises
    ------
    NetworkError
        If the XML is malformed, the root is not ``<osm>``, a node has no valid ``lat``/``lon``,
        an id is not an integer, a walkable way uses a node the file does not hold, or no way is
        walkable.
    """
    node_ids: set[int] = set()
    walkable: dict[int, list[int]] = {}
    root: str | None = None
    try:
        with path.open("rb") as stream:
            for event, element in ET.iterparse(stream, events=("start", "end")):
                if event == "start":
                    if root is None:  # the first element to start is the root
                        root = element.tag
                        if root != "osm":
                            msg = (
                                f"{path.name}: no es un archivo OSM XML (el elemento raíz es "
                                f"<{root}>, se esperaba <osm>); se acepta {ACCEPTED_FILES}."
                            )
                            raise NetworkError(msg)
                elif element.tag == "node":
                    node_ids.add(_osm_node(element, file=path.name))
                    element.clear()
                elif element.tag == "way":
                    _add_if_walkable(walkable, element, file=path.name)
                    element.clear()
                elif element.tag == "relation":
                    element.clear()
    except ET.ParseError as exc:
        line, column = exc.position
        msg = (
            f"{path.name}, línea {line}, columna {column}: XML mal formado; "
            f"se acepta {ACCEPTED_FILES}."
        )
        raise NetworkError(msg) from None
    if not walkable:
        msg = (
            f"{path.name}: no contiene ningún camino peatonal (vías con etiqueta highway que el "
            "filtro «walk» de osmnx admite); se acepta un extracto OSM XML de calles."
        )
        raise NetworkError(msg)
    for way_id, refs in walkable.items():
        missing = [ref for ref in refs if ref not in node_ids]
        if missing:
            msg = (
                f"{path.name}: el camino {way_id} usa el nodo {missing[0]}, que no está en el "
                "archivo (¿extracto recortado?); exporte el extracto con los caminos completos."
            )
            raise NetworkError(msg)
    return set(walkable)


def _add_if_walkable(walkable: dict[int, list[int]], way: ET.Element, *, file: str) -> None:
    way_id = _osm_id(way, what="camino", file=file)
    tags = {tag.get("k", ""): tag.get("v", "") for tag in way.iter("tag")}
    if _is_walkable(tags):
        walkable[way_id] = [_osm_ref(nd, way_id=way_id, file=file) for nd in way.iter("nd")]


def _osm_id(element: ET.Element, *, what: str, file: str) -> int:
    raw = element.get("id")
    try:
        return int(raw)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        msg = f"{file}: un {what} tiene un id que no es un entero ({raw!r})."
        raise NetworkError(msg) from None


def _osm_node(element: ET.Element, *, file: str) -> int:
    node_id = _osm_id(element, what="nodo", file=file)
    try:
        lat, lon = float(element.get("lat", "")), float(element.get("lon", ""))
    except ValueError:
        lat = lon = np.nan
    if not (-90.0 <= lat <= 90.0 and -180.0 <= lon <= 180.0):
        msg = (
            f"{file}: el nodo {node_id} no tiene lat/lon válidos "
            f"({element.get('lat')!r}, {element.get('lon')!r}); se esperan grados WGS84."
        )
        raise NetworkError(msg)
    return node_id


def _osm_ref(nd: ET.Element, *, way_id: int, file: str) -> int:
    raw = nd.get("ref")
    try:
        return int(raw)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        msg = f"{file}: el camino {way_id} tiene una referencia de nodo no entera ({raw!r})."
        raise NetworkError(msg) from None


def _graph_from_osm_xml(path: Path) -> nx.MultiDiGraph:
    """The walkable, largest-component, simplified osmnx graph of an OSM XML file (EPSG:4326)."""
    import osmnx as ox

    walkable = _walkable_way_ids(path)
    # Every way of the file becomes edges (buildings too): filter before keeping the largest
    # component and simplifying, in the order osmnx follows for a downloaded network.
    try:
        graph = ox.graph_from_xml(path, bidirectional=True, simplify=False, retain_all=True)
    except (ValueError, ET.ParseError) as exc:  # already checked above; kept as a safety net
        msg = f"{path.name}: osmnx no puede leer el archivo ({exc}); se acepta {ACCEPTED_FILES}."
        raise NetworkError(msg) from None
    unwalkable = [
        (u, v, k)
        for u, v, k, osmid in graph.edges(keys=True, data="osmid")
        if osmid not in walkable
    ]
    graph.remove_edges_from(unwalkable)
    return _largest_simplified(graph, file=path.name)


def _largest_simplified(graph: nx.MultiDiGraph, *, file: str) -> nx.MultiDiGraph:
    """The largest (weakly) connected component of a walkable graph, simplified by osmnx.

    The last steps shared by the OSM XML and OSM PBF readers, in the order osmnx follows for a
    downloaded network: nodes left without edges go, then every component but the largest,
    then interstitial (degree-2) nodes become edge geometry.
    """
    import osmnx as ox

    graph.remove_nodes_from([node for node, degree in graph.degree() if degree == 0])
    if graph.number_of_edges() == 0:  # e.g. walkable ways of a single node
        msg = f"{file}: los caminos peatonales del archivo no forman ningún tramo."
        raise NetworkError(msg)
    graph = ox.truncate.largest_component(graph, strongly=False)
    return ox.simplify_graph(graph)


def _graph_from_osm_pbf(path: Path) -> nx.MultiDiGraph:
    """The walkable, largest-component, simplified graph of an OSM PBF file (EPSG:4326).

    pyrosm decodes the file (``get_network(nodes=True)``: one row per segment between two
    consecutive nodes of a way, ``u``/``v`` OSM node ids, the way's OSM id in ``id`` and its
    ``name``, and the nodes with their lon/lat). It reads the ``"all"`` network type, every
    way tagged ``highway`` except areas and highways that do not exist (yet): a subset of what
    :data:`WALK_EXCLUSIONS` excludes anyway. The walk filter applied next is this module's,
    the one the OSM XML reader applies (:func:`_is_walkable`), not pyrosm's ``"walking"``
    type, which differs from osmnx on access tags: it drops ``access=no`` ways that osmnx's
    ``"walk"`` keeps (unless ``foot`` allows them) and keeps ``access=private`` + ``foot=yes``
    ways that osmnx drops.

    Unlike the OSM XML reader, which rejects a way that uses a node missing from the file, a
    way cut by the edge of a clipped extract (a bounding-box extract such as pyrosm's Helsinki
    sample) is kept in pieces: pyrosm only gives the segments between consecutive nodes of the
    way that are both in the file, so no segment jumps over a missing node, and the walk simply
    ends where the extract does.

    The graph is then built as :func:`osmnx.graph_from_xml` builds it (both directions of every
    segment, ``osmid`` on each edge, ``x``/``y`` in lon/lat on each node) and shares the XML
    reader's last steps (:func:`_largest_simplified`): largest connected component, then
    :func:`osmnx.simplify_graph`. pyrosm's own graph export (``OSM.to_graph``) gives the same
    topology, but simplifies with its own rules unless told otherwise and warns when a
    ``oneway`` column is missing; building the few attributes osmnx needs here is simpler.

    pyrosm's ``"in_memory"`` engine is used: on a city or province extract it is several
    times faster than the default out-of-core engine, and it writes nothing to disk (the
    out-of-core engine spills to a temporary folder and, when pyarrow is installed, keeps a
    result cache there).

    Raises
    ------
    NetworkError
        If the file is not a readable OSM PBF (not PBF, damaged or cut short) or no way is
        walkable.
    """
    import pyrosm
    from google.protobuf.message import DecodeError
    from pyrosm.exceptions import PBFException

    try:
        with warnings.catch_warnings():
            # pyrosm warns (UserWarning) and returns None when no way of the file has a highway
            # tag; that case is reported below as a NetworkError, so its warning is not needed.
            warnings.filterwarnings(
                "ignore", message="Could not find any edges", category=UserWarning
            )
            osm = pyrosm.OSM(str(path), engine="in_memory", keep_metadata=False, progress=False)
            frames = osm.get_network(network_type="all", nodes=True)
    except (PBFException, DecodeError, zlib.error):
        # PBFException: not a PBF or a damaged block; DecodeError: a file cut short.
        msg = (
            f"{path.name}: no es un archivo OSM PBF válido (¿dañado o incompleto?); "
            f"se acepta {ACCEPTED_FILES}."
        )
        raise NetworkError(msg) from None
    nodes, edges = (None, None) if frames is None else frames
    walkable = set() if edges is None else _walkable_pbf_way_ids(edges)
    if nodes is None or edges is None or not walkable:
        msg = (
            f"{path.name}: no contiene ningún camino peatonal (vías con etiqueta highway que el "
            "filtro «walk» de osmnx admite); se acepta un extracto OSM PBF de calles."
        )
        raise NetworkError(msg)
    edges = edges[edges["id"].isin(walkable)]
    u = edges["u"].to_numpy(dtype=np.int64)
    v = edges["v"].to_numpy(dtype=np.int64)
    way = edges["id"].to_numpy(dtype=np.int64)
    names = [street_name(name) for name in _pbf_column(edges, "name")]
    node_ids = nodes["id"].to_numpy(dtype=np.int64)
    used = np.unique(np.concatenate([u, v]))
    missing = np.setdiff1d(used, node_ids)
    if len(missing):  # pyrosm gives no such segment (see above): a safety net
        msg = f"{path.name}: hay tramos con un nodo sin coordenadas ({int(missing[0])})."
        raise NetworkError(msg)
    keep = np.isin(node_ids, used)
    geometry = nodes.geometry.to_numpy()[keep]
    graph = nx.MultiDiGraph(crs="EPSG:4326")  # pyrosm gives lon/lat (WGS84)
    graph.add_nodes_from(
        (int(node), {"x": float(x), "y": float(y)})
        for node, x, y in zip(
            node_ids[keep], shapely.get_x(geometry), shapely.get_y(geometry), strict=True
        )
    )
    for a, b in ((u, v), (v, u)):  # walkable both ways, as graph_from_xml(bidirectional=True)
        graph.add_edges_from(
            (int(x), int(y), {"osmid": int(w)} if name is None else {"osmid": int(w), "name": name})
            for x, y, w, name in zip(a, b, way, names, strict=True)
        )
    return _largest_simplified(graph, file=path.name)


def _walkable_pbf_way_ids(edges: gpd.GeoDataFrame) -> set[int]:
    """OSM ids of the ways of pyrosm's network frame that :func:`_is_walkable` keeps.

    pyrosm puts common tags in columns (empty: NaN) and the rest in a JSON ``tags`` column;
    both are read, the columns first.
    """
    keys = ("highway", *dict.fromkeys(key for key, _ in WALK_EXCLUSIONS))
    ways = edges.drop_duplicates("id")
    columns = [key for key in keys if key in ways.columns]
    packed = ways["tags"] if "tags" in ways.columns else [None] * len(ways)
    walkable: set[int] = set()
    for way_id, extra, *values in zip(
        ways["id"], packed, *(ways[column] for column in columns), strict=True
    ):
        tags = _packed_tags(extra, keys)
        tags.update(
            (key, value)
            for key, value in zip(columns, values, strict=True)
            if isinstance(value, str)
        )
        if _is_walkable(tags):
            walkable.add(int(way_id))
    return walkable


def _pbf_column(edges: gpd.GeoDataFrame, key: str) -> list[Any]:
    """One tag of every row of pyrosm's network frame: its column, else its packed ``tags``."""
    column = edges[key].tolist() if key in edges.columns else [None] * len(edges)
    packed = edges["tags"].tolist() if "tags" in edges.columns else [None] * len(edges)
    return [
        value if isinstance(value, str) else _packed_tags(extra, (key,)).get(key)
        for value, extra in zip(column, packed, strict=True)
    ]


def _packed_tags(extra: Any, keys: tuple[str, ...]) -> dict[str, str]:
    """The ``keys`` of pyrosm's ``tags`` value (a JSON object as text, or a dict), as text."""
    if isinstance(extra, str):
        try:
            extra = json.loads(extra)
        except ValueError:
            return {}
    if not isinstance(extra, dict):
        return {}
    return {key: str(extra[key]) for key in keys if extra.get(key) is not None}


def _graph_from_graphml(path: Path) -> nx.MultiDiGraph:
    """An osmnx GraphML file as a MultiDiGraph, node ids as strings, with its CRS checked."""
    import osmnx as ox

    try:
        # Node ids are read as text: a GraphML file not written by osmnx may have ids like
        # "n0"; they are turned into integers (or 0 … n−1) afterwards.
        graph = ox.load_graphml(path, node_dtypes={"osmid": str})
    except (ET.ParseError, nx.NetworkXError, ValueError, SyntaxError, ShapelyError) as exc:
        msg = f"{path.name}: no es un GraphML válido ({exc}); se acepta {ACCEPTED_FILES}."
        raise NetworkError(msg) from None
    except (AttributeError, TypeError):
        # osmnx expects every attribute as text, as osmnx.save_graphml writes it; a GraphML with
        # typed attributes (e.g. written by networkx) fails inside its converters.
        msg = (
            f"{path.name}: no es un GraphML de osmnx (atributos con tipo en lugar de texto); "
            "guárdelo con osmnx.save_graphml."
        )
        raise NetworkError(msg) from None
    if "crs" not in graph.graph:
        msg = (
            f'{path.name}: el GraphML no declara su CRS (atributo de grafo "crs"); '
            "guárdelo con osmnx.save_graphml."
        )
        raise NetworkError(msg)
    bad = [
        node
        for node, data in graph.nodes(data=True)
        if not all(isinstance(data.get(axis), float) for axis in ("x", "y"))
    ]
    if bad:
        msg = (
            f"{path.name}: {len(bad)} nodos no tienen coordenadas x/y numéricas "
            f"(p. ej. el nodo {bad[0]!r})."
        )
        raise NetworkError(msg)
    if graph.number_of_edges() == 0:
        msg = f"{path.name}: el GraphML no tiene ningún tramo."
        raise NetworkError(msg)
    if not graph.is_directed():
        graph = nx.MultiDiGraph(graph)
    return graph


def _project(graph: nx.MultiDiGraph, *, crs: str, where: str) -> nx.MultiDiGraph:
    import osmnx as ox

    try:
        return ox.project_graph(graph, to_crs=crs)
    except pyproj.exceptions.CRSError as exc:
        msg = f"{where}: el CRS del archivo no es válido ({exc})."
        raise NetworkError(msg) from None


def _network_from_graph(graph: nx.MultiDiGraph, *, crs: str, source: str) -> WalkingNetwork:
    """Arrays of a projected graph: undirected, lengths along geometry, nodes sorted by id."""
    keys: list[Hashable] = list(graph.nodes)
    ids = _integer_ids(keys)
    index = {key: i for i, key in enumerate(keys)}
    xy = np.array([(graph.nodes[key]["x"], graph.nodes[key]["y"]) for key in keys], dtype=float)
    if not np.isfinite(xy).all():
        msg = f"{source}: hay nodos que no se pueden proyectar a {crs} (¿fuera de su zona?)."
        raise NetworkError(msg)
    triples = list(graph.edges(data=True))
    u = np.fromiter((index[a] for a, _, _ in triples), dtype=np.int64, count=len(triples))
    v = np.fromiter((index[b] for _, b, _ in triples), dtype=np.int64, count=len(triples))
    geometry = np.empty(len(triples), dtype=object)  # None where an edge has no geometry
    geometry[:] = [data.get("geometry") for _, _, data in triples]
    names = np.empty(len(triples), dtype=object)  # the OSM way's name; None where it has none
    names[:] = [street_name(data.get("name")) for _, _, data in triples]
    keep = u != v
    u, v, geometry, names = u[keep], v[keep], geometry[keep], names[keep]
    # along the geometry when there is one; never shorter than the chord (exact triangle bound)
    length = np.fmax(shapely.length(geometry), chord_lengths(xy, u, v))
    a, b = np.minimum(u, v), np.maximum(u, v)
    order = np.lexsort((length, b, a))
    a, b, length, names = a[order], b[order], length[order], names[order]
    first = np.ones(len(a), dtype=bool)
    first[1:] = (a[1:] != a[:-1]) | (b[1:] != b[:-1])
    a, b, length, names = a[first], b[first], length[first], names[first]  # the kept edge's name
    if len(a) == 0:
        msg = f"{source}: la red no tiene ningún tramo peatonal (solo bucles sobre un nodo)."
        raise NetworkError(msg)
    used = np.zeros(len(keys), dtype=bool)
    used[a] = used[b] = True
    by_id = np.argsort(ids, kind="stable")
    by_id = by_id[used[by_id]]
    new_index = np.full(len(keys), -1, dtype=np.int64)
    new_index[by_id] = np.arange(len(by_id))
    a, b = new_index[a], new_index[b]
    a, b = np.minimum(a, b), np.maximum(a, b)
    order = np.lexsort((b, a))
    return WalkingNetwork(
        crs=crs,
        node_ids=ids[by_id],
        node_xy=xy[by_id],
        edge_u=a[order],
        edge_v=b[order],
        edge_length_m=length[order],
        source=source,
        edge_name=names[order],
    )


def _integer_ids(keys: list[Hashable]) -> np.ndarray:
    """Node keys as int64 OSM ids, or ``0 … n−1`` when they are not all integers."""
    try:
        ids = np.array([int(key) for key in keys], dtype=np.int64)  # type: ignore[call-overload]
    except (TypeError, ValueError, OverflowError):
        return np.arange(len(keys), dtype=np.int64)
    if len(np.unique(ids)) != len(ids):
        return np.arange(len(keys), dtype=np.int64)
    return ids
