"""The annual evaluation report (``cardiomapa report``), built in process.

The sample of ``data/`` is loaded into a real database on both backends, with a few training
actions and a reported use; every figure checked in the HTML is taken from the indicators the
test computes itself and formatted here, independently of the report's own formatting.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import html as htmllib
import json
import math
import re
import shutil
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

import geo.render.report
from geo.city import CityProfile, load_city_profile
from geo.cli import app
from geo.core.indicators import INDICATOR_LABELS, SHARE_INDICATORS, Indicators, year_on_year
from geo.core.plan_lives import BANDS
from geo.core.results import IndicatorsAnalysis
from geo.io.files import read_layers
from geo.io.store import Store
from geo.render.report import css_string, number, percent
from geo.services.analysis import gaps_analysis, indicators_analysis
from geo.services.inputs import density_references, load_inputs, outcome_parameters, plan_registers
from geo.settings import Settings
from tests.conftest import DATA_DIR

runner = CliRunner()
AS_OF = "2026-11-23"
HEADINGS = (
    "1. Resumen del año 2026", "2. Indicadores del plan", "3. Vidas salvadas estimadas",
    "4. Densidad de desfibriladores: comparación", "5. Cobertura por zona CEAS",
    "6. Perfil semanal de cobertura", "7. Mapas", "8. Huecos de cobertura",
    "9. Próximos desfibriladores", "10. Formación y usos", "11. Método y fuentes",
)  # fmt: skip
TRAINING = (
    {"held_on": dt.date(2025, 3, 11), "entity_id": "ent-001", "kind": "bls_aed",
     "people_trained": 22},
    {"held_on": dt.date(2025, 10, 2), "entity_id": "ent-008", "kind": "refresher",
     "people_trained": 9},
    {"held_on": dt.date(2026, 4, 8), "entity_id": None, "kind": "aed", "people_trained": 18},
    {"held_on": dt.date(2026, 6, 10), "entity_id": "ent-021", "kind": "bls_aed",
     "people_trained": 1234},
)  # fmt: skip
#: An external resource: a src/href (or CSS url()) that leaves the file.
OUTSIDE = re.compile(r"""(?:\b(?:src|href)\s*=\s*["']?\s*|url\(\s*["']?)(?:https?:)?//""", re.I)


# --- independent Spanish formatting ------------------------------------------------------------


def es(value: float, decimals: int = 0) -> str:
    text = f"{abs(value):,.{decimals}f}".translate(str.maketrans(",.", ".,"))
    return ("−" if round(value, decimals) < 0 else "") + text


def pct(share: float) -> str:
    return f"{es(share * 100, 1)} %"


def places(value: float) -> int:
    """Lives and life-years: two significant digits, 2 to 5 decimals."""
    return 2 if value == 0 else max(2, min(5, 1 - math.floor(math.log10(abs(value)))))


def shown(key: str, value: Any, decimals: int | None = None) -> str:
    if value is None or value != value:  # NaN
        return "—"
    if key in SHARE_INDICATORS:
        return pct(value)
    if key.startswith(("lives_", "life_years_")):
        return es(value, places(value) if decimals is None else decimals)
    if key.endswith("_eur") or "_eur_" in key:
        return f"{es(value)} €"
    return es(value, 1) if key == "devices_per_100k" else es(value)


def with_band(key: str, row: Any) -> str:
    """An estimate and, after a space (the line break in a cell), its band."""
    value = shown(key, row[key])
    low, high = (row[f"{key}_{end}"] for end in ("low", "high"))
    if value == "—" or low != low or high != high:
        return value
    decimals = places(row[key]) if key.startswith(("lives_", "life_years_")) else None
    return f"{value} {shown(key, low, decimals)}–{shown(key, high, decimals)}"


def change(key: str, value: float) -> str:
    if value != value:
        return "—"
    scaled = value * 100 if key in SHARE_INDICATORS else value
    decimals = 0 if key not in SHARE_INDICATORS and key != "devices_per_100k" else 1
    if key.startswith(("lives_", "life_years_")):
        decimals = places(value)
    unit = " p. p." if key in SHARE_INDICATORS else " €" if key.endswith("_eur") else ""
    sign = "+" if round(scaled, decimals) > 0 else "" if round(scaled, decimals) < 0 else "±"
    return sign + es(scaled, decimals) + unit


# --- a small reader of the report's tables -----------------------------------------------------


class Tables(HTMLParser):
    """Every table of a page: its class and its rows of cell texts (header rows included)."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: list[tuple[str, list[list[str]]]] = []
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "table":
            self.tables.append((dict(attrs).get("class") or "", []))
        elif tag == "tr" and self.tables:
            self.tables[-1][1].append([])
        elif tag in ("td", "th"):
            self._cell = []
        elif self._cell is not None:
            self._cell.append(" ")  # a tag inside a cell (a note, a line) separates words

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None:
            self.tables[-1][1][-1].append(" ".join("".join(self._cell).split()))
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def tables(page: str) -> list[tuple[str, list[list[str]]]]:
    parser = Tables()
    parser.feed(page)
    return parser.tables


def sample_city() -> CityProfile:
    return load_city_profile(DATA_DIR / "city.json")


def text_of(page: str) -> str:
    """The page's text with tags removed and spaces collapsed (entities decoded)."""
    body = re.sub(r"<svg.*?</svg>", " ", page, flags=re.S)
    body = re.sub(r"</?(?:strong|em|b|span)\b[^>]*>", "", body)  # inline: no word break
    return " ".join(htmllib.unescape(re.sub(r"<[^>]+>", " ", body)).split())


# --- fixtures ----------------------------------------------------------------------------------


def run(*args: str, db_url: str | None = None) -> tuple[int, str, str]:
    env = {"CARDIOMAPA_DATABASE_URL": db_url} if db_url else {}
    result = runner.invoke(app, list(args), env=env)
    return result.exit_code, result.stdout, result.stderr


def load_sample(db_url: str) -> None:
    city = load_city_profile(DATA_DIR / "city.json")
    with Store.open(db_url) as store:
        store.load(read_layers(DATA_DIR, city))
        for number_, action in enumerate(TRAINING, start=1):
            store.insert_training(
                {**action, "place": "Sala de formación", "trainer": None, "notes": None,
                 "source": "synthetic", "source_id": f"test-{number_}"},
                actor="test",
            )  # fmt: skip
        store.insert_use(
            {"device_id": "dea-012", "people_attended": 2,
             "used_at": dt.datetime(2026, 2, 14, 21, 30, tzinfo=dt.UTC)},
            actor="test",
        )  # fmt: skip


def analyse(settings: Settings, *, from_files: bool) -> IndicatorsAnalysis:
    today = dt.date.fromisoformat(AS_OF)
    with contextlib.ExitStack() as stack:
        store = None if from_files else stack.enter_context(Store.open(settings.database_url))
        inputs = load_inputs(settings, store=store)
        training, uses = plan_registers(settings, inputs, store=store, today=today)
    return indicators_analysis(
        inputs, training=training, uses=uses, references=density_references(settings),
        as_of=today, radius_m=100.0, detour_factor=1.3, year=2026,
        outcome_parameters=outcome_parameters(settings),
    )  # fmt: skip


# --- the report from the database ------------------------------------------------------------


def test_report_from_the_database_holds_the_indicators(db_url: str, tmp_path: Path) -> None:
    load_sample(db_url)
    out = tmp_path / "informe.html"
    code, stdout, stderr = run("report", "--year", "2026", "--as-of", AS_OF, "--out", str(out),
                               db_url=db_url)  # fmt: skip
    assert code == 0, stderr
    assert "Informe de 2026 escrito en" in stdout
    page = out.read_text(encoding="utf-8")
    text = text_of(page)
    settings = Settings(database_url=db_url)
    analysis = analyse(settings, from_files=False)
    ind = analysis.indicators
    row = ind.year(2026)

    for heading in HEADINGS:
        assert f">{heading}</h2>" in page
    assert "Informe de evaluación 2026" in text
    assert ind.plan.name in text and ind.plan.action in text and ind.plan.goal in text
    assert "DATOS DE MUESTRA SINTÉTICOS" in text
    assert "base de datos" in text  # where the data came from
    # the training register is part of the records the notice and the provenance table count
    layers_total = sum(len(frame) for frame in read_layers(DATA_DIR, sample_city()).frames.values())
    records = es(layers_total + len(TRAINING))
    assert f"de {records} registros son datos de muestra sintéticos" in text
    assert f"Registro de formación synthetic {es(len(TRAINING))}" in text

    # summary cards
    assert f"{row['entities_cardioprotected']} de {row['entities_members']}" in text
    assert f"Personas formadas en 2026 {es(row['people_trained'])}" in text
    assert es(row["people_trained"]) == "1.252"  # 18 + 1,234: the thousands separator shows
    assert f"Personas atendidas con un DEA en 2026 {es(row['people_attended'])}" in text
    assert f"{pct(row['share_covered'])} " in text
    assert f"{pct(row['share_covered_any_hours'])} con cualquier DEA en su horario" in text
    region = ind.density.set_index("id").loc[ind.plan.region_reference]
    needed = int(region["devices_needed"])
    assert needed >= 1
    assert f"{es(region['devices_per_100k'], 1)} por 100.000 ({int(region['year'])})" in text
    verb = "falta" if needed == 1 else "faltan"
    assert f"Para superarla {verb} {needed} desfibrilador" in text
    assert f"({es(int(row['devices_total']) + needed)} en total)" in text

    # the indicators table: one row per indicator, the plan years, the change, the plan to date
    found = dict(tables(page))
    indicators = found["indicators"]
    header = indicators[0]
    assert header[:5] == ["Indicador", "2025", "2026 en curso, a 23/11/2026", "2027", "2028"]
    change_row = year_on_year(ind.years).set_index("year").loc[2026]
    first = ind.year(2025)
    body = {cells[0]: cells[1:] for cells in indicators[1:]}
    assert len(body) == len(INDICATOR_LABELS)
    for key, label in INDICATOR_LABELS.items():
        cells = body[label.replace("≤ radio", "≤ 100 m")]
        if key in BANDS:  # the band under the estimate
            assert cells == [
                with_band(key, first), with_band(key, row), "—", "—",
                change(key, change_row[key]), with_band(key, ind.to_date),
            ], key  # fmt: skip
            continue
        assert cells == [
            shown(key, first[key]), shown(key, row[key]), "—", "—",
            change(key, change_row[key]), shown(key, ind.to_date[key]),
        ], key  # fmt: skip

    # lives saved: per year, the plan's devices' share, no cost configured, the parameters
    lives = found["lives"]
    assert lives[0][:3] == ["Año", "Semana del modelo", "Vidas salvadas al año banda debajo"]
    for cells, year_row in zip(lives[1:], (first, row), strict=True):
        week = year_row["outcome_week_start"]
        assert cells == [
            f"{year_row['year']} ({'cerrado' if year_row['year'] == 2025 else 'en curso'})",
            f"{week:%d/%m/%Y} – {week + dt.timedelta(days=6):%d/%m/%Y}",
            with_band("lives_saved", year_row),
            shown("lives_saved", year_row["lives_saved_initial_only"]),
            with_band("lives_saved_by_new_devices", year_row),
            es(year_row["plan_devices_in_place"]),
            with_band("life_years_by_new_devices", year_row),
        ]
    assert first["outcome_week_start"] == dt.date(2025, 12, 29)
    assert row["outcome_week_start"] == dt.date(2026, 11, 23)
    assert row["lives_saved"] > row["lives_saved_initial_only"] > 0
    assert "No se calcula: el plan no tiene configurado el coste de un desfibrilador" in text
    assert "cardiomapa no usa un precio sin fuente" in text
    assert "cost" not in found
    assert "Las paradas en domicilio no se cuentan como alcanzables por un DEA público" in text
    assert "Son estimaciones de un modelo, no un recuento de vidas salvadas" in text
    parameters = found["parameters"][1:]
    model = outcome_parameters(settings)
    assert len(parameters) == len(model.items)
    for cells, item in zip(parameters, model.to_records(), strict=True):
        assert cells[0] == f"{item['label']} {item['key']}"
        # The note follows the source: it says what was derived or assumed.
        assert cells[3] == f"{item['source']} {item['note']}".strip()
        if item["low"] == item["high"]:
            assert cells[2] == "fijo"
    by_key = {cells[0].rsplit(" ", 1)[1]: cells for cells in parameters}
    assert by_key["incidence_per_100k"][1:3] == ["18,6 por 100.000 hab. y año", "14,6–25"]
    assert by_key["use_probability"][1:3] == ["0,33 probabilidad", "0,18–0,53"]
    assert (
        f"Vidas salvadas al año que estima el modelo al 23/11/2026: "
        f"{shown('lives_saved', row['lives_saved'])}" in text
    )

    # density: every reference, with the devices needed to pass it
    density = found["density"]
    for ref in ind.density.itertuples():
        cells = next(cells for cells in density if cells[0] == ref.name)
        assert cells[1] == es(ref.devices_per_100k, 1)
        assert cells[5] == ("—" if ref.is_city else es(ref.devices_needed))
    assert "no incluye otras ciudades" in text

    # zones
    zones = found["zones"][1:]
    assert zones == [
        [zone.zone_name, es(zone.residents), es(zone.devices_initial), es(zone.devices_new),
         es(zone.devices_total), es(zone.devices_per_100k, 1), pct(zone.share_covered),
         pct(zone.share_covered_any_hours)]
        for zone in ind.zones.itertuples()
    ]  # fmt: skip

    # gaps
    with Store.open(settings.database_url) as store:
        inputs = load_inputs(settings, store=store)
    gaps = gaps_analysis(inputs, radius_m=100.0, at=None, cell_m=None, detour_factor=1.3,
                         reference_date=ind.as_of)  # fmt: skip
    uncovered = gaps.result.residents - gaps.result.residents_covered
    assert f"{es(uncovered)} de {es(gaps.result.residents)} residentes" in text
    assert found["gaps"][1:3] == [
        [str(area.rank), _zone_name(ind, area.zone_id), es(area.residents),
         es(area.residents_65_plus), es(area.nearest_distance_m)]
        for area in gaps.areas.head(2).itertuples()
    ]  # fmt: skip
    lacking = ind.entities[~ind.entities["cardioprotected"]]
    assert [cells[0] for cells in found["lacking"][1:]] == lacking["name"].tolist()

    # training by kind (Spanish labels), people attended by year
    assert "SVB + DEA" in text and "Reciclaje SVB + DEA" in text and "Uso del DEA" in text
    assert f"2026 Total del año 2 {es(1234 + 18)}" in text
    assert f"2026 en curso {es(row['uses'])} {es(row['people_attended'])}" in text
    assert row["people_attended"] == 2

    # method and sources
    for ref in ind.density[~ind.density["is_city"]].itertuples():
        assert f"{ref.name}: {ref.source}" in text
    for note in ind.notes:
        assert note in text
    assert "Fuente: INE" in text


def _zone_name(ind: Indicators, zone_id: str) -> str:
    return str(ind.zones.set_index("zone_id").loc[zone_id, "zone_name"])


def test_the_report_is_self_contained_and_well_formed(tmp_path: Path) -> None:
    out = tmp_path / "informe.html"
    code, _, stderr = run("report", "--year", "2026", "--as-of", AS_OF, "--out", str(out),
                          "--data-dir", str(DATA_DIR))  # fmt: skip
    assert code == 0, stderr
    page = out.read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>")
    assert OUTSIDE.search(page) is None
    assert "@import" not in page and "<link" not in page and "<script" not in page
    assert "<img" not in page  # charts and maps are inline SVG
    charts = re.findall(r'<svg class="chart" role="img" aria-label="[^"]+" data-chart="([\w-]+)"',
                        page)  # fmt: skip
    assert charts == ["density", "zones", "week", "map-coverage", "map-gaps", "map-proposal"]
    ids = re.findall(r'\sid="([^"]+)"', page)
    assert len(ids) == len(set(ids)), "every id (the SVGs' too) is unique in the page"
    for reference in re.findall(r'href="#([^"]+)"', page) + re.findall(r"url\(#([^)]+)\)", page):
        assert reference in ids
    assert "@page" in page and "size: A4" in page and "counter(pages)" in page
    # files: the training register is data/training.csv; uses are only reported to a database
    text = text_of(page)
    assert "archivos de" in text
    assert "Formación en soporte vital básico y uso del DEA" in text


def test_text_from_the_data_stays_text(tmp_path: Path) -> None:
    data = tmp_path / "data"
    shutil.copytree(DATA_DIR, data)
    _rename(data / "ceas.geojson", 0, "{{ 7*7 }} $\\frac{1}$ <b>zona</b>")
    _rename(data / "entities.geojson", "ent-013", "<script>alert(1)</script> {% raw %}")
    profile = json.loads((data / "city.json").read_text(encoding="utf-8"))
    profile["plan"]["name"] = 'Plan "x" </style><script>alert(2)</script> \\ {{ 7*7 }}'
    (data / "city.json").write_text(json.dumps(profile, ensure_ascii=False), encoding="utf-8")
    out = tmp_path / "informe.html"
    code, _, stderr = run("report", "--year", "2026", "--as-of", AS_OF, "--out", str(out),
                          "--data-dir", str(data))  # fmt: skip
    assert code == 0, stderr
    page = out.read_text(encoding="utf-8")
    assert "<script" not in page and "<b>zona" not in page and "</style><script" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt; {% raw %}" in page
    assert "{{ 7*7 }} $\\frac{1}$ &lt;b&gt;zona&lt;/b&gt;" in page
    assert "Plan &#34;x&#34; &lt;/style&gt;&lt;script&gt;alert(2)&lt;/script&gt;" in page
    style = page[page.index("<style>") : page.index("</style>")]
    assert "<" not in style.replace("<style>", "")


def test_a_configured_cost_gives_the_cost_per_life_year(tmp_path: Path) -> None:
    data = tmp_path / "data"
    shutil.copytree(DATA_DIR, data)
    profile = json.loads((data / "city.json").read_text(encoding="utf-8"))
    profile["plan"] |= {"device_cost_eur": 1800, "device_lifetime_years": 6,
                        "device_upkeep_eur_per_year": 120,
                        "device_cost_source": "Presupuesto de prueba"}  # fmt: skip
    (data / "city.json").write_text(json.dumps(profile, ensure_ascii=False), encoding="utf-8")
    out = tmp_path / "informe.html"
    code, _, stderr = run("report", "--year", "2026", "--as-of", AS_OF, "--out", str(out),
                          "--data-dir", str(data))  # fmt: skip
    assert code == 0, stderr
    page = out.read_text(encoding="utf-8")
    text = text_of(page)
    ind = analyse(Settings(data_dir=data), from_files=True).indicators
    per_device = 1800 / 6 + 120  # 420 € a year
    assert "1.800 € por desfibrilador (compra e instalación) repartidos en 6 años" in text
    assert "más 120 € al año de mantenimiento: 420 € al año por desfibrilador" in text
    assert "Fuente del coste: Presupuesto de prueba" in text
    assert "No se calcula" not in text
    rows = dict(tables(page))["cost"][1:]
    for cells, year in zip(rows, (2025, 2026), strict=True):
        row = ind.year(year)
        devices = int(row["plan_devices_in_place"])
        assert devices >= 1
        annual = devices * per_device
        life_years = row["life_years_by_new_devices"]
        assert row["cost_per_life_year_eur"] == pytest.approx(annual / life_years)
        low, high = row["cost_per_life_year_eur_low"], row["cost_per_life_year_eur_high"]
        assert low < annual / life_years < high
        assert cells == [
            f"{year} ({'cerrado' if year == 2025 else 'en curso'})",
            es(devices),
            f"{es(annual)} €",
            shown("life_years_by_new_devices", life_years),
            f"{es(annual / life_years)} € {es(low)} €–{es(high)} €",
        ]
    body = {cells[0]: cells[1:] for cells in dict(tables(page))["indicators"][1:]}
    assert body["Coste por año de vida ganado"][1].startswith(
        f"{es(ind.year(2026)['cost_per_life_year_eur'])} €"
    )


def _rename(path: Path, which: int | str, name: str) -> None:
    collection = json.loads(path.read_text(encoding="utf-8"))
    features = collection["features"]
    feature = features[which] if isinstance(which, int) else next(
        f for f in features if f["properties"]["id"] == which
    )  # fmt: skip
    feature["properties"]["name"] = name
    path.write_text(json.dumps(collection, ensure_ascii=False), encoding="utf-8")


# --- the command's errors --------------------------------------------------------------------


def test_a_year_outside_the_plan_is_refused(tmp_path: Path) -> None:
    out = tmp_path / "informe.html"
    code, _, stderr = run("report", "--year", "2031", "--out", str(out), "--data-dir",
                          str(DATA_DIR))  # fmt: skip
    assert code == 1
    assert "El año 2031 está fuera del plan (2025–2028)." in stderr
    assert not out.exists()


def test_a_year_not_started_is_refused(tmp_path: Path) -> None:
    out = tmp_path / "informe.html"
    code, _, stderr = run("report", "--year", "2027", "--as-of", AS_OF, "--out", str(out),
                          "--data-dir", str(DATA_DIR))  # fmt: skip
    assert code == 1
    assert "El año 2027 aún no ha empezado a la fecha de los datos (23/11/2026)" in stderr
    assert not out.exists()


def test_out_into_a_missing_folder(tmp_path: Path) -> None:
    out = tmp_path / "no-such-folder" / "informe.html"
    code, _, stderr = run("report", "--year", "2026", "--out", str(out), "--data-dir",
                          str(DATA_DIR))  # fmt: skip
    assert code == 2
    assert "no existe" in stderr and "--out" in stderr


def test_a_bad_as_of_date(tmp_path: Path) -> None:
    code, _, stderr = run("report", "--year", "2026", "--as-of", "23/11/2026", "--out",
                          str(tmp_path / "informe.html"), "--data-dir", str(DATA_DIR))  # fmt: skip
    assert code == 2
    assert "--as-of" in stderr and "AAAA-MM-DD" in stderr


def test_pdf_without_chromium_still_writes_the_html(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    empty = tmp_path / "bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    monkeypatch.setattr(geo.render.report, "CHROMIUM_PATHS", ())
    out, pdf = tmp_path / "informe.html", tmp_path / "informe.pdf"
    code, _, stderr = run("report", "--year", "2026", "--as-of", AS_OF, "--out", str(out),
                          "--pdf", str(pdf), "--data-dir", str(DATA_DIR))  # fmt: skip
    assert code == 1
    assert "(chromium_not_found)" in stderr
    assert "No se encuentra Chromium para imprimir el PDF" in stderr
    assert out.stat().st_size > 100_000
    assert not pdf.exists()


# --- formatting helpers ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [(number(1234.5, 1), "1.234,5"), (number(77157), "77.157"), (number(-1234), "−1.234"),
     (number(None), "—"), (number(float("nan")), "—"), (percent(0.123), "12,3 %"),
     (percent(0.0077), "0,8 %"), (percent(None), "—")],
)  # fmt: skip
def test_spanish_numbers(value: str, expected: str) -> None:
    assert value == expected


def test_css_strings_cannot_leave_their_quotes() -> None:
    text = css_string('a "b" </style>\\ ñ')
    assert str(text) == (
        '"a \\000022 b\\000022  \\00003c \\00002f style\\00003e \\00005c  \\0000f1 "'
    )
    assert not set('<>"\\') & set(str(text)[1:-1].replace("\\0", ""))
