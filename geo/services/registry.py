"""The device registry: what entities, planners and citizens may write, and the rules it obeys.

A service like :mod:`geo.services.inputs`: it checks who may do what, validates every write with
the same layer schema the files are validated with (:func:`geo.core.layers.parse_feature`), and
hands the write to :class:`geo.io.store.Store`, which makes it atomic and audited. The HTTP API
calls these functions and only translates errors into status codes.

Rules:

- An entity registers devices for itself; they enter as ``pending`` until a planner or an
  administrator verifies them. It may update only its own devices; moving a verified device sends
  it back to ``pending``.
- Citizens' problem reports go to a moderation queue; they never change a device's record. A
  pending "missing"/"broken" report marks it "sin confirmar" on the map until staff review it or
  its entity confirms the device (a check: "Revisado hoy").
- Staff (planners, administrators) may take a device out of service and back, with a reason.
- Upkeep dates are checked against the city's date, which the caller passes as ``today`` from
  its clock (never read here): a last check in the future, or before installation, is refused;
  an expiry already past is accepted, and :func:`geo.core.layers.upkeep_warnings` says so.
- A use reported with new pads records the use and the device's new ``pads_expiry`` in one
  transaction (:func:`record_use`).
- Every update is conditional on the version it was read at, and retried from a fresh read when
  another writer got there first, so no acknowledged change is lost.
"""

from __future__ import annotations

import datetime as dt
import random
import time
import uuid
from collections.abc import Iterator, Mapping
from typing import Any
from zoneinfo import ZoneInfo

import geopandas as gpd
import pandas as pd
import shapely

from geo.city import CityProfile
from geo.core.availability import DOWNGRADING_REPORTS
from geo.core.layers import DEFIBRILLATORS, check_inside, parse_feature
from geo.errors import (
    ConflictError,
    ForbiddenError,
    InputError,
    LayerValidationError,
    NotFoundError,
    Problem,
    VersionMismatchError,
)
from geo.io.store import REPORT_KINDS, Store
from geo.services.tokens import Principal, require_role

#: Fields an entity may set when registering or updating its device.
EDITABLE_FIELDS = (
    "name", "location_text", "address", "access", "opening_hours", "indoor", "level", "phone",
    "status", "installed_on", "removed_on", "check_date", "battery_expiry", "pads_expiry",
    "is_mobile",
)  # fmt: skip
#: Details an entity may give that have no column of their own: kept in the device's ``tags``.
TAG_FIELDS = ("model", "serial_number")
REGISTRATION_SOURCE = "entity-registration"
#: The Norwegian registry deactivates devices not confirmed every 6 months.
UNCHECKED_DAYS = 183


def register_device(
    store: Store,
    city: CityProfile,
    principal: Principal,
    *,
    properties: Mapping[str, Any],
    geometry: Mapping[str, Any],
    private: Mapping[str, str | None] | None = None,
    operator_entity_id: str | None = None,
    today: dt.date,
) -> dict[str, Any]:
    """Register a new device as ``pending``; returns the stored record (with ``version``).

    ``today`` is the city's local date by the caller's clock (a check date after it is refused).

    Raises
    ------
    ForbiddenError
        A planner token (planners moderate, they do not register), or an entity naming another
        entity as operator.
    LayerValidationError
        Any field or the position is not acceptable (all problems at once).
    """
    require_role(principal, "entity", "admin")
    if principal.role == "entity":
        if operator_entity_id not in (None, principal.entity_id):
            msg = "Una entidad solo puede registrar desfibriladores propios."
            raise ForbiddenError(msg)
        operator_entity_id = principal.entity_id
    elif (
        operator_entity_id is not None
        and store.query_layer("entities", ids=[operator_entity_id]).empty
    ):
        msg = f"No existe la entidad {operator_entity_id!r} en la capa de entidades."
        raise InputError(msg, code="unknown_entity", field="operator_entity_id")
    device_id = f"dea-{uuid.uuid4().hex[:12]}"
    feature = {
        "type": "Feature",
        "geometry": dict(geometry),
        "properties": {
            "status": "active",
            **_editable(properties),
            "tags": _tags({}, properties),
            "id": device_id,
            "operator_entity_id": operator_entity_id,
            "verification": "pending",
            "source": REGISTRATION_SOURCE,
        },
    }
    record = _validated(feature, city, today=today)
    store.insert_device(record, actor=principal.actor, private=_private(private))
    stored = store.device(device_id)
    assert stored is not None
    return stored


