"""``token``: the API's tokens for entities, planners, administrators and the 112 centre."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from geo.cli.common import _clock, _emit, _on_store, _settings, console, errors, local_time
from geo.io.store import ROLES, Store, utcnow
from geo.services.tokens import issue_token

token_app = typer.Typer(
    help="Tokens de la API para entidades, planificación, administración y el centro 112."
)
#: The roles ``--role`` takes: every role but ``entity`` (which ``--entity`` issues).
ROLE_OPTIONS = tuple(role for role in ROLES if role != "entity")
_ROLE_CHOICES = "|".join(ROLE_OPTIONS)


@token_app.command("create")
def token_create(
    entity: Annotated[
        str | None, typer.Option("--entity", help="Id de la entidad (token de entidad).")
    ] = None,
    role: Annotated[
        str | None,
        typer.Option(
            "--role",
            help="planner o admin (token del Ayuntamiento), o dispatch (centro coordinador de "
            "emergencias 112: solo su listado de desfibriladores con las notas de emergencia).",
        ),
    ] = None,
    label: Annotated[str | None, typer.Option("--label", help="Para quién es.")] = None,
    expires_days: Annotated[
        int | None, typer.Option("--expires-days", min=1, help="Caduca tras estos días.")
    ] = None,
) -> None:
    """Emite un token: se muestra una sola vez (solo se guarda su huella SHA-256)."""
    if (entity is None) == (role is None):
        errors.print(
            f"[bold red]Error[/]: indique --entity ID o --role {_ROLE_CHOICES} (solo uno).",
            highlight=False,
        )
        raise typer.Exit(code=2)
    if role is not None and role not in ROLE_OPTIONS:
        errors.print(
            f"[bold red]Error[/]: --role {escape(repr(role))} no admitido; use "
            f"{', '.join(ROLE_OPTIONS)}.",
            highlight=False,
        )
        raise typer.Exit(code=2)
    expires = None
    settings = _settings()
    if expires_days is not None:
        expires = _clock(settings).now() + dt.timedelta(days=expires_days)
    issued = _on_store(
        lambda store: issue_token(
            store, role=role or "entity", entity_id=entity, label=label, expires_at=expires
        )
    )
    record = issued.record
    errors.print(
        f"Token {record.id} creado ({record.role}"
        + (f", entidad {record.entity_id}" if record.entity_id else "")
        + (f", caduca el {local_time(record.expires_at, settings)}" if record.expires_at else "")
        + "). Guárdelo ahora: no se volverá a mostrar.",
        highlight=False,
    )
    _emit(issued.secret)


@token_app.command("list")
def token_list() -> None:
    """Lista los tokens emitidos (nunca sus secretos)."""
    tokens = _on_store(Store.tokens)
    table = Table("Id", "Rol", "Entidad", "Etiqueta", "Creado", "Caduca", "Estado")
    settings = _settings()
    now = utcnow(_clock(settings))
    for token in tokens:
        if token.revoked_at is not None:
            state = f"revocado el {local_time(token.revoked_at, settings, '%d/%m/%Y')}"
        elif token.expires_at is not None and token.expires_at <= now:
            state = "caducado"
        else:
            state = "activo"
        table.add_row(
            str(token.id),
            token.role,
            token.entity_id or "—",
            token.label,
            local_time(token.created_at, settings),
            local_time(token.expires_at, settings, "%d/%m/%Y") if token.expires_at else "—",
            state,
        )
    console.print(table)


@token_app.command("revoke")
def token_revoke(
    token_id: Annotated[int, typer.Argument(help="Id del token (columna Id de token list).")],
) -> None:
    """Revoca un token: deja de valer en la siguiente petición."""
    record = _on_store(lambda store: store.revoke_token(token_id, actor="cli"))
    when = local_time(record.revoked_at, _settings()) if record.revoked_at else ""
    console.print(f"Token {record.id} revocado el {when}.", highlight=False)
