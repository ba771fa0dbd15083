"""A page and a QR code per cabinet: ``/dea/{id}`` tells whoever scans the sticker on a
defibrillator's cabinet whether it works, where exactly it is, its hours, how to walk there, and
lets them report a problem in two taps; ``/dea/{id}/hoja`` is the A6 sheet its entity prints
and sticks on the cabinet, with the QR code (``/dea/{id}/qr.svg``) of the page.

Public pages, phone first, that work without JavaScript: a ``tel:112`` link always comes first.
They show the devices the citizens' map lists (:func:`geo.core.nearest.listed`) and only their
public fields, read from the same :class:`geo.core.nearest.DeviceFinder` snapshot that answers
``/api/nearest`` (emergency-only notes are never loaded); any other id is a Spanish 404. A
report goes through :func:`api.reports.take_report`, exactly as the JSON API's: the same limits,
the same moderation queue, the same mail to the staff. The form carries no session, so the
project's rule for forms without one applies: the browser's ``Origin`` must be this server's.
"""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Mapping
from typing import Annotated, Any
from urllib.parse import quote

import segno
from fastapi import APIRouter, BackgroundTasks, Path, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from markupsafe import Markup
from pydantic import ValidationError

from api import web
from api.deps import (
    CityDep,
    ClockDep,
    FinderCache,
    FindersDep,
    SettingsDep,
    StoreDep,
    current_finder,
)
from api.reports import take_report
from api.schemas import ReportCreate
from geo.city import CityProfile
from geo.clock import Clock, local_now
from geo.core.availability import WEEKDAY_NAMES, week_in_words
from geo.core.nearest import DeviceFinder, DeviceState, walking_directions_url
from geo.core.outputs import data_notice
from geo.errors import CardiomapaError, ForbiddenError, NotFoundError, RateLimitedError
from geo.io.store import Store
from geo.render.maps import ACCESS_TEXT
from geo.settings import Settings

router = APIRouter(prefix="/dea", include_in_schema=False)

DeviceId = Annotated[str, Path(max_length=200)]
#: What the cabinet's page lets a citizen report in two taps: kind → (button, what it means).
KINDS = {
    "missing": ("No está", "No está: el desfibrilador no está en su armario o en su sitio."),
    "broken": ("No funciona", "No funciona: está averiado, sin batería o da una alarma."),
}
#: The report's message when the citizen adds nothing (the staff see where it came from).
DEFAULT_MESSAGE = {
    "missing": "No está (aviso desde la página del armario).",
    "broken": "No funciona (aviso desde la página del armario).",
}
#: What the page says after a report went through (``?aviso=<key>``: a key, never free text).
DONE = {"enviado": "Gracias: el aviso queda pendiente de revisión por el Ayuntamiento."}
#: Each state as a colour class of the page: ok, closed, warn (usable with care), bad.
STATE_CLASS = {
    "open": "ok",
    "closed": "closed",
    "maintenance_overdue": "warn",
    "unknown_hours": "warn",
    "restricted": "warn",
    "reported": "bad",
    "out_of_service": "bad",
}
INDOOR_TEXT = {True: "Dentro del edificio", False: "En el exterior"}
#: The QR code's image: a day in caches (it changes only with the server's public address).
QR_HEADERS = {
    "Cache-Control": "public, max-age=86400",
    "Content-Security-Policy": "default-src 'none'",
}


# --- what the pages show ----------------------------------------------------------------------


def public_url(settings: Settings, device_id: str) -> str:
    """The page's address as people reach the server (``settings.base_url()``), whatever host
    the request that asks came through."""
    return f"{settings.base_url()}/dea/{quote(device_id, safe='')}"


def short_url(url: str) -> str:
    """The address as people type it: without ``https://``."""
    return url.split("://", 1)[-1]


def qr_code(url: str) -> segno.QRCode:
    """The QR code of ``url``, with error correction Q (a quarter of it may be scratched)."""
    return segno.make(url, error="q", micro=False)


