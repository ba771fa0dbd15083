"""Every HTML page forbids inline script: its Content-Security-Policy and its markup, in process.

The policy of each page may allow an inline script only by its SHA-256 (the folium maps), never
with ``'unsafe-inline'`` or ``'unsafe-eval'``; every inline script in the page must carry one of
those hashes, and no element may have an event-handler attribute (``onclick=…``), which no hash
allows. Whether the pages still work under that policy, and that hostile text stays text, is
checked in a real browser in ``test_csp_browser.py``.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Iterator
from dataclasses import dataclass
from html.parser import HTMLParser

import httpx
import pytest
from fastapi.testclient import TestClient
from weeks import ORDINARY

from api.app import create_app
from api.security import content_security_policy, inline_script_hashes
from geo.core.layers import Layers
from geo.io.store import Store
from geo.services.tokens import issue_invitation, issue_token
from geo.settings import Settings

ORIGIN = {"Origin": "http://testserver"}
HOSTILE = "<img src=x onerror=alert(1)> <script>alert(2)</script>"


class Markup(HTMLParser):
    """The inline scripts and the event-handler attributes of a page."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=False)
        self.scripts: list[str] = []
        self.handlers: list[str] = []
        self._inline: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        names = dict(attrs)
        self.handlers += [f"<{tag} {name}=…>" for name in names if name.startswith("on")]
        self.handlers += [
            f"<{tag} {name}={value}>"
            for name, value in attrs
            if value and value.strip().lower().startswith("javascript:")
        ]
        is_data = (names.get("type") or "").lower() in ("application/json", "application/ld+json")
        if tag == "script" and "src" not in names and not is_data:
            self._inline = []

    def handle_data(self, data: str) -> None:
        if self._inline is not None:
            self._inline.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "script" and self._inline is not None:
            self.scripts.append("".join(self._inline))
            self._inline = None


def sha256_source(code: str) -> str:
    digest = hashlib.sha256(code.encode("utf-8")).digest()
    return f"'sha256-{base64.b64encode(digest).decode('ascii')}'"


def script_sources(policy: str) -> list[str]:
    found = re.search(r"(?:^|;)\s*script-src ([^;]*)", policy)
    assert found, f"no script-src in {policy!r}"
    return found.group(1).split()


def assert_strict(response: httpx.Response, where: str) -> None:
    """``response`` is an HTML page whose every inline script its own policy hashes."""
    assert response.headers["content-type"].startswith("text/html"), where
    policy = response.headers["content-security-policy"]
    sources = script_sources(policy)
    assert "'unsafe-inline'" not in sources and "'unsafe-eval'" not in sources, (where, policy)
    assert all(s == "'self'" or s.startswith("'sha256-") for s in sources), (where, sources)
    assert "script-src-attr 'none'" in policy and "object-src 'none'" in policy, where
    markup = Markup()
    markup.feed(response.text)
    assert markup.handlers == [], f"{where}: event handlers in the markup {markup.handlers}"
    for code in markup.scripts:
        assert sha256_source(code) in sources, f"{where}: an inline script the policy refuses"
    assert len(sources) == 1 + len(set(markup.scripts)), f"{where}: hashes of no script"


@dataclass
class Site:
    client: TestClient
    store: Store
    tokens: dict[str, str]


@pytest.fixture
def site(db_url: str, tiny_layers: Layers) -> Iterator[Site]:
    devices = tiny_layers["defibrillators"].copy()
    devices.loc[devices["id"] == "dea-1", "name"] = HOSTILE
    devices.loc[devices["id"] == "dea-1", "location_text"] = HOSTILE
    with Store.open(db_url) as store:
        store.load(Layers({**tiny_layers.frames, "defibrillators": devices}))
        tokens = {
            role: issue_token(
                store, role=role, entity_id="ent-1" if role == "entity" else None
            ).secret
            for role in ("admin", "planner", "entity")
        }
        settings = Settings(database_url=db_url, tile_url="", clock_start=ORDINARY)
        with TestClient(create_app(settings)) as client:
            yield Site(client, store, tokens)


