"""Interactive maps as HTML pages: the citizens' map and the planners' map (folium + Leaflet).

Rendering only: the data comes from :class:`geo.core.nearest.DeviceFinder` (the same snapshot and
availability rules as ``/api/nearest``) and :class:`geo.services.analysis.PlannerView`. Every
script and
style sheet a page needs is served from ``static_url`` (``geo/render/static/``: our own files and
the
libraries vendored from npm, see ``scripts/vendor-assets.sh``), so pages work on a closed network;
:func:`self_contained` inlines them for a file to share. Only the basemap tiles come from outside,
from the configurable :class:`Basemap`; without them the city outline and the CEAS zones still
give context.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import math
import re
from dataclasses import dataclass
from html import escape
from pathlib import Path
from typing import Any

import folium
import geopandas as gpd
import pandas as pd
from branca.element import Element, Figure, MacroElement
from folium.template import Template

from geo.city import CityProfile
from geo.core.availability import WEEKDAY_NAMES, local_instant, week_in_words
from geo.core.distance import StraightLine
from geo.core.nearest import STATE_TEXT, STATES, DeviceFinder
from geo.core.outcome_model import HOME_ARRESTS_NOTE
from geo.core.outputs import DASH, estimate, spanish_number
from geo.core.results import OutcomesAnalysis, PlannerView
from geo.settings import Settings

STATIC_DIR = Path(__file__).resolve().parent / "static"
WGS84 = "EPSG:4326"
#: (name, path under ``static_url``), in loading order.
SCRIPTS = (
    ("leaflet", "vendor/leaflet/leaflet.js"),
    ("markercluster", "vendor/leaflet.markercluster/leaflet.markercluster.js"),
    ("cardiomapa", "cardiomapa.js"),
)
STYLES = (
    ("leaflet_css", "vendor/leaflet/leaflet.css"),
    ("markercluster_css", "vendor/leaflet.markercluster/MarkerCluster.css"),
    ("markercluster_default_css", "vendor/leaflet.markercluster/MarkerCluster.Default.css"),
    ("cardiomapa_css", "cardiomapa.css"),
)
FAVICON = "favicon.svg"
#: Device states in the order the legend lists them; the page codes them by position.
ACCESS_TEXT = {
    "yes": "uso público",
    "permissive": "uso público (lo permite el titular)",
    "customers": "clientes y usuarios del lugar",
    "permit": "con permiso del titular",
    "private": "privado",
    "no": "no accesible al público",
    "unknown": "acceso desconocido",
}
#: Columns of each device row in the citizen page's data (``cardiomapa.js`` reads them by name).
DEVICE_COLUMNS = (
    "id", "name", "lon", "lat", "state", "always_open", "next_change", "hours", "location_text",
    "address", "access", "indoor", "level", "check_date", "phone", "maintenance", "state_text",
)  # fmt: skip


@dataclass(frozen=True)
class Basemap:
    """Where tiles come from: an XYZ URL template (``{z}/{x}/{y}``) or ``None`` for none."""

    url: str | None
    attribution: str = ""
    max_zoom: int = 19


def basemap_of(settings: Settings) -> Basemap:
    """The basemap the settings configure (none when ``tile_url`` is empty)."""
    return Basemap(settings.tile_url or None, settings.tile_attribution, settings.tile_max_zoom)


# --- the citizens' map -----------------------------------------------------------------------


def citizen_data(
    finder: DeviceFinder, *, at: dt.datetime, api_url: str | None = None
) -> dict[str, Any]:
    """The devices a citizen may look for, with their state at ``at``, compactly.

    One row per listed device (verified, active, fixed), columns ``DEVICE_COLUMNS``; ``state`` is
    an index into ``states`` and ``hours`` into ``hours`` / ``hours_text`` (distinct schedules
    are sent once). ``refresh_at`` is the first instant any state changes: a page kept open
    reloads the data then (from ``api_url``), so "available now" stays true.
    """
    city = finder.city
    local = local_instant(at, city.timezone).replace(second=0, microsecond=0)
    states = finder.states(local)
    schedules: dict[str, int] = {}
    rows = []
    for fields, (lon, lat), state in zip(finder.fields, finder.lonlat, states, strict=True):
        hours = fields["opening_hours"]
        if hours is not None and hours not in schedules:
            schedules[hours] = len(schedules)
        rows.append(
            [
                fields["id"], fields["name"], round(float(lon), 6), round(float(lat), 6),
                STATES.index(state.state), state.always_open,
                state.next_change.isoformat() if state.next_change else None,
                schedules[hours] if hours is not None else None, fields["location_text"],
                fields["address"], fields["access"], fields["indoor"], fields["level"],
                fields["check_date"].isoformat() if fields["check_date"] else None,
                fields["phone"], state.maintenance, state.text,
            ]
        )  # fmt: skip
    # Maintenance falls overdue and report times age at midnight at the latest.
    midnight = dt.datetime.combine(local.date() + dt.timedelta(days=1), dt.time(0), local.tzinfo)
    changes = [state.next_change for state in states if state.next_change is not None]
    changes.append(midnight)
    return {
        "city": city.name,
        "timezone": city.timezone,
        "at": local.isoformat(),
        "refresh_at": min(changes).isoformat() if changes else None,
        "api_url": api_url,
        "distance_model": finder.model.name,
        "detour_factor": (
            finder.model.detour_factor if isinstance(finder.model, StraightLine) else None
        ),
        "states": list(STATES),
        "state_text": [STATE_TEXT[state] for state in STATES],
        "access_text": ACCESS_TEXT,
        "hours": list(schedules),
        "hours_text": [_hours_text(text, local, city) for text in schedules],
        "columns": list(DEVICE_COLUMNS),
        "rows": rows,
    }


def _hours_text(text: str, at: dt.datetime, city: CityProfile) -> str:
    try:
        words = week_in_words(
            text, week_of=at.date(), timezone=city.timezone, calendar=city.calendar
        )
    except ValueError:
        return "horario no interpretable"
    return f"esta semana: {words}"


def citizen_map(
    finder: DeviceFinder,
    *,
    zones: gpd.GeoDataFrame,
    at: dt.datetime,
    basemap: Basemap,
    static_url: str = "/static",
    api_url: str | None = None,
    notice: str = "",
) -> str:
    """The citizens' map: devices by availability at ``at``, nearest lookup, problem reports.

    Parameters
    ----------
    finder
        The devices (and the distance model the nearest lookup uses offline).
    zones
        CEAS zones (any CRS), drawn as context.
    at
        The instant the states are computed for (naive = local time).
    api_url
        Where the API answers (``/api`` when served): nearest lookups and problem reports use
        it. ``None`` for a shared file: lookups are computed in the page (straight line) and
        reports are not offered.
    notice
        A line about the data's origin (synthetic sample, sources), shown in the page.
    """
    city = finder.city
    title = f"Desfibriladores de {city.name}"
    fmap, bounds = _base_map(city, basemap, static_url, title, extent=zones)
    _context_layers(fmap, city, zones)
    data = citizen_data(finder, at=at, api_url=api_url)
    data_url = f"{api_url}/map/devices" if api_url else None
    options = {"title": title, "notice": notice, "data_url": data_url, "bounds": bounds}
    page = _Page("citizen", fmap, options, data)
    fmap.add_child(page)
    return _html(fmap, page)


# --- the planners' map -----------------------------------------------------------------------


@dataclass(frozen=True)
class PlannerForm:
    """The selector the served planner page shows: hour of the week, radius, proposals.

    ``action`` is where the form is sent (``None`` in a shared file: the selector is shown
    disabled with the parameters the map was made with). ``objective``: what the proposal
    maximises, ``residents`` (covered) or ``lives`` (saved per year, the outcome model).
    """

    action: str | None
    day: int | None  # 0 = Monday; None = 24/7
    hour: int
    radius_m: float
    new: int
    objective: str = "residents"


def planner_map(
    view: PlannerView,
    *,
    city: CityProfile,
    basemap: Basemap,
    form: PlannerForm,
    static_url: str = "/static",
    notice: str = "",
) -> str:
    """The planners' map: coverage by CEAS zone, device reach, gaps, sites and a proposal."""
    title = f"Cobertura de desfibriladores — {city.name}"
    fmap, bounds = _base_map(city, basemap, static_url, title, extent=view.coverage.layer)
    _outline(fmap, city)
    _zones_layer(fmap, view)
    _reach_layer(fmap, view)
    _gaps_layer(fmap, view)
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
            "objectives": [[key, label] for key, label in OBJECTIVES.items()],
        },
        "legend": _PLANNER_LEGEND,
        "outcomes": _outcomes_panel(view.outcomes) if view.outcomes is not None else None,
    }
    if view.outcomes is not None:
        options["legend"] = {**_PLANNER_LEGEND, "note": LIVES_LEGEND_NOTE}
    page = _Page("planner", fmap, options, None)
    fmap.add_child(page)
    return _html(fmap, page)


