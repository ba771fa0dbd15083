"""When a defibrillator can be used: the one definition of "usable at an instant".

Every consumer — the nearest lookup, the citizens' map and its device API, ``open_at`` filters,
coverage (instant, weekly, always), gaps, siting, the lives model, the indicators and the
report — asks this module. A device is **usable** at an instant when all of these hold:

- **in service**: ``status`` is ``active``, its record is ``verified`` by staff, and it is not a
  mobile unit (a patrol car has no fixed place to cover);
- **publicly accessible**: ``access`` is ``yes``, ``permissive`` or ``customers`` (``customers``
  devices only while the premises are open, which their opening hours say);
- **open**: its ``opening_hours`` say so, evaluated in the city's time zone with ``PH`` meaning
  the city's holiday calendar (:mod:`geo.calendar`: national, regional and local days).
  ``opening-hours-py`` parses the hours; as it knows only national days, each schedule that
  mentions ``PH`` is evaluated with ``PH`` matching no day on ordinary days and every day on the
  city's holidays (:class:`CityHours`). A device whose hours are missing or cannot be parsed has
  *unknown* availability: it is reported and, unless asked otherwise, not counted;
- **in date**: neither its pads nor its battery expired before that day
  (``pads_expiry``/``battery_expiry`` is the last good day). Analyses can count overdue devices
  for comparison (``count_overdue``); citizens still see them, with the warning;
- **not reported**: no citizen report that it is missing or broken is waiting for staff or its
  entity to answer (:class:`ReportFlag`).

The weekly view cuts a reference week (Monday 00:00 to Sunday 24:00, local time) into 168 hourly
slices and evaluates each at its midpoint (hh:30). A device is *always available* ("24/7") when it
is open at every moment of the 366 days that start with the reference week and in date on the
reference day (pads due later in the year are assumed to be replaced on time).
"""

from __future__ import annotations

import datetime as dt
import itertools
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, replace
from functools import lru_cache
from zoneinfo import ZoneInfo

import geopandas as gpd
import numpy as np
import opening_hours

from geo.calendar import NATIONAL_SPAIN, HolidayCalendar
from geo.clock import city_instant

HOURS_PER_WEEK = 168
ALWAYS_HORIZON_DAYS = 366
#: Windows (days) in which the next change of a schedule is looked for, nearest first; the last
#: reaches ALWAYS_HORIZON_DAYS.
_CHANGE_WINDOWS_DAYS = (8, 64, ALWAYS_HORIZON_DAYS)
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

#: Maintenance states: ``ok`` (a known expiry, none past), ``overdue`` (pads or battery expired
#: before the day asked), ``unknown`` (no expiry recorded).
MAINTENANCE_STATES = ("ok", "overdue", "unknown")
_EXPIRY_FIELDS = (("pads_expiry", "parches caducados"), ("battery_expiry", "batería caducada"))


@dataclass(frozen=True)
class Maintenance:
    """A device's upkeep on one day: ``state`` (see :data:`MAINTENANCE_STATES`), and when
    overdue, since when and in words (``"parches caducados el 06/12/2026"``)."""

    state: str
    expired_on: dt.date | None = None
    text: str | None = None


def maintenance_on(record: Mapping[str, object], day: dt.date) -> Maintenance:
    """Whether the pads and battery of ``record`` are in date on ``day`` (the expiry date itself
    is the last good day)."""
    known = False
    overdue = []
    for name, words in _EXPIRY_FIELDS:
        value = _date(record.get(name))
        if value is None:
            continue
        known = True
        if value < day:
            overdue.append((value, words))
    if overdue:
        first = min(day for day, _ in overdue)
        text = " y ".join(f"{words} el {value:%d/%m/%Y}" for value, words in sorted(overdue))
        return Maintenance("overdue", first, text)
    return Maintenance("ok" if known else "unknown")


def last_good_day(record: Mapping[str, object]) -> dt.date | None:
    """The last day the pads and the battery of ``record`` are both in date (``None``: no expiry
    recorded)."""
    days = [day for name, _words in _EXPIRY_FIELDS if (day := _date(record.get(name)))]
    return min(days) if days else None


def _date(value: object) -> dt.date | None:
    if value is None or value != value:  # None, NaN, NaT
        return None
    if isinstance(value, dt.datetime):  # pandas Timestamps too
        return value.date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str) and value:
        try:
            return dt.date.fromisoformat(value[:10])
        except ValueError:
            return None
    return None


