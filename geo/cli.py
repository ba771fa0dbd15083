"""The ``cardiomapa`` command line (Spanish messages, progress bars on long work).

An edge like the HTTP API: it reads the settings, calls :mod:`geo` and prints. ``serve`` imports
the web app only when it runs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from geo.errors import CardiomapaError, LayerValidationError
from geo.layers import LAYERS, Layers, LayerSchema, read_layers
from geo.settings import Settings
from geo.store import Store

app = typer.Typer(
    name="cardiomapa",
    help="Mapa de desfibriladores y recursos de cuidados: carga de capas, servidor y análisis.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console()
errors = Console(stderr=True)

DataDirOption = Annotated[
    Path | None,
    typer.Option(
        "--data-dir",
        help="Carpeta con los archivos de capas (defibrillators.geojson, ceas.geojson…). "
        "Por defecto, la muestra de data/.",
    ),
]


def _settings(data_dir: Path | None = None) -> Settings:
    try:
        settings = Settings()
    except ValidationError as exc:
        fields = ", ".join(f"CARDIOMAPA_{str(e['loc'][0]).upper()}" for e in exc.errors())
        errors.print(f"[bold red]Error[/]: configuración no válida en {fields}.", highlight=False)
        raise typer.Exit(code=2) from None
    if data_dir is None:
        return settings
    if not data_dir.is_dir():
        errors.print(f"[bold red]Error[/]: la carpeta de datos {data_dir} no existe.")
        raise typer.Exit(code=2)
    return settings.model_copy(update={"data_dir": data_dir})


def _fail(exc: CardiomapaError) -> typer.Exit:
    errors.print(f"[bold red]Error[/] [dim]({exc.code})[/]: {exc}", highlight=False)
    return typer.Exit(code=1)


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=errors,
        transient=True,
    )


@app.command()
def load(
    data_dir: DataDirOption = None,
    replace: Annotated[
        bool, typer.Option("--replace", help="Sustituir las capas que ya haya en la base de datos.")
    ] = False,
    if_empty: Annotated[
        bool,
        typer.Option("--if-empty", help="Cargar solo si la base de datos está vacía."),
    ] = False,
) -> None:
    """Valida los archivos de capas y los carga en la base de datos en una sola transacción."""
    settings = _settings(data_dir)
    try:
        store = Store.open(settings.database_url)
        with store:
            if if_empty and not store.is_empty():
                console.print("La base de datos ya tiene capas cargadas; no se carga nada.")
                _print_counts(store.counts())
                return
            layers = _validate(settings)
            counts = _store(store, layers, replace=replace)
    except LayerValidationError as exc:
        errors.print(f"[bold red]Error[/] [dim]({exc.code})[/]: {exc}", highlight=False)
        errors.print("No se ha cargado nada: la base de datos sigue como estaba.")
        raise typer.Exit(code=1) from None
    except CardiomapaError as exc:
        raise _fail(exc) from None
    console.print(f"Capas cargadas desde {settings.data_dir}:")
    _print_counts(counts)


def _validate(settings: Settings) -> Layers:
    city = settings.load_city()
    with _progress() as progress:
        task = progress.add_task("Validando capas", total=len(LAYERS))

        def advance(schema: LayerSchema) -> None:
            progress.update(task, advance=1, description=f"Validando {schema.file_name}")

        return read_layers(settings.data_dir, city, on_layer=advance)


def _store(store: Store, layers: Layers, *, replace: bool) -> dict[str, int]:
    with _progress() as progress:
        task = progress.add_task("Cargando", total=sum(layers.counts().values()))

        def advance(name: str, rows: int) -> None:
            progress.update(task, advance=rows, description=f"Cargando {name}")

        return store.load(layers, replace=replace, on_rows=advance)


def _print_counts(counts: dict[str, int]) -> None:
    table = Table("Capa", "Registros")
    for name, count in counts.items():
        table.add_row(name, f"{count:,}".replace(",", "."))
    console.print(table)


@app.command()
def layers() -> None:
    """Muestra las capas de la base de datos: registros y procedencia (source)."""
    settings = _settings()
    try:
        with Store.open(settings.database_url) as store:
            summary = store.summary()
    except CardiomapaError as exc:
        raise _fail(exc) from None
    table = Table("Capa", "Nombre", "Registros", "Procedencia (source: registros)")
    for layer in summary:
        sources = "\n".join(f"{source}: {n}" for source, n in layer.sources.items()) or "—"
        table.add_row(layer.name, layer.title, str(layer.count), sources)
    console.print(table)


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Dirección en la que escuchar.")] = None,
    port: Annotated[int | None, typer.Option(help="Puerto.")] = None,
) -> None:
    """Sirve la aplicación web (mapa y API)."""
    import uvicorn

    from api.app import create_app

    settings = _settings()
    try:
        Store.open(settings.database_url).close()  # fail here, in Spanish, not in the server
    except CardiomapaError as exc:
        raise _fail(exc) from None
    uvicorn.run(create_app(settings), host=host or settings.host, port=port or settings.port)


if __name__ == "__main__":
    app()
