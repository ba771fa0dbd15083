"""The 112 dispatch centre's feed: every device the citizens' map lists, whether it can be used
now and over the next 24 hours, and the emergency-only notes (cabinet code, key holder) the
public never sees.

Several consoles poll it every minute. The body is rendered once per device snapshot and minute
(:class:`api.deps.RenderCache`) from the same :class:`geo.core.nearest.DeviceFinder` that answers
``/api/nearest``; its ``ETag`` is a hash of the bytes, so every worker gives the same tag for the
same body, and a console that sends it back in ``If-None-Match`` gets 304 without a body.

The private notes need no revision of their own in the cache key: they are written only in the
transactions that write their device (:mod:`geo.io.store.devices`), which bump the
defibrillators' revision, and the finder is rebuilt whenever that revision moves. A new finder is
a new key: an edited cabinet code is in the very next poll.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Header, Request, Response
from fastapi.concurrency import run_in_threadpool

from api.deps import ClockDep, FindersDep, PrincipalDep, RenderCache, StoreDep, current_finder
from api.http import GEOJSON, GEOJSON_ERRORS, GeoJSONResponse
from api.schemas import DispatchCollection
from geo.clock import local_now
from geo.core.nearest import DeviceFinder, DeviceState
from geo.io.store import PRIVATE_NOTE_FIELDS, Store
from geo.services.tokens import require_role

router = APIRouter(prefix="/api/dispatch", tags=["centro coordinador 112"])

#: Who may read the feed: the dispatch centre's token, and administrators (to check it).
ROLES = ("dispatch", "admin")
#: How far ahead each device says when it can be used.
HORIZON = dt.timedelta(hours=24)
#: The answer is private to the caller and must be checked again before each use.
CACHE_CONTROL = "private, no-cache"
#: An entity tag in ``If-None-Match``, weak or strong (compared weakly, as RFC 9110 says).
_ENTITY_TAG = re.compile(r'(?:W/)?("[^"]*")')


@dataclass(frozen=True)
class Feed:
    """The rendered feed and its strong entity tag (a SHA-256 of the bytes)."""

    body: bytes
    etag: str


@router.get(
    "/defibrillators.geojson",
    response_model=DispatchCollection,
    response_class=GeoJSONResponse,
    summary="Centro coordinador 112: desfibriladores, su estado y las notas de emergencia",
    description=(
        "**Solo para el centro coordinador de emergencias 112** (token con rol `dispatch`, "
        "emitido con `cardiomapa token create --role dispatch`) y la administración (`admin`); "
        "sin token o con uno no válido, 401; con otro rol, 403. Todos los desfibriladores que "
        "muestra el mapa ciudadano (GeoJSON, EPSG:4326), con su estado ahora, cuándo se pueden "
        "usar en las próximas 24 horas y las notas solo para emergencias (código del armario, "
        "quién tiene la llave, indicaciones) que nunca se publican. Horas locales de la ciudad "
        "en ISO 8601 con desfase. Pensado para consultarse cada minuto: se calcula una vez por "
        "minuto (generated_at y la ventana de 24 horas avanzan con él) y en cuanto cambia un "
        "desfibrilador o sus notas. La respuesta lleva un `ETag` (el mismo en todos los "
        "procesos del servidor); si se envía en `If-None-Match` y nada ha cambiado, la "
        "respuesta es 304 sin cuerpo."
    ),
    responses={
        200: {"description": "Los desfibriladores (GeoJSON FeatureCollection, EPSG:4326)."},
        304: {"description": "Nada ha cambiado desde la respuesta con ese ETag (sin cuerpo)."},
        **GEOJSON_ERRORS,
    },
)
async def dispatch_defibrillators(
    request: Request,
    principal: PrincipalDep,
    finders: FindersDep,
    store: StoreDep,
    clock: ClockDep,
    if_none_match: Annotated[
        str | None,
        Header(
            description='ETag de la última respuesta recibida, p. ej. "3f2a…" (o varios, '
            "separados por comas, o *).",
            max_length=2000,
        ),
    ] = None,
) -> Response:
    require_role(principal, *ROLES)
    finder = await current_finder(finders)
    minute = local_now(clock, finder.city.timezone).replace(second=0, microsecond=0)
    cache: RenderCache[Feed] = request.app.state.dispatch_feed
    # The finder itself in the key (compared by identity): a new snapshot is new data.
    feed = await run_in_threadpool(
        cache.get, (finder, minute), lambda: render_feed(finder, store, at=minute)
    )
    headers = {"ETag": feed.etag, "Cache-Control": CACHE_CONTROL}
    if if_none_match is not None and matches(if_none_match, feed.etag):
        return Response(status_code=304, headers=headers)
    return Response(feed.body, media_type=GEOJSON, headers=headers)


def matches(if_none_match: str, etag: str) -> bool:
    """Whether an ``If-None-Match`` header names ``etag`` (or is ``*``)."""
    if if_none_match.strip() == "*":
        return True
    return etag in _ENTITY_TAG.findall(if_none_match)


def render_feed(finder: DeviceFinder, store: Store, *, at: dt.datetime) -> Feed:
    """The feed at ``at`` (aware; the minute it is rendered for) as bytes, with its tag.

    Reads every device's private notes in one query. The window of ``open_next_24h`` is 24 real
    hours (added in UTC: across a change of time it ends at 23:00 or 01:00 local).
    """
    start = at.astimezone(dt.UTC)
    states = finder.states(start)
    spans = finder.usable_spans(start, start + HORIZON)
    notes = store.private_notes([fields["id"] for fields in finder.fields])
    empty = dict.fromkeys(PRIVATE_NOTE_FIELDS)
    features = [
        _feature(fields, lonlat, state, usable, notes.get(fields["id"], empty))
        for fields, lonlat, state, usable in zip(
            finder.fields, finder.lonlat.tolist(), states, spans, strict=True
        )
    ]
    document = {
        "type": "FeatureCollection",
        "generated_at": at.isoformat(),
        "city": finder.city.name,
        "timezone": finder.city.timezone,
        "features": features,
    }
    body = json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode()
    return Feed(body, f'"{hashlib.sha256(body).hexdigest()}"')


def _feature(
    fields: dict[str, Any],
    lonlat: list[float],
    state: DeviceState,
    usable: list[tuple[dt.datetime, dt.datetime]],
    notes: dict[str, str | None],
) -> dict[str, Any]:
    properties = {
        "id": fields["id"],
        "name": fields["name"],
        "location_text": fields["location_text"],
        "address": fields["address"],
        "access": fields["access"],
        "indoor": fields["indoor"],
        "level": fields["level"],
        "opening_hours": fields["opening_hours"],
        "phone": fields["phone"],
        "state": state.state,
        "state_text": state.text + (" (24 h)" if state.always_open else ""),
        "available": state.available,
        "maintenance": state.maintenance,
        "notice": state.notice,
        "next_change": _iso(state.next_change),
        "open_next_24h": [[opens.isoformat(), closes.isoformat()] for opens, closes in usable],
        "emergency": {name: notes[name] for name in PRIVATE_NOTE_FIELDS},
    }
    return {
        "type": "Feature",
        "id": fields["id"],
        "geometry": {"type": "Point", "coordinates": lonlat},
        "properties": properties,
    }


def _iso(instant: dt.datetime | None) -> str | None:
    return instant.isoformat() if instant is not None else None
