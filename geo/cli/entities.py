"""The entities: their access to the portal (``entity``), their private ``contacts`` and the
maintenance ``reminders`` e-mailed to them.
"""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import geopandas as gpd
import typer
from rich.table import Table

from geo.cli.common import (
    DryRunOption,
    _clock,
    _day,
    _emit,
    _fail,
    _on_store,
    _open_store,
    _settings,
    all_or_nothing,
    console,
    errors,
    local_time,
)
from geo.errors import CardiomapaError, LayerValidationError, NotFoundError
from geo.io.serve_record import link_base
from geo.io.store import InvitationRecord, Store, TokenRecord, utcnow
from geo.services.contacts import import_contacts
from geo.services.reminders import ReminderRun, run_summary, send_reminders
from geo.services.tokens import INVITATION_DAYS, IssuedInvitation, issue_invitation

entity_app = typer.Typer(help="Acceso de las entidades al portal: invitaciones y revocación.")


def _require_entity(store: Store, entity_id: str) -> str:
    """The entity's name; a clear error when it is not in the entities layer."""
    found = store.query_layer("entities", ids=[entity_id])
    if found.empty:
        msg = f"No existe la entidad {entity_id!r} en la capa de entidades."
        raise NotFoundError(msg)
    return str(found.iloc[0]["name"])


@entity_app.command("invite")
def entity_invite(
    entity_id: Annotated[str, typer.Argument(help="Id de la entidad (capa de entidades).")],
    days: Annotated[
        int, typer.Option("--days", min=1, max=90, help="Días que vale el enlace.")
    ] = INVITATION_DAYS,
) -> None:
    """Crea un enlace de invitación de un solo uso: se muestra una sola vez."""
    settings = _settings()

    def work(store: Store) -> tuple[str, IssuedInvitation]:
        name = _require_entity(store, entity_id)
        return name, issue_invitation(store, entity_id=entity_id, days=days, actor="cli")

    name, issued = _on_store(work)
    errors.print(
        f"Invitación {issued.record.id} para {name} ({entity_id}), válida hasta el "
        f"{local_time(issued.record.expires_at, settings)} y para un solo uso. Envíe el enlace a "
        "la entidad: no se volverá a mostrar.",
        highlight=False,
    )
    base = link_base(settings)
    errors.print(base.describe(), highlight=False, markup=False)
    _emit(issued.url(base.url))


@entity_app.command("revoke")
def entity_revoke(
    entity_id: Annotated[str, typer.Argument(help="Id de la entidad (capa de entidades).")],
) -> None:
    """Revoca todos los tokens y las invitaciones abiertas de una entidad."""

    def work(store: Store) -> tuple[str, tuple[int, int]]:
        name = _require_entity(store, entity_id)
        return name, store.revoke_entity_access(entity_id, actor="cli")

    name, (tokens, invitations) = _on_store(work)
    console.print(
        f"Acceso de {name} ({entity_id}) revocado: {tokens} token(s) y {invitations} "
        "invitación(es) abiertas dejan de valer.",
        highlight=False,
    )


@entity_app.command("list")
def entity_list() -> None:
    """Lista las entidades con su correo de contacto (sí/no), tokens e invitaciones."""

    def work(
        store: Store,
    ) -> tuple[
        gpd.GeoDataFrame, dict[str, dict[str, Any]], list[TokenRecord], list[InvitationRecord]
    ]:
        return store.query_layer("entities"), store.contacts(), store.tokens(), store.invitations()

    entities, contacts, tokens, invitations = _on_store(work)
    settings = _settings()
    now = utcnow(_clock(settings))
    table = Table("Id", "Nombre", "Correo de contacto", "Tokens activos", "Último uso",
                  "Invitaciones abiertas")  # fmt: skip
    for entity_id, name in sorted(zip(entities["id"], entities["name"], strict=True)):
        live = [
            t for t in tokens
            if t.entity_id == entity_id and t.revoked_at is None
            and (t.expires_at is None or t.expires_at > now)
        ]  # fmt: skip
        used = [t.last_used_at for t in tokens if t.entity_id == entity_id and t.last_used_at]
        open_ = [
            i for i in invitations
            if i.entity_id == entity_id
            and i.used_at is None and i.revoked_at is None and i.expires_at > now
        ]  # fmt: skip
        table.add_row(
            str(entity_id),
            str(name),
            "sí" if (contacts.get(entity_id) or {}).get("email") else "no",
            str(len(live)),
            local_time(max(used), settings) if used else "—",
            str(len(open_)),
        )
    console.print(table)


contacts_app = typer.Typer(help="Contactos privados de las entidades (para los avisos).")


