"""Issue 12, part 0: one attempt, one sync-log row; rate limits without a reset time; failed polls back off.

- "Retry" overwrote the failed sync-log row as SUCCESS (log 3526: "422 validation/email" became SUCCESS, its
  error fields emptied), and the tracker's checks then contradicted the rollups.
- One Salesforce 403 REQUEST_LIMIT_EXCEEDED parked every retry 24 hours out, and nothing cleared it.
- A failed poll was repeated every 5 s (last_polled_at moves only on success).
"""

from datetime import timedelta

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from dashboard.selectors import dashboard
from incidents.checklist import checks
from incidents.models import Incident
from integrations import services
from integrations.access.actors import System
from integrations.engine import dispatch, run
from integrations.engine.quota import NO_RESET_BACKOFF_CAP_SECONDS, provider_quota
from integrations.models import AuditEvent, Integration, SyncLog
from integrations.selectors import rates
from tests.support.sync import connect, external_id, local_records

pytestmark = pytest.mark.django_db

OPERATOR = System("test-operator")


def _make_due():
    SyncLog.objects.awaiting_retry().update(next_attempt_at=timezone.now() - timedelta(seconds=1))


def _make_due_keeping_its_wait(row):
    """As if its wait had passed: its finish and due times moved back together."""
    from django.db.models import F

    back = row.next_attempt_at - timezone.now() + timedelta(seconds=1)
    SyncLog.objects.filter(pk=row.pk).update(
        next_attempt_at=F("next_attempt_at") - back, finished_at=F("finished_at") - back
    )


def test_a_retry_is_a_new_row_and_the_failed_attempt_keeps_its_outcome(sandbox):
    integration = connect(sandbox, "hubspot")
    [record] = local_records(integration, 1)
    sandbox.control("hubspot", mode="down")
    run.sync_integration(integration.pk, pull=False)
    [failed] = SyncLog.objects.filter(record=record)
    assert (failed.status, failed.error_category) == ("RETRYING", "provider_5xx")
    before = (
        failed.status,
        failed.error_category,
        failed.error_message,
        failed.http_status,
        failed.finished_at,
    )

    sandbox.control("hubspot", mode="ok")
    _make_due()
    run.sync_integration(integration.pk, pull=False)

    first, retry = SyncLog.objects.filter(record=record).order_by("pk")
    assert first.pk == failed.pk
    assert (
        first.status,
        first.error_category,
        first.error_message,
        first.http_status,
        first.finished_at,
    ) == (before)
    assert first.next_attempt_at is None  # retried once: no longer due
    assert (retry.status, retry.retry_of_id, retry.attempt) == ("SUCCESS", first.pk, 2)
    # Nothing is left to retry, and a second run retries nothing again.
    assert not SyncLog.objects.awaiting_retry().exists()
    run.sync_integration(integration.pk, pull=False)
    assert SyncLog.objects.filter(record=record).count() == 2


