"""Client-side encryption of the object store: sealed blobs, keyed addresses, keys."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from headrace.errors import HeadraceError
from headrace.objects import FsspecBlobStore, LocalBlobStore, hash_bytes
from headrace.objects.encrypted import (
    CHUNK,
    HEADER,
    TAG,
    TRAILER,
    EncryptedBlobStore,
    plain_size,
    stored_size,
)
from headrace.objects.errors import (
    BlobTamperedError,
    EncryptionKeyInvalidError,
    EncryptionKeyMismatchError,
    EncryptionKeyMissingError,
    EncryptionNotEnabledError,
    KeyringError,
)
from headrace.objects.keyring import KEYS_FILE, generate_user_key
from headrace.objects.opening import (
    KEY_ENV,
    NEW_KEY_ENV,
    ObjectStoreConfig,
    enable_encryption,
    key_status,
    open_objects,
    rotate_key,
)

KEY = "correct horse battery staple 42"
OTHER = "another key of enough length!!"
SIZES = [0, 1, 1000, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK + 5]


def payload(seed: int, size: int) -> bytes:
    return random.Random(seed).randbytes(size)


@pytest.fixture(autouse=True)
def _no_keys_from_outside(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (KEY_ENV, NEW_KEY_ENV, "HEADRACE_ENCRYPTION_KEY_FILE"):
        monkeypatch.delenv(name, raising=False)


def config_for(kind: str, where: Path) -> ObjectStoreConfig:
    if kind == "local":
        return ObjectStoreConfig(url=str(where / "objects"), workspace=str(where / "ws"))
    if kind == "fsspec-file":
        return ObjectStoreConfig(url=f"file://{where / 'objects'}")
    return ObjectStoreConfig(url=f"memory://headrace-enc-{uuid.uuid4().hex}")


def _plain(config: ObjectStoreConfig) -> LocalBlobStore | FsspecBlobStore:
    # open_blob_store sends file:// to the local store; test fsspec over files too
    if config.url.startswith("file://"):
        return FsspecBlobStore(config.url)
    return config.plain()


@pytest.fixture(params=["local", "fsspec-memory", "fsspec-file"])
def encrypted(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[EncryptedBlobStore]:
    config = config_for(request.param, tmp_path)
    monkeypatch.setenv(KEY_ENV, KEY)
    enable_encryption(config)
    store = open_objects(config)
    assert isinstance(store, EncryptedBlobStore)
    if request.param == "fsspec-file":
        store = EncryptedBlobStore(_plain(config), _data_key(store), key_id=store.key_id)
    yield store
    store.close()


def _data_key(store: EncryptedBlobStore) -> bytes:
    # the same data key, for a second view of the store over another inner store
    from headrace.objects.keyring import WrappedKey

    raw = store.inner.read_meta(KEYS_FILE)
    assert raw is not None
    return WrappedKey.load(raw, "test").unwrap(KEY, "test")


def test_blobs_round_trip_through_put_get_open_and_size(encrypted: EncryptedBlobStore) -> None:
    for seed, size in enumerate(SIZES):
        data = payload(seed, size)
        digest = encrypted.put_bytes(data)
        assert encrypted.get_bytes(digest) == data
        with encrypted.open(digest) as handle:
            assert handle.read() == data
        with encrypted.open(digest) as handle:  # small reads across chunk borders
            pieces = []
            while piece := handle.read(333_333):
                pieces.append(piece)
            assert b"".join(pieces) == data
        assert encrypted.size(digest) == size
        stored = encrypted.inner.size(digest)
        assert stored == HEADER + size + TAG * max(1, -(-size // CHUNK)) + TRAILER
        assert stored == stored_size(size)
        assert plain_size(stored) == size


def test_equal_contents_share_one_blob_under_an_address_that_is_not_their_hash(
    encrypted: EncryptedBlobStore, tmp_path: Path
) -> None:
    data = payload(7, 5000)
    first = encrypted.put_bytes(data)
    source = tmp_path / "same.bin"
    source.write_bytes(data)
    assert encrypted.put_file(source) == first == encrypted.put_bytes(data)
    assert [d for d, _, _ in encrypted.iter_blobs()] == [first]
    assert first != hash_bytes(data)
    # The stored bytes reveal nothing of the contents.
    stored = encrypted.inner.get_bytes(first)
    assert data[:64] not in stored and len(stored) == HEADER + len(data) + TAG + TRAILER


def test_two_stores_with_different_data_keys_give_the_same_bytes_different_addresses(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(KEY_ENV, KEY)
    digests = set()
    for name in ("one", "two"):
        config = ObjectStoreConfig(url=str(tmp_path / name))
        enable_encryption(config)
        digests.add(open_objects(config).put_bytes(b"the same bytes"))
    assert len(digests) == 2


def test_storing_the_same_bytes_twice_stores_them_once_with_fresh_nonces_elsewhere(
    encrypted: EncryptedBlobStore,
) -> None:
    one, two = payload(1, 100), payload(2, 100)
    a, b = encrypted.put_bytes(one), encrypted.put_bytes(two)
    before = encrypted.inner.get_bytes(a)
    assert encrypted.put_bytes(one) == a and encrypted.inner.get_bytes(a) == before
    # each blob has its own random nonce prefix
    assert before[8:HEADER] != encrypted.inner.get_bytes(b)[8:HEADER]


def test_put_file_streams_a_big_file_through_the_mmap_path_and_move_consumes_it(
    encrypted: EncryptedBlobStore, tmp_path: Path
) -> None:
    source = tmp_path / "big.bin"
    data = os.urandom(65 << 20)  # past the multithreaded, memory-mapped hashing threshold
    source.write_bytes(data)
    digest = encrypted.put_file(source)
    assert digest == encrypted.address(data)
    assert encrypted.get_bytes(digest) == data
    del data
    moved = tmp_path / "moved.bin"
    moved.write_bytes(b"moved")
    assert encrypted.get_bytes(encrypted.put_file(moved, move=True)) == b"moved"
    assert not moved.exists()


def test_an_unchanged_file_is_known_without_reading_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(KEY_ENV, KEY)
    config = ObjectStoreConfig(url=str(tmp_path / "objects"))
    enable_encryption(config)
    store = open_objects(config)
    source = tmp_path / "t.bin"
    source.write_bytes(b"x" * 10_000)
    assert store.known_digest(source) is None  # type: ignore[union-attr]
    digest = store.put_file(source)
    assert store.known_digest(source) == digest  # type: ignore[union-attr]
    source.write_bytes(b"y" * 10_000)
    assert store.known_digest(source) is None  # type: ignore[union-attr]
    store.close()


def _flip(store: EncryptedBlobStore, digest: str, offset: int) -> None:
    raw = bytearray(store.inner.get_bytes(digest))
    raw[offset] ^= 0x01
    _overwrite(store, digest, bytes(raw))


def _overwrite(store: EncryptedBlobStore, digest: str, raw: bytes) -> None:
    inner = store.inner
    if isinstance(inner, LocalBlobStore):
        path = inner.path_of(digest)
        path.chmod(0o644)
        path.write_bytes(raw)
    else:
        inner.fs.pipe_file(inner._key(digest), raw)


@pytest.mark.parametrize(
    "damage",
    [
        "first chunk",
        "last chunk",
        "trailer",
        "header",
        "chunks swapped",
        "chunk dropped",
        "cut at a chunk",
        "cut in a chunk",
        "emptied",
    ],
)
def test_a_tampered_blob_fails_authentication_naming_it(
    encrypted: EncryptedBlobStore, damage: str
) -> None:
    data = payload(3, 2 * CHUNK + 10)
    digest = encrypted.put_bytes(data)
    raw = encrypted.inner.get_bytes(digest)
    if damage == "first chunk":
        _flip(encrypted, digest, HEADER + 5)
    elif damage == "last chunk":
        _flip(encrypted, digest, len(raw) - TRAILER - 1)
    elif damage == "trailer":
        _flip(encrypted, digest, len(raw) - 1)
    elif damage in ("chunks swapped", "chunk dropped"):
        one, two = (HEADER + i * (CHUNK + TAG) for i in (1, 2))
        first, second = raw[HEADER:one], raw[one:two]
        middle = second + first if damage == "chunks swapped" else second
        _overwrite(encrypted, digest, raw[:HEADER] + middle + raw[two:])
    elif damage == "header":
        _flip(encrypted, digest, 0)
    elif damage == "cut at a chunk":
        _overwrite(encrypted, digest, raw[: HEADER + 2 * (CHUNK + TAG)])
    elif damage == "cut in a chunk":
        _overwrite(encrypted, digest, raw[:-7])
    else:
        _overwrite(encrypted, digest, b"")
    with pytest.raises(BlobTamperedError, match=rf"^blob {digest} failed authentication") as err:
        encrypted.get_bytes(digest)
    assert err.value.digest == digest
    with pytest.raises(BlobTamperedError, match=digest), encrypted.open(digest) as handle:
        handle.read()


def test_a_blob_swapped_for_another_fails_authentication(encrypted: EncryptedBlobStore) -> None:
    a = encrypted.put_bytes(b"pay alice 10")
    b = encrypted.put_bytes(b"pay bob 10000")
    _overwrite(encrypted, a, encrypted.inner.get_bytes(b))
    with pytest.raises(BlobTamperedError, match=a):
        encrypted.get_bytes(a)
    assert encrypted.get_bytes(b) == b"pay bob 10000"


# -- keys -------------------------------------------------------------------------------


def test_a_store_opened_without_its_key_or_with_another_fails_with_one_clear_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = ObjectStoreConfig(url=str(tmp_path / "objects"))
    monkeypatch.setenv(KEY_ENV, KEY)
    record = enable_encryption(config)
    digest = open_objects(config).put_bytes(b"secret")
    monkeypatch.delenv(KEY_ENV)
    with pytest.raises(EncryptionKeyMissingError, match="is encrypted") as missing:
        open_objects(config)
    assert record.key_id in str(missing.value) and "\n" not in str(missing.value)
    monkeypatch.setenv(KEY_ENV, OTHER)
    with pytest.raises(EncryptionKeyMismatchError, match="does not open this object store"):
        open_objects(config)
    monkeypatch.setenv(KEY_ENV, KEY)
    assert open_objects(config).get_bytes(digest) == b"secret"


def test_the_key_file_setting_is_read_and_must_be_outside_the_workspace(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    workspace = tmp_path / "ws"
    workspace.mkdir()
    outside = tmp_path / "secrets" / "key"
    outside.parent.mkdir()
    outside.write_text(KEY + "\n")
    config = ObjectStoreConfig(
        url=str(workspace / "objects"), key_file=str(outside), workspace=str(workspace)
    )
    enable_encryption(config)
    assert open_objects(config).put_bytes(b"x")
    inside = workspace / "key"
    inside.write_text(KEY)
    misplaced = ObjectStoreConfig(url=config.url, key_file=str(inside), workspace=str(workspace))
    with pytest.raises(EncryptionKeyInvalidError, match="is inside the workspace"):
        open_objects(misplaced)
    absent = ObjectStoreConfig(url=config.url, key_file=str(tmp_path / "nope"))
    with pytest.raises(EncryptionKeyInvalidError, match="cannot be read"):
        open_objects(absent)
    outside.write_text("short")
    with pytest.raises(EncryptionKeyInvalidError, match="has 5 characters; use at least 16"):
        open_objects(config)
    # the environment wins over the file
    monkeypatch.setenv(KEY_ENV, KEY)
    assert isinstance(open_objects(config), EncryptedBlobStore)


def test_a_short_key_is_refused_before_anything_is_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = ObjectStoreConfig(url=str(tmp_path / "objects"))
    monkeypatch.setenv(KEY_ENV, "hunter2")
    with pytest.raises(EncryptionKeyInvalidError, match=f"{KEY_ENV} has 7 characters"):
        enable_encryption(config)
    assert key_status(config) is None


def test_a_key_given_for_a_plain_store_is_refused_rather_than_writing_in_clear(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = ObjectStoreConfig(url=str(tmp_path / "objects"))
    assert isinstance(open_objects(config), LocalBlobStore)
    monkeypatch.setenv(KEY_ENV, KEY)
    with pytest.raises(EncryptionNotEnabledError, match="is not encrypted; unset it"):
        open_objects(config)


def test_encryption_is_turned_on_for_an_empty_store_only_and_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = ObjectStoreConfig(url=str(tmp_path / "objects"))
    with pytest.raises(EncryptionKeyMissingError, match="no key to encrypt with"):
        enable_encryption(config)
    config.plain().put_bytes(b"plain")
    monkeypatch.setenv(KEY_ENV, KEY)
    with pytest.raises(KeyringError, match="already holds 1 unencrypted blobs"):
        enable_encryption(config)
    assert key_status(config) is None  # nothing written
    fresh = ObjectStoreConfig(url=str(tmp_path / "fresh"))
    enable_encryption(fresh)
    before = (tmp_path / "fresh" / KEYS_FILE).read_bytes()
    with pytest.raises(KeyringError, match="already encrypted"):
        enable_encryption(fresh)
    assert (tmp_path / "fresh" / KEYS_FILE).read_bytes() == before


def test_keys_json_holds_no_key_in_clear_and_a_damaged_one_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = ObjectStoreConfig(url=str(tmp_path / "objects"))
    monkeypatch.setenv(KEY_ENV, KEY)
    enable_encryption(config)
    store = open_objects(config)
    assert isinstance(store, EncryptedBlobStore)
    keys = tmp_path / "objects" / KEYS_FILE
    text = keys.read_bytes()
    assert KEY.encode() not in text and _data_key(store) not in text
    assert _data_key(store).hex().encode() not in text
    document = json.loads(text)
    document["wrapped_data_key"] = "!!not base64!!"
    keys.write_text(json.dumps(document))
    with pytest.raises(KeyringError, match=r"keys\.json is damaged"):
        open_objects(config)
    document["format"] = 99
    keys.write_text(json.dumps(document))
    with pytest.raises(KeyringError, match="format 99 is not supported"):
        open_objects(config)
    keys.write_text("{")
    with pytest.raises(KeyringError, match=r"keys\.json is damaged"):
        open_objects(config)


def test_rotation_rewraps_the_data_key_so_old_blobs_open_with_the_new_key_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = ObjectStoreConfig(url=str(tmp_path / "objects"))
    monkeypatch.setenv(KEY_ENV, KEY)
    first = enable_encryption(config)
    store = open_objects(config)
    digest = store.put_bytes(b"kept across rotations")
    stored = (tmp_path / "objects" / digest[:2] / digest[2:]).read_bytes()
    new_key = generate_user_key()
    monkeypatch.setenv(NEW_KEY_ENV, new_key)
    rotated = rotate_key(config)
    assert rotated.key_id != first.key_id and rotated.created == first.created
    assert rotated.rotated is not None
    # blobs are not re-encrypted: the same bytes on disk
    assert (tmp_path / "objects" / digest[:2] / digest[2:]).read_bytes() == stored
    with pytest.raises(EncryptionKeyMismatchError):
        open_objects(config)
    monkeypatch.setenv(KEY_ENV, new_key)
    reopened = open_objects(config)
    assert reopened.get_bytes(digest) == b"kept across rotations"
    assert reopened.put_bytes(b"kept across rotations") == digest  # still deduplicates


def test_rotation_refusals_leave_keys_json_as_it_was(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = ObjectStoreConfig(url=str(tmp_path / "objects"))
    with pytest.raises(KeyringError, match="is not encrypted; there is no key to rotate"):
        rotate_key(config)
    monkeypatch.setenv(KEY_ENV, KEY)
    enable_encryption(config)
    keys = tmp_path / "objects" / KEYS_FILE
    before = keys.read_bytes()
    with pytest.raises(EncryptionKeyMissingError, match="needs the new key"):
        rotate_key(config)
    monkeypatch.setenv(NEW_KEY_ENV, KEY)
    with pytest.raises(EncryptionKeyInvalidError, match="is the current key"):
        rotate_key(config)
    monkeypatch.setenv(NEW_KEY_ENV, "short")
    with pytest.raises(EncryptionKeyInvalidError, match="has 5 characters"):
        rotate_key(config)
    monkeypatch.setenv(NEW_KEY_ENV, OTHER)
    monkeypatch.setenv(KEY_ENV, "not the current key at all")
    with pytest.raises(EncryptionKeyMismatchError):
        rotate_key(config)
    monkeypatch.delenv(KEY_ENV)
    with pytest.raises(EncryptionKeyMissingError, match="needs the current key"):
        rotate_key(config)
    assert keys.read_bytes() == before
    new_file = tmp_path / "new-key"
    new_file.write_text(OTHER)
    monkeypatch.delenv(NEW_KEY_ENV)
    monkeypatch.setenv(KEY_ENV, KEY)
    rotate_key(config, new_key_file=str(new_file))
    monkeypatch.setenv(KEY_ENV, OTHER)
    assert isinstance(open_objects(config), EncryptedBlobStore)


def test_every_error_here_is_a_headrace_error() -> None:
    for error in (
        BlobTamperedError,
        EncryptionKeyInvalidError,
        EncryptionKeyMismatchError,
        EncryptionKeyMissingError,
        EncryptionNotEnabledError,
        KeyringError,
    ):
        assert issubclass(error, HeadraceError)


def test_without_cryptography_the_error_names_the_extra_to_install(tmp_path: Path) -> None:
    # A real interpreter in which the package cannot be imported.
    script = (
        "import sys\n"
        "sys.modules['cryptography'] = None\n"
        "from headrace.errors import MissingExtraError\n"
        "from headrace.objects.opening import ObjectStoreConfig, enable_encryption\n"
        "try:\n"
        f"    enable_encryption(ObjectStoreConfig(url={str(tmp_path / 'objects')!r}))\n"
        "except MissingExtraError as exc:\n"
        "    print(exc)\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("HEADRACE_")}
    env[KEY_ENV] = KEY
    env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.stdout.strip() == (
        "cryptography is not installed; install it with: pip install 'headrace[encryption]'"
    ), done.stderr
    assert not (tmp_path / "objects" / KEYS_FILE).exists()


KILLED_ENCRYPTED = """
import os, sys
from pathlib import Path
from headrace.objects.opening import ObjectStoreConfig, open_objects
store = open_objects(ObjectStoreConfig(url=sys.argv[1]))
big = Path(sys.argv[2])
n = 0
while True:
    n += 1
    store.put_bytes(os.urandom(1 + n % 70000))
    big.write_bytes(os.urandom(3 << 20))
    store.put_file(big)
    if n == 3:
        print("writing", flush=True)
"""


def test_an_encrypted_writer_killed_mid_write_leaves_only_whole_sealed_blobs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(KEY_ENV, KEY)
    config = ObjectStoreConfig(url=str(tmp_path / "objects"))
    enable_encryption(config)
    env = os.environ | {"PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    writer = subprocess.Popen(
        [sys.executable, "-c", KILLED_ENCRYPTED, config.url, str(tmp_path / "big.bin")],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert writer.stdout is not None
        assert writer.stdout.readline().strip() == "writing"
        writer.send_signal(signal.SIGKILL)
    finally:
        writer.wait(timeout=30)
        if writer.stdout is not None:
            writer.stdout.close()
    store = open_objects(config)
    assert isinstance(store, EncryptedBlobStore)
    found = list(store.iter_blobs())
    assert len(found) >= 6
    for digest, stored, _ in found:
        data = store.get_bytes(digest)  # authenticated: whole and at its own address
        assert store.address(data) == digest and stored == stored_size(len(data))
