"""Interactive maps as HTML pages: the citizens' map and the planners' map (folium + Leaflet).

Rendering only: the data comes from :class:`geo.core.nearest.DeviceFinder` (the same snapshot and
availability rules as ``/api/nearest``) and :class:`geo.core.results.PlannerView`. This module
holds the citizens' map; the planners' map is :mod:`geo.render.planner_map`, the page both are
built on (assets, basemap, :func:`self_contained`) :mod:`geo.render.map_page`, and the helpers
that keep users' text inert :mod:`geo.render.map_text`. Their public names are importable from
here too.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import folium
import geopandas as gpd

from geo.city import CityProfile
from geo.core.availability import local_instant, week_in_words
from geo.core.distance import StraightLine
from geo.core.nearest import STATE_TEXT, STATES, DeviceFinder
from geo.render.map_page import (
    STATIC_DIR,
    WGS84,
    Basemap,
    Page,
    base_map,
    basemap_of,
    installable,
    outline,
    page_html,
    self_contained,
)
from geo.render.map_text import html_frame
from geo.render.planner_map import PlannerForm, planner_map

__all__ = [
    "ACCESS_TEXT",
    "DEVICE_COLUMNS",
    "STATIC_DIR",
    "Basemap",
    "PlannerForm",
    "basemap_of",
    "citizen_data",
    "citizen_map",
    "citizen_offline",
    "planner_map",
    "self_contained",
]

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


#: How far ahead the offline copy of the citizens' map knows when each device can be used.
OFFLINE_DAYS = 7


def citizen_offline(finder: DeviceFinder, *, at: dt.datetime) -> dict[str, Any]:
    """:func:`citizen_data` plus, for each row, when the device can be used over the next
    ``OFFLINE_DAYS`` days: what the page keeps for when there is no network.

    ``spans[i]`` lists row ``i``'s usable intervals as minutes from ``at`` (flat pairs:
    ``[opens, closes, opens, closes, …]``), by the same rules as the states
    (:meth:`DeviceFinder.usable_spans`), so a phone offline can still tell which device is usable
    now, and says how old its copy is (``at``). Only the public fields of ``citizen_data``.
    """
    data = citizen_data(finder, at=at)
    start = dt.datetime.fromisoformat(data["at"])
    until = start + dt.timedelta(days=OFFLINE_DAYS)
    spans = []
    for usable in finder.usable_spans(start, until):
        flat: list[int] = []
        for opens, closes in usable:
            flat.append(round((opens - start).total_seconds() / 60))
            flat.append(round((closes - start).total_seconds() / 60))
        spans.append(flat)
    return {**data, "offline_until": until.isoformat(), "spans": spans}


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
    open_data_url: str | None = None,
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
    open_data_url
        The open-data page (downloads, OGC API), linked from the panel when served.
    """
    city = finder.city
    title = f"Desfibriladores de {city.name}"
    fmap, bounds = base_map(city, basemap, static_url, title, extent=zones)
    _context_layers(fmap, city, zones)
    data = citizen_data(finder, at=at, api_url=api_url)
    data_url = f"{api_url}/map/devices" if api_url else None
    options = {"title": title, "notice": notice, "data_url": data_url, "bounds": bounds,
               "open_data_url": open_data_url}  # fmt: skip
    if api_url:  # served: installable, and kept for when there is no network
        options |= {"offline_url": f"{api_url}/map/offline", "service_worker": "/sw.js"}
        installable(fmap, static_url)
    page = Page("citizen", fmap, options, data)
    fmap.add_child(page)
    return page_html(fmap, page)


def _context_layers(fmap: folium.Map, city: CityProfile, zones: gpd.GeoDataFrame) -> None:
    outline(fmap, city)
    frame = zones[["name", "geometry"]].to_crs(WGS84).rename(columns={"name": "Zona CEAS"})
    folium.GeoJson(
        html_frame(frame),
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