def test_rollups_checks_and_dashboard_count_the_same_attempts(sandbox):
    """Log 3526's story: failures, a transient outage, Retry failed, then successes. The tracker's checks, the
    rollups and the dashboard must all say the same "n errors of m attempts"."""
    integration = connect(sandbox, "greenhouse")
    bad = local_records(integration, 1, email="x@bad.example") + local_records(
        integration, 1, email="y@bad.example"
    )
    local_records(integration, 3)
    sandbox.control("greenhouse", reject={"field": "email", "contains": "@bad"})
    run.sync_integration(integration.pk, pull=False)  # 2 validation failures, 3 successes
    sandbox.control("greenhouse", reject=None, mode="down")
    more = local_records(integration, 2)
    run.sync_integration(integration.pk, pull=False)  # 2 transient failures
    sandbox.control("greenhouse", mode="ok")
    services.sync_logs_retry_failed(logs=SyncLog.objects.filter(provider="greenhouse"), actor=OPERATOR)
    _make_due()
    run.sync_integration(integration.pk, pull=False)  # 2 retried validation + 2 retried transient succeed

    remote = {external_id(r) for r in sandbox.records("greenhouse", integration.tenant.slug)}
    assert {str(r.external_id) for r in bad + more} <= remote
    rolled = rates.error_rates(minutes=15)["greenhouse"]
    assert (rolled.calls, rolled.errors) == (11, 4)

    incident = Incident.objects.create(
        provider="greenhouse", runbook="RB-04", title="t", severity="SEV-3", detected_by="test"
    )
    incident.affected_tenants.add(integration.tenant)
    Incident.objects.filter(pk=incident.pk).update(started_at=timezone.now() - timedelta(hours=1))
    incident.refresh_from_db()
    breakdown = checks.error_breakdown(incident).evidence
    assert breakdown.startswith(f"{rolled.errors} errors of {rolled.calls} attempts")
    restored = checks.success_rate_restored(incident).evidence
    assert restored.startswith(f"{rolled.calls - rolled.errors} of {rolled.calls} attempts succeeded")
    [health] = [p for p in dashboard(provider="greenhouse").providers if p.slug == "greenhouse"]
    assert (health.calls_15m, health.errors_15m) == (rolled.calls, rolled.errors)
    # The failure history is all there: every failed attempt kept its error, each has one retry.
    failed = SyncLog.objects.filter(provider="greenhouse").exclude(error_category="")
    assert failed.count() == 4 and all(row.retries.count() == 1 for row in failed)
    assert checks.retry_succeeded(incident).passed


def _rate_limited_salesforce(sandbox):
    integration = connect(sandbox, "salesforce")
    local_records(integration, 1)
    # The org's daily limit is hit: the 2nd call gets 403 REQUEST_LIMIT_EXCEEDED, with no reset time.
    sandbox.control("salesforce", rate_limit=1, window=86400)
    run.sync_integration(integration.pk, pull=False)
    local_records(integration, 2)
    run.sync_integration(integration.pk, pull=False)  # one batch call of two records: refused
    return integration


def test_a_rate_limit_without_a_reset_time_blocks_briefly_not_the_catalogues_day(sandbox):
    integration = _rate_limited_salesforce(sandbox)
    try:
        blocked = provider_quota().blocked_for("salesforce")
        parked = SyncLog.objects.awaiting_retry().filter(
            integration=integration, error_category="rate_limited"
        )
        assert parked.exists()
        assert 0 < blocked <= NO_RESET_BACKOFF_CAP_SECONDS
        latest = max(row.next_attempt_at for row in parked)
        assert latest <= timezone.now() + timedelta(minutes=20)  # not 24 hours
        # Shown on the dashboard, where the provider's headroom is.
        [health] = [p for p in dashboard(provider="salesforce").providers if p.slug == "salesforce"]
        assert health.quota_blocked_for > 0
        # A second such answer in a row doubles the block (a growing backoff), still capped at minutes.
        provider_quota().unblock("salesforce")
        first = provider_quota().block_without_reset("salesforce")
        second = provider_quota().block_without_reset("salesforce")
        assert first < second <= NO_RESET_BACKOFF_CAP_SECONDS
    finally:
        provider_quota().reset("salesforce")


