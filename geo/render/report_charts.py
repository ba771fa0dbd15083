"""The report's charts: density compared with the references, coverage per zone, the week."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
from markupsafe import Markup
from matplotlib.ticker import FuncFormatter, MaxNLocator

from geo.core.availability import WEEKDAY_NAMES
from geo.core.coverage import WeeklyCoverage, off_hours_slots
from geo.render.report_figures import (
    ALWAYS_COLOUR,
    CITY_COLOUR,
    LIMITED_COLOUR,
    PROPOSAL_COLOUR,
    REFERENCE_COLOUR,
    REGION_COLOUR,
    chart_style,
    inline_svg,
    mpl_text,
    new_figure,
    percent_axis,
)
from geo.render.report_format import number, percent


def density_chart(density: pd.DataFrame, *, region_id: str | None) -> Markup:
    """Horizontal bars of devices per 100,000 inhabitants: the references and the city."""
    rows = density.iloc[::-1]  # highest at the top
    with chart_style():
        figure = new_figure(6.6, 0.42 * len(rows) + 0.9)
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
        ax.set_yticks(positions, [mpl_text(name) for name in rows["name"]])
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
    return inline_svg(figure, name="density", label="Desfibriladores por 100.000 habitantes")


def zones_chart(zones: pd.DataFrame, *, radius_m: float) -> Markup:
    """Share of residents covered per CEAS zone: by 24/7 devices, and whatever the hours."""
    rows = zones.iloc[::-1]
    with chart_style():
        figure = new_figure(6.6, 0.42 * len(rows) + 1.1)
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
        ax.set_yticks(positions, [mpl_text(name) for name in rows["zone_name"]])
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
        percent_axis(ax.xaxis, 0 if top >= 0.05 else 1)
        ax.set_xlabel(f"Residentes a ≤ {number(radius_m)} m a pie de un desfibrilador")
        ax.tick_params(axis="y", length=0)
        ax.grid(axis="x", color="#e3e3e3", linewidth=0.6)
        ax.set_axisbelow(True)
        handles, labels = ax.get_legend_handles_labels()
        ax.legend(handles[::-1], labels[::-1], loc="lower right")
    return inline_svg(figure, name="zones", label="Cobertura por zona CEAS")


def weekly_chart(week: WeeklyCoverage) -> Markup:
    """Share covered in each hour of the reference week, with the 24/7 and all-open levels; the
    city's holidays are shaded and starred."""
    slices = week.slices
    shares = slices["share_covered"].to_numpy(dtype=float)
    always = week.residents_covered_always / week.residents if week.residents else 0.0
    potential = week.residents_covered_potential / week.residents if week.residents else 0.0
    with chart_style():
        figure = new_figure(6.8, 3.4)
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
        percent_axis(ax.yaxis, 0 if top >= 0.05 else 1)
        ax.set_ylabel("Residentes cubiertos")
        ax.grid(axis="y", color="#e3e3e3", linewidth=0.6)
        ax.legend(loc="upper left", ncols=3, fontsize=7.5)
    return inline_svg(figure, name="week", label="Cobertura en cada hora de la semana")


def _runs(slots: np.ndarray) -> list[tuple[int, int]]:
    """Consecutive slots as ``(start, end)`` spans (end excluded)."""
    spans: list[tuple[int, int]] = []
    for slot in (int(s) for s in slots):
        if spans and spans[-1][1] == slot:
            spans[-1] = (spans[-1][0], slot + 1)
        else:
            spans.append((slot, slot + 1))
    return spans
