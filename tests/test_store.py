"""The repository on both databases: migrations, round trip, atomic loads."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
import sqlalchemy as sa
from geopandas.testing import assert_geodataframe_equal
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from geo.core.layers import LAYERS, Layers
from geo.errors import DatabaseNotEmptyError, StorageError
from geo.io.store import (
    NETWORK_EDGES,
    TABLES,
    Store,
    create_db_engine,
    head_revision,
    schema_revision,
)
from geo.io.store.devices import NOTES_BY_ID


def test_open_migrates_an_empty_database_to_head(db_url: str) -> None:
    with Store.open(db_url) as store:
        assert schema_revision(store.engine) == head_revision() is not None
        assert store.counts() == {schema.name: 0 for schema in LAYERS}
        assert store.is_empty()


def test_reopening_keeps_the_data(db_url: str, tiny_layers: Layers) -> None:
    with Store.open(db_url) as store:
        store.load(tiny_layers)
    with Store.open(db_url) as store:
        assert store.counts() == tiny_layers.counts()


@pytest.mark.parametrize("name", [schema.name for schema in LAYERS])
def test_round_trip_equals_the_files(store: Store, tiny_layers: Layers, name: str) -> None:
    store.load(tiny_layers)
    expected = tiny_layers[name].sort_values("id").reset_index(drop=True)
    assert_geodataframe_equal(store.read_layer(name), expected, check_less_precise=False)


def test_round_trip_keeps_typed_values(store: Store, tiny_layers: Layers) -> None:
    store.load(tiny_layers)
    devices = store.read_layer("defibrillators").set_index("id")
    assert devices.loc["dea-1", "operator_entity_id"] == "ent-1"
    assert devices.loc["dea-1", "indoor"] is True
    assert devices.loc["dea-3", "installed_on"] == dt.date(2025, 6, 15)
    assert devices.loc["dea-3", "opening_hours"] == "Mo-Fr 09:30-14:00,17:00-20:30; Sa 10:00-14:00"
    assert devices.loc["dea-2", "tags"] == {
        "sample": "synthetic",
        "defibrillator:location": "fachada",
    }
    entities = store.read_layer("entities").set_index("id")
    assert entities.loc["ent-1", "people_served"] == 120
    assert entities.loc["ent-2", "people_served"] is pd.NA
    zones = store.read_layer("ceas")
    assert set(zones.geom_type) == {"MultiPolygon"}


def test_summary_counts_rows_per_source(store: Store, tiny_layers: Layers) -> None:
    store.load(tiny_layers)
    by_name = {layer.name: layer for layer in store.summary()}
    assert by_name["population"].count == 12
    assert by_name["population"].sources == {"synthetic": 12}
    assert by_name["defibrillators"].title == "Desfibriladores"


def test_loading_into_a_loaded_database_is_refused_and_changes_nothing(
    store: Store, tiny_layers: Layers
) -> None:
    store.load(tiny_layers)
    smaller = Layers({**tiny_layers.frames, "population": tiny_layers["population"].head(3)})
    with pytest.raises(DatabaseNotEmptyError, match="--replace"):
        store.load(smaller)
    assert store.counts()["population"] == 12


def test_replace_swaps_every_layer(store: Store, tiny_layers: Layers) -> None:
    store.load(tiny_layers)
    smaller = Layers({**tiny_layers.frames, "population": tiny_layers["population"].head(3)})
    assert store.load(smaller, replace=True)["population"] == 3
    assert store.counts() == {**tiny_layers.counts(), "population": 3}


def test_a_failure_mid_load_leaves_the_database_as_it_was(
    store: Store, tiny_layers: Layers
) -> None:
    store.load(tiny_layers)
    before = {name: store.read_layer(name) for name in TABLES}
    # Bypass validation: the last layer breaks a database constraint after the others were written.
    broken_population = tiny_layers["population"].copy()
    broken_population.loc[5, "residents"] = -1
    broken = Layers({**tiny_layers.frames, "population": broken_population})
    with pytest.raises(sa.exc.IntegrityError):
        store.load(broken, replace=True, batch_size=2)
    for name, frame in before.items():
        assert_geodataframe_equal(store.read_layer(name), frame)


def test_database_constraints_reject_unknown_enum_values(store: Store, tiny_layers: Layers) -> None:
    devices = tiny_layers["defibrillators"].copy()
    devices.loc[0, "access"] = "public"
    with pytest.raises(sa.exc.IntegrityError):
        store.load(Layers({**tiny_layers.frames, "defibrillators": devices}))
    assert store.is_empty()


def test_foreign_key_to_entities_is_enforced(store: Store, tiny_layers: Layers) -> None:
    devices = tiny_layers["defibrillators"].copy()
    devices.loc[0, "operator_entity_id"] = "ent-missing"
    with pytest.raises(sa.exc.IntegrityError):
        store.load(Layers({**tiny_layers.frames, "defibrillators": devices}))
    assert store.is_empty()


def test_geometry_is_indexed_and_queryable_in_sql(store: Store, tiny_layers: Layers) -> None:
    store.load(tiny_layers)
    table = TABLES["defibrillators"]
    centre = sa.func.ST_GeomFromText("POINT(-4.5288 42.0096)", 4326)
    query = sa.select(table.c.id).where(sa.func.ST_Intersects(table.c.geom, centre))
    with store.engine.connect() as connection:
        assert connection.execute(query).scalars().all() == ["dea-2"]
    frame = store.read_layer("defibrillators")
    assert shapely.equals_exact(frame.geometry.iloc[1], shapely.Point(-4.5288, 42.0096), 1e-9)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("mysql://u@h/db", "no admitida"),
        ("not a url", "no válida"),
    ],
)
def test_unsupported_database_urls_are_refused(url: str, message: str) -> None:
    with pytest.raises(StorageError, match=message):
        create_db_engine(url)


def test_unreachable_postgres_is_a_clear_storage_error() -> None:
    with pytest.raises(StorageError, match="No se puede abrir"):
        Store.open("postgresql+psycopg://nobody@127.0.0.1:1/none?connect_timeout=2")


def test_layers_dataclass_is_frozen(tiny_layers: Layers) -> None:
    with pytest.raises(AttributeError):
        tiny_layers.frames = {}  # type: ignore[misc]
    assert replace(tiny_layers).counts() == tiny_layers.counts()


@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    points=st.lists(
        st.tuples(
            st.floats(min_value=-4.56, max_value=-4.50, allow_nan=False),
            st.floats(min_value=41.99, max_value=42.04, allow_nan=False),
        ),
        min_size=1,
        max_size=30,
    ),
    residents=st.integers(min_value=0, max_value=10_000),
)
def test_any_valid_population_round_trips_exactly(
    store: Store, tiny_layers: Layers, points: list[tuple[float, float]], residents: int
) -> None:
    population = gpd.GeoDataFrame(
        {
            "id": pd.Series([f"p{i}" for i in range(len(points))], dtype="object"),
            "residents": pd.Series([residents] * len(points), dtype="Int64"),
            "residents_65_plus": pd.Series([residents // 4] * len(points), dtype="Int64"),
            "section_code": pd.Series([None] * len(points), dtype="object"),
            "source": pd.Series(["synthetic"] * len(points), dtype="object"),
        },
        geometry=gpd.GeoSeries([shapely.Point(p) for p in points], crs="EPSG:4326"),
    )
    store.load(Layers({**tiny_layers.frames, "population": population}), replace=True)
    stored = store.read_layer("population")
    expected = population.sort_values("id").reset_index(drop=True)
    assert_geodataframe_equal(stored, expected)


def test_walking_network_round_trip(store: Store) -> None:
    from geo.io.osm import load_network

    path = Path(__file__).resolve().parent / "fixtures" / "network" / "palencia_centro.osm"
    network = load_network(path, crs="EPSG:25830")
    assert store.read_network(crs="EPSG:25830") is None
    assert store.save_network(network) == (network.n_nodes, network.n_edges)
    stored = store.read_network(crs="EPSG:25830")
    assert stored is not None
    assert stored.source == "palencia_centro.osm"
    assert stored.node_ids.tolist() == network.node_ids.tolist()
    assert np.allclose(stored.node_xy, network.node_xy, atol=1e-6)
    assert stored.edge_u.tolist() == network.edge_u.tolist()
    # Nodes travel through EPSG:4326 and back (nanometres); lengths may be nudged to the chord.
    assert np.allclose(stored.edge_length_m, network.edge_length_m, rtol=0, atol=1e-6)
    assert network.edge_name is not None and stored.edge_name is not None  # street names too
    assert stored.edge_name.tolist() == network.edge_name.tolist()
    assert None in stored.edge_name.tolist()  # NULL where the way has no name
    store.save_network(network)  # replaces, never duplicates
    with store.engine.connect() as connection:
        count = sa.select(sa.func.count()).select_from(NETWORK_EDGES)
        assert connection.execute(count).scalar_one() == network.n_edges
    store.clear_network()
    assert store.read_network(crs="EPSG:25830") is None


def test_private_notes_of_more_devices_than_a_statement_takes(
    store: Store, tiny_layers: Layers
) -> None:
    """The dispatch feed asks for the notes of every listed device at once: past 65,535 ids a
    list of parameters is refused by PostgreSQL, so a long list is answered from every note."""
    store.load(tiny_layers)
    before = store.device("dea-1")
    assert before is not None
    notes = {"cabinet_code": "1234", "key_holder": "Conserjería", "notes": None}
    store.update_device(before, before, actor="test", private=notes)
    asked = ["dea-1", "dea-2", *(f"dea-x{i}" for i in range(70_000))]
    assert len(asked) > NOTES_BY_ID
    assert store.private_notes(asked) == {"dea-1": notes}
    assert store.private_notes(["dea-2", "dea-3"]) == {}  # one parameter per id
    assert store.private_notes(["dea-1"]) == {"dea-1": notes}
