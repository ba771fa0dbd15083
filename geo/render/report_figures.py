"""What every figure of the report shares: the palette, the matplotlib settings and the SVG.

Charts and maps are drawn with matplotlib (no pyplot state, no basemap tiles) and embedded as
inline SVG with the text drawn as paths; data labels go through :func:`mpl_text`, so mathtext
never reads them.
"""

from __future__ import annotations

import io
import re
from collections.abc import Mapping
from contextlib import AbstractContextManager
from typing import Any

import matplotlib as mpl
from markupsafe import Markup, escape
from matplotlib.colors import LinearSegmentedColormap
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

from geo.render.report_format import percent

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


def mpl_text(text: object) -> str:
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


def chart_style(extra: Mapping[str, object] | None = None) -> AbstractContextManager[None]:
    """matplotlib settings of every chart (plus ``extra``), for the ``with`` block only."""
    settings: Any = {**_RC, **(extra or {})}  # rc_context's stub wants literal keys
    return mpl.rc_context(settings)


def inline_svg(figure: Figure, *, name: str, label: str) -> Markup:
    """``figure`` as an inline ``<svg>`` element with ids prefixed by ``name`` (unique per page).

    The XML prologue, metadata, comments and the global style rule matplotlib writes are
    dropped; ``label`` is the accessible name of the image.
    """
    buffer = io.StringIO()
    with chart_style({"svg.hashsalt": name}):
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


def new_figure(width_in: float, height_in: float) -> Figure:
    """An empty figure, ``width_in`` by ``height_in`` inches, with the charts' settings."""
    with chart_style():
        return Figure(figsize=(width_in, height_in), layout="constrained")


def percent_axis(axis: Any, decimals: int = 0) -> None:
    """Ticks of ``axis`` as Spanish percentages."""
    axis.set_major_formatter(FuncFormatter(lambda v, _pos: percent(v, decimals)))
