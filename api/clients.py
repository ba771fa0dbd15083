"""Who the client is: the socket peer, or, behind a trusted reverse proxy, the address it forwards.

By default no proxy is trusted and ``X-Forwarded-For`` / ``X-Forwarded-Proto`` are ignored: a
client cannot pick the address its limits count against by sending a header. With
``CARDIOMAPA_TRUSTED_PROXIES`` (addresses or networks), a request whose peer is one of them is
attributed to the right-most ``X-Forwarded-For`` entry that is not a trusted proxy (entries to its
left were written by the client and prove nothing), and its scheme is the one the proxy states in
``X-Forwarded-Proto``.

:class:`TrustedProxyMiddleware` applies that once, at the edge of the app, so every route reads
the same ``request.client`` and ``request.url.scheme`` whichever server runs the app (uvicorn's own
proxy-header handling must be off: ``cardiomapa serve`` turns it off). :func:`client_key` says
which budget a request counts against (an IPv6 client is its /64).
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
from collections.abc import Sequence

from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address

#: Schemes a trusted proxy may state in ``X-Forwarded-Proto``.
FORWARDED_SCHEMES = {"http", "https"}
#: The key of a request whose peer is unknown (no ``client`` in the ASGI scope).
UNKNOWN_CLIENT = "desconocido"


def parse_address(text: str) -> Address | None:
    """An address as proxies write it (``1.2.3.4``, ``1.2.3.4:5678``, ``[::1]:80``, ``::1``), or
    ``None`` when it is not one. An IPv4-mapped IPv6 address is its IPv4 address."""
    text = text.strip().strip('"')
    if text.startswith("["):  # [v6]:port
        text = text[1 : text.find("]")] if "]" in text else ""
    elif text.count(":") == 1:  # v4:port
        text = text.split(":", 1)[0]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def is_trusted(address: Address | None, trusted: Sequence[Network]) -> bool:
    return address is not None and any(address in network for network in trusted)


def forwarded_client(peer: str, forwarded_for: Sequence[str], trusted: Sequence[Network]) -> str:
    """The client's address: ``peer`` itself unless it is a trusted proxy.

    Parameters
    ----------
    peer
        The socket peer's address.
    forwarded_for
        The values of every ``X-Forwarded-For`` header, in order (each a comma-separated list;
        each proxy appends the address it received the request from).
    trusted
        The trusted proxies.

    Returns
    -------
    str
        Behind trusted proxies, the right-most forwarded address that is not a trusted proxy; if
        that entry is not an address (a misconfigured proxy), the nearest trusted hop, so a
        client can never choose its key. Normalised (IPv4-mapped IPv6 as IPv4).
    """
    current = parse_address(peer)
    if not is_trusted(current, trusted):
        return str(current) if current is not None else peer
    assert current is not None
    hops = [hop for value in forwarded_for for hop in value.split(",") if hop.strip()]
    for hop in reversed(hops):
        address = parse_address(hop)
        if address is None:
            break
        current = address
        if not is_trusted(address, trusted):
            break
    return str(current)


def throttle_client(address: str) -> str:
    """The budget an address counts against: itself, or its /64 for IPv6 (one subscriber
    usually holds a whole /64, and could otherwise rotate through its addresses)."""
    parsed = parse_address(address)
    if isinstance(parsed, ipaddress.IPv6Address):
        return str(ipaddress.IPv6Network((parsed, 64), strict=False))
    return str(parsed) if parsed is not None else address


def _header_values(scope: Scope, name: bytes) -> list[str]:
    return [value.decode("latin-1") for key, value in scope["headers"] if key.lower() == name]


class TrustedProxyMiddleware:
    """Set the scope's ``client`` and ``scheme`` from a trusted proxy's forwarded headers.

    A request from any other peer is passed on untouched (its headers are ignored).
    """

    def __init__(self, app: ASGIApp, *, trusted: Sequence[Network]) -> None:
        self.app = app
        self.trusted = tuple(trusted)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        peer = scope.get("client")
        if scope["type"] not in ("http", "websocket") or not self.trusted or peer is None:
            await self.app(scope, receive, send)
            return
        if is_trusted(parse_address(peer[0]), self.trusted):
            forwarded = _header_values(scope, b"x-forwarded-for")
            scope = dict(scope)
            if forwarded:
                scope["client"] = (forwarded_client(peer[0], forwarded, self.trusted), 0)
            protos = _header_values(scope, b"x-forwarded-proto")
            proto = protos[-1].split(",")[-1].strip().lower() if protos else ""
            if proto in FORWARDED_SCHEMES and scope["type"] == "http":
                scope["scheme"] = proto
        await self.app(scope, receive, send)


def client_key(request: Request, *, secret: str | None = None) -> str:
    """The budget the request's client counts against in every throttle: its address as the app
    sees it (after :class:`TrustedProxyMiddleware`), an IPv6 client's /64.

    With ``secret`` (``CARDIOMAPA_CLIENT_KEY_SECRET``), a keyed hash of that instead, so what the
    throttle stores cannot be turned back into an address by hashing every IPv4 address.
    """
    client = request.scope.get("client")
    key = throttle_client(str(client[0])) if client else UNKNOWN_CLIENT
    if secret:
        return hmac.new(secret.encode(), key.encode(), hashlib.sha256).hexdigest()
    return key
