"""Issue 15: the tracker tells the truth. A step is done when its work is done, wherever it was done; undo acts by
effect; live checks untick; resolve and close rules."""

from datetime import timedelta

import pytest
from django.core.exceptions import PermissionDenied
from django.utils import timezone

from incidents import errors
from incidents.models import ChecklistItem, Notification, Postmortem
from incidents.services.checklist import (
    checklist_item_mark_done,
    checklist_item_run_action,
    checklist_item_skip,
    incident_evaluate_checks,
)
from incidents.services.communication import incident_escalate, notification_send
from incidents.services.opening import incident_open
from incidents.services.postmortem import postmortem_save
from incidents.services.status import incident_advance
from integrations import services
from integrations.access.actors import System
from integrations.models import Integration, Record, RecordLink, WebhookDelivery
from tests.support import factories
from tests.support.incidents import failing_logs

pytestmark = pytest.mark.django_db


def _open(provider, runbook, n=2, actor=None, **kw):
    tenants = [factories.tenant(slug=f"{provider}-{i}", name=f"T{i}") for i in range(n)]
    integrations = [factories.integration(tenant=t, provider=provider) for t in tenants]
    for i in integrations:
        failing_logs(i, 2)
    incident = incident_open(
        provider=provider,
        runbook=runbook,
        actor=actor or System("detection"),
        tenants=tenants,
        started_at=timezone.now() - timedelta(minutes=5),
        **kw,
    )
    return incident, integrations


def _item(incident, **kw) -> ChecklistItem:
    incident_evaluate_checks(incident=incident)
    return incident.checklist.filter(**kw).order_by("position").first()


# ------------------------------------------------------------------------------------------ 1. work done anywhere


def test_disabling_through_the_api_ticks_the_disable_step_and_names_who_how_when(operator):
    incident, integrations = _open("salesforce", "RB-01")
    token, _ = factories.api_token(name="runbook-curl")
    services.integration_disable(integrations=integrations[0], actor=token, reason="cascading failures")
    item = _item(incident, action="disable_integration")
    assert item.done and item.done_by == "token:runbook-curl"
    assert "(API)" in item.done_evidence and "Disable by token:runbook-curl" in item.done_evidence


def test_a_command_queuing_webhook_retries_ticks_its_step(operator):
    incident, integrations = _open("hubspot", "RB-09")
    WebhookDelivery.objects.create(
        integration=integrations[0], provider="hubspot", event_id="e1", status="FAILED"
    )
    services.webhooks_queue_retries(provider="hubspot", actor=System("cli"), max_retries=10)
    item = _item(incident, action="queue_webhook_retries")
    assert item.done and "(command)" in item.done_evidence


@pytest.mark.parametrize("actor", ["", "operator"])
def test_the_real_command_is_named_a_command_with_or_without_actor(operator, actor):
    """Commands act as system:cli:<os user> (or '... as <console user>'): "(command)", not "automatic"."""
    from io import StringIO

    from django.core.management import call_command

    incident, integrations = _open("hubspot", "RB-09")
    WebhookDelivery.objects.create(
        integration=integrations[0], provider="hubspot", event_id="e1", status="FAILED"
    )
    args = ["queue_webhook_retries", "--provider", "hubspot"] + (["--actor", actor] if actor else [])
    call_command(*args, stdout=StringIO())
    item = _item(incident, action="queue_webhook_retries")
    assert item.done and "(command)" in item.done_evidence, item.done_evidence
    assert "automatic" not in item.done_evidence


def test_an_action_that_changed_nothing_does_not_tick_its_step(operator):
    incident, _ = _open("hubspot", "RB-09")
    outcome = checklist_item_run_action(
        incident=incident, item=incident.checklist.get(action="queue_webhook_retries"), actor=operator
    )
    assert outcome.details["changed"] == 0
    assert not _item(incident, action="queue_webhook_retries").done


def test_pause_non_critical_that_paused_nothing_does_not_tick(operator):
    incident, integrations = _open("hubspot", "RB-03")
    Integration.objects.update(is_critical=True)
    checklist_item_run_action(
        incident=incident, item=incident.checklist.get(action="pause_non_critical"), actor=operator
    )
    assert not _item(incident, action="pause_non_critical").done


