"""Importers of defibrillator registers: one module per format, one pipeline for all.

Each format's ``parse(path, *, city, **options) -> ParsedImport`` only reads a file
(:mod:`geo.io.importers.base`); :func:`geo.io.importers.run.import_devices` validates, matches,
finds duplicates and writes, identically for every format.

:data:`IMPORTERS` maps the name a user types (``cardiomapa import osm FILE``) to that function.
The CLI always passes ``city``; any other option (``--addresses``) is passed only to an importer
whose signature names it, and refused for the others.
"""

from __future__ import annotations

from collections.abc import Callable

from geo.io.importers import euskadi, jcyl_desa, madrid, osm
from geo.io.importers.base import ParsedImport

#: Format name → its parser. Device formats only (census sections are another kind of import).
IMPORTERS: dict[str, Callable[..., ParsedImport]] = {
    "osm": osm.parse,
    "euskadi": euskadi.parse,
    "madrid": madrid.parse,
    "jcyl-desa": jcyl_desa.parse,
}

#: Source (``source`` of the devices an importer brings) → the licence its data is published
#: under, for whoever states licences per source (downloads, exports, the annual report).
LICENCES: dict[str, str] = {
    osm.SOURCE: osm.LICENCE,
    euskadi.SOURCE: euskadi.LICENCE,
    madrid.SOURCE: madrid.LICENCE,
    jcyl_desa.SOURCE: jcyl_desa.LICENCE,
}
