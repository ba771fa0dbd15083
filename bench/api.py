"""Load test of the HTTP API: ``GET /api/nearest`` against ``GET /api/health``, over real HTTP.

Run on demand, from the repository root (needs ``wrk``: ``apt-get install -y wrk``; installed by
this script when it runs as root and wrk is missing)::

    .venv/bin/python bench/api.py                # both cases × both backends: ~6 min on 2 cores
    .venv/bin/python bench/api.py --quick        # 29-device sample, 1 round of 5 s per endpoint
    .venv/bin/python bench/api.py --backends spatialite --cases sample

For each case (the ``data/`` sample, then 5,000 synthetic devices) and each backend (SpatiaLite,
then a throwaway PostGIS database), it loads the layers with ``cardiomapa load --replace``,
starts the product's own server (``cardiomapa serve``: one uvicorn worker) in its own process
pinned to one CPU, and loads it from a second process, ``wrk`` (1 thread, 16 connections, kept
alive) pinned to the other CPU. ``/api/nearest`` cycles through 64 fixed points inside the
municipality so no two consecutive requests ask the same question; ``/api/health`` answers
``{"status": "ok"}`` without touching the database and is the peer: what the same server, the
same middleware and the same client cost with no work in the route. After a warm-up, each
endpoint is measured ``--rounds`` times for ``--duration`` seconds, alternating, and the round
with the median throughput is kept.

Each line prints both throughputs with their p50/p99 latencies and the ratio nearest / health
(the issue's target is ≥ 0.50, with ≥ 1,000 req/s and p99 < 25 ms for ``/api/nearest``). Nothing
here asserts on time. See ``bench/README.md`` for the figures measured and where the time goes.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import math
import os
import platform
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from importlib import metadata, util
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import psycopg
import shapely
from common import HOURS_POOL, git_describe, machine_line, ratio
from psycopg import sql
from sqlalchemy.engine import make_url

from geo.city import CityProfile, load_city_profile

ROOT = Path(__file__).resolve().parent.parent
DATA_DIR = ROOT / "data"
#: The CLI of the venv this script runs in.
CARDIOMAPA = Path(sys.executable).parent / "cardiomapa"
DEFAULT_POSTGRES_URL = os.environ.get(
    "CARDIOMAPA_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
BACKENDS = ("spatialite", "postgis")
CASES = ("sample", "5k")
SYNTHETIC_DEVICES = 5_000
SEED = 2026
#: Query points: this many, Gaussian around the city centre with this spread, all inside.
N_POINTS = 64
POINT_SPREAD_M = 1_500.0
METRES_PER_DEGREE_LAT = 111_320.0
#: Issue targets for /api/nearest (on 2 cores).
TARGET_RPS = 1_000.0
TARGET_P99_MS = 25.0
TARGET_RATIO = 0.50
#: Issue target: two workers on 2 cores against one.
TARGET_SCALING = 1.6
MARK = "BENCH_JSON "

#: wrk script: cycles through PATHS (one Lua state per wrk thread) and prints its figures as JSON.
LUA = """
local paths = {%s}
local requests_ = {}
local i = 0

function init(args)
  for k, path in ipairs(paths) do
    requests_[k] = wrk.format("GET", path)
  end
end

function request()
  i = i + 1
  return requests_[(i %% #requests_) + 1]
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '%s{"requests": %%d, "duration_us": %%d, "bytes": %%d, "p50_us": %%d, "p90_us": %%d, ' ..
    '"p99_us": %%d, "max_us": %%d, "mean_us": %%.1f, "connect": %%d, "read": %%d, ' ..
    '"write": %%d, "status": %%d, "timeout": %%d}\\n',
    summary.requests, summary.duration, summary.bytes, latency:percentile(50),
    latency:percentile(90), latency:percentile(99), latency.max, latency.mean,
    e.connect, e.read, e.write, e.status, e.timeout))
