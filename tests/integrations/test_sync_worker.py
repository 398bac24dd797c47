"""The sync engine through real Celery workers on Redis: outages, shared quotas and killed workers."""

import signal
import time

import pytest
from django.db.models import Count

from integrations import services
from integrations.models import RecordLink, SyncLog
from integrations.tasks import sync as tasks
from tests.support.sync import connect, external_id, local_records
from tests.support.workers import kill, running_worker, wait_until

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]

FAST = {"SYNC_BACKOFF_BASE_SECONDS": "0.3", "SYNC_LEASE_SECONDS": "3", "SYNC_STUCK_AFTER_SECONDS": "2"}


def beat():
    """What beat does every few seconds, done by the test on its own clock."""
    tasks.dispatch_due_syncs.delay()
    tasks.sweep_pending_records.delay()


def all_arrived_once(sandbox, integrations, records_by_tenant) -> bool:
    for integration in integrations:
        remote = [external_id(r) for r in sandbox.records(integration.provider, integration.tenant.slug)]
        if sorted(remote) != sorted(str(r.external_id) for r in records_by_tenant[integration.tenant_id]):
            return False
    return True


def test_provider_down_then_up_loses_nothing(sandbox, settings):
    integration = connect(sandbox, "greenhouse")
    records = {integration.tenant_id: local_records(integration, 12)}
    sandbox.control("greenhouse", mode="down")
    with running_worker(extra_env=FAST):
        services.enqueue_syncs([integration.pk])
        assert wait_until(lambda: SyncLog.objects.filter(status="RETRYING").exists(), seconds=20)
        assert sandbox.records("greenhouse", integration.tenant.slug) == []
        sandbox.control("greenhouse", mode="ok")
        assert wait_until(
            lambda: all_arrived_once(sandbox, [integration], records), seconds=60, every=1, tick=beat
        )
        assert wait_until(
            lambda: (
                not SyncLog.objects.awaiting_retry().exists()
                and not SyncLog.objects.filter(status="RUNNING").exists()
            ),
            seconds=20,
            tick=beat,
        )
    integration.refresh_from_db()
    assert integration.status == "connected"


def test_twenty_tenants_share_one_quota_without_429_after_the_first_window(sandbox):
    quota = 20
    sandbox.control("hubspot", rate_limit=quota, window=1)
    integrations = [connect(sandbox, "hubspot") for _ in range(20)]
    records = {i.tenant_id: local_records(i, 5) for i in integrations}
    with running_worker(concurrency=4, extra_env={**FAST, "PROVIDER_QUOTAS": f"hubspot={quota}/1"}):
        services.enqueue_syncs([i.pk for i in integrations])
        assert wait_until(
            lambda: all_arrived_once(sandbox, integrations, records), seconds=90, every=1, tick=beat
        )
    stats = sandbox.state("hubspot")["stats"]
    windows = [w for w in stats["windows"] if w["requests"]]
    assert sum(w["rejected"] for w in windows[1:]) == 0, windows
    assert stats["max_accepted_in_window"] <= quota
    dupes = RecordLink.objects.values("record").annotate(n=Count("id")).filter(n__gt=1)
    assert not dupes.exists()


def test_a_worker_killed_mid_sync_loses_and_duplicates_nothing(sandbox):
    # Greenhouse has no batch API: one call per record, so the worker dies between pushes (HubSpot now sends
    # these 40 in one batch call, issue 12).
    integration = connect(sandbox, "greenhouse")
    records = {integration.tenant_id: local_records(integration, 40)}
    sandbox.control("greenhouse", mode="slow", delay=0.15)
    with running_worker(concurrency=1, extra_env=FAST, name="doomed") as doomed:
        services.enqueue_syncs([integration.pk])
        assert wait_until(lambda: SyncLog.objects.filter(status="SUCCESS").count() >= 5, seconds=30)
        kill(doomed, signal.SIGKILL)
    pushed_before = SyncLog.objects.filter(status="SUCCESS").count()
    assert pushed_before < 40  # it really died mid-batch
    sandbox.control("greenhouse", mode="ok")
    time.sleep(1)
    with running_worker(concurrency=2, extra_env=FAST, name="survivor"):
        assert wait_until(
            lambda: all_arrived_once(sandbox, [integration], records), seconds=60, every=1, tick=beat
        )
        assert wait_until(
            lambda: not SyncLog.objects.filter(status="RUNNING").exists(), seconds=20, tick=beat
        )
    assert len(sandbox.records("greenhouse", integration.tenant.slug)) == 40
