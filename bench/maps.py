"""Citizens' map load time in headless Chromium, up to 50,000 devices, against naive folium.

The citizens' map (``/``) against the naive folium page a folium user would write for the same
devices.

Run on demand, from the repository root (needs the Debian ``chromium`` package at
``/usr/bin/chromium`` and the ``playwright`` Python package of the venv; never downloads a
browser, never reaches the internet)::

    .venv/bin/python bench/maps.py                  # sample, 5,000, 50,000 × both backends
    .venv/bin/python bench/maps.py --quick          # sample and 5,000, SpatiaLite only, 2 rounds
    .venv/bin/python bench/maps.py --backends spatialite --sizes 50000 --profile

For each size (the ``data/`` sample, then ``bench/api.py``'s synthetic devices: verified, active,
fixed, public, ``source: synthetic``, seed 2026) and each backend (a SpatiaLite file in a
temporary directory, a throwaway PostGIS database), it loads the layers with ``cardiomapa load
--replace``, starts the product's own server (``cardiomapa serve``, default settings but no
basemap: ``CARDIOMAPA_TILE_URL=""``, so no tile request leaves the machine) and warms it: one
``GET /api/nearest`` (reads the devices, builds the finder) and one ``GET /`` (renders the page,
which the server then keeps for the rest of the minute). Each round then opens a fresh browser
context (nothing cached), goes to ``/`` and waits for ``body[data-cm-ready]``, which
``cardiomapa.js`` sets once the cluster group holds every marker; the **load time** is the
``cardiomapa-ready`` performance mark (ms since navigation start). In the same page it then
times a **zoom** in by two levels (``setZoom`` until the map's ``zoomend`` and the cluster
group's ``animationend``) and one **nearest** lookup (``cardiomapa.lookup`` at the city centre,
a ``GET /api/nearest``, until ``#cm-results`` lists devices). The median of ``--rounds`` rounds
is printed; a round during which other processes used more than ``--max-other-cpu`` CPUs, or
during which the minute changed (the server would have rendered the page again), is redone,
3 tries at most. Any console error, page error, failed request or request to another host, and any
wrong count (markers in the cluster group, the legend's open + closed + unknown, the devices
listed) makes the script exit with status 1.

The **peer** is the naive folium page for the same listed devices: ``folium.Map`` fitted to the
same extent, a ``folium.plugins.MarkerCluster`` with one ``folium.Marker`` per device and a
tooltip (name and hours), rendered by folium and served by a small ``http.server`` with the same
vendored Leaflet and markercluster files. Its load time runs to the ``load`` event (folium adds
every marker synchronously in the page's inline script: see :func:`_folium_page`).

Each line prints sizes and times, and two ratios: load / the sample's load (same backend) and
ours / folium at the same size (< 1: ours faster). Nothing here asserts on time; the issue's
target (50,000 devices load in < 3 s) is stated as met or not at the end. See
``bench/README.md`` for the figures measured and where the time goes.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import datetime as dt
import functools
import http.server
import importlib.util
import json
import multiprocessing
import os
import platform
import queue
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from types import ModuleType
from typing import Any
from zoneinfo import ZoneInfo

from common import git_describe, machine_line, ratio
from playwright.sync_api import (
    Browser,
    ConsoleMessage,
    Page,
    Playwright,
    ViewportSize,
    sync_playwright,
)
from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import Request as BrowserRequest
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

from geo.city import CityProfile, load_city_profile

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
DATA_DIR = ROOT / "data"
STATIC_DIR = ROOT / "geo" / "render" / "static"


def _bench_api() -> ModuleType:
    """``bench/api.py``, for its data generator, its loader and its PostGIS databases.

    Loaded from its file under another name: ``import api`` would mean the project's ``api``
    package anywhere but in this folder.
    """
    spec = importlib.util.spec_from_file_location("bench_api", BENCH_DIR / "api.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_api"] = module
    spec.loader.exec_module(module)
    return module


bench_api = _bench_api()

#: The CLI of the venv this script runs in.
CARDIOMAPA = Path(sys.executable).parent / "cardiomapa"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--no-first-run",
]  # fmt: skip
VIEWPORT: ViewportSize = {"width": 1280, "height": 800}
BACKENDS = ("spatialite", "postgis")
SIZES = ("sample", "5000", "50000")
SEED: int = bench_api.SEED
#: Issue target: the citizens' map with this many devices loads in under this many ms.
TARGET_DEVICES = 50_000
TARGET_MS = 3_000.0
OURS_MARK = "cardiomapa-ready"
PEER_MARK = "folium-ready"
#: Leaflet's default for OpenStreetMap tiles: the folium peer would get it from its tile layer.
PEER_MAX_ZOOM = 19
PAGE_TIMEOUT_S = 120.0
MB = 1e6

# --- JavaScript run in the page (through CDP: the page's CSP, which forbids eval, allows it) ----

#: Finds the folium map (the only global named ``map_<hex>``) and its marker-cluster group.
_FIND = """
  const names = Object.keys(window).filter((k) => k.startsWith("map_"));
  if (names.length !== 1) throw new Error(`expected one map_ global, found ${names.length}`);
  const map = window[names[0]];
  const cluster = Object.values(map._layers).find((l) => l instanceof L.MarkerClusterGroup);
  if (!cluster) throw new Error("no marker-cluster group on the map");
