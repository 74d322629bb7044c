"""FastAPI dependencies shared by the ``/api/v1`` routes."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Query
from starlette.requests import Request

from headrace.server.context import MAX_LIMIT, Gate
from headrace.store.governance import Principal


def caller(request: Request) -> Principal:
    """The authenticated principal of a request (401 without a valid token)."""
    gate: Gate = request.app.state.gate
    return gate.principal(request)


Caller = Annotated[Principal, Depends(caller)]


def page(
    limit: Annotated[
        int, Query(ge=1, le=MAX_LIMIT, description="Items per page (1 to 1,000)")
    ] = 100,
    page_token: Annotated[
        str | None,
        Query(pattern=r"^[0-9]{1,12}$", description="next_page_token of the page before"),
    ] = None,
) -> tuple[int, int]:
    """(limit, offset) of one page of a list."""
    return limit, int(page_token or 0)


Paging = Annotated[tuple[int, int], Depends(page)]
