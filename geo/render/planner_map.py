"""The planners' map: coverage by CEAS zone, device reach, gaps, sites and a proposal, with the
lives saved per zone and device when the outcome model's figures are given (folium + Leaflet).

Rendering only: the figures come from :class:`geo.core.results.PlannerView`.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from typing import Any

import folium
import geopandas as gpd
import numpy as np

from geo.city import CityProfile
from geo.core.availability import WEEKDAY_NAMES
from geo.core.outcome_model import HOME_ARRESTS_NOTE
from geo.core.outputs import DASH, estimate, spanish_number
from geo.core.results import OutcomesAnalysis, PlannerView
from geo.core.siting import OBJECTIVES
from geo.core.text import in_words
from geo.render.map_classes import GAP_PALETTE, SHARE_PALETTE, Classes, classes_of, percent
from geo.render.map_page import WGS84, Basemap, Page, base_map, outline, page_html
from geo.render.map_text import html_frame, markup_text


@dataclass(frozen=True)
class PlannerForm:
    """The selector the served planner page shows: hour of the week, radius, proposals.

    ``action`` is where the form is sent (``None`` in a shared file: the selector is shown
    disabled with the parameters the map was made with). ``objective``: what the proposal
    maximises, ``residents`` (covered) or ``lives`` (saved per year, the outcome model).
    ``actions``: what a step may do (:data:`geo.core.siting.ACTIONS`): ``new`` devices, and
    with ``extend_hours`` existing devices opened 24/7 too.
    """

    action: str | None
    day: int | None  # 0 = Monday; None = 24/7
    hour: int
    radius_m: float
    new: int
    objective: str = "residents"
    actions: tuple[str, ...] = ("new",)


def planner_map(
    view: PlannerView,
    *,
    city: CityProfile,
    basemap: Basemap,
    form: PlannerForm,
    static_url: str = "/static",
    notice: str = "",
    open_data_url: str | None = None,
) -> str:
    """The planners' map: coverage by CEAS zone, device reach, gaps, sites and a proposal;
    ``open_data_url``, the open-data page the panel links to when served."""
    title = f"Cobertura de desfibriladores — {city.name}"
    fmap, bounds = base_map(city, basemap, static_url, title, extent=view.coverage.layer)
    outline(fmap, city)
    zone_classes = _zone_classes(view)
    gap_classes = classes_of(view.gaps.areas["residents"].to_numpy(), palette=GAP_PALETTE)
    _zones_layer(fmap, view, zone_classes)
    _reach_layer(fmap, view)
    _gaps_layer(fmap, view, gap_classes)
    _devices_layer(fmap, view)
    _sites_layer(fmap, view.entities, "Entidades del clúster", kind="entity")
    _sites_layer(fmap, view.cohousing, "Cohousing / coliving", kind="cohousing")
    _proposal_layer(fmap, view)
    folium.LayerControl(collapsed=False, position="topright").add_to(fmap)
    result = view.coverage.result
    summary = {
        "when": _when_text(view.at),
        "radius_m": view.radius_m,
        "distance_model": view.coverage.result.distance_model_description,
        "residents": result.residents,
        "covered": result.residents_covered,
        "share": result.share_covered,
        "share_65": result.share_65_plus_covered,
        "devices_available": result.devices_available,
        "devices_total": result.devices_total,
        "new": len(view.siting.chosen),
        "share_after": view.siting.document.get("share_covered_after"),
        "proposal": _proposal_text(view),
    }
    options = {
        "title": title,
        "notice": notice,
        "open_data_url": open_data_url,
        "bounds": bounds,
        "summary": summary,
        "form": {
            "action": form.action,
            "day": form.day,
            "hour": form.hour,
            "radius_m": form.radius_m,
            "new": form.new,
            "days": list(WEEKDAY_NAMES),
            "objective": form.objective,
            "objectives": [[key, in_words("objective", key)] for key in OBJECTIVES],
            "extend_hours": "extend_hours" in form.actions,
        },
        "legend": _legend(zone_classes, gap_classes, lives=view.outcomes is not None),
        "outcomes": _outcomes_panel(view.outcomes) if view.outcomes is not None else None,
        "week": _week_chart(view, zone_classes) if view.week is not None else None,
    }
    page = Page("planner", fmap, options, None)
    fmap.add_child(page)
    return page_html(fmap, page)


#: The proposal's objectives, as the selector offers them.


def _proposal_text(view: PlannerView) -> str:
    """What the proposal achieves, in one sentence for the panel's summary."""
    document = view.siting.document
    count = f"{document.get('new_devices', len(view.siting.chosen))} nuevos"
    if document.get("extended_devices"):
        count += f" y {document['extended_devices']} abiertos 24 h"
    if document.get("objective") != "lives":
        return f"Con {count}: {_pct(document['share_covered_after'])}."
    before, after = document["before"], document["after"]
    basis = "a esa hora" if document.get("outcome_mode") == "instant" else "semana tipo"
    return (
        f"Con {count} elegidos por vidas salvadas ({basis}, alcance "
        f"{spanish_number(document['radius_m'])} m): de {_lives(before['lives_saved'])} a "
        f"{_lives(after['lives_saved'])} vidas al año (banda {_lives(after['lives_saved_low'])}"
        f"–{_lives(after['lives_saved_high'])})."
    )