"""

TIMINGS_JS = """(mark) => {
  const nav = performance.getEntriesByType("navigation")[0];
  const entry = performance.getEntriesByName(mark)[0];
  return {
    ready: entry ? entry.startTime : null,
    request_start: nav.requestStart,
    response_start: nav.responseStart,
    response_end: nav.responseEnd,
    dom_interactive: nav.domInteractive,
    dom_content_loaded: nav.domContentLoadedEventEnd,
    load: nav.loadEventEnd,
    html_bytes: nav.decodedBodySize,
    heap_bytes: performance.memory ? performance.memory.usedJSHeapSize : 0,
  };
}"""

COUNTS_JS = (
    """() => {"""
    + _FIND
    + """
  const legend = Array.from(
    document.querySelectorAll("#cm-legend .cm-count"),
    (node) => Number(node.textContent.replace(/[^0-9]/g, ""))
  );
  const ready = document.body.dataset.cmReady;
  return {
    markers: cluster.getLayers().length,
    legend,
    listed: ready === undefined ? null : Number(ready),
  };
}"""
)

#: Waits (untimed) until no zoom animation runs, then times ``setZoom(+2)`` to the map's
#: ``zoomend`` and the cluster group's ``animationend`` (it splits clusters after the zoom).
ZOOM_JS = (
    """async () => {"""
    + _FIND
    + """
  const frame = () => new Promise((resolve) => requestAnimationFrame(() => resolve()));
  while (map._animatingZoom || cluster._inZoomAnimation) await frame();
  await frame();
  const before = map.getZoom();
  return await new Promise((resolve, reject) => {
    let zoomed = false;
    let split = false;
    const timer = setTimeout(() => reject(new Error("the zoom did not end within 60 s")), 60000);
    const start = performance.now();
    const check = () => {
      if (!zoomed || !split) return;
      clearTimeout(timer);
      resolve({ ms: performance.now() - start, before, after: map.getZoom() });
    };
    map.once("zoomend", () => { zoomed = true; check(); });
    cluster.once("animationend", () => { split = true; check(); });
    map.setZoom(before + 2);
  });
}"""
)

#: ``cardiomapa.lookup`` resolves once ``#cm-results`` holds the answer (``GET /api/nearest``).
NEAREST_JS = """async ([lat, lon]) => {
  const start = performance.now();
  await cardiomapa.lookup(lat, lon);
  const ms = performance.now() - start;
  const fetched = performance
    .getEntriesByType("resource")
    .filter((r) => r.name.includes("/api/nearest?") && r.startTime >= start);
  return {
    ms,
    fetch_ms: fetched.length ? fetched[fetched.length - 1].duration : null,
    items: document.querySelectorAll("#cm-results li").length,
  };
}"""


# --- data ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Dataset:
    """One size: a folder of layer files and the devices the citizens' map lists from it."""

    name: str
    data_dir: Path
    total: int  # devices in the layer
    listed: int  # verified, active, fixed: what the map shows (geo.core.nearest.DeviceFinder)
    what: str


def _listed(feature: dict[str, Any]) -> bool:
    """The citizens' map lists verified, active, fixed devices (``DeviceFinder``'s filter)."""
    p = feature["properties"]
    return p["verification"] == "verified" and p["status"] == "active" and not p["is_mobile"]


def dataset(size: str, city: CityProfile, work: Path) -> Dataset:
    if size == "sample":
        data_dir, what = DATA_DIR, "data/ sample"
    else:
        n = int(size)
        data_dir = bench_api.synthetic_data_dir(city, work / f"data-{n}", n=n, seed=SEED)
        what = f"{n:,} synthetic verified devices (bench/api.py, seed {SEED})"
    features = json.loads((data_dir / "defibrillators.geojson").read_text())["features"]
    listed = sum(_listed(f) for f in features)
    return Dataset(size, data_dir, len(features), listed, what)


# --- our server -----------------------------------------------------------------------------------


@contextlib.contextmanager
def serve(database_url: str, *, log: Path) -> Iterator[str]:
    """``cardiomapa serve`` (as ``bench/api.py`` runs it) without a basemap, so nothing leaves
    the machine; yields its base URL."""
    with bench_api.serve(
        database_url, cpu=None, log=log, settings={"CARDIOMAPA_TILE_URL": ""},
        timeout_s=PAGE_TIMEOUT_S,
    ) as server:  # fmt: skip
        yield server.base


def timed_get(url: str) -> tuple[float, bytes]:
    """GET ``url``: wall-clock seconds and the body (an error status raises)."""
    start = time.perf_counter()
    try:
        with urllib.request.urlopen(url, timeout=PAGE_TIMEOUT_S) as answer:
            body = answer.read()
    except urllib.error.HTTPError as exc:
        msg = f"GET {url} answered {exc.code}: {exc.read()[:500]!r}"
        raise RuntimeError(msg) from None
    return time.perf_counter() - start, body


#: The instant the page's device states are for (the first ``"at"`` of its ``cm-data``).
_PAGE_AT = re.compile(rb'id="cm-data">\{"city":"[^"]*","timezone":"[^"]*","at":"([^"]+)"')


def current_page(base: str, *, timeout_s: float = 30.0) -> float:
    """GET / until the server answers with this minute's page; seconds spent.

    The server renders the page again in the background when the minute changes and serves the
    previous one meanwhile: a round started on that would load while the server renders.
    """
    start = time.perf_counter()
    while True:
        _seconds, body = timed_get(base + "/")
        found = _PAGE_AT.search(body)
        if found is None:
            msg = "GET / has no device data (cm-data) to date"
            raise RuntimeError(msg)
        at = dt.datetime.fromisoformat(found.group(1).decode())
        if at == dt.datetime.now(at.tzinfo).replace(second=0, microsecond=0):
            return time.perf_counter() - start
        if time.perf_counter() - start > timeout_s:
            msg = f"the server still serves the page of {at:%H:%M} after {timeout_s:g} s"
            raise RuntimeError(msg)
        time.sleep(0.1)


# --- the folium peer ------------------------------------------------------------------------------


