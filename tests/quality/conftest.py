from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.projects import close_opened


@pytest.fixture(autouse=True)
def _close_workspaces() -> Iterator[None]:
    yield
    close_opened()
