"""The dashboard's tables (django-tables2): provider health, backlog by provider, open incidents.

Rows are plain objects from dashboard.selectors; nothing here queries the database. Every number is a link to
the changelist filtered to the rows behind it (dashboard.links). No column is orderable: the rows are computed.
"""

import django_tables2 as tables
from django.contrib.humanize.templatetags.humanize import naturaltime
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from dashboard import charts
from dashboard.selectors import HEADROOM_LOOKBACK, WINDOW_MINUTES
from integrations.admin.display import badge
from integrations.models import DefectType, IntegrationStatus

STATUS_LABELS = dict(IntegrationStatus.choices)
DEFECT_LABELS = dict(DefectType.choices)
STATUS_PAGE = {
    "none": ("ok", "Operational"),
    "minor": ("warn", "Minor"),
    "major": ("bad", "Major outage"),
    "critical": ("bad", "Critical outage"),
    "maintenance": ("info", "Maintenance"),
}
EMPTY = '<span class="dash-empty">{}</span>'


def endpoint_label(endpoint: str) -> str:
    """An endpoint as people read it: the engine's placeholders say what happened instead."""
    if not endpoint:
        return "no request made (failed before reaching the provider)"
    if endpoint == "(quota wait)":
        return "no request made (waiting for quota)"
    return endpoint


def when(dt) -> SafeString:
    """A timestamp in the operator's time zone with its age: '14:05 · 3 minutes ago' (full date on hover)."""
    if dt is None:
        return format_html(EMPTY, "never")
    local = timezone.localtime(dt)
    today = timezone.localtime(timezone.now()).date()
    clock = date_format(local, "H:i:s") if local.date() == today else date_format(local, "Y-m-d H:i:s")
    return format_html(
        '<time datetime="{}" title="{}">{} · {}</time>',
        dt.isoformat(),
        date_format(local, "Y-m-d H:i:s T"),
        clock,
        naturaltime(dt),
    )


def number_link(n: int, url: str, label: str, *, tone: str = "") -> SafeString:
    """A count as a link whose accessible name says what it counts."""
    cls = f"dash-num dash-num-{tone}" if tone else "dash-num"
    return format_html(
        '<a class="{}" href="{}" aria-label="{}: {}" title="{}">{}</a>', cls, url, label, n, label, n
    )


def percent(rate: float | None) -> str:
    if rate is None:
        return "–"
    if 0 < rate < 0.01:
        return "<1%"
    return f"{rate:.0%}"


class DashboardTable(tables.Table):
    """Shared set-up: admin styling, a row header per provider, red rows for providers in outage."""

    def __init__(self, data, *, links, threshold: float, footer_provider: str | None = None, **kwargs):
        self.links = links
        self.threshold = threshold
        self.footer_provider = footer_provider
        super().__init__(data, **kwargs)

    class Meta:
        template_name = "dashboard/table.html"
        orderable = False
        attrs = {"class": "dash-table"}
        row_attrs = {
            "class": lambda record: (
                "dash-total" if record.is_total else "dash-outage" if record.outage else ""
            ),
            "data-provider": lambda record: getattr(record, "slug", ""),
        }


def _provider_cell(p, links) -> SafeString:
    if p.is_total:
        return format_html('<span class="dash-provider">{}</span>', p.name)
    outage = ""
    if p.outage:
        outage = format_html(
            ' <span class="lo-badge lo-bad dash-outage-badge" data-trouble="{}">{}</span>'
            '<div class="dash-reasons">{}</div>',
            p.trouble,
            p.trouble_label or "Outage",
            "; ".join(p.outage_reasons),
        )
    return format_html(
        '<a class="dash-provider" href="?{}">{}</a>{}', links.dashboard_query(p.slug), p.name, outage
    )


