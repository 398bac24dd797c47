"""Reads that several screens share (JSON API, dashboard, commands): plain dicts and lists, no model instances."""

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Count, Exists, OuterRef, Q, QuerySet
from django.utils import timezone

from integrations.models import (
    CrmSyncStatus,
    Integration,
    Record,
    RecordLink,
    SyncLog,
    SyncStatus,
    WebhookDelivery,
    WebhookStatus,
)

log = logging.getLogger(__name__)

CELERY_QUEUES = ("sync", "default")


def integrations_of(provider: str, *, tenant_slug: str | None = None) -> QuerySet:
    """A provider's integrations, or one tenant's (what the runbook commands act on)."""
    qs = Integration.objects.filter(provider=provider)
    if tenant_slug:
        qs = qs.filter(tenant__slug=tenant_slug)
    return qs.order_by("pk")


def failure_summary(
    *,
    provider: str,
    since: datetime | None = None,
    window: timedelta = timedelta(hours=24),
    tenant_id: int | None = None,
) -> dict:
    """RB-04 "failure summary": FAILED sync logs of a provider by error category and by field over a window."""
    since = since or timezone.now() - window
    failed = SyncLog.objects.filter(provider=provider, status=SyncStatus.FAILED, created_at__gte=since)
    if tenant_id is not None:
        failed = failed.filter(tenant_id=tenant_id)
    by_category = [
        {"error_category": category or "unknown", "count": n}
        for category, n in failed.values_list("error_category")
        .annotate(n=Count("pk"))
        .order_by("-n", "error_category")
    ]
    by_field = [
        {"error_field": field, "count": n}
        for field, n in failed.exclude(error_field="")
        .values_list("error_field")
        .annotate(n=Count("pk"))
        .order_by("-n", "error_field")
    ]
    return {
        "provider": provider,
        "since": since.isoformat(),
        "total": sum(row["count"] for row in by_category),
        "by_category": by_category,
        "by_field": by_field,
    }


def impact_scope(
    *, provider: str | None = None, window: timedelta = timedelta(hours=1), tenant_id: int | None = None
) -> list[dict]:
    """RB-09 triage 5: records whose crm_sync_status is FAILED, updated within the window, by tenant."""
    records = Record.objects.filter(
        crm_sync_status=CrmSyncStatus.FAILED, updated_at__gt=timezone.now() - window
    )
    if provider:
        records = records.filter(
            Exists(RecordLink.objects.filter(record=OuterRef("pk"), integration__provider=provider))
        )
    if tenant_id is not None:
        records = records.filter(tenant_id=tenant_id)
    rows = (
        records.values("tenant_id", "tenant__slug", "tenant__name")
        .annotate(affected=Count("pk"))
        .order_by("-affected", "tenant__slug")
    )
    return [
        {
            "tenant_id": r["tenant_id"],
            "tenant": r["tenant__slug"],
            "tenant_name": r["tenant__name"],
            "affected_records": r["affected"],
        }
        for r in rows
    ]


def celery_queue_lengths(broker_url: str | None = None) -> dict | None:
    """`LLEN sync` / `LLEN default` when the broker is Redis; None for other brokers; an error entry if down."""
    url = broker_url if broker_url is not None else settings.CELERY_BROKER_URL
    if not url.startswith(("redis://", "rediss://")):
        return None
    import redis

    try:
        client = redis.Redis.from_url(url, socket_timeout=0.5, socket_connect_timeout=0.5)
        pipe = client.pipeline(transaction=False)
        for name in CELERY_QUEUES:
            pipe.llen(name)
        return dict(zip(CELERY_QUEUES, pipe.execute(), strict=True))
    except redis.RedisError as e:
        log.warning("queue lengths unavailable: %s", e)
        return {"error": str(e)}


def queue_depths(
    *, provider: str | None = None, now: datetime | None = None, broker_url: str | None = None
) -> dict:
    """RB-03 "check queue depth": sync work by state, webhook deliveries waiting, and the Celery queues."""
    now = now or timezone.now()
    # A retried attempt keeps its RETRYING outcome but no due time: only attempts still to be retried wait.
    logs = SyncLog.objects.filter(
        Q(status__in=[SyncStatus.PENDING, SyncStatus.RUNNING])
        | Q(status=SyncStatus.RETRYING, next_attempt_at__isnull=False)
    )
    webhooks = WebhookDelivery.objects.filter(status__in=[WebhookStatus.FAILED, WebhookStatus.QUEUED])
    if provider:
        logs, webhooks = logs.filter(provider=provider), webhooks.filter(provider=provider)
    by_status = dict(logs.values_list("status").annotate(n=Count("pk")).order_by())
    retrying_due = logs.filter(status=SyncStatus.RETRYING, next_attempt_at__lte=now).count()
    hooks = dict(webhooks.values_list("status").annotate(n=Count("pk")).order_by())
    return {
        "provider": provider,
        "sync_logs": {
            "retrying_due": retrying_due,
            "retrying_later": by_status.get(SyncStatus.RETRYING, 0) - retrying_due,
            "pending": by_status.get(SyncStatus.PENDING, 0),
            "running": by_status.get(SyncStatus.RUNNING, 0),
        },
        "webhooks": {
            "failed": hooks.get(WebhookStatus.FAILED, 0),
            "queued": hooks.get(WebhookStatus.QUEUED, 0),
        },
        "celery": _celery_or_why(broker_url),
    }


def _celery_or_why(broker_url: str | None) -> dict:
    """The Celery queue lengths, or why there are none (never a bare null)."""
    lengths = celery_queue_lengths(broker_url)
    if lengths is not None:
        return lengths
    url = broker_url if broker_url is not None else settings.CELERY_BROKER_URL
    scheme = url.split("://", 1)[0] if "://" in url else url
    return {
        "unavailable": f"the {scheme or 'configured'} broker does not report queue lengths (only Redis does)"
    }


def quota_blocks(providers) -> dict[str, float]:
    """Seconds the shared quota still holds each provider's calls back after a rate limit (0 when it does not);
    "Quota is back" (services.provider_quota_restore) clears it."""
    from integrations.engine.quota import provider_quota

    quota = provider_quota()
    return {slug: quota.blocked_for(slug) for slug in providers}
