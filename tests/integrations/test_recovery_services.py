"""Recovery actions (RB-01, RB-04, RB-09): what operators see change, what the sandbox receives, what is audited."""

from datetime import timedelta

import pytest
from django.core.exceptions import PermissionDenied
from django.utils import timezone

from integrations import services
from integrations.access.actors import System
from integrations.engine import dispatch, push, run
from integrations.engine.mapping import mapping_for
from integrations.errors import ServiceError
from integrations.models import (
    ApiToken,
    AuditEvent,
    Defect,
    Integration,
    Record,
    RecordLink,
    SyncLog,
    WebhookDelivery,
)
from tests.support import factories
from tests.support.sync import connect, external_id, local_records

pytestmark = pytest.mark.django_db

CLI = System("cli")


def failed_push(integration, *, category="validation", record=None, **kw):
    record = record or factories.record(tenant=integration.tenant)
    RecordLink.objects.get_or_create(
        record=record,
        integration=integration,
        defaults={"failed_at": timezone.now(), "last_error_category": category},
    )
    return factories.sync_log(
        integration=integration, record=record, status="FAILED", error_category=category, **kw
    )


def delivery(integration, status, n=[0], **kw):  # noqa: B006 - a counter for unique event ids
    n[0] += 1
    return WebhookDelivery.objects.create(
        integration=integration, provider=integration.provider, event_id=f"evt-{n[0]}", status=status, **kw
    )


def by_remote_id_locally(integration) -> dict[str, dict]:
    """Every local record of the tenant, as the provider would hold it, keyed by its remote id ('' if unlinked)."""
    mapping = mapping_for(integration)
    links = dict(RecordLink.objects.filter(integration=integration).values_list("record_id", "remote_id"))
    return {
        links.get(r.pk, ""): mapping.to_local(mapping.to_remote(r.payload, str(r.external_id))[0])
        for r in Record.objects.filter(tenant=integration.tenant)
    }


def by_remote_id_at(sandbox, integration) -> dict[str, dict]:
    mapping = mapping_for(integration)
    return {
        r["id"]: mapping.to_local(r["fields"])
        for r in sandbox.records(integration.provider, integration.tenant.slug)
    }


# ------------------------------------------------------------------------------------------ retry failed


def test_retry_failed_requeues_failed_pushes_once_and_makes_their_records_pushable(operator):
    hub = factories.integration(provider="hubspot")
    failed = [failed_push(hub) for _ in range(3)]
    ok = factories.sync_log(integration=hub, record=factories.record(tenant=hub.tenant), status="SUCCESS")
    pull = factories.sync_log(integration=hub, direction="pull", operation="list", status="FAILED")
    held = [row.record_id for row in failed]
    assert not push.pending_records(hub).filter(pk__in=held).exists()  # held until it changes or is retried

    result = services.sync_logs_retry_failed(logs=SyncLog.objects.filter(integration=hub), actor=operator)

    assert result.changed == 3
    for row in failed:
        row.refresh_from_db()
        assert row.status == "FAILED" and row.error_category  # the failed attempt keeps its outcome
        [retry] = row.retries.all()
        assert retry.status == "PENDING" and retry.next_attempt_at <= timezone.now()
        assert retry.attempt == row.attempt + 1
    assert SyncLog.objects.get(pk=ok.pk).status == "SUCCESS"
    assert SyncLog.objects.get(pk=pull.pk).status == "FAILED"  # a page of a pull has no record to push
    assert not RecordLink.objects.filter(integration=hub, failed_at__isnull=False).exists()
    assert set(push.pending_records(hub).filter(pk__in=held).values_list("pk", flat=True)) == set(held)
    assert run.due_retries(hub).count() == 3
    [event] = AuditEvent.objects.filter(action="sync_logs.retry_failed")
    assert (event.actor, event.integration_id, event.details["changed"]) == ("operator", hub.pk, 3)
    # A second click finds nothing left to queue.
    assert services.sync_logs_retry_failed(logs=SyncLog.objects.all(), actor=operator).changed == 0


def _retry_queries(operator, n_integrations: int) -> int:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    for i in range(n_integrations):
        failed_push(
            factories.integration(tenant=factories.tenant(slug=f"q{n_integrations}-{i}"), provider="hubspot")
        )
    with CaptureQueriesContext(connection) as queries:
        changed = services.sync_logs_retry_failed(
            logs=SyncLog.objects.all(), actor=operator, enqueue=False
        ).changed
    assert changed == n_integrations
    SyncLog.objects.all().delete()
    return len(queries)


