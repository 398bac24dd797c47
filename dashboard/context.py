"""What the dashboard's templates need, built once per request (shared by /dashboard/ and the admin index)."""

from django.utils import timezone

from dashboard import selectors
from dashboard.links import Links
from dashboard.tables import IncidentTable, ProviderBacklogTable, ProviderHealthTable, percent
from integrations.catalog import PROVIDERS
from integrations.models import IntegrationStatus
from integrations.selectors.health import celery_queue_lengths

REFRESH_SECONDS = 30
PERMISSION = "integrations.view_integration"
NOT_CONNECTED = [s.value for s in IntegrationStatus if s != IntegrationStatus.CONNECTED]


def dashboard_context(request) -> dict:
    if not request.user.has_perm(PERMISSION):
        return {"dash_denied": True}
    provider = request.GET.get("provider", "").strip()
    tenant_slug = request.GET.get("tenant", "").strip()[:100]
    dash = selectors.dashboard(provider=provider, tenant_slug=tenant_slug)
    links = Links(tenant=dash.tenant)
    threshold = selectors.outage_error_rate()
    rows = list(dash.providers)
    if len(rows) > 1:
        rows.append(dash.totals)
    health = ProviderHealthTable(rows, links=links, threshold=threshold)
    backlog = ProviderBacklogTable(rows, links=links, threshold=threshold)
    incidents = IncidentTable(dash.incidents, links=links)
    totals = dash.totals
    scope = dash.provider_filter or None
    totals_links = {
        "errors": links.errors_15m(scope),
        "calls": links.calls_15m(scope),
        "integrations": links.integrations(scope),
        "not_connected": links.integrations(scope, status__in=",".join(NOT_CONNECTED)),
        "incidents": links.incidents(scope),
        "retrying": links.sync_queue(scope, "RETRYING"),
        "webhook_failed": links.webhooks(scope, "FAILED", integration_ids=totals.integration_ids),
    }
    return {
        "dash": dash,
        "dash_links": links,
        "health_table": health,
        "backlog_table": backlog,
        "incident_table": incidents,
        "totals": totals,
        "totals_links": totals_links,
        "outage_links": [(p.name, "?" + links.dashboard_query(p.slug)) for p in dash.in_outage],
        "trouble_groups": [
            (kind, label, [(p.name, "?" + links.dashboard_query(p.slug)) for p in rows])
            for kind, label, rows in dash.by_trouble
        ],
        "overall_rate": percent(totals.rate_15m),
        "overall_tone": _tone(totals.rate_15m, threshold),
        "not_connected": sum(n for s, n in totals.status_counts.items() if s != "connected"),
        "celery_queues": celery_queue_lengths(),
        "provider_choices": [(p.slug, p.name) for p in PROVIDERS.values()],
        "provider_filter": dash.provider_filter,
        "tenant_filter": tenant_slug,
        "filtered": bool(dash.provider_filter or tenant_slug),
        "refresh_seconds": REFRESH_SECONDS,
        "tz_name": timezone.get_current_timezone_name(),
        "threshold_pct": f"{threshold:.0%}",
        "window_minutes": selectors.WINDOW_MINUTES,
    }


def _tone(rate, threshold: float) -> str:
    if rate is None:
        return "none"
    return "bad" if rate > threshold else "warn" if rate > threshold / 4 else "ok"
