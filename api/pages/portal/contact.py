"""The entity's private contact (person, e-mail, phone), which only the city's staff see."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, Response

from api import web
from api.deps import CityDep, StoreDep
from api.pages.portal.common import checked_form, done, entity_session, forbidden_page, page
from geo.errors import CardiomapaError, ForbiddenError
from geo.services.contacts import validate_contact

router = APIRouter(prefix="/entidades", include_in_schema=False)


@router.get("/contacto", response_class=HTMLResponse)
async def contact(request: Request, store: StoreDep, city: CityDep) -> HTMLResponse:
    principal = await entity_session(request, store, city)
    if isinstance(principal, HTMLResponse):
        return principal
    assert principal.entity_id is not None
    stored = store.contact(principal.entity_id) or {}
    values = {name: stored.get(name) or "" for name in ("person", "email", "phone")}
    return page(
        "portal/contact.html.j2", request=request, store=store, city=city, principal=principal,
        current="/entidades/contacto", title="Datos de contacto", values=values, errors={},
    )  # fmt: skip


@router.post("/contacto", response_class=HTMLResponse)
async def save_contact(request: Request, store: StoreDep, city: CityDep) -> Response:
    principal = await entity_session(request, store, city)
    if isinstance(principal, HTMLResponse):
        return principal
    assert principal.entity_id is not None
    try:
        form = await checked_form(request)
    except ForbiddenError as exc:
        return forbidden_page(request, store, city, principal, exc)
    values = {name: form.get(name, "") for name in ("person", "email", "phone")}
    try:
        clean = validate_contact(values)
        await run_in_threadpool(
            lambda: store.set_contacts(
                [{"entity_id": principal.entity_id, **clean}], actor=principal.actor
            )
        )
    except CardiomapaError as exc:
        return page(
            "portal/contact.html.j2", request=request, store=store, city=city,
            principal=principal, current="/entidades/contacto", title="Datos de contacto",
            values=values, errors=web.field_errors(exc), status_code=422,
        )  # fmt: skip
    return done("/entidades/contacto", "contacto")
