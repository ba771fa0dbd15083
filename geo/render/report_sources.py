"""Where the report's records come from: counts per ``source`` and the licences they carry.

:func:`layer_sources` is what :func:`geo.core.outputs.data_notice` reads; the report's method
section lists :func:`provenance_rows` and :func:`licence_lines`.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from geo.core.layers import LAYERS_BY_NAME, Layers
from geo.core.outputs import SYNTHETIC_SOURCE
from geo.core.results import AnalysisInputs
from geo.render.report_format import number


def layer_sources(layers: Layers, training: pd.DataFrame | None = None) -> list[dict[str, int]]:
    """Per layer (and the training register), its record count per ``source``.

    What :func:`geo.core.outputs.data_notice` reads.
    """
    frames = [*layers.frames.values(), *([] if training is None else [training])]
    return [_sources(frame) for frame in frames]


def _sources(frame: pd.DataFrame) -> dict[str, int]:
    counts = frame["source"].astype(str).value_counts(sort=False)
    return {str(source): int(count) for source, count in sorted(counts.items())}


def provenance_rows(inputs: AnalysisInputs, training: pd.DataFrame | None) -> list[dict[str, Any]]:
    """Per layer (and the training register), how many records come from each source."""
    rows = []
    titled = [
        (schema.title if (schema := LAYERS_BY_NAME.get(name)) else name, frame)
        for name, frame in inputs.layers.frames.items()
    ]
    if training is not None:
        titled.append(("Registro de formación", training))
    for title, frame in titled:
        for source, count in _sources(frame).items():
            rows.append(
                {
                    "layer": title,
                    "source": source,
                    "count": number(count),
                    "synthetic": source == SYNTHETIC_SOURCE,
                }
            )
    return rows


def licence_lines(inputs: AnalysisInputs, training: pd.DataFrame | None) -> list[str]:
    """The licences and attributions the data's sources call for."""
    frames = [*inputs.layers.frames.values(), *([] if training is None else [training])]
    sources = {source for frame in frames for source in _sources(frame)}
    lines = []
    if SYNTHETIC_SOURCE in sources:
        lines.append(
            "Registros sintéticos (source = synthetic): datos de muestra generados por el proyecto "
            "cardiomapa, distribuidos con su licencia (EUPL-1.2). No describen personas ni "
            "lugares reales."
        )
    population = inputs.layers["population"]
    if "section_code" in population and population["section_code"].notna().any():
        lines.append(
            "Códigos de sección censal de la capa de población: Fuente: INE (Atlas de "
            "distribución de renta de los hogares)."
        )
    if any("JCyL" in source for source in sources):
        lines.append(
            "Centros sanitarios (nombre, dirección, número de registro, coordenadas aproximadas): "
            "Junta de Castilla y León, registro de centros sanitarios, reutilizado con atribución "
            "a través de una republicación pública."
        )
    if any(source.lower().startswith(("prensa", "press")) for source in sources):
        lines.append(
            "Hechos publicados en prensa (existencia de dispositivos y proyectos): solo hechos; "
            "no se reproduce ningún texto."
        )
    lines.append(
        "Mapas dibujados con las capas de cardiomapa, sin teselas de fondo ni ningún servicio "
        "externo."
    )
    return lines
