"""The planners' notebook as a page anyone can open: run it from a fresh kernel, then write it as
one self-contained HTML file (figures embedded, nothing fetched from the network).

nbclient runs the notebook in a kernel of this same Python (ipykernel's ``python3``), in a
temporary working directory, so nothing is written beside the notebook; nbconvert's JupyterLab
template turns the result into HTML, without the scripts it would load from CDNs.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import nbformat
from nbclient import NotebookClient
from nbconvert import HTMLExporter
from traitlets.config import Config

TEMPLATES = Path(__file__).resolve().parent / "templates" / "notebook"
#: Longest a cell may run (the whole sample notebook takes about 10 s).
CELL_TIMEOUT_S = 300


def execute_notebook(
    path: Path,
    *,
    data_dir: Path,
    timeout_s: int = CELL_TIMEOUT_S,
    on_cell: Callable[[int, int], None] | None = None,
) -> nbformat.NotebookNode:
    """The notebook at ``path`` after running every cell once, reading the layers in ``data_dir``.

    ``on_cell(done, total)`` is called after each code cell (for a progress bar).

    Raises
    ------
    nbclient.exceptions.CellExecutionError
        A cell failed (its traceback is in the message).
    """
    notebook = nbformat.read(path, as_version=4)
    with tempfile.TemporaryDirectory(prefix="cardiomapa-notebook-") as workdir:
        # The kernel's environment: no GUI backend (figures are drawn inline), the chosen layers.
        env = {**os.environ, "MPLBACKEND": "Agg", "CARDIOMAPA_DATA_DIR": str(data_dir)}
        # IPC sockets in the temporary directory: no TCP port opened for the kernel.
        sockets = Config({"KernelManager": {"transport": "ipc", "ip": str(Path(workdir) / "k")}})
        client = NotebookClient(
            notebook,
            timeout=timeout_s,
            kernel_name="python3",
            resources={"metadata": {"path": workdir}},
            config=sockets,
        )
        if on_cell is not None:
            total = sum(cell.cell_type == "code" for cell in notebook.cells)
            done = iter(range(1, total + 1))
            client.on_cell_executed = lambda **_: on_cell(next(done, total), total)
        client.execute(env=env, cwd=workdir)
    return notebook


def notebook_html(notebook: nbformat.NotebookNode, *, title: str) -> str:
    """One self-contained HTML page of an executed notebook (Spanish, images as data: URIs)."""
    exporter = HTMLExporter(
        template_name="lab",
        extra_template_basedirs=[str(TEMPLATES.parent)],
        extra_template_paths=[str(TEMPLATES)],
        template_file="offline.html.j2",
        embed_images=True,
        language_code="es",
    )
    resources: dict[str, Any] = {"metadata": {"name": title}}
    body, _ = exporter.from_notebook_node(notebook, resources=resources)
    return str(body)
