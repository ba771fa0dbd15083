"""Request and response models of the HTTP API (the OpenAPI document is built from these).

Geometry travels as GeoJSON in EPSG:4326 ([longitude, latitude], RFC 7946). Field values are
checked here for shape (types, lengths, ranges) and then by the layer schema in
:mod:`geo.core.layers` for meaning (vocabularies, opening hours, dates in order, inside the
municipality), so a value is accepted by the API exactly when it would be accepted in a layer
file.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field
from pydantic_core import PydanticCustomError

from geo.core.indicators import TRAINING_KINDS
from geo.core.layers import ACCESS_VALUES, DEVICE_STATUS_VALUES
from geo.io.store import PATIENT_SEX, REPORT_KINDS, REVIEW_STATUS
from geo.services.training import KINDS_TEXT, MAX_PEOPLE_PER_ACTION


def _storable(value: str) -> str:
    """Text both databases can store: no NUL characters, valid Unicode."""
    if "\x00" in value:
        msg = "el texto contiene caracteres nulos (\\u0000)"
        raise ValueError(msg)
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        msg = "el texto no es Unicode válido"
        raise ValueError(msg) from None
    return value


def _utc(value: dt.datetime) -> dt.datetime:
    """The store keeps naive UTC timestamps: say so, so they go out as RFC 3339 (``…Z``)."""
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value


#: Instants and reference days the API works with: far enough from the calendar's ends that a
#: time-zone conversion or a week, month or year of arithmetic cannot leave it.
FIRST_YEAR, LAST_YEAR = 1900, 2999


def _in_range(value: dt.date) -> dt.date:
    """Refuse a date or instant outside the years FIRST_YEAR to LAST_YEAR."""
    if not FIRST_YEAR <= value.year <= LAST_YEAR:
        context = {"first": FIRST_YEAR, "last": LAST_YEAR}
        raise PydanticCustomError("date_out_of_range", "year outside {first}-{last}", context)
    return value


def _calendar_text(kind: str) -> Any:
    """Refuse a number where a date (``kind`` ``date``) or an instant (``datetime``) is expected.

    pydantic reads ``0`` or ``"1700000000"`` as seconds since 1970: a ``week_of=0`` would quietly
    mean the week of 1 January 1970. The API takes ISO 8601 text only (or a date already parsed).
    """

    def check(value: Any) -> Any:
        number = isinstance(value, int | float) or (
            isinstance(value, str) and _NUMBER.fullmatch(value.strip()) is not None
        )
        if number:
            raise PydanticCustomError(f"{kind}_parsing", "a number is not an ISO 8601 {kind}",
                                      {"kind": kind})  # fmt: skip
        return value

    return BeforeValidator(check)


_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")
Clean = AfterValidator(_storable)
#: An instant or a reference day sent to the API (see FIRST_YEAR, LAST_YEAR), as ISO 8601 text.
Instant = Annotated[dt.datetime, _calendar_text("datetime"), AfterValidator(_in_range)]
Day = Annotated[dt.date, _calendar_text("date"), AfterValidator(_in_range)]
#: A stored timestamp (naive UTC in the database), answered with its zone.
UtcDateTime = Annotated[dt.datetime, AfterValidator(_utc)]
Text = Annotated[str, Field(max_length=200), Clean]
LongText = Annotated[str, Field(max_length=2000), Clean]
#: A coordinate in a request body: a JSON number, never text ("42.0" is refused with 422), so a
#: client that sends strings learns it at once instead of relying on a lenient parse.
Coordinate = Annotated[float, Field(strict=True)]
Lon = Annotated[Coordinate, Field(ge=-180, le=180, description="Longitud en grados (EPSG:4326).")]
Lat = Annotated[Coordinate, Field(ge=-90, le=90, description="Latitud en grados (EPSG:4326).")]


def _enum(values: tuple[str, ...], description: str, *, required: bool = False) -> Any:
    extra: dict[str, Any] = {"enum": list(values)}
    if required:
        return Field(description=description, json_schema_extra=extra)
    return Field(default=None, description=description, json_schema_extra=extra)


ACCESS_TEXT = "Quién puede usarlo (vocabulario OSM access)."


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


# --- errors -----------------------------------------------------------------------------------


class ProblemPublic(BaseModel):
    """One thing wrong in a request."""

    field: str | None = Field(description="Campo culpable (p. ej. properties.opening_hours).")
    code: str = Field(description="Código estable del tipo de problema.")
    message: str = Field(description="Qué está mal y qué se admite, en español.")


class ErrorPublic(BaseModel):
    """Every error answer: a stable machine code and a Spanish message."""

    code: str
    message: str
    problems: list[ProblemPublic] | None = None


# --- index ------------------------------------------------------------------------------------


class LayerPublic(BaseModel):
    """One stored layer."""

    name: str = Field(description="Identificador de la capa (defibrillators, ceas…).")
    title: str = Field(description="Nombre de la capa para las personas.")
    count: int = Field(description="Número de registros.")
    sources: dict[str, int] = Field(description="Registros por procedencia (campo source).")


class CityPublic(BaseModel):
    """The municipality the app serves."""

    name: str
    ine_code: str
    population: int
    population_year: int
    population_source: str


class IndexPublic(BaseModel):
    """What the app holds: the city and its layers."""

    app: str = "cardiomapa"
    city: CityPublic
    layers: list[LayerPublic]
    notice: str = Field(description="Aviso sobre la procedencia de los datos.")


# --- geometry ---------------------------------------------------------------------------------


class PointGeometry(Strict):
    """A GeoJSON Point: [longitude, latitude] in degrees."""

    type: Literal["Point"]
    coordinates: Annotated[list[Coordinate], Field(min_length=2, max_length=2)]


# --- devices ----------------------------------------------------------------------------------


class EmergencyNotes(Strict):
    """Only for the emergency services, the device's entity and the city's staff: never public."""

    cabinet_code: Annotated[str, Field(max_length=100), Clean] | None = None
    key_holder: Text | None = None
    notes: LongText | None = None


class DeviceFields(Strict):
    """Device fields an entity maintains (all optional in an update; ``null`` clears one)."""

    name: Text | None = None
    location_text: Text | None = Field(default=None, description="Dónde exactamente.")
    address: Text | None = None
    access: Annotated[str, Clean] | None = _enum(ACCESS_VALUES, ACCESS_TEXT)
    opening_hours: Text | None = Field(
        default=None, description="Horario en sintaxis OSM opening_hours ('24/7', 'Mo-Fr…')."
    )
    indoor: bool | None = None
    level: Annotated[str, Field(max_length=20), Clean] | None = None
    phone: Annotated[str, Field(max_length=40), Clean] | None = None
    status: Annotated[str, Clean] | None = _enum(DEVICE_STATUS_VALUES, "Estado operativo.")
    installed_on: Day | None = None
    removed_on: Day | None = None
    check_date: Day | None = Field(
        default=None,
        description="Última revisión: no posterior a hoy (fecha local de la ciudad) ni anterior "
        "a installed_on (422, códigos date_in_future y dates_out_of_order).",
    )
    battery_expiry: Day | None = Field(
        default=None,
        description="Caducidad de la batería. Una fecha ya pasada se admite con un aviso en "
        "warnings: el mantenimiento queda vencido.",
    )
    pads_expiry: Day | None = Field(
        default=None,
        description="Caducidad de los parches. Una fecha ya pasada se admite con un aviso en "
        "warnings: el mantenimiento queda vencido.",
    )
    is_mobile: bool | None = None


class DeviceCreateFields(DeviceFields):
    name: Text
    access: Annotated[str, Clean] = _enum(ACCESS_VALUES, ACCESS_TEXT, required=True)


class DeviceCreate(Strict):
    """A new device, as a GeoJSON Feature; it enters as ``pending`` until verified."""

    type: Literal["Feature"]
    geometry: PointGeometry
    properties: DeviceCreateFields
    emergency: EmergencyNotes | None = None
    operator_entity_id: Text | None = Field(
        default=None, description="Solo administración: entidad titular."
    )


class DeviceUpdate(Strict):
    """Changes to a device: only what is sent changes. A new geometry moves it."""

    properties: DeviceFields | None = None
    geometry: PointGeometry | None = None
    emergency: EmergencyNotes | None = None


class DeviceProperties(BaseModel):
    """A device's public record."""

    name: str
    location_text: str | None
    address: str | None
    access: str
    opening_hours: str | None
    indoor: bool | None
    level: str | None
    operator_entity_id: str | None
    phone: str | None
    status: str
    verification: str
    installed_on: dt.date | None
    removed_on: dt.date | None
    check_date: dt.date | None
    battery_expiry: dt.date | None
    pads_expiry: dt.date | None
    is_mobile: bool
    source: str = Field(description="Procedencia del registro ('synthetic' = dato de muestra).")
    source_id: str | None
    tags: dict[str, Any]
    version: int = Field(description="Versión del registro; va en la cabecera ETag.")
    emergency: EmergencyNotes | None = Field(
        default=None, description="Solo para la entidad titular y el personal municipal."
    )


