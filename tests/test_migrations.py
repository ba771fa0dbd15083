"""Migrations and models agree, and a database is upgraded, never dropped."""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from geoalchemy2 import alembic_helpers

from geo.core.layers import Layers
from geo.core.network import network_to_frames
from geo.io.osm import load_network
from geo.io.store import (
    Store,
    alembic_config,
    create_db_engine,
    head_revision,
    metadata,
    migrate,
    schema_revision,
)
from geo.services.tokens import authenticate, issue_token

#: Tables SpatiaLite creates for itself (InitSpatialMetaData); not ours to compare.
SPATIALITE_SYSTEM_TABLES = {
    "SpatialIndex", "ElementaryGeometries", "KNN", "data_licenses", "sql_statements_log",
}  # fmt: skip


def include_object(
    obj: object, name: str | None, kind: str, reflected: bool, compare_to: object
) -> bool:
    if kind == "table" and name in SPATIALITE_SYSTEM_TABLES:
        return False
    return bool(alembic_helpers.include_object(obj, name, kind, reflected, compare_to))


def differences(db_url: str, target: sa.MetaData) -> list[Any]:
    engine = create_db_engine(db_url)
    migrate(engine)
    with engine.connect() as connection:
        options = {"include_object": include_object, "compare_type": True}
        context = MigrationContext.configure(connection, opts=options)
        found = compare_metadata(context, target)
    engine.dispose()
    return list(found)


def test_migrated_schema_matches_the_models(db_url: str) -> None:
    assert differences(db_url, metadata) == []


def test_the_comparison_sees_a_model_change(db_url: str) -> None:
    drifted = sa.MetaData()
    for table in metadata.tables.values():
        table.to_metadata(drifted)
    drifted.tables["defibrillators"].append_column(sa.Column("serial_number", sa.Text()))
    assert [d[0] for d in differences(db_url, drifted)] == ["add_column"]


def test_downgrade_and_upgrade_round_trip(db_url: str) -> None:
    engine = create_db_engine(db_url)
    migrate(engine)
    config = alembic_config()
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, "base")
    assert schema_revision(engine) is None
    migrate(engine)
    assert schema_revision(engine) == head_revision()
    engine.dispose()


def test_migrating_again_keeps_the_data(db_url: str, tiny_layers: Layers) -> None:
    with Store.open(db_url) as store:
        store.load(tiny_layers)
        migrate(store.engine)
        assert store.counts() == tiny_layers.counts()


def test_a_database_at_0009_upgrades_and_then_accepts_dispatch_tokens(
    db_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """0010 widens the CHECK on ``api_tokens.role`` (compare_metadata does not compare CHECK
    constraints, so the models test above cannot see it): a database made by 0009, holding
    tokens, keeps them and takes ``dispatch`` ones; the downgrade deletes those, and says so."""
    engine = create_db_engine(db_url)
    config = alembic_config()
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0009")
    created = dt.datetime(2026, 11, 23, 9, 0)

    def insert(role: str, *, entity_id: str | None = None) -> None:
        with engine.begin() as connection:
            connection.execute(
                sa.text(
                    "INSERT INTO api_tokens (secret_hash, role, entity_id, label, created_at) "
                    "VALUES (:hash, :role, :entity_id, :label, :created)"
                ),
                {
                    "hash": "0" * 64,
                    "role": role,
                    "entity_id": entity_id,
                    "label": role,
                    "created": created,
                },
            )

    insert("planner")
    with pytest.raises(sa.exc.IntegrityError):
        insert("dispatch")  # 0009's constraint
    migrate(engine)
    assert schema_revision(engine) == head_revision()
    with Store(engine) as store:
        issued = issue_token(store, role="dispatch", label="112 Castilla y León")
        assert authenticate(store, issued.secret).role == "dispatch"
        assert [token.role for token in store.tokens()] == ["planner", "dispatch"]
    for role, entity_id in (("root", None), ("dispatch", "ent-1")):
        with pytest.raises(sa.exc.IntegrityError):
            insert(role, entity_id=entity_id)
    with engine.begin() as connection, caplog.at_level(logging.WARNING, "cardiomapa.migrations"):
        config.attributes["connection"] = connection
        command.downgrade(config, "0009")
    assert f"{issued.record.id} (112 Castilla y León)" in caplog.text
    with engine.connect() as connection:
        roles = connection.execute(sa.text("SELECT role FROM api_tokens")).scalars().all()
    assert roles == ["planner"]
    with pytest.raises(sa.exc.IntegrityError):
        insert("dispatch")
    engine.dispose()


def test_a_network_stored_before_0011_reads_without_names_then_stores_them(db_url: str) -> None:
    """0011 adds ``network_edges.name``: a network stored by 0010 keeps its edges, reads back
    with no names, and storing a network again keeps its street names."""
    path = Path(__file__).resolve().parent / "fixtures" / "network" / "palencia_centro.osm"
    network = load_network(path, crs="EPSG:25830")
    engine = create_db_engine(db_url)
    config = alembic_config()
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0010")
    nodes, edges = network_to_frames(network)
    nodes, edges = nodes.to_crs("EPSG:4326"), edges.to_crs("EPSG:4326")
    with engine.begin() as connection:  # the rows 0010's code wrote: no name column
        connection.execute(
            sa.text(
                "INSERT INTO network_nodes (node_id, source, geom) "
                "VALUES (:id, :source, ST_GeomFromText(:wkt, 4326))"
            ),
            [{"id": int(i), "source": network.source, "wkt": g.wkt}
             for i, g in zip(nodes["node_id"], nodes.geometry, strict=True)],
        )  # fmt: skip
        connection.execute(
            sa.text(
                "INSERT INTO network_edges (edge_id, u_id, v_id, length_m, source, geom) "
                "VALUES (:id, :u, :v, :length, :source, ST_GeomFromText(:wkt, 4326))"
            ),
            [{"id": k, "u": int(u), "v": int(v), "length": float(length),
              "source": network.source, "wkt": g.wkt}
             for k, (u, v, length, g) in enumerate(zip(edges["u_id"], edges["v_id"],
                                                       edges["length_m"], edges.geometry,
                                                       strict=True))],
        )  # fmt: skip
    migrate(engine)
    assert schema_revision(engine) == head_revision()
    with Store(engine) as store:
        before = store.read_network(crs="EPSG:25830")
        assert before is not None and before.edge_name is None
        assert before.edge_u.tolist() == network.edge_u.tolist()
        store.save_network(network)
        after = store.read_network(crs="EPSG:25830")
        assert after is not None and after.edge_name is not None
        assert network.edge_name is not None
        assert after.edge_name.tolist() == network.edge_name.tolist()
    engine.dispose()
