"""When a defibrillator can be used: opening hours → available at an instant, or over a week.

A device counts at an instant only if all of these hold:

- it is ``active``, its record is not ``rejected``, and it is not a mobile unit (a patrol car has
  no fixed place to cover);
- the public may use it: ``access`` is ``yes``, ``permissive`` or ``customers`` (``customers``
  devices only while the premises are open, which their opening hours say);
- its ``opening_hours`` say it is open then. Hours are parsed with a real OSM opening_hours
  implementation (``opening-hours-py``) and evaluated in the city's time zone with the country's
  public holidays (``PH``). A device whose hours are missing or cannot be parsed has *unknown*
  availability: it is reported and, unless asked otherwise, not counted.

The weekly view cuts a reference week (Monday 00:00 to Sunday 24:00, local time) into 168 hourly
slices and evaluates each at its midpoint (hh:30). A device is *always available* ("24/7") when it
is open at every moment of the 366 days that start with the reference week.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from zoneinfo import ZoneInfo

import geopandas as gpd
import numpy as np
import opening_hours

HOURS_PER_WEEK = 168
ALWAYS_HORIZON_DAYS = 366
PUBLIC_ACCESS = frozenset({"yes", "permissive", "customers"})
WEEKDAY_NAMES = ("lunes", "martes", "miércoles", "jueves", "viernes", "sábado", "domingo")

# The package's type stub omits its exception class and its State enum members.
_PARSER_ERROR: type[Exception] = opening_hours.ParserError  # type: ignore[attr-defined]
_OPEN = opening_hours.State.OPEN


@dataclass(frozen=True)
class HoursIssue:
    """A device whose availability is unknown, and why (Spanish)."""

    device_id: str
    opening_hours: str | None
    reason: str

    def __str__(self) -> str:
        return f"{self.device_id}: {self.reason}"


@dataclass(frozen=True)
class ReportFlag:
    """A citizen's pending report that a device is missing or broken (not yet confirmed).

    Attributes
    ----------
    device_id
        The device reported.
    kind
        ``missing`` or ``broken``.
    reported_at
        When the report arrived (timezone-aware).
    """

    device_id: str
    kind: str
    reported_at: dt.datetime


#: Kinds of citizen report that take a device out of the usable set until staff or its entity
#: answer them.
DOWNGRADING_REPORTS = frozenset({"missing", "broken"})


@dataclass(frozen=True)
class Availability:
    """Availability of a set of devices, aligned with the rows of the devices frame.

    Attributes
    ----------
    device_ids
        Ids of the devices, in frame order.
    hours
        Their ``opening_hours`` texts (``None`` where missing).
    eligible
        Active, not rejected, fixed, publicly usable: may count when open.
    known
        The opening hours could be evaluated (present and parseable).
    """

    device_ids: np.ndarray
    hours: np.ndarray
    eligible: np.ndarray
    known: np.ndarray
    issues: tuple[HoursIssue, ...]
    timezone: str
    country: str | None
    assume_unknown_open: bool

    def counted(self) -> np.ndarray:
        """Devices that may count at some moment: eligible and with usable hours."""
        return self.eligible & (self.known | self.assume_unknown_open)


@dataclass(frozen=True)
class WeeklyAvailability:
    """Per device, whether it is available in each hourly slice of a reference week.

    Attributes
    ----------
    week_start
        Monday 00:00 of the reference week, in the city's time zone.
    slices
        ``bool`` array of shape (devices, 168): available at the midpoint of each hour of the
        week (slice 0 is Monday 00:00–01:00).
    always
        ``bool`` array (devices,): available at every moment of the 366 days from ``week_start``.
    """

    availability: Availability
    week_start: dt.datetime
    slices: np.ndarray
    always: np.ndarray


def _zone(timezone: str) -> ZoneInfo:
    return ZoneInfo(timezone)


@lru_cache(maxsize=4096)
def _parse(text: str, timezone: str, country: str | None) -> opening_hours.OpeningHours:
    return opening_hours.OpeningHours(text, timezone=_zone(timezone), country=country)


def local_instant(at: dt.datetime, timezone: str) -> dt.datetime:
    """``at`` in the city's time zone; an instant without a zone is taken as local time."""
    zone = _zone(timezone)
    return at.replace(tzinfo=zone) if at.tzinfo is None else at.astimezone(zone)