class DeviceFeature(BaseModel):
    """A device as a GeoJSON Feature."""

    type: Literal["Feature"] = "Feature"
    id: str
    geometry: PointGeometry
    properties: DeviceProperties


class WarningPublic(BaseModel):
    """Something accepted that needs attention."""

    field: str | None = Field(
        description="Campo al que se refiere (p. ej. properties.pads_expiry)."
    )
    code: str = Field(description="Código estable del aviso (expired: caducidad ya pasada).")
    message: str = Field(description="El aviso en español.")


class DeviceSaved(DeviceFeature):
    """A device just registered or updated, with what needs attention about it."""

    warnings: list[WarningPublic] = Field(
        default_factory=list,
        description="Avisos sobre el desfibrilador guardado, sin impedir el cambio: cada "
        "caducidad (parches, batería) ya pasada, código expired; el desfibrilador figura con "
        "el mantenimiento vencido hasta que se cambien.",
    )


class Link(BaseModel):
    href: str
    rel: str


class DeviceCollection(BaseModel):
    """A page of devices as a GeoJSON FeatureCollection."""

    type: Literal["FeatureCollection"] = "FeatureCollection"
    features: list[DeviceFeature]
    numberMatched: int
    numberReturned: int
    links: list[Link]
    notice: str


class ReviewDecision(Strict):
    """A moderator's decision on a pending device."""

    decision: Literal["verified", "rejected"]
    note: LongText | None = None


