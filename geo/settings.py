"""Configuration, read once at the edge (CLI, app factory) and passed down explicitly.

Every setting can come from the environment with the ``CARDIOMAPA_`` prefix, e.g.
``CARDIOMAPA_DATABASE_URL=postgresql+psycopg://user@host/db``. Nothing here connects to anything
or reads a file when imported.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import socket
from email.utils import parseaddr
from pathlib import Path
from typing import Annotated, Any

from pydantic import field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from geo.city import PROFILE_FILE_NAME, CityProfile, load_city_profile
from geo.clock import Clock, clock_from_settings

PROJECT_DIR = Path(__file__).resolve().parent.parent
SAMPLE_DATA_DIR = PROJECT_DIR / "data"
DEFAULT_DATABASE_URL = "sqlite:///var/cardiomapa.sqlite"


#: Hosts that mean "every interface": a link cannot point there.
WILDCARD_HOSTS = frozenset({"0.0.0.0", "::", ""})


def reachable_url(host: str, port: int) -> str:
    """The URL a browser reaches ``host``:``port`` at: a wildcard host becomes this machine's
    name, an IPv6 address gets its brackets."""
    if host in WILDCARD_HOSTS:
        host = socket.gethostname()
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}"


class Settings(BaseSettings):
    """cardiomapa settings.

    Attributes
    ----------
    database_url
        SQLAlchemy URL. ``sqlite:///path.sqlite`` (SpatiaLite, the embedded default; relative paths
        are relative to the working directory) or ``postgresql+psycopg://…`` (PostGIS).
    data_dir
        Folder holding the layer files (``defibrillators.geojson``, ``ceas.geojson``…).
    city_profile
        City profile JSON. When unset, ``<data_dir>/city.json`` if present, else the Palencia
        profile shipped in ``data/``.
    host, port
        Where ``cardiomapa serve`` listens.
    cors_origins
        Web origins allowed to call the API from a browser (none by default), e.g.
        ``CARDIOMAPA_CORS_ORIGINS='["https://mapa.example.org"]'``.
    max_body_bytes
        Largest request body the API accepts (413 above it).
    report_rate_limit, report_rate_window_s
        Problem reports accepted per client address in each window (429 above it). Counted in
        the database, so the limit holds across every worker process.
    report_downgrade_limit, report_downgrade_window_s
        Distinct devices one client address may report as missing or broken in each window
        (429 above it): such a report marks the device "sin confirmar" on the citizens' map
        until it is reviewed, so one client must not be able to do that to many devices.
    staff_emails
        Who gets an e-mail for each citizen's report (the city's staff), e.g.
        ``CARDIOMAPA_STAFF_EMAILS='["dea@palencia.example", "guardia@palencia.example"]'``.
        Sent through ``smtp_url`` from ``mail_from``; empty (the default): no e-mail.
    data_licence
        Licence of the records registered through the API, stated in downloads.
    public_url
        The address people reach this server at (e.g. ``https://dea.palencia.es``), used in the
        links of e-mails and of invitations made from the command line. Unset: built from
        ``host`` and ``port``.
    smtp_url, smtp_username, smtp_password, mail_from
        Outgoing mail (maintenance reminders, staff notices): ``smtp://host:port`` (plain, or
        STARTTLS when the server offers it), ``smtp+starttls://host:port`` (STARTTLS required) or
        ``smtps://host:port`` (TLS from the start); credentials in the URL
        (``smtp://user:password@host``) or in their own settings; ``mail_from`` is the sender
        address. Unset ``smtp_url``: no mail is sent.
    reminder_within_days, reminder_unchecked_days, reminder_repeat_days
        A reminder names a battery or pads expiring within ``reminder_within_days``, or a last
        check older than ``reminder_unchecked_days``; the same device and reason is not sent
        again within ``reminder_repeat_days``.
    auth_failure_limit, auth_failure_window_s
        Failed credentials accepted per client address in each window, all kinds together
        (bearer tokens, session cookies, sign-in forms, invitation links); above it every
        request that presents a credential gets 429 until the window slides past. Counted in
        the database, so the limit holds across every worker process.
    trusted_proxies
        Reverse proxies whose ``X-Forwarded-For`` and ``X-Forwarded-Proto`` are believed:
        addresses or networks, as a JSON list or separated by commas, e.g.
        ``CARDIOMAPA_TRUSTED_PROXIES=127.0.0.1,10.0.0.0/8``. A request from one of them counts
        against the right-most forwarded address that is not itself a trusted proxy. Empty
        (the default): forwarded headers are ignored and the client is the socket peer.
    client_key_secret
        Key of the hash the rate limits store for each client address (any long random
        string, the same for every process). Unset: a plain SHA-256 of the address, which
        anyone holding the database can reverse by hashing every IPv4 address. Changing it
        restarts every count.
    clock_start
        Run the city's clock from this instant instead of the machine's (naive = the city's
        local time): pages, availability "now" and "today" start there when the process starts
        and then tick normally. For demos and for test servers pinned to a known week; unset in
        production.
    tile_url, tile_attribution, tile_max_zoom
        The maps' basemap: an XYZ tile URL template (``{z}/{x}/{y}``, optionally ``{s}``) and
        its attribution. Empty ``tile_url``: no basemap (the city outline and the CEAS zones
        still give context), e.g. on a network with no tile server.
    """

    model_config = SettingsConfigDict(env_prefix="CARDIOMAPA_", extra="ignore")

    database_url: str = DEFAULT_DATABASE_URL
    data_dir: Path = SAMPLE_DATA_DIR
    city_profile: Path | None = None
    host: str = "127.0.0.1"
    port: int = 8000
    cors_origins: list[str] = []
    max_body_bytes: int = 64 * 1024
    report_rate_limit: int = 5
    report_rate_window_s: float = 600.0
    report_downgrade_limit: int = 3
    report_downgrade_window_s: float = 86_400.0
    staff_emails: list[str] = []
    data_licence: str = "CC-BY-4.0"
    public_url: str | None = None
    smtp_url: str | None = None
    smtp_username: str | None = None
    smtp_password: str | None = None
    mail_from: str | None = None
    reminder_within_days: int = 30
    reminder_unchecked_days: int = 183
    reminder_repeat_days: int = 7
    auth_failure_limit: int = 10
    auth_failure_window_s: float = 60.0
    trusted_proxies: Annotated[list[ipaddress.IPv4Network | ipaddress.IPv6Network], NoDecode] = []
    client_key_secret: str | None = None
    tile_url: str = "https://tile.openstreetmap.org/{z}/{x}/{y}.png"
    tile_attribution: str = (
        '&copy; <a href="https://www.openstreetmap.org/copyright">'
        "colaboradores de OpenStreetMap</a>"
    )
    tile_max_zoom: int = 19
    clock_start: dt.datetime | None = None

    @field_validator("staff_emails")
    @classmethod
    def _addresses(cls, values: list[str]) -> list[str]:
        cleaned = []
        for value in values:
            address = parseaddr(value.strip())[1]
            local, _, domain = address.rpartition("@")
            if not local or "." not in domain or any(c.isspace() for c in address):
                msg = (
                    f"CARDIOMAPA_STAFF_EMAILS: {value!r} no es una dirección de correo; se "
                    "espera una lista JSON de direcciones, p. ej. '[\"dea@palencia.example\"]'."
                )
                raise ValueError(msg)
            cleaned.append(value.strip())
        return cleaned

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _networks(cls, value: Any) -> Any:
        if isinstance(value, str):
            text = value.strip()
            value = json.loads(text) if text.startswith("[") else text.split(",")
        if not isinstance(value, list | tuple):
            return value
        networks = []
        for item in value:
            if not isinstance(item, str):
                networks.append(item)
                continue
            if not item.strip():
                continue
            try:
                networks.append(ipaddress.ip_network(item.strip(), strict=False))
            except ValueError:
                msg = (
                    f"CARDIOMAPA_TRUSTED_PROXIES: {item!r} no es una dirección IP ni una red; se "
                    "esperan direcciones o redes CIDR separadas por comas, p. ej. "
                    "'127.0.0.1,10.0.0.0/8'."
                )
                raise ValueError(msg) from None
        return networks

    def base_url(self) -> str:
        """Where people reach the server: ``public_url``, else ``http://host:port`` (a wildcard
        host, ``--host 0.0.0.0``, names this machine: a link cannot point at every interface)."""
        if self.public_url:
            return self.public_url.rstrip("/")
        return reachable_url(self.host, self.port)

    def city_profile_path(self) -> Path:
        if self.city_profile is not None:
            return self.city_profile
        candidate = self.data_dir / PROFILE_FILE_NAME
        return candidate if candidate.exists() else SAMPLE_DATA_DIR / PROFILE_FILE_NAME

    def clock(self, city: CityProfile) -> Clock:
        """The clock this process runs on (see ``clock_start``)."""
        return clock_from_settings(self.clock_start, timezone=city.timezone)

    def load_city(self) -> CityProfile:
        return load_city_profile(self.city_profile_path())