end
"""


# --- data -------------------------------------------------------------------------------------


def _degrees(city: CityProfile, dx_m: np.ndarray, dy_m: np.ndarray) -> tuple[np.ndarray, ...]:
    """Metre offsets around the centre → lon, lat (equirectangular; fine over a few km)."""
    lat = city.centre_lat + dy_m / METRES_PER_DEGREE_LAT
    lon = city.centre_lon + dx_m / (METRES_PER_DEGREE_LAT * math.cos(math.radians(city.centre_lat)))
    return lon, lat


def query_points(
    city: CityProfile, *, n: int = N_POINTS, seed: int = SEED
) -> list[tuple[float, float]]:
    """``n`` (lon, lat) points, Gaussian around the city centre, all inside the municipality."""
    rng = np.random.default_rng(seed)
    points: list[tuple[float, float]] = []
    while len(points) < n:
        lon, lat = _degrees(city, *rng.normal(scale=POINT_SPREAD_M, size=(2, 4 * n)))
        inside = shapely.contains_xy(city.boundary, lon, lat)
        points += [
            (round(x, 5), round(y, 5)) for x, y in zip(lon[inside], lat[inside], strict=True)
        ]
    return points[:n]


def synthetic_data_dir(city: CityProfile, target: Path, *, n: int, seed: int = SEED) -> Path:
    """A copy of ``data/`` whose defibrillators layer is ``n`` synthetic devices.

    Devices sit ~25 m from a population unit drawn in proportion to its residents (so they are
    where people live), inside the municipality; all public (``access=yes``), active, verified
    and fixed, with hours from the shared pool (~30 % ``24/7``). ``source`` is ``synthetic``.
    """
    target.mkdir(parents=True, exist_ok=True)
    for path in DATA_DIR.glob("*.geojson"):
        shutil.copy(path, target / path.name)
    shutil.copy(DATA_DIR / "city.json", target / "city.json")
    units = json.loads((DATA_DIR / "population.geojson").read_text())["features"]
    unit_xy = np.array([u["geometry"]["coordinates"] for u in units], dtype=float)
    residents = np.array([u["properties"]["residents"] for u in units], dtype=float)
    rng = np.random.default_rng(seed)
    cos_lat = math.cos(math.radians(city.centre_lat))
    lonlat = np.empty((0, 2))
    while len(lonlat) < n:
        host = rng.choice(len(units), n, p=residents / residents.sum())
        jitter = rng.normal(scale=25.0, size=(n, 2)) / METRES_PER_DEGREE_LAT
        xy = unit_xy[host] + jitter / np.array([cos_lat, 1.0])
        xy = xy[shapely.contains_xy(city.boundary, xy[:, 0], xy[:, 1])]
        lonlat = np.vstack([lonlat, xy])
    lonlat = lonlat[:n]
    texts = [text for text, _ in HOURS_POOL]
    share = np.array([p for _, p in HOURS_POOL])
    hours = rng.choice(len(texts), n, p=share)
    features = [
        {
            "type": "Feature",
            "properties": {
                "id": f"bench-{i + 1:05d}",
                "name": f"DEA sintético {i + 1}",
                "access": "yes",
                "opening_hours": texts[hours[i]],
                "indoor": bool(i % 2),
                "status": "active",
                "verification": "verified",
                "is_mobile": False,
                "source": "synthetic",
                "tags": {"sample": "synthetic", "generator": "bench/api.py"},
            },
            "geometry": {
                "type": "Point",
                "coordinates": [round(float(x), 6), round(float(y), 6)],
            },
        }
        for i, (x, y) in enumerate(lonlat)
    ]
    document = {
        "type": "FeatureCollection",
        "name": f"Desfibriladores sintéticos del benchmark ({n}, semilla {seed})",
        "features": features,
    }
    (target / "defibrillators.geojson").write_text(json.dumps(document, ensure_ascii=False))
    return target


# --- databases and the server -----------------------------------------------------------------


class PostgisDatabases:
    """Throwaway databases with PostGIS on an existing server (dropped by :meth:`drop`)."""

    def __init__(self, url: str) -> None:
        self.url = url

    def _admin(self, statement: sql.Composable, *, database: str | None = None) -> None:
        parsed = make_url(self.url).set(drivername="postgresql")
        if database is not None:
            parsed = parsed.set(database=database)
        with psycopg.connect(parsed.render_as_string(hide_password=False), autocommit=True) as c:
            c.execute(statement)

    def create(self) -> str:
        name = f"cardiomapa_bench_{uuid.uuid4().hex[:10]}"
        self._admin(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        url = make_url(self.url).set(database=name).render_as_string(hide_password=False)
        try:
            self._admin(sql.SQL("CREATE EXTENSION postgis"), database=name)
        except psycopg.Error:
            self.drop(url)
            raise
        return url

    def drop(self, url: str) -> None:
        name = make_url(url).database
        self._admin(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def _env(database_url: str, settings: dict[str, str] | None = None) -> dict[str, str]:
    """This environment without any other ``CARDIOMAPA_*`` setting than ``settings``: the
    defaults are measured."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CARDIOMAPA_")}
    env["CARDIOMAPA_DATABASE_URL"] = database_url
    return {**env, **(settings or {})}


