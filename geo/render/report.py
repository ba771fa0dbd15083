"""The plan's annual evaluation report: one self-contained, printable HTML file, and its PDF.

Renders results it is given (:func:`geo.services.publishing.build_report` runs the analyses) and
lays them out in Spanish. Charts and maps are drawn with matplotlib (no pyplot state, no basemap
tiles) and embedded as inline SVG; the style sheet is inline too, so the file opens offline and
makes no request at all. The pure modules never import this one.

The pieces live beside it: :mod:`geo.render.report_format` (Spanish numbers and dates),
:mod:`geo.render.report_sections` (each section's text), :mod:`geo.render.report_sources` (where
the records come from), :mod:`geo.render.report_charts` and :mod:`geo.render.report_maps` (the
figures, on :mod:`geo.render.report_figures`).

Every text that comes from the data (zone, entity, site names…) is escaped: the HTML through
Jinja2 with autoescape (no data is ever compiled as a template), the charts by drawing text as
paths with matplotlib's mathtext switched off for data labels, and the CSS page header through
:func:`css_string`.

:func:`print_pdf` prints the file with a headless Chromium (``--print-to-pdf``); the page size,
margins, running header and page numbers come from the report's ``@page`` rules.
"""

from __future__ import annotations

import datetime as dt
import shutil
import subprocess
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
from jinja2 import Environment, FileSystemLoader, StrictUndefined
from markupsafe import Markup

from geo.core.coverage import WeeklyCoverage
from geo.core.indicators import DEFAULT_ON_SITE_M, Indicators
from geo.core.results import AnalysisInputs, GapsAnalysis, IndicatorsAnalysis, SitingAnalysis
from geo.errors import ChromiumNotFoundError, PdfError
from geo.render import report_sections as sections
from geo.render.report_charts import density_chart, weekly_chart, zones_chart
from geo.render.report_format import css_string, day, number, percent
from geo.render.report_maps import MapLayers, coverage_map, gaps_map, map_layers, proposal_map
from geo.render.report_sources import layer_sources, licence_lines, provenance_rows

__all__ = [
    "CHROMIUM_FLAGS",
    "CHROMIUM_NAMES",
    "CHROMIUM_PATHS",
    "PROPOSED_DEVICES",
    "TEMPLATES_DIR",
    "css_string",
    "day",
    "find_chromium",
    "layer_sources",
    "number",
    "percent",
    "print_pdf",
    "render_report",
]

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
    layers = map_layers(inputs, ind)
    context = {
        **_cover(
            inputs,
            ind,
            year=year,
            radius_m=radius_m,
            detour_factor=detour_factor,
            notice=notice,
            generated_at=generated_at,
        ),
        **_sections(
            inputs,
            ind,
            week=week,
            gaps=gaps,
            siting=siting,
            year=year,
            radius_m=radius_m,
            training=training,
        ),
        "crs": layers.crs_name,
        "charts": _charts(ind, layers, week=week, gaps=gaps, siting=siting, radius_m=radius_m),
        **_page_styles(ind, year),
    }
    return _environment().get_template(TEMPLATE).render(**context)


def _cover(
    inputs: AnalysisInputs,
    ind: Indicators,
    *,
    year: int,
    radius_m: float,
    detour_factor: float,
    notice: str,
    generated_at: dt.datetime,
) -> dict[str, Any]:
    """What the report evaluates and how: the city, the plan and the year, the data's origin and
    date, the distance model and the population."""
    row = ind.year(year)
    plan = ind.plan
    status = str(row["status"])
    model = inputs.distance_model(detour_factor=detour_factor)
    return {
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
        "radius": number(radius_m),
        "model": model.describe(),
        "on_site": number(DEFAULT_ON_SITE_M),
        "population": number(ind.population),
        "population_source": inputs.city.population_source,
        "population_year": inputs.city.population_year,
        "boundary_source": inputs.city.boundary_source,
        "area": number(ind.area_km2, 1),
    }


def _sections(
    inputs: AnalysisInputs,
    ind: Indicators,
    *,
    week: WeeklyCoverage,
    gaps: GapsAnalysis,
    siting: SitingAnalysis,
    year: int,
    radius_m: float,
    training: pd.DataFrame | None,
) -> dict[str, Any]:
    """The text of every section (:mod:`geo.render.report_sections`), the notes and the
    sources."""
    zone_names = dict(
        zip(ind.zones["zone_id"].astype(str), ind.zones["zone_name"].astype(str), strict=True)
    )
    provenance = provenance_rows(inputs, training)
    density = sections.density_section(ind)
    return {
        "synthetic": any(p["synthetic"] for p in provenance),
        "summary": sections.summary_section(ind, year, radius_m),
        "table": sections.indicator_table(ind, year, radius_m),
        "lives": sections.lives_section(ind, year),
        "density": density,
        "zones": sections.zones_section(ind),
        "week": sections.week_section(week),
        "gaps": sections.gaps_section(gaps, zone_names, radius_m),
        "proposal": sections.proposal_section(siting, ind, gaps),
        "training": sections.training_section(ind),
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
        "licences": licence_lines(inputs, training),
    }


def _charts(
    ind: Indicators,
    layers: MapLayers,
    *,
    week: WeeklyCoverage,
    gaps: GapsAnalysis,
    siting: SitingAnalysis,
    radius_m: float,
) -> dict[str, Markup]:
    """The charts and maps, as inline SVG."""
    return {
        "density": density_chart(ind.density, region_id=ind.plan.region_reference),
        "zones": zones_chart(ind.zones, radius_m=radius_m),
        "week": weekly_chart(week),
        "map_coverage": coverage_map(layers, radius_m=radius_m),
        "map_gaps": gaps_map(layers, gaps),
        "map_proposal": proposal_map(layers, siting),
    }


def _page_styles(ind: Indicators, year: int) -> dict[str, Markup]:
    """The style sheet, and the running header and footer of the printed pages."""
    return {
        "css_header": css_string(ind.plan.name),
        "css_title": css_string(f"Informe de evaluación {year} · {ind.city}"),
        "css_footer": css_string(f"cardiomapa · datos a {day(ind.as_of)}"),
        "stylesheet": Markup((TEMPLATES_DIR / STYLESHEET).read_text(encoding="utf-8")),
    }


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
