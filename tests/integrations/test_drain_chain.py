"""A backlog keeps draining when a "Sync now" run takes the integration's turn (issue 12, 5).

A run started for chosen records ("Sync now" on the priority queue, or a change to a few records) pushes those
and stops. When it took the lease while the backlog's next run waited for its turn, that run found "another
sync is running" and ended the chain: the tenant's backlog stood still until the next sweep (two minutes),
while the provider's other tenants drained. Tasks run in-process here (eager), each re-enqueue inline.
"""

import pytest

from integrations import services
from integrations.access.actors import System
from integrations.engine.push import pending_records
from integrations.models import Record
from integrations.tasks import sync as tasks
from tests.support.sync import connect, external_id, local_records

pytestmark = pytest.mark.django_db


def test_a_sync_now_run_hands_the_backlog_on_to_a_run_that_follows(
    sandbox, django_capture_on_commit_callbacks
):
    integration = connect(sandbox, "hubspot", mode="webhook")
    backlog = local_records(integration, 230)  # more than one run's share (run.BATCH_SIZE)
    chosen = backlog[-1]
    # "Sync now" on the newest record: its priority run pushes it first, then the backlog is not left waiting
    with django_capture_on_commit_callbacks(execute=True):
        services.records_sync_now(records=Record.objects.filter(pk=chosen.pk), actor=System("test"))
    remote = [external_id(r) for r in sandbox.records("hubspot", integration.tenant.slug)]
    assert remote[0] == str(chosen.external_id)
    assert sorted(remote) == sorted(str(r.external_id) for r in backlog)
    assert not pending_records(integration).exists()


def test_a_run_for_changed_records_hands_the_rest_on(sandbox):
    integration = connect(sandbox, "salesforce", mode="webhook")
    backlog = local_records(integration, 5)
    tasks.sync_integration.delay(integration.pk, None, [backlog[0].pk])
    assert len(sandbox.records("salesforce", integration.tenant.slug)) == 5