def _when_text(at: dt.datetime | None) -> str:
    if at is None:
        return "siempre disponibles (24/7)"
    return f"{WEEKDAY_NAMES[at.weekday()]} {at:%d/%m/%Y %H:%M}"


def _zone_classes(view: PlannerView) -> Classes:
    """Natural-break classes of every zone share the map can show: at the instant drawn and in
    each hour of the week (the chart sets the hour), so a colour means the same whatever hour
    is picked."""
    shares = view.coverage.layer["share_covered"].to_numpy(dtype=float)
    if view.week is not None and len(view.week.zone_slices):
        weekly = view.week.zone_slices["share_covered"].to_numpy(dtype=float)
        shares = np.concatenate([shares, weekly])
    return classes_of(shares, palette=SHARE_PALETTE)


#: The legend's symbols: (CSS class, text, shape). ``area`` is drawn as a square (a polygon
#: layer), ``point`` as a circle, ``gap`` and ``proposal`` as the map's own numbered badges.
SYMBOLS = (
    ("reach", "Alcance a pie de los disponibles", "area"),
    ("device-open", "Desfibrilador disponible", "point"),
    ("device-closed", "Desfibrilador no disponible en ese momento", "point"),
    ("gap-badge", "Hueco n.º (orden de prioridad)", "gap"),
    ("proposal", "Propuesta n.º (orden de instalación)", "proposal"),
    ("entity-with", "Entidad con desfibrilador propio o a su alcance", "point"),
    ("entity-without", "Entidad sin desfibrilador a su alcance", "point"),
    ("cohousing", "Cohousing / coliving", "point"),
)


def _legend(zones: Classes, gaps: Classes, *, lives: bool) -> dict[str, Any]:
    """The legend: the zone and gap classes with their limits, then the symbols."""
    gap_labels = gaps.labels(lambda value, decimals: spanish_number(value, decimals))
    legend: dict[str, Any] = {
        "zones": {
            "title": "Cobertura de la zona (% de residentes)",
            "classes": [
                [colour, f"{label} %"]
                for colour, label in zip(
                    zones.colours, zones.labels(percent, min_decimals=1), strict=True
                )
            ],
        },
        "gaps": {
            "title": "Huecos: residentes sin cobertura por celda",
            "classes": [list(pair) for pair in zip(gaps.colours, gap_labels, strict=True)],
        },
        "symbols": [list(symbol) for symbol in SYMBOLS],
    }
    if lives:
        legend["note"] = LIVES_LEGEND_NOTE
    return legend


def _hours(hour: int) -> str:
    return f"{hour:02d}:00–{(hour + 1) % 24:02d}:00"