def _status_page_cell(p) -> SafeString:
    if p.is_total:
        return ""
    reading = p.status_page
    if reading is None:
        return format_html(
            '<a href="{}" rel="noopener noreferrer" target="_blank">Status page</a>'
            '<div class="dash-sub">' + EMPTY + "</div>",
            p.status_page_url,
            "not read yet",
        )
    if reading["error"]:
        state = format_html(
            '<span class="lo-badge lo-muted" title="{}">Unreadable</span>', reading["error"][:120]
        )
    else:
        tone, label = STATUS_PAGE.get(reading["indicator"], ("muted", reading["indicator"] or "Unknown"))
        state = format_html(
            '<span class="lo-badge lo-{}" title="{}">{}</span>', tone, reading["description"], label
        )
    return format_html(
        '<a href="{}" rel="noopener noreferrer" target="_blank">{}</a><div class="dash-sub">read {}</div>',
        p.status_page_url,
        state,
        when(reading["read_at"]),
    )


class ProviderHealthTable(DashboardTable):
    provider = tables.Column(verbose_name="Provider", accessor="slug", empty_values=())
    status_page = tables.Column(verbose_name="Status page", accessor="slug", empty_values=())
    integrations = tables.Column(verbose_name="Integrations by status", accessor="slug", empty_values=())
    error_rate = tables.Column(
        verbose_name=f"Error rate ({WINDOW_MINUTES} min)",
        accessor="slug",
        empty_values=(),
        attrs={"td": {"class": "dash-rate"}},
    )
    last_24h = tables.Column(verbose_name="Error rate, last 24 h", accessor="slug", empty_values=())
    endpoints = tables.Column(
        verbose_name=f"Errors by endpoint ({WINDOW_MINUTES} min)", accessor="slug", empty_values=()
    )
    headroom = tables.Column(verbose_name="Rate-limit headroom", accessor="slug", empty_values=())

    class Meta(DashboardTable.Meta):
        empty_text = "No integrations yet: nothing to show. Connect a provider under Integrations."

    def render_provider(self, record):
        return _provider_cell(record, self.links)

    def render_status_page(self, record):
        return _status_page_cell(record)

    def _status_badges(self, counts: dict, provider: str | None) -> SafeString:
        if not counts:
            return format_html(EMPTY, "No integrations")
        return format_html_join(
            " ",
            '<a class="dash-badge-link" href="{}" aria-label="{} {}">{}</a>',
            (
                (
                    self.links.integrations_status(provider, status),
                    n,
                    STATUS_LABELS.get(status, status),
                    badge(status, f"{n} {STATUS_LABELS.get(status, status).lower()}"),
                )
                for status, n in counts.items()
            ),
        )

    def render_integrations(self, record):
        return self._status_badges(record.status_counts, record.slug)

    def _rate(self, calls: int, errors: int, rate, trend: str, provider: str | None) -> SafeString:
        if not calls:
            return format_html(EMPTY, f"No calls in the last {WINDOW_MINUTES} minutes")
        tone = "bad" if rate > self.threshold else "warn" if rate > self.threshold / 4 else "ok"
        arrow = {"worse": ("↑", "rising"), "better": ("↓", "falling"), "steady": ("→", "steady")}.get(trend)
        trend_html = (
            format_html(
                '<span class="dash-trend dash-trend-{}" title="against the {} minutes before">{} {}</span>',
                trend,
                WINDOW_MINUTES,
                *arrow,
            )
            if arrow
            else ""
        )
        return format_html(
            '<span class="dash-big dash-tone-{}">{}</span> {}<div class="dash-sub">{} failed of {} calls</div>',
            tone,
            percent(rate),
            trend_html,
            number_link(
                errors,
                self.links.errors_15m(provider),
                f"Failed calls, last {WINDOW_MINUTES} minutes",
                tone="bad" if errors else "",
            ),
            number_link(calls, self.links.calls_15m(provider), f"Sync logs, last {WINDOW_MINUTES} minutes"),
        )

    def render_error_rate(self, record):
        return self._rate(record.calls_15m, record.errors_15m, record.rate_15m, record.trend, record.slug)

    def render_last_24h(self, record):
        calls = sum(b.calls for b in record.series)
        if not calls:
            return format_html(EMPTY, "No calls in the last 24 hours")
        errors = sum(b.errors for b in record.series)
        label = f"{record.name}: error rate per 15 minutes over 24 hours; {errors} failed of {calls} calls"
        since = ""
        if record.failing_since:
            since = format_html(
                '<div class="dash-sub dash-tone-bad">failing since {}</div>', when(record.failing_since)
            )
        return format_html(
            "{}{}", charts.sparkline(record.series, threshold=self.threshold, label=label), since
        )

    def render_endpoints(self, record):
        if not record.by_endpoint:
            return format_html(EMPTY, f"No failed syncs in the last {WINDOW_MINUTES} minutes")
        items = format_html_join(
            "",
            '<li><code title="{}">{}</code> {}</li>',
            (
                (
                    endpoint_label(endpoint),
                    endpoint_label(endpoint),
                    number_link(
                        n,
                        self.links.errors_15m(record.slug, endpoint=endpoint),
                        f"Failed calls to {endpoint}",
                        tone="bad",
                    ),
                )
                for endpoint, n in record.by_endpoint[:3]
            ),
        )
        more = ""
        if len(record.by_endpoint) > 3:
            more = format_html(
                '<li><a href="{}">{} more endpoints</a></li>',
                self.links.errors_15m(record.slug),
                len(record.by_endpoint) - 3,
            )
        categories = format_html_join(
            " ",
            '<a class="dash-chip" href="{}" title="Failed with {}">{} {}</a>',
            (
                (self.links.errors_15m(record.slug, category=c), c, c.replace("_", " "), n)
                for c, n in record.by_category[:3]
            ),
        )
        return format_html(
            '<ul class="dash-list">{}{}</ul><div class="dash-sub">{}</div>', items, more, categories
        )

    def render_headroom(self, record):
        h = record.headroom
        if record.is_total:
            return ""
        if h is None and record.quota_blocked_for > 0:
            return format_html(
                '<strong class="dash-quota-blocked">calls held back {}s</strong>',
                int(record.quota_blocked_for + 0.999),
            )
        if h is None:
            hours = int(HEADROOM_LOOKBACK.total_seconds() // 3600)
            return format_html(EMPTY, f"No rate-limit headers in the last {hours} hours")
        if h.fraction is None:
            text = "headers without a limit"
        else:
            text = format_html("{} of {} left", h.remaining, h.limit)
        label = f"{record.name} rate-limit headroom: {h.remaining} of {h.limit} left"
        retry = format_html(" · retry after {}", h.retry_after) if h.retry_after else ""
        if record.quota_blocked_for > 0:
            retry = format_html(
                '{} · <strong class="dash-quota-blocked">calls held back {}s</strong>',
                retry,
                int(record.quota_blocked_for + 0.999),
            )
        return format_html(
            '{}<div class="dash-headroom">{}</div>{}<div class="dash-sub">'
            '<a href="{}" title="The sync log these headers came from">seen {}</a></div>',
            charts.meter(h.fraction, label=label),
            text,
            retry,
            self.links.sync_log(h.log_id),
            when(h.seen_at),
        )


class ProviderBacklogTable(DashboardTable):
    provider = tables.Column(verbose_name="Provider", accessor="slug", empty_values=())
    tokens = tables.Column(verbose_name="Tokens expiring within 24 h", accessor="slug", empty_values=())
    sync_queue = tables.Column(verbose_name="Sync queue", accessor="slug", empty_values=())
    webhook_queue = tables.Column(verbose_name="Webhook retries", accessor="slug", empty_values=())
    defects = tables.Column(verbose_name="Open defects by type", accessor="slug", empty_values=())
    incidents = tables.Column(verbose_name="Open incidents", accessor="slug", empty_values=())

    class Meta(DashboardTable.Meta):
        empty_text = "Nothing waiting: no integrations, queues, defects or incidents."

    def render_provider(self, record):
        return _provider_cell(record, self.links)

    def render_tokens(self, record):
        if not record.expiring_24h:
            return format_html(EMPTY, "None")
        return number_link(
            record.expiring_24h,
            self.links.tokens_expiring(record.slug),
            f"{record.name} tokens expiring within 24 hours",
            tone="warn",
        )

    def _queue(self, q: dict, provider: str | None) -> SafeString:
        parts = []
        if q.get("retrying"):
            due = format_html(" ({} due)", q["retrying_due"]) if q.get("retrying_due") else ""
            parts.append(
                format_html(
                    "{} retrying{}",
                    number_link(
                        q["retrying"],
                        self.links.sync_queue(provider, "RETRYING"),
                        "Sync logs retrying",
                        tone="warn",
                    ),
                    due,
                )
            )
        for key, status in (("pending", "PENDING"), ("running", "RUNNING")):
            if q.get(key):
                parts.append(
                    format_html(
                        "{} {}",
                        number_link(q[key], self.links.sync_queue(provider, status), f"Sync logs {key}"),
                        key,
                    )
                )
        if not parts:
            return format_html(EMPTY, "Empty")
        return format_html_join("", "<div>{}</div>", ((p,) for p in parts))

    def render_sync_queue(self, record):
        return self._queue(record.queue, record.slug)

    def _webhooks(self, q: dict, provider: str | None, integration_ids=()) -> SafeString:
        parts = []
        for key, status, tone in (("webhook_failed", "FAILED", "bad"), ("webhook_queued", "QUEUED", "warn")):
            if q.get(key):
                parts.append(
                    format_html(
                        "{} {}",
                        number_link(
                            q[key],
                            self.links.webhooks(provider, status, integration_ids=integration_ids),
                            f"Webhook deliveries {status.lower()}",
                            tone=tone,
                        ),
                        status.lower(),
                    )
                )
        if not parts:
            return format_html(EMPTY, "None waiting")
        return format_html_join("", "<div>{}</div>", ((p,) for p in parts))

    def render_webhook_queue(self, record):
        return self._webhooks(record.queue, record.slug, record.integration_ids)

    def _defects(self, defects: dict, provider: str | None) -> SafeString:
        if not defects:
            return format_html(EMPTY, "No open defects")
        return format_html_join(
            "",
            "<div>{} {}</div>",
            (
                (
                    number_link(
                        n,
                        self.links.defects(provider, t),
                        f"Open defects: {DEFECT_LABELS.get(t, t)}",
                        tone="bad",
                    ),
                    DEFECT_LABELS.get(t, t).lower(),
                )
                for t, n in defects.items()
            ),
        )

    def render_defects(self, record):
        return self._defects(record.defects, record.slug)

    def render_incidents(self, record):
        if record.is_total and record.incidents:
            return number_link(
                len(record.incidents), self.links.incidents(record.slug), "Open incidents", tone="bad"
            )
        if not record.incidents:
            return format_html(EMPTY, "No open incidents")
        return format_html_join(
            "",
            '<div><a href="{}">INC-{}</a> {} {}</div>',
            (
                (self.links.incident(i["id"]), i["id"], badge(i["severity"]), badge(i["status"], i["status"]))
                for i in record.incidents
            ),
        )


class IncidentTable(tables.Table):
    incident = tables.Column(verbose_name="Incident", accessor="id", empty_values=())
    provider_name = tables.Column(verbose_name="Provider")
    severity = tables.Column(verbose_name="Severity")
    status = tables.Column(verbose_name="Status")
    age = tables.Column(verbose_name="Since", accessor="id", empty_values=())
    n_tenants = tables.Column(verbose_name="Tenants affected", empty_values=())
    title = tables.Column(verbose_name="Title")

    def __init__(self, data, *, links, **kwargs):
        self.links = links
        super().__init__(data, **kwargs)

    class Meta:
        template_name = "dashboard/table.html"
        orderable = False
        attrs = {"class": "dash-table dash-incidents"}
        empty_text = "No open incidents."
        row_attrs = {"class": lambda record: "dash-outage" if record["severity"] == "SEV-2" else ""}

    def render_incident(self, record):
        return format_html(
            '<a href="{}">INC-{} {}</a>', self.links.incident(record["id"]), record["id"], record["runbook"]
        )

    def render_severity(self, value):
        return badge(value)

    def render_status(self, value):
        return badge(value, value.capitalize())

    def render_age(self, record):
        return when(record["age_from"])

    def render_n_tenants(self, record):
        return record["n_tenants"] or format_html(EMPTY, "none recorded")
