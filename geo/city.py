"""The city profile: everything that makes cardiomapa about one municipality.

No city is hard-coded in the code: name, municipal boundary, metric CRS, time zone and language
come from a small JSON file (``data/city.json`` for the Palencia default). Another municipality
needs only its own layer files and its own profile.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import pyproj
import shapely
from shapely.geometry import shape
from shapely.geometry.base import BaseGeometry

from geo.errors import CityProfileError

PROFILE_FILE_NAME = "city.json"


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
    """

    name: str
    action: str
    goal: str
    start: dt.date
    end: dt.date
    region_reference: str | None = None

    @property
    def years(self) -> tuple[int, ...]:
        """Calendar years the plan spans."""
        return tuple(range(self.start.year, self.end.year + 1))


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

    def __post_init__(self) -> None:
        shapely.prepare(self.boundary)

    def today(self) -> dt.date:
        """Today's date in the city's time zone (at 23:30 UTC it may already be tomorrow)."""
        return dt.datetime.now(tz=ZoneInfo(self.timezone)).date()


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
    )


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
    return CarePlan(
        name=str(raw["name"]),
        action=str(raw["action"]),
        goal=str(raw["goal"]),
        start=start,
        end=end,
        region_reference=None if reference is None else str(reference),
    )
