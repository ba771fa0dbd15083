"""The command line speaks Spanish even where Typer and its Click speak: usage errors and help."""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import typer.main
from typer._click import Command
from typer.testing import CliRunner
from weeks import ORDINARY, clock_env

from geo.cli import app

runner = CliRunner()
TINY = Path(__file__).resolve().parent / "fixtures" / "tiny"
WIDE = {"COLUMNS": "200"}

#: Click's and Typer's English framing: none may reach a person.
ENGLISH = (
    "No such", "Usage", "Options", "Commands", "Arguments", "Try '", "Invalid value", "Missing",
    "Show this message", "default:", "required]", "Got unexpected", "Did you mean",
    "Possible options", "is not one of", "Input should", "requires an argument", "<float>",
    "<str>", "<int>", "<bool>", "<path>", "Aborted", "env var",
)  # fmt: skip


def _english(text: str) -> list[str]:
    return [word for word in ENGLISH if word in text]


def _paths(command: Command, path: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    yield path
    for name, sub in getattr(command, "commands", {}).items():
        yield from _paths(sub, (*path, name))


def test_an_unknown_flag_is_refused_in_spanish_by_the_installed_script(tmp_path: Path) -> None:
    """The real entry point, in its own process (no TTY): the issue's example."""
    script = Path(sys.executable).parent / "cardiomapa"
    env = {**os.environ, "CARDIOMAPA_DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite'}"}
    done = subprocess.run(
        [str(script), "coverage", "--no-such-flag"],
        env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 2
    assert "No existe la opción --no-such-flag." in done.stderr
    assert "Uso: cardiomapa coverage [OPCIONES]" in done.stderr
    assert "Para ver la ayuda: 'cardiomapa coverage --help'" in done.stderr
    assert _english(done.stderr + done.stdout) == []


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["coverage", "--format", "xml"],
         "Valor no válido para '--format': 'xml' no es ninguno de los valores admitidos: "
         "'table', 'json', 'geojson', 'csv'."),
        (["coverage", "--radius-m", "cien"], "'cien' no es un número"),
        (["coverage", "--radius-m"], "La opción '--radius-m' necesita un valor."),
        (["covrage"], "No existe la orden 'covrage'. ¿Quería decir 'coverage'?"),
        (["site", "--metodo", "x"], "No existe la opción --metodo. ¿Quería decir --method"),
        (["entity"], "Falta la orden"),
        (["entity", "invite"], "Falta el argumento 'entity_id'."),
        (["coverage", "sobra"], "Sobran argumentos: sobra."),
        (["entity", "invite", "ent-1", "--days", "0"],
         "Valor no válido para '--days': '0' no vale: debe ser mayor o igual que 1."),
        (["site", "--new", "x"], "Valor no válido para '--new': 'x' no es un número entero."),
    ],
)  # fmt: skip
def test_usage_errors_are_spanish(args: list[str], expected: str) -> None:
    result = runner.invoke(app, args, env=WIDE)
    assert result.exit_code == 2, result.output
    assert expected in " ".join(result.stderr.split()), result.stderr
    assert _english(result.stderr + result.stdout) == [], result.stderr


def test_every_help_page_is_spanish() -> None:
    """Each command's and group's --help: Spanish frame, Spanish value types, no English."""
    paths = list(_paths(typer.main.get_command(app)))
    assert len(paths) > 20
    for path in paths:
        result = runner.invoke(app, [*path, "--help"], env=WIDE)
        assert result.exit_code == 0, (path, result.output)
        assert "Uso: cardiomapa" in result.stdout, path
        assert "Muestra esta ayuda y termina." in result.stdout, path
        assert _english(result.stdout) == [], (path, _english(result.stdout))
    coverage = runner.invoke(app, ["coverage", "--help"], env=WIDE).stdout
    assert "<número>" in coverage
    assert "[por defecto: 100.0]" in coverage
    assert "Opciones" in coverage
    assert "Órdenes" in runner.invoke(app, ["--help"], env=WIDE).stdout


def test_a_load_error_keeps_its_brackets(tmp_path: Path, tiny_dir: Path) -> None:
    """Rich markup must not swallow "[longitud, latitud]" (nor a path with brackets)."""
    path = tiny_dir / "defibrillators.geojson"
    document = json.loads(path.read_text(encoding="utf-8"))
    lon, lat = document["features"][0]["geometry"]["coordinates"]
    document["features"][0]["geometry"]["coordinates"] = [lat, lon]  # swapped
    path.write_text(json.dumps(document), encoding="utf-8")
    env = {**WIDE, "CARDIOMAPA_DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite'}"}
    result = runner.invoke(app, ["load", "--data-dir", str(tiny_dir)], env=env)
    assert result.exit_code == 1, result.output
    said = " ".join(result.stderr.split())
    assert "GeoJSON exige [longitud, latitud], p. ej. [" in said, said
    assert "[bold" not in said and "[/]" not in said


def test_user_text_with_brackets_reaches_the_terminal_whole(tmp_path: Path) -> None:
    """An option value that looks like markup is shown as typed."""
    env = {**WIDE, "CARDIOMAPA_DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite'}"}
    result = runner.invoke(app, ["token", "create", "--role", "[bold]x[/]"], env=env)
    assert result.exit_code == 2, result.output
    assert "'[bold]x[/]'" in result.stderr, result.stderr


def _script_run(args: list[str], tmp_path: Path, *, stderr_tty: bool) -> tuple[str, str]:
    """Run the installed ``cardiomapa`` with stdout piped and stderr piped or on a terminal."""
    script = Path(sys.executable).parent / "cardiomapa"
    env = {**os.environ, "CARDIOMAPA_DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite'}",
           "COLUMNS": "120", "TERM": "xterm", **clock_env(ORDINARY)}  # fmt: skip
    env.pop("NO_COLOR", None)
    if not stderr_tty:
        done = subprocess.run(
            [str(script), *args], env=env, capture_output=True, text=True, timeout=300, check=False
        )
        assert done.returncode == 0, done.stderr
        return done.stdout, done.stderr
    main, secondary = pty.openpty()
    chunks: list[bytes] = []

    def drain() -> None:  # the terminal's buffer is small: read while the command writes
        while True:
            try:
                chunk = os.read(main, 4096)
            except OSError:
                return
            if not chunk:
                return
            chunks.append(chunk)

    reader = threading.Thread(target=drain)
    reader.start()
    with subprocess.Popen(
        [str(script), *args], env=env, stdout=subprocess.PIPE, stderr=secondary, text=True
    ) as process:
        os.close(secondary)
        stdout, _ = process.communicate(timeout=300)
    reader.join(timeout=30)
    os.close(main)
    assert process.returncode == 0
    return stdout, b"".join(chunks).decode("utf-8", "replace")


ANALYSIS = ["coverage", "--data-dir", str(TINY), "--no-network", "--format", "json"]


def test_long_commands_show_progress_on_a_terminal_and_nothing_when_piped(tmp_path: Path) -> None:
    piped_out, piped_err = _script_run(ANALYSIS, tmp_path, stderr_tty=False)
    assert piped_err == ""  # no spinner, no control codes when stderr is not a terminal
    document = json.loads(piped_out)
    assert document["city"] == "Palencia"
    tty_out, tty_err = _script_run(ANALYSIS, tmp_path, stderr_tty=True)
    assert "Leyendo las capas…" in tty_err
    assert "Calculando la cobertura…" in tty_err
    # stdout is the same document either way (the spinner never touches it)
    assert json.loads(tty_out) == document