#: The proposal's objectives, as the selector offers them.
OBJECTIVES = {"residents": "residentes cubiertos", "lives": "vidas salvadas"}


def _proposal_text(view: PlannerView) -> str:
    """What the proposal achieves, in one sentence for the panel's summary."""
    document = view.siting.document
    count = len(view.siting.chosen)
    if document.get("objective") != "lives":
        return f"Con {count} nuevos: {_pct(document['share_covered_after'])}."
    before, after = document["before"], document["after"]
    basis = "a esa hora" if document.get("outcome_mode") == "instant" else "semana tipo"
    return (
        f"Con {count} nuevos elegidos por vidas salvadas ({basis}, alcance "
        f"{spanish_number(document['radius_m'])} m): de {_lives(before['lives_saved'])} a "
        f"{_lives(after['lives_saved'])} vidas al año (banda {_lives(after['lives_saved_low'])}"
        f"–{_lives(after['lives_saved_high'])})."
    )


def _when_text(at: dt.datetime | None) -> str:
    if at is None:
        return "siempre disponibles (24/7)"
    return f"{WEEKDAY_NAMES[at.weekday()]} {at:%d/%m/%Y %H:%M}"


#: Coverage share classes of the zone shading: (lower bound, colour, label).
SHARE_CLASSES = (
    (0.0, "#d73027", "menos del 20 %"),
    (0.2, "#fc8d59", "20–40 %"),
    (0.4, "#fee08b", "40–60 %"),
    (0.6, "#d9ef8b", "60–80 %"),
    (0.8, "#1a9850", "80 % o más"),
)
_PLANNER_LEGEND = {
    "shares": [[colour, label] for _bound, colour, label in SHARE_CLASSES],
    "symbols": [
        ["device-open", "Desfibrilador disponible"],
        ["device-closed", "Desfibrilador no disponible en ese momento"],
        ["reach", "Alcance a pie de los disponibles"],
        ["gap", "Hueco sin cobertura (n.º = orden)"],
        ["entity-with", "Entidad con desfibrilador propio o a su alcance"],
        ["entity-without", "Entidad sin desfibrilador a su alcance"],
        ["cohousing", "Cohousing / coliving"],
        ["proposal", "Propuesta (n.º = orden de instalación)"],
    ],
}


