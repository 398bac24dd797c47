"""The console's own detection, every minute (beat's `incidents.detect`). It opens, reopens or updates the
provider's incident through `services.opening.open_or_update_incident` (the same entry point alerts use).

Signals, per provider (docs/DESIGN.md "Flows"), all read from the one error-rate reader
(`integrations.selectors.rates.error_rates`) or from the integrations' state:
- **fast burn**: over the fast window (INCIDENT_FAST_WINDOW_MINUTES, 2), the provider or one of its endpoints
  has at least INCIDENT_FAST_MIN_CALLS calls, INCIDENT_MIN_ERRORS errors and an error share of at least
  INCIDENT_ERROR_RATE_THRESHOLD (20%). A full outage opens its incident within a minute or two.
- **slow burn**: over the slow window (INCIDENT_SLOW_WINDOW_MINUTES, 15), at least INCIDENT_SLOW_MIN_CALLS calls,
  INCIDENT_MIN_ERRORS errors and INCIDENT_SLOW_ERROR_RATE_THRESHOLD (5%) errors, confirmed by the fast window
  still erring at that share: sustained errors open and keep an incident, while a finished burst that is only
  draining out of the slow window signals nothing.
- **webhook failures**: at least INCIDENT_MIN_ERRORS failed webhook deliveries over the slow window, some of them
  in the fast window.
- **state**: at least INCIDENT_STATE_SHARE (half) of the provider's enabled integrations, and at least
  INCIDENT_STATE_MIN_TENANTS (2) tenants, need re-authorization or erred within the slow window; this opens an
  incident when calls have stopped (needs_reauth integrations never call). RB-02 when most are auth failures.
- **status page**: the provider's status page (ProviderStatusReading, read within the last hour) says "major"
  or "critical".
One signal per provider and pass, in that order.

Runbook rule (../shared/docs/DESIGN.md "Detection and incidents"), by the dominant error category:
- auth_expired / auth_invalid / auth_refresh_failed -> RB-02;
- rate_limited -> RB-03;
- validation / missing_field / duplicate / mapping -> RB-04;
- connection / timeout / provider_5xx / unknown -> RB-09 when the provider is a docs or enrichment provider, or
  when webhook deliveries of the provider failed in the window (RB-09 "Webhook delivery failures"); RB-01 for
  the other CRM/ATS outages. While an RB-01 or RB-09 incident of the provider is active, an outage keeps its
  runbook, so that webhook failures coming and going never split one outage into two incidents.
Ties between categories go to the first in CATEGORY_PRIORITY.
Severity: SEV-3 when the provider has a polling fallback (it normally sends webhooks), else SEV-2.

Recovery: once an active incident's provider has had a clean fast window for INCIDENT_RECOVERY_CLEAN_MINUTES
(5) with calls succeeding, the timeline notes "recovered at T" and `Incident.recovered_at` is set (the
verification checks read it); errors coming back clear it.
"""

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db.models import Count, Min, Q
from django.utils import timezone

from incidents import conf
from incidents.models import ACTIVE_STATUSES, Detector, Incident
from incidents.services.opening import (
    OUTAGE_RUNBOOKS,
    default_severity,
    incident_note_recovery,
    open_or_update_incident,
)
from integrations.catalog import PROVIDERS
from integrations.models import (
    AUTH_CATEGORIES,
    DATA_CATEGORIES,
    CrmSyncStatus,
    Integration,
    IntegrationStatus,
    OutcomeKind,
    ProviderStatusReading,
    SyncLog,
    SyncStatus,
    WebhookDelivery,
    WebhookStatus,
)
from integrations.selectors import rates

IMPACT_WINDOW = timedelta(hours=1)
# The Prometheus alert the shipped rules fire (deploy/prometheus/lineup-alerts.yml); its own detection is not it.
ALERT_NAME = "IDISIntegrationProviderErrors"
DETECTED_BY = "Lineup detection"
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