def _week_chart(view: PlannerView, classes: Classes) -> dict[str, Any]:
    """The hour-by-week chart (Monday first, local time) and, for each zone, its colour class
    in each hour: clicking an hour recolours the zones in the page.

    The figures are the weekly profile of ``coverage --weekly`` and the report
    (:attr:`PlannerView.week`), never recomputed here.
    """
    week = view.week
    assert week is not None
    slices = week.slices.sort_values("slot")
    cells = []
    for row in slices.to_dict("records"):
        share = float(row["share_covered"])
        name = f"{WEEKDAY_NAMES[int(row['weekday'])]} {_hours(int(row['hour']))}"
        festive = " (festivo)" if bool(row["holiday"]) else ""
        cells.append([classes.index(share), f"{name}{festive}: {_pct1(share)} cubiertos"])
    ids = view.coverage.layer["id"].tolist()
    zones: dict[str, list[int]] = {}
    shares: dict[str, list[str]] = {}
    by_zone = week.zone_slices.sort_values("slot").groupby("zone_id")
    for position, zone in enumerate(ids):
        if zone not in by_zone.groups:
            continue
        values = by_zone.get_group(zone)["share_covered"].to_numpy(dtype=float)
        zones[str(position)] = [classes.index(value) for value in values]
        shares[str(position)] = [_pct1(value) for value in values]
    at = view.at
    return {
        "caption": (
            f"Residentes cubiertos en cada hora de la semana del "
            f"{week.week_start:%d/%m/%Y} (hora local). Pulse una hora para colorear las zonas."
        ),
        "days": list(WEEKDAY_NAMES),
        "colours": list(classes.colours),
        "cells": cells,
        "zones": zones,
        "shares": shares,
        "slot": None if at is None else at.weekday() * 24 + at.hour,
        "hours": [_hours(hour) for hour in range(24)],
    }


def _pct1(share: float) -> str:
    """``"12,3 %"``: a share with one decimal (the chart's cells)."""
    return f"{percent(share, 1)} %"


def _pct(share: float) -> str:
    return f"{share * 100:.0f} %".replace(".", ",")


def _int(value: float) -> str:
    return f"{int(value):,}".replace(",", ".")


def _metres(distance: float, *, none: str) -> str:
    """``"a 1.250 m"``; ``none`` when there is no distance (NaN or infinite: no device counts,
    or none in reach)."""
    return none if not math.isfinite(distance) else f"a {_int(round(distance))} m"


def _zones_layer(fmap: folium.Map, view: PlannerView, classes: Classes) -> None:
    zones = view.coverage.layer.to_crs(WGS84)
    frame = gpd.GeoDataFrame(
        {
            "Zona CEAS": zones["name"],
            "Residentes": zones["residents"].map(_int),
            "Cubiertos": zones["share_covered"].map(_pct1),
            "Residentes 65+": zones["residents_65_plus"].map(_int),
            "65+ cubiertos": zones["share_65_plus_covered"].map(_pct1),
            "colour": zones["share_covered"].map(classes.colour),
            "cm_zone": range(len(zones)),  # the zone's position, for the hour chart
        },
        geometry=zones.geometry,
        crs=WGS84,
    )
    fields = ["Zona CEAS", "Residentes", "Cubiertos", "Residentes 65+", "65+ cubiertos"]
    if view.outcomes is not None:
        figures = view.outcomes.zones.set_index("id")
        lives = zones["id"].map(
            lambda zone: (
                _lives_band(figures.loc[zone], "lives_saved") if zone in figures.index else DASH
            )
        )
        frame.insert(5, LIVES_FIELD, lives.to_numpy(dtype=object))
        fields.append(LIVES_FIELD)
    folium.GeoJson(
        html_frame(frame),
        name="Zonas CEAS por cobertura",
        style_function=lambda f: {
            "fillColor": f["properties"]["colour"],
            "color": "#555",
            "weight": 1.5,
            "fillOpacity": 0.55,
        },
        # No highlight_function: its resetStyle would undo the colours the hour chart sets
        # (cardiomapa.js highlights the zone under the pointer itself).
        tooltip=folium.GeoJsonTooltip(fields=fields),
    ).add_to(fmap)


