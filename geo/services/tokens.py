"""API tokens: issued once, stored as a SHA-256 of their secret, checked in constant time.

A token reads ``cm_<id>_<secret>``: the id finds the stored row without scanning, the secret (32
random bytes, URL-safe) is compared by its hash with :func:`hmac.compare_digest`. A fast hash is
right here: the secret has 256 bits of entropy, so there is nothing for a slow hash to protect.

Roles: ``entity`` (writes only its own devices), ``planner`` (moderation, analysis, audit),
``admin`` (all of that, plus editing any device) and ``dispatch`` (the 112 dispatch centre: only
its feed of usable devices with their emergency notes; anywhere else it sees what the public
sees).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass

from geo.clock import local_text
from geo.errors import (
    AuthenticationError,
    ConflictError,
    ForbiddenError,
    TokenError,
)
from geo.io.store import ROLES, InvitationRecord, Store, TokenRecord

TOKEN_PREFIX = "cm"
_TOKEN = re.compile(r"^cm_(?P<id>[1-9][0-9]{0,17})_(?P<secret>[A-Za-z0-9_-]{43})$")
INVITATION_PREFIX = "ci"
_INVITATION = re.compile(r"^ci_(?P<id>[1-9][0-9]{0,17})_(?P<secret>[A-Za-z0-9_-]{43})$")
#: How long an invitation link stays usable, and the web session it opens.
INVITATION_DAYS = 7
ENTITY_SESSION_DAYS = 30


@dataclass(frozen=True)
class Principal:
    """Who is asking: the token's id, role and (for entities) entity."""

    token_id: int
    role: str
    entity_id: str | None
    label: str

    @property
    def actor(self) -> str:
        """How the audit log names this principal."""
        who = f"entidad {self.entity_id}" if self.entity_id else self.role
        return f"token {self.token_id} ({who}: {self.label})"

    @property
    def is_staff(self) -> bool:
        """Planners and administrators."""
        return self.role in ("planner", "admin")


@dataclass(frozen=True)
class IssuedToken:
    """A token just created: ``secret`` is shown once and never stored."""

    record: TokenRecord
    secret: str


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def issue_token(
    store: Store,
    *,
    role: str,
    entity_id: str | None = None,
    label: str | None = None,
    expires_at: dt.datetime | None = None,
    actor: str = "cli",
) -> IssuedToken:
    """Create a token for an entity (``role="entity"``), a planner, an administrator or the 112
    dispatch centre (``role="dispatch"``).

    Raises
    ------
    ValueError
        The role is unknown, or the entity is missing for an entity token (or given for another
        role).
    """
    if role not in ROLES:
        msg = f"Rol {role!r} desconocido; se admite: {', '.join(ROLES)}."
        raise TokenError(msg)
    if (role == "entity") != (entity_id is not None):
        others = [r for r in ROLES if r != "entity"]
        msg = (
            f"Un token de entidad necesita --entity; los de {', '.join(others[:-1])} y "
            f"{others[-1]} no llevan entidad."
        )
        raise TokenError(msg)
    secret = secrets.token_urlsafe(32)
    token_id = store.insert_token(
        secret_hash=hash_secret(secret),
        role=role,
        entity_id=entity_id,
        label=label or (f"entidad {entity_id}" if entity_id else role),
        expires_at=expires_at,
        actor=actor,
    )
    record = store.token(token_id)
    assert record is not None
    return IssuedToken(record, f"{TOKEN_PREFIX}_{token_id}_{secret}")


def authenticate(
    store: Store,
    presented: str | None,
    *,
    now: dt.datetime | None = None,
    timezone: str | None = None,
) -> Principal:
    """The principal a presented token stands for.

    Raises
    ------
    AuthenticationError
        Missing, malformed, unknown, revoked or expired token. The message does not say which
        of unknown or wrong secret it was.
    """
    if not presented:
        msg = "Falta el token: envíe la cabecera Authorization: Bearer <token>."
        raise AuthenticationError(msg)
    match = _TOKEN.fullmatch(presented.strip())
    if match is None:
        msg = "Token mal formado: se espera cm_<número>_<secreto>, tal como se emitió."
        raise AuthenticationError(msg)
    record = store.token(int(match["id"]))
    expected = record.secret_hash if record is not None else hash_secret("")
    if not hmac.compare_digest(expected, hash_secret(match["secret"])) or record is None:
        msg = "Token no válido."
        raise AuthenticationError(msg)
    if record.revoked_at is not None:
        msg = f"Este token fue revocado{_when(record.revoked_at, timezone)}."
        raise AuthenticationError(msg)
    current = now or store.utcnow()
    if record.expires_at is not None and record.expires_at <= current:
        msg = f"Este token caducó{_when(record.expires_at, timezone)}."
        raise AuthenticationError(msg)
    if record.last_used_at is None or record.last_used_at < current - dt.timedelta(minutes=1):
        store.touch_token(record.id, at=current)
    return Principal(record.id, record.role, record.entity_id, record.label)


