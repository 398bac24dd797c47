"""The health dashboard's reads: one pass over small, indexed structures, a constant number of queries.

Error rates come from the per-minute outcome rollups the sync engine keeps (never from the sync-log table);
the sync-log table is only touched through indexes: the newest rate-limit headers of each provider (one
UNION ALL of "ORDER BY created_at DESC LIMIT 1" per provider on (provider, created_at)) and the live queue
(statuses PENDING/RUNNING/RETRYING on (status, ...)). Every other read is grouped in the database, so the
number of queries does not grow with the data, the tenants or the providers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cached_property

from django.conf import settings
from django.db import connection
from django.db.models import BigIntegerField, Count, Func, Max, Min, Q, Sum
from django.utils import timezone

from incidents import conf as incident_conf
from incidents.models import ACTIVE_STATUSES, Incident
from integrations.catalog import PROVIDERS
from integrations.models import (
    Defect,
    DefectStatus,
    Integration,
    IntegrationStatus,
    OutcomeKind,
    OutcomeRollup,
    ProviderStatusReading,
    SyncLog,
    SyncStatus,
    Tenant,
    WebhookDelivery,
    WebhookStatus,
)
from integrations.providers.rate_limits import parse_rate_limit
from integrations.selectors import health as health_selectors
from integrations.selectors import rates

WINDOW_MINUTES = 15
BUCKET_MINUTES = 15
SERIES_HOURS = 24
N_BUCKETS = SERIES_HOURS * 60 // BUCKET_MINUTES
# Headers older than this say nothing about today's headroom; the bound also caps the index scan of a
# provider whose recent calls carried no headers (connection errors during an outage).
HEADROOM_LOOKBACK = timedelta(hours=6)
EXPIRY_HORIZON = timedelta(hours=24)
STATUS_ORDER = [s.value for s in IntegrationStatus]
BAD_STATUS_PAGE = {"major", "critical"}
QUEUE_KEYS = ("retrying", "retrying_due", "pending", "running", "webhook_failed", "webhook_queued")


def outage_error_rate() -> float:
    """The same threshold detection opens incidents at (INCIDENT_ERROR_RATE_THRESHOLD, default 20%)."""
    return float(getattr(settings, "INCIDENT_ERROR_RATE_THRESHOLD", 0.2))


def outage_min_errors() -> int:
    """A handful of errors on a quiet provider is not an outage (INCIDENT_MIN_ERRORS, default 5)."""
    return int(getattr(settings, "INCIDENT_MIN_ERRORS", 5))


@dataclass
class Bucket:
    start: datetime
    calls: int = 0
    errors: int = 0

    @property
    def rate(self) -> float | None:
        return self.errors / self.calls if self.calls else None


@dataclass
class Headroom:
    remaining: int | None
    limit: int | None
    seen_at: datetime
    log_id: int
    retry_after: str = ""

    @property
    def fraction(self) -> float | None:
        if self.remaining is None or not self.limit:
            return None
        return max(0.0, min(1.0, self.remaining / self.limit))


@dataclass(repr=False)  # django-tables2 formats repr(record) into its lookup errors: keep it short
class ProviderHealth:
    slug: str
    name: str
    status_page_url: str
    status_counts: dict[str, int] = field(default_factory=dict)
    expiring_24h: int = 0
    calls_15m: int = 0
    errors_15m: int = 0
    calls_prev: int = 0
    errors_prev: int = 0
    # The fast window detection opens incidents on (INCIDENT_FAST_WINDOW_MINUTES): "Outage" follows it.
    calls_fast: int = 0
    errors_fast: int = 0
    by_endpoint: list[tuple[str, int]] = field(default_factory=list)
    by_category: list[tuple[str, int]] = field(default_factory=list)
    series: list[Bucket] = field(default_factory=list)
    headroom: Headroom | None = None
    # Seconds the shared quota still holds every call to the provider back (a rate limit); 0 when it does not.
    quota_blocked_for: float = 0.0
    queue: dict[str, int] = field(default_factory=dict)
    defects: dict[str, int] = field(default_factory=dict)
    incidents: list[dict] = field(default_factory=list)
    status_page: dict | None = None
    # Filtered to a tenant: its integrations (one per provider), for links the webhook changelist can filter on.
    integration_ids: list[int] = field(default_factory=list)
    outage_reasons: list[str] = field(default_factory=list)
    failing_since: datetime | None = None
    is_total: bool = False

    def __repr__(self) -> str:
        return f"<ProviderHealth {self.slug or 'all'}>"

    @property
    def integrations(self) -> int:
        return sum(self.status_counts.values())

    @property
    def rate_15m(self) -> float | None:
        return self.errors_15m / self.calls_15m if self.calls_15m else None

    @property
    def rate_prev(self) -> float | None:
        return self.errors_prev / self.calls_prev if self.calls_prev else None

    @property
    def trend(self) -> str:
        """'worse', 'better', 'steady' or '' (no calls to compare) against the 15 minutes before."""
        now, before = self.rate_15m, self.rate_prev
        if now is None or before is None:
            return ""
        if now > before + 0.02:
            return "worse"
        if now < before - 0.02:
            return "better"
        return "steady"

    @property
    def outage(self) -> bool:
        """In trouble of any kind (the red row); `trouble` says which kind."""
        return bool(self.outage_reasons)

    @property
    def trouble(self) -> str:
        """The kind of trouble (a TROUBLE_KINDS key), from the dominant error category of the window: an expired
        token or failing validation is not an outage."""
        if not self.outage_reasons and not self.status_counts.get("needs_reauth"):
            return ""
        kinds: dict[str, int] = {}
        for category, n in self.by_category:
            kind = CATEGORY_TROUBLE.get(category, "outage")
            kinds[kind] = kinds.get(kind, 0) + n
        if self.status_page and self.status_page["indicator"] in BAD_STATUS_PAGE:
            kinds["outage"] = kinds.get("outage", 0) + max(kinds.values(), default=0) + 1
        if not kinds:
            return "auth" if self.status_counts.get("needs_reauth") else "outage"
        return max(kinds.items(), key=lambda kv: (kv[1], kv[0] == "outage"))[0]

    @property
    def trouble_label(self) -> str:
        return dict(TROUBLE_KINDS).get(self.trouble, "")

    @property
    def open_defects(self) -> int:
        return sum(self.defects.values())


# Kinds of trouble the dashboard groups providers by, and the error categories that make each.
TROUBLE_KINDS = [
    ("outage", "Outage"),
    ("auth", "Auth"),
    ("rate_limited", "Rate limited"),
    ("data", "Data errors"),
]
CATEGORY_TROUBLE = {
    "connection": "outage",
    "timeout": "outage",
    "provider_5xx": "outage",
    "unknown": "outage",
    "rate_limited": "rate_limited",
    "auth_expired": "auth",
    "auth_invalid": "auth",
    "auth_refresh_failed": "auth",
    "validation": "data",
    "missing_field": "data",
    "duplicate": "data",
    "mapping": "data",
}


@dataclass
class Dashboard:
    now: datetime
    providers: list[ProviderHealth]
    incidents: list[dict]
    provider_filter: str = ""
    tenant: Tenant | None = None
    tenant_slug: str = ""
    tenant_missing: bool = False

    @cached_property
    def totals(self) -> ProviderHealth:
        """An "All providers" row: sums of every provider shown (links then filter by no provider)."""
        t = ProviderHealth(
            slug=self.provider_filter,
            name="All providers",
            status_page_url="",
            is_total=True,
            queue=dict.fromkeys(QUEUE_KEYS, 0),
        )
        endpoints: dict[str, int] = {}
        categories: dict[str, int] = {}
        for p in self.providers:
            for status, n in p.status_counts.items():
                t.status_counts[status] = t.status_counts.get(status, 0) + n
            for attr in ("expiring_24h", "calls_15m", "errors_15m", "calls_prev", "errors_prev"):
                setattr(t, attr, getattr(t, attr) + getattr(p, attr))
            for endpoint, n in p.by_endpoint:
                endpoints[endpoint] = endpoints.get(endpoint, 0) + n
            for category, n in p.by_category:
                categories[category] = categories.get(category, 0) + n
            for key, n in p.queue.items():
                t.queue[key] = t.queue.get(key, 0) + n
            for key, n in p.defects.items():
                t.defects[key] = t.defects.get(key, 0) + n
            t.integration_ids += p.integration_ids
            if not t.series:
                t.series = [Bucket(start=b.start) for b in p.series]
            for mine, theirs in zip(t.series, p.series, strict=True):
                mine.calls += theirs.calls
                mine.errors += theirs.errors
        t.status_counts = {s: t.status_counts[s] for s in STATUS_ORDER if s in t.status_counts}
        t.by_endpoint = sorted(endpoints.items(), key=lambda kv: (-kv[1], kv[0]))
        t.by_category = sorted(categories.items(), key=lambda kv: (-kv[1], kv[0]))
        t.defects = dict(sorted(t.defects.items()))
        t.incidents = self.incidents
        return t

    @property
    def in_outage(self) -> list[ProviderHealth]:
        return [p for p in self.providers if p.outage]

    @property
    def by_trouble(self) -> list[tuple[str, str, list[ProviderHealth]]]:
        """(kind, label, providers) for every kind of trouble some provider has, in TROUBLE_KINDS order."""
        out = []
        for kind, label in TROUBLE_KINDS:
            rows = [p for p in self.providers if p.trouble == kind]
            if rows:
                out.append((kind, label, rows))
        return out

    def total(self, attr: str) -> int:
        return sum(getattr(p, attr) for p in self.providers)

    @property
    def rate_15m(self) -> float | None:
        calls = self.total("calls_15m")
        return self.total("errors_15m") / calls if calls else None


# ------------------------------------------------------------------------------------------ rate limits


def last_rate_limit_headers(providers: list[str], *, since: datetime) -> dict[str, Headroom]:
    """Per provider, the newest sync log since `since` that carried rate-limit headers: two queries in all.

    One UNION ALL of per-provider "ORDER BY created_at DESC LIMIT 1" subqueries, each a backward scan of the
    (provider, created_at) index that stops at the first row with headers; then those few rows by id.
    """
    if not providers:
        return {}
    parts, params = [], []
    for i, provider in enumerate(providers):
        qs = (
            SyncLog.objects.filter(provider=provider, created_at__gte=since)
            .exclude(rate_limit_headers={})
            .order_by("-created_at", "-id")
            .values_list("id")[:1]
        )
        sql, sql_params = qs.query.sql_with_params()
        parts.append(f"SELECT * FROM ({sql}) AS lo_rl_{i}")
        params.extend(sql_params)
    with connection.cursor() as cursor:
        cursor.execute(" UNION ALL ".join(parts), params)
        ids = [row[0] for row in cursor.fetchall()]
    out = {}
    rows = SyncLog.objects.filter(id__in=ids).values("id", "provider", "rate_limit_headers", "created_at")
    for row in rows:
        seen = parse_rate_limit(row["rate_limit_headers"])
        remaining, limit, retry_after = seen.remaining, seen.limit, seen.retry_after
        out[row["provider"]] = Headroom(
            remaining=remaining,
            limit=limit,
            seen_at=row["created_at"],
            log_id=row["id"],
            retry_after=retry_after,
        )
    return out


# ------------------------------------------------------------------------------------------ the dashboard


def window_start(now: datetime, minutes: int = WINDOW_MINUTES) -> datetime:
    """The first minute of the last `minutes` minutes, the current one included (as the rates count)."""
    return rates.window_start(now, minutes)


def bucket_floor(at: datetime) -> datetime:
    at = at.astimezone(UTC)
    return at.replace(minute=at.minute - at.minute % BUCKET_MINUTES, second=0, microsecond=0)


class _Bucket(Func):
    """The number of the 15-minute bucket (epoch seconds // 900): plain integer arithmetic, cheap per row."""

    output_field = BigIntegerField()
    template = f"(CAST(EXTRACT(EPOCH FROM %(expressions)s) AS BIGINT) / {BUCKET_MINUTES * 60})"

    def as_sqlite(self, compiler, connection, **extra):
        return self.as_sql(
            compiler,
            connection,
            template=f"(CAST(strftime('%%%%s', %(expressions)s) AS INTEGER) / {BUCKET_MINUTES * 60})",
            **extra,
        )


def _rollup_series(providers: dict[str, ProviderHealth], now: datetime) -> None:
    """24 hours of 15-minute buckets per provider, grouped in the database (at most 96 rows per provider)."""
    last = bucket_floor(now)
    first = last - timedelta(minutes=BUCKET_MINUTES * (N_BUCKETS - 1))
    starts = [first + timedelta(minutes=BUCKET_MINUTES * i) for i in range(N_BUCKETS)]
    index = {int(s.timestamp()) // (BUCKET_MINUTES * 60): i for i, s in enumerate(starts)}
    for p in providers.values():
        p.series = [Bucket(start=s) for s in starts]
    rows = (
        OutcomeRollup.objects.filter(kind=OutcomeKind.SYNC, minute__gte=first, provider__in=list(providers))
        .annotate(bucket=_Bucket("minute"))
        .values("provider", "bucket")
        .annotate(calls=Sum("count"), errors=Sum("count", filter=~Q(category="")))
        .order_by()
    )
    for row in rows:
        i = index.get(int(row["bucket"]))
        if i is not None:
            bucket = providers[row["provider"]].series[i]
            bucket.calls += row["calls"] or 0
            bucket.errors += row["errors"] or 0


def _bad_run_start(p: ProviderHealth, threshold: float) -> datetime | None:
    """Start of the current run of buckets over the threshold (None when the newest data is healthy)."""
    since = None
    for bucket in reversed(p.series):
        if bucket.calls == 0:
            continue
        if (bucket.rate or 0) <= threshold:
            break
        since = bucket.start
    return since


def _failing_since(providers: list[ProviderHealth], threshold: float) -> None:
    """Set each provider's `failing_since`: the first failed attempt of its current run of bad buckets (not the
    bucket's start), or None when its newest data is healthy or a success followed its last error (recovered).
    Two queries however many providers fail."""
    runs = {p.slug: start for p in providers if p.slug and (start := _bad_run_start(p, threshold))}
    for p in providers:
        p.failing_since = None
    if not runs:
        return
    within = Q()
    for slug, start in runs.items():
        within |= Q(provider=slug, created_at__gte=start)
    failures = {
        row["provider"]: row
        for row in SyncLog.objects.filter(within)
        .exclude(error_category="")
        .values("provider")
        .annotate(first=Min("created_at"), last=Max("created_at"))
        .order_by()
    }
    successes = dict(
        SyncLog.objects.filter(within, status=SyncStatus.SUCCESS)
        .values("provider")
        .annotate(last=Max("created_at"))
        .order_by()
        .values_list("provider", "last")
    )
    for p in providers:
        if p.slug not in runs:
            continue
        row = failures.get(p.slug)
        if row and successes.get(p.slug) and successes[p.slug] > row["last"]:
            continue  # recovered
        p.failing_since = row["first"] if row else runs[p.slug]


def dashboard(*, now: datetime | None = None, provider: str = "", tenant_slug: str = "") -> Dashboard:
    """Everything the home dashboard shows, filtered to one provider and/or one tenant."""
    now = now or timezone.now()
    provider = provider if provider in PROVIDERS else ""
    tenant, tenant_missing = None, False
    if tenant_slug:
        tenant = Tenant.objects.filter(slug=tenant_slug).first()
        tenant_missing = tenant is None
    slugs = [provider] if provider else list(PROVIDERS)
    health = {
        s: ProviderHealth(slug=s, name=PROVIDERS[s].name, status_page_url=PROVIDERS[s].status_page)
        for s in slugs
    }
    if tenant_missing:
        return Dashboard(
            now=now,
            providers=[],
            incidents=[],
            provider_filter=provider,
            tenant_slug=tenant_slug,
            tenant_missing=True,
        )

    def scoped(qs, tenant_field: str = "tenant"):
        qs = qs.filter(provider__in=slugs)
        return qs.filter(**{tenant_field: tenant}) if tenant is not None else qs

    # Integrations by status, and tokens expiring within 24 hours (the changelist's ?token=24h).
    # (Filtered to a tenant, each group is that tenant's one integration of the provider: keep its id for links.)
    keys = ["provider", "status", "id"] if tenant is not None else ["provider", "status"]
    for row in (
        scoped(Integration.objects.all())
        .values(*keys)
        .annotate(
            n=Count("pk"),
            expiring=Count("pk", filter=Q(expires_at__gt=now, expires_at__lte=now + EXPIRY_HORIZON)),
        )
        .order_by()
    ):
        p = health[row["provider"]]
        p.status_counts[row["status"]] = p.status_counts.get(row["status"], 0) + row["n"]
        p.expiring_24h += row["expiring"]
        if row.get("id") is not None:
            p.integration_ids.append(row["id"])
    for p in health.values():
        p.status_counts = {s: p.status_counts[s] for s in STATUS_ORDER if s in p.status_counts}

    # Error rates: this 15-minute window and the one before it, by endpoint and category, from the rollups.
    current = rates.error_rates(minutes=WINDOW_MINUTES, now=now, providers=slugs)
    previous = rates.error_rates(minutes=2 * WINDOW_MINUTES, now=now, providers=slugs, end=window_start(now))
    for slug, r in current.items():
        p = health[slug]
        p.calls_15m, p.errors_15m = r.calls, r.errors
        p.by_endpoint = sorted(
            ((e, n[0]) for e, n in r.by_endpoint.items() if n[0]), key=lambda kv: (-kv[1], kv[0])
        )
        p.by_category = sorted(
            ((c, n) for c, n in r.by_category.items() if n), key=lambda kv: (-kv[1], kv[0])
        )
    for slug, r in previous.items():
        health[slug].calls_prev, health[slug].errors_prev = r.calls, r.errors
    fast_minutes = incident_conf.fast_window_minutes()
    for slug, r in rates.error_rates(minutes=fast_minutes, now=now, providers=slugs).items():
        health[slug].calls_fast, health[slug].errors_fast = r.calls, r.errors

    _rollup_series(health, now)

    for slug, headroom in last_rate_limit_headers(slugs, since=now - HEADROOM_LOOKBACK).items():
        health[slug].headroom = headroom
    for slug, seconds in health_selectors.quota_blocks(slugs).items():
        health[slug].quota_blocked_for = seconds

    # Queues: sync work waiting (retries due now and later, pending, running) and webhook retries.
    for row in (
        scoped(
            SyncLog.objects.filter(
                Q(status__in=[SyncStatus.PENDING, SyncStatus.RUNNING])
                | Q(status=SyncStatus.RETRYING, next_attempt_at__isnull=False)
            )
        )
        .values("provider")
        .annotate(
            retrying_due=Count("pk", filter=Q(status=SyncStatus.RETRYING, next_attempt_at__lte=now)),
            retrying=Count("pk", filter=Q(status=SyncStatus.RETRYING)),
            pending=Count("pk", filter=Q(status=SyncStatus.PENDING)),
            running=Count("pk", filter=Q(status=SyncStatus.RUNNING)),
        )
        .order_by()
    ):
        health[row["provider"]].queue.update(
            {
                "retrying": row["retrying"],
                "retrying_due": row["retrying_due"],
                "pending": row["pending"],
                "running": row["running"],
            }
        )
    for row in (
        scoped(
            WebhookDelivery.objects.filter(status__in=[WebhookStatus.FAILED, WebhookStatus.QUEUED]),
            "integration__tenant",
        )
        .values("provider")
        .annotate(
            failed=Count("pk", filter=Q(status=WebhookStatus.FAILED)),
            queued=Count("pk", filter=Q(status=WebhookStatus.QUEUED)),
        )
        .order_by()
    ):
        health[row["provider"]].queue.update(
            {"webhook_failed": row["failed"], "webhook_queued": row["queued"]}
        )
    for p in health.values():
        for key in QUEUE_KEYS:
            p.queue.setdefault(key, 0)

    for row in (
        scoped(Defect.objects.filter(status=DefectStatus.OPEN))
        .values("provider", "defect_type")
        .annotate(n=Count("pk"))
        .order_by("provider", "defect_type")
    ):
        health[row["provider"]].defects[row["defect_type"]] = row["n"]

    # Open incidents (every active status), SEV-2 first, then the oldest.
    incident_qs = Incident.objects.filter(status__in=ACTIVE_STATUSES, provider__in=slugs)
    if tenant is not None:
        incident_qs = incident_qs.filter(affected_tenants=tenant)
    incidents = list(
        incident_qs.annotate(n_tenants=Count("affected_tenants", distinct=True))
        .values(
            "id",
            "runbook",
            "provider",
            "title",
            "severity",
            "status",
            "opened_at",
            "started_at",
            "n_tenants",
            "error_rate",
        )
        .order_by("severity", "opened_at", "id")
    )
    for incident in incidents:
        incident["provider_name"] = (
            PROVIDERS[incident["provider"]].name
            if incident["provider"] in PROVIDERS
            else incident["provider"]
        )
        incident["age_from"] = incident["started_at"] or incident["opened_at"]
        health[incident["provider"]].incidents.append(incident)

    for reading in ProviderStatusReading.objects.filter(provider__in=slugs):
        health[reading.provider].status_page = {
            "indicator": reading.indicator,
            "description": reading.description,
            "read_at": reading.read_at,
            "error": reading.error,
        }

    threshold, min_errors = outage_error_rate(), outage_min_errors()
    min_calls = incident_conf.fast_min_calls()
    for p in health.values():
        # Outage follows the fast window: a recovered provider stops showing red within minutes.
        rate = p.errors_fast / p.calls_fast if p.calls_fast >= max(min_calls, 1) else None
        if rate is not None and rate >= threshold and p.errors_fast >= min_errors:
            # Named with its window: the table's column beside it is the 15-minute rate.
            p.outage_reasons.append(
                f"error rate {rate:.0%} over {threshold:.0%} in the last {incident_conf.fast_window_minutes()} min"
            )
        if p.status_page and p.status_page["indicator"] in BAD_STATUS_PAGE:
            p.outage_reasons.append(f"status page: {p.status_page['indicator']}")
        if any(i["severity"] == "SEV-2" for i in p.incidents):
            p.outage_reasons.append("open SEV-2 incident")

    _failing_since(list(health.values()), threshold)
    shown = [p for p in health.values() if provider or _has_anything(p)]
    return Dashboard(
        now=now,
        providers=shown,
        incidents=incidents,
        provider_filter=provider,
        tenant=tenant,
        tenant_slug=tenant_slug,
    )


def _has_anything(p: ProviderHealth) -> bool:
    """Providers nobody uses and nothing happened to stay off the dashboard."""
    return bool(
        p.status_counts
        or p.calls_15m
        or any(b.calls for b in p.series)
        or p.incidents
        or p.open_defects
        or any(p.queue.values())
        or (p.status_page and p.status_page["indicator"] in BAD_STATUS_PAGE)
    )
