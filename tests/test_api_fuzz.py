"""Fuzz of the whole HTTP API from its own OpenAPI document (schemathesis on hypothesis).

Every operation in ``/openapi.json`` is called with generated requests, both ones that fit the
schema and ones that break it, anonymously and with an entity, a planner and an administrator
token, against the real app (its lifespan opens the store) on SpatiaLite and on PostGIS. Every
answer must be documented: never a 5xx, a documented status code, content type and headers, and
a body that matches the documented schema (error bodies are ``ErrorPublic``). Schema-valid
requests may still be refused with 422 (a point outside the municipality, unreadable opening
hours): that is the semantic validation working, so "positive data acceptance" is not checked.

Every check schemathesis has runs on every answer except "positive data acceptance" (see
:data:`CHECKS`), and the (operation, identity) jobs run :data:`WORKERS` at a time, so the app
serves concurrent requests as it does in production.

Generated path ids, points and ``If-Match`` versions are often pinned to records, places and
versions that exist, so requests get past "not found" and "outside the municipality" into the
routes' real work. A few hand-written requests first make sure that each write and analysis
route succeeds with a token that may use it, and that values at the ends of what the schema
allows (which once crashed the app or exhausted its memory) are refused. Each job's requests
are fixed (a seed per operation and identity, no example database; the order in which
concurrent jobs reach the store is not) and bounded (``max_examples`` per operation and
identity, no shrinking); nothing is timed.
"""

from __future__ import annotations

import threading
import zlib
from collections import Counter, defaultdict
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from traceback import format_exception
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st
from schemathesis import APIOperation, Case, GenerationMode, Response
from schemathesis.checks import CHECKS as REGISTERED_CHECKS
from schemathesis.core.parameters import ParameterLocation
from schemathesis.errors import FailureGroup
from schemathesis.python import asgi
from schemathesis.specs.openapi.checks import positive_data_acceptance

from api.app import create_app
from geo.core.layers import Layers
from geo.io.store import Store
from geo.services.tokens import issue_token
from geo.settings import Settings

#: Every check schemathesis has (status code, content type, headers and body schema conformance,
#: negative data rejection, missing required header, unsupported method and its Allow header,
#: ignored auth, ...) but one: "positive_data_acceptance" would require every schema-valid
#: request to succeed, and the API rightly refuses some with 422 for what no schema can say (a
#: point outside the municipality, unreadable opening hours, a check date after today).
CHECKS = [check for check in REGISTERED_CHECKS.get_all() if check is not positive_data_acceptance]
#: Fuzz jobs (an operation as one identity) run at the same time, so the app serves concurrent
#: requests (its thread pool, the store's connection pool, the caches and limiters).
WORKERS = 4