@dataclass
class ProviderWindow:
    """A provider's calls over one window: totals, by category, by endpoint, and failed webhook deliveries."""

    provider: str
    total: int = 0
    errors: int = 0
    by_category: dict = field(default_factory=lambda: defaultdict(int))
    by_endpoint: dict = field(
        default_factory=lambda: defaultdict(lambda: [0, 0])
    )  # endpoint -> [errors, total]
    webhook_failures: int = 0
    minutes: int = 15

    @property
    def error_rate(self) -> float:
        return self.errors / self.total if self.total else 0.0

    def hot_endpoints(self, threshold: float, min_errors: int, min_calls: int = 1) -> list[str]:
        return [
            e
            for e, (err, tot) in self.by_endpoint.items()
            if err >= min_errors and tot >= max(min_calls, 1) and err / tot >= threshold
        ]

    def burning(self, threshold: float, min_errors: int, min_calls: int = 1) -> bool:
        """The provider, or one of its endpoints, over the threshold with enough calls and errors."""
        provider_wide = self.total >= min_calls and self.errors >= min_errors and self.error_rate >= threshold
        return provider_wide or bool(self.hot_endpoints(threshold, min_errors, min_calls))

    def triggered(self, threshold: float, min_errors: int, min_calls: int = 1) -> bool:
        return self.burning(threshold, min_errors, min_calls) or self.webhook_failures >= min_errors

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


def measure(now: datetime | None = None, *, minutes: int | None = None) -> dict[str, ProviderWindow]:
    """Attempts and errors per provider, category and endpoint over the last `minutes` minutes (the slow window
    by default), from the per-minute rollups the engine keeps through the one error-rate reader (every attempt
    counts, retries and webhook processing included; the sync-log table is never scanned)."""
    now = now or timezone.now()
    minutes = minutes or conf.slow_window_minutes()
    windows = {
        provider: ProviderWindow(
            provider,
            total=r.calls,
            errors=r.errors,
            by_category=r.by_category,
            by_endpoint=r.by_endpoint,
            minutes=minutes,
        )
        for provider, r in rates.error_rates(minutes=minutes, now=now).items()
    }
    for provider, r in rates.error_rates(minutes=minutes, now=now, kind=OutcomeKind.WEBHOOK).items():
        if r.errors:
            windows.setdefault(
                provider, ProviderWindow(provider, minutes=minutes)
            ).webhook_failures = r.errors
    return windows


def impact_scope(provider: str, w: ProviderWindow, now: datetime) -> tuple[dict, set[int], datetime | None]:
    """(impact, affected tenant ids, first error time) of a provider's window."""
    since = now - timedelta(minutes=w.minutes)
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
    # Driven from the hour's sync logs (a few thousand, by their time index) into the records, not from every
    # FAILED record (50,000 at 1M records, a heap scan of 100 ms and more) into the logs.
    failed = dict(
        SyncLog.objects.filter(
            provider=provider,
            created_at__gte=now - IMPACT_WINDOW,
            record__crm_sync_status=CrmSyncStatus.FAILED,
            record__kind=PROVIDERS[provider].record_kind,
        )
        .values_list("record__tenant__slug")
        .annotate(n=Count("record_id", distinct=True))
        .order_by()
    )
    failing = list(
        Integration.objects.filter(provider=provider, enabled=True)
        .exclude(status=IntegrationStatus.CONNECTED)
        .values_list("tenant__slug", "status", "last_error_category")
        .order_by("tenant__slug")[:200]
    )
    retrying = SyncLog.objects.awaiting_retry().filter(provider=provider, record__isnull=False).count()
    threshold, min_errors = conf.error_rate_threshold(), conf.min_errors()
    endpoints = sorted(w.by_endpoint.items(), key=lambda kv: -kv[1][0])[:10]
    impact = {
        "window_minutes": w.minutes,
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
    provider: str, w: ProviderWindow, *, category: str = "", default_category: str = "connection"
) -> tuple[str, str]:
    """(dominant category, runbook) for a provider's window (or the signal's category), keeping an active
    outage's runbook (no split)."""
    category = category or (w.dominant_category if w.errors >= conf.min_errors() else default_category)
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


# ------------------------------------------------------------------------------------------ signals


@dataclass
class Signal:
    """Why a provider needs an incident now: which detector, the evidence, the category and the runbook."""

    provider: str
    source: str  # fast, slow, webhooks, state, status_page
    reason: str
    category: str
    window: ProviderWindow
    tenant_ids: set = field(default_factory=set)
    error_rate: float | None = None

    @property
    def detected_by(self) -> str:
        return f"{DETECTED_BY} ({self.source}): {self.reason}"[:200]


