"""Incident services: forward-only status, verified resolve, postmortem before close, notices, checklist actions."""

from datetime import timedelta

import pytest
from django.core import mail
from django.core.exceptions import PermissionDenied
from django.utils import timezone

from incidents import errors
from incidents.models import ChecklistItem, Incident, Postmortem, TenantContact
from incidents.services.checklist import (
    checklist_item_mark_done,
    checklist_item_run_action,
    checklist_item_skip,
    incident_evaluate_checks,
)
from incidents.services.communication import incident_notify_tenants, incident_post_note
from incidents.services.opening import incident_open, open_or_update_incident
from incidents.services.postmortem import postmortem_requirement, postmortem_save
from incidents.services.status import incident_acknowledge, incident_advance
from integrations.models import AuditEvent, Integration
from tests.support import factories
from tests.support.incidents import failing_logs

pytestmark = pytest.mark.django_db


@pytest.fixture
def outage(operator):
    """An RB-09 HubSpot incident, SEV-3, two affected tenants with contacts, one failing integration each."""
    tenants = [factories.tenant(slug="acme", name="Acme"), factories.tenant(slug="bolt", name="Bolt")]
    for t in tenants:
        integration = factories.integration(tenant=t, provider="hubspot")
        failing_logs(integration, 3)
        TenantContact.objects.create(tenant=t, email=f"ops@{t.slug}.example.com")
    incident = incident_open(
        provider="hubspot",
        runbook="RB-09",
        actor=operator,
        tenants=tenants,
        started_at=timezone.now() - timedelta(minutes=5),
    )
    return incident


def test_opening_by_hand_creates_the_runbook_checklist_and_refuses_a_second(outage, operator):
    assert outage.severity == "SEV-3" and outage.detected_by == "operator"
    assert outage.checklist.count() == 47  # 46 runbook steps + 'no record left failed or never created'
    phases = list(outage.checklist.order_by("position").values_list("phase", flat=True))
    assert list(dict.fromkeys(phases)) == [
        "detection",
        "triage",
        "containment",
        "recovery",
        "verification",
        "post_incident",
    ]
    with pytest.raises(errors.Conflict, match="already exists"):
        incident_open(provider="hubspot", runbook="RB-09", actor=operator)
    assert (
        AuditEvent.objects.filter(action="incident.open", provider="hubspot", actor="operator").count() == 1
    )


def test_status_moves_forward_only(outage, operator):
    incident_acknowledge(incident=outage, actor=operator)
    incident_advance(incident=outage, actor=operator, to="contained")
    with pytest.raises(errors.ServiceError) as e:
        incident_advance(incident=outage, actor=operator, to="acknowledged")
    assert e.value.message == errors.BACKWARDS.format(current="contained", target="acknowledged")
    with pytest.raises(errors.ServiceError, match="Unknown status"):
        incident_advance(incident=outage, actor=operator, to="exploded")
    outage.refresh_from_db()
    assert outage.status == "contained" and outage.commander == operator
    assert outage.acknowledged_at and outage.contained_at
    assert list(outage.events.filter(kind="status").values_list("details__to", flat=True)) == [
        "acknowledged",
        "contained",
    ]


def test_resolve_refused_while_a_verification_check_fails_and_allowed_with_a_reason(outage, operator):
    with pytest.raises(errors.ServiceError) as e:
        incident_advance(incident=outage, actor=operator, to="resolved")
    assert "No new errors for 15+ minutes" in e.value.message
    assert Incident.objects.get(pk=outage.pk).status == "open"

    incident_advance(
        incident=outage,
        actor=operator,
        to="resolved",
        override_reason="HubSpot confirmed recovery; verify_sync runs tomorrow",
    )
    outage.refresh_from_db()
    assert outage.status == "resolved"
    row = AuditEvent.objects.get(action="incident.status", details__to="resolved")
    assert row.details["override_reason"].startswith("HubSpot confirmed")
    assert "No new errors for 15+ minutes" in row.details["failing_checks"]
    assert outage.events.get(kind="status", details__to="resolved").details["override_reason"]