def test_retry_failed_costs_the_same_queries_for_2_integrations_as_for_20(operator):
    """make bench, after issue 12's retries became new rows: a chunk of 2,000 spread over many integrations cost
    1,013 queries (one links UPDATE per integration), where it had cost 13."""
    _retry_queries(operator, 1)  # the operator's permissions are cached from here on
    assert _retry_queries(operator, 2) == _retry_queries(operator, 20)


def test_retry_failed_makes_pushable_only_the_links_it_retried(operator):
    tenant = factories.tenant()
    hub = factories.integration(tenant=tenant, provider="hubspot")
    sf = factories.integration(tenant=tenant, provider="salesforce")
    record = factories.record(tenant=tenant)
    retried = failed_push(hub, record=record)
    failed_push(sf, record=record)  # the same record failed at Salesforce too: not selected

    services.sync_logs_retry_failed(logs=SyncLog.objects.filter(pk=retried.pk), actor=operator)

    links = dict(RecordLink.objects.filter(record=record).values_list("integration__provider", "failed_at"))
    assert links["hubspot"] is None and links["salesforce"] is not None


def test_retry_failed_keeps_to_the_callers_filter(operator):
    hub = factories.integration(provider="hubspot")
    validation = failed_push(hub, category="validation")
    outage = failed_push(hub, category="provider_5xx")
    old = failed_push(hub, category="validation")
    SyncLog.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=2))
    chosen = SyncLog.objects.filter(
        provider="hubspot", error_category="validation", created_at__gte=timezone.now() - timedelta(hours=1)
    )
    assert services.sync_logs_retry_failed(logs=chosen, actor=operator).changed == 1
    statuses = dict(SyncLog.objects.filter(retry_of__isnull=True).values_list("pk", "status"))
    assert statuses == {validation.pk: "FAILED", outage.pk: "FAILED", old.pk: "FAILED"}
    assert list(SyncLog.objects.filter(retry_of__isnull=False).values_list("retry_of_id", flat=True)) == [
        validation.pk
    ]


def test_retry_failed_is_refused_to_a_viewer_and_limited_to_a_tenant_tokens_tenant(viewer):
    mine, theirs = factories.integration(provider="hubspot"), factories.integration(provider="hubspot")
    failed_push(mine), failed_push(theirs)
    with pytest.raises(PermissionDenied):
        services.sync_logs_retry_failed(logs=SyncLog.objects.all(), actor=viewer)
    assert not SyncLog.objects.filter(status="PENDING").exists()
    token = ApiToken.objects.create(name="t", scope="tenant", tenant=mine.tenant, prefix="x", token_hash="h")
    assert services.sync_logs_retry_failed(logs=SyncLog.objects.all(), actor=token).changed == 1
    assert SyncLog.objects.get(status="PENDING").integration_id == mine.pk


def test_retried_validation_failure_reaches_the_provider_once_the_rule_is_fixed(sandbox, operator):
    integration = connect(sandbox, "greenhouse")
    bad = local_records(integration, 1, email="x@bad.example")[0]
    sandbox.control("greenhouse", reject={"field": "email", "contains": "@bad"})
    run.sync_integration(integration.pk, pull=False)
    assert SyncLog.objects.get(record=bad).status == "FAILED"
    sandbox.control("greenhouse", reject=None)  # the provider's rule was the problem (RB-04)

    services.sync_logs_retry_failed(logs=SyncLog.objects.filter(provider="greenhouse"), actor=operator)
    summary = run.sync_integration(integration.pk, pull=False)

    assert summary.pushed == 1
    first, row = SyncLog.objects.filter(record=bad).order_by("pk")
    assert (first.status, first.error_category) == ("FAILED", "validation")  # the failure history stays
    assert row.status == "SUCCESS" and row.attempt == 2 and row.retry_of_id == first.pk
    assert [external_id(r) for r in sandbox.records("greenhouse", integration.tenant.slug)] == [
        str(bad.external_id)
    ]
    bad.refresh_from_db()
    assert bad.crm_sync_status == "SYNCED"


# ------------------------------------------------------------------------------------------ webhooks


