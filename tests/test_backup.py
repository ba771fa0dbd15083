"""Backups and restores of the whole database, ``load --replace`` keeping what people wrote, and the
foreign keys from uses and reports to their devices — on a real SpatiaLite file and real PostGIS."""

from __future__ import annotations

import datetime as dt
import logging
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from alembic import command
from geoalchemy2.shape import from_shape
from servers import Server
from typer.testing import CliRunner
from weeks import ORDINARY, clock_at, clock_env

from geo.cli import app
from geo.core.layers import DEFIBRILLATORS, Layers
from geo.errors import NotFoundError
from geo.io import backup
from geo.io.export import ExportFormat, export_bytes
from geo.io.store import (
    AUDIT_LOG,
    DEVICE_USES,
    PROBLEM_REPORTS,
    TABLES,
    Store,
    alembic_config,
    create_db_engine,
    head_revision,
    metadata,
    migrate,
)
from geo.services.tokens import issue_token
from tests.conftest import TINY_DIR, PostgisServer

runner = CliRunner()
REGISTRANT = "token 1 (entidad ent-1: registro)"
NOTES = {"cabinet_code": "4321", "key_holder": "Conserjería", "notes": None}


def cli(db_url: str, *args: str) -> tuple[int, str, str]:
    env = {"CARDIOMAPA_DATABASE_URL": db_url, **clock_env(ORDINARY)}
    result = runner.invoke(app, list(args), env=env)
    return result.exit_code, result.stdout, result.stderr


def table_counts(url: str) -> dict[str, int]:
    """Rows in every table cardiomapa owns, and the schema revision."""
    engine = create_db_engine(url)
    try:
        with engine.connect() as connection:
            counts = {
                name: int(
                    connection.execute(sa.select(sa.func.count()).select_from(table)).scalar_one()
                )
                for name, table in metadata.tables.items()
            }
            counts["alembic_version"] = int(
                connection.execute(sa.text("SELECT COUNT(*) FROM alembic_version")).scalar_one()
            )
    finally:
        engine.dispose()
    return counts


def exports(url: str) -> dict[str, bytes]:
    """Every layer in GeoJSON and CSV, staff scope (every device and field)."""
    found = {}
    with Store.open(url, clock=clock_at(ORDINARY)) as store:
        for name in TABLES:
            for fmt in (ExportFormat.GEOJSON, ExportFormat.CSV):
                data, _ = export_bytes(store, name, fmt, public_only=False, data_licence="ODbL-1.0")
                found[f"{name}.{fmt.value}"] = data
    return found


def people_write(store: Store) -> None:
    """What entities, staff and citizens write: a registration with private notes, an edit of a
    loaded device, a use, a citizen's report, a token and a contact."""
    registered = {**store.device("dea-2"), "id": "dea-reg", "name": "Registrado por ent-1"}  # type: ignore[dict-item]
    registered.update(
        source="entity-registration", verification="pending", operator_entity_id="ent-1"
    )
    registered.pop("version")
    store.insert_device(registered, actor=REGISTRANT, private=NOTES)
    before = store.device("dea-1")
    assert before is not None
    store.update_device(before, {**before, "name": "Editado por su entidad"}, actor=REGISTRANT)
    store.insert_use(
        {"device_id": "dea-2", "used_at": dt.datetime(2026, 11, 20, 9, 0), "people_attended": 1},
        actor=REGISTRANT,
    )
    store.insert_report(
        {"device_id": "dea-3", "kind": "broken", "message": "No enciende"}, actor="ciudadanía"
    )
    issue_token(store, role="entity", entity_id="ent-2")
    store.set_contacts(
        [{"entity_id": "ent-2", "person": "Ana", "email": "ana@example.org", "phone": None}],
        actor="cli",
    )


@pytest.fixture
def other_database(request: pytest.FixtureRequest, db_url: str, tmp_path: Path) -> Iterator[str]:
    """A second fresh, empty database on the same backend as ``db_url``."""
    if db_url.startswith("sqlite"):
        yield f"sqlite:///{tmp_path / 'other' / 'cardiomapa.sqlite'}"
        return
    server: PostgisServer = request.getfixturevalue("postgis_server")
    url = server.create()
    try:
        yield url
    finally:
        server.drop(url)


