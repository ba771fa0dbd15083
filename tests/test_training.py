"""The training register (plan action 1.3): validation, CSV registers, storage, API and CLI.

Parsing and CSV reading are pure; everything that stores runs on SpatiaLite and on PostGIS (the
``db_url`` fixture). The tiny fixture layers have two entities, ``ent-1`` and ``ent-2``.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy.exc import IntegrityError
from typer.testing import CliRunner

from api.app import create_app
from api.schemas import ErrorPublic, TrainingImportPublic, TrainingPage, TrainingPublic
from geo.cli import app as cli_app
from geo.core.indicators import KIND_LABELS
from geo.core.layers import Layers
from geo.errors import (
    ConflictError,
    ForbiddenError,
    InputError,
    NotFoundError,
    Problem,
    RecordValidationError,
)
from geo.io.store import TRAINING_ACTIONS, Store, utcnow
from geo.services.registers import CsvRow, ImportReport, Where
from geo.services.tokens import Principal, issue_token
from geo.services.training import (
    TrainingRecord,
    content_key,
    delete_training,
    import_training,
    parse_training,
    read_training_csv,
    record_training,
    training_rows,
)
from geo.settings import Settings
from tests.conftest import DATA_DIR
from tests.servers import Api

TODAY = dt.date(2026, 11, 1)
ENTITIES = frozenset({"ent-1", "ent-2"})
WHERE = Where("registro.csv", 4)
VALID: dict[str, Any] = {
    "held_on": "2026-03-14",
    "entity_id": "ent-1",
    "place": "Residencia Uno, sala polivalente",
    "kind": "bls_aed",
    "people_trained": "12",
}

#: A register as a Spanish spreadsheet saves it: BOM, semicolons, DD/MM/AAAA, CRLF, blank rows.
SPANISH_CSV = (
    "\ufeffheld_on;entity_id;place;kind;people_trained;trainer;notes;id\r\n"
    "14/03/2025;ent-1;Residencia Uno, sala polivalente;SVB + DEA;12;Enfermería;;F-1\r\n"
    ";;;;;;;\r\n"
    "2/4/2025;;Pabellón municipal;Uso del DEA;20;;sesión abierta;F-2\r\n"
    "2026-01-20;ent-2;Asociación Dos;reciclaje;8;;;F-3\r\n"
)
#: The same register without ids: rows are recognised by their content.
PLAIN_CSV = (
    "held_on,entity_id,place,kind,people_trained,trainer\n"
    "2025-03-14,ent-1,Residencia Uno,bls_aed,12,Enfermería\n"
    "2025-04-02,,Pabellón municipal,aed,20,\n"
)


def parse(**changes: Any) -> TrainingRecord:
    values = {key: value for key, value in {**VALID, **changes}.items() if value is not None}
    return parse_training(values, entity_ids=ENTITIES, today=TODAY, where=WHERE)


def problems_of(**changes: Any) -> tuple[Problem, ...]:
    with pytest.raises(RecordValidationError) as caught:
        parse(**changes)
    return caught.value.problems


# --- one record ----------------------------------------------------------------------------


def test_a_valid_record_is_typed() -> None:
    assert parse() == TrainingRecord(
        held_on=dt.date(2026, 3, 14),
        entity_id="ent-1",
        place="Residencia Uno, sala polivalente",
        kind="bls_aed",
        people_trained=12,
        trainer=None,
        notes=None,
    )
    typed = parse(held_on=dt.date(2026, 3, 14), people_trained=12, entity_id=" ", trainer="")
    assert (typed.held_on, typed.people_trained, typed.entity_id, typed.trainer) == (
        dt.date(2026, 3, 14), 12, None, None,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("text", "day"),
    [("2025-03-14", dt.date(2025, 3, 14)), ("14/03/2025", dt.date(2025, 3, 14)),
     ("4/3/2025", dt.date(2025, 3, 4)), (" 01/11/2026 ", TODAY)],
)  # fmt: skip
def test_dates_are_iso_or_spanish(text: str, day: dt.date) -> None:
    assert parse(held_on=text).held_on == day


@pytest.mark.parametrize(
    ("text", "kind"),
    [("bls_aed", "bls_aed"), ("SVB + DEA", "bls_aed"), ("SVB+DEA", "bls_aed"),
     ("svb y desa", "bls_aed"), ("AED", "aed"), ("Uso del DEA", "aed"), ("uso del dea", "aed"),
     ("DEA", "aed"), ("SVB (soporte vital básico)", "bls"), ("svb (SOPORTE VITAL BASICO)", "bls"),
     ("SVB", "bls"), ("Reciclaje SVB + DEA", "refresher"), ("reciclaje", "refresher"),
     ("REFRESHER", "refresher")],
)  # fmt: skip
def test_kinds_are_codes_or_spanish_labels_in_any_case(text: str, kind: str) -> None:
    assert parse(kind=text).kind == kind


def test_every_label_is_accepted_as_its_kind() -> None:
    for code, label in KIND_LABELS.items():
        assert parse(kind=label).kind == code


KINDS_TEXT = (
    "bls_aed (SVB + DEA), aed (Uso del DEA), bls (SVB (soporte vital básico)), "
    "refresher (Reciclaje SVB + DEA)"
)
BAD_VALUES: list[tuple[dict[str, Any], str, str, str]] = [
    ({"colour": "rojo"}, "colour", "unknown_field",
     "campo desconocido; se admiten: held_on, entity_id, place, kind, people_trained, trainer, "
     "notes."),
    ({"held_on": None}, "held_on", "missing_field", "falta este campo obligatorio."),
    ({"place": "  "}, "place", "missing_field", "falta este campo obligatorio."),
    ({"kind": ""}, "kind", "missing_field", "falta este campo obligatorio."),
    ({"people_trained": None}, "people_trained", "missing_field", "falta este campo obligatorio."),
    ({"held_on": "2025-13-01"}, "held_on", "invalid_date",
     "fecha no válida '2025-13-01'; se admite AAAA-MM-DD (2025-03-14) o DD/MM/AAAA (14/03/2025)."),
    ({"held_on": "31/02/2025"}, "held_on", "invalid_date",
     "fecha no válida '31/02/2025'; se admite AAAA-MM-DD (2025-03-14) o DD/MM/AAAA (14/03/2025)."),
    ({"held_on": "14-03-2025"}, "held_on", "invalid_date",
     "fecha no válida '14-03-2025'; se admite AAAA-MM-DD (2025-03-14) o DD/MM/AAAA (14/03/2025)."),
    ({"held_on": "14/03/25"}, "held_on", "invalid_date",
     "fecha no válida '14/03/25'; se admite AAAA-MM-DD (2025-03-14) o DD/MM/AAAA (14/03/2025)."),
    ({"held_on": "2026-11-02"}, "held_on", "date_in_future",
     "la fecha 2026-11-02 es posterior a hoy (2026-11-01): registre solo formaciones ya "
     "impartidas."),
    ({"held_on": "1850-01-01"}, "held_on", "out_of_range",
     "la fecha 1850-01-01 es anterior a 1900; revise el año."),
    ({"kind": "primeros auxilios"}, "kind", "invalid_choice",
     f"tipo de formación 'primeros auxilios' no admitido; se admite: {KINDS_TEXT}."),
    ({"people_trained": "doce"}, "people_trained", "invalid_value",
     "se esperaba un número entero de personas y llegó 'doce'."),
    ({"people_trained": "12,5"}, "people_trained", "invalid_value",
     "se esperaba un número entero de personas y llegó '12,5'."),
    ({"people_trained": True}, "people_trained", "invalid_value",
     "se esperaba un número entero de personas y llegó un booleano."),
    ({"people_trained": "0"}, "people_trained", "out_of_range",
     "debe haber al menos 1 persona formada y llegó 0."),
    ({"people_trained": -3}, "people_trained", "out_of_range",
     "debe haber al menos 1 persona formada y llegó -3."),
    ({"people_trained": "1001"}, "people_trained", "out_of_range",
     "1001 personas en una sola acción no es verosímil (máximo 1000); revise la cifra o "
     "registre cada grupo por separado."),
    ({"entity_id": "ent-999"}, "entity_id", "unknown_entity",
     "no existe la entidad 'ent-999' en la capa de entidades."),
    ({"place": "x" * 201}, "place", "too_long", "texto demasiado largo (máximo 200 caracteres)."),
    ({"trainer": "A\x00B"}, "trainer", "invalid_value",
     "el texto contiene caracteres nulos (\\u0000)."),
    ({"notes": 42}, "notes", "invalid_value", "se esperaba texto y llegó el número 42."),
]  # fmt: skip


@pytest.mark.parametrize(
    ("changes", "field", "code", "message"), BAD_VALUES, ids=[case[1] for case in BAD_VALUES]
)
def test_each_rule_names_the_file_line_and_field_in_spanish(
    changes: dict[str, Any], field: str, code: str, message: str
) -> None:
    (problem,) = problems_of(**changes)
    assert (problem.file, problem.line, problem.field, problem.code) == (
        "registro.csv", 4, field, code,
    )  # fmt: skip
    assert problem.message == message
    assert str(problem) == f'registro.csv, línea 4, campo "{field}": {message}'


def test_every_problem_of_a_record_is_reported_at_once() -> None:
    problems = problems_of(held_on="ayer", kind="otro", people_trained="0", entity_id="ent-9")
    assert [p.field for p in problems] == ["held_on", "entity_id", "kind", "people_trained"]


# --- CSV registers -------------------------------------------------------------------------


def test_a_spanish_spreadsheet_is_read_with_its_line_numbers() -> None:
    rows = read_training_csv(SPANISH_CSV.encode("utf-8"), name="formacion.csv")
    assert [row.line for row in rows] == [2, 4, 5]
    assert rows[0].values["place"] == "Residencia Uno, sala polivalente"
    assert rows[1].values["entity_id"] == ""
    prepared = training_rows(
        rows, file="formacion.csv", entity_ids=ENTITIES, today=TODAY, source="csv:formacion.csv"
    )
    assert [(r["held_on"], r["kind"], r["people_trained"], r["source_id"]) for r in prepared] == [
        (dt.date(2025, 3, 14), "bls_aed", 12, "F-1"),
        (dt.date(2025, 4, 2), "aed", 20, "F-2"),
        (dt.date(2026, 1, 20), "refresher", 8, "F-3"),
    ]
    assert {r["source"] for r in prepared} == {"csv:formacion.csv"}
    assert prepared[1]["entity_id"] is None and prepared[1]["notes"] == "sesión abierta"


def test_text_and_paths_are_read_like_bytes(tmp_path: Path) -> None:
    path = tmp_path / "registro.csv"
    path.write_text(SPANISH_CSV, encoding="utf-8")
    from_path = read_training_csv(path)
    assert from_path == read_training_csv(SPANISH_CSV) == read_training_csv(path.read_bytes())


def test_a_quoted_field_over_two_lines_keeps_later_line_numbers_right() -> None:
    text = (
        "held_on,entity_id,place,kind,people_trained,notes\n"
        '2025-03-14,ent-1,Residencia Uno,bls,5,"dos\nlíneas"\n'
        "2025-03-15,ent-1,Residencia Uno,pizza,5,\n"
    )
    with pytest.raises(RecordValidationError) as caught:
        training_rows(read_training_csv(text), file="f.csv", entity_ids=ENTITIES, today=TODAY,
                      source="s")  # fmt: skip
    (problem,) = caught.value.problems
    assert (problem.line, problem.field) == (4, "kind")


def test_trailing_empty_cells_from_a_spreadsheet_are_ignored() -> None:
    text = "held_on;entity_id;place;kind;people_trained;;\n2025-03-14;;Sala;aed;5;;\n"
    assert read_training_csv(text)[0].values == {
        "held_on": "2025-03-14", "entity_id": "", "place": "Sala", "kind": "aed",
        "people_trained": "5",
    }  # fmt: skip


BAD_FILES: list[tuple[bytes, list[str]]] = [
    (b"", ['datos.csv, línea 1: el archivo está vacío; la primera línea debe ser la cabecera con '
           'las columnas held_on, entity_id, place, kind, people_trained.']),
    (b"held_on,place,kind,people_trained,colour\n",
     ['datos.csv, línea 1, campo "colour": columna desconocida; se admiten las columnas '
      "obligatorias: held_on, entity_id, place, kind, people_trained; opcionales: trainer, notes, "
      "id, source.",
      'datos.csv, línea 1, campo "entity_id": falta esta columna en la cabecera (obligatorias: '
      "held_on, entity_id, place, kind, people_trained; opcionales: trainer, notes, id, source)."]),
    (b"held_on,entity_id,place,kind,people_trained,kind\n",
     ['datos.csv, línea 1, campo "kind": columna repetida en la cabecera.']),
    ("held_on,entity_id,place,kind,people_trained\n2025-01-01,,Sala,aed,5\n2025-01-02,,Sala\n"
     "2025-01-03,,Café,Ñ,5,x\n".encode("latin-1"),
     ["datos.csv, línea 4: el archivo no está en UTF-8 (byte 99); guárdelo como «CSV UTF-8» en "
      "la hoja de cálculo."]),
    (b"held_on,entity_id,place,kind,people_trained\n2025-01-01,,Sala,aed,5\n2025-01-02,,Sala\n"
     b"2025-01-03,,Sala,aed,5,x\n",
     ["datos.csv, línea 3: la fila tiene 3 valores y la cabecera 5 columnas (separador ',').",
      "datos.csv, línea 4: la fila tiene 6 valores y la cabecera 5 columnas (separador ',')."]),
    (b'held_on,entity_id,place,kind,people_trained\n2025-01-01,,"Sala"x,aed,5\n',
     ["datos.csv, línea 2: CSV mal formado: unas comillas sin cerrar o caracteres sueltos tras "
      "ellas."]),
]  # fmt: skip


@pytest.mark.parametrize(("content", "expected"), BAD_FILES)
def test_a_malformed_file_says_where(content: bytes, expected: list[str]) -> None:
    with pytest.raises(RecordValidationError) as caught:
        read_training_csv(content)
    assert [str(problem) for problem in caught.value.problems] == expected


def test_identical_rows_without_id_are_refused_naming_both_lines() -> None:
    text = PLAIN_CSV + "14/03/2025,ent-1,  residencia   UNO ,SVB + DEA,12,Otra persona\n"
    with pytest.raises(RecordValidationError) as caught:
        training_rows(read_training_csv(text), file="f.csv", entity_ids=ENTITIES, today=TODAY,
                      source="s")  # fmt: skip
    (problem,) = caught.value.problems
    assert str(problem) == (
        "f.csv, línea 4: fila repetida: misma fecha, entidad, lugar, tipo y personas que la línea "
        "2; si son acciones distintas, distíngalas con una columna id."
    )


def test_a_repeated_id_is_refused_naming_both_lines() -> None:
    text = SPANISH_CSV + "15/03/2025;ent-1;Otra sala;bls;3;;;F-1\r\n"
    with pytest.raises(RecordValidationError) as caught:
        training_rows(read_training_csv(text), file="f.csv", entity_ids=ENTITIES, today=TODAY,
                      source="s")  # fmt: skip
    (problem,) = caught.value.problems
    assert (
        str(problem) == "f.csv, línea 6, campo \"id\": id 'F-1' repetido (ya usado en la línea 2)."
    )


def test_the_content_key_ignores_how_the_row_was_written() -> None:
    iso = parse(held_on="2026-03-14", kind="bls_aed", place="Residencia Uno")
    spanish = parse(held_on="14/03/2026", kind="SVB + DEA", place="  residencia  uno ")
    assert content_key(iso) == content_key(spanish)
    assert content_key(iso) != content_key(parse(held_on="2026-03-14", people_trained="13"))


def test_a_source_column_overrides_the_default_source() -> None:
    rows = [CsvRow(2, {**VALID, "source": "synthetic", "id": "syn-1"}),
            CsvRow(3, {**VALID, "place": "Otra"})]  # fmt: skip
    prepared = training_rows(rows, file="f.csv", entity_ids=ENTITIES, today=TODAY, source="csv:f")
    assert [(r["source"], r["source_id"][:5]) for r in prepared] == [
        ("synthetic", "syn-1"), ("csv:f", "auto-"),
    ]  # fmt: skip


# --- storage (both backends) ---------------------------------------------------------------


@pytest.fixture
def loaded(store: Store, tiny_layers: Layers) -> Store:
    store.load(tiny_layers)
    return store


def training_count(store: Store) -> int:
    return store.training_actions()[1]


def audit_count(store: Store) -> int:
    return store.audit_entries(record_type="training")[1]


def run_import(store: Store, content: str | bytes, **options: Any) -> ImportReport:
    options = {"today": TODAY, "actor": "prueba", "name": "formacion.csv", **options}
    return import_training(store, content, **options)


def test_importing_the_same_file_again_changes_nothing(loaded: Store) -> None:
    first = run_import(loaded, SPANISH_CSV.encode("utf-8"))
    assert first == ImportReport("formacion.csv", 3, 3, 0, 0, dry_run=False)
    again = run_import(loaded, SPANISH_CSV.encode("utf-8"))
    assert (again.inserted, again.updated, again.unchanged) == (0, 0, 3)
    assert training_count(loaded) == 3
    assert audit_count(loaded) == 3
    plain = run_import(loaded, PLAIN_CSV, name="otro.csv")
    assert (plain.inserted, plain.unchanged) == (2, 0)
    assert (run_import(loaded, PLAIN_CSV, name="otro.csv").unchanged, training_count(loaded)) == (
        2, 5,
    )  # fmt: skip
    sources = {row["source"] for row in loaded.training_actions()[0]}
    assert sources == {"csv:formacion.csv", "csv:otro.csv"}


def test_a_changed_row_is_updated_and_audited_with_before_and_after(loaded: Store) -> None:
    run_import(loaded, SPANISH_CSV)
    changed = SPANISH_CSV.replace("reciclaje;8;", "reciclaje;9;").replace("Enfermería", "Otra")
    report = run_import(loaded, changed)
    assert (report.inserted, report.updated, report.unchanged) == (0, 2, 1)
    rows = {row["source_id"]: row for row in loaded.training_actions()[0]}
    assert rows["F-3"]["people_trained"] == 9 and rows["F-1"]["trainer"] == "Otra"
    assert rows["F-1"]["created_by"] == "prueba"
    entries, total = loaded.audit_entries(record_type="training", record_id=str(rows["F-3"]["id"]))
    assert total == 2
    update = entries[0]
    assert update["action"] == "update" and update["actor"] == "prueba"
    assert (update["before"]["people_trained"], update["after"]["people_trained"]) == (8, 9)
    assert update["after"]["held_on"] == "2026-01-20"


def test_a_dry_run_counts_and_writes_nothing(loaded: Store) -> None:
    report = run_import(loaded, SPANISH_CSV, dry_run=True)
    assert report == ImportReport("formacion.csv", 3, 3, 0, 0, dry_run=True)
    assert (training_count(loaded), audit_count(loaded)) == (0, 0)
    run_import(loaded, SPANISH_CSV)
    changed = SPANISH_CSV.replace("reciclaje;8;", "reciclaje;9;")
    report = run_import(loaded, changed, dry_run=True)
    assert (report.inserted, report.updated, report.unchanged) == (0, 1, 2)
    assert {r["people_trained"] for r in loaded.training_actions()[0]} == {12, 20, 8}


def test_a_malformed_file_writes_nothing(loaded: Store) -> None:
    run_import(loaded, PLAIN_CSV)
    before = (training_count(loaded), audit_count(loaded))
    broken = PLAIN_CSV.replace("Enfermería", "Otra") + "2025-05-01,ent-1,Sala,pizza,4,\n"
    with pytest.raises(RecordValidationError) as caught:
        run_import(loaded, broken)
    assert [str(p) for p in caught.value.problems] == [
        f"formacion.csv, línea 4, campo \"kind\": tipo de formación 'pizza' no admitido; se "
        f"admite: {KINDS_TEXT}."
    ]
    assert (training_count(loaded), audit_count(loaded)) == before
    assert {r["trainer"] for r in loaded.training_actions()[0]} == {"Enfermería", None}


def test_an_upsert_is_all_or_nothing(loaded: Store) -> None:
    good = {**parse().values(), "source": "s", "source_id": "1"}
    orphan = {**parse(place="Otra").values(), "entity_id": "ent-9", "source": "s",
              "source_id": "2"}  # fmt: skip
    with pytest.raises(InputError) as caught:
        loaded.upsert_trainings([good, orphan], actor="prueba")
    assert caught.value.code == "unknown_entity"
    with pytest.raises(InputError, match="aparece dos veces"):
        loaded.upsert_trainings([good, good], actor="prueba")
    assert (training_count(loaded), audit_count(loaded)) == (0, 0)


def test_insert_list_and_delete_are_audited(loaded: Store) -> None:
    ids = []
    for day, entity in (("2025-05-01", "ent-1"), ("2026-02-01", "ent-2"), ("2026-06-01", "ent-1")):
        values = {**parse(held_on=day, entity_id=entity).values(), "source": "api",
                  "source_id": None}  # fmt: skip
        ids.append(loaded.insert_training(values, actor="prueba"))
    items, total = loaded.training_actions()
    assert total == 3 and [item["id"] for item in items] == ids[::-1]  # newest first
    assert loaded.training_actions(year=2026)[1] == 2
    assert [i["id"] for i in loaded.training_actions(year=2026, entity_id="ent-1")[0]] == [ids[2]]
    page, total = loaded.training_actions(limit=1, offset=1)
    assert total == 3 and [item["id"] for item in page] == [ids[1]]
    assert items[0]["created_by"] == "prueba" and isinstance(items[0]["created_at"], dt.datetime)

    loaded.delete_training(ids[0], actor="prueba")
    assert loaded.training(ids[0]) is None
    with pytest.raises(NotFoundError, match=f"No existe la formación {ids[0]}"):
        loaded.delete_training(ids[0], actor="prueba")
    log, _ = loaded.audit_entries(record_type="training", record_id=str(ids[0]))
    assert [entry["action"] for entry in log] == ["delete", "create"]
    assert log[0]["before"]["place"] == VALID["place"] and log[0]["after"] is None


def test_the_store_refuses_a_repeated_key_and_an_unknown_entity(loaded: Store) -> None:
    values = {**parse().values(), "source": "csv:a.csv", "source_id": "F-1"}
    loaded.insert_training(values, actor="prueba")
    with pytest.raises(ConflictError, match="Ya existe una formación"):
        loaded.insert_training(values, actor="prueba")
    with pytest.raises(InputError, match="No existe la entidad 'ent-9'"):
        loaded.insert_training({**values, "source_id": "F-2", "entity_id": "ent-9"}, actor="x")
    assert training_count(loaded) == 1


@pytest.mark.parametrize(
    "changes", [{"kind": "first_aid"}, {"people_trained": 0}, {"source": None}]
)
def test_the_database_itself_enforces_the_kinds_and_counts(
    loaded: Store, changes: dict[str, Any]
) -> None:
    row = {**parse().values(), "source": "s", "source_id": None, "created_at": utcnow(),
           "created_by": "prueba", **changes}  # fmt: skip
    with pytest.raises(IntegrityError), loaded.engine.begin() as connection:
        connection.execute(sa.insert(TRAINING_ACTIONS).values(**row))


def test_the_frames_have_the_documented_columns_and_types(loaded: Store) -> None:
    empty = loaded.training_frame()
    assert list(empty.columns) == [
        "id", "held_on", "entity_id", "place", "kind", "people_trained", "source",
    ]  # fmt: skip
    assert empty.empty and empty["people_trained"].dtype == "int64"
    no_uses = loaded.uses_frame()
    assert list(no_uses.columns) == ["device_id", "used_at", "people_attended"]
    assert str(no_uses["used_at"].dtype) == "datetime64[us]" and no_uses.empty

    run_import(loaded, SPANISH_CSV)
    frame = loaded.training_frame()
    assert list(frame.columns) == list(empty.columns)
    assert [str(frame[c].dtype) for c in frame.columns] == [
        "int64", "object", "object", "object", "object", "int64", "object",
    ]  # fmt: skip
    assert frame["held_on"].tolist() == [
        dt.date(2025, 3, 14), dt.date(2025, 4, 2), dt.date(2026, 1, 20),
    ]  # fmt: skip
    assert all(type(day) is dt.date for day in frame["held_on"])
    assert frame["entity_id"].tolist() == ["ent-1", None, "ent-2"]
    assert frame["kind"].tolist() == ["bls_aed", "aed", "refresher"]

    used_at = dt.datetime(2026, 3, 1, 9, 30, tzinfo=dt.timezone(dt.timedelta(hours=1)))
    loaded.insert_use({"device_id": "dea-1", "used_at": used_at, "people_attended": 2},
                      actor="prueba")  # fmt: skip
    uses = loaded.uses_frame()
    assert [str(uses[c].dtype) for c in uses.columns] == ["object", "datetime64[us]", "int64"]
    assert uses.iloc[0]["device_id"] == "dea-1" and uses.iloc[0]["people_attended"] == 2
    assert uses.iloc[0]["used_at"] == pd.Timestamp("2026-03-01 08:30")  # naive UTC, as stored


# --- the service the API calls -------------------------------------------------------------


def test_recording_needs_a_planner_or_an_administrator(loaded: Store) -> None:
    values = {**VALID, "people_trained": 12}
    entity = Principal(1, "entity", "ent-1", "entidad")
    with pytest.raises(ForbiddenError):
        record_training(loaded, entity, values, today=TODAY)
    planner = Principal(2, "planner", None, "técnica")
    stored = record_training(loaded, planner, values, today=TODAY)
    assert (stored["source"], stored["source_id"]) == ("api", None)
    assert stored["created_by"] == "token 2 (planner: técnica)"
    with pytest.raises(RecordValidationError) as caught:
        record_training(loaded, planner, {**values, "entity_id": "ent-9"}, today=TODAY)
    assert str(caught.value.problems[0]) == (
        "petición, campo \"entity_id\": no existe la entidad 'ent-9' en la capa de entidades."
    )
    with pytest.raises(ForbiddenError):
        delete_training(loaded, entity, stored["id"])
    delete_training(loaded, planner, stored["id"])
    assert training_count(loaded) == 0


# --- the API (both backends) ---------------------------------------------------------------


@pytest.fixture
def api(db_url: str, tiny_layers: Layers) -> Iterator[Api]:
    with Store.open(db_url) as store:
        store.load(tiny_layers)
        tokens = {
            "admin": issue_token(store, role="admin").secret,
            "planner": issue_token(store, role="planner").secret,
            "ent-1": issue_token(store, role="entity", entity_id="ent-1").secret,
        }
        tokens["forged"] = tokens["admin"][:-4] + "AAAA"
        settings = Settings(database_url=db_url, cors_origins=["https://mapa.example.org"])
        with TestClient(create_app(settings)) as client:
            yield Api(client, store, tokens)


def error(response: httpx.Response) -> ErrorPublic:
    return ErrorPublic.model_validate(response.json())


BODY: dict[str, Any] = {
    "held_on": "2026-03-14",
    "entity_id": "ent-1",
    "place": "Residencia Uno, sala polivalente",
    "kind": "SVB + DEA",
    "people_trained": 12,
    "trainer": "Enfermería",
}
CSV_HEADERS = {"Content-Type": "text/csv; charset=utf-8"}


def create(api: Api, who: str = "planner", **changes: Any) -> httpx.Response:
    return api.call("POST", "/api/training", who, json={**BODY, **changes})


ROUTES: list[tuple[str, str, dict[str, Any]]] = [
    ("POST", "/api/training", {"json": BODY}),
    ("GET", "/api/training", {}),
    ("DELETE", "/api/training/{id}", {}),
    ("POST", "/api/training/import", {"content": PLAIN_CSV.encode(), "headers": CSV_HEADERS}),
]
SUCCESS = {"POST /api/training": 201, "GET /api/training": 200, "DELETE /api/training/{id}": 204,
           "POST /api/training/import": 200}  # fmt: skip


@pytest.mark.parametrize(
    ("method", "path", "parts"), ROUTES, ids=[f"{m} {p}" for m, p, _ in ROUTES]
)
def test_every_route_is_for_planners_and_administrators_only(
    api: Api, method: str, path: str, parts: dict[str, Any]
) -> None:
    def url() -> str:
        return path.replace("{id}", str(create(api).json()["id"]))

    for who in (None, "forged"):
        response = api.call(method, url(), who, **parts)
        assert response.status_code == 401, (who, response.text)
        assert error(response).code == "unauthenticated"
        assert response.headers["www-authenticate"] == "Bearer"
    response = api.call(method, url(), "ent-1", **parts)
    assert response.status_code == 403, response.text
    assert error(response).code == "forbidden"
    for who in ("planner", "admin"):
        response = api.call(method, url(), who, **parts)
        assert response.status_code == SUCCESS[f"{method} {path}"], (who, response.text)


def test_create_read_and_delete_through_the_api(api: Api) -> None:
    response = create(api)
    assert response.status_code == 201, response.text
    created = TrainingPublic.model_validate(response.json())
    assert response.headers["location"] == f"/api/training/{created.id}"
    assert (created.kind, created.kind_label, created.source) == ("bls_aed", "SVB + DEA", "api")
    assert created.held_on == dt.date(2026, 3, 14) and created.created_at.tzinfo is not None
    create(api, held_on="2025-06-01", entity_id=None, kind="aed")

    page = TrainingPage.model_validate(api.call("GET", "/api/training", "admin").json())
    assert page.numberMatched == 2 and page.items[0].id == created.id  # newest first
    only = api.call("GET", "/api/training", "admin", params={"year": 2025})
    assert [item["kind"] for item in only.json()["items"]] == ["aed"]
    by_entity = api.call("GET", "/api/training", "admin", params={"entity_id": "ent-1"}).json()
    assert by_entity["numberMatched"] == 1

    assert api.call("DELETE", f"/api/training/{created.id}", "planner").status_code == 204
    gone = api.call("DELETE", f"/api/training/{created.id}", "planner")
    assert gone.status_code == 404 and error(gone).code == "not_found"
    assert f"No existe la formación {created.id}" in error(gone).message

    log = api.call("GET", "/api/audit", "planner", params={"record_type": "training"}).json()
    assert [entry["action"] for entry in log["items"]] == ["delete", "create", "create"]
    assert log["items"][0]["before"]["kind"] == "bls_aed"


BAD_BODIES: list[tuple[dict[str, Any], str, str]] = [
    ({"entity_id": "ent-9"}, "unknown_entity", "entity_id"),
    ({"held_on": "2999-01-01"}, "date_in_future", "held_on"),
    ({"held_on": "14/03/2026"}, "invalid_date", "held_on"),
    ({"kind": "primeros auxilios"}, "invalid_choice", "kind"),
    ({"people_trained": 0}, "out_of_range", "people_trained"),
    ({"people_trained": 5000}, "out_of_range", "people_trained"),
    ({"place": ""}, "missing_field", "place"),
    ({"colour": "rojo"}, "unknown_field", "colour"),
    ({"trainer": "A\x00B"}, "invalid_value", "trainer"),
]


@pytest.mark.parametrize(("changes", "code", "field"), BAD_BODIES)
def test_bad_values_are_422_with_a_code_and_nothing_is_written(
    api: Api, changes: dict[str, Any], code: str, field: str
) -> None:
    response = create(api, **changes)
    assert response.status_code == 422, response.text
    body = error(response)
    assert body.code == code and body.problems
    assert body.problems[0].field == field
    assert training_count(api.store) == 0 and audit_count(api.store) == 0


def test_domain_problems_answer_in_spanish_naming_the_field(api: Api) -> None:
    response = create(api, entity_id="ent-9", kind="pizza")
    problems = error(response).problems or []
    assert [(p.field, p.code) for p in problems] == [
        ("entity_id", "unknown_entity"), ("kind", "invalid_choice"),
    ]  # fmt: skip
    assert problems[0].message == "no existe la entidad 'ent-9' en la capa de entidades."
    assert error(response).message.startswith("Hay 2 problemas en la petición: entity_id: ")


def test_importing_a_csv_over_the_api(api: Api) -> None:
    body = SPANISH_CSV.encode("utf-8")

    def send(who: str = "planner", content: bytes = body, **params: Any) -> httpx.Response:
        return api.call("POST", "/api/training/import", who, content=content,
                        headers=CSV_HEADERS, params=params)  # fmt: skip

    dry = send(dry_run="true")
    assert dry.status_code == 200, dry.text
    assert TrainingImportPublic.model_validate(dry.json()) == TrainingImportPublic(
        read=3, inserted=3, updated=0, unchanged=0, dry_run=True
    )
    assert training_count(api.store) == 0
    assert send().json() == {"read": 3, "inserted": 3, "updated": 0, "unchanged": 0,
                             "dry_run": False}  # fmt: skip
    assert send("admin").json()["unchanged"] == 3
    stored = api.call("GET", "/api/training", "planner").json()["items"]
    assert {item["source"] for item in stored} == {"csv:api"}
    assert send(source="csv:junta-2025.csv").json()["inserted"] == 3
    assert training_count(api.store) == 6

    broken = body.replace(b"Uso del DEA", b"Uso del martillo").replace(b";20;", b";0;")
    response = send(content=broken)
    assert response.status_code == 422
    problems = error(response).problems or []
    assert [(p.field, p.code) for p in problems] == [
        ("kind", "invalid_choice"), ("people_trained", "out_of_range"),
    ]  # fmt: skip
    assert problems[1].message == (
        'CSV enviado, línea 4, campo "people_trained": debe haber al menos 1 persona formada y '
        "llegó 0."
    )
    assert training_count(api.store) == 6

    not_csv = send(content=b"\xff\xfe\x00h\x00e")
    assert not_csv.status_code == 422 and error(not_csv).code == "not_utf8"
    empty = send(content=b"")
    assert empty.status_code == 422
    huge = send(content=body + b"x" * 70_000)
    assert huge.status_code == 413 and error(huge).code == "payload_too_large"
    assert training_count(api.store) == 6


def test_browsers_may_send_delete_from_an_allowed_origin(api: Api) -> None:
    preflight = api.client.options(
        "/api/training/1",
        headers={"Origin": "https://mapa.example.org", "Access-Control-Request-Method": "DELETE",
                 "Access-Control-Request-Headers": "Authorization"},
    )  # fmt: skip
    assert preflight.status_code == 200
    assert "DELETE" in preflight.headers["access-control-allow-methods"]


# --- the command line (both backends) ------------------------------------------------------

runner = CliRunner()


def cli(db_url: str, *args: str) -> tuple[int, str, str]:
    env = {"CARDIOMAPA_DATABASE_URL": db_url, "COLUMNS": "200"}  # tables without wrapping
    result = runner.invoke(cli_app, list(args), env=env)
    return result.exit_code, result.stdout, result.stderr


def test_cli_import_and_list(db_url: str, tiny_layers: Layers, tmp_path: Path) -> None:
    with Store.open(db_url) as store:
        store.load(tiny_layers)
    path = tmp_path / "formacion.csv"
    path.write_bytes(SPANISH_CSV.encode("utf-8"))
    code, out, err = cli(
        db_url, "training", "import", str(path), "--dry-run", "--today", "2026-11-01"
    )
    assert code == 0, err
    assert "3 filas leídas" in out and "simulación" in out
    code, out, err = cli(db_url, "training", "import", str(path), "--today", "2026-11-01")
    assert code == 0, err
    assert "Importadas: 3 nuevas, 0 actualizadas, 0 sin cambios" in " ".join(out.split())
    code, out, _ = cli(db_url, "training", "import", str(path), "--source", "junta")
    assert code == 0 and "3 nuevas" in out  # another source: other records

    code, out, _ = cli(db_url, "training", "list", "--year", "2025")
    assert code == 0
    assert "Pabellón municipal" in out and "Uso del DEA" in out and "2026-01-20" not in out
    assert "Acciones mostradas: 4 · personas formadas en ellas: 64." in out
    with Store.open(db_url) as store:
        assert training_count(store) == 6


def test_cli_refuses_a_bad_file_and_writes_nothing(
    db_url: str, tiny_layers: Layers, tmp_path: Path
) -> None:
    with Store.open(db_url) as store:
        store.load(tiny_layers)
    path = tmp_path / "formacion.csv"
    path.write_text(PLAIN_CSV + "2025-13-40,ent-1,Sala,aed,5,\n", encoding="utf-8")
    code, _, err = cli(db_url, "training", "import", str(path))
    assert code == 1
    assert 'formacion.csv, línea 4, campo "held_on": fecha no válida' in err
    assert "No se ha importado nada" in err
    code, _, err = cli(db_url, "training", "import", str(path), "--today", "ayer")
    assert code == 2 and "--today 'ayer'" in err
    with Store.open(db_url) as store:
        assert training_count(store) == 0


def test_load_imports_the_register_of_the_data_folder_once(db_url: str, tiny_dir: Path) -> None:
    (tiny_dir / "training.csv").write_text(SPANISH_CSV.replace("F-", "syn-"), encoding="utf-8")
    code, out, err = cli(db_url, "load", "--data-dir", str(tiny_dir))
    assert code == 0, err
    assert "Registro de formación training.csv: 3 filas leídas" in " ".join(out.split())
    code, out, _ = cli(db_url, "load", "--replace", "--data-dir", str(tiny_dir))
    assert code == 0 and "3 sin cambios" in " ".join(out.split())
    code, out, _ = cli(db_url, "load", "--if-empty", "--data-dir", str(tiny_dir))
    assert code == 0 and "ya tiene capas" in out and "formación" not in out
    with Store.open(db_url) as store:
        assert training_count(store) == 3


def test_load_refuses_a_bad_register_before_writing_anything(db_url: str, tiny_dir: Path) -> None:
    (tiny_dir / "training.csv").write_text(PLAIN_CSV.replace("ent-1", "ent-7"), encoding="utf-8")
    code, _, err = cli(db_url, "load", "--data-dir", str(tiny_dir))
    assert code == 1
    assert 'training.csv, línea 2, campo "entity_id": no existe la entidad' in err
    assert "No se ha cargado nada" in err
    with Store.open(db_url) as store:
        assert store.is_empty() and training_count(store) == 0


# --- the sample ------------------------------------------------------------------------------


def test_the_sample_register_is_synthetic_valid_and_as_documented() -> None:
    layer = json.loads((DATA_DIR / "entities.geojson").read_text(encoding="utf-8"))
    entities = {feature["properties"]["id"] for feature in layer["features"]}
    path = DATA_DIR / "training.csv"
    with path.open(encoding="utf-8", newline="") as handle:
        raw = list(csv.DictReader(handle))
    assert all(row["source"] == "synthetic" and row["notes"].startswith("sintético") for row in raw)
    rows = training_rows(read_training_csv(path), file=path.name, entity_ids=entities,
                         today=dt.date(2026, 10, 1), source="unused")  # fmt: skip
    assert len(rows) == 15 and all(row["source"] == "synthetic" for row in rows)
    assert [row["source_id"] for row in rows] == [f"syn-f-{n:03d}" for n in range(1, 16)]
    frame = pd.DataFrame(rows)
    assert frame["held_on"].min() == dt.date(2025, 2, 18)
    assert frame["held_on"].max() == dt.date(2026, 9, 26)
    by_year = frame.groupby(frame["held_on"].map(lambda day: day.year))["people_trained"]
    assert by_year.agg(["count", "sum"]).to_dict("index") == {
        2025: {"count": 8, "sum": 136}, 2026: {"count": 7, "sum": 124},
    }  # fmt: skip
    assert frame["kind"].value_counts().to_dict() == {
        "bls_aed": 6, "aed": 5, "bls": 2, "refresher": 2,
    }  # fmt: skip
    assert frame["people_trained"].between(6, 30).all()
    assert frame["entity_id"].nunique() == 11 and frame["entity_id"].isna().sum() == 2
