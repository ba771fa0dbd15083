"""Upkeep: batteries and pads that expire, devices not checked for too long, by entity."""

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
from geo.services import registry

router = APIRouter(include_in_schema=False)


def _reasons(
    row: Mapping[str, Any], *, today: dt.date, unchecked_days: int
) -> list[dict[str, Any]]:
    words = []
    for name, what in (("battery_expiry", "La batería"), ("pads_expiry", "Los parches")):
        if name in row["reasons"]:
            day: dt.date = row[name]
            overdue = day < today
            verb = ("caducó" if name == "battery_expiry" else "caducaron") if overdue else (
                "caduca" if name == "battery_expiry" else "caducan")  # fmt: skip
            days = abs((day - today).days)
            when = f"hace {days} días" if overdue else ("hoy" if days == 0 else f"en {days} días")
            text = f"{what} {verb} el {web.spanish_date(day)} ({when})"
            words.append({"text": text, "overdue": overdue})
    if "never_checked" in row["reasons"]:
        words.append({"text": "Nunca revisado: no consta ninguna fecha de revisión",
                      "overdue": False})  # fmt: skip
    if "unchecked" in row["reasons"]:
        checked = row["check_date"]
        words.append({
            "text": f"Sin revisar desde el {web.spanish_date(checked)} "
                    f"({(today - checked).days} días; se pide cada {unchecked_days})",
            "overdue": False,
        })  # fmt: skip
    return words


@router.get("/gestion/mantenimiento", response_class=HTMLResponse)
def upkeep_page(request: Request) -> Response:
    """Mantenimiento: baterías y parches que caducan, equipos sin revisar, por entidad."""
    desk = common.desk_session(request)
    if isinstance(desk, HTMLResponse):
        return desk
    store, today = common.store_of(request), city_today(request)
    within = request.query_params.get("dias", "30")
    within_days = int(within) if within.isdigit() and int(within) <= 3650 else 30
    devices = store.query_layer("defibrillators", where={"verification": ["pending", "verified"]})
    due = registry.maintenance_due(
        devices, today=today, within_days=within_days, unchecked_days=registry.UNCHECKED_DAYS
    )
    entities = common.entities_by_id(store)
    contacts = store.contacts()
    groups: dict[str, dict[str, Any]] = {}
    for row in due.to_dict("records"):
        entity_id = row["operator_entity_id"] if isinstance(row["operator_entity_id"], str) else ""
        group = groups.setdefault(entity_id, {
            "entity_id": entity_id,
            "name": entities[entity_id]["name"] if entity_id in entities else None,
            "contact": contacts.get(entity_id), "items": [],
        })  # fmt: skip
        reasons = _reasons(row, today=today, unchecked_days=registry.UNCHECKED_DAYS)
        group["items"].append({
            "id": row["id"], "name": row["name"], "reasons": reasons,
            "overdue": any(r["overdue"] for r in reasons),
            "url": f"/gestion/desfibriladores/{quote(str(row['id']), safe='')}",
        })  # fmt: skip
    ordered = sorted(
        groups.values(),
        key=lambda g: (not any(i["overdue"] for i in g["items"]), g["name"] is None,
                       str(g["name"] or "")),
    )  # fmt: skip
    return common.render_page(
        request, desk, "desk/upkeep.html.j2", current="upkeep", title="Mantenimiento",
        groups=ordered, today=today, within_days=within_days, count=len(due),
        overdue=sum(i["overdue"] for g in ordered for i in g["items"]),
    )  # fmt: skip
