"""The moderation queue: devices waiting to be verified, where they are (and where they were
before a move), verified or rejected with a reason."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from api import web
from api.deps import city_today
from api.pages.desk import common
from geo.city import CityProfile
from geo.core.placement import distance_m
from geo.core.text import in_words
from geo.errors import InputError
from geo.io.store import Store, record_from_row
from geo.render.maps import ACCESS_TEXT
from geo.services import registry
from geo.services.placement import placement_checks

router = APIRouter(include_in_schema=False)

STATUS_TEXT = {
    "active": "en servicio",
    "out_of_service": "fuera de servicio",
    "removed": "retirado",
}


def previous_position(store: Store, device: Mapping[str, Any]) -> dict[str, Any] | None:
    """Where a device was before its last move, from the audit log.

    The newest ``update`` entry of the device whose ``before.geometry`` differs from the
    current position; ``None`` if it never moved. ``reviewed`` says whether staff verified the
    device at or after that move (a move already checked is not news to the moderator).
    """
    here = common.coordinates(device["geometry"])
    verified_since = False
    offset = 0
    while True:
        entries, matched = store.audit_entries(
            record_type="device", record_id=str(device["id"]), limit=100, offset=offset
        )
        for entry in entries:
            before = entry.get("before") or {}
            if entry["action"] == "verify":
                verified_since = True
            if entry["action"] != "update":
                continue
            # a staff edit keeps the device verified; an entity's move makes it pending
            verified_now = (entry.get("after") or {}).get("verification") == "verified"
            then = common.coordinates(before.get("geometry"))
            if then is None or here is None:
                verified_since = verified_since or verified_now
                continue
            if abs(then[0] - here[0]) > 1e-9 or abs(then[1] - here[1]) > 1e-9:
                return {
                    "lon": then[0], "lat": then[1],
                    "distance_m": round(distance_m(then[0], then[1], here[0], here[1])),
                    "was_verified": before.get("verification") == "verified",
                    "at": entry["at"], "actor": entry["actor"],
                    "reviewed": verified_since or verified_now,
                }  # fmt: skip
            verified_since = verified_since or verified_now
        offset += len(entries)
        if not entries or offset >= matched:
            return None


def device_view(
    store: Store, city: CityProfile, record: dict[str, Any], entities: Mapping[str, Any],
    *, today: dt.date, with_move: bool = True,
) -> dict[str, Any]:  # fmt: skip
    entity = entities.get(str(record.get("operator_entity_id") or ""))
    here = common.coordinates(record["geometry"])
    return {
        "record": record,
        "path": quote(str(record["id"]), safe=""),
        "entity_name": entity["name"] if entity else None,
        "access_text": ACCESS_TEXT.get(str(record.get("access")), str(record.get("access"))),
        "hours_text": web.hours_in_words(record.get("opening_hours"), city, today=today),
        "verification_text": in_words("verification", record["verification"]),
        "status_text": STATUS_TEXT.get(str(record.get("status")), str(record.get("status"))),
        "lon": here[0] if here else None,
        "lat": here[1] if here else None,
        "moved": previous_position(store, record) if with_move else None,
        "placement": None,  # see with_placement
    }


def with_placement(store: Store, views: list[dict[str, Any]]) -> None:
    """Add each view's placement check (far from its address, long move, near another device)."""
    moves = {  # only a move staff have not verified since is news
        str(view["record"]["id"]): (
            view["moved"]["distance_m"] if view["moved"] and not view["moved"]["reviewed"] else None
        )
        for view in views
    }
    checks = placement_checks(store, [view["record"] for view in views], moves_m=moves)
    for view in views:
        view["placement"] = checks.get(str(view["record"]["id"]))


def _queue(
    request: Request, desk: common.Desk, *, problem: str | None = None, status_code: int = 200
) -> HTMLResponse:
    store, city = common.store_of(request), common.city_of(request)
    frame = store.query_layer(
        "defibrillators", where={"verification": ["pending"]}, with_version=True
    )
    entities = common.entities_by_id(store)
    today = city_today(request)
    devices = [
        device_view(store, city, record_from_row(frame, i), entities, today=today)
        for i in range(len(frame))
    ]
    with_placement(store, devices)
    points = [
        {
            "n": n, "name": view["record"]["name"], "lon": view["lon"], "lat": view["lat"],
            "old": [view["moved"]["lon"], view["moved"]["lat"]] if view["moved"] else None,
        }
        for n, view in enumerate(devices, start=1)
        if view["lon"] is not None
    ]  # fmt: skip
    settings = request.app.state.settings
    return common.render_page(
        request, desk, "desk/queue.html.j2", current="queue", status_code=status_code,
        problem=problem, title="Moderación", devices=devices, points=points,
        tile_url=settings.tile_url or "", tile_attribution=settings.tile_attribution or "",
    )  # fmt: skip


@router.get("/gestion", response_class=HTMLResponse)
def queue_page(request: Request) -> Response:
    """Cola de moderación: desfibriladores pendientes de verificar."""
    desk = common.desk_session(request)
    return desk if isinstance(desk, HTMLResponse) else _queue(request, desk)


def _review(request: Request, device_id: str, decision: str) -> common.Action:
    def action(desk: common.Desk, form: dict[str, str]) -> Response:
        note = form.get("nota", "").strip() or None
        if decision == "rejected" and note is None:
            msg = "Escriba el motivo del rechazo: la entidad lo verá para corregir el registro."
            raise InputError(msg, code="missing_field", field="nota")
        store = common.store_of(request)
        record = registry.review_device(
            store, desk.principal, device_id, decision=decision, note=note
        )
        request.app.state.finders.invalidate()
        if decision == "verified":
            flash = f"«{record['name']}» verificado: ya aparece en el mapa ciudadano."
        else:
            flash = f"«{record['name']}» rechazado. El motivo queda en el registro de cambios."
        return common.redirect("/gestion", flash)

    return action


@router.post("/gestion/desfibriladores/{device_id:path}/verificar")
async def verify_device(request: Request, device_id: str) -> Response:
    """Verifica un desfibrilador pendiente."""
    return await common.post(request, _review(request, device_id, "verified"), on_error=_queue)


@router.post("/gestion/desfibriladores/{device_id:path}/rechazar")
async def reject_device(request: Request, device_id: str) -> Response:
    """Rechaza un desfibrilador pendiente con un motivo."""
    return await common.post(request, _review(request, device_id, "rejected"), on_error=_queue)
