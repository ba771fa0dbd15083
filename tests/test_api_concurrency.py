"""Concurrent writers against a real ``cardiomapa serve`` process, on SpatiaLite and PostGIS.

What a client is told must be true: every write answered with a 2xx is stored exactly once, no
acknowledged update is lost when several clients change one device at the same time, a stale
``If-Match`` is refused (412) rather than overwriting, and a server killed with SIGKILL while
writers are running comes back on the same database with every acknowledged write and no
half-written one.

Lost updates are made visible by construction: on a shared ("hot") device each writer thread owns
one field and writes a value no other request writes, so the final device must show every
writer's last acknowledged value, and the audit log must show each acknowledged value introduced
by exactly one ``update`` entry, in an unbroken chain of versions where each entry starts from the
state the previous one left.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from servers import Server

from geo.core.layers import Layers
from geo.io.store import Store
from geo.services.tokens import issue_token

#: Each writer thread of an entity owns one field of that entity's hot device.
HOT_FIELDS = ("location_text", "address", "phone", "level", "check_date", "battery_expiry",
              "pads_expiry", "installed_on")  # fmt: skip
DATE_FIELDS = {"check_date", "battery_expiry", "pads_expiry", "installed_on"}
ENTITIES = ("ent-1", "ent-2")
REGISTRATION = "entity-registration"
PENDING = "/api/defibrillators?verification=pending"


def hot_value(name: str, writer: int, round_: int) -> str:
    """A value no other request writes to the hot device (each field there has one writer).

    Installation dates run backwards from 2019 and the other dates forwards from 2020, so
    whatever the interleaving a check is never before the installation (that would be refused).
    """
    if name == "installed_on":
        return (dt.date(2019, 12, 31) - dt.timedelta(days=round_)).isoformat()
    if name in DATE_FIELDS:
        return (dt.date(2020, 1, 1) + dt.timedelta(days=round_)).isoformat()
    return f"w{writer}-r{round_}"


def new_device(name: str, writer: int, round_: int) -> dict[str, Any]:
    return {
        "type": "Feature",
        "geometry": {"type": "Point",
                     "coordinates": [-4.53 + 0.0001 * writer, 42.01 + 0.00001 * (round_ % 1000)]},
        "properties": {"name": name, "access": "yes", "opening_hours": "24/7"},
        "emergency": {"cabinet_code": f"code {name}"},
    }  # fmt: skip


# --- the server -------------------------------------------------------------------------------


@pytest.fixture
def seeded(db_url: str, tiny_layers: Layers) -> dict[str, str]:
    """The tiny layers loaded, and a bearer secret per entity and for a planner."""
    with Store.open(db_url) as store:
        store.load(tiny_layers)
        tokens = {entity: issue_token(store, role="entity", entity_id=entity).secret
                  for entity in ENTITIES}  # fmt: skip
        tokens["planner"] = issue_token(store, role="planner").secret
    return tokens


@pytest.fixture
def start_server(db_url: str, tmp_path: Path) -> Iterator[Callable[[], Server]]:
    """Start servers on the test's database; every one is stopped at the end."""
    started: list[Server] = []

    def start() -> Server:
        server = Server(db_url, tmp_path / f"server-{len(started)}.log")
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


def client(server: Server, secret: str) -> httpx.Client:
    return httpx.Client(
        base_url=server.base, headers={"Authorization": f"Bearer {secret}"}, timeout=120
    )


def fail_on(response: httpx.Response, *expected: int) -> None:
    if response.status_code not in expected:
        pytest.fail(
            f"{response.request.method} {response.request.url} → {response.status_code}: "
            f"{response.text[:500]}"
        )


# --- the writers ------------------------------------------------------------------------------


@dataclass
class Writer:
    """One thread: registers devices and updates its own field of its entity's hot device."""

    number: int
    entity: str
    secret: str
    hot_id: str
    hot_field: str
    registered: dict[str, str] = field(default_factory=dict)  # id → name, acknowledged
    patched: list[str] = field(default_factory=list)  # acknowledged hot values, in order
    in_doubt_names: list[str] = field(default_factory=list)
    in_doubt_values: list[str] = field(default_factory=list)

    def register(self, http: httpx.Client, round_: int) -> str | None:
        name = f"DEA w{self.number}-r{round_}"
        try:
            response = http.post("/api/defibrillators", json=new_device(name, self.number, round_))
        except httpx.TransportError:
            self.in_doubt_names.append(name)
            raise
        fail_on(response, 201)
        device_id = str(response.json()["id"])
        assert response.json()["properties"]["name"] == name
        assert response.headers["ETag"] == '"1"'
        self.registered[device_id] = name
        return device_id

    def patch_hot(self, http: httpx.Client, round_: int) -> None:
        value = hot_value(self.hot_field, self.number, round_)
        body = {"properties": {self.hot_field: value}}
        try:
            response = http.patch(f"/api/defibrillators/{self.hot_id}", json=body)
        except httpx.TransportError:
            self.in_doubt_values.append(value)
            raise
        fail_on(response, 200)
        # The answer is the merged device: this change, on top of whatever others wrote.
        assert response.json()["properties"][self.hot_field] == value
        assert response.headers["ETag"] == f'"{response.json()["properties"]["version"]}"'
        self.patched.append(value)