def require_role(principal: Principal, *roles: str) -> None:
    """Refuse (403) a principal whose role is not among ``roles``."""
    if principal.role not in roles:
        msg = (
            f"Su token ({principal.role}) no permite esta operación; "
            f"hace falta un token de {' o '.join(roles)}."
        )
        raise ForbiddenError(msg)


# --- invitation links -------------------------------------------------------------------------


@dataclass(frozen=True)
class IssuedInvitation:
    """An invitation just created: ``code`` (``ci_<id>_<secret>``) is shown once, never stored."""

    record: InvitationRecord
    code: str

    def url(self, base_url: str) -> str:
        """The sign-in link under ``base_url`` (e.g. ``https://dea.example.org``)."""
        return f"{base_url.rstrip('/')}/entidades/invitacion/{self.code}"


def issue_invitation(
    store: Store,
    *,
    entity_id: str,
    days: float = INVITATION_DAYS,
    actor: str = "cli",
    now: dt.datetime | None = None,
) -> IssuedInvitation:
    """A one-use sign-in link for an entity, valid for ``days``."""
    secret = secrets.token_urlsafe(32)
    current = now or store.clock.now()
    invitation_id = store.insert_invitation(
        entity_id=entity_id,
        secret_hash=hash_secret(secret),
        expires_at=current + dt.timedelta(days=days),
        actor=actor,
    )
    record = store.invitation(invitation_id)
    assert record is not None
    return IssuedInvitation(record, f"{INVITATION_PREFIX}_{invitation_id}_{secret}")


def _when(at: dt.datetime, timezone: str | None) -> str:
    """`` el 01/03/2026 a las 10:30`` in the city's time, or nothing when its zone is unknown
    (a person never reads a UTC time)."""
    return "" if timezone is None else local_text(at, timezone, pattern=" el %d/%m/%Y a las %H:%M")


def check_invitation(
    store: Store, code: str, *, now: dt.datetime | None = None, timezone: str | None = None
) -> InvitationRecord:
    """The open invitation ``code`` stands for.

    Raises
    ------
    AuthenticationError
        Malformed, unknown, used, revoked or expired; the message says which in plain words
        (except unknown versus wrong secret).
    """
    match = _INVITATION.fullmatch(code.strip())
    if match is None:
        msg = "El enlace de invitación está incompleto: cópielo entero del mensaje recibido."
        raise AuthenticationError(msg)
    record = store.invitation(int(match["id"]))
    expected = record.secret_hash if record is not None else hash_secret("")
    if not hmac.compare_digest(expected, hash_secret(match["secret"])) or record is None:
        msg = "Este enlace de invitación no es válido."
        raise AuthenticationError(msg)
    current = now or store.utcnow()
    if record.used_at is not None:
        msg = (
            f"Este enlace ya se usó{_when(record.used_at, timezone)}. Cada enlace "
            "sirve una sola vez: pida otro al Ayuntamiento."
        )
        raise AuthenticationError(msg)
    if record.revoked_at is not None:
        msg = "Este enlace fue anulado por el Ayuntamiento. Pida otro si lo necesita."
        raise AuthenticationError(msg)
    if record.expires_at <= current:
        msg = f"Este enlace caducó{_when(record.expires_at, timezone)}. Pida otro al Ayuntamiento."
        raise AuthenticationError(msg)
    return record


def redeem_invitation(
    store: Store,
    code: str,
    *,
    session_days: float = ENTITY_SESSION_DAYS,
    now: dt.datetime | None = None,
    timezone: str | None = None,
) -> IssuedToken:
    """Use an invitation once: issues its entity a token that lasts ``session_days``.

    Raises
    ------
    AuthenticationError
        The code is not an open invitation (see :func:`check_invitation`), or it was used by
        someone else in the same instant.
    """
    record = check_invitation(store, code, now=now, timezone=timezone)
    secret = secrets.token_urlsafe(32)
    current = now or store.clock.now()
    try:
        token_id = store.redeem_invitation(
            record.id,
            secret_hash=hash_secret(secret),
            label=f"sesión web (invitación {record.id})",
            expires_at=current + dt.timedelta(days=session_days),
            actor=f"invitación {record.id} (entidad {record.entity_id})",
        )
    except ConflictError as exc:
        raise AuthenticationError(str(exc)) from exc
    token = store.token(token_id)
    assert token is not None
    return IssuedToken(token, f"{TOKEN_PREFIX}_{token_id}_{secret}")
