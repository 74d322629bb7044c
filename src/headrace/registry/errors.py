"""Errors of the registry area: refusals that name the rule broken and what to do."""

from __future__ import annotations

from headrace.store.registry import RegistryError


class GuardedAliasError(RegistryError):
    """A guarded alias (``champion``, or one a promotion policy promotes to) was asked
    to move onto a version its policy refuses, or without a promotion."""

    def __init__(
        self, message: str, *, model: str, alias: str, version: int, rules: tuple[str, ...]
    ) -> None:
        super().__init__(message)
        self.model = model
        self.alias = alias
        self.version = version
        self.rules = rules


class OverrideNotAllowedError(RegistryError):
    """An override of a promotion policy without a reason, or by a principal whose role
    does not carry the ``override_policy`` permission (maintainer or admin)."""

    def __init__(self, message: str, *, model: str, alias: str, role: str | None) -> None:
        super().__init__(message)
        self.model = model
        self.alias = alias
        self.role = role
