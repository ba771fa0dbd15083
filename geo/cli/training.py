"""``training``: the register of first-aid and AED training (plan action 1.3)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from geo.cli.common import (
    DryRunOption,
    _day,
    _int,
    _on_store,
    _open_store,
    _settings,
    all_or_nothing,
    console,
)
from geo.core.indicators import KIND_LABELS
from geo.errors import LayerValidationError
from geo.services.registers import ImportReport
from geo.services.training import import_training

training_app = typer.Typer(help="Registro de formación en soporte vital básico y uso del DEA.")


def _print_import(report: ImportReport) -> None:
    verb = "Se importarían" if report.dry_run else "Importadas"
    console.print(
        f"Registro de formación {report.file}: {report.read} filas leídas · {verb}: "
        f"{report.inserted} nuevas, {report.updated} actualizadas, {report.unchanged} sin cambios."
        + (" (simulación: no se ha guardado nada)" if report.dry_run else ""),
        highlight=False,
    )


@training_app.command("import")
def training_import(
    file: Annotated[
        Path,
        typer.Argument(
            help="CSV en UTF-8, separado por comas o punto y coma, con cabecera: "
            "held_on, entity_id, place, kind, people_trained y, opcionales, trainer, notes, "
            "id, source.",
            exists=True,
            dir_okay=False,
        ),
    ],
    dry_run: DryRunOption = False,
    source: Annotated[
        str | None,
        typer.Option(
            "--source",
            help="Procedencia de las filas sin columna source (por defecto csv:<archivo>).",
        ),
    ] = None,
    today: Annotated[
        str | None,
        typer.Option(
            "--today",
            help="Fecha de referencia AAAA-MM-DD: ninguna formación puede ser posterior "
            "(por defecto, hoy).",
        ),
    ] = None,
) -> None:
    """Importa un registro de formación en CSV: todo o nada, y reimportarlo no duplica."""
    settings = _settings()
    day = _day(today, settings, option="--today")
    with all_or_nothing(LayerValidationError), _open_store(settings) as store:
        report = import_training(
            store, file, today=day, actor="cli", source=source, dry_run=dry_run
        )
    _print_import(report)


@training_app.command("list")
def training_list(
    year: Annotated[int | None, typer.Option("--year", help="Solo las de este año.")] = None,
    entity: Annotated[
        str | None, typer.Option("--entity", help="Solo las de esta entidad (id).")
    ] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, help="Cuántas mostrar.")] = 100,
) -> None:
    """Lista las acciones de formación registradas, de la más reciente a la más antigua."""
    items, total = _on_store(
        lambda store: store.training_actions(year=year, entity_id=entity, limit=limit)
    )
    table = Table("Id", "Fecha", "Entidad", "Lugar", "Tipo", "Personas", "Procedencia")
    for item in items:
        reference = "" if item["source_id"] is None else f": {item['source_id']}"
        table.add_row(
            str(item["id"]),
            item["held_on"].isoformat(),
            item["entity_id"] or "—",
            item["place"],
            KIND_LABELS[item["kind"]],
            str(item["people_trained"]),
            item["source"] + reference,
        )
    console.print(table)
    people = sum(item["people_trained"] for item in items)
    shown = f"{len(items)} de {total}" if len(items) < total else str(total)
    console.print(f"Acciones mostradas: {shown} · personas formadas en ellas: {_int(people)}.")
