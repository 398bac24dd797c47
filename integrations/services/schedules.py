"""The beat schedules, kept in django-celery-beat's tables and created idempotently."""

from importlib import import_module

from django.apps import apps
from django.conf import settings
from django.db import transaction
from django_celery_beat.models import IntervalSchedule, PeriodicTask, PeriodicTasks

# name -> (task, every seconds)
SCHEDULES: dict[str, tuple[str, int]] = {
    "Start due syncs, retries and webhook retries": ("integrations.dispatch_due_syncs", 5),
    "Sweep records whose sync was never enqueued": ("integrations.sweep_pending_records", 120),
    "Refresh OAuth tokens before they expire": ("integrations.refresh_expiring_tokens", 300),
    "Resume pauses whose end has passed": ("integrations.resume_expired_pauses", 60),
    "Read the providers' status pages": ("integrations.read_status_pages", 120),
    "Forget per-minute outcome counts older than 8 days": ("integrations.prune_rollups", 3600),
}


DEMO_SCHEDULES: dict[str, tuple[str, int]] = {
    "Demo: tenants and providers change records": ("integrations.demo_activity", 20),
}


def all_schedules() -> dict[str, tuple[str, int]]:
    """This module's SCHEDULES and those of every installed app that has a `schedules` module (incidents, ...)."""
    # integrations' own live here (integrations.services.schedules), not in an integrations.schedules module.
    out: dict[str, tuple[str, int]] = dict(SCHEDULES)
    for app in apps.get_app_configs():
        try:
            module = import_module(f"{app.name}.schedules")
        except ModuleNotFoundError:
            continue
        out.update(getattr(module, "SCHEDULES", {}))
    return out


def ensure_schedules() -> list[str]:
    """Create or correct every app's schedules (and the demo's when DEMO_ACTIVITY); return what changed."""
    changed = []
    wanted = {**all_schedules(), **(DEMO_SCHEDULES if settings.DEMO_ACTIVITY else {})}
    with transaction.atomic():
        for name in DEMO_SCHEDULES:
            if name not in wanted and PeriodicTask.objects.filter(name=name, enabled=True).update(
                enabled=False
            ):
                changed.append(name)
        # A schedule of ours kept under an older name would run its task a second time: disable it.
        ours = {task for task, _ in {**all_schedules(), **DEMO_SCHEDULES}.values()}
        stale = PeriodicTask.objects.filter(task__in=ours, enabled=True).exclude(name__in=wanted)
        for name in stale.values_list("name", flat=True):
            changed.append(name)
        stale.update(enabled=False)
        for name, (task, seconds) in wanted.items():
            every, _ = IntervalSchedule.objects.get_or_create(every=seconds, period=IntervalSchedule.SECONDS)
            obj, created = PeriodicTask.objects.get_or_create(
                name=name, defaults={"task": task, "interval": every}
            )
            if created or obj.task != task or obj.interval_id != every.pk or not obj.enabled:
                obj.task, obj.interval, obj.enabled = task, every, True
                obj.save()
                changed.append(name)
        PeriodicTasks.update_changed()
    return changed