# --- other layers -----------------------------------------------------------------------------


class LayerFeature(BaseModel):
    """A record of another layer (entities, CEAS zones, cohousing) as a GeoJSON Feature."""

    type: Literal["Feature"] = "Feature"
    id: str
    geometry: dict[str, Any]
    properties: dict[str, Any]


class LayerCollection(BaseModel):
    type: Literal["FeatureCollection"] = "FeatureCollection"
    features: list[LayerFeature]
    numberMatched: int
    numberReturned: int
    links: list[Link]


# --- nearest ----------------------------------------------------------------------------------


#: A device's state at an instant, as /api/nearest and the dispatch feed name it.
DeviceStateName = Literal[
    "open", "closed", "restricted", "unknown_hours", "out_of_service", "reported",
    "maintenance_overdue",
]  # fmt: skip
STATE_DESCRIPTION = (
    "open: se puede usar; closed: cerrado por horario; restricted: no es de uso "
    "público; unknown_hours: sin horario interpretable; out_of_service: fuera de "
    "servicio; reported: avisado como desaparecido o averiado, sin confirmar; "
    "maintenance_overdue: abierto pero con parches o batería caducados."
)
MAINTENANCE_DESCRIPTION = (
    "Parches y batería: en fecha (ok), caducados (overdue) o sin fecha (unknown)."
)
NOTICE_DESCRIPTION = "Por qué no está simplemente abierto o cerrado (en palabras)."


class NearbyDevicePublic(BaseModel):
    """One device in a nearest answer."""

    id: str
    name: str
    state: DeviceStateName = Field(description=STATE_DESCRIPTION)
    state_text: str = Field(description="El estado en palabras, con su motivo.")
    available: bool = Field(description="Se puede usar en ese momento.")
    maintenance: Literal["ok", "overdue", "unknown"] = Field(description=MAINTENANCE_DESCRIPTION)
    notice: str | None = Field(default=None, description=NOTICE_DESCRIPTION)
    pads_expiry: dt.date | None = None
    battery_expiry: dt.date | None = None
    always_open: bool
    opens_at: dt.datetime | None = Field(description="Cuándo abre, si ahora está cerrado.")
    closes_at: dt.datetime | None = Field(description="Cuándo cierra, si ahora está abierto.")
    distance_m: float
    walk_min: float
    location_text: str | None
    address: str | None
    access: str
    opening_hours: str | None
    indoor: bool | None
    level: str | None
    phone: str | None
    check_date: dt.date | None
    lon: float
    lat: float
    directions_url: str = Field(description="Ruta a pie en OpenStreetMap.")


