"""The failed-credential throttle: one budget per client, shared by every worker process.

Real ``cardiomapa serve`` processes on one database, on SpatiaLite and PostGIS: every kind of
failed credential (bearer token, forged or expired session cookies of the portal, the desk and
the planners' map, the sign-in forms, invitation links) counts in the same budget, whichever
process answers; past the limit every credential is refused with 429 and ``Retry-After``, and a
client rotating ``X-Forwarded-For`` gets nowhere unless the server trusts its proxy. With
``CARDIOMAPA_TRUSTED_PROXIES`` the forwarded address is the client. Then the pieces: the
client-key function, the proxy middleware, the setting, and the store's check and purge.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import hmac
import ipaddress
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from itertools import count
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from pydantic import ValidationError
from servers import Server
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from weeks import ORDINARY, clock_at, clock_env

from api.clients import TrustedProxyMiddleware, client_key, forwarded_client, throttle_client
from geo.io.store import THROTTLE_EVENTS, Store, Throttle
from geo.services.tokens import issue_token
from geo.settings import Settings

LIMIT = 8
#: Long enough that no failure leaves the window while a slow machine runs the test.
WINDOW_S = 3600
SECRET = "x" * 43  # the shape of a token's secret, never issued
KEY_SECRET = "una clave larga y aleatoria del servidor"


def settings_env(**more: str) -> dict[str, str]:
    return {
        **clock_env(ORDINARY),
        "CARDIOMAPA_AUTH_FAILURE_LIMIT": str(LIMIT),
        "CARDIOMAPA_AUTH_FAILURE_WINDOW_S": str(WINDOW_S),
        **more,
    }


@pytest.fixture
def start_server(db_url: str, tmp_path: Path) -> Iterator[Callable[..., Server]]:
    """Start servers on the test's database (one after the other: the first migrates it)."""
    started: list[Server] = []

    def start(workers: int = 1, **env: str) -> Server:
        log = tmp_path / f"server-{len(started)}.log"
        server = Server(db_url, log, env=settings_env(**env), workers=workers)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def secrets(db_url: str) -> dict[str, str]:
    """A valid planner token and an expired one (the store pinned to the servers' week)."""
    with Store.open(db_url, clock=clock_at(ORDINARY)) as store:
        planner = issue_token(store, role="planner").secret
        past = store.clock.now() - dt.timedelta(days=1)
        expired = issue_token(store, role="admin", expires_at=past).secret
    return {"planner": planner, "expired": expired}


def bad_token(n: int) -> str:
    return f"cm_{900 + n}_{SECRET}"


Attempt = Callable[[httpx.Client, dict[str, str]], httpx.Response]


def attempts(secrets: dict[str, str]) -> list[tuple[str, Attempt]]:
    """Every kind of failed credential: ``(name, call(client, headers))``."""

    def cookie(name: str, value: str) -> Callable[[dict[str, str]], dict[str, str]]:
        return lambda headers: {**headers, "Cookie": f"{name}={value}"}

    portal_cookie = cookie("cardiomapa_entidad", f"forged-{SECRET}")
    desk_cookie = cookie("cardiomapa_gestion", secrets["expired"])
    planner_cookie = cookie("cardiomapa_token", bad_token(1))
    invitation = f"/entidades/invitacion/ci_901_{SECRET}"
    return [
        ("bearer", lambda c, h: c.get(
            "/api/uses", headers={**h, "Authorization": f"Bearer {bad_token(2)}"})),
        ("portal cookie", lambda c, h: c.get("/entidades", headers=portal_cookie(h))),
        ("desk cookie (expired)", lambda c, h: c.get("/gestion", headers=desk_cookie(h))),
        ("planner cookie", lambda c, h: c.get("/planificacion", headers=planner_cookie(h))),
        ("portal sign-in", lambda c, h: c.post(
            "/entidades/sesion", data={"token": bad_token(3)}, headers=h)),
        ("desk sign-in", lambda c, h: c.post(
            "/gestion/sesion", data={"token": bad_token(4)}, headers=h)),
        ("planner sign-in", lambda c, h: c.post(
            "/planificacion/sesion", data={"token": bad_token(5)}, headers=h)),
        ("invitation link", lambda c, h: c.get(invitation, headers=h)),
        ("invitation use", lambda c, h: c.post(invitation, headers=h)),
    ]  # fmt: skip


def auth_rows(db_url: str) -> list[tuple[str, dt.datetime]]:
    with Store.open(db_url) as store, store.engine.connect() as connection:
        table = THROTTLE_EVENTS
        query = sa.select(table.c.client_key, table.c.at).where(table.c.scope == "auth_failures")
        return [(key, at) for key, at in connection.execute(query)]


