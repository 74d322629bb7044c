from tests.tracking.conftest import _close_workspaces, ws

__all__ = ["_close_workspaces", "ws"]
