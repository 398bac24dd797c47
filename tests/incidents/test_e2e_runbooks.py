"""End to end, per runbook, against the sandbox provider over real HTTP: drive the fault, sync, detect one incident
with the runbook, severity and tenants; run the checklist's containment and recovery actions; restore the sandbox;
see the verification checks pass by themselves; close only after the postmortem.

Time is moved rather than waited for: failing attempts are backdated past the 15-minute window, retries made due,
and the local quota limiter reset as if its window had passed. Every check is evaluated for real.
"""

from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone

from incidents import errors
from incidents.detection import rates
from incidents.models import STATUS_ORDER, ChecklistItem, Incident, TenantContact
from incidents.selectors import timeline
from incidents.services.checklist import (
    checklist_item_run_action,
    checklist_item_skip,
    incident_evaluate_checks,
)
from incidents.services.postmortem import postmortem_requirement, postmortem_save
from incidents.services.status import incident_acknowledge, incident_advance
from integrations.engine import calls, dispatch, webhooks
from integrations.engine import run as engine_run
from integrations.engine.quota import provider_quota
from integrations.models import AuditEvent, Defect, Integration, Record, SyncLog, WebhookDelivery
from tests.support import factories
from tests.support.incidents import backdate_errors
from tests.support.sync import connect, local_records

pytestmark = pytest.mark.django_db

COMPLETE_POSTMORTEM = {
    "root_cause": "The provider's API returned errors for 40 minutes.",
    "fallback_effective": "Yes: polling kept changes flowing.",
    "reconciliation_completeness": "Every record changed during the outage was reconciled; verify_sync clean.",
    "communication_timeliness": "Tenants were told within 10 minutes.",
    "multi_provider_strategy": "A second CRM is not worth it for this outage length.",
    "fallback_reliability": "Polling was reliable throughout the outage window.",
    "local_caching": "Cache provider lookups for read paths during outages.",
    "follow_ups": [{"item": "Alert on webhook lag", "owner": "integrations-oncall"}],
}


@pytest.fixture
def commander(db):
    """An Integrations admin: works incidents and may rotate credentials."""
    return factories.user("commander", group=factories.ADMIN)


def tenants_at(sandbox, provider, n=2, *, synced=3, **kw) -> list[Integration]:
    """n tenants connected to the provider at the sandbox, each with `synced` records already pushed."""
    out = []
    for i in range(n):
        tenant = factories.tenant(slug=f"{provider}-t{i}", name=f"{provider.title()} tenant {i}")
        TenantContact.objects.create(tenant=tenant, email=f"ops@{tenant.slug}.example.com")
        integration = connect(sandbox, provider, tenant, **kw)
        local_records(integration, synced)
        assert engine_run.sync_integration(integration.pk).pushed == synced
        out.append(integration)
    return out


def traffic(integrations, n=3) -> None:
    for integration in integrations:
        local_records(integration, n)
        engine_run.sync_integration(integration.pk)


def detect_one(runbook, severity, integrations) -> Incident:
    results = rates.detect()
    assert [(i.runbook, created) for i, created in results] == [(runbook, True)]
    incident = results[0][0]
    assert incident.severity == severity
    assert sorted(incident.affected_tenants.values_list("pk", flat=True)) == sorted(
        i.tenant_id for i in integrations
    )
    # A second pass during the same outage updates it.
    again = rates.detect()
    assert [(i.pk, created) for i, created in again] == [(incident.pk, False)]
    assert Incident.objects.filter(provider=incident.provider).count() == 1
    return Incident.objects.get(pk=incident.pk)


def run(incident, action, actor, **params):
    item = ChecklistItem.objects.filter(incident=incident, action=action).order_by("position").first()
    assert item is not None, f"{incident.runbook} has no {action} step"
    outcome = checklist_item_run_action(incident=incident, item=item, actor=actor, params=params)
    assert incident.events.filter(kind="action", details__action=action).exists()
    return outcome