@contacts_app.command("import")
def contacts_import(
    file: Annotated[
        Path,
        typer.Argument(
            help="CSV en UTF-8, separado por comas o punto y coma, con cabecera "
            "entity_id,person,email,phone.",
            exists=True,
            dir_okay=False,
        ),
    ],
    dry_run: DryRunOption = False,
) -> None:
    """Importa los contactos de las entidades: se valida todo antes y no se guarda nada si hay
    algún error."""
    settings = _settings()
    with all_or_nothing(LayerValidationError), _open_store(settings) as store:
        report = import_contacts(store, file, actor="cli", dry_run=dry_run)
    verb = "Se importarían" if report.dry_run else "Importados"
    console.print(
        f"Contactos {report.file}: {report.read} filas leídas · {verb}: {report.inserted} "
        f"nuevos, {report.updated} actualizados, {report.unchanged} sin cambios."
        + (" (simulación: no se ha guardado nada)" if report.dry_run else ""),
        highlight=False,
    )


reminders_app = typer.Typer(help="Avisos de mantenimiento por correo a las entidades.")


class ReportFormat(StrEnum):
    TABLE = "table"
    JSON = "json"


@reminders_app.command("send")
def reminders_send(
    dry_run: Annotated[
        bool,
        typer.Option(
            "--dry-run",
            help="Mostrar qué se enviaría y a quién; no enviar, guardar ni crear invitaciones.",
        ),
    ] = False,
    output: Annotated[
        ReportFormat, typer.Option("--format", help="table o json.")
    ] = ReportFormat.TABLE,
    today: Annotated[
        str | None,
        typer.Option("--today", help="Fecha de referencia AAAA-MM-DD (por defecto, hoy)."),
    ] = None,
    within_days: Annotated[
        int | None,
        typer.Option(
            "--within-days",
            min=0,
            max=3650,
            help="Avisar de baterías y parches que caducan en estos días "
            "(CARDIOMAPA_REMINDER_WITHIN_DAYS, 30).",
        ),
    ] = None,
    unchecked_days: Annotated[
        int | None,
        typer.Option(
            "--unchecked-days",
            min=1,
            max=3650,
            help="Avisar de equipos sin revisar en más de estos días "
            "(CARDIOMAPA_REMINDER_UNCHECKED_DAYS, 183).",
        ),
    ] = None,
    repeat_days: Annotated[
        int | None,
        typer.Option(
            "--repeat-days",
            min=0,
            max=3650,
            help="No repetir el mismo aviso antes de estos días "
            "(CARDIOMAPA_REMINDER_REPEAT_DAYS, 7).",
        ),
    ] = None,
) -> None:
    """Envía a cada entidad un correo con sus desfibriladores que necesitan revisión."""
    settings = _settings()
    day = _day(today, settings, option="--today")
    base = link_base(settings)
    try:
        with _open_store(settings) as store:
            run = send_reminders(
                store, settings, today=day, dry_run=dry_run, within_days=within_days,
                unchecked_days=unchecked_days, repeat_days=repeat_days, base_url=base.url,
            )  # fmt: skip
    except CardiomapaError as exc:
        raise _fail(exc) from None
    if run.sent or run.failed:  # the mails carried invitation links
        errors.print(base.describe(), highlight=False, markup=False)
    if output is ReportFormat.JSON:
        _emit(json.dumps(run_summary(run), ensure_ascii=False, indent=2))
    else:
        _print_reminders(run)
    if run.failed:
        raise typer.Exit(code=1)


def _print_reminders(run: ReminderRun) -> None:
    plan = run.plan
    summary = run_summary(run)
    states = {"would_send": "se enviaría", "sent": "enviado", "failed": "FALLÓ",
              "not_sent": "no enviado"}  # fmt: skip
    table = Table("Entidad", "Destinatario", "Desfibriladores y motivos", "Estado",
                  title=f"Avisos de mantenimiento ({plan.today:%d/%m/%Y})")  # fmt: skip
    for message in summary["messages"]:
        lines = [
            f"{device['name']}: " + "; ".join(r["text"] for r in device["reasons"])
            for device in message["devices"]
        ]
        status = states[message["status"]]
        if message["error"]:
            status += f": {message['error']}"
        table.add_row(f"{message['entity_name']} ({message['entity_id']})",
                      message["recipient"], "\n".join(lines), status)  # fmt: skip
    if summary["messages"]:
        console.print(table)
    for skipped in plan.skipped:
        console.print(
            f"Sin aviso: {skipped.entity_name or '—'} ({skipped.entity_id}), "
            f"{len(skipped.devices)} desfibrilador(es): {skipped.reason}.",
            highlight=False,
        )
    if plan.unassigned:
        console.print(
            f"{len(plan.unassigned)} desfibrilador(es) con revisión pendiente sin entidad "
            f"responsable: {', '.join(plan.unassigned)}.",
            highlight=False,
        )
    if plan.held_back:
        console.print(
            f"{plan.held_back} aviso(s) ya enviados en los últimos {plan.repeat_days} días no "
            "se repiten.",
            highlight=False,
        )
    if run.dry_run:
        console.print(
            f"Simulación: se enviarían {len(plan.messages)} correo(s); no se ha enviado ni "
            "guardado nada.",
            highlight=False,
        )
    else:
        console.print(
            f"Enviados {len(run.sent)} correo(s)"
            + (f"; {len(run.failed)} fallaron y se reintentarán en el próximo envío."
               if run.failed else ".")
            ,
            highlight=False,
        )  # fmt: skip
