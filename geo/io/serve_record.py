"""Where ``cardiomapa serve`` listens, written down so that links made elsewhere agree with it.

``serve`` writes ``serve.json`` (its address and process id) when it starts and removes it when
it stops. The file sits beside the SQLite file (``var/`` with the default database); with
PostgreSQL it is ``var/serve-<digest>.json``, the digest naming the database (host, port, name,
never the password). Either way the address belongs to the server of *that* database, so a
command run on the same database (``entity invite``, ``reminders send``) builds its links with
it, and a server on another database never lends it its port.

Only the process that runs ``serve`` writes the file (with ``--workers N`` that is the
supervisor, never the workers), atomically (a temporary file renamed over the old one). A file
left by a server that died without cleaning up is *stale*: it is believed only while the process
it names is alive and something accepts connections at the address it names.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from sqlalchemy.engine import make_url

from geo.settings import WILDCARD_HOSTS, Settings, reachable_url

RECORD_NAME = "serve.json"
#: How long to wait for the recorded address to accept a connection (loopback: instant).
PROBE_TIMEOUT_S = 0.5

LinkSource = Literal["public_url", "serve", "default"]


@dataclass(frozen=True)
class LinkBase:
    """The address the links start with, and where it came from.

    ``source`` is ``"public_url"`` (``CARDIOMAPA_PUBLIC_URL``), ``"serve"`` (the address a running
    ``cardiomapa serve`` recorded) or ``"default"`` (``http://host:port`` from the settings).
    """

    url: str
    source: LinkSource

    def describe(self) -> str:
        """One Spanish sentence saying which address the links were built with."""
        if self.source == "public_url":
            return (
                f"Enlace construido con la dirección pública configurada "
                f"(CARDIOMAPA_PUBLIC_URL): {self.url}."
            )
        if self.source == "serve":
            return f"Enlace construido con la dirección con la que se inició `serve`: {self.url}."
        return (
            f"Enlace construido con la dirección predeterminada {self.url}: no hay dirección "
            "pública configurada (CARDIOMAPA_PUBLIC_URL) ni un `cardiomapa serve` en marcha "
            "sobre esta base de datos."
        )


def record_path(database_url: str) -> Path:
    """Beside the SQLite file, else ``var/serve-<digest>.json`` (relative to the working
    directory), one per server database."""
    parsed = make_url(database_url)
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        return Path(str(parsed.database)).parent / RECORD_NAME
    name = f"{parsed.get_backend_name()}://{parsed.username}@{parsed.host}:{parsed.port}/{parsed.database}"
    digest = hashlib.sha1(name.encode("utf-8"), usedforsecurity=False).hexdigest()[:12]
    return Path("var") / f"serve-{digest}.json"


def record_serve(database_url: str, *, host: str, port: int, pid: int | None = None) -> Path:
    """Write down that process ``pid`` (default: this one) serves at ``host``:``port``."""
    path = record_path(database_url)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "url": reachable_url(host, port),
        "host": host,
        "port": port,
        "pid": os.getpid() if pid is None else pid,
    }
    temporary = path.with_name(f".{path.name}.{payload['pid']}")
    temporary.write_text(json.dumps(payload), encoding="utf-8")
    os.replace(temporary, path)
    return path


def clear_serve(database_url: str, *, pid: int | None = None) -> None:
    """Remove the record if it is still this process's (another ``serve`` may have replaced it)."""
    path = record_path(database_url)
    record = _read(path)
    if record is not None and record.get("pid") == (os.getpid() if pid is None else pid):
        with contextlib.suppress(OSError):  # left behind, it is stale: ignored anyway
            path.unlink(missing_ok=True)


def recorded_url(database_url: str) -> str | None:
    """The URL of the ``serve`` running on this database, or ``None`` (no record, or a stale one:
    its process is gone or nothing listens at its address)."""
    record = _read(record_path(database_url))
    if record is None:
        return None
    url, host = record.get("url"), record.get("host")
    port, pid = record.get("port"), record.get("pid")
    if not (isinstance(url, str) and isinstance(host, str) and isinstance(port, int)):
        return None
    if not isinstance(pid, int) or not _alive(pid) or not _listening(host, port):
        return None
    return url


def link_base(settings: Settings) -> LinkBase:
    """The address links start with: the configured public URL, else the running ``serve``'s,
    else ``http://host:port`` from the settings."""
    if settings.public_url:
        return LinkBase(settings.public_url.rstrip("/"), "public_url")
    recorded = recorded_url(settings.database_url)
    if recorded is not None:
        return LinkBase(recorded, "serve")
    return LinkBase(settings.base_url(), "default")


def _read(path: Path) -> dict[str, object] | None:
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # it exists, under another user
    return True


def _listening(host: str, port: int) -> bool:
    target = "127.0.0.1" if host in WILDCARD_HOSTS else host
    try:
        with socket.create_connection((target, port), timeout=PROBE_TIMEOUT_S):
            return True
    except OSError:
        return False
