"""Identifiers: time-ordered, so sorting by id sorts by creation."""

from __future__ import annotations

import os
import time


def new_id() -> str:
    """32 hex characters: 12 of milliseconds since the epoch, 20 random."""
    return f"{int(time.time() * 1000):012x}{os.urandom(10).hex()}"
