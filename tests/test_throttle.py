"""The database throttle: a check that counts nothing, and expired events purged as others come."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa

from geo.store import THROTTLE_EVENTS, Store, Throttle

# --- the store --------------------------------------------------------------------------------


def test_check_counts_nothing_and_expired_events_are_purged(store: Store) -> None:
    limits: list[tuple[Throttle, str | None]] = [(Throttle("t-auth", 2, 60), None)]
    start = dt.datetime(2026, 11, 23, 9, 0)
    for seconds in range(5):
        assert store.throttle_check("a", limits, now=start + dt.timedelta(seconds=seconds)) is None
    assert store.throttle("a", limits, now=start) is None
    assert store.throttle("a", limits, now=start + dt.timedelta(seconds=10)) is None
    refusal = store.throttle_check("a", limits, now=start + dt.timedelta(seconds=20))
    assert refusal is not None and refusal.retry_after_s == 40
    assert store.throttle_check("b", limits, now=start + dt.timedelta(seconds=20)) is None
    # Refused: nothing more is recorded.
    assert store.throttle("a", limits, now=start + dt.timedelta(seconds=30)) is not None
    assert store.throttle("b", limits, now=start + dt.timedelta(seconds=30)) is None

    def rows() -> int:
        with store.engine.connect() as connection:
            return int(connection.execute(
                sa.select(sa.func.count()).select_from(THROTTLE_EVENTS)).scalar_one())  # fmt: skip

    assert rows() == 3
    later = start + dt.timedelta(seconds=200)  # every event above has left its window
    assert store.throttle_check("a", limits, now=later) is None
    assert rows() == 3  # a check only reads
    assert store.throttle("c", limits, now=later) is None
    assert rows() == 1  # counting purged every client's expired events of the scope
