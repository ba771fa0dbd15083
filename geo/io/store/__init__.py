"""Storage: the one repository every other part of cardiomapa uses, on SpatiaLite and PostGIS.

The tables are derived from the layer schemas in :mod:`geo.core.layers` (one definition of what a
layer holds); their history lives in Alembic migrations under ``geo/io/migrations`` so that a
database made by one version is upgraded, never dropped. The same code runs on both databases:

- ``sqlite:///var/cardiomapa.sqlite`` — an embedded SpatiaLite file (the default);
- ``postgresql+psycopg://user@host/db`` — PostGIS, for production.

The package holds the tables (:mod:`~geo.io.store.tables`), the engines and migrations
(:mod:`~geo.io.store.engine`) and one repository per aggregate, which :class:`Store`
brings together; every name callers use is importable from here.

Geometry is stored in EPSG:4326. Metric work happens in :mod:`geo.core` on GeoDataFrames, not here.
"""

from __future__ import annotations

from alembic import command as command  # tests patch ``geo.io.store.command.upgrade``

from geo.clock import SYSTEM_CLOCK, Clock
from geo.io.store.access import (
    AccessRepository,
    InvitationRecord,
    Throttle,
    ThrottleRefusal,
    TokenRecord,
)
from geo.io.store.arrests import ArrestRepository
from geo.io.store.audit import AuditRepository
from geo.io.store.base import record_from_row, utcnow
from geo.io.store.contacts import ContactRepository
from geo.io.store.devices import DeviceRepository
from geo.io.store.engine import (
    CHANGES_CHANNEL,
    MIGRATIONS_DIR,
    alembic_config,
    create_db_engine,
    head_revision,
    migrate,
    schema_revision,
)
from geo.io.store.layers import LayerRepository, LayerSummary
from geo.io.store.moderation import ModerationRepository
from geo.io.store.network import NetworkRepository
from geo.io.store.reminders import ReminderRepository
from geo.io.store.tables import (
    API_TOKENS,
    ARREST_COLUMNS,
    ARREST_PLACE_TYPES,
    AUDIT_LOG,
    CARDIAC_ARRESTS,
    CONTACT_FIELDS,
    DATA_REVISIONS,
    DEVICE_PRIVATE_NOTES,
    DEVICE_REFERENCES,
    DEVICE_SOURCE_INDEX,
    DEVICE_USES,
    ENTITY_CONTACTS,
    ENTITY_INVITATIONS,
    ENTITY_REFERENCES,
    LOAD_LOCK_WAIT_S,
    LOAD_LOCKED_TABLES,
    NETWORK_EDGES,
    NETWORK_NODES,
    PATIENT_SEX,
    PRIVATE_NOTE_FIELDS,
    PROBLEM_REPORTS,
    QUARANTINED_RECORDS,
    REMINDERS_SENT,
    REPORT_KINDS,
    REVIEW_STATUS,
    ROLES,
    SRID,
    TABLE_NAMES,
    TABLES,
    THROTTLE_EVENTS,
    TRAINING_ACTIONS,
    TRAINING_FIELDS,
    USE_FIELDS,
    metadata,
)
from geo.io.store.training import TrainingRepository
from geo.io.store.uses import UseRepository

__all__ = [
    "API_TOKENS",
    "ARREST_COLUMNS",
    "ARREST_PLACE_TYPES",
    "AUDIT_LOG",
    "CARDIAC_ARRESTS",
    "CHANGES_CHANNEL",
    "CONTACT_FIELDS",
    "DATA_REVISIONS",
    "DEVICE_PRIVATE_NOTES",
    "DEVICE_REFERENCES",
    "DEVICE_SOURCE_INDEX",
    "DEVICE_USES",
    "ENTITY_CONTACTS",
    "ENTITY_INVITATIONS",
    "ENTITY_REFERENCES",
    "LOAD_LOCKED_TABLES",
    "LOAD_LOCK_WAIT_S",
    "MIGRATIONS_DIR",
    "NETWORK_EDGES",
    "NETWORK_NODES",
    "PATIENT_SEX",
    "PRIVATE_NOTE_FIELDS",
    "PROBLEM_REPORTS",
    "QUARANTINED_RECORDS",
    "REMINDERS_SENT",
    "REPORT_KINDS",
    "REVIEW_STATUS",
    "ROLES",
    "SRID",
    "TABLES",
    "TABLE_NAMES",
    "THROTTLE_EVENTS",
    "TRAINING_ACTIONS",
    "TRAINING_FIELDS",
    "USE_FIELDS",
    "InvitationRecord",
    "LayerSummary",
    "Store",
    "Throttle",
    "ThrottleRefusal",
    "TokenRecord",
    "alembic_config",
    "create_db_engine",
    "head_revision",
    "metadata",
    "migrate",
    "record_from_row",
    "schema_revision",
    "utcnow",
]


# One repository per aggregate, each a mixin over StoreBase (the engine, the clock, the transaction
# helper): Store is their union, so every caller keeps calling ``store.read_layers()`` and the like.
class Store(
    DeviceRepository,
    LayerRepository,
    NetworkRepository,
    ModerationRepository,
    UseRepository,
    AccessRepository,
    ContactRepository,
    ReminderRepository,
    TrainingRepository,
    ArrestRepository,
    AuditRepository,
):
    """The repository of cardiomapa's layers, identical on SpatiaLite and PostGIS.

    Build it with :meth:`open` (which also migrates the schema) or from an existing engine.
    """

    @classmethod
    def open(cls, url: str, *, clock: Clock = SYSTEM_CLOCK) -> Store:
        """Connect to ``url`` and bring its schema up to date.

        ``clock`` stamps every time the store writes (created, reviewed, revoked, audited…):
        the app and the CLI pass the clock they run on.
        """
        engine = create_db_engine(url)
        migrate(engine, clock=clock)
        return cls(engine, clock=clock)

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