def field_problems(
    city: CityProfile, properties: Mapping[str, Any], *, today: dt.date
) -> list[Problem]:
    """What is wrong with a registration's fields alone, its position aside.

    For a form sent without a position: its other problems are reported with that one, all at
    once, instead of after the position is fixed. Nothing is written.
    """
    feature = {
        "type": "Feature",
        "geometry": {"type": "Point", "coordinates": [city.centre_lon, city.centre_lat]},
        "properties": {
            "status": "active", **_editable(properties), "tags": _tags({}, properties),
            "id": "dea-form", "verification": "pending", "source": REGISTRATION_SOURCE,
        },
    }  # fmt: skip
    _, problems = parse_feature(feature, DEFIBRILLATORS, city, file="petición", today=today)
    return [problem for problem in problems if problem.field != "geometry"]


#: How long a write that merges (no If-Match) keeps re-reading and re-applying itself while
#: other writers change the same device, before giving up with 409.
MERGE_BUDGET_S = 30.0
#: Longest pause between two attempts (s); each pause is drawn at random up to twice the last.
MAX_MERGE_PAUSE_S = 0.1
_JITTER = random.Random()


def merge_attempts(budget_s: float = MERGE_BUDGET_S) -> Iterator[int]:
    """Attempt numbers of an optimistic write that merges: the first at once, the next ones
    after a growing, random pause (about 1 ms, 2 ms, 4 ms … up to :data:`MAX_MERGE_PAUSE_S`),
    until ``budget_s`` seconds have passed.

    A fixed number of immediate retries was not enough: with two dozen clients changing one
    device at the same moment, the same ones kept losing the race and got 409 although a blind
    update is documented to merge. Random pauses spread the retries out, so each writer soon
    finds the device quiet; the budget only bounds a pathological storm.
    """
    deadline = time.monotonic() + budget_s
    attempt = 0
    while True:
        yield attempt
        attempt += 1
        if time.monotonic() >= deadline:
            return
        pause = min(MAX_MERGE_PAUSE_S, 0.001 * 2**attempt)
        time.sleep(_JITTER.uniform(0, pause))


def update_device(
    store: Store,
    city: CityProfile,
    principal: Principal,
    device_id: str,
    *,
    changes: Mapping[str, Any],
    geometry: Mapping[str, Any] | None = None,
    private: Mapping[str, str | None] | None = None,
    if_version: int | None = None,
    budget_s: float = MERGE_BUDGET_S,
    resolve_reports: str | None = None,
    today: dt.date,
) -> dict[str, Any]:
    """Apply ``changes`` (and a new position) to a device the principal may edit.

    Parameters
    ----------
    today
        The city's local date by the caller's clock (a check date after it is refused).
    if_version
        The version the client read (``If-Match``); the update is refused if it changed since.
        Without it, a concurrent change is merged: the update is re-applied on a fresh read.
    budget_s
        How long a merging update keeps retrying while others write (:func:`merge_attempts`).
    resolve_reports
        The change confirms the device (a check): its pending "missing"/"broken" reports are
        resolved with this note, in the same transaction.

    Returns
    -------
    dict
        The device as this update stored it, with its new ``version``.

    Raises
    ------
    NotFoundError, ForbiddenError, VersionMismatchError, LayerValidationError
    ConflictError
        Without ``if_version``, other writers kept winning for ``budget_s`` seconds.
    """
    require_role(principal, "entity", "admin")
    for _ in merge_attempts(budget_s):
        before = visible_device(store, principal, device_id)
        if principal.role == "entity" and before["operator_entity_id"] != principal.entity_id:
            msg = f"El desfibrilador {device_id!r} pertenece a otra entidad."
            raise ForbiddenError(msg)
        if if_version is not None and before["version"] != if_version:
            msg = (
                f"El desfibrilador {device_id!r} está en la versión {before['version']}, no en "
                f"la {if_version} que envió (If-Match); vuelva a leerlo."
            )
            raise VersionMismatchError(msg)
        properties = _feature_properties(before) | _editable(changes)
        properties["tags"] = _tags(before.get("tags") or {}, changes)
        moved = geometry is not None and not shapely.geometry.shape(geometry).equals(
            before["geometry"]
        )
        if moved and principal.role == "entity" and properties["verification"] == "verified":
            properties["verification"] = "pending"  # a new position must be checked again
        feature = {
            "type": "Feature",
            "geometry": dict(geometry) if geometry is not None else _point(before["geometry"]),
            "properties": properties,
        }
        after = _validated(feature, city, today=today)
        try:
            version = store.update_device(before, after, actor=principal.actor,
                                          private=_private(private),
                                          resolve_reports=resolve_reports)  # fmt: skip
        except ConflictError:
            continue  # someone else wrote first: read again and re-apply
        # What this write stored (the same record a read gives), not a read after it: another
        # writer may have changed the device since, and the answer must describe this change.
        return {**after, "version": version}
    msg = f"El desfibrilador {device_id!r} cambia demasiado a menudo; inténtelo de nuevo."
    raise ConflictError(msg)


