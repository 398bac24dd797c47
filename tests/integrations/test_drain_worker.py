"""A backlog after an outage drains through real workers in turns, with "Sync now" first (issue 12, 5).

Beat is the test's own, as shipped: dispatch every tick, never the two-minute sweep, so a tenant whose chain of
runs broke stays behind and the test sees it. Shares and order are asserted, never times.
"""

import pytest
from django.db.models import Count

from integrations import services
from integrations.access.actors import System
from integrations.models import Record, RecordLink
from integrations.tasks import sync as tasks
from tests.support.sync import connect, local_records
from tests.support.workers import running_worker, wait_until

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]

FAST = {"SYNC_BACKOFF_BASE_SECONDS": "0.3", "SYNC_LEASE_SECONDS": "5", "SYNC_STUCK_AFTER_SECONDS": "4"}


def test_tenants_take_turns_and_sync_now_lands_before_the_backlog(sandbox):
    sandbox.control("hubspot", rate_limit=4, window=2)  # 2 batch calls a second: the quota is the limit
    integrations = [connect(sandbox, "hubspot", mode="webhook") for _ in range(3)]
    sizes = [600, 600, 1800]
    for integration, n in zip(integrations, sizes, strict=True):
        local_records(integration, n)
    total = sum(sizes)
    big = integrations[-1]
    chosen = Record.objects.filter(tenant=big.tenant).order_by("-updated_at", "-pk").first()  # pushed last
    seen = {"asked": None, "landed": None, "first_done": None}

    def drained() -> dict[int, int]:
        counts = dict.fromkeys((i.pk for i in integrations), 0)
        for row in (
            RecordLink.objects.filter(synced_at__isnull=False)
            .values("integration_id")
            .annotate(n=Count("pk"))
        ):
            counts[row["integration_id"]] = row["n"]
        return counts

    def watch() -> bool:
        counts = drained()
        done = sum(counts.values())
        if seen["asked"] is None and done >= total // 4:
            services.records_sync_now(records=Record.objects.filter(pk=chosen.pk), actor=System("test"))
            seen["asked"] = total - done
        if seen["asked"] is not None and seen["landed"] is None:
            if RecordLink.objects.filter(record=chosen, synced_at__isnull=False).exists():
                seen["landed"] = total - done
        if seen["first_done"] is None and any(
            counts[i.pk] >= n for i, n in zip(integrations, sizes, strict=True)
        ):
            seen["first_done"] = counts
        return done >= total

    ticks = iter(range(10**6))

    def beat():
        if next(ticks) % 10 == 0:  # every tenth look, about every 2 s
            tasks.dispatch_due_syncs.delay()

    with running_worker(concurrency=4, extra_env={**FAST, "PROVIDER_QUOTAS": "hubspot=4/2"}):
        tasks.sweep_pending_records.delay()  # the provider is back: the sweep finds the backlog, once
        assert wait_until(watch, seconds=180, every=0.2, tick=beat), drained()
    # every tenant moved while all had a backlog: none had less than a third of the most drained one
    shares = seen["first_done"]
    assert min(shares.values()) * 3 >= max(shares.values()), shares
    # "Sync now" on the record the biggest backlog would push last landed while most of what waited then waited
    assert seen["landed"] is not None and seen["landed"] > seen["asked"] // 2, seen
    assert len(sandbox.records("hubspot", big.tenant.slug)) == sizes[-1]
