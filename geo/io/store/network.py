"""The walking network: one at a time, stored in EPSG:4326 like everything else."""

from __future__ import annotations

from collections.abc import Callable

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
import sqlalchemy as sa
from geoalchemy2.shape import from_shape

from geo.core.layers import WGS84
from geo.core.network import WalkingNetwork, network_from_frames, network_to_frames
from geo.io.store.base import StoreBase, batches
from geo.io.store.tables import NETWORK_EDGES, NETWORK_NODES, SRID


class NetworkRepository(StoreBase):
    """Saving, reading and clearing the stored walking network."""

    def save_network(
        self,
        network: WalkingNetwork,
        *,
        batch_size: int = 5000,
        on_rows: Callable[[str, int], None] | None = None,
    ) -> tuple[int, int]:
        """Replace the stored walking network with ``network``, in one transaction.

        Street names (:attr:`WalkingNetwork.edge_name`) go with their edges (``NULL`` where
        there is none, or when the network has no names).

        Returns
        -------
        tuple
            Nodes and edges written.
        """
        nodes, edges = (frame.to_crs(WGS84) for frame in network_to_frames(network))
        node_rows = (
            {"node_id": int(node_id), "source": network.source, "geom": from_shape(geom, SRID)}
            for node_id, geom in zip(nodes["node_id"], nodes.geometry, strict=True)
        )
        names = edges["name"] if "name" in edges.columns else [None] * len(edges)
        edge_rows = (
            {"edge_id": index, "u_id": int(u), "v_id": int(v), "length_m": float(length),
             "source": network.source, "geom": from_shape(geom, SRID),
             "name": name if isinstance(name, str) else None}
            for index, (u, v, length, name, geom) in enumerate(
                zip(edges["u_id"], edges["v_id"], edges["length_m"], names, edges.geometry,
                    strict=True)
            )
        )  # fmt: skip
        with self._transaction() as connection:
            connection.execute(NETWORK_EDGES.delete())
            connection.execute(NETWORK_NODES.delete())
            for name, table, rows in (("nodos", NETWORK_NODES, node_rows),
                                      ("tramos", NETWORK_EDGES, edge_rows)):  # fmt: skip
                for batch in batches(rows, batch_size):
                    connection.execute(table.insert(), batch)
                    if on_rows is not None:
                        on_rows(name, len(batch))
        return len(nodes), len(edges)

    def read_network(self, *, crs: str) -> WalkingNetwork | None:
        """The stored walking network projected to ``crs``, or ``None`` when none is stored.

        It has street names when some edge was stored with one (a network stored before
        migration 0011 has none).
        """
        with self.engine.connect() as connection:
            node_rows = connection.execute(
                sa.select(NETWORK_NODES.c.node_id, NETWORK_NODES.c.source,
                          sa.func.ST_AsBinary(NETWORK_NODES.c.geom).label("wkb"))
                .order_by(NETWORK_NODES.c.node_id)
            ).all()  # fmt: skip
            edge_rows = connection.execute(
                sa.select(
                    NETWORK_EDGES.c.u_id,
                    NETWORK_EDGES.c.v_id,
                    NETWORK_EDGES.c.length_m,
                    NETWORK_EDGES.c.name,
                ).order_by(NETWORK_EDGES.c.edge_id)
            ).all()
        if not node_rows or not edge_rows:
            return None
        nodes = gpd.GeoDataFrame(
            {"node_id": np.array([row.node_id for row in node_rows], dtype=np.int64)},
            geometry=shapely.from_wkb([bytes(row.wkb) for row in node_rows]),
            crs=WGS84,
        ).to_crs(crs)
        edges = gpd.GeoDataFrame(
            {
                "u_id": np.array([row.u_id for row in edge_rows], dtype=np.int64),
                "v_id": np.array([row.v_id for row in edge_rows], dtype=np.int64),
                "length_m": np.array([row.length_m for row in edge_rows], dtype=np.float64),
                "name": pd.Series([row.name for row in edge_rows], dtype=object),
            },
            geometry=[None] * len(edge_rows),
            crs=crs,
        )
        return network_from_frames(nodes, edges, source=node_rows[0].source)

    def clear_network(self) -> None:
        """Remove the stored walking network."""
        with self._transaction() as connection:
            connection.execute(NETWORK_EDGES.delete())
            connection.execute(NETWORK_NODES.delete())
