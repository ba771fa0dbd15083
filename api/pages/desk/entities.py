"""The entities' access (administrators only): their private contact, live tokens, invitation
links, and revoking all of an entity's access at once."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from api import web
from api.pages.desk import common
from geo.errors import CardiomapaError, ForbiddenError, InputError, NotFoundError
from geo.io.store import CONTACT_FIELDS, Store
from geo.services.contacts import validate_contact
from geo.services.tokens import issue_invitation

router = APIRouter(include_in_schema=False)

ENTITY_KIND_TEXT = {
    "residence": "residencia", "day_centre": "centro de día", "association": "asociación",
    "foundation": "fundación", "clinic": "clínica", "health_centre": "centro de salud",
    "hospital": "hospital", "pharmacy": "farmacia", "school": "centro educativo",
    "sports_centre": "centro deportivo", "public_building": "edificio público",
    "social_centre": "centro social", "company": "empresa", "other": "otra",
}  # fmt: skip


def _entity_views(store: Store) -> list[dict[str, Any]]:
    now = store.utcnow()
    contacts = store.contacts()
    invitations = store.invitations()
    views = []
    for entity_id, entity in common.entities_by_id(store).items():
        tokens = store.entity_tokens(entity_id)
        live = [
            t for t in tokens
            if t.revoked_at is None and (t.expires_at is None or t.expires_at > now)
        ]  # fmt: skip
        used = [t.last_used_at for t in tokens if t.last_used_at is not None]
        open_invitations = [
            i for i in invitations
            if i.entity_id == entity_id and i.used_at is None and i.revoked_at is None
            and i.expires_at > now
        ]  # fmt: skip
        views.append({
            "id": entity_id, "name": entity["name"],
            "kind_text": ENTITY_KIND_TEXT.get(str(entity["kind"]), str(entity["kind"])),
            "contact": contacts.get(entity_id) or {}, "live_tokens": len(live),
            "last_used_at": max(used) if used else None, "invitations": open_invitations,
            "path": quote(entity_id, safe=""),
        })  # fmt: skip
    return sorted(views, key=lambda v: str(v["name"]).casefold())


def _entities_page(
    request: Request, desk: common.Desk, *, problem: str | None = None, status_code: int = 200,
    errors: Mapping[str, str] | None = None, editing: str | None = None,
    values: Mapping[str, str] | None = None,
) -> HTMLResponse:  # fmt: skip
    refused = common.admin_only(request, desk, "entities")
    if refused is not None:
        return refused
    return common.render_page(
        request, desk, "desk/entities.html.j2", current="entities", status_code=status_code,
        problem=problem, title="Acceso de las entidades",
        entities=_entity_views(common.store_of(request)),
        errors=errors or {}, editing=editing, values=values or {},
    )  # fmt: skip


@router.get("/gestion/entidades", response_class=HTMLResponse)
def entities_page(request: Request) -> Response:
    """Entidades: contacto, accesos vivos, invitaciones (solo administración)."""
    desk = common.desk_session(request)
    return desk if isinstance(desk, HTMLResponse) else _entities_page(request, desk)


def _require_admin(desk: common.Desk) -> None:
    if not desk.is_admin:
        msg = "Solo la administración gestiona el acceso y el contacto de las entidades."
        raise ForbiddenError(msg)


def _require_entity(store: Store, entity_id: str) -> dict[str, Any]:
    entity = common.entities_by_id(store).get(entity_id)
    if entity is None:
        msg = f"No existe la entidad {entity_id!r} en la capa de entidades."
        raise NotFoundError(msg)
    return entity


@router.post("/gestion/entidades/{entity_id:path}/contacto")
async def edit_contact(request: Request, entity_id: str) -> Response:
    """Guarda el contacto privado de una entidad."""
    form: dict[str, str] = {}

    def action(desk: common.Desk, sent: dict[str, str]) -> Response:
        form.update(sent)
        _require_admin(desk)
        store = common.store_of(request)
        entity = _require_entity(store, entity_id)
        try:
            values = validate_contact({name: sent.get(name, "") for name in CONTACT_FIELDS})
        except CardiomapaError as exc:
            form["__field"] = next(iter(web.field_errors(exc)), "")
            raise
        result = store.set_contacts([{"entity_id": entity_id, **values}],
                                    actor=desk.principal.actor)  # fmt: skip
        done = "sin cambios" if result.get(entity_id) == "unchanged" else "guardado"
        return common.redirect("/gestion/entidades", f"Contacto de «{entity['name']}»: {done}.")

    def on_error(
        request: Request, desk: common.Desk, *, problem: str, status_code: int
    ) -> HTMLResponse:
        field = None
        if status_code == 422:
            field = form.get("__field") or _field_of(problem, form)
        errors = {field: problem} if field else {}
        return _entities_page(request, desk, problem=problem, status_code=status_code,
                              errors=errors, editing=entity_id, values=form)  # fmt: skip

    return await common.post(request, action, on_error=on_error)


def _field_of(problem: str, form: Mapping[str, str]) -> str | None:
    """Which contact field a validation message is about (by the field's name in it)."""
    for name, words in (("email", ("correo", "email")), ("phone", ("teléfono", "phone")),
                        ("person", ("persona", "person"))):  # fmt: skip
        if any(word in problem.casefold() for word in words):
            return name
    return None


@router.post("/gestion/entidades/{entity_id:path}/invitacion")
async def create_invitation(request: Request, entity_id: str) -> Response:
    """Crea un enlace de invitación de un solo uso y lo muestra una única vez."""

    def action(desk: common.Desk, form: dict[str, str]) -> Response:
        _require_admin(desk)
        store = common.store_of(request)
        entity = _require_entity(store, entity_id)
        invitation = issue_invitation(store, entity_id=entity_id, actor=desk.principal.actor)
        return common.render_page(
            request, desk, "desk/invitation.html.j2", current="entities",
            title="Invitación creada", entity=entity, invitation=invitation.record,
            link=invitation.url(str(request.base_url)),
        )  # fmt: skip

    return await common.post(request, action, on_error=_entities_page)


@router.post("/gestion/entidades/{entity_id:path}/revocar")
async def revoke_access(request: Request, entity_id: str) -> Response:
    """Revoca a la vez todos los tokens e invitaciones abiertas de una entidad."""

    def action(desk: common.Desk, form: dict[str, str]) -> Response:
        _require_admin(desk)
        store = common.store_of(request)
        entity = _require_entity(store, entity_id)
        if form.get("confirmar") != "si":
            msg = (
                f"Para revocar el acceso de «{entity['name']}» marque la casilla de "
                "confirmación: sus sesiones se cerrarán al momento."
            )
            raise InputError(msg, code="missing_field", field="confirmar")
        tokens, invitations = store.revoke_entity_access(entity_id, actor=desk.principal.actor)
        flash = (
            f"Acceso de «{entity['name']}» revocado: {tokens} token(s) y {invitations} "
            "invitación(es) anulados."
        )
        return common.redirect("/gestion/entidades", flash)

    return await common.post(request, action, on_error=_entities_page)