@pytest.fixture
def written(db_url: str, tiny_layers: Layers) -> str:
    """``db_url`` with the tiny layers loaded and people's writes on top."""
    with Store.open(db_url, clock=clock_at(ORDINARY)) as store:
        store.load(tiny_layers)
        people_write(store)
    return db_url


# --- backup and restore -----------------------------------------------------------------------


def test_restore_brings_back_exactly_the_backed_up_state(
    written: str, other_database: str, tiny_layers: Layers, tmp_path: Path
) -> None:
    counts, files = table_counts(written), exports(written)
    code, out, err = cli(written, "backup", str(tmp_path / "copia"))
    assert code == 0, err
    assert "Copia de seguridad escrita en" in out and f"revisión {head_revision()}" in out
    with Store.open(written, clock=clock_at(ORDINARY)) as store:
        store.insert_report({"device_id": "dea-1", "kind": "other", "message": "Otro"}, actor="c")
        before = store.device("dea-2")
        assert before is not None
        store.update_device(before, {**before, "name": "Cambiado después"}, actor="staff")
        changed = Layers({**tiny_layers.frames, "population": tiny_layers["population"].head(2)})
        store.load(changed, replace=True)
    assert table_counts(written) != counts and exports(written) != files

    code, out, err = cli(written, "restore", "--yes", "--no-backup", str(tmp_path / "copia"))
    assert code == 0, err
    assert "Restaurada" in out
    assert table_counts(written) == counts
    assert exports(written) == files

    # into an empty database: the same
    code, _, err = cli(other_database, "restore", "--yes", str(tmp_path / "copia"))
    assert code == 0, err
    assert table_counts(other_database) == counts
    assert exports(other_database) == files


def test_restore_asks_first_and_keeps_a_backup_of_what_it_replaces(
    written: str, tmp_path: Path
) -> None:
    target = tmp_path / "copia"
    assert cli(written, "backup", str(target))[0] == 0
    result = runner.invoke(
        app,
        ["restore", str(target), "--backup-dir", str(tmp_path / "auto")],
        env={"CARDIOMAPA_DATABASE_URL": written, **clock_env(ORDINARY)},
        input="n\n",
    )
    assert result.exit_code == 1 and "No se ha restaurado nada" in result.stderr
    assert "[s/N]" in result.output and "y/N" not in result.output
    assert not (tmp_path / "auto").exists()
    code, out, _ = cli(
        written, "restore", str(target), "--yes", "--backup-dir", str(tmp_path / "auto")
    )
    assert code == 0
    (kept,) = (tmp_path / "auto").iterdir()
    assert "antes-de-restaurar" in kept.name and str(kept) in out.replace("\n", "")


def test_backup_refuses_to_overwrite_a_file(written: str, tmp_path: Path) -> None:
    target = tmp_path / "copia"
    target.write_text("algo")
    code, _, err = cli(written, "backup", str(target))
    assert code == 1 and "ya existe" in err and str(target) in err.replace("\n", "")
    assert target.read_text() == "algo"


def test_restore_refuses_a_file_that_is_not_a_backup(written: str, tmp_path: Path) -> None:
    bogus = tmp_path / "notas.txt"
    bogus.write_text("no soy una copia")
    before = table_counts(written)
    code, _, err = cli(written, "restore", "--yes", str(bogus))
    assert code == 1 and "no es una copia de seguridad de cardiomapa" in err
    assert str(bogus) in err.replace("\n", "")
    assert table_counts(written) == before


def test_restore_refuses_a_newer_schema(written: str, tmp_path: Path) -> None:
    target = tmp_path / "copia"
    assert cli(written, "backup", str(target))[0] == 0
    if written.startswith("sqlite"):
        with sqlite3.connect(target) as copy:
            copy.execute("UPDATE alembic_version SET version_num = '0999'")
    else:
        engine = create_db_engine(written)
        with engine.begin() as connection:
            connection.execute(sa.text("UPDATE alembic_version SET version_num = '0999'"))
        target.unlink()
        backup.backup_database(written, target)
        with engine.begin() as connection:
            connection.execute(
                sa.text("UPDATE alembic_version SET version_num = :head"), {"head": head_revision()}
            )
        engine.dispose()
    before = table_counts(written)
    code, _, err = cli(written, "restore", "--yes", str(target))
    assert code == 1
    assert "'0999'" in err and "más nueva" in err and str(target) in err.replace("\n", "")
    assert table_counts(written) == before


