"""Monitor declarations: ``from headrace import monitors as m``, then
``m.monitor("delay_drift", model="flight_delay", limits=[m.performance(...)],
actions=[m.webhook(...), m.retrain(...)])``. See ``headrace.core.monitors``."""

from headrace.core.monitors import (
    Action,
    Monitor,
    MonitorDefinitionError,
    PerformanceLimit,
    email,
    log,
    monitor,
    performance,
    retrain,
    webhook,
)

__all__ = [
    "Action",
    "Monitor",
    "MonitorDefinitionError",
    "PerformanceLimit",
    "email",
    "log",
    "monitor",
    "performance",
    "retrain",
    "webhook",
]
