"""Principals, tokens, roles and the tamper-evident audit log, on SQLite and PostgreSQL."""

from __future__ import annotations

import itertools
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import delete, update

from headrace.core.errors import DefinitionError
from headrace.core.governance import (
    PERMISSIONS,
    ROLES,
    AccessDenied,
    allows,
    required_role,
)
from headrace.store.engine import MetadataStore
from headrace.store.governance import GovernanceError, InvalidToken
from headrace.store.schema import api_tokens, audit_head, audit_log


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
