"""Automation declarations: ``from headrace import automation as auto``, then
``auto.pipeline("ingest", "raw_flights+")``, ``auto.schedule("nightly", "ingest",
cron="0 6 * * *", timezone="Europe/Paris")``, ``auto.file_sensor(...)``,
``auto.freshness("flights_clean", "26h")``. ``headrace daemon`` runs them. See
``headrace.core.automation``."""

from headrace.core.automation import (
    AutomationDefinitionError,
    Freshness,
    Limits,
    Notify,
    Pipeline,
    Schedule,
    Sensor,
    alert_sensor,
    asset_sensor,
    defaults,
    file_sensor,
    freshness,
    limits,
    notify,
    pipeline,
    schedule,
)

__all__ = [
    "AutomationDefinitionError",
    "Freshness",
    "Limits",
    "Notify",
    "Pipeline",
    "Schedule",
    "Sensor",
    "alert_sensor",
    "asset_sensor",
    "defaults",
    "file_sensor",
    "freshness",
    "limits",
    "notify",
    "pipeline",
    "schedule",
]
