"""Celery tasks of the incidents app: thin callers of detection and the services."""

from celery import shared_task

from incidents.detection import rates
from incidents.services import checklist, communication


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


@shared_task(name="incidents.send_notification", queue="default")
def send_notification(notification_id: int) -> str:
    """After commit: send one outbox row (a failure is stored on the row and retried by beat)."""
    row = communication.notification_send(notification_id=notification_id)
    return row.status if row is not None else "gone"


@shared_task(name="incidents.send_due_notifications", queue="default")
def send_due_notifications() -> int:
    """Beat, every 30 s: retry failed notifications that are due, and send queued ones nobody picked up."""
    return communication.notifications_send_due()
