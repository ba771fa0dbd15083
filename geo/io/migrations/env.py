"""Alembic environment for cardiomapa (SpatiaLite and PostGIS).

cardiomapa runs migrations itself (``geo.io.store.migrate``) and hands the connection in through
``config.attributes["connection"]``. A developer writing a new revision can also run
``alembic -c geo/io/migrations/alembic.ini revision --autogenerate -m "…"``; the database then comes
from ``CARDIOMAPA_DATABASE_URL`` (default: the SpatiaLite file).
"""

from __future__ import annotations

from alembic import context
from geoalchemy2 import alembic_helpers

from geo.io.store import create_db_engine, metadata
from geo.settings import Settings

config = context.config


def _run(connection: object) -> None:
    context.configure(
        connection=connection,  # type: ignore[arg-type]
        target_metadata=metadata,
        render_as_batch=True,
        include_object=alembic_helpers.include_object,
        process_revision_directives=alembic_helpers.writer,
        render_item=alembic_helpers.render_item,
    )
    with context.begin_transaction():
        context.run_migrations()


connection = config.attributes.get("connection")
if connection is not None:
    _run(connection)
else:
    engine = create_db_engine(Settings().database_url)
    with engine.begin() as new_connection:
        _run(new_connection)
    engine.dispose()
