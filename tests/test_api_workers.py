"""Several planners at once, several worker processes, one Store per process.

A request never opens a Store or runs a migration (Alembic's context is not thread-safe: with a
Store per request, two concurrent analyses could answer 500). Workers started by
``cardiomapa serve --workers N`` share the database and see each other's writes at the next
request.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest
from fastapi.testclient import TestClient

import geo.io.store
from api.app import create_app
from api.pages.planners import COOKIE
from geo.core.layers import Layers
from geo.io.store import Store
from geo.services.tokens import issue_token
from geo.settings import Settings
from tests.servers import Server, eventually
from tests.weeks import ORDINARY, clock_at, clock_env

#: What a planner asks for (on the tiny fixture), each answered by a whole analysis.
ANALYSES: tuple[tuple[str, dict[str, Any]], ...] = (
    ("/api/coverage", {"radius_m": 300}),
    ("/api/coverage", {"weekly": "true", "week_of": "2026-11-23"}),
    ("/api/gaps", {"radius_m": 300}),
    ("/api/siting", {"new": 2, "radius_m": 300}),
    ("/api/outcomes", {"week_of": "2026-11-23", "radius_m": 1000}),
    ("/api/indicators", {"year": 2026}),
    ("/planificacion", {"nuevos": 2}),
)
#: Right next to dea-2 of the tiny fixture (public, 24/7).
HERE = {"lat": 42.0096, "lon": -4.5288, "limit": 3}


@pytest.fixture
def planner(db_url: str, tiny_layers: Layers) -> str:
    """The tiny layers loaded; a planner's bearer secret."""
    with Store.open(db_url, clock=clock_at(ORDINARY)) as store:
        store.load(tiny_layers)
        return issue_token(store, role="planner").secret


@pytest.fixture
def two_workers(db_url: str, planner: str, tmp_path: Path) -> Iterator[Server]:
    server = Server(db_url, tmp_path / "server.log", env=clock_env(ORDINARY), workers=2)
    try:
        server.wait_until_listening(2)
        yield server
    finally:
        server.stop()


def ask(base: str, secret: str, path: str, params: dict[str, Any]) -> httpx.Response:
    """One planner's request, on a connection of its own (so the workers share them out)."""
    with httpx.Client(
        base_url=base,
        headers={"Authorization": f"Bearer {secret}"},
        cookies={COOKIE: secret},
        timeout=300,
    ) as client:
        return client.get(path, params=params)


def test_sixteen_concurrent_analyses_on_two_workers_all_answer(
    two_workers: Server, planner: str
) -> None:
    requests = [ANALYSES[i % len(ANALYSES)] for i in range(21)]
    with ThreadPoolExecutor(max_workers=len(requests)) as pool:
        answers = list(pool.map(lambda item: ask(two_workers.base, planner, *item), requests))
    failed = [
        (path, response.status_code, response.text[:300])
        for (path, _), response in zip(requests, answers, strict=True)
        if response.status_code != 200
    ]
    assert not failed, failed
    log = two_workers.log.read_text()
    assert "Traceback" not in log, log


def test_a_write_through_one_worker_is_seen_by_the_next_request_on_every_other(
    two_workers: Server,
) -> None:
    def states() -> list[str]:
        """dea-2's state as 12 fresh connections see it (the kernel shares them out)."""
        answers = []
        for _ in range(12):
            response = httpx.get(f"{two_workers.base}/api/nearest", params=HERE, timeout=60)
            assert response.status_code == 200, response.text
            answers.append(
                next(item["state"] for item in response.json()["results"] if item["id"] == "dea-2")
            )
        return answers

    assert set(states()) == {"open"}
    reported = httpx.post(
        f"{two_workers.base}/api/defibrillators/dea-2/reports",
        json={"kind": "missing", "message": "No está en su armario"},
        timeout=60,
    )
    assert reported.status_code == 202, reported.text
    # SQLite: at the very next request. PostGIS: as soon as the commit's notification reaches
    # each worker's listener, a few milliseconds; the first batch must already agree.
    seen = eventually(states, lambda answers: set(answers) == {"reported"}, within_s=2)
    assert set(seen) == {"reported"}