def test_close_needs_the_postmortem_when_required(outage, operator):
    Incident.objects.filter(pk=outage.pk).update(severity="SEV-2")
    incident_advance(incident=outage, actor=operator, to="resolved", override_reason="test")
    with pytest.raises(errors.ServiceError) as e:
        incident_advance(incident=outage, actor=operator, to="closed")
    assert e.value.code == "postmortem_required" and "Root cause of provider failure" in e.value.message
    postmortem_save(incident=outage, actor=operator, data={"root_cause": "HubSpot 503s"})
    with pytest.raises(errors.ServiceError, match="Was the fallback mechanism effective"):
        incident_advance(incident=outage, actor=operator, to="closed")
    postmortem_save(
        incident=outage,
        actor=operator,
        data={
            "root_cause": "HubSpot 503s",
            "fallback_effective": "Polling kept data flowing",
            "reconciliation_completeness": "All 40 records reconciled",
            "communication_timeliness": "Within 10 min",
            "follow_ups": [{"item": "Alert on webhook lag", "owner": "dana"}, {"item": "", "owner": ""}],
        },
    )
    # The postmortem is complete, but the resilience review items are neither done nor skipped.
    with pytest.raises(errors.ServiceError) as e:
        incident_advance(incident=outage, actor=operator, to="closed")
    assert e.value.code == "post_incident_open" and "Evaluate multi-provider strategy" in e.value.message
    for item in outage.checklist.filter(phase="post_incident", done=False, skipped=False):
        checklist_item_skip(
            incident=outage, item=item, actor=operator, reason="Reviewed at the weekly meeting."
        )
    incident_advance(incident=outage, actor=operator, to="closed")
    assert Incident.objects.get(pk=outage.pk).status == "closed"
    assert Postmortem.objects.get(incident=outage).follow_ups == [
        {"item": "Alert on webhook lag", "owner": "dana", "done": False}
    ]


def test_sev3_needs_a_postmortem_only_after_two_hours(outage, operator):
    incident_advance(incident=outage, actor=operator, to="resolved", override_reason="test")
    assert postmortem_requirement(Incident.objects.get(pk=outage.pk)) == ""
    Incident.objects.filter(pk=outage.pk).update(opened_at=timezone.now() - timedelta(hours=3))
    assert postmortem_requirement(Incident.objects.get(pk=outage.pk)) == "SEV-3 open more than 2 hours"


def test_follow_up_without_owner_is_refused(outage, operator):
    with pytest.raises(errors.ServiceError, match="owner"):
        postmortem_save(incident=outage, actor=operator, data={"follow_ups": [{"item": "x"}]})
    assert not Postmortem.objects.exists()


