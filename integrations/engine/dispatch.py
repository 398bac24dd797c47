"""What is due: integrations with retries or polls due, webhooks to retry, and attempts a dead worker left."""

from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from integrations.engine.leases import lapsed_leases
from integrations.engine.pull import poll_due
from integrations.engine.push import pending_records
from integrations.engine.run import due_retries
from integrations.models import Integration, SyncLog, SyncMode, SyncStatus, WebhookDelivery, WebhookStatus


def due_integration_ids(now: datetime | None = None) -> set[int]:
    """Integrations with work due: retries whose time has come, polling integrations whose interval passed, and
    integrations whose run died holding its lease (a killed worker: its records are still pending)."""
    now = now or timezone.now()
    callable_ = Integration.objects.callable()
    retries = (
        SyncLog.objects.filter(
            status__in=[SyncStatus.RETRYING, SyncStatus.PENDING],
            next_attempt_at__lte=now,
            integration__in=callable_,
        )
        .values_list("integration_id", flat=True)
        .distinct()
    )
    polling = [
        integration.pk
        for integration in callable_.filter(mode=SyncMode.POLLING).only(
            "pk", "last_polled_at", "poll_interval", "poll_retry_at"
        )
        if poll_due(integration, now)
    ]
    dead_runs = lapsed_leases(now).filter(pk__in=callable_.values("pk")).values_list("pk", flat=True)
    return set(retries) | set(polling) | set(dead_runs)


def has_work(integration_id: int) -> bool:
    """Records waiting to be pushed, or retries due: what a regular run of the integration would do."""
    integration = Integration.objects.filter(pk=integration_id).first()
    if integration is None:
        return False
    return pending_records(integration).exists() or due_retries(integration).exists()


def integrations_with_pending_records() -> list[int]:
    """A sweep for records whose enqueue was lost (a broker restart): every integration with pending records."""
    out = []
    for integration in Integration.objects.callable():
        if integration.has_credentials and pending_records(integration).exists():
            out.append(integration.pk)
    return out


def due_webhook_ids(now: datetime | None = None, limit: int = 1000) -> list[int]:
    """Deliveries to process: failed ones whose retry is due, queued ones, and received ones whose processing
    task never came (sent while the broker was down, or lost in a broker restart)."""
    now = now or timezone.now()
    lost_task = now - timedelta(seconds=settings.SYNC_STUCK_AFTER_SECONDS)
    return list(
        WebhookDelivery.objects.filter(
            Q(status=WebhookStatus.FAILED, next_attempt_at__lte=now)
            | Q(status=WebhookStatus.RECEIVED, received_at__lte=lost_task)
            | Q(status=WebhookStatus.QUEUED, next_attempt_at__isnull=True)
            | Q(status=WebhookStatus.QUEUED, next_attempt_at__lte=now),
            integration__enabled=True,
            integration__sync_paused=False,
        )
        .order_by("received_at")
        .values_list("pk", flat=True)[:limit]
    )


def recover_stuck(now: datetime | None = None) -> int:
    """Logs left RUNNING by a killed worker (its lease has lapsed): pushes retry now, pulls are marked failed."""
    now = now or timezone.now()
    older_than = timedelta(seconds=settings.SYNC_STUCK_AFTER_SECONDS)
    leased = Integration.objects.filter(sync_lease_until__gt=now).values("pk")
    stuck = SyncLog.objects.filter(status=SyncStatus.RUNNING, created_at__lt=now - older_than).exclude(
        integration__in=leased
    )
    message = "the worker stopped mid-sync"
    n = stuck.filter(record__isnull=False).update(
        status=SyncStatus.RETRYING, next_attempt_at=now, error_message=f"{message}; retrying"
    )
    n += stuck.filter(record__isnull=True).update(
        status=SyncStatus.FAILED, finished_at=now, error_message=message
    )
    return n
