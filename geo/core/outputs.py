"""Coverage and gap results as JSON documents, CSV text and GeoJSON (EPSG:4326).

Shared by the CLI and the API so both answer with the same, documented shapes.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import math
from collections.abc import Iterable, Mapping
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely.geometry

from geo.core.coverage import CoverageResult, WeeklyCoverage

WGS84 = "EPSG:4326"


def python_value(value: Any) -> Any:
    """A numpy/pandas scalar as the Python value it holds, and a missing one (``None``, NaN,
    ``pd.NA``, ``NaT``) as ``None``; text, dates and containers as they are. For rows handed to
    a database driver or a response model (:func:`plain` also rounds and writes dates in ISO)."""
    if value is None or isinstance(value, str | dict | list | tuple):
        return value
    if pd.isna(value):
        return None
    return value.item() if hasattr(value, "item") else value


def plain(value: Any) -> Any:
    """A JSON-safe value: numpy scalars unwrapped, NaN/inf → None, floats rounded, dates ISO."""
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float):
        return round(value, 6) if math.isfinite(value) else None
    if value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, dt.date):  # dates and datetimes
        return value.isoformat()
    return value


DASH = "—"
MINUS = "−"


def spanish_number(value: Any, decimals: int = 0) -> str:
    """``1234.5`` → ``"1.234,5"``: Spanish separators, a true minus sign, ``—`` if missing."""
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return DASH
    rounded = round(float(value), decimals)
    text = f"{abs(rounded):,.{decimals}f}".replace(",", " ").replace(".", ",").replace(" ", ".")
    return f"{MINUS}{text}" if rounded < 0 else text


def significant_decimals(value: float, digits: int = 2) -> int:
    """Decimals that show ``digits`` significant digits of ``value`` (0 for 0 or ≥ 10)."""
    magnitude = abs(float(value))
    if magnitude == 0 or not math.isfinite(magnitude):
        return 0
    return max(0, digits - 1 - math.floor(math.log10(magnitude)))


def estimate(value: Any) -> str:
    """A model estimate (lives per year…) to two significant digits: ``0,018``, ``0,0000042``,
    ``1,2``, ``58``; ``0`` for zero, ``—`` if missing. The one format of the CLI and the maps."""
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return DASH
    number = float(value)
    return "0" if number == 0 else spanish_number(number, significant_decimals(number))


def dumps(document: Any) -> str:
    """JSON text (UTF-8, not ASCII-escaped), indented for people."""
    return json.dumps(plain(document), ensure_ascii=False, indent=2)


def records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows of a (Geo)DataFrame as JSON-safe dicts, without geometry."""
    columns = [c for c in frame.columns if c != "geometry"]
    return [plain(row) for row in frame[columns].to_dict(orient="records")]


#: What makes a spreadsheet (Excel, LibreOffice, Google Sheets) read a cell as a formula: a
#: name such as ``=HYPERLINK(...)`` typed by an entity would run on the planner's machine.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _inert(value: Any) -> Any:
    """``value`` with a ``'`` in front if it is text a spreadsheet would take for a formula, and
    its line breaks as ``\n``."""
    if not isinstance(value, str):
        return value
    if value.startswith(FORMULA_STARTS):
        value = "'" + value
    if "\r" in value:
        value = value.replace("\r\n", "\n").replace("\r", "\n")
    return value


