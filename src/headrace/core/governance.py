"""Who may do what: roles, the permissions each carries, and the refusal that names the
permission missing. Pure: the store keeps principals, tokens, grants and the audit log.

Roles are cumulative, each holding what the one before it holds:

- ``viewer``: read;
- ``developer``: run pipelines, write branches other than protected ones, log tracked
  runs, register model versions;
- ``maintainer``: merge into protected branches (``main``), approve and promote models,
  move a guarded alias past its policy's refusal (``override_policy``), release
  quarantined data, see columns tagged as personal data unmasked;
- ``admin``: manage principals, roles and tokens.

A grant gives a principal a role in a namespace (``*``: everywhere); the highest role
that applies wins.
"""

from __future__ import annotations

import re

from headrace.core.errors import DefinitionError
from headrace.errors import HeadraceError

ROLES = ("viewer", "developer", "maintainer", "admin")
_ADDED: dict[str, tuple[str, ...]] = {
    "viewer": ("read",),
    "developer": ("run", "write_branch", "log_run", "register_model"),
    "maintainer": (
        "merge_protected",
        "approve_model",
        "promote_model",
        "override_policy",
        "release_quarantine",
        "read_personal",
    ),
    "admin": ("manage_principals",),
}
PERMISSIONS: dict[str, frozenset[str]] = {}
_held: set[str] = set()
for _role in ROLES:
    _held |= set(_ADDED[_role])
    PERMISSIONS[_role] = frozenset(_held)
ALL_PERMISSIONS = PERMISSIONS["admin"]
EVERYWHERE = "*"
#: Branches only a maintainer may move (merge into, write to directly).
PROTECTED_BRANCHES = frozenset({"main"})


def branch_permission(branch: str) -> str:
    """The permission writing to ``branch`` takes."""
    return "merge_protected" if branch in PROTECTED_BRANCHES else "write_branch"


_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_.@\-]{0,199}")


class AccessDenied(HeadraceError):
    """A principal lacks a permission: names it and the least role that carries it."""

    def __init__(self, principal: str, permission: str, namespace: str = EVERYWHERE) -> None:
        needed = required_role(permission)
        where = "" if namespace == EVERYWHERE else f" in {namespace!r}"
        super().__init__(
            f"{principal} may not {permission.replace('_', ' ')}{where}: that needs the "
            f"{needed} role (permission {permission!r})"
        )
        self.principal = principal
        self.permission = permission
        self.role = needed


def check_role(role: str) -> str:
    if role not in ROLES:
        raise DefinitionError(f"unknown role {role!r}; expected one of {', '.join(ROLES)}")
    return role


def check_principal_name(name: str) -> str:
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise DefinitionError(
            f"{name!r} is not a principal name (a letter, then letters, digits, _ . @ -)"
        )
    return name


def required_role(permission: str) -> str:
    """The least role that carries ``permission``."""
    for role in ROLES:
        if permission in PERMISSIONS[role]:
            return role
    raise DefinitionError(
        f"unknown permission {permission!r}; expected one of {', '.join(sorted(ALL_PERMISSIONS))}"
    )


def highest(roles: list[str]) -> str | None:
    """The strongest of ``roles`` (None when there is none)."""
    ranked = [ROLES.index(r) for r in roles if r in ROLES]
    return ROLES[max(ranked)] if ranked else None


def allows(role: str | None, permission: str) -> bool:
    required_role(permission)  # an unknown permission is a programming error
    return role is not None and permission in PERMISSIONS[role]
