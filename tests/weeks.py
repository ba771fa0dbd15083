"""Known weeks the tests pin the city's clock to, so no answer depends on the day the suite runs.

Each instant is naive, in the city's local time (Europe/Madrid), as ``CARDIOMAPA_CLOCK_START``
reads it. Pin a test server with ``Server(..., env=clock_env(ORDINARY))``, an app in process with
``Settings(clock_start=ORDINARY)``, and a store the test writes through with
``Store.open(url, clock=clock_at(ORDINARY))`` (its stamps then agree with the app's clock).
"""

from __future__ import annotations

import datetime as dt

from geo.clock import Clock, clock_from_settings

TIMEZONE = "Europe/Madrid"

#: Monday 23 November 2026, 10:00: an ordinary week (no holiday, no change of time).
ORDINARY = dt.datetime(2026, 11, 23, 10, 0)
#: Tuesday 8 December 2026, 10:00: the Inmaculada, a national holiday (Monday 7 is Castilla y
#: León's).
HOLIDAY = dt.datetime(2026, 12, 8, 10, 0)
#: Saturday 27 March 2027, 20:00 (CET, UTC+1): the clocks go forward at 02:00 on Sunday 28.
BEFORE_SPRING_FORWARD = dt.datetime(2027, 3, 27, 20, 0)
#: Saturday 24 October 2026, 20:00 (CEST, UTC+2): the clocks go back at 03:00 on Sunday 25.
BEFORE_FALL_BACK = dt.datetime(2026, 10, 24, 20, 0)
#: Friday 1 January 2027 (a national holiday), 00:30 in the city: still 31 December in UTC
#: (23:30).
NEW_YEAR = dt.datetime(2027, 1, 1, 0, 30)


def clock_env(start: dt.datetime) -> dict[str, str]:
    """The environment that starts a ``cardiomapa`` process's clock at ``start`` (local)."""
    return {"CARDIOMAPA_CLOCK_START": start.isoformat()}


def clock_at(start: dt.datetime) -> Clock:
    """A clock that starts at ``start`` (local) now and ticks, as the app's does."""
    return clock_from_settings(start, timezone=TIMEZONE)
