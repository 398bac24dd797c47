"""Detection: error rate per provider and endpoint over 15 minutes; above the threshold it opens or updates the
provider's incident through `services.opening.open_or_update_incident` (the same entry point alerts use).

Runbook rule (../shared/docs/DESIGN.md "Detection and incidents"; docs/DESIGN.md "Flows"), by the dominant error category of the window:
- auth_expired / auth_invalid / auth_refresh_failed -> RB-02;
- rate_limited -> RB-03;
- validation / missing_field / duplicate / mapping -> RB-04;
- connection / timeout / provider_5xx / unknown -> RB-09 when the provider is a docs or enrichment provider, or
  when webhook deliveries of the provider failed in the window (RB-09 "Webhook delivery failures"); RB-01 for
  the other CRM/ATS outages. While an RB-01 or RB-09 incident of the provider is active, an outage keeps its
  runbook, so that webhook failures coming and going never split one outage into two incidents.
Webhook delivery failures alone (at least INCIDENT_MIN_ERRORS in the window) open RB-09.
Ties between categories go to the first in CATEGORY_PRIORITY.
Severity: SEV-3 when the provider has a polling fallback (it normally sends webhooks), else SEV-2.
"""

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db.models import Count, Exists, Min, OuterRef
from django.utils import timezone

from incidents import conf
from incidents.models import ACTIVE_STATUSES, Incident
from incidents.services.opening import default_severity, open_or_update_incident
from integrations.catalog import PROVIDERS
from integrations.models import (
    AUTH_CATEGORIES,
    DATA_CATEGORIES,
    CrmSyncStatus,
    Integration,
    IntegrationStatus,
    OutcomeKind,
    Record,
    SyncLog,
    SyncStatus,
    WebhookDelivery,
    WebhookStatus,
)
from integrations.selectors import rates

WINDOW = timedelta(minutes=15)
IMPACT_WINDOW = timedelta(hours=1)
ALERT_NAME = "IDISIntegrationProviderErrors"
CATEGORY_PRIORITY = [
    "auth_refresh_failed",
    "auth_invalid",
    "auth_expired",
    "rate_limited",
    "provider_5xx",
    "connection",
    "timeout",
    "validation",
    "missing_field",
    "duplicate",
    "mapping",
    "unknown",
]
OUTAGE_RUNBOOKS = ("RB-01", "RB-09")


@dataclass
class ProviderWindow:
    provider: str
    total: int = 0
    errors: int = 0
    by_category: dict = field(default_factory=lambda: defaultdict(int))
    by_endpoint: dict = field(
        default_factory=lambda: defaultdict(lambda: [0, 0])
    )  # endpoint -> [errors, total]
    webhook_failures: int = 0

    @property
    def error_rate(self) -> float:
        return self.errors / self.total if self.total else 0.0

    def hot_endpoints(self, threshold: float, min_errors: int) -> list[str]:
        return [
            e
            for e, (err, tot) in self.by_endpoint.items()
            if err >= min_errors and tot and err / tot >= threshold
        ]

    def triggered(self, threshold: float, min_errors: int) -> bool:
        by_rate = self.errors >= min_errors and (
            self.error_rate >= threshold or bool(self.hot_endpoints(threshold, min_errors))
        )
        return by_rate or self.webhook_failures >= min_errors

    @property
    def dominant_category(self) -> str:
        if not self.by_category:
            return ""
        return max(self.by_category, key=lambda c: (self.by_category[c], -_priority(c)))


def _priority(category: str) -> int:
    return CATEGORY_PRIORITY.index(category) if category in CATEGORY_PRIORITY else len(CATEGORY_PRIORITY)


def runbook_for(provider: str, category: str, *, webhook_failures: int = 0) -> str:
    """The runbook for a provider's dominant error category (the module docstring states the rule)."""
    if category in AUTH_CATEGORIES:
        return "RB-02"
    if category == "rate_limited":
        return "RB-03"
    if category in DATA_CATEGORIES:
        return "RB-04"
    if PROVIDERS[provider].category in ("docs", "enrichment") or webhook_failures:
        return "RB-09"
    return "RB-01"