def review_device(
    store: Store, principal: Principal, device_id: str, *, decision: str, note: str | None = None
) -> dict[str, Any]:
    """Verify or reject a pending device (planners and administrators).

    Raises
    ------
    ConflictError
        It is not pending (someone reviewed it already).
    """
    require_role(principal, "planner", "admin")
    if decision not in ("verified", "rejected"):
        msg = f"Decisión {decision!r} no admitida; se admite verified o rejected."
        raise InputError(msg, code="invalid_choice", field="decision")
    before = visible_device(store, principal, device_id)
    if before["verification"] != "pending":
        msg = f"El desfibrilador {device_id!r} no está pendiente ({before['verification']})."
        raise ConflictError(msg)
    # The note goes to the audit log with the change; the device has no field for it.
    after = {**before, "verification": decision, "review_note": note}
    action = "verify" if decision == "verified" else "reject"
    store.update_device(before, after, actor=principal.actor, action=action)
    stored = store.device(device_id)
    assert stored is not None
    return stored


def visible_device(store: Store, principal: Principal | None, device_id: str) -> dict[str, Any]:
    """A device as ``principal`` may see it: verified ones for all, others for owner and staff.

    Raises
    ------
    NotFoundError
        No such device, or one the principal may not see (no hint that it exists).
    """
    record = store.device(device_id)
    if record is None or not can_see(principal, record):
        msg = f"No existe el desfibrilador {device_id!r}."
        raise NotFoundError(msg)
    return record


def can_see(principal: Principal | None, record: Mapping[str, Any]) -> bool:
    """Verified devices are public; pending and rejected ones only for their entity and staff."""
    if record["verification"] == "verified":
        return True
    return principal is not None and (principal.is_staff or _owns(principal, record))


def can_see_private(principal: Principal | None, record: Mapping[str, Any]) -> bool:
    """Emergency-only notes: the owning entity and staff, never the public. (The 112 dispatch
    centre reads them in its own feed, ``/api/dispatch/defibrillators.geojson``, and nowhere
    else: here a dispatch token is the public.)"""
    return principal is not None and (principal.is_staff or _owns(principal, record))


def _owns(principal: Principal, record: Mapping[str, Any]) -> bool:
    """An entity's token and a device of that entity. Only entity tokens name an entity: the
    others (planner, admin, dispatch) own nothing, not even the devices of no entity."""
    return principal.role == "entity" and principal.entity_id == record["operator_entity_id"]


# --- citizens' reports and uses --------------------------------------------------------------


