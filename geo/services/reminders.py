"""Maintenance reminders: one e-mail per entity listing its defibrillators that need upkeep.

Two steps. :func:`plan_reminders` is pure (frames and records in, a frozen plan out): for each
entity it lists the devices it operates (``operator_entity_id``) that are due by
:func:`geo.services.registry.maintenance_due` (the rules of ``/api/maintenance``), without the
(device, reason) pairs already sent within ``repeat_days``. :func:`send_reminders` reads the store,
plans, and sends each entity its own message over SMTP with a fresh one-use sign-in link; only what
the mail server accepted is recorded, so a message that failed is retried on the next run.

Rules:

- Only devices in service (not ``removed``) that are ``verified`` or ``pending``; rejected ones
  are never reminded of.
- An entity without a contact e-mail is listed as skipped, with the reason; so is a device whose
  operator is not in the entities layer.
- A message lists every device due of its entity with every reason due; the same device and
  reason is not sent again within ``repeat_days``.
- The sign-in link (an invitation valid for :data:`INVITATION_DAYS`) is issued only when a
  message is really sent, and revoked when the server refuses it.
"""

from __future__ import annotations

import datetime as dt
import html
import smtplib
import ssl
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid, parseaddr
from typing import Any
from urllib.parse import unquote, urlsplit

import geopandas as gpd
import pandas as pd

from geo.clock import stored_local
from geo.errors import MailConfigError
from geo.io.store import Store
from geo.services.registry import maintenance_due
from geo.services.tokens import issue_invitation
from geo.settings import Settings

#: Reason codes of :func:`geo.services.registry.maintenance_due`, in the order a message lists them.
REASONS = ("battery_expiry", "pads_expiry", "unchecked", "never_checked")
#: Who the audit log says sent the reminders and issued their invitations.
ACTOR = "recordatorios"
#: Days the sign-in link of a reminder stays usable.
INVITATION_DAYS = 7
#: Verification states a reminder is sent for.
REMINDED_VERIFICATION = ("verified", "pending")
#: Default ports of each SMTP URL scheme.
SMTP_SCHEMES = {"smtp": ("plain", 25), "smtp+starttls": ("starttls", 587), "smtps": ("tls", 465)}
SMTP_TIMEOUT_S = 30.0


# --- the plan (pure) ---------------------------------------------------------------------------


@dataclass(frozen=True)
class DueItem:
    """One reason a device is due: its code, the day it concerns (if any) and it in words."""

    reason: str
    day: dt.date | None
    text: str


@dataclass(frozen=True)
class DeviceDue:
    """A device of an entity with the reasons it is due that have not been sent lately."""

    device_id: str
    name: str
    where: str | None
    items: tuple[DueItem, ...]


@dataclass(frozen=True)
class EntityReminder:
    """The message one entity gets: to whom, and its devices due."""

    entity_id: str
    entity_name: str
    recipient: str
    person: str | None
    devices: tuple[DeviceDue, ...]

    def pairs(self) -> list[tuple[str, str]]:
        """(device id, reason) of every item of the message."""
        return [(device.device_id, item.reason) for device in self.devices for item in device.items]


@dataclass(frozen=True)
class SkippedEntity:
    """An entity with devices due that no message can reach, and why (in Spanish)."""

    entity_id: str
    entity_name: str | None
    reason: str
    devices: tuple[DeviceDue, ...]


@dataclass(frozen=True)
class ReminderPlan:
    """What a run sends.

    Attributes
    ----------
    messages
        One per entity with a contact e-mail and something new to remind, by entity id.
    skipped
        Entities with devices due but no e-mail (or not in the entities layer).
    held_back
        (device, reason) pairs due but already sent within ``repeat_days``.
    unassigned
        Ids of devices due that no entity operates (nobody to remind).
    """

    today: dt.date
    within_days: int
    unchecked_days: int
    repeat_days: int
    messages: tuple[EntityReminder, ...]
    skipped: tuple[SkippedEntity, ...]
    held_back: int
    unassigned: tuple[str, ...]


