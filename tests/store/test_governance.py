"""Principals, tokens, roles and the tamper-evident audit log, on SQLite and PostgreSQL."""

from __future__ import annotations

import dataclasses
import itertools
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import delete, inspect, select, text, update

from headrace.core.audit_chain import GENESIS, AuditKey, ChainVerdict, Keyring, sign_checkpoint
from headrace.core.errors import DefinitionError
from headrace.core.governance import (
    PERMISSIONS,
    ROLES,
    AccessDenied,
    allows,
    required_role,
)
from headrace.store.engine import MetadataStore, open_store
from headrace.store.governance import GovernanceError, InvalidToken, entry_hash
from headrace.store.schema import api_tokens, audit_head, audit_log
from tests.store.test_migrations import raw_engine, run_alembic


def test_roles_are_cumulative_and_refusals_name_the_permission() -> None:
    for weaker, stronger in itertools.pairwise(ROLES):
        assert PERMISSIONS[weaker] < PERMISSIONS[stronger]
    assert allows("developer", "run") and not allows("developer", "merge_protected")
    assert allows("maintainer", "promote_model") and not allows("viewer", "log_run")
    assert not allows(None, "read")
    assert required_role("release_quarantine") == "maintainer"
    denied = AccessDenied("ana", "merge_protected", "flights")
    assert str(denied) == (
        "ana may not merge protected in 'flights': that needs the maintainer role "
        "(permission 'merge_protected')"
    )
    with pytest.raises(DefinitionError, match="unknown permission 'fly'"):
        allows("admin", "fly")


def test_the_first_admin_is_explicit_and_only_once(store: MetadataStore) -> None:
    governance = store.governance
    admin = governance.create_first_admin("root-admin")
    assert admin.role() == "admin" and admin.grants == {"*": "admin"}
    with pytest.raises(GovernanceError, match=r"an admin exists \(root-admin\)"):
        governance.create_first_admin("intruder")
    assert [p.name for p in governance.principals()] == ["root-admin"]


def test_grants_per_namespace_take_the_strongest_role(store: MetadataStore) -> None:
    governance = store.governance
    governance.create_principal("ana", role="viewer", actor="root")
    governance.grant("ana", "maintainer", namespace="flights", actor="root")
    ana = governance.principal("ana")
    assert ana.role() == "viewer" and ana.role("flights") == "maintainer"
    assert ana.role("sales") == "viewer"
    governance.revoke_grant("ana", namespace="flights", actor="root")
    assert governance.principal("ana").role("flights") == "viewer"
    with pytest.raises(GovernanceError, match="ana has no role in 'flights'"):
        governance.revoke_grant("ana", namespace="flights", actor="root")
    with pytest.raises(DefinitionError, match="unknown role 'owner'"):
        governance.grant("ana", "owner", actor="root")
    with pytest.raises(GovernanceError, match="no principal named 'bob'"):
        governance.grant("bob", "viewer", actor="root")
    with pytest.raises(GovernanceError, match="principal 'ana' exists"):
        governance.create_principal("ana")
    with pytest.raises(DefinitionError, match="is not a principal name"):
        governance.create_principal("../etc")
    with pytest.raises(GovernanceError, match="a person or a service"):
        governance.create_principal("bot", kind="robot")


def test_tokens_are_stored_hashed_and_checked(store: MetadataStore) -> None:
    governance = store.governance
    governance.create_principal("ci", kind="service", role="developer", actor="root")
    token = governance.issue_token("ci", description="nightly", actor="root")
    assert token.startswith("hr_")
    _, token_id, secret = token.split("_", 2)
    with store.read() as c:
        stored = c.execute(api_tokens.select()).first()
    assert stored is not None and secret not in stored.secret_hash and stored.id == token_id
    assert governance.authenticate(token).name == "ci"
    assert governance.tokens("ci")[0].last_used_at is not None
    for bad, why in [
        ("nonsense", "not a headrace token"),
        (f"hr_{token_id}_wrong", "unknown token"),
        (f"hr_ffffffffffffffff_{secret}", "unknown token"),
    ]:
        with pytest.raises(InvalidToken, match=why):
            governance.authenticate(bad)
    short = governance.issue_token("ci", expires_in=60, actor="root")
    with pytest.raises(InvalidToken, match="expired"):
        governance.authenticate(short, now=time.time() + 61)
    governance.revoke_token(token_id, actor="root")
    with pytest.raises(InvalidToken, match="was revoked"):
        governance.authenticate(token)
    with pytest.raises(GovernanceError, match="no live token"):
        governance.revoke_token(token_id, actor="root")
    governance.set_disabled("ci", True, actor="root")
    with pytest.raises(InvalidToken, match="principal ci is disabled"):
        governance.authenticate(short)
    with pytest.raises(GovernanceError, match="must expire in the future"):
        governance.issue_token("ci", expires_in=0)


