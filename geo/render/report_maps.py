"""The report's maps: coverage by CEAS zone, the gaps and the proposal, in metric coordinates.

Drawn from the layers and results alone (no basemap tiles), with a scale bar and a north arrow.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import geopandas as gpd
import numpy as np
from markupsafe import Markup
from matplotlib.axes import Axes
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Normalize
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from mpl_toolkits.axes_grid1.anchored_artists import AnchoredSizeBar

from geo.core.availability import available, device_availability
from geo.core.indicators import Indicators
from geo.core.results import AnalysisInputs, GapsAnalysis, SitingAnalysis
from geo.render.report_figures import (
    ALWAYS_COLOUR,
    GAP_COLOUR,
    LIMITED_COLOUR,
    OTHER_COLOUR,
    OUT_COLOUR,
    PROPOSAL_COLOUR,
    ZONE_CMAP,
    ZONE_EDGE,
    chart_style,
    inline_svg,
    mpl_text,
    new_figure,
    percent_axis,
)
from geo.render.report_format import number
from geo.render.report_sections import TOP_GAPS


@dataclass(frozen=True)
class MapLayers:
    """The layers the report's maps draw, in the metric CRS."""

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


def map_layers(inputs: AnalysisInputs, indicators: Indicators) -> MapLayers:
    """The zones with their share covered 24 h, the devices shown (by category) and the city."""
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
    return MapLayers(
        gpd.GeoDataFrame(zones, crs=metric["ceas"].crs), frame, boundary, str(zones.crs.name)
    )


def _map_axes(figure: Figure, layers: MapLayers, *, fill: str | None) -> Axes:
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
            mpl_text(row.name),
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


def coverage_map(layers: MapLayers, *, radius_m: float) -> Markup:
    """CEAS zones shaded by the share covered 24 h, and the devices by availability."""
    with chart_style():
        figure = new_figure(6.8, 4.75)
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
        percent_axis(bar.ax.yaxis, 0 if vmax >= 0.05 else 1)
        _legend(figure, handles, title="Desfibriladores")
    return inline_svg(figure, name="map-coverage", label="Mapa de cobertura por zona CEAS")


def gaps_map(layers: MapLayers, gaps: GapsAnalysis) -> Markup:
    """Uncovered areas (top ones numbered), and the sites without a device in reach."""
    with chart_style():
        figure = new_figure(6.8, 4.5)
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
    return inline_svg(figure, name="map-gaps", label="Mapa de huecos de cobertura")


def proposal_map(layers: MapLayers, siting: SitingAnalysis) -> Markup:
    """The proposed devices, numbered in greedy order, over the 24/7 ones."""
    with chart_style():
        figure = new_figure(6.8, 4.5)
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
    return inline_svg(
        figure, name="map-proposal", label="Mapa de la propuesta de nuevos desfibriladores"
    )


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