def report_problem(
    store: Store,
    city: CityProfile,
    device_id: str,
    *,
    kind: str,
    message: str,
    contact: str | None = None,
    lon: float | None = None,
    lat: float | None = None,
) -> int:
    """Queue a citizen's report about a verified device; returns the report id."""
    if kind not in REPORT_KINDS:
        msg = f"Tipo de aviso {kind!r} no admitido; se admite: {', '.join(REPORT_KINDS)}."
        raise InputError(msg, code="invalid_choice", field="kind")
    if not message.strip():
        msg = "Describa el problema en el mensaje."
        raise InputError(msg, code="missing_field", field="message")
    if (lon is None) != (lat is None):
        msg = "Para indicar la posición correcta envíe lon y lat juntos."
        raise InputError(msg, code="missing_field", field="lon" if lon is None else "lat")
    if lon is not None and lat is not None:
        check_inside(lon, lat, city, field="lon")
    visible_device(store, None, device_id)
    values = {"device_id": device_id, "kind": kind, "message": message.strip(),
              "contact": contact, "lon": lon, "lat": lat}  # fmt: skip
    return store.insert_report(values, actor="ciudadanía (aviso público)")


def review_report(
    store: Store,
    principal: Principal,
    report_id: int,
    *,
    decision: str,
    note: str | None,
    out_of_service: bool = False,
    today: dt.date | None = None,
) -> dict[str, Any]:
    """Accept or reject a pending report (planners and administrators).

    With ``out_of_service``, accepting a "missing"/"broken" report also takes its device out of
    service (:func:`set_in_service`), the note (or the report's kind) being the reason.

    Raises
    ------
    ConflictError
        The report was already reviewed, or (after it is accepted) the device is not in service.
    """
    require_role(principal, "planner", "admin")
    if decision not in ("accepted", "rejected"):
        msg = f"Decisión {decision!r} no admitida; se admite accepted o rejected."
        raise InputError(msg, code="invalid_choice", field="decision")
    if out_of_service and decision != "accepted":
        msg = "Solo al resolver un aviso se puede dejar el desfibrilador fuera de servicio."
        raise InputError(msg, code="inconsistent_values", field="fuera_de_servicio")
    report = store.review_report(report_id, status=decision, note=note, actor=principal.actor)
    if out_of_service and report["kind"] in DOWNGRADING_REPORTS:
        what = REPORT_KIND_TEXT.get(str(report["kind"]), str(report["kind"]))
        reason = f"Aviso ciudadano {report_id} confirmado ({what})" + (f": {note}" if note else "")
        set_in_service(store, principal, str(report["device_id"]), in_service=False,
                       reason=reason, today=today)  # fmt: skip
    return report


#: Citizens' report kinds in Spanish (the public form's words).
REPORT_KIND_TEXT = {
    "missing": "No está / ha desaparecido",
    "broken": "Averiado o sin batería",
    "moved": "Está en otro sitio",
    "wrong_hours": "Horario incorrecto",
    "other": "Otro problema",
}
#: Longest reason for taking a device out of service or back.
REASON_MAX_CHARS = 500
#: A device's ``status`` in words.
STATUS_TEXT = {"active": "en servicio", "out_of_service": "fuera de servicio",
               "removed": "retirado"}  # fmt: skip
BACK_IN_SERVICE = "volvió a poner el equipo en servicio"


def confirmation_note(who: str, day: dt.date, *, what: str = "confirmó el equipo") -> str:
    """The note a confirmation leaves on the reports it resolves, e.g. "La entidad confirmó el
    equipo el 07/12/2026"."""
    return f"{who} {what} el {day:%d/%m/%Y}"