def test_the_escalation_step_is_done_when_the_notification_was_sent(settings, operator):
    settings.ONCALL_INTEGRATIONS_EMAILS = ["oncall@example.com"]
    incident, _ = _open("hubspot", "RB-09")
    incident_escalate(incident=incident, actor=System("detection"))
    assert not _item(incident, action="escalate").done  # queued in the outbox is not sent
    for row in Notification.objects.filter(incident=incident, channel="email"):
        notification_send(notification_id=row.pk)
    assert Notification.objects.filter(incident=incident, channel="email", status="sent").exists()
    incident_evaluate_checks(incident=incident)  # the beat pass that re-reads the evidence
    item = _item(incident, action="escalate")
    assert item.done and "On-call notified" in item.done_evidence and "sent" in item.done_evidence


def test_the_sev2_escalation_step_is_not_ticked_by_a_sev3_page_and_says_it_is_not_required(
    settings, operator, client
):
    # Seen in the demo: at SEV-3, paging Integrations on-call also ticked "Escalation: SEV-2 ...: + Backend
    # on-call", with "On-call notified (integrations)" as its evidence; Backend on-call was never paged.
    settings.ONCALL_INTEGRATIONS_EMAILS = ["oncall@example.com"]
    settings.ONCALL_BACKEND_EMAILS = ["backend@example.com"]
    incident, _ = _open("hubspot", "RB-09")
    assert incident.severity == "SEV-3"
    incident_escalate(incident=incident, actor=System("detection"))
    for row in Notification.objects.filter(incident=incident, channel="email"):
        notification_send(notification_id=row.pk)
    sev3, sev2 = incident.checklist.filter(text__startswith="Escalation:").order_by("position")
    incident_evaluate_checks(incident=incident)
    sev3.refresh_from_db(), sev2.refresh_from_db()
    assert sev3.done and "integrations" in sev3.done_evidence
    assert not sev2.done
    client.force_login(operator)
    page = client.get(f"/admin/incidents/incident/{incident.pk}/tracker/").content.decode()
    assert "Not required at SEV-3" in page
    # At SEV-2 it is done once Backend on-call's page is sent.
    incident.severity = "SEV-2"
    incident.save(update_fields=["severity"])
    incident_escalate(incident=incident, actor=System("detection"))
    for row in Notification.objects.filter(incident=incident, channel="email", status="queued"):
        notification_send(notification_id=row.pk)
    incident_evaluate_checks(incident=incident)
    sev2.refresh_from_db()
    assert sev2.done and "backend" in sev2.done_evidence


@pytest.mark.parametrize("severity", ["SEV-3", "SEV-2"])
def test_each_escalation_step_is_done_only_by_its_own_page(settings, operator, severity):
    """RB-09's 'SEV-2: + Backend on-call' is not done by the integrations on-call page of a SEV-3 incident."""
    settings.ONCALL_INTEGRATIONS_EMAILS = ["oncall@example.com"]
    settings.ONCALL_BACKEND_EMAILS = ["backend@example.com"]
    incident, _ = _open("hubspot", "RB-09")
    incident.__class__.objects.filter(pk=incident.pk).update(severity=severity)
    incident.refresh_from_db()
    incident_escalate(incident=incident, actor=System("detection"))
    for row in Notification.objects.filter(incident=incident, channel="email"):
        notification_send(notification_id=row.pk)
    sev3 = _item(incident, text__startswith="Escalation: SEV-3")
    sev2 = _item(incident, text__startswith="Escalation: SEV-2")
    assert sev3.done and "integrations" in sev3.done_evidence
    assert "automatic (system:detection)" not in sev3.done_evidence  # who is named once
    if severity == "SEV-2":
        assert sev2.done and "backend" in sev2.done_evidence
    else:
        assert not sev2.done, sev2.done_evidence
        outcome = checklist_item_run_action(incident=incident, item=sev2, actor=operator)
        assert not outcome.ok and "SEV-3" in outcome.summary
        assert not _item(incident, text__startswith="Escalation: SEV-2").done


# ------------------------------------------------------------------------------------------ 2. undo by effect


