"""Spanish numbers and dates as the report writes them, and text safe in its CSS.

``1234.5`` → ``"1.234,5"``, shares as ``"12,3 %"``, dates as ``dd/mm/aaaa``; a missing value is a
dash. :func:`css_string` quotes data text for the page header of the report's ``@page`` rules.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pandas as pd
from markupsafe import Markup

from geo.core.outputs import DASH, spanish_number


def is_missing(value: Any) -> bool:
    """Whether ``value`` is missing: ``None``, ``pd.NA``, NaN or NaT."""
    if value is None or value is pd.NA:
        return True
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def number(value: Any, decimals: int = 0) -> str:
    """``1234.5`` → ``"1.234,5"`` (Spanish separators, a true minus sign; ``—`` if missing)."""
    return DASH if is_missing(value) else spanish_number(value, decimals)


def percent(share: Any, decimals: int = 1) -> str:
    """A share as a percentage: ``0.123`` → ``"12,3 %"``."""
    return DASH if is_missing(share) else f"{number(float(share) * 100, decimals)} %"


def day(value: dt.date) -> str:
    """``dd/mm/aaaa``."""
    return f"{value:%d/%m/%Y}"


def plural(count: int, singular: str, plural_form: str) -> str:
    """``count`` and the noun that agrees with it: ``1 desfibrilador``, ``3 desfibriladores``."""
    return f"{number(count)} {singular if count == 1 else plural_form}"


def css_string(text: str) -> Markup:
    """``text`` as a quoted CSS string, every character but letters, digits and spaces escaped.

    Safe inside a ``<style>`` element whatever the text holds (no ``<``, quote or backslash
    survives). Each escape ends with the one space CSS consumes as its terminator.
    """
    body = "".join(
        ch if (ch.isascii() and ch.isalnum()) or ch == " " else f"\\{ord(ch):06x} " for ch in text
    )
    return Markup(f'"{body}"')