class Turns:
    """Workers take turns to generate and check cases; only their requests overlap.

    Hypothesis is not thread-safe on this Python: describing a strategy's lambdas parses source
    with ``ast`` (CPython 3.11's AST conversion keeps a global depth counter: "SystemError: AST
    constructor recursion depth mismatch") through an unsynchronised LRU cache (``KeyError``).
    Those are the test's own failures, not the app's, so generation and checks run one worker at
    a time while each worker's request to the app runs concurrently with the others.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._local = threading.local()

    @contextmanager
    def turn(self) -> Iterator[None]:
        """Hold the turn (a worker, for its whole job except its requests)."""
        with self._lock:
            self._local.holding = True
            try:
                yield
            finally:
                self._local.holding = False

    @contextmanager
    def request(self) -> Iterator[None]:
        """Give the turn up while a request is in flight (nothing to give outside a job)."""
        if not getattr(self._local, "holding", False):
            yield
            return
        self._lock.release()
        try:
            yield
        finally:
            self._lock.acquire()


TOKENS = ("entity", "planner", "admin")
IDENTITIES = ("anonymous", *TOKENS)
#: Generated requests per operation and identity.
MAX_EXAMPLES = 20
#: The analysis routes solve a coverage or siting problem per call: a few requests are enough.
SLOW_EXAMPLES = {
    "GET /api/siting": 4,
    "GET /api/gaps": 4,
    "GET /api/coverage": 6,
    "GET /api/outcomes": 6,
}
#: Records of the tiny fixture layers, to pin generated path ids to.
KNOWN_IDS = ("dea-1", "dea-2", "dea-3", "ent-1", "ent-2", "ceas-oeste", "ceas-este", "coh-1")
#: Around the tiny fixture's devices, well inside the municipality.
POINTS = st.tuples(
    st.floats(min_value=-4.545, max_value=-4.52), st.floats(min_value=42.0, max_value=42.02)
)
VERSIONS = st.sampled_from(['"1"', '"2"', 'W/"3"', "*"])
#: Answers that mean the route's own code did not run: unreadable body, no token, bad shape.
NOT_REACHED = {400, 401, 413, 422}


@dataclass
class Target:
    """The running app, its schema and tokens, and the statuses the fuzz saw."""

    schema: Any
    tokens: dict[str, str]
    record_ids: list[str] = field(default_factory=lambda: list(KNOWN_IDS))
    report_ids: list[int] = field(default_factory=list)
    statuses: dict[tuple[str, str], Counter[int]] = field(
        default_factory=lambda: defaultdict(Counter)
    )
    lock: threading.Lock = field(default_factory=threading.Lock)
    turns: Turns = field(default_factory=Turns)

    def send(self, case: Case, identity: str) -> Response:
        """Call the app as ``identity`` and run every check on the answer."""
        token = self.tokens.get(identity)  # none for "anonymous"
        if _drops_authorization(case):
            token = None  # the request is about the missing header: putting it back would hide it
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        with self.turns.request():
            response = case.call(headers=headers)
        # A negative case may leave the required Authorization header out: count what was sent.
        sent = identity if "Authorization" in response.request.headers else "anonymous"
        with self.lock:  # the workers share the counts
            self.statuses[case.operation.label, sent][response.status_code] += 1
        case.validate_response(response, checks=CHECKS, headers=headers)
        return response


def _drops_authorization(case: Case) -> bool:
    """A negative case whose mutation left out the operation's required ``Authorization``."""
    meta = case.meta
    if meta is None or not meta.is_negative_at(ParameterLocation.HEADER):
        return False
    required = any(
        parameter.name.lower() == "authorization" and parameter.is_required
        for parameter in case.operation.headers
    )
    return required and "authorization" not in {name.lower() for name in case.headers or {}}


@pytest.fixture
def target(db_url: str, tiny_layers: Layers) -> Iterator[Target]:
    with Store.open(db_url) as store:
        store.load(tiny_layers)
        tokens = {
            "entity": issue_token(store, role="entity", entity_id="ent-1").secret,
            "planner": issue_token(store, role="planner").secret,
            "admin": issue_token(store, role="admin").secret,
        }
    # Reports and failed sign-ins are limited per client address, and the fuzz is one client
    # sending many (the "ignored auth" check sends wrong tokens on purpose).
    settings = Settings(
        database_url=db_url, report_rate_limit=1_000_000, auth_failure_limit=1_000_000
    )
    app = create_app(settings)
    try:
        # Fetching the schema over ASGI starts the app's lifespan, which opens the store.
        yield Target(schema=schemathesis.openapi.from_asgi("/openapi.json", app), tokens=tokens)
    finally:
        asgi.shutdown_lifespans()  # closes the store before the database is dropped


def _expect(target: Target, identity: str, label: str, expected: int, **parts: Any) -> Response:
    """Send a hand-written request (``parts`` as for schemathesis' ``Case``), checked as usual."""
    method, path = label.split(" ")
    operation: APIOperation = target.schema[path][method]
    response = target.send(operation.Case(**parts), identity)
    assert response.status_code == expected, (label, identity, parts, response.text)
    return response


