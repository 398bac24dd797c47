"""Outcome counters kept as each provider call ends: per minute (for rates) and cumulative (for /metrics).

One upsert per counter (INSERT ... ON CONFLICT DO UPDATE, on PostgreSQL and SQLite alike), so counting costs
two statements per call and nobody ever scans the sync-log table for a rate.
"""

from datetime import datetime, timedelta

from django.db import connection
from django.db.models import Q, Sum
from django.utils import timezone

from integrations.models import OutcomeKind, OutcomeRollup, OutcomeTotal

_ROLLUP = (
    "INSERT INTO integrations_outcomerollup (kind, minute, provider, endpoint, category, count) "
    "VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (kind, minute, provider, endpoint, category) "
    "DO UPDATE SET count = integrations_outcomerollup.count + EXCLUDED.count"
)
_TOTAL = (
    "INSERT INTO integrations_outcometotal (kind, provider, endpoint, category, count) "
    "VALUES (%s, %s, %s, %s, %s) ON CONFLICT (kind, provider, endpoint, category) "
    "DO UPDATE SET count = integrations_outcometotal.count + EXCLUDED.count"
)


def count(
    *,
    provider: str,
    endpoint: str,
    category: str = "",
    kind: str = OutcomeKind.SYNC,
    at: datetime | None = None,
    n: int = 1,
) -> None:
    """Count n outcomes ("" category = success) at the minute of `at`."""
    minute = (at or timezone.now()).replace(second=0, microsecond=0)
    endpoint = (endpoint or "")[:300]
    with connection.cursor() as cursor:
        cursor.execute(_ROLLUP, [kind, minute, provider, endpoint, category or "", n])
        cursor.execute(_TOTAL, [kind, provider, endpoint, category or "", n])


def window(*, minutes: int = 15, kind: str = OutcomeKind.SYNC, now: datetime | None = None):
    """Rollup rows of the last `minutes` minutes (the current minute included)."""
    now = now or timezone.now()
    start = now.replace(second=0, microsecond=0) - timedelta(minutes=minutes - 1)
    return OutcomeRollup.objects.filter(kind=kind, minute__gte=start)


def totals(kind: str = OutcomeKind.SYNC, *, errors_only: bool = True):
    qs = OutcomeTotal.objects.filter(kind=kind)
    if errors_only:
        qs = qs.filter(~Q(category=""))
    return qs.values("provider", "endpoint").annotate(n=Sum("count")).order_by("provider", "endpoint")


def prune(*, older_than: timedelta = timedelta(days=8)) -> int:
    """Forget per-minute rows past the dashboard's longest view (the cumulative totals stay)."""
    return OutcomeRollup.objects.filter(minute__lt=timezone.now() - older_than).delete()[0]
