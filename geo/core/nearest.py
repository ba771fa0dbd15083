"""The citizen's question: which defibrillators are nearest to me, and can I use them *now*?

:class:`DeviceFinder` is built once from the defibrillators layer (a KD-tree on metric
coordinates, opening hours parsed once) and then answers many lookups cheaply, which is what the
HTTP API does on every ``/api/nearest`` request. It is pure: GeoDataFrames in, dataclasses out.

Which devices are listed: verified, fixed (not mobile) devices that are in service or taken out
of service for a while (``removed`` ones are gone). A device is *available* at an instant when it
is usable by the one definition of :mod:`geo.core.availability`: in service, public, open under the
city's holiday calendar, maintenance in date and no pending citizen report that it is missing or
broken. The answer puts the nearest available devices first; after them, flagged, any device
that is nearer but closed, restricted, out of service, reported, overdue for maintenance or of
unknown hours — a citizen should know that the closest one is behind a locked door, and an AED
with expired pads is usually better than none.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
from pyproj import Transformer
from scipy.spatial import cKDTree

from geo.city import CityProfile
from geo.core.availability import (
    PUBLIC_ACCESS,
    ReportFlag,
    last_good_day,
    local_instant,
    maintenance_on,
    open_spans,
    open_state,
)
from geo.core.distance import (
    WALKING_SPEED_M_PER_MIN,
    DistanceModel,
    NetworkDistance,
    StraightLine,
    metric_xy,
    pairs_within,
    to_metric,
)
from geo.core.outputs import python_value

#: Fields of a device a citizen sees in the answer.
PUBLIC_FIELDS = (
    "id", "name", "location_text", "address", "access", "opening_hours", "indoor", "level",
    "phone", "check_date", "pads_expiry", "battery_expiry",
)  # fmt: skip

#: Each state in words (Spanish), as citizens read it.
STATE_TEXT = {
    "open": "Disponible ahora",
    "closed": "Cerrado ahora",
    "restricted": "Acceso restringido (no es de uso público)",
    "unknown_hours": "Horario desconocido",
    "out_of_service": "Fuera de servicio",
    "reported": "Avisado como averiado o desaparecido — sin confirmar",
    "maintenance_overdue": "Abierto, con mantenimiento vencido",
}
#: The states, in the order the map's compact data indexes them.
STATES = tuple(STATE_TEXT)
REPORT_WORDS = {"missing": "desaparecido", "broken": "averiado"}

#: OpenStreetMap's directions page, walking; ``route=<from>;<to>``, each ``lat,lon`` or empty.
OSM_WALKING_DIRECTIONS = "https://www.openstreetmap.org/directions?engine=fossgis_osrm_foot&route="

#: How far a walking-network lookup searches (straight-line lookups have no limit).
NETWORK_SEARCH_M = 3000.0


def listed(devices: pd.DataFrame) -> np.ndarray:
    """Which ``devices`` (rows of the defibrillators layer) citizens are shown — on the map, in
    the nearest answer, on a cabinet's page: verified, fixed (not mobile), in service or out of
    service for a while (``removed`` ones are gone). A boolean mask in row order."""
    mask = (
        (devices["verification"] == "verified")
        & devices["status"].isin(("active", "out_of_service"))
        & ~devices["is_mobile"].fillna(False).astype(bool)
    )
    return mask.to_numpy(dtype=bool)


@dataclass(frozen=True)
class DeviceState:
    """A device's state at an instant: ``state`` as in :class:`NearbyDevice`, open 24/7 or not,
    when it next opens or closes (local time; ``None`` if never or unknown), its maintenance
    (``ok``, ``overdue``, ``unknown``) and, when it is not simply open or closed, why in Spanish
    (``notice``: ``"parches caducados el 06/12/2026"``, ``"avisado como desaparecido hace 2 h —
    sin confirmar"``)."""

    state: str
    always_open: bool
    next_change: dt.datetime | None
    maintenance: str = "unknown"
    notice: str | None = None
    reported_at: dt.datetime | None = None

    @property
    def available(self) -> bool:
        return self.state == "open"

    @property
    def text(self) -> str:
        """The state in words, with its reason (without "24 h", which callers add)."""
        if self.state == "reported" and self.notice:
            return self.notice
        if self.state == "maintenance_overdue" and self.notice:
            return f"Abierto, pero con {self.notice}"
        words = STATE_TEXT[self.state]
        return f"{words} · {self.notice}" if self.notice else words


@dataclass(frozen=True)
class NearbyDevice:
    """One device in a nearest answer.

    Attributes
    ----------
    state
        ``open`` (usable now), ``closed`` (hours say closed), ``restricted`` (not for public
        use: access private / no / permit / unknown), ``out_of_service`` (taken out of service
        by its entity or staff), ``reported`` (a citizen said it is missing or broken; not yet
        confirmed), ``unknown_hours`` (no usable hours) or ``maintenance_overdue`` (open, but
        its pads or battery expired).
    available
        ``state == "open"``.
    maintenance
        ``ok``, ``overdue`` or ``unknown`` (no expiry recorded), on the day asked.
    notice
        Why it is not simply open or closed, in Spanish (``None`` otherwise).
    always_open
        Open 24/7 (its hours never change).
    next_change
        When the state changes next, in the city's local time: opens (when closed) or closes
        (when open); ``None`` if never or unknown.
    distance_m, walk_min
        Walking distance (network, or straight line × detour factor) and time at 4.5 km/h.
    lon, lat
        Its position in EPSG:4326.
    fields
        The public fields of its record (see ``PUBLIC_FIELDS``).
    """

    device_id: str
    state: str
    available: bool
    always_open: bool
    next_change: dt.datetime | None
    distance_m: float
    walk_min: float
    lon: float
    lat: float
    fields: dict[str, Any]
    maintenance: str = "unknown"
    notice: str | None = None
    state_text: str = ""


class DeviceFinder:
    """Nearest-device lookups over one snapshot of the defibrillators layer.

    Parameters
    ----------
    devices
        The defibrillators layer in EPSG:4326 (schema columns).
    city
        Gives the metric CRS, the time zone and the country (public holidays).
    model
        Straight line × detour factor (default) or a walking network.
    """

    def __init__(
        self,
        devices: gpd.GeoDataFrame,
        city: CityProfile,
        *,
        model: DistanceModel | None = None,
        reports: Mapping[str, ReportFlag] | None = None,
    ) -> None:
        self.reports = dict(reports or {})
        frame = devices[listed(devices)].reset_index(drop=True)
        self.city = city
        self.model: DistanceModel = model or StraightLine()
        self._xy = metric_xy(to_metric(frame, city), "desfibriladores")
        self._tree = cKDTree(self._xy) if len(frame) else None
        self._to_metric = Transformer.from_crs("EPSG:4326", city.metric_crs, always_xy=True)
        self._lonlat = (
            np.column_stack([frame.geometry.x, frame.geometry.y])
            if len(frame)
            else (np.empty((0, 2)))
        )
        self._fields = [
            {name: python_value(value) for name, value in zip(PUBLIC_FIELDS, row, strict=True)}
            for row in frame[list(PUBLIC_FIELDS)].itertuples(index=False, name=None)
        ]
        self._positions = {str(fields["id"]): index for index, fields in enumerate(self._fields)}
        self._public = frame["access"].isin(PUBLIC_ACCESS).to_numpy(dtype=bool)
        self._in_service = (frame["status"] == "active").to_numpy(dtype=bool)
        # Lookups within the same minute share one evaluation per distinct schedule.
        self._states: dict[tuple[str, dt.datetime], tuple[bool, dt.datetime | None]] = {}

    def __len__(self) -> int:
        return len(self._fields)

    @property
    def fields(self) -> list[dict[str, Any]]:
        """The public fields of each listed device (see ``PUBLIC_FIELDS``), in snapshot order."""
        return self._fields

    @property
    def lonlat(self) -> np.ndarray:
        """Each listed device's ``(lon, lat)`` in EPSG:4326, in snapshot order."""
        return self._lonlat

    def states(self, at: dt.datetime) -> list[DeviceState]:
        """The state of every listed device at ``at``, in snapshot order (no distances)."""
        minute = _minute(local_instant(at, self.city.timezone))
        return [self._state(index, minute) for index in range(len(self._fields))]

    def index(self, device_id: str) -> int | None:
        """Where device ``device_id`` is in snapshot order, or ``None`` when it is not listed
        (unknown, not verified, removed or mobile)."""
        return self._positions.get(device_id)

    def state(self, index: int, at: dt.datetime) -> DeviceState:
        """The state at ``at`` of the listed device at ``index``: ``states(at)[index]``, without
        working out every other device's (a page about one device asks this)."""
        if not 0 <= index < len(self._fields):
            msg = f"index {index} outside the {len(self._fields)} listed devices"
            raise IndexError(msg)
        return self._state(index, _minute(local_instant(at, self.city.timezone)))

    def usable_spans(
        self, start: dt.datetime, end: dt.datetime
    ) -> list[list[tuple[dt.datetime, dt.datetime]]]:
        """When each listed device (snapshot order) can be used between ``start`` and ``end``:
        its open hours under the city's holidays, in local time, cut at the end of the last day
        its pads and battery are in date. None while it is restricted, out of service,
        reported or of unknown hours: the same rules as :meth:`states`, over a span of time, so
        a page or a dispatch centre can tell what is usable at any moment of it offline."""
        zone = self.city.timezone
        begin, finish = local_instant(start, zone), local_instant(end, zone)
        by_text: dict[str, list[tuple[dt.datetime, dt.datetime]]] = {}
        usable: list[list[tuple[dt.datetime, dt.datetime]]] = []
        for index, fields in enumerate(self._fields):
            hours = fields["opening_hours"]
            listed = self._public[index] and self._in_service[index]
            if not listed or hours is None or fields["id"] in self.reports:
                usable.append([])
                continue
            if hours not in by_text:
                try:
                    by_text[hours] = open_spans(
                        hours, begin, finish, timezone=zone, calendar=self.city.calendar
                    )
                except ValueError:
                    by_text[hours] = []
            spans = by_text[hours]
            expiry = last_good_day(fields)
            if expiry is not None:
                limit = dt.datetime.combine(expiry + dt.timedelta(days=1), dt.time(0))
                limit = local_instant(limit, zone)
                spans = [(opens, min(closes, limit)) for opens, closes in spans if opens < limit]
            usable.append(spans)
        return usable

    def nearest(
        self,
        lon: float,
        lat: float,
        *,
        at: dt.datetime,
        limit: int = 3,
        max_distance_m: float = math.inf,
    ) -> list[NearbyDevice]:
        """The ``limit`` nearest devices available at ``at``, then nearer unavailable ones.

        Parameters
        ----------
        lon, lat
            Where the person is (EPSG:4326).
        at
            The instant (a naive instant is local time).
        limit
            How many available devices to return; at most as many unavailable ones follow.
        max_distance_m
            Ignore devices farther than this walk.
        """
        if self._tree is None or limit < 1:
            return []
        x, y = self._to_metric.transform(lon, lat)
        # Opening hours have minute resolution: the state at hh:mm:ss is the state at hh:mm.
        minute = _minute(local_instant(at, self.city.timezone))
        found: dict[int, NearbyDevice] = {}
        n_open = 0
        for index, distance in self._by_distance(np.array([x, y]), max_distance_m):
            device = self._describe(index, distance, minute)
            found[index] = device
            n_open += device.available
            if n_open >= limit:
                break
        ordered = sorted(found.values(), key=lambda d: d.distance_m)
        available = [d for d in ordered if d.available][:limit]
        horizon = available[-1].distance_m if len(available) == limit else math.inf
        others = [d for d in ordered if not d.available and d.distance_m < horizon][:limit]
        return available + others

    def _by_distance(self, xy: np.ndarray, max_distance_m: float) -> Iterator[tuple[int, float]]:
        """Devices by increasing walking distance: ``(index, distance_m)`` pairs, lazily."""
        assert self._tree is not None
        if isinstance(self.model, NetworkDistance):
            radius = min(max_distance_m, NETWORK_SEARCH_M)
            reach = pairs_within(xy[None, :], self._xy, radius_m=radius, model=self.model)
            order = np.argsort(reach.distance_m, kind="stable")
            devices, distances = reach.device[order].tolist(), reach.distance_m[order].tolist()
            yield from zip(devices, distances, strict=True)
            return
        detour = self.model.detour_factor
        bound = max_distance_m / detour
        k, n, done = 32, len(self._fields), 0
        while done < n:
            k = min(k, n)
            distance, index = self._tree.query(xy, k=k, distance_upper_bound=bound)
            distances = np.atleast_1d(distance)[done:].tolist()
            indices = np.atleast_1d(index)[done:].tolist()
            for position, metres in zip(indices, distances, strict=True):
                if metres == math.inf:
                    return
                yield position, metres * detour
            done, k = k, k * 4

    def _open_state(self, hours: str, minute: dt.datetime) -> tuple[bool, dt.datetime | None]:
        key = (hours, minute)
        state = self._states.get(key)
        if state is None:
            if len(self._states) > 10_000:
                self._states.clear()
            state = open_state(
                hours, minute, timezone=self.city.timezone, calendar=self.city.calendar
            )
            self._states[key] = state
        return state

    def _state(self, index: int, minute: dt.datetime) -> DeviceState:
        fields = self._fields[index]
        upkeep = maintenance_on(fields, minute.date())
        overdue = upkeep.text if upkeep.state == "overdue" else None
        report = self.reports.get(fields["id"])
        if not self._public[index]:
            return DeviceState("restricted", False, None, upkeep.state, overdue)
        if not self._in_service[index]:
            return DeviceState("out_of_service", False, None, upkeep.state, overdue)
        if report is not None:
            words = REPORT_WORDS.get(report.kind, "con un problema")
            notice = f"Avisado como {words} {_ago(report.reported_at, minute)} — sin confirmar"
            return DeviceState("reported", False, None, upkeep.state, notice, report.reported_at)
        hours = fields["opening_hours"]
        if hours is None:
            return DeviceState("unknown_hours", False, None, upkeep.state, overdue)
        try:
            is_open, change = self._open_state(hours, minute)
        except ValueError:
            return DeviceState("unknown_hours", False, None, upkeep.state, overdue)
        if not is_open:
            return DeviceState("closed", False, change, upkeep.state, overdue)
        if overdue is not None:
            return DeviceState("maintenance_overdue", False, change, upkeep.state, overdue)
        return DeviceState("open", change is None, change, upkeep.state)

    def _describe(self, index: int, distance_m: float, minute: dt.datetime) -> NearbyDevice:
        fields = self._fields[index]
        state = self._state(index, minute)
        return NearbyDevice(
            device_id=fields["id"],
            state=state.state,
            available=state.available,
            always_open=state.always_open,
            next_change=state.next_change,
            maintenance=state.maintenance,
            notice=state.notice,
            state_text=state.text,
            distance_m=distance_m,
            walk_min=distance_m / WALKING_SPEED_M_PER_MIN,
            lon=self._lonlat[index][0],
            lat=self._lonlat[index][1],
            fields=fields,
        )


def walking_directions_url(
    lon: float, lat: float, *, from_lon: float | None = None, from_lat: float | None = None
) -> str:
    """OpenStreetMap's walking directions (its FOSSGIS OSRM foot engine) to ``lon``, ``lat``.

    Parameters
    ----------
    lon, lat
        Where to go, in degrees (EPSG:4326).
    from_lon, from_lat
        Where from, in degrees (EPSG:4326); without them the route starts empty and the person
        says where they are on OpenStreetMap's page.
    """
    start = (
        f"{from_lat:.6f}%2C{from_lon:.6f}" if from_lon is not None and from_lat is not None else ""
    )
    return f"{OSM_WALKING_DIRECTIONS}{start}%3B{lat:.6f}%2C{lon:.6f}"


def _ago(then: dt.datetime, now: dt.datetime) -> str:
    """``"hace 5 min"``, ``"hace 3 h"``, ``"hace 2 días"`` (Spanish)."""
    minutes = max(0, int((now - then).total_seconds() // 60))
    if minutes < 60:
        return f"hace {minutes} min"
    if minutes < 48 * 60:
        return f"hace {minutes // 60} h"
    return f"hace {minutes // (24 * 60)} días"


def _minute(instant: dt.datetime) -> dt.datetime:
    return instant.replace(second=0, microsecond=0)