def test_queue_webhook_retries_requeues_failed_and_dead_deliveries_of_the_provider(operator):
    hub = factories.integration(provider="hubspot")
    gh = factories.integration(provider="greenhouse", tenant=hub.tenant)
    failed = delivery(hub, "FAILED", attempts=2, next_attempt_at=timezone.now() + timedelta(hours=1))
    dead = delivery(hub, "DEAD", attempts=5, max_retries=5)
    done = delivery(hub, "PROCESSED", attempts=1)
    other = delivery(gh, "DEAD", attempts=5)

    result = services.webhooks_queue_retries(provider="hubspot", actor=operator, max_retries=10)

    assert result.changed == 2
    for row, attempts in ((failed, 2), (dead, 5)):
        row.refresh_from_db()
        assert (row.status, row.max_retries, row.attempts) == ("QUEUED", 10, attempts)
    assert WebhookDelivery.objects.get(pk=done.pk).status == "PROCESSED"
    assert WebhookDelivery.objects.get(pk=other.pk).status == "DEAD"
    assert set(dispatch.due_webhook_ids()) == {failed.pk, dead.pk}
    event = AuditEvent.objects.get(action="webhooks.queue_retries")
    assert event.provider == "hubspot"
    assert {k: event.details[k] for k in ("changed", "from_failed", "from_dead", "max_retries")} == {
        "changed": 2,
        "from_failed": 1,
        "from_dead": 1,
        "max_retries": 10,
    }


@pytest.mark.parametrize("bad", [0, -1, 101, "10"])
def test_queue_webhook_retries_refuses_a_bad_max_and_changes_nothing(operator, bad):
    dead = delivery(factories.integration(provider="hubspot"), "DEAD", attempts=5)
    with pytest.raises(ServiceError):
        services.webhooks_queue_retries(provider="hubspot", actor=operator, max_retries=bad)
    assert WebhookDelivery.objects.get(pk=dead.pk).status == "DEAD"
    assert not AuditEvent.objects.exists()


# ------------------------------------------------------------------------------------------ stale defects


def test_create_stale_defects_for_crm_records_that_failed_since_then_and_never_twice(operator):
    hub = factories.integration(provider="hubspot")
    since = timezone.now() - timedelta(hours=1)
    failed = failed_push(hub, category="provider_5xx").record
    retrying = factories.sync_log(
        integration=hub, record=factories.record(tenant=hub.tenant), status="RETRYING"
    ).record
    old = failed_push(hub).record
    SyncLog.objects.filter(record=old).update(created_at=since - timedelta(hours=2))
    fine = factories.sync_log(
        integration=hub, record=factories.record(tenant=hub.tenant), status="SUCCESS"
    ).record
    marked = factories.record(tenant=hub.tenant)
    Record.objects.filter(pk=marked.pk).update(crm_sync_status="FAILED")

    result = services.defects_create_stale(provider="hubspot", since=since, actor=operator)

    assert result.changed == 3
    defects = Defect.objects.all()
    assert {d.record_id for d in defects} == {failed.pk, retrying.pk, marked.pk}
    assert {(d.defect_type, d.status, d.provider, d.integration_id, d.tenant_id) for d in defects} == {
        ("STALE_CRM_SYNC", "OPEN", "hubspot", hub.pk, hub.tenant_id)
    }
    assert fine.pk not in {d.record_id for d in defects} and old.pk not in {d.record_id for d in defects}
    again = services.defects_create_stale(provider="hubspot", since=since, actor=operator)
    assert (again.changed, again.unchanged) == (0, 3)
    assert Defect.objects.count() == 3
    assert [
        e.details["changed"] for e in AuditEvent.objects.filter(action="defects.create_stale").order_by("pk")
    ] == [3, 0]


def test_create_stale_defects_for_an_enrichment_provider_marks_stale_enrichment(operator):
    clearbit = factories.integration(provider="clearbit")
    since = timezone.now() - timedelta(hours=1)
    pending, deferred, enriched = (factories.record(tenant=clearbit.tenant, kind="claim") for _ in range(3))
    Record.objects.filter(pk=pending.pk).update(enrichment_status="PENDING")
    Record.objects.filter(pk=deferred.pk).update(enrichment_status="DEFERRED")
    Record.objects.filter(pk=enriched.pk).update(enrichment_status="ENRICHED")
    other_tenant = factories.record(tenant=factories.tenant(), kind="claim")
    Record.objects.filter(pk=other_tenant.pk).update(
        enrichment_status="FAILED"
    )  # has no clearbit integration

    result = services.defects_create_stale(provider="clearbit", since=since, actor=CLI)

    assert result.changed == 2
    assert set(Defect.objects.values_list("record_id", "defect_type")) == {
        (pending.pk, "STALE_ENRICHMENT"),
        (deferred.pk, "STALE_ENRICHMENT"),
    }