def _reach_layer(fmap: folium.Map, view: PlannerView) -> None:
    open_devices = view.devices[view.devices["available"]]
    area = open_devices.geometry.buffer(view.reach_m, quad_segs=24).union_all()
    frame = gpd.GeoDataFrame(
        {"Alcance": [f"{view.radius_m:g} m a pie ({len(open_devices)} desfibriladores)"]},
        geometry=[area],
        crs=view.devices.crs,
    ).to_crs(WGS84)
    folium.GeoJson(
        frame if not area.is_empty else frame.iloc[0:0],
        name="Alcance de los desfibriladores",
        style_function=lambda _f: {
            "color": "#1f78b4",
            "weight": 1,
            "fillColor": "#1f78b4",
            "fillOpacity": 0.25,
        },
        tooltip=folium.GeoJsonTooltip(fields=["Alcance"]) if not area.is_empty else None,
    ).add_to(fmap)


def _gaps_layer(fmap: folium.Map, view: PlannerView, classes: Classes) -> None:
    areas = view.gaps.areas.to_crs(WGS84)
    frame = gpd.GeoDataFrame(
        {
            "Hueco": areas["rank"].map(lambda rank: f"n.º {rank}"),
            "Residentes sin cobertura": areas["residents"].map(_int),
            "de ellos 65+": areas["residents_65_plus"].map(_int),
            "Desfibrilador más cercano": areas["nearest_distance_m"].map(
                lambda d: _metres(d, none="ninguno")
            ),
            "colour": areas["residents"].map(classes.colour),
        },
        geometry=areas.geometry,
        crs=WGS84,
    )
    group = folium.FeatureGroup(name="Huecos sin cobertura (ordenados)")
    if len(frame):
        folium.GeoJson(
            frame,
            style_function=lambda f: {
                "stroke": False,
                "fillColor": f["properties"]["colour"],
                "fillOpacity": 0.5,
            },
            tooltip=folium.GeoJsonTooltip(fields=list(frame.columns.drop(["geometry", "colour"]))),
        ).add_to(group)
    for rank, point in zip(areas["rank"].head(10), areas.geometry.head(10), strict=True):
        centre = point.representative_point()
        folium.Marker(
            [centre.y, centre.x],
            icon=folium.DivIcon(html=f'<span class="cm-badge cm-gap" data-rank="{rank}">'
                                     f'{rank}</span>',
                                icon_size=(22, 22), icon_anchor=(11, 11)),
            tooltip=f"Hueco n.º {rank}",
        ).add_to(group)  # fmt: skip
    group.add_to(fmap)


def _devices_layer(fmap: folium.Map, view: PlannerView) -> None:
    devices = view.devices.to_crs(WGS84)
    frame = gpd.GeoDataFrame(
        {
            "Desfibrilador": devices["name"],
            "Horario": devices["opening_hours"].fillna("desconocido"),
            "En ese momento": devices["available"].map(
                {True: "disponible", False: "no disponible"}
            ),
            "Estado": devices["status"] + " / " + devices["verification"],
            "colour": devices["available"].map({True: "#1a9850", False: "#777777"}),
        },
        geometry=devices.geometry,
        crs=WGS84,
    )
    shown = ["Desfibrilador", "Horario", "En ese momento", "Estado"]
    layer = folium.GeoJson(
        html_frame(_with_device_lives(frame, devices["id"], view.outcomes)),
        name="Desfibriladores",
        # fill=True: folium draws circle markers hollow by default (a ring, unlike the legend).
        marker=folium.CircleMarker(radius=6, weight=2, fill=True, fill_opacity=0.9),
        style_function=lambda f: {
            "color": "#fff",
            "fillColor": f["properties"]["colour"],
            "weight": 2,
        },
        tooltip=folium.GeoJsonTooltip(fields=shown),
    )
    if view.outcomes is not None:
        # A popup on click with the model's figures (folium's GeoJsonPopup needs no jQuery).
        fields = [*shown, *DEVICE_LIVES_FIELDS.values()]
        folium.GeoJsonPopup(
            fields=fields, localize=False, max_width=340, class_name="cm-lives-popup"
        ).add_to(layer)
    layer.add_to(fmap)


#: Lives figures of a device in its popup: result column → label.
DEVICE_LIVES_FIELDS = {
    "lives_saved": "Vidas salvadas al año (modelo)",
    "marginal_lives": "Se perderían si se retirara",
    "marginal_night_lives": "Se perderían si cerrara de 20:00 a 08:00",
    "gain_if_24_7": "Se ganarían si abriera 24/7",
}
LIVES_FIELD = "Vidas salvadas al año (modelo)"
LIVES_LEGEND_NOTE = (
    "Vidas salvadas: estimaciones del modelo, sin las paradas en domicilio (ver el panel)."
)
NOT_COUNTED = "no cuenta (acceso, estado o verificación)"