def _folium_page(data_dir: str, target: str, results: Any) -> None:
    """Write the naive folium page for the devices listed in ``data_dir`` to ``target``.

    Run in a child process (so a slow render can be stopped); puts the seconds folium took into
    ``results``. The page is what a folium user would write, with three changes so that it works
    offline and without errors: the Map's and the MarkerCluster's ``default_js`` /
    ``default_css`` (instance attributes) point at the vendored Leaflet and markercluster
    instead of CDNs (jQuery, Bootstrap and the other folium defaults are left out: nothing here
    uses them); a **tooltip** instead of a ``folium.Popup``, whose template calls jQuery's
    ``$(…)``, which is not vendored (a popup would cost more: one HTML fragment parsed per marker
    at load); and the map's ``maxZoom`` set to 19, which folium gives to tile layers only (the
    peer has none) and without which markercluster throws "Map has no maxZoom specified".

    folium 0.20 writes one ``L.marker(…).addTo(cluster)`` per device while the cluster is not
    yet on the map (markercluster only queues them), then ``cluster.addTo(map)``, which clusters
    them all at once, synchronously, without ``chunkedLoading``; so when the inline script ends
    every marker is on the map, and the ``load`` event (which waits for that script) is a fair
    end point. A ``folium-ready`` mark written after the script (and before ``load``) confirms it.
    """
    import folium  # here: only the child process needs folium
    import geopandas as gpd
    from folium.plugins import MarkerCluster

    start = time.perf_counter()
    folder = Path(data_dir)
    features = json.loads((folder / "defibrillators.geojson").read_text())["features"]
    minx, miny, maxx, maxy = gpd.read_file(folder / "ceas.geojson").to_crs(4326).total_bounds
    fmap = folium.Map(location=[(miny + maxy) / 2, (minx + maxx) / 2], zoom_start=13, tiles=None)
    fmap.options["maxZoom"] = PEER_MAX_ZOOM
    fmap.default_js = [("leaflet", "/static/vendor/leaflet/leaflet.js")]
    fmap.default_css = [("leaflet_css", "/static/vendor/leaflet/leaflet.css")]
    cluster = MarkerCluster(name="Desfibriladores")
    vendor = "/static/vendor/leaflet.markercluster"
    cluster.default_js = [("markerclusterjs", f"{vendor}/leaflet.markercluster.js")]
    cluster.default_css = [
        ("markerclustercss", f"{vendor}/MarkerCluster.css"),
        ("markerclusterdefaultcss", f"{vendor}/MarkerCluster.Default.css"),
    ]
    cluster.add_to(fmap)
    for feature in features:
        if not _listed(feature):
            continue
        lon, lat = feature["geometry"]["coordinates"]
        p = feature["properties"]
        tooltip = f"{p['name']} — {p['opening_hours'] or 'horario desconocido'}"
        folium.Marker([lat, lon], tooltip=tooltip).add_to(cluster)
    fmap.fit_bounds([[miny, minx], [maxy, maxx]])
    html = fmap.get_root().render()
    marked = f'<script>performance.mark("{PEER_MARK}");</script>\n</html>'
    head, tail = html.rsplit("</html>", 1)
    Path(target).write_text(head + marked + tail, encoding="utf-8")
    results.put(time.perf_counter() - start)


def build_peer(data: Dataset, target: Path, *, timeout_s: float) -> float | None:
    """Render the folium page in a child process; its seconds, or ``None`` past ``timeout_s``."""
    context = multiprocessing.get_context("spawn")  # no fork of a process running Playwright
    results = context.Queue()
    child = context.Process(target=_folium_page, args=(str(data.data_dir), str(target), results))
    child.start()
    child.join(timeout_s)
    if child.is_alive():
        child.terminate()
        child.join()
        return None
    if child.exitcode != 0:
        msg = f"rendering the folium page failed (exit code {child.exitcode})"
        raise RuntimeError(msg)
    try:
        return float(results.get(timeout=5))
    except queue.Empty:
        msg = "rendering the folium page gave no result"
        raise RuntimeError(msg) from None


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    """Serves a folder without logging; ``/favicon.ico`` is 204 (Chromium asks for it)."""

    def do_GET(self) -> None:
        if self.path == "/favicon.ico":
            self.send_response(204)
            self.end_headers()
            return
        super().do_GET()

    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextlib.contextmanager
