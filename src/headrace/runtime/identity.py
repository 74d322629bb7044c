"""Who is acting, for audit trails (the operating-system user until principals exist)."""

from __future__ import annotations

import getpass


def actor() -> str:
    """Who is acting: the operating-system user until principals exist."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"