def test_enable_acts_on_integrations_disabled_through_the_api_and_is_done_only_when_none_is_left(operator):
    incident, integrations = _open("salesforce", "RB-01")
    token, _ = factories.api_token()
    services.integration_disable(integrations=integrations[0], actor=token, reason="PATCH enabled=false")
    checklist_item_run_action(
        incident=incident, item=incident.checklist.get(action="disable_integration"), actor=operator
    )
    assert Integration.objects.filter(enabled=False).count() == 2
    incident_advance(incident=incident, actor=operator, to="contained")
    step = _item(incident, action="enable_integration")
    assert not step.done and "still disabled" in step.check_evidence
    checklist_item_run_action(incident=incident, item=step, actor=operator)
    assert not Integration.objects.filter(enabled=False).exists()
    assert _item(incident, action="enable_integration").done


def test_an_integration_disabled_before_the_incident_is_left_alone(operator):
    tenant = factories.tenant(slug="old")
    old = factories.integration(tenant=tenant, provider="salesforce", enabled=False)
    incident, _ = _open("salesforce", "RB-01")
    from incidents.selectors import disabled_during

    assert old not in disabled_during(incident)


def test_resume_acts_on_pauses_made_in_the_admin(operator):
    incident, integrations = _open("hubspot", "RB-03")
    services.integration_pause(integrations=integrations[1], actor=operator, reason="admin pause")
    incident_advance(incident=incident, actor=operator, to="contained")
    step = _item(incident, action="resume_paused")
    assert not step.done and "still paused" in step.check_evidence
    checklist_item_run_action(incident=incident, item=step, actor=operator)
    assert not Integration.objects.filter(sync_paused=True).exists()
    assert _item(incident, action="resume_paused").done


# ------------------------------------------------------------------------------------------ 3. live checks


def test_a_check_that_passed_and_fails_again_unticks_and_says_since_when(operator):
    incident, integrations = _open("salesforce", "RB-01")
    incident_advance(incident=incident, actor=operator, to="verifying")
    step = _item(incident, check_name="no_failed_records")
    assert step.done and step.phase == "post_incident"
    record = factories.record(tenant=integrations[0].tenant, kind="contact")
    Record.objects.filter(pk=record.pk).update(crm_sync_status="FAILED")
    step = _item(incident, check_name="no_failed_records")
    assert not step.done and step.failing_since is not None
    assert "fails again since" in step.done_evidence
    assert incident.events.filter(kind="reopened").exists()


def test_post_incident_checks_do_not_tick_during_the_outage(operator):
    incident, _ = _open("salesforce", "RB-01")
    step = _item(incident, check_name="no_failed_records")
    assert step.check_result == "pass" and not step.done


def test_each_postmortem_question_ticks_only_its_own_item(operator):
    incident, _ = _open("hubspot", "RB-09")
    postmortem_save(incident=incident, actor=operator, data={"multi_provider_strategy": "x"})
    assert not _item(incident, check_name="pm_multi_provider_strategy").done  # one keystroke is no answer
    postmortem_save(
        incident=incident, actor=operator, data={"multi_provider_strategy": "Not worth a second CRM."}
    )
    incident_advance(incident=incident, actor=operator, to="verifying", override_reason="")
    assert _item(incident, check_name="pm_multi_provider_strategy").done
    assert not _item(incident, check_name="pm_fallback_reliability").done
    assert not _item(incident, check_name="pm_local_caching").done


def test_success_rate_is_not_restored_during_a_total_outage(operator):
    incident, integrations = _open("hubspot", "RB-09")
    factories.sync_log(integration=integrations[0], status="SUCCESS", created_at=timezone.now())
    step = _item(incident, check_name="success_rate_restored")
    assert step.check_result == "fail"


def test_containment_undone_by_recovery_stays_done_and_is_not_shown_failing(operator):
    """RB-09 recovery 5 restores normal mode on purpose: "Switch to polling" was done, and still was."""
    incident, integrations = _open("hubspot", "RB-09")
    services.integrations_set_mode(integrations=Integration.objects.all(), actor=operator, mode="polling")
    polling = _item(incident, check_name="mode_polling")
    assert polling.done
    incident_advance(incident=incident, actor=operator, to="contained")
    services.integrations_set_mode(integrations=Integration.objects.all(), actor=operator, mode="webhook")
    assert not _item(incident, check_name="mode_polling").done  # contained: still live, undone too early
    services.integrations_set_mode(integrations=Integration.objects.all(), actor=operator, mode="polling")
    incident_advance(incident=incident, actor=operator, to="recovering")
    services.integrations_set_mode(integrations=Integration.objects.all(), actor=operator, mode="webhook")
    polling = _item(incident, check_name="mode_polling")
    assert polling.done and polling.failing_since is None and polling.check_result == "pass"
    assert not incident.events.filter(
        kind="reopened", details__check="mode_polling", at__gt=polling.done_at
    ).exists()


