"""``cardiomapa serve --workers N``: N uvicorn workers, each with a listening socket of its own.

uvicorn's supervisor (:class:`uvicorn.supervisors.Multiprocess`) hands every worker one shared
listening socket. Whichever worker wakes first accepts, so with keep-alive clients one worker can
end up holding every connection while the others idle (measured: wrk's 16 connections all on one
of two workers). Here each worker binds its own socket to the same address with ``SO_REUSEPORT``,
and the kernel deals new connections out among them by a hash of the client's address and port.

The sockets are bound *in* the workers, never in the supervisor: a listener the supervisor kept
open would stay in the kernel's group after its worker died, and the connections dealt to it
would wait for an accept that never comes. A worker's socket dies with the worker; its
replacement binds a new one, and listens on it only once its app has started (until then the
kernel deals it nothing). A worker that stops drops the connections still queued on its socket
(Linux does not hand them to the others unless ``net.ipv4.tcp_migrate_req`` is set).

Linux lets only processes of the same user join a ``SO_REUSEPORT`` group; ``serve`` refuses a
busy port, but run the server under a user of its own.

Both uvicorn and asyncio leave ``TCP_NODELAY`` off on a socket made without ``IPPROTO_TCP``
(uvicorn issue #3149: every keep-alive answer then waits ~40 ms for the client's delayed ACK), so
the listeners are made as TCP sockets explicitly.
"""

from __future__ import annotations

import socket
import sys
from typing import cast

import uvicorn
from uvicorn.config import STARTUP_FAILURE
from uvicorn.supervisors import Multiprocess

#: The application factory every worker builds its app (and its one Store) with.
APP_FACTORY = "api.app:app_from_environment"


class AddressInUse(OSError):
    """Nothing may listen on the address: another server (or anything else) holds it."""


class WorkersError(RuntimeError):
    """The workers cannot be started as asked (the message says why, in Spanish)."""


def tcp_listener(
    host: str, port: int, *, reuse_port: bool = False, listen: bool = True
) -> socket.socket:
    """A TCP socket bound to ``host``:``port`` (``IPPROTO_TCP``, so asyncio sets ``TCP_NODELAY``
    on its connections); ``reuse_port`` joins the address's ``SO_REUSEPORT`` group.

    With ``listen=False`` it is only bound: the kernel deals it no connection until asyncio's
    ``create_server`` listens on it, which uvicorn does once the app has started.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
        if listen:
            sock.listen()
    except OSError:
        sock.close()
        raise
    return sock


def check_free(host: str, port: int) -> None:
    """Raise :class:`AddressInUse` unless ``host``:``port`` is free, even of ``SO_REUSEPORT``
    listeners (a socket bound without the option fails if any socket holds the address), so a
    second ``serve`` on the same port is refused instead of silently sharing its clients."""
    try:
        tcp_listener(host, port).close()
    except OSError as exc:
        raise AddressInUse(exc.errno, exc.strerror) from None


class _ListenerInWorker:
    """Stands in the supervisor for a worker's socket, and becomes it in the worker.

    uvicorn pickles a worker's sockets to start it (``spawn``); this placeholder unpickles as a
    new ``SO_REUSEPORT`` listener bound in the worker's own process.
    """

    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port

    def __reduce__(self) -> tuple[object, tuple[str, int]]:
        return (_bind_in_worker, (self.host, self.port))


def _bind_in_worker(host: str, port: int) -> socket.socket:
    # Bound, not listening: uvicorn listens once the app has loaded and started, so a worker
    # that is starting (a replacement, say) is dealt no connection it would keep waiting.
    try:
        return tcp_listener(host, port, reuse_port=True, listen=False)
    except (OSError, AttributeError) as exc:  # AttributeError: no SO_REUSEPORT (not Linux/BSD)
        # Exiting with uvicorn's start-up failure code stops the supervisor instead of it
        # restarting a worker that cannot bind, forever.
        reason = exc.strerror if isinstance(exc, OSError) else "el sistema no admite SO_REUSEPORT"
        print(f"Error: el proceso no puede escuchar en {host}:{port}: {reason}.", file=sys.stderr)
        sys.exit(STARTUP_FAILURE)


def run_workers(config: uvicorn.Config) -> None:
    """Run ``config.workers`` workers on ``config.host``:``config.port`` until a signal stops them.

    Raises :class:`AddressInUse` (before any worker starts) if the address is taken, and
    :class:`WorkersError` for a port 0 (each worker would pick another port) or when a worker
    could not start (the supervisor then stops them all).
    """
    if config.port == 0:
        msg = (
            "con varios procesos hay que indicar el puerto (--port): con 0 cada uno elegiría otro."
        )
        raise WorkersError(msg)
    check_free(config.host, config.port)
    placeholder = cast(socket.socket, _ListenerInWorker(config.host, config.port))
    supervisor = Multiprocess(config, sockets=[placeholder])
    supervisor.run()
    if any(process.exitcode == STARTUP_FAILURE for process in supervisor.processes):
        msg = "un proceso no pudo arrancar (vea el registro); se han detenido todos."
        raise WorkersError(msg)