class NearestPublic(BaseModel):
    """The nearest available devices to a point, then nearer ones that cannot be used then."""

    at: dt.datetime
    lon: float
    lat: float
    distance_model: str
    distance_model_description: str
    results: list[NearbyDevicePublic]


# --- the 112 dispatch centre ------------------------------------------------------------------


class DispatchProperties(BaseModel):
    """One device in the dispatch feed: where it is, how to reach it, whether it can be used now
    and over the next 24 hours, and the notes only emergency services see."""

    id: str
    name: str
    location_text: str | None = Field(description="Dónde exactamente (p. ej. vestíbulo).")
    address: str | None
    access: str = Field(description=ACCESS_TEXT)
    indoor: bool | None = Field(description="En un interior.")
    level: str | None = Field(description="Planta (OSM level).")
    opening_hours: str | None = Field(description="Horario en sintaxis OSM opening_hours.")
    phone: str | None = Field(description="Teléfono público del lugar.")
    state: DeviceStateName = Field(description=STATE_DESCRIPTION)
    state_text: str = Field(description="El estado en palabras, con su motivo.")
    available: bool = Field(description="Se puede usar ahora (state = open).")
    maintenance: Literal["ok", "overdue", "unknown"] = Field(description=MAINTENANCE_DESCRIPTION)
    notice: str | None = Field(description=NOTICE_DESCRIPTION)
    next_change: dt.datetime | None = Field(
        description="Hora local en que abre (si está cerrado) o cierra (si está abierto); null "
        "si no cambia o no se sabe."
    )
    open_next_24h: list[tuple[dt.datetime, dt.datetime]] = Field(
        description="Intervalos [abre, cierra] en hora local (ISO 8601 con desfase) en que se "
        "puede usar durante las 24 horas desde generated_at: su horario con los festivos de la "
        "ciudad, cortado cuando caducan parches o batería; vacío si es de acceso restringido, "
        "está fuera de servicio, avisado o sin horario conocido."
    )
    emergency: EmergencyNotes = Field(
        description="Notas solo para emergencias (código del armario, quién tiene la llave, "
        "otras indicaciones), que la entidad titular escribe y nunca se publican; null la que "
        "no tenga."
    )


class DispatchFeature(BaseModel):
    """A device of the dispatch feed as a GeoJSON Feature (EPSG:4326)."""

    type: Literal["Feature"] = "Feature"
    id: str
    geometry: PointGeometry
    properties: DispatchProperties


class DispatchCollection(BaseModel):
    """The dispatch feed: every device the citizens' map lists, as a GeoJSON FeatureCollection."""

    type: Literal["FeatureCollection"] = "FeatureCollection"
    generated_at: dt.datetime = Field(
        description="El minuto para el que se calculó, en hora local (ISO 8601 con desfase)."
    )
    city: str = Field(description="Municipio.")
    timezone: str = Field(description="Zona horaria de las horas locales (IANA).")
    features: list[DispatchFeature]


# --- reports and uses -------------------------------------------------------------------------


class ReportCreate(Strict):
    """A citizen's report about a device: goes to moderation, never edits the device."""

    kind: Literal["missing", "broken", "moved", "wrong_hours", "other"]
    message: Annotated[str, Field(min_length=1, max_length=1000), Clean]
    contact: Text | None = Field(default=None, description="Opcional; nunca se publica.")
    lon: Lon | None = Field(default=None, description="Posición correcta, si se ha movido.")
    lat: Lat | None = None


class ReportPublic(BaseModel):
    id: int
    device_id: str
    kind: str = Field(json_schema_extra={"enum": list(REPORT_KINDS)})
    message: str
    lon: float | None
    lat: float | None
    status: str = Field(json_schema_extra={"enum": list(REVIEW_STATUS)})
    created_at: UtcDateTime
    reviewed_at: UtcDateTime | None
    reviewed_by: str | None
    review_note: str | None
    contact: str | None = None


class ReportReceipt(BaseModel):
    id: int
    status: Literal["pending"]
    message: str


class ReportReview(Strict):
    decision: Literal["accepted", "rejected"]
    note: LongText | None = None


class ReportPage(BaseModel):
    items: list[ReportPublic]
    numberMatched: int