def rate_signal(provider: str, fast: ProviderWindow, slow: ProviderWindow) -> Signal | None:
    """The fast burn, else the slow burn confirmed by the fast window, else webhook failures still happening."""
    threshold, min_errors = conf.error_rate_threshold(), conf.min_errors()
    slow_threshold = conf.slow_error_rate_threshold()
    if fast.burning(threshold, min_errors, conf.fast_min_calls()):
        hot = fast.hot_endpoints(threshold, min_errors, conf.fast_min_calls())
        where = f" on {', '.join(hot[:3])}" if hot and fast.error_rate < threshold else ""
        return Signal(
            provider,
            "fast",
            f"{fast.error_rate:.0%} errors over {fast.minutes} min{where}",
            fast.dominant_category,
            fast,
            error_rate=round(fast.error_rate, 4),
        )
    still_erring = fast.errors > 0 and (
        fast.error_rate >= slow_threshold or bool(fast.hot_endpoints(slow_threshold, 1))
    )
    if still_erring and slow.burning(slow_threshold, min_errors, conf.slow_min_calls()):
        return Signal(
            provider,
            "slow",
            f"{slow.error_rate:.0%} errors over {slow.minutes} min",
            slow.dominant_category,
            slow,
            error_rate=round(slow.error_rate, 4),
        )
    if slow.webhook_failures >= min_errors and fast.webhook_failures:
        return Signal(
            provider,
            "webhooks",
            f"{slow.webhook_failures} failed webhook deliveries over {slow.minutes} min",
            slow.dominant_category or "connection",
            slow,
            error_rate=round(slow.error_rate, 4),
        )
    return None


def state_signals(now: datetime) -> dict[str, Signal]:
    """Providers with at least half their enabled integrations (and 2 tenants) needing re-authorization or erring
    within the slow window, whatever the traffic: needs_reauth integrations stop calling, so no rate shows them."""
    since = now - timedelta(minutes=conf.slow_window_minutes())
    failing_q = Q(status=IntegrationStatus.NEEDS_REAUTH) | Q(
        status=IntegrationStatus.ERROR, last_error_at__gte=since
    )
    enabled = Integration.objects.filter(enabled=True)
    # Counted in the database (10,000 integrations are one aggregate, not 10,000 rows); the failing rows are read
    # only for a provider that crosses the share.
    counts = enabled.values("provider").annotate(
        total=Count("id"),
        failing=Count("id", filter=failing_q),
        tenants=Count("tenant_id", distinct=True, filter=failing_q),
    )
    total: dict[str, int] = {}
    crossing = []
    for row in counts:
        total[row["provider"]] = row["total"]
        if (
            row["provider"] in PROVIDERS
            and row["failing"]
            and row["failing"] >= conf.state_share() * row["total"]
            and row["tenants"] >= conf.state_min_tenants()
        ):
            crossing.append(row["provider"])
    bad: dict[str, list] = defaultdict(list)
    rows = enabled.filter(failing_q, provider__in=crossing).values_list(
        "provider", "tenant_id", "status", "last_error_category"
    )
    for provider, tenant_id, status, category in rows:
        auth = status == IntegrationStatus.NEEDS_REAUTH or category in AUTH_CATEGORIES
        bad[provider].append((tenant_id, auth, category))
    out = {}
    for provider, failing in bad.items():
        tenants = {t for t, _, _ in failing}  # the share and the tenant floor were checked in the aggregate
        auth = [c for _, is_auth, c in failing if is_auth]
        if len(auth) * 2 >= len(failing):
            categories = [c for c in auth if c in AUTH_CATEGORIES]
            category = max(set(categories), key=categories.count) if categories else "auth_refresh_failed"
            what = "need re-authorization"
        else:
            others = [c for _, is_auth, c in failing if not is_auth and c]
            category = max(set(others), key=others.count) if others else "connection"
            what = "in error"
        out[provider] = Signal(
            provider,
            "state",
            f"{len(failing)} of {total[provider]} integrations ({len(tenants)} tenants) {what}",
            category,
            ProviderWindow(provider, minutes=conf.slow_window_minutes()),
            tenant_ids=tenants,
        )
    return out


STATUS_PAGE_OUTAGE = ("major", "critical")
STATUS_PAGE_FRESH = timedelta(hours=1)