def plan_reminders(
    devices: gpd.GeoDataFrame,
    entities: gpd.GeoDataFrame,
    contacts: Mapping[str, Mapping[str, Any]],
    sent: Sequence[Mapping[str, Any]],
    *,
    today: dt.date,
    within_days: int,
    unchecked_days: int,
    repeat_days: int,
    now: dt.datetime,
) -> ReminderPlan:
    """Plan the reminders of one run.

    Parameters
    ----------
    devices
        The defibrillators layer (any CRS; geometry is not used).
    entities
        The entities layer (``id``, ``name``).
    contacts
        Private contacts by entity id (``person``, ``email``, ``phone``), as
        :meth:`Store.contacts` returns them.
    sent
        Reminders sent before (``device_id``, ``reason``, ``sent_at`` naive UTC or aware).
    today
        The day expiries and checks are measured from (the city's local date).
    within_days, unchecked_days
        The rules of :func:`geo.services.registry.maintenance_due`.
    repeat_days
        A (device, reason) pair sent after ``now - repeat_days`` is not sent again.
    now
        The instant of the run (naive UTC or aware).
    """
    kept = devices[devices["verification"].isin(REMINDED_VERIFICATION)]
    due = maintenance_due(kept, today=today, within_days=within_days, unchecked_days=unchecked_days)
    since = naive_utc(now) - dt.timedelta(days=repeat_days)
    recent = {
        (str(row["device_id"]), str(row["reason"]))
        for row in sent
        if naive_utc(row["sent_at"]) > since
    }
    details = kept.drop(columns="geometry").set_index("id")
    names = dict(zip(entities["id"], entities["name"], strict=True))
    by_entity: dict[str, list[DeviceDue]] = {}
    unassigned: list[str] = []
    held_back = 0
    for row in due.to_dict("records"):
        entity_id = _text(row["operator_entity_id"])
        if entity_id is None:
            unassigned.append(str(row["id"]))
            continue
        reasons = [r for r in REASONS if r in row["reasons"]]
        fresh = [r for r in reasons if (str(row["id"]), r) not in recent]
        held_back += len(reasons) - len(fresh)
        if not fresh:
            continue
        record = details.loc[row["id"]]
        items = tuple(_item(reason, row, today=today) for reason in fresh)
        place = [_text(record.get("location_text")), _text(record.get("address"))]
        where = " · ".join(part for part in place if part) or None
        by_entity.setdefault(entity_id, []).append(
            DeviceDue(str(row["id"]), str(row["name"]), where, items)
        )
    messages: list[EntityReminder] = []
    skipped: list[SkippedEntity] = []
    for entity_id in sorted(by_entity):
        listed = tuple(sorted(by_entity[entity_id], key=lambda d: (d.name, d.device_id)))
        name = names.get(entity_id)
        contact = contacts.get(entity_id) or {}
        email = _text(contact.get("email"))
        if name is None:
            reason = "la entidad no está en la capa de entidades"
            skipped.append(SkippedEntity(entity_id, None, reason, listed))
        elif email is None:
            reason = (
                "sin correo electrónico de contacto (solo teléfono)"
                if _text(contact.get("phone"))
                else "sin datos de contacto"
            )
            skipped.append(SkippedEntity(entity_id, str(name), reason, listed))
        else:
            person = _text(contact.get("person"))
            messages.append(EntityReminder(entity_id, str(name), email, person, listed))
    return ReminderPlan(
        today=today,
        within_days=within_days,
        unchecked_days=unchecked_days,
        repeat_days=repeat_days,
        messages=tuple(messages),
        skipped=tuple(skipped),
        held_back=held_back,
        unassigned=tuple(sorted(unassigned)),
    )