class UseCreate(Strict):
    """A use of a device, with what the regional communication of use asks (no personal data)."""

    used_at: Instant = Field(description="Cuándo se usó (ISO 8601; sin zona = UTC).")
    people_attended: Annotated[int, Field(ge=1, le=100)] = 1
    emergency_called: bool | None = Field(default=None, description="Se avisó al 112.")
    shock_delivered: bool | None = None
    shocks: Annotated[int, Field(ge=0, le=100)] | None = None
    circulation_recovered: bool | None = Field(
        default=None, description="Recuperación de la circulación espontánea."
    )
    transferred_to_hospital: bool | None = None
    rescuer_trained: bool | None = Field(
        default=None, description="Lo usó una persona formada en SVB y DEA."
    )
    patient_sex: Literal["female", "male", "unknown"] | None = None
    patient_age_years: Annotated[int, Field(ge=0, le=120)] | None = None
    notes: LongText | None = None
    pads_replaced: bool | None = Field(
        default=None, description="Se pusieron parches nuevos después del uso."
    )
    pads_expiry: Day | None = Field(
        default=None,
        description="Caducidad de los parches nuevos (AAAA-MM-DD), que pasa a ser la del "
        "desfibrilador en la misma operación. Obligatoria con pads_replaced true y solo con "
        "ella; no puede haber pasado ya ni ser anterior o igual al día del uso.",
    )


class UsePublic(BaseModel):
    id: int
    device_id: str
    used_at: UtcDateTime
    people_attended: int
    emergency_called: bool | None
    shock_delivered: bool | None
    shocks: int | None
    circulation_recovered: bool | None
    transferred_to_hospital: bool | None
    rescuer_trained: bool | None
    patient_sex: str | None = Field(json_schema_extra={"enum": [*PATIENT_SEX, None]})
    patient_age_years: int | None
    notes: str | None
    reported_by: str
    reported_at: UtcDateTime


class UsePage(BaseModel):
    items: list[UsePublic]
    numberMatched: int


# --- staff ------------------------------------------------------------------------------------


class AuditEntry(BaseModel):
    id: int
    at: UtcDateTime
    actor: str
    action: str
    record_type: str
    record_id: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None


class AuditPage(BaseModel):
    items: list[AuditEntry]
    numberMatched: int


class MaintenanceItem(BaseModel):
    id: str
    name: str
    operator_entity_id: str | None
    reasons: list[Literal["battery_expiry", "pads_expiry", "unchecked", "never_checked"]]
    battery_expiry: dt.date | None
    pads_expiry: dt.date | None
    check_date: dt.date | None
    days_left: int | None = Field(description="Días hasta la caducidad más próxima.")


class MaintenancePublic(BaseModel):
    today: dt.date
    within_days: int
    unchecked_days: int
    items: list[MaintenanceItem]


# --- the training register (plan action 1.3) --------------------------------------------------


class TrainingCreate(Strict):
    """A training action in basic life support and defibrillator use, already held."""

    held_on: Day = Field(description="Día en que se impartió (AAAA-MM-DD); no posterior a hoy.")
    entity_id: Text | None = Field(
        default=None, description="Entidad del clúster que la organizó o acogió."
    )
    place: Annotated[str, Field(min_length=1, max_length=200), Clean] = Field(
        description="Dónde se impartió."
    )
    kind: Annotated[str, Field(max_length=60), Clean] = Field(
        description=f"Tipo de formación: {KINDS_TEXT}; también se admite la etiqueta en español.",
        json_schema_extra={"enum": list(TRAINING_KINDS)},
    )
    people_trained: Annotated[int, Field(ge=1, le=MAX_PEOPLE_PER_ACTION)] = Field(
        description="Personas formadas."
    )
    trainer: Text | None = Field(default=None, description="Quién la impartió.")
    notes: LongText | None = None


class TrainingPublic(BaseModel):
    """A stored training action."""

    id: int
    held_on: dt.date
    entity_id: str | None
    place: str
    kind: str = Field(json_schema_extra={"enum": list(TRAINING_KINDS)})
    kind_label: str = Field(description="El tipo en español.")
    people_trained: int
    trainer: str | None
    notes: str | None
    source: str = Field(description="Procedencia ('api', 'csv:<archivo>', 'synthetic'…).")
    source_id: str | None = Field(description="Referencia del registro en su procedencia.")
    created_at: UtcDateTime
    created_by: str


class TrainingPage(BaseModel):
    items: list[TrainingPublic]
    numberMatched: int


class TrainingImportPublic(BaseModel):
    """What an import of a CSV register did (or, with dry_run, would do)."""

    read: int = Field(description="Filas leídas.")
    inserted: int
    updated: int
    unchanged: int
    dry_run: bool
