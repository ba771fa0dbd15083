"""The ``cardiomapa`` command line (Spanish messages, progress bars on long work).

An edge like the HTTP API: it reads the settings, calls :mod:`geo` and prints. ``serve`` imports
the web app only when it runs.

One module per group of commands; this one builds the ``app`` (the entry point ``geo.cli:app``)
from them, in the order ``cardiomapa --help`` lists them.
"""

from __future__ import annotations

import typer

from geo.cli import (
    backups,
    coverage,
    data,
    documents,
    entities,
    imports,
    network,
    notebook,
    outcomes,
    plan,
    siting,
    tokens,
    training,
)
from geo.cli.spanish import SpanishGroup

app = typer.Typer(
    name="cardiomapa",
    help="Mapa de desfibriladores y recursos de cuidados: carga de capas, servidor y análisis.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    cls=SpanishGroup,
)

app.command()(data.load)
app.command("backup")(backups.backup_)
app.command()(backups.restore)
app.command()(data.layers)
app.command()(data.serve)
app.command()(data.migrate)
app.command()(coverage.coverage)
app.command("outcomes")(outcomes.outcomes_)
app.command()(coverage.gaps)
app.command()(siting.site)
app.command("map")(documents.map_)
app.command()(plan.indicators)
app.command()(plan.report)
app.command("export")(documents.export_)
app.command("import")(imports.import_)
app.command()(notebook.notebook)

app.add_typer(network.network_app, name="network")
app.add_typer(tokens.token_app, name="token")
app.add_typer(training.training_app, name="training")
app.add_typer(entities.entity_app, name="entity")
app.add_typer(entities.contacts_app, name="contacts")
app.add_typer(entities.reminders_app, name="reminders")

__all__ = ["app"]

if __name__ == "__main__":
    app()