def qr_svg(url: str) -> bytes:
    """The QR code of ``url`` as a standalone SVG file: black on white, 8 px a module, with
    the quiet zone of four modules readers need."""
    out = io.BytesIO()
    qr_code(url).save(out, kind="svg", dark="#000", light="#fff", scale=8, border=4)
    return out.getvalue()


def _change_words(state: DeviceState, now: dt.datetime) -> str | None:
    """When an open device closes or a closed one opens, in words (local time)."""
    change = state.next_change
    if change is None or state.state not in ("open", "closed", "maintenance_overdue"):
        return None
    verb = "Abre" if state.state == "closed" else "Cierra"
    days = (change.date() - now.date()).days
    if days == 0:
        when = "hoy"
    elif days == 1:
        when = "mañana"
    else:
        when = f"el {WEEKDAY_NAMES[change.weekday()]} {web.spanish_date(change.date())}"
    return f"{verb} {when} a las {change:%H:%M}."


def _level_words(level: object) -> str | None:
    """The OSM ``level`` as the answer to «Planta»: ``0`` → ``Baja``, ``-1`` → ``-1 (bajo la
    calle)``, others as they are."""
    text = str(level).strip() if level is not None else ""
    if not text:
        return None
    if text == "0":
        return "Baja"
    if text.startswith("-"):
        return f"{text} (bajo la calle)"
    return text


def _hours_words(text: object, city: CityProfile, today: dt.date) -> str:
    """This week's hours in words, as the citizens' map says them (holidays included)."""
    if not text:
        return "Horario desconocido."
    try:
        return week_in_words(
            str(text), week_of=today, timezone=city.timezone, calendar=city.calendar
        )
    except ValueError:
        return f"Horario no interpretable: «{text}»."


def cabinet_view(
    finder: DeviceFinder, index: int, city: CityProfile, clock: Clock
) -> dict[str, Any]:
    """What the page says of the listed device at ``index`` now: public fields only."""
    fields = finder.fields[index]
    lon, lat = (float(value) for value in finder.lonlat[index])
    now = local_now(clock, city.timezone)
    state = finder.state(index, now)
    indoor = fields["indoor"]
    return {
        "id": fields["id"],
        "name": fields["name"],
        "location_text": fields["location_text"],
        "address": fields["address"],
        "level": _level_words(fields["level"]),
        "indoor": None if indoor is None else INDOOR_TEXT[bool(indoor)],
        "access": ACCESS_TEXT.get(str(fields["access"]), str(fields["access"])),
        "phone": fields["phone"],
        "state": state.state,
        "state_class": STATE_CLASS[state.state],
        "state_text": state.text + (" (24 h)" if state.always_open else ""),
        "change_text": _change_words(state, now),
        "hours_text": _hours_words(fields["opening_hours"], city, now.date()),
        "check_date": fields["check_date"],
        "directions_url": walking_directions_url(lon, lat),
    }


# --- the pages' frame -------------------------------------------------------------------------


def _page(
    template: str,
    *,
    store: Store,
    city: CityProfile,
    title: str,
    status_code: int = 200,
    headers: Mapping[str, str] | None = None,
    **context: Any,
) -> HTMLResponse:
    """A public page in the people's style (``base.html.j2``), the 112 link first."""
    base: dict[str, Any] = {
        "title": title,
        "city_name": city.name,
        "timezone": city.timezone,
        "area_name": "Desfibriladores",
        "home_url": "/",
        "nav": [],
        "signed_in": False,
        "notice": data_notice(layer.sources for layer in store.summary()),
        "flash": None,
        "problem": None,
    }
    return web.render(template, status_code=status_code, headers=headers, **(base | context))


