"""What every command shares: the consoles, the settings and the database, errors in Spanish,
progress bars and the formats of numbers and dates.
"""

from __future__ import annotations

import datetime as dt
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from geo.clock import Clock, local_text, local_today
from geo.core import outputs
from geo.errors import CardiomapaError
from geo.io.store import Store
from geo.settings import Settings

T = TypeVar("T")
console = Console()
errors = Console(stderr=True, soft_wrap=True)  # messages stay whole, for people and grep


_SHOWN_SKIPS = 20


DryRunOption = Annotated[
    bool, typer.Option("--dry-run", help="Solo validar y contar; no guardar nada.")
]
DataDirOption = Annotated[
    Path | None,
    typer.Option(
        "--data-dir",
        help="Carpeta con los archivos de capas (defibrillators.geojson, ceas.geojson…). "
        "Por defecto, la muestra de data/.",
    ),
]


def local_time(at: dt.datetime, settings: Settings, pattern: str = "%d/%m/%Y %H:%M") -> str:
    """A stored instant (naive = UTC) in the city's local time, as people read it (no "UTC")."""
    return local_text(at, settings.load_city().timezone, pattern=pattern)


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


def _clock(settings: Settings) -> Clock:
    """The clock this command runs on: the machine's, or ``CARDIOMAPA_CLOCK_START``'s."""
    return settings.clock(settings.load_city())


def _city_today(settings: Settings) -> dt.date:
    """Today in the city's time zone, by the command's clock."""
    city = settings.load_city()
    return local_today(settings.clock(city), city.timezone)


def _open_store(settings: Settings) -> Store:
    """The configured database, stamping what it writes by the command's clock."""
    return Store.open(settings.database_url, clock=_clock(settings))


@contextmanager
def _store_unless_files(settings: Settings, *, from_files: bool) -> Iterator[Store | None]:
    """The configured database for the length of a block, or None when reading the files."""
    if from_files:
        yield None
        return
    with _open_store(settings) as store:
        yield store


def _fail(exc: CardiomapaError) -> typer.Exit:
    errors.print(f"[bold red]Error[/] [dim]({exc.code})[/]: {escape(str(exc))}", highlight=False)
    return typer.Exit(code=1)


@contextmanager
def all_or_nothing(*invalid: type[CardiomapaError]) -> Iterator[None]:
    """End an import that failed: a domain error exits 1 in Spanish, and an ``invalid`` one (the
    file was refused as a whole) also says that nothing was imported."""
    try:
        yield
    except invalid as exc:
        failure = _fail(exc)
        errors.print("No se ha importado nada: la base de datos sigue como estaba.")
        raise failure from None
    except CardiomapaError as exc:
        raise _fail(exc) from None


def _on_store(work: Callable[[Store], T]) -> T:
    """Run ``work`` on the configured database; a domain error ends the command in Spanish."""
    settings = _settings()
    try:
        with _open_store(settings) as store:
            return work(store)
    except CardiomapaError as exc:
        raise _fail(exc) from None


@contextmanager
def working(message: str) -> Iterator[None]:
    """Run a long step (an analysis, reading the layers) under a spinner saying ``message``.

    The spinner is on stderr and only on a terminal: piped or redirected output stays exactly
    as it was. A domain error stops it and ends the command in Spanish (exit 1).
    """
    try:
        if errors.is_terminal:
            with errors.status(message):
                yield
        else:
            yield
    except CardiomapaError as exc:
        raise _fail(exc) from None


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=errors,
        transient=True,
    )


def _emit(text: str) -> None:
    sys.stdout.write(text if text.endswith("\n") else text + "\n")


def _pct(share: float) -> str:
    return f"{share * 100:.1f} %".replace(".", ",")


def _int(value: float) -> str:
    return f"{int(value):,}".replace(",", ".")


_lives = outputs.estimate  # lives per year: two significant figures (they are estimates)


def _band(row: Any, column: str = "lives_saved") -> str:
    low, high = row[f"{column}_low"], row[f"{column}_high"]
    return f"{_lives(row[column])} ({_lives(low)}–{_lives(high)})"


def _date(text: str, *, option: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        errors.print(
            f"[bold red]Error[/]: {option} {escape(repr(text))} no es una fecha AAAA-MM-DD.",
            highlight=False,
        )
        raise typer.Exit(code=2) from None


def _day(text: str | None, settings: Settings, *, option: str) -> dt.date:
    """The date given to ``option`` as ``text``, or the city's today by the command's clock."""
    return _city_today(settings) if text is None else _date(text, option=option)


def usage_error(message: str) -> typer.Exit:
    """Exit 2 (wrong use of the command) after ``Error: message`` on stderr."""
    errors.print(f"[bold red]Error[/]: {escape(message)}", highlight=False)
    return typer.Exit(code=2)
