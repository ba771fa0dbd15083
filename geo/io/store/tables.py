"""The database's tables: one per layer (derived from :mod:`geo.core.layers`) and the registers.

Also the field tuples and choices the repositories, the API and the services share. The schema's
history lives in the Alembic migrations under ``geo/io/migrations``; these definitions are what
the newest migration leaves. Geometry is stored in EPSG:4326.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from geoalchemy2 import Geometry
from sqlalchemy.dialects.postgresql import JSONB

from geo.core.indicators import TRAINING_KINDS
from geo.core.layers import DEFIBRILLATORS, LAYERS, Field, Kind, LayerSchema

SRID = 4326

#: Table that stores each layer.
TABLE_NAMES: Mapping[str, str] = {
    "ceas": "ceas_zones",
    "entities": "entities",
    "defibrillators": "defibrillators",
    "cohousing": "cohousing_sites",
    "population": "population_units",
}

metadata = sa.MetaData(
    naming_convention={
        "pk": "pk_%(table_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "ix": "ix_%(table_name)s_%(column_0_name)s",
    }
)

_JSON = sa.JSON().with_variant(JSONB(), "postgresql")
#: Partial unique index on the defibrillators' ``(source, source_id)`` where ``source_id`` is set.
DEVICE_SOURCE_INDEX = "uq_defibrillators_source_id"
_GEOMETRY_TYPES = {("Point",): "POINT", ("Polygon", "MultiPolygon"): "MULTIPOLYGON"}


def _column(spec: Field) -> sa.Column[Any]:
    types: dict[Kind, sa.types.TypeEngine[Any]] = {
        Kind.TEXT: sa.Text(),
        Kind.INTEGER: sa.Integer(),
        Kind.BOOLEAN: sa.Boolean(create_constraint=False),
        Kind.DATE: sa.Date(),
        Kind.CHOICE: sa.String(32),
        Kind.OPENING_HOURS: sa.Text(),
        Kind.TAGS: _JSON,
    }
    nullable = not spec.required and spec.default is None
    return sa.Column(spec.name, types[spec.kind], nullable=nullable)


def _table(schema: LayerSchema) -> sa.Table:
    columns: list[sa.schema.SchemaItem] = []
    for spec in schema.fields:
        column = _column(spec)
        if spec.name == "id":
            column.primary_key = True
        if schema is DEFIBRILLATORS and spec.name == "operator_entity_id":
            column.append_foreign_key(
                sa.ForeignKey(f"{TABLE_NAMES['entities']}.id", ondelete="SET NULL")
            )
        columns.append(column)
        if spec.kind is Kind.CHOICE:
            allowed = ", ".join(f"'{value}'" for value in spec.choices)
            columns.append(sa.CheckConstraint(f"{spec.name} IN ({allowed})", name=spec.name))
        if spec.minimum is not None:
            columns.append(sa.CheckConstraint(f"{spec.name} >= {spec.minimum}", name=spec.name))
    geometry = Geometry(_GEOMETRY_TYPES[schema.geometry_types], srid=SRID, spatial_index=True)
    columns.append(sa.Column("geom", geometry, nullable=False))
    if schema is DEFIBRILLATORS:
        # Bumped by every write through the registry: optimistic concurrency and ETags.
        columns.append(
            sa.Column("version", sa.Integer(), nullable=False, server_default=sa.text("1"))
        )
        # An imported device is recognised by where it comes from (migration 0005).
        imported = sa.text("source_id IS NOT NULL")
        index = sa.Index(
            DEVICE_SOURCE_INDEX,
            "source",
            "source_id",
            unique=True,
            sqlite_where=imported,
            postgresql_where=imported,
        )
        columns.append(index)
    return sa.Table(TABLE_NAMES[schema.name], metadata, *columns)


#: One table per layer, in load order (entities before the devices that reference them).
TABLES: Mapping[str, sa.Table] = {schema.name: _table(schema) for schema in LAYERS}

#: The walking network (one at a time), stored in EPSG:4326 like everything else.
NETWORK_NODES = sa.Table(
    "network_nodes",
    metadata,
    sa.Column("node_id", sa.BigInteger(), primary_key=True, autoincrement=False),
    sa.Column("source", sa.Text(), nullable=False),
    sa.Column("geom", Geometry("POINT", srid=SRID, spatial_index=True), nullable=False),
)
NETWORK_EDGES = sa.Table(
    "network_edges",
    metadata,
    sa.Column("edge_id", sa.Integer(), primary_key=True, autoincrement=False),
    sa.Column("u_id", sa.BigInteger(), nullable=False),
    sa.Column("v_id", sa.BigInteger(), nullable=False),
    sa.Column("length_m", sa.Float(), nullable=False),
    sa.Column("source", sa.Text(), nullable=False),
    sa.Column("geom", Geometry("LINESTRING", srid=SRID, spatial_index=True), nullable=False),
    sa.Column("name", sa.Text()),  # the street's name (OSM way name), None where it has none
    sa.CheckConstraint("length_m >= 0", name="length_m"),
)


def _choice(column: str, values: tuple[str, ...]) -> sa.CheckConstraint:
    allowed = ", ".join(f"'{value}'" for value in values)
    return sa.CheckConstraint(f"{column} IN ({allowed})", name=column)


def _device_key_of() -> sa.ForeignKey:
    """A device's uses and reports point at a device that exists (migration 0009): deleting a
    device that has them is refused by the database."""
    return sa.ForeignKey(f"{TABLE_NAMES['defibrillators']}.id")


#: Who a token speaks for: an entity, the city's planners and administrators, and the 112
#: dispatch centre (only its feed, ``/api/dispatch/defibrillators.geojson``; migration 0010).
ROLES = ("entity", "planner", "admin", "dispatch")
REPORT_KINDS = ("missing", "broken", "moved", "wrong_hours", "other")
REVIEW_STATUS = ("pending", "accepted", "rejected")
PATIENT_SEX = ("female", "male", "unknown")

#: What only the device's entity and the city's staff may see: never served publicly.
DEVICE_PRIVATE_NOTES = sa.Table(
    "device_private_notes",
    metadata,
    sa.Column(
        "device_id",
        sa.Text(),
        sa.ForeignKey(f"{TABLE_NAMES['defibrillators']}.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("cabinet_code", sa.Text()),
    sa.Column("key_holder", sa.Text()),
    sa.Column("notes", sa.Text()),
)
PRIVATE_NOTE_FIELDS = ("cabinet_code", "key_holder", "notes")

#: API tokens: only a SHA-256 of the secret is kept. Entities are not foreign keys on purpose:
#: reloading the layers must not silently delete who may write.
API_TOKENS = sa.Table(
    "api_tokens",
    metadata,
    sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
    sa.Column("secret_hash", sa.String(64), nullable=False),
    sa.Column("role", sa.String(16), nullable=False),
    sa.Column("entity_id", sa.Text()),
    sa.Column("label", sa.Text(), nullable=False),
    sa.Column("created_at", sa.DateTime(), nullable=False),
    sa.Column("expires_at", sa.DateTime()),
    sa.Column("revoked_at", sa.DateTime()),
    sa.Column("last_used_at", sa.DateTime()),
    _choice("role", ROLES),
    sa.CheckConstraint("(role = 'entity') = (entity_id IS NOT NULL)", name="entity"),
)

#: An entity's private contact (person, e-mail, phone): for staff and the entity only, never in
#: a public route, download, export or the OGC API. Not a foreign key, like api_tokens.
ENTITY_CONTACTS = sa.Table(
    "entity_contacts",
    metadata,
    sa.Column("entity_id", sa.Text(), primary_key=True),
    sa.Column("person", sa.Text()),
    sa.Column("email", sa.Text()),
    sa.Column("phone", sa.Text()),
    sa.Column("updated_at", sa.DateTime(), nullable=False),
    sa.Column("updated_by", sa.Text(), nullable=False),
)
CONTACT_FIELDS = ("person", "email", "phone")

#: One-use sign-in links for an entity (only a SHA-256 of the secret is kept).
ENTITY_INVITATIONS = sa.Table(
    "entity_invitations",
    metadata,
    sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
    sa.Column("entity_id", sa.Text(), nullable=False, index=True),
    sa.Column("secret_hash", sa.String(64), nullable=False),
    sa.Column("created_at", sa.DateTime(), nullable=False),
    sa.Column("created_by", sa.Text(), nullable=False),
    sa.Column("expires_at", sa.DateTime(), nullable=False),
    sa.Column("used_at", sa.DateTime()),
    sa.Column("revoked_at", sa.DateTime()),
    sa.Column("token_id", sa.Integer()),
)

#: Maintenance reminders accepted by the mail server: one row per device and reason.
REMINDERS_SENT = sa.Table(
    "reminders_sent",
    metadata,
    sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
    sa.Column("entity_id", sa.Text(), nullable=False),
    sa.Column("device_id", sa.Text(), nullable=False),
    sa.Column("reason", sa.String(32), nullable=False),
    sa.Column("recipient", sa.Text(), nullable=False),
    sa.Column("sent_at", sa.DateTime(), nullable=False),
    sa.Index("ix_reminders_sent_device", "device_id", "reason"),
)

#: Problems citizens report about a device: a moderation queue, never applied directly.
PROBLEM_REPORTS = sa.Table(
    "problem_reports",
    metadata,
    sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
    sa.Column("device_id", sa.Text(), _device_key_of(), nullable=False, index=True),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("message", sa.Text(), nullable=False),
    sa.Column("contact", sa.Text()),
    sa.Column("lon", sa.Float()),
    sa.Column("lat", sa.Float()),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("created_at", sa.DateTime(), nullable=False),
    sa.Column("reviewed_at", sa.DateTime()),
    sa.Column("reviewed_by", sa.Text()),
    sa.Column("review_note", sa.Text()),
    _choice("kind", REPORT_KINDS),
    _choice("status", REVIEW_STATUS),
)

#: Uses of a device, as the regional "comunicación de uso" asks (no personal data).
DEVICE_USES = sa.Table(
    "device_uses",
    metadata,
    sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
    sa.Column("device_id", sa.Text(), _device_key_of(), nullable=False, index=True),
    sa.Column("used_at", sa.DateTime(), nullable=False),
    sa.Column("people_attended", sa.Integer(), nullable=False),
    sa.Column("emergency_called", sa.Boolean()),
    sa.Column("shock_delivered", sa.Boolean()),
    sa.Column("shocks", sa.Integer()),
    sa.Column("circulation_recovered", sa.Boolean()),
    sa.Column("transferred_to_hospital", sa.Boolean()),
    sa.Column("rescuer_trained", sa.Boolean()),
    sa.Column("patient_sex", sa.String(16)),
    sa.Column("patient_age_years", sa.Integer()),
    sa.Column("notes", sa.Text()),
    sa.Column("reported_by", sa.Text(), nullable=False),
    sa.Column("reported_at", sa.DateTime(), nullable=False),
    sa.CheckConstraint("people_attended >= 1", name="people_attended"),
    sa.CheckConstraint("shocks >= 0", name="shocks"),
    sa.CheckConstraint(
        "patient_age_years >= 0 AND patient_age_years <= 120", name="patient_age_years"
    ),
    _choice("patient_sex", PATIENT_SEX),
)
USE_FIELDS = tuple(c.name for c in DEVICE_USES.columns if c.name not in ("id", "reported_at"))


#: The training register: one row per training action held. ``entity_id`` is not a foreign key
#: (like api_tokens: reloading the layers must not take the register with them); it is checked
#: against the entities layer when written. ``(source, source_id)`` identifies a row of an
#: imported register, so importing the same file again changes nothing.
TRAINING_ACTIONS = sa.Table(
    "training_actions",
    metadata,
    sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
    sa.Column("held_on", sa.Date(), nullable=False, index=True),
    sa.Column("entity_id", sa.Text()),
    sa.Column("place", sa.Text(), nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("people_trained", sa.Integer(), nullable=False),
    sa.Column("trainer", sa.Text()),
    sa.Column("notes", sa.Text()),
    sa.Column("source", sa.Text(), nullable=False),
    sa.Column("source_id", sa.Text()),
    sa.Column("created_at", sa.DateTime(), nullable=False),
    sa.Column("created_by", sa.Text(), nullable=False),
    _choice("kind", TRAINING_KINDS),
    sa.CheckConstraint("people_trained > 0", name="people_trained"),
    sa.UniqueConstraint("source", "source_id", name="uq_training_actions_source"),
)
#: What a training action says (the rest is provenance: source, source_id, created_at/by).
TRAINING_FIELDS = ("held_on", "entity_id", "place", "kind", "people_trained", "trainer", "notes")

#: Kinds of place of a past cardiac arrest (Spanish labels and aliases live in geo.core.arrests).
ARREST_PLACE_TYPES = ("home", "public", "other")

#: Past cardiac arrests (migration 0007): PRIVATE, for the staff's analyses only — never in a
#: public route, download, export, the OGC API or a citizens' map. ``occurred_at`` is the local
#: time of the city; ``geom`` is the centre of the ``cell_m`` grid cell the arrest fell in (the
#: raw position is never stored). Not a layer: loading or replacing the layers leaves it alone.
CARDIAC_ARRESTS = sa.Table(
    "cardiac_arrests",
    metadata,
    sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
    sa.Column("occurred_at", sa.DateTime(), nullable=False, index=True),
    sa.Column("place_type", sa.String(16), nullable=False),
    sa.Column("bystander_cpr", sa.Boolean()),
    sa.Column("aed_used", sa.Boolean()),
    sa.Column("survived_30d", sa.Boolean()),
    sa.Column("discharged_alive", sa.Boolean()),
    sa.Column("cell_m", sa.Float(), nullable=False),
    sa.Column("source", sa.Text(), nullable=False),
    sa.Column("source_id", sa.Text()),
    sa.Column("created_at", sa.DateTime(), nullable=False),
    sa.Column("created_by", sa.Text(), nullable=False),
    sa.Column("geom", Geometry("POINT", srid=SRID, spatial_index=True), nullable=False),
    _choice("place_type", ARREST_PLACE_TYPES),
    sa.CheckConstraint("cell_m > 0", name="cell_m"),
    sa.UniqueConstraint("source", "source_id", name="uq_cardiac_arrests_source"),
)
#: What an arrest says, as :meth:`Store.arrests_frame` returns it (besides ``geometry``).
ARREST_COLUMNS = (
    "occurred_at", "place_type", "bystander_cpr", "aed_used", "survived_30d",
    "discharged_alive", "cell_m", "source", "source_id",
)  # fmt: skip

#: Uses and reports that pointed at a device that no longer existed when migration 0009 added
#: the foreign keys: kept whole (``data``, JSON), never deleted, for someone to decide about.
QUARANTINED_RECORDS = sa.Table(
    "quarantined_records",
    metadata,
    sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
    sa.Column("record_type", sa.String(32), nullable=False),
    sa.Column("record_id", sa.Text(), nullable=False),
    sa.Column("device_id", sa.Text(), nullable=False),
    sa.Column("data", _JSON, nullable=False),
    sa.Column("reason", sa.Text(), nullable=False),
    sa.Column("quarantined_at", sa.DateTime(), nullable=False),
)

#: Every change made through the registry: who, when, the record before and after.
AUDIT_LOG = sa.Table(
    "audit_log",
    metadata,
    sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
    sa.Column("at", sa.DateTime(), nullable=False),
    sa.Column("actor", sa.Text(), nullable=False),
    sa.Column("action", sa.String(32), nullable=False),
    sa.Column("record_type", sa.String(32), nullable=False),
    sa.Column("record_id", sa.Text(), nullable=False),
    sa.Column("before", _JSON),
    sa.Column("after", _JSON),
    sa.Index("ix_audit_log_record", "record_type", "record_id"),
)

#: A counter per layer, bumped by every write, so caches know when to refresh. The
#: ``defibrillators`` counter is also bumped when a citizen's "missing"/"broken" report arrives or
#: is answered: the nearest-device snapshot shows such reports.
DATA_REVISIONS = sa.Table(
    "data_revisions",
    metadata,
    sa.Column("name", sa.String(32), primary_key=True),
    sa.Column("revision", sa.Integer(), nullable=False),
)

#: What each client did lately, for limits shared by every worker process (migration 0008). The
#: client is a SHA-256 of its key (its address, or a keyed hash of the address);
#: rows older than their window are deleted as others arrive.
THROTTLE_EVENTS = sa.Table(
    "throttle_events",
    metadata,
    sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
    sa.Column("scope", sa.String(32), nullable=False),
    sa.Column("client_key", sa.String(64), nullable=False),
    sa.Column("subject", sa.Text()),
    sa.Column("at", sa.DateTime(), nullable=False),
    sa.Index("ix_throttle_events_client", "scope", "client_key", "at"),
    sa.Index("ix_throttle_events_at", "at"),
)


#: What points at a device without being part of it: a load never deletes a device they name.
DEVICE_REFERENCES = (DEVICE_PRIVATE_NOTES, DEVICE_USES, PROBLEM_REPORTS, REMINDERS_SENT)
#: What names an entity by id (not foreign keys, on purpose): a load keeps the entities named.
ENTITY_REFERENCES = (
    API_TOKENS, ENTITY_CONTACTS, ENTITY_INVITATIONS, TRAINING_ACTIONS, REMINDERS_SENT,
)  # fmt: skip
#: What a load locks on PostgreSQL: the layers and every table whose writers it must not race.
LOAD_LOCKED_TABLES = (*TABLES.values(), *DEVICE_REFERENCES, *ENTITY_REFERENCES[:-1], AUDIT_LOG)
#: How long a load on PostgreSQL tries to lock the tables before giving up, in seconds.
LOAD_LOCK_WAIT_S = 60.0
