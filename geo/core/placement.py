"""Is a device where its record says? Checks for the moderator, on WGS 84 positions (EPSG:4326),
with geodesic distances in metres.

Three warnings, each a possible duplicate or a wrong pin:

- **far from its address**: the device is more than :data:`ADDRESS_LIMIT_M` from where its
  address is known to be;
- **long move**: its last move took it more than :data:`MOVE_LIMIT_M` from where it was;
- **near another device**: another device (not removed, not rejected) is within
  :data:`DUPLICATE_LIMIT_M`.

Where an address *is* is known only from what the layers hold, with no geocoder: a place with
the same address text (accents, case, punctuation and the usual abbreviations aside) among the
entities, the cohousing sites and the verified devices; or, for a device with no address, the
registered location of the entity that runs it. When neither says where the address is, the
check says so (:attr:`PlacementCheck.address_unknown`) instead of guessing.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

from pyproj import Geod

from geo.core.outputs import spanish_number
from geo.core.text import fold

#: A device further than this from its address is flagged (metres).
ADDRESS_LIMIT_M = 250.0
#: A move longer than this is flagged (metres).
MOVE_LIMIT_M = 250.0
#: Another device closer than this is flagged as a possible duplicate (metres).
DUPLICATE_LIMIT_M = 30.0

_GEOD = Geod(ellps="WGS84")
#: Abbreviations people write for street types, folded, without their dot.
_ABBREVIATIONS = {
    "c": "calle", "cl": "calle", "c/": "calle", "avda": "avenida", "av": "avenida",
    "avd": "avenida", "pza": "plaza", "pl": "plaza", "pº": "paseo", "po": "paseo",
    "ps": "paseo", "ctra": "carretera", "n": "", "no": "", "nº": "", "num": "",
}  # fmt: skip

WarningKind = Literal["far_from_address", "long_move", "near_other"]


@dataclass(frozen=True)
class KnownPlace:
    """A point whose address is known: ``label`` says what it is, in Spanish (``la entidad
    «Residencia Uno»``)."""

    address: str
    lon: float
    lat: float
    label: str


@dataclass(frozen=True)
class Neighbour:
    """Another device, for the duplicate check."""

    id: str
    name: str
    lon: float
    lat: float


@dataclass(frozen=True)
class PlacementWarning:
    """One reason to look twice, with the distance that raised it and a Spanish sentence."""

    kind: WarningKind
    distance_m: int
    message: str
    other_id: str | None = None


@dataclass(frozen=True)
class PlacementCheck:
    """The warnings about one device, and where its address was found (``None``: nowhere)."""

    warnings: tuple[PlacementWarning, ...]
    address_place: KnownPlace | None
    address_unknown: str | None


def distance_m(lon1: float, lat1: float, lon2: float, lat2: float) -> float:
    """Geodesic distance between two WGS 84 points, in metres."""
    return float(_GEOD.inv(lon1, lat1, lon2, lat2)[2])


def address_key(text: str | None) -> str:
    """An address as compared: folded, punctuation dropped, abbreviations spelled out.

    ``"C/ Mayor, nº 5"``, ``"calle mayor 5"`` and ``"Cl. Mayor 5, 34001 Palencia"`` give the
    same key (a postal code and what follows it are dropped); empty text gives ``""``.
    """
    if not text:
        return ""
    words = [word for word in re.split(r"[\s,.;:()]+", fold(text).replace("c/", "c/ ")) if word]
    postal = next((i for i, word in enumerate(words) if re.fullmatch(r"\d{5}", word)), None)
    words = words[:postal]  # ", 34002 Palencia": the postal code and the town after it
    spelled = [_ABBREVIATIONS.get(word, word) for word in words]
    return " ".join(word for word in spelled if word)


def locate_address(address: str | None, places: Iterable[KnownPlace]) -> KnownPlace | None:
    """The first place with the same address key (``None`` for an empty or unknown address)."""
    key = address_key(address)
    if not key:
        return None
    return next((place for place in places if address_key(place.address) == key), None)


def check_placement(
    *,
    lon: float,
    lat: float,
    address: str | None,
    places: Sequence[KnownPlace],
    entity_place: KnownPlace | None = None,
    moved_m: float | None = None,
    others: Sequence[Neighbour] = (),
) -> PlacementCheck:
    """The warnings for a device at (``lon``, ``lat``).

    Parameters
    ----------
    address
        The device's address as typed.
    places
        Points whose address is known (entities, cohousing sites, verified devices), without
        the device itself.
    entity_place
        The registered location of the entity that runs the device: compared with when the
        device has no address.
    moved_m
        Length of its last move, if it moved.
    others
        The other devices (without the device itself) for the duplicate check.
    """
    warnings: list[PlacementWarning] = []
    place = locate_address(address, places)
    unknown: str | None = None
    by_entity = place is None and not address_key(address) and entity_place is not None
    if by_entity:
        place = entity_place
    if place is None:
        unknown = (
            "No se puede comprobar la posición con la dirección: el registro no tiene dirección "
            "ni entidad con ubicación."
            if not address_key(address)
            else f"No se puede comprobar la posición con la dirección «{address}»: ninguna "
            "entidad, cohousing ni desfibrilador verificado de las capas tiene esa dirección "
            "(no se usa ningún geocodificador)."
        )
    else:
        far = distance_m(lon, lat, place.lon, place.lat)
        if far > ADDRESS_LIMIT_M:
            said = (
                f"la ubicación registrada de {place.label} (el registro no tiene dirección)"
                if by_entity
                else f"la dirección «{address}», donde está {place.label}"
            )
            warnings.append(
                PlacementWarning(
                    "far_from_address",
                    round(far),
                    f"Posible posición errónea: el punto está a {_metres(far)} de {said}; "
                    f"se avisa a partir de {_metres(ADDRESS_LIMIT_M)}.",
                )
            )
    if moved_m is not None and moved_m > MOVE_LIMIT_M:
        warnings.append(
            PlacementWarning(
                "long_move",
                round(moved_m),
                f"Traslado largo: se ha movido {_metres(moved_m)} (más de "
                f"{_metres(MOVE_LIMIT_M)}). Compruebe que es el mismo desfibrilador y que el "
                "punto nuevo es correcto.",
            )
        )
    for other in others:
        near = distance_m(lon, lat, other.lon, other.lat)
        if near <= DUPLICATE_LIMIT_M:
            warnings.append(
                PlacementWarning(
                    "near_other",
                    round(near),
                    f"Posible duplicado: «{other.name}» ({other.id}) está a {_metres(near)} "
                    f"(a menos de {_metres(DUPLICATE_LIMIT_M)}).",
                    other_id=other.id,
                )
            )
    return PlacementCheck(tuple(warnings), place, unknown)


def _metres(value: float) -> str:
    """``1834.2`` → ``"1.834 m"`` (Spanish thousands separator)."""
    return f"{spanish_number(value)} m"