def _item(reason: str, row: Mapping[str, Any], *, today: dt.date) -> DueItem:
    if reason == "never_checked":
        return DueItem(reason, None, "nunca revisado: no consta ninguna revisión")
    if reason == "unchecked":
        day = row["check_date"]
        return DueItem(reason, day, f"sin revisar desde el {day:%d/%m/%Y} ({_ago(today - day)})")
    day = row[reason]
    left = (day - today).days
    if reason == "battery_expiry":
        thing, future, past = "la batería", "caduca", "caducó"
    else:
        thing, future, past = "los parches", "caducan", "caducaron"
    if left > 0:
        text = f"{thing} {future} el {day:%d/%m/%Y} (en {_days(left)})"
    elif left == 0:
        text = f"{thing} {future} hoy, {day:%d/%m/%Y}"
    else:
        text = f"{thing} {past} el {day:%d/%m/%Y} (hace {_days(-left)})"
    return DueItem(reason, day, text)


def _days(count: int) -> str:
    return "1 día" if count == 1 else f"{count} días"


def _ago(delta: dt.timedelta) -> str:
    return f"hace {_days(delta.days)}"


def _text(value: Any) -> str | None:
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return None
    text = str(value).strip()
    return text or None


def naive_utc(value: dt.datetime) -> dt.datetime:
    if value.tzinfo is None:
        return value
    return value.astimezone(dt.UTC).replace(tzinfo=None)


# --- the message -------------------------------------------------------------------------------


def subject(reminder: EntityReminder) -> str:
    """The message's subject (one line)."""
    return f"Desfibriladores: revisiones pendientes — {_one_line(reminder.entity_name)}"


def message_text(
    reminder: EntityReminder,
    *,
    city_name: str,
    link: str | None,
    link_expires: dt.date | None = None,
) -> str:
    """The plain-text body. ``link`` ``None``: a dry run (the link is made only when sending)."""
    greeting = f"Hola, {reminder.person}:" if reminder.person else "Hola:"
    count = len(reminder.devices)
    what = "un desfibrilador" if count == 1 else f"{count} desfibriladores"
    verb = "necesita" if count == 1 else "necesitan"
    lines = [
        greeting,
        "",
        f"Le escribimos desde el mapa de desfibriladores de {city_name} porque {what} de "
        f"{reminder.entity_name} {verb} atención:",
        "",
    ]
    for device in reminder.devices:
        lines.append(f"* {device.name}" + (f" ({device.where})" if device.where else ""))
        lines.extend(f"  - {item.text}" for item in device.items)
    lines += [
        "",
        "Para anotar una revisión o las nuevas fechas de caducidad, entre en el portal de "
        "entidades con este enlace:",
        "",
    ]
    if link is None:
        lines.append("  (el enlace de acceso se genera al enviar el mensaje)")
    else:
        lines.append(f"  {link}")
    expiry = f", y caduca el {link_expires:%d/%m/%Y}" if link_expires is not None else ""
    lines += [
        "",
        f"El enlace sirve una sola vez{expiry}; si caduca, pida otro al Ayuntamiento.",
        "",
        "En «Mis desfibriladores», pulse «Revisado hoy» junto al equipo cuando lo haya "
        "revisado (luz de estado en verde, parches y batería en fecha). Si ha cambiado la "
        "batería o los parches, abra el equipo y ponga sus nuevas fechas de caducidad.",
        "",
        "Gracias por mantener su desfibrilador listo para una emergencia.",
        "",
        f"— Mapa de desfibriladores de {city_name}",
        "",
        "Recibe este aviso porque su entidad figura como responsable de estos equipos. Si ya no "
        "lo es, o el correo ha cambiado, responda a este mensaje.",
    ]
    return "\n".join(lines) + "\n"


