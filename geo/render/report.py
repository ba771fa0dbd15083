"""The plan's annual evaluation report: one self-contained, printable HTML file, and its PDF.

An edge module (like :mod:`geo.render.maps`): it runs :mod:`geo.services.analysis` on the inputs
and lays the results out in Spanish. Charts and maps are drawn with matplotlib (no pyplot state, no
basemap tiles) and embedded as inline SVG; the style sheet is inline too, so the file opens offline
and makes no request at all. The pure modules never import this one.

Every text that comes from the data (zone, entity, site names…) is escaped: the HTML through
Jinja2 with autoescape (no data is ever compiled as a template), the charts by drawing text as
paths with matplotlib's mathtext switched off for data labels, and the CSS page header through
:func:`css_string`.

:func:`print_pdf` prints the file with a headless Chromium (``--print-to-pdf``); the page size,
margins, running header and page numbers come from the report's ``@page`` rules.
"""

from __future__ import annotations

import datetime as dt
import io
import math
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import geopandas as gpd
import matplotlib as mpl
import numpy as np
import pandas as pd
from jinja2 import Environment, FileSystemLoader, StrictUndefined
from markupsafe import Markup, escape
from matplotlib.axes import Axes
from matplotlib.cm import ScalarMappable
from matplotlib.colors import LinearSegmentedColormap, Normalize
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import FuncFormatter, MaxNLocator
from mpl_toolkits.axes_grid1.anchored_artists import AnchoredSizeBar

from geo.core.availability import WEEKDAY_NAMES, available, device_availability
from geo.core.coverage import WeeklyCoverage, off_hours_slots
from geo.core.indicators import (
    DEFAULT_ON_SITE_M,
    FLOW_INDICATORS,
    INDICATOR_LABELS,
    KIND_LABELS,
    Indicators,
    devices_needed,
    estimate_decimals,
    format_value,
    year_on_year,
)
from geo.core.layers import LAYERS_BY_NAME, Layers
from geo.core.outcome_model import BAND_PERCENTILES, PARAMETER_KEYS
from geo.core.outputs import DASH, SYNTHETIC_SOURCE, spanish_number
from geo.core.plan_lives import BANDS
from geo.core.results import AnalysisInputs, GapsAnalysis, IndicatorsAnalysis, SitingAnalysis
from geo.errors import ChromiumNotFoundError, PdfError

TEMPLATES_DIR = Path(__file__).resolve().parent / "templates"
TEMPLATE = "report.html.j2"
STYLESHEET = "report.css"
#: Where :func:`find_chromium` looks: names on ``PATH``, then fixed paths.
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
CHROMIUM_PATHS = ("/usr/bin/chromium",)
#: Headless flags that work as root on a machine without a display or a network.
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--no-pdf-header-footer",
)
#: New devices the report proposes (greedy order).
PROPOSED_DEVICES = 10
#: Rows of the gaps table (the map labels the same ones).
TOP_GAPS = 10

ENTITY_KIND_LABELS: Mapping[str, str] = {
    "residence": "residencia",
    "day_centre": "centro de día",
    "association": "asociación",
    "foundation": "fundación",
    "clinic": "clínica",
    "health_centre": "centro de salud",
    "hospital": "hospital",
    "pharmacy": "farmacia",
    "school": "centro educativo",
    "sports_centre": "centro deportivo",
    "public_building": "edificio público",
    "social_centre": "centro social",
    "company": "empresa",
    "other": "otra",
}
COHOUSING_STATUS_LABELS: Mapping[str, str] = {
    "idea": "idea",
    "planned": "proyecto",
    "building": "en obras",
    "active": "habitado",
}
SITE_KIND_LABELS: Mapping[str, str] = {
    "entity": "entidad sin DEA a su alcance",
    "cohousing": "cohousing / coliving",
    "grid": "punto de rejilla",
    "file": "candidato del archivo",
}
YEAR_STATUS_LABELS: Mapping[str, str] = {
    "closed": "cerrado",
    "in_course": "en curso",
    "future": "futuro",
}

# Colours (colour-blind safe where they carry meaning).
CITY_COLOUR = "#b2182b"
REGION_COLOUR = "#4d4d4d"
REFERENCE_COLOUR = "#9ab6cf"
ALWAYS_COLOUR = "#1a7837"
LIMITED_COLOUR = "#e08214"
OUT_COLOUR = "#7b3294"
OTHER_COLOUR = "#8c8c8c"
GAP_COLOUR = "#d6604d"
PROPOSAL_COLOUR = "#2166ac"
ZONE_EDGE = "#5a5a5a"
#: Zone shading: light blues only, so the device symbols stay visible on every zone.
ZONE_CMAP = LinearSegmentedColormap.from_list("cobertura", ["#f7fbff", "#9ecae1", "#4f9bcb"])


# --- Spanish numbers and dates -----------------------------------------------------------------


def _missing(value: Any) -> bool:
    if value is None or value is pd.NA:
        return True
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def number(value: Any, decimals: int = 0) -> str:
    """``1234.5`` → ``"1.234,5"`` (Spanish separators, a true minus sign; ``—`` if missing)."""
    return DASH if _missing(value) else spanish_number(value, decimals)


def percent(share: Any, decimals: int = 1) -> str:
    """A share as a percentage: ``0.123`` → ``"12,3 %"``."""
    return DASH if _missing(share) else f"{number(float(share) * 100, decimals)} %"


def day(value: dt.date) -> str:
    """``dd/mm/aaaa``."""
    return f"{value:%d/%m/%Y}"


def plural(count: int, singular: str, plural_form: str) -> str:
    """``count`` and the noun that agrees with it: ``1 desfibrilador``, ``3 desfibriladores``."""
    return f"{number(count)} {singular if count == 1 else plural_form}"


def css_string(text: str) -> Markup:
    """``text`` as a quoted CSS string, every character but letters, digits and spaces escaped.

    Safe inside a ``<style>`` element whatever the text holds (no ``<``, quote or backslash
    survives). Each escape ends with the one space CSS consumes as its terminator.
    """
    body = "".join(
        ch if (ch.isascii() and ch.isalnum()) or ch == " " else f"\\{ord(ch):06x} " for ch in text
    )
    return Markup(f'"{body}"')


