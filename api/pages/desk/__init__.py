"""The staff desk at ``/gestion``: moderation, citizens' reports, audit log, upkeep, entities.

Server-rendered pages for planners and administrators that work without JavaScript (one small
Leaflet map enhances the moderation queue). The session is the staff member's API token in an
HttpOnly cookie limited to ``/gestion`` (:class:`api.web.Session`), checked on every request;
every form post carries the CSRF field and a matching ``Origin``. Every write goes through
:mod:`geo.services.registry`, :mod:`geo.services.tokens` or the store's audited methods, as
the JSON API's do.
"""

from __future__ import annotations

from fastapi import APIRouter

from api.pages.desk import account, audit, devices, entities, moderation, reports, upkeep

router = APIRouter()
# In the order the desk's routes have always been matched in.
for part in (account, moderation, devices, reports, audit, upkeep, entities):
    router.include_router(part.router)
