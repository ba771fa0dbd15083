"""The documents made from an analysis: the planners' map and the annual report.

A use case the CLI and the API share: it reads the scene from the open Store (or the data folder),
runs the analyses (:mod:`geo.services.analysis`) and hands their frozen results to the renderers
(:mod:`geo.render.maps`, :mod:`geo.render.report`), which only draw.
"""

from __future__ import annotations

import datetime as dt
import math

import pandas as pd

from geo.core.distance import DEFAULT_DETOUR_FACTOR
from geo.core.outputs import data_notice
from geo.core.results import AnalysisInputs, IndicatorsAnalysis
from geo.errors import ReportError
from geo.io.store import Store
from geo.render.maps import PlannerForm, basemap_of, planner_map
from geo.render.report import PROPOSED_DEVICES, day, number, render_report
from geo.services.analysis import gaps_analysis, planner_view, siting_analysis, weekly_analysis
from geo.services.inputs import load_inputs, outcome_parameters
from geo.settings import Settings


def planner_page(
    settings: Settings,
    store: Store,
    *,
    at: dt.datetime | None,
    form: PlannerForm,
    reference_date: dt.date,
    static_url: str = "/static",
    open_data_url: str | None = None,
) -> str:
    """The planners' map for ``form``'s radius and count at ``at``, from the open ``store``;
    its panel links to ``open_data_url`` (the open-data page) when given."""
    inputs = load_inputs(settings, store=store)
    view = planner_view(
        inputs,
        radius_m=form.radius_m,
        at=at,
        new=form.new,
        reference_date=reference_date,
        detour_factor=DEFAULT_DETOUR_FACTOR,
        parameters=outcome_parameters(settings),
        objective=form.objective,
        actions=form.actions,
    )
    sources = (frame["source"].value_counts().to_dict() for frame in inputs.layers.frames.values())
    return planner_map(
        view,
        city=inputs.city,
        basemap=basemap_of(settings),
        form=form,
        static_url=static_url,
        notice=data_notice(sources),
        open_data_url=open_data_url,
    )


def build_report(
    inputs: AnalysisInputs,
    analysis: IndicatorsAnalysis,
    *,
    year: int,
    radius_m: float,
    detour_factor: float,
    notice: str,
    generated_at: dt.datetime,
    new_devices: int = PROPOSED_DEVICES,
    training: pd.DataFrame | None = None,
) -> str:
    """The evaluation report of ``year`` as one self-contained HTML document (Spanish).

    Parameters
    ----------
    inputs
        The layers (the current ones: the maps, gaps, weekly profile and proposal describe the
        situation on the indicators' ``as_of`` day).
    analysis
        The plan's indicators (:func:`geo.services.analysis.indicators_analysis`), computed with
        the same ``radius_m`` and ``detour_factor``.
    year
        A plan year that has started by ``as_of``.
    radius_m, detour_factor
        Walking distance that counts as covered, in metres, and the straight-line detour factor
        (ignored when ``inputs`` has a walking network).
    notice
        What the data are (:func:`geo.core.outputs.data_notice`); shown on the cover.
    generated_at
        When the report is made (shown as is: give it in the city's local time).
    new_devices
        How many new devices the proposal places (greedy order).
    training
        The training register the indicators counted (its ``source`` column), for the table of
        where the records come from.

    Raises
    ------
    IndicatorInputError
        ``year`` is outside the plan.
    ReportError
        ``year`` has not started on ``as_of``, or ``radius_m`` is not the indicators' radius.
    """
    ind = analysis.indicators
    row = ind.year(year)
    if row["status"] == "future":
        msg = (
            f"El año {year} aún no ha empezado a la fecha de los datos ({day(ind.as_of)}): "
            "no hay nada que evaluar. Indique un año del plan ya iniciado o cambie --as-of."
        )
        raise ReportError(msg)
    if not math.isclose(ind.radius_m, radius_m):
        msg = (
            f"El radio del informe ({number(radius_m)} m) no es el de los indicadores "
            f"({number(ind.radius_m)} m)."
        )
        raise ReportError(msg)
    week = weekly_analysis(
        inputs, radius_m=radius_m, week_of=ind.as_of, detour_factor=detour_factor
    ).week
    gaps = gaps_analysis(
        inputs,
        radius_m=radius_m,
        at=None,
        cell_m=None,
        detour_factor=detour_factor,
        reference_date=ind.as_of,
    )
    siting = siting_analysis(
        inputs,
        new=new_devices,
        radius_m=radius_m,
        method="greedy",
        candidates="all",
        target_share=None,
        senior_weight=1.0,
        at=None,
        time_limit_s=60.0,
        detour_factor=detour_factor,
        reference_date=ind.as_of,
        actions=("new", "extend_hours"),
    )
    return render_report(
        inputs,
        analysis,
        week=week,
        gaps=gaps,
        siting=siting,
        year=year,
        radius_m=radius_m,
        detour_factor=detour_factor,
        notice=notice,
        generated_at=generated_at,
        training=training,
    )