def test_clear_stale_defects_resolves_the_providers_recent_stale_defects_in_one_go(operator):
    hub = factories.integration(provider="hubspot")
    gh = factories.integration(provider="greenhouse", tenant=hub.tenant)

    def defect(provider, defect_type="STALE_CRM_SYNC", age=timedelta(minutes=10), integration=hub):
        d = Defect.objects.create(
            defect_type=defect_type,
            provider=provider,
            tenant=hub.tenant,
            integration=integration,
            record=factories.record(tenant=hub.tenant),
        )
        Defect.objects.filter(pk=d.pk).update(created_at=timezone.now() - age)
        return d

    recent = [defect("hubspot"), defect("hubspot", "STALE_ENRICHMENT")]
    old = defect("hubspot", age=timedelta(hours=5))
    other = defect("greenhouse", integration=gh)
    not_stale = defect("hubspot", "SYNC_FAILED")

    result = services.defects_clear_stale(provider="hubspot", within=timedelta(hours=4), actor=operator)

    assert result.changed == 2
    for d in recent:
        d.refresh_from_db()
        assert (d.status, d.resolution, d.resolved_by) == (
            "RESOLVED",
            "Data refreshed after provider recovery",
            "operator",
        )
        assert d.resolved_at is not None
    assert {d.status for d in Defect.objects.filter(pk__in=[old.pk, other.pk, not_stale.pk])} == {"OPEN"}
    assert AuditEvent.objects.get(action="defects.clear_stale").details["changed"] == 2
    with pytest.raises(ServiceError):
        services.defects_clear_stale(provider="hubspot", actor=operator, resolution="  ")


# ------------------------------------------------------------------------------------------ modes


def test_switch_to_polling_and_back_to_webhooks(operator):
    hub = factories.integration(provider="hubspot")
    sf = factories.integration(provider="salesforce", tenant=hub.tenant)
    both = Integration.objects.filter(pk__in=[hub.pk, sf.pk])

    result = services.integrations_set_mode(
        integrations=both, actor=operator, mode="polling", poll_interval=timedelta(minutes=2)
    )
    assert result.changed == 2
    assert set(Integration.objects.values_list("mode", "poll_interval")) == {
        ("polling", timedelta(minutes=2))
    }
    assert hub.pk in dispatch.due_integration_ids()  # never polled: due at once

    back = services.integrations_set_mode(integrations=both, actor=operator, mode="webhook")
    assert (back.changed, back.details) == (1, {"n_polling_only": 1})
    hub.refresh_from_db(), sf.refresh_from_db()
    assert (hub.mode, hub.poll_interval) == ("webhook", timedelta(minutes=5))
    assert sf.mode == "polling"  # Salesforce sends no webhooks
    details = [e.details for e in AuditEvent.objects.filter(action="integration.set_mode").order_by("pk")]
    assert [d["mode"] for d in details] == ["polling", "polling", "webhook"]


@pytest.mark.parametrize(
    "kw",
    [
        {"mode": "carrier-pigeon"},
        {"mode": "polling", "poll_interval": timedelta(seconds=5)},
        {"mode": "webhook", "poll_interval": timedelta(minutes=5)},
    ],
)
def test_set_mode_refuses_bad_values_and_changes_nothing(operator, kw):
    hub = factories.integration(provider="hubspot")
    with pytest.raises(ServiceError):
        services.integrations_set_mode(integrations=hub, actor=operator, **kw)
    hub.refresh_from_db()
    assert hub.mode == "webhook" and not AuditEvent.objects.exists()


def test_defer_enrichment_on_and_off(operator):
    clearbit = factories.integration(provider="clearbit")
    assert (
        services.integrations_set_enrichment_defer(integrations=clearbit, actor=operator, on=True).changed
        == 1
    )
    assert Integration.objects.get(pk=clearbit.pk).enrichment_defer_on_error is True
    assert (
        services.integrations_set_enrichment_defer(integrations=clearbit, actor=operator, on=True).changed
        == 0
    )
    assert (
        services.integrations_set_enrichment_defer(integrations=clearbit, actor=operator, on=False).changed
        == 1
    )
    assert Integration.objects.get(pk=clearbit.pk).enrichment_defer_on_error is False


# ------------------------------------------------------------------------------------------ reconcile and verify