def device_availability(
    devices: gpd.GeoDataFrame | Iterable[dict[str, object]],
    *,
    timezone: str,
    country: str | None = "ES",
    assume_unknown_open: bool = False,
) -> Availability:
    """Classify devices: which may count, and which have unknown hours.

    Parameters
    ----------
    devices
        The defibrillators layer (columns ``id``, ``status``, ``verification``, ``access``,
        ``is_mobile``, ``opening_hours``).
    timezone
        IANA zone opening hours are evaluated in (the city profile's).
    country
        ISO country code for public holidays (``PH`` in opening hours).
    assume_unknown_open
        Count devices with missing or unparseable hours as always open (optimistic bound).
    """
    frame = devices if isinstance(devices, gpd.GeoDataFrame) else gpd.GeoDataFrame(list(devices))
    ids = frame["id"].to_numpy(dtype=object)
    texts = np.array(
        [_text(value) for value in frame["opening_hours"].to_numpy(dtype=object)], dtype=object
    )
    eligible = (
        (frame["status"] == "active")
        & (frame["verification"] != "rejected")
        & frame["access"].isin(PUBLIC_ACCESS)
        & ~frame["is_mobile"].fillna(False).astype(bool)
    ).to_numpy(dtype=bool)
    known = np.zeros(len(frame), dtype=bool)
    issues = []
    for index, (device_id, text) in enumerate(zip(ids, texts, strict=True)):
        if text is None:
            if eligible[index]:
                issues.append(HoursIssue(device_id, None, "sin horario (opening_hours vacío)"))
            continue
        try:
            _parse(text, timezone, country)
        except _PARSER_ERROR:
            issues.append(HoursIssue(device_id, text, f"horario no interpretable: {text!r}"))
            continue
        known[index] = True
    return Availability(
        device_ids=ids,
        hours=texts,
        eligible=eligible,
        known=known,
        issues=tuple(issues),
        timezone=timezone,
        country=country,
        assume_unknown_open=assume_unknown_open,
    )


def _text(value: object) -> str | None:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None
    return str(value)


def available_at(availability: Availability, at: dt.datetime) -> np.ndarray:
    """Devices available at the instant ``at`` (a ``bool`` array in frame order)."""
    instant = local_instant(at, availability.timezone)
    result = np.zeros(len(availability.device_ids), dtype=bool)
    cache: dict[str, bool] = {}
    for index, text in enumerate(availability.hours):
        if not availability.eligible[index]:
            continue
        if not availability.known[index]:
            result[index] = availability.assume_unknown_open
            continue
        if text not in cache:
            hours = _parse(text, availability.timezone, availability.country)
            cache[text] = hours.is_open(instant)
        result[index] = cache[text]
    return result


def available(
    availability: Availability, *, at: dt.datetime | None, reference_date: dt.date | None = None
) -> np.ndarray:
    """Devices available at ``at``; with ``at=None``, those available 24/7.

    "24/7" is judged over the 366 days from the Monday of ``reference_date``'s week (default:
    today), public holidays included.
    """
    if at is not None:
        return available_at(availability, at)
    week_of = reference_date or dt.datetime.now(tz=dt.UTC).date()
    return weekly_availability(availability, week_of=week_of).always


def week_start_of(day: dt.date, timezone: str) -> dt.datetime:
    """Monday 00:00 (local) of the week holding ``day``."""
    monday = day - dt.timedelta(days=day.weekday())
    return dt.datetime.combine(monday, dt.time(0, 0), tzinfo=_zone(timezone))


def weekly_availability(availability: Availability, *, week_of: dt.date) -> WeeklyAvailability:
    """Availability of every device in each of the 168 hours of the week holding ``week_of``.

    Each distinct opening-hours text is evaluated once, so the cost grows with the number of
    distinct schedules, not of devices.
    """
    start = week_start_of(week_of, availability.timezone)
    n = len(availability.device_ids)
    slices = np.zeros((n, HOURS_PER_WEEK), dtype=bool)
    always = np.zeros(n, dtype=bool)
    cache: dict[str, tuple[np.ndarray, bool]] = {}
    for index, text in enumerate(availability.hours):
        if not availability.eligible[index]:
            continue
        if not availability.known[index]:
            slices[index] = always[index] = availability.assume_unknown_open
            continue
        if text not in cache:
            hours = _parse(text, availability.timezone, availability.country)
            cache[text] = (_week_slices(hours, start), _always_open(hours, start))
        slices[index], always[index] = cache[text]
    return WeeklyAvailability(availability, start, slices, always)


