"""The city profile: everything that makes cardiomapa about one municipality.

No city is hard-coded in the code: name, municipal boundary, metric CRS, time zone and language
come from a small JSON file (``data/city.json`` for the Palencia default). Another municipality
needs only its own layer files and its own profile.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import holidays
import pyproj
import shapely
from shapely.geometry import shape
from shapely.geometry.base import BaseGeometry

from geo.calendar import NATIONAL_SPAIN, HolidayCalendar, LocalHoliday
from geo.clock import Clock, local_today
from geo.errors import CityProfileError

PROFILE_FILE_NAME = "city.json"
#: Years a device's purchase is spread over when the plan does not say: an assumption of
#: cardiomapa (not a sourced figure), stated wherever a cost per life-year is shown.
DEFAULT_DEVICE_LIFETIME_YEARS = 10.0


@dataclass(frozen=True)
class CarePlan:
    """The municipal plan whose indicators cardiomapa reports (optional in a profile).

    Attributes
    ----------
    name, action, goal
        As shown in reports (Spanish).
    start, end
        First and last day of the plan; its indicators are given per calendar year in between.
    region_reference
        Id of the row of the density reference table the goal is measured against (e.g. the
        region's average), or ``None``.
    device_cost_eur
        What one new device costs to buy and install (cabinet and signage included), in euros,
        or ``None`` when unknown: then no cost per life-year is given.
    device_lifetime_years
        Years the purchase is spread over (``None``: :data:`DEFAULT_DEVICE_LIFETIME_YEARS`, an
        assumption the report states).
    device_upkeep_eur_per_year
        Yearly upkeep of one device (pads, battery, checks, cabinet), in euros.
    device_cost_source
        Where the cost figures come from (a budget, a tender, an invoice); required with a cost.
    """

    name: str
    action: str
    goal: str
    start: dt.date
    end: dt.date
    region_reference: str | None = None
    device_cost_eur: float | None = None
    device_lifetime_years: float | None = None
    device_upkeep_eur_per_year: float = 0.0
    device_cost_source: str | None = None

    @property
    def years(self) -> tuple[int, ...]:
        """Calendar years the plan spans."""
        return tuple(range(self.start.year, self.end.year + 1))

    @property
    def lifetime_years(self) -> float:
        """Years a device's purchase is spread over (the configured value or the default)."""
        if self.device_lifetime_years is None:
            return DEFAULT_DEVICE_LIFETIME_YEARS
        return self.device_lifetime_years

    @property
    def annual_cost_per_device_eur(self) -> float | None:
        """Equivalent yearly cost of one device: purchase and installation spread evenly over
        its lifetime (no discounting) plus the yearly upkeep; ``None`` without a cost."""
        if self.device_cost_eur is None:
            return None
        return self.device_cost_eur / self.lifetime_years + self.device_upkeep_eur_per_year


@dataclass(frozen=True)
class CityProfile:
    """A municipality cardiomapa works on.

    Attributes
    ----------
    name
        Municipality name, as shown to users.
    ine_code
        Official municipality code (INE, 5 digits in Spain).
    country
        ISO 3166 country code, for public holidays in opening hours.
    metric_crs
        Projected CRS used for every distance and area (e.g. ``EPSG:25830``, ETRS89 / UTM 30N).
    timezone
        IANA time zone in which opening hours are evaluated.
    language
        Language of user-facing text (``es``).
    population
        Official population, the figure layer totals are compared against.
    boundary
        Municipal boundary, EPSG:4326. Every feature of every layer must fall inside it.
    boundary_source
        Where the boundary comes from (and whether it is approximate).
    plan
        The plan whose indicators are reported, if the profile has one.
    calendar
        Public holidays: what ``PH`` means in opening hours (national, regional and local days;
        the profile's ``holidays`` section).
    """

    name: str
    ine_code: str
    country: str
    metric_crs: str
    timezone: str
    language: str
    population: int
    population_year: int
    population_source: str
    boundary: BaseGeometry
    boundary_source: str
    centre_lat: float
    centre_lon: float
    plan: CarePlan | None = None
    calendar: HolidayCalendar = NATIONAL_SPAIN

    def __post_init__(self) -> None:
        shapely.prepare(self.boundary)

    def today(self, clock: Clock) -> dt.date:
        """Today's date by ``clock`` (the one the process runs on: ``app.state.clock``, the
        CLI's clock) in the city's time zone (at 23:30 UTC it may already be tomorrow)."""
        return local_today(clock, self.timezone)


def load_city_profile(path: Path) -> CityProfile:
    """Read and check a city profile JSON file.

    Raises
    ------
    CityProfileError
        If the file is missing, is not JSON, lacks a field, names an unknown CRS or time zone, or
        its boundary is not a valid polygon.
    """
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        msg = f"No se encuentra el perfil de ciudad {path}."
        raise CityProfileError(msg) from None
    except json.JSONDecodeError as exc:
        msg = f"{path.name}, línea {exc.lineno}: el perfil de ciudad no es JSON válido ({exc.msg})."
        raise CityProfileError(msg) from None
    required = (
        "name", "ine_code", "country", "metric_crs", "timezone", "language", "population",
        "population_year", "population_source", "boundary", "boundary_source", "centre",
    )  # fmt: skip
    missing = [key for key in required if key not in raw]
    if missing:
        msg = f"{path.name}: faltan los campos {', '.join(missing)} en el perfil de ciudad."
        raise CityProfileError(msg)
    try:
        crs = pyproj.CRS.from_user_input(raw["metric_crs"])
    except pyproj.exceptions.CRSError:
        msg = f'{path.name}, campo "metric_crs": CRS desconocido {raw["metric_crs"]!r}.'
        raise CityProfileError(msg) from None
    if not crs.is_projected:
        msg = (
            f'{path.name}, campo "metric_crs": {raw["metric_crs"]} es geográfico (grados); '
            "se necesita un CRS proyectado en metros, p. ej. EPSG:25830."
        )
        raise CityProfileError(msg)
    try:
        ZoneInfo(raw["timezone"])
    except (ZoneInfoNotFoundError, ValueError):
        msg = f'{path.name}, campo "timezone": zona horaria desconocida {raw["timezone"]!r}.'
        raise CityProfileError(msg) from None
    try:
        boundary = shape(raw["boundary"])
    except (KeyError, TypeError, ValueError, AttributeError):
        msg = f'{path.name}, campo "boundary": no es una geometría GeoJSON.'
        raise CityProfileError(msg) from None
    if boundary.geom_type not in ("Polygon", "MultiPolygon") or not boundary.is_valid:
        msg = f'{path.name}, campo "boundary": debe ser un Polygon o MultiPolygon válido.'
        raise CityProfileError(msg)
    return CityProfile(
        name=str(raw["name"]),
        ine_code=str(raw["ine_code"]),
        country=str(raw["country"]),
        metric_crs=str(raw["metric_crs"]),
        timezone=str(raw["timezone"]),
        language=str(raw["language"]),
        population=int(raw["population"]),
        population_year=int(raw["population_year"]),
        population_source=str(raw["population_source"]),
        boundary=boundary,
        boundary_source=str(raw["boundary_source"]),
        centre_lat=float(raw["centre"]["lat"]),
        centre_lon=float(raw["centre"]["lon"]),
        plan=_plan(raw.get("plan"), path),
        calendar=_calendar(raw.get("holidays"), str(raw["country"]), path),
    )


def _calendar(raw: object, country: str, path: Path) -> HolidayCalendar:
    """The profile's ``holidays`` section: ``{"subdivision": "CL", "local": [{"date", "name",
    "source"}…]}``; absent, the country's national days only."""
    if raw is None:
        return HolidayCalendar(country=country)
    where = f'{path.name}, campo "holidays"'
    if not isinstance(raw, dict):
        msg = f'{where}: debe ser un objeto con "subdivision" y "local".'
        raise CityProfileError(msg)
    unknown = sorted(set(raw) - {"subdivision", "local", "note"})
    if unknown:
        msg = f"{where}: campo desconocido {unknown[0]!r}; se admite subdivision, local y note."
        raise CityProfileError(msg)
    subdivision = raw.get("subdivision")
    if subdivision is not None:
        known = _subdivisions(country)
        if str(subdivision) not in known:
            msg = (
                f"{where}: subdivisión {subdivision!r} desconocida para {country}; se admite: "
                f"{', '.join(sorted(known))}."
            )
            raise CityProfileError(msg)
    local = raw.get("local", [])
    if not isinstance(local, list):
        msg = f'{where}: "local" debe ser una lista de {{"date", "name", "source"}}.'
        raise CityProfileError(msg)
    days = []
    for index, item in enumerate(local):
        place = f"{where}, local[{index}]"
        if not isinstance(item, dict) or any(
            not (isinstance(item.get(key), str) and item[key].strip())
            for key in ("date", "name", "source")
        ):
            msg = (
                f"{place}: cada día local necesita date (AAAA-MM-DD), name y source (dónde se "
                "publicó, p. ej. el Boletín Oficial de la Provincia)."
            )
            raise CityProfileError(msg)
        try:
            day = dt.date.fromisoformat(item["date"])
        except ValueError:
            msg = f"{place}: fecha {item['date']!r} no válida; se espera AAAA-MM-DD."
            raise CityProfileError(msg) from None
        days.append(LocalHoliday(day, item["name"].strip(), item["source"].strip()))
    return HolidayCalendar(
        country=country,
        subdivision=None if subdivision is None else str(subdivision),
        local_days=tuple(sorted(days, key=lambda d: d.day)),
    )


def _subdivisions(country: str) -> frozenset[str]:
    try:
        return frozenset(holidays.country_holidays(country).subdivisions)
    except NotImplementedError:
        return frozenset()


def _plan(raw: object, path: Path) -> CarePlan | None:
    if raw is None:
        return None
    where = f'{path.name}, campo "plan"'
    if not isinstance(raw, dict):
        msg = f"{where}: debe ser un objeto con name, action, goal, start y end."
        raise CityProfileError(msg)
    missing = [key for key in ("name", "action", "goal", "start", "end") if key not in raw]
    if missing:
        msg = f"{where}: faltan {', '.join(missing)}."
        raise CityProfileError(msg)
    try:
        start, end = dt.date.fromisoformat(raw["start"]), dt.date.fromisoformat(raw["end"])
    except (TypeError, ValueError):
        msg = f"{where}: start y end deben ser fechas AAAA-MM-DD."
        raise CityProfileError(msg) from None
    if end < start:
        msg = f"{where}: end ({end}) es anterior a start ({start})."
        raise CityProfileError(msg)
    reference = raw.get("region_reference")
    costs = _plan_costs(raw, where)
    return CarePlan(
        name=str(raw["name"]),
        action=str(raw["action"]),
        goal=str(raw["goal"]),
        start=start,
        end=end,
        region_reference=None if reference is None else str(reference),
        **costs,
    )


_LIFETIME = "device_lifetime_years"
_COST_FIELDS = ("device_cost_eur", _LIFETIME, "device_upkeep_eur_per_year")


def _plan_costs(raw: dict[str, object], where: str) -> dict[str, Any]:
    """The plan's optional device costs, checked (every problem reported at once)."""
    problems = []
    values: dict[str, float | None] = dict.fromkeys(_COST_FIELDS)
    for key in _COST_FIELDS:
        value = raw.get(key)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int | float):
            problems.append(f"{key} debe ser un número de {_COST_UNITS[key]} (se leyó {value!r})")
        elif not math.isfinite(value) or value < 0 or (key == _LIFETIME and value == 0):
            bound = "mayor que 0" if key == _LIFETIME else "0 o mayor"
            problems.append(f"{key} debe ser {bound} (se leyó {value!r})")
        else:
            values[key] = float(value)
    source = raw.get("device_cost_source")
    if source is not None and not (isinstance(source, str) and source.strip()):
        problems.append("device_cost_source debe ser un texto que diga de dónde sale el coste")
    given = [key for key in (*_COST_FIELDS, "device_cost_source") if raw.get(key) is not None]
    if raw.get("device_cost_eur") is None and given:
        problems.append(
            f"{', '.join(given)} sin device_cost_eur: indique también el coste de compra e "
            "instalación de un DEA (0 si se donan)"
        )
    elif raw.get("device_cost_eur") is not None and source is None:
        problems.append(
            "device_cost_eur necesita device_cost_source: de dónde sale el coste (presupuesto, "
            "licitación, factura…)"
        )
    if problems:
        msg = f"{where}: " + "; ".join(problems) + "."
        raise CityProfileError(msg)
    return {
        "device_cost_eur": values["device_cost_eur"],
        "device_lifetime_years": values[_LIFETIME],
        "device_upkeep_eur_per_year": values["device_upkeep_eur_per_year"] or 0.0,
        "device_cost_source": source.strip() if isinstance(source, str) else None,
    }


_COST_UNITS = {
    "device_cost_eur": "euros",
    "device_lifetime_years": "años",
    "device_upkeep_eur_per_year": "euros al año",
}
