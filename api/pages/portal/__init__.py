"""The entity portal, ``/entidades``: an entity registers and looks after its defibrillators.

For people who have never seen an API: sign in with an invitation link (or a pasted token), see
"Mis desfibriladores" with their moderation state, state now and upkeep, register a device
(map, weekly hours editor, emergency-only notes), edit it, record a check in one tap, mark it out
of service or removed, report a use, and keep the entity's private contact up to date.

Every write goes through :mod:`geo.services.registry` (devices, uses) or the store's audited
``set_contacts``, with the same validation as the JSON API; these pages only turn form fields
into those calls and their errors back into messages next to the fields.
"""

from __future__ import annotations

from fastapi import APIRouter

from api.pages.portal import account, contact, device_form, devices, uses

router = APIRouter()
# In the order the portal's routes have always been matched in.
for part in (devices, account, device_form, uses, contact):
    router.include_router(part.router)
