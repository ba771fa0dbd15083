"""The city's public holidays: what ``PH`` means in a device's opening hours.

A city's calendar is the union of three lists:

- the country's national days and the region's own days (Castilla y León: Jueves Santo,
  23 April, and the Mondays the region moves a Sunday holiday to), from the PyPI package
  ``holidays`` with the subdivision named in the city profile (Palencia → ``CL``);
- the municipality's local days, listed in the city profile, each with its source (the
  ``holidays`` package has none for Spanish towns, and cardiomapa never invents them).

Pure: no files, no network. ``opening-hours-py`` alone knows only Spain's national days, so
:mod:`geo.core.availability` evaluates ``PH`` against this calendar instead.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from functools import lru_cache

import holidays


@dataclass(frozen=True)
class LocalHoliday:
    """A municipal holiday: its day, its name and where it was published (e.g. a BOP notice)."""

    day: dt.date
    name: str
    source: str


@dataclass(frozen=True)
class HolidayCalendar:
    """Public holidays of one municipality.

    Attributes
    ----------
    country
        ISO 3166 code for the national days (``None``: no national or regional days).
    subdivision
        The region's code in the ``holidays`` package (``CL`` for Castilla y León), or ``None``
        for national days only.
    local_days
        The municipality's own days, each with its source.
    """

    country: str | None = "ES"
    subdivision: str | None = None
    local_days: tuple[LocalHoliday, ...] = ()

    def days(self, year: int) -> dict[dt.date, str]:
        """Every holiday of ``year``: day → Spanish name."""
        found = dict(_official(self.country, self.subdivision, year))
        for local in self.local_days:
            if local.day.year == year:
                found[local.day] = local.name
        return found

    def name(self, day: dt.date) -> str | None:
        """The holiday's name on ``day``, or ``None`` on an ordinary day."""
        return self.days(day.year).get(day)

    def is_holiday(self, day: dt.date) -> bool:
        return self.name(day) is not None

    def between(self, first: dt.date, last: dt.date) -> list[dt.date]:
        """The holidays from ``first`` to ``last`` (both included), in order."""
        found = [
            day
            for year in range(first.year, last.year + 1)
            for day in self.days(year)
            if first <= day <= last
        ]
        return sorted(found)

    def describe(self) -> str:
        """The calendar in words (Spanish), for notes and documentation."""
        parts = []
        if self.country is not None:
            parts.append("festivos nacionales")
            if self.subdivision is not None:
                parts.append(f"autonómicos ({self.country}-{self.subdivision})")
        parts.append(f"{len(self.local_days)} locales" if self.local_days else "ningún local")
        return ", ".join(parts)


#: National days only: what a profile without a ``holidays`` section gets.
NATIONAL_SPAIN = HolidayCalendar()


@lru_cache(maxsize=256)
def _official(
    country: str | None, subdivision: str | None, year: int
) -> tuple[tuple[dt.date, str], ...]:
    if country is None:
        return ()
    days = holidays.country_holidays(country, subdiv=subdivision, years=year, language="es")
    return tuple(sorted((day, str(name)) for day, name in days.items()))
