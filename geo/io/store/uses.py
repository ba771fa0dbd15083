"""Uses of a device, as the regional "comunicación de uso" asks (no personal data)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd
import sqlalchemy as sa

from geo.io.store.audit import audit
from geo.io.store.base import StoreBase, device_must_exist, naive_utc
from geo.io.store.devices import write_device_update
from geo.io.store.tables import DEVICE_USES


class UseRepository(StoreBase):
    """Recording and listing the uses of devices."""

    def insert_use(
        self,
        values: Mapping[str, Any],
        *,
        actor: str,
        device_change: tuple[Mapping[str, Any], Mapping[str, Any]] | None = None,
    ) -> int:
        """Record a use of a device; returns its id.

        Parameters
        ----------
        device_change
            ``(before, after)``: a change to the device made with the use (new pads after it),
            written in the same transaction as :meth:`update_device` writes it (conditional on
            ``before["version"]``, version bumped, audited with the use's id). If it cannot be
            written, neither is the use.

        Raises
        ------
        NotFoundError
            The device does not exist.
        ConflictError
            With ``device_change``: someone changed the device after ``before`` was read.
        """
        row = {**values, "reported_by": actor, "reported_at": self.utcnow()}
        row["used_at"] = naive_utc(row["used_at"])
        with device_must_exist(values["device_id"]), self._transaction() as connection:
            self._require_device(connection, str(values["device_id"]))
            key = connection.execute(DEVICE_USES.insert().values(**row)).inserted_primary_key
            assert key is not None
            use_id = int(key[0])
            audit(connection, self.utcnow(), actor, "create", "use", str(use_id), None, row)
            if device_change is not None:
                before, after = device_change
                write_device_update(
                    connection, before, {**after, "use_id": use_id}, actor=actor,
                    at=self.utcnow(),
                )  # fmt: skip
        return use_id

    def uses(
        self, *, device_id: str | None = None, limit: int = 100, offset: int = 0
    ) -> tuple[list[dict[str, Any]], int]:
        """Reported uses, newest first, and how many match in all."""
        conditions = [] if device_id is None else [DEVICE_USES.c.device_id == device_id]
        return self._page(DEVICE_USES, conditions, DEVICE_USES.c.id.desc(), limit, offset)

    def uses_frame(self) -> pd.DataFrame:
        """Reported uses of devices as a table for the indicators, ordered by time of use and id.

        Returns
        -------
        pandas.DataFrame
            Columns ``device_id`` (object: str), ``used_at`` (datetime64[us], naive UTC as
            stored) and ``people_attended`` (int64). Empty, with these columns and dtypes, when
            no use was reported.
        """
        table = DEVICE_USES
        with self.engine.connect() as connection:
            rows = connection.execute(
                sa.select(table.c.device_id, table.c.used_at, table.c.people_attended).order_by(
                    table.c.used_at, table.c.id
                )
            ).all()
        return pd.DataFrame(
            {
                "device_id": pd.Series([row.device_id for row in rows], dtype="object"),
                "used_at": pd.Series([row.used_at for row in rows], dtype="datetime64[us]"),
                "people_attended": pd.Series([row.people_attended for row in rows], dtype="int64"),
            }
        )
