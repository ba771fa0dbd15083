"""One device for the staff: its data, citizens' reports, whether it is in service and its
changes; out of service, back in service, or checked today."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from api.deps import city_today
from api.pages.desk import common
from api.pages.desk.moderation import device_view, with_placement
from api.pages.desk.reports import report_view
from geo.core.availability import DOWNGRADING_REPORTS
from geo.io.store import Store
from geo.services import registry

router = APIRouter(include_in_schema=False)


@router.get("/gestion/desfibriladores/{device_id:path}", response_class=HTMLResponse)
def device_page(request: Request, device_id: str) -> Response:
    """Ficha de un desfibrilador para el personal: datos, avisos, servicio y cambios."""
    desk = common.desk_session(request)
    return desk if isinstance(desk, HTMLResponse) else _device_page(request, desk, device_id)


#: Audit actions that change whether a device is in service, with what the desk says of them.
SERVICE_ACTIONS = {"out_of_service": "Fuera de servicio", "back_in_service": "Vuelta al servicio"}


def _last_service_change(store: Store, device_id: str) -> dict[str, Any] | None:
    """The newest out-of-service / back-in-service entry of a device: when, who, why."""
    entries, _ = store.audit_entries(record_type="device", record_id=device_id, limit=50)
    for entry in entries:
        if entry["action"] in SERVICE_ACTIONS:
            return {
                "what": SERVICE_ACTIONS[entry["action"]], "at": entry["at"],
                "actor": entry["actor"], "reason": (entry["after"] or {}).get("status_reason"),
            }  # fmt: skip
    return None


def _device_page(
    request: Request, desk: common.Desk, device_id: str, *, problem: str | None = None,
    status_code: int = 200, errors: Mapping[str, str] | None = None,
    values: Mapping[str, str] | None = None,
) -> HTMLResponse:  # fmt: skip
    store, city = common.store_of(request), common.city_of(request)
    record = store.device(device_id)
    if record is None:
        return common.render_page(request, desk, "desk/forbidden.html.j2", status_code=404,
                                  problem=f"No existe el desfibrilador {device_id!r}.",
                                  title="No encontrado")  # fmt: skip
    view = device_view(store, city, record, common.entities_by_id(store), today=city_today(request))
    if record.get("verification") == "pending":
        with_placement(store, [view])
    reports, _ = store.reports(device_id=device_id, limit=20)
    flagged = [report_view(r) for r in reports
               if r["status"] == "pending" and r["kind"] in DOWNGRADING_REPORTS]  # fmt: skip
    return common.render_page(
        request, desk, "desk/device.html.j2", title=str(record["name"]), device=view,
        status_code=status_code, problem=problem, errors=errors or {}, values=values or {},
        reports=[report_view(r) for r in reports], flagged=flagged,
        service=_last_service_change(store, device_id),
        audit_url="/gestion/auditoria?" + urlencode({"tipo": "device", "registro": device_id}),
    )  # fmt: skip


def _device_action(
    request: Request, device_id: str, run: Callable[[common.Desk, str], str]
) -> common.Action:
    """A form on the device page: ``run(desk, reason)`` writes and returns the flash."""

    def action(desk: common.Desk, form: dict[str, str]) -> Response:
        flash = run(desk, form.get("motivo", ""))
        request.app.state.finders.invalidate()
        path = quote(device_id, safe="")
        return common.redirect(f"/gestion/desfibriladores/{path}", flash)

    return action


async def _device_post(
    request: Request, device_id: str, run: Callable[[common.Desk, str], str]
) -> Response:
    values: dict[str, str] = {}

    def on_error(
        request: Request, desk: common.Desk, *, problem: str, status_code: int
    ) -> HTMLResponse:
        errors = {"motivo": problem} if status_code == 422 else {}
        return _device_page(request, desk, device_id, problem=problem, status_code=status_code,
                            errors=errors, values=values)  # fmt: skip

    def remembered(desk: common.Desk, reason: str) -> str:
        values["motivo"] = reason
        return run(desk, reason)

    return await common.post(
        request, _device_action(request, device_id, remembered), on_error=on_error
    )


@router.post("/gestion/desfibriladores/{device_id:path}/fuera-de-servicio")
async def take_out_of_service(request: Request, device_id: str) -> Response:
    """Deja un desfibrilador fuera de servicio, con un motivo (queda en la auditoría)."""

    def run(desk: common.Desk, reason: str) -> str:
        record = registry.set_in_service(common.store_of(request), desk.principal, device_id,
                                         in_service=False, reason=reason,
                                         today=city_today(request))  # fmt: skip
        return (
            f"«{record['name']}» queda fuera de servicio: el mapa ciudadano lo muestra así y "
            "ya no lo cuenta como disponible."
        )

    return await _device_post(request, device_id, run)


@router.post("/gestion/desfibriladores/{device_id:path}/en-servicio")
async def back_in_service(request: Request, device_id: str) -> Response:
    """Vuelve a poner en servicio un desfibrilador, con un motivo (queda en la auditoría)."""

    def run(desk: common.Desk, reason: str) -> str:
        record = registry.set_in_service(common.store_of(request), desk.principal, device_id,
                                         in_service=True, reason=reason,
                                         today=city_today(request))  # fmt: skip
        return f"«{record['name']}» vuelve a estar en servicio."

    return await _device_post(request, device_id, run)


@router.post("/gestion/desfibriladores/{device_id:path}/comprobado")
async def confirm_device(request: Request, device_id: str) -> Response:
    """Anota que el equipo está y funciona (revisado hoy); resuelve sus avisos de falta o avería."""

    def run(desk: common.Desk, reason: str) -> str:
        record = registry.confirm_device(common.store_of(request), desk.principal, device_id,
                                         today=city_today(request))  # fmt: skip
        return f"«{record['name']}»: revisión anotada con fecha de hoy."

    return await _device_post(request, device_id, run)