def _message(
    store: Store,
    city: CityProfile,
    *,
    title: str,
    problem: str,
    status_code: int,
    back: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> HTMLResponse:
    return _page(
        "cabinet/message.html.j2", store=store, city=city, title=title, message=problem,
        status_code=status_code, back=back, headers=headers,
    )  # fmt: skip


def _not_found(store: Store, city: CityProfile, device_id: str) -> HTMLResponse:
    problem = (
        f"No hay ningún desfibrilador público con el código «{device_id}»: puede que se haya "
        "retirado, que todavía no esté verificado o que la dirección esté mal escrita. Busque "
        "el más cercano en el mapa."
    )
    return _message(
        store, city, title="Desfibrilador no encontrado", problem=problem, status_code=404
    )


async def _listed(finders: FinderCache, device_id: str) -> tuple[DeviceFinder, int | None]:
    finder = await current_finder(finders)
    return finder, finder.index(device_id)


# --- the page ---------------------------------------------------------------------------------


@router.get("/{device_id}", response_class=HTMLResponse)
async def cabinet_page(
    device_id: DeviceId,
    request: Request,
    store: StoreDep,
    city: CityDep,
    clock: ClockDep,
    finders: FindersDep,
) -> HTMLResponse:
    """One device: whether it works now, where it is, its hours, how to get there, and the
    report buttons."""
    finder, index = await _listed(finders, device_id)
    if index is None:
        return await run_in_threadpool(_not_found, store, city, device_id)
    flash = DONE.get(request.query_params.get("aviso", ""))

    def render() -> HTMLResponse:
        device = cabinet_view(finder, index, city, clock)
        return _page(
            "cabinet/page.html.j2", store=store, city=city, title=str(device["name"]),
            device=device, kinds=KINDS, flash=flash,
        )  # fmt: skip

    return await run_in_threadpool(render)


# --- reporting a problem in two taps ----------------------------------------------------------


def _kind(form: Mapping[str, str]) -> str | None:
    kind = form.get("kind", "")
    return kind if kind in KINDS else None


def _wrong_kind(store: Store, city: CityProfile, device_id: str) -> HTMLResponse:
    words = " o ".join(f"«{button}»" for button, _ in KINDS.values())
    problem = f"Esta página solo recoge avisos de un desfibrilador que {words}."
    return _message(
        store, city, title="Aviso no admitido", problem=problem, status_code=422,
        back=f"/dea/{quote(device_id, safe='')}",
    )  # fmt: skip


def _confirm_page(
    store: Store,
    city: CityProfile,
    device: Mapping[str, Any],
    kind: str,
    *,
    detail: str = "",
    error: str | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    return _page(
        "cabinet/confirm.html.j2", store=store, city=city, title="¿Enviar este aviso?",
        device=device, kind=kind, kind_text=KINDS[kind][1], detail=detail,
        errors={"detalle": error} if error else {}, status_code=status_code,
    )  # fmt: skip


@router.get("/{device_id}/aviso", include_in_schema=False)
@router.get("/{device_id}/aviso/enviar", include_in_schema=False)
async def report_again(device_id: DeviceId) -> RedirectResponse:
    """A reload or a bookmark of a report step: back to the page's report buttons."""
    return RedirectResponse(f"/dea/{quote(device_id, safe='')}#avisar", status_code=303)


@router.post("/{device_id}/aviso", response_class=HTMLResponse)
async def report_step_one(
    device_id: DeviceId,
    request: Request,
    store: StoreDep,
    city: CityDep,
    clock: ClockDep,
    finders: FindersDep,
) -> HTMLResponse:
    """Tap 1 («No está», «No funciona»): what will be sent, and the button that sends it."""
    form = await web.read_form(request)
    finder, index = await _listed(finders, device_id)
    if index is None:
        return await run_in_threadpool(_not_found, store, city, device_id)
    kind = _kind(form)
    if kind is None:
        return await run_in_threadpool(_wrong_kind, store, city, device_id)
    return await run_in_threadpool(
        lambda: _confirm_page(store, city, cabinet_view(finder, index, city, clock), kind)
    )


@router.post("/{device_id}/aviso/enviar", response_class=HTMLResponse)
async def report_step_two(
    device_id: DeviceId,
    request: Request,
    background: BackgroundTasks,
    store: StoreDep,
    city: CityDep,
    clock: ClockDep,
    settings: SettingsDep,
    finders: FindersDep,
) -> Response:
    """Tap 2 («Enviar aviso»): the report, through the same door as the JSON API's."""
    back = f"/dea/{quote(device_id, safe='')}"
    form = await web.read_form(request)
    finder, index = await _listed(finders, device_id)

    def send() -> Response:
        try:
            web.check_origin(request)
        except ForbiddenError as exc:
            return _message(
                store, city, title="Aviso no enviado", problem=str(exc), status_code=403,
                back=back,
            )  # fmt: skip
        kind = _kind(form)
        if index is None:
            return _not_found(store, city, device_id)
        if kind is None:
            return _wrong_kind(store, city, device_id)
        detail = form.get("detalle", "").strip()
        try:
            report = ReportCreate.model_validate(
                {"kind": kind, "message": detail or DEFAULT_MESSAGE[kind]}
            )
            take_report(
                request, report, device_id=device_id, store=store, city=city,
                settings=settings, finders=finders, background=background,
            )  # fmt: skip
        except RateLimitedError as exc:
            return _message(
                store, city, title="Aviso no enviado", problem=str(exc), status_code=429,
                back=back, headers={"Retry-After": str(exc.retry_after_s)},
            )  # fmt: skip
        except NotFoundError:
            return _not_found(store, city, device_id)
        except (ValidationError, CardiomapaError) as exc:
            error = _detail_error(exc) if isinstance(exc, ValidationError) else str(exc)
            device = cabinet_view(finder, index, city, clock)
            return _confirm_page(
                store, city, device, kind, detail=detail, error=error, status_code=422
            )
        return RedirectResponse(f"{back}?aviso=enviado", status_code=303)

    return await run_in_threadpool(send)


def _detail_error(exc: ValidationError) -> str:
    """The details field's problem in Spanish (the only field a citizen types)."""
    kinds = {error["type"] for error in exc.errors()}
    if "string_too_long" in kinds:
        return "El detalle es demasiado largo: escriba como mucho 1.000 caracteres."
    return "El detalle tiene caracteres que no se pueden guardar: escríbalo de nuevo."


# --- the QR code and the sheet for the cabinet ------------------------------------------------


@router.get("/{device_id}/qr.svg")
async def qr_image(
    device_id: DeviceId, store: StoreDep, city: CityDep, settings: SettingsDep, finders: FindersDep
) -> Response:
    """The QR code of the device's public page (SVG)."""
    _, index = await _listed(finders, device_id)
    if index is None:
        return await run_in_threadpool(_not_found, store, city, device_id)
    svg = qr_svg(public_url(settings, device_id))
    return Response(svg, media_type="image/svg+xml", headers=QR_HEADERS)


@router.get("/{device_id}/hoja", response_class=HTMLResponse)
async def cabinet_sheet(
    device_id: DeviceId, store: StoreDep, city: CityDep, settings: SettingsDep, finders: FindersDep
) -> HTMLResponse:
    """The A6 sheet to print and stick on the cabinet: DEA, 112, the QR code of the page."""
    finder, index = await _listed(finders, device_id)
    if index is None:
        return await run_in_threadpool(_not_found, store, city, device_id)
    url = public_url(settings, device_id)
    # segno's drawing carries no text of the device's (only its modules): safe to inline.
    svg = qr_code(url).svg_inline(dark="#000", light="#fff", border=4, omitsize=True)
    return web.render(
        "cabinet/sheet.html.j2", title=f"Hoja para el armario: {finder.fields[index]['name']}",
        city_name=city.name, timezone=city.timezone, name=finder.fields[index]["name"],
        page_path=f"/dea/{quote(device_id, safe='')}",
        short_url=short_url(url), qr=Markup(svg),
    )  # fmt: skip