def _seed(target: Target) -> None:
    """Hand-written requests that each write and analysis route must accept."""

    def send(identity: str, label: str, expected: int, **parts: Any) -> Response:
        return _expect(target, identity, label, expected, **parts)

    point = {"type": "Point", "coordinates": [-4.531, 42.012]}
    pending = []
    for name in ("DEA Prueba Uno", "DEA Prueba Dos"):
        properties = {"name": name, "access": "yes", "opening_hours": "Mo-Fr 09:00-14:00"}
        body = {"type": "Feature", "geometry": point, "properties": properties}
        pending.append(send("entity", "POST /api/defibrillators", 201, body=body).json()["id"])
    target.record_ids.extend(pending)  # the second one is left for the fuzz to review

    device = "/api/defibrillators/{device_id}"
    dea_1 = {"device_id": "dea-1"}
    change = {"properties": {"check_date": "2026-06-02"}}
    send("entity", f"PATCH {device}", 200, path_parameters=dea_1, body=change,
         headers={"If-Match": '"1"'})  # fmt: skip
    use = {"used_at": "2026-01-10T10:00:00Z", "shock_delivered": True, "shocks": 1}
    send("entity", f"POST {device}/uses", 201, path_parameters=dea_1, body=use)
    report = {"kind": "broken", "message": "La luz parpadea en rojo."}
    for _ in range(2):
        answer = send("anonymous", f"POST {device}/reports", 202,
                      path_parameters={"device_id": "dea-2"}, body=report)  # fmt: skip
        target.report_ids.append(answer.json()["id"])

    verified = {"decision": "verified"}
    send("planner", f"POST {device}/review", 200,
         path_parameters={"device_id": pending[0]}, body=verified)  # fmt: skip
    accepted = {"decision": "accepted"}
    send("planner", "POST /api/reports/{report_id}/review", 200,
         path_parameters={"report_id": target.report_ids[0]}, body=accepted)  # fmt: skip
    for path in ("/api/reports", "/api/uses", "/api/audit", "/api/maintenance"):
        send("admin", f"GET {path}", 200)
    for path in ("/api/coverage", "/api/gaps"):
        send("planner", f"GET {path}", 200)
    send("planner", "GET /api/siting", 200, query={"new": 1, "method": "greedy"})


def _edges(target: Target) -> None:
    """Values at the ends of what the schema allows, each of which once made a 500 or ran the
    server out of memory: refused as the schema documents instead."""
    nearest = {"lat": 42.01, "lon": -4.53}
    requests: list[tuple[str, str, int, dict[str, Any]]] = [
        ("planner", "GET /api/siting", 422,
         {"query": {"candidates": "all", "new": 1, "radius_m": 0.001}}),  # a grid every 0.5 mm
        ("planner", "GET /api/gaps", 422, {"query": {"cell_m": 1e-300}}),
        ("anonymous", "GET /api/nearest", 422,
         {"query": {**nearest, "at": "9999-12-31T23:59:59-10:00"}}),
        ("anonymous", "GET /api/defibrillators", 422, {"query": {"open_at": "0001-01-01T00:00"}}),
        ("planner", "GET /api/coverage", 422, {"query": {"weekly": True, "week_of": "9999-12-31"}}),
        ("admin", "GET /api/maintenance", 422, {"query": {"today": "0001-01-01"}}),
        ("anonymous", "GET /api/opening-hours", 422,
         {"query": {"text": "24/7", "week_of": "9999-12-31"}}),
        ("anonymous", "GET /api/opening-hours", 422, {"query": {"text": "24/7", "week_of": "0"}}),
        ("anonymous", "GET /api/nearest", 422,
         {"query": {**nearest, "at": "2026-03-29T02:30"}}),  # the hour the clocks skip
        ("entity", "POST /api/defibrillators", 422,
         {"body": {"type": "Feature", "properties": {"name": "DEA", "access": "yes"},
                   "geometry": {"type": "Point", "coordinates": ["-4.531", "42.012"]}}}),
        ("entity", "POST /api/defibrillators/{device_id}/uses", 422,
         {"path_parameters": {"device_id": "dea-1"},
          "body": {"used_at": "0001-01-01T00:00:00+10:00"}}),
    ]  # fmt: skip
    for identity, label, expected, parts in requests:
        _expect(target, identity, label, expected, **parts)