# ------------------------------------------------------------------------------------------ 4. resolve and close


def test_verification_includes_no_record_left_failed_or_never_created(operator):
    incident, integrations = _open("hubspot", "RB-09")
    record = factories.record(tenant=integrations[0].tenant, kind="contact")
    RecordLink.objects.create(record=record, integration=integrations[0], remote_id="")
    step = _item(incident, check_name="no_unsynced_records")
    assert step.phase == "verification" and step.check_result == "fail"
    assert "1 never created" in step.check_evidence
    with pytest.raises(errors.ServiceError, match="No record of the provider left failed"):
        incident_advance(incident=incident, actor=operator, to="resolved")


def test_close_needs_post_incident_items_done_or_skipped_with_a_reason(operator):
    incident, _ = _open("salesforce", "RB-01", severity="SEV-3")
    incident_advance(incident=incident, actor=operator, to="resolved", override_reason="drill")
    with pytest.raises(errors.ServiceError) as e:
        incident_advance(incident=incident, actor=operator, to="closed")
    assert e.value.code == "post_incident_open"
    item = incident.checklist.get(action="retry_failed")
    with pytest.raises(errors.ServiceError, match="reason"):
        checklist_item_skip(incident=incident, item=item, actor=operator, reason="")
    with pytest.raises(errors.ServiceError, match="Only post-incident"):
        checklist_item_skip(
            incident=incident,
            item=incident.checklist.get(action="disable_integration"),
            actor=operator,
            reason="x",
        )
    checklist_item_skip(incident=incident, item=item, actor=operator, reason="No failed logs to review.")
    incident_advance(incident=incident, actor=operator, to="closed")
    assert incident.events.filter(kind="skipped").exists()
    assert not Postmortem.objects.filter(incident=incident).exists()


def test_a_refused_attempt_goes_on_the_timeline(operator):
    incident, _ = _open("hubspot", "RB-09")
    with pytest.raises(PermissionDenied):
        checklist_item_run_action(
            incident=incident, item=incident.checklist.get(action="rotate_credentials"), actor=operator
        )
    refused = incident.events.get(kind="refused")
    assert "Rotate credentials" in refused.message and refused.actor == "operator"


def test_tenant_notices_are_written_for_tenants(operator, django_capture_on_commit_callbacks):
    from django.core import mail

    from incidents.models import TenantContact
    from incidents.services.communication import incident_notify_tenants

    incident, integrations = _open("hubspot", "RB-09")
    TenantContact.objects.create(tenant=integrations[0].tenant, email="ops@example.com")
    with django_capture_on_commit_callbacks(execute=True):
        incident_notify_tenants(incident=incident, actor=operator, next_update_minutes=30)
    body = mail.outbox[0].body
    assert "SEV-" not in body and "provider outage" not in body.lower() and "crm / docs" not in body.lower()
    assert "What is affected" in body and "Next update: by" in body


def test_clear_stale_defects_from_the_tracker_leaves_older_defects_alone(operator):
    from integrations.models import Defect

    incident, integrations = _open("hubspot", "RB-09")
    tenant = integrations[0].tenant
    old = Defect.objects.create(tenant=tenant, provider="hubspot", defect_type="STALE_CRM_SYNC")
    Defect.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(hours=2))
    new = Defect.objects.create(tenant=tenant, provider="hubspot", defect_type="STALE_CRM_SYNC")
    checklist_item_run_action(
        incident=incident, item=incident.checklist.get(action="clear_stale_defects"), actor=operator
    )
    old.refresh_from_db(), new.refresh_from_db()
    assert (old.status, new.status) == ("OPEN", "RESOLVED")