def message_html(
    reminder: EntityReminder,
    *,
    city_name: str,
    link: str | None,
    link_expires: dt.date | None = None,
) -> str:
    """The HTML alternative: the same text, every entity-given value escaped."""
    e = html.escape
    greeting = f"Hola, {e(reminder.person)}:" if reminder.person else "Hola:"
    count = len(reminder.devices)
    what = "un desfibrilador" if count == 1 else f"{count} desfibriladores"
    verb = "necesita" if count == 1 else "necesitan"
    rows = []
    for device in reminder.devices:
        where = f" <small>({e(device.where)})</small>" if device.where else ""
        items = "".join(f"<li>{e(item.text)}</li>" for item in device.items)
        rows.append(f"<li><strong>{e(device.name)}</strong>{where}<ul>{items}</ul></li>")
    if link is None:
        access = "<p><em>(el enlace de acceso se genera al enviar el mensaje)</em></p>"
    else:
        access = f'<p><a href="{e(link, quote=True)}">Entrar en el portal de entidades</a></p>'
    expiry = f", y caduca el {link_expires:%d/%m/%Y}" if link_expires is not None else ""
    return (
        '<!DOCTYPE html><html lang="es"><head><meta charset="utf-8">'
        f"<title>{e(subject(reminder))}</title></head><body>"
        f"<p>{greeting}</p>"
        f"<p>Le escribimos desde el mapa de desfibriladores de {e(city_name)} porque {what} de "
        f"{e(reminder.entity_name)} {verb} atención:</p>"
        f"<ul>{''.join(rows)}</ul>"
        "<p>Para anotar una revisión o las nuevas fechas de caducidad, entre en el portal de "
        "entidades con este enlace:</p>"
        f"{access}"
        f"<p>El enlace sirve una sola vez{expiry}; si caduca, pida otro al Ayuntamiento.</p>"
        "<p>En «Mis desfibriladores», pulse «Revisado hoy» junto al equipo cuando lo haya "
        "revisado (luz de estado en verde, parches y batería en fecha). Si ha cambiado la "
        "batería o los parches, abra el equipo y ponga sus nuevas fechas de caducidad.</p>"
        "<p>Gracias por mantener su desfibrilador listo para una emergencia.</p>"
        f"<p>— Mapa de desfibriladores de {e(city_name)}</p>"
        "</body></html>"
    )


def build_message(
    reminder: EntityReminder,
    *,
    mail_from: str,
    city_name: str,
    link: str,
    link_expires: dt.date | None,
    now: dt.datetime,
) -> EmailMessage:
    """The e-mail to send: plain text with an HTML alternative, and every header set."""
    message = EmailMessage()
    message["From"] = mail_from
    message["To"] = Address(display_name=_one_line(reminder.person or ""),
                            addr_spec=reminder.recipient)  # fmt: skip
    message["Subject"] = subject(reminder)
    aware = now if now.tzinfo is not None else now.replace(tzinfo=dt.UTC)
    message["Date"] = format_datetime(aware)
    domain = _sender(mail_from).rpartition("@")[2] or None
    message["Message-ID"] = make_msgid(domain=domain)
    message["Auto-Submitted"] = "auto-generated"
    text = message_text(reminder, city_name=city_name, link=link, link_expires=link_expires)
    page = message_html(reminder, city_name=city_name, link=link, link_expires=link_expires)
    message.set_content(text)
    message.add_alternative(page, subtype="html")
    return message


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _sender(mail_from: str) -> str:
    return parseaddr(mail_from)[1] or mail_from


# --- SMTP --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SmtpTarget:
    """Where and how to send: ``security`` is ``plain`` (STARTTLS if offered), ``starttls``
    (required) or ``tls`` (TLS from the start)."""

    host: str
    port: int
    security: str
    username: str | None = None
    password: str | None = field(default=None, repr=False)