def make_writers(server: Server, tokens: dict[str, str], per_entity: int) -> list[Writer]:
    """``per_entity`` writers per entity, and one hot device per entity (made through the API)."""
    hot: dict[str, str] = {}
    for entity in ENTITIES:
        with client(server, tokens[entity]) as http:
            response = http.post("/api/defibrillators", json=new_device(f"hot {entity}", 99, 0))
            fail_on(response, 201)
            hot[entity] = str(response.json()["id"])
    return [
        Writer(number=len(ENTITIES) * i + e, entity=entity, secret=tokens[entity],
               hot_id=hot[entity], hot_field=HOT_FIELDS[i])
        for i in range(per_entity)
        for e, entity in enumerate(ENTITIES)
    ]  # fmt: skip


# --- reading back -----------------------------------------------------------------------------


def pending_of(server: Server, secret: str) -> list[dict[str, Any]]:
    """Every pending device the token's entity sees, all pages."""
    features: list[dict[str, Any]] = []
    with client(server, secret) as http:
        while True:
            response = http.get(f"{PENDING}&limit=1000&offset={len(features)}")
            fail_on(response, 200)
            page = response.json()
            features += page["features"]
            if len(features) >= page["numberMatched"] or not page["features"]:
                return features


def device_audit(server: Server, secret: str) -> dict[str, list[dict[str, Any]]]:
    """Every audit entry about devices, oldest first, by device id."""
    items: list[dict[str, Any]] = []
    with client(server, secret) as http:
        while True:
            response = http.get(f"/api/audit?record_type=device&limit=1000&offset={len(items)}")
            fail_on(response, 200)
            page = response.json()
            items += page["items"]
            if len(items) >= page["numberMatched"] or not page["items"]:
                break
    by_device: dict[str, list[dict[str, Any]]] = {}
    for item in sorted(items, key=lambda entry: entry["id"]):
        by_device.setdefault(item["record_id"], []).append(item)
    return by_device


def check_registrations(
    server: Server, tokens: dict[str, str], writers: list[Writer], *, exact: bool
) -> None:
    """Each acknowledged registration listed exactly once for its entity; those in doubt (the
    answer was lost in the crash) at most once; nothing else registered."""
    for entity in ENTITIES:
        ours = [w for w in writers if w.entity == entity]
        features = pending_of(server, tokens[entity])
        ids = Counter(feature["id"] for feature in features)
        names = Counter(feature["properties"]["name"] for feature in features)
        assert max(ids.values()) == 1
        acknowledged = {i: n for w in ours for i, n in w.registered.items()}
        for device_id, name in acknowledged.items():
            assert ids[device_id] == 1 and names[name] == 1, (device_id, name)
        in_doubt = {name for w in ours for name in w.in_doubt_names}
        assert all(names[name] <= 1 for name in in_doubt)
        if exact:
            assert not in_doubt
        expected = {*acknowledged.values(), *in_doubt, f"hot {entity}"}
        assert set(names) <= expected, set(names) - expected