def test_restore_refuses_a_backup_of_the_other_database(
    postgis_server: PostgisServer, tiny_layers: Layers, tmp_path: Path
) -> None:
    sqlite_url = f"sqlite:///{tmp_path / 'cardiomapa.sqlite'}"
    postgres_url = postgis_server.create()
    try:
        for url in (sqlite_url, postgres_url):
            with Store.open(url) as store:
                store.load(tiny_layers)
        assert cli(sqlite_url, "backup", str(tmp_path / "de-sqlite"))[0] == 0
        assert cli(postgres_url, "backup", str(tmp_path / "de-postgres"))[0] == 0
        code, _, err = cli(postgres_url, "restore", "--yes", str(tmp_path / "de-sqlite"))
        assert code == 1
        assert "es una copia de SQLite (SpatiaLite)" in err and "es PostgreSQL (PostGIS)" in err
        code, _, err = cli(sqlite_url, "restore", "--yes", str(tmp_path / "de-postgres"))
        assert code == 1
        assert "es una copia de PostgreSQL (PostGIS)" in err and "es SQLite" in err
        for url in (sqlite_url, postgres_url):
            assert table_counts(url)["defibrillators"] == 3
    finally:
        postgis_server.drop(postgres_url)


def test_backup_while_a_server_writes(written: str, other_database: str, tmp_path: Path) -> None:
    """Each backup is one consistent instant (every use has its audit entry) and no write the
    server acknowledged is lost or held up."""
    with Store.open(written) as store:
        secret = issue_token(store, role="planner").secret
    server = Server(written, tmp_path / "server.log", env=clock_env(ORDINARY))
    acknowledged: list[int] = []
    stop = threading.Event()
    problems: list[str] = []

    def write() -> None:
        headers = {"Authorization": f"Bearer {secret}"}
        with httpx.Client(base_url=server.base, headers=headers, timeout=60) as http:
            while not stop.is_set():
                body = {"used_at": "2026-11-20T09:00:00", "notes": f"uso {len(acknowledged)}"}
                response = http.post("/api/defibrillators/dea-1/uses", json=body)
                if response.status_code != 201:
                    problems.append(f"{response.status_code}: {response.text[:300]}")
                    return
                acknowledged.append(int(response.json()["id"]))

    writer = threading.Thread(target=write)
    writer.start()
    try:
        copies = []
        for number in range(3):
            while len(acknowledged) < 5 * (number + 1) and writer.is_alive():
                stop.wait(0.05)
            copies.append(backup.backup_database(written, tmp_path / f"copia-{number}"))
    finally:
        stop.set()
        writer.join(timeout=120)
        server.stop()
    assert not problems, problems
    uses_seen = []
    for copy in copies:
        backup.restore_database(other_database, copy.path)
        engine = create_db_engine(other_database)
        with engine.connect() as connection:
            uses = connection.execute(sa.select(sa.func.count()).select_from(DEVICE_USES))
            audited = connection.execute(
                sa.text("SELECT COUNT(*) FROM audit_log WHERE record_type = 'use'")
            )
            count = int(uses.scalar_one())
            assert count == int(audited.scalar_one())
        engine.dispose()
        uses_seen.append(count)
    assert uses_seen == sorted(uses_seen) and uses_seen[-1] >= 15
    with Store.open(written) as store:
        stored = {row["id"] for row in store.uses(limit=100_000)[0]}
    assert set(acknowledged) <= stored


# --- load --replace ---------------------------------------------------------------------------


