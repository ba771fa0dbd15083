"""The planners' notebook runs from a fresh kernel, on the sample, without errors or warnings.

The notebook is executed in memory with nbclient, in a kernel of this same Python (the project's
venv), with a temporary working directory so nothing is written into the repository. The file
in the repository must be stored without outputs (small diffs, no stale figures).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import nbformat
import pytest
from nbclient import NotebookClient
from traitlets.config import Config

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK = ROOT / "notebooks" / "analisis_cobertura.ipynb"
DATA_DIR = ROOT / "data"
TIMEOUT_S = 300  # per cell; the whole notebook takes ~10 s

#: A script or stylesheet fetched from elsewhere: a tag's src/href, a CSS url() or @import.
REMOTE = re.compile(
    r"""<(?:script|link|img|iframe)\b[^>]*\b(?:src|href)\s*=\s*["']?\s*(?:https?:)?//"""
    r"""|url\(\s*["']?\s*(?:https?:)?//|@import\s+["']?\s*(?:https?:)?//""",
    re.IGNORECASE,
)

PROBE = "import sys\nprint(sys.prefix)"


def _outputs_text(cell: Any) -> str:
    """Everything a cell showed as text: streams, text/plain, text/html and text/markdown."""
    parts = []
    for output in cell.get("outputs", []):
        if output["output_type"] == "stream":
            parts.append(output["text"])
        for mime in ("text/plain", "text/html", "text/markdown"):
            if mime in output.get("data", {}):
                parts.append(output["data"][mime])
    return "\n".join(parts)


def _cell(notebook: Any, cell_id: str) -> Any:
    matches = [cell for cell in notebook.cells if cell.get("id") == cell_id]
    assert len(matches) == 1, f"the notebook should have exactly one cell with id {cell_id!r}"
    return matches[0]


