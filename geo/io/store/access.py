"""Who may write, and how often anyone may act: API tokens, invitations, the throttle.

Only a SHA-256 of a token's or an invitation's secret is stored; the throttle stores a SHA-256 of
each client's key.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from geo.errors import ConflictError, NotFoundError
from geo.io.store.audit import audit
from geo.io.store.base import StoreBase, naive_utc, require_entities
from geo.io.store.tables import API_TOKENS, ENTITY_INVITATIONS, TABLES, THROTTLE_EVENTS


@dataclass(frozen=True)
class TokenRecord:
    """A stored API token (its secret is never stored, only its SHA-256)."""

    id: int
    secret_hash: str
    role: str
    entity_id: str | None
    label: str
    created_at: dt.datetime
    expires_at: dt.datetime | None
    revoked_at: dt.datetime | None
    last_used_at: dt.datetime | None = None


@dataclass(frozen=True)
class InvitationRecord:
    """A stored invitation link (its secret is never stored, only its SHA-256)."""

    id: int
    entity_id: str
    secret_hash: str
    created_at: dt.datetime
    created_by: str
    expires_at: dt.datetime
    used_at: dt.datetime | None
    revoked_at: dt.datetime | None
    token_id: int | None


@dataclass(frozen=True)
class Throttle:
    """A limit on one client: at most ``limit`` events of ``scope`` in any ``window_s`` seconds.

    With ``distinct``, what is limited is the number of distinct subjects (e.g. devices) of those
    events: repeating a subject already counted in the window does not count again.
    """

    scope: str
    limit: int
    window_s: float
    distinct: bool = False


@dataclass(frozen=True)
class ThrottleRefusal:
    """Why :meth:`Store.throttle` refused: the limit reached and the seconds until it allows."""

    throttle: Throttle
    retry_after_s: int


class AccessRepository(StoreBase):
    """Tokens, invitations and the throttle shared by every worker process."""

    # tokens ---------------------------------------------------------------------------------------

    def insert_token(
        self,
        *,
        secret_hash: str,
        role: str,
        entity_id: str | None,
        label: str,
        expires_at: dt.datetime | None,
        actor: str,
    ) -> int:
        """Store a token's hash; returns its id. An entity token's entity must exist."""
        with self._transaction() as connection:
            if entity_id is not None:
                entities = TABLES["entities"]
                known = connection.execute(
                    sa.select(entities.c.id).where(entities.c.id == entity_id)
                ).first()
                if known is None:
                    msg = f"No existe la entidad {entity_id!r} en la capa de entidades."
                    raise NotFoundError(msg)
            token_id = connection.execute(
                API_TOKENS.insert().values(
                    secret_hash=secret_hash,
                    role=role,
                    entity_id=entity_id,
                    label=label,
                    created_at=self.utcnow(),
                    expires_at=naive_utc(expires_at),
                )
            ).inserted_primary_key
            assert token_id is not None
            new_id = int(token_id[0])
            after = {"role": role, "entity_id": entity_id, "label": label,
                     "expires_at": expires_at}  # fmt: skip
            audit(connection, self.utcnow(), actor, "create", "token", str(new_id), None, after)
        return new_id

    def token(self, token_id: int) -> TokenRecord | None:
        with self.engine.connect() as connection:
            row = connection.execute(
                sa.select(API_TOKENS).where(API_TOKENS.c.id == token_id)
            ).first()
        return None if row is None else TokenRecord(**row._mapping)

    def tokens(self) -> list[TokenRecord]:
        with self.engine.connect() as connection:
            rows = connection.execute(sa.select(API_TOKENS).order_by(API_TOKENS.c.id)).all()
        return [TokenRecord(**row._mapping) for row in rows]

    def revoke_token(self, token_id: int, *, actor: str) -> TokenRecord:
        """Revoke a token now (idempotent: revoking twice keeps the first date)."""
        with self._transaction() as connection:
            row = connection.execute(
                sa.select(API_TOKENS).where(API_TOKENS.c.id == token_id)
            ).first()
            if row is None:
                msg = f"No existe el token {token_id}."
                raise NotFoundError(msg)
            if row.revoked_at is None:
                now = self.utcnow()
                connection.execute(
                    API_TOKENS.update().where(API_TOKENS.c.id == token_id).values(revoked_at=now)
                )
                audit(connection, self.utcnow(), actor, "revoke", "token", str(token_id), None,
                      {"revoked_at": now})  # fmt: skip
        revoked = self.token(token_id)
        assert revoked is not None
        return revoked

    def touch_token(self, token_id: int, *, at: dt.datetime | None = None) -> None:
        """Note that a token was just accepted (written at most once a minute per token)."""
        now = naive_utc(at) or self.utcnow()
        table = API_TOKENS
        with self._transaction() as connection:
            connection.execute(
                table.update()
                .where(
                    table.c.id == token_id,
                    sa.or_(
                        table.c.last_used_at.is_(None),
                        table.c.last_used_at < now - dt.timedelta(minutes=1),
                    ),
                )
                .values(last_used_at=now)
            )

    def entity_tokens(self, entity_id: str) -> list[TokenRecord]:
        """Every token of one entity, oldest first."""
        with self.engine.connect() as connection:
            rows = connection.execute(
                sa.select(API_TOKENS)
                .where(API_TOKENS.c.entity_id == entity_id)
                .order_by(API_TOKENS.c.id)
            ).all()
        return [TokenRecord(**row._mapping) for row in rows]

    def revoke_entity_access(self, entity_id: str, *, actor: str) -> tuple[int, int]:
        """Revoke at once every live token and open invitation of an entity.

        Returns
        -------
        tuple of int
            Tokens revoked, invitations revoked.
        """
        now = self.utcnow()
        with self._transaction() as connection:
            tokens = [
                row.id
                for row in connection.execute(
                    sa.select(API_TOKENS.c.id).where(
                        API_TOKENS.c.entity_id == entity_id, API_TOKENS.c.revoked_at.is_(None)
                    )
                )
            ]
            invitations = [
                row.id
                for row in connection.execute(
                    sa.select(ENTITY_INVITATIONS.c.id).where(
                        ENTITY_INVITATIONS.c.entity_id == entity_id,
                        ENTITY_INVITATIONS.c.used_at.is_(None),
                        ENTITY_INVITATIONS.c.revoked_at.is_(None),
                    )
                )
            ]
            if tokens:
                connection.execute(
                    API_TOKENS.update().where(API_TOKENS.c.id.in_(tokens)).values(revoked_at=now)
                )
            if invitations:
                connection.execute(
                    ENTITY_INVITATIONS.update()
                    .where(ENTITY_INVITATIONS.c.id.in_(invitations))
                    .values(revoked_at=now)
                )
            audit(connection, self.utcnow(), actor, "revoke_access", "entity", entity_id, None,
                  {"tokens": tokens, "invitations": invitations, "revoked_at": now})  # fmt: skip
        return len(tokens), len(invitations)

    # invitations ----------------------------------------------------------------------------------

    def insert_invitation(
        self, *, entity_id: str, secret_hash: str, expires_at: dt.datetime, actor: str
    ) -> int:
        """Store an invitation's hash; returns its id. The entity must exist."""
        with self._transaction() as connection:
            require_entities(connection, [entity_id])
            key = connection.execute(
                ENTITY_INVITATIONS.insert().values(
                    entity_id=entity_id,
                    secret_hash=secret_hash,
                    created_at=self.utcnow(),
                    created_by=actor,
                    expires_at=naive_utc(expires_at),
                )
            ).inserted_primary_key
            assert key is not None
            new_id = int(key[0])
            audit(connection, self.utcnow(), actor, "create", "invitation", str(new_id), None,
                  {"entity_id": entity_id, "expires_at": expires_at})  # fmt: skip
        return new_id

    def invitation(self, invitation_id: int) -> InvitationRecord | None:
        table = ENTITY_INVITATIONS
        with self.engine.connect() as connection:
            row = connection.execute(sa.select(table).where(table.c.id == invitation_id)).first()
        return None if row is None else InvitationRecord(**row._mapping)

    def invitations(self, *, entity_id: str | None = None) -> list[InvitationRecord]:
        """Invitations, newest first."""
        table = ENTITY_INVITATIONS
        query = sa.select(table).order_by(table.c.id.desc())
        if entity_id is not None:
            query = query.where(table.c.entity_id == entity_id)
        with self.engine.connect() as connection:
            rows = connection.execute(query).all()
        return [InvitationRecord(**row._mapping) for row in rows]

    def revoke_invitation(self, invitation_id: int, *, actor: str) -> InvitationRecord:
        """Revoke one invitation now, if still open (used or revoked ones are left as they are).

        Raises
        ------
        NotFoundError
            No such invitation.
        """
        table = ENTITY_INVITATIONS
        with self._transaction() as connection:
            row = connection.execute(sa.select(table).where(table.c.id == invitation_id)).first()
            if row is None:
                msg = f"No existe la invitación {invitation_id}."
                raise NotFoundError(msg)
            if row.used_at is None and row.revoked_at is None:
                now = self.utcnow()
                connection.execute(
                    table.update().where(table.c.id == invitation_id).values(revoked_at=now)
                )
                audit(connection, now, actor, "revoke", "invitation", str(invitation_id), None,
                      {"entity_id": row.entity_id, "revoked_at": now})  # fmt: skip
        revoked = self.invitation(invitation_id)
        assert revoked is not None
        return revoked

    def redeem_invitation(
        self,
        invitation_id: int,
        *,
        secret_hash: str,
        label: str,
        expires_at: dt.datetime,
        actor: str,
    ) -> int:
        """Use an open invitation once and issue its entity a token; returns the token id.

        Both happen in one transaction: two tabs opening the same link get one session.

        Raises
        ------
        ConflictError
            The invitation was used, revoked or expired meanwhile.
        """
        table = ENTITY_INVITATIONS
        now = self.utcnow()
        with self._transaction() as connection:
            row = connection.execute(sa.select(table).where(table.c.id == invitation_id)).one()
            used = connection.execute(
                table.update()
                .where(
                    table.c.id == invitation_id,
                    table.c.used_at.is_(None),
                    table.c.revoked_at.is_(None),
                    table.c.expires_at > now,
                )
                .values(used_at=now)
            ).rowcount
            if used != 1:
                msg = "Esta invitación ya no es válida (usada, revocada o caducada)."
                raise ConflictError(msg)
            key = connection.execute(
                API_TOKENS.insert().values(
                    secret_hash=secret_hash,
                    role="entity",
                    entity_id=row.entity_id,
                    label=label,
                    created_at=now,
                    expires_at=naive_utc(expires_at),
                )
            ).inserted_primary_key
            assert key is not None
            token_id = int(key[0])
            connection.execute(
                table.update().where(table.c.id == invitation_id).values(token_id=token_id)
            )
            audit(connection, self.utcnow(), actor, "redeem", "invitation", str(invitation_id),
                  None, {"entity_id": row.entity_id, "token_id": token_id})  # fmt: skip
            audit(connection, self.utcnow(), actor, "create", "token", str(token_id), None,
                  {"role": "entity", "entity_id": row.entity_id, "label": label,
                    "expires_at": expires_at})  # fmt: skip
        return token_id

    # the throttle ---------------------------------------------------------------------------------

    def throttle(
        self,
        client: str,
        limits: Sequence[tuple[Throttle, str | None]],
        *,
        now: dt.datetime | None = None,
    ) -> ThrottleRefusal | None:
        """Count one event of ``client`` under every ``(throttle, subject)``, if all allow it.

        Atomic across processes: on PostgreSQL the client's events are locked (an advisory
        lock on its key) while they are counted and written; SQLite writes one at a time. If
        any limit is reached nothing is recorded and the first refusal is returned. Events
        older than their window are deleted on the way (every client's, in the scopes of
        ``limits``), so the table holds no more than the events of each scope's last window.

        Parameters
        ----------
        client
            Who acts (its address, or a keyed hash of it); only a SHA-256 of it is stored.
        limits
            Each limit with the event's subject (needed by ``distinct`` limits).
        now
            The instant of the event (default: now).
        """
        key = _throttle_key(client)
        moment = naive_utc(now) if now is not None else self.utcnow()
        assert moment is not None
        table = THROTTLE_EVENTS
        with self._transaction() as connection:
            if connection.dialect.name == "postgresql":
                connection.execute(
                    sa.select(sa.func.pg_advisory_xact_lock(sa.func.hashtextextended(key, 0)))
                )
            for throttle, _ in limits:
                start = moment - dt.timedelta(seconds=throttle.window_s)
                connection.execute(
                    table.delete().where(table.c.scope == throttle.scope, table.c.at <= start)
                )
            refusal = _throttle_refusal(connection, key, limits, moment)
            if refusal is not None:
                return refusal
            connection.execute(
                table.insert(),
                [{"scope": t.scope, "client_key": key, "subject": subject, "at": moment}
                 for t, subject in limits],
            )  # fmt: skip
        return None

    def throttle_check(
        self,
        client: str,
        limits: Sequence[tuple[Throttle, str | None]],
        *,
        now: dt.datetime | None = None,
    ) -> ThrottleRefusal | None:
        """Would :meth:`throttle` refuse ``client`` now? Reads only: nothing is counted.

        For limits on failures (wrong passwords): every attempt is checked first, and only the
        failed ones are counted afterwards with :meth:`throttle`.
        """
        key = _throttle_key(client)
        moment = naive_utc(now) if now is not None else self.utcnow()
        assert moment is not None
        with self.engine.connect() as connection:
            return _throttle_refusal(connection, key, limits, moment)