def _mpl_text(text: object) -> str:
    """Data text for a matplotlib label: ``$`` escaped so it is never read as mathtext."""
    return str(text).replace("\\", "\\\\").replace("$", r"\$")


# --- SVG from matplotlib ----------------------------------------------------------------------

_RC = {
    "font.family": "DejaVu Sans",
    "font.size": 8.5,
    "axes.titlesize": 9.5,
    "axes.labelsize": 8.5,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.edgecolor": "#666666",
    "xtick.color": "#444444",
    "ytick.color": "#444444",
    "legend.fontsize": 8,
    "legend.frameon": False,
    "svg.fonttype": "path",  # no font needed to show the text, whatever the machine
    "text.usetex": False,
    "axes.formatter.use_mathtext": False,
}
_ID = re.compile(r'\bid="([^"]+)"')


def _style(extra: Mapping[str, object] | None = None) -> AbstractContextManager[None]:
    """matplotlib settings of every chart (plus ``extra``), for the ``with`` block only."""
    settings: Any = {**_RC, **(extra or {})}  # rc_context's stub wants literal keys
    return mpl.rc_context(settings)


def _svg(figure: Figure, *, name: str, label: str) -> Markup:
    """``figure`` as an inline ``<svg>`` element with ids prefixed by ``name`` (unique per page).

    The XML prologue, metadata, comments and the global style rule matplotlib writes are
    dropped; ``label`` is the accessible name of the image.
    """
    buffer = io.StringIO()
    with _style({"svg.hashsalt": name}):
        figure.savefig(buffer, format="svg", metadata={"Date": None})
    text = buffer.getvalue()
    text = text[text.index("<svg") :]
    text = re.sub(r"<metadata>.*?</metadata>", "", text, flags=re.DOTALL)
    text = re.sub(r"<!--.*?-->", "", text, flags=re.DOTALL)
    text = re.sub(r'<style type="text/css">.*?</style>', "", text, flags=re.DOTALL)
    ids = set(_ID.findall(text))
    for ident in sorted(ids, key=len, reverse=True):
        new = f"{name}-{ident}"
        text = text.replace(f'id="{ident}"', f'id="{new}"')
        text = text.replace(f'href="#{ident}"', f'href="#{new}"')
        text = text.replace(f"url(#{ident})", f"url(#{new})")
    opening = f'<svg class="chart" role="img" aria-label="{escape(label)}" data-chart="{name}" '
    text = text.replace("<svg ", opening, 1)
    text = re.sub(r"\n\s*", "\n", text).strip()
    return Markup(text)


def _figure(width_in: float, height_in: float) -> Figure:
    with _style():
        return Figure(figsize=(width_in, height_in), layout="constrained")


def _percent_axis(axis: Any, decimals: int = 0) -> None:
    axis.set_major_formatter(FuncFormatter(lambda v, _pos: percent(v, decimals)))


# --- charts -----------------------------------------------------------------------------------


def density_chart(density: pd.DataFrame, *, region_id: str | None) -> Markup:
    """Horizontal bars of devices per 100,000 inhabitants: the references and the city."""
    rows = density.iloc[::-1]  # highest at the top
    with _style():
        figure = _figure(6.6, 0.42 * len(rows) + 0.9)
        ax = figure.add_subplot()
        colours = [
            CITY_COLOUR
            if row.is_city
            else REGION_COLOUR
            if row.id == region_id
            else REFERENCE_COLOUR
            for row in rows.itertuples()
        ]
        positions = np.arange(len(rows))
        values = rows["devices_per_100k"].to_numpy(dtype=float)
        ax.barh(positions, values, color=colours, height=0.62)
        ax.set_yticks(positions, [_mpl_text(name) for name in rows["name"]])
        for tick, row in zip(ax.get_yticklabels(), rows.itertuples(), strict=True):
            if row.is_city:
                tick.set_fontweight("bold")
                tick.set_color(CITY_COLOUR)
        top = float(values.max()) if len(values) else 1.0
        for position, value in zip(positions, values, strict=True):
            ax.text(value + top * 0.01, float(position), number(value, 1), va="center", fontsize=8)
        ax.set_xlim(0, top * 1.12)
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _pos: number(v)))
        ax.set_xlabel("Desfibriladores por 100.000 habitantes")
        ax.tick_params(axis="y", length=0)
        ax.grid(axis="x", color="#e3e3e3", linewidth=0.6)
        ax.set_axisbelow(True)
    return _svg(figure, name="density", label="Desfibriladores por 100.000 habitantes")


def zones_chart(zones: pd.DataFrame, *, radius_m: float) -> Markup:
    """Share of residents covered per CEAS zone: by 24/7 devices, and whatever the hours."""
    rows = zones.iloc[::-1]
    with _style():
        figure = _figure(6.6, 0.42 * len(rows) + 1.1)
        ax = figure.add_subplot()
        positions = np.arange(len(rows))
        always = rows["share_covered"].to_numpy(dtype=float)
        anytime = rows["share_covered_any_hours"].to_numpy(dtype=float)
        ax.barh(
            positions + 0.2,
            anytime,
            height=0.38,
            color="#92c5de",
            label="En su horario (cualquier desfibrilador)",
        )
        ax.barh(
            positions - 0.2, always, height=0.38, color=PROPOSAL_COLOUR, label="Disponible 24 h"
        )
        ax.set_yticks(positions, [_mpl_text(name) for name in rows["zone_name"]])
        top = max(float(np.nanmax(anytime)) if len(anytime) else 0.0, 0.01)
        for position, value in zip(positions, always, strict=True):
            ax.text(value + top * 0.01, position - 0.2, percent(value), va="center", fontsize=7)
        for position, value in zip(positions, anytime, strict=True):
            ax.text(
                value + top * 0.01,
                position + 0.2,
                percent(value),
                va="center",
                fontsize=7,
                color="#2b5b7a",
            )
        ax.set_xlim(0, top * 1.18)
        _percent_axis(ax.xaxis, 0 if top >= 0.05 else 1)
        ax.set_xlabel(f"Residentes a ≤ {number(radius_m)} m a pie de un desfibrilador")
        ax.tick_params(axis="y", length=0)
        ax.grid(axis="x", color="#e3e3e3", linewidth=0.6)
        ax.set_axisbelow(True)
        handles, labels = ax.get_legend_handles_labels()
        ax.legend(handles[::-1], labels[::-1], loc="lower right")
    return _svg(figure, name="zones", label="Cobertura por zona CEAS")


