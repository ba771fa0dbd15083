"""Citizens' reports: pending, resolved or dismissed; resolving one can take its device out of
service."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from api.deps import city_today
from api.pages.desk import common
from geo.core.availability import DOWNGRADING_REPORTS
from geo.core.text import in_words
from geo.errors import InputError
from geo.io.store import REVIEW_STATUS
from geo.services import registry

router = APIRouter(include_in_schema=False)

REPORTS_PAGE_SIZE = 50
KIND_TEXT = registry.REPORT_KIND_TEXT
REPORT_STATUS_TEXT = {"pending": "Pendientes", "accepted": "Resueltos", "rejected": "Descartados"}


def report_view(report: Mapping[str, Any]) -> dict[str, Any]:
    return {
        **report,
        "kind_text": KIND_TEXT.get(str(report["kind"]), str(report["kind"])),
        "status_text": in_words("report_status", report["status"]),
    }


def _reports(
    request: Request, desk: common.Desk, *, problem: str | None = None, status_code: int = 200
) -> HTMLResponse:
    store = common.store_of(request)
    status = request.query_params.get("estado", "pending")
    if status not in REVIEW_STATUS:
        status = "pending"
    page = common.page_number(request.query_params.get("pagina"))
    items, matched = store.reports(
        status=[status], limit=REPORTS_PAGE_SIZE, offset=(page - 1) * REPORTS_PAGE_SIZE
    )
    names, statuses = {}, {}
    ids = sorted({str(item["device_id"]) for item in items})
    if ids:
        frame = store.query_layer("defibrillators", ids=ids)
        names = dict(zip(frame["id"], frame["name"], strict=True))
        statuses = dict(zip(frame["id"], frame["status"], strict=True))
    views = [
        {**report_view(item), "device_name": names.get(item["device_id"]),
         "device_path": quote(str(item["device_id"]), safe=""),
         "can_take_out": item["kind"] in DOWNGRADING_REPORTS
         and statuses.get(item["device_id"]) == "active"}
        for item in items
    ]  # fmt: skip
    return common.render_page(
        request, desk, "desk/reports.html.j2", current="reports", status_code=status_code,
        problem=problem, title="Avisos ciudadanos", reports=views, status=status,
        statuses=REPORT_STATUS_TEXT, matched=matched,
        pager=common.pager("/gestion/avisos", {"estado": status}, page, matched, REPORTS_PAGE_SIZE),
    )  # fmt: skip


@router.get("/gestion/avisos", response_class=HTMLResponse)
def reports_page(request: Request) -> Response:
    """Avisos de la ciudadanía: pendientes, resueltos o descartados."""
    desk = common.desk_session(request)
    return desk if isinstance(desk, HTMLResponse) else _reports(request, desk)


@router.post("/gestion/avisos/{report_id}/revisar")
async def review_report(request: Request, report_id: int) -> Response:
    """Resuelve (acepta) o descarta un aviso, con una nota."""

    def action(desk: common.Desk, form: dict[str, str]) -> Response:
        decision = form.get("decision", "")
        if decision not in ("accepted", "rejected"):
            msg = "Elija «Resolver» o «Descartar»."
            raise InputError(msg, code="invalid_choice", field="decision")
        note = form.get("nota", "").strip() or None
        out = decision == "accepted" and form.get("fuera_de_servicio") == "si"
        store = common.store_of(request)
        report = store.report(report_id)
        device = store.device(str(report["device_id"])) if report else None
        # Only a device in service can be taken out; otherwise resolving just resolves.
        out = out and device is not None and device["status"] == "active"
        registry.review_report(store, desk.principal, report_id, decision=decision, note=note,
                               out_of_service=out, today=city_today(request))  # fmt: skip
        request.app.state.finders.invalidate()
        done = in_words("report_status", decision)
        flash = f"Aviso {report_id} {done}."
        if out and device is not None:
            flash += f" «{device['name']}» queda fuera de servicio."
        return common.redirect("/gestion/avisos", flash)

    return await common.post(request, action, on_error=_reports)
