"""The RB-09 commands: what each changes in the database, and bad input exits 2 changing nothing."""

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from integrations.engine import run as engine_run
from integrations.management.cli import os_user
from integrations.models import AuditEvent, Defect, Integration, RecordLink, SyncLog, WebhookDelivery
from tests.support import factories
from tests.support.sync import connect, local_records

CLI_ACTOR = f"system:cli:{os_user()}"  # issue 13: commands name the OS user

pytestmark = pytest.mark.django_db


def run(*args) -> str:
    out = StringIO()
    call_command(*args, stdout=out, stderr=StringIO())
    return out.getvalue()


def snapshot() -> tuple:
    """Everything these commands may change."""
    return (
        list(
            Integration.objects.order_by("pk").values_list(
                "mode", "poll_interval", "enrichment_defer_on_error"
            )
        ),
        list(WebhookDelivery.objects.order_by("pk").values_list("status", "max_retries")),
        list(Defect.objects.order_by("pk").values_list("status", "resolution")),
        SyncLog.objects.count(),
        AuditEvent.objects.count(),
    )


@pytest.fixture
def world(db):
    """A HubSpot outage's leftovers: failed pushes, failed and dead webhooks, open stale defects."""
    hub = factories.integration(provider="hubspot")
    gh = factories.integration(provider="greenhouse", tenant=hub.tenant)
    clearbit = factories.integration(provider="clearbit", tenant=hub.tenant)
    record = factories.record(tenant=hub.tenant)
    factories.sync_log(integration=hub, record=record, status="FAILED", error_category="provider_5xx")
    for i, status in enumerate(["FAILED", "DEAD", "PROCESSED"]):
        WebhookDelivery.objects.create(
            integration=hub, provider="hubspot", event_id=f"e{i}", status=status, attempts=5
        )
    Defect.objects.create(defect_type="STALE_CRM_SYNC", provider="hubspot", tenant=hub.tenant, record=record)
    return hub, gh, clearbit, record


def assert_usage_error(args, before):
    with pytest.raises(CommandError) as caught:
        run(*args)
    assert caught.value.returncode == 2, caught.value
    assert "\n" not in str(caught.value)  # one line
    assert snapshot() == before


BAD = [
    ("create_stale_defects", "--provider", "hubspot", "--since", "yesterday-ish"),
    ("create_stale_defects", "--provider", "hubspot", "--since", "2999-01-01T00:00:00Z"),
    ("create_stale_defects", "--provider", "nosuch", "--since", "1 hour ago"),
    ("create_stale_defects", "--provider", "hubspot", "--since", "1 hour ago", "--defect-type", "MOULD"),
    ("clear_stale_defects", "--provider", "hubspot", "--within", "forever"),
    ("clear_stale_defects", "--provider", "hubspot", "--within", "0h"),
    ("clear_stale_defects", "--provider", "hubspot", "--resolution", " "),
    ("clear_stale_defects", "--provider", "myspace"),
    ("queue_webhook_retries", "--provider", "hubspot", "--max-retries", "-1"),
    ("queue_webhook_retries", "--provider", "hubspot", "--max-retries", "ten"),
    ("queue_webhook_retries", "--provider", "hubspot", "--max-retries", "1000"),
    ("queue_webhook_retries", "--provider", "nosuch", "--max-retries", "10"),
    ("reconcile", "--provider", "hubspot", "--since", "yesterday-ish"),
    ("reconcile", "--provider", "hubspot", "--since", "2 hours ago", "--tenant", "nobody"),
    ("reconcile", "--provider", "nosuch", "--since", "2 hours ago"),
    ("verify_sync", "--provider", "hubspot", "--sample-size", "0"),
    ("verify_sync", "--provider", "hubspot", "--sample-size", "lots"),
    ("verify_sync", "--provider", "hubspot", "--sample-size", "5000"),
    ("verify_sync", "--provider", "nosuch"),
    ("set_mode", "--provider", "hubspot", "--mode", "polling", "--poll-interval", "often"),
    ("set_mode", "--provider", "hubspot", "--mode", "polling", "--poll-interval", "5s"),
    ("set_mode", "--provider", "hubspot", "--mode", "carrier-pigeon"),
    ("set_mode", "--provider", "hubspot", "--mode", "webhook", "--poll-interval", "5m"),
    ("set_mode", "--provider", "hubspot", "--mode", "polling", "--tenant", "nobody"),
    ("set_mode", "--provider", "nosuch", "--mode", "polling"),
    ("defer_enrichment", "--provider", "clearbit"),
    ("defer_enrichment", "--provider", "clearbit", "--on", "--off"),
    ("defer_enrichment", "--provider", "nosuch", "--on"),
]


@pytest.mark.parametrize("args", BAD, ids=[" ".join(a) for a in BAD])
def test_bad_input_exits_2_with_one_line_and_changes_nothing(world, args):
    assert_usage_error(args, snapshot())


def test_queue_webhook_retries_queues_failed_and_dead_deliveries(world):
    out = run("queue_webhook_retries", "--provider", "hubspot", "--max-retries", "10", "--dry-run")
    assert "Would queue 2" in out
    assert set(WebhookDelivery.objects.values_list("status", flat=True)) == {"FAILED", "DEAD", "PROCESSED"}
    out = run("queue_webhook_retries", "--provider", "hubspot", "--max-retries", "10")
    assert "Queued 2" in out
    assert sorted(WebhookDelivery.objects.values_list("status", "max_retries", "attempts")) == [
        ("PROCESSED", 5, 5),
        ("QUEUED", 10, 5),
        ("QUEUED", 10, 5),
    ]
    event = AuditEvent.objects.get(action="webhooks.queue_retries")
    assert (event.actor, event.actor_type, event.details["command"]) == (
        CLI_ACTOR,
        "system",
        "queue_webhook_retries",
    )