def weekly_chart(week: WeeklyCoverage) -> Markup:
    """Share covered in each hour of the reference week, with the 24/7 and all-open levels; the
    city's holidays are shaded and starred."""
    slices = week.slices
    shares = slices["share_covered"].to_numpy(dtype=float)
    always = week.residents_covered_always / week.residents if week.residents else 0.0
    potential = week.residents_covered_potential / week.residents if week.residents else 0.0
    with _style():
        figure = _figure(6.8, 2.7)
        ax = figure.add_subplot()
        for start, end in _runs(off_hours_slots()):
            ax.axvspan(start, end, color="#eeeeee", linewidth=0)
        festive = np.flatnonzero(slices["holiday"].to_numpy(dtype=bool))
        for index, (start, end) in enumerate(_runs(festive)):
            ax.axvspan(
                start, end, color="#fbe3c4", linewidth=0, label="Festivo" if index == 0 else None
            )
        hours = np.arange(len(shares) + 1)
        ax.stairs(
            shares, hours, color=PROPOSAL_COLOUR, linewidth=1.4, label="Cubierta en cada hora"
        )
        ax.axhline(
            potential,
            color=LIMITED_COLOUR,
            linestyle="--",
            linewidth=1,
            label="Si todos abrieran siempre",
        )
        ax.axhline(
            always,
            color=ALWAYS_COLOUR,
            linestyle=":",
            linewidth=1.3,
            label="Solo los disponibles 24 h",
        )
        ax.set_xlim(0, 168)
        top = max(potential, float(shares.max()) if len(shares) else 0.0, 0.01)
        ax.set_ylim(0, top * 1.25)
        ax.set_xticks(np.arange(0, 169, 24), [""] * 8)
        days = [
            f"{name[:3]} {(week.week_start + dt.timedelta(days=day)).day}"
            + ("*" if slices["holiday"].iloc[day * 24] else "")
            for day, name in enumerate(WEEKDAY_NAMES)
        ]
        ax.set_xticks(np.arange(12, 168, 24), days, minor=True)
        ax.tick_params(axis="x", which="minor", length=0)
        ax.yaxis.set_major_locator(MaxNLocator(5))
        _percent_axis(ax.yaxis, 0 if top >= 0.05 else 1)
        ax.set_ylabel("Residentes cubiertos")
        ax.grid(axis="y", color="#e3e3e3", linewidth=0.6)
        ax.legend(loc="upper left", ncols=3, fontsize=7.5)
    return _svg(figure, name="week", label="Cobertura en cada hora de la semana")


def _runs(slots: np.ndarray) -> list[tuple[int, int]]:
    """Consecutive slots as ``(start, end)`` spans (end excluded)."""
    spans: list[tuple[int, int]] = []
    for slot in (int(s) for s in slots):
        if spans and spans[-1][1] == slot:
            spans[-1] = (spans[-1][0], slot + 1)
        else:
            spans.append((slot, slot + 1))
    return spans


# --- maps -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _MapLayers:
    zones: gpd.GeoDataFrame  # with share_covered
    devices: gpd.GeoDataFrame  # with category
    boundary: gpd.GeoSeries
    crs_name: str


DEVICE_CATEGORIES = (
    ("always", ALWAYS_COLOUR, "o", "Disponible 24 h"),
    ("limited", LIMITED_COLOUR, "s", "Horario limitado"),
    ("other", OTHER_COLOUR, "D", "Uso restringido o móvil"),
    ("out_of_service", OUT_COLOUR, "X", "Fuera de servicio"),
)


def _map_layers(inputs: AnalysisInputs, indicators: Indicators) -> _MapLayers:
    metric = inputs.metric
    zones = metric["ceas"][["id", "name", "geometry"]].merge(
        indicators.zones[["zone_id", "share_covered"]],
        left_on="id",
        right_on="zone_id",
        how="left",
    )
    devices = metric["defibrillators"]
    availability = device_availability(
        devices, timezone=inputs.city.timezone, calendar=inputs.city.calendar
    )
    always = available(availability, at=None, reference_date=indicators.as_of)
    shown = (devices["status"] != "removed") & (devices["verification"] != "rejected")
    category = np.where(
        devices["status"] == "out_of_service",
        "out_of_service",
        np.where(always, "always", np.where(availability.counted(), "limited", "other")),
    )
    frame = devices.assign(category=category)[shown.to_numpy()]
    boundary = gpd.GeoSeries([inputs.city.boundary], crs="EPSG:4326").to_crs(zones.crs)
    return _MapLayers(
        gpd.GeoDataFrame(zones, crs=metric["ceas"].crs), frame, boundary, str(zones.crs.name)
    )


def _map_axes(figure: Figure, layers: _MapLayers, *, fill: str | None) -> Axes:
    ax = figure.add_subplot()
    minx, miny, maxx, maxy = layers.zones.total_bounds
    pad = 0.04 * max(maxx - minx, maxy - miny)
    ax.set_xlim(minx - pad, maxx + pad)
    ax.set_ylim(miny - pad, maxy + pad)
    ax.set_aspect("equal")
    ax.set_axis_off()
    layers.boundary.boundary.plot(ax=ax, color="#9a9a9a", linewidth=0.8, linestyle="--")
    if fill is None:
        layers.zones.plot(ax=ax, color="#f4f4f4", edgecolor=ZONE_EDGE, linewidth=0.7)
    for row in layers.zones.itertuples():
        point = row.geometry.representative_point()
        ax.annotate(
            _mpl_text(row.name),
            (point.x, point.y),
            ha="center",
            va="center",
            fontsize=6.5,
            color="#333333",
            alpha=0.85,
            zorder=2,
        )
    _scale_bar(ax, maxx - minx)
    ax.annotate(
        "N",
        xy=(0.965, 0.97),
        xytext=(0.965, 0.87),
        xycoords="axes fraction",
        ha="center",
        va="center",
        fontsize=9,
        fontweight="bold",
        arrowprops={
            "facecolor": "#222222",
            "width": 3,
            "headwidth": 9,
            "headlength": 8,
            "linewidth": 0,
        },
    )
    return ax