def _week_slices(hours: opening_hours.OpeningHours, start: dt.datetime) -> np.ndarray:
    """Open at each hour's midpoint, from the intervals of one week (wall-clock hours)."""
    mask = np.zeros(HOURS_PER_WEEK, dtype=bool)
    midpoints = [_slice_midpoint(start, slot) for slot in range(HOURS_PER_WEEK)]
    end = start + dt.timedelta(days=7)
    slot = 0
    for begin, finish, state, _comment in hours.intervals(start, end):
        while slot < HOURS_PER_WEEK and midpoints[slot] < finish:
            if midpoints[slot] >= begin:
                mask[slot] = state == _OPEN
            slot += 1
    return mask


def _slice_midpoint(start: dt.datetime, slot: int) -> dt.datetime:
    # Wall-clock arithmetic: slot 26 is Tuesday 02:30 local, whatever the DST change that week.
    day, hour = divmod(slot, 24)
    return (start + dt.timedelta(days=day)).replace(hour=hour, minute=30)


def _always_open(hours: opening_hours.OpeningHours, start: dt.datetime) -> bool:
    end = start + dt.timedelta(days=ALWAYS_HORIZON_DAYS)
    return all(state == _OPEN for _b, _f, state, _c in hours.intervals(start, end))


def slice_label(slot: int) -> str:
    """Spanish label of an hourly slice: ``"lunes 08:00–09:00"``."""
    day, hour = divmod(slot, 24)
    return f"{WEEKDAY_NAMES[day]} {hour:02d}:00–{(hour + 1) % 24:02d}:00"


def _checked(text: str, timezone: str, country: str | None) -> opening_hours.OpeningHours:
    """``text`` parsed, or a ``ValueError`` that quotes it."""
    try:
        return _parse(text, timezone, country)
    except _PARSER_ERROR as exc:
        msg = f"horario no interpretable: {text!r}"
        raise ValueError(msg) from exc


def open_state(
    text: str, at: dt.datetime, *, timezone: str, country: str | None = "ES"
) -> tuple[bool, dt.datetime | None]:
    """Whether hours ``text`` are open at ``at``, and when that next changes (local time).

    The next change is ``None`` when it never does (``24/7``, or closed for good).

    Raises
    ------
    ValueError
        ``text`` is not valid opening_hours syntax.
    """
    hours = _checked(text, timezone, country)
    instant = local_instant(at, timezone)
    change = hours.next_change(instant)
    return hours.is_open(instant), change


def week_in_words(text: str, *, week_of: dt.date, timezone: str, country: str | None = "ES") -> str:
    """Spanish description of the hours ``text`` in the week holding ``week_of``.

    Days with the same hours are grouped: ``"lunes a viernes 08:00–20:00; sábado 09:00–14:00;
    domingo cerrado"``. It describes that actual week (holidays and seasons included), so a
    seasonal device reads ``"cerrado toda la semana"`` out of season.

    Raises
    ------
    ValueError
        ``text`` is not valid opening_hours syntax.
    """
    hours = _checked(text, timezone, country)
    start = week_start_of(week_of, timezone)
    if _always_open(hours, start):
        return "abierto las 24 horas, todos los días"
    days: list[tuple[str, ...]] = []
    for day in range(7):
        begin = start + dt.timedelta(days=day)  # wall-clock days, whatever the DST change
        end = begin + dt.timedelta(days=1)
        spans: list[str] = []
        for opens, closes, state, _comment in hours.intervals(begin, end):
            if state == _OPEN:
                until = "24:00" if closes >= end else closes.strftime("%H:%M")
                spans.append(f"{opens:%H:%M}–{until}")
        days.append(tuple(spans))
    if not any(days):
        return "cerrado toda la semana"
    groups: list[tuple[int, int, tuple[str, ...]]] = []
    for day, same in enumerate(days):
        if groups and groups[-1][2] == same and groups[-1][1] == day - 1:
            groups[-1] = (groups[-1][0], day, same)
        else:
            groups.append((day, day, same))
    parts = []
    for first, last, group in groups:
        if first == last:
            label = WEEKDAY_NAMES[first]
        elif last == first + 1:
            label = f"{WEEKDAY_NAMES[first]} y {WEEKDAY_NAMES[last]}"
        else:
            label = f"{WEEKDAY_NAMES[first]} a {WEEKDAY_NAMES[last]}"
        parts.append(f"{label} {' y '.join(group) if group else 'cerrado'}")
    return "; ".join(parts)
