"""Imports flow one way, by folder: cli → api → services → io → core; services → render → core.

Every module of ``geo/`` and ``api/`` (the importers and the migrations included) belongs to one
ring, named by its folder; the rules below say which rings each may import, with no list of
exempted modules. The kernel is the few modules at the top of ``geo/`` every ring shares: the
errors, the clock, the city profile with its holiday calendar, and the settings.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

#: ring → the rings it may import (itself included). The command line is the outermost ring: its
#: ``serve`` starts the web app, so it may import api; nothing imports the command line.
ALLOWED = {
    "kernel": {"kernel"},
    "core": {"kernel", "core"},
    "io": {"kernel", "core", "io"},
    "render": {"kernel", "core", "render"},
    "services": {"kernel", "core", "io", "render", "services"},
    "cli": {"kernel", "core", "io", "render", "services", "api", "cli"},
    "api": {"kernel", "core", "io", "render", "services", "api"},
}
#: Libraries the pure core (and the kernel under it) never loads, directly or through another
#: module.
IMPURE_LIBRARIES = (
    "sqlalchemy", "geoalchemy2", "alembic", "psycopg", "fastapi", "starlette", "folium", "branca",
    "jinja2", "matplotlib", "smtplib", "typer", "api",
)  # fmt: skip


def ring_of(module: str) -> str | None:
    """The ring of a module of cardiomapa (``None`` for a module of another package)."""
    parts = module.split(".")
    if parts[0] == "api":
        return "api"
    if parts[0] != "geo":
        return None
    if len(parts) >= 2 and parts[1] in {"core", "io", "services", "render", "cli"}:
        return parts[1]
    return "kernel"


def _module_name(path: Path) -> str:
    relative = path.relative_to(ROOT).with_suffix("")
    parts = relative.parts[:-1] if relative.name == "__init__" else relative.parts
    return ".".join(parts)


SOURCES = sorted([*(ROOT / "geo").rglob("*.py"), *(ROOT / "api").rglob("*.py")])
MODULES = {_module_name(path): path for path in SOURCES}


def imported_modules(path: Path, module: str) -> list[tuple[int, str]]:
    """Every module ``path`` imports, at any depth of the code (functions too), with its line."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                name = ".".join([*base, node.module] if node.module else base)
            else:
                name = node.module or ""
            found.append((node.lineno, name))
            # ``from geo import io`` imports the module geo.io: judge the submodule.
            found.extend(
                (node.lineno, f"{name}.{alias.name}")
                for alias in node.names
                if f"{name}.{alias.name}" in MODULES
            )
    return found


def test_every_module_has_a_ring() -> None:
    rings = {ring_of(module) for module in MODULES}
    assert rings == set(ALLOWED), rings
    assert {"geo.core.layers", "geo.io.store", "geo.services.analysis", "geo.render.maps"} <= set(
        MODULES
    )


@pytest.mark.parametrize("module", sorted(MODULES))
def test_imports_flow_one_way(module: str) -> None:
    ring = ring_of(module)
    assert ring is not None
    wrong = [
        f"{MODULES[module].relative_to(ROOT)}:{line} ({ring}) imports {name} ({ring_of(name)})"
        for line, name in imported_modules(MODULES[module], module)
        if ring_of(name) is not None and ring_of(name) not in ALLOWED[ring]
    ]
    assert not wrong, "\n".join(wrong)


CORE_MODULES = sorted(m for m in MODULES if ring_of(m) in {"core", "kernel"})


@pytest.mark.parametrize("module", CORE_MODULES)
def test_core_loads_no_web_sql_html_or_mail(module: str) -> None:
    code = (
        f"import sys, {module}\n"
        f"bad = sorted(m for m in sys.modules if m.split('.')[0] in {IMPURE_LIBRARIES!r})\n"
        "print(','.join(bad))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert done.stdout.strip() == "", f"{module} pulls in {done.stdout.strip()}"


def test_the_rule_catches_an_upward_import(tmp_path: Path) -> None:
    """The checker itself: a core module importing the store, even inside a function, is seen."""
    source = tmp_path / "bad.py"
    source.write_text("def f():\n    from geo.io.store import Store\n    return Store\n")
    found = imported_modules(source, "geo.core.bad")
    assert [(line, ring_of(name)) for line, name in found] == [(2, "io")]
    assert "io" not in ALLOWED["core"]