def load(database_url: str, data_dir: Path) -> float:
    """``cardiomapa load --replace`` from ``data_dir``; returns the wall-clock seconds."""
    start = time.perf_counter()
    done = subprocess.run(
        [str(CARDIOMAPA), "load", "--replace", "--no-backup", "--data-dir", str(data_dir)],
        env=_env(database_url),
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        msg = f"cardiomapa load failed ({done.returncode}):\n{done.stdout}\n{done.stderr}"
        raise RuntimeError(msg)
    return time.perf_counter() - start


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _pinned(command: list[str], cpu: int | None) -> list[str]:
    """``command`` run on CPU ``cpu`` only (through ``taskset``, which execs it: same pid)."""
    return command if cpu is None else ["taskset", "-c", str(cpu), *command]


@dataclass(frozen=True)
class Server:
    pid: int
    base: str


@contextlib.contextmanager
def serve(
    database_url: str,
    *,
    cpu: int | None,
    log: Path,
    settings: dict[str, str] | None = None,
    workers: int = 1,
    timeout_s: float = 120.0,
) -> Iterator[Server]:
    """Run ``cardiomapa serve`` on a free port until the block ends; wait until every worker
    answers.

    ``settings`` are extra ``CARDIOMAPA_*`` variables; ``cpu`` pins the server to one core;
    ``workers`` is ``serve --workers``.
    """
    port = _free_port()
    command = [str(CARDIOMAPA), "serve", "--host", "127.0.0.1", "--port", str(port)]
    with log.open("w") as out:
        process = subprocess.Popen(
            _pinned([*command, "--workers", str(workers)], cpu),
            env=_env(database_url, settings),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            if process.poll() is not None:
                msg = f"cardiomapa serve exited with {process.returncode}:\n{log.read_text()}"
                raise RuntimeError(msg)
            with (
                contextlib.suppress(OSError),
                urllib.request.urlopen(f"{base}/api/health", timeout=2) as answer,
            ):
                if answer.status == 200:
                    break
            if time.monotonic() > deadline:
                msg = f"cardiomapa serve did not answer within {timeout_s:g} s:\n{log.read_text()}"
                raise RuntimeError(msg)
            time.sleep(0.2)
        while workers > 1 and log.read_text().count("Application startup complete") < workers:
            if time.monotonic() > deadline:
                msg = f"not every worker started within {timeout_s:g} s:\n{log.read_text()}"
                raise RuntimeError(msg)
            time.sleep(0.2)
        yield Server(process.pid, base)
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def check_answers(server: Server, paths: list[str]) -> tuple[int, int]:
    """GET every nearest path once: all must be 200 with results. Returns min/max results."""
    counts = []
    for path in paths:
        try:
            with urllib.request.urlopen(server.base + path, timeout=10) as answer:
                body = json.load(answer)
        except urllib.error.HTTPError as exc:
            msg = f"GET {path} answered {exc.code}: {exc.read()[:500]!r}"
            raise RuntimeError(msg) from None
        if not body.get("results"):
            msg = f"GET {path} answered no device: {body}"
            raise RuntimeError(msg)
        counts.append(len(body["results"]))
    return min(counts), max(counts)


# --- the load generator -----------------------------------------------------------------------


def ensure_wrk() -> str:
    """Path of ``wrk``; installed with apt-get when missing and running as root."""
    found = shutil.which("wrk")
    if found:
        return found
    if os.geteuid() == 0 and shutil.which("apt-get"):
        print("# wrk is missing: installing it (apt-get install -y wrk)", flush=True)
        install = ["apt-get", "install", "-y", "-qq", "--no-install-recommends", "wrk"]
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        if subprocess.run(install, env=env, capture_output=True, check=False).returncode != 0:
            subprocess.run(["apt-get", "update", "-qq"], env=env, capture_output=True, check=False)
            subprocess.run(install, env=env, capture_output=True, check=False)
        found = shutil.which("wrk")
        if found:
            return found
    msg = (
        "wrk is not installed: install it with `sudo apt-get install -y wrk` (Debian/Ubuntu) "
        "and run this again (as root the script installs it itself)."
    )
    raise SystemExit(msg)


def wrk_version(wrk: str) -> str:
    done = subprocess.run([wrk, "--version"], capture_output=True, text=True, check=False)
    first = (done.stdout or done.stderr).splitlines()
    return first[0].split(" Copyright")[0] if first else "wrk (version unknown)"


def write_script(paths: list[str], target: Path) -> Path:
    quoted = ", ".join(json.dumps(p) for p in paths)  # JSON strings are valid Lua strings here
    target.write_text(LUA % (quoted, MARK))
    return target


@dataclass(frozen=True)
class Run:
    """One wrk run against one endpoint, and the server's CPU time meanwhile."""

    requests: int
    seconds: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    errors: int
    server_cpu_s: float
    others_cpu_s: float  # CPU time used meanwhile by anything but the server and wrk

    @property
    def rps(self) -> float:
        return self.requests / self.seconds

    @property
    def cpu_ms_per_request(self) -> float:
        return 1000 * self.server_cpu_s / max(self.requests, 1)

    @property
    def others_share(self) -> float:
        """CPUs' worth of time other processes took while this ran (0.25 = a quarter of one)."""
        return self.others_cpu_s / self.seconds


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time so far of process ``pid``, all its threads and its living
    descendants (the workers of ``serve --workers``)."""
    parents: dict[int, int] = {}
    ticks: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            head, tail = stat.read_text().rsplit(")", 1)
        except OSError:  # the process ended meanwhile
            continue
        fields = tail.split()
        child = int(head.split(" (", 1)[0])
        parents[child] = int(fields[1])
        ticks[child] = int(fields[11]) + int(fields[12])
    tree, grew = {pid}, True
    while grew:
        more = {child for child, parent in parents.items() if parent in tree} - tree
        tree |= more
        grew = bool(more)
    return sum(ticks.get(member, 0) for member in tree) / os.sysconf("SC_CLK_TCK")


def _busy_seconds() -> float:
    """CPU time all processes on the machine have used so far (``/proc/stat``)."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def _children_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_wrk(
    wrk: str,
    server: Server,
    script: Path,
    *,
    seconds: float,
    connections: int,
    threads: int,
    cpu: int | None,
) -> Run:
    command = [
        wrk, f"-t{threads}", f"-c{connections}", f"-d{seconds:g}s", "--timeout", "5s",
        "-s", str(script), server.base + "/",
    ]  # fmt: skip
    before = _cpu_seconds(server.pid), _busy_seconds(), _children_seconds()
    done = subprocess.run(_pinned(command, cpu), capture_output=True, text=True, check=False)
    after = _cpu_seconds(server.pid), _busy_seconds(), _children_seconds()
    server_s, busy_s, wrk_s = (a - b for a, b in zip(after, before, strict=True))
    line = next((s for s in done.stdout.splitlines() if s.startswith(MARK)), None)
    if done.returncode != 0 or line is None:
        msg = f"wrk failed ({done.returncode}):\n{done.stdout}\n{done.stderr}"
        raise RuntimeError(msg)
    figures = json.loads(line.removeprefix(MARK))
    errors = sum(figures[k] for k in ("connect", "read", "write", "status", "timeout"))
    return Run(
        requests=figures["requests"],
        seconds=figures["duration_us"] / 1e6,
        p50_ms=figures["p50_us"] / 1000,
        p90_ms=figures["p90_us"] / 1000,
        p99_ms=figures["p99_us"] / 1000,
        max_ms=figures["max_us"] / 1000,
        errors=errors,
        server_cpu_s=server_s,
        others_cpu_s=max(0.0, busy_s - server_s - wrk_s),
    )


def wait_quiet(max_other_cpu: float, *, timeout_s: float = 120.0) -> None:
    """Wait (at most ``timeout_s``) until other processes use ≤ ``max_other_cpu`` CPUs for 2 s."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        before = _busy_seconds()
        time.sleep(2.0)
        if (_busy_seconds() - before) / 2.0 <= max_other_cpu:
            return


def quiet_run(measure: Callable[[], Run], *, max_other_cpu: float, attempts: int = 3) -> Run:
    """``measure()`` on a quiet machine: redone (up to ``attempts`` times in all) when other
    processes took more than ``max_other_cpu`` CPUs meanwhile. The last attempt is kept."""
    for _ in range(attempts):
        wait_quiet(max_other_cpu)
        run = measure()
        if run.others_share <= max_other_cpu:
            break
    return run


def median_run(runs: list[Run]) -> Run:
    """The run with the median throughput (the lower middle one for an even count)."""
    ordered = sorted(runs, key=lambda r: r.rps)
    return ordered[(len(ordered) - 1) // 2]


# --- printing ---------------------------------------------------------------------------------


def figures(run: Run) -> str:
    return f"{run.rps:>7,.0f} req/s  p50 {run.p50_ms:>6.2f} ms  p99 {run.p99_ms:>6.2f} ms"


def header(args: argparse.Namespace, wrk: str, cpus: tuple[int | None, int | None]) -> None:
    city = load_city_profile(DATA_DIR / "city.json")
    now = dt.datetime.now(ZoneInfo(city.timezone))
    print(f"# cardiomapa HTTP API benchmark, {now:%Y-%m-%d %H:%M} {city.timezone} ({now:%A})")
    print(machine_line() + f", load average {os.getloadavg()[0]:.2f} at start")

    def version(name: str) -> str:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            return "not installed"

    loop = "uvloop" if util.find_spec("uvloop") else "asyncio"
    http = "httptools" if util.find_spec("httptools") else "h11"
    print(
        f"# python {platform.python_version()}, uvicorn {version('uvicorn')} (loop {loop}, http "
        f"{http}), fastapi {version('fastapi')}, starlette {version('starlette')}, pydantic "
        f"{version('pydantic')}, anyio {version('anyio')}; {wrk_version(wrk)}"
    )
    print(f"# code: git {git_describe(ROOT)}")
    server_cpu, wrk_cpu = cpus
    pinning = (
        f"server pinned to CPU {server_cpu}, wrk to CPU {wrk_cpu}"
        if server_cpu is not None
        else "no CPU pinning"
    )
    print(
        f"# server: `cardiomapa serve` (1 uvicorn worker, access log on, default settings); "
        f"client: wrk -t{args.threads} -c{args.connections}, keep-alive; {pinning}"
    )
    at = f"at={args.at}" if args.at else "no `at` (now: the answer depends on the time of day)"
    print(
        f"# GET /api/nearest?lat=…&lon=… cycling over {N_POINTS} points inside the municipality "
        f"(Gaussian, σ {POINT_SPREAD_M:g} m around the centre, seed {SEED}), limit 3 (default), "
        f"{at}"
    )
    print(
        f"# warm-up {args.warmup:g} s per endpoint, then {args.rounds} round(s) of "
        f"{args.duration:g} s per endpoint, alternating; the median-throughput round is kept; "
        f"a round during which other processes used > {args.max_other_cpu:g} CPU is redone after "
        "waiting for a quiet machine (3 tries at most)"
    )
    print(
        "# ratio = nearest / health throughput (target ≥ 0.50); server CPU = its CPU time per "
        "request (all threads) while wrk ran"
    )


def main(argv: list[str] | None = None) -> int:
    """Parse the options, then measure every case × backend and print one line each."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="sample data, 1 round of 5 s")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per round")
    parser.add_argument("--warmup", type=float, default=3.0, help="warm-up seconds per endpoint")
    parser.add_argument("--rounds", type=int, default=3, help="rounds per endpoint (median kept)")
    parser.add_argument("--connections", type=int, default=16, help="wrk connections")
    parser.add_argument("--threads", type=int, default=1, help="wrk threads")
    parser.add_argument(
        "--backends", default=",".join(BACKENDS), help="comma-separated: spatialite,postgis"
    )
    parser.add_argument("--cases", default=",".join(CASES), help="comma-separated: sample,5k")
    parser.add_argument(
        "--postgres-url", default=DEFAULT_POSTGRES_URL, help="server for the throwaway database"
    )
    parser.add_argument("--at", help="ISO instant to ask about (default: none, i.e. now)")
    parser.add_argument(
        "--max-other-cpu",
        type=float,
        default=0.25,
        help="redo a round when other processes used more CPUs than this meanwhile (max 3 tries)",
    )
    parser.add_argument("--no-pin", action="store_true", help="do not pin server and wrk to CPUs")
    parser.add_argument(
        "--workers",
        default="1,2",
        help="worker counts to compare on /api/nearest, unpinned (comma-separated; '' skips)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the temporary files and logs")
    args = parser.parse_args(argv)
    if args.quick:
        args.duration, args.rounds, args.cases = 5.0, 1, "sample"
    backends = [b for b in args.backends.split(",") if b]
    worker_counts = [int(w) for w in args.workers.split(",") if w]
    cases = [c for c in args.cases.split(",") if c]
    for name, chosen, allowed in (("backend", backends, BACKENDS), ("case", cases, CASES)):
        if wrong := [c for c in chosen if c not in allowed]:
            parser.error(f"unknown {name} {wrong[0]!r}; choose from {', '.join(allowed)}")
    if not CARDIOMAPA.exists():
        parser.error(f"{CARDIOMAPA} not found: run this with the project's .venv/bin/python")

    wrk = ensure_wrk()
    available_cpus = sorted(os.sched_getaffinity(0))
    cpus: tuple[int | None, int | None] = (
        (available_cpus[0], available_cpus[1])
        if len(available_cpus) >= 2 and not args.no_pin and shutil.which("taskset")
        else (None, None)
    )
    header(args, wrk, cpus)
    city = load_city_profile(DATA_DIR / "city.json")
    at = f"&at={urllib.parse.quote(args.at, safe='')}" if args.at else ""
    nearest_paths = [f"/api/nearest?lat={lat}&lon={lon}{at}" for lon, lat in query_points(city)]
    work = Path(tempfile.mkdtemp(prefix="cardiomapa-bench-api-"))
    scripts = {
        "nearest": write_script(nearest_paths, work / "nearest.lua"),
        "health": write_script(["/api/health"], work / "health.lua"),
    }
    postgis = PostgisDatabases(args.postgres_url)
    results: list[tuple[str, str, Run, Run]] = []
    scalings: list[tuple[str, str, dict[int, Run]]] = []
    try:
        for case in cases:
            if case == "sample":
                data_dir, what = DATA_DIR, "data/ sample"
            else:
                data_dir = synthetic_data_dir(city, work / "data-5k", n=SYNTHETIC_DEVICES)
                what = f"{SYNTHETIC_DEVICES:,} synthetic verified devices (seed {SEED})"
            n_devices = len(
                json.loads((data_dir / "defibrillators.geojson").read_text())["features"]
            )
            for backend in backends:
                label = f"{case:<7} {backend:<10}"
                if backend == "spatialite":
                    url = f"sqlite:///{work / f'{case}.sqlite'}"
                else:
                    try:
                        url = postgis.create()
                    except Exception as exc:  # any failure: report it and go on
                        print(
                            f"{label} not measured: no PostGIS at {args.postgres_url} ({exc}); "
                            "`make postgres` starts it",
                            flush=True,
                        )
                        continue
                try:
                    load_s = load(url, data_dir)
                    with serve(url, cpu=cpus[0], log=work / f"serve-{case}-{backend}.log") as srv:
                        low, high = check_answers(srv, nearest_paths)
                        print(
                            f"{label} data     {what}: {n_devices:,} devices, loaded in "
                            f"{load_s:.1f} s; each answer lists {low}–{high} devices",
                            flush=True,
                        )
                        runs: dict[str, list[Run]] = {"health": [], "nearest": []}

                        def measure(endpoint: str, seconds: float, srv: Server = srv) -> Run:
                            return run_wrk(
                                wrk,
                                srv,
                                scripts[endpoint],
                                seconds=seconds,
                                connections=args.connections,
                                threads=args.threads,
                                cpu=cpus[1],
                            )

                        for endpoint in runs:
                            measure(endpoint, args.warmup)
                        for _ in range(args.rounds):
                            for endpoint, done in runs.items():
                                done.append(
                                    quiet_run(
                                        lambda e=endpoint: measure(e, args.duration),
                                        max_other_cpu=args.max_other_cpu,
                                    )
                                )
                    scaling = {
                        workers: measure_workers(
                            args,
                            wrk,
                            url,
                            scripts,
                            workers=workers,
                            log=work / f"serve-{case}-{backend}-{workers}w.log",
                        )
                        for workers in worker_counts
                    }
                finally:
                    if backend == "postgis":
                        postgis.drop(url)
                health, nearest = median_run(runs["health"]), median_run(runs["nearest"])
                errors = sum(r.errors for rs in runs.values() for r in rs)
                others = max(r.others_share for rs in runs.values() for r in rs)
                rounds = "; ".join(
                    f"{name} " + " / ".join(f"{r.rps:,.0f}" for r in done)
                    for name, done in runs.items()
                )
                print(
                    f"{label} nearest {figures(nearest)}  health {figures(health)}  ratio "
                    f"{ratio(nearest.rps, health.rps):>5}  server CPU "
                    f"{nearest.cpu_ms_per_request:.2f} vs {health.cpu_ms_per_request:.2f} ms/req; "
                    f"rounds (req/s): {rounds}; other processes ≤ {others:.2f} CPU; "
                    f"errors {errors}",
                    flush=True,
                )
                results.append((case, backend, nearest, health))
                if scaling:
                    print(f"{label} workers " + scaling_line(scaling), flush=True)
                    scalings.append((case, backend, scaling))
    finally:
        if args.keep:
            print(f"# files and server logs kept in {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)

    for case, backend, nearest, health in results:
        fast = nearest.rps >= TARGET_RPS and nearest.p99_ms < TARGET_P99_MS
        share = nearest.rps / health.rps
        print(
            f"# target ({case}, {backend}): ≥ {TARGET_RPS:,.0f} req/s with p99 < "
            f"{TARGET_P99_MS:g} ms: {_met(fast)} ({nearest.rps:,.0f} req/s, p99 "
            f"{nearest.p99_ms:.1f} ms); ≥ {TARGET_RATIO:.0%} of health: "
            f"{_met(share >= TARGET_RATIO)} ({share:.0%})"
        )
    for case, backend, scaling in scalings:
        if 1 in scaling and 2 in scaling:
            gain = scaling[2].rps / scaling[1].rps
            print(
                f"# target ({case}, {backend}): 2 workers ≥ {TARGET_SCALING:g}× one: "
                f"{_met(gain >= TARGET_SCALING)} ({gain:.2f}×)"
            )
    return 0


def measure_workers(
    args: argparse.Namespace,
    wrk: str,
    url: str,
    scripts: dict[str, Path],
    *,
    workers: int,
    log: Path,
) -> Run:
    """``/api/nearest`` throughput with ``serve --workers N``, nothing pinned (the workers and
    wrk share the machine's cores alike for every N); the median of ``args.rounds`` rounds."""
    with serve(url, cpu=None, log=log, workers=workers) as srv:
        run_wrk(wrk, srv, scripts["nearest"], seconds=args.warmup,
                connections=args.connections, threads=args.threads, cpu=None)  # fmt: skip
        return median_run(
            [
                quiet_run(
                    lambda: run_wrk(
                        wrk,
                        srv,
                        scripts["nearest"],
                        seconds=args.duration,
                        connections=args.connections,
                        threads=args.threads,
                        cpu=None,
                    ),
                    max_other_cpu=args.max_other_cpu,
                )
                for _ in range(args.rounds)
            ]
        )


def scaling_line(scaling: dict[int, Run]) -> str:
    """One worker count after another, each throughput with its ratio to the first."""
    first = next(iter(scaling.values()))
    return (
        "  ".join(
            f"{workers}: nearest {figures(run)} ({ratio(run.rps, first.rps)})"
            for workers, run in scaling.items()
        )
        + "  (unpinned)"
    )


def _met(flag: bool) -> str:
    return "met" if flag else "NOT met"


if __name__ == "__main__":
    sys.exit(main())
