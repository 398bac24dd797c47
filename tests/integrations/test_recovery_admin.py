"""The recovery actions in the console: confirm, validate, report counts; huge selections go to the background."""

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from integrations.engine import run
from integrations.models import (
    AuditEvent,
    BulkOperation,
    Defect,
    Integration,
    Record,
    RecordLink,
    SyncLog,
    WebhookDelivery,
)
from integrations.services import bulk
from tests.support import factories
from tests.support.sync import connect, local_records

pytestmark = pytest.mark.django_db

INTEGRATIONS = "admin:integrations_integration_changelist"
SYNCLOGS = "admin:integrations_synclog_changelist"


def act(client, name, action, ids, query="", **form):
    """Post a changelist action with confirm=yes and follow to the page shown after it."""
    data = {"action": action, ACTION_CHECKBOX_NAME: ids, "confirm": "yes", **form}
    return client.post(reverse(name) + query, data, follow=True)


def failed_logs(integration, n: int) -> list[int]:
    records = Record.objects.bulk_create(
        [
            Record(tenant=integration.tenant, kind="contact", payload={"email": f"p{i}@example.com"})
            for i in range(n)
        ]
    )
    logs = SyncLog.objects.bulk_create(
        [
            SyncLog(
                integration=integration,
                tenant=integration.tenant,
                provider=integration.provider,
                direction="push",
                object_type="contacts",
                record=r,
                operation="create",
                status="FAILED",
                error_category="provider_5xx",
            )
            for r in records
        ]
    )
    return [log.pk for log in logs]


def test_viewer_is_offered_no_recovery_action_and_a_forged_post_changes_nothing(client, viewer):
    hub = factories.integration(provider="hubspot")
    failed_logs(hub, 1)
    client.force_login(viewer)
    html = client.get(reverse(INTEGRATIONS)).content.decode()
    for label in ("Retry failed syncs", "Switch to polling", "Reconcile", "Verify sync"):
        assert label not in html
    act(client, INTEGRATIONS, "retry_failed_syncs", [hub.pk], error_category="", since="")
    act(client, INTEGRATIONS, "switch_to_polling", [hub.pk], poll_interval="5m")
    assert SyncLog.objects.get().status == "FAILED" and Integration.objects.get().mode == "webhook"
    assert not AuditEvent.objects.exists()


def test_bulk_clear_of_stale_defects_resolves_only_open_stale_ones(operator):
    tenant = factories.tenant()
    Defect.objects.bulk_create(
        [Defect(defect_type="STALE_ENRICHMENT", provider="clearbit", tenant=tenant) for _ in range(9)]
        + [Defect(defect_type="SYNC_FAILED", provider="clearbit", tenant=tenant)]
    )
    operation = bulk.start(
        action="defects.clear_stale",
        queryset=Defect.objects.all(),
        actor=operator,
        params={"resolution": "Clearbit back"},
    )
    assert operation.total == 9
    assert bulk.run(operation.pk) is False
    operation.refresh_from_db()
    assert (operation.status, operation.done, operation.changed) == ("done", 9, 9)
    assert set(Defect.objects.values_list("defect_type", "status", "resolution", "resolved_by")) == {
        ("STALE_ENRICHMENT", "RESOLVED", "Clearbit back", "operator"),
        ("SYNC_FAILED", "OPEN", "", ""),
    }


def test_retry_failed_confirms_then_requeues_the_selected_failed_logs(client, operator):
    hub = factories.integration(provider="hubspot")
    ids = failed_logs(hub, 3)
    client.force_login(operator)
    page = client.post(reverse(SYNCLOGS), {"action": "retry_failed_logs", ACTION_CHECKBOX_NAME: ids[:2]})
    assert "will act on <strong>2</strong>" in page.content.decode()
    assert "2 of them are failed pushes not retried yet and will be queued." in page.content.decode()
    assert not SyncLog.objects.filter(status="RETRYING").exists()

    done = act(client, SYNCLOGS, "retry_failed_logs", ids[:2])

    assert "Retry failed syncs: 2 rows changed" in done.content.decode()
    # The failed attempts keep their outcome; each selected one gets one new attempt, due now.
    assert sorted(SyncLog.objects.values_list("status", flat=True)) == [
        "FAILED",
        "FAILED",
        "FAILED",
        "PENDING",
        "PENDING",
    ]
    assert set(SyncLog.objects.filter(status="PENDING").values_list("retry_of_id", flat=True)) == set(ids[:2])
    assert AuditEvent.objects.get(action="sync_logs.retry_failed").actor == "operator"


