"""Errors of the scoring server that a client sees as a 4xx or a 503."""

from __future__ import annotations

from headrace.errors import HeadraceError
from headrace.serving.formats import ScoringInputError


class RequestHeaderError(ScoringInputError):
    """A client-supplied header the prediction log cannot keep (too long, or holding
    characters an id may not): refused with a 400 before the model is called."""

    code = "BAD_REQUEST"

    def __init__(self, message: str, *, header: str) -> None:
        super().__init__(message, status=400, field=header)
        self.header = header


class PredictionLogFullError(ScoringInputError):
    """The prediction log holds as many rows as it may keep in memory while the
    metadata store cannot be reached: the request is refused with a 503 (not answered
    and then lost). A retry helps once the store answers again."""

    code = "PREDICTION_LOG_FULL"
    retryable = True

    def __init__(self, message: str) -> None:
        super().__init__(message, status=503, field=None)


class UnloggedFileError(HeadraceError):
    """A file of unlogged prediction rows that cannot be loaded (unreadable, not JSON
    lines, or a row without the prediction log's columns): nothing was written."""

    def __init__(self, message: str, *, path: str, line: int | None = None) -> None:
        super().__init__(message)
        self.path = path
        self.line = line
