"""An open workspace: settings, the metadata store, the blob store and the definitions."""

from headrace.runtime.workspace import Workspace, open_workspace

__all__ = ["Workspace", "open_workspace"]