def test_notify_sends_one_email_per_affected_tenant_and_notes_it(
    outage, operator, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        result = incident_notify_tenants(incident=outage, actor=operator, next_update_minutes=30)
    assert result["sent"] == 2
    assert sorted(m.to[0] for m in mail.outbox) == ["ops@acme.example.com", "ops@bolt.example.com"]
    body = mail.outbox[0].body
    assert "HubSpot" in mail.outbox[0].subject and "Next update: by" in body and "INC-" in body
    event = outage.events.get(kind="notify")
    assert event.details["sent"] == ["acme", "bolt"]
    assert AuditEvent.objects.filter(action="incident.notify_tenants", actor="operator").count() == 1


def test_viewer_is_refused_and_nothing_changes(outage, viewer):
    for call in (
        lambda: incident_acknowledge(incident=outage, actor=viewer),
        lambda: incident_advance(incident=outage, actor=viewer, to="contained"),
        lambda: incident_post_note(incident=outage, actor=viewer, message="hi"),
        lambda: incident_notify_tenants(incident=outage, actor=viewer),
        lambda: checklist_item_run_action(
            incident=outage, item=outage.checklist.get(action="switch_to_polling"), actor=viewer
        ),
    ):
        with pytest.raises(PermissionDenied):
            call()
    outage.refresh_from_db()
    assert outage.status == "open" and outage.commander is None
    assert not mail.outbox
    # Nothing changed; the refused checklist run is on the timeline (issue 15: a refused attempt is seen).
    assert list(outage.events.values_list("kind", flat=True)) == ["opened", "escalation", "refused"]


def test_running_switch_to_polling_completes_the_item_and_is_on_the_timeline(outage, operator):
    item = outage.checklist.get(action="switch_to_polling")
    outcome = checklist_item_run_action(incident=outage, item=item, actor=operator)
    assert outcome.ok and "2 rows changed" in outcome.summary
    assert set(Integration.objects.values_list("mode", flat=True)) == {"polling"}
    item.refresh_from_db()
    assert item.done and item.done_by == "check:mode_polling"  # completed by its check, from data
    assert outage.events.get(kind="action").details["action"] == "switch_to_polling"
    assert AuditEvent.objects.filter(action="integration.set_mode", details__incident=outage.pk).count() == 2


def test_an_item_of_another_incident_or_without_action_is_refused(outage, operator):
    other = incident_open(provider="greenhouse", runbook="RB-04", actor=operator)
    foreign = other.checklist.exclude(action="").first()
    with pytest.raises(errors.ServiceError, match="does not belong"):
        checklist_item_run_action(incident=outage, item=foreign, actor=operator)
    plain = outage.checklist.filter(action="").first()
    with pytest.raises(errors.ServiceError, match="Unknown action"):
        checklist_item_run_action(incident=outage, item=plain, actor=operator)
    assert not outage.events.filter(kind="action").exists()


def test_an_item_naming_an_action_no_runbook_has_is_refused_not_run(outage, operator):
    item = outage.checklist.get(action="switch_to_polling")
    ChecklistItem.objects.filter(pk=item.pk).update(action="restore_webhook_mode")  # an action since removed
    with pytest.raises(errors.ServiceError, match="Unknown action 'restore_webhook_mode'"):
        checklist_item_run_action(incident=outage, item=item, actor=operator)
    assert not ChecklistItem.objects.get(pk=item.pk).done
    assert not outage.events.filter(kind="action").exists()
    assert Integration.objects.filter(mode="polling").count() == 0


def test_checks_complete_items_from_data_with_evidence(outage, operator):
    incident_evaluate_checks(incident=outage)
    polling = outage.checklist.get(check_name="mode_polling")
    assert (polling.done, polling.check_result) == (False, "fail")
    Integration.objects.update(mode="polling")
    assert incident_evaluate_checks(incident=outage) >= 1
    polling.refresh_from_db()
    assert (
        polling.done
        and polling.done_by == "check:mode_polling"
        and polling.check_evidence == "2 of 2 polling"
    )
    assert outage.events.filter(kind="check", details__check="mode_polling").exists()


def test_recovery_and_verification_items_complete_only_once_contained(outage, operator):
    incident_evaluate_checks(incident=outage)
    normal = outage.checklist.get(check_name="normal_mode")
    assert (normal.check_result, normal.done) == ("pass", False)  # nothing was changed yet: proves nothing
    incident_advance(incident=outage, actor=operator, to="contained")
    incident_evaluate_checks(incident=outage)
    normal.refresh_from_db()
    assert normal.done and normal.done_by == "check:normal_mode"


def test_ticking_an_item_with_a_check_by_hand_is_refused(outage, operator):
    item = outage.checklist.get(check_name="no_errors_15m")
    with pytest.raises(errors.ServiceError, match="completes itself"):
        checklist_item_mark_done(incident=outage, item=item, actor=operator)


def test_open_or_update_escalates_severity_but_never_lowers_it(operator):
    incident, created = open_or_update_incident(
        provider="hubspot", runbook="RB-01", severity="SEV-3", detected_by="alertmanager"
    )
    again, created_again = open_or_update_incident(
        provider="hubspot", runbook="RB-01", severity="SEV-2", detected_by="alertmanager"
    )
    assert created and not created_again and again.pk == incident.pk and again.severity == "SEV-2"
    third, _ = open_or_update_incident(
        provider="hubspot", runbook="RB-01", severity="SEV-3", detected_by="alertmanager"
    )
    assert third.severity == "SEV-2"
    assert incident.events.filter(kind="severity").count() == 1
