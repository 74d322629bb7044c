"""Errors of running steps."""

from __future__ import annotations

from headrace.errors import HeadraceError


class StepFailedError(HeadraceError):
    """A user's asset function raised; carries the step and the user's traceback."""

    def __init__(
        self,
        message: str,
        *,
        asset: str,
        partition: str | None,
        attempt: int,
        traceback: str,
        retryable: bool,
    ) -> None:
        super().__init__(message)
        self.asset = asset
        self.partition = partition
        self.attempt = attempt
        self.traceback = traceback
        self.retryable = retryable


class StepTimeoutError(HeadraceError):
    """A step ran longer than its asset's ``timeout``."""

    retryable = True

    def __init__(self, asset: str, timeout: float) -> None:
        super().__init__(f"asset {asset!r} did not finish within its timeout of {timeout:g} s")
        self.asset = asset
        self.timeout = timeout


class MissingInputError(HeadraceError):
    """An upstream asset the step reads has no version on the branch."""

    def __init__(self, asset: str, upstream: str, branch: str, partition: str | None) -> None:
        where = f" partition {partition!r}" if partition else ""
        super().__init__(
            f"asset {asset!r} reads {upstream!r}{where}, which has no version on branch "
            f"{branch!r}; materialize it first or select '+{asset}'"
        )
        self.asset = asset
        self.upstream = upstream


class RunNotResumableError(HeadraceError):
    """The run finished successfully, or is still running in a live process."""


class ExecutorError(HeadraceError):
    """The executor cannot run the definitions as given."""