def measure(now: datetime | None = None) -> dict[str, ProviderWindow]:
    """Attempts and errors per provider, category and endpoint over the window, from the per-minute rollups the
    engine keeps (every attempt counts, retries included; the sync-log table is never scanned)."""
    now = now or timezone.now()
    minutes = int(WINDOW.total_seconds() // 60)
    windows = {
        provider: ProviderWindow(
            provider, total=r.calls, errors=r.errors, by_category=r.by_category, by_endpoint=r.by_endpoint
        )
        for provider, r in rates.error_rates(minutes=minutes, now=now).items()
    }
    for provider, r in rates.error_rates(minutes=minutes, now=now, kind=OutcomeKind.WEBHOOK).items():
        if r.errors:
            windows.setdefault(provider, ProviderWindow(provider)).webhook_failures = r.errors
    return windows


def impact_scope(provider: str, w: ProviderWindow, now: datetime) -> tuple[dict, set[int], datetime | None]:
    """(impact, affected tenant ids, first error time) of a provider's window."""
    since = now - WINDOW
    errors = SyncLog.objects.filter(
        provider=provider, created_at__gte=since, status__in=[SyncStatus.FAILED, SyncStatus.RETRYING]
    ).exclude(error_category="")
    tenant_ids = set(errors.values_list("tenant_id", flat=True).distinct())
    # A retried attempt keeps its first time: integrations that failed within the window count as well.
    tenant_ids |= set(
        Integration.objects.filter(provider=provider, last_error_at__gte=since).values_list(
            "tenant_id", flat=True
        )
    )
    tenant_ids |= set(
        WebhookDelivery.objects.filter(
            provider=provider,
            received_at__gte=since,
            status__in=[WebhookStatus.FAILED, WebhookStatus.DEAD],
        )
        .values_list("integration__tenant_id", flat=True)
        .distinct()
    )
    first_error = errors.aggregate(m=Min("created_at"))["m"]
    # RB-09 triage 5: records whose CRM sync failed in the last hour, by tenant.
    recent_logs = SyncLog.objects.filter(
        record=OuterRef("pk"), provider=provider, created_at__gte=now - IMPACT_WINDOW
    )
    failed = dict(
        Record.objects.filter(crm_sync_status=CrmSyncStatus.FAILED, kind=PROVIDERS[provider].record_kind)
        .filter(Exists(recent_logs))
        .values_list("tenant__slug")
        .annotate(n=Count("pk"))
        .order_by()
    )
    failing = list(
        Integration.objects.filter(provider=provider, enabled=True)
        .exclude(status=IntegrationStatus.CONNECTED)
        .values_list("tenant__slug", "status", "last_error_category")
        .order_by("tenant__slug")[:200]
    )
    retrying = SyncLog.objects.filter(
        provider=provider, status=SyncStatus.RETRYING, record__isnull=False
    ).count()
    threshold, min_errors = conf.error_rate_threshold(), conf.min_errors()
    endpoints = sorted(w.by_endpoint.items(), key=lambda kv: -kv[1][0])[:10]
    impact = {
        "window_minutes": int(WINDOW.total_seconds() // 60),
        "measured_at": now.isoformat(),
        "attempts": w.total,
        "errors": w.errors,
        "error_rate": round(w.error_rate, 4),
        "by_category": dict(w.by_category),
        "by_endpoint": {
            e or "(none)": {"errors": err, "attempts": tot, "rate": round(err / tot, 4) if tot else 0}
            for e, (err, tot) in endpoints
        },
        "hot_endpoints": w.hot_endpoints(threshold, min_errors),
        "webhook_failures": w.webhook_failures,
        "failed_records_by_tenant": failed,
        "failing_integrations": [{"tenant": t, "status": s, "category": c} for t, s, c in failing],
        "retrying": retrying,
    }
    return impact, tenant_ids, first_error


def choose_runbook(
    provider: str, w: ProviderWindow, *, default_category: str = "connection"
) -> tuple[str, str]:
    """(dominant category, runbook) for a provider's window, keeping an active outage's runbook (no split)."""
    category = w.dominant_category if w.errors >= conf.min_errors() else default_category
    runbook = runbook_for(provider, category, webhook_failures=w.webhook_failures)
    if runbook in OUTAGE_RUNBOOKS:
        active = (
            Incident.objects.filter(
                provider=provider, runbook__in=OUTAGE_RUNBOOKS, status__in=ACTIVE_STATUSES
            )
            .order_by("opened_at")
            .values_list("runbook", flat=True)
            .first()
        )
        runbook = active or runbook
    return category, runbook


def detect(now: datetime | None = None) -> list[tuple[Incident, bool]]:
    """One detection pass: (incident, created) for every provider over the threshold."""
    now = now or timezone.now()
    threshold, min_errors = conf.error_rate_threshold(), conf.min_errors()
    out = []
    for provider, w in sorted(measure(now).items()):
        if provider not in PROVIDERS or not w.triggered(threshold, min_errors):
            continue
        category, runbook = choose_runbook(provider, w)
        impact, tenant_ids, first_error = impact_scope(provider, w, now)
        incident, created = open_or_update_incident(
            provider=provider,
            runbook=runbook,
            severity=default_severity(provider),
            detected_by=ALERT_NAME,
            started_at=first_error,
            error_rate=round(w.error_rate, 4),
            dominant_category=category,
            impact=impact,
            tenants=tenant_ids,
        )
        out.append((incident, created))
    return out
