"""Errors raised while defining, validating and planning assets."""

from __future__ import annotations

from headrace.errors import HeadraceError


class DefinitionError(HeadraceError):
    """An asset definition breaks a rule; ``asset`` names the asset at fault."""

    def __init__(self, message: str, *, asset: str | None = None) -> None:
        super().__init__(message)
        self.asset = asset


class AssetSignatureError(DefinitionError):
    """An asset function's signature cannot be mapped to upstream assets and params."""


class DuplicateAssetError(DefinitionError):
    """Two different definitions use the same asset name."""


class MissingUpstreamError(DefinitionError):
    """An asset names an upstream asset that is not defined."""

    def __init__(self, message: str, *, asset: str, upstream: str) -> None:
        super().__init__(message, asset=asset)
        self.upstream = upstream


class AssetCycleError(DefinitionError):
    """The assets' dependencies form a cycle; ``cycle`` lists it in order."""

    def __init__(self, cycle: list[str]) -> None:
        super().__init__(
            "assets depend on each other in a cycle: " + " -> ".join(cycle), asset=cycle[0]
        )
        self.cycle = cycle


class PartitionError(DefinitionError):
    """A partition key or range is invalid for an asset's partitions definition."""


class SelectionError(HeadraceError):
    """A selection expression names no known asset, tag or group, or cannot be parsed."""


class ParamValidationError(HeadraceError):
    """A run param is unknown, missing, or does not match the declared type."""

    def __init__(self, message: str, *, param: str, asset: str | None = None) -> None:
        super().__init__(message)
        self.param = param
        self.asset = asset
