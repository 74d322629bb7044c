"""A private PostgreSQL cluster, one per session, that outage tests stop and start."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.outage.cluster import PrivateCluster, missing


@pytest.fixture(scope="session")
def _cluster() -> Iterator[PrivateCluster]:
    why = missing()
    if why is not None:
        pytest.skip(f"no private PostgreSQL cluster: {why}")
    cluster = PrivateCluster()
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.remove()  # stopped at the end of the session, whatever happened


@pytest.fixture
def cluster(_cluster: PrivateCluster) -> Iterator[PrivateCluster]:
    """The session's private cluster, running; a test may stop and start it, and it is
    running again for the next test."""
    if not _cluster.running:
        _cluster.start()
    yield _cluster
    if not _cluster.running:
        _cluster.start()
