"""GET /metrics: Prometheus text, computed from the database at scrape time (no per-process counters to lose)."""

import hmac

from django.conf import settings
from django.db.models import Count
from django.http import HttpResponse
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from integrations import selectors
from integrations.engine import rollups
from integrations.models import Integration, OutcomeKind


class ConsoleCollector:
    """integration_errors_total{provider,endpoint}, webhook_delivery_failures_total{provider}, queue depths, statuses."""

    def collect(self):
        errors = CounterMetricFamily(
            "integration_errors",
            "Failed provider calls, by provider and endpoint.",
            labels=["provider", "endpoint"],
        )
        for row in rollups.totals(OutcomeKind.SYNC):
            errors.add_metric([row["provider"], row["endpoint"]], row["n"])
        yield errors
        calls = CounterMetricFamily(
            "integration_calls", "Provider calls, by provider and endpoint.", labels=["provider", "endpoint"]
        )
        for row in rollups.totals(OutcomeKind.SYNC, errors_only=False):
            calls.add_metric([row["provider"], row["endpoint"]], row["n"])
        yield calls
        webhooks = CounterMetricFamily(
            "webhook_delivery_failures", "Webhook deliveries whose processing failed.", labels=["provider"]
        )
        by_provider: dict[str, int] = {}
        for row in rollups.totals(OutcomeKind.WEBHOOK):
            by_provider[row["provider"]] = by_provider.get(row["provider"], 0) + row["n"]
        for provider, n in sorted(by_provider.items()):
            webhooks.add_metric([provider], n)
        yield webhooks
        depths = selectors.queue_depths()
        queue = GaugeMetricFamily("lineup_sync_queue_depth", "Sync work waiting, by state.", labels=["state"])
        for state, n in depths["sync_logs"].items():
            queue.add_metric([state], n)
        for state, n in depths["webhooks"].items():
            queue.add_metric([f"webhook_{state}"], n)
        for name, n in (depths.get("celery") or {}).items():
            if isinstance(n, int):
                queue.add_metric([f"celery_{name}"], n)
        yield queue
        statuses = GaugeMetricFamily(
            "lineup_integrations", "Integrations by provider and status.", labels=["provider", "status"]
        )
        for row in Integration.objects.values("provider", "status").annotate(n=Count("id")).order_by():
            statuses.add_metric([row["provider"], row["status"]], row["n"])
        yield statuses


def metrics_view(request):
    """Closed by default (issue 13): a bearer METRICS_TOKEN (compared in constant time), or METRICS_PUBLIC=true."""
    token = getattr(settings, "METRICS_TOKEN", "")
    if token:
        given = request.headers.get("Authorization", "")
        if not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
            return HttpResponse(
                "metrics need 'Authorization: Bearer <METRICS_TOKEN>'\n",
                status=401,
                content_type="text/plain",
            )
    elif not getattr(settings, "METRICS_PUBLIC", False):
        return HttpResponse(
            "metrics are closed: set METRICS_TOKEN (or METRICS_PUBLIC=true on a private network)\n",
            status=403,
            content_type="text/plain",
        )
    registry = CollectorRegistry(auto_describe=False)
    registry.register(ConsoleCollector())
    return HttpResponse(generate_latest(registry), content_type="text/plain; version=0.0.4; charset=utf-8")