def test_the_audit_log_chains_and_detects_edits_and_removals(store: MetadataStore) -> None:
    governance = store.governance
    governance.create_first_admin("root")
    for index in range(5):
        governance.record("root", "branch.merge", f"dev-{index}", "ok", {"n": index})
    entries = governance.audit()
    assert [e.seq for e in entries] == list(range(1, 7))
    assert entries[0].action == "principal.create" and entries[-1].details == {"n": 4}
    assert all(b.prev_hash == a.hash for a, b in itertools.pairwise(entries))
    assert governance.verify() == (6, None)

    with store.write() as c:  # an edit
        c.execute(update(audit_log).where(audit_log.c.seq == 4).values(outcome="denied"))
    assert governance.verify() == (3, "entry 4 was changed after it was written")
    with store.write() as c:
        c.execute(update(audit_log).where(audit_log.c.seq == 4).values(outcome="ok"))
    assert governance.verify()[1] is None

    with store.write() as c:  # a removal in the middle
        c.execute(delete(audit_log).where(audit_log.c.seq == 3))
    assert governance.verify() == (2, "entry 3 is missing (the next is 4)")


def test_removing_the_newest_entries_shows(store: MetadataStore) -> None:
    governance = store.governance
    for index in range(4):
        governance.record("ana", "run.start", str(index), "ok")
    with store.write() as c:
        c.execute(delete(audit_log).where(audit_log.c.seq >= 3))
    checked, problem = governance.verify()
    assert checked == 2 and problem is not None and "entries were removed from its end" in problem
    with store.write() as c:
        c.execute(delete(audit_head))
    assert governance.verify() == (2, "the log's head record is missing")


def test_concurrent_appends_never_fork_the_chain(store: MetadataStore) -> None:
    governance = store.governance
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda i: governance.record("w", "metric.log", str(i), "ok"), range(80)))
    assert governance.verify() == (80, None)
    assert sorted(int(e.target or 0) for e in governance.audit(limit=200)) == list(range(80))


# -- the keyed chain ------------------------------------------------------------------

RING = Keyring((AuditKey("k1", b"s" * 32),))


def _keyed(store: MetadataStore, ring: Keyring = RING) -> None:
    store.governance.use_keys(lambda sealing: ring)


def _rechain(store: MetadataStore, first: int, *, keep_key_id: bool) -> None:
    """What a writer of the store without the key can do: edit entries and recompute
    every seal from ``first`` on, and the head, with headrace's unkeyed function."""
    with store.write() as c:
        rows = c.execute(select(audit_log).order_by(audit_log.c.seq)).all()
        prev = rows[first - 2].hash if first > 1 else GENESIS
        for r in rows[first - 1 :]:
            seal = entry_hash(r.seq, r.at, r.actor, r.action, r.target, r.outcome, r.details, prev)
            c.execute(
                update(audit_log)
                .where(audit_log.c.seq == r.seq)
                .values(prev_hash=prev, hash=seal, key_id=r.key_id if keep_key_id else None)
            )
            prev = seal
        c.execute(update(audit_head).values(seq=rows[-1].seq, hash=prev))


def test_keyed_entries_carry_their_key_and_verify(store: MetadataStore) -> None:
    _keyed(store)
    governance = store.governance
    governance.create_first_admin("root")
    for index in range(3):
        governance.record("root", "branch.merge", f"dev-{index}", "ok", {"n": index})
    entries = governance.audit()
    assert {e.key_id for e in entries} == {"k1"}
    verdict = governance.verify_chain()
    assert verdict == ChainVerdict(4, None, legacy=0, keys=("k1",), checkpoints=0)


def test_a_rewrite_recomputed_without_the_key_is_detected(store: MetadataStore) -> None:
    _keyed(store)
    governance = store.governance
    for index in range(5):
        governance.record("ana", "model.promote", f"churn/{index}", "ok")
    with store.write() as c:  # the edit an attacker wants to hide
        c.execute(update(audit_log).where(audit_log.c.seq == 3).values(actor="mallory"))
    _rechain(store, 3, keep_key_id=True)
    assert governance.verify() == (
        2,
        "entry 3 was changed after it was written (its seal under key 'k1' does not match)",
    )
    # passing the rewritten entries off as unkeyed ones does not work either
    _rechain(store, 3, keep_key_id=False)
    assert governance.verify() == (
        2,
        "entry 3 is unkeyed but follows entries sealed with key 'k1': it was rewritten "
        "without the key",
    )
    # nor does sealing them with a guessed key under the real key's id
    guess = Keyring((AuditKey("k1", b"g" * 32),))
    assert governance.verify_chain(keyring=guess).problem == (
        "entry 1 was changed after it was written (its seal under key 'k1' does not match)"
    )


def test_an_entry_sealed_with_a_key_not_given_is_not_taken_on_trust(
    store: MetadataStore,
) -> None:
    _keyed(store)
    store.governance.record("ana", "run.start", "r1", "ok")
    other = Keyring((AuditKey("k2", b"t" * 32),))
    verdict = store.governance.verify_chain(keyring=other)
    assert verdict.checked == 0 and verdict.problem == (
        "entry 1 is sealed with audit key 'k1', which was not given: set HEADRACE_AUDIT_KEY "
        "or the key file that holds it"
    )
    store.governance.use_keys(lambda sealing: None)  # no keys at all
    assert store.governance.verify()[1] == verdict.problem


