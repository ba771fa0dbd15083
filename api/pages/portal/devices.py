"""«Mis desfibriladores»: an entity's devices with their moderation state, their state now and
their upkeep, and the view of one device its form shows."""

from __future__ import annotations

import datetime as dt
from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse

from api import web
from api.deps import CityDep, ClockDep, StoreDep
from api.pages.portal.common import entity_session, page
from geo.city import CityProfile
from geo.clock import Clock, local_now
from geo.core.availability import open_state
from geo.core.nearest import listed
from geo.io.store import Store, record_from_row
from geo.services import registry
from geo.services.tokens import Principal

router = APIRouter(prefix="/entidades", include_in_schema=False)
STATUS_TEXT = {
    "active": "En servicio",
    "out_of_service": "Fuera de servicio",
    "removed": "Retirado",
}
VERIFICATION_TEXT = {
    "pending": "Pendiente de verificación",
    "verified": "Verificado",
    "rejected": "Rechazado",
}
REASON_TEXT = {
    "battery_expiry": "batería",
    "pads_expiry": "parches",
    "unchecked": "revisión",
    "never_checked": "revisión",
}


@router.get("", response_class=HTMLResponse)
async def home(request: Request, store: StoreDep, city: CityDep, clock: ClockDep) -> HTMLResponse:
    """Mis desfibriladores (or the sign-in page)."""
    principal = await entity_session(request, store, city)
    if isinstance(principal, HTMLResponse):
        return principal
    devices = await run_in_threadpool(_my_devices, store, city, principal, clock)
    return page(
        "portal/home.html.j2", request=request, store=store, city=city, principal=principal,
        current="/entidades", title="Mis desfibriladores", devices=devices,
    )  # fmt: skip


# --- my devices -------------------------------------------------------------------------------


def _state_now(record: dict[str, Any], city: CityProfile, now: dt.datetime) -> tuple[str, str]:
    """(css class, words) for what a citizen would find ``now``."""
    if record["status"] != "active":
        return "closed", STATUS_TEXT[record["status"]]
    text = record.get("opening_hours")
    if not text:
        return "unknown", "Horario sin indicar"
    try:
        is_open, change = open_state(text, now, timezone=city.timezone, calendar=city.calendar)
    except ValueError:
        return "unknown", "Horario no válido"
    if is_open:
        until = f" (cierra {change:%d/%m %H:%M})" if change else " (24 h)"
        return "open", "Abierto ahora" + until
    return "closed", "Cerrado ahora" + (f" (abre {change:%d/%m %H:%M})" if change else "")


def _review_note(store: Store, device_id: str) -> str | None:
    items, _ = store.audit_entries(record_type="device", record_id=device_id, limit=20)
    for item in items:
        if item["action"] == "reject":
            after = item.get("after") or {}
            return str(after.get("review_note") or "") or None
    return None


def _upkeep(
    record: dict[str, Any], due: dict[str, Any] | None, today: dt.date
) -> list[dict[str, str]]:
    """The upkeep lines of one device, each with its urgency (``ok``, ``due``, ``overdue``)."""
    lines = []
    reasons = set(due["reasons"]) if due else set()
    for name, label in (("battery_expiry", "Batería"), ("pads_expiry", "Parches")):
        day = record.get(name)
        if not isinstance(day, dt.date):
            lines.append({"label": label, "text": "caducidad sin indicar", "level": "ok"})
            continue
        days = (day - today).days
        if days < 0:
            text, level = f"caducó el {web.spanish_date(day)} (hace {-days} días)", "overdue"
        elif name in reasons:
            text, level = f"caduca el {web.spanish_date(day)} (en {days} días)", "due"
        else:
            text, level = f"caduca el {web.spanish_date(day)}", "ok"
        lines.append({"label": label, "text": text, "level": level})
    checked = record.get("check_date")
    if "never_checked" in reasons:
        lines.append({"label": "Revisión", "text": "nunca revisado", "level": "overdue"})
    elif "unchecked" in reasons:
        text = f"sin revisar desde el {web.spanish_date(checked)}"
        lines.append({"label": "Revisión", "text": text, "level": "overdue"})
    else:
        text = f"revisado el {web.spanish_date(checked)}"
        lines.append({"label": "Revisión", "text": text, "level": "ok"})
    return lines


def _my_devices(
    store: Store, city: CityProfile, principal: Principal, clock: Clock
) -> list[dict[str, Any]]:
    frame = store.query_layer(
        "defibrillators", where={"operator_entity_id": [principal.entity_id]}, with_version=True
    )
    now = local_now(clock, city.timezone)
    today = now.date()
    due = registry.maintenance_due(frame, today=today)
    due_by_id = {row["id"]: row for row in due.to_dict("records")}
    devices = []
    for position in range(len(frame)):
        record = record_from_row(frame, position)
        state_class, state_text = _state_now(record, city, now)
        devices.append({
            **record,
            "verification_text": VERIFICATION_TEXT[record["verification"]],
            "status_text": STATUS_TEXT[record["status"]],
            "state_class": state_class,
            "state_text": state_text,
            "hours_words": web.hours_in_words(record.get("opening_hours"), city, today=today),
            "review_note": (
                _review_note(store, record["id"]) if record["verification"] == "rejected" else None
            ),
            "upkeep": _upkeep(record, due_by_id.get(record["id"]), today)
            if record["status"] != "removed" else [],
        })  # fmt: skip
    order = {"active": 0, "out_of_service": 1, "removed": 2}
    return sorted(devices, key=lambda d: (order[d["status"]], str(d["name"]).lower()))


def device_view(
    store: Store, city: CityProfile, clock: Clock, record: dict[str, Any]
) -> dict[str, Any]:
    now = local_now(clock, city.timezone)
    today = now.date()
    frame = store.query_layer("defibrillators", ids=[record["id"]])
    due = registry.maintenance_due(frame, today=today)
    state_class, state_text = _state_now(record, city, now)
    uses, _ = store.uses(device_id=record["id"], limit=20)
    return {
        # Its page (/dea/{id}) and the sheet for its cabinet exist while citizens are shown it.
        "public_page": bool(len(frame)) and bool(listed(frame)[0]),
        **record,
        "verification_text": VERIFICATION_TEXT[record["verification"]],
        "status_text": STATUS_TEXT[record["status"]],
        "state_class": state_class,
        "state_text": state_text,
        "hours_words": web.hours_in_words(record.get("opening_hours"), city, today=today),
        "review_note": _review_note(store, record["id"]),
        "upkeep": _upkeep(record, due.to_dict("records")[0] if len(due) else None, today),
        "uses": uses,
    }