def finish_retries(integrations) -> None:
    """The retry schedule comes due and the engine runs."""
    SyncLog.objects.awaiting_retry().update(next_attempt_at=timezone.now() - timedelta(seconds=1))
    for integration in integrations:
        for _ in range(3):
            if not engine_run.sync_integration(integration.pk).more:
                break


def verification(incident) -> dict[str, tuple[bool, str]]:
    incident_evaluate_checks(incident=incident)
    return {
        i.check_name: (i.done, i.check_result, i.check_evidence)
        for i in incident.checklist.filter(phase="verification").exclude(check_name="")
    }


def assert_verified(incident):
    rates.detect()  # beat's detection pass notes the recovery signal the verification checks read
    state = verification(incident)
    assert all(done and result == "pass" for done, result, _ in state.values()), state
    assert all(
        by.startswith("check:")
        for by in incident.checklist.filter(phase="verification")
        .exclude(check_name="")
        .values_list("done_by", flat=True)
    )


def resolve_and_close(incident, actor):
    for status in ("acknowledged", "contained", "recovering", "verifying"):
        if STATUS_ORDER.index(Incident.objects.get(pk=incident.pk).status) < STATUS_ORDER.index(status):
            incident_advance(incident=incident, actor=actor, to=status)
    incident_advance(incident=incident, actor=actor, to="resolved")  # no override: checks pass
    incident.refresh_from_db()
    if not postmortem_requirement(incident):
        # A SEV-3 resolved quickly needs none; this one ran past two hours.
        Incident.objects.filter(pk=incident.pk).update(opened_at=timezone.now() - timedelta(hours=3))
    with pytest.raises(errors.ServiceError) as e:
        incident_advance(incident=incident, actor=actor, to="closed")
    assert e.value.code == "postmortem_required"
    postmortem_save(incident=incident, actor=actor, data=COMPLETE_POSTMORTEM)
    # Closing needs every post-incident item done or skipped, each skip with a reason.
    incident_evaluate_checks(incident=incident)
    left = list(incident.checklist.filter(phase="post_incident", done=False, skipped=False))
    if left:
        with pytest.raises(errors.ServiceError) as e:
            incident_advance(incident=incident, actor=actor, to="closed")
        assert e.value.code == "post_incident_open"
        for item in left:
            with pytest.raises(errors.ServiceError):
                checklist_item_skip(incident=incident, item=item, actor=actor, reason="  ")
            checklist_item_skip(incident=incident, item=item, actor=actor, reason="Done outside the console.")
    incident_advance(incident=incident, actor=actor, to="closed")
    assert Incident.objects.get(pk=incident.pk).status == "closed"


def test_rb01_provider_downtime(sandbox, operator):
    integrations = tenants_at(sandbox, "salesforce")
    sandbox.control("salesforce", mode="down")
    traffic(integrations)
    assert set(Integration.objects.values_list("status", flat=True)) == {"error"}

    incident = detect_one("RB-01", "SEV-2", integrations)  # Salesforce sends no webhooks: no polling fallback
    incident_acknowledge(incident=incident, actor=operator)
    status_page = run(incident, "check_status_page", operator).summary
    assert status_page.startswith("Provider status page: major"), status_page
    assert "reachable" in run(incident, "test_connectivity", operator).summary
    run(incident, "disable_integration", operator, reason="cascading failures")
    assert set(Integration.objects.values_list("status", flat=True)) == {"disabled"}
    incident_advance(incident=incident, actor=operator, to="contained")
    assert verification(incident)["status_connected"][1] == "fail"

    sandbox.control("salesforce", mode="ok")
    run(incident, "enable_integration", operator)
    finish_retries(integrations)
    backdate_errors("salesforce")
    assert_verified(incident)
    assert not SyncLog.objects.awaiting_retry().exists()
    resolve_and_close(incident, operator)


