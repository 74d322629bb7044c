"""A durable object store: bytes and folders synced before a blob becomes visible.

The order of system calls is checked on a real writer process under ``strace``; a
writer killed mid-write leaves only whole blobs; ``durable = false`` writes without any
sync and still works.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import pytest

from headrace.errors import SettingsError
from headrace.objects import LocalBlobStore, hash_bytes, hash_file
from headrace.runtime.workspace import open_workspace
from headrace.workspace.settings import init_workspace

MIB = 1 << 20
needs_strace = pytest.mark.skipif(shutil.which("strace") is None, reason="needs strace")

WRITER = """
import os, sys
from pathlib import Path
from headrace.objects import LocalBlobStore
store = LocalBlobStore(sys.argv[1], durable=sys.argv[2] == "1")
work = Path(sys.argv[3])
store.put_bytes(b"small blob")
big = work / "big.bin"
big.write_bytes(os.urandom(3 << 20))
store.put_file(big)
moved = work / "moved.bin"
moved.write_bytes(b"moved blob")
store.put_file(moved, move=True)
"""


def _trace(tmp_path: Path, durable: bool) -> tuple[Path, list[str]]:
    root = tmp_path / "objects"
    work = tmp_path / "work"
    work.mkdir()
    log = tmp_path / "strace.log"
    subprocess.run(
        [
            "strace",
            "-f",
            "-y",  # file descriptors shown with their paths
            "-o",
            str(log),
            "-e",
            "trace=fsync,fdatasync,link,linkat,rename,renameat,renameat2",
            sys.executable,
            "-c",
            WRITER,
            str(root),
            "1" if durable else "0",
            str(work),
        ],
        check=True,
        timeout=60,
    )
    return root, [line for line in log.read_text().splitlines() if "resumed" not in line]


@needs_strace
def test_a_durable_put_syncs_the_bytes_before_the_link_and_the_folder_after(
    tmp_path: Path,
) -> None:
    root, calls = _trace(tmp_path, durable=True)
    blobs = [d for d, _, _ in LocalBlobStore(root).iter_blobs()]
    assert len(blobs) == 3
    # The fan-out folders were made on first write: the root is synced, and so is its
    # parent (the root itself was new).
    assert any(re.search(rf"fsync\(\d+<{re.escape(str(root))}>", c) for c in calls)
    assert any(re.search(rf"fsync\(\d+<{re.escape(str(tmp_path))}>", c) for c in calls)
    for digest in blobs:
        target = str(root / digest[:2] / digest[2:])
        linked = next(i for i, c in enumerate(calls) if "link" in c and target in c)
        temporary = re.search(r'"([^"]+\.part)"', calls[linked])
        assert temporary is not None, calls[linked]
        synced = [
            i for i, c in enumerate(calls) if c.split()[1].startswith("fsync") and temporary[1] in c
        ]
        assert synced and synced[0] < linked, f"{digest}: bytes not synced before the link"
        shard = re.compile(rf"fsync\(\d+<{re.escape(str(root / digest[:2]))}>")
        assert any(shard.search(c) for c in calls[linked + 1 :]), f"{digest}: folder not synced"


@needs_strace
def test_durable_false_writes_without_any_sync_and_still_stores_whole_blobs(
    tmp_path: Path,
) -> None:
    root, calls = _trace(tmp_path, durable=False)
    # (only the store's own files count: SQLite syncs the hash cache beside it)
    inside = re.compile(rf"<{re.escape(str(root))}[/>]")
    assert not [c for c in calls if "sync" in c and inside.search(c)]
    store = LocalBlobStore(root, durable=False)
    found = list(store.iter_blobs())
    assert len(found) == 3
    for digest, _size, _mtime in found:
        assert hash_file(store.path_of(digest)) == digest
    assert store.get_bytes(hash_bytes(b"small blob")) == b"small blob"


KILLED = """
import os, sys
from pathlib import Path
from headrace.objects import LocalBlobStore
store = LocalBlobStore(sys.argv[1], durable=sys.argv[2] == "1")
work = Path(sys.argv[3])
big = work / "big.bin"
n = 0
while True:
    n += 1
    store.put_bytes(os.urandom(1 + n % 70000))
    big.write_bytes(os.urandom(2 << 20))
    store.put_file(big)
    if n == 3:
        print("writing", flush=True)