def _legend(figure: Figure, handles: Sequence[Line2D | Patch], *, title: str | None = None) -> None:
    figure.legend(
        handles=handles,
        title=title,
        loc="outside right upper",
        fontsize=7.5,
        title_fontsize=8,
        alignment="left",
    )


def _scale_bar(ax: Axes, width_m: float) -> None:
    target = width_m / 5
    length = max(
        s for s in (50, 100, 200, 250, 500, 1000, 2000, 5000, 10000) if s <= target or s == 50
    )
    label = f"{number(length / 1000)} km" if length >= 1000 else f"{number(length)} m"
    ax.add_artist(
        AnchoredSizeBar(
            ax.transData,
            length,
            label,
            loc="lower left",
            pad=0.4,
            borderpad=0.6,
            sep=3,
            frameon=True,
            size_vertical=width_m / 250,
            color="#222222",
            fontproperties={"size": 7.5},
        )
    )


def _devices_on_map(ax: Axes, devices: gpd.GeoDataFrame, *, size: float = 30) -> list[Line2D]:
    handles = []
    for key, colour, marker, label in DEVICE_CATEGORIES:
        chosen = devices[devices["category"] == key]
        if len(chosen):
            ax.scatter(
                chosen.geometry.x,
                chosen.geometry.y,
                s=size,
                c=colour,
                marker=marker,
                edgecolors="#1f1f1f",
                linewidths=0.5,
                zorder=4,
            )
        handles.append(
            _marker(
                f"{label} ({len(chosen)})",
                marker=marker,
                face=colour,
                edge="#1f1f1f",
                edge_width=0.5,
                size=6,
            )
        )
    return handles


def coverage_map(layers: _MapLayers, *, radius_m: float) -> Markup:
    """CEAS zones shaded by the share covered 24 h, and the devices by availability."""
    with _style():
        figure = _figure(6.8, 4.75)
        ax = _map_axes(figure, layers, fill="share_covered")
        shares = layers.zones["share_covered"].fillna(0.0)
        top = max(float(shares.max()), 0.01)
        vmax = math.ceil(top * 100 / 5) * 5 / 100 if top > 0.05 else math.ceil(top * 100) / 100
        layers.zones.plot(
            ax=ax,
            column=shares,
            cmap=ZONE_CMAP,
            vmin=0,
            vmax=vmax,
            edgecolor=ZONE_EDGE,
            linewidth=0.7,
            zorder=1,
        )
        handles = _devices_on_map(ax, layers.devices)
        scale = ScalarMappable(norm=Normalize(0, vmax), cmap=ZONE_CMAP)
        bar = figure.colorbar(
            scale, ax=ax, orientation="vertical", shrink=0.5, pad=0.02, aspect=18, anchor=(0.0, 0.0)
        )
        bar.set_label(
            f"Residentes de la zona\na ≤ {number(radius_m)} m de un DEA 24 h", fontsize=7.5
        )
        _percent_axis(bar.ax.yaxis, 0 if vmax >= 0.05 else 1)
        _legend(figure, handles, title="Desfibriladores")
    return _svg(figure, name="map-coverage", label="Mapa de cobertura por zona CEAS")


def gaps_map(layers: _MapLayers, gaps: GapsAnalysis) -> Markup:
    """Uncovered areas (top ones numbered), and the sites without a device in reach."""
    with _style():
        figure = _figure(6.8, 4.5)
        ax = _map_axes(figure, layers, fill=None)
        areas = gaps.areas
        handles: list[Line2D | Patch] = []
        if len(areas):
            # One shape for all the uncovered cells: no hairline seams between them.
            gpd.GeoSeries([areas.union_all()], crs=areas.crs).plot(
                ax=ax, color=GAP_COLOUR, alpha=0.22, linewidth=0, zorder=2
            )
            top = areas.head(TOP_GAPS)
            top.plot(
                ax=ax, color=GAP_COLOUR, alpha=0.9, edgecolor="#67001f", linewidth=0.5, zorder=3
            )
            for row in top.itertuples():
                point = row.geometry.representative_point()
                ax.annotate(
                    str(row.rank),
                    (point.x, point.y),
                    ha="center",
                    va="center",
                    fontsize=6,
                    fontweight="bold",
                    color="#67001f",
                    zorder=6,
                    bbox={"boxstyle": "circle,pad=0.25", "fc": "white", "ec": "#67001f", "lw": 0.6},
                )
            handles.append(
                _marker(
                    f"Huecos con más residentes (n.º = orden, {len(top)})",
                    marker="o",
                    face="white",
                    edge="#67001f",
                    size=8,
                )
            )
            handles.append(
                Patch(color=GAP_COLOUR, alpha=0.22, label="Zona habitada sin DEA 24 h a su alcance")
            )
        always = layers.devices[layers.devices["category"] == "always"]
        ax.scatter(always.geometry.x, always.geometry.y, s=14, c=ALWAYS_COLOUR, zorder=4)
        handles.append(_always_marker())
        for name, marker, colour, label in (
            ("entities", "^", "#e66101", "Entidad sin DEA 24 h a su alcance"),
            ("cohousing", "P", "#5e3c99", "Cohousing / coliving sin DEA 24 h"),
        ):
            sites = gaps.uncovered[name]
            if len(sites):
                ax.scatter(
                    sites.geometry.x,
                    sites.geometry.y,
                    s=30,
                    c=colour,
                    marker=marker,
                    edgecolors="white",
                    linewidths=0.6,
                    zorder=5,
                )
            handles.append(
                _marker(f"{label} ({len(sites)})", marker=marker, face=colour, edge="white", size=7)
            )
        _legend(figure, handles)
    return _svg(figure, name="map-gaps", label="Mapa de huecos de cobertura")


