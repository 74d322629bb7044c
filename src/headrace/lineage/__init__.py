"""Lineage out: every run emits OpenLineage RunEvents (docs/openlineage.md).

Nothing here imports the OpenLineage client: the http transport loads it on its first
event.
"""

from __future__ import annotations

from headrace.lineage.openlineage import LineageStats, OpenLineageEmitter
from headrace.lineage.settings import LineageSettings, emitter_from_settings, load_lineage_settings
from headrace.lineage.transports import (
    FileTransport,
    HttpTransport,
    LineageTransport,
    MemoryTransport,
)

__all__ = [
    "FileTransport",
    "HttpTransport",
    "LineageSettings",
    "LineageStats",
    "LineageTransport",
    "MemoryTransport",
    "OpenLineageEmitter",
    "emitter_from_settings",
    "load_lineage_settings",
]