def test_evidence_of_automatic_work_names_its_actor_once():
    # Seen in the demo: "Refresh token by system:token-refresh (automatic (system:token-refresh)) at ...".
    from incidents.checklist.evidence import Evidence, how
    from integrations.models import AuditEvent

    row = AuditEvent(actor="system:token-refresh", actor_type="system", action="integration.refresh_token")
    text = str(Evidence(row.actor, how(row), timezone.now(), "Refresh token"))
    assert text.startswith("Refresh token by system:token-refresh (automatic) at ")


def test_a_group_step_is_done_by_its_sub_steps_and_cannot_be_ticked_by_hand(operator, client):
    # Seen in the demo: "Sync resumes" (a group of live checks, all failing) offered "Mark done".
    incident, _ = _open("hubspot", "RB-09")
    group = incident.checklist.get(text="Sync resumes")
    with pytest.raises(errors.ServiceError):
        checklist_item_mark_done(incident=incident, item=group, actor=operator)
    group.refresh_from_db()
    assert not group.done
    client.force_login(operator)
    page = client.get(f"/admin/incidents/incident/{incident.pk}/tracker/").content.decode()
    row = page[page.index(">Sync resumes<") :]
    row = row[: row.index("</tr>")]
    assert "Mark done" not in row and "done when its sub-steps are" in row


# ------------------------------------------------------------------------------------------ RB-02's own fixes


def _rb02_at_sandbox(sandbox, provider):
    from tests.support.sync import connect

    tenant = factories.tenant(slug=f"{provider}-acme", name="Acme")
    integration = connect(sandbox, provider, tenant)
    sandbox.control(provider, expire_tokens=True, revoke_refresh_tokens=True)
    services.integration_reconnect(integration=integration, actor=System("token-refresh"))
    incident = incident_open(
        provider=provider,
        runbook="RB-02",
        actor=System("detection"),
        tenants=[tenant],
        started_at=timezone.now() - timedelta(minutes=5),
    )
    assert not _item(incident, action="reconnect", skipped=False).done  # the failed refresh is no evidence
    return incident, integration


@pytest.mark.urls("tests.integrations.credential_test_urls")
def test_reauthorizing_at_the_consent_page_ticks_the_reauthorize_step(client, sandbox):
    from tests.support.credentials import consent, local, start

    incident, integration = _rb02_at_sandbox(sandbox, "hubspot")
    assert Integration.objects.get(pk=integration.pk).status == "needs_reauth"
    client.force_login(factories.user("credadmin", group=factories.ADMIN))
    assert client.get(local(consent(start(client, integration)))).status_code == 302
    assert Integration.objects.get(pk=integration.pk).status == "connected"
    item = _item(incident, action="reconnect")
    assert item.done and item.done_by == "credadmin", item.done_evidence
    assert "Re-authorize: consent granted by credadmin (admin)" in item.done_evidence


def test_a_new_api_key_that_works_ticks_the_step(sandbox):
    incident, integration = _rb02_at_sandbox(sandbox, "greenhouse")
    fresh = sandbox.credentials("greenhouse", integration.tenant.slug)["api_key"]
    admin = factories.user("credadmin", group=factories.ADMIN)
    services.integration_update_api_key(integration=integration, actor=admin, api_key=fresh)
    item = _item(incident, action="reconnect", skipped=False)  # "Verify API key is still valid"
    assert item.done and "by credadmin" in item.done_evidence, item.done_evidence


def test_post_incident_work_done_after_resolving_ticks_its_step(sandbox):
    """Post-incident work happens after resolution by its nature: it counts until the incident is closed."""
    from integrations.management.cli import cli_actor

    incident, integration = _rb02_at_sandbox(sandbox, "hubspot")
    Integration.objects.filter(pk=integration.pk).update(
        credentials=sandbox.credentials("hubspot", integration.tenant.slug)  # re-authorized
    )
    incident.__class__.objects.filter(pk=incident.pk).update(status="resolved", resolved_at=timezone.now())
    result = services.credentials_rotate(
        provider="hubspot", actor=cli_actor({}), store_in_vault=True, source="rotate_credentials"
    )
    assert result.details["n_refreshed"] == 1
    item = _item(incident, action="rotate_credentials")
    assert item.done and "(command)" in item.done_evidence, item.done_evidence