def test_requests_never_open_a_store_nor_migrate(
    db_url: str, planner: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = Settings(database_url=db_url, clock_start=ORDINARY)
    with TestClient(create_app(settings)) as client:
        # Started: from here on, opening a Store or migrating is a fault.
        def forbidden(*args: object, **kwargs: object) -> None:
            msg = "a request opened a Store or ran a migration"
            raise AssertionError(msg)

        monkeypatch.setattr(Store, "open", forbidden)
        monkeypatch.setattr(geo.io.store, "migrate", forbidden)
        monkeypatch.setattr(geo.io.store.command, "upgrade", forbidden)
        client.cookies.set(COOKIE, planner)
        for path, params in ANALYSES:
            response = client.get(
                path,
                params=params,
                headers={"Authorization": f"Bearer {planner}"},
            )
            assert response.status_code == 200, (path, response.text[:300])


def test_migrate_brings_an_empty_database_to_head_then_has_nothing_to_do(db_url: str) -> None:
    from typer.testing import CliRunner

    from geo.cli import app

    runner = CliRunner()
    env = {"CARDIOMAPA_DATABASE_URL": db_url}
    first = runner.invoke(app, ["migrate"], env=env)
    assert first.exit_code == 0, first.output
    assert "Esquema actualizado" in first.output
    engine = geo.io.store.create_db_engine(db_url)
    try:
        assert geo.io.store.schema_revision(engine) == geo.io.store.head_revision()
    finally:
        engine.dispose()
    again = runner.invoke(app, ["migrate"], env=env)
    assert again.exit_code == 0 and "ya estaba al día" in again.output


def test_a_workers_socket_gives_every_connection_tcp_nodelay() -> None:
    """A socket made without IPPROTO_TCP (uvicorn's own for ``--workers``) leaves Nagle on, and
    every keep-alive answer waits for the client's delayed ACK (~40 ms; uvicorn #3149). The
    workers' listeners are TCP sockets: an accepted connection has TCP_NODELAY."""
    from api.serving import tcp_listener
    from tests.servers import free_port

    listener = tcp_listener("127.0.0.1", free_port(), reuse_port=True)

    async def accepted_nodelay() -> int:
        seen: asyncio.Future[int] = asyncio.get_running_loop().create_future()

        class Probe(asyncio.Protocol):
            def connection_made(self, transport: asyncio.BaseTransport) -> None:
                sock = transport.get_extra_info("socket")
                seen.set_result(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
                transport.close()

        server = await asyncio.get_running_loop().create_server(Probe, sock=listener)
        async with server:
            port = listener.getsockname()[1]
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            result = await asyncio.wait_for(seen, 10)
            writer.close()
            return result

    # On a thread of its own: a browser test may leave Playwright's loop running in this one.
    with ThreadPoolExecutor(1) as pool:
        assert pool.submit(asyncio.run, accepted_nodelay()).result() != 0


def _established(process: psutil.Process, port: int) -> int:
    return sum(
        1
        for c in process.net_connections(kind="tcp")
        if c.status == psutil.CONN_ESTABLISHED and c.laddr and c.laddr.port == port
    )


def test_keep_alive_connections_are_shared_out_among_the_workers(two_workers: Server) -> None:
    """Each worker listens on a socket of its own (SO_REUSEPORT), so the kernel deals the
    connections out: with one shared socket, one worker could take every keep-alive connection
    while the other idled."""
    clients = [httpx.Client(base_url=two_workers.base, timeout=30) for _ in range(24)]
    try:
        for client in clients:  # each opens its connection and keeps it
            assert client.get("/api/nearest", params=HERE).status_code == 200
        workers = two_workers.workers()
        held = [_established(worker, two_workers.port) for worker in workers]
    finally:
        for client in clients:
            client.close()
    assert len(workers) == 2
    assert sum(held) == 24
    # A hash of 24 client ports: all on one worker has odds of 2 in 2**24.
    assert min(held) > 0, held


def test_a_killed_worker_is_replaced_and_no_connection_waits_for_it(two_workers: Server) -> None:
    """A worker's listener dies with it (it is bound in the worker, not the supervisor), so no
    new connection is dealt to a socket nobody accepts on; the supervisor starts a new worker."""
    victim = two_workers.workers()[0]
    victim.kill()
    victim.wait(timeout=30)
    for _ in range(40):  # fresh connections, each hashed anew; none may hang
        response = httpx.get(f"{two_workers.base}/api/nearest", params=HERE, timeout=10)
        assert response.status_code == 200
    replaced = eventually(
        lambda: [w for w in two_workers.workers() if w.pid != victim.pid],
        lambda workers: len(workers) == 2,
        within_s=60,
    )
    assert len(replaced) == 2


def test_a_second_server_on_the_same_port_is_refused(
    two_workers: Server, db_url: str, tmp_path: Path
) -> None:
    """SO_REUSEPORT would let another server join the port and take half its clients: serve
    checks the address is free first, and says so in Spanish."""
    from typer.testing import CliRunner

    from geo.cli import app

    done = CliRunner().invoke(
        app,
        ["serve", "--port", str(two_workers.port), "--workers", "2"],
        env={"CARDIOMAPA_DATABASE_URL": db_url, **clock_env(ORDINARY)},
    )
    assert done.exit_code == 1
    assert f"no se puede escuchar en 127.0.0.1:{two_workers.port}" in done.output


def test_a_worker_listens_only_once_its_app_has_started() -> None:
    """The socket a worker binds is not listening: the kernel deals it no connection until
    uvicorn listens on it, after the app has loaded and started (a replacement worker that takes
    seconds to import would otherwise keep its share of new connections waiting)."""
    import pickle

    from api.serving import _ListenerInWorker
    from tests.servers import free_port

    port = free_port()
    sock = pickle.loads(pickle.dumps(_ListenerInWorker("127.0.0.1", port)))
    try:
        assert sock.getsockname() == ("127.0.0.1", port)
        assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN) == 0
        assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT) == 1
    finally:
        sock.close()


def test_workers_that_cannot_start_stop_the_server_with_an_error(tmp_path: Path) -> None:
    """A worker that fails to start (here: an app that cannot be imported) stops the supervisor,
    and the command fails (a service manager sees the failure and may restart it)."""
    import subprocess
    import sys

    from tests.servers import free_port

    code = (
        "import uvicorn, sys\n"
        "from api.serving import WorkersError, run_workers\n"
        f"config = uvicorn.Config('no_such_module:app', port={free_port()}, workers=2)\n"
        "try:\n"
        "    run_workers(config)\n"
        "except WorkersError as exc:\n"
        "    print('WorkersError:', exc)\n"
        "    sys.exit(1)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 1, done.stderr
    assert "WorkersError: un proceso no pudo arrancar" in done.stdout


def test_several_workers_need_a_port_of_their_own(db_url: str) -> None:
    """Port 0 would give each worker another random port: refused, in Spanish."""
    from typer.testing import CliRunner

    from geo.cli import app

    done = CliRunner().invoke(
        app,
        ["serve", "--port", "0", "--workers", "2"],
        env={"CARDIOMAPA_DATABASE_URL": db_url, **clock_env(ORDINARY)},
    )
    assert done.exit_code == 1
    assert "hay que indicar el puerto" in done.output