def set_in_service(
    store: Store,
    principal: Principal,
    device_id: str,
    *,
    in_service: bool,
    reason: str,
    today: dt.date | None = None,
    budget_s: float = MERGE_BUDGET_S,
) -> dict[str, Any]:
    """Take a device out of service, or put it back, with a reason (planners, administrators).

    The reason goes to the audit log with the change (``status_reason``). Putting a device back
    in service says it is there and working: its pending "missing"/"broken" reports are resolved
    in the same transaction.

    Raises
    ------
    InputError
        No reason, or a reason over :data:`REASON_MAX_CHARS` characters.
    ConflictError
        The device is not in the state the change starts from (``active`` to take it out,
        ``out_of_service`` to put it back; a removed device stays removed).
    """
    require_role(principal, "planner", "admin")
    reason = " ".join(reason.split())
    if not reason:
        msg = (
            "Escriba el motivo: queda en el registro de cambios con su nombre y la fecha."
            if not in_service
            else "Escriba por qué vuelve a estar en servicio (queda en el registro de cambios)."
        )
        raise InputError(msg, code="missing_field", field="motivo")
    if len(reason) > REASON_MAX_CHARS:
        msg = f"El motivo es demasiado largo: como mucho {REASON_MAX_CHARS} caracteres."
        raise InputError(msg, code="too_long", field="motivo")
    start, end = ("out_of_service", "active") if in_service else ("active", "out_of_service")
    for _ in merge_attempts(budget_s):
        before = visible_device(store, principal, device_id)
        if before["status"] != start:
            state = STATUS_TEXT.get(str(before["status"]), str(before["status"]))
            msg = f"El desfibrilador {device_id!r} está {state}: no se puede cambiar así."
            raise ConflictError(msg)
        after = {**before, "status": end, "status_reason": reason}
        resolve = None
        if in_service:
            day = today or store.clock.now().date()  # callers pass the city's date
            back = confirmation_note("El personal municipal", day, what=BACK_IN_SERVICE)
            resolve = f"{back}: {reason}"
        action = "back_in_service" if in_service else "out_of_service"
        try:
            store.update_device(before, after, actor=principal.actor, action=action,
                                resolve_reports=resolve)  # fmt: skip
        except ConflictError:
            continue  # someone else wrote first: read again
        stored = store.device(device_id)
        assert stored is not None
        return stored
    msg = f"El desfibrilador {device_id!r} cambia demasiado a menudo; inténtelo de nuevo."
    raise ConflictError(msg)


def confirm_device(
    store: Store,
    principal: Principal,
    device_id: str,
    *,
    today: dt.date,
    budget_s: float = MERGE_BUDGET_S,
) -> dict[str, Any]:
    """Staff record a check of a device today (e.g. its entity confirmed it by phone).

    Sets ``check_date`` to ``today`` and resolves the device's pending "missing"/"broken"
    reports ("El personal municipal confirmó el equipo el …"), in one audited write.
    """
    require_role(principal, "planner", "admin")
    note = confirmation_note("El personal municipal", today)
    for _ in merge_attempts(budget_s):
        before = visible_device(store, principal, device_id)
        after = {**before, "check_date": today}
        try:
            store.update_device(before, after, actor=principal.actor, action="check",
                                resolve_reports=note)  # fmt: skip
        except ConflictError:
            continue
        stored = store.device(device_id)
        assert stored is not None
        return stored
    msg = f"El desfibrilador {device_id!r} cambia demasiado a menudo; inténtelo de nuevo."
    raise ConflictError(msg)