def keyed(address: str) -> str:
    return hmac.new(KEY_SECRET.encode(), address.encode(), hashlib.sha256).hexdigest()


def stored_key(client: str) -> str:
    return hashlib.sha256(f"cardiomapa-throttle:{client}".encode()).hexdigest()


def assert_refused(response: httpx.Response, what: str) -> None:
    assert response.status_code == 429, (what, response.status_code, response.text[:300])
    assert 1 <= int(response.headers["retry-after"]) <= WINDOW_S, what
    assert "intentos de acceso fallidos" in response.text, what


def test_every_failed_credential_counts_once_across_processes_and_headers(
    db_url: str, start_server: Callable[..., Server], secrets: dict[str, str]
) -> None:
    servers = [start_server(), start_server()]
    clients = [httpx.Client(base_url=s.base, follow_redirects=False, timeout=30) for s in servers]
    rotating = (f"10.{n // 250}.{n % 250}.7" for n in count(1))

    def forged() -> dict[str, str]:  # a new "client" in every request: ignored without a proxy
        return {"X-Forwarded-For": next(rotating), "X-Forwarded-Proto": "https"}

    # A valid sign-in counts nothing, and a forwarded scheme from an untrusted peer is ignored.
    signed = clients[0].post("/gestion/sesion", data={"token": secrets["planner"]},
                             headers=forged())  # fmt: skip
    assert signed.status_code == 303
    assert "secure" not in signed.headers["set-cookie"].lower()

    kinds = attempts(secrets)
    statuses = []
    for n in range(LIMIT):  # the budget, spent by every kind in turn, on both processes
        name, call = kinds[n % len(kinds)]
        statuses.append((name, call(clients[n % 2], forged()).status_code))
    assert statuses == [(name, 401) for name, _ in kinds[:LIMIT]]

    for client in clients:  # now nothing is accepted, whatever the header or the process
        for name, call in kinds:
            assert_refused(call(client, forged()), f"{name} on {client.base_url}")
        valid = client.get("/api/uses", headers={
            **forged(), "Authorization": f"Bearer {secrets['planner']}"})  # fmt: skip
        assert_refused(valid, "a valid token while locked out")
        assert valid.json()["code"] == "rate_limited"
        # Asking without any credential is no attempt: the public site still answers.
        assert client.get("/api/health", headers=forged()).status_code == 200
        anonymous = client.get("/entidades", headers=forged())
        assert anonymous.status_code == 401 and 'name="token"' in anonymous.text

    rows = auth_rows(db_url)
    # Exactly the failures before the limit were counted (refusals are not), all against the
    # socket peer, stored only as a hash.
    assert len(rows) == LIMIT
    assert {key for key, _ in rows} == {stored_key("127.0.0.1")}
    for client in clients:
        client.close()


def test_the_budget_holds_across_the_workers_of_one_server(
    db_url: str, start_server: Callable[..., Server], secrets: dict[str, str]
) -> None:
    """``serve --workers 2``: every attempt on a connection of its own, so the kernel shares
    them out between the two worker processes; one budget all the same."""
    server = start_server(workers=2)
    rotating = (f"10.9.{n % 250}.7" for n in count(1))
    kinds = attempts(secrets)

    def once(n: int) -> httpx.Response:
        _name, call = kinds[n % len(kinds)]
        with httpx.Client(base_url=server.base, follow_redirects=False, timeout=30) as client:
            return call(client, {"X-Forwarded-For": next(rotating)})

    assert [once(n).status_code for n in range(LIMIT)] == [401] * LIMIT
    for n in range(3 * len(kinds)):
        assert_refused(once(n), kinds[n % len(kinds)][0])
    assert len(auth_rows(db_url)) == LIMIT


