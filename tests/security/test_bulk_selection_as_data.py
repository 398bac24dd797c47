"""Issue 13, item 10: a BulkOperation stores its selection as data (filters or ids), never a pickled query."""

import json
from datetime import timedelta

import pytest
from django.utils import timezone

from integrations.models import BulkOperation, SyncLog
from integrations.services import bulk
from tests.support import factories

pytestmark = pytest.mark.django_db


def logs(integration, n):
    return [
        factories.sync_log(
            integration=integration, status="FAILED", error_category="validation", count=False
        ).pk
        for _ in range(n)
    ]


def test_filters_are_stored_as_plain_data_and_select_the_same_rows():
    hub = factories.integration(provider="hubspot")
    logs(hub, 3)
    since = timezone.now() - timedelta(hours=1)
    chosen = SyncLog.objects.filter(
        provider="hubspot", status__in=["FAILED", "RETRYING"], created_at__gte=since
    )
    data = bulk.freeze(chosen)
    assert "where" in data and json.loads(json.dumps(data)) == data
    assert sorted(bulk.thaw(SyncLog, data).values_list("pk", flat=True)) == sorted(
        chosen.values_list("pk", flat=True)
    )


def test_a_selection_across_relations_is_stored_as_its_ids():
    hub = factories.integration(provider="hubspot")
    ids = logs(hub, 2)
    data = bulk.freeze(SyncLog.objects.filter(tenant__slug=hub.tenant.slug))
    assert data == {"ids": sorted(ids)}


def test_start_stores_no_pickle_and_an_old_pickled_operation_is_refused_not_unpickled(operator):
    hub = factories.integration(provider="hubspot")
    logs(hub, 2)
    operation = bulk.start(action="sync_logs.retry_failed", queryset=SyncLog.objects.all(), actor=operator)
    assert "query" not in operation.params and "selection" in operation.params
    json.dumps(operation.params)  # plain data
    old = BulkOperation.objects.create(
        action="sync_logs.retry_failed", total=2, created_by="x", params={"query": "gASVAAAA", "max_pk": 10}
    )
    assert bulk.run(old.pk) is False
    old.refresh_from_db()
    assert old.status == "failed" and "pickled" in old.error