def test_quota_is_back_clears_the_block_and_makes_the_parked_retries_due(sandbox):
    integration = _rate_limited_salesforce(sandbox)
    try:
        parked = list(
            SyncLog.objects.awaiting_retry()
            .filter(integration=integration, error_category="rate_limited")
            .values_list("pk", flat=True)
        )
        SyncLog.objects.filter(pk__in=parked).update(next_attempt_at=timezone.now() + timedelta(hours=24))
        assert provider_quota().blocked_for("salesforce") > 0

        result = services.provider_quota_restore(provider="salesforce", actor=OPERATOR)

        assert result.changed == len(parked) > 0
        assert provider_quota().blocked_for("salesforce") == 0
        assert all(
            row.next_attempt_at <= timezone.now() and row.status == "RETRYING"
            for row in SyncLog.objects.filter(pk__in=parked)
        )
        event = AuditEvent.objects.get(action="provider.quota_restore")
        assert (event.provider, event.details["changed"], event.actor) == (
            "salesforce",
            len(parked),
            "system:test-operator",
        )
        sandbox.control("salesforce", rate_limit=None)
        run.sync_integration(integration.pk, pull=False)
        assert not SyncLog.objects.awaiting_retry().filter(integration=integration).exists()
    finally:
        provider_quota().reset("salesforce")


def test_restore_quota_command_and_its_refusal(sandbox, capsys):
    call_command("restore_quota", "--provider", "hubspot")
    assert "Quota is back for hubspot" in capsys.readouterr().out
    with pytest.raises(CommandError):
        call_command("restore_quota", "--provider", "nope")
    assert AuditEvent.objects.filter(action="provider.quota_restore").count() == 1


def test_a_failed_poll_backs_off_like_a_failed_push(sandbox):
    integration = connect(sandbox, "hubspot", mode="polling")
    sandbox.control("hubspot", mode="down")
    run.sync_integration(integration.pk)
    integration.refresh_from_db()
    assert integration.poll_failures == 1 and integration.poll_retry_at > timezone.now()
    assert integration.pk not in dispatch.due_integration_ids()
    calls = len(sandbox.requests("hubspot"))
    run.sync_integration(integration.pk)  # a run started for pushes does not poll during the backoff
    assert len(sandbox.requests("hubspot")) == calls

    sandbox.control("hubspot", mode="ok")
    Integration.objects.filter(pk=integration.pk).update(poll_retry_at=timezone.now() - timedelta(seconds=1))
    assert integration.pk in dispatch.due_integration_ids()
    run.sync_integration(integration.pk)
    integration.refresh_from_db()
    assert (integration.poll_failures, integration.poll_retry_at) == (0, None)
    assert integration.last_polled_at is not None


@pytest.mark.parametrize("provider", ["salesforce", "greenhouse"], ids=["batch", "one-call"])
def test_waiting_for_the_quota_never_gives_a_record_up(sandbox, provider, monkeypatch):
    """Walked on make demo: Salesforce at 1 call an hour. Four edited records were FAILED within 8 minutes and
    never reached Salesforce: waits for the quota that made no request counted as attempts, and after 8 of them
    the record was given up. A manual retry during the block failed at once, without calling the provider.
    Second read: the waits must not use up the record's attempts either, nor come back every second."""
    from integrations.engine import calls
    from integrations.engine.push import MAX_ATTEMPTS
    from integrations.models import Record

    monkeypatch.setattr(calls, "QUOTA_WAIT_SECONDS", 0.2)  # how long a run waits for the quota before parking
    integration = connect(sandbox, provider)
    [record] = local_records(integration, 1)

    def latest():
        return SyncLog.objects.filter(integration=integration).order_by("-pk").first()

    try:
        provider_quota().observe(provider, retry_after=1)
        run.sync_integration(integration.pk, pull=False)
        first = latest()
        assert (first.status, first.http_status, first.endpoint) == ("RETRYING", None, "")  # no request made
        assert "no request" in first.error_message
        SyncLog.objects.filter(pk=first.pk).update(attempt=MAX_ATTEMPTS - 1)  # one attempt left
        first_wait = (first.next_attempt_at - first.finished_at).total_seconds()
        for _ in range(3):  # three more waits: none uses the last attempt, each waits longer
            provider_quota().observe(provider, retry_after=1)
            _make_due_keeping_its_wait(latest())
            run.sync_integration(integration.pk, pull=False)
            wait = latest()
            assert (wait.status, wait.attempt) == ("RETRYING", MAX_ATTEMPTS - 1), wait.error_message
            assert (wait.next_attempt_at - wait.finished_at).total_seconds() >= 2 * first_wait - 1
            first_wait = (wait.next_attempt_at - wait.finished_at).total_seconds()
        assert Record.objects.get(pk=record.pk).crm_sync_status != "FAILED"

        provider_quota().unblock(provider)
        sandbox.control(provider, mode="down")  # the quota is back, the provider fails once: still retried
        _make_due()
        run.sync_integration(integration.pk, pull=False)
        # The first call after the waits is the attempt the waits were holding: number 41 of 42, retried.
        assert (latest().status, latest().attempt) == ("RETRYING", MAX_ATTEMPTS - 1), latest().error_message
        sandbox.control(provider, mode="ok")
        _make_due()
        run.sync_integration(integration.pk, pull=False)
        assert latest().status == "SUCCESS"
        assert len(sandbox.records(provider, integration.tenant.slug)) == 1
    finally:
        provider_quota().reset(provider)