def test_load_replace_keeps_what_people_wrote(written: str, tiny_layers: Layers) -> None:
    with Store.open(written, clock=clock_at(ORDINARY)) as store:
        notes, tokens = store.private_notes(["dea-reg"]), store.tokens()
        contacts = store.contacts()
    devices = tiny_layers["defibrillators"]
    extra = devices.loc[devices["id"] == "dea-3"].assign(id="dea-4", name="Solo de la carga")
    with Store.open(written, clock=clock_at(ORDINARY)) as store:
        # a device only a load wrote, that nobody touched: replaceable
        store.load(Layers({**tiny_layers.frames, "defibrillators": _concat(devices, extra)}),
                   replace=True)  # fmt: skip
        assert store.device("dea-4") is not None
        renamed = devices.assign(name=devices["name"] + " (archivo nuevo)")
        entities = tiny_layers["entities"]
        newer = renamed.loc[renamed["id"] != "dea-3"].assign(operator_entity_id=None)
        fresh = newer.loc[newer["id"] == "dea-2"].assign(id="dea-5", name="Nuevo")
        layers = Layers({**tiny_layers.frames, "entities": entities.loc[entities["id"] == "ent-2"],
                         "defibrillators": _concat(newer, fresh)})  # fmt: skip
        kept: dict[str, list[str]] = {}
        written_rows = store.load(layers, replace=True, kept=kept)

        assert kept["devices"] == ["dea-1", "dea-2", "dea-3", "dea-reg"]
        assert kept["skipped"] == ["dea-1", "dea-2"]
        assert kept["entities"] == ["ent-1"]
        assert written_rows["defibrillators"] == 1  # dea-5
        assert store.device("dea-4") is None  # loaded, untouched, not in the file: replaced
        assert store.device("dea-5") is not None
        assert store.device("dea-1")["name"] == "Editado por su entidad"  # type: ignore[index]
        assert store.device("dea-2")["name"] == devices.set_index("id").at["dea-2", "name"]  # type: ignore[index]
        assert store.device("dea-3") is not None  # a citizen's report names it
        registered = store.device("dea-reg")
        assert registered is not None and registered["operator_entity_id"] == "ent-1"
        assert store.private_notes(["dea-reg"]) == notes
        assert store.uses()[1] == 1 and store.reports()[1] == 1
        assert store.tokens() == tokens and store.contacts() == contacts
        assert set(store.read_layer("entities")["id"]) == {"ent-1", "ent-2"}
        log, _ = store.audit_entries(record_type="layers")
        assert log[0]["action"] == "replace" and log[0]["after"]["skipped"] == ["dea-1", "dea-2"]


def test_cli_load_replace_writes_a_backup_first_and_says_what_it_kept(
    written: str, tmp_path: Path
) -> None:
    folder = tmp_path / "copias"
    before = table_counts(written)
    code, out, err = cli(
        written, "load", "--replace", "--data-dir", str(TINY_DIR), "--backup-dir", str(folder)
    )
    assert code == 0, err
    text = out.replace("\n", " ")
    (copy,) = folder.iterdir()
    assert f"Copia de seguridad escrita en {copy}" in text
    assert "Desfibriladores conservados como estaban" in text and "dea-reg" in text
    assert "no cargadas porque son uno de esos desfibriladores" in text
    assert backup.inspect_backup(copy).revision == head_revision()
    after = table_counts(written)
    for table in ("device_private_notes", "device_uses", "problem_reports", "api_tokens",
                  "entity_contacts"):  # fmt: skip
        assert after[table] == before[table]
    assert after["defibrillators"] == before["defibrillators"]
    assert after["audit_log"] == before["audit_log"] + 1  # the load, audited


def test_cli_load_replace_can_skip_the_backup(written: str, tmp_path: Path) -> None:
    folder = tmp_path / "copias"
    args = ("load", "--replace", "--no-backup", "--data-dir", str(TINY_DIR))
    code, out, err = cli(written, *args, "--backup-dir", str(folder))
    assert code == 0, err
    assert not folder.exists() and "Copia de seguridad" not in out


