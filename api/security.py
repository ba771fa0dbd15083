"""Request-size limit, security headers and the rate limits on public writes and credentials.

Citizens' reports and failed credentials are limited in the database
(:meth:`geo.store.Store.throttle`), so the limits hold across every worker process:
:func:`report_limits` and :func:`auth_limits` say which, :func:`refused` words a refusal.
"""

from __future__ import annotations

import json
import math
from urllib.parse import urlsplit

from fastapi import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import RateLimitedError
from geo.availability import DOWNGRADING_REPORTS
from geo.settings import Settings
from geo.store import Throttle, ThrottleRefusal

#: Sent with every answer.
SECURITY_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
    (b"cross-origin-opener-policy", b"same-origin"),
)


def html_headers(tile_url: str | None) -> tuple[tuple[bytes, bytes], ...]:
    """Headers for HTML pages: everything from this server, images also from the tile server.

    Pages load no script or style from elsewhere (inline ones are folium's); images may come as
    ``data:`` URIs, from any HTTPS server and from the configured tile server.
    """
    images = ["'self'", "data:", "https:"]
    if tile_url:
        parts = urlsplit(tile_url)
        if parts.scheme == "http" and parts.netloc:
            images.append("http://" + parts.netloc.replace("{s}", "*"))  # {s}.tiles… → *.tiles…
    policy = (
        f"default-src 'self'; img-src {' '.join(images)}; style-src 'self' 'unsafe-inline'; "
        "script-src 'self' 'unsafe-inline'; frame-ancestors 'none'; base-uri 'self'; "
        "form-action 'self'"
    )
    return (
        (b"content-security-policy", policy.encode("ascii")),
        (b"permissions-policy", b"geolocation=(self), camera=(), microphone=()"),
    )


class BodyLimitMiddleware:
    """Refuse bodies over ``max_bytes`` with 413: by Content-Length at once, else while reading.

    A streamed body that grows past the limit stops being read there; nothing is written, because
    the route never receives a complete body.
    """

    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await _too_large(send, self.max_bytes)
            return
        seen = 0
        limit = self.max_bytes

        async def limited() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    # An HTTPException, because FastAPI turns any other error raised while it
                    # reads the body into a 400.
                    raise HTTPException(status_code=413, detail=_too_large_text(limit))
            return message

        await self.app(scope, limited, send)


def _too_large_text(limit: int) -> str:
    return f"El cuerpo de la petición supera el máximo admitido ({limit:,} bytes).".replace(
        ",", "."
    )


async def _too_large(send: Send, limit: int) -> None:
    body = json.dumps(
        {"code": "payload_too_large", "message": _too_large_text(limit)}, ensure_ascii=False
    ).encode("utf-8")
    await send({
        "type": "http.response.start",
        "status": 413,
        "headers": [(b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()), *SECURITY_HEADERS],
    })  # fmt: skip
    await send({"type": "http.response.body", "body": body})


class SecurityHeadersMiddleware:
    """Add :data:`SECURITY_HEADERS` to every answer, and :func:`html_headers` to HTML pages."""

    def __init__(self, app: ASGIApp, *, tile_url: str | None = None) -> None:
        self.app = app
        self.html_headers = html_headers(tile_url)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                headers.extend(h for h in SECURITY_HEADERS if h[0] not in present)
                content_type = dict(headers).get(b"content-type", b"")
                if content_type.startswith(b"text/html"):
                    headers.extend(h for h in self.html_headers if h[0] not in present)
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, with_headers)


# --- limits shared by every worker (counted in the database) ----------------------------------

REPORTS_SCOPE = "reports"
DOWNGRADES_SCOPE = "report_downgrades"
#: Failed credentials of every kind: bearer tokens, session cookies, sign-in forms, invitations.
AUTH_FAILURES_SCOPE = "auth_failures"


def report_limits(
    settings: Settings, *, device_id: str, kind: str
) -> list[tuple[Throttle, str | None]]:
    """The limits one citizen's report counts against, with its subject.

    Every report counts against ``report_rate_limit`` per ``report_rate_window_s``; a
    "missing"/"broken" one also against ``report_downgrade_limit`` distinct devices per
    ``report_downgrade_window_s`` (reporting the same device again does not count twice).
    """
    limits: list[tuple[Throttle, str | None]] = [
        (Throttle(REPORTS_SCOPE, settings.report_rate_limit, settings.report_rate_window_s), None)
    ]
    if kind in DOWNGRADING_REPORTS:
        downgrades = Throttle(
            DOWNGRADES_SCOPE,
            settings.report_downgrade_limit,
            settings.report_downgrade_window_s,
            distinct=True,
        )
        limits.append((downgrades, device_id))
    return limits


def auth_limits(settings: Settings) -> list[tuple[Throttle, str | None]]:
    """The one budget every failed credential of a client counts against."""
    throttle = Throttle(
        AUTH_FAILURES_SCOPE, settings.auth_failure_limit, settings.auth_failure_window_s
    )
    return [(throttle, None)]


def duration_words(seconds: float) -> str:
    """``30`` → ``30 s``, ``90`` → ``2 min``, ``5400`` → ``1 h 30 min``, ``86399`` → ``24 h``
    (rounded up to the second below a minute, else to the minute)."""
    if seconds < 60:
        return f"{math.ceil(seconds)} s"
    hours, minutes = divmod(math.ceil(seconds / 60), 60)
    if hours and minutes:
        return f"{hours} h {minutes} min"
    return f"{hours} h" if hours else f"{minutes} min"


def refused(refusal: ThrottleRefusal) -> RateLimitedError:
    """The 429 for a refused report or credential, in Spanish, with ``Retry-After``."""
    limit, wait = refusal.throttle, refusal.retry_after_s
    window = duration_words(limit.window_s)
    if limit.scope == DOWNGRADES_SCOPE:
        msg = (
            f"Desde esta dirección ya se han avisado como desaparecidos o averiados "
            f"{limit.limit} desfibriladores distintos en {window}, el máximo admitido: el "
            f"Ayuntamiento los revisará. Podrá avisar de otro en {duration_words(wait)}."
        )
    elif limit.scope == AUTH_FAILURES_SCOPE:
        msg = (
            f"Demasiados intentos de acceso fallidos desde esta dirección: {limit.limit} cada "
            f"{window}. Por seguridad no se admite ninguna clave, sesión ni invitación desde "
            f"ella hasta dentro de {duration_words(wait)}; inténtelo de nuevo entonces."
        )
    else:
        msg = (
            f"Demasiados avisos desde esta dirección: {limit.limit} cada {window}. "
            f"Inténtelo de nuevo en {duration_words(wait)}."
        )
    return RateLimitedError(msg, retry_after_s=wait)