def test_rb02_oauth_token_expiry(sandbox, operator):
    integrations = tenants_at(sandbox, "hubspot", n=3)
    sandbox.control("hubspot", expire_tokens=True, revoke_refresh_tokens=True)
    traffic(integrations, n=1)
    assert set(Integration.objects.values_list("status", flat=True)) == {"needs_reauth"}

    incident = detect_one("RB-02", "SEV-3", integrations)
    incident_acknowledge(incident=incident, actor=operator)
    refused = run(incident, "reconnect", operator)
    assert not refused.ok and refused.details["n_needs_reauth"] == 3
    assert not incident.checklist.filter(action="reconnect").first().done

    incident_advance(incident=incident, actor=operator, to="recovering")
    # RB-02 step 2: the customer re-authorizes at the provider's consent page, which stores a fresh token set.
    for integration in integrations:
        Integration.objects.filter(pk=integration.pk).update(
            credentials=sandbox.credentials("hubspot", integration.tenant.slug)
        )
    outcome = run(incident, "reconnect", operator)
    assert outcome.ok, outcome.summary
    traffic(integrations, n=1)
    assert_verified(incident)
    resolve_and_close(incident, operator)


def test_rb03_rate_limit_exhaustion(sandbox, operator, monkeypatch):
    monkeypatch.setattr(calls, "QUOTA_WAIT_SECONDS", 0.2)  # a sync waits this long for the shared quota
    integrations = tenants_at(sandbox, "hubspot", n=2, synced=1)
    Integration.objects.filter(pk=integrations[0].pk).update(is_critical=True)
    sandbox.control("hubspot", rate_limit=1, window=3600)
    # HubSpot takes batches (issue 12): one call per tenant and run, so two rounds of traffic exhaust it.
    traffic(integrations, n=4)
    traffic(integrations, n=4)
    assert SyncLog.objects.filter(error_category="rate_limited").count() >= 5

    incident = detect_one("RB-03", "SEV-3", integrations)
    incident_acknowledge(incident=incident, actor=operator)
    run(incident, "pause_non_critical", operator)
    paused = dict(Integration.objects.values_list("tenant__slug", "sync_paused"))
    assert paused == {"hubspot-t0": False, "hubspot-t1": True}
    incident_advance(incident=incident, actor=operator, to="contained")

    sandbox.control("hubspot", rate_limit=None)
    provider_quota().reset("hubspot")  # the provider's window has passed
    run(incident, "resume_paused", operator)
    assert not Integration.objects.filter(sync_paused=True).exists()
    finish_retries(integrations)
    backdate_errors("hubspot")
    assert_verified(incident)
    assert "remaining" in incident.checklist.filter(check_name="rate_limit_headroom").last().check_evidence
    resolve_and_close(incident, operator)


def test_rb04_partial_sync_failures(sandbox, operator, django_capture_on_commit_callbacks):
    integrations = tenants_at(sandbox, "greenhouse", n=2, synced=2)
    sandbox.control("greenhouse", reject={"field": "email"})
    traffic(integrations, n=3)
    assert SyncLog.objects.filter(status="FAILED", error_category="validation").count() == 6
    assert Record.objects.filter(crm_sync_status="FAILED").count() == 6

    incident = detect_one("RB-04", "SEV-3", integrations)
    assert incident.dominant_category == "validation"
    incident_acknowledge(incident=incident, actor=operator)
    incident_evaluate_checks(incident=incident)
    assert (
        "validation/email 6" in incident.checklist.filter(check_name="failure_summary").first().check_evidence
    )

    incident_advance(incident=incident, actor=operator, to="recovering")
    sandbox.control("greenhouse", reject=None)  # the data format is fixed at the provider side
    with django_capture_on_commit_callbacks(execute=True):
        outcome = run(incident, "retry_failed", operator)
    assert "6 rows changed" in outcome.summary
    assert Record.objects.filter(crm_sync_status="FAILED").count() == 0
    run(incident, "verify_sync", operator)
    assert_verified(incident)
    resolve_and_close(incident, operator)