def test_old_unkeyed_entries_verify_as_legacy_and_the_chain_goes_on_keyed(
    store: MetadataStore,
) -> None:
    governance = store.governance  # no keys: entries as an old headrace wrote them
    governance.record("ana", "run.start", "r1", "ok")
    governance.record("ana", "run.start", "r2", "ok")
    assert [e.key_id for e in governance.audit()] == [None, None]
    _keyed(store)
    governance.record("ana", "run.start", "r3", "ok")
    rotated = Keyring((*RING.keys, AuditKey("k2", b"t" * 32)))
    _keyed(store, rotated)
    governance.record("ana", "run.start", "r4", "ok")
    assert [e.key_id for e in governance.audit()] == [None, None, "k1", "k2"]
    assert governance.verify_chain() == ChainVerdict(4, None, 2, ("k1", "k2"), 0)
    # verifying with the new key alone cannot vouch for what the old one sealed
    alone = Keyring((rotated.keys[1],))
    assert "key 'k1', which was not given" in (governance.verify_chain(keyring=alone).problem or "")
    # a legacy entry is still checked: an edit of it shows
    with store.write() as c:
        c.execute(update(audit_log).where(audit_log.c.seq == 1).values(target="r9"))
    assert governance.verify() == (0, "entry 1 was changed after it was written")


def test_checkpoints_pin_the_count_and_the_history(store: MetadataStore) -> None:
    _keyed(store)
    governance = store.governance
    for index in range(4):
        governance.record("ana", "run.start", str(index), "ok")
    head = governance.head()
    assert head is not None and head[0] == 4
    point = sign_checkpoint(RING.current, head[0], head[1], 1.0)
    assert governance.verify_chain(checkpoints=[point]).checkpoints == 1
    # the newest entries removed and the head moved back: only the checkpoint knows
    with store.write() as c:
        c.execute(delete(audit_log).where(audit_log.c.seq >= 3))
        rows = c.execute(select(audit_log.c.hash).where(audit_log.c.seq == 2)).scalar_one()
        c.execute(update(audit_head).values(seq=2, hash=rows))
    assert governance.verify()[1] is None
    fake = sign_checkpoint(AuditKey("k1", b"f" * 32), 9, head[1], 1.0)  # not by our key
    assert governance.verify_chain(checkpoints=[fake]).problem == (
        "the checkpoint of entry 9 is not signed by key 'k1': forged"
    )
    assert governance.verify_chain(checkpoints=[point]).problem == (
        "a checkpoint signed with key 'k1' vouches for 4 entries but the log ends at entry "
        "2: entries were removed from its end"
    )
    # the whole log rewritten as unkeyed entries: it matches no checkpoint
    early = sign_checkpoint(RING.current, 2, rows, 1.0)
    _rechain(store, 1, keep_key_id=False)
    verdict = governance.verify_chain(checkpoints=[early])
    assert verdict.problem == (
        "entry 2 does not match the checkpoint signed with key 'k1': the history up to it "
        "was rewritten"
    )
    forged = dataclasses.replace(early, head=governance.head()[1])  # type: ignore[index]
    assert governance.verify_chain(checkpoints=[forged]).problem == (
        "the checkpoint of entry 2 is not signed by key 'k1': forged"
    )


def test_an_old_store_upgraded_keeps_its_entries_as_legacy(store_url: str) -> None:
    """A store at revision 0015 (before audit keys) with entries an old headrace wrote:
    migrated on open, its entries verify as legacy, and the chain goes on keyed."""
    run_alembic(store_url, "upgrade", "0015")
    prev = GENESIS
    with raw_engine(store_url) as engine, engine.begin() as c:
        for seq in (1, 2):
            fields = (seq, 1.5 + seq, "ana", "run.start", f"r{seq}", "ok", "{}")
            seal = entry_hash(*fields, prev)
            c.execute(
                text(
                    "INSERT INTO audit_log (seq, at, actor, action, target, outcome, details,"
                    " prev_hash, hash) VALUES (:s, :a, :ac, :an, :t, :o, :d, :p, :h)"
                ),
                dict(zip(("s", "a", "ac", "an", "t", "o", "d"), fields, strict=True))
                | {"p": prev, "h": seal},
            )
            prev = seal
        c.execute(text("INSERT INTO audit_head (id, seq, hash) VALUES (1, 2, :h)"), {"h": prev})
    store = open_store(store_url)
    try:
        _keyed(store)
        assert store.governance.verify_chain() == ChainVerdict(2, None, legacy=2)
        store.governance.record("ana", "run.start", "r3", "ok")
        assert store.governance.verify_chain() == ChainVerdict(3, None, 2, ("k1",), 0)
    finally:
        store.close()
    run_alembic(store_url, "downgrade", "0015")  # the migration goes back cleanly
    with raw_engine(store_url) as engine:
        assert "audit_checkpoints" not in inspect(engine).get_table_names()
