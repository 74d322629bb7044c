"""The content-addressed blob store (BLAKE3): a local folder or any fsspec URL."""

from headrace.objects.blobs import (
    BlobNotFoundError,
    BlobStore,
    FsspecBlobStore,
    LocalBlobStore,
    hash_bytes,
    hash_file,
    open_blob_store,
)

__all__ = [
    "BlobNotFoundError",
    "BlobStore",
    "FsspecBlobStore",
    "LocalBlobStore",
    "hash_bytes",
    "hash_file",
    "open_blob_store",
]