def test_rb09_provider_outage_with_webhook_failures(sandbox, commander, django_capture_on_commit_callbacks):
    integrations = tenants_at(sandbox, "hubspot", n=2, synced=3, mode="webhook")
    sandbox.control("hubspot", mode="down")
    traffic(integrations)
    # The provider's own users keep editing while our calls fail; their webhooks reach us and cannot be processed.
    deliveries = []
    for integration in integrations:
        remote = sandbox.records("hubspot", integration.tenant.slug)[0]
        sandbox.update_record("hubspot", remote["id"], {"firstname": "Changed-during-outage"})
        deliveries.append(
            WebhookDelivery.objects.create(
                integration=integration,
                provider="hubspot",
                event_id=f"evt-{integration.pk}",
                payload={"remote_ids": [remote["id"]]},
            )
        )
    for delivery in deliveries:
        assert webhooks.process_webhook(delivery.pk).status == "FAILED"

    incident = detect_one("RB-09", "SEV-3", integrations)
    assert incident.impact["webhook_failures"] == 2
    incident_acknowledge(incident=incident, actor=commander)

    # Containment
    run(incident, "switch_to_polling", commander)
    run(incident, "defer_enrichment", commander)
    # 6 records whose pushes failed, and the 2 whose provider-side edits could not be fetched (their webhooks'
    # fetches failed: the local copies are stale too).
    assert run(incident, "create_stale_defects", commander).details["changed"] == 8
    assert run(incident, "queue_webhook_retries", commander).details["changed"] == 2
    with django_capture_on_commit_callbacks(execute=True):
        run(incident, "notify_tenants", commander, next_update_minutes=30)
    assert len(mail.outbox) == 2
    run(incident, "status_note", commander, message="HubSpot API returns 503; polling on, tenants told.")
    assert incident.checklist.get(check_name="mode_polling").done_by == "check:mode_polling"
    incident_advance(incident=incident, actor=commander, to="contained")
    assert verification(incident)["no_errors_15m"][1] == "fail"

    # Recovery
    sandbox.control("hubspot", mode="ok")
    incident_advance(incident=incident, actor=commander, to="recovering")
    assert run(incident, "reconnect", commander).ok
    assert run(incident, "rotate_credentials", commander).details["n_refreshed"] == 2
    reconciled = run(incident, "reconcile", commander)
    assert reconciled.ok and reconciled.details["n_updated"] >= 2
    assert Record.objects.filter(payload__first_name="Changed-during-outage").count() == 2
    finish_retries(integrations)
    for pk in dispatch.due_webhook_ids():
        webhooks.process_webhook(pk)
    assert set(WebhookDelivery.objects.values_list("status", flat=True)) == {"PROCESSED"}
    assert run(incident, "clear_stale_defects", commander).details["changed"] == 8
    assert not Defect.objects.filter(status="OPEN").exists()
    run(incident, "restore_normal_mode", commander)
    assert set(Integration.objects.values_list("mode", flat=True)) == {"webhook"}

    # Verification: verify_sync from the checklist, then the checks pass by themselves once 15 minutes are clean.
    incident_advance(incident=incident, actor=commander, to="verifying")
    assert run(incident, "verify_sync", commander).ok
    assert verification(incident)["no_errors_15m"][1] == "fail"
    with pytest.raises(errors.ServiceError, match="Cannot resolve"):
        incident_advance(incident=incident, actor=commander, to="resolved")
    backdate_errors("hubspot")
    assert_verified(incident)
    evidence = {name: ev for name, (_, _, ev) in verification(incident).items()}
    assert "record.reconciled audit events" in evidence["reconciled_audit_present"]
    assert "no mismatch" in evidence["verify_sync_clean"]
    assert AuditEvent.objects.filter(action="record.reconciled", provider="hubspot").count() >= 2
    resolve_and_close(incident, commander)
    timeline_kinds = {e["kind"] for e in timeline(incident)[0]}
    assert {
        "opened",
        "action",
        "notify",
        "note",
        "status",
        "integration.set_mode",
        "record.reconciled",
    } <= timeline_kinds