def csv_safe(table: pd.DataFrame) -> pd.DataFrame:
    """A copy of ``table`` that no spreadsheet runs as formulas (OWASP "CSV injection").

    Every CSV the project writes goes through here (:func:`to_csv`, the layer exports and the
    API downloads). The decision is per column dtype: a numeric, boolean or datetime column is
    numbers and is left alone (``-4.53`` stays a negative longitude); in any other column (text,
    or ``object`` holding text and dates) each text cell starting with ``=``, ``+``, ``-``,
    ``@``, a tab or a carriage return gets a ``'`` in front, so ``+34 979 000 000`` is written
    ``'+34 979 000 000`` and a spreadsheet shows it as text. Cells that are not text (numbers,
    dates, missing values) in such a column are left alone.

    Line breaks inside a text cell are written as ``\n``: Python's CSV writer quotes a cell that
    holds the line terminator (``\n``) but not one holding a lone ``\r``, which readers take for
    the end of the row, so ``"nota\r=1+1"`` would start a new row with a formula.
    """
    safe = table.copy()
    for column in safe.columns:
        values = safe[column]
        if (
            pd.api.types.is_numeric_dtype(values.dtype)  # bool is numeric here
            or pd.api.types.is_datetime64_any_dtype(values.dtype)
            or pd.api.types.is_timedelta64_dtype(values.dtype)
        ):
            continue
        # Not Series.map: it would turn the None of a text column into NaN.
        safe[column] = pd.Series(
            [_inert(v) for v in values], index=values.index, dtype=values.dtype
        )
    return safe


def to_csv(frame: pd.DataFrame) -> str:
    """CSV text of a (Geo)DataFrame; a geometry becomes ``lon``/``lat`` of its centroid.

    Text cells a spreadsheet would run as formulas are neutralised (:func:`csv_safe`).
    """
    table = csv_safe(pd.DataFrame(frame.drop(columns="geometry", errors="ignore")))
    if isinstance(frame, gpd.GeoDataFrame) and len(frame):
        points = frame.geometry.centroid.to_crs(WGS84)
        table["lon"], table["lat"] = points.x.round(6), points.y.round(6)
    buffer = io.StringIO()
    # 10 significant digits: lon/lat keep their 6 decimals (%.6g would cut ~11 m off latitudes).
    table.to_csv(buffer, index=False, float_format="%.10g")
    return buffer.getvalue()


def feature_collection(frame: gpd.GeoDataFrame, **members: Any) -> dict[str, Any]:
    """A GeoJSON FeatureCollection (EPSG:4326) with extra top-level ``members``."""
    projected = frame.to_crs(WGS84)
    features = [
        {"type": "Feature", "properties": properties, "geometry": shapely.geometry.mapping(geom)}
        for properties, geom in zip(records(projected), projected.geometry, strict=True)
    ]
    return {"type": "FeatureCollection", **plain(members), "features": features}


def zones_with_coverage(zones: gpd.GeoDataFrame, result: CoverageResult) -> gpd.GeoDataFrame:
    """CEAS zone polygons with their coverage row."""
    table = result.by_zone.drop(columns="zone_name")
    joined = zones[["id", "name", "geometry"]].merge(table, left_on="id", right_on="zone_id")
    return joined.drop(columns="zone_id")


def zones_with_week(zones: gpd.GeoDataFrame, week: WeeklyCoverage) -> gpd.GeoDataFrame:
    """CEAS zone polygons with their weekly mean, minimum and maximum share covered."""
    stats = week.zone_slices.groupby("zone_id")["share_covered"].agg(
        mean_share_covered="mean", min_share_covered="min", max_share_covered="max"
    )
    return zones[["id", "name", "geometry"]].merge(stats, left_on="id", right_index=True)


def result_header(result: CoverageResult | WeeklyCoverage) -> dict[str, Any]:
    """The members every coverage document starts with (mode, radius, distance model…)."""
    document = result.to_dict()
    keep = ("mode", "at", "week_start", "radius_m", "distance_model", "distance_model_description")
    return {key: document[key] for key in keep if key in document}


SYNTHETIC_SOURCE = "synthetic"


def data_notice(sources: Iterable[Mapping[str, int]]) -> str:
    """Say plainly how much of what is shown is synthetic sample data (Spanish).

    ``sources`` holds, for each layer, its record count per ``source``.
    """
    counts = list(sources)
    total = sum(sum(layer.values()) for layer in counts)
    synthetic = sum(layer.get(SYNTHETIC_SOURCE, 0) for layer in counts)
    if synthetic == 0:
        return "Ningún registro es sintético; la procedencia de cada uno figura en su campo source."
    return (
        f"{synthetic:,} de {total:,} registros son datos de muestra sintéticos ".replace(",", ".")
        + "(source = synthetic): "
        "no son el registro oficial de la ciudad. La procedencia de los demás figura en su campo "
        "source."
    )