def parse_smtp_url(
    url: str, *, username: str | None = None, password: str | None = None
) -> SmtpTarget:
    """Read ``smtp://``, ``smtp+starttls://`` or ``smtps://[user:password@]host[:port]``.

    Credentials in the URL are percent-decoded and win over ``username`` / ``password``.

    Raises
    ------
    MailConfigError
        Another scheme, no host or a malformed port.
    """
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    if scheme not in SMTP_SCHEMES:
        msg = (
            f"CARDIOMAPA_SMTP_URL {_redacted(url)!r} no es válida: se admite "
            "smtp://servidor:puerto (STARTTLS si el servidor lo ofrece), "
            "smtp+starttls://servidor:puerto (STARTTLS obligatorio) o smtps://servidor:puerto "
            "(TLS desde el principio)."
        )
        raise MailConfigError(msg)
    security, default_port = SMTP_SCHEMES[scheme]
    try:
        port = parts.port or default_port
    except ValueError:
        msg = f"CARDIOMAPA_SMTP_URL {_redacted(url)!r}: el puerto no es un número válido."
        raise MailConfigError(msg) from None
    if not parts.hostname:
        msg = f"CARDIOMAPA_SMTP_URL {_redacted(url)!r} no dice a qué servidor conectarse."
        raise MailConfigError(msg)
    user = unquote(parts.username) if parts.username else username
    secret = unquote(parts.password) if parts.password is not None else password
    return SmtpTarget(parts.hostname, port, security, user or None, secret)


def _redacted(url: str) -> str:
    parts = urlsplit(url.strip())
    if parts.password is None:
        return url.strip()
    host = parts.netloc.rpartition("@")[2]
    return parts._replace(netloc=f"{parts.username}:***@{host}").geturl()


def connect(target: SmtpTarget, *, timeout_s: float = SMTP_TIMEOUT_S) -> smtplib.SMTP:
    """An open, authenticated SMTP session.

    Raises
    ------
    OSError, smtplib.SMTPException
        The server cannot be reached, does not offer a required STARTTLS, or refuses the login.
    """
    context = ssl.create_default_context()
    client: smtplib.SMTP
    if target.security == "tls":
        client = smtplib.SMTP_SSL(target.host, target.port, timeout=timeout_s, context=context)
    else:
        client = smtplib.SMTP(target.host, target.port, timeout=timeout_s)
    try:
        client.ehlo()
        if target.security == "starttls" or (
            target.security == "plain" and client.has_extn("starttls")
        ):
            if not client.has_extn("starttls"):
                msg = "el servidor no ofrece STARTTLS y smtp+starttls:// lo exige"
                raise smtplib.SMTPNotSupportedError(msg)
            client.starttls(context=context)
            client.ehlo()
        if target.username:
            client.login(target.username, target.password or "")
    except BaseException:
        client.close()
        raise
    return client


# --- a run -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SentReminder:
    """A message the server accepted."""

    entity_id: str
    recipient: str
    message_id: str
    items: int


@dataclass(frozen=True)
class FailedReminder:
    """A message that was not sent (nothing recorded: the next run tries again)."""

    entity_id: str
    recipient: str
    error: str


@dataclass(frozen=True)
class ReminderRun:
    """What :func:`send_reminders` did; with ``dry_run``, nothing was sent or written."""

    plan: ReminderPlan
    dry_run: bool
    sent: tuple[SentReminder, ...]
    failed: tuple[FailedReminder, ...]

    @property
    def ok(self) -> bool:
        return not self.failed


def mail_settings_problem(settings: Settings) -> str | None:
    """Why reminders cannot be sent with these settings (Spanish), or ``None``."""
    missing = [
        name
        for name, value in (
            ("CARDIOMAPA_SMTP_URL", settings.smtp_url),
            ("CARDIOMAPA_MAIL_FROM", settings.mail_from),
        )
        if not (value or "").strip()
    ]
    if not missing:
        return None
    return (
        f"No se puede enviar correo: falta {' y '.join(missing)}. Defina, p. ej., "
        "CARDIOMAPA_SMTP_URL=smtp+starttls://correo.example.org:587 (o smtps://…:465, "
        "o smtp://…:25), CARDIOMAPA_MAIL_FROM='Desfibriladores <dea@example.org>' y, si el "
        "servidor pide usuario, CARDIOMAPA_SMTP_USERNAME y CARDIOMAPA_SMTP_PASSWORD. "
        "Con --dry-run se ve qué se enviaría sin enviar nada."
    )