def test_reconcile_after_an_outage_brings_the_providers_changes_home_and_verify_finds_no_mismatch(
    sandbox, operator
):
    integration = connect(sandbox, "hubspot", mode="webhook")
    records = local_records(integration, 3)
    assert run.sync_integration(integration.pk, pull=False).pushed == 3
    remote = {external_id(r): r for r in sandbox.records("hubspot", integration.tenant.slug)}

    since = timezone.now()
    sandbox.control("hubspot", mode="down")
    # During the outage the provider's users keep working (their UI is up; its API and webhooks to us are not).
    sandbox.update_record(
        "hubspot", remote[str(records[0].external_id)]["id"], {"jobtitle": "Head of Talent"}
    )
    sandbox.update_record("hubspot", remote[str(records[1].external_id)]["id"], {"lastname": "Renamed"})
    sandbox.create_record(
        "hubspot",
        integration.tenant.slug,
        {"email": "new@example.com", "firstname": "New", "lastname": "Person"},
    )
    during = services.integrations_reconcile(integrations=integration, since=since, actor=operator)
    assert during.details["n_errors"] == 1 and during.changed == 0
    assert SyncLog.objects.filter(operation="reconcile", status="FAILED", http_status=503).exists()
    sandbox.control("hubspot", mode="ok")

    result = services.integrations_reconcile(integrations=integration, since=since, actor=operator)

    d = result.details
    assert (d["n_checked"], d["n_created"], d["n_updated"], d["n_errors"]) == (3, 1, 2, 0)
    assert by_remote_id_locally(integration) == by_remote_id_at(sandbox, integration)
    records[0].refresh_from_db()
    assert records[0].payload["title"] == "Head of Talent"
    reconciled = AuditEvent.objects.filter(action="record.reconciled")
    assert sorted(e.details["outcome"] for e in reconciled) == ["created", "updated", "updated"]
    assert {e.details["remote_id"] for e in reconciled} <= {r["id"] for r in sandbox.records("hubspot")}
    assert all(e.actor == "operator" and e.provider == "hubspot" for e in reconciled)
    assert not push.pending_records(integration).exists()  # what came from the provider is not pushed back

    verify = services.integrations_verify_sync(integrations=integration, sample_size=20, actor=operator)
    assert (verify.details["n_checked"], verify.details["mismatches"], verify.details["errors"]) == (
        4,
        [],
        [],
    )
    assert AuditEvent.objects.get(action="integration.verify_sync").details["mismatches"] == 0


def test_reconcile_dry_run_reports_but_changes_nothing(sandbox, operator):
    integration = connect(sandbox, "greenhouse")
    local_records(integration, 2)
    run.sync_integration(integration.pk, pull=False)
    since = timezone.now()
    first = sandbox.records("greenhouse", integration.tenant.slug)[0]
    sandbox.update_record("greenhouse", first["id"], {"title": "CTO"})
    sandbox.create_record("greenhouse", integration.tenant.slug, {"first_name": "N", "last_name": "P"})
    before = (
        Record.objects.count(),
        SyncLog.objects.count(),
        AuditEvent.objects.count(),
        list(Record.objects.values_list("payload", flat=True)),
    )

    result = services.integrations_reconcile(
        integrations=integration, since=since, actor=operator, dry_run=True
    )

    # Greenhouse's updated_after has whole seconds: records pushed in the same second come back unchanged.
    assert (result.details["n_created"], result.details["n_updated"]) == (1, 1)
    assert (
        Record.objects.count(),
        SyncLog.objects.count(),
        AuditEvent.objects.count(),
        list(Record.objects.values_list("payload", flat=True)),
    ) == before


def test_verify_sync_names_the_record_field_and_both_values_of_a_mismatch(sandbox, operator):
    integration = connect(sandbox, "lever")
    record = local_records(integration, 1, title="Engineer")[0]
    run.sync_integration(integration.pk, pull=False)
    remote_id = RecordLink.objects.get(record=record).remote_id
    sandbox.update_record("lever", remote_id, {"headline": "Manager"})

    result = services.integrations_verify_sync(integrations=integration, sample_size=5, actor=operator)

    assert result.details["mismatches"] == [
        {
            "integration_id": integration.pk,
            "tenant": integration.tenant.slug,
            "provider": "lever",
            "record_id": record.pk,
            "remote_id": remote_id,
            "field": "title",
            "remote_field": "headline",
            "local": "Engineer",
            "remote": "Manager",
        }
    ]
    assert AuditEvent.objects.get(action="integration.verify_sync").details["mismatches"] == 1
    with pytest.raises(ServiceError):
        services.integrations_verify_sync(integrations=integration, sample_size=0, actor=operator)
