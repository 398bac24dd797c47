"""Builders for incident tests: failing traffic in the sync logs, and backdating an outage instead of waiting."""

from datetime import timedelta

from django.utils import timezone

from integrations.models import Integration, OutcomeRollup, SyncLog
from tests.support import factories


def failing_logs(
    integration,
    n,
    *,
    category="provider_5xx",
    status="FAILED",
    endpoint="/crm/v3/objects/contacts",
    ago=timedelta(minutes=1),
    **kw,
):
    when = timezone.now() - ago
    logs = [
        factories.sync_log(
            integration=integration,
            status=status,
            error_category=category,
            endpoint=endpoint,
            http_status=503 if category == "provider_5xx" else None,
            created_at=when,
            finished_at=when,
            **kw,
        )
        for _ in range(n)
    ]
    Integration.objects.filter(pk=integration.pk).update(
        last_error_at=when, last_error_category=category, status="error"
    )
    return logs


def backdate_errors(provider: str, by: timedelta = timedelta(minutes=20)) -> None:
    """Move the outage's failing attempts (and the integrations' last errors) back in time, instead of waiting."""
    now = timezone.now()
    for log in SyncLog.objects.filter(provider=provider, created_at__gte=now - timedelta(hours=1)).exclude(
        error_category=""
    ):
        SyncLog.objects.filter(pk=log.pk).update(
            created_at=log.created_at - by, finished_at=(log.finished_at - by) if log.finished_at else None
        )
    # The engine's per-minute counts move with them (oldest first, so that no two rows meet on one minute).
    for row in OutcomeRollup.objects.filter(provider=provider, minute__gte=now - timedelta(hours=1)).order_by(
        "minute"
    ):
        OutcomeRollup.objects.filter(pk=row.pk).update(minute=row.minute - by)
    for integration in Integration.objects.filter(provider=provider, last_error_at__isnull=False):
        Integration.objects.filter(pk=integration.pk).update(last_error_at=integration.last_error_at - by)
