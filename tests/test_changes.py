"""The change watch: from memory, has anything been committed since the last look?"""

from __future__ import annotations

from contextlib import closing

from geo.core.layers import Layers
from geo.io import changes
from geo.io.changes import PostgresWatch
from geo.io.store import Store
from tests.servers import eventually


def test_a_commit_by_another_store_changes_the_version_and_nothing_else_does(
    db_url: str, tiny_layers: Layers
) -> None:
    with (
        Store.open(db_url) as writer,
        Store.open(db_url) as reader,
        closing(changes.watch(reader.engine)) as watch,
    ):
        if isinstance(watch, PostgresWatch):
            assert eventually(lambda: watch.listening, bool)
        first = watch.version()
        # Reading, through either store, changes nothing.
        reader.read_layers()
        writer.counts()
        assert watch.version() == watch.version() == first
        writer.load(tiny_layers)
        # SQLite: at once; PostgreSQL: when the notification reaches the listener.
        assert eventually(watch.version, lambda version: version != first) != first


def test_a_postgres_watch_that_cannot_listen_reports_a_change_every_time() -> None:
    # Nothing listens on port 1: the watch never connects, so every call is a change and callers
    # read the revision each time rather than trust a stale cache.
    watch = PostgresWatch("host=127.0.0.1 port=1 dbname=x connect_timeout=1", retry_s=60)
    try:
        assert not watch.listening
        versions = [watch.version() for _ in range(3)]
        assert len(set(versions)) == 3
    finally:
        watch.close()
