"""``network``: the walking network the distances are measured on."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from geo.cli.common import (
    _fail,
    _int,
    _on_store,
    _open_store,
    _progress,
    _settings,
    console,
    errors,
)
from geo.errors import CardiomapaError
from geo.io.osm import load_network
from geo.io.store import Store

network_app = typer.Typer(help="Red peatonal para medir distancias a pie por las calles.")


@network_app.command("load")
def network_load(
    file: Annotated[
        Path, typer.Argument(help="Archivo OSM (.osm, .osm.pbf) o GraphML de osmnx.", exists=True)
    ],
) -> None:
    """Carga una red peatonal en la base de datos (sustituye a la anterior)."""
    settings = _settings()
    try:
        city = settings.load_city()
        with errors.status(f"Leyendo {escape(file.name)}…"):
            walking = load_network(file, crs=city.metric_crs)
        with _open_store(settings) as store, _progress() as progress:
            task = progress.add_task("Guardando", total=walking.n_nodes + walking.n_edges)
            nodes, edges = store.save_network(
                walking, on_rows=lambda _name, rows: progress.update(task, advance=rows)
            )
    except CardiomapaError as exc:
        raise _fail(exc) from None
    console.print(
        f"Red guardada en la base de datos: {_int(nodes)} nodos y {_int(edges)} tramos "
        f"de {walking.source}."
    )


@network_app.command("info")
def network_info() -> None:
    """Muestra la red peatonal cargada, si la hay."""
    settings = _settings()
    try:
        city = settings.load_city()
        with _open_store(settings) as store:
            walking = store.read_network(crs=city.metric_crs)
    except CardiomapaError as exc:
        raise _fail(exc) from None
    if walking is None:
        console.print("No hay red peatonal cargada: se usa la distancia en línea recta × rodeo.")
    else:
        console.print(f"Red cargada: {walking.describe()}.")


@network_app.command("clear")
def network_clear() -> None:
    """Borra la red peatonal de la base de datos."""
    _on_store(Store.clear_network)
    console.print("Red peatonal borrada.")
