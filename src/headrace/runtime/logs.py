"""Where a long-running process (``headrace daemon``, its workers, ``headrace worker``)
says what happens to it: warnings of headrace's own loggers go to the process's stderr,
one line each with the time.

Without this, Python prints them only while no handler is installed anywhere; a running
step installs one (to capture the step's own logs), so a worker's warnings during a run
(its store went away, say) were lost.
"""

from __future__ import annotations

import logging
import sys

#: the logger of users' assets: their records belong to their steps' logs, not here
_ASSETS = "headrace.asset"


class _NotAssets(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not record.name.startswith(_ASSETS)


def log_to_stderr(level: int = logging.WARNING) -> None:
    """Send headrace's records at ``level`` and above to stderr (once per process)."""
    logger = logging.getLogger("headrace")
    if any(getattr(h, "_headrace_stderr", False) for h in logger.handlers):
        return
    handler = logging.StreamHandler(sys.stderr)  # the real stderr, before any capture
    handler.setLevel(level)
    handler.addFilter(_NotAssets())
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    handler._headrace_stderr = True  # type: ignore[attr-defined]
    logger.addHandler(handler)
    if logger.level == logging.NOTSET or logger.level > level:
        logger.setLevel(level)
