"""Blind PATCHes (no If-Match) merge, as the README says, even when many clients change one device
at the same moment: against a real ``cardiomapa serve`` process, on SpatiaLite and PostGIS.

24 clients start together, each owning one field of one device (8 fields, 3 clients each) and
sending 5 PATCHes of values nobody else writes. Every answer must be 200 (it was 409, "cambia
demasiado a menudo", on PostGIS once the fixed 20 immediate retries ran out), and the audit log
must show every acknowledged value introduced exactly once, in an unbroken chain of versions,
with the final device holding the last value written to each field.
"""

from __future__ import annotations

import datetime as dt
import itertools
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from servers import Server
from test_api_concurrency import HOT_FIELDS, client, device_audit
from weeks import ORDINARY, clock_env

from geo.core.layers import Layers
from geo.io.store import Store
from geo.services.tokens import issue_token

DEVICE = "dea-1"  # verified, ent-1's, installed 2024-05-01
CLIENTS_PER_FIELD = 3
ROUNDS = 5


@dataclass
class Writer:
    number: int
    field_name: str
    acknowledged: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)

    def value(self, round_: int) -> str:
        """A value no other request writes; installation dates stay before every other date."""
        serial = self.number * ROUNDS + round_
        if self.field_name == "installed_on":
            return (dt.date(2024, 5, 1) - dt.timedelta(days=serial)).isoformat()
        if self.field_name in {"check_date", "battery_expiry", "pads_expiry"}:
            return (dt.date(2024, 5, 2) + dt.timedelta(days=serial)).isoformat()
        return f"w{self.number}-r{round_}"


def test_concurrent_blind_patches_on_one_device_all_merge(
    db_url: str, tiny_layers: Layers, tmp_path: Path
) -> None:
    with Store.open(db_url) as store:
        store.load(tiny_layers)
        entity = issue_token(store, role="entity", entity_id="ent-1").secret
        planner = issue_token(store, role="planner").secret
    server = Server(db_url, tmp_path / "server.log", env=clock_env(ORDINARY))
    try:
        writers = [
            Writer(number=i, field_name=HOT_FIELDS[i % len(HOT_FIELDS)])
            for i in range(len(HOT_FIELDS) * CLIENTS_PER_FIELD)
        ]
        start = threading.Barrier(len(writers))

        def run(writer: Writer) -> None:
            with client(server, entity) as http:
                start.wait()
                for round_ in range(ROUNDS):
                    value = writer.value(round_)
                    body = {"properties": {writer.field_name: value}}
                    response = http.patch(f"/api/defibrillators/{DEVICE}", json=body)
                    if response.status_code != 200:
                        writer.refused.append(f"{response.status_code} {response.text[:200]}")
                        continue
                    assert response.json()["properties"][writer.field_name] == value
                    writer.acknowledged.append(value)

        with ThreadPoolExecutor(len(writers)) as pool:
            for future in [pool.submit(run, writer) for writer in writers]:
                future.result()
        refused = [answer for writer in writers for answer in writer.refused]
        assert not refused, refused[:3]

        with httpx.Client(base_url=server.base, timeout=60) as http:
            final = http.get(f"/api/defibrillators/{DEVICE}").json()["properties"]
        entries = device_audit(server, planner)[DEVICE]
        updates = [e for e in entries if e["action"] == "update"]
        assert len(updates) == len(writers) * ROUNDS == final["version"] - 1
        for previous, entry in itertools.pairwise(entries):
            # One unbroken chain: each update starts from what the previous one stored.
            assert entry["before"]["version"] == previous["after"]["version"]
            for name in HOT_FIELDS:
                assert entry["before"][name] == previous["after"][name], (name, entry["id"])
        for name in HOT_FIELDS:
            ours = [w for w in writers if w.field_name == name]
            introduced = Counter(
                e["after"][name] for e in updates if e["after"][name] != e["before"][name]
            )
            acknowledged = [value for w in ours for value in w.acknowledged]
            assert all(introduced[value] == 1 for value in acknowledged), name
            assert set(introduced) == set(acknowledged), name
            # The field keeps the last value written to it (no other field's write undid it).
            last = next(e["after"][name] for e in reversed(updates)
                        if e["after"][name] != e["before"][name])  # fmt: skip
            assert final[name] == last, name
    finally:
        server.stop()