def _throttle_key(client: str) -> str:
    """What the throttle stores for a client: a SHA-256 of it, never the address itself."""
    return hashlib.sha256(f"cardiomapa-throttle:{client}".encode()).hexdigest()


def _throttle_refusal(
    connection: Connection,
    key: str,
    limits: Sequence[tuple[Throttle, str | None]],
    moment: dt.datetime,
) -> ThrottleRefusal | None:
    """The first of ``limits`` the client ``key`` has reached at ``moment``, if any."""
    table = THROTTLE_EVENTS
    for throttle, subject in limits:
        start = moment - dt.timedelta(seconds=throttle.window_s)
        rows = connection.execute(
            sa.select(table.c.subject, table.c.at)
            .where(table.c.scope == throttle.scope, table.c.client_key == key, table.c.at > start)
            .order_by(table.c.at)
        ).all()
        wait = _throttle_wait(throttle, [(s, a) for s, a in rows], subject, moment)
        if wait is not None:
            return ThrottleRefusal(throttle, wait)
    return None


def _throttle_wait(
    throttle: Throttle,
    events: Sequence[tuple[str | None, dt.datetime]],
    subject: str | None,
    moment: dt.datetime,
) -> int | None:
    """Seconds until ``throttle`` allows one more event (``None``: it allows it now).

    ``events`` are the client's events of the throttle's scope within the window, oldest first.
    """
    window = dt.timedelta(seconds=throttle.window_s)
    if throttle.distinct:
        latest: dict[str | None, dt.datetime] = {}
        for name, at in events:
            latest[name] = at
        if subject in latest or len(latest) < throttle.limit:
            return None
        # A subject stops counting when its latest event leaves the window.
        ends = sorted(at + window for at in latest.values())
        until = ends[len(latest) - throttle.limit]
    else:
        if len(events) < throttle.limit:
            return None
        until = events[len(events) - throttle.limit][1] + window
    # Never more than the window: an event stamped by a process whose clock runs ahead would
    # otherwise ask for longer.
    return min(max(1, math.ceil((until - moment).total_seconds())), math.ceil(throttle.window_s))