def test_a_provider_outage_of_hours_does_not_give_a_record_up(sandbox):
    """Walked on make demo: HubSpot down for 7 minutes left edited records FAILED (8 attempts in about 4 minutes
    at the default 2 s base), and nothing pushed them when HubSpot came back. The retry schedule of a transient
    failure now spans hours before a record is given up to an operator's Retry failed."""
    from integrations.engine.calls import BACKOFF_CAP_SECONDS
    from integrations.engine.push import MAX_ATTEMPTS

    base = 2.0  # SYNC_BACKOFF_BASE_SECONDS's default
    # The shortest schedule equal jitter allows: half of each attempt's ceiling.
    shortest = sum(min(BACKOFF_CAP_SECONDS, base * 2 ** (n - 1)) / 2 for n in range(1, MAX_ATTEMPTS))
    assert shortest >= 4 * 3600
    # And the engine keeps to it: attempt 9 (past the old limit) and the last but one are retried, the last not.
    integration = connect(sandbox, "greenhouse")
    local_records(integration, 1)
    sandbox.control("greenhouse", mode="down")
    run.sync_integration(integration.pk, pull=False)
    outcomes = []
    for attempt in (9, MAX_ATTEMPTS - 1, MAX_ATTEMPTS):
        row = SyncLog.objects.filter(integration=integration).order_by("-pk").first()
        SyncLog.objects.filter(pk=row.pk).update(attempt=attempt - 1)
        _make_due()
        run.sync_integration(integration.pk, pull=False)
        row = SyncLog.objects.filter(integration=integration).order_by("-pk").first()
        outcomes.append((row.attempt, row.status))
    assert outcomes == [(9, "RETRYING"), (MAX_ATTEMPTS - 1, "RETRYING"), (MAX_ATTEMPTS, "FAILED")]


def test_a_failing_poll_is_never_tried_more_often_than_its_interval(sandbox):
    """Walked on make demo: HubSpot polled every 5 minutes and down: six polls in 80 seconds. The backoff began at
    2 s and grew, but a failing provider was polled far more often than a healthy one."""
    integration = connect(sandbox, "hubspot", mode="polling")
    Integration.objects.filter(pk=integration.pk).update(poll_interval=timedelta(minutes=5))
    sandbox.control("hubspot", mode="down")
    started = timezone.now()
    run.sync_integration(integration.pk)
    integration.refresh_from_db()
    assert integration.poll_failures == 1
    assert integration.poll_retry_at >= started + timedelta(minutes=5)


