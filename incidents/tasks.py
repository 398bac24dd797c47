"""Celery tasks of the incidents app: thin callers of detection and the services."""

from celery import shared_task

from incidents.detection import rates
from incidents.services import checklist


@shared_task(name="incidents.detect", queue="default")
def detect() -> dict:
    """Beat, every minute: one detection pass (opens or updates incidents)."""
    results = rates.detect()
    return {
        "opened": sum(1 for _, created in results if created),
        "updated": sum(1 for _, c in results if not c),
    }


@shared_task(name="incidents.evaluate_checks", queue="default")
def evaluate_checks() -> int:
    """Beat, every minute: evaluate every open incident's checks; items whose check passes complete themselves."""
    return checklist.incidents_evaluate_active()
