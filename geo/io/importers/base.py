"""What every importer returns: device records in the layer schema, and what it skipped and why.

An importer (one module per format: ``osm``, ``madrid``, ``jcyl_desa``, ``euskadi``) only *reads*
a file: it parses it, maps its fields onto the defibrillators layer schema
(:data:`geo.core.layers.DEFIBRILLATORS`) and returns a :class:`ParsedImport`. Validation against the
schema, matching with what is stored (``source`` + ``source_id``), duplicate detection and the
write are done once, for every format, by :mod:`geo.io.importers.run`.

A malformed *file* (not JSON, no ``data`` array, a record that is not an object…) raises
:class:`ImportFormatError` naming the file, the record number and the field; a well-formed record
that cannot become a device (no coordinates, an address that matches nothing) is a :class:`Skip`,
reported with its reason and never invented.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Skip:
    """A record left out: its 1-based number in the file, its id there, and why (Spanish)."""

    record: int
    source_id: str | None
    reason: str
    field: str | None = None


@dataclass(frozen=True)
class DeviceRecord:
    """One device read from a file, ready to be validated against the layer schema.

    ``properties`` uses the defibrillators layer's field names (``name``, ``access``,
    ``opening_hours``, ``source``, ``source_id``, ``tags``…; every original attribute kept in
    ``tags``); ``lon``/``lat`` are EPSG:4326. ``record`` is its 1-based number in the file.

    The keys present in ``properties`` (even with ``None``) are the fields this source *owns*:
    re-importing updates those and the position, and leaves every other field of a stored
    device as planners left it. ``status`` is only taken from the source when it is
    ``removed``; ``verification`` never (the pipeline's policy per format,
    :data:`geo.io.importers.run.INITIAL_VERIFICATION`). ``id`` is derived by the pipeline.

    ``flags`` are Spanish notes about a record imported incompletely (hours that could not be
    converted and were left empty…); the import report lists them.
    """

    record: int
    lon: float
    lat: float
    properties: dict[str, Any]
    flags: tuple[str, ...] = ()


@dataclass(frozen=True)
class ParsedImport:
    """What an importer read from one file."""

    format: str
    file: str
    source: str
    licence: str
    read: int
    records: list[DeviceRecord]
    skipped: list[Skip] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @classmethod
    def of(
        cls,
        items: Sequence[DeviceRecord | Skip],
        *,
        format: str,
        file: str,
        source: str,
        licence: str,
        notes: Sequence[str] = (),
    ) -> ParsedImport:
        """What was read from a file, one item per record: the devices and the skips apart."""
        return cls(
            format=format,
            file=file,
            source=source,
            licence=licence,
            read=len(items),
            records=[item for item in items if isinstance(item, DeviceRecord)],
            skipped=[item for item in items if isinstance(item, Skip)],
            notes=list(notes),
        )