def test_select_all_over_the_threshold_returns_at_once_and_finishes_in_background_chunks(
    client, operator, monkeypatch, django_capture_on_commit_callbacks
):
    monkeypatch.setattr(bulk, "THRESHOLD", 20)
    monkeypatch.setattr(bulk, "CHUNK", 7)
    hub = factories.integration(provider="hubspot")
    ids = failed_logs(hub, 50)
    factories.sync_log(integration=hub, status="SUCCESS")
    client.force_login(operator)

    with django_capture_on_commit_callbacks() as callbacks:
        response = act(client, SYNCLOGS, "retry_failed_logs", ids[:1], select_across="1")
    operation = BulkOperation.objects.get()
    html = response.content.decode()
    progress_url = reverse("admin:integrations_bulkoperation_change", args=[operation.pk])
    assert f'<a href="{progress_url}">follow the progress</a>' in html
    assert "queued in background: 50" in html
    assert (operation.status, operation.total, operation.done, operation.created_by) == (
        "queued",
        50,
        0,
        "operator",
    )
    assert SyncLog.objects.filter(status="PENDING").count() == 0  # nothing done inside the request

    for callback in callbacks:  # the commit happens: the task runs (eagerly here) chunk by chunk
        callback()

    operation.refresh_from_db()
    assert (operation.status, operation.done, operation.changed) == ("done", 50, 50)
    assert operation.finished_at is not None
    assert SyncLog.objects.filter(status="PENDING", retry_of__isnull=False).count() == 50
    assert SyncLog.objects.filter(status="FAILED").count() == 50
    audited = AuditEvent.objects.filter(action="sync_logs.retry_failed")
    assert audited.count() == 8 and sum(e.details["changed"] for e in audited) == 50  # one row per chunk of 7
    page = client.get(progress_url).content.decode()
    assert '<progress class="lo-progress" max="50" value="50"></progress> 50 / 50 (100%)' in page


def test_bulk_operation_progress_is_shown_while_it_runs(client, operator):
    operation = BulkOperation.objects.create(
        action="defects.clear_stale",
        status="running",
        total=200,
        done=50,
        created_by="someone",
        params={"resolution": "ok", "query": "c2VjcmV0", "max_pk": 200},
    )
    client.force_login(operator)
    page = client.get(
        reverse("admin:integrations_bulkoperation_change", args=[operation.pk])
    ).content.decode()
    assert "50 / 200 (25%)" in page and 'http-equiv="refresh"' in page
    assert "c2VjcmV0" not in page  # the stored selection is not shown
    listing = client.get(reverse("admin:integrations_bulkoperation_changelist")).content.decode()
    assert "50 / 200 (25%)" in listing


def test_a_stored_selection_walks_its_rows_across_gaps_and_chunk_boundaries(operator):
    hub = factories.integration(provider="hubspot")
    ids = failed_logs(hub, 30)
    chosen = SyncLog.objects.filter(pk__in=ids[:10] + ids[15:30:2])
    selection = bulk.thaw(SyncLog, bulk.freeze(chosen))
    top = max(ids[:10] + ids[15:30:2])
    failed_logs(hub, 3)  # rows added after the confirmation are not part of it
    walked, cursor = [], 0
    while batch := bulk.next_ids(selection, after=cursor, up_to=top, limit=4):
        walked += batch
        cursor = batch[-1]
    assert walked == sorted(chosen.values_list("pk", flat=True)) and len(walked) == 18


def test_switch_to_polling_validates_the_interval(client, operator):
    hub = factories.integration(provider="hubspot")
    client.force_login(operator)
    confirm = client.post(
        reverse(INTEGRATIONS), {"action": "switch_to_polling", ACTION_CHECKBOX_NAME: [hub.pk]}
    )
    assert 'value="5m"' in confirm.content.decode()
    bad = act(client, INTEGRATIONS, "switch_to_polling", [hub.pk], poll_interval="every so often")
    assert "is not a duration" in bad.content.decode()
    too_fast = act(client, INTEGRATIONS, "switch_to_polling", [hub.pk], poll_interval="5s")
    assert "between 30 seconds and 24 hours" in too_fast.content.decode()
    assert Integration.objects.get(pk=hub.pk).mode == "webhook"

    done = act(client, INTEGRATIONS, "switch_to_polling", [hub.pk], poll_interval="2m")
    assert "Switch to polling: 1 row changed" in done.content.decode()
    assert Integration.objects.get(pk=hub.pk).mode == "polling"
    act(client, INTEGRATIONS, "restore_webhook_mode", [hub.pk])
    assert Integration.objects.get(pk=hub.pk).mode == "webhook"
    act(client, INTEGRATIONS, "defer_enrichment_on", [hub.pk])
    assert Integration.objects.get(pk=hub.pk).enrichment_defer_on_error is True
    act(client, INTEGRATIONS, "defer_enrichment_off", [hub.pk])
    assert Integration.objects.get(pk=hub.pk).enrichment_defer_on_error is False


