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
    ago=timedelta(seconds=10),  # inside the fast window (the current and the previous minute) for a while
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
    # The engine's per-minute error counts move with them (oldest first, so that no two rows meet on one
    # minute); the successes stay where they are, as calls that succeeded after the outage.
    for row in (
        OutcomeRollup.objects.filter(provider=provider, minute__gte=now - timedelta(hours=1))
        .exclude(category="")
        .order_by("minute")
    ):
        OutcomeRollup.objects.filter(pk=row.pk).update(minute=row.minute - by)
    for integration in Integration.objects.filter(provider=provider, last_error_at__isnull=False):
        Integration.objects.filter(pk=integration.pk).update(last_error_at=integration.last_error_at - by)


HUB_ENDPOINT = "/crm/v3/objects/contacts"


def traffic(
    provider: str, *, at, calls: int, errors: int = 0, category="provider_5xx", endpoint=HUB_ENDPOINT
):
    """`calls` calls of a provider at `at`, `errors` of them failing, counted as the engine counts them."""
    from integrations.engine import rollups

    if calls - errors > 0:
        rollups.count(provider=provider, endpoint=endpoint, at=at, n=calls - errors)
    if errors > 0:
        rollups.count(provider=provider, endpoint=endpoint, category=category, at=at, n=errors)


def replay(
    clock,
    *,
    provider: str,
    seconds: int,
    failing,
    calls_per_10s=5,
    detect_at_second: int = 37,
    category: str = "provider_5xx",
    each_minute=None,
):
    """Move the clock through `seconds` of traffic (calls every 10 s, `calls_per_10s` or `calls_per_10s(t)` of
    them; `failing(t)` says whether the calls at t seconds in fail: True for all, or how many) and run detection once a minute at `detect_at_second`, as beat would. Returns
    [(t, [(incident, created), ...])] for each detection pass; `each_minute(t)` runs after each pass."""
    from incidents.detection import rates

    start = clock.now
    passes = []
    for t in range(0, seconds + 1):
        clock.set(start + timedelta(seconds=t))
        if t % 10 == 0:
            bad = failing(t)
            calls = calls_per_10s(t) if callable(calls_per_10s) else calls_per_10s
            traffic(
                provider,
                at=clock.now,
                calls=calls,
                errors=calls if bad is True else min(calls, int(bad or 0)),
                category=category,
            )
        if (start + timedelta(seconds=t)).second == detect_at_second:
            passes.append((t, rates.detect()))
            if each_minute is not None:
                each_minute(t)
    return passes