# --- opening hours under the city's calendar ---------------------------------------------------

_PH = re.compile(r"\bPH\b")
Interval = tuple[dt.datetime, dt.datetime, object, str]


class CityHours:
    """One ``opening_hours`` text evaluated with ``PH`` meaning the city's holidays.

    Two parses of the same rules are kept: on ordinary days ``PH`` matches no day; on the city's
    holidays it matches every day (``PH`` → ``Mo-Su`` in the library's canonical form), so the
    rules that name ``PH`` apply exactly as on a public holiday. A text without ``PH`` is one
    parse. Hours that run past midnight into or out of a holiday take the status of the day
    they are evaluated on.

    Raises
    ------
    ValueError
        ``text`` is not valid opening_hours syntax.
    """

    def __init__(self, text: str, timezone: str, calendar: HolidayCalendar) -> None:
        self.text = text
        self.zone = ZoneInfo(timezone)
        self.calendar = calendar
        try:
            self._ordinary = opening_hours.OpeningHours(text, timezone=self.zone, country=None)
        except _PARSER_ERROR as exc:
            msg = f"horario no interpretable: {text!r}"
            raise ValueError(msg) from exc
        self.uses_holidays = bool(_PH.search(text))
        self._holiday = self._ordinary
        if self.uses_holidays:
            canonical = _PH.sub("Mo-Su", str(self._ordinary))
            try:
                self._holiday = opening_hours.OpeningHours(
                    canonical, timezone=self.zone, country=None
                )
            except _PARSER_ERROR:  # a PH form with no weekday twin (e.g. "PH +1 day"):
                self._holiday = opening_hours.OpeningHours(  # the library's national days
                    text, timezone=self.zone, country=calendar.country
                )

    @property
    def ordinary(self) -> opening_hours.OpeningHours:
        """The rules as on an ordinary day (``PH`` matching no day)."""
        return self._ordinary

    def _on(self, day: dt.date) -> opening_hours.OpeningHours:
        return self._holiday if self.calendar.is_holiday(day) else self._ordinary

    def is_open(self, at: dt.datetime) -> bool:
        instant = at.astimezone(self.zone)
        return bool(self._on(instant.date()).is_open(instant))

    def intervals(self, start: dt.datetime, end: dt.datetime) -> list[Interval]:
        """``(begin, end, state, comment)`` from ``start`` to ``end``, merged where equal."""
        if not self.uses_holidays:
            return list(self._ordinary.intervals(start, end))
        pieces: list[Interval] = []
        for begin, finish, hours in self._pieces(start, end):
            pieces.extend(hours.intervals(begin, finish))
        return _merged(pieces)

    def _pieces(
        self, start: dt.datetime, end: dt.datetime
    ) -> Iterator[tuple[dt.datetime, dt.datetime, opening_hours.OpeningHours]]:
        """``[start, end)`` cut at the midnights around each holiday, with the rules of each."""
        first, last = start.astimezone(self.zone).date(), end.astimezone(self.zone).date()
        cuts = {start, end}
        for day in self.calendar.between(first, last):
            for midnight in (day, day + dt.timedelta(days=1)):
                instant = dt.datetime.combine(midnight, dt.time(0), tzinfo=self.zone)
                if start < instant < end:
                    cuts.add(instant)
        ordered = sorted(cuts)
        for begin, finish in itertools.pairwise(ordered):
            yield begin, finish, self._on(begin.astimezone(self.zone).date())

    def next_change(self, at: dt.datetime) -> dt.datetime | None:
        """When the state next changes after ``at`` (``None``: never, or not within a year)."""
        instant = at.astimezone(self.zone)
        return self._first_change(instant, _later(instant, ALWAYS_HORIZON_DAYS))

    def _first_change(self, start: dt.datetime, horizon: dt.datetime) -> dt.datetime | None:
        """The first change after ``start`` before ``horizon``, looked for in growing windows.

        Not the library's own ``next_change``: on rules that never change again it searches for
        seconds before giving up (``Mo-Su 00:00-24:00``, or ``PH off`` rules on a holiday,
        which are closed all day), and the nearest lookup asks once a minute. The library lists
        intervals a day at a time instead; the first span of a window ends at the first change
        whenever that falls inside the window, so only rules that do not change for a week are
        listed further.
        """
        for days in _CHANGE_WINDOWS_DAYS:
            end = min(_later(start, days), horizon)
            spans = _merged(self.intervals(start, end))  # equal neighbours joined, empty dropped
            if spans and spans[0][1] < end:
                return spans[0][1]
            if end >= horizon:
                return None
        return None  # pragma: no cover - the last window reaches the horizon