def test_a_load_waits_for_a_writer_and_keeps_its_write(written: str, tiny_layers: Layers) -> None:
    """A registration whose transaction is open when the load starts is kept: the load waits
    for it (SQLite's write lock; PostgreSQL's table locks), then sees it and keeps it."""
    store = Store.open(written, clock=clock_at(ORDINARY))
    started, done = threading.Event(), threading.Event()
    failures: list[BaseException] = []
    base = store.device("dea-2")
    assert base is not None
    record = {name: base[name] for name in DEFIBRILLATORS.field_names}
    record.update(id="dea-during", source="entity-registration", verification="pending")

    def load() -> None:
        try:
            started.wait(30)
            store.load(tiny_layers, replace=True)
        except BaseException as exc:
            failures.append(exc)
        finally:
            done.set()

    thread = threading.Thread(target=load)
    thread.start()
    with store._transaction() as connection:  # the registration, as insert_device writes it
        connection.execute(
            TABLES["defibrillators"]
            .insert()
            .values(**record, geom=from_shape(base["geometry"], srid=4326), version=1)
        )
        connection.execute(
            AUDIT_LOG.insert().values(at=dt.datetime(2026, 11, 23, 9, 0), actor=REGISTRANT,
                                      action="create", record_type="device",
                                      record_id="dea-during")
        )  # fmt: skip
        started.set()
        assert not done.wait(1.0)  # the load waits for the writer
    thread.join(60)
    store.close()
    assert not failures, failures
    with Store.open(written) as reopened:
        assert reopened.device("dea-during") is not None


# --- foreign keys -----------------------------------------------------------------------------


def test_uses_and_reports_need_an_existing_device(written: str) -> None:
    engine = create_db_engine(written)
    now = dt.datetime(2026, 11, 23, 9, 0)
    rows: list[tuple[sa.Table, dict[str, Any]]] = [
        (DEVICE_USES, {"device_id": "dea-nope", "used_at": now, "people_attended": 1,
                       "reported_by": "x", "reported_at": now}),
        (PROBLEM_REPORTS, {"device_id": "dea-nope", "kind": "other", "message": "x",
                           "status": "pending", "created_at": now}),
    ]  # fmt: skip
    for table, row in rows:
        with pytest.raises(sa.exc.IntegrityError), engine.begin() as connection:
            connection.execute(table.insert().values(**row))
    with pytest.raises(sa.exc.IntegrityError), engine.begin() as connection:
        connection.execute(TABLES["defibrillators"].delete().where(
            TABLES["defibrillators"].c.id == "dea-2"))  # fmt: skip
    engine.dispose()
    with Store.open(written) as store:
        with pytest.raises(NotFoundError, match="dea-nope"):
            store.insert_use({"device_id": "dea-nope", "used_at": now, "people_attended": 1},
                             actor="x")  # fmt: skip
        with pytest.raises(NotFoundError, match="dea-nope"):
            store.insert_report({"device_id": "dea-nope", "kind": "other", "message": "x"},
                                actor="x")  # fmt: skip


def test_the_api_answers_404_for_a_use_or_report_of_an_unknown_device(written: str) -> None:
    from fastapi.testclient import TestClient

    from api.app import create_app
    from geo.settings import Settings

    with Store.open(written) as store:
        secret = issue_token(store, role="planner").secret
    settings = Settings(database_url=written, tile_url="", clock_start=ORDINARY)
    with TestClient(create_app(settings)) as client:
        use = client.post(
            "/api/defibrillators/dea-nope/uses",
            json={"used_at": "2026-11-20T09:00:00"},
            headers={"Authorization": f"Bearer {secret}"},
        )
        report = client.post(
            "/api/defibrillators/dea-nope/reports", json={"kind": "other", "message": "x"}
        )
    for response in (use, report):
        assert response.status_code == 404, response.text
        assert "dea-nope" in response.text
    assert table_counts(written)["device_uses"] == 1


