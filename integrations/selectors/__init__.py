"""Every read that several screens share (admin, API, commands, dashboard, incidents), as querysets or plain data."""

from integrations.selectors.health import (
    celery_queue_lengths,
    failure_summary,
    impact_scope,
    integrations_of,
    queue_depths,
)

__all__ = ["celery_queue_lengths", "failure_summary", "impact_scope", "integrations_of", "queue_depths"]
