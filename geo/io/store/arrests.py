"""Past cardiac arrests: PRIVATE, for the CLI and the staff's analyses only.

Never in a public route, download, export, the OGC API or a citizens' map.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

import geopandas as gpd
import pandas as pd
import shapely
import sqlalchemy as sa
from geoalchemy2.shape import from_shape
from sqlalchemy.engine import Connection

from geo.core.layers import WGS84
from geo.core.outputs import python_value
from geo.errors import ConflictError, InputError
from geo.io.store.audit import audit
from geo.io.store.base import StoreBase, batches
from geo.io.store.tables import ARREST_COLUMNS, CARDIAC_ARRESTS, SRID


class ArrestRepository(StoreBase):
    """Replacing, appending and reading the stored past arrests."""

    def replace_arrests(self, frame: gpd.GeoDataFrame, *, actor: str) -> tuple[int, int]:
        """Replace every stored past arrest by ``frame``, in one transaction; audited.

        The audit entry holds counts and sources only, never times or positions.

        Parameters
        ----------
        frame
            Validated arrests as :func:`geo.core.arrests.parse_arrests` returns them: the
            :data:`ARREST_COLUMNS` and ``geometry`` (cell centres; any CRS, stored in EPSG:4326).

        Returns
        -------
        tuple
            Arrests stored before and after.

        Raises
        ------
        InputError
            ``frame`` lacks a column, has no CRS, a time with a zone or a repeated
            ``(source, source_id)``.
        """
        rows = _arrest_rows(frame)
        with self._transaction() as connection:
            before = int(
                connection.execute(
                    sa.select(sa.func.count()).select_from(CARDIAC_ARRESTS)
                ).scalar_one()
            )
            connection.execute(CARDIAC_ARRESTS.delete())
            _insert_arrests(connection, rows, actor, at=self.utcnow())
            after = {"rows": len(rows), "sources": sorted({row["source"] for row in rows})}
            audit(connection, self.utcnow(), actor, "replace", "arrests", CARDIAC_ARRESTS.name,
                  {"rows": before}, after)  # fmt: skip
        return before, len(rows)

    def append_arrests(self, frame: gpd.GeoDataFrame, *, actor: str) -> int:
        """Add ``frame``'s arrests to the stored ones, in one transaction; audited (counts only).

        Returns
        -------
        int
            Arrests stored after the append.

        Raises
        ------
        InputError
            As :meth:`replace_arrests`.
        ConflictError
            A row's ``(source, source_id)`` is stored already (import the file again without
            appending, to replace); nothing is written.
        """
        rows = _arrest_rows(frame)
        table = CARDIAC_ARRESTS
        unkeyed = sum(1 for row in rows if not row["source_id"])
        if unkeyed:
            msg = (
                f"{unkeyed} paradas no tienen id: al añadirlas no se sabría si ya están guardadas "
                "y se contarían dos veces. Añada la columna id (la referencia del servicio de "
                "emergencias) o importe sin añadir para sustituir las guardadas."
            )
            raise InputError(msg, code="arrest_without_id", field="id")
        with self._transaction() as connection:
            keyed = {(row["source"], row["source_id"]) for row in rows}
            sources = sorted({source for source, _ in keyed})
            stored = connection.execute(
                sa.select(table.c.source, table.c.source_id).where(
                    table.c.source.in_(sources), table.c.source_id.is_not(None)
                )
            ).all()
            taken = sorted(keyed & {(row.source, row.source_id) for row in stored})
            if taken:
                source, source_id = taken[0]
                msg = (
                    f"Ya hay guardada una parada de {source!r} con id {source_id!r} "
                    f"({len(taken)} repetidas en total); no se ha guardado nada. Importe sin "
                    "añadir para sustituir las paradas guardadas."
                )
                raise ConflictError(msg)
            _insert_arrests(connection, rows, actor, at=self.utcnow())
            total = int(
                connection.execute(sa.select(sa.func.count()).select_from(table)).scalar_one()
            )
            after = {"rows": total, "added": len(rows),
                     "sources": sorted({row["source"] for row in rows})}  # fmt: skip
            audit(connection, self.utcnow(), actor, "append", "arrests", table.name,
                  {"rows": total - len(rows)}, after)  # fmt: skip
        return total

    def arrests_frame(self) -> gpd.GeoDataFrame:
        """The stored past arrests, ordered by time and id. PRIVATE: staff analyses only.

        Returns
        -------
        geopandas.GeoDataFrame
            EPSG:4326. Columns ``id`` (int64), ``occurred_at`` (datetime64[us], the city's local
            time, naive), ``place_type`` (object: one of :data:`ARREST_PLACE_TYPES`),
            ``bystander_cpr``, ``aed_used``, ``survived_30d``, ``discharged_alive`` (object:
            bool or ``None`` when unknown), ``cell_m`` (float64: the grid the position was
            coarsened to), ``source``, ``source_id`` (object) and ``geometry`` (the centre of
            the grid cell). Empty, with these columns and dtypes, when none is stored.
        """
        table = CARDIAC_ARRESTS
        names = ("id", *ARREST_COLUMNS)
        with self.engine.connect() as connection:
            rows = connection.execute(
                sa.select(
                    *(table.c[name] for name in names),
                    sa.func.ST_AsBinary(table.c.geom).label("wkb"),
                ).order_by(table.c.occurred_at, table.c.id)
            ).all()
        dtypes = {"id": "int64", "occurred_at": "datetime64[us]", "cell_m": "float64"}
        data = {
            name: pd.Series([row._mapping[name] for row in rows], dtype=dtypes.get(name, "object"))
            for name in names
        }
        geometry = shapely.from_wkb([bytes(row.wkb) for row in rows])
        return gpd.GeoDataFrame(data, geometry=list(geometry), crs=WGS84)


def _arrest_rows(frame: gpd.GeoDataFrame) -> list[dict[str, Any]]:
    """The stored columns of validated arrests (plain values, EPSG:4326 ``geom``)."""
    missing = [name for name in ARREST_COLUMNS if name not in frame.columns]
    if missing:
        msg = f"Faltan columnas en las paradas a guardar: {', '.join(missing)}."
        raise InputError(msg, code="missing_field", field=missing[0])
    if frame.crs is None:
        msg = "Las paradas a guardar no declaran su CRS; se esperaba EPSG:4326."
        raise InputError(msg, code="invalid_geometry", field="geometry")
    points = frame.geometry if frame.crs == WGS84 else frame.geometry.to_crs(WGS84)
    rows = []
    seen: set[tuple[str, str]] = set()
    for values, geom in zip(
        frame[list(ARREST_COLUMNS)].itertuples(index=False, name=None), points, strict=True
    ):
        row = {
            name: python_value(value) for name, value in zip(ARREST_COLUMNS, values, strict=True)
        }
        when = pd.Timestamp(row["occurred_at"])
        if when.tzinfo is not None:
            msg = "occurred_at debe ser la hora local de la ciudad, sin zona horaria."
            raise InputError(msg, code="invalid_date", field="occurred_at")
        row["occurred_at"] = when.to_pydatetime()
        key = (str(row["source"]), str(row["source_id"]))
        if row["source_id"] is not None:
            if key in seen:
                msg = f"La parada {key[1]!r} de {key[0]!r} aparece dos veces."
                raise InputError(msg, code="duplicate_record", field="source_id")
            seen.add(key)
        row["geom"] = from_shape(geom, srid=SRID)
        rows.append(row)
    return rows


def _insert_arrests(
    connection: Connection, rows: Sequence[Mapping[str, Any]], actor: str, *, at: dt.datetime
) -> None:
    stamp = {"created_at": at, "created_by": actor}
    for batch in batches(iter([{**row, **stamp} for row in rows]), 1000):
        connection.execute(CARDIAC_ARRESTS.insert(), batch)
