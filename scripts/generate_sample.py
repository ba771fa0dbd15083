"""Generate the synthetic sample layers of Palencia in ``data/``.

Run ``python scripts/generate_sample.py [--out DIR]`` (``make sample`` does it for ``data/``). It
writes the five layer files that ``geo.core.layers.read_layers`` reads:

``population.geojson``
    Demand units: centroids of a regular grid laid in the profile's metric CRS (EPSG:25830) over a
    hand-drawn urban area, with residents summing exactly to the profile's population.
``ceas.geojson``
    CEAS (social-action) zones, each a union of whole synthetic census sections.
``entities.geojson``
    Members of the care cluster.
``defibrillators.geojson``
    Defibrillators (DEA/DESA) held by those members, by municipal sports sites and by others.
``cohousing.geojson``
    Senior cohousing and coliving projects.

and the training register of plan action 1.3, ``training.csv`` (not a layer: a CSV that
``cardiomapa load`` imports with :mod:`geo.services.training`).

The data are SYNTHETIC. They lean on a few real facts, each of which keeps its origin in the
record's ``source``: the 64 real census-section codes of INE's ADRH atlas, health points of the
Junta de Castilla y León register (with their registry coordinates), the municipal sports sites a
2019 press report said hold a DESA, and the senior cohousing project in the former Combonianos
college. Everything else (section geometry, who lives where, which entity holds which device,
opening hours, dates) is generated. ``data/README.md`` documents the layers and these origins.

The output is deterministic: one local ``numpy.random.Generator`` with a fixed seed, no global
random state, no network, no use of the current date, fixed key order, coordinates rounded to 6
decimals. Two runs on the same environment write byte-identical files.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import io
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyproj
import shapely
from shapely.geometry import LineString, MultiPolygon, Point, Polygon
from shapely.geometry.base import BaseGeometry

from geo.city import CityProfile, load_city_profile
from geo.core.layers import CEAS, COHOUSING, DEFIBRILLATORS, ENTITIES, POPULATION, LayerSchema

SEED = 34120
"""Seed of the one random generator (Palencia's INE municipality code)."""

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT_DIR = REPO_ROOT / "data"
CITY_PROFILE_PATH = REPO_ROOT / "data" / "city.json"

COORDINATE_DECIMALS = 6
"""Decimals kept in every output coordinate (about 0.1 m)."""

REFERENCE_DATE = dt.date(2026, 10, 1)
"""The day the sample describes: no check, installation or membership after it; some pads and
batteries expired before it and some expire within a few months of it."""

SYNTHETIC = "synthetic"
SYNTHETIC_TAGS: Mapping[str, str] = {"sample": SYNTHETIC}

# --- real facts the sample leans on ---------------------------------------------------------------

INE_SECTIONS_CSV = (
    REPO_ROOT
    / "data"
    / "reference"
    / ("palencia_34120_renta_media_secciones_2015_2016_INE_ADRH.csv")
)
"""INE, *Atlas de distribución de renta de los hogares* (ADRH) 2015-2016 for Palencia (34120): its
rows with ``level == "seccion"`` give the 64 real census-section codes (CUSEC: ``34120`` +
district (2) + section (3)). District 01 has no section 002 in that table."""


def _read_section_numbers() -> dict[str, tuple[int, ...]]:
    by_district: dict[str, list[int]] = {}
    with INE_SECTIONS_CSV.open(encoding="utf-8", newline="") as handle:
        for row in csv.DictReader(handle):
            if row["level"] == "seccion":
                code = row["code"]
                by_district.setdefault(code[5:7], []).append(int(code[7:]))
    return {district: tuple(sorted(numbers)) for district, numbers in sorted(by_district.items())}


SECTION_NUMBERS_BY_DISTRICT: Mapping[str, tuple[int, ...]] = _read_section_numbers()
"""The 64 real census sections of Palencia, section numbers by district (from the INE table)."""

JCYL_REGISTRY = "JCyL registro de centros sanitarios"

# --- synthetic geography (EPSG:4326, [lon, lat]) -------------------------------------------------

URBAN_AREA_LONLAT: tuple[tuple[float, float], ...] = (
    (-4.5450, 42.0340), (-4.5330, 42.0355), (-4.5200, 42.0330), (-4.5090, 42.0260),
    (-4.5050, 42.0160), (-4.5055, 42.0050), (-4.5080, 41.9960), (-4.5130, 41.9905),
    (-4.5250, 41.9895), (-4.5380, 41.9905), (-4.5480, 41.9920), (-4.5545, 41.9965),
    (-4.5550, 42.0060), (-4.5510, 42.0120), (-4.5460, 42.0150), (-4.5440, 42.0160),
    (-4.5448, 42.0260),
)  # fmt: skip
"""Hand-drawn outline of the built-up city: not an official boundary.

East of the river it reaches the bank north of the centre; the small western part of the city
lies across the river between about lat 41.992 and 42.015.
"""

RIVER_LONLAT: tuple[tuple[float, float], ...] = (
    (-4.5470, 42.0420), (-4.5455, 42.0300), (-4.5445, 42.0200), (-4.5440, 42.0120),
    (-4.5435, 42.0060), (-4.5450, 41.9990), (-4.5480, 41.9910), (-4.5500, 41.9850),
)  # fmt: skip
"""Approximate course of the river Carrión along the west side of the city (hand-drawn)."""

RIVER_HALF_WIDTH_M = 35.0
"""Grid cells whose centroid is this close to the river line hold nobody."""

RIVERSIDE_PARK_M = 150.0
"""Cells this close to the river are mostly riverside parks: their density is damped."""

GRID_SPACING_M = 75.0
"""Side of the demand grid cells, in metres of the metric CRS."""

DENSITY_SCALE_M = 1100.0
"""Distance from the centre over which the residential density falls by a factor e."""

NON_RESIDENTIAL_SHARE = 0.08
"""Share of grid cells drawn at random as non-residential (parks, schools, workshops)."""

NON_RESIDENTIAL_PATCHES: tuple[tuple[float, float, float], ...] = (
    (-4.5372, 42.0026, 180.0),  # hospital grounds (Hospital Río Carrión, approximate)
    (-4.5123, 41.9923, 220.0),  # Hospitalarias complex (approximate)
    (-4.5163, 41.9982, 160.0),  # stadium area (synthetic placement)
    (-4.5090, 42.0210, 250.0),  # synthetic industrial estate at the north-east edge
)
"""Patches (lon, lat, radius in metres) where nobody lives."""

SENIOR_SHARE_TARGET = 0.25
"""Expected overall share of residents aged 65 or more (Palencia is an ageing city)."""

LLOYD_ITERATIONS = 40
"""Weighted Lloyd iterations that spread section seeds by population."""

DISTRICT_CORE = "01"
"""District placed around the centre; the others are wedges around it."""

WEDGE_START_BEARINGS_DEG: tuple[float, ...] = tuple(float(b) for b in range(180, 540, 5))
"""Bearings (clockwise from north) tried, in order, for the start of the first district wedge;
the first that leaves every district in one piece is kept."""


@dataclass(frozen=True)
class Zone:
    """A synthetic CEAS zone: a press-named centre placed at a synthetic anchor."""

    slug: str
    name: str
    centre_address: str
    lon: float
    lat: float


CEAS_ZONES: tuple[Zone, ...] = (
    Zone("la-puebla", "La Puebla", "Calle de la Puebla 12", -4.5245, 42.0085),
    Zone("puentecillas", "Puentecillas", "Paseo de la Julia 3", -4.5445, 42.0035),
    Zone("san-antonio", "San Antonio", "Calle de San Antonio 20", -4.5395, 42.0185),
    Zone("san-juanillo", "San Juanillo", "Calle de San Juanillo 5", -4.5300, 42.0300),
    Zone("virgen-del-carmen", "Virgen del Carmen", "Calle Virgen del Carmen 8", -4.5150, 42.0235),
    Zone("fernandez-nieto", "Fernández Nieto", "Calle Fernández Nieto 14", -4.5115, 42.0110),
    Zone("mariano-timon", "Mariano Timón", "Calle Mariano Timón 2", -4.5170, 41.9965),
    Zone("miguel-de-unamuno", "Miguel de Unamuno", "Calle Miguel de Unamuno 9", -4.5320, 41.9960),
)
"""CEAS zone names from the press; anchors, boundaries and addresses are synthetic."""


# --- sample records -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Entity:
    """A member of the care cluster."""

    id: str
    name: str
    kind: str
    address: str | None
    member_since: str
    people_served: int | None
    lon: float
    lat: float
    source: str = SYNTHETIC


def _registry_source(registry_id: str | None, note: str = "coordenada aproximada") -> str:
    """Source of a real health point: the register, its entry, and what is synthetic about it."""
    where = f" {registry_id}" if registry_id else ""
    return f"{JCYL_REGISTRY}{where} ({note}); pertenencia al clúster sintética"


ENTITY_RECORDS: tuple[Entity, ...] = (
    Entity("ent-001", "Ayuntamiento de Palencia", "public_building", "Plaza Mayor 1",
           "2025-01-15", None, -4.52870, 42.00980),
    # Real health points: name, address and coordinate from the JCyL register (rounded to 6
    # decimals); membership dates are synthetic and people_served is unknown.
    Entity("ent-002", "Centro de Salud La Puebla y Servicio de Urgencias de Atención Primaria",
           "health_centre", "Av. Modesto Lafuente 2, 34002 Palencia", "2025-02-03", None,
           -4.5260755, 42.0068778, _registry_source("34-C231-0020")),
    Entity("ent-003", "Unidad de la Mujer Recoletas Salud", "clinic",
           "Cl. Becerro de Bengoa 12, 34002 Palencia", "2025-09-22", None,
           -4.5311647, 42.0090276, _registry_source("34-C24-0025")),
    Entity("ent-004", "Centro Médico Recoletas Salud San Antonio", "clinic",
           "Cl. San Antonio 4-5, 34005 Palencia", "2025-03-10", None,
           -4.541877, 42.015773, _registry_source("34-C24-0029")),
    Entity("ent-005", "Centro de Orientación Familiar - Diócesis de Palencia", "social_centre",
           "Cl. Diego Lainez 6, 34004 Palencia", "2025-11-04", None,
           -4.5216381, 41.9980679, _registry_source("34-C3-0158")),
    Entity("ent-006", "Hospitalarias Palencia", "hospital", "Cr. Burgos, s/n, 34004 Palencia",
           "2025-02-17", None, -4.5122664, 41.9922956,
           _registry_source("34-C3-0141", "coordenada aproximada de la UMT del complejo")),
    Entity("ent-007", "Hospital Río Carrión (Complejo Asistencial Universitario de Palencia)",
           "hospital", None, "2025-01-28", None, -4.5372164, 42.0025986,
           _registry_source(None, "vía betoboga/mi-embarazo-cyl; coordenada aproximada, dudosa")),
    # Synthetic members: invented names, plausible addresses, synthetic placement.
    Entity("ent-008", "Residencia de mayores Los Jardines", "residence",
           "Avenida Casado del Alisal 41", "2025-01-20", 124, -4.51850, 42.01400),
    Entity("ent-009", "Residencia Ribera del Carrión", "residence", "Paseo del Salón 7",
           "2025-04-07", 86, -4.54050, 42.00750),
    Entity("ent-010", "Residencia de mayores San Juanillo", "residence",
           "Avenida de Santander 60", "2025-06-16", 142, -4.52900, 42.03000),
    Entity("ent-011", "Centro de día El Otero", "day_centre", "Calle del Otero 15",
           "2025-03-03", 45, -4.52250, 42.02550),
    Entity("ent-012", "Centro de día Puentecillas", "day_centre", "Calle de la Ensenada 4",
           "2025-10-13", 32, -4.54800, 42.00450),
    Entity("ent-013", "Asociación Cuidar Juntos", "association", "Calle Mayor 112",
           "2025-05-12", 210, -4.53050, 42.01200),
    Entity("ent-014", "Asociación vecinal Virgen del Carmen", "association",
           "Calle Virgen del Carmen 30", "2026-01-19", None, -4.51350, 42.02100),
    Entity("ent-015", "Fundación Tiempo Compartido", "foundation", "Calle de Colón 18",
           "2025-02-24", 95, -4.52600, 42.01650),
    Entity("ent-016", "Fundación Acompaña", "foundation", "Calle de Don Sancho 9",
           "2026-03-02", 60, -4.53450, 42.00600),
    Entity("ent-017", "Farmacia Calle Mayor", "pharmacy", "Calle Mayor 48",
           "2025-03-17", None, -4.52950, 42.00750),
    Entity("ent-018", "Farmacia Avenida de Madrid", "pharmacy", "Avenida de Madrid 27",
           "2025-07-01", None, -4.52450, 41.99750),
    Entity("ent-019", "Farmacia San Juanillo", "pharmacy", "Calle de San Juanillo 40",
           "2026-02-09", None, -4.53300, 42.02850),
    Entity("ent-020", "Colegio público Tres Ríos", "school", "Calle de los Trigales 2",
           "2025-09-08", 380, -4.51050, 42.00800),
    Entity("ent-021", "Centro social de mayores La Puebla", "social_centre",
           "Calle de la Puebla 30", "2025-01-27", 450, -4.52350, 42.00600),
    Entity("ent-022", "Hogar de mayores El Cristo", "social_centre", "Calle del Cristo 11",
           "2026-04-20", 120, -4.55200, 41.99850),
    Entity("ent-023", "Clínica de fisioterapia Movilidad", "clinic",
           "Avenida de Cardenal Cisneros 5", "2025-12-01", None, -4.51800, 42.00550),
    Entity("ent-024", "Cuidados Carrión S.L. (ayuda a domicilio)", "company",
           "Calle de Burgos 33", "2025-05-26", 310, -4.53700, 42.01350),
)  # fmt: skip
"""The care-cluster members: seven real health points (JCyL register) and synthetic ones."""


@dataclass(frozen=True)
class Device:
    """A defibrillator of the sample.

    ``lon``/``lat`` place it; when ``None`` it is placed a few metres from its operator entity.
    """

    name: str
    location_text: str | None
    address: str | None
    access: str
    opening_hours: str | None
    indoor: bool
    level: str | None
    operator_entity_id: str | None
    status: str
    verification: str
    installed_on: str | None
    check_date: str | None
    battery_expiry: str | None
    pads_expiry: str | None
    removed_on: str | None = None
    is_mobile: bool = False
    lon: float | None = None
    lat: float | None = None
    source: str = SYNTHETIC


SPORTS_2019_SOURCE = (
    "prensa 2019: DESA en instalaciones deportivas municipales (ubicación aproximada sintética)"
)
"""Existence from a 2019 press report; coordinates, hours and dates are synthetic."""

PHARMACY_HOURS = "Mo-Fr 09:30-14:00,17:00-20:30; Sa 10:00-14:00"
OFFICE_HOURS = "Mo-Fr 08:00-15:00"
TOWN_HALL = "ent-001"

DEVICE_RECORDS: tuple[Device, ...] = (
    # Municipal sports sites reported in 2019 to hold a DESA (placement synthetic).
    Device(
        name="DESA Isla Dos Aguas (taquilla)", location_text="taquilla de entrada", address=None,
        access="yes", opening_hours="Jun 15-Sep 15 11:00-21:00", indoor=True, level="0",
        operator_entity_id=TOWN_HALL, status="active", verification="verified",
        installed_on="2017-06-01", check_date="2026-06-10", battery_expiry="2028-05-31",
        pads_expiry="2027-06-30", lon=-4.54520, lat=42.00950, source=SPORTS_2019_SOURCE,
    ),
    Device(
        name="DESA Piscina Campos Góticos", location_text="recepción de la piscina cubierta",
        address=None, access="yes", opening_hours="Mo-Fr 07:30-22:00; Sa,Su 09:00-14:00; PH off",
        indoor=True, level="0", operator_entity_id=TOWN_HALL, status="active",
        verification="verified", installed_on="2016-10-03", check_date="2026-05-20",
        battery_expiry="2027-10-31", pads_expiry="2026-12-31", lon=-4.52150, lat=42.01950,
        source=SPORTS_2019_SOURCE,
    ),
    Device(
        name="DESA Piscina Santa Marina", location_text="caseta del socorrista", address=None,
        access="yes", opening_hours="Jun 15-Sep 10 11:00-20:30", indoor=True, level="0",
        operator_entity_id=TOWN_HALL, status="active", verification="verified",
        installed_on="2018-06-15", check_date="2026-06-12", battery_expiry="2029-03-31",
        pads_expiry="2027-09-30", lon=-4.53500, lat=41.99750, source=SPORTS_2019_SOURCE,
    ),
    Device(
        name="DESA Nueva Balastera (tribuna)",
        location_text="pasillo de tribuna, junto al botiquín", address=None, access="permissive",
        opening_hours="Mo-Fr 16:00-21:00; Sa,Su 10:00-14:00,16:00-20:00", indoor=True, level="0",
        operator_entity_id=TOWN_HALL, status="active", verification="verified",
        installed_on="2016-09-01", check_date="2026-02-18", battery_expiry="2028-09-30",
        pads_expiry="2026-08-31", lon=-4.51650, lat=41.99850, source=SPORTS_2019_SOURCE,
    ),
    Device(
        name="DESA Nueva Balastera (vestuarios)",
        location_text="zona de vestuarios, junto a enfermería", address=None, access="customers",
        opening_hours="Mo-Fr 16:00-21:00; Sa,Su 10:00-14:00,16:00-20:00", indoor=True, level="-1",
        operator_entity_id=TOWN_HALL, status="active", verification="verified",
        installed_on="2016-09-01", check_date="2026-02-18", battery_expiry="2028-09-30",
        pads_expiry="2027-03-31", lon=-4.51600, lat=41.99790, source=SPORTS_2019_SOURCE,
    ),
    Device(
        name="DESA Pabellón Municipal de Deportes", location_text="vestíbulo, junto a conserjería",
        address=None, access="yes",
        opening_hours="Mo-Fr 08:00-23:00; Sa,Su 09:00-14:00,16:00-21:00", indoor=True, level="0",
        operator_entity_id=TOWN_HALL, status="active", verification="verified",
        installed_on="2015-11-20", check_date="2026-09-03", battery_expiry="2030-01-31",
        pads_expiry="2028-01-31", lon=-4.53180, lat=42.00350, source=SPORTS_2019_SOURCE,
    ),
    Device(
        name="DESA Pista de atletismo Mariano Haro", location_text="oficina de la instalación",
        address=None, access="yes", opening_hours="Mo-Fr 08:00-22:00; Sa 09:00-14:00", indoor=True,
        level="0", operator_entity_id=TOWN_HALL, status="active", verification="verified",
        installed_on="2017-03-01", check_date="2025-11-14", battery_expiry="2027-12-31",
        pads_expiry="2026-12-15", lon=-4.51250, lat=42.00300, source=SPORTS_2019_SOURCE,
    ),
    Device(
        name="DESA Pabellón San Telmo", location_text="vestíbulo de entrada", address=None,
        access="yes", opening_hours="Mo-Fr 09:00-22:00; Sa,Su 09:00-14:00", indoor=True, level="0",
        operator_entity_id=TOWN_HALL, status="active", verification="verified",
        installed_on="2018-01-15", check_date="2026-04-08", battery_expiry="2029-06-30",
        pads_expiry="2027-11-30", lon=-4.53700, lat=42.02350, source=SPORTS_2019_SOURCE,
    ),
    Device(
        name="DESA Pabellón Diego Cosgaya", location_text="conserjería", address=None,
        access="yes", opening_hours="Mo-Fr 16:00-22:00; Sa 09:00-14:00", indoor=True, level="0",
        operator_entity_id=TOWN_HALL, status="active", verification="verified",
        installed_on="2018-01-15", check_date="2026-03-25", battery_expiry="2029-06-30",
        pads_expiry="2027-05-31", lon=-4.52000, lat=42.01000, source=SPORTS_2019_SOURCE,
    ),
    Device(
        name="DESA Instalaciones deportivas La Ensenada",
        location_text="caseta de control de acceso", address=None, access="yes",
        opening_hours="Mo-Fr 09:00-21:00; Sa 10:00-14:00", indoor=True, level="0",
        operator_entity_id=TOWN_HALL, status="active", verification="verified",
        installed_on="2017-05-02", check_date="2026-07-01", battery_expiry="2028-02-29",
        pads_expiry="2027-01-31", lon=-4.54900, lat=42.00100, source=SPORTS_2019_SOURCE,
    ),
    # Synthetic: a mobile unit of the town hall.
    Device(
        name="DEA móvil Policía Local (patrulla)",
        location_text="maletero del vehículo de patrulla", address=None, access="yes",
        opening_hours="24/7", indoor=False, level=None, operator_entity_id=TOWN_HALL,
        status="active", verification="verified", installed_on="2021-04-12",
        check_date="2026-08-20", battery_expiry="2029-04-30", pads_expiry="2027-04-30",
        is_mobile=True, lon=-4.52700, lat=42.01100,
    ),
    # Synthetic: devices of member entities (placed next to the entity).
    Device(
        name="DEA Centro de Salud La Puebla (exterior)",
        location_text="cabina exterior junto a la entrada", address="Av. Modesto Lafuente 2",
        access="yes", opening_hours="24/7", indoor=False, level="0", operator_entity_id="ent-002",
        status="active", verification="verified", installed_on="2019-05-20",
        check_date="2026-09-15", battery_expiry="2029-05-31", pads_expiry="2027-08-31",
    ),
    Device(
        name="DEA Recoletas Salud San Antonio", location_text="vestíbulo, junto a recepción",
        address="Cl. San Antonio 4-5", access="customers",
        opening_hours="Mo-Fr 08:00-21:00; Sa 09:00-14:00", indoor=True, level="0",
        operator_entity_id="ent-004", status="active", verification="verified",
        installed_on="2022-02-01", check_date="2026-07-30", battery_expiry="2030-02-28",
        pads_expiry="2027-02-28",
    ),
    Device(
        name="DEA Hospitalarias Palencia", location_text="control de enfermería de la planta baja",
        address="Cr. Burgos, s/n", access="customers", opening_hours="24/7", indoor=True,
        level="0", operator_entity_id="ent-006", status="active", verification="verified",
        installed_on="2020-10-05", check_date="2026-05-11", battery_expiry="2028-10-31",
        pads_expiry="2026-10-31",
    ),
    Device(
        name="DEA Hospital Río Carrión (urgencias)",
        location_text="urgencias, junto al control de enfermería", address=None, access="yes",
        opening_hours="24/7", indoor=True, level="0", operator_entity_id="ent-007",
        status="active", verification="verified", installed_on="2018-03-12",
        check_date="2026-09-28", battery_expiry="2028-03-31", pads_expiry="2027-03-31",
    ),
    Device(
        name="DEA Residencia Los Jardines", location_text="sala de enfermería",
        address="Avenida Casado del Alisal 41", access="customers", opening_hours="24/7",
        indoor=True, level="0", operator_entity_id="ent-008", status="active",
        verification="verified", installed_on="2020-01-13", check_date="2026-06-02",
        battery_expiry="2028-01-31", pads_expiry="2026-09-30",
    ),
    Device(
        name="DEA Residencia Ribera del Carrión",
        location_text="pasillo de la primera planta, junto al ascensor",
        address="Paseo del Salón 7", access="private", opening_hours="24/7", indoor=True,
        level="1", operator_entity_id="ent-009", status="active", verification="verified",
        installed_on="2023-06-19", check_date="2026-01-22", battery_expiry="2031-06-30",
        pads_expiry="2028-06-30",
    ),
    Device(
        name="DEA Residencia San Juanillo", location_text="recepción",
        address="Avenida de Santander 60", access="customers", opening_hours="24/7", indoor=True,
        level="0", operator_entity_id="ent-010", status="active", verification="verified",
        installed_on="2025-05-05", check_date="2026-05-05", battery_expiry="2030-05-31",
        pads_expiry="2027-05-31",
    ),
    Device(
        name="DEA Centro de día El Otero", location_text="sala común, junto a la puerta",
        address="Calle del Otero 15", access="customers",
        opening_hours="Mo-Fr 09:00-18:00; PH off", indoor=True, level="0",
        operator_entity_id="ent-011", status="active", verification="verified",
        installed_on="2024-02-26", check_date="2026-02-26", battery_expiry="2031-02-28",
        pads_expiry="2027-02-28",
    ),
    Device(
        name="DEA Fundación Tiempo Compartido", location_text="vestíbulo, junto a recepción",
        address="Calle de Colón 18", access="permissive",
        opening_hours="Mo-Fr 09:00-14:00,16:00-19:00", indoor=True, level="0",
        operator_entity_id="ent-015", status="out_of_service", verification="verified",
        installed_on="2019-09-16", check_date="2026-07-14", battery_expiry="2026-05-31",
        pads_expiry="2025-12-31",
    ),
    Device(
        name="DEA Farmacia Calle Mayor", location_text="detrás del mostrador",
        address="Calle Mayor 48", access="yes", opening_hours=PHARMACY_HOURS, indoor=True,
        level="0", operator_entity_id="ent-017", status="active", verification="verified",
        installed_on="2022-11-07", check_date="2026-04-15", battery_expiry="2029-11-30",
        pads_expiry="2027-11-30",
    ),
    Device(
        name="DEA Farmacia Avenida de Madrid", location_text="junto a la entrada",
        address="Avenida de Madrid 27", access="yes", opening_hours=PHARMACY_HOURS, indoor=True,
        level="0", operator_entity_id="ent-018", status="active", verification="verified",
        installed_on="2025-10-20", check_date="2026-08-04", battery_expiry="2030-10-31",
        pads_expiry="2028-10-31",
    ),
    Device(
        name="DEA Colegio público Tres Ríos (exterior)",
        location_text="cabina exterior en la fachada principal", address="Calle de los Trigales 2",
        access="yes", opening_hours="24/7", indoor=False, level="0", operator_entity_id="ent-020",
        status="active", verification="verified", installed_on="2024-09-09",
        check_date="2026-09-09", battery_expiry="2029-09-30", pads_expiry="2026-11-30",
    ),
    Device(
        name="DEA Centro social de mayores La Puebla",
        location_text="vestíbulo, junto a conserjería", address="Calle de la Puebla 30",
        access="permissive", opening_hours="Mo-Fr 10:00-14:00,16:30-20:30; Sa 10:00-14:00",
        indoor=True, level="0", operator_entity_id="ent-021", status="active",
        verification="verified", installed_on="2023-03-13", check_date="2026-03-13",
        battery_expiry="2030-03-31", pads_expiry="2027-03-31",
    ),
    Device(
        name="DEA Clínica de fisioterapia Movilidad", location_text="sala de espera",
        address="Avenida de Cardenal Cisneros 5", access="customers",
        opening_hours="Mo-Fr 09:00-14:00,16:00-20:00", indoor=True, level="1",
        operator_entity_id="ent-023", status="active", verification="pending",
        installed_on="2026-02-16", check_date="2026-02-16", battery_expiry="2031-02-28",
        pads_expiry="2028-02-29",
    ),
    Device(
        name="DEA Cuidados Carrión (oficina)", location_text="oficina, junto a la puerta",
        address="Calle de Burgos 33", access="private", opening_hours=OFFICE_HOURS, indoor=True,
        level="0", operator_entity_id="ent-024", status="active", verification="verified",
        installed_on="2021-06-07", check_date="2025-12-10", battery_expiry="2028-06-30",
        pads_expiry="2026-06-30",
    ),
    # Synthetic: devices of non-members.
    Device(
        name="DEA exterior Calle Mayor (cabina pública)",
        location_text="cabina exterior en la fachada", address=None, access="yes",
        opening_hours="24/7", indoor=False, level="0", operator_entity_id=None, status="active",
        verification="pending", installed_on="2026-04-27", check_date="2026-04-27",
        battery_expiry="2031-04-30", pads_expiry="2028-04-30", lon=-4.52910, lat=42.01180,
    ),
    Device(
        name="DEA sucursal bancaria (retirado)", location_text="vestíbulo de cajeros",
        address=None, access="customers", opening_hours="Mo-Fr 08:30-14:00", indoor=True,
        level="0", operator_entity_id=None, status="removed", verification="verified",
        installed_on="2018-05-14", check_date="2025-06-30", battery_expiry="2026-05-31",
        pads_expiry="2025-05-31", removed_on="2025-06-30", lon=-4.52760, lat=42.00880,
    ),
    Device(
        name="DEA gimnasio (aviso ciudadano no confirmado)",
        location_text="recepción del gimnasio", address=None, access="customers",
        opening_hours="Mo-Fr 07:00-22:00; Sa 09:00-14:00", indoor=True, level="0",
        operator_entity_id=None, status="active", verification="rejected", installed_on=None,
        check_date=None, battery_expiry=None, pads_expiry=None, lon=-4.52000, lat=42.01600,
    ),
)  # fmt: skip
"""The defibrillators, in output order (ids ``dea-001``... follow this order)."""


@dataclass(frozen=True)
class Cohousing:
    """A cohousing or coliving project."""

    id: str
    name: str
    status: str
    address: str | None
    dwellings: int | None
    residents: int | None
    lon: float
    lat: float
    source: str = SYNTHETIC


COHOUSING_RECORDS: tuple[Cohousing, ...] = (
    Cohousing("coh-001", "Cohousing sénior en el antiguo colegio de los Combonianos", "planned",
              None, 32, None, -4.53350, 42.03300,
              "prensa: proyecto de cohousing sénior en el antiguo colegio de los Combonianos, "
              "31-32 viviendas (ubicación aproximada sintética)"),
    Cohousing("coh-002", "Coliving intergeneracional del centro", "idea", "Calle Mayor 150",
              None, None, -4.53000, 42.01400),
    Cohousing("coh-003", "Vivienda colaborativa Ribera", "planned", "Paseo de la Julia 21",
              12, 20, -4.54600, 42.00200),
    Cohousing("coh-004", "Coliving sénior Virgen del Carmen", "idea", None, 8, None,
              -4.51500, 42.02650),
)  # fmt: skip
"""Cohousing projects: one from the press (Combonianos), the rest synthetic."""


@dataclass(frozen=True)
class Training:
    """A training action in basic life support (SVB) and defibrillator (DEA) use.

    ``entity_id`` is ``None`` for open sessions no cluster member organised or hosted.
    """

    id: str
    held_on: str
    entity_id: str | None
    place: str
    kind: str
    people_trained: int
    trainer: str | None
    notes: str = "sintético"
    source: str = SYNTHETIC


INSTRUCTOR = "Instructor acreditado en SVB y DEA"
NURSES = "Enfermería de atención primaria"

TRAINING_RECORDS: tuple[Training, ...] = (
    Training("syn-f-001", "2025-02-18", "ent-008",
             "Residencia de mayores Los Jardines, sala polivalente", "bls_aed", 14, INSTRUCTOR),
    Training("syn-f-002", "2025-03-11", "ent-001", "Ayuntamiento de Palencia, salón de actos",
             "bls_aed", 22, INSTRUCTOR, "sintético; personal municipal"),
    Training("syn-f-003", "2025-04-08", "ent-021", "Centro social de mayores La Puebla", "aed",
             18, NURSES),
    Training("syn-f-004", "2025-06-10", None, "Pabellón Municipal de Deportes", "bls_aed", 16,
             INSTRUCTOR, "sintético; sesión abierta a clubes deportivos"),
    Training("syn-f-005", "2025-09-23", "ent-013", "Asociación Cuidar Juntos, Calle Mayor 112",
             "bls_aed", 12, INSTRUCTOR),
    Training("syn-f-006", "2025-10-07", "ent-020", "Colegio público Tres Ríos, gimnasio", "bls",
             25, NURSES, "sintético; profesorado"),
    Training("syn-f-007", "2025-10-16", "ent-011", "Centro de día El Otero", "aed", 9, None),
    Training("syn-f-008", "2025-11-13", "ent-024", "Cuidados Carrión S.L., Calle de Burgos 33",
             "bls_aed", 20, INSTRUCTOR, "sintético; auxiliares de ayuda a domicilio"),
    Training("syn-f-009", "2026-02-17", "ent-008",
             "Residencia de mayores Los Jardines, sala polivalente", "refresher", 13, INSTRUCTOR),
    Training("syn-f-010", "2026-03-24", "ent-017", "Farmacia Calle Mayor", "aed", 6, NURSES),
    Training("syn-f-011", "2026-04-21", "ent-014",
             "Asociación vecinal Virgen del Carmen, local social", "bls", 24, NURSES),
    Training("syn-f-012", "2026-05-19", "ent-016", "Fundación Acompaña, Calle de Don Sancho 9",
             "bls_aed", 15, INSTRUCTOR),
    Training("syn-f-013", "2026-06-09", "ent-022", "Hogar de mayores El Cristo", "aed", 17,
             NURSES),
    Training("syn-f-014", "2026-09-15", "ent-001", "Ayuntamiento de Palencia, salón de actos",
             "refresher", 19, INSTRUCTOR, "sintético; personal municipal"),
    Training("syn-f-015", "2026-09-26", None, "Plaza Mayor, carpa de la jornada del corazón",
             "aed", 30, NURSES, "sintético; demostración abierta al público"),
)  # fmt: skip
"""The training register of plan action 1.3, all synthetic: actions held between February 2025
and September 2026, each at or after its entity joined the cluster."""

TRAINING_FILE = "training.csv"
TRAINING_COLUMNS = (
    "id", "held_on", "entity_id", "place", "kind", "people_trained", "trainer", "notes", "source",
)  # fmt: skip

DEVICE_OFFSET_M = (4.0, 14.0)
"""A device held by an entity is placed this far (min, max metres) from the entity's point."""

PHONE_PREFIX = "979 000 "
"""Fake numbers in Palencia's area code, ``979 000 1xx``; only devices with an operator get one."""


# --- projection helpers -------------------------------------------------------------------------


@dataclass(frozen=True)
class Projection:
    """Transformers between EPSG:4326 (lon, lat) and the profile's metric CRS."""

    to_metric: pyproj.Transformer
    to_lonlat: pyproj.Transformer

    @classmethod
    def for_city(cls, city: CityProfile) -> Projection:
        """Build the pair for the city's ``metric_crs``."""
        return cls(
            to_metric=pyproj.Transformer.from_crs("EPSG:4326", city.metric_crs, always_xy=True),
            to_lonlat=pyproj.Transformer.from_crs(city.metric_crs, "EPSG:4326", always_xy=True),
        )

    def metric_xy(self, lon: float, lat: float) -> tuple[float, float]:
        """Project one lon/lat point to metric x/y (metres)."""
        x, y = self.to_metric.transform(lon, lat)
        return float(x), float(y)

    def geometry_to_metric(self, geom: BaseGeometry) -> BaseGeometry:
        """Project a lon/lat geometry to the metric CRS."""
        return shapely.transform(geom, lambda xy: _stack(self.to_metric.transform(*xy.T)))

    def geometry_to_lonlat(self, geom: BaseGeometry) -> BaseGeometry:
        """Project a metric geometry to lon/lat (full precision)."""
        return shapely.transform(geom, lambda xy: _stack(self.to_lonlat.transform(*xy.T)))

    def points_to_lonlat(self, xy: np.ndarray) -> np.ndarray:
        """Project an ``(n, 2)`` array of metric points to rounded lon/lat."""
        lon, lat = self.to_lonlat.transform(xy[:, 0], xy[:, 1])
        return np.round(_stack((lon, lat)), COORDINATE_DECIMALS)


def _stack(columns: Sequence[Any]) -> np.ndarray:
    return np.column_stack([np.asarray(c, dtype=float) for c in columns])


# --- census sections and CEAS zones -------------------------------------------------------------


def section_codes() -> tuple[str, ...]:
    """The 64 real census-section codes (CUSEC) of Palencia, sorted."""
    return tuple(
        f"34120{district}{number:03d}"
        for district, numbers in sorted(SECTION_NUMBERS_BY_DISTRICT.items())
        for number in numbers
    )


def urban_area(projection: Projection) -> Polygon:
    """The hand-drawn built-up area, in the metric CRS."""
    polygon = projection.geometry_to_metric(Polygon(URBAN_AREA_LONLAT))
    if not isinstance(polygon, Polygon) or not polygon.is_valid:
        msg = "URBAN_AREA_LONLAT must describe one valid polygon"
        raise ValueError(msg)
    return polygon


def river(projection: Projection) -> LineString:
    """The hand-drawn river Carrión, in the metric CRS."""
    line = projection.geometry_to_metric(LineString(RIVER_LONLAT))
    if not isinstance(line, LineString):
        msg = "RIVER_LONLAT must describe one line"
        raise TypeError(msg)
    return line


def split_by_river(area: Polygon, river_line: LineString) -> tuple[BaseGeometry, BaseGeometry]:
    """The parts of ``area`` east and west of the river (metric CRS).

    The river line must cross the whole area from north to south.
    """
    coords = list(river_line.coords)
    far_east_m = area.bounds[2] + 10_000.0
    east_side = Polygon([*coords, (far_east_m, coords[-1][1]), (far_east_m, coords[0][1])])
    if not east_side.is_valid:
        msg = "the river line must run from north to south without crossing itself"
        raise ValueError(msg)
    return shapely.intersection(area, east_side), shapely.difference(area, east_side)


def demand_grid(area: Polygon, river_line: LineString, *, spacing_m: float) -> np.ndarray:
    """Centroids of the grid cells inside ``area`` and off the river.

    Returns
    -------
    numpy.ndarray
        ``(n, 2)`` metric x/y, ordered north to south, then west to east. Cells are aligned to
        multiples of ``spacing_m`` in the metric CRS.
    """
    min_x, min_y, max_x, max_y = area.bounds
    xs = (np.arange(math.floor(min_x / spacing_m), math.ceil(max_x / spacing_m)) + 0.5) * spacing_m
    ys = (np.arange(math.floor(min_y / spacing_m), math.ceil(max_y / spacing_m)) + 0.5) * spacing_m
    grid_x, grid_y = np.meshgrid(xs, ys[::-1])
    candidates = np.column_stack([grid_x.ravel(), grid_y.ravel()])
    points = shapely.points(candidates)
    keep = shapely.contains_xy(area, candidates[:, 0], candidates[:, 1])
    keep &= shapely.distance(river_line, points) > RIVER_HALF_WIDTH_M
    return candidates[keep]


def residential_weights(
    xy: np.ndarray,
    *,
    centre_xy: tuple[float, float],
    river_line: LineString,
    patches_xy: Sequence[tuple[float, float, float]],
    rng: np.random.Generator,
) -> np.ndarray:
    """Relative number of residents in each grid cell (0 for non-residential cells).

    Density decays with the distance to the centre, is damped along the riverside parks, is zero
    in the non-residential patches and in a random share of cells, and carries log-normal noise.
    """
    distance_m = np.hypot(xy[:, 0] - centre_xy[0], xy[:, 1] - centre_xy[1])
    weights = 0.12 + np.exp(-distance_m / DENSITY_SCALE_M)
    weights *= rng.lognormal(mean=0.0, sigma=0.45, size=len(xy))
    river_m = shapely.distance(river_line, shapely.points(xy))
    weights[river_m < RIVERSIDE_PARK_M] *= 0.3
    for x, y, radius_m in patches_xy:
        weights[np.hypot(xy[:, 0] - x, xy[:, 1] - y) < radius_m] = 0.0
    weights[rng.random(len(xy)) < NON_RESIDENTIAL_SHARE] = 0.0
    return weights


def nearest(points: np.ndarray, sites: np.ndarray) -> np.ndarray:
    """Index of the nearest site for each point (ties go to the lowest index)."""
    d2 = ((points[:, None, :] - sites[None, :, :]) ** 2).sum(axis=2)
    return np.argmin(d2, axis=1)


def section_seeds(
    xy: np.ndarray, weights: np.ndarray, count: int, *, rng: np.random.Generator
) -> np.ndarray:
    """Seeds of ``count`` sections spread by population (weighted Lloyd iterations).

    Like real census sections, the cells end up smaller where people live closer together.
    """
    start = rng.choice(len(xy), size=count, replace=False, p=weights / weights.sum())
    seeds = xy[np.sort(start)].copy()
    for _ in range(LLOYD_ITERATIONS):
        owner = nearest(xy, seeds)
        for k in range(count):
            mine = owner == k
            total = weights[mine].sum()
            if total > 0:
                seeds[k] = (xy[mine] * weights[mine, None]).sum(axis=0) / total
    return seeds


def assign_section_codes(
    seeds: np.ndarray, centre_xy: tuple[float, float], *, start_bearing_deg: float
) -> list[str]:
    """Give each seed a real section code, districts grouped in space.

    The district ``DISTRICT_CORE`` takes the seeds nearest the centre; the other districts take
    consecutive wedges of the remaining seeds by bearing around the centre, starting at
    ``start_bearing_deg``. Within a district, section numbers follow the bearing.
    """
    dx, dy = seeds[:, 0] - centre_xy[0], seeds[:, 1] - centre_xy[1]
    bearing = (np.degrees(np.arctan2(dx, dy)) - start_bearing_deg) % 360.0
    by_distance = np.argsort(np.hypot(dx, dy), kind="stable")
    core_size = len(SECTION_NUMBERS_BY_DISTRICT[DISTRICT_CORE])
    core = by_distance[:core_size]
    rest = by_distance[core_size:]
    rest = rest[np.argsort(bearing[rest], kind="stable")]
    codes = [""] * len(seeds)
    groups = {DISTRICT_CORE: core[np.argsort(bearing[core], kind="stable")]}
    start = 0
    for district, numbers in sorted(SECTION_NUMBERS_BY_DISTRICT.items()):
        if district == DISTRICT_CORE:
            continue
        groups[district] = rest[start : start + len(numbers)]
        start += len(numbers)
    for district, members in groups.items():
        for seed_index, number in zip(members, SECTION_NUMBERS_BY_DISTRICT[district], strict=True):
            codes[seed_index] = f"34120{district}{number:03d}"
    return codes


def district_pieces(codes: Sequence[str], cells: Sequence[BaseGeometry]) -> int:
    """Total number of separate pieces the districts form (7 when each is in one piece)."""
    pieces = 0
    for district in SECTION_NUMBERS_BY_DISTRICT:
        members = [cell for code, cell in zip(codes, cells, strict=True) if code[5:7] == district]
        union = shapely.union_all(members, grid_size=0.01)
        pieces += shapely.get_num_geometries(union)
    return pieces


def contiguous_section_codes(
    seeds: np.ndarray, cells: Sequence[BaseGeometry], centre_xy: tuple[float, float]
) -> list[str]:
    """Section codes from the first wedge start that keeps every district in one piece.

    Falls back to the start with the fewest pieces, so the result is always defined.
    """
    best: tuple[int, list[str]] | None = None
    for start in WEDGE_START_BEARINGS_DEG:
        codes = assign_section_codes(seeds, centre_xy, start_bearing_deg=start)
        pieces = district_pieces(codes, cells)
        if pieces == len(SECTION_NUMBERS_BY_DISTRICT):
            return codes
        if best is None or pieces < best[0]:
            best = (pieces, codes)
    assert best is not None
    return best[1]


def section_cells(seeds: np.ndarray, area: BaseGeometry) -> list[BaseGeometry]:
    """Voronoi cells of the seeds clipped to the area, in seed order (metric CRS)."""
    diagram = shapely.voronoi_polygons(
        shapely.multipoints(seeds), extend_to=area.buffer(1000.0), ordered=True
    )
    cells = [shapely.intersection(cell, area) for cell in shapely.get_parts(diagram)]
    for seed, cell in zip(seeds, cells, strict=True):
        if not cell.covers(Point(seed)):
            msg = f"the Voronoi cell of seed {seed} does not hold it"
            raise RuntimeError(msg)
    return cells


@dataclass(frozen=True)
class SectionMap:
    """Synthetic census sections with real codes, in EPSG:4326, and the CEAS zone of each."""

    codes: tuple[str, ...]
    polygons: tuple[BaseGeometry, ...]
    zone_of: tuple[int, ...]


def build_sections(
    xy: np.ndarray,
    weights: np.ndarray,
    banks: Sequence[BaseGeometry],
    *,
    projection: Projection,
    centre_xy: tuple[float, float],
    rng: np.random.Generator,
) -> SectionMap:
    """Draw the 64 sections, give them real codes and assign each to its nearest CEAS anchor.

    Sections never cross the river: each bank gets a number of sections proportional to its
    residential weight and is tessellated on its own.

    Returns
    -------
    SectionMap
        Sections sorted by code, polygons in EPSG:4326 snapped to the output precision.
    """
    count = len(section_codes())
    bank_of = np.full(len(xy), -1)
    for index, bank in enumerate(banks):
        bank_of[shapely.contains_xy(bank, xy[:, 0], xy[:, 1])] = index
    bank_weights = np.array([weights[bank_of == index].sum() for index in range(len(banks))])
    per_bank = allocate_exactly(bank_weights, count)
    if (per_bank < 2).any():
        msg = f"every river bank needs two sections or more, got {per_bank.tolist()}"
        raise RuntimeError(msg)
    seeds_by_bank, metric_cells = [], []
    for index, bank in enumerate(banks):
        mine = bank_of == index
        seeds = section_seeds(xy[mine], weights[mine], int(per_bank[index]), rng=rng)
        seeds_by_bank.append(seeds)
        metric_cells.extend(section_cells(seeds, bank))
    seeds = np.vstack(seeds_by_bank)
    codes = contiguous_section_codes(seeds, metric_cells, centre_xy)
    cells = snapped_coverage([projection.geometry_to_lonlat(cell) for cell in metric_cells])
    anchors = np.array([projection.metric_xy(zone.lon, zone.lat) for zone in CEAS_ZONES])
    zone_of = nearest(seeds, anchors)
    order = sorted(range(count), key=lambda i: codes[i])
    return SectionMap(
        codes=tuple(codes[i] for i in order),
        polygons=tuple(cells[i] for i in order),
        zone_of=tuple(int(zone_of[i]) for i in order),
    )


def snapped_coverage(cells: Sequence[BaseGeometry]) -> list[BaseGeometry]:
    """Snap a tessellation to the output precision without opening gaps or overlaps.

    Rounding each polygon on its own would move a vertex that only one of two neighbours has (where
    a Voronoi edge meets the river bank, say) and leave slivers of several m² between them. Instead
    every boundary is noded once on the ``10**-COORDINATE_DECIMALS`` grid, the noded lines are
    polygonized into faces, and each face goes back to the cell it overlaps most; neighbours then
    share exactly the same edges.

    Parameters
    ----------
    cells
        Polygons in EPSG:4326 that tile an area without overlaps.

    Returns
    -------
    list of shapely geometry
        The cells in the same order, every vertex on the output grid.
    """
    grid = 10.0**-COORDINATE_DECIMALS
    lines = shapely.union_all([shapely.boundary(cell) for cell in cells], grid_size=grid)
    faces = shapely.get_parts(shapely.polygonize(shapely.get_parts(lines)))
    owner = [int(np.argmax(shapely.area(shapely.intersection(face, cells)))) for face in faces]
    snapped = []
    for index, cell in enumerate(cells):
        mine = [face for face, k in zip(faces, owner, strict=True) if k == index]
        if not mine:
            msg = f"cell {index} vanished when snapped to {grid} degrees"
            raise RuntimeError(msg)
        union = shapely.coverage_union_all(mine)
        if not union.is_valid or abs(union.area - cell.area) > 1e-3 * cell.area:
            msg = f"cell {index} changed shape when snapped to {grid} degrees"
            raise RuntimeError(msg)
        snapped.append(union)
    return snapped


def zone_geometries(sections: SectionMap) -> list[BaseGeometry]:
    """Each CEAS zone as the union of its (already snapped) sections, in EPSG:4326."""
    zones = []
    for index in range(len(CEAS_ZONES)):
        parts = [p for p, z in zip(sections.polygons, sections.zone_of, strict=True) if z == index]
        if not parts:
            msg = f"CEAS zone {CEAS_ZONES[index].slug} got no section; move its anchor."
            raise RuntimeError(msg)
        zones.append(shapely.coverage_union_all(parts))
    return zones


def locate(points: np.ndarray, polygons: Sequence[BaseGeometry]) -> np.ndarray:
    """Index of the one polygon covering each lon/lat point, or -1 if none or several do."""
    tree = shapely.STRtree(list(polygons))
    point_index, polygon_index = tree.query(shapely.points(points), predicate="covered_by")
    hits = np.bincount(point_index, minlength=len(points))
    located = np.full(len(points), -1)
    unique = hits[point_index] == 1
    located[point_index[unique]] = polygon_index[unique]
    return located


# --- population ---------------------------------------------------------------------------------


def allocate_exactly(weights: np.ndarray, total: int) -> np.ndarray:
    """Integer shares of ``total`` proportional to ``weights`` (largest remainder method)."""
    quota = weights / weights.sum() * total
    counts = np.floor(quota).astype(np.int64)
    missing = total - int(counts.sum())
    order = np.argsort(-(quota - counts), kind="stable")
    counts[order[:missing]] += 1
    return counts


def senior_shares(
    xy: np.ndarray,
    section_index: np.ndarray,
    residents: np.ndarray,
    *,
    centre_xy: tuple[float, float],
    rng: np.random.Generator,
) -> np.ndarray:
    """Probability that a resident of each unit is 65 or older.

    Older in the centre, younger in the outer expansions, with a random effect per section;
    scaled so that the expected overall share is ``SENIOR_SHARE_TARGET``.
    """
    distance_m = np.hypot(xy[:, 0] - centre_xy[0], xy[:, 1] - centre_xy[1])
    base = 0.32 - 0.13 * np.clip(distance_m / 2500.0, 0.0, 1.0)
    section_effect = rng.normal(0.0, 0.035, size=int(section_index.max()) + 1)
    shares = np.clip(base + section_effect[section_index], 0.08, 0.5)
    shares *= SENIOR_SHARE_TARGET / np.average(shares, weights=residents)
    return np.clip(shares, 0.0, 1.0)


@dataclass(frozen=True)
class Population:
    """Demand units in EPSG:4326."""

    lonlat: np.ndarray
    residents: np.ndarray
    seniors: np.ndarray
    section_codes: tuple[str, ...]


def build_population(
    city: CityProfile, projection: Projection, rng: np.random.Generator
) -> tuple[Population, SectionMap]:
    """Lay the demand grid, draw the sections and zones, and share out the population."""
    area = urban_area(projection)
    river_line = river(projection)
    centre_xy = projection.metric_xy(city.centre_lon, city.centre_lat)
    patches = [(*projection.metric_xy(lon, lat), r) for lon, lat, r in NON_RESIDENTIAL_PATCHES]

    xy = demand_grid(area, river_line, spacing_m=GRID_SPACING_M)
    weights = residential_weights(
        xy, centre_xy=centre_xy, river_line=river_line, patches_xy=patches, rng=rng
    )
    sections = build_sections(
        xy,
        weights,
        split_by_river(area, river_line),
        projection=projection,
        centre_xy=centre_xy,
        rng=rng,
    )

    lonlat = projection.points_to_lonlat(xy)
    section_index = locate(lonlat, sections.polygons)
    weights[section_index < 0] = 0.0  # a centroid on a section edge: leave it out
    residents = allocate_exactly(weights, city.population)
    shares = senior_shares(
        xy, np.maximum(section_index, 0), residents, centre_xy=centre_xy, rng=rng
    )
    seniors = rng.binomial(residents, shares)
    inhabited = residents > 0
    population = Population(
        lonlat=lonlat[inhabited],
        residents=residents[inhabited],
        seniors=seniors[inhabited],
        section_codes=tuple(sections.codes[i] for i in section_index[inhabited]),
    )
    return population, sections


# --- features -----------------------------------------------------------------------------------


def _round(value: float) -> float:
    return round(float(value), COORDINATE_DECIMALS)


def point_geometry(lon: float, lat: float) -> dict[str, Any]:
    """A GeoJSON Point with rounded coordinates."""
    return {"type": "Point", "coordinates": [_round(lon), _round(lat)]}


def _ring(coords: Iterable[tuple[float, ...]]) -> list[list[float]]:
    return [[_round(x), _round(y)] for x, y, *_ in coords]


def polygon_geometry(geom: BaseGeometry) -> dict[str, Any]:
    """A GeoJSON Polygon or MultiPolygon, exterior rings counter-clockwise (RFC 7946)."""
    oriented = shapely.orient_polygons(geom, exterior_cw=False)

    def rings(polygon: Polygon) -> list[list[list[float]]]:
        return [_ring(polygon.exterior.coords), *(_ring(r.coords) for r in polygon.interiors)]

    if isinstance(oriented, Polygon):
        return {"type": "Polygon", "coordinates": rings(oriented)}
    if isinstance(oriented, MultiPolygon):
        return {"type": "MultiPolygon", "coordinates": [rings(p) for p in oriented.geoms]}
    msg = f"expected a polygon, got {oriented.geom_type}"
    raise TypeError(msg)


def feature(
    schema: LayerSchema, properties: Mapping[str, Any], geometry: dict[str, Any]
) -> dict[str, Any]:
    """A GeoJSON feature whose properties are exactly the schema's fields, in schema order."""
    unknown = set(properties) - set(schema.field_names)
    if unknown:
        msg = f"{schema.name}: fields not in the schema: {sorted(unknown)}"
        raise ValueError(msg)
    ordered = {name: properties.get(name) for name in schema.field_names}
    return {"type": "Feature", "properties": ordered, "geometry": geometry}


def population_features(population: Population) -> list[dict[str, Any]]:
    """Features of the population layer, ids ``pop-00001``..."""
    return [
        feature(
            POPULATION,
            {
                "id": f"pop-{index:05d}",
                "residents": int(residents),
                "residents_65_plus": int(seniors),
                "section_code": code,
                "source": SYNTHETIC,
            },
            point_geometry(lon, lat),
        )
        for index, ((lon, lat), residents, seniors, code) in enumerate(
            zip(
                population.lonlat,
                population.residents,
                population.seniors,
                population.section_codes,
                strict=True,
            ),
            start=1,
        )
    ]


def ceas_features(zones: Sequence[BaseGeometry]) -> list[dict[str, Any]]:
    """Features of the CEAS layer, ids ``ceas-<slug>``."""
    return [
        feature(
            CEAS,
            {
                "id": f"ceas-{zone.slug}",
                "name": zone.name,
                "centre_name": f"CEAS {zone.name}",
                "centre_address": zone.centre_address,
                "source": SYNTHETIC,
            },
            polygon_geometry(geom),
        )
        for zone, geom in zip(CEAS_ZONES, zones, strict=True)
    ]


def entity_features() -> list[dict[str, Any]]:
    """Features of the entities layer."""
    return [
        feature(
            ENTITIES,
            {
                "id": entity.id,
                "name": entity.name,
                "kind": entity.kind,
                "address": entity.address,
                "member_since": entity.member_since,
                "people_served": entity.people_served,
                "source": entity.source,
            },
            point_geometry(entity.lon, entity.lat),
        )
        for entity in ENTITY_RECORDS
    ]


def device_position(
    device: Device, entities: Mapping[str, Entity], projection: Projection, rng: np.random.Generator
) -> tuple[float, float]:
    """Where a device goes: its own placement, or a few metres from its operator entity."""
    if device.lon is not None and device.lat is not None:
        return device.lon, device.lat
    if device.operator_entity_id is None:
        msg = f"device {device.name!r} has neither a position nor an operator"
        raise ValueError(msg)
    entity = entities[device.operator_entity_id]
    x, y = projection.metric_xy(entity.lon, entity.lat)
    distance_m = rng.uniform(*DEVICE_OFFSET_M)
    angle = rng.uniform(0.0, 2.0 * math.pi)
    lon, lat = projection.to_lonlat.transform(
        x + distance_m * math.cos(angle), y + distance_m * math.sin(angle)
    )
    return float(lon), float(lat)


def device_features(projection: Projection, rng: np.random.Generator) -> list[dict[str, Any]]:
    """Features of the defibrillators layer, ids ``dea-001``..."""
    entities = {entity.id: entity for entity in ENTITY_RECORDS}
    features = []
    for index, device in enumerate(DEVICE_RECORDS, start=1):
        lon, lat = device_position(device, entities, projection, rng)
        properties = {
            "id": f"dea-{index:03d}",
            "name": device.name,
            "location_text": device.location_text,
            "address": device.address,
            "access": device.access,
            "opening_hours": device.opening_hours,
            "indoor": device.indoor,
            "level": device.level,
            "operator_entity_id": device.operator_entity_id,
            "phone": None if device.operator_entity_id is None else f"{PHONE_PREFIX}{100 + index}",
            "status": device.status,
            "verification": device.verification,
            "installed_on": device.installed_on,
            "removed_on": device.removed_on,
            "check_date": device.check_date,
            "battery_expiry": device.battery_expiry,
            "pads_expiry": device.pads_expiry,
            "is_mobile": device.is_mobile,
            "source": device.source,
            "source_id": None,
            "tags": dict(SYNTHETIC_TAGS),
        }
        features.append(feature(DEFIBRILLATORS, properties, point_geometry(lon, lat)))
    return features


def cohousing_features() -> list[dict[str, Any]]:
    """Features of the cohousing layer."""
    return [
        feature(
            COHOUSING,
            {
                "id": project.id,
                "name": project.name,
                "status": project.status,
                "address": project.address,
                "dwellings": project.dwellings,
                "residents": project.residents,
                "source": project.source,
            },
            point_geometry(project.lon, project.lat),
        )
        for project in COHOUSING_RECORDS
    ]


# --- output -------------------------------------------------------------------------------------


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def collection_text(*, name: str, description: str, features: Sequence[Mapping[str, Any]]) -> str:
    """A FeatureCollection as text: a header line, one feature per line, a closing line."""
    header = (
        f'{{"type":"FeatureCollection","name":{_dumps(name)},'
        f'"description":{_dumps(description)},"features":['
    )
    body = ",\n".join(_dumps(f) for f in features)
    return f"{header}\n{body}\n]}}\n"


def describe(title: str) -> str:
    """The ``description`` member of every sample collection (Spanish, shown to users)."""
    return (
        f"{title}: datos de MUESTRA SINTÉTICOS generados por scripts/generate_sample.py "
        f"(semilla {SEED}); no son el registro real del Ayuntamiento de Palencia. "
        "Origen de cada registro en el campo source; ver data/README.md."
    )


def check_dates() -> None:
    """Fail loudly if a record's dates contradict each other or ``REFERENCE_DATE``."""

    def day(value: str | None) -> dt.date | None:
        return None if value is None else dt.date.fromisoformat(value)

    problems = [
        f"{entity.id}: member_since after {REFERENCE_DATE}"
        for entity in ENTITY_RECORDS
        if dt.date.fromisoformat(entity.member_since) > REFERENCE_DATE
    ]
    for device in DEVICE_RECORDS:
        installed, checked, removed = (
            day(device.installed_on),
            day(device.check_date),
            day(device.removed_on),
        )
        past = [d for d in (installed, checked, removed) if d is not None]
        if any(d > REFERENCE_DATE for d in past):
            problems.append(f"{device.name}: a date after {REFERENCE_DATE}")
        if installed and checked and checked < installed:
            problems.append(f"{device.name}: checked before it was installed")
        if (device.status == "removed") != (removed is not None):
            problems.append(f"{device.name}: removed_on must be set exactly when removed")
    if problems:
        raise ValueError("; ".join(problems))


def check_training() -> None:
    """Fail loudly if an action is after ``REFERENCE_DATE``, before its entity joined the
    cluster, names an unknown entity, or repeats an id."""
    joined = {entity.id: dt.date.fromisoformat(entity.member_since) for entity in ENTITY_RECORDS}
    problems = []
    for action in TRAINING_RECORDS:
        held_on = dt.date.fromisoformat(action.held_on)
        if held_on > REFERENCE_DATE:
            problems.append(f"{action.id}: held after {REFERENCE_DATE}")
        if action.entity_id is not None and action.entity_id not in joined:
            problems.append(f"{action.id}: unknown entity {action.entity_id}")
        elif action.entity_id is not None and held_on < joined[action.entity_id]:
            problems.append(f"{action.id}: held before {action.entity_id} joined the cluster")
    if len({action.id for action in TRAINING_RECORDS}) != len(TRAINING_RECORDS):
        problems.append("repeated training ids")
    if problems:
        raise ValueError("; ".join(problems))


def training_text() -> str:
    """The training register as CSV: UTF-8, comma-separated, a header, ``\\n`` line ends."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(TRAINING_COLUMNS)
    for action in TRAINING_RECORDS:
        values = asdict(action)
        writer.writerow(["" if values[name] is None else values[name] for name in TRAINING_COLUMNS])
    return buffer.getvalue()


def check_inside(features: Iterable[Mapping[str, Any]], city: CityProfile, layer: str) -> None:
    """Fail loudly if a feature falls outside the municipal boundary."""
    for index, item in enumerate(features):
        geom = shapely.geometry.shape(item["geometry"])
        if not city.boundary.covers(geom):
            msg = f"{layer} feature {index} falls outside the boundary of {city.name}"
            raise ValueError(msg)


def generate(out_dir: Path, *, city_path: Path = CITY_PROFILE_PATH, seed: int = SEED) -> list[Path]:
    """Write the five sample layers and the training register into ``out_dir``.

    Parameters
    ----------
    out_dir
        Directory to write into (created if missing).
    city_path
        City profile giving the boundary, metric CRS, centre and population.
    seed
        Seed of the random generator.

    Returns
    -------
    list of pathlib.Path
        The files written.
    """
    check_dates()
    check_training()
    city = load_city_profile(city_path)
    projection = Projection.for_city(city)
    rng = np.random.default_rng(seed)

    population, sections = build_population(city, projection, rng)
    zones = zone_geometries(sections)
    if int(population.residents.sum()) != city.population:
        msg = f"population sums to {population.residents.sum()}, not {city.population}"
        raise RuntimeError(msg)
    if (locate(population.lonlat, zones) < 0).any():
        msg = "some demand unit is not in exactly one CEAS zone"
        raise RuntimeError(msg)

    layers: list[tuple[LayerSchema, list[dict[str, Any]]]] = [
        (DEFIBRILLATORS, device_features(projection, rng)),
        (CEAS, ceas_features(zones)),
        (ENTITIES, entity_features()),
        (COHOUSING, cohousing_features()),
        (POPULATION, population_features(population)),
    ]
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for schema, features in layers:
        check_inside(features, city, schema.name)
        text = collection_text(
            name=f"{schema.title} (muestra sintética)",
            description=describe(schema.title),
            features=features,
        )
        path = out_dir / schema.file_name
        with path.open("w", encoding="utf-8", newline="\n") as handle:
            handle.write(text)
        written.append(path)
    path = out_dir / TRAINING_FILE
    with path.open("w", encoding="utf-8", newline="\n") as handle:
        handle.write(training_text())
    written.append(path)
    return written


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--out",
        type=Path,
        default=DEFAULT_OUT_DIR,
        help=f"directory to write the layers into (default: {DEFAULT_OUT_DIR})",
    )
    args = parser.parse_args(argv)
    for path in generate(args.out):
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