def _with_device_lives(
    frame: gpd.GeoDataFrame, ids: Any, outcomes: OutcomesAnalysis | None
) -> gpd.GeoDataFrame:
    """``frame`` (one row per device, ids in ``ids``) with the popup's lives columns."""
    if outcomes is None:
        return frame
    figures = outcomes.devices.set_index("device_id")
    out = frame.copy()
    for column, label in DEVICE_LIVES_FIELDS.items():
        out[label] = [
            _lives_band(figures.loc[key], column)
            if key in figures.index and bool(figures.loc[key, "counted"])
            else NOT_COUNTED
            for key in ids
        ]
    return out


_lives = estimate  # lives per year: two significant figures, as in the CLI


def _lives_band(row: Any, column: str) -> str:
    """``"0,0087 (0,0051–0,013)"``: the central figure and its 5–95 % band."""
    central = row[column]
    if central is None or (isinstance(central, float) and math.isnan(central)):
        return DASH
    return f"{_lives(central)} ({_lives(row[f'{column}_low'])}–{_lives(row[f'{column}_high'])})"


def _every(value: float) -> str:
    """``"una cada 94 años"`` for lives per year under 1 (empty otherwise)."""
    if not 0 < value < 1:
        return ""
    years = 1 / value
    return f", una cada {spanish_number(years)} años" if years < 10_000 else ""


#: How many devices each ranking in the panel lists.
PANEL_TOP = 5


def _outcomes_panel(outcomes: OutcomesAnalysis) -> dict[str, Any]:
    """What the panel says about lives saved: every figure as Spanish text, ready to show."""
    result = outcomes.result
    city = result.city
    lives = city["lives_saved"]
    week = f" del {result.week_start:%d/%m/%Y}" if result.week_start else ""
    summary = (
        f"Los {city['devices_counted']} desfibriladores que cuentan salvan unas "
        f"{_lives(lives)} vidas al año (banda del 5 al 95 %: {_lives(city['lives_saved_low'])}"
        f"–{_lives(city['lives_saved_high'])}){_every(lives)}, de "
        f"{spanish_number(city['public_arrests_per_year'], 1)} paradas al año fuera del "
        f"domicilio."
    )
    basis = (
        f"Semana tipo{week}: cada hora con los equipos abiertos entonces y más paradas de día. "
        f"Alcance del modelo: {spanish_number(result.reach_m)} m a pie. No cambia con el día y "
        "la hora elegidos arriba."
    )
    zones = [
        [row["zone_name"], _lives_band(row, "lives_saved")]
        for row in result.by_zone.to_dict("records")
    ]
    devices = outcomes.devices[outcomes.devices["counted"]]

    def ranking(column: str) -> list[list[str]]:
        top = devices[devices[column] > 0].sort_values(column, ascending=False, kind="stable")
        return [
            [str(row["name"] or row["device_id"]), _lives_band(row, column)]
            for row in top.head(PANEL_TOP).to_dict("records")
        ]

    notes = [
        "Son estimaciones de un modelo, con parámetros de la literatura y supuestos declarados "
        "(banda del 5 al 95 %), no un recuento de casos.",
        HOME_ARRESTS_NOTE,
        *(note for note in result.notes if note != HOME_ARRESTS_NOTE),
    ]
    return {
        "title": "Vidas salvadas (estimación del modelo)",
        "summary": summary,
        "basis": basis,
        "notes": notes,
        "tables": [
            {
                "caption": "Vidas salvadas al año por zona CEAS",
                "columns": ["Zona CEAS", "Vidas al año (banda)"],
                "rows": zones,
            },
            {
                "caption": "Los que más vidas perderían si se retiraran",
                "columns": ["Desfibrilador", "Vidas al año (banda)"],
                "rows": ranking("marginal_lives"),
            },
            {
                "caption": "Los que más ganarían abriendo 24/7",
                "columns": ["Desfibrilador", "Vidas al año (banda)"],
                "rows": ranking("gain_if_24_7"),
            },
        ],
    }


