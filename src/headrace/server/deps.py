"""FastAPI dependencies shared by the ``/api/v1`` routes."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends
from starlette.requests import Request

from headrace.server.context import Gate
from headrace.store.governance import Principal


def caller(request: Request) -> Principal:
    """The authenticated principal of a request (401 without a valid token)."""
    gate: Gate = request.app.state.gate
    return gate.principal(request)


Caller = Annotated[Principal, Depends(caller)]
