"""The device registry (what the API writes): one device at a time, or imported in bulk.

An update is conditional on the version the device was read at (optimistic concurrency); every
write is audited and bumps the defibrillators' revision.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import shapely
import sqlalchemy as sa
from geoalchemy2.shape import from_shape
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from geo.core.layers import DEFIBRILLATORS
from geo.core.outputs import python_value
from geo.errors import ConflictError, NotFoundError
from geo.io.store.audit import audit
from geo.io.store.base import bump_revision, check_source_keys, record_from_row
from geo.io.store.layers import LayerRepository
from geo.io.store.moderation import close_reports
from geo.io.store.tables import DEVICE_PRIVATE_NOTES, PRIVATE_NOTE_FIELDS, SRID, TABLES

#: How many device ids :meth:`DeviceRepository.private_notes` sends as parameters at most.
NOTES_BY_ID = 10_000


class DeviceRepository(LayerRepository):
    """Reading and writing defibrillators one by one (a device is a row of its layer)."""

    def device(self, device_id: str) -> dict[str, Any] | None:
        """One defibrillator: its schema fields, ``geometry`` (EPSG:4326) and ``version``."""
        frame = self.query_layer("defibrillators", ids=[device_id], with_version=True)
        if frame.empty:
            return None
        return record_from_row(frame, 0)

    def private_notes(self, device_ids: Sequence[str]) -> dict[str, dict[str, str | None]]:
        """Emergency-only notes (cabinet code, key holder…) of these devices, by device id.

        One query however many devices: up to ``NOTES_BY_ID`` ids are sent as its parameters;
        more (the dispatch feed of a large city) read every stored note and keep these ids,
        since PostgreSQL takes at most 65,535 parameters in a statement.
        """
        table = DEVICE_PRIVATE_NOTES
        wanted = set(device_ids)
        query = sa.select(table)
        if len(wanted) <= NOTES_BY_ID:
            query = query.where(table.c.device_id.in_(sorted(wanted)))
        with self.engine.connect() as connection:
            rows = connection.execute(query).all()
        return {
            row.device_id: {name: row._mapping[name] for name in PRIVATE_NOTE_FIELDS}
            for row in rows
            if row.device_id in wanted
        }

    def insert_device(
        self,
        record: Mapping[str, Any],
        *,
        actor: str,
        private: Mapping[str, str | None] | None = None,
    ) -> None:
        """Store a validated device (version 1) and its private notes; audited, all or nothing.

        Raises
        ------
        ConflictError
            A device with that id exists.
        """
        with self._transaction() as connection:
            _insert_device(connection, _device_row(record))
            if private:
                connection.execute(
                    DEVICE_PRIVATE_NOTES.insert().values(device_id=record["id"], **private)
                )
            after = {**record, "version": 1}
            audit(connection, self.utcnow(), actor, "create", "device", record["id"], None, after)
            bump_revision(connection, "defibrillators")

    def update_device(
        self,
        before: Mapping[str, Any],
        after: Mapping[str, Any],
        *,
        actor: str,
        action: str = "update",
        private: Mapping[str, str | None] | None = None,
        resolve_reports: str | None = None,
    ) -> int:
        """Replace a device read at ``before["version"]`` by ``after``, if nobody changed it since.

        The write is conditional on the version (optimistic concurrency): of two writers that
        read the same version, one wins and the other gets :class:`ConflictError` and must read
        again. ``private`` replaces the private notes when given. ``resolve_reports``, when
        given, is the note with which the device's pending "missing"/"broken" reports are
        resolved in the same transaction (the device was confirmed: see :meth:`resolve_reports`).

        Returns
        -------
        int
            The new version.

        Raises
        ------
        NotFoundError
            The device no longer exists.
        ConflictError
            Someone changed it after ``before`` was read.
        """
        with self._transaction() as connection:
            return write_device_update(
                connection, before, after, actor=actor, action=action, private=private,
                resolve_reports=resolve_reports, at=self.utcnow(),
            )  # fmt: skip

    def upsert_devices(
        self,
        records: Sequence[Mapping[str, Any]],
        *,
        actor: str,
        dry_run: bool = False,
        on_row: Callable[[], None] | None = None,
        changes: dict[str, list[str]] | None = None,
    ) -> dict[str, int]:
        """Insert or update imported devices matched on ``(source, source_id)``, all or nothing.

        ``changes``, when given, receives the ids of the records by outcome (``inserted``,
        ``updated``, ``unchanged``), also in a dry run.

        A record whose key is not stored is inserted under its ``id`` (version 1). One whose key
        is stored with other values (any field or the position) replaces them under the *stored*
        id (the record's ``id`` is ignored) and bumps the version; one stored with the same
        values is left alone. Every insert and update is audited; the defibrillators revision is
        bumped once when anything changed, so caches refresh.

        Parameters
        ----------
        records
            Validated devices: every :data:`geo.core.layers.DEFIBRILLATORS` field and ``geometry``
            (shapely, EPSG:4326), ``source_id`` never ``None``. An optional ``version`` is the
            stored version the record was prepared from: the update is then conditional on it.
        dry_run
            Only count what would change; write nothing.
        on_row
            Called after each record is written, for progress bars.

        Returns
        -------
        dict
            ``{"inserted": n, "updated": n, "unchanged": n}``.

        Raises
        ------
        InputError
            A record without ``source_id``, or two records with the same key.
        ConflictError
            A new record's id is taken, or a device changed after it was read (import again).
        """
        check_source_keys(
            records,
            missing="Cada desfibrilador importado necesita source_id para reconocerlo.",
            repeated="El desfibrilador {source_id!r} de {source!r} aparece dos veces.",
        )
        counts = {"inserted": 0, "updated": 0, "unchanged": 0}
        if dry_run:
            with self.engine.connect() as connection:
                stored = _devices_by_key(connection, records)
            for record in records:
                change = _device_change(stored.get(_device_key(record)), record)
                counts[change] += 1
                if changes is not None:
                    changes.setdefault(change, []).append(str(record["id"]))
            return counts
        try:
            with self._transaction() as connection:
                stored = _devices_by_key(connection, records)
                for record in records:
                    before = stored.get(_device_key(record))
                    change = _device_change(before, record)
                    counts[change] += 1
                    if changes is not None:
                        changes.setdefault(change, []).append(str(record["id"]))
                    row = _device_row(record)
                    after = {name: record[name] for name in DEFIBRILLATORS.field_names}
                    after["geometry"] = record["geometry"]
                    if change == "inserted":
                        _insert_device(connection, row)
                        audit(connection, self.utcnow(), actor, "create", "device", row["id"],
                              None, {**after, "version": 1})  # fmt: skip
                    elif change == "updated":
                        assert before is not None
                        self._update_imported(connection, before, record, row, after, actor)
                    if on_row is not None:
                        on_row()
                if counts["inserted"] or counts["updated"]:
                    bump_revision(connection, "defibrillators")
        except IntegrityError as exc:
            msg = (
                "Otro proceso ha guardado a la vez desfibriladores de la misma procedencia; "
                "no se ha guardado nada. Repita la importación."
            )
            raise ConflictError(msg) from exc
        return counts

    def _update_imported(
        self,
        connection: Connection,
        before: Mapping[str, Any],
        record: Mapping[str, Any],
        row: dict[str, Any],
        after: dict[str, Any],
        actor: str,
    ) -> None:
        table = TABLES["defibrillators"]
        device_id, version = before["id"], int(before["version"])
        expected = record.get("version")
        row["id"] = after["id"] = device_id
        changed = connection.execute(
            table.update()
            .where(table.c.id == device_id, table.c.version == int(expected or version))
            .values(**row, version=version + 1)
        ).rowcount
        if changed != 1:
            msg = (
                f"El desfibrilador {device_id!r} cambió durante la importación (versión "
                f"{version}, se esperaba {expected}); no se ha guardado nada. Repita la "
                "importación."
            )
            raise ConflictError(msg)
        audit(connection, self.utcnow(), actor, "update", "device", device_id, before,
              {**after, "version": version + 1})  # fmt: skip


def write_device_update(
    connection: Connection,
    before: Mapping[str, Any],
    after: Mapping[str, Any],
    *,
    actor: str,
    action: str = "update",
    private: Mapping[str, str | None] | None = None,
    resolve_reports: str | None = None,
    at: dt.datetime,
) -> int:
    """:meth:`Store.update_device` inside an open transaction, stamped ``at`` (naive UTC);
    returns the new version.

    Fields of ``after`` that are not the layer's (a review note, the use that replaced the
    pads) go only to the audit log.
    """
    table = TABLES["defibrillators"]
    device_id, version = before["id"], int(before["version"])
    values = _device_row(after)
    del values["id"]
    changed = connection.execute(
        table.update()
        .where(table.c.id == device_id, table.c.version == version)
        .values(**values, version=version + 1)
    ).rowcount
    if changed != 1:
        exists = connection.execute(
            sa.select(table.c.version).where(table.c.id == device_id)
        ).scalar()
        if exists is None:
            msg = f"No existe el desfibrilador {device_id!r}."
            raise NotFoundError(msg)
        msg = (
            f"El desfibrilador {device_id!r} cambió mientras tanto (versión {exists}, "
            f"se esperaba {version}); vuelva a leerlo y repita el cambio."
        )
        raise ConflictError(msg)
    if private is not None:
        connection.execute(
            DEVICE_PRIVATE_NOTES.delete().where(DEVICE_PRIVATE_NOTES.c.device_id == device_id)
        )
        if any(value is not None for value in private.values()):
            connection.execute(DEVICE_PRIVATE_NOTES.insert().values(device_id=device_id, **private))
    new_after = {**after, "version": version + 1}
    audit(connection, at, actor, action, "device", device_id, before, new_after)
    bump_revision(connection, "defibrillators")
    if resolve_reports is not None:
        close_reports(connection, device_id, note=resolve_reports, actor=actor, at=at)
    return version + 1


def _device_key(record: Mapping[str, Any]) -> tuple[str, str]:
    return (str(record["source"]), str(record["source_id"]))


def _devices_by_key(
    connection: Connection, records: Sequence[Mapping[str, Any]]
) -> dict[tuple[str, str], dict[str, Any]]:
    """Stored devices with the sources of ``records``, by ``(source, source_id)``: schema fields,
    ``geometry`` (shapely) and ``version``."""
    sources = sorted({str(record["source"]) for record in records})
    if not sources:
        return {}
    table = TABLES["defibrillators"]
    columns = [table.c[name] for name in DEFIBRILLATORS.field_names]
    rows = connection.execute(
        sa.select(*columns, table.c.version, sa.func.ST_AsBinary(table.c.geom).label("wkb")).where(
            table.c.source.in_(sources), table.c.source_id.is_not(None)
        )
    ).all()
    stored = {}
    for row in rows:
        values = {name: row._mapping[name] for name in DEFIBRILLATORS.field_names}
        values["version"] = int(row.version)
        values["geometry"] = shapely.from_wkb(bytes(row.wkb))
        stored[(row.source, row.source_id)] = values
    return stored


def _device_change(before: Mapping[str, Any] | None, record: Mapping[str, Any]) -> str:
    """``inserted``, ``updated`` or ``unchanged``: every field but the id, and the position."""
    if before is None:
        return "inserted"
    fields = (name for name in DEFIBRILLATORS.field_names if name != "id")
    same = all(before[name] == python_value(record[name]) for name in fields)
    same = same and bool(before["geometry"].equals_exact(record["geometry"], tolerance=0))
    return "unchanged" if same else "updated"


def _device_row(record: Mapping[str, Any]) -> dict[str, Any]:
    """A validated device as a row of its table: plain values, and the geometry as PostGIS WKB."""
    row = {name: python_value(record[name]) for name in DEFIBRILLATORS.field_names}
    row["geom"] = from_shape(record["geometry"], srid=SRID)
    return row


def _insert_device(connection: sa.Connection, row: Mapping[str, Any]) -> None:
    """Insert a new device at version 1, in the caller's transaction.

    Raises
    ------
    ConflictError
        A device with that id exists.
    """
    table = TABLES["defibrillators"]
    taken = connection.execute(sa.select(table.c.id).where(table.c.id == row["id"])).first()
    if taken is not None:
        msg = f"Ya existe un desfibrilador con id {row['id']!r}."
        raise ConflictError(msg)
    connection.execute(table.insert().values(**row, version=1))
