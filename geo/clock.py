"""The city's "now": one injectable clock, so no answer (and no test) depends on the day it runs.

Code that needs the current instant or the city's date takes a :class:`Clock` instead of calling
``datetime.now()``. The app and the CLI build one from the settings at the edge
(:func:`clock_from_settings`): the system clock, or, with ``CARDIOMAPA_CLOCK_START`` set, a clock
that starts at that instant when the process starts and then runs at the normal pace (a demo, or
a test server pinned to a known week).
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass, field
from typing import Protocol
from zoneinfo import ZoneInfo

from geo.errors import LocalTimeError


class Clock(Protocol):
    """Gives the current instant (timezone-aware, in UTC).

    UTC so that a duration added to it is exact: ``now() + timedelta(days=7)`` on an aware
    local time would be wall-clock arithmetic (an hour short across a change of time). Read a
    wall clock with :func:`local_now`.
    """

    def now(self) -> dt.datetime: ...


@dataclass(frozen=True)
class SystemClock:
    """The machine's clock."""

    def now(self) -> dt.datetime:
        return dt.datetime.now(tz=dt.UTC)


@dataclass(frozen=True)
class FixedClock:
    """Always the same instant (a naive ``at`` is UTC), given in UTC."""

    at: dt.datetime

    def now(self) -> dt.datetime:
        return _utc(self.at)


@dataclass(frozen=True)
class ShiftedClock:
    """Starts at ``start`` when built and then ticks with the machine (monotonic) clock."""

    start: dt.datetime
    _origin: float = field(default_factory=time.monotonic, repr=False, compare=False)

    def now(self) -> dt.datetime:
        return _utc(self.start) + dt.timedelta(seconds=time.monotonic() - self._origin)


def _utc(at: dt.datetime) -> dt.datetime:
    """``at`` in UTC (a naive ``at`` is taken as UTC)."""
    return at.astimezone(dt.UTC) if at.tzinfo is not None else at.replace(tzinfo=dt.UTC)


SYSTEM_CLOCK = SystemClock()


def local_now(clock: Clock, timezone: str) -> dt.datetime:
    """The clock's instant in the city's time zone."""
    return clock.now().astimezone(ZoneInfo(timezone))


def stored_local(at: dt.datetime, timezone: str) -> dt.datetime:
    """A stored instant (naive = UTC, as the database keeps them) in the city's time zone."""
    return _utc(at).astimezone(ZoneInfo(timezone))


def local_text(at: dt.datetime, timezone: str, *, pattern: str = "%d/%m/%Y %H:%M") -> str:
    """A stored instant (naive = UTC) as a person in the city reads it: ``01/03/2026 10:30``.

    The hour is the city's wall clock (winter or summer time as on that day), with no zone
    suffix: people read local times, never UTC (machine fields keep UTC).
    """
    return stored_local(at, timezone).strftime(pattern)


def local_today(clock: Clock, timezone: str) -> dt.date:
    """The city's date by the clock (at 23:30 UTC it may already be tomorrow in Madrid)."""
    return local_now(clock, timezone).date()


def city_instant(at: dt.datetime, timezone: str, *, field: str = "at") -> dt.datetime:
    """``at`` as an aware instant in the city's time zone: the one place local times are read.

    An instant with a zone (or an offset) is converted. One without is the city's wall-clock
    time. The hour lost when the clocks go forward (02:00-02:59 on the last Sunday of March in
    Europe/Madrid) names no instant and is refused; the hour repeated when they go back
    (02:00-02:59 on the last Sunday of October) is read as its first occurrence, still in summer
    time (``fold=0``: 02:30 is 02:30+02:00); send an offset (``+01:00``) for the second.

    The result went through UTC, so it is always a real instant (never a skipped wall time with
    the city's zone attached, which the opening-hours library refuses).

    Raises
    ------
    LocalTimeError
        ``at`` has no zone and falls in the hour the clocks skip; ``field`` names the parameter.
    """
    zone = ZoneInfo(timezone)
    if at.tzinfo is not None:
        return at.astimezone(dt.UTC).astimezone(zone)
    wall = at.replace(tzinfo=zone, fold=0)
    instant = wall.astimezone(dt.UTC).astimezone(zone)
    if instant.replace(tzinfo=None) != at.replace(fold=0):
        msg = (
            f"La hora {at:%Y-%m-%d %H:%M} no existe en {timezone}: ese día los relojes se "
            f"adelantan una hora. Indique una hora fuera del salto (p. ej. "
            f"{instant:%Y-%m-%dT%H:%M}) o un instante con zona (p. ej. "
            f"{instant.astimezone(dt.UTC):%Y-%m-%dT%H:%M}Z)."
        )
        raise LocalTimeError(msg, field=field)
    return instant


def clock_from_settings(clock_start: dt.datetime | None, *, timezone: str) -> Clock:
    """The system clock, or a :class:`ShiftedClock` from ``clock_start`` (naive = city time)."""
    if clock_start is None:
        return SYSTEM_CLOCK
    return ShiftedClock(city_instant(clock_start, timezone, field="clock_start"))
