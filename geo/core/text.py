"""Text helpers shared by the readers of people's writing (registers, imports, hours)."""

from __future__ import annotations

import unicodedata


def fold(text: str) -> str:
    """``text`` in lower case without accents or other combining marks: ``"Vía Pública"`` →
    ``"via publica"``. For comparing what people type, never for showing it."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(char for char in decomposed if not unicodedata.combining(char))