def proposal_map(layers: _MapLayers, siting: SitingAnalysis) -> Markup:
    """The proposed devices, numbered in greedy order, over the 24/7 ones."""
    with _style():
        figure = _figure(6.8, 4.5)
        ax = _map_axes(figure, layers, fill=None)
        always = layers.devices[layers.devices["category"] == "always"]
        ax.scatter(always.geometry.x, always.geometry.y, s=14, c=ALWAYS_COLOUR, zorder=4)
        chosen = siting.chosen
        ax.scatter(
            chosen.geometry.x,
            chosen.geometry.y,
            s=120,
            c=PROPOSAL_COLOUR,
            edgecolors="white",
            linewidths=0.8,
            zorder=5,
        )
        for row in chosen.itertuples():
            ax.annotate(
                str(row.step),
                (row.geometry.x, row.geometry.y),
                ha="center",
                va="center",
                fontsize=6,
                fontweight="bold",
                color="white",
                zorder=6,
            )
        handles = [
            _marker(
                f"Propuesta (n.º = orden de instalación, {len(chosen)})",
                face=PROPOSAL_COLOUR,
                edge="white",
                size=9,
            ),
            _always_marker(),
        ]
        _legend(figure, handles)
    return _svg(figure, name="map-proposal", label="Mapa de la propuesta de nuevos desfibriladores")


# --- the document -----------------------------------------------------------------------------


def layer_sources(layers: Layers, training: pd.DataFrame | None = None) -> list[dict[str, int]]:
    """Per layer (and the training register), its record count per ``source``.

    What :func:`geo.core.outputs.data_notice` reads.
    """
    frames = [*layers.frames.values(), *([] if training is None else [training])]
    return [_sources(frame) for frame in frames]


def _sources(frame: pd.DataFrame) -> dict[str, int]:
    counts = frame["source"].astype(str).value_counts(sort=False)
    return {str(source): int(count) for source, count in sorted(counts.items())}


def _label(key: str, radius_m: float) -> str:
    return INDICATOR_LABELS[key].replace("≤ radio", f"≤ {number(radius_m)} m")


def _indicator_table(ind: Indicators, year: int, radius_m: float) -> dict[str, Any]:
    years = ind.years
    change = year_on_year(years)
    change_row = change[change["year"] == year].iloc[0]
    columns = []
    for row in years.itertuples():
        status = str(row.status)
        title = str(row.year)
        note = f"en curso, a {day(ind.as_of)}" if status == "in_course" else ""
        columns.append(
            {"title": title, "note": note, "status": status, "current": int(row.year) == year}
        )
    rows = []
    for key in INDICATOR_LABELS:
        cells = [
            DASH if row["status"] == "future" else format_value(key, row[key])
            for _, row in years.iterrows()
        ]
        bands = None
        if key in BANDS:  # the band's ends, under the estimate
            bands = [
                "" if row["status"] == "future" else _band_text(key, row[key], *row[[*BANDS[key]]])
                for _, row in years.iterrows()
            ]
        rows.append(
            {
                "key": key,
                "label": _label(key, radius_m),
                "cells": cells,
                "bands": bands,
                "change": format_value(key, change_row[key], change=True),
                "to_date": format_value(key, ind.to_date.get(key)),
                "to_date_band": _band_text(
                    key, ind.to_date.get(key), *(ind.to_date.get(end) for end in BANDS[key])
                )
                if key in BANDS
                else "",
                "flow": key in FLOW_INDICATORS,
            }
        )
    previous = year - 1 if year - 1 in ind.plan.years else None
    return {"columns": columns, "rows": rows, "previous": previous}


def _band_text(key: str, value: Any, low: Any, high: Any) -> str:
    """``0,011–0,028``: a band's ends with the estimate's decimals (empty when unknown)."""
    if _missing(value) or _missing(low) or _missing(high):
        return ""
    places = estimate_decimals(float(value))
    return "–".join(format_value(key, end, decimals=places) for end in (low, high))


def _parameter_number(value: float) -> str:
    """A parameter as written in its table: up to three decimals, none trailing."""
    decimals = next((d for d in range(4) if math.isclose(round(value, d), value)), 3)
    return number(value, decimals)


def _lives(ind: Indicators, year: int) -> dict[str, Any] | None:
    """The section on expected lives saved: per plan year so far, the cost, the parameters."""
    lives = ind.lives
    if lives is None:
        return None
    rows = []
    for row in ind.years[ind.years["status"] != "future"].to_dict("records"):
        week = row["outcome_week_start"]
        cells: dict[str, Any] = {
            "year": str(row["year"]),
            "current": int(row["year"]) == year,
            "status": YEAR_STATUS_LABELS[str(row["status"])],
            "period_end": day(row["period_end"]),
            "week": f"{day(week)} – {day(week + dt.timedelta(days=6))}",
            "initial": format_value("lives_saved", row["lives_saved_initial_only"]),
            "devices": number(row["plan_devices_in_place"]),
            "annual_cost": format_value(
                "new_devices_annual_cost_eur", row["new_devices_annual_cost_eur"]
            ),
        }
        for key, name in (
            ("lives_saved", "lives"),
            ("lives_saved_by_new_devices", "added"),
            ("life_years_by_new_devices", "life_years"),
            ("cost_per_life_year_eur", "per_life_year"),
        ):
            low, high = (row[end] for end in BANDS[key])
            cells[name] = format_value(key, row[key])
            cells[f"{name}_band"] = _band_text(key, row[key], low, high)
        rows.append(cells)
    current = next(r for r in rows if r["current"])
    plan = ind.plan
    cost = None
    if plan.annual_cost_per_device_eur is not None:
        cost = {
            "device": format_value("device_cost_eur", plan.device_cost_eur),
            "lifetime": number(plan.lifetime_years, 1 if plan.lifetime_years % 1 else 0),
            "lifetime_default": plan.device_lifetime_years is None,
            "upkeep": format_value("device_cost_eur", plan.device_upkeep_eur_per_year),
            "annual": format_value("device_cost_eur", plan.annual_cost_per_device_eur),
            "source": plan.device_cost_source or "",
        }
    parameters = [
        {
            "label": item.label or item.key,
            "key": item.key,
            "value": f"{_parameter_number(item.central)} {item.unit}".strip(),
            "range": "fijo"
            if item.fixed
            else f"{_parameter_number(item.low)}–{_parameter_number(item.high)}",
            "source": item.source,
            "note": item.note,
        }
        for item in (lives.parameters[key] for key in PARAMETER_KEYS)
    ]
    life_years = lives.parameters.central("life_years_per_survivor")
    return {
        "rows": rows,
        "current": current,
        "cost": cost,
        "parameters": parameters,
        "home_arrests": lives.home_arrests,
        "reach": number(lives.reach_m),
        "full_use": number(lives.full_use_m),
        "ratio": _parameter_number(lives.parameters.central("day_night_ratio")),
        "draws": number(lives.draws),
        "seed": str(lives.seed),
        "low": number(BAND_PERCENTILES[0]),
        "high": number(BAND_PERCENTILES[1]),
        "life_years": _parameter_number(life_years),
    }


