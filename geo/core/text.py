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