def test_create_then_clear_stale_defects(world):
    hub, _, _, record = world
    Defect.objects.all().delete()
    assert "Would create 1" in run(
        "create_stale_defects", "--provider", "hubspot", "--since", "1 hour ago", "--dry-run"
    )
    assert not Defect.objects.exists()
    assert "Created 1 STALE_CRM_SYNC" in run(
        "create_stale_defects", "--provider", "hubspot", "--since", "1 hour ago"
    )
    assert "Created 0" in run("create_stale_defects", "--provider", "hubspot", "--since", "1 hour ago")
    defect = Defect.objects.get()
    assert (defect.record_id, defect.integration_id, defect.status) == (record.pk, hub.pk, "OPEN")

    assert "Would resolve 1" in run(
        "clear_stale_defects", "--provider", "hubspot", "--within", "4h", "--dry-run"
    )
    assert Defect.objects.get().status == "OPEN"
    run(
        "clear_stale_defects",
        "--provider",
        "hubspot",
        "--within",
        "4h",
        "--resolution",
        "HubSpot back; re-synced",
    )
    defect.refresh_from_db()
    assert (defect.status, defect.resolution, defect.resolved_by) == (
        "RESOLVED",
        "HubSpot back; re-synced",
        CLI_ACTOR,
    )
    commands = set(AuditEvent.objects.values_list("details__command", flat=True))
    assert commands == {"create_stale_defects", "clear_stale_defects"}


def test_set_mode_and_defer_enrichment(world):
    hub, gh, clearbit, _ = world
    out = run("set_mode", "--provider", "hubspot", "--mode", "polling", "--poll-interval", "2m")
    assert "Set 1 hubspot" in out
    hub.refresh_from_db(), gh.refresh_from_db()
    assert (hub.mode, hub.poll_interval) == ("polling", timedelta(minutes=2))
    assert gh.mode == "webhook"
    run("set_mode", "--provider", "hubspot", "--mode", "webhook")
    hub.refresh_from_db()
    assert (hub.mode, hub.poll_interval) == ("webhook", timedelta(minutes=5))
    # --tenant narrows to one tenant's integration.
    other = factories.integration(provider="hubspot")
    run("set_mode", "--provider", "hubspot", "--mode", "polling", "--tenant", other.tenant.slug)
    assert dict(Integration.objects.filter(provider="hubspot").values_list("pk", "mode")) == {
        hub.pk: "webhook",
        other.pk: "polling",
    }

    run("defer_enrichment", "--provider", "clearbit", "--on")
    assert Integration.objects.get(pk=clearbit.pk).enrichment_defer_on_error is True
    run("defer_enrichment", "--provider", "clearbit", "--off")
    assert Integration.objects.get(pk=clearbit.pk).enrichment_defer_on_error is False
    assert AuditEvent.objects.filter(details__command="set_mode").count() == 3
    assert AuditEvent.objects.filter(details__command="defer_enrichment", actor=CLI_ACTOR).count() == 2


def test_reconcile_and_verify_sync_against_the_sandbox(sandbox):
    integration = connect(sandbox, "workday")
    records = local_records(integration, 2)
    engine_run.sync_integration(integration.pk, pull=False)
    remote_id = RecordLink.objects.get(record=records[0]).remote_id
    sandbox.update_record("workday", remote_id, {"lastName": "Changed"})

    out = StringIO()
    with pytest.raises(CommandError) as caught:
        call_command("verify_sync", "--provider", "workday", "--sample-size", "20", stdout=out)
    assert caught.value.returncode == 1
    assert (
        f"MISMATCH {integration.tenant.slug} record {records[0].pk} ({remote_id}) last_name: "
        in out.getvalue()
    )
    assert "remote='Changed'" in out.getvalue()

    since = (timezone.now() - timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M:%SZ")
    dry = run("reconcile", "--provider", "workday", "--since", since, "--dry-run")
    assert "Dry run" in dry and "updated 1" in dry
    records[0].refresh_from_db()
    assert records[0].payload["last_name"] != "Changed"

    out = run(
        "reconcile", "--provider", "workday", "--since", "10 minutes ago", "--tenant", integration.tenant.slug
    )
    assert "updated 1" in out and "errors 0" in out
    records[0].refresh_from_db()
    assert records[0].payload["last_name"] == "Changed"
    event = AuditEvent.objects.get(action="record.reconciled")
    assert (event.details["remote_id"], event.details["outcome"], event.details["command"]) == (
        remote_id,
        "updated",
        "reconcile",
    )
    assert "compared 2 records, 0 mismatches" in run(
        "verify_sync", "--provider", "workday", "--sample-size", "20"
    )


def test_reconcile_exits_1_when_the_provider_is_down(sandbox):
    connect(sandbox, "greenhouse")
    sandbox.control("greenhouse", mode="down")
    out = StringIO()
    with pytest.raises(CommandError) as caught:
        call_command("reconcile", "--provider", "greenhouse", "--since", "1 hour ago", stdout=out)
    assert caught.value.returncode == 1
    assert "errors 1" in out.getvalue()
    assert SyncLog.objects.filter(
        operation="reconcile", status="FAILED", error_category="provider_5xx"
    ).exists()
