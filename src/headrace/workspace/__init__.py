"""The workspace: ``headrace.toml``, ``.headrace/``, settings and the project's code."""

from headrace.workspace.settings import Settings, find_root, init_workspace, load_settings

__all__ = ["Settings", "find_root", "init_workspace", "load_settings"]