@pytest.fixture(scope="module")
def executed(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """The notebook after running every cell once (module-scoped: it is run once)."""
    workdir = tmp_path_factory.mktemp("notebook")
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(workdir)  # the kernel's IPC socket files go here, not into the repo
        # The kernel inherits this environment. No GUI backend (the notebook draws inline), the
        # sample data, no bytecode written into the repository, and every warning shown (also
        # DeprecationWarnings raised inside libraries, hidden by default) so the stderr check
        # below sees it.
        patch.setenv("MPLBACKEND", "Agg")
        patch.setenv("CARDIOMAPA_DATA_DIR", str(DATA_DIR))
        patch.setenv("PYTHONDONTWRITEBYTECODE", "1")
        patch.setenv("PYTHONWARNINGS", "default")
        notebook = nbformat.read(NOTEBOOK, as_version=4)
        probe = nbformat.v4.new_code_cell(PROBE)
        probe["id"] = "test-probe-kernel"
        notebook.cells.insert(0, probe)
        # IPC sockets in the working directory: no TCP port opened, no "unencrypted TCP" warning.
        sockets = Config({"KernelManager": {"transport": "ipc", "ip": str(workdir / "kernel")}})
        client = NotebookClient(
            notebook,
            timeout=TIMEOUT_S,
            kernel_name="python3",
            resources={"metadata": {"path": str(workdir)}},
            config=sockets,
        )
        client.execute()  # a failing cell raises CellExecutionError with its traceback
    leftovers = sorted(p.name for p in workdir.iterdir() if not p.name.startswith("kernel-"))
    assert leftovers == [], f"the notebook wrote files into its working directory: {leftovers}"
    return notebook


def test_kernel_is_this_python(executed: Any) -> None:
    shown = _outputs_text(_cell(executed, "test-probe-kernel")).strip()
    assert shown == sys.prefix, f"kernel ran in {shown}, tests in {sys.prefix}"


def test_no_warnings_or_tracebacks_on_stderr(executed: Any) -> None:
    problems = [
        (cell.get("id"), output["text"])
        for cell in executed.cells
        if cell.cell_type == "code"
        for output in cell.outputs
        if output["output_type"] == "stream" and output["name"] == "stderr"
        if "Warning" in output["text"] or "Traceback" in output["text"]
    ]
    assert problems == []


def test_expected_results_are_shown(executed: Any) -> None:
    layers = _outputs_text(_cell(executed, "capas"))
    assert "Desfibriladores" in layers
    assert "sintéticos" in layers
    assert "CEAS" in _outputs_text(_cell(executed, "cobertura-24h"))
    assert "Peor hora" in _outputs_text(_cell(executed, "semana"))
    assert "Desfibriladores en total" in _outputs_text(_cell(executed, "indicadores"))
    density = _outputs_text(_cell(executed, "densidad"))
    assert "Castilla y León" in density
    assert "necesita" in density
    lives = _outputs_text(_cell(executed, "vidas"))
    assert "Vidas salvadas al año" in lives and "banda del 5 al 95 %" in lives
    assert "domicilio no se cuentan" in lives  # the stated home-arrests choice
    assert "Rosell-Ortiz" in lives  # the parameters' sources
    assert "CEAS" in _outputs_text(_cell(executed, "vidas-zonas"))
    devices = _outputs_text(_cell(executed, "vidas-dea"))
    assert "las 24 h" in devices and "desde el inicio del plan" in devices
    assert "Coste por año de vida ganado: no se calcula" in devices
    summary = _outputs_text(_cell(executed, "conclusiones"))
    assert "Cobertura 24 h" in summary
    assert "Vidas salvadas (modelo)" in summary
    assert "sintéticos" in summary


def test_figures_are_shown(executed: Any) -> None:
    figures = {
        cell.get("id"): sum("image/png" in output.get("data", {}) for output in cell.outputs)
        for cell in executed.cells
        if cell.cell_type == "code"
    }
    assert figures["semana"] == 1
    assert figures["mapa"] == 1
    assert figures["emplazamiento-graficos"] == 2
    assert figures["densidad"] == 1
    assert sum(figures.values()) >= 3


def test_stored_without_outputs() -> None:
    """Outputs are never committed: clear them (Edit → Clear All Outputs) before saving."""
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(notebook)
    stored = [
        cell.get("id")
        for cell in notebook.cells
        if cell.cell_type == "code" and (cell.outputs or cell.execution_count is not None)
    ]
    assert stored == [], f"cells stored with outputs or execution counts: {stored}"
    assert notebook.metadata["kernelspec"]["name"] == "python3"


def test_the_command_writes_a_page_with_its_figures(tmp_path: Path) -> None:
    """``cardiomapa notebook --html``: the executed notebook as one page a planner opens in any
    browser, offline: the figures embedded, no script or stylesheet fetched from a CDN."""
    out = tmp_path / "cuaderno.html"
    script = Path(sys.executable).parent / "cardiomapa"
    environment = {**os.environ, "CARDIOMAPA_DATA_DIR": str(DATA_DIR), "PYTHONWARNINGS": "default"}
    done = subprocess.run(
        [str(script), "notebook", "--html", str(out)],
        cwd=tmp_path, env=environment, capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    page = out.read_text(encoding="utf-8")
    # the notebook's five figures (semana, mapa, two of emplazamiento, densidad), as data: URIs
    assert page.count("data:image/png;base64,") >= 5
    assert '<html lang="es">' in page
    assert "Desfibriladores en total" in page and "Peor hora" in page
    assert REMOTE.search(page) is None, REMOTE.search(page)
    assert "figura(s)" in done.stderr and str(out) in done.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cuaderno.html"]  # nothing else


def test_the_command_names_a_missing_folder(tmp_path: Path) -> None:
    script = Path(sys.executable).parent / "cardiomapa"
    done = subprocess.run(
        [str(script), "notebook", "--html", str(tmp_path / "no" / "x.html")],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 2
    assert "--html: la carpeta" in done.stderr and "no existe" in done.stderr


def test_remote_pattern_catches_a_cdn_script() -> None:
    """The check above can fail: it sees what nbconvert's default template would add."""
    assert REMOTE.search('<script src="https://cdnjs.cloudflare.com/require.js"></script>')
    assert REMOTE.search("<style>@import url(https://fonts.example/x.css);</style>")
    assert REMOTE.search('<link rel="stylesheet" href="//cdn.example/a.css">')
    assert REMOTE.search("<p>Véase https://example.org</p>") is None
