"""API tokens: issued once, stored hashed, refused when revoked, expired, forged or malformed."""

from __future__ import annotations

import datetime as dt

import pytest

from geo.core.layers import Layers
from geo.errors import AuthenticationError, NotFoundError, TokenError
from geo.io.store import Store
from geo.services.tokens import authenticate, hash_secret, issue_token
from tests.conftest import TINY_DIR
from tests.test_cli import cli


@pytest.fixture
def loaded(store: Store, tiny_layers: Layers) -> Store:
    store.load(tiny_layers)
    return store


def test_a_token_authenticates_as_what_it_was_issued_for(loaded: Store) -> None:
    issued = issue_token(loaded, role="entity", entity_id="ent-1", label="Residencia")
    principal = authenticate(loaded, issued.secret)
    assert (principal.role, principal.entity_id) == ("entity", "ent-1")
    assert principal.actor == f"token {issued.record.id} (entidad ent-1: Residencia)"
    stored = loaded.token(issued.record.id)
    assert stored is not None
    assert stored.secret_hash == hash_secret(issued.secret.split("_", 2)[2])
    assert issued.secret.split("_", 2)[2] not in stored.secret_hash


@pytest.mark.parametrize(
    "presented",
    [None, "", "hola", "cm_1_", "cm_0_" + "a" * 43, "cm_1_" + "a" * 42, "Bearer cm_1_x",
     "cm_99999_" + "a" * 43],
)  # fmt: skip
def test_missing_malformed_or_unknown_tokens_are_refused(
    loaded: Store, presented: str | None
) -> None:
    issue_token(loaded, role="admin")
    with pytest.raises(AuthenticationError):
        authenticate(loaded, presented)


def test_a_forged_secret_for_a_real_id_is_refused(loaded: Store) -> None:
    issued = issue_token(loaded, role="admin")
    forged = issued.secret[:-1] + ("A" if issued.secret[-1] != "A" else "B")
    with pytest.raises(AuthenticationError, match="no válido"):
        authenticate(loaded, forged)


def test_revoked_and_expired_tokens_are_refused(loaded: Store) -> None:
    issued = issue_token(loaded, role="planner")
    loaded.revoke_token(issued.record.id, actor="test")
    with pytest.raises(AuthenticationError, match="revocado"):
        authenticate(loaded, issued.secret)
    soon = dt.datetime(2026, 12, 1, tzinfo=dt.UTC)
    expiring = issue_token(loaded, role="planner", expires_at=soon)
    assert authenticate(loaded, expiring.secret, now=dt.datetime(2026, 11, 30, 23, 59)).role
    with pytest.raises(AuthenticationError, match="caducó"):
        authenticate(loaded, expiring.secret, now=dt.datetime(2026, 12, 1, 0, 0))


def test_tokens_cannot_be_issued_for_nonsense(loaded: Store) -> None:
    with pytest.raises(TokenError):
        issue_token(loaded, role="root")
    with pytest.raises(TokenError):
        issue_token(loaded, role="entity")
    with pytest.raises(TokenError):
        issue_token(loaded, role="admin", entity_id="ent-1")
    with pytest.raises(TokenError, match="planner, admin y dispatch no llevan entidad"):
        issue_token(loaded, role="dispatch", entity_id="ent-1")
    with pytest.raises(NotFoundError):
        issue_token(loaded, role="entity", entity_id="ent-99")
    assert loaded.tokens() == []


def test_issuing_and_revoking_are_audited(loaded: Store) -> None:
    issued = issue_token(loaded, role="admin", actor="cli")
    loaded.revoke_token(issued.record.id, actor="cli")
    entries, total = loaded.audit_entries(record_type="token")
    assert total == 2 and [e["action"] for e in entries] == ["revoke", "create"]
    assert all(issued.secret.split("_", 2)[2] not in str(e) for e in entries)


def test_the_token_commands(db_url: str) -> None:
    cli(db_url, "load", "--data-dir", str(TINY_DIR))
    code, out, err = cli(db_url, "token", "create", "--entity", "ent-1", "--expires-days", "30")
    assert code == 0, err
    secret = out.strip()
    assert secret.startswith("cm_1_") and "no se volverá a mostrar" in err
    code, out, err = cli(db_url, "token", "create", "--role", "planner", "--label", "Ana")
    assert code == 0, err
    code, out, _ = cli(db_url, "token", "list")
    assert "ent-1" in out and "Ana" in out and "activo" in out and secret[5:] not in out
    code, out, _ = cli(db_url, "token", "revoke", "1")
    assert code == 0 and "revocado" in out
    with Store.open(db_url) as store, pytest.raises(AuthenticationError):
        authenticate(store, secret)
    code, _, err = cli(db_url, "token", "create", "--entity", "ent-99")
    assert code == 1 and "ent-99" in err
    code, _, err = cli(db_url, "token", "create")
    assert code == 2 and "--entity" in err
    code, _, err = cli(db_url, "token", "create", "--role", "root")
    assert code == 2 and "use planner, admin, dispatch" in err
    code, _, err = cli(db_url, "token", "revoke", "42")
    assert code == 1 and "42" in err


def test_the_112_dispatch_centre_gets_a_token_of_its_own(db_url: str) -> None:
    cli(db_url, "load", "--data-dir", str(TINY_DIR))
    code, out, _ = cli(db_url, "token", "create", "--help")
    assert code == 0 and "dispatch" in out and "112" in out
    code, out, err = cli(
        db_url, "token", "create", "--role", "dispatch", "--label", "112 Castilla y León"
    )
    assert code == 0, err
    assert "Token 1 creado (dispatch)" in err
    with Store.open(db_url) as store:
        principal = authenticate(store, out.strip())
    assert (principal.role, principal.entity_id, principal.label) == (
        "dispatch", None, "112 Castilla y León",
    )  # fmt: skip
    code, out, _ = cli(db_url, "token", "list")
    assert "dispatch" in out and "activo" in out  # the label wraps in the table's column
    code, _, err = cli(db_url, "token", "create", "--role", "dispatch", "--entity", "ent-1")
    assert code == 2 and "--role planner|admin|dispatch (solo uno)" in err
