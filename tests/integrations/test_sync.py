"""The sync engine against the sandbox provider over real HTTP: pushes, pulls, tokens, faults, idempotence."""

from datetime import timedelta

import pytest
from django.utils import timezone

from integrations.engine import calls, push, run
from integrations.models import Integration, Record, RecordLink, SyncLog
from tests.support import factories
from tests.support.sync import CRM_ATS, connect, external_id, local_records, local_view, remote_view

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("provider", CRM_ATS)
def test_push_and_pull_leave_sandbox_and_local_records_equal(sandbox, provider):
    integration = connect(sandbox, provider)
    records = local_records(integration, 3)
    summary = run.sync_integration(integration.pk, pull=False)
    assert (summary.pushed, summary.failed) == (3, 0)
    assert remote_view(sandbox, integration) == local_view(integration)
    assert SyncLog.objects.filter(integration=integration, status="SUCCESS", direction="push").count() == 3

    # The provider changes one of ours and gains a new one; a pull brings both home.
    remote = sandbox.records(provider, integration.tenant.slug)
    first = next(r for r in remote if external_id(r) == str(records[0].external_id))
    title_field = {
        "hubspot": "jobtitle",
        "salesforce": "Title",
        "greenhouse": "title",
        "lever": "headline",
        "workday": "email",
    }[provider]
    new_value = "changed@example.com" if provider == "workday" else "Head of Talent"
    sandbox.update_record(provider, first["id"], {title_field: new_value})
    extra = {
        "hubspot": {"email": "new@example.com", "firstname": "New", "lastname": "Person"},
        "salesforce": {"Email": "new@example.com", "FirstName": "New", "LastName": "Person"},
        "greenhouse": {"first_name": "New", "last_name": "Person", "email": "new@example.com"},
        "lever": {"name": "New Person", "email": "new@example.com"},
        "workday": {"firstName": "New", "lastName": "Person", "email": "new@example.com"},
    }[provider]
    sandbox.create_record(provider, integration.tenant.slug, extra)
    Integration.objects.filter(pk=integration.pk).update(last_polled_at=timezone.now() - timedelta(minutes=1))
    summary = run.sync_integration(integration.pk, pull=True)
    assert summary.pulled["created"] == 1 and summary.pulled["updated"] >= 1
    assert Record.objects.filter(tenant=integration.tenant).count() == 4
    local = {r.payload.get("email"): r for r in Record.objects.filter(tenant=integration.tenant)}
    assert "new@example.com" in local
    records[0].refresh_from_db()
    changed_local = "title" if provider not in ("workday",) else "email"
    assert records[0].payload[changed_local] == new_value
    # Pulled changes are not pushed back: nothing is pending afterwards.
    assert not push.pending_records(integration).exists()
    assert len(sandbox.records(provider, integration.tenant.slug)) == 4


def test_expired_access_token_is_refreshed_and_the_sync_succeeds(sandbox):
    integration = connect(sandbox, "hubspot")
    before = integration.last_refreshed_at
    local_records(integration, 1)
    sandbox.control("hubspot", expire_tokens=True)
    summary = run.sync_integration(integration.pk, pull=False)
    assert summary.pushed == 1
    integration.refresh_from_db()
    assert integration.last_refreshed_at and integration.last_refreshed_at != before
    assert integration.status == "connected"
    assert SyncLog.objects.filter(
        integration=integration, operation="refresh_token", status="SUCCESS"
    ).exists()


def test_revoked_refresh_token_marks_needs_reauth_and_stops_calling(sandbox):
    integration = connect(sandbox, "lever")
    local_records(integration, 5)
    sandbox.control("lever", expire_tokens=True, revoke_refresh_tokens=True)
    summary = run.sync_integration(integration.pk, pull=False)
    integration.refresh_from_db()
    assert integration.status == "needs_reauth"
    assert summary.pushed == 0 and summary.reason.startswith("stopped")
    calls = len(sandbox.requests("lever", integration.tenant.slug))
    again = run.sync_integration(integration.pk)
    assert not again.ran
    assert len(sandbox.requests("lever", integration.tenant.slug)) == calls
    refresh = SyncLog.objects.get(integration=integration, operation="refresh_token")
    assert refresh.status == "FAILED" and refresh.error_category == "auth_refresh_failed"


def test_rejected_field_fails_at_once_naming_the_field_without_retry(sandbox):
    integration = connect(sandbox, "greenhouse")
    good, bad = local_records(integration, 1)[0], local_records(integration, 1, email="x@bad.example")[0]
    sandbox.control("greenhouse", reject={"field": "email", "contains": "@bad"})
    summary = run.sync_integration(integration.pk, pull=False)
    assert (summary.pushed, summary.failed, summary.retrying) == (1, 1, 0)
    failed = SyncLog.objects.get(record=bad)
    assert failed.status == "FAILED" and failed.error_category in ("validation", "missing_field")
    assert failed.error_field == "email" and failed.next_attempt_at is None and failed.http_status == 422
    bad.refresh_from_db()
    assert bad.crm_sync_status == "FAILED"
    assert not push.pending_records(integration).exists()  # no retry until the record changes
    assert SyncLog.objects.get(record=good).status == "SUCCESS"