"""


@pytest.mark.parametrize("durable", [True, False], ids=["durable", "not-durable"])
def test_a_writer_killed_mid_write_leaves_only_whole_blobs(tmp_path: Path, durable: bool) -> None:
    root = tmp_path / "objects"
    work = tmp_path / "work"
    work.mkdir()
    writer = subprocess.Popen(
        [sys.executable, "-c", KILLED, str(root), "1" if durable else "0", str(work)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert writer.stdout is not None
        # The writer goes on writing blobs: the signal lands wherever it is, often
        # inside a write or a copy.
        assert writer.stdout.readline().strip() == "writing"
        writer.send_signal(signal.SIGKILL)
    finally:
        writer.wait(timeout=30)
        if writer.stdout is not None:
            writer.stdout.close()
    assert writer.returncode == -signal.SIGKILL
    store = LocalBlobStore(root, durable=durable)
    found = list(store.iter_blobs())
    assert len(found) >= 6
    for digest, size, _ in found:
        path = store.path_of(digest)
        assert hash_file(path) == digest and path.stat().st_size == size
    # What the killed writer left behind is only temporaries, which gc removes.
    leftovers = list((root / ".tmp").iterdir())
    assert store.clean_temporary(older_than=time.time() + 1) == len(leftovers)
    assert list((root / ".tmp").iterdir()) == []


def _workspace(tmp_path: Path, objects: str) -> Path:
    init_workspace(tmp_path)
    config = tmp_path / "headrace.toml"
    text = config.read_text().replace("[objects]\n", "[objects]\n" + objects, 1)
    config.write_text(text.replace("durable = true\n", "", 1) if objects else text)
    return tmp_path


def test_a_new_workspace_is_durable(tmp_path: Path) -> None:
    init_workspace(tmp_path)
    assert "durable = true" in (tmp_path / "headrace.toml").read_text()
    with open_workspace(tmp_path) as ws:
        assert ws.settings.objects_durable is True
        assert isinstance(ws.blobs, LocalBlobStore) and ws.blobs.durable


def test_durable_false_in_headrace_toml_and_the_environment_overriding_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _workspace(tmp_path, "durable = false\n")
    with open_workspace(tmp_path) as ws:
        assert ws.blobs.durable is False
        digest = ws.blobs.put_bytes(b"fast")
        assert ws.blobs.get_bytes(digest) == b"fast"
    monkeypatch.setenv("HEADRACE_OBJECTS_DURABLE", "1")
    with open_workspace(tmp_path) as ws:
        assert ws.blobs.durable is True
    monkeypatch.setenv("HEADRACE_OBJECTS_DURABLE", "off")
    with open_workspace(tmp_path) as ws:
        assert ws.blobs.durable is False


@pytest.mark.parametrize(
    ("where", "value", "origin"),
    [
        ("toml", 'durable = "sometimes"\n', "headrace.toml objects.durable"),
        ("toml", "durable = 2\n", "headrace.toml objects.durable"),
        ("env", "maybe", "HEADRACE_OBJECTS_DURABLE"),
        ("env", "", "HEADRACE_OBJECTS_DURABLE"),
    ],
)
def test_a_durable_setting_that_is_not_a_boolean_is_refused_naming_where_it_came_from(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, where: str, value: str, origin: str
) -> None:
    _workspace(tmp_path, value if where == "toml" else "")
    if where == "env":
        monkeypatch.setenv("HEADRACE_OBJECTS_DURABLE", value)
    with pytest.raises(SettingsError, match=rf"^{origin}: durable must be true or false") as err:
        open_workspace(tmp_path)
    assert err.value.field == "objects.durable"


def test_an_unknown_objects_setting_is_refused_with_the_ones_it_takes(tmp_path: Path) -> None:
    _workspace(tmp_path, "durabel = false\n")
    with pytest.raises(SettingsError, match=r"unknown setting objects.durabel; \[objects\] takes"):
        open_workspace(tmp_path)


def test_storage_options_reach_the_fsspec_file_system_as_they_are(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    init_workspace(tmp_path)
    config = tmp_path / "headrace.toml"
    text = config.read_text().replace(
        'objects_url = ".headrace/objects"', 'objects_url = "memory://sse-test"'
    )
    text += textwrap.dedent(
        """
        [objects.storage_options]
        s3_additional_kwargs = { ServerSideEncryption = "aws:kms", SSEKMSKeyId = "alias/x" }
        """
    )
    config.write_text(text)
    with open_workspace(tmp_path) as ws:
        options = ws.blobs.fs.storage_options  # type: ignore[union-attr]
        assert options["s3_additional_kwargs"] == {
            "ServerSideEncryption": "aws:kms",
            "SSEKMSKeyId": "alias/x",
        }
    monkeypatch.setenv("HEADRACE_OBJECTS_STORAGE_OPTIONS", '{"s3_additional_kwargs": {}}')
    with open_workspace(tmp_path) as ws:
        assert ws.blobs.fs.storage_options["s3_additional_kwargs"] == {}  # type: ignore[union-attr]
    monkeypatch.setenv("HEADRACE_OBJECTS_STORAGE_OPTIONS", "[1, 2]")
    with pytest.raises(SettingsError, match="storage_options must be a table"):
        open_workspace(tmp_path)
    monkeypatch.setenv("HEADRACE_OBJECTS_STORAGE_OPTIONS", "{not json")
    with pytest.raises(SettingsError, match="HEADRACE_OBJECTS_STORAGE_OPTIONS: storage_options"):
        open_workspace(tmp_path)


def test_a_durable_store_in_a_new_folder_and_the_unsynced_one_hold_the_same_blobs(
    tmp_path: Path,
) -> None:
    data = [os.urandom(n) for n in (0, 1, MIB, 3 * MIB + 7)]
    stores = [
        LocalBlobStore(tmp_path / "a" / "b" / name, durable=d)
        for name, d in (("x", True), ("y", False))
    ]
    for store in stores:
        digests = [store.put_bytes(d) for d in data]
        assert digests == [hash_bytes(d) for d in data]
        for digest, payload in zip(digests, data, strict=True):
            assert store.get_bytes(digest) == payload


@pytest.mark.parametrize("where", ["disk", "tmpfs"])
def test_a_big_durable_file_is_copied_whole_past_the_aligned_part(
    tmp_path: Path, where: str
) -> None:
    # Big durable copies go straight to disk (O_DIRECT) with an unaligned tail through
    # the page cache; tmpfs refuses O_DIRECT and the ordinary copy takes over.
    if where == "tmpfs":
        if not Path("/dev/shm").is_dir():
            pytest.skip("no /dev/shm here")
        folder = Path(tempfile.mkdtemp(dir="/dev/shm"))
    else:
        folder = tmp_path
    try:
        source = tmp_path / "big.bin"
        data = os.urandom(64 * MIB + 4096 + 123)
        source.write_bytes(data)
        store = LocalBlobStore(folder / "objects", durable=True)
        digest = store.put_file(source)
        assert digest == hash_bytes(data)
        assert store.path_of(digest).read_bytes() == data
        assert list((folder / "objects" / ".tmp").iterdir()) == []
        store.close()
    finally:
        if where == "tmpfs":
            shutil.rmtree(folder, ignore_errors=True)


def test_the_settings_documented_in_docs_objects_md_load_as_described(tmp_path: Path) -> None:
    from headrace.workspace.settings import load_settings

    doc = (Path(__file__).parents[2] / "docs" / "objects.md").read_text(encoding="utf-8")
    blocks = [b.split("\n```", 1)[0] for b in doc.split("```toml\n")[1:]]
    assert len(blocks) == 2
    durable, sse = blocks
    (tmp_path / "headrace.toml").write_text('[project]\nname = "doc"\n' + durable)
    assert load_settings(tmp_path).objects_durable is False
    (tmp_path / "headrace.toml").write_text('[project]\nname = "doc"\n' + sse)
    settings = load_settings(tmp_path)
    assert settings.resolved_objects_url == "s3://my-bucket/headrace"
    assert settings.objects_storage_options == {
        "s3_additional_kwargs": {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": "alias/headrace"}
    }
