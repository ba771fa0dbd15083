"""Staff notices: an e-mail to the city's staff for each citizen's report about a device.

Sent after the report is stored, never instead: a mail server that is down or refuses the message
costs the notice (logged), never the report, which waits in the desk's queue either way. The
message goes through the outgoing-mail settings the maintenance reminders use
(:func:`geo.services.reminders.send_message`) to ``Settings.staff_emails``.

It is plain text only (whatever a citizen typed stays inert), says which device, what kind of
problem, when (the city's local time, in Spanish), the citizen's message and where to review it at
the desk. The reporter's contact is never in it: staff read it at the desk, behind their sign-in.
"""

from __future__ import annotations

import datetime as dt
import logging
import smtplib
from collections.abc import Mapping, Sequence
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid, parseaddr
from typing import Any
from urllib.parse import quote

from geo.city import CityProfile
from geo.clock import stored_local
from geo.core.availability import DOWNGRADING_REPORTS, WEEKDAY_NAMES
from geo.errors import MailConfigError
from geo.io.store import Store
from geo.services.registry import REPORT_KIND_TEXT
from geo.services.reminders import describe_failure, send_message
from geo.settings import Settings

logger = logging.getLogger(__name__)

#: Longest message text quoted in a notice (the API accepts 1,000 characters).
QUOTE_MAX_CHARS = 2000


def local_words(instant: dt.datetime, timezone: str) -> str:
    """An instant as the city reads it: ``lunes 07/12/2026 a las 10:15`` (naive = UTC)."""
    local = stored_local(instant, timezone)
    return f"{WEEKDAY_NAMES[local.weekday()]} {local:%d/%m/%Y} a las {local:%H:%M}"


def _one_line(text: Any) -> str:
    return " ".join(str(text or "").split())


def report_message(
    report: Mapping[str, Any],
    device: Mapping[str, Any],
    *,
    city: CityProfile,
    mail_from: str,
    recipients: Sequence[str],
    base_url: str,
    now: dt.datetime,
) -> EmailMessage:
    """The notice of one report (plain text; the reporter's contact is left out on purpose).

    Parameters
    ----------
    report
        As stored (``id``, ``device_id``, ``kind``, ``message``, ``created_at`` naive UTC…).
    device
        The device reported (``id``, ``name``, ``location_text``, ``address``).
    base_url
        Where staff reach the server (``Settings.base_url()``): the desk links start there.
    """
    kind = str(report["kind"])
    what = REPORT_KIND_TEXT.get(kind, kind)
    name = _one_line(device.get("name")) or str(device["id"])
    desk = base_url.rstrip("/")
    device_url = f"{desk}/gestion/desfibriladores/{quote(str(device['id']), safe='')}"
    lines = [
        f"Un ciudadano ha avisado de un problema con un desfibrilador de {city.name}.",
        "",
        f"Desfibrilador: {name} ({device['id']})",
    ]
    for label, key in (("Ubicación", "location_text"), ("Dirección", "address")):
        if _one_line(device.get(key)):
            lines.append(f"{label}: {_one_line(device.get(key))}")
    lines += [
        f"Aviso: {what}",
        f"Recibido: {local_words(report['created_at'], city.timezone)} (hora de {city.name})",
        "",
        "Mensaje:",
    ]
    text = str(report.get("message") or "")[:QUOTE_MAX_CHARS]
    lines += [f"  {line}" for line in text.splitlines() or [""]]
    lines.append("")
    if kind in DOWNGRADING_REPORTS:
        lines += [
            "Mientras nadie lo revise, el mapa ciudadano lo muestra como «avisado, sin "
            "confirmar» y no lo da por disponible. Descarte el aviso si el equipo está bien, o "
            "resuélvalo (y déjelo fuera de servicio) si es cierto.",
            "",
        ]
    if report.get("contact"):
        lines += ["El aviso incluye un contacto de quien avisó: véalo en la mesa de gestión.", ""]
    lines += [
        f"Avisos pendientes: {desk}/gestion/avisos",
        f"Ficha del desfibrilador: {device_url}",
        "",
        f"— Mapa de desfibriladores de {city.name}",
    ]
    message = EmailMessage()
    message["From"] = mail_from
    message["To"] = ", ".join(recipients)
    message["Subject"] = f"Aviso ciudadano: {what} — {name}"
    message["Date"] = format_datetime(now if now.tzinfo else now.replace(tzinfo=dt.UTC))
    domain = (parseaddr(mail_from)[1] or mail_from).rpartition("@")[2] or None
    message["Message-ID"] = make_msgid(domain=domain)
    message["Auto-Submitted"] = "auto-generated"
    message.set_content("\n".join(lines))
    return message


def notify_staff(
    store: Store,
    settings: Settings,
    city: CityProfile,
    report_id: int,
    *,
    now: dt.datetime | None = None,
) -> bool:
    """E-mail ``settings.staff_emails`` about report ``report_id``; never raises for mail.

    Returns
    -------
    bool
        ``True`` if the server accepted the message; ``False`` if there is nobody to tell, mail
        is not configured, or sending failed (logged as a warning with the reason).
    """
    recipients = list(settings.staff_emails)
    if not recipients or not settings.smtp_url or not settings.mail_from:
        return False
    report = store.report(report_id)
    device = store.device(str(report["device_id"])) if report is not None else None
    if report is None or device is None:
        return False
    message = report_message(
        report, device, city=city, mail_from=settings.mail_from, recipients=recipients,
        base_url=settings.base_url(), now=now or store.clock.now(),
    )  # fmt: skip
    try:
        send_message(settings, message, recipients)
    except (MailConfigError, smtplib.SMTPException, OSError) as exc:
        reason = str(exc) if isinstance(exc, MailConfigError) else describe_failure(exc)
        logger.warning("Aviso %s: no se pudo avisar al personal por correo: %s", report_id, reason)
        return False
    return True