def _later(instant: dt.datetime, days: int) -> dt.datetime:
    """``days`` × 24 h after ``instant``, in its zone. Elapsed time, not wall-clock arithmetic:
    a wall-clock sum can land in the hour the clocks skip, which the library refuses."""
    return (instant.astimezone(dt.UTC) + dt.timedelta(days=days)).astimezone(instant.tzinfo)


def _merged(pieces: Iterable[Interval]) -> list[Interval]:
    merged: list[Interval] = []
    for begin, finish, state, comment in pieces:
        if merged and merged[-1][1] == begin and merged[-1][2:] == (state, comment):
            merged[-1] = (merged[-1][0], finish, state, comment)
        elif begin < finish:
            merged.append((begin, finish, state, comment))
    return merged


def open_spans(
    text: str, start: dt.datetime, end: dt.datetime, *, timezone: str, calendar: HolidayCalendar
) -> list[tuple[dt.datetime, dt.datetime]]:
    """When ``text`` is open between ``start`` and ``end`` (aware instants), under the city's
    holidays: ``(opens, closes)`` pairs in the city's time zone, merged where they touch.

    Raises
    ------
    ValueError
        ``text`` is not valid opening_hours syntax.
    """
    hours = city_hours(text, timezone, calendar)
    zone = _zone(timezone)
    spans: list[tuple[dt.datetime, dt.datetime]] = []
    for opens, closes, state, _comment in hours.intervals(start, end):
        if state != _OPEN:
            continue
        opens, closes = opens.astimezone(zone), closes.astimezone(zone)
        if spans and spans[-1][1] >= opens:
            spans[-1] = (spans[-1][0], max(spans[-1][1], closes))
        else:
            spans.append((opens, closes))
    return spans


@lru_cache(maxsize=4096)
def city_hours(text: str, timezone: str, calendar: HolidayCalendar) -> CityHours:
    """The parsed hours (cached: each distinct schedule is parsed once per process)."""
    return CityHours(text, timezone, calendar)


# --- which devices may count -------------------------------------------------------------------


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
        In service, verified, fixed, publicly usable: may count when open.
    known
        The opening hours could be evaluated (present and parseable).
    expiry
        The earliest of pads and battery expiry (``None`` where neither is known).
    reported
        A citizen's report that it is missing or broken is pending.
    count_overdue
        Count devices whose maintenance is overdue anyway (the old count, for comparison).
    """

    device_ids: np.ndarray
    hours: np.ndarray
    eligible: np.ndarray
    known: np.ndarray
    issues: tuple[HoursIssue, ...]
    timezone: str
    calendar: HolidayCalendar
    assume_unknown_open: bool
    expiry: np.ndarray
    reported: np.ndarray
    count_overdue: bool = False

    def counted(self) -> np.ndarray:
        """Devices that may count at some moment: eligible, with usable hours, not reported."""
        return self.eligible & (self.known | self.assume_unknown_open) & ~self.reported

    def in_date(self, day: dt.date) -> np.ndarray:
        """Devices whose pads and battery are in date on ``day`` (or ``count_overdue``)."""
        if self.count_overdue:
            return np.ones(len(self.device_ids), dtype=bool)
        return np.array([e is None or e >= day for e in self.expiry], dtype=bool)

    def overdue(self, day: dt.date) -> np.ndarray:
        """Counted devices whose maintenance is overdue on ``day`` (whatever ``count_overdue``)."""
        late = np.array([e is not None and e < day for e in self.expiry], dtype=bool)
        return self.counted() & late

    def report_warnings(self) -> tuple[str, ...]:
        """One Spanish line per device left out because a citizen reported it missing/broken."""
        return tuple(
            f"{self.device_ids[i]}: avisado por la ciudadanía como desaparecido o averiado, sin "
            "confirmar; no se cuenta"
            for i in np.flatnonzero(self.eligible & self.reported)
        )

    def overdue_warnings(self, day: dt.date) -> tuple[str, ...]:
        """One Spanish line per counted device whose maintenance is overdue on ``day``."""
        action = "se cuenta igualmente (--count-overdue)" if self.count_overdue else "no se cuenta"
        return tuple(
            f"{self.device_ids[i]}: mantenimiento vencido (caducó el {self.expiry[i]:%d/%m/%Y}); "
            f"{action}"
            for i in np.flatnonzero(self.overdue(day))
        )


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
    holidays
        ``bool`` array (168,): the slice falls on one of the city's holidays.
    open_slices, open_always
        The same by opening hours alone, before maintenance (see :meth:`recounted`).
    week_of
        The reference day ("always" needs maintenance in date then).
    """

    availability: Availability
    week_start: dt.datetime
    slices: np.ndarray
    always: np.ndarray
    holidays: np.ndarray
    open_slices: np.ndarray
    open_always: np.ndarray
    week_of: dt.date

    def recounted(self, *, count_overdue: bool) -> WeeklyAvailability:
        """The same week with overdue maintenance counted or not, without evaluating the hours
        again."""
        if count_overdue == self.availability.count_overdue:
            return self
        return _masked(
            replace(self.availability, count_overdue=count_overdue),
            self.week_start,
            self.open_slices,
            self.open_always,
            self.week_of,
        )


