"""``cardiomapa notebook``: the planners' notebook, run on the configured layers and written as one
HTML page that opens in any browser, offline."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from geo.cli.common import _progress, _settings, errors
from geo.settings import PROJECT_DIR

#: The planners' notebook shipped with the project, run by default.
NOTEBOOK = PROJECT_DIR / "notebooks" / "analisis_cobertura.ipynb"


def notebook(
    html: Annotated[
        Path,
        typer.Option(
            "--html",
            help="Archivo HTML que se escribe: el cuaderno ejecutado, con sus figuras, que se "
            "abre en cualquier navegador sin conexión.",
        ),
    ],
    source: Annotated[
        Path,
        typer.Option(
            "--notebook",
            help="Cuaderno que se ejecuta (el de los técnicos).",
            show_default="notebooks/analisis_cobertura.ipynb",
        ),
    ] = NOTEBOOK,
    data_dir: Annotated[
        Path | None,
        typer.Option(
            "--data-dir", help="Carpeta de las capas (por defecto, CARDIOMAPA_DATA_DIR o data/)."
        ),
    ] = None,
) -> None:
    """Ejecuta el cuaderno de análisis sobre las capas configuradas y lo guarda como HTML."""
    # Imported here: Jupyter's machinery is heavy and only this command needs it.
    from nbclient.exceptions import CellExecutionError

    from geo.render.notebook import execute_notebook, notebook_html

    settings = _settings(data_dir)
    if not source.is_file():
        shown = escape(str(source))
        errors.print(f"[bold red]Error[/]: --notebook: no existe el cuaderno {shown}.")
        raise typer.Exit(code=2)
    if not html.parent.is_dir():
        errors.print(
            f"[bold red]Error[/]: --html: la carpeta {escape(str(html.parent))} no existe."
        )
        raise typer.Exit(code=2)
    with _progress() as progress:
        task = progress.add_task("Ejecutando el cuaderno", total=None)

        def advance(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        try:
            executed = execute_notebook(source, data_dir=settings.data_dir, on_cell=advance)
        except CellExecutionError as exc:
            errors.print(
                f"[bold red]Error[/]: una celda del cuaderno {escape(source.name)} ha fallado:\n"
                f"{escape(str(exc))}",
                highlight=False,
            )
            raise typer.Exit(code=1) from None
    html.write_text(notebook_html(executed, title=source.stem), encoding="utf-8")
    figures = sum(
        "image/png" in output.get("data", {})
        for cell in executed.cells
        if cell.cell_type == "code"
        for output in cell.outputs
    )
    errors.print(
        f"Cuaderno ejecutado con las capas de {escape(str(settings.data_dir))}: {figures} "
        f"figura(s) en {escape(str(html))}.",
        highlight=False,
    )
