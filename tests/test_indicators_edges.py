"""The plan's indicators through the CLI and the API, on the Palencia sample in a real database.

Every test runs on SpatiaLite and on PostGIS. The figures checked by hand come from the sample's
table of devices (data/README.md): 26 verified devices, two of them installed in 2025 (dea-018,
dea-022) and one removed on 2025-06-30 (dea-028), so 24 were in place before the plan and 25 are
now; 25 per 77,157 inhabitants is 32.4 per 100,000, one device short of Castilla y León's 32.8.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from api.app import create_app
from geo.cli import app
from geo.core.layers import Layers
from geo.core.outcome_model import PARAMETER_KEYS
from geo.io.files import read_layers
from geo.io.store import Store
from geo.services.tokens import issue_token
from geo.settings import Settings
from tests.conftest import DATA_DIR

AS_OF = "2026-11-23"
runner = CliRunner()


def cli(*args: str, db_url: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args), env={"CARDIOMAPA_DATABASE_URL": db_url})
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture(scope="module")
def sample(city: Any) -> Layers:
    return read_layers(DATA_DIR, city)


@pytest.fixture
def loaded(db_url: str, sample: Layers) -> Iterator[tuple[str, dict[str, str]]]:
    with Store.open(db_url) as store:
        store.load(sample)
        for held_on, entity, kind, people in (
            (dt.date(2025, 3, 4), "ent-008", "bls_aed", 12),
            (dt.date(2025, 11, 20), None, "aed", 30),
            (dt.date(2026, 5, 6), "ent-009", "bls_aed", 9),
        ):
            store.insert_training(
                {"held_on": held_on, "entity_id": entity, "place": "Centro cívico",
                 "kind": kind, "people_trained": people, "trainer": None, "notes": None,
                 "source": "test", "source_id": f"{held_on}"},
                actor="test",
            )  # fmt: skip
        store.insert_use(
            {"device_id": "dea-012", "used_at": dt.datetime(2026, 2, 1, 18, 0, tzinfo=dt.UTC),
             "people_attended": 1},
            actor="test",
        )  # fmt: skip
        tokens = {
            "planner": issue_token(store, role="planner").secret,
            "entity": issue_token(store, role="entity", entity_id="ent-008").secret,
        }
    yield db_url, tokens


def test_the_api_answers_the_plans_indicators(loaded: tuple[str, dict[str, str]]) -> None:
    db_url, tokens = loaded
    with TestClient(create_app(Settings(database_url=db_url))) as client:
        url = f"/api/indicators?as_of={AS_OF}"
        assert client.get(url).status_code == 401
        forbidden = client.get(url, headers={"Authorization": f"Bearer {tokens['entity']}"})
        assert forbidden.status_code == 403
        planner = {"Authorization": f"Bearer {tokens['planner']}"}
        document = client.get(url, headers=planner).json()
        outside = client.get(f"{url}&year=2031", headers=planner)
        bad_day = client.get("/api/indicators?as_of=mañana", headers=planner)
        one_year = client.get(f"{url}&year=2025", headers=planner).json()
    years = {row["year"]: row for row in document["years"]}
    assert (years[2025]["devices_initial"], years[2025]["devices_new"]) == (24, 2)
    assert (years[2025]["devices_removed"], years[2025]["devices_total"]) == (1, 25)
    assert (years[2025]["training_actions"], years[2025]["people_trained"]) == (2, 42)
    assert (years[2026]["training_actions"], years[2026]["people_trained"]) == (1, 9)
    assert (years[2026]["uses"], years[2026]["people_attended"]) == (1, 1)
    assert years[2026]["status"] == "in_course" and years[2027]["devices_total"] is None
    assert document["to_date"]["people_trained"] == 51
    assert document["to_date"]["entities_with_training"] == 2
    density = {row["id"]: row for row in document["density"]}
    assert density["city"]["devices_per_100k"] == pytest.approx(25 / 77_157 * 100_000, abs=1e-6)
    assert density["castilla_y_leon"]["devices_needed"] == 1
    assert document["plan"]["start"] == "2025-01-01"
    assert document["data_origin"] == "base de datos"
    assert outside.status_code == 422
    assert outside.json()["code"] == "invalid_indicator_input"
    assert "fuera del plan" in outside.json()["message"]
    assert bad_day.status_code == 422
    assert [row["year"] for row in one_year["years"]] == [2025]
    assert one_year["year_on_year"][0]["devices_total"] is None  # no year before the plan
    # lives saved: the model's estimates, the plan's devices' part, no cost configured
    for row in (years[2025], years[2026]):
        assert row["lives_saved_low"] < row["lives_saved"] < row["lives_saved_high"]
        assert row["lives_saved_by_new_devices"] == pytest.approx(
            row["lives_saved"] - row["lives_saved_initial_only"], abs=2e-6
        )
        assert row["lives_saved_by_new_devices"] > 0
        assert row["cost_per_life_year_eur"] is None
    assert years[2025]["outcome_week_start"] == "2025-12-29"
    assert years[2026]["outcome_week_start"] == "2026-11-23"
    assert years[2027]["lives_saved"] is None
    assert document["outcomes"]["reach_m"] == 200.0
    assert len(document["outcomes"]["parameters"]) == len(PARAMETER_KEYS)
    assert "home_use_factor = 0" in document["outcomes"]["home_arrests"]
    assert document["plan"]["device_cost_eur"] is None


def test_the_cli_gives_the_same_figures(loaded: tuple[str, dict[str, str]]) -> None:
    db_url, tokens = loaded
    code, out, err = cli("indicators", "--as-of", AS_OF, "--format", "json", db_url=db_url)
    assert code == 0, err
    document = json.loads(out)
    with TestClient(create_app(Settings(database_url=db_url))) as client:
        api = client.get(
            f"/api/indicators?as_of={AS_OF}",
            headers={"Authorization": f"Bearer {tokens['planner']}"},
        ).json()
    assert document == api

    code, out, _ = cli("indicators", "--as-of", AS_OF, "--year", "2026", "--format", "csv",
                       db_url=db_url)  # fmt: skip
    assert code == 0
    rows = {row["indicator"]: row for row in csv.DictReader(io.StringIO(out))}
    assert list(next(iter(rows.values()))) == [
        "indicator", "label", "2025", "2026", "change_2026", "to_date"
    ]  # fmt: skip
    assert rows["people_trained"]["2025"] == "42" and rows["people_trained"]["2026"] == "9"
    assert rows["people_trained"]["change_2026"] == "-33"
    assert rows["devices_total"]["label"] == "Desfibriladores en total (al cierre)"

    code, out, err = cli("indicators", "--as-of", AS_OF, db_url=db_url)
    assert code == 0
    assert "Datos a 23/11/2026" in out and "en curso" in out
    assert "cardioprotegidas" in out and "Dinamarca" in out
    assert "32,4" in out
    assert "Vidas salvadas estimadas: valor central y banda del 5 al 95 %" in out
    assert "semana del 29/12/2025" in out and "Coste: sin configurar" in out


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (("--year", "2031"), 1, "El año 2031 está fuera del plan (2025–2028)"),
        (("--as-of", "2024-12-31"), 1, "anterior al inicio del plan"),
        (("--as-of", "ayer"), 2, "--as-of 'ayer' no es una fecha AAAA-MM-DD"),
        (("--format", "geojson"), 2, "admite table, json o csv"),
    ],
)
def test_the_cli_refuses_bad_options(
    loaded: tuple[str, dict[str, str]], args: tuple[str, ...], code: int, message: str
) -> None:
    db_url, _ = loaded
    exit_code, _, err = cli("indicators", *args, db_url=db_url)
    assert exit_code == code
    assert message in " ".join(err.split())


def test_from_files_reads_the_training_csv(tmp_path: Any, sample: Layers) -> None:
    for path in DATA_DIR.glob("*.geojson"):
        (tmp_path / path.name).write_bytes(path.read_bytes())
    (tmp_path / "training.csv").write_text(
        "held_on;entity_id;place;kind;people_trained\n"
        "03/03/2025;ent-008;Residencia;SVB + DEA;11\n"
        "2026-01-10;;Polideportivo;aed;7\n",
        encoding="utf-8",
    )
    result = runner.invoke(
        app, ["indicators", "--data-dir", str(tmp_path), "--as-of", AS_OF, "--format", "json"]
    )
    assert result.exit_code == 0, result.stderr
    years = {row["year"]: row for row in json.loads(result.stdout)["years"]}
    assert (years[2025]["people_trained"], years[2026]["people_trained"]) == (11, 7)
    assert years[2026]["uses"] == 0

    (tmp_path / "training.csv").write_text(
        "held_on,entity_id,place,kind,people_trained\n2025-02-30,ent-008,Residencia,aed,5\n",
        encoding="utf-8",
    )
    broken = runner.invoke(app, ["indicators", "--data-dir", str(tmp_path), "--as-of", AS_OF])
    assert broken.exit_code == 1
    assert "training.csv" in broken.stderr and "línea 2" in broken.stderr
    assert "held_on" in broken.stderr