def test_restore_quota_refuses_when_it_cannot_reach_the_workers_quota(sandbox, settings):
    """Walked on make demo: `manage.py restore_quota` from a shell printed "block cleared" and wrote its audit
    event, while the workers' block went on ("calls held back 176s"): the shell counted the quota in its own
    memory (no CELERY_BROKER_URL in its environment), not in the workers' Redis."""
    from lineup_ops.celery import app

    settings.RATE_LIMIT_STORAGE_URL = "memory://"  # a shell without CELERY_BROKER_URL in its environment
    app.conf.task_always_eager = False  # the work runs in workers, other processes
    with pytest.raises(CommandError, match="RATE_LIMIT_STORAGE_URL"):
        call_command("restore_quota", "--provider", "salesforce")
    assert not AuditEvent.objects.filter(action="provider.quota_restore").exists()


def test_a_webhooks_fetches_are_attempts_the_sync_log_shows_as_the_rollups_count_them(sandbox):
    """Walked on make demo: HubSpot's "/crm/v3/objects/contacts/{id} 23" on the dashboard opened 0 sync logs, and
    the 15-minute figures were above the rows they link to: processing a webhook counted its fetches in the sync
    rollups (the error rates, issue 14) but wrote no sync-log row for them."""
    from integrations.engine.webhooks import process_webhook
    from integrations.models import RecordLink, WebhookDelivery

    integration = connect(sandbox, "hubspot", mode="webhook")
    [record] = local_records(integration, 1, company="Acme")
    run.sync_integration(integration.pk, pull=False)
    remote_id = RecordLink.objects.get(record=record).remote_id
    sandbox.update_record("hubspot", remote_id, {"company": "Theirs"})
    ok = WebhookDelivery.objects.create(
        integration=integration, provider="hubspot", event_id="e-ok", payload={"remote_ids": [remote_id]}
    )
    process_webhook(ok.pk)
    sandbox.control("hubspot", mode="down")
    down = WebhookDelivery.objects.create(
        integration=integration, provider="hubspot", event_id="e-down", payload={"remote_ids": [remote_id]}
    )
    process_webhook(down.pk)

    fetches = SyncLog.objects.filter(integration=integration, direction="pull", operation="fetch")
    assert sorted(fetches.values_list("status", "record_id")) == [
        ("FAILED", record.pk),
        ("SUCCESS", record.pk),
    ]
    assert all("/crm/v3/objects/contacts/" in row.endpoint and row.counted for row in fetches)
    rolled = rates.error_rates(minutes=15)["hubspot"]
    counted = SyncLog.objects.filter(provider="hubspot", counted=True)
    assert (rolled.calls, rolled.errors) == (counted.count(), counted.exclude(status="SUCCESS").count())
    [health] = [p for p in dashboard(provider="hubspot").providers if p.slug == "hubspot"]
    assert (health.calls_15m, health.errors_15m) == (rolled.calls, rolled.errors)


def test_the_sync_log_page_links_an_attempt_to_its_retry_and_back(client):
    """Walked on make demo: a retry's page did not say which attempt it retried, nor a failed attempt's page
    which attempt retried it; the chain of one record's attempts could not be followed."""
    from django.urls import reverse

    from tests.support import factories

    integration = factories.integration(provider="greenhouse")
    record = factories.record(tenant=integration.tenant)
    failed = factories.sync_log(
        integration=integration, record=record, status="FAILED", error_category="validation"
    )
    retry = factories.sync_log(
        integration=integration, record=record, status="SUCCESS", retry_of=failed, attempt=2
    )
    client.force_login(factories.user("view", group=factories.VIEWER))

    def page(row):
        return client.get(reverse("admin:integrations_synclog_change", args=[row.pk])).content.decode()

    failed_url = reverse("admin:integrations_synclog_change", args=[failed.pk])
    retry_url = reverse("admin:integrations_synclog_change", args=[retry.pk])
    assert f'href="{failed_url}"' in page(retry) and "Retry of" in page(retry)
    assert f'href="{retry_url}"' in page(failed) and "Retried by" in page(failed)
    listed = client.get(reverse("admin:integrations_synclog_changelist") + "?retry=retried")
    assert [row.pk for row in listed.context["cl"].result_list] == [failed.pk]
