"""Text helpers shared by the readers of people's writing (registers, imports, hours)."""

from __future__ import annotations

import unicodedata
from typing import Any


def fold(text: str) -> str:
    """``text`` in lower case without accents or other combining marks: ``"Vía Pública"`` →
    ``"via publica"``. For comparing what people type, never for showing it."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(char for char in decomposed if not unicodedata.combining(char))


def describe(value: Any) -> str:
    """What a value read from JSON or a register is, in Spanish, for error messages:
    ``null``, ``un booleano``, ``el número 3``, ``el texto 'x'``, ``una lista``, ``un objeto``."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "un booleano"
    if isinstance(value, int | float):
        return f"el número {value}"
    if isinstance(value, str):
        return f"el texto {value!r}"
    if isinstance(value, list):
        return "una lista"
    if isinstance(value, dict):
        return "un objeto"
    return f"un valor de tipo {type(value).__name__}"


#: Codes that reach sentences (options, JSON fields, layer values) → the words people read.
#: One table for the CLI, the pages and the report; a code not listed reads as itself.
WORDS: dict[str, dict[str, str]] = {
    "method": {"exact": "exacto", "greedy": "voraz"},
    "candidates": {
        "entities": "entidades sin desfibrilador disponible",
        "all": "entidades, viviendas colaborativas y una rejilla regular",
    },
    "candidate_kind": {
        "entity": "entidad",
        "cohousing": "vivienda colaborativa",
        "grid": "punto de rejilla",
        "file": "archivo",
    },
    "distance_model": {"straight_line": "en línea recta", "walking_network": "por la red peatonal"},
    "map": {"citizen": "ciudadano", "planner": "de planificación"},
    "objective": {"residents": "residentes cubiertos", "lives": "vidas salvadas"},
    "grouping": {"ceas": "zonas CEAS", "income": "tramos de renta"},
    "gap_kind": {
        "gap_area": "zona sin cobertura",
        "entity_without_device": "entidad sin desfibrilador",
        "cohousing_without_device": "vivienda colaborativa sin desfibrilador",
    },
    "action": {"new": "nuevo", "extend_hours": "abrir 24 h"},
    "verification": {"pending": "pendiente", "verified": "verificado", "rejected": "rechazado"},
    "report_status": {"pending": "pendiente", "accepted": "resuelto", "rejected": "descartado"},
}


def in_words(vocabulary: str, code: object) -> str:
    """``code`` (an option's or a field's value) in the words people read: ``in_words("method",
    "exact")`` → ``"exacto"``. A candidates file's path reads ``archivo <path>``; an unknown code
    reads as itself."""
    value = str(getattr(code, "value", code))
    words = WORDS.get(vocabulary, {})
    if value in words:
        return words[value]
    if vocabulary == "candidates":
        return f"archivo {value}"
    return value