def test_provider_down_then_up_loses_no_record_and_duplicates_none(sandbox):
    integration = connect(sandbox, "hubspot")
    records = local_records(integration, 6)
    sandbox.control("hubspot", mode="down")
    summary = run.sync_integration(integration.pk, pull=False)
    # HubSpot takes batches: the six records went in one call, which failed as a whole (issue 12).
    assert summary.retrying == 6 and summary.pushed == 0
    integration.refresh_from_db()
    assert integration.status == "error"
    retrying = SyncLog.objects.filter(status="RETRYING")
    assert all(r.next_attempt_at > timezone.now() for r in retrying)
    sandbox.control("hubspot", mode="ok")
    for _ in range(5):
        SyncLog.objects.awaiting_retry().update(next_attempt_at=timezone.now())
        if not run.sync_integration(integration.pk, pull=False).more:
            break
    remote = sandbox.records("hubspot", integration.tenant.slug)
    assert sorted(external_id(r) for r in remote) == sorted(str(r.external_id) for r in records)
    integration.refresh_from_db()
    assert integration.status == "connected"
    assert not SyncLog.objects.awaiting_retry().exists()
    assert not SyncLog.objects.filter(status="RUNNING").exists()
    # One attempt, one row: each failed attempt is still there, and its retry points at it.
    failed = SyncLog.objects.filter(status="RETRYING", error_category="provider_5xx")
    assert failed.count() >= 6
    assert all(row.retries.exists() for row in failed)


def test_a_repeated_push_adopts_the_remote_record_instead_of_duplicating(sandbox):
    integration = connect(sandbox, "hubspot")
    record = local_records(integration, 1)[0]
    run.sync_integration(integration.pk, pull=False)
    # The worker died after the provider created the record but before we stored its id.
    RecordLink.objects.filter(record=record).update(remote_id="", synced_at=None)
    summary = run.sync_integration(integration.pk, pull=False)
    assert summary.pushed == 1
    assert len(sandbox.records("hubspot", integration.tenant.slug)) == 1
    assert RecordLink.objects.get(record=record).remote_id


def test_paused_integration_makes_no_call(sandbox, operator):
    from integrations import services

    integration = connect(sandbox, "greenhouse")
    local_records(integration, 2)
    services.integration_pause(integrations=integration, actor=operator, reason="quota")
    assert not run.sync_integration(integration.pk).ran
    assert sandbox.requests("greenhouse", integration.tenant.slug) == []


def test_backoff_grows_with_jitter_and_honours_retry_after():
    import random

    rng = random.Random(1)
    delays = [calls.backoff_seconds(n, rng=rng) for n in range(1, 8)]
    assert all(1 <= d <= 2 for d in delays[:1]) and delays[-1] > delays[0] * 10
    assert calls.backoff_seconds(1, 120.0, rng=rng) == 120.0
    assert calls.backoff_seconds(30, rng=rng) <= calls.BACKOFF_CAP_SECONDS


def test_enrichment_fills_in_what_the_provider_knows_and_defers_on_error(sandbox):
    integration = connect(sandbox, "clearbit")
    known = factories.record(tenant=integration.tenant, kind="claim", email="ada@example.com")
    unknown = factories.record(tenant=integration.tenant, kind="claim", email="nobody@example.com")
    Record.objects.update(enrichment_status="PENDING")
    sandbox.create_record(
        "clearbit",
        integration.tenant.slug,
        {
            "email": "ada@example.com",
            "name": "Ada Lovelace",
            "company": "Analytical Engines",
            "title": "Engineer",
        },
    )
    summary = run.sync_integration(integration.pk)
    assert summary.pushed == 2 and summary.failed == 0
    known.refresh_from_db()
    unknown.refresh_from_db()
    assert (
        known.enrichment_status == "ENRICHED"
        and known.payload["enrichment"]["company"] == "Analytical Engines"
    )
    assert unknown.enrichment_status == "ENRICHED" and unknown.payload["enrichment"] == {}

    later = factories.record(tenant=integration.tenant, kind="claim", email="grace@example.com")
    Record.objects.filter(pk=later.pk).update(enrichment_status="PENDING")
    Integration.objects.filter(pk=integration.pk).update(enrichment_defer_on_error=True)
    sandbox.control("clearbit", mode="down")
    run.sync_integration(integration.pk)
    later.refresh_from_db()
    assert later.enrichment_status == "DEFERRED"
    assert SyncLog.objects.get(record=later).status == "RETRYING"


def test_a_run_that_died_holding_its_lease_is_due_again_once_the_lease_lapses(sandbox):
    """Issue 16: a killed worker's integration stalled for the whole 90 s lease, and nothing restarted it after."""
    from integrations.engine import dispatch

    integration = connect(sandbox, "greenhouse", mode="webhook")  # not due for a poll
    local_records(integration, 2)
    now = timezone.now()
    Integration.objects.filter(pk=integration.pk).update(
        sync_lease_owner="dead-worker", sync_lease_until=now + timedelta(seconds=5)
    )
    assert integration.pk not in dispatch.due_integration_ids(now)  # the run may still be alive
    assert integration.pk in dispatch.due_integration_ids(now + timedelta(seconds=6))  # it was not: due again
    Integration.objects.filter(pk=integration.pk).update(
        sync_lease_until=now - timedelta(seconds=1)
    )  # lapsed
    summary = run.sync_integration(integration.pk)
    assert summary.ran and summary.pushed == 2