def record_use(
    store: Store,
    city: CityProfile,
    principal: Principal,
    device_id: str,
    *,
    values: Mapping[str, Any],
    now: dt.datetime,
    budget_s: float = MERGE_BUDGET_S,
) -> int:
    """Record a use of a device (its entity or staff), as the regional communication asks.

    With ``pads_replaced`` true, ``pads_expiry`` (the new pads' expiry) becomes the device's:
    the use and the device change are written in one transaction (the change audited and the
    device's version bumped, as any update), or neither is. Rules for the new pads:

    - ``pads_expiry`` is required when ``pads_replaced`` is true, and refused otherwise;
    - it must not have passed (before the city's date of ``now``): new pads in date were put in,
      so a past date is a typo, unlike the device form, which accepts an expired date with a
      warning because it describes the pads the device has;
    - it must be later than the day of the use (the city's local date of ``used_at``).

    Parameters
    ----------
    values
        The use, as :class:`api.schemas.UseCreate` holds it (``used_at`` without a zone is UTC).
    now
        The current instant by the caller's clock: a use later than it is refused, and the
        city's date of it is "today" for the pads' expiry.

    Returns
    -------
    int
        The use's id.

    Raises
    ------
    InputError
        A use in the future, shocks without a shock delivered, an impossible age, new pads
        without an expiry or with one already past or not after the use…
    LayerValidationError
        The device with its new pads is not acceptable (another of its fields is wrong).
    ConflictError
        The device changes too often to be updated.
    """
    require_role(principal, "entity", "planner", "admin")
    record = visible_device(store, principal, device_id)
    if principal.role == "entity" and record["operator_entity_id"] != principal.entity_id:
        msg = f"El desfibrilador {device_id!r} pertenece a otra entidad."
        raise ForbiddenError(msg)
    used_at: dt.datetime = values["used_at"]
    aware = used_at if used_at.tzinfo else used_at.replace(tzinfo=dt.UTC)
    if aware > now + dt.timedelta(minutes=5):
        msg = f"La fecha de uso {used_at:%Y-%m-%d %H:%M} está en el futuro."
        raise InputError(msg, code="date_in_future", field="used_at")
    shocks = values.get("shocks")
    if values.get("shock_delivered") is False and shocks:
        msg = "Se indicaron descargas pero shock_delivered es false."
        raise InputError(msg, code="inconsistent_values", field="shocks")
    use = {name: value for name, value in values.items() if name not in USE_PADS_FIELDS}
    use["device_id"] = device_id
    zone = ZoneInfo(city.timezone)
    today = now.astimezone(zone).date()
    pads_expiry = _new_pads_expiry(values, used_on=aware.astimezone(zone).date(), today=today)
    if pads_expiry is None:
        return store.insert_use(use, actor=principal.actor)
    for _ in merge_attempts(budget_s):
        before = visible_device(store, principal, device_id)
        properties = _feature_properties(before) | {"pads_expiry": pads_expiry.isoformat()}
        feature = {"type": "Feature", "geometry": _point(before["geometry"]),
                   "properties": properties}  # fmt: skip
        after = _validated(feature, city, today=today)
        try:
            return store.insert_use(use, actor=principal.actor, device_change=(before, after))
        except ConflictError:
            continue  # the device changed meanwhile: nothing was written; read it again
    msg = f"El desfibrilador {device_id!r} cambia demasiado a menudo; inténtelo de nuevo."
    raise ConflictError(msg)


#: Fields of a use that are about the device's pads, not the use: never stored with the use.
USE_PADS_FIELDS = ("pads_replaced", "pads_expiry")


def _new_pads_expiry(
    values: Mapping[str, Any], *, used_on: dt.date, today: dt.date
) -> dt.date | None:
    """The expiry of the pads put in after a use, checked (see :func:`record_use`), or ``None``."""
    replaced, expiry = values.get("pads_replaced"), values.get("pads_expiry")
    if replaced is not True:
        if expiry is not None:
            msg = (
                "Se indicó la caducidad de unos parches nuevos sin decir que se cambiaron: "
                "envíe pads_replaced true con ella, o no la envíe si no se cambiaron."
            )
            raise InputError(msg, code="inconsistent_values", field="pads_expiry")
        return None
    if not isinstance(expiry, dt.date):
        msg = (
            "Si se cambiaron los parches, indique la caducidad de los nuevos (AAAA-MM-DD), "
            "la de su etiqueta: pasa a ser la de los parches del desfibrilador."
        )
        raise InputError(msg, code="missing_field", field="pads_expiry")
    if expiry < today:
        msg = (
            f"La caducidad de los parches nuevos, {expiry:%d/%m/%Y} ({expiry.isoformat()}), ya "
            f"ha pasado (hoy es {today:%d/%m/%Y}); se admite la fecha de su etiqueta, hoy o "
            "posterior. Revise la fecha."
        )
        raise InputError(msg, code="date_in_past", field="pads_expiry")
    if expiry <= used_on:
        msg = (
            f"La caducidad de los parches nuevos, {expiry:%d/%m/%Y} ({expiry.isoformat()}), no "
            f"es posterior al día del uso ({used_on:%d/%m/%Y}); se admite una fecha posterior "
            "al uso."
        )
        raise InputError(msg, code="dates_out_of_order", field="pads_expiry")
    return expiry


