"""Automation: the monthly ingestion runs by itself when a file lands.

The upstream system drops ``flights-YYYY-MM.csv`` into the workspace's ``landing/``
folder. The file sensor ``landing`` queues one run of the pipeline ``ingest`` per new or
changed file, for the month in its name; ``headrace daemon`` evaluates it and runs the
queue (the demo calls ``headrace daemon --once`` so its story stays deterministic). The
monitor in ``monitoring.py`` carries its own schedule.
"""

from __future__ import annotations

from headrace import automation as auto

auto.pipeline(
    "ingest",
    "+flights_clean group:reference",
    tags=["warehouse"],
    description="a landed month of flights, typed and checked, with the reference tables",
)
auto.file_sensor(
    "landing",
    "ingest",
    path="landing",
    pattern="flights-*.csv",
    partition_from=r"flights-(\d{4}-\d{2})\.csv",
    interval="1m",
)