def test_the_migration_quarantines_orphans_and_the_downgrade_puts_them_back(
    db_url: str, tiny_layers: Layers, caplog: pytest.LogCaptureFixture
) -> None:
    engine = create_db_engine(db_url)
    migrate(engine)
    config = alembic_config()
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, "0008")
    with Store(engine) as store:
        store.load(tiny_layers)
    now = dt.datetime(2026, 11, 23, 9, 0)
    with engine.begin() as connection:
        connection.execute(
            sa.text(
                "INSERT INTO device_uses (device_id, used_at, people_attended, reported_by, "
                "reported_at) VALUES ('dea-gone', :now, 1, 'x', :now), "
                "('dea-1', :now, 2, 'x', :now)"
            ),
            {"now": now},
        )
    with caplog.at_level(logging.WARNING, logger="cardiomapa.migrations"):
        migrate(engine)
    assert "dea-gone" in caplog.text and "quarantined_records" in caplog.text
    with engine.connect() as connection:
        assert connection.execute(sa.text("SELECT device_id FROM device_uses")).all() == [
            ("dea-1",)
        ]
        quarantined = connection.execute(
            sa.text("SELECT record_type, device_id FROM quarantined_records")
        ).all()
    assert quarantined == [("use", "dea-gone")]
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, "0008")
    with engine.connect() as connection:
        table = DEVICE_USES
        back = connection.execute(
            sa.select(table.c.device_id, table.c.people_attended, table.c.used_at).order_by(
                table.c.id
            )
        ).all()
    assert [(row[0], row[1]) for row in back] == [("dea-gone", 1), ("dea-1", 2)]  # same ids
    assert all(row[2] == now for row in back)
    with Store(engine) as store:  # new rows are numbered after the ones put back
        migrate(engine)
        assert (
            store.insert_use(
                {"device_id": "dea-1", "used_at": now, "people_attended": 1}, actor="x"
            )
            == 3
        )
    engine.dispose()


def _concat(*frames: Any) -> Any:
    import pandas as pd

    return pd.concat(frames, ignore_index=True)


def test_only_its_owner_can_read_a_backup(written: str, tmp_path: Path) -> None:
    target = tmp_path / "nueva" / "copia"
    code, _, err = cli(written, "backup", str(target))
    assert code == 0, err
    assert target.stat().st_mode & 0o777 == 0o600
    assert target.parent.stat().st_mode & 0o777 == 0o700
    assert [p.name for p in target.parent.iterdir()] == ["copia"]  # no partial file left


def test_a_restore_moves_every_revision_past_the_ones_servers_may_hold(
    written: str, tmp_path: Path
) -> None:
    with Store.open(written) as store:
        at_backup = store.revision("defibrillators")
    assert cli(written, "backup", str(tmp_path / "copia"))[0] == 0
    with Store.open(written, clock=clock_at(ORDINARY)) as store:
        before = store.device("dea-2")
        assert before is not None
        store.update_device(before, {**before, "name": "Cambiado después"}, actor="staff")
        held = store.revision("defibrillators")  # what a running worker's cache was built at
    assert held > at_backup
    assert cli(written, "restore", "--yes", "--no-backup", str(tmp_path / "copia"))[0] == 0
    with Store.open(written) as store:
        # Neither the restored value nor the one held: a worker rebuilds from restored data.
        assert store.revision("defibrillators") > max(held, at_backup)
        assert store.device("dea-2")["name"] != "Cambiado después"  # type: ignore[index]


def test_a_restore_never_drops_another_applications_tables(
    postgis_server: PostgisServer, tiny_layers: Layers, tmp_path: Path
) -> None:
    url = postgis_server.create()
    try:
        with Store.open(url, clock=clock_at(ORDINARY)) as store:
            store.load(tiny_layers)
        assert cli(url, "backup", str(tmp_path / "copia"))[0] == 0
        engine = create_db_engine(url)
        try:
            with engine.begin() as connection:
                connection.execute(sa.text("CREATE TABLE agenda_vecinal (nota text)"))
                connection.execute(sa.text("INSERT INTO agenda_vecinal VALUES ('reunión')"))
            code, _, err = cli(url, "restore", "--yes", "--no-backup", str(tmp_path / "copia"))
            assert code == 1 and "agenda_vecinal" in err and "no son de cardiomapa" in err
            with engine.connect() as connection:
                kept = connection.execute(sa.text("SELECT nota FROM agenda_vecinal")).scalars()
                assert list(kept) == ["reunión"]
        finally:
            engine.dispose()
    finally:
        postgis_server.drop(url)