def test_every_html_page_forbids_inline_script(site: Site) -> None:
    client = site.client
    pages = ["/", "/docs", "/planificacion", "/gestion", "/entidades"]
    # a cabinet's page, its report confirmation and its sheet, with the hostile name; a 404
    pages += ["/dea/dea-1", "/dea/dea-1/hoja", "/dea/nada"]
    assert_strict(client.post("/dea/dea-1/aviso", data={"kind": "broken"}), "report step 1")
    code = issue_invitation(site.store, entity_id="ent-1", actor="test").code
    pages.append(f"/entidades/invitacion/{code}")
    for url in pages:  # signed out: the public pages and the sign-in forms
        assert_strict(client.get(url), url)

    client.post("/planificacion/sesion", data={"token": site.tokens["planner"]})
    planner = client.get("/planificacion")
    assert planner.status_code == 200 and "cardiomapa.planner(" in planner.text
    assert_strict(planner, "the planners' map")
    # folium's two scripts, and no more: the hostile name added none to be hashed
    assert len(script_sources(planner.headers["content-security-policy"])) == 3

    signed = client.post("/gestion/sesion", data={"token": site.tokens["admin"]})
    assert signed.status_code == 200, signed.text
    for url in (
        "/gestion", "/gestion/avisos", "/gestion/auditoria", "/gestion/mantenimiento",
        "/gestion/entidades", "/gestion/desfibriladores/dea-1", "/gestion/desfibriladores/nada",
    ):  # fmt: skip
        assert_strict(client.get(url), url)

    signed = client.post("/entidades/sesion", data={"token": site.tokens["entity"]}, headers=ORIGIN)
    assert signed.status_code == 200, signed.text
    for url in (
        "/entidades", "/entidades/nuevo", "/entidades/desfibriladores/dea-1",
        "/entidades/desfibriladores/dea-1/uso", "/entidades/contacto",
    ):  # fmt: skip
        response = client.get(url)
        assert response.status_code == 200, (url, response.status_code)
        assert_strict(response, url)


def test_the_map_pages_carry_the_hashes_of_their_own_scripts(site: Site) -> None:
    citizen = site.client.get("/")
    assert HOSTILE not in citizen.text
    hashes = inline_script_hashes(citizen.text)
    assert len(hashes) == 2  # folium's settings and the map's code
    assert script_sources(citizen.headers["content-security-policy"]) == ["'self'", *hashes]
    again = site.client.get("/")  # served from the cache with the policy it was rendered with
    assert again.text == citizen.text
    assert again.headers["content-security-policy"] == citizen.headers["content-security-policy"]
    # every other page allows no inline script at all
    docs = site.client.get("/docs")
    assert script_sources(docs.headers["content-security-policy"]) == ["'self'"]
    assert "<script>" not in docs.text and '<script src="/static/api-docs.js">' in docs.text


def test_hashes_are_those_a_browser_computes() -> None:
    """Line breaks are normalised as an HTML parser does; JSON data blocks and external scripts
    are not inline code."""
    page = (
        '<script src="/static/a.js"></script><script type="application/json">{"a": 1}</script>'
        "<script>let a = 1;\r\nlet b = 'ñ';</script><script>let a = 1;\nlet b = 'ñ';</script>"
    )
    assert inline_script_hashes(page) == (sha256_source("let a = 1;\nlet b = 'ñ';"),)
    assert inline_script_hashes("<p>no script</p>") == ()


def test_the_policy_names_the_tile_server_for_images_only() -> None:
    policy = content_security_policy("http://{s}.tiles.example.org/{z}/{x}/{y}.png")
    assert "img-src 'self' data: https: http://*.tiles.example.org;" in policy
    assert script_sources(policy) == ["'self'"]
    assert "style-src 'self' 'unsafe-inline'" in policy  # Leaflet and Swagger UI set styles
