"""What the people's pages share: templates, cookie sessions, the CSRF check and sign-in throttling.

The entity portal (``/entidades``, :mod:`api.pages.portal`) and the staff desk (``/gestion``,
:mod:`api.pages.desk`) are server-rendered HTML forms that work without JavaScript; scripts only
enhance them (the map picker, the weekly hours editor). Every write they make goes through
:mod:`geo.services.registry` (or the store's audited methods), exactly as the JSON API does.

Sessions. The credential is an API token kept in an HttpOnly, SameSite=Strict cookie scoped to the
page's path, ``Secure`` behind HTTPS, with a limited lifetime; it is checked on every request, so a
revoked or expired token ends the session at once.

CSRF. A state-changing request authenticated by a cookie must carry the form's ``csrf`` field (a
keyed hash of the session's token, which a cross-site page cannot read or compute), and a
browser's ``Origin`` header, when it names an origin, must be this server's. A sign-in form (no
session yet) needs the matching ``Origin``.

Throttling. Every failed credential counts against the client's address in one budget shared
by every worker process (kept in the database): a wrong bearer token, a session cookie that is
forged, unknown, revoked or expired, a wrong token in a sign-in form, a wrong, used or expired
invitation link. Past ``auth_failure_limit`` in ``auth_failure_window_s`` every request from that
address that presents a credential gets 429 (with ``Retry-After``) until the window slides (a
minute by default), so a brute-force loop stalls and the holder of a valid credential is kept out
for a minute at most. A request without any credential is never counted nor refused. The address
is the socket peer, or behind a trusted proxy the one it forwards (:mod:`api.clients`).
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import hmac
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import parse_qs, urlsplit

import jinja2
from fastapi import Request
from fastapi.responses import HTMLResponse, Response

from api.clients import client_key
from api.security import auth_limits, refused
from geo.city import CityProfile
from geo.clock import local_text, stored_local
from geo.core.availability import week_in_words
from geo.core.outputs import spanish_number
from geo.errors import (
    AuthenticationError,
    CardiomapaError,
    ForbiddenError,
    FormTooLargeError,
    LayerValidationError,
    Problem,
)
from geo.io.store import Store
from geo.services.tokens import Principal, authenticate
from geo.settings import Settings

TEMPLATES_DIR = Path(__file__).resolve().parent / "templates"
#: Pages under /entidades and /gestion send their origin with form posts (the API's default
#: ``no-referrer`` would make browsers send ``Origin: null``).
PAGE_HEADERS = {"Cache-Control": "no-store", "Referrer-Policy": "same-origin"}
#: Longest form body the pages read (the app's body limit applies first).
MAX_FORM_FIELDS = 200
#: Why the 112 dispatch centre's token, pasted in a page's sign-in form, opens no page.
DISPATCH_TOKEN_PROBLEM = (
    "Esta clave es la del centro coordinador de emergencias 112: solo sirve para su listado de "
    "desfibriladores (/api/dispatch/defibrillators.geojson), no para entrar en las páginas."
)


@functools.cache
def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES_DIR),
        autoescape=True,  # everything an entity typed is inert in every page
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["fecha"] = _local_date
    env.filters["fecha_hora"] = _local_datetime
    env.filters["numero"] = spanish_number
    return env


def spanish_date(value: dt.date | str | None) -> str:
    """``2026-03-01`` → ``01/03/2026``; nothing → ``—``."""
    if value is None or value == "":
        return "—"
    if isinstance(value, str):
        value = dt.date.fromisoformat(value[:10])
    return f"{value:%d/%m/%Y}"


def spanish_datetime(value: dt.datetime | None, timezone: str) -> str:
    """A stored timestamp (naive = UTC) as the city's wall clock: ``01/03/2026 10:30``."""
    return "—" if value is None else local_text(value, timezone)


def _zone(context: Mapping[str, Any]) -> str:
    """The city's time zone, which every page's frame passes as ``timezone``."""
    zone = context.get("timezone")
    if not isinstance(zone, str):
        msg = "A page that shows a time needs the city's time zone in its context (timezone)."
        raise TypeError(msg)
    return zone


@jinja2.pass_context
def _local_datetime(context: Mapping[str, Any], value: dt.datetime | None) -> str:
    return spanish_datetime(value, _zone(context))


@jinja2.pass_context
def _local_date(context: Mapping[str, Any], value: dt.date | str | None) -> str:
    """A date as is; an instant (naive = UTC) as the city's date on that instant."""
    if isinstance(value, dt.datetime):
        value = stored_local(value, _zone(context)).date()
    return spanish_date(value)


def render(
    template: str, *, status_code: int = 200, headers: Mapping[str, str] | None = None,
    **context: Any,
) -> HTMLResponse:  # fmt: skip
    """A page from ``api/templates``, never cached."""
    html = _environment().get_template(template).render(**context)
    return HTMLResponse(html, status_code=status_code, headers={**PAGE_HEADERS, **(headers or {})})


def hours_in_words(text: str | None, city: CityProfile, *, today: dt.date) -> str:
    """This week's opening hours of a device in Spanish words (or why they cannot be read)."""
    if not text:
        return "Sin horario: indique cuándo se puede acceder."
    try:
        return week_in_words(text, week_of=today, timezone=city.timezone, calendar=city.calendar)
    except (CardiomapaError, ValueError) as exc:
        return f"Horario no válido: {exc}"


# --- sessions ---------------------------------------------------------------------------------


