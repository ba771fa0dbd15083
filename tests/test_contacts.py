"""Entities' private contacts: one validation for forms and CSV files; CSV imports all or
nothing, on SpatiaLite and on PostGIS."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from geo.cli import app as cli_app
from geo.core.layers import Layers
from geo.errors import RecordValidationError
from geo.io.store import Store
from geo.services.contacts import import_contacts, read_contacts_csv, validate_contact

runner = CliRunner()


def test_a_contact_is_trimmed_and_empty_values_are_none() -> None:
    given = {"person": "  Ana Pérez ", "email": " ana@example.org ", "phone": ""}
    expected = {"person": "Ana Pérez", "email": "ana@example.org", "phone": None}
    assert validate_contact(given) == expected
    assert validate_contact({"phone": "+34 (979) 00-00-00"})["phone"] == "+34 (979) 00-00-00"


@pytest.mark.parametrize(
    ("values", "field", "fragment"),
    [
        ({"email": "ana@"}, "email", "nombre@dominio.es"),
        ({"email": "ana @example.org"}, "email", "no es válido"),
        ({"email": "a@b.org, c@d.org"}, "email", "una sola dirección"),
        ({"email": "ana@example.org\nBcc: x@y.org"}, "email", "no es válido"),
        ({"email": "x" * 250 + "@a.es"}, "email", "254"),
        ({"phone": "12345"}, "phone", "de 6 a 20"),
        ({"phone": "979 000 000 ext 2"}, "phone", "El teléfono"),
        ({"phone": "1" * 21}, "phone", "de 6 a 20"),
        ({"phone": "------"}, "phone", "al menos 6"),
        ({"person": "A" * 201, "email": "a@b.es"}, "person", "200"),
        ({"person": "Ana\x00", "email": "a@b.es"}, "person", "control"),
        ({"person": "Ana"}, "email", "al menos un correo electrónico o un teléfono"),
        ({"email": "a@b.es", "notes": "x"}, "notes", "campo desconocido"),
    ],
)
def test_bad_contacts_name_the_field_in_spanish(
    values: dict[str, str], field: str, fragment: str
) -> None:
    with pytest.raises(RecordValidationError) as caught:
        validate_contact(values)
    problems = caught.value.problems
    assert [p.field for p in problems] == [field]
    assert fragment in problems[0].message


def test_every_problem_is_reported_at_once() -> None:
    with pytest.raises(RecordValidationError) as caught:
        validate_contact({"person": "A" * 300, "email": "no", "phone": "x"})
    assert [p.field for p in caught.value.problems] == ["person", "email", "phone"]


GOOD = "\ufeffentity_id;person;email;phone\nent-1;Ana Pérez;ana@example.org;979 000 000\n" \
       "ent-2;;;+34 979 111 222\n"  # fmt: skip


def test_a_good_csv_is_read_with_bom_and_semicolons() -> None:
    assert read_contacts_csv(GOOD.encode("utf-8"), name="contactos.csv") == [
        {"entity_id": "ent-1", "person": "Ana Pérez", "email": "ana@example.org",
         "phone": "979 000 000"},
        {"entity_id": "ent-2", "person": None, "email": None, "phone": "+34 979 111 222"},
    ]  # fmt: skip


def test_a_bad_csv_names_file_line_and_column_of_every_problem() -> None:
    text = ("entity_id,person,email,phone\n"
            "ent-1,Ana,ana@,\n"
            "\n"
            "ent-x,Luis,luis@example.org,\n"
            "ent-1,Otra,otra@example.org,12\n"
            ",Nadie,,\n")  # fmt: skip
    with pytest.raises(RecordValidationError) as caught:
        read_contacts_csv(text, name="contactos.csv", entity_ids={"ent-1", "ent-2"})
    found = [(p.file, p.line, p.field, p.code) for p in caught.value.problems]
    assert found == [
        ("contactos.csv", 2, "email", "invalid_value"),
        ("contactos.csv", 4, "entity_id", "unknown_entity"),
        ("contactos.csv", 5, "entity_id", "duplicate_record"),
        ("contactos.csv", 5, "phone", "invalid_value"),
        ("contactos.csv", 6, "entity_id", "missing_field"),
        ("contactos.csv", 6, "email", "missing_field"),
    ]
    assert 'contactos.csv, línea 2, campo "email"' in str(caught.value)


def test_a_bad_header_is_refused() -> None:
    with pytest.raises(RecordValidationError) as caught:
        read_contacts_csv("entidad,email\nent-1,a@b.es\n", name="c.csv")
    assert {(p.field, p.code) for p in caught.value.problems} == {
        ("entidad", "unknown_field"), ("entity_id", "missing_field")}  # fmt: skip


def test_import_writes_all_then_nothing_changes_on_reimport(
    store: Store, tiny_layers: Layers, tmp_path: Path
) -> None:
    store.load(tiny_layers)
    path = tmp_path / "contactos.csv"
    path.write_text(GOOD, encoding="utf-8")
    dry = import_contacts(store, path, actor="test", dry_run=True)
    assert (dry.read, dry.inserted, dry.updated, dry.unchanged) == (2, 2, 0, 0)
    assert store.contacts() == {}
    first = import_contacts(store, path, actor="test")
    assert (first.inserted, first.updated, first.unchanged) == (2, 0, 0)
    assert store.contact("ent-1") is not None
    assert store.contact("ent-1")["email"] == "ana@example.org"  # type: ignore[index]
    again = import_contacts(store, path, actor="test")
    assert (again.inserted, again.updated, again.unchanged) == (0, 0, 2)
    path.write_text(GOOD.replace("ana@example.org", "ana.perez@example.org"), encoding="utf-8")
    changed = import_contacts(store, path, actor="test", dry_run=True)
    assert (changed.inserted, changed.updated, changed.unchanged) == (0, 1, 1)


def test_the_cli_imports_or_writes_nothing(
    db_url: str, tiny_layers: Layers, tmp_path: Path
) -> None:
    with Store.open(db_url) as store:
        store.load(tiny_layers)
    env = {"CARDIOMAPA_DATABASE_URL": db_url}
    bad = tmp_path / "malos.csv"
    bad.write_text("entity_id,email\nent-1,ana@example.org\nent-9,luis@example.org\n",
                   encoding="utf-8")  # fmt: skip
    result = runner.invoke(cli_app, ["contacts", "import", str(bad)], env=env)
    assert result.exit_code == 1
    assert 'malos.csv, línea 3, campo "entity_id"' in result.stderr
    assert "No se ha importado nada" in result.stderr
    with Store.open(db_url) as store:
        assert store.contacts() == {}
    good = tmp_path / "contactos.csv"
    good.write_text(GOOD, encoding="utf-8")
    dry = runner.invoke(cli_app, ["contacts", "import", str(good), "--dry-run"], env=env)
    assert dry.exit_code == 0, dry.output
    assert "2 nuevos" in dry.stdout and "simulación" in dry.stdout
    done = runner.invoke(cli_app, ["contacts", "import", str(good)], env=env)
    assert done.exit_code == 0
    assert "Importados: 2 nuevos, 0 actualizados" in " ".join(done.stdout.split())
    again = runner.invoke(cli_app, ["contacts", "import", str(good)], env=env)
    assert "0 nuevos, 0 actualizados, 2 sin cambios" in " ".join(again.stdout.split())