def status_page_signals(now: datetime) -> dict[str, Signal]:
    """Providers whose status page, read within the last hour, reports a major (or critical) outage."""
    out = {}
    for reading in ProviderStatusReading.objects.filter(
        indicator__in=STATUS_PAGE_OUTAGE, read_at__gte=now - STATUS_PAGE_FRESH
    ):
        if reading.provider not in PROVIDERS:
            continue
        tenants = set(
            Integration.objects.filter(provider=reading.provider, enabled=True).values_list(
                "tenant_id", flat=True
            )
        )
        description = f": {reading.description}" if reading.description else ""
        out[reading.provider] = Signal(
            reading.provider,
            "status_page",
            f"status page says {reading.indicator}{description}",
            "provider_5xx",
            ProviderWindow(reading.provider, minutes=conf.slow_window_minutes()),
            tenant_ids=tenants,
        )
    return out


def signals(now: datetime | None = None) -> list[Signal]:
    """Every provider that needs an incident now, one signal each (rates first, then state, then status page)."""
    now = now or timezone.now()
    fast = measure(now, minutes=conf.fast_window_minutes())
    slow = measure(now, minutes=conf.slow_window_minutes())
    found: dict[str, Signal] = {}
    for provider in sorted(set(fast) | set(slow)):
        if provider not in PROVIDERS:
            continue
        f = fast.get(provider) or ProviderWindow(provider, minutes=conf.fast_window_minutes())
        s = slow.get(provider) or ProviderWindow(provider, minutes=conf.slow_window_minutes())
        signal = rate_signal(provider, f, s)
        if signal is not None:
            signal.window = s  # the impact is measured over the slow window
            found[provider] = signal
    for provider, signal in state_signals(now).items():
        f = fast.get(provider)
        if signal.category not in AUTH_CATEGORIES and f is not None and f.total > f.errors:
            # Calls succeed again: integrations still showing 'error' are waiting for their next call, and the
            # error rates, not their state, say whether the provider is failing.
            continue
        found.setdefault(provider, signal)
    for provider, signal in status_page_signals(now).items():
        found.setdefault(provider, signal)
    return [found[p] for p in sorted(found)]


def detect(now: datetime | None = None) -> list[tuple[Incident, bool]]:
    """One detection pass: (incident, created) for every provider with a signal; then the recovery signals."""
    now = now or timezone.now()
    out = []
    for signal in signals(now):
        provider, w = signal.provider, signal.window
        category, runbook = choose_runbook(provider, w, category=signal.category)
        impact, tenant_ids, first_error = impact_scope(provider, w, now)
        impact["signal"] = {"source": signal.source, "reason": signal.reason}
        incident, created = open_or_update_incident(
            provider=provider,
            runbook=runbook,
            severity=default_severity(provider),
            detected_by=signal.detected_by,
            detector=Detector.CONSOLE,
            started_at=first_error,
            error_rate=signal.error_rate,
            dominant_category=category,
            impact=impact,
            tenants=tenant_ids | signal.tenant_ids,
            now=now,
        )
        out.append((incident, created))
    note_recoveries(now, skip={incident.pk for incident, _ in out})
    return out


# ------------------------------------------------------------------------------------------ recovery


RECOVERY_LOOKBACK = timedelta(hours=1)


def recovery_time(incident: Incident, now: datetime) -> datetime | None:
    """When the incident's provider recovered: the minute after its last error (data errors aside, unless the
    incident is about them), once the fast window has been clean for INCIDENT_RECOVERY_CLEAN_MINUTES since then
    and calls succeeded in that time. None while it has not."""
    start = (incident.started_at or incident.opened_at).replace(second=0, microsecond=0)
    ignore = () if incident.runbook == "RB-04" else tuple(DATA_CATEGORIES)
    # The errors that led up to the incident count too (an outage starts before detection sees it).
    last = rates.last_error_minute(provider=incident.provider, since=start - RECOVERY_LOOKBACK, ignore=ignore)
    clean_from = (last + timedelta(minutes=1)) if last else start
    if now - clean_from < timedelta(minutes=conf.recovery_clean_minutes()):
        return None
    if not rates.calls_since(provider=incident.provider, since=clean_from):
        return None  # nothing called: silence is not a recovery
    return clean_from


def note_recoveries(now: datetime, *, skip=()) -> list[Incident]:
    """Note "recovered at T" on each active incident whose provider recovered; clear it when errors came back."""
    noted = []
    for incident in Incident.objects.filter(status__in=ACTIVE_STATUSES).exclude(pk__in=list(skip)):
        at = recovery_time(incident, now)
        if at is not None and incident.recovered_at != at:
            incident_note_recovery(incident=incident, recovered_at=at)
            noted.append(incident)
        elif at is None and incident.recovered_at is not None:
            incident_note_recovery(incident=incident, recovered_at=None)
    return noted
