"""Importers of public registries: Spanish opening hours, Comunidad de Madrid, the Castilla y León
DESA register (geocoded against an address-points layer) and INE census sections."""

from __future__ import annotations

import opening_hours
import pytest

from geo.importers.hours import to_opening_hours

# --- opening hours ----------------------------------------------------------------------------

CONVERTED = [
    ("24 horas", "24/7"),
    ("24h", "24/7"),
    ("24 H", "24/7"),
    ("Abierto 24 horas", "24/7"),
    ("Todos los días 24 horas", "24/7"),
    ("24h/7d", "24/7"),
    ("24 horas, 365 días al año", "24/7"),
    ("24/7", "24/7"),
    ("L-V 8:00-15:00", "Mo-Fr 08:00-15:00"),
    ("L-V: 8-15h, S: 9-14h", "Mo-Fr 08:00-15:00; Sa 09:00-14:00"),
    ("Lunes a viernes de 9:00 a 14:00 y de 16:00 a 20:00", "Mo-Fr 09:00-14:00,16:00-20:00"),
    ("De lunes a domingo de 8 a 22", "Mo-Su 08:00-22:00"),
    ("Sábados 10:00-14:00", "Sa 10:00-14:00"),
    ("L-V 9-14h; S 10-13h", "Mo-Fr 09:00-14:00; Sa 10:00-13:00"),
    ("L a V de 8 a 15 y S de 9 a 14", "Mo-Fr 08:00-15:00; Sa 09:00-14:00"),
    ("L-V 8:00-15:00. S 9:00-13:00", "Mo-Fr 08:00-15:00; Sa 09:00-13:00"),
    ("Lunes, miércoles y viernes de 9 a 13", "Mo,We,Fr 09:00-13:00"),
    ("lun. a vie. 9.30-13.30", "Mo-Fr 09:30-13:30"),
    ("9:00 a 21:00 de lunes a sábado", "Mo-Sa 09:00-21:00"),
    ("Lunes a viernes: 8:00 – 15:00", "Mo-Fr 08:00-15:00"),
    ("Lunes a Viernes 24 horas", "Mo-Fr 00:00-24:00"),
    ("L-V 24h; S 9-14", "Mo-Fr 00:00-24:00; Sa 09:00-14:00"),
    ("L-V 9:00-14:00 excepto festivos", "Mo-Fr 09:00-14:00; PH off"),
    ("Fines de semana 10-14", "Sa,Su 10:00-14:00"),
    ("Domingo cerrado", "Su off"),
    ("L-S 9-21, domingos cerrado", "Mo-Sa 09:00-21:00; Su off"),
    ("De 4 a 8 de la tarde", "16:00-20:00"),
    ("de 9 a 2 de la tarde", "09:00-14:00"),
    ("mañanas de 9 a 14 y tardes de 17 a 20", "09:00-14:00,17:00-20:00"),
    ("de 8 a 15", "08:00-15:00"),
    ("9h30-14h", "09:30-14:00"),
    ("V 20:00-02:00", "Fr 20:00-02:00"),
    ("Mo-Fr 08:00-15:00", "Mo-Fr 08:00-15:00"),  # already OSM syntax
]


@pytest.mark.parametrize(("text", "expected"), CONVERTED)
def test_spanish_hours_are_converted_to_valid_osm_syntax(text: str, expected: str) -> None:
    result, reason = to_opening_hours(text)
    assert (result, reason) == (expected, None)
    opening_hours.OpeningHours(result)  # the real parser accepts it


REFUSED = [
    ("horario del centro", "remite al horario de otro lugar"),
    ("Horario del centro", "remite al horario de otro lugar"),
    ("según horario de apertura", "remite a otro horario"),
    ("Horario de apertura del polideportivo", "remite al horario de otro lugar"),
    ("El del establecimiento", "remite al horario del establecimiento"),
    ("Durante los partidos", "depende de la apertura o de la actividad"),
    ("Verano de 9 a 14", "es estacional"),
    ("Días laborables de 8 a 15", "«laborables» es ambiguo"),
    ("Lunes a viernes", "faltan las horas"),
    ("L-V 25:00-26:00", "la hora «25:00» no existe"),
    ("L-V 9", "no forma un intervalo"),
    ("L-V 9-9", "empieza y acaba a la misma hora"),
    ("cerrado", "«cerrado» sin días"),
    ("Consultar en recepción", "depende de la apertura"),
    ("Hasta las 3 más o menos", "no se reconoce"),
    ("L-V 9-14 @", "no se reconoce el carácter «@»"),
    ("excepto", "«excepto» no va seguido de días"),
]


@pytest.mark.parametrize(("text", "why"), REFUSED)
def test_unconvertible_hours_are_refused_with_a_spanish_reason(text: str, why: str) -> None:
    result, reason = to_opening_hours(text)
    assert result is None
    assert reason is not None
    assert reason.startswith(f"horario «{text}» no convertido: ")
    assert why in reason


@pytest.mark.parametrize("text", [None, "", "   "])
def test_empty_hours_are_neither_converted_nor_flagged(text: str | None) -> None:
    assert to_opening_hours(text) == (None, None)