def test_a_trusted_proxy_makes_the_forwarded_address_the_client(
    db_url: str, start_server: Callable[..., Server], secrets: dict[str, str]
) -> None:
    env = {"CARDIOMAPA_TRUSTED_PROXIES": "127.0.0.1", "CARDIOMAPA_CLIENT_KEY_SECRET": KEY_SECRET}
    servers = [start_server(**env) for _ in range(2)]
    clients = [httpx.Client(base_url=s.base, follow_redirects=False, timeout=30) for s in servers]
    attacker, neighbour = "203.0.113.7", "203.0.113.8"
    forged_left = (f"198.51.100.{n % 250}, {attacker}" for n in count(1))
    bearer = {"Authorization": f"Bearer {secrets['planner']}"}

    # The proxy says HTTPS: the session cookie is Secure.
    signed = clients[1].post(
        "/gestion/sesion", data={"token": secrets["planner"]},
        headers={"X-Forwarded-For": neighbour, "X-Forwarded-Proto": "https"},
    )  # fmt: skip
    assert signed.status_code == 303 and "secure" in signed.headers["set-cookie"].lower()
    # Successful requests never count, however many.
    for n in range(2 * LIMIT):
        ok = clients[n % 2].get("/api/uses", headers={"X-Forwarded-For": neighbour, **bearer})
        assert ok.status_code == 200

    kinds = attempts(secrets)
    for n in range(LIMIT):
        name, call = kinds[n % len(kinds)]
        # What the client writes left of its address proves nothing: it is still the client.
        response = call(clients[n % 2], {"X-Forwarded-For": next(forged_left)})
        assert response.status_code == 401, (name, response.text[:300])
    for client in clients:
        for name, call in kinds:
            assert_refused(call(client, {"X-Forwarded-For": next(forged_left)}), name)
            assert_refused(call(client, {"X-Forwarded-For": attacker}), name)

    # Another client behind the same proxy has its own budget, and the proxy itself (no
    # forwarded address) too.
    for client in clients:
        mine = client.get("/api/uses", headers={"X-Forwarded-For": neighbour, **bearer})
        assert mine.status_code == 200
        wrong = client.get("/api/uses", headers={
            "X-Forwarded-For": neighbour, "Authorization": f"Bearer {bad_token(7)}"})  # fmt: skip
        assert wrong.status_code == 401
        assert client.get("/api/uses", headers=bearer).status_code == 200

    keys = [key for key, _ in auth_rows(db_url)]  # keyed with the server's secret
    assert keys.count(stored_key(keyed(attacker))) == LIMIT
    assert keys.count(stored_key(keyed(neighbour))) == 2
    for client in clients:
        client.close()


# --- the client key ---------------------------------------------------------------------------

LOCAL = (ipaddress.ip_network("127.0.0.1/32"), ipaddress.ip_network("10.0.0.0/8"))


@pytest.mark.parametrize(
    ("peer", "forwarded", "expected"),
    [
        # A peer that is no trusted proxy: itself, whatever it forwards.
        ("192.0.2.9", ["1.2.3.4"], "192.0.2.9"),
        ("10.0.0.1x", ["1.2.3.4"], "10.0.0.1x"),
        # A trusted peer: the right-most forwarded address that is not a trusted proxy.
        ("127.0.0.1", ["1.2.3.4"], "1.2.3.4"),
        ("127.0.0.1", ["9.9.9.9, 1.2.3.4"], "1.2.3.4"),
        ("127.0.0.1", ["9.9.9.9", "1.2.3.4"], "1.2.3.4"),  # several headers, in order
        ("127.0.0.1", ["9.9.9.9, 1.2.3.4, 10.0.0.5"], "1.2.3.4"),  # through two proxies
        ("10.1.2.3", ["1.2.3.4,10.0.0.5 ,"], "1.2.3.4"),
        # Without a forwarded address, or only proxies in it: the nearest hop.
        ("127.0.0.1", [], "127.0.0.1"),
        ("127.0.0.1", ["10.0.0.7"], "10.0.0.7"),
        # Not an address where the proxy should have written one: the last trusted hop.
        ("127.0.0.1", ["1.2.3.4, unknown"], "127.0.0.1"),
        ("127.0.0.1", ["1.2.3.4, _hidden, 10.0.0.5"], "10.0.0.5"),
        ("127.0.0.1", ["garbage, 1.2.3.4"], "1.2.3.4"),
        # Ports, brackets, IPv6 and IPv4-mapped addresses.
        ("127.0.0.1", ["1.2.3.4:5678"], "1.2.3.4"),
        ("127.0.0.1", ["[2001:db8::1]:443"], "2001:db8::1"),
        ("127.0.0.1", ["2001:db8::1"], "2001:db8::1"),
        ("::ffff:127.0.0.1", ["1.2.3.4"], "1.2.3.4"),
        ("127.0.0.1", ["::ffff:1.2.3.4"], "1.2.3.4"),
    ],
)
def test_forwarded_client(peer: str, forwarded: list[str], expected: str) -> None:
    assert forwarded_client(peer, forwarded, LOCAL) == expected


def test_without_trusted_proxies_the_peer_is_the_client() -> None:
    assert forwarded_client("127.0.0.1", ["1.2.3.4"], ()) == "127.0.0.1"
    assert forwarded_client("::ffff:127.0.0.1", ["1.2.3.4"], ()) == "127.0.0.1"


def test_an_ipv6_client_counts_as_its_64() -> None:
    assert throttle_client("2001:db8:1:2::1") == throttle_client("2001:db8:1:2:ffff::9")
    assert throttle_client("2001:db8:1:2::1") == "2001:db8:1:2::/64"
    assert throttle_client("2001:db8:1:3::1") != throttle_client("2001:db8:1:2::1")
    assert throttle_client("192.0.2.1") == "192.0.2.1"
    assert throttle_client("testclient") == "testclient"  # not an address: itself


