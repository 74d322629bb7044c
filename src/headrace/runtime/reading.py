"""Reading what a stored version holds (for every area that needs the data back)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from headrace.io.serializers import deserialize
from headrace.objects.blobs import LocalBlobStore

if TYPE_CHECKING:
    from headrace.runtime.workspace import Workspace
    from headrace.store.records import VersionRecord


def read_version(ws: Workspace, version: VersionRecord, as_: str | None = None) -> Any:
    """The value one version holds; tables as ``as_`` (pandas, polars, arrow). A local
    blob is read in place (Parquet memory-mapped), a remote one fetched."""
    blobs = ws.blobs
    source: bytes | str = (
        blobs.source(version.blob)
        if isinstance(blobs, LocalBlobStore)
        else blobs.get_bytes(version.blob)
    )
    return deserialize(source, version.format, version.flavor, wanted=as_)