def test_rate_limit_evidence_lists_the_headers_in_words_not_a_python_dict(operator):
    incident, integrations = _open("hubspot", "RB-03")
    factories.sync_log(
        integration=integrations[0],
        rate_limit_headers={"X-HubSpot-RateLimit-Max": "100", "X-HubSpot-RateLimit-Remaining": "97"},
    )
    evidence = _item(incident, check_name="rate_limit_report").check_evidence
    assert "{" not in evidence and "'" not in evidence, evidence
    assert "X-HubSpot-RateLimit-Max: 100, X-HubSpot-RateLimit-Remaining: 97" in evidence


@pytest.mark.parametrize(
    ("provider", "not_for", "kept"),
    [
        (
            "hubspot",
            ("For API key providers", "Verify API key", "Update credentials"),
            "Navigate to Settings",
        ),
        ("greenhouse", ("For providers with refresh tokens", "Navigate to Settings"), "Verify API key"),
    ],
)
def test_rb02_steps_for_the_other_auth_type_are_not_this_incidents(provider, not_for, kept):
    """RB-02 has steps for OAuth providers and steps for API-key ones: an OAuth consent must not tick "Verify API
    key is still valid", and a HubSpot incident does not leave the API-key steps open."""
    incident, _ = _open(provider, "RB-02")
    incident_evaluate_checks(incident=incident)  # a skipped group is not "done: all its sub-steps are done"
    for text in not_for:
        item = incident.checklist.get(text__startswith=text)
        assert item.skipped and not item.done, text
        assert item.skip_reason.startswith(f"Not for {item.incident.get_provider_display()}"), (
            item.skip_reason
        )
    item = incident.checklist.get(text__startswith=kept)
    assert not item.skipped


def test_sync_success_words_tell_a_test_call_from_a_sync(operator):
    """'0 successful operations since 04:38:42; last success 04:38:54' read as a contradiction: the success was the
    Reconnect's test call, not a sync."""
    incident, integrations = _open("hubspot", "RB-02")
    Integration.objects.update(last_success_at=timezone.now(), last_error_at=None)
    evidence = _item(incident, check_name="sync_success").check_evidence
    assert evidence.startswith("0 successful syncs since") and "last successful call" in evidence, evidence


def test_a_step_whose_work_the_console_sees_cannot_be_ticked_by_hand(client, operator):
    """'Re-auth integration: refresh OAuth tokens' ticked by a click, with no token refreshed, was a box that
    ticked without its work."""
    from django.urls import reverse

    from incidents.services.checklist import checklist_item_mark_done

    incident, _ = _open("hubspot", "RB-09")
    item = incident.checklist.get(action="reconnect")
    with pytest.raises(errors.ServiceError):
        checklist_item_mark_done(incident=incident, item=item, actor=operator)
    assert not _item(incident, action="reconnect").done
    client.force_login(operator)
    page = client.get(reverse("admin:incidents_incident_tracker", args=[incident.pk])).content.decode()
    row = page[page.index(f'id="item-{item.pk}"') :]
    row = row[: row.index("</tr>")]
    assert "Mark done" not in row and "lo-run" in row
    # A person's step (no action, no check, no sub-steps) is still tickable.
    group = incident.checklist.get(text__startswith="Dashboard: ")
    checklist_item_mark_done(incident=incident, item=group, actor=operator)


def test_queue_depth_counts_the_retries_still_to_come_not_the_attempts_already_retried(operator):
    """Walked on make demo: the tracker said "70 sync retries waiting" for Salesforce when none was waiting; every
    attempt that had been retried keeps its RETRYING outcome (one attempt, one row), and the check counted them."""
    from incidents.checklist.checks import queue_report

    incident, [one, _] = _open("salesforce", "RB-03")
    record = factories.record(tenant=one.tenant)
    retried = factories.sync_log(integration=one, record=record, status="RETRYING", next_attempt_at=None)
    factories.sync_log(
        integration=one,
        record=record,
        status="RETRYING",
        retry_of=retried,
        next_attempt_at=timezone.now() + timedelta(minutes=1),
    )

    assert queue_report(incident).evidence.startswith("1 sync retries waiting"), queue_report(
        incident
    ).evidence
