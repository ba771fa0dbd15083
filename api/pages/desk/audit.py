"""The audit log: who changed what, when, and what it was before."""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from api.pages.desk import common
from geo.clock import local_text
from geo.core.text import WORDS
from geo.render.maps import ACCESS_TEXT
from geo.services.registry import REPORT_KIND_TEXT, STATUS_TEXT

router = APIRouter(include_in_schema=False)

AUDIT_PAGE_SIZE = 50
#: An instant as the audit log's JSON keeps it (ISO 8601, UTC when it has no offset).
_INSTANT = re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})?")
RECORD_TYPE_TEXT = {
    "device": "Desfibrilador", "report": "Aviso ciudadano", "use": "Uso comunicado",
    "token": "Token", "training": "Formación", "contact": "Contacto de entidad",
    "invitation": "Invitación", "entity": "Acceso de entidad", "reminder": "Recordatorio",
    "layers": "Capas", "layer": "Capa", "arrests": "Paradas cardiacas",
}  # fmt: skip
ACTION_TEXT = {
    "create": "alta", "update": "cambio", "insert": "alta", "delete": "baja",
    "verify": "verificación", "reject": "rechazo", "review": "revisión", "revoke": "revocación",
    "revoke_access": "revocación de acceso", "redeem": "uso de invitación", "send": "envío",
    "import": "importación", "out_of_service": "fuera de servicio",
    "back_in_service": "vuelta al servicio", "check": "revisión del equipo",
    "load": "carga", "replace": "sustitución", "append": "añadido",
}  # fmt: skip
FIELD_TEXT = {
    "name": "nombre", "location_text": "ubicación", "address": "dirección", "access": "acceso",
    "opening_hours": "horario", "indoor": "interior", "level": "planta",
    "operator_entity_id": "entidad", "phone": "teléfono", "status": "estado",
    "verification": "verificación", "installed_on": "instalado", "removed_on": "retirado",
    "check_date": "última revisión", "battery_expiry": "caducidad batería",
    "pads_expiry": "caducidad parches", "is_mobile": "móvil", "source": "fuente",
    "geometry": "posición", "review_note": "nota de revisión", "version": "versión",
    "person": "persona", "email": "correo", "status_text": "estado", "message": "mensaje",
    "kind": "tipo", "reviewed_by": "revisado por", "reviewed_at": "revisado el",
    "status_reason": "motivo",
    # access: tokens, invitations, contacts
    "id": "identificador", "role": "rol", "entity_id": "entidad", "label": "etiqueta",
    "created_at": "creado el", "created_by": "creado por", "expires_at": "caduca el",
    "revoked_at": "revocado el", "last_used_at": "último uso", "used_at": "usado el",
    "token_id": "token", "tokens": "tokens", "invitations": "invitaciones",
    "updated_at": "actualizado el", "updated_by": "actualizado por",
    # reminders and citizens' reports
    "device_id": "desfibrilador", "reason": "motivo", "recipient": "destinatario",
    "sent_at": "enviado el", "contact": "contacto", "lon": "longitud", "lat": "latitud",
    # uses
    "people_attended": "personas atendidas", "emergency_called": "llamada al 112",
    "shock_delivered": "descarga aplicada", "shocks": "descargas",
    "circulation_recovered": "recuperó el pulso", "transferred_to_hospital": "traslado al hospital",
    "rescuer_trained": "rescatador formado", "patient_sex": "sexo del paciente",
    "patient_age_years": "edad del paciente", "notes": "notas", "reported_by": "comunicado por",
    "reported_at": "comunicado el", "pads_replaced": "parches cambiados",
    # training
    "held_on": "fecha", "place": "lugar", "people_trained": "personas formadas",
    "trainer": "formador", "source_id": "identificador en la fuente",
    # private notes
    "cabinet_code": "código del armario", "key_holder": "quién tiene la llave",
    # loads of layers and registers
    "written": "registros escritos", "rows": "registros", "added": "añadidos",
    "sources": "fuentes", "devices": "desfibriladores conservados",
    "skipped": "filas omitidas", "entities": "entidades conservadas", "tags": "etiquetas OSM",
}  # fmt: skip