def send_reminders(
    store: Store,
    settings: Settings,
    *,
    today: dt.date,
    dry_run: bool,
    within_days: int | None = None,
    unchecked_days: int | None = None,
    repeat_days: int | None = None,
    now: dt.datetime | None = None,
    base_url: str | None = None,
) -> ReminderRun:
    """Plan and (unless ``dry_run``) send this run's reminders, one message per entity.

    Parameters
    ----------
    today
        The city's local date the rules measure from.
    dry_run
        Plan only: nothing is sent, recorded or issued (no invitation).
    within_days, unchecked_days, repeat_days
        Override ``settings.reminder_*``.
    now
        The instant of the run (default: now); sent reminders are recorded at it.
    base_url
        Where the invitation links start (default: ``settings.base_url()``); the command line
        passes the configured public URL or the running ``serve``'s address.

    Raises
    ------
    MailConfigError
        Not a dry run, and ``smtp_url`` or ``mail_from`` is unset or malformed (nothing sent).
    """
    current = now or store.clock.now()
    target: SmtpTarget | None = None
    if not dry_run:
        problem = mail_settings_problem(settings)
        if problem is not None:
            raise MailConfigError(problem)
        assert settings.smtp_url is not None
        target = parse_smtp_url(settings.smtp_url, username=settings.smtp_username,
                                password=settings.smtp_password)  # fmt: skip
    repeat = settings.reminder_repeat_days if repeat_days is None else repeat_days
    plan = plan_reminders(
        store.query_layer("defibrillators"),
        store.query_layer("entities"),
        store.contacts(),
        store.reminders_sent(since=naive_utc(current) - dt.timedelta(days=repeat)),
        today=today,
        within_days=settings.reminder_within_days if within_days is None else within_days,
        unchecked_days=settings.reminder_unchecked_days
        if unchecked_days is None
        else unchecked_days,
        repeat_days=repeat,
        now=current,
    )
    if dry_run or not plan.messages:
        return ReminderRun(plan, dry_run, (), ())
    assert target is not None and settings.mail_from is not None
    city = settings.load_city()
    city_name = city.name
    sent: list[SentReminder] = []
    failed: list[FailedReminder] = []
    client: smtplib.SMTP | None = None
    try:
        for reminder in plan.messages:
            invitation = issue_invitation(store, entity_id=reminder.entity_id,
                                          days=INVITATION_DAYS, actor=ACTOR)  # fmt: skip
            message = build_message(
                reminder,
                mail_from=settings.mail_from,
                city_name=city_name,
                link=invitation.url(base_url or settings.base_url()),
                link_expires=stored_local(invitation.record.expires_at, city.timezone).date(),
                now=current,
            )
            try:
                if client is None:
                    client = connect(target)
                client.send_message(
                    message, from_addr=_sender(settings.mail_from), to_addrs=[reminder.recipient]
                )
            except (smtplib.SMTPException, OSError) as exc:
                store.revoke_invitation(invitation.record.id, actor=ACTOR)
                failed.append(FailedReminder(reminder.entity_id, reminder.recipient,
                                             _describe(exc)))  # fmt: skip
                if client is not None and not isinstance(
                    exc, smtplib.SMTPRecipientsRefused | smtplib.SMTPDataError
                ):
                    client.close()  # the session may be broken: reconnect for the next one
                    client = None
                continue
            rows = [
                {"entity_id": reminder.entity_id, "device_id": device_id, "reason": reason,
                 "recipient": reminder.recipient}
                for device_id, reason in reminder.pairs()
            ]  # fmt: skip
            store.record_reminders(rows, actor=ACTOR, at=current)
            sent.append(SentReminder(reminder.entity_id, reminder.recipient,
                                     str(message["Message-ID"]), len(rows)))  # fmt: skip
    finally:
        if client is not None:
            _quit(client)
    return ReminderRun(plan, dry_run, tuple(sent), tuple(failed))


