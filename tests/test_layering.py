"""Imports flow one way: api → geo.store → geo. Computing modules stay pure."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

GEO = Path(__file__).resolve().parent.parent / "geo"
#: Edges and storage: the only modules of geo/ allowed to touch HTTP, SQL or HTML. ``inputs``,
#: ``analysis``, ``registry``, ``tokens`` and ``training`` are edge services over the store, shared
#: by the CLI and the API; ``report`` renders the annual report (HTML, PDF) like ``maps``;
#: ``export`` writes the stored layers as files (the CLI's export, the API's downloads);
#: ``contacts`` (entities' private contacts, CSV import), ``reminders`` (planning over the
#: store and sending by SMTP) and ``notices`` (staff e-mails about citizens' reports) are edge
#: services too. The reminders' planning step itself, ``plan_reminders``, takes and returns
#: frames and plain values. ``changes`` watches the database
#: for commits and ``backup`` copies it (storage).
IMPURE = {
    "store", "cli", "settings", "maps", "migrations", "inputs", "analysis", "registry", "tokens",
    "training", "report", "export", "contacts", "reminders", "notices", "changes", "backup",
}  # fmt: skip
FORBIDDEN = ("fastapi", "starlette", "sqlalchemy", "geoalchemy2", "alembic", "folium", "api")
PURE_MODULES = sorted(
    f"geo.{path.stem}"
    for path in GEO.glob("*.py")
    if path.stem not in IMPURE and path.stem != "__init__"
)


def test_there_are_pure_modules_to_check() -> None:
    assert {"geo.layers", "geo.city", "geo.errors", "geo.nearest", "geo.indicators"} <= set(
        PURE_MODULES
    )


@pytest.mark.parametrize("module", PURE_MODULES)
def test_pure_module_imports_no_web_sql_or_html(module: str) -> None:
    code = (
        f"import sys, {module}\n"
        f"bad = sorted(m for m in sys.modules if m.split('.')[0] in {FORBIDDEN!r})\n"
        "print(','.join(bad))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert done.stdout.strip() == "", f"{module} pulls in {done.stdout.strip()}"


def test_geo_never_imports_api_at_module_level() -> None:
    for path in GEO.rglob("*.py"):
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.startswith(("import api", "from api")):
                pytest.fail(f"{path.name} imports the web layer at module level: {line}")