def _region(ind: Indicators) -> pd.Series | None:
    region_id = ind.plan.region_reference
    if region_id is None:
        return None
    rows = ind.density[(ind.density["id"] == region_id) & ~ind.density["is_city"]]
    return None if rows.empty else rows.iloc[0]


def _summary(ind: Indicators, year: int, radius_m: float) -> dict[str, Any]:
    row = ind.year(year)
    total = int(row["devices_total"])
    region = _region(ind)
    density_text = f"{number(row['devices_per_100k'], 1)}"
    if region is None:
        region_text = "No hay referencia regional configurada (plan.region_reference)."
        needed = None
    else:
        needed = devices_needed(total, ind.population, float(region["devices_per_100k"]))
        region_text = (
            f"{region['name']}: {number(region['devices_per_100k'], 1)} por 100.000"
            + (f" ({int(region['year'])})" if not _missing(region["year"]) else "")
            + ". "
            + (
                f"La supera con {plural(total, 'desfibrilador', 'desfibriladores')}."
                if needed == 0
                else f"Para superarla {'falta' if needed == 1 else 'faltan'} "
                f"{plural(needed, 'desfibrilador', 'desfibriladores')} "
                f"({number(total + needed)} en total)."
            )
        )
    radius = number(radius_m)
    cards = [
        {
            "title": "Desfibriladores",
            "value": number(total),
            "detail": f"{number(row['devices_new'])} nuevos en {year} · "
            f"{number(row['devices_removed'])} retirados · "
            f"{number(row['devices_initial'])} antes del plan",
        },
        {
            "title": "Entidades cardioprotegidas",
            "value": f"{number(row['entities_cardioprotected'])} de "
            f"{number(row['entities_members'])}",
            "detail": f"{percent(row['share_entities_cardioprotected'])} de las entidades del "
            "clúster",
        },
        {
            "title": f"Personas formadas en {year}",
            "value": number(row["people_trained"]),
            "detail": "en "
            + plural(int(row["training_actions"]), "acción formativa", "acciones formativas"),
        },
        {
            "title": f"Personas atendidas con un DEA en {year}",
            "value": number(row["people_attended"]),
            "detail": plural(int(row["uses"]), "uso comunicado", "usos comunicados"),
        },
        {
            "title": f"Población a ≤ {radius} m de un DEA 24 h",
            "value": percent(row["share_covered"]),
            "detail": f"{percent(row['share_covered_any_hours'])} con cualquier DEA en su horario"
            f" · mayores de 65: {percent(row['share_65_plus_covered'])}",
        },
        {
            "title": "Desfibriladores por 100.000 habitantes",
            "value": density_text,
            "detail": region_text,
        },
    ]
    return {"cards": cards, "needed": needed, "region": region}


def _density(ind: Indicators) -> dict[str, Any]:
    region = _region(ind)
    rows = []
    for row in ind.density.itertuples():
        if row.is_city:
            devices = int(ind.to_date["devices_total"])
            basis = (
                f"{plural(devices, 'desfibrilador verificado', 'desfibriladores verificados')}, "
                f"{number(ind.population)} habitantes, "
                f"{number(ind.to_date['devices_per_km2'], 2)} por km²"
            )
            source = f"cardiomapa, a {day(ind.as_of)}"
        else:
            basis, source = str(row.basis), str(row.source)
        rows.append(
            {
                "name": str(row.name),
                "value": number(row.devices_per_100k, 1),
                "year": DASH if _missing(row.year) else str(int(row.year)),
                "basis": basis,
                "source": source,
                "is_city": bool(row.is_city),
                "is_region": region is not None and row.id == region["id"],
                "needed": DASH if row.is_city else number(row.devices_needed),
            }
        )
    cities = ind.density[(ind.density["scope"] == "city") & ~ind.density["is_city"]]
    city_rank = None
    if len(cities):
        ranked = ind.density[ind.density["scope"] == "city"].reset_index(drop=True)
        position = int(np.flatnonzero(ranked["is_city"].to_numpy())[0]) + 1
        city_rank = {"position": position, "of": len(ranked)}
    current = float(ind.to_date["devices_per_100k"])
    region_row = None
    if region is not None:
        region_row = {
            "name": str(region["name"]),
            "value": number(region["devices_per_100k"], 1),
            "year": None if _missing(region["year"]) else str(int(region["year"])),
            "needed": int(region["devices_needed"]),
        }
    return {
        "rows": rows,
        "region": region_row,
        "other_cities": [str(name) for name in cities["name"]],
        "city_rank": city_rank,
        "current": number(current, 1),
    }


def _zones(ind: Indicators) -> list[dict[str, str]]:
    return [
        {
            "name": str(row.zone_name),
            "residents": number(row.residents),
            "initial": number(row.devices_initial),
            "new": number(row.devices_new),
            "total": number(row.devices_total),
            "per_100k": number(row.devices_per_100k, 1),
            "always": percent(row.share_covered),
            "anytime": percent(row.share_covered_any_hours),
        }
        for row in ind.zones.itertuples()
    ]


def _week(week: WeeklyCoverage) -> dict[str, Any]:
    document = week.to_dict()
    worst = document["worst_slot"]
    share = week.residents_covered_always / week.residents if week.residents else 0.0
    potential = week.residents_covered_potential / week.residents if week.residents else 0.0
    return {
        "start": day(week.week_start.date()),
        "end": day(week.week_start.date() + dt.timedelta(days=6)),
        "mean": percent(week.mean_share_covered),
        "worst_label": str(worst["label"]),
        "worst": percent(worst["share_covered"]),
        "best": percent(float(week.slices["share_covered"].max())),
        "always": percent(share),
        "potential": percent(potential),
        "lost": percent(week.share_lost_to_hours),
        "lost_off_hours": percent(document["share_lost_off_hours"]),
        "issues": len(week.hours_issues),
    }