def test_create_stale_defects_and_retry_failed_syncs_from_the_integration_list(client, operator):
    hub = factories.integration(provider="hubspot")
    failed_logs(hub, 2)
    client.force_login(operator)
    bad = act(client, INTEGRATIONS, "create_stale_defects", [hub.pk], since="yesterday-ish")
    assert "is not a time" in bad.content.decode() and not Defect.objects.exists()

    done = act(client, INTEGRATIONS, "create_stale_defects", [hub.pk], since="1 hour ago")
    assert "Create stale defects: 2 rows changed" in done.content.decode()
    assert set(Defect.objects.values_list("defect_type", "integration_id")) == {("STALE_CRM_SYNC", hub.pk)}

    confirm = client.post(
        reverse(INTEGRATIONS), {"action": "retry_failed_syncs", ACTION_CHECKBOX_NAME: [hub.pk]}
    )
    assert "2 failed push(es)" in confirm.content.decode()
    narrowed = act(
        client, INTEGRATIONS, "retry_failed_syncs", [hub.pk], error_category="validation", since=""
    )
    assert "0 rows changed" in narrowed.content.decode()
    done = act(
        client,
        INTEGRATIONS,
        "retry_failed_syncs",
        [hub.pk],
        error_category="provider_5xx",
        since="1 hour ago",
    )
    assert "Retry failed syncs: 2 rows changed" in done.content.decode()


def test_queue_webhook_retries_from_both_lists(client, operator):
    hub = factories.integration(provider="hubspot")
    dead = WebhookDelivery.objects.create(
        integration=hub, provider="hubspot", event_id="a", status="DEAD", attempts=5
    )
    failed = WebhookDelivery.objects.create(
        integration=hub, provider="hubspot", event_id="b", status="FAILED"
    )
    client.force_login(operator)
    bad = act(
        client,
        "admin:integrations_webhookdelivery_changelist",
        "queue_webhook_retry",
        [dead.pk],
        max_retries="0",
    )
    assert "greater than or equal to 1" in bad.content.decode()
    done = act(
        client,
        "admin:integrations_webhookdelivery_changelist",
        "queue_webhook_retry",
        [dead.pk],
        max_retries="10",
    )
    assert "Queue webhook retries: 1 row changed" in done.content.decode()
    assert WebhookDelivery.objects.get(pk=failed.pk).status == "FAILED"
    act(client, INTEGRATIONS, "queue_webhook_retries", [hub.pk], max_retries="8")
    assert sorted(WebhookDelivery.objects.values_list("event_id", "status", "max_retries")) == [
        ("a", "QUEUED", 10),
        ("b", "QUEUED", 8),
    ]


def test_clear_stale_defects_from_the_defect_list(client, operator):
    hub = factories.integration(provider="hubspot")
    stale = Defect.objects.create(defect_type="STALE_CRM_SYNC", provider="hubspot", tenant=hub.tenant)
    other = Defect.objects.create(defect_type="SYNC_FAILED", provider="hubspot", tenant=hub.tenant)
    client.force_login(operator)
    done = act(
        client,
        "admin:integrations_defect_changelist",
        "clear_stale_defects",
        [stale.pk, other.pk],
        resolution="Re-synced after the outage",
    )
    assert "Clear stale defects: 1 row changed" in done.content.decode()
    stale.refresh_from_db()
    assert (stale.status, stale.resolution, stale.resolved_by) == (
        "RESOLVED",
        "Re-synced after the outage",
        "operator",
    )
    assert Defect.objects.get(pk=other.pk).status == "OPEN"


