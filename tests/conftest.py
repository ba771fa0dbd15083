"""Shared fixtures: a fresh database per test, on SpatiaLite and on a real PostGIS server.

PostGIS tests use the server at ``CARDIOMAPA_TEST_POSTGRES_URL`` (default: the local PostgreSQL
as user ``postgres`` on 127.0.0.1:5432; ``make test`` installs PostGIS and starts the server).
Each test gets its own database, cloned from a template that already has the PostGIS extension.
They are never skipped: a missing server is an error.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest
from playwright.sync_api import Browser, Playwright, sync_playwright
from psycopg import sql
from servers import CHROMIUM, CHROMIUM_FLAGS
from sqlalchemy.engine import make_url

from geo.city import CityProfile, load_city_profile
from geo.core.layers import Layers
from geo.io.files import read_layers
from geo.io.store import Store

ROOT = Path(__file__).resolve().parent.parent
DATA_DIR = ROOT / "data"
TINY_DIR = Path(__file__).resolve().parent / "fixtures" / "tiny"
POSTGRES_URL = os.environ.get(
    "CARDIOMAPA_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
BACKENDS = ("spatialite", "postgis")


def _libpq(url: str, database: str | None = None) -> str:
    parsed = make_url(url).set(drivername="postgresql")
    if database is not None:
        parsed = parsed.set(database=database)
    return parsed.render_as_string(hide_password=False)


class PostgisServer:
    """Creates and drops throwaway databases on a real PostgreSQL server."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.template = f"cardiomapa_tpl_{uuid.uuid4().hex[:8]}"
        try:
            self._admin(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(self.template)))
        except psycopg.OperationalError as exc:
            msg = (
                f"PostgreSQL no responde en {url} ({exc}). Ejecute `make test` (instala PostGIS y "
                "arranca el servidor) o defina CARDIOMAPA_TEST_POSTGRES_URL."
            )
            raise RuntimeError(msg) from exc
        with psycopg.connect(_libpq(url, self.template), autocommit=True) as conn:
            conn.execute("CREATE EXTENSION postgis")

    def _admin(self, statement: sql.Composable) -> None:
        with psycopg.connect(_libpq(self.url), autocommit=True) as conn:
            conn.execute(statement)

    def create(self) -> str:
        name = f"cardiomapa_test_{uuid.uuid4().hex[:12]}"
        self._admin(
            sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                sql.Identifier(name), sql.Identifier(self.template)
            )
        )
        return make_url(self.url).set(database=name).render_as_string(hide_password=False)

    def drop(self, url: str) -> None:
        name = make_url(url).database
        self._admin(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))

    def close(self) -> None:
        self._admin(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(self.template)))


@pytest.fixture(scope="session")
def postgis_server() -> Iterator[PostgisServer]:
    server = PostgisServer(POSTGRES_URL)
    yield server
    server.close()


@contextmanager
def fresh_database(request: pytest.FixtureRequest, folder: Path) -> Iterator[str]:
    """A fresh, empty database on the backend ``request.param`` names (one of :data:`BACKENDS`):
    a SpatiaLite file in ``folder``, or a PostGIS database dropped afterwards."""
    if request.param == "spatialite":
        yield f"sqlite:///{folder / 'cardiomapa.sqlite'}"
        return
    server: PostgisServer = request.getfixturevalue("postgis_server")
    url = server.create()
    try:
        yield url
    finally:
        server.drop(url)


@pytest.fixture(autouse=True)
def backups_in_tmp(
    monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """The backups ``load --replace`` and ``restore`` write go to a temporary folder, never to
    the checkout's var/backups."""
    monkeypatch.setenv("CARDIOMAPA_BACKUP_DIR", str(tmp_path_factory.mktemp("backups")))


@pytest.fixture(params=BACKENDS)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """URL of a fresh, empty database: a SpatiaLite file, then a PostGIS database."""
    with fresh_database(request, tmp_path) as url:
        yield url


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    """A migrated, empty store on each backend."""
    with Store.open(db_url) as opened:
        yield opened


@pytest.fixture(scope="session")
def city() -> CityProfile:
    return load_city_profile(DATA_DIR / "city.json")


@pytest.fixture(scope="session")
def tiny_layers(city: CityProfile) -> Layers:
    return read_layers(TINY_DIR, city)


@pytest.fixture
def tiny_dir(tmp_path: Path) -> Path:
    """A private copy of the tiny fixture layers, for tests that break one file."""
    target = tmp_path / "tiny"
    shutil.copytree(TINY_DIR, target)
    return target


@pytest.fixture(scope="session")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as running:
        yield running


@pytest.fixture(scope="session")
def browser(playwright: Playwright) -> Iterator[Browser]:
    """Debian's Chromium, headless (``make test`` installs it), shared by the browser tests."""
    if not CHROMIUM.exists():
        pytest.fail("Chromium is not installed: run `make test` (scripts/install-browser.sh).")
    # Playwright gives each context its own temporary profile.
    launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_FLAGS)
    yield launched
    launched.close()