def _gaps(gaps: GapsAnalysis, zone_names: Mapping[str, str], radius_m: float) -> dict[str, Any]:
    result = gaps.result
    areas = [
        {
            "rank": int(row.rank),
            "zone": zone_names.get(str(row.zone_id), DASH),
            "residents": number(row.residents),
            "seniors": number(row.residents_65_plus),
            "nearest": number(row.nearest_distance_m)
            if np.isfinite(row.nearest_distance_m)
            else DASH,
        }
        for row in gaps.areas.head(TOP_GAPS).itertuples()
    ]
    entities = [
        {
            "name": str(row.name),
            "kind": ENTITY_KIND_LABELS.get(str(row.kind), str(row.kind)),
            "nearest": number(row.distance_m) if np.isfinite(row.distance_m) else DASH,
            "own": "sí, pero no disponible 24 h" if row.holds_device else "no",
        }
        for row in gaps.uncovered["entities"].itertuples()
    ]
    cohousing = [
        {
            "name": str(row.name),
            "status": COHOUSING_STATUS_LABELS.get(str(row.status), str(row.status)),
            "dwellings": number(row.dwellings),
            "nearest": number(row.distance_m) if np.isfinite(row.distance_m) else DASH,
        }
        for row in gaps.uncovered["cohousing"].itertuples()
    ]
    uncovered = result.residents - result.residents_covered
    uncovered_65 = result.residents_65_plus - result.residents_65_plus_covered
    return {
        "areas": areas,
        "count": len(gaps.areas),
        "entities": entities,
        "cohousing": cohousing,
        "uncovered": number(uncovered),
        "residents": number(result.residents),
        "uncovered_share": percent(uncovered / result.residents if result.residents else 0.0),
        "uncovered_65": number(uncovered_65),
        "radius": number(radius_m),
    }


def _site_name(name: str, kind: str) -> str:
    if kind == "grid":
        return "Punto de rejilla"
    label = SITE_KIND_LABELS.get(kind)
    return f"{name} ({label})" if label else name


def _proposal(siting: SitingAnalysis, ind: Indicators, gaps: GapsAnalysis) -> dict[str, Any]:
    document = siting.document
    steps = [
        {
            "step": int(row.step),
            "name": _site_name(str(row.name), str(row.kind)),
            "lonlat": f"{number(row.lat, 5)}, {number(row.lon, 5)}",
            "residents": f"+{number(row.residents_gained)}",
            "seniors": f"+{number(row.residents_65_plus_gained)}",
            "after": percent(row.share_covered_after),
        }
        for row in siting.chosen.itertuples()
    ]
    out_of_reach = set(gaps.uncovered["entities"]["id"].astype(str))
    lacking = ind.entities[~ind.entities["cardioprotected"]]
    entities = [
        {
            "name": str(row.name),
            "kind": ENTITY_KIND_LABELS.get(str(row.kind), str(row.kind)),
            "since": DASH if _missing(row.member_since) else day(row.member_since),
            "reach": "no" if str(row.id) in out_of_reach else "sí",
        }
        for row in lacking.itertuples()
    ]
    return {
        "steps": steps,
        "before": percent(document["share_covered_before"]),
        "after": percent(document["share_covered_after"]),
        "gained": number(
            document["residents_covered_after"] - document["residents_covered_before"]
        ),
        "candidates": number(document["candidates_count"]),
        "entities": entities,
    }


def _training(ind: Indicators) -> dict[str, Any]:
    rows = []
    order = {kind: position for position, kind in enumerate(KIND_LABELS)}
    for year, group in ind.training.groupby("year", sort=True):
        group = group.sort_values("kind", key=lambda kinds: kinds.map(order), kind="stable")
        for row in group.itertuples():
            rows.append(
                {
                    "year": str(year),
                    "kind": KIND_LABELS.get(str(row.kind), str(row.kind)),
                    "actions": number(row.actions),
                    "people": number(row.people_trained),
                    "subtotal": False,
                }
            )
        rows.append(
            {
                "year": str(year),
                "kind": "Total del año",
                "actions": number(group["actions"].sum()),
                "people": number(group["people_trained"].sum()),
                "subtotal": True,
            }
        )
    uses = [
        {
            "year": str(int(row.year)),
            "status": YEAR_STATUS_LABELS[str(row.status)],
            "uses": number(row.uses),
            "people": number(row.people_attended),
        }
        for row in ind.years.itertuples()
        if row.status != "future"
    ]
    return {
        "rows": rows,
        "uses": uses,
        "entities_with_training": number(ind.to_date.get("entities_with_training", 0)),
        "people_total": number(ind.to_date["people_trained"]),
        "actions_total": number(ind.to_date["training_actions"]),
    }


def _provenance(inputs: AnalysisInputs, training: pd.DataFrame | None) -> list[dict[str, Any]]:
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


def _licences(inputs: AnalysisInputs, training: pd.DataFrame | None) -> list[str]:
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


