"""RB-01 test connectivity and RB-03 pause of non-critical syncs."""

import socket

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.core.exceptions import PermissionDenied
from django.urls import reverse
from django.utils import timezone

from integrations import services
from integrations.models import AuditEvent, Integration
from tests.support import factories

pytestmark = pytest.mark.django_db


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # nothing listens once the socket closes


def test_connectivity_to_the_sandbox_passes_every_step(sandbox, operator):
    integration = factories.integration(provider="hubspot", base_url=sandbox.base_url("hubspot"))
    [result] = services.integration_test_connectivity(integrations=integration, actor=operator)
    steps = {s.name: s for s in result["steps"]}
    assert result["ok"] and steps["dns"].ok and steps["tcp"].ok and steps["http"].ok
    assert steps["tls"].ok is None and "not used" in steps["tls"].detail
    assert steps["tcp"].ms is not None and steps["http"].detail.startswith("HTTP ")
    event = AuditEvent.objects.get(action="integration.test_connectivity")
    assert event.actor == "operator" and event.details["ok"] is True


def test_connectivity_to_a_closed_port_fails_at_tcp_with_its_error(operator):
    integration = factories.integration(provider="lever", base_url=f"http://127.0.0.1:{closed_port()}/lever")
    [result] = services.integration_test_connectivity(integrations=integration, actor=operator)
    steps = {s.name: s for s in result["steps"]}
    assert not result["ok"] and steps["dns"].ok
    assert steps["tcp"].ok is False and "ConnectionRefusedError" in steps["tcp"].detail
    assert steps["http"].ok is None
    assert AuditEvent.objects.get().details["ok"] is False


def test_connectivity_page_shows_each_step(client, operator, sandbox):
    integration = factories.integration(provider="hubspot", base_url=sandbox.base_url("hubspot"))
    client.force_login(operator)
    page = client.post(
        reverse("admin:integrations_integration_changelist"),
        {"action": "test_connectivity", ACTION_CHECKBOX_NAME: [integration.pk]},
    ).content.decode()
    assert "reachable" in page and 'data-step="tcp"' in page and " ms" in page


def test_viewer_may_not_test_connectivity(viewer):
    with pytest.raises(PermissionDenied):
        services.integration_test_connectivity(integrations=factories.integration(), actor=viewer)


def test_pause_non_critical_leaves_critical_integrations_running(operator):
    critical = factories.integration(provider="hubspot", is_critical=True)
    minor = [factories.integration(provider="hubspot") for _ in range(3)]
    other_provider = factories.integration(provider="lever")
    already = factories.integration(provider="hubspot")
    services.integration_pause(integrations=already, actor=operator, reason="maintenance")
    result = services.integrations_pause_non_critical(
        provider="hubspot", actor=operator, reason="429s from HubSpot"
    )
    assert result.changed == 3 and result.details["n_critical_still_syncing"] == 1
    statuses = dict(Integration.objects.values_list("pk", "status"))
    assert statuses[critical.pk] == "connected" and statuses[other_provider.pk] == "connected"
    assert all(statuses[i.pk] == "paused" for i in minor)
    resumed = services.integrations_resume_non_critical(provider="hubspot", actor=operator)
    assert resumed.changed == 3
    assert Integration.objects.get(pk=already.pk).sync_paused  # a pause of its own stays
    assert not Integration.objects.filter(pk__in=[i.pk for i in minor], sync_paused=True).exists()


def test_sync_now_pushes_chosen_records_first_even_during_a_running_sync(
    sandbox, operator, django_capture_on_commit_callbacks
):
    from integrations.engine import run
    from integrations.models import Record, SyncLog
    from tests.support.sync import connect, local_records

    integration = connect(sandbox, "greenhouse")
    backlog = local_records(integration, 5)
    urgent = local_records(integration, 1, last_name="Urgent")[0]
    # A batch is running: "Sync now" cannot take the lease, so the batch itself must take the urgent record first.
    Record.objects.filter(pk=urgent.pk).update(sync_priority_at=timezone.now())
    run.sync_integration(integration.pk, pull=False)
    order = list(
        SyncLog.objects.filter(integration=integration, direction="push")
        .order_by("pk")
        .values_list("record_id", flat=True)
    )
    assert order[0] == urgent.pk and set(order[1:]) == {r.pk for r in backlog}
    assert not Record.objects.filter(sync_priority_at__isnull=False).exists()

    # Through the service: the record is marked, and (eagerly, here) synced at once.
    urgent.payload = {**urgent.payload, "title": "CTO"}
    urgent.save()
    with django_capture_on_commit_callbacks(execute=True):
        result = services.records_sync_now(records=Record.objects.filter(pk=urgent.pk), actor=operator)
    assert result.changed == 1 and result.details["n_integrations"] == 1
    remote = {
        r["fields"]["last_name"]: r["fields"] for r in sandbox.records("greenhouse", integration.tenant.slug)
    }
    assert remote["Urgent"]["title"] == "CTO"
    assert AuditEvent.objects.filter(action="records.sync_now", actor="operator").count() == 1


def test_sync_now_refuses_huge_selections_and_viewers(operator, viewer):
    from integrations.models import Record

    t = factories.tenant()
    Record.objects.bulk_create([Record(tenant=t, kind="contact", payload={}) for _ in range(1001)])
    from integrations import errors

    with pytest.raises(errors.ServiceError, match="at most 1000 records"):
        services.records_sync_now(records=Record.objects.all(), actor=operator)
    with pytest.raises(PermissionDenied):
        services.records_sync_now(records=Record.objects.filter(pk=Record.objects.first().pk), actor=viewer)
    assert not Record.objects.filter(sync_priority_at__isnull=False).exists()