# --- maintenance -----------------------------------------------------------------------------


def maintenance_due(
    devices: gpd.GeoDataFrame,
    *,
    today: dt.date,
    within_days: int = 30,
    unchecked_days: int = UNCHECKED_DAYS,
) -> pd.DataFrame:
    """Devices in service whose battery or pads expire soon, or that nobody checked lately.

    Returns
    -------
    pandas.DataFrame
        One row per device due, with ``reasons`` (codes: ``battery_expiry``, ``pads_expiry``,
        ``unchecked``, ``never_checked``) and ``days_left`` (to the earliest expiry; negative if
        already expired), ordered by urgency.
    """
    horizon = today + dt.timedelta(days=within_days)
    stale = today - dt.timedelta(days=unchecked_days)
    rows = []
    in_service = devices[devices["status"] != "removed"]
    for record in in_service.drop(columns="geometry").to_dict("records"):
        reasons, expiries = [], []
        for name in ("battery_expiry", "pads_expiry"):
            day = record.get(name)
            if isinstance(day, dt.date) and day <= horizon:
                reasons.append(name)
                expiries.append(day)
        checked = record.get("check_date")
        if not isinstance(checked, dt.date):
            reasons.append("never_checked")
        elif checked < stale:
            reasons.append("unchecked")
        if reasons:
            earliest = min(expiries) if expiries else None
            rows.append({
                "id": record["id"], "name": record["name"],
                "operator_entity_id": record.get("operator_entity_id"),
                "reasons": reasons, "battery_expiry": record.get("battery_expiry"),
                "pads_expiry": record.get("pads_expiry"), "check_date": checked,
                "days_left": (earliest - today).days if earliest else None,
            })  # fmt: skip
    frame = pd.DataFrame(
        rows,
        columns=["id", "name", "operator_entity_id", "reasons", "battery_expiry", "pads_expiry",
                 "check_date", "days_left"],
    )  # fmt: skip
    urgency = frame["days_left"].fillna(10**6)
    return (
        frame.assign(_u=urgency).sort_values(["_u", "id"]).drop(columns="_u").reset_index(drop=True)
    )


# --- helpers ---------------------------------------------------------------------------------


def _editable(values: Mapping[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(values) - set(EDITABLE_FIELDS) - set(TAG_FIELDS))
    if unknown:
        allowed = ", ".join((*EDITABLE_FIELDS, *TAG_FIELDS))
        msg = f"Campo {unknown[0]!r} no modificable; se admite: {allowed}."
        raise InputError(msg, code="unknown_field", field=unknown[0])
    return {name: value for name, value in values.items() if name not in TAG_FIELDS}


def _tags(before: Mapping[str, Any], changes: Mapping[str, Any]) -> dict[str, Any]:
    """The device's tags with the entity's model and serial number applied (empty: removed)."""
    tags = dict(before)
    for name in TAG_FIELDS:
        if name in changes:
            value = changes[name]
            if value is None or not str(value).strip():
                tags.pop(name, None)
            else:
                tags[name] = str(value).strip()[:200]
    return tags


def _private(values: Mapping[str, str | None] | None) -> dict[str, str | None] | None:
    if values is None:
        return None
    return {name: values.get(name) for name in ("cabinet_code", "key_holder", "notes")}


def _feature_properties(record: Mapping[str, Any]) -> dict[str, Any]:
    """A stored record back as GeoJSON properties (dates as text), to validate it again."""
    properties = {}
    for name in DEFIBRILLATORS.field_names:
        value = record.get(name)
        properties[name] = value.isoformat() if isinstance(value, dt.date) else value
    return properties


def _point(geometry: shapely.Geometry) -> dict[str, Any]:
    return dict(shapely.geometry.mapping(geometry))


def _validated(feature: Mapping[str, Any], city: CityProfile, *, today: dt.date) -> dict[str, Any]:
    record, problems = parse_feature(
        dict(feature), DEFIBRILLATORS, city, file="petición", today=today
    )
    if problems or record is None:
        raise LayerValidationError(problems)
    return record