def check_hot_devices(server: Server, tokens: dict[str, str], writers: list[Writer]) -> None:
    """No lost update on the hot devices: see the module docstring."""
    audit = device_audit(server, tokens["planner"])
    for entity in ENTITIES:
        ours = [w for w in writers if w.entity == entity]
        hot_id = ours[0].hot_id
        with client(server, tokens[entity]) as http:
            response = http.get(f"/api/defibrillators/{hot_id}")
        fail_on(response, 200)
        final = response.json()["properties"]
        entries = audit[hot_id]
        assert [e["action"] for e in entries] == ["create"] + ["update"] * (len(entries) - 1)
        updates = entries[1:]
        # One unbroken chain: each update starts from exactly what the previous one stored.
        assert final["version"] == len(entries) == 1 + len(updates)
        assert response.headers["ETag"] == f'"{final["version"]}"'
        for previous, entry in zip(entries[:-1], updates, strict=True):
            assert entry["before"]["version"] == previous["after"]["version"]
            assert entry["after"]["version"] == entry["before"]["version"] + 1
            for name in HOT_FIELDS:
                assert entry["before"][name] == previous["after"][name], (name, entry["id"])
            # Each PATCH wrote one field with a value never written before: exactly one changes.
            changed = [n for n in HOT_FIELDS if entry["after"][n] != entry["before"][n]]
            assert len(changed) == 1, (entry["id"], changed)
        for writer in ours:
            name = writer.hot_field
            introduced = Counter(
                e["after"][name] for e in updates if e["after"][name] != e["before"][name]
            )
            for value in writer.patched:
                assert introduced[value] == 1, (writer.number, name, value)
            assert all(introduced[value] <= 1 for value in writer.in_doubt_values)
            # Nobody else ever changed this writer's field.
            assert set(introduced) <= {*writer.patched, *writer.in_doubt_values}
            last = writer.patched[-1:] or [entries[0]["after"][name]]
            assert final[name] in {*last, *writer.in_doubt_values}
        acknowledged = sum(len(w.patched) for w in ours)
        in_doubt = sum(len(w.in_doubt_values) for w in ours)
        assert acknowledged <= len(updates) <= acknowledged + in_doubt


def check_storage(db_url: str) -> None:
    """Straight from the database: no half-written registration, versions match the audit log,
    and (SpatiaLite) the file passes ``PRAGMA integrity_check``."""
    with Store.open(db_url) as store:
        devices = store.query_layer("defibrillators", with_version=True)
        entries, matched = store.audit_entries(record_type="device", limit=1_000_000)
        assert len(entries) == matched
        notes = store.private_notes(list(devices["id"]))
        if store.engine.dialect.name == "sqlite":
            with store.engine.connect() as connection:
                check = connection.exec_driver_sql("PRAGMA integrity_check").scalars().all()
                orphans = connection.exec_driver_sql("PRAGMA foreign_key_check").all()
            assert check == ["ok"]
            assert orphans == []
    versions = dict(zip(devices["id"], devices["version"], strict=True))
    sources = dict(zip(devices["id"], devices["source"], strict=True))
    creates = Counter(e["record_id"] for e in entries if e["action"] == "create")
    changes = Counter(e["record_id"] for e in entries if e["action"] != "create")
    registered = {device_id for device_id, source in sources.items() if source == REGISTRATION}
    # Every registered row has its one "create" entry and its private notes, and vice versa.
    assert set(creates) == registered
    assert set(creates.values()) <= {1}
    assert set(notes) == registered
    for device_id, version in versions.items():
        assert version == 1 + changes[device_id], device_id
    assert set(changes) <= set(versions)


def race_if_match(server: Server, secret: str, device_id: str, *, clients: int) -> str:
    """``clients`` clients send If-Match with the device's current version at the same instant:
    exactly one change is stored and every other client is told 412 version_mismatch. Returns
    the winner's value."""
    with client(server, secret) as http:
        version = int(http.get(f"/api/defibrillators/{device_id}").headers["ETag"].strip('"'))
    start = threading.Barrier(clients)

    def run(number: int) -> tuple[int, str, dict[str, Any]]:
        value = f"carrera {number}"
        with client(server, secret) as http:
            start.wait()
            response = http.patch(
                f"/api/defibrillators/{device_id}",
                json={"properties": {"location_text": value}},
                headers={"If-Match": f'"{version}"'},
            )
        fail_on(response, 200, 412)
        return response.status_code, value, response.json()

    with ThreadPoolExecutor(clients) as pool:
        answers = list(pool.map(run, range(clients)))
    winners = [(value, body) for status, value, body in answers if status == 200]
    assert len(winners) == 1, [status for status, _, _ in answers]
    assert all(body["code"] == "version_mismatch" for status, _, body in answers if status == 412)
    value, body = winners[0]
    assert body["properties"]["version"] == version + 1
    with client(server, secret) as http:
        stored = http.get(f"/api/defibrillators/{device_id}")
    assert stored.json()["properties"]["location_text"] == value
    assert stored.headers["ETag"] == f'"{version + 1}"'
    return value


# --- the tests --------------------------------------------------------------------------------