def render_report(
    inputs: AnalysisInputs,
    analysis: IndicatorsAnalysis,
    *,
    week: WeeklyCoverage,
    gaps: GapsAnalysis,
    siting: SitingAnalysis,
    year: int,
    radius_m: float,
    detour_factor: float,
    notice: str,
    generated_at: dt.datetime,
    training: pd.DataFrame | None = None,
) -> str:
    """Lay out the evaluation report of ``year`` from results already computed (Spanish HTML).

    :func:`geo.services.publishing.build_report` checks the request and runs the analyses (the
    weekly profile, the gaps, the proposal); this only draws them. See it for the parameters.
    """
    ind = analysis.indicators
    row = ind.year(year)
    model = inputs.distance_model(detour_factor=detour_factor)
    layers = _map_layers(inputs, ind)
    zone_names = dict(
        zip(ind.zones["zone_id"].astype(str), ind.zones["zone_name"].astype(str), strict=True)
    )
    plan = ind.plan
    status = str(row["status"])
    provenance = _provenance(inputs, training)
    density = _density(ind)
    context = {
        "city": ind.city,
        "plan": plan,
        "year": year,
        "status": status,
        "status_text": (
            f"año cerrado: cifras al {day(row['period_end'])}"
            if status == "closed"
            else f"año en curso: cifras a {day(ind.as_of)}"
        ),
        "as_of": day(ind.as_of),
        "generated_at": f"{generated_at:%d/%m/%Y %H:%M}",
        "plan_period": f"{day(plan.start)} – {day(plan.end)}",
        "origin": inputs.origin,
        "notice": notice,
        "synthetic": any(p["synthetic"] for p in provenance),
        "radius": number(radius_m),
        "model": model.describe(),
        "on_site": number(DEFAULT_ON_SITE_M),
        "population": number(ind.population),
        "population_source": inputs.city.population_source,
        "population_year": inputs.city.population_year,
        "boundary_source": inputs.city.boundary_source,
        "area": number(ind.area_km2, 1),
        "summary": _summary(ind, year, radius_m),
        "table": _indicator_table(ind, year, radius_m),
        "lives": _lives(ind, year),
        "density": density,
        "zones": _zones(ind),
        "week": _week(week),
        "gaps": _gaps(gaps, zone_names, radius_m),
        "proposal": _proposal(siting, ind, gaps),
        "training": _training(ind),
        "devices_now": {
            "active": number(ind.to_date["devices_active"]),
            "out": number(ind.to_date["devices_out_of_service"]),
            "pending": number(ind.to_date["devices_pending"]),
        },
        "notes": [*ind.notes, *(ind.lives.notes if ind.lives else ()), *week.notes],
        "hours_issues": [str(issue) for issue in week.hours_issues],
        "references": [
            {"name": row["name"], "source": row["source"]}
            for row in density["rows"]
            if not row["is_city"]
        ],
        "provenance": provenance,
        "licences": _licences(inputs, training),
        "crs": layers.crs_name,
        "charts": {
            "density": density_chart(ind.density, region_id=plan.region_reference),
            "zones": zones_chart(ind.zones, radius_m=radius_m),
            "week": weekly_chart(week),
            "map_coverage": coverage_map(layers, radius_m=radius_m),
            "map_gaps": gaps_map(layers, gaps),
            "map_proposal": proposal_map(layers, siting),
        },
        "css_header": css_string(plan.name),
        "css_title": css_string(f"Informe de evaluación {year} · {ind.city}"),
        "css_footer": css_string(f"cardiomapa · datos a {day(ind.as_of)}"),
        "stylesheet": Markup((TEMPLATES_DIR / STYLESHEET).read_text(encoding="utf-8")),
    }
    return _environment().get_template(TEMPLATE).render(**context)


def _environment() -> Environment:
    return Environment(
        loader=FileSystemLoader(TEMPLATES_DIR),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


# --- PDF --------------------------------------------------------------------------------------


def find_chromium(
    names: Iterable[str] = CHROMIUM_NAMES, paths: Sequence[str] | None = None
) -> Path:
    """The Chromium (or Chrome) to print with: the first of ``names`` on ``PATH``, else the first
    of ``paths`` (default :data:`CHROMIUM_PATHS`) that is an executable file.

    Raises
    ------
    ChromiumNotFoundError
        None is installed.
    """
    for name in names:
        found = shutil.which(name)
        if found:
            return Path(found)
    for path in CHROMIUM_PATHS if paths is None else paths:
        if shutil.which(path):
            return Path(path)
    msg = (
        "No se encuentra Chromium para imprimir el PDF (se buscó "
        f"{', '.join(CHROMIUM_NAMES)} en el PATH y {', '.join(CHROMIUM_PATHS)}). Instálelo "
        "(apt-get install chromium) o abra el HTML en un navegador e imprímalo a PDF."
    )
    raise ChromiumNotFoundError(msg)


def print_pdf(
    html: Path, pdf: Path, *, chromium: Path | None = None, timeout_s: float = 120.0
) -> Path:
    """Print the report ``html`` to ``pdf`` with headless Chromium (A4, the report's margins).

    Raises
    ------
    ChromiumNotFoundError
        No Chromium is installed (and none was given).
    PdfError
        Chromium failed, took longer than ``timeout_s`` or wrote no PDF.
    """
    executable = chromium or find_chromium()
    target = pdf.resolve()
    target.unlink(missing_ok=True)
    with tempfile.TemporaryDirectory(prefix="cardiomapa-chromium-") as profile:
        command = [
            str(executable),
            *CHROMIUM_FLAGS,
            f"--user-data-dir={profile}",
            f"--print-to-pdf={target}",
            html.resolve().as_uri(),
        ]
        try:
            done = subprocess.run(
                command, capture_output=True, text=True, timeout=timeout_s, check=False
            )
        except subprocess.TimeoutExpired:
            msg = f"Chromium no terminó de imprimir {pdf} en {timeout_s:g} s."
            raise PdfError(msg) from None
        except OSError as exc:
            msg = f"No se pudo ejecutar {executable}: {exc.strerror or exc}."
            raise PdfError(msg) from None
    if not target.is_file() or target.read_bytes()[:5] != b"%PDF-":
        tail = (done.stderr or "").strip().splitlines()[-3:]
        msg = f"Chromium ({executable}) no escribió el PDF {pdf} (código {done.returncode})" + (
            f": {' / '.join(tail)}" if tail else "."
        )
        raise PdfError(msg)
    return target


def _marker(
    label: str,
    *,
    face: str,
    edge: str,
    size: float,
    marker: str = "o",
    edge_width: float | None = None,
) -> Line2D:
    """A legend entry for a kind of point drawn on a map."""
    return Line2D(
        [], [], linestyle="", marker=marker, markerfacecolor=face, markeredgecolor=edge,
        markersize=size, markeredgewidth=edge_width, label=label,
    )  # fmt: skip


def _always_marker() -> Line2D:
    return _marker("Desfibrilador disponible 24 h", face=ALWAYS_COLOUR, edge=ALWAYS_COLOUR, size=5)