def static_server(folder: Path) -> Iterator[str]:
    """Serve ``folder`` over HTTP (the folium page; ``static`` links to ``geo/render/static``)."""
    link = folder / "static"
    if not link.exists():
        link.symlink_to(STATIC_DIR, target_is_directory=True)
    handler = functools.partial(_QuietHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


# --- the browser ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Round:
    """One page load in a fresh browser context (times in ms since navigation start)."""

    load_ms: float
    zoom_ms: float
    nearest_ms: float | None
    fetch_ms: float | None  # of nearest_ms: the GET /api/nearest (resource timing)
    html_bytes: int
    heap_bytes: int
    timings: dict[str, float]
    counts: dict[str, Any]


@dataclass
class Case:
    """Every round of one page (ours on one backend, or the folium peer) at one size."""

    size: str
    who: str  # spatialite / postgis / folium
    listed: int
    max_other_cpu: float
    rounds: list[Round] = field(default_factory=list)
    others: list[float] = field(default_factory=list)  # other processes' CPUs in each round
    failed: int = 0  # rounds whose page broke (see problems)
    redone: int = 0  # rounds redone: a busy machine, or the minute changed
    problems: list[str] = field(default_factory=list)
    server_s: dict[str, float] = field(default_factory=dict)
    note: str = ""

    @property
    def median_round(self) -> Round:
        ordered = sorted(self.rounds, key=lambda r: r.load_ms)
        return ordered[(len(ordered) - 1) // 2]

    @property
    def load_ms(self) -> float:
        return statistics.median(r.load_ms for r in self.rounds)

    @property
    def zoom_ms(self) -> float:
        return statistics.median(r.zoom_ms for r in self.rounds)

    @property
    def nearest_ms(self) -> float | None:
        values = [r.nearest_ms for r in self.rounds if r.nearest_ms is not None]
        return statistics.median(values) if values else None

    @property
    def fetch_ms(self) -> float | None:
        values = [r.fetch_ms for r in self.rounds if r.fetch_ms is not None]
        return statistics.median(values) if values else None


def launch(p: Playwright) -> Browser:
    return p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)


class Watch:
    """Console errors, page errors, failed requests and requests to other hosts of one page.

    :meth:`close` hands them to the case's problems and ignores anything later (closing the
    context aborts requests in flight, e.g. marker images after a zoom).
    """

    def __init__(self, page: Page, base: str, problems: list[str]) -> None:
        self.seen: list[str] = []
        self._base = base
        self._problems = problems
        self._closed = False
        page.on("console", self._console)
        page.on("pageerror", self._page_error)
        page.on("requestfailed", lambda r: self._add(f"request failed: {r.url} ({r.failure})"))
        page.on("request", self._request)

    def _add(self, text: str) -> None:
        if not self._closed:
            self.seen.append(text)

    def _page_error(self, error: PlaywrightError) -> None:
        frames = [line.strip() for line in (error.stack or "").splitlines()[1:4]]
        self._add(f"page error: {error.message} [{' < '.join(frames)}]")

    def _console(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            self._add(f"console error: {message.text} ({message.location.get('url', '')})")

    def _request(self, request: BrowserRequest) -> None:
        if not request.url.startswith((self._base + "/", "data:", "blob:", "about:")):
            self._add(f"request to another host: {request.url}")

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._problems.extend(self.seen)


def wait_ready(page: Page, watch: Watch, *, timeout_s: float) -> None:
    """Wait for ``body[data-cm-ready]``; give up at once when the page reports an error."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            page.wait_for_selector("body[data-cm-ready]", state="attached", timeout=500)
            return
        except PlaywrightTimeoutError:
            if watch.seen or time.monotonic() > deadline:
                problems = "; ".join(watch.seen) or "no error reported"
                msg = f"the map never became ready ({problems})"
                raise RuntimeError(msg) from None


def measure_round(
    browser: Browser,
    base: str,
    path: str,
    *,
    mark: str,
    ours: bool,
    nearest_at: tuple[float, float],
    problems: list[str],
    timeout_s: float = PAGE_TIMEOUT_S,
) -> Round:
    """Load ``base + path`` in a fresh context, then zoom (and for ours, one nearest lookup)."""
    context = browser.new_context(viewport=VIEWPORT, service_workers="block")
    page = context.new_page()
    watch = Watch(page, base, problems)
    try:
        response = page.goto(
            base + path, wait_until="commit" if ours else "load", timeout=timeout_s * 1000
        )
        if response is None or response.status != 200:
            msg = f"GET {path} answered {response.status if response else 'nothing'}"
            raise RuntimeError(msg)
        if ours:
            wait_ready(page, watch, timeout_s=timeout_s)
        timings = page.evaluate(TIMINGS_JS, mark)
        if timings["ready"] is None:
            msg = f"no {mark!r} performance mark in {path}"
            raise RuntimeError(msg)
        counts = page.evaluate(COUNTS_JS)
        zoom = page.evaluate(ZOOM_JS)
        nearest = page.evaluate(NEAREST_JS, list(nearest_at)) if ours else None
        if nearest is not None and nearest["items"] < 1:
            problems.append(f"the nearest lookup at {nearest_at} listed no device")
    finally:
        watch.close()
        context.close()
    # ours: the mark is set when the last chunk of markers is in; the peer: the later of the
    # ``load`` event and its mark (the same moment in practice, see _folium_page).
    load_ms = timings["ready"] if ours else max(timings["ready"], timings["load"])
    return Round(
        load_ms=float(load_ms),
        zoom_ms=float(zoom["ms"]),
        nearest_ms=float(nearest["ms"]) if nearest is not None else None,
        fetch_ms=float(nearest["fetch_ms"]) if nearest and nearest["fetch_ms"] else None,
        html_bytes=int(timings["html_bytes"]),
        heap_bytes=int(timings["heap_bytes"]),
        timings={k: float(v) for k, v in timings.items() if isinstance(v, int | float)},
        counts={**counts, "zoom": [zoom["before"], zoom["after"]]},
    )


def check_counts(case: Case, result: Round, *, ours: bool) -> None:
    """Every listed device is a marker; ours also lists them all and the legend adds up."""
    counts = result.counts
    if counts["markers"] != case.listed:
        case.problems.append(
            f"{counts['markers']:,} markers in the cluster group, {case.listed:,} devices listed"
        )
    if ours:
        if counts["listed"] != case.listed:
            case.problems.append(
                f"data-cm-ready says {counts['listed']} devices, {case.listed:,} are listed"
            )
        if len(counts["legend"]) != 3 or sum(counts["legend"]) != case.listed:
            case.problems.append(
                f"legend open + closed + unknown = {' + '.join(map(str, counts['legend']))} = "
                f"{sum(counts['legend']):,}, {case.listed:,} devices listed"
            )


def _minute() -> int:
    return int(time.time() // 60)


def _busy_seconds() -> float:
    """CPU time all processes on the machine have used so far (``/proc/stat``)."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def _own_cpu_seconds() -> float:
    """CPU time of this process and every descendant (the server, Playwright's driver, all of
    Chromium's processes), including the children they have reaped (``/proc/<pid>/stat``)."""
    stats: dict[int, tuple[int, int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue  # gone meanwhile
        stats[int(entry.name)] = (int(fields[1]), sum(int(f) for f in fields[11:15]))
    children: dict[int, list[int]] = collections.defaultdict(list)
    for pid, (ppid, _ticks) in stats.items():
        children[ppid].append(pid)
    total, stack = 0, [os.getpid()]
    while stack:
        pid = stack.pop()
        total += stats.get(pid, (0, 0))[1]
        stack.extend(children[pid])
    return total / os.sysconf("SC_CLK_TCK")


def wait_quiet(max_other_cpu: float, *, timeout_s: float = 120.0) -> None:
    """Wait (at most ``timeout_s``) until other processes use ≤ ``max_other_cpu`` CPUs for 1 s."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        busy, own = _busy_seconds(), _own_cpu_seconds()
        time.sleep(1.0)
        if (_busy_seconds() - busy) - (_own_cpu_seconds() - own) <= max_other_cpu:
            return


def _failed(case: Case, exc: Exception) -> None:
    """A round whose page broke: recorded as a problem (exit status 1); the case goes on."""
    case.failed += 1
    case.problems.append(f"a round failed: {str(exc).splitlines()[0]}")


def quiet_round(
    case: Case,
    measure: Callable[[], Round],
    *,
    ours: bool,
    warm: Callable[[], object] | None = None,
    on_timeout: str | None = None,
    attempts: int = 3,
) -> None:
    """One round on a quiet machine: redone (``attempts`` in all, the last kept) when other
    processes used more than ``case.max_other_cpu`` CPUs meanwhile, or when the minute changed
    between ``warm`` (the GET / that renders the minute's page) and the end of the round. A
    page that breaks is a problem (exit status 1); with ``on_timeout``, one that times out is
    only noted so.

    Our server renders ``/`` again when the minute changes (its data say which devices are open
    *now*), in the background: a round must meet this minute's page already rendered, or it
    would load while the server renders (that render is printed on its own, from the warm-up).
    """
    for attempt in range(attempts):
        wait_quiet(case.max_other_cpu)
        minute = _minute()
        if warm is not None:
            warm()
        busy, own, start = _busy_seconds(), _own_cpu_seconds(), time.monotonic()
        try:
            result = measure()
        except PlaywrightTimeoutError as exc:
            if on_timeout is None:
                _failed(case, exc)
            else:  # too slow to measure (the peer): said, not a fault of the page
                case.note = on_timeout
            return
        except (PlaywrightError, RuntimeError) as exc:
            _failed(case, exc)
            return
        wall = time.monotonic() - start
        others = max(0.0, (_busy_seconds() - busy) - (_own_cpu_seconds() - own)) / wall
        if others <= case.max_other_cpu and _minute() == minute:
            break
        if attempt < attempts - 1:
            case.redone += 1
    case.rounds.append(result)
    case.others.append(others)
    check_counts(case, result, ours=ours)


def measure_ours(
    p: Playwright, case: Case, base: str, *, rounds: int, nearest_at: tuple[float, float]
) -> None:
    browser = launch(p)
    try:
        for _ in range(rounds):
            quiet_round(
                case,
                lambda: measure_round(
                    browser, base, "/", mark=OURS_MARK, ours=True, nearest_at=nearest_at,
                    problems=case.problems,
                ),
                ours=True,
                warm=lambda: current_page(base),  # this minute's page, rendered before the round
            )  # fmt: skip
    finally:
        browser.close()


def measure_peer(
    p: Playwright, case: Case, base: str, path: str, *, rounds: int, timeout_s: float
) -> None:
    browser = launch(p)
    try:
        for _ in range(rounds):
            quiet_round(
                case,
                lambda: measure_round(
                    browser, base, path, mark=PEER_MARK, ours=False, nearest_at=(0.0, 0.0),
                    problems=case.problems, timeout_s=timeout_s,
                ),
                ours=False,
                on_timeout=f"SKIPPED: the page did not load within {timeout_s:g} s",
            )  # fmt: skip
            if case.note:
                break
    finally:
        browser.close()


# --- where the time goes (--profile) ------------------------------------------------------------

#: Main-thread trace events by kind (self time), matched by name prefix; the rest is "other".
KINDS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("GC", ("MinorGC", "MajorGC", "V8.GC", "BlinkGC", "GCEvent")),
    ("HTML parsing and loading", ("ParseHTML", "DecodedDataDocumentParser", "HTMLDocumentParser",
                                  "DocumentLoader", "NavigationBodyLoader", "ResourceFetcher")),
    ("style and layout", ("UpdateLayoutTree", "Layout", "RecalculateStyles",
                          "ParseAuthorStyleSheet", "InvalidateLayout", "StyleInvalidator")),
    ("paint and composite", ("Paint", "PrePaint", "Layerize", "Commit", "UpdateLayer",
                             "CompositeLayers", "Decode", "ImageDecodeTask", "Rasterize")),
    ("JavaScript", ("EvaluateScript", "FunctionCall", "TimerFire", "EventDispatch", "V8.", "v8.",
                    "RunMicrotasks", "FireAnimationFrame", "Compile", "CacheScript")),
)  # fmt: skip
#: Outermost script entries: how the main thread got into JavaScript (whole duration).
SCRIPT_ENTRIES = ("EvaluateScript", "FunctionCall", "RunMicrotasks", "FireAnimationFrame")


def _kind(name: str) -> str:
    for kind, prefixes in KINDS:
        if name.startswith(prefixes):
            return kind
    return "other"


def _entry_label(event: dict[str, Any], page_url: str) -> str:
    data = event.get("args", {}).get("data", {}) or {}
    url = str(data.get("url", ""))
    where = "the page's inline script" if url == page_url else (url.rsplit("/", 1)[-1] or "?")
    if event["name"] == "EvaluateScript":
        return f"run {where}"
    if event["name"] == "FunctionCall":
        function = data.get("functionName") or "(anonymous)"
        return f"{function} ({where}:{data.get('lineNumber', '?')}:{data.get('columnNumber', '?')})"
    return event["name"]


def trace_breakdown(raw: bytes, mark: str, page_url: str) -> str:
    """Main-thread time from navigation start to ``mark``, by kind and by script entry."""
    events = json.loads(raw)["traceEvents"]
    mark_event = next(e for e in events if e.get("name") == mark and e.get("ph") in ("I", "R", "n"))
    navigation = mark_event["args"]["data"]["navigationId"]
    start_event = next(
        e
        for e in events
        if e.get("name") == "navigationStart"
        and (e.get("args", {}).get("data") or {}).get("navigationId") == navigation
    )
    thread = (mark_event["pid"], mark_event["tid"])
    start, end = start_event["ts"], mark_event["ts"]
    spans = sorted(
        (
            e
            for e in events
            if (e.get("pid"), e.get("tid")) == thread
            and e.get("ph") == "X"
            and "dur" in e
            and start <= e["ts"] < end
        ),
        key=lambda e: (e["ts"], -e["dur"]),
    )
    by_kind: collections.Counter[str] = collections.Counter()
    entries: dict[str, list[float]] = {}
    stack: list[dict[str, Any]] = []
    busy = 0.0
    for e in spans:
        e_end = min(e["ts"] + e["dur"], end)
        while stack and stack[-1]["ts"] + stack[-1]["dur"] <= e["ts"]:
            stack.pop()
        duration = e_end - e["ts"]
        if stack:
            by_kind[_kind(stack[-1]["name"])] -= duration  # the parent's self time shrinks
        else:
            busy += duration
        by_kind[_kind(e["name"])] += duration
        in_script = any(s["name"] in SCRIPT_ENTRIES for s in stack)
        if e["name"] in SCRIPT_ENTRIES and not in_script:
            entries.setdefault(_entry_label(e, page_url), []).append(duration)
        stack.append(e)
    window = end - start
    kinds = ", ".join(f"{k} {v / 1000:,.0f}" for k, v in by_kind.most_common() if v >= 500)
    top = sorted(entries.items(), key=lambda kv: -sum(kv[1]))[:8]
    listed = "; ".join(
        f"{label} {sum(d) / 1000:,.0f} ms" + (f" ({len(d)} calls)" if len(d) > 1 else "")
        for label, d in top
    )
    long_tasks = [e for e in spans if e["name"] == "RunTask" and e["dur"] >= 50_000]
    return (
        f"main thread busy {busy / 1000:,.0f} of {window / 1000:,.0f} ms (idle "
        f"{(window - busy) / 1000:,.0f}); self time by kind (ms): {kinds}; tasks ≥ 50 ms: "
        f"{len(long_tasks)}, {sum(e['dur'] for e in long_tasks) / 1000:,.0f} ms in all\n"
        f"#   script entries (whole time, incl. nested GC/layout): {listed}"
    )


def cpu_profile_breakdown(profile: dict[str, Any], page_url: str) -> str:
    """Self time by script file and the top functions, from a CDP ``Profiler`` profile."""
    nodes = {node["id"]: node for node in profile["nodes"]}
    self_us: collections.Counter[int] = collections.Counter()
    deltas = profile["timeDeltas"]
    for i, node_id in enumerate(profile["samples"]):
        self_us[node_id] += deltas[i + 1] if i + 1 < len(deltas) else 0
    by_file: collections.Counter[str] = collections.Counter()
    by_function: collections.Counter[str] = collections.Counter()
    for node_id, us in self_us.items():
        frame = nodes[node_id]["callFrame"]
        url = "(page)" if frame["url"] == page_url else frame["url"].rsplit("/", 1)[-1]
        file = url or frame["functionName"]  # (program), (garbage collector), (idle), natives
        by_file[file] += us
        if url:
            name = frame["functionName"] or "(anonymous)"
            by_function[f"{name} ({url}:{frame['lineNumber'] + 1})"] += us
    files = ", ".join(f"{k} {v / 1000:,.0f}" for k, v in by_file.most_common(8))
    functions = ", ".join(f"{k} {v / 1000:,.0f}" for k, v in by_function.most_common(10))
    return (
        f"self time by file (ms; (page) = the page's inline script): {files}\n"
        f"#   top functions by self time (ms): {functions}"
    )


def profile_case(
    p: Playwright, base: str, path: str, *, mark: str, ours: bool, label: str
) -> list[str]:
    """Two extra loads, not in the timings: one traced (Chrome's timeline), one CPU-profiled."""
    lines = []
    browser = launch(p)
    try:
        if ours:
            timed_get(base + path)
        context = browser.new_context(viewport=VIEWPORT)
        page = context.new_page()
        browser.start_tracing(
            page=page,
            categories=[
                "devtools.timeline",
                "disabled-by-default-devtools.timeline",
                "blink.user_timing",
                "v8.execute",
            ],
        )
        page.goto(base + path, wait_until="load", timeout=PAGE_TIMEOUT_S * 1000)
        page.wait_for_selector(
            "body[data-cm-ready]" if ours else "body", state="attached",
            timeout=PAGE_TIMEOUT_S * 1000,
        )  # fmt: skip
        ready = page.evaluate(TIMINGS_JS, mark)["ready"]
        raw = browser.stop_tracing()
        context.close()
        lines.append(
            f"# where ({label}, one traced load: ready at {ready:,.0f} ms under tracing): "
            + trace_breakdown(raw, mark, base + path)
        )
        if ours:
            timed_get(base + path)
        context = browser.new_context(viewport=VIEWPORT)
        page = context.new_page()
        cdp = context.new_cdp_session(page)
        cdp.send("Profiler.enable")
        cdp.send("Profiler.setSamplingInterval", {"interval": 1000})
        cdp.send("Profiler.start")
        page.goto(base + path, wait_until="load", timeout=PAGE_TIMEOUT_S * 1000)
        if ours:
            page.wait_for_selector(
                "body[data-cm-ready]", state="attached", timeout=PAGE_TIMEOUT_S * 1000
            )
        ready = page.evaluate(TIMINGS_JS, mark)["ready"]
        profile = cdp.send("Profiler.stop")["profile"]
        context.close()
        lines.append(
            f"# where ({label}, one CPU-profiled load, 1 ms samples: ready at {ready:,.0f} ms): "
            + cpu_profile_breakdown(profile, base + path)
        )
    finally:
        browser.close()
    return lines


# --- printing -------------------------------------------------------------------------------------


def _phases(result: Round) -> str:
    t = result.timings
    end = result.load_ms
    return (
        f"server {t['response_start'] - t['request_start']:,.0f} / html "
        f"{t['response_end'] - t['response_start']:,.0f} / parse+scripts "
        f"{t['dom_content_loaded'] - t['response_end']:,.0f} / after DOMContentLoaded "
        f"{max(0.0, end - t['dom_content_loaded']):,.0f} ms"
    )


def case_line(case: Case, *, baseline: Case | None, peer: Case | None) -> str:
    label = f"{case.size:<7} {case.who:<10} {case.listed:>6,} devices"
    problems = "; PROBLEMS: " + " | ".join(sorted(set(case.problems))) if case.problems else ""
    if not case.rounds:
        return f"{label}  not measured: {case.note or 'every round failed'}{problems}"
    r = case.median_round
    nearest, fetch = case.nearest_ms, case.fetch_ms
    near = f"{nearest:>5.0f} ms" if nearest is not None else "    — ms"
    fetched = f"nearest's GET /api/nearest {fetch:,.0f} ms; " if fetch is not None else ""
    vs_sample = ratio(case.load_ms, baseline.load_ms) if baseline and baseline.rounds else "—"
    vs_peer = (
        ratio(case.load_ms, peer.load_ms) if peer and peer.rounds and peer is not case else "—"
    )
    server = "; ".join(f"{k} {v:.2f} s" for k, v in case.server_s.items())
    rounds = " / ".join(f"{x.load_ms:,.0f}" for x in case.rounds)
    counts = r.counts
    legend = (
        f"legend {' + '.join(map(str, counts['legend']))} = {sum(counts['legend']):,}, "
        if counts.get("legend")
        else ""
    )
    return (
        f"{label}  html {r.html_bytes / MB:6.2f} MB  load {case.load_ms:>7,.0f} ms  zoom "
        f"{case.zoom_ms:>5,.0f} ms  nearest {near}  vs sample {vs_sample:>5}  vs folium "
        f"{vs_peer:>5}  phases: {_phases(r)}; rounds (ms): {rounds}; JS heap "
        f"{r.heap_bytes / MB:,.0f} MB; {legend}{counts['markers']:,} markers, zoom "
        f"{counts['zoom'][0]}→{counts['zoom'][1]}; {fetched}{server}; other processes during "
        f"rounds ≤ {max(case.others, default=0):.2f} CPU"
        + (f" ({case.redone} round(s) redone)" if case.redone else "")
        + (f"; {case.note}" if case.note else "")
        + (f"; {case.failed} round(s) FAILED" if case.failed else "")
        + problems
    )


def version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"


def header(args: argparse.Namespace, browser_version: str) -> None:
    city = load_city_profile(DATA_DIR / "city.json")
    now = dt.datetime.now(ZoneInfo(city.timezone))
    print(f"# cardiomapa citizen-map benchmark, {now:%Y-%m-%d %H:%M} {city.timezone} ({now:%A})")
    print(machine_line() + f", load average {os.getloadavg()[0]:.2f} at start")
    vendored = json.loads((STATIC_DIR / "package.json").read_text())["dependencies"]
    print(
        f"# python {platform.python_version()}, playwright {version('playwright')}, Chromium "
        f"{browser_version} ({CHROMIUM}, headless, {VIEWPORT['width']}×{VIEWPORT['height']}), "
        f"folium {version('folium')}, leaflet {vendored['leaflet']}, leaflet.markercluster "
        f"{vendored['leaflet.markercluster']}"
    )
    changed = subprocess.run(
        ["git", "-C", str(ROOT), "status", "--porcelain", "--", "geo", "api"],
        capture_output=True, text=True, check=False,
    ).stdout.split("\n")  # fmt: skip
    files = ", ".join(line[3:] for line in changed if line.strip())
    print(f"# code: git {git_describe(ROOT)}" + (f" (uncommitted: {files})" * bool(files)))
    print(
        "# ours: `cardiomapa serve` (default settings, no basemap), warmed with GET /api/nearest "
        "(builds the finder) and GET / (renders the page, kept for the minute); load = the "
        f"{OURS_MARK!r} mark (every marker in the cluster group), ms since navigation start"
    )
    print(
        "# folium: folium.Map + MarkerCluster + one Marker with a tooltip per listed device, "
        "vendored Leaflet/markercluster served by http.server; load = the load event (markers "
        "are added synchronously by the inline script)"
    )
    print(
        f"# {args.rounds} round(s) per case, each in a fresh browser context; median printed; "
        f"a round during which other processes used > {args.max_other_cpu:g} CPU (or the "
        "minute changed) is redone after waiting for a quiet machine (3 tries at most); zoom = "
        "setZoom(+2) until zoomend + the cluster group's animationend; nearest = "
        "cardiomapa.lookup(city centre) until #cm-results lists devices (GET /api/nearest)"
    )
    print(
        "# vs sample = load / the sample's load (same backend); vs folium = our load / folium's "
        "at the same size (< 1: ours faster); phases (median round, navigation timing): server "
        "= response start − request start, html = the download, parse+scripts = to "
        "DOMContentLoaded (parsing, the scripts, the inline one builds every marker), after = "
        "to ready (clustering in chunks); MB = 10⁶ bytes"
    )


# --- main -----------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    """Parse the options, measure every size × backend (and the folium peer), print a line each."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick", action="store_true", help="sample and 5000, SpatiaLite only, 2 rounds"
    )
    parser.add_argument(
        "--sizes", default=",".join(SIZES), help="comma-separated: sample and device counts"
    )
    parser.add_argument(
        "--backends", default=",".join(BACKENDS), help="comma-separated: spatialite,postgis"
    )
    parser.add_argument("--rounds", type=int, default=5, help="page loads per case (median)")
    parser.add_argument("--no-peer", action="store_true", help="skip the naive folium page")
    parser.add_argument(
        "--peer-timeout",
        type=float,
        default=120.0,
        help="seconds allowed to render the folium page, and to load it once (else skipped)",
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="after the largest size, one traced and one CPU-profiled load (ours and folium)",
    )
    parser.add_argument(
        "--postgres-url",
        default=bench_api.DEFAULT_POSTGRES_URL,
        help="server for the throwaway database",
    )
    parser.add_argument(
        "--max-other-cpu",
        type=float,
        default=0.25,
        help="redo a round (3 tries) when other processes used more CPUs than this meanwhile",
    )
    parser.add_argument("--keep", action="store_true", help="keep the temporary files and logs")
    args = parser.parse_args(argv)
    if args.quick:
        args.sizes, args.rounds = "sample,5000", min(args.rounds, 2)
        args.backends = "spatialite"
    backends = [b for b in args.backends.split(",") if b]
    sizes = [s for s in args.sizes.split(",") if s]
    if wrong := [b for b in backends if b not in BACKENDS]:
        parser.error(f"unknown backend {wrong[0]!r}; choose from {', '.join(BACKENDS)}")
    if wrong := [s for s in sizes if s != "sample" and not (s.isdigit() and int(s) > 0)]:
        parser.error(f"unknown size {wrong[0]!r}: 'sample' or a number of devices")
    sizes.sort(key=lambda s: -1 if s == "sample" else int(s))
    if not CARDIOMAPA.exists():
        parser.error(f"{CARDIOMAPA} not found: run this with the project's .venv/bin/python")
    if not Path(CHROMIUM).exists():
        parser.error(f"{CHROMIUM} not found: install Debian's chromium package")

    city = load_city_profile(DATA_DIR / "city.json")
    centre = (city.centre_lat, city.centre_lon)
    work = Path(tempfile.mkdtemp(prefix="cardiomapa-bench-maps-"))
    postgis = bench_api.PostgisDatabases(args.postgres_url)
    cases: list[Case] = []
    lines: list[str] = []
    with sync_playwright() as p:
        probe = launch(p)
        browser_version = probe.version
        probe.close()
        header(args, browser_version)
        try:
            baselines: dict[str, Case] = {}  # the sample's case per backend, and for folium
            for size in sizes:
                data = dataset(size, city, work)
                print(
                    f"{size:<7} data       {data.what}: {data.total:,} devices, "
                    f"{data.listed:,} listed on the map",
                    flush=True,
                )
                peer = None if args.no_peer else run_peer(p, data, work, args)
                if peer is not None:
                    cases.append(peer)
                    if size == "sample":
                        baselines["folium"] = peer
                    print(case_line(peer, baseline=baselines.get("folium"), peer=None), flush=True)
                for backend in backends:
                    case = Case(size, backend, data.listed, args.max_other_cpu)
                    run_ours(p, case, data, work, args, postgis=postgis, centre=centre)
                    cases.append(case)
                    if size == "sample":
                        baselines[backend] = case
                    line = case_line(case, baseline=baselines.get(backend), peer=peer)
                    print(line, flush=True)
                if args.profile and size == sizes[-1]:
                    lines += profile_size(p, data, work, peer=peer)
        finally:
            if args.keep:
                print(f"# files and server logs kept in {work}")
            else:
                shutil.rmtree(work, ignore_errors=True)
    for line in lines:
        print(line)
    return summary(cases, backends)


def _database(backend: str, size: str, work: Path, postgis: Any) -> str:
    if backend == "spatialite":
        return f"sqlite:///{work / f'{size}.sqlite'}"
    return str(postgis.create())


def run_ours(
    p: Playwright,
    case: Case,
    data: Dataset,
    work: Path,
    args: argparse.Namespace,
    *,
    postgis: Any,
    centre: tuple[float, float],
) -> None:
    try:
        url = _database(case.who, case.size, work, postgis)
    except Exception as exc:  # any failure: report it and go on
        case.note = f"no PostGIS at {args.postgres_url} ({exc}); `make postgres` starts it"
        return
    try:
        case.server_s["db load"] = bench_api.load(url, data.data_dir)
        with serve(url, log=work / f"serve-{case.size}-{case.who}.log") as base:
            lat, lon = centre
            case.server_s["first /api/nearest"], _ = timed_get(
                f"{base}/api/nearest?lat={lat}&lon={lon}"
            )
            case.server_s["first /"], _ = timed_get(base + "/")
            measure_ours(p, case, base, rounds=args.rounds, nearest_at=centre)
    finally:
        if case.who == "postgis":
            postgis.drop(url)


def run_peer(p: Playwright, data: Dataset, work: Path, args: argparse.Namespace) -> Case:
    case = Case(data.name, "folium", data.listed, args.max_other_cpu)
    folder = work / "peer"
    folder.mkdir(exist_ok=True)
    page = folder / f"folium-{data.name}.html"
    seconds = build_peer(data, page, timeout_s=args.peer_timeout)
    if seconds is None:
        case.note = (
            f"SKIPPED: folium took more than {args.peer_timeout:g} s to render the page "
            "(--peer-timeout)"
        )
        return case
    case.server_s["folium render"] = seconds
    with static_server(folder) as base:  # a load over the timeout skips the other rounds
        measure_peer(
            p, case, base, f"/{page.name}", rounds=args.rounds, timeout_s=args.peer_timeout
        )
    return case


def profile_size(p: Playwright, data: Dataset, work: Path, *, peer: Case | None) -> list[str]:
    """``--profile``: where the time goes in ours (SpatiaLite) and in the folium page."""
    lines = []
    url = f"sqlite:///{work / 'profile.sqlite'}"
    bench_api.load(url, data.data_dir)
    with serve(url, log=work / "serve-profile.log") as base:
        lines += profile_case(
            p, base, "/", mark=OURS_MARK, ours=True, label=f"ours, {data.name}, spatialite"
        )
    if peer is not None and peer.rounds:
        with static_server(work / "peer") as base:
            lines += profile_case(
                p, base, f"/folium-{data.name}.html", mark=PEER_MARK, ours=False,
                label=f"folium, {data.name}",
            )  # fmt: skip
    return lines


def summary(cases: list[Case], backends: list[str]) -> int:
    target = str(TARGET_DEVICES)
    for backend in backends:
        case = next((c for c in cases if c.size == target and c.who == backend), None)
        if case is None or not case.rounds:
            print(f"# target ({backend}): {TARGET_DEVICES:,} devices load < 3 s: not measured")
            continue
        met = case.load_ms < TARGET_MS
        print(
            f"# target ({backend}): {TARGET_DEVICES:,} devices load < {TARGET_MS / 1000:g} s: "
            f"{'PASS' if met else 'FAIL'} (median {case.load_ms:,.0f} ms; slowest round "
            f"{max(r.load_ms for r in case.rounds):,.0f} ms)"
        )
    problems = [(c, sorted(set(c.problems))) for c in cases if c.problems]
    for case, found in problems:
        for problem in found:
            print(f"# PROBLEM ({case.size}, {case.who}): {problem}")
    if problems:
        print(f"# {sum(len(f) for _, f in problems)} problem(s) in the pages: exit status 1")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