def test_concurrent_writes_are_all_kept_exactly_once(
    db_url: str, seeded: dict[str, str], start_server: Callable[[], Server]
) -> None:
    """16 threads, 8 per entity, each 5 rounds of: register a device, update its own field of
    the entity's hot device (no If-Match: merged), update the new device with If-Match, and
    replay that stale If-Match (412): 320 writes and 80 refusals, every one answered as
    expected, none lost, none doubled. Then 16 clients race with the same If-Match."""
    server = start_server()
    writers = make_writers(server, seeded, per_entity=8)
    rounds = 5
    start = threading.Barrier(len(writers))

    def run(writer: Writer) -> None:
        with client(server, writer.secret) as http:
            start.wait()
            for round_ in range(rounds):
                device_id = writer.register(http, round_)
                writer.patch_hot(http, round_)
                change = {"properties": {"opening_hours": "Mo-Fr 08:00-15:00"}}
                url = f"/api/defibrillators/{device_id}"
                response = http.patch(url, json=change, headers={"If-Match": '"1"'})
                fail_on(response, 200)
                assert response.headers["ETag"] == '"2"'
                stale = {"properties": {"location_text": "stale"}}
                response = http.patch(url, json=stale, headers={"If-Match": '"1"'})
                fail_on(response, 412)
                assert response.json()["code"] == "version_mismatch"

    with ThreadPoolExecutor(len(writers)) as pool:
        for future in [pool.submit(run, writer) for writer in writers]:
            future.result()

    assert all(len(w.registered) == rounds and len(w.patched) == rounds for w in writers)
    check_registrations(server, seeded, writers, exact=True)
    check_hot_devices(server, seeded, writers)
    audit = device_audit(server, seeded["planner"])
    for writer in writers:
        for device_id in writer.registered:
            # create, then exactly the one If-Match update; the stale replay left no trace.
            entries = audit[device_id]
            assert [e["action"] for e in entries] == ["create", "update"]
            assert entries[1]["after"]["opening_hours"] == "Mo-Fr 08:00-15:00"
            assert entries[1]["after"]["location_text"] is None

    raced = next(iter(writers[0].registered))
    winner = race_if_match(server, writers[0].secret, raced, clients=16)
    entries = device_audit(server, seeded["planner"])[raced]
    assert [e["action"] for e in entries] == ["create", "update", "update"]
    assert entries[2]["after"]["location_text"] == winner
    check_storage(db_url)


def test_a_server_killed_mid_load_restarts_consistent(
    db_url: str, seeded: dict[str, str], start_server: Callable[[], Server]
) -> None:
    """SIGKILL while 8 threads register and update: after a restart on the same database every
    acknowledged write is there exactly once, a write whose answer was lost is there at most
    once, no registration is half-written, and the restarted server takes new writes."""
    server = start_server()
    writers = make_writers(server, seeded, per_entity=4)
    stop = threading.Event()

    def run(writer: Writer) -> None:
        with client(server, writer.secret) as http:
            round_ = 0
            while not stop.is_set():
                try:
                    writer.register(http, round_)
                    writer.patch_hot(http, round_)
                except httpx.TransportError:
                    return  # the server is gone; what was in flight is "in doubt"
                round_ += 1

    with ThreadPoolExecutor(len(writers)) as pool:
        futures = [pool.submit(run, writer) for writer in writers]
        # Kill once enough writes are acknowledged, while every writer is still running.
        while sum(len(w.registered) + len(w.patched) for w in writers) < 60:
            if any(future.done() for future in futures):
                break  # a writer failed: its exception is raised below
            time.sleep(0.01)
        all_running = not any(future.done() for future in futures)
        server.kill()
        stop.set()
        for future in futures:
            future.result()
    assert all_running

    restarted = start_server()
    check_registrations(restarted, seeded, writers, exact=False)
    check_hot_devices(restarted, seeded, writers)
    check_storage(db_url)

    # The restarted server takes new writes, on top of what survived.
    writer = writers[0]
    with client(restarted, writer.secret) as http:
        version = int(http.get(f"/api/defibrillators/{writer.hot_id}").headers["ETag"].strip('"'))
        writer.register(http, 10_000)
        writer.patch_hot(http, 10_000)
        response = http.get(f"/api/defibrillators/{writer.hot_id}")
    assert response.headers["ETag"] == f'"{version + 1}"'
    check_registrations(restarted, seeded, writers, exact=False)
    check_hot_devices(restarted, seeded, writers)
    check_storage(db_url)


def test_the_storage_check_sees_a_row_without_its_audit_entry(
    db_url: str, seeded: dict[str, str]
) -> None:
    """The storage check is not vacuous: a registered row with no "create" entry fails it."""
    with Store.open(db_url) as store, store.engine.begin() as connection:
        connection.execute(
            sa.text("UPDATE defibrillators SET source = :source WHERE id = 'dea-1'"),
            {"source": REGISTRATION},
        )
    with pytest.raises(AssertionError):
        check_storage(db_url)