def _pin(
    case: Case,
    *,
    record_id: str | None,
    report_id: int | None,
    point: tuple[float, float] | None,
    version: str | None,
) -> None:
    """Point a generated request at a record, a place and a version that exist."""
    parameters = case.path_parameters
    if parameters:
        for name in ("device_id", "record_id"):
            if name in parameters and record_id is not None:
                parameters[name] = record_id
        if "report_id" in parameters and report_id is not None:
            parameters["report_id"] = report_id
    if version is not None and case.headers and "If-Match" in case.headers:
        case.headers["If-Match"] = version
    if point is None:
        return
    lon, lat = point
    body = case.body
    if isinstance(body, dict):
        geometry = body.get("geometry")
        if isinstance(geometry, dict) and isinstance(geometry.get("coordinates"), list):
            geometry["coordinates"] = [lon, lat]
        if isinstance(body.get("lon"), float) and isinstance(body.get("lat"), float):
            body["lon"], body["lat"] = lon, lat
    query = case.query
    if isinstance(query, dict) and "lat" in query and "lon" in query:
        query["lon"], query["lat"] = lon, lat


def _fuzz(target: Target, operation: APIOperation, identity: str, examples: int) -> None:
    cases = st.one_of(
        operation.as_strategy(GenerationMode.POSITIVE),
        operation.as_strategy(GenerationMode.NEGATIVE),
    )

    @seed(zlib.crc32(f"{operation.label} {identity}".encode()))
    @settings(
        max_examples=examples,
        database=None,
        deadline=None,
        phases=(Phase.explicit, Phase.generate),  # no shrinking: the store keeps what was sent
        suppress_health_check=list(HealthCheck),
        print_blob=False,
    )
    @given(
        case=cases,
        record_id=st.none() | st.sampled_from(target.record_ids),
        report_id=st.none() | st.sampled_from(target.report_ids),
        point=st.none() | POINTS,
        version=st.none() | VERSIONS,
    )
    def run(
        case: Case,
        record_id: str | None,
        report_id: int | None,
        point: tuple[float, float] | None,
        version: str | None,
    ) -> None:
        _pin(case, record_id=record_id, report_id=report_id, point=point, version=version)
        target.send(case, identity)

    run()


def test_every_operation_answers_as_documented(target: Target) -> None:
    _seed(target)
    _edges(target)
    target.statuses.clear()  # what follows counts the fuzz alone
    operations = [result.ok() for result in target.schema.get_all_operations()]

    def job(operation: APIOperation, identity: str) -> str | None:
        examples = SLOW_EXAMPLES.get(operation.label, MAX_EXAMPLES)
        try:
            with target.turns.turn():
                _fuzz(target, operation, identity, examples)
        except (Exception, FailureGroup) as exc:  # a FailureGroup holds every failed check
            # The whole group: a flaky failure's first error is only in its traceback.
            return f"{operation.label} ({identity}):\n" + "".join(format_exception(exc))
        return None

    with ThreadPoolExecutor(WORKERS) as pool:
        jobs = [pool.submit(job, op, identity) for op in operations for identity in IDENTITIES]
        failures = [failure for future in jobs if (failure := future.result()) is not None]
    assert not failures, "\n\n".join(failures)

    seen = target.statuses
    for operation in operations:
        label = operation.label
        # A valid token is never refused, and the fuzz itself gets into every route's own code.
        for identity in TOKENS:
            assert seen[label, identity] and 401 not in seen[label, identity], (label, identity)
        statuses = set().union(*(seen[label, identity] for identity in IDENTITIES))
        assert statuses - NOT_REACHED, (label, statuses)
