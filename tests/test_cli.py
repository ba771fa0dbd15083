"""The command line: load, layers, and what a user sees when a file is broken."""

from __future__ import annotations

import inspect
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from geo.cli import app
from geo.cli.options import DEFAULT_SCENE, Scene, with_scene
from geo.io.store import Store
from tests.conftest import TINY_DIR

runner = CliRunner()


def cli(db_url: str, *args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args), env={"CARDIOMAPA_DATABASE_URL": db_url})
    return result.exit_code, result.stdout, result.stderr


def test_load_prints_counts_per_layer(db_url: str) -> None:
    code, out, err = cli(db_url, "load", "--data-dir", str(TINY_DIR))
    assert code == 0, err
    assert "population" in out and "12" in out
    with Store.open(db_url) as store:
        assert store.counts()["defibrillators"] == 3


def test_layers_lists_counts_and_sources(db_url: str) -> None:
    cli(db_url, "load", "--data-dir", str(TINY_DIR))
    code, out, _ = cli(db_url, "layers")
    assert code == 0
    assert "Desfibriladores" in out and "synthetic: 3" in out


def test_a_broken_file_is_rejected_precisely_and_nothing_changes(
    db_url: str, tiny_dir: Path
) -> None:
    assert cli(db_url, "load", "--data-dir", str(TINY_DIR))[0] == 0
    path = tiny_dir / "defibrillators.geojson"
    document = json.loads(path.read_text(encoding="utf-8"))
    document["features"][1]["properties"]["status"] = "roto"
    del document["features"][0]["properties"]
    path.write_text(json.dumps(document), encoding="utf-8")
    (tiny_dir / "population.geojson").write_text(
        json.dumps({"type": "FeatureCollection", "features": []}), encoding="utf-8"
    )

    code, _, err = cli(db_url, "load", "--replace", "--data-dir", str(tiny_dir))

    assert code == 1
    assert 'defibrillators.geojson, elemento 1, campo "status"' in err
    assert "'roto'" in err and "out_of_service" in err
    assert "No se ha cargado nada" in err
    with Store.open(db_url) as store:
        assert store.counts()["population"] == 12
        assert store.read_layer("defibrillators")["status"].tolist() == ["active"] * 3


def test_loading_twice_asks_for_replace(db_url: str) -> None:
    assert cli(db_url, "load", "--data-dir", str(TINY_DIR))[0] == 0
    code, _, err = cli(db_url, "load", "--data-dir", str(TINY_DIR))
    assert code == 1
    assert "database_not_empty" in err and "--replace" in err
    assert cli(db_url, "load", "--replace", "--data-dir", str(TINY_DIR))[0] == 0


def test_if_empty_loads_once(db_url: str) -> None:
    assert cli(db_url, "load", "--if-empty", "--data-dir", str(TINY_DIR))[0] == 0
    code, out, _ = cli(db_url, "load", "--if-empty")
    assert code == 0
    assert "ya tiene capas" in out
    with Store.open(db_url) as store:
        assert store.counts()["population"] == 12  # not the full sample


def test_a_bad_database_url_is_reported() -> None:
    code, _, err = cli("mysql://u@h/db", "layers")
    assert code == 1
    assert "storage_error" in err and "no admitida" in err


def test_a_missing_data_dir_is_named(db_url: str, tmp_path: Path) -> None:
    code, _, err = cli(db_url, "load", "--data-dir", str(tmp_path / "nope"))
    assert code == 2
    assert "no existe" in err and "nope" in err


def test_a_malformed_setting_names_the_variable(tmp_path: Path) -> None:
    env = {"CARDIOMAPA_PORT": "ochomil", "CARDIOMAPA_DATABASE_URL": f"sqlite:///{tmp_path}/x"}
    result = runner.invoke(app, ["layers"], env=env)
    assert result.exit_code == 2
    assert "CARDIOMAPA_PORT" in result.stderr


def test_the_installed_console_script_loads_the_sample(tmp_path: Path) -> None:
    """The real entry point, in its own process, on the full Palencia sample."""
    script = Path(sys.executable).parent / "cardiomapa"
    env = {**os.environ, "CARDIOMAPA_DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite'}"}
    done = subprocess.run(
        [str(script), "load"], env=env, capture_output=True, text=True, timeout=300, check=False
    )
    assert done.returncode == 0, done.stderr
    assert "defibrillators" in done.stdout


SCENE_OPTIONS = ("--data-dir", "--network", "--no-network", "--detour-factor", "--count-overdue")


@pytest.mark.parametrize(
    "command", ["coverage", "gaps", "outcomes", "site", "indicators", "report"]
)
def test_every_analysis_offers_the_scene_options_once(command: str) -> None:
    result = runner.invoke(app, [command, "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    for option in SCENE_OPTIONS:
        assert result.stdout.count(f"{option} ") == 1, (command, option)


def test_with_scene_needs_a_scene_parameter() -> None:
    def command(radius_m: float = 100.0) -> None:
        """Sin escena."""

    with pytest.raises(TypeError, match="scene"):
        with_scene(command)


def test_with_scene_hands_the_options_over_as_one_scene() -> None:
    seen: list[Scene] = []

    @with_scene
    def command(top: int = 3, scene: Scene = DEFAULT_SCENE) -> None:
        seen.append(scene)

    parameters = list(inspect.signature(command).parameters)
    assert parameters == ["top", "data_dir", "network", "no_network", "detour_factor",
                          "count_overdue"]  # fmt: skip
    command(top=1, data_dir=None, network=None, no_network=True, detour_factor=1.5,
            count_overdue=False)  # fmt: skip
    assert seen == [Scene(no_network=True, detour_factor=1.5)]


@pytest.mark.parametrize("args", [["--help"], ["load", "--help"], ["serve", "--help"]])
def test_help_is_in_spanish(args: list[str]) -> None:
    result = runner.invoke(app, args)
    assert result.exit_code == 0
    assert "capas" in result.stdout or "Sirve" in result.stdout