class Session:
    """One kind of cookie session: its cookie name, path, lifetime and the roles it admits."""

    def __init__(self, *, cookie: str, path: str, max_age_s: int, roles: tuple[str, ...]) -> None:
        self.cookie = cookie
        self.path = path
        self.max_age_s = max_age_s
        self.roles = roles

    def token(self, request: Request) -> str | None:
        return request.cookies.get(self.cookie) or None

    def principal(self, request: Request, store: Store) -> Principal | None:
        """Who the cookie stands for, or ``None`` (no cookie, revoked, expired, wrong role).

        A cookie that is not a valid token counts as a failed credential.

        Raises
        ------
        RateLimitedError
            The client is over the failed-credential limit (:func:`throttled_authenticate`).
        """
        token = self.token(request)
        if token is None:
            return None
        try:
            principal = throttled_authenticate(request, store, token)
        except AuthenticationError:
            return None
        return principal if principal.role in self.roles else None

    def start(
        self, response: Response, request: Request, token: str, *, max_age_s: int | None = None
    ) -> None:
        response.set_cookie(
            self.cookie, token, max_age=max_age_s or self.max_age_s, path=self.path,
            httponly=True, samesite="strict", secure=request.url.scheme == "https",
        )  # fmt: skip

    def end(self, response: Response) -> None:
        response.delete_cookie(self.cookie, path=self.path, httponly=True, samesite="strict")


def csrf_token(session_token: str) -> str:
    """The value a form must echo: a keyed hash of the session's secret token."""
    return hmac.new(session_token.encode(), b"cardiomapa-csrf", hashlib.sha256).hexdigest()[:40]


def own_origin(request: Request) -> str:
    host = request.headers.get("host") or request.url.netloc
    return f"{request.url.scheme}://{host}"


def check_origin(request: Request) -> None:
    """Refuse (403) a request whose browser says it comes from another site.

    Raises
    ------
    ForbiddenError
        ``Origin`` (or, without it, ``Referer``) names an origin other than this server's.
    """
    origin = request.headers.get("origin")
    if origin is None or origin == "null":
        referer = request.headers.get("referer")
        if referer:
            parts = urlsplit(referer)
            origin = f"{parts.scheme}://{parts.netloc}"
    if origin and origin != "null" and origin != own_origin(request):
        msg = (
            "Petición rechazada: llega desde otro sitio web. Abra esta página directamente "
            "y vuelva a enviar el formulario."
        )
        raise ForbiddenError(msg)


def check_csrf(request: Request, form: Mapping[str, str], session_token: str) -> None:
    """Both CSRF checks for a state-changing request made with a session cookie."""
    check_origin(request)
    sent = form.get("csrf", "")
    if not hmac.compare_digest(sent, csrf_token(session_token)):
        msg = (
            "El formulario ha caducado o no viene de esta página. Vuelva a cargarla y "
            "envíelo de nuevo."
        )
        raise ForbiddenError(msg)


async def read_form(request: Request) -> dict[str, str]:
    """A URL-encoded form body as ``{name: last value}`` (fields repeated keep the last).

    Every page form is read here.

    Raises
    ------
    FormTooLargeError
        The body has more than :data:`MAX_FORM_FIELDS` fields (answered 413).
    """
    body = (await request.body()).decode("utf-8", "replace")
    try:
        fields = parse_qs(body, keep_blank_values=True, max_num_fields=MAX_FORM_FIELDS)
    except ValueError:  # parse_qs: "Max number of fields exceeded"
        msg = (
            f"El formulario trae demasiados campos (más de {MAX_FORM_FIELDS}); ningún formulario "
            "de estas páginas envía tantos. Vuelva a cargar la página y envíelo de nuevo."
        )
        raise FormTooLargeError(msg) from None
    return {name: values[-1] for name, values in fields.items()}


# --- throttling -------------------------------------------------------------------------------


T = TypeVar("T")


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def guarded(request: Request, store: Store, attempt: Callable[[], T]) -> T:
    """Run ``attempt`` (which checks a credential) under the failed-credential limit.

    Refused at once if the client is over the limit; an :class:`AuthenticationError` from
    ``attempt`` is counted (then raised again). Blocking: call it from the thread pool.

    Raises
    ------
    RateLimitedError
        The client is over the limit (429 with ``Retry-After``).
    AuthenticationError
        From ``attempt``.
    """
    settings = _settings(request)
    key = client_key(request, secret=settings.client_key_secret)
    limits = auth_limits(settings)
    refusal = store.throttle_check(key, limits)
    if refusal is not None:
        raise refused(refusal)
    try:
        return attempt()
    except AuthenticationError:
        # Nothing is recorded past the limit (the client is refused anyway): the table holds at
        # most ``auth_failure_limit`` rows per client and window.
        store.throttle(key, limits)
        raise


def throttled_authenticate(request: Request, store: Store, presented: str | None) -> Principal:
    """:func:`geo.services.tokens.authenticate` under the failed-credential limit (:func:`guarded`).

    A missing token is no guess: it is neither refused nor counted.
    """
    if not presented:
        return authenticate(store, presented)
    zone = request.app.state.city.timezone
    return guarded(request, store, lambda: authenticate(store, presented, timezone=zone))


# --- errors next to their fields --------------------------------------------------------------


def field_errors(exc: CardiomapaError) -> dict[str, str]:
    """Messages by form field from a validation error (``""``: not tied to one field)."""
    problems: Sequence[Problem] = exc.problems if isinstance(exc, LayerValidationError) else ()
    errors: dict[str, str] = {}
    for problem in problems:
        errors.setdefault(problem.field or "", problem.message)
    if not problems:
        errors[getattr(exc, "field", None) or ""] = str(exc)
    return errors