#: Codes a field's value can hold → the words shown (a code not listed shows as itself).
VALUE_TEXT: dict[str, Mapping[str, str]] = {
    "status": {**STATUS_TEXT, **WORDS["report_status"]},
    "access": ACCESS_TEXT,
    "verification": WORDS["verification"],
    "kind": REPORT_KIND_TEXT,
    "role": common.ROLE_TEXT,
}


def _plain_value(value: Any, timezone: str, field: str = "") -> str:
    if value is None or value == "":
        return "—"
    if isinstance(value, str) and value in VALUE_TEXT.get(field, {}):
        return VALUE_TEXT[field][value]
    if isinstance(value, str) and _INSTANT.fullmatch(value):
        return local_text(dt.datetime.fromisoformat(value.replace("Z", "+00:00")), timezone)
    point = common.coordinates(value) if isinstance(value, Mapping) else None
    if point is not None:
        return f"{point[1]:.6f}, {point[0]:.6f} (lat, lon)"
    if isinstance(value, bool):
        return "sí" if value else "no"
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    return str(value)


def audit_changes(
    before: Mapping[str, Any] | None, after: Mapping[str, Any] | None, *, timezone: str
) -> list[dict[str, str]]:
    """The fields an audit entry changed: ``field``, ``label``, ``before``, ``after`` (text;
    an instant in the city's local time)."""
    old, new = dict(before or {}), dict(after or {})
    rows = []
    for name in list(dict.fromkeys([*old, *new])):
        if before is not None and after is not None and old.get(name) == new.get(name):
            continue
        if before is None and new.get(name) in (None, "", {}, []):
            continue
        rows.append({
            "field": name, "label": FIELD_TEXT.get(name, name),
            "before": _plain_value(old.get(name), timezone, name) if before is not None else "",
            "after": _plain_value(new.get(name), timezone, name) if after is not None else "",
        })  # fmt: skip
    return rows


@router.get("/gestion/auditoria", response_class=HTMLResponse)
def audit_page(request: Request) -> Response:
    """Registro de cambios: quién, cuándo, qué y cómo era antes."""
    desk = common.desk_session(request)
    if isinstance(desk, HTMLResponse):
        return desk
    kind = request.query_params.get("tipo", "")
    if kind not in RECORD_TYPE_TEXT:
        kind = ""
    record_id = request.query_params.get("registro", "").strip()[:200]
    page = common.page_number(request.query_params.get("pagina"))
    entries, matched = common.store_of(request).audit_entries(
        record_type=kind or None, record_id=record_id or None, limit=AUDIT_PAGE_SIZE,
        offset=(page - 1) * AUDIT_PAGE_SIZE,
    )  # fmt: skip
    zone = common.city_of(request).timezone
    views = [
        {
            **entry,
            "type_text": RECORD_TYPE_TEXT.get(entry["record_type"], entry["record_type"]),
            "action_text": ACTION_TEXT.get(entry["action"], entry["action"]),
            "changes": audit_changes(entry["before"], entry["after"], timezone=zone),
            "link": _record_link(entry["record_type"], entry["record_id"]),
        }
        for entry in entries
    ]
    return common.render_page(
        request, desk, "desk/audit.html.j2", current="audit", title="Registro de cambios",
        entries=views, matched=matched, kind=kind, record_id=record_id,
        kinds=[("", "Todos"), *RECORD_TYPE_TEXT.items()],
        pager=common.pager("/gestion/auditoria", {"tipo": kind, "registro": record_id}, page,
                           matched, AUDIT_PAGE_SIZE),
    )  # fmt: skip


def _record_link(record_type: str, record_id: str) -> str | None:
    if record_type == "device":
        return f"/gestion/desfibriladores/{quote(record_id, safe='')}"
    return None