def test_reconcile_and_verify_sync_from_the_integration_list(client, operator, sandbox):
    integration = connect(sandbox, "hubspot")
    record = local_records(integration, 1, title="Engineer")[0]
    run.sync_integration(integration.pk, pull=False)
    remote_id = RecordLink.objects.get(record=record).remote_id
    sandbox.update_record("hubspot", remote_id, {"jobtitle": "Director"})
    client.force_login(operator)

    page = act(client, INTEGRATIONS, "verify_sync", [integration.pk], sample_size="20").content.decode()
    assert "<strong>1</strong> mismatch." in page
    assert f'<a href="/admin/integrations/record/{record.pk}/change/">#{record.pk}</a>' in page
    assert "<td>Engineer</td><td>Director</td>" in page

    bad = act(client, INTEGRATIONS, "reconcile_since", [integration.pk], since="someday").content.decode()
    assert "is not a time" in bad
    done = act(client, INTEGRATIONS, "reconcile_since", [integration.pk], since="1 hour ago").content.decode()
    assert "Reconcile: 1 row changed" in done and "updated: 1" in done
    record.refresh_from_db()
    assert record.payload["title"] == "Director"

    page = act(client, INTEGRATIONS, "verify_sync", [integration.pk], sample_size="20").content.decode()
    assert "no mismatch" in page
    too_big = act(client, INTEGRATIONS, "verify_sync", [integration.pk], sample_size="0").content.decode()
    assert "greater than or equal to 1" in too_big


def test_select_all_of_100k_failed_logs_returns_at_once_without_touching_the_rows(client, operator, postgres):
    """The request records the selection and queues it: a bounded number of queries, no row changed in it."""
    hub = factories.integration(provider="hubspot")
    with connection.cursor() as cursor:
        cursor.execute(
            """INSERT INTO integrations_record (tenant_id, kind, external_id, payload, crm_sync_status,
                   enrichment_status, created_at, updated_at)
               SELECT %s, 'contact', gen_random_uuid(), '{}'::jsonb, 'FAILED', 'NONE', now(), now()
               FROM generate_series(1, 100000)""",
            [hub.tenant_id],
        )
        cursor.execute(
            """INSERT INTO integrations_synclog (integration_id, tenant_id, provider, direction, object_type, record_id,
                   operation, status, error_category, error_field, error_message, endpoint, attempt,
                   rate_limit_headers, request_excerpt, response_excerpt, created_at)
               SELECT %s, %s, 'hubspot', 'push', 'contacts', r.id, 'create', 'FAILED', 'provider_5xx', '', '', '', 1,
                   '{}'::jsonb, '', '', now() - (r.id || ' seconds')::interval
               FROM integrations_record r WHERE r.tenant_id = %s""",
            [hub.pk, hub.tenant_id, hub.tenant_id],
        )
        cursor.execute("ANALYZE integrations_synclog")
    one = SyncLog.objects.values_list("pk", flat=True).first()
    client.force_login(operator)
    with CaptureQueriesContext(connection) as queries:
        response = act(
            client, SYNCLOGS, "retry_failed_logs", [one], query="?status__exact=FAILED", select_across="1"
        )
    assert response.status_code == 200
    assert len(queries) < 40, len(queries)
    assert SyncLog.objects.filter(status="FAILED").count() == 100_000  # the background chunks do the work
    operation = BulkOperation.objects.get()
    assert (operation.total, operation.status) == (100_000, "queued")
    assert SyncLog.objects.filter(status="RETRYING").count() == 0
    # The first background chunk, as a worker would run it.
    assert bulk.run_chunk(operation.pk) is True
    operation.refresh_from_db()
    assert (operation.done, operation.changed, operation.status) == (bulk.CHUNK, bulk.CHUNK, "running")
    assert operation.created_at <= timezone.now()


def test_verify_sync_in_the_console_lists_pending_pushes_and_records_never_created(client, operator, sandbox):
    """Walked on make demo: the result said "pending: 3" but listed none, showed Python's None for the records
    never created at the provider ("Remote ID None", "(record) (None)"), and said "0 rows changed" for a check."""
    from integrations.models import Record

    integration = connect(sandbox, "hubspot")
    [waiting, _] = local_records(integration, 2, title="Engineer")
    run.sync_integration(integration.pk, pull=False)
    sandbox.control("hubspot", reject={"field": "email", "contains": "@never"})
    [never] = local_records(integration, 1, email="x@never.example")
    run.sync_integration(integration.pk, pull=False)  # refused: FAILED, not at HubSpot
    waiting = Record.objects.get(pk=waiting.pk)
    waiting.payload = {**waiting.payload, "title": "Edited, not pushed yet"}
    waiting.save()
    client.force_login(operator)

    page = act(client, INTEGRATIONS, "verify_sync", [integration.pk], sample_size="20").content.decode()

    assert "0 rows changed" not in page and "None" not in page
    assert "of which 1 record never created at the provider" in page
    assert "<td>the whole record</td><td>exists here</td><td>never created at the provider</td>" in page
    assert f'<a href="/admin/integrations/record/{never.pk}/change/">#{never.pk}</a>' in page
    assert "Pending push" in page
    assert f'<a href="/admin/integrations/record/{waiting.pk}/change/">#{waiting.pk}</a>' in page
