"""Text from users made inert in folium pages: never read as a Jinja tag, HTML or JavaScript.

folium renders every fragment again as a Jinja template, puts GeoJSON tooltip and popup values
into the page with ``innerHTML`` and pastes a marker's tooltip into a JavaScript template literal;
names come from users, so every text the maps show goes through these helpers.
"""

from __future__ import annotations

import re
from html import escape

import geopandas as gpd
import pandas as pd

_JINJA_OPENERS = re.compile(r"\{(?=[{%#])")


def inert(text: str) -> str:
    """``text`` that Jinja will not read as a tag once folium re-renders it: a zero-width space
    after each ``{`` that opens ``{{``, ``{%`` or ``{#`` (invisible on the map)."""
    return _JINJA_OPENERS.sub("{\u200b", text)


def markup_text(text: str) -> str:
    """``text`` for folium's ``Tooltip``, which pastes it into a JavaScript template literal
    that becomes HTML: escaped for HTML, with no backtick, ``$`` or backslash left to end the
    literal or start an expression, and inert for Jinja."""
    escaped = escape(text).replace("\\", "&#92;").replace("`", "&#96;").replace("$", "&#36;")
    return inert(escaped)


def html_frame(frame: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """:func:`_inert_frame` with every text value escaped for HTML too: folium's GeoJSON
    tooltips and popups put values into the page with ``innerHTML``, so a name such as
    ``<img onerror=…>`` would otherwise run."""
    out = _inert_frame(frame)
    for column in _text_columns(out):
        if column != "colour":
            out[column] = out[column].map(lambda v: escape(v) if isinstance(v, str) else v)
    return out


def _text_columns(frame: gpd.GeoDataFrame) -> list[str]:
    """Columns that may hold text: ``object`` or (pandas 3 infers it) ``str``."""
    return [
        column
        for column in frame.columns
        if column != frame.geometry.name
        and (frame[column].dtype == object or pd.api.types.is_string_dtype(frame[column]))
    ]


def _inert_frame(frame: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """``frame`` with :func:`inert` applied to every text value (names come from users)."""
    out = frame.copy()
    for column in _text_columns(out):
        out[column] = out[column].map(lambda v: inert(v) if isinstance(v, str) else v)
    return out
