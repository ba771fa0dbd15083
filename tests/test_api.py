"""The web app: index of layers, in-process and on a real uvicorn server."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from servers import Server

from api.app import create_app
from api.schemas import ErrorPublic, IndexPublic, LayerPublic
from geo.core.layers import Layers
from geo.errors import StorageError
from geo.io.store import Store
from geo.settings import Settings


@pytest.fixture
def loaded_url(db_url: str, tiny_layers: Layers) -> str:
    with Store.open(db_url) as store:
        store.load(tiny_layers)
    return db_url


def test_index_lists_the_layers_and_their_counts(loaded_url: str) -> None:
    with TestClient(create_app(Settings(database_url=loaded_url))) as client:
        response = client.get("/api")
    assert response.status_code == 200
    index = IndexPublic.model_validate(response.json())
    assert index.city.name == "Palencia"
    assert {layer.name: layer.count for layer in index.layers} == {
        "ceas": 2, "entities": 2, "defibrillators": 3, "cohousing": 1, "population": 12,
    }  # fmt: skip
    assert index.notice.startswith("20 de 20 registros son datos de muestra sintéticos")


def test_layers_route_reports_sources(loaded_url: str) -> None:
    with TestClient(create_app(Settings(database_url=loaded_url))) as client:
        response = client.get("/api/layers")
    layers = [LayerPublic.model_validate(item) for item in response.json()]
    assert layers[0].name == "ceas" and layers[0].sources == {"synthetic": 2}


def test_domain_errors_become_json_with_a_code(tmp_path: Path) -> None:
    app = create_app(Settings(database_url=f"sqlite:///{tmp_path / 'x.sqlite'}"))

    @app.get("/boom")
    def boom() -> None:
        msg = "La base de datos no responde."
        raise StorageError(msg)

    with TestClient(app) as client:
        response = client.get("/boom")
    assert response.status_code == 503
    assert ErrorPublic.model_validate(response.json()).code == "storage_error"


def test_building_the_app_connects_to_nothing(tmp_path: Path) -> None:
    target = tmp_path / "never.sqlite"
    create_app(Settings(database_url=f"sqlite:///{target}"))
    assert not target.exists()


@pytest.fixture
def server(loaded_url: str, tmp_path: Path) -> Iterator[str]:
    """``cardiomapa serve`` in its own process, as a user starts it."""
    running = Server(loaded_url, tmp_path / "server.log")
    yield running.base
    running.stop()


def test_a_real_server_serves_the_index(server: str) -> None:
    response = httpx.get(f"{server}/api", timeout=10)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    index = IndexPublic.model_validate(response.json())
    assert sum(layer.count for layer in index.layers) == 20
    assert httpx.get(f"{server}/openapi.json", timeout=10).json()["info"]["title"] == "cardiomapa"
