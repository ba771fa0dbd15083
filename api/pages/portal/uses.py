"""Reporting a use of a device from the portal (and, with it, new pads)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, Response
from pydantic import ValidationError

from api import web
from api.deps import CityDep, ClockDep, FindersDep, StoreDep, app_clock
from api.errors import translate_validation_error
from api.pages.portal.common import (
    done,
    entity_and_device,
    page,
    posted_about_device,
)
from api.schemas import UseCreate
from geo.city import CityProfile
from geo.clock import city_instant, local_now
from geo.errors import CardiomapaError, LocalTimeError
from geo.io.store import Store
from geo.services import registry
from geo.services.tokens import Principal

router = APIRouter(prefix="/entidades", include_in_schema=False)

SEX_OPTIONS = [
    ("", "No consta"),
    ("female", "Mujer"),
    ("male", "Hombre"),
    ("unknown", "No se sabe"),
]
YES_NO = [("", "No consta"), ("true", "Sí"), ("false", "No")]
USE_BOOLEANS = (
    "emergency_called", "shock_delivered", "circulation_recovered", "transferred_to_hospital",
    "rescuer_trained",
)  # fmt: skip


USE_LABELS = {
    "used_at": "Fecha y hora del uso", "people_attended": "Personas atendidas",
    "shocks": "Descargas", "patient_age_years": "Edad", "patient_sex": "Sexo", "notes": "Notas",
    "pads_replaced": "Parches", "pads_expiry": "Caducidad de los parches nuevos",
}  # fmt: skip


def _use_page(
    request: Request, store: Store, city: CityProfile, principal: Principal,
    device: dict[str, Any], *, values: dict[str, str], errors: dict[str, str] | None = None,
    status_code: int = 200,
) -> HTMLResponse:  # fmt: skip
    return page(
        "portal/use_form.html.j2", request=request, store=store, city=city,
        principal=principal, status_code=status_code, title=f"Comunicar un uso: {device['name']}",
        device=device, values=values, errors=errors or {}, yes_no=YES_NO, sex_options=SEX_OPTIONS,
    )  # fmt: skip


@router.get("/desfibriladores/{device_id}/uso", response_class=HTMLResponse)
async def new_use(
    device_id: str, request: Request, store: StoreDep, city: CityDep, clock: ClockDep
) -> HTMLResponse:
    found = await entity_and_device(request, store, city, device_id)
    if isinstance(found, HTMLResponse):
        return found
    principal, device = found
    now = local_now(clock, city.timezone).replace(second=0, microsecond=0)
    values = {"used_at": now.strftime("%Y-%m-%dT%H:%M"), "people_attended": "1"}
    return _use_page(request, store, city, principal, device, values=values)


@router.post("/desfibriladores/{device_id}/uso", response_class=HTMLResponse)
async def save_use(
    device_id: str, request: Request, store: StoreDep, city: CityDep, finders: FindersDep
) -> Response:
    posted = await posted_about_device(request, store, city, device_id)
    if isinstance(posted, HTMLResponse):
        return posted
    principal, form, device = posted
    raw: dict[str, Any] = {}
    for name in ("people_attended", "shocks", "patient_age_years", "patient_sex", "notes",
                 "pads_expiry"):  # fmt: skip
        if form.get(name, "").strip():
            raw[name] = form[name].strip()
    for name in (*USE_BOOLEANS, "pads_replaced"):
        if form.get(name) in ("true", "false"):
            raw[name] = form[name] == "true"
    used_at = form.get("used_at", "").strip()
    if used_at:
        # The form gives local wall-clock time; the API's schema reads a zoneless time as UTC.
        try:
            local = dt.datetime.fromisoformat(used_at)
        except ValueError:
            raw["used_at"] = used_at  # the schema names what is wrong
        else:
            try:
                raw["used_at"] = city_instant(local, city.timezone, field="used_at").isoformat()
            except LocalTimeError as exc:  # the hour the clocks skip
                errors = {"used_at": f"{USE_LABELS['used_at']}: {exc}"}
                return _use_page(request, store, city, principal, device, values=form,
                                 errors=errors, status_code=422)  # fmt: skip
            except OverflowError:  # year 1 or 9999 with an offset: the schema refuses the year
                raw["used_at"] = used_at
    try:
        values = UseCreate.model_validate(raw)
    except ValidationError as exc:
        errors = {
            problem.field or "": f"{USE_LABELS.get(problem.field or '', 'Uso')}: {problem.message}"
            for problem in translate_validation_error(exc.errors())
        }
        return _use_page(request, store, city, principal, device, values=form, errors=errors,
                         status_code=422)  # fmt: skip
    now = app_clock(request).now()
    try:
        await run_in_threadpool(
            lambda: registry.record_use(
                store, city, principal, device_id, values=values.model_dump(), now=now
            )
        )
    except CardiomapaError as exc:
        errors = {
            name: f"{USE_LABELS[name]}: {message}" if name in USE_LABELS else message
            for name, message in web.field_errors(exc).items()
        }
        return _use_page(request, store, city, principal, device, values=form, errors=errors,
                         status_code=422)  # fmt: skip
    if values.pads_replaced:
        finders.invalidate()
        return done(f"/entidades/desfibriladores/{device_id}", "uso-parches")
    return done(f"/entidades/desfibriladores/{device_id}", "uso")
