"""HTTP helpers every router shares: documented error answers, GeoJSON responses, bbox and
paging parameters."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Query, Request
from fastapi.responses import JSONResponse

from api.schemas import ErrorPublic, Link
from geo.errors import InputError

GEOJSON = "application/geo+json"

#: What any route may answer with an ErrorPublic body (400: a body that cannot be read, and the
#: statuses of api.errors.ERROR_STATUS; 503: the database or the installation is at fault).
ERROR_STATUSES = (400, 401, 403, 404, 409, 412, 413, 422, 429, 503)
ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorPublic} for status in ERROR_STATUSES
}
#: The same for routes that answer GeoJSON: FastAPI would document their errors as GeoJSON too,
#: but errors are plain JSON.
GEOJSON_ERRORS: dict[int | str, dict[str, Any]] = {
    status: {
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorPublic"}}}
    }
    for status in ERROR_STATUSES
}


#: Routes open to all that show more with a token: the token is optional (OpenAPI 3: ``{}``).
OPTIONAL_TOKEN: dict[str, Any] = {"security": [{}, {"HTTPBearer": []}]}


class GeoJSONResponse(JSONResponse):
    """JSON sent (and documented) as ``application/geo+json`` (RFC 7946)."""

    media_type = GEOJSON


def parse_bbox(text: str | None) -> tuple[float, float, float, float] | None:
    """``minlon,minlat,maxlon,maxlat`` in degrees → a tuple, or a 422 saying what is wrong."""
    if text is None:
        return None
    parts = text.split(",")
    try:
        values = tuple(float(part) for part in parts)
    except ValueError:
        values = ()
    if len(values) != 4 or not all(v == v and abs(v) != float("inf") for v in values):
        msg = "bbox debe ser minlon,minlat,maxlon,maxlat en grados, p. ej. -4.56,41.99,-4.51,42.03."
        raise InputError(msg, code="invalid_bbox", field="bbox")
    min_lon, min_lat, max_lon, max_lat = values
    if not (-180 <= min_lon <= max_lon <= 180 and -90 <= min_lat <= max_lat <= 90):
        msg = (
            "bbox fuera de rango o con los mínimos mayores que los máximos: se espera "
            "minlon ≤ maxlon en [-180, 180] y minlat ≤ maxlat en [-90, 90]."
        )
        raise InputError(msg, code="invalid_bbox", field="bbox")
    return values


BboxQuery = Annotated[
    str | None,
    Query(description="minlon,minlat,maxlon,maxlat (EPSG:4326).", max_length=200),
]
LimitQuery = Annotated[int, Query(ge=1, le=1000, description="Registros por página.")]
OffsetQuery = Annotated[int, Query(ge=0, le=10_000_000, description="Registros a saltar.")]


def page_links(request: Request, *, offset: int, limit: int, matched: int) -> list[Link]:
    links = [Link(href=str(request.url), rel="self")]
    if offset + limit < matched:
        links.append(Link(href=str(request.url.include_query_params(offset=offset + limit)),
                          rel="next"))  # fmt: skip
    if offset > 0:
        previous = max(0, offset - limit)
        links.append(Link(href=str(request.url.include_query_params(offset=previous)),
                          rel="prev"))  # fmt: skip
    return links