def test_a_secret_keys_the_client_key() -> None:
    request = Request({"type": "http", "client": ("2001:db8::1", 1), "headers": []})
    assert client_key(request) == "2001:db8::/64"
    assert client_key(request, secret=KEY_SECRET) == keyed("2001:db8::/64")
    assert client_key(request, secret="otra") != keyed("2001:db8::/64")
    assert client_key(Request({"type": "http", "headers": []})) == "desconocido"


async def _echo(request: Request) -> JSONResponse:
    return JSONResponse({"key": client_key(request), "scheme": request.url.scheme})


@pytest.mark.parametrize(
    ("trusted", "peer", "expected"),
    [
        ([], "127.0.0.1", {"key": "127.0.0.1", "scheme": "http"}),
        (["127.0.0.1"], "127.0.0.1", {"key": "1.2.3.4", "scheme": "https"}),
        (["127.0.0.1"], "192.0.2.9", {"key": "192.0.2.9", "scheme": "http"}),
    ],
)
def test_the_middleware_sets_client_and_scheme_only_for_trusted_peers(
    trusted: list[str], peer: str, expected: dict[str, str]
) -> None:
    app = Starlette(routes=[Route("/", _echo)])
    wrapped = TrustedProxyMiddleware(app, trusted=[ipaddress.ip_network(t) for t in trusted])
    transport = httpx.ASGITransport(app=wrapped, client=(peer, 1234))

    async def ask() -> dict[str, str]:
        async with httpx.AsyncClient(transport=transport, base_url="http://cm") as client:
            headers = {"X-Forwarded-For": "9.9.9.9, 1.2.3.4", "X-Forwarded-Proto": "https"}
            answer: dict[str, str] = (await client.get("/", headers=headers)).json()
            return answer

    # On a thread of its own: a browser test earlier in the session may leave Playwright's
    # event loop running in this one.
    with ThreadPoolExecutor(1) as pool:
        assert pool.submit(asyncio.run, ask()).result() == expected


def test_trusted_proxies_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CARDIOMAPA_TRUSTED_PROXIES", raising=False)
    assert Settings().trusted_proxies == []
    monkeypatch.setenv("CARDIOMAPA_TRUSTED_PROXIES", "127.0.0.1, 10.0.0.0/8,fd00::/8")
    assert [str(n) for n in Settings().trusted_proxies] == [
        "127.0.0.1/32", "10.0.0.0/8", "fd00::/8"]  # fmt: skip
    monkeypatch.setenv("CARDIOMAPA_TRUSTED_PROXIES", '["::1"]')
    assert [str(n) for n in Settings().trusted_proxies] == ["::1/128"]
    monkeypatch.setenv("CARDIOMAPA_TRUSTED_PROXIES", "")
    assert Settings().trusted_proxies == []
    monkeypatch.setenv("CARDIOMAPA_TRUSTED_PROXIES", "proxy.local")
    with pytest.raises(ValidationError, match="no es una dirección IP ni una red"):
        Settings()


# --- the store --------------------------------------------------------------------------------


def test_check_counts_nothing_and_expired_events_are_purged(store: Store) -> None:
    limits: list[tuple[Throttle, str | None]] = [(Throttle("t-auth", 2, 60), None)]
    start = dt.datetime(2026, 11, 23, 9, 0)
    for seconds in range(5):
        assert store.throttle_check("a", limits, now=start + dt.timedelta(seconds=seconds)) is None
    assert store.throttle("a", limits, now=start) is None
    assert store.throttle("a", limits, now=start + dt.timedelta(seconds=10)) is None
    refusal = store.throttle_check("a", limits, now=start + dt.timedelta(seconds=20))
    assert refusal is not None and refusal.retry_after_s == 40
    assert store.throttle_check("b", limits, now=start + dt.timedelta(seconds=20)) is None
    # Refused: nothing more is recorded.
    assert store.throttle("a", limits, now=start + dt.timedelta(seconds=30)) is not None
    assert store.throttle("b", limits, now=start + dt.timedelta(seconds=30)) is None

    def rows() -> int:
        with store.engine.connect() as connection:
            return int(connection.execute(
                sa.select(sa.func.count()).select_from(THROTTLE_EVENTS)).scalar_one())  # fmt: skip

    assert rows() == 3
    later = start + dt.timedelta(seconds=200)  # every event above has left its window
    assert store.throttle_check("a", limits, now=later) is None
    assert rows() == 3  # a check only reads
    assert store.throttle("c", limits, now=later) is None
    assert rows() == 1  # counting purged every client's expired events of the scope
