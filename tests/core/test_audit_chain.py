"""Seals, keyrings and checkpoints of the audit chain: what is refused, and why."""

from __future__ import annotations

import json

import pytest

from headrace.core.audit_chain import (
    AuditKey,
    AuditKeyError,
    CheckpointFormatError,
    Keyring,
    checkpoint_signed_by,
    keyed_seal,
    legacy_hash,
    make_key,
    parse_checkpoint,
    sign_checkpoint,
)

KEY = make_key("k1", "x" * 32, where="test")
FIELDS = (1, 1.5, "ana", "run.start", "r1", "ok", "{}", "0" * 64)


def test_a_seal_depends_on_the_key_and_its_id() -> None:
    seal = keyed_seal(KEY, *FIELDS)
    assert seal == keyed_seal(make_key("k1", "x" * 32, where="t"), *FIELDS)
    assert seal != keyed_seal(make_key("k1", "y" * 32, where="t"), *FIELDS)
    assert seal != keyed_seal(make_key("k2", "x" * 32, where="t"), *FIELDS)  # id sealed
    assert seal != legacy_hash(*FIELDS) and len(seal) == 64
    assert "xxxx" not in repr(KEY)  # a key never prints its secret


@pytest.mark.parametrize(
    ("key_id", "secret", "message"),
    [
        ("k 1", "x" * 32, "audit key id 'k 1' is not valid"),
        ("", "x" * 32, "audit key id '' is not valid"),
        ("-k", "x" * 32, "audit key id '-k' is not valid"),
        ("k" * 65, "x" * 32, "is not valid; use 1 to 64 letters"),
        ("k1", "short", "audit key 'k1' has a 5-character secret; use 32 or more"),
    ],
)
def test_bad_keys_are_refused_naming_the_rule(key_id: str, secret: str, message: str) -> None:
    with pytest.raises(
        AuditKeyError, match="^HEADRACE_AUDIT_KEY: .*" + message.replace("(", r"\(")
    ):
        make_key(key_id, secret, where="HEADRACE_AUDIT_KEY")


def test_a_keyring_seals_with_its_last_key_and_refuses_twins() -> None:
    ring = Keyring((KEY, AuditKey("k2", b"z" * 32)))
    assert ring.current.id == "k2" and ring.get("k1") is KEY and ring.get("k3") is None
    with pytest.raises(AuditKeyError, match="audit key id 'k1' appears twice"):
        Keyring((KEY, KEY))
    with pytest.raises(AuditKeyError, match="at least one key"):
        Keyring(())


def test_a_checkpoint_round_trips_and_its_signature_binds_every_field() -> None:
    point = sign_checkpoint(KEY, 7, "a" * 64, 1700000000.25)
    assert parse_checkpoint(point.line()) == point
    assert checkpoint_signed_by(point, KEY)
    assert not checkpoint_signed_by(point, make_key("k1", "y" * 32, where="t"))
    moved = parse_checkpoint(point.line().replace('"seq":7', '"seq":9'))
    assert not checkpoint_signed_by(moved, KEY)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"kind": "other"}, 'a JSON object with "kind": "headrace-audit-checkpoint"'),
        ({"seq": "7"}, "field 'seq' must be a positive entry count"),
        ({"seq": 0}, "field 'seq' must be a positive entry count"),
        ({"seq": True}, "field 'seq' must be a positive entry count"),
        ({"head": "A" * 64}, "field 'head' must be 64 hex digits"),
        ({"signature": None}, "field 'signature' must be a 64-hex signature"),
        ({"key": 3}, "field 'key' must be the id of the key that signed it"),
        ({"at": "now"}, "field 'at' must be the time it was taken"),
    ],
)
def test_a_malformed_checkpoint_names_the_field(change: dict[str, object], message: str) -> None:
    data = json.loads(sign_checkpoint(KEY, 7, "a" * 64, 1.0).line()) | change
    with pytest.raises(CheckpointFormatError, match=message):
        parse_checkpoint(json.dumps(data))


def test_a_checkpoint_that_is_not_json_is_refused() -> None:
    with pytest.raises(CheckpointFormatError, match="an audit checkpoint is one line of JSON"):
        parse_checkpoint("seq=7 head=abc")
    with pytest.raises(CheckpointFormatError, match="is a JSON object"):
        parse_checkpoint("[1, 2]")
