"""The beat schedules, kept in django-celery-beat's tables and created idempotently."""
from django.db import transaction
from django_celery_beat.models import IntervalSchedule, PeriodicTask, PeriodicTasks

# name -> (task, every seconds)
SCHEDULES: dict[str, tuple[str, int]] = {
    "Start due syncs, retries and webhook retries": ("integrations.dispatch_due_syncs", 5),
    "Sweep records whose sync was never enqueued": ("integrations.sweep_pending_records", 120),
    "Refresh OAuth tokens before they expire": ("integrations.refresh_expiring_tokens", 300),
    "Resume pauses whose end has passed": ("integrations.resume_expired_pauses", 60),
}


def ensure_schedules() -> list[str]:
    """Create or correct every schedule in SCHEDULES; return the names that changed."""
    changed = []
    with transaction.atomic():
        for name, (task, seconds) in SCHEDULES.items():
            every, _ = IntervalSchedule.objects.get_or_create(every=seconds, period=IntervalSchedule.SECONDS)
            obj, created = PeriodicTask.objects.get_or_create(name=name, defaults={"task": task, "interval": every})
            if created or obj.task != task or obj.interval_id != every.pk or not obj.enabled:
                obj.task, obj.interval, obj.enabled = task, every, True
                obj.save()
                changed.append(name)
        PeriodicTasks.update_changed()
    return changed
