"""Layer files: a data folder's five GeoJSON files read and validated into :class:`Layers`.

The rules live in the core (:mod:`geo.core.layers`: the schemas, :func:`parse_layer_text`,
:func:`check_references`); this module only reads the files and names them in every problem.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path
from typing import Any

import geopandas as gpd

from geo.city import CityProfile
from geo.core.layers import (
    LAYERS,
    Layers,
    LayerSchema,
    check_references,
    parse_layer_text,
    records_frame,
)
from geo.errors import LayerValidationError, Problem


def read_layer(
    path: Path, schema: LayerSchema, city: CityProfile, *, today: dt.date | None = None
) -> gpd.GeoDataFrame:
    """Read one layer file and validate every feature.

    Parameters
    ----------
    path
        GeoJSON FeatureCollection in EPSG:4326.
    schema
        The layer it must hold.
    city
        Profile whose boundary every feature must fall inside.
    today
        The city's local date, for the rules that depend on it (see
        :func:`geo.core.layers.parse_feature`).

    Returns
    -------
    geopandas.GeoDataFrame
        One row per feature, the schema's columns in order plus ``geometry``, CRS EPSG:4326.

    Raises
    ------
    LayerValidationError
        With every problem found in the file.
    """
    records, problems = _read_records(path, schema, city, today=today)
    if problems:
        raise LayerValidationError(problems)
    return records_frame(records, schema)


def _read_records(
    path: Path, schema: LayerSchema, city: CityProfile, *, today: dt.date | None
) -> tuple[list[dict[str, Any]], list[Problem]]:
    name = path.name
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        message = f"no se encuentra el archivo de la capa {schema.name} en {path.parent}."
        return [], [Problem(name, message)]
    except UnicodeDecodeError as exc:
        return [], [Problem(name, f"el archivo no está en UTF-8 (byte {exc.start}).")]
    return parse_layer_text(text, schema, city, name=name, today=today)


def read_layers(
    data_dir: Path,
    city: CityProfile,
    *,
    on_layer: Callable[[LayerSchema], None] | None = None,
    today: dt.date | None = None,
) -> Layers:
    """Read and validate the five layer files of ``data_dir``.

    Every file is read even when an earlier one fails, so the error lists every problem at once.

    Parameters
    ----------
    on_layer
        Called after each layer file is read (for progress bars).
    today
        The city's local date, for the rules that depend on it (see
        :func:`geo.core.layers.parse_feature`).

    Raises
    ------
    LayerValidationError
        With every problem in every file, and between files.
    """
    frames: dict[str, gpd.GeoDataFrame] = {}
    problems: list[Problem] = []
    for schema in LAYERS:
        records, layer_problems = _read_records(
            data_dir / schema.file_name, schema, city, today=today
        )
        problems.extend(layer_problems)
        if not layer_problems:
            frames[schema.name] = records_frame(records, schema)
        if on_layer is not None:
            on_layer(schema)
    problems.extend(check_references(frames))
    if problems:
        raise LayerValidationError(problems)
    return Layers(frames)