def send_message(settings: Settings, message: EmailMessage, recipients: Sequence[str]) -> None:
    """Send one message through the configured server: connect, send, quit.

    For a single message (e.g. a staff notice); a run of reminders keeps one session instead.

    Raises
    ------
    MailConfigError
        ``smtp_url`` or ``mail_from`` is unset or malformed.
    OSError, smtplib.SMTPException
        The server cannot be reached or refuses the message (:func:`describe_failure`).
    """
    if not (settings.smtp_url or "").strip() or not (settings.mail_from or "").strip():
        msg = "No se puede enviar correo: falta CARDIOMAPA_SMTP_URL o CARDIOMAPA_MAIL_FROM."
        raise MailConfigError(msg)
    assert settings.smtp_url is not None and settings.mail_from is not None
    target = parse_smtp_url(settings.smtp_url, username=settings.smtp_username,
                            password=settings.smtp_password)  # fmt: skip
    client = connect(target)
    try:
        client.send_message(message, from_addr=_sender(settings.mail_from),
                            to_addrs=list(recipients))  # fmt: skip
    finally:
        _quit(client)


def _quit(client: smtplib.SMTP) -> None:
    try:
        client.quit()
    except (smtplib.SMTPException, OSError):
        client.close()


def describe_failure(exc: BaseException) -> str:
    """A failure in Spanish, with the server's own words when it gave any."""
    return _describe(exc)


def _describe(exc: BaseException) -> str:
    """A failure in Spanish, with the server's own words when it gave any."""
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        answers = "; ".join(
            f"{code} {reply.decode('utf-8', 'replace') if isinstance(reply, bytes) else reply}"
            for code, reply in exc.recipients.values()
        )
        return f"el servidor rechazó el destinatario ({answers})"
    if isinstance(exc, smtplib.SMTPResponseException):
        reply = exc.smtp_error
        text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)
        return f"el servidor respondió {exc.smtp_code} {text}"
    if isinstance(exc, smtplib.SMTPNotSupportedError):
        return str(exc)
    if isinstance(exc, smtplib.SMTPServerDisconnected):
        return f"el servidor cortó la conexión ({exc})"
    if isinstance(exc, OSError):
        return f"no se pudo conectar con el servidor de correo ({exc.strerror or exc})"
    return str(exc)


def run_summary(run: ReminderRun) -> dict[str, Any]:
    """The run as JSON-able data (for ``--format json``)."""
    plan = run.plan

    def devices(listed: Sequence[DeviceDue]) -> list[dict[str, Any]]:
        return [
            {"id": d.device_id, "name": d.name, "where": d.where,
             "reasons": [{"code": i.reason, "day": i.day.isoformat() if i.day else None,
                          "text": i.text} for i in d.items]}
            for d in listed
        ]  # fmt: skip

    sent = {s.entity_id: s for s in run.sent}
    failed = {f.entity_id: f for f in run.failed}

    def state(entity_id: str) -> str:
        if run.dry_run:
            return "would_send"
        if entity_id in sent:
            return "sent"
        return "failed" if entity_id in failed else "not_sent"

    return {
        "today": plan.today.isoformat(), "dry_run": run.dry_run,
        "within_days": plan.within_days, "unchecked_days": plan.unchecked_days,
        "repeat_days": plan.repeat_days,
        "messages": [
            {"entity_id": m.entity_id, "entity_name": m.entity_name, "recipient": m.recipient,
             "status": state(m.entity_id),
             "error": failed[m.entity_id].error if m.entity_id in failed else None,
             "devices": devices(m.devices)}
            for m in plan.messages
        ],
        "skipped": [
            {"entity_id": s.entity_id, "entity_name": s.entity_name, "reason": s.reason,
             "devices": devices(s.devices)}
            for s in plan.skipped
        ],
        "held_back": plan.held_back, "unassigned": list(plan.unassigned),
        "sent": len(run.sent), "failed": len(run.failed),
    }  # fmt: skip
