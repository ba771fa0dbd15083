"""Has anything been written to the database since I last looked? Asked on every request, cheaply.

Each worker process keeps caches built from the database (the nearest-device index, the citizens'
page). A write through one worker, the CLI or another server must be seen by the very next request
on every other worker, yet reading a revision counter from the database on every request would
cost a round trip each time. A :class:`ChangeWatch` answers from memory:

- SQLite: ``PRAGMA data_version`` on a connection of its own, which changes whenever another
  connection (of any process) commits. It reads the WAL index in shared memory: no disk I/O.
- PostgreSQL: a thread ``LISTEN``\\ s on :data:`geo.io.store.CHANGES_CHANNEL`, which every write
  to a layer notifies at commit. While the listener is not connected (start-up, lost
  connection), the watch reports a change on every call, so callers fall back to reading the
  revision each time.

Callers compare :meth:`ChangeWatch.version` with the value they last saw and, when it differs,
read the revision counters (:meth:`geo.io.store.Store.revision`). Read the version *before* the
revision: a commit between the two is then seen at the next call, never lost.
"""

from __future__ import annotations

import itertools
import logging
import sqlite3
import threading
import time
from typing import Protocol

import psycopg
from psycopg.conninfo import make_conninfo
from sqlalchemy.engine import Engine

from geo.io.store import CHANGES_CHANNEL

logger = logging.getLogger(__name__)


class ChangeWatch(Protocol):
    """A number that changes whenever something may have been committed since the last call."""

    def version(self) -> int:
        """The current version; equal to the last one only if nothing was committed since."""
        ...

    def close(self) -> None:
        """Stop watching and release the connection."""
        ...


class AlwaysChanged:
    """A watch that cannot tell (an in-memory database): every call reports a change."""

    def __init__(self) -> None:
        self._counter = itertools.count()

    def version(self) -> int:
        return next(self._counter)

    def close(self) -> None:
        return None


class SqliteWatch:
    """``PRAGMA data_version`` of a private connection to the SQLite file (it never writes)."""

    def __init__(self, path: str) -> None:
        self._connection = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._lock = threading.Lock()

    def version(self) -> int:
        with self._lock:
            row = self._connection.execute("PRAGMA data_version").fetchone()
        return int(row[0])

    def close(self) -> None:
        with self._lock:
            self._connection.close()


class PostgresWatch:
    """Counts the notifications on :data:`~geo.io.store.CHANGES_CHANNEL`, from a listener thread.

    While the listener is not connected, :meth:`version` changes on every call. It reconnects
    every ``retry_s`` seconds after losing its connection (the counter moves on reconnecting,
    since notifications sent while it was away are lost). A connection that dies silently (a
    firewall dropping it) is found by TCP keepalives and a ``SELECT 1`` every ``ping_s``.
    """

    def __init__(self, conninfo: str, *, retry_s: float = 1.0, ping_s: float = 30.0) -> None:
        # libpq keepalives: a dead peer is noticed within about a minute.
        self._conninfo = make_conninfo(
            conninfo, keepalives=1, keepalives_idle=30, keepalives_interval=10, keepalives_count=3
        )
        self._retry_s = retry_s
        self._ping_s = ping_s
        self._received = 0
        self._listening = False
        self._blind = itertools.count(start=-1, step=-1)  # versions while not listening
        self._stop = threading.Event()
        self._connection: psycopg.Connection[tuple[object, ...]] | None = None
        self._thread = threading.Thread(target=self._listen, name="db-changes", daemon=True)
        self._thread.start()

    @property
    def listening(self) -> bool:
        return self._listening

    def version(self) -> int:
        if not self._listening:
            return next(self._blind)
        return self._received

    def close(self) -> None:
        self._stop.set()
        connection = self._connection
        if connection is not None:
            connection.cancel_safe()  # wakes the listener out of its wait
        self._thread.join(timeout=5)

    def _listen(self) -> None:
        while not self._stop.is_set():
            try:
                with psycopg.connect(self._conninfo, autocommit=True) as connection:
                    self._connection = connection
                    connection.execute(f"LISTEN {CHANGES_CHANNEL}")
                    self._received += 1  # whatever was sent while not listening
                    self._listening = True
                    pinged = time.monotonic()
                    while not self._stop.is_set():
                        for _ in connection.notifies(timeout=1.0):
                            self._received += 1
                        if time.monotonic() - pinged > self._ping_s:
                            connection.execute("SELECT 1")  # raises if the server is gone
                            pinged = time.monotonic()
            except psycopg.Error as exc:
                if not self._stop.is_set():
                    logger.warning("sin aviso de cambios de la base de datos: %s", exc)
            finally:
                self._listening = False
                self._connection = None
            self._stop.wait(self._retry_s)


def watch(engine: Engine) -> ChangeWatch:
    """The change watch for ``engine``'s database."""
    url = engine.url
    if url.get_backend_name() == "sqlite":
        if not url.database or url.database == ":memory:":
            return AlwaysChanged()
        return SqliteWatch(url.database)
    libpq = url.set(drivername="postgresql").render_as_string(hide_password=False)
    return PostgresWatch(libpq)
