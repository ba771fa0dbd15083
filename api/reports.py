"""A citizen's report about a device, as every public door takes it: the JSON API
(``POST /api/defibrillators/{id}/reports``) and the cabinet's page (``/dea/{id}``).

The report counts against the client's limits (:func:`api.security.report_limits`, shared by
every worker), is queued for moderation by :func:`geo.services.registry.report_problem`, marks the
device "sin confirmar" at once on this worker when it says the device is missing or broken (the
other workers see the bumped revision), and the staff are e-mailed after the answer is sent.
"""

from __future__ import annotations

from fastapi import BackgroundTasks, Request

from api.clients import client_key
from api.deps import FinderCache
from api.schemas import ReportCreate
from api.security import refused, report_limits
from geo.city import CityProfile
from geo.core.availability import DOWNGRADING_REPORTS
from geo.io.store import Store
from geo.services import notices, registry
from geo.settings import Settings


def take_report(
    request: Request,
    report: ReportCreate,
    *,
    device_id: str,
    store: Store,
    city: CityProfile,
    settings: Settings,
    finders: FinderCache,
    background: BackgroundTasks,
) -> int:
    """Throttle, store and announce one citizen's ``report`` about ``device_id``; its id.

    Blocking (the database): call it from the thread pool.

    Raises
    ------
    RateLimitedError
        The client is over one of its report limits (429 with ``Retry-After``); nothing is
        stored.
    InputError, NotFoundError
        From :func:`geo.services.registry.report_problem` (no public device ``device_id``).
    """
    limits = report_limits(settings, device_id=device_id, kind=report.kind)
    refusal = store.throttle(client_key(request, secret=settings.client_key_secret), limits)
    if refusal is not None:
        raise refused(refusal)
    report_id = registry.report_problem(
        store,
        city,
        device_id,
        kind=report.kind,
        message=report.message,
        contact=report.contact,
        lon=report.lon,
        lat=report.lat,
    )
    if report.kind in DOWNGRADING_REPORTS:
        finders.invalidate()  # this worker at once; the others see the bumped revision
    # After the answer, and after the report is stored: mail failing never loses the report.
    background.add_task(notices.notify_staff, store, settings, city, report_id)
    return report_id