def _zone(timezone: str) -> ZoneInfo:
    return ZoneInfo(timezone)


def local_instant(at: dt.datetime, timezone: str) -> dt.datetime:
    """``at`` in the city's time zone; an instant without a zone is taken as local time
    (:func:`geo.clock.city_instant`: a skipped hour is refused, a repeated one is its first)."""
    return city_instant(at, timezone)


def device_availability(
    devices: gpd.GeoDataFrame | Iterable[dict[str, object]],
    *,
    timezone: str,
    calendar: HolidayCalendar = NATIONAL_SPAIN,
    assume_unknown_open: bool = False,
    count_overdue: bool = False,
    reports: Mapping[str, ReportFlag] | None = None,
) -> Availability:
    """Classify devices: which may count, and which have unknown hours.

    Parameters
    ----------
    devices
        The defibrillators layer (columns ``id``, ``status``, ``verification``, ``access``,
        ``is_mobile``, ``opening_hours``, and ``pads_expiry``/``battery_expiry`` if known).
    timezone
        IANA zone opening hours are evaluated in (the city profile's).
    calendar
        The city's holidays (``PH`` in opening hours).
    assume_unknown_open
        Count devices with missing or unparseable hours as always open (optimistic bound).
    count_overdue
        Count devices whose pads or battery expired (the old count, for comparison).
    reports
        Pending citizen reports that a device is missing or broken, by device id.
    """
    frame = devices if isinstance(devices, gpd.GeoDataFrame) else gpd.GeoDataFrame(list(devices))
    ids = frame["id"].to_numpy(dtype=object)
    texts = np.array(
        [_text(value) for value in frame["opening_hours"].to_numpy(dtype=object)], dtype=object
    )
    eligible = (
        (frame["status"] == "active")
        & (frame["verification"] == "verified")
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
            city_hours(text, timezone, calendar)
        except ValueError:
            issues.append(HoursIssue(device_id, text, f"horario no interpretable: {text!r}"))
            continue
        known[index] = True
    flagged = reports or {}
    return Availability(
        device_ids=ids,
        hours=texts,
        eligible=eligible,
        known=known,
        issues=tuple(issues),
        timezone=timezone,
        calendar=calendar,
        assume_unknown_open=assume_unknown_open,
        expiry=_expiries(frame),
        reported=np.array([device_id in flagged for device_id in ids], dtype=bool),
        count_overdue=count_overdue,
    )


def _expiries(frame: gpd.GeoDataFrame) -> np.ndarray:
    columns = [name for name, _ in _EXPIRY_FIELDS if name in frame.columns]
    result = np.full(len(frame), None, dtype=object)
    for name in columns:
        for index, value in enumerate(frame[name].to_numpy(dtype=object)):
            day = _date(value)
            if day is not None and (result[index] is None or day < result[index]):
                result[index] = day
    return result


def _text(value: object) -> str | None:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None
    return str(value)


def available_at(availability: Availability, at: dt.datetime) -> np.ndarray:
    """Devices usable at the instant ``at`` (a ``bool`` array in frame order)."""
    instant = local_instant(at, availability.timezone)
    return _open_at(availability, instant) & availability.in_date(instant.date())


def _open_at(availability: Availability, instant: dt.datetime) -> np.ndarray:
    """Counted devices open by their hours at ``instant``, before maintenance."""
    result = np.zeros(len(availability.device_ids), dtype=bool)
    cache: dict[str, bool] = {}
    counted = availability.counted()
    for index, text in enumerate(availability.hours):
        if not counted[index]:
            continue
        if not availability.known[index]:
            result[index] = True  # counted without known hours: assume_unknown_open
            continue
        if text not in cache:
            cache[text] = city_hours(text, availability.timezone, availability.calendar).is_open(
                instant
            )
        result[index] = cache[text]
    return result


def available(
    availability: Availability, *, at: dt.datetime | None, reference_date: dt.date | None
) -> np.ndarray:
    """Devices usable at ``at``; with ``at=None``, those usable 24/7.

    "24/7" is judged over the 366 days from the Monday of ``reference_date``'s week, public
    holidays included, with maintenance in date on ``reference_date``.
    """
    if at is not None:
        return available_at(availability, at)
    if reference_date is None:
        msg = "available(at=None) needs the reference_date the 366 days start from"
        raise ValueError(msg)
    return weekly_availability(availability, week_of=reference_date).always


def available_both_ways(
    availability: Availability, *, at: dt.datetime | None, reference_date: dt.date | None
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`available` with overdue maintenance left out and counted, from one evaluation of
    the hours: ``(strict, lenient)``, whatever ``availability.count_overdue`` says."""
    strict, lenient = (
        replace(availability, count_overdue=False),
        replace(availability, count_overdue=True),
    )
    if at is not None:
        instant = local_instant(at, availability.timezone)
        open_ = _open_at(availability, instant)
        return open_ & strict.in_date(instant.date()), open_ & lenient.in_date(instant.date())
    if reference_date is None:
        msg = "available(at=None) needs the reference_date the 366 days start from"
        raise ValueError(msg)
    week = weekly_availability(availability, week_of=reference_date)
    return week.recounted(count_overdue=False).always, week.recounted(count_overdue=True).always


def week_start_of(day: dt.date, timezone: str) -> dt.datetime:
    """Monday 00:00 (local) of the week holding ``day``."""
    monday = day - dt.timedelta(days=day.weekday())
    return dt.datetime.combine(monday, dt.time(0, 0), tzinfo=_zone(timezone))


def weekly_availability(availability: Availability, *, week_of: dt.date) -> WeeklyAvailability:
    """Availability of every device in each of the 168 hours of the week holding ``week_of``.

    Each distinct opening-hours text is evaluated once, so the cost grows with the number of
    distinct schedules, not of devices. A slice counts a device only if its maintenance is in
    date on that slice's day; "always" needs it in date on ``week_of``.
    """
    start = week_start_of(week_of, availability.timezone)
    n = len(availability.device_ids)
    slices = np.zeros((n, HOURS_PER_WEEK), dtype=bool)
    always = np.zeros(n, dtype=bool)
    cache: dict[str, tuple[np.ndarray, bool]] = {}
    counted = availability.counted()
    for index, text in enumerate(availability.hours):
        if not counted[index]:
            continue
        if not availability.known[index]:
            slices[index] = always[index] = True  # assume_unknown_open
            continue
        if text not in cache:
            hours = city_hours(text, availability.timezone, availability.calendar)
            cache[text] = (_week_slices(hours, start), _always_open(hours, start))
        slices[index], always[index] = cache[text]
    return _masked(availability, start, slices, always, week_of)


def _masked(
    availability: Availability,
    start: dt.datetime,
    open_slices: np.ndarray,
    open_always: np.ndarray,
    week_of: dt.date,
) -> WeeklyAvailability:
    """The week's hours-only masks with maintenance applied per slice's day."""
    days = [(start + dt.timedelta(days=day)).date() for day in range(7)]
    in_date = np.repeat(np.column_stack([availability.in_date(day) for day in days]), 24, axis=1)
    holidays = np.repeat([availability.calendar.is_holiday(day) for day in days], 24)
    return WeeklyAvailability(
        availability,
        start,
        open_slices & in_date,
        open_always & availability.in_date(week_of),
        holidays.astype(bool),
        open_slices,
        open_always,
        week_of,
    )


def _week_slices(hours: CityHours, start: dt.datetime) -> np.ndarray:
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


def _always_open(hours: CityHours, start: dt.datetime) -> bool:
    """Open without a break for a year from ``start`` (a week first: most schedules close in it)."""
    for days in (7, ALWAYS_HORIZON_DAYS):
        end = start + dt.timedelta(days=days)
        if not all(state == _OPEN for _b, _f, state, _c in hours.intervals(start, end)):
            return False
    return True


def slice_label(slot: int) -> str:
    """Spanish label of an hourly slice: ``"lunes 08:00–09:00"``."""
    day, hour = divmod(slot, 24)
    return f"{WEEKDAY_NAMES[day]} {hour:02d}:00–{(hour + 1) % 24:02d}:00"


def open_state(
    text: str, at: dt.datetime, *, timezone: str, calendar: HolidayCalendar = NATIONAL_SPAIN
) -> tuple[bool, dt.datetime | None]:
    """Whether hours ``text`` are open at ``at``, and when that next changes (local time).

    The next change is ``None`` when it never does (``24/7``, or closed for good).

    Raises
    ------
    ValueError
        ``text`` is not valid opening_hours syntax.
    """
    hours = city_hours(text, timezone, calendar)
    instant = local_instant(at, timezone)
    return hours.is_open(instant), hours.next_change(instant)


def week_in_words(
    text: str,
    *,
    week_of: dt.date,
    timezone: str,
    calendar: HolidayCalendar = NATIONAL_SPAIN,
) -> str:
    """Spanish description of the hours ``text`` in the week holding ``week_of``.

    Days with the same hours are grouped: ``"lunes a viernes 08:00–20:00; sábado 09:00–14:00;
    domingo cerrado"``. It describes that actual week (holidays and seasons included), so a
    seasonal device reads ``"cerrado toda la semana"`` out of season, and a holiday that
    changes a day's hours is named apart: ``"lunes 08:00–15:00; martes 8 (festivo): cerrado;
    miércoles a viernes 08:00–15:00"``.

    Raises
    ------
    ValueError
        ``text`` is not valid opening_hours syntax.
    """
    hours = city_hours(text, timezone, calendar)
    start = week_start_of(week_of, timezone)
    if _always_open(hours, start):
        return "abierto las 24 horas, todos los días"
    days: list[tuple[str, ...]] = []
    festive: list[bool] = []
    for day in range(7):
        begin = start + dt.timedelta(days=day)  # wall-clock days, whatever the DST change
        end = begin + dt.timedelta(days=1)
        spans = _spans(hours, begin, end)
        days.append(spans)
        changed = spans != _spans(hours.ordinary, begin, end)
        festive.append(calendar.is_holiday(begin.date()) and changed)
    if not any(days):
        return "cerrado toda la semana"
    groups: list[tuple[int, int, tuple[str, ...]]] = []
    for day, same in enumerate(days):
        joins = groups and groups[-1][2] == same and groups[-1][1] == day - 1
        if joins and not festive[day] and not festive[groups[-1][0]]:
            groups[-1] = (groups[-1][0], day, same)
            continue
        groups.append((day, day, same))
    parts = []
    for first, last, group in groups:
        said = " y ".join(group) if group else "cerrado"
        if festive[first]:
            date = (start + dt.timedelta(days=first)).date()
            parts.append(f"{WEEKDAY_NAMES[first]} {date.day} (festivo): {said}")
            continue
        if first == last:
            label = WEEKDAY_NAMES[first]
        elif last == first + 1:
            label = f"{WEEKDAY_NAMES[first]} y {WEEKDAY_NAMES[last]}"
        else:
            label = f"{WEEKDAY_NAMES[first]} a {WEEKDAY_NAMES[last]}"
        parts.append(f"{label} {said}")
    return "; ".join(parts)


def _spans(
    hours: CityHours | opening_hours.OpeningHours, begin: dt.datetime, end: dt.datetime
) -> tuple[str, ...]:
    spans: list[str] = []
    for opens, closes, state, _comment in hours.intervals(begin, end):
        if state == _OPEN:
            until = "24:00" if closes >= end else closes.strftime("%H:%M")
            spans.append(f"{opens:%H:%M}–{until}")
    return tuple(spans)
