"""Links keep their bearings: ``entity invite`` and the served pages name the address the server
really listens at (``serve --port``), or the configured public URL, and say which they used."""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from geo.cli import app as cli_app
from geo.core.layers import Layers
from geo.io.serve_record import RECORD_NAME, link_base, record_path, recorded_url
from geo.io.store import Store
from geo.settings import Settings
from tests.servers import Server, free_port

runner = CliRunner()
LINK = re.compile(r"(http\S+)/entidades/invitacion/ci_\S+\n")


@pytest.fixture
def loaded_db(tmp_path: Path, tiny_layers: Layers) -> str:
    """A SpatiaLite file with the tiny layers (the record goes beside it)."""
    url = f"sqlite:///{tmp_path / 'cardiomapa.sqlite'}"
    with Store.open(url) as store:
        store.load(tiny_layers)
    return url


@pytest.fixture
def server(loaded_db: str, tmp_path: Path) -> Iterator[Server]:
    running = Server(loaded_db, tmp_path / "serve.log")
    try:
        yield running
    finally:
        running.stop()


def _invite(db_url: str, **env: str) -> tuple[str, str]:
    environment = {"CARDIOMAPA_DATABASE_URL": db_url, "CARDIOMAPA_PUBLIC_URL": "", **env}
    result = runner.invoke(cli_app, ["entity", "invite", "ent-1"], env=environment)
    assert result.exit_code == 0, result.stderr
    match = LINK.fullmatch(result.stdout)
    assert match is not None, result.stdout
    return match[1], result.stderr


def test_invite_uses_the_port_serve_was_started_with(server: Server, loaded_db: str) -> None:
    link, said = _invite(loaded_db)
    assert link == f"http://127.0.0.1:{server.port}"
    assert "Enlace construido con la dirección con la que se inició `serve`" in said
    # The served pages agree: the cabinet sheet's QR address names the same port.
    sheet = httpx.get(f"{server.base}/dea/dea-1/hoja", timeout=10)
    assert sheet.status_code == 200
    assert f"127.0.0.1:{server.port}/dea/dea-1" in sheet.text


def test_a_configured_public_url_wins(server: Server, loaded_db: str) -> None:
    link, said = _invite(loaded_db, CARDIOMAPA_PUBLIC_URL="https://dea.palencia.example/")
    assert link == "https://dea.palencia.example"
    assert "dirección pública configurada" in said and str(server.port) not in link


def test_without_a_server_the_default_is_said(loaded_db: str) -> None:
    port = free_port()
    link, said = _invite(loaded_db, CARDIOMAPA_PORT=str(port))
    assert link == f"http://127.0.0.1:{port}"
    assert "dirección predeterminada" in said and "no hay dirección pública" in said


def test_the_record_goes_when_the_server_stops(loaded_db: str, tmp_path: Path) -> None:
    record = tmp_path / RECORD_NAME
    running = Server(loaded_db, tmp_path / "serve.log")
    try:
        assert json.loads(record.read_text())["port"] == running.port
        assert recorded_url(loaded_db) == running.base
    finally:
        running.stop()
    assert not record.exists()
    assert link_base(Settings(database_url=loaded_db)).source == "default"


def test_a_stale_record_is_not_believed(loaded_db: str, tmp_path: Path) -> None:
    """A server killed without cleaning up leaves its file: its process is gone, so is it."""
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    port = free_port()
    stale = {"url": f"http://127.0.0.1:{port}", "host": "127.0.0.1", "port": port}
    (tmp_path / RECORD_NAME).write_text(json.dumps({**stale, "pid": int(dead.stdout)}))
    assert recorded_url(loaded_db) is None
    # Alive but not listening there (a reused pid: this test's own) is stale too.
    record = json.loads((tmp_path / RECORD_NAME).read_text())
    (tmp_path / RECORD_NAME).write_text(json.dumps({**record, "pid": 1}))
    assert recorded_url(loaded_db) is None
    _, said = _invite(loaded_db)
    assert "dirección predeterminada" in said


def test_a_wildcard_host_or_another_database_never_names_a_link(tmp_path: Path) -> None:
    """``serve --host 0.0.0.0`` links name this machine, not "every interface"; each PostgreSQL
    database has its own record, and the password takes no part in naming it."""
    wildcard = Settings(host="0.0.0.0", port=8650, public_url=None)
    assert wildcard.base_url() == f"http://{socket.gethostname()}:8650"
    assert Settings(host="::1", port=8650, public_url=None).base_url() == "http://[::1]:8650"
    one = record_path("postgresql+psycopg://u:secret@localhost:5432/a")
    assert one == record_path("postgresql+psycopg://u:other@localhost:5432/a")
    assert one != record_path("postgresql+psycopg://u:secret@localhost:5432/b")
    assert "secret" not in one.name
    assert record_path(f"sqlite:///{tmp_path / 'x.sqlite'}") == tmp_path / RECORD_NAME
