"""Opening hours checked as they are typed: the registration form's hours editor asks here.

The text is read by the same parser as everywhere else (:func:`geo.core.availability.week_in_words`,
``opening-hours-py``), in the city's time zone and with its country's public holidays.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from api.deps import CityDep, ClockDep
from api.http import ERRORS
from api.schemas import Day
from geo.core.availability import week_in_words

router = APIRouter(prefix="/api", tags=["desfibriladores"])

#: Longest opening_hours text accepted (OSM tag values are limited to 255 characters).
MAX_HOURS_CHARS = 500
#: What :func:`week_in_words` says of hours open at every moment of the year ahead.
ALWAYS_OPEN_WORDS = "abierto las 24 horas, todos los días"
EMPTY_MESSAGE = (
    "Sin horario: indique cuándo se puede acceder al desfibrilador "
    "(por ejemplo '24/7' o 'Mo-Fr 08:00-15:00')."
)
INVALID_MESSAGE = (
    "El horario {text!r} no es válido en la sintaxis opening_hours de OpenStreetMap; "
    "ejemplos válidos: '24/7', 'Mo-Fr 08:00-15:00', 'Mo-Sa 09:00-21:00; Su off'."
)


class OpeningHoursPublic(BaseModel):
    """An opening_hours text, whether it is valid, and what it means in words."""

    text: str = Field(description="El texto recibido, tal cual.")
    valid: bool = Field(description="Es un horario opening_hours de OSM válido.")
    words: str | None = Field(
        description="La semana pedida en palabras (días agrupados); null si no es válido."
    )
    message: str | None = Field(description="Por qué no es válido (en español); null si lo es.")
    always_open: bool = Field(description="Abierto en todo momento (24/7) durante el año próximo.")


TextQuery = Annotated[
    str,
    Query(
        max_length=MAX_HOURS_CHARS,
        description="Horario en sintaxis opening_hours de OSM, p. ej. `Mo-Fr 08:00-15:00; PH off`.",
    ),
]
WeekQuery = Annotated[
    Day | None,
    Query(description="Un día de la semana que se describe (por omisión, hoy en la ciudad)."),
]


@router.get("/opening-hours", responses=ERRORS)
def check_opening_hours(
    city: CityDep, clock: ClockDep, text: TextQuery = "", week_of: WeekQuery = None
) -> OpeningHoursPublic:
    """Check an opening_hours text and describe its week in Spanish words."""
    if not text.strip():
        return OpeningHoursPublic(
            text=text, valid=False, words=None, message=EMPTY_MESSAGE, always_open=False
        )
    week = week_of or city.today(clock)
    try:
        words = week_in_words(text, week_of=week, timezone=city.timezone, calendar=city.calendar)
    except ValueError:
        message = INVALID_MESSAGE.format(text=text)
        return OpeningHoursPublic(
            text=text, valid=False, words=None, message=message, always_open=False
        )
    return OpeningHoursPublic(
        text=text, valid=True, words=words, message=None, always_open=words == ALWAYS_OPEN_WORDS
    )
