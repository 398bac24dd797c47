"""Shared reads for the API and dashboard: failure summary, impact scope, queue depths (plain data)."""

import json
from datetime import timedelta

import pytest
import redis
from django.utils import timezone

from integrations import selectors
from integrations.models import Record, RecordLink, SyncLog, WebhookDelivery
from tests.support import factories

pytestmark = pytest.mark.django_db


def test_failure_summary_counts_failed_logs_by_category_and_field_within_the_window():
    hub = factories.integration(provider="hubspot")
    gh = factories.integration(provider="greenhouse", tenant=hub.tenant)
    for category, field in [
        ("validation", "email"),
        ("validation", "email"),
        ("validation", "phone"),
        ("provider_5xx", ""),
        ("missing_field", "last_name"),
    ]:
        factories.sync_log(integration=hub, status="FAILED", error_category=category, error_field=field)
    old = factories.sync_log(integration=hub, status="FAILED", error_category="timeout")
    SyncLog.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=3))
    factories.sync_log(integration=hub, status="SUCCESS")
    factories.sync_log(integration=gh, status="FAILED", error_category="validation", error_field="email")

    summary = selectors.failure_summary(provider="hubspot")

    assert summary["total"] == 5
    assert summary["by_category"] == [
        {"error_category": "validation", "count": 3},
        {"error_category": "missing_field", "count": 1},
        {"error_category": "provider_5xx", "count": 1},
    ]
    assert summary["by_field"] == [
        {"error_field": "email", "count": 2},
        {"error_field": "last_name", "count": 1},
        {"error_field": "phone", "count": 1},
    ]
    json.dumps(summary)  # plain data for the API
    assert selectors.failure_summary(provider="hubspot", window=timedelta(days=7))["total"] == 6


def test_impact_scope_groups_recently_failed_records_by_tenant():
    acme, globex = factories.tenant(slug="acme"), factories.tenant(slug="globex")
    hub_acme = factories.integration(provider="hubspot", tenant=acme)
    gh_globex = factories.integration(provider="greenhouse", tenant=globex)
    for tenant, integration, n in [(acme, hub_acme, 3), (globex, gh_globex, 1)]:
        for _ in range(n):
            r = factories.record(tenant=tenant)
            RecordLink.objects.create(record=r, integration=integration)
            Record.objects.filter(pk=r.pk).update(crm_sync_status="FAILED")
    stale = factories.record(tenant=acme)
    Record.objects.filter(pk=stale.pk).update(
        crm_sync_status="FAILED", updated_at=timezone.now() - timedelta(hours=2)
    )

    rows = selectors.impact_scope()
    assert [(r["tenant"], r["affected_records"]) for r in rows] == [("acme", 3), ("globex", 1)]
    assert rows[0]["tenant_id"] == acme.pk
    assert [(r["tenant"], r["affected_records"]) for r in selectors.impact_scope(provider="greenhouse")] == [
        ("globex", 1)
    ]


def test_queue_depths_split_due_retries_from_later_ones_and_count_waiting_webhooks():
    hub = factories.integration(provider="hubspot")
    now = timezone.now()
    for status, due in [
        ("RETRYING", now - timedelta(minutes=1)),
        ("RETRYING", now - timedelta(seconds=1)),
        ("RETRYING", now + timedelta(minutes=5)),
        ("PENDING", None),
        ("RUNNING", None),
        ("SUCCESS", None),
    ]:
        factories.sync_log(integration=hub, status=status, next_attempt_at=due)
    for i, status in enumerate(["FAILED", "FAILED", "QUEUED", "PROCESSED"]):
        WebhookDelivery.objects.create(integration=hub, provider="hubspot", event_id=str(i), status=status)

    depths = selectors.queue_depths(now=now, broker_url="filesystem://")
    assert depths["sync_logs"] == {"retrying_due": 2, "retrying_later": 1, "pending": 1, "running": 1}
    assert depths["webhooks"] == {"failed": 2, "queued": 1}
    # Not a Redis broker: the reason, not a bare null (issue 15).
    assert "only Redis does" in depths["celery"]["unavailable"]
    assert (
        selectors.queue_depths(provider="greenhouse", broker_url="filesystem://")["sync_logs"]["pending"] == 0
    )


def test_queue_depths_read_the_celery_queue_lengths_from_redis():
    url = "redis://127.0.0.1:6379/15"
    client = redis.Redis.from_url(url)
    try:
        client.ping()
    except redis.RedisError:
        pytest.skip("no Redis at 127.0.0.1:6379")
    client.delete("sync", "default")
    client.rpush("sync", "a", "b", "c")
    client.rpush("default", "x")
    try:
        assert selectors.queue_depths(broker_url=url)["celery"] == {"sync": 3, "default": 1}
    finally:
        client.delete("sync", "default")
    assert "error" in selectors.celery_queue_lengths("redis://127.0.0.1:1/0")
