"""``cardiomapa entity invite|revoke|list``: invitation links, revocation and the overview of
entities' access, on SpatiaLite and on PostGIS."""

from __future__ import annotations

import re

from typer.testing import CliRunner

from geo.cli import app as cli_app
from geo.core.layers import Layers
from geo.io.store import Store
from geo.services.tokens import check_invitation, issue_invitation, issue_token, redeem_invitation

runner = CliRunner()
BASE = "https://dea.example.org"


def _cli(db_url: str, *args: str) -> tuple[int, str, str]:
    env = {"CARDIOMAPA_DATABASE_URL": db_url, "CARDIOMAPA_PUBLIC_URL": BASE}
    result = runner.invoke(cli_app, list(args), env=env)
    return result.exit_code, result.stdout, result.stderr


def test_invite_prints_the_link_once_and_it_redeems(db_url: str, tiny_layers: Layers) -> None:
    with Store.open(db_url) as store:
        store.load(tiny_layers)
    code, stdout, stderr = _cli(db_url, "entity", "invite", "ent-1", "--days", "3")
    assert code == 0, stderr
    match = re.fullmatch(rf"{re.escape(BASE)}/entidades/invitacion/(ci_\d+_[\w-]{{43}})\n", stdout)
    assert match is not None, stdout
    assert "Residencia Uno" in stderr and "un solo uso" in stderr
    with Store.open(db_url) as store:
        record = check_invitation(store, match[1])
        assert record.entity_id == "ent-1" and record.created_by == "cli"
        assert (record.expires_at - record.created_at).days in (2, 3)
        assert redeem_invitation(store, match[1]).record.entity_id == "ent-1"


def test_invite_refuses_an_unknown_entity(db_url: str, tiny_layers: Layers) -> None:
    with Store.open(db_url) as store:
        store.load(tiny_layers)
    code, stdout, stderr = _cli(db_url, "entity", "invite", "ent-9")
    assert code == 1 and stdout == "" and "ent-9" in stderr
    code, _, stderr = _cli(db_url, "entity", "revoke", "ent-9")
    assert code == 1 and "ent-9" in stderr


def test_revoke_ends_every_token_and_open_invitation(db_url: str, tiny_layers: Layers) -> None:
    with Store.open(db_url) as store:
        store.load(tiny_layers)
        issue_token(store, role="entity", entity_id="ent-1")
        issue_token(store, role="entity", entity_id="ent-2")
        issue_invitation(store, entity_id="ent-1")
        used = issue_invitation(store, entity_id="ent-1")
        redeem_invitation(store, used.code)  # one more token, via the link
    code, stdout, _ = _cli(db_url, "entity", "revoke", "ent-1")
    assert code == 0
    assert "2 token(s) y 1 invitación(es)" in stdout
    with Store.open(db_url) as store:
        assert all(t.revoked_at is not None for t in store.entity_tokens("ent-1"))
        assert all(t.revoked_at is None for t in store.entity_tokens("ent-2"))
        assert all(i.used_at or i.revoked_at for i in store.invitations(entity_id="ent-1"))


def test_list_shows_contact_tokens_last_use_and_invitations(
    db_url: str, tiny_layers: Layers
) -> None:
    with Store.open(db_url) as store:
        store.load(tiny_layers)
        store.set_contacts([{"entity_id": "ent-1", "email": "ana@example.org"}], actor="t")
        token = issue_token(store, role="entity", entity_id="ent-1")
        store.touch_token(token.record.id)
        issue_invitation(store, entity_id="ent-2")
        revoked = issue_invitation(store, entity_id="ent-2")
        store.revoke_invitation(revoked.record.id, actor="t")
    code, stdout, _ = _cli(db_url, "entity", "list")
    assert code == 0
    rows = {line.split("│")[1].strip(): [c.strip() for c in line.split("│")[1:-1]]
            for line in stdout.splitlines() if line.startswith("│")}  # fmt: skip
    assert rows["ent-1"][2:4] == ["sí", "1"] and rows["ent-1"][4] != "—"
    assert rows["ent-1"][5] == "0"
    assert rows["ent-2"][2:] == ["no", "0", "—", "1"]
    assert "ana@example.org" not in stdout


def test_revoking_one_invitation_is_audited_and_idempotent(
    store: Store, tiny_layers: Layers
) -> None:
    store.load(tiny_layers)
    issued = issue_invitation(store, entity_id="ent-1")
    first = store.revoke_invitation(issued.record.id, actor="t")
    again = store.revoke_invitation(issued.record.id, actor="t")
    assert first.revoked_at is not None and again.revoked_at == first.revoked_at
    entries, _ = store.audit_entries(record_type="invitation")
    assert [e["action"] for e in entries] == ["revoke", "create"]