def _share_colour(share: float) -> str:
    colour = SHARE_CLASSES[0][1]
    for bound, candidate, _label in SHARE_CLASSES:
        if share >= bound:
            colour = candidate
    return colour


def _pct(share: float) -> str:
    return f"{share * 100:.0f} %".replace(".", ",")


def _int(value: float) -> str:
    return f"{int(value):,}".replace(",", ".")


def _metres(distance: float, *, none: str) -> str:
    """``"a 1.250 m"``; ``none`` when there is no distance (NaN or infinite: no device counts,
    or none in reach)."""
    return none if not math.isfinite(distance) else f"a {_int(round(distance))} m"


def _zones_layer(fmap: folium.Map, view: PlannerView) -> None:
    zones = view.coverage.layer.to_crs(WGS84)
    frame = gpd.GeoDataFrame(
        {
            "Zona CEAS": zones["name"],
            "Residentes": zones["residents"].map(_int),
            "Cubiertos": zones["share_covered"].map(_pct),
            "Residentes 65+": zones["residents_65_plus"].map(_int),
            "65+ cubiertos": zones["share_65_plus_covered"].map(_pct),
            "colour": zones["share_covered"].map(_share_colour),
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
        _html_frame(frame),
        name="Zonas CEAS por cobertura",
        style_function=lambda f: {
            "fillColor": f["properties"]["colour"],
            "color": "#555",
            "weight": 1.5,
            "fillOpacity": 0.45,
        },
        highlight_function=lambda _f: {"weight": 3},
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


def _gaps_layer(fmap: folium.Map, view: PlannerView) -> None:
    areas = view.gaps.areas.to_crs(WGS84)
    frame = gpd.GeoDataFrame(
        {
            "Hueco": areas["rank"].map(lambda rank: f"n.º {rank}"),
            "Residentes sin cobertura": areas["residents"].map(_int),
            "de ellos 65+": areas["residents_65_plus"].map(_int),
            "Desfibrilador más cercano": areas["nearest_distance_m"].map(
                lambda d: _metres(d, none="ninguno")
            ),
        },
        geometry=areas.geometry,
        crs=WGS84,
    )
    group = folium.FeatureGroup(name="Huecos sin cobertura (ordenados)")
    if len(frame):
        folium.GeoJson(
            frame,
            style_function=lambda _f: {
                "stroke": False,
                "fillColor": "#b2182b",
                "fillOpacity": 0.3,
            },
            tooltip=folium.GeoJsonTooltip(fields=list(frame.columns.drop("geometry"))),
        ).add_to(group)
    for rank, point in zip(areas["rank"].head(10), areas.geometry.head(10), strict=True):
        centre = point.representative_point()
        folium.Marker(
            [centre.y, centre.x],
            icon=folium.DivIcon(html=f'<span class="cm-badge cm-gap">{rank}</span>',
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
        _html_frame(_with_device_lives(frame, devices["id"], view.outcomes)),
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
        _html_frame(frame),
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


def _proposal_layer(fmap: folium.Map, view: PlannerView) -> None:
    group = folium.FeatureGroup(name="Propuesta de nuevos desfibriladores")
    kinds = {"entity": "entidad", "cohousing": "cohousing", "grid": "punto de rejilla"}
    for site in view.siting.chosen.to_dict("records"):
        head = f"n.º {site['step']}: {site['name']} ({kinds.get(site['kind'], site['kind'])}) — "
        if "lives_gained" in site:
            text = (
                f"{head}+{_lives(site['lives_gained'])} vidas al año; tras él: "
                f"{_lives(site['lives_saved_after'])} vidas al año (modelo)"
            )
        else:
            text = (
                f"{head}+{_int(site['residents_gained'])} residentes "
                f"(+{_int(site['residents_65_plus_gained'])} de 65+); cobertura tras él: "
                f"{_pct(site['share_covered_after'])}"
            )
        folium.Marker(
            [site["lat"], site["lon"]],
            icon=folium.DivIcon(
                html=f'<span class="cm-badge cm-proposal">{site["step"]}</span>',
                icon_size=(26, 26), icon_anchor=(13, 13),
            ),
            # No folium.Popup: its template needs jQuery, which the pages do not load.
            tooltip=_markup_text(text),
        ).add_to(group)  # fmt: skip
    group.add_to(fmap)


# --- shared pieces -------------------------------------------------------------------------


def _base_map(
    city: CityProfile,
    basemap: Basemap,
    static_url: str,
    title: str,
    *,
    extent: gpd.GeoDataFrame | None = None,
) -> tuple[folium.Map, list[list[float]]]:
    """A map with the vendored assets and the basemap (if any), and the bounds to fit: those of
    ``extent`` (the CEAS zones: where people live) or else of the municipality."""
    area = city.boundary
    if extent is not None and len(extent):
        area = extent.to_crs(WGS84).union_all()
    minx, miny, maxx, maxy = area.bounds
    centre = area.centroid
    fmap = folium.Map(
        location=[centre.y, centre.x],
        zoom_start=13,
        tiles=None,
        max_zoom=basemap.max_zoom,
        control_scale=True,
        prefer_canvas=False,
    )
    fmap.options["maxZoom"] = basemap.max_zoom  # folium gives it to tiles only; clusters need it
    # Instance lists: folium's are class-level and shared (never mutate them).
    fmap.default_js = [(name, f"{static_url}/{path}") for name, path in SCRIPTS]
    fmap.default_css = [(name, f"{static_url}/{path}") for name, path in STYLES]
    if basemap.url:
        folium.TileLayer(
            tiles=basemap.url,
            attr=basemap.attribution or "mapa base",
            name="Mapa base",
            max_zoom=basemap.max_zoom,
            max_native_zoom=min(basemap.max_zoom, 19),
        ).add_to(fmap)
    # Not folium's fit_bounds: with a centre and zoom given, Leaflet animates it, and a view set
    # while that animation runs (a lookup right after loading) is undone when it ends.
    # cardiomapa.js fits these bounds at once, unanimated.
    root = fmap.get_root()
    assert isinstance(root, Figure)
    root.header.add_child(Element(f"<title>{_inert(escape(title))}</title>"), name="title")
    icon = f'<link rel="icon" href="{static_url}/{FAVICON}" type="image/svg+xml"/>'
    root.header.add_child(Element(icon), name="favicon")
    return fmap, [[miny, minx], [maxy, maxx]]


def _outline(fmap: folium.Map, city: CityProfile) -> None:
    folium.GeoJson(
        {"type": "Feature", "properties": {}, "geometry": city.boundary.__geo_interface__},
        name="Término municipal",
        style_function=lambda _f: {
            "color": "#333",
            "weight": 2,
            "dashArray": "6 4",
            "fill": False,
        },
        interactive=False,
        control=False,
    ).add_to(fmap)


def _context_layers(fmap: folium.Map, city: CityProfile, zones: gpd.GeoDataFrame) -> None:
    _outline(fmap, city)
    frame = zones[["name", "geometry"]].to_crs(WGS84).rename(columns={"name": "Zona CEAS"})
    folium.GeoJson(
        _html_frame(frame),
        name="Zonas CEAS",
        style_function=lambda _f: {
            "color": "#6a51a3",
            "weight": 1,
            "fillColor": "#bcbddc",
            "fillOpacity": 0.12,
        },
        tooltip=folium.GeoJsonTooltip(fields=["Zona CEAS"]),
        control=False,
    ).add_to(fmap)


class _Page(MacroElement):
    """Hands the map, its options and its data to ``cardiomapa.js`` (``citizen`` / ``planner``).

    The JSON goes into the page only after folium has rendered it (:func:`_html`): branca compiles
    every rendered fragment again as a Jinja template, so text such as ``{{ … }}`` in a device's
    name would otherwise be evaluated on the server.
    """

    _template = Template(
        """
        {% macro html(this, kwargs) %}
        <script type="application/json" id="cm-options">{{ this.token("options") }}</script>
        <script type="application/json" id="cm-data">{{ this.token("data") }}</script>
        {% endmacro %}
        {% macro script(this, kwargs) %}
        cardiomapa.{{ this.kind }}({{ this.map_name }},
            JSON.parse(document.getElementById("cm-options").textContent),
            JSON.parse(document.getElementById("cm-data").textContent));
        {% endmacro %}
        """
    )

    def __init__(
        self, kind: str, fmap: folium.Map, options: dict[str, Any], data: dict[str, Any] | None
    ) -> None:
        super().__init__()
        self._name = "CardiomapaPage"
        self.kind = kind
        self.map_name = fmap.get_name()
        self.documents = {"options": _script_json(options), "data": _script_json(data)}

    def token(self, part: str) -> str:
        return f"@@{self.get_name()}:{part}@@"


def _script_json(document: Any) -> str:
    """JSON safe inside a ``<script>`` element (no ``</script>`` can close it early)."""
    text = json.dumps(document, ensure_ascii=False, separators=(",", ":"))
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _html(fmap: folium.Map, page: _Page) -> str:
    html = fmap.get_root().render()
    for part, document in page.documents.items():
        html = html.replace(page.token(part), document, 1)
    # folium's viewport forbids zooming the page (maximum-scale=1, user-scalable=no): people who
    # need larger text could not enlarge the panel or the popups (WCAG 1.4.4; axe meta-viewport).
    html = _FOLIUM_VIEWPORT.sub(_VIEWPORT, html, count=1)
    return html.replace("<html>", '<html lang="es">', 1)


_FOLIUM_VIEWPORT = re.compile(r'<meta name="viewport" content="[^"]*maximum-scale[^"]*"\s*/>')
_VIEWPORT = '<meta name="viewport" content="width=device-width, initial-scale=1"/>'


_JINJA_OPENERS = re.compile(r"\{(?=[{%#])")


def _inert(text: str) -> str:
    """``text`` that Jinja will not read as a tag once folium re-renders it: a zero-width space
    after each ``{`` that opens ``{{``, ``{%`` or ``{#`` (invisible on the map)."""
    return _JINJA_OPENERS.sub("{\u200b", text)


def _markup_text(text: str) -> str:
    """``text`` for folium's ``Tooltip``, which pastes it into a JavaScript template literal
    that becomes HTML: escaped for HTML, with no backtick, ``$`` or backslash left to end the
    literal or start an expression, and inert for Jinja."""
    escaped = escape(text).replace("\\", "&#92;").replace("`", "&#96;").replace("$", "&#36;")
    return _inert(escaped)


def _html_frame(frame: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
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
    """``frame`` with :func:`_inert` applied to every text value (names come from users)."""
    out = frame.copy()
    for column in _text_columns(out):
        out[column] = out[column].map(lambda v: _inert(v) if isinstance(v, str) else v)
    return out


# --- a file to share ---------------------------------------------------------------------------

_CSS_URL = re.compile(r"url\((['\"]?)(images/[^)'\"]+)\1\)")


def self_contained(html: str, *, static_url: str = "/static") -> str:
    """``html`` with every local script and style sheet inlined (images as ``data:`` URIs).

    The result opens from a file or an e-mail with no server: only the basemap tiles, if any,
    are fetched from outside.
    """
    for _name, path in SCRIPTS:
        code = (STATIC_DIR / path).read_text(encoding="utf-8").replace("</script", "<\\/script")
        tag = f'<script src="{static_url}/{path}"></script>'
        html = _replace_once(html, tag, f"<script>\n{code}\n</script>")
    for _name, path in STYLES:
        css = _inline_css_images((STATIC_DIR / path).read_text(encoding="utf-8"), path)
        tag = f'<link rel="stylesheet" href="{static_url}/{path}"/>'
        html = _replace_once(html, tag, f"<style>\n{css}\n</style>")
    icon = base64.b64encode((STATIC_DIR / FAVICON).read_bytes()).decode("ascii")
    return html.replace(
        f'href="{static_url}/{FAVICON}"', f'href="data:image/svg+xml;base64,{icon}"'
    )


def _replace_once(html: str, tag: str, replacement: str) -> str:
    if tag not in html:
        msg = f"the page does not load {tag!r}: cannot inline it"
        raise ValueError(msg)
    return html.replace(tag, replacement, 1)


def _inline_css_images(css: str, path: str) -> str:
    folder = (STATIC_DIR / path).parent

    def data_uri(match: re.Match[str]) -> str:
        image = folder / match.group(2)
        if not image.is_file():
            return match.group(0)
        encoded = base64.b64encode(image.read_bytes()).decode("ascii")
        return f"url(data:image/png;base64,{encoded})"

    return _CSS_URL.sub(data_uri, css)


__all__ = [
    "Basemap",
    "PlannerForm",
    "basemap_of",
    "citizen_data",
    "citizen_map",
    "planner_map",
    "self_contained",
]