def _sites_layer(fmap: folium.Map, sites: gpd.GeoDataFrame, name: str, *, kind: str) -> None:
    sites = sites.to_crs(WGS84)
    if kind == "entity":
        status = sites.apply(
            lambda row: (
                "con desfibrilador propio"
                if row["holds_device"]
                else (
                    "con uno a su alcance" if row["covered"] else "sin desfibrilador a su alcance"
                )
            ),
            axis=1,
        )
        colour = sites["covered"].map({True: "#4575b4", False: "#d73027"})
        label = "Entidad"
    else:
        status = sites["covered"].map({True: "con uno a su alcance", False: "sin uno a su alcance"})
        colour = sites["covered"].map({True: "#8073ac", False: "#e08214"})
        label = "Cohousing / coliving"
    nearest = sites["distance_m"].map(lambda d: _metres(d, none="ninguno disponible"))
    frame = gpd.GeoDataFrame(
        {label: sites["name"], "Desfibrilador": status, "El más cercano": nearest,
         "colour": colour.astype(str) if len(sites) else colour},
        geometry=sites.geometry,
        crs=WGS84,
    )  # fmt: skip
    if frame.empty:
        folium.FeatureGroup(name=name).add_to(fmap)
        return
    folium.GeoJson(
        html_frame(frame),
        name=name,
        marker=folium.CircleMarker(radius=7 if kind == "entity" else 5, fill=True),
        style_function=lambda f: {
            "color": "#222",
            "weight": 1,
            "fillColor": f["properties"]["colour"],
            "fillOpacity": 0.9,
        },
        tooltip=folium.GeoJsonTooltip(fields=[label, "Desfibrilador", "El más cercano"]),
    ).add_to(fmap)


def _coordinates(site: dict[str, Any]) -> str:
    """``42,00809, −4,52521`` (latitude, longitude) in Spanish notation."""
    return f"{spanish_number(site['lat'], 5)}, {spanish_number(site['lon'], 5)}"


def _proposal_layer(fmap: folium.Map, view: PlannerView) -> None:
    group = folium.FeatureGroup(name="Propuesta de nuevos desfibriladores")
    for site in view.siting.chosen.to_dict("records"):
        folium.Marker(
            [site["lat"], site["lon"]],
            icon=folium.DivIcon(
                html=f'<span class="cm-badge cm-proposal" data-step="{site["step"]}">'
                     f'{site["step"]}</span>',
                icon_size=(26, 26), icon_anchor=(13, 13),
            ),
            # No folium.Popup: its template needs jQuery, which the pages do not load.
            tooltip=markup_text(proposal_text(site)),
        ).add_to(group)  # fmt: skip
    group.add_to(fmap)


def proposal_text(site: dict[str, Any]) -> str:
    """A proposed step in one sentence (its tooltip): what it does, where, and what it adds."""
    near = site.get("near")
    if site.get("action") == "extend_hours":
        # The device's own place: "abrir 24 h DEA Farmacia (Calle Mayor 48)".
        where = str(near["text"]).removeprefix("en ") if near else site["name"]
        head = f"n.º {site['step']}: abrir 24 h (o vitrina exterior) {where} — "
    else:
        label = f"{site['name']} ({in_words('candidate_kind', site['kind'])})"
        if site["kind"] == "grid":
            place = near["text"] if near else f"en {_coordinates(site)}"
            label = f"{in_words('candidate_kind', 'grid')}, {place}"
        elif near and near.get("distance_m", 0) >= 10:
            label += f", {near['text']}"
        head = f"n.º {site['step']}: nuevo desfibrilador en {label} — "
    if "lives_gained" in site:
        return (
            f"{head}+{_lives(site['lives_gained'])} vidas al año; tras él: "
            f"{_lives(site['lives_saved_after'])} vidas al año (modelo)"
        )
    return (
        f"{head}+{_int(site['residents_gained'])} residentes "
        f"(+{_int(site['residents_65_plus_gained'])} de 65+); cobertura tras él: "
        f"{_pct(site['share_covered_after'])}"
    )
