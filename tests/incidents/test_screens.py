"""Issue 15: every screen leads to the next one; roles are shown before they refuse; words and times."""

import re
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from incidents.models import Incident
from incidents.services.opening import incident_open
from incidents.services.postmortem import postmortem_save
from tests.support import factories
from tests.support.incidents import failing_logs

pytestmark = pytest.mark.django_db


def _incident(provider="hubspot", runbook="RB-09", n=2):
    tenants = [factories.tenant(slug=f"t{i}", name=f"Tenant {i}") for i in range(n)]
    integrations = [factories.integration(tenant=t, provider=provider) for t in tenants]
    for i in integrations:
        failing_logs(i, 2)
    incident = incident_open(
        provider=provider,
        runbook=runbook,
        actor=factories.user("opener", group=factories.OPERATOR),
        tenants=tenants,
        started_at=timezone.now() - timedelta(minutes=5),
    )
    return incident, integrations


def _tracker(client, incident) -> str:
    response = client.get(reverse("admin:incidents_incident_tracker", args=[incident.pk]))
    assert response.status_code == 200
    return response.content.decode()


def test_the_tracker_links_to_its_integrations_tenants_logs_records_defects_and_webhooks(client, operator):
    incident, integrations = _incident()
    client.force_login(operator)
    page = _tracker(client, incident)
    for key in (
        "integrations",
        "tenants",
        "sync_logs",
        "failed_records",
        "unsynced_records",
        "defects",
        "webhooks",
        "audit",
    ):
        assert f'data-link="{key}"' in page, key
    sync_logs = re.search(r'href="([^"]+)" data-link="sync_logs"', page).group(1).replace("&amp;", "&")
    assert "provider__exact=hubspot" in sync_logs and "created_at__gte=" in sync_logs
    listing = client.get(sync_logs)
    assert listing.status_code == 200 and "Tenant 0" in listing.content.decode()
    for key in (
        "integrations",
        "failed_records",
        "unsynced_records",
        "defects",
        "webhooks",
        "tenants",
        "audit",
    ):
        url = re.search(rf'href="([^"]+)" data-link="{key}"', page).group(1).replace("&amp;", "&")
        assert client.get(url).status_code == 200, key
    change = reverse("admin:integrations_integration_change", args=[integrations[0].pk])
    assert change in page


def test_the_integration_page_links_to_its_logs_records_defects_incidents_and_shows_its_webhook_url(
    client, operator
):
    incident, integrations = _incident()
    client.force_login(operator)
    page = client.get(
        reverse("admin:integrations_integration_change", args=[integrations[0].pk])
    ).content.decode()
    for key in ("sync_logs", "records", "unsynced_records", "defects", "webhooks", "incidents", "audit"):
        url = re.search(rf'href="([^"]+)" data-link="{key}"', page).group(1).replace("&amp;", "&")
        assert client.get(url).status_code == 200, key
    assert "/webhooks/hubspot/t0/" in page
    incidents = re.search(r'href="([^"]+)" data-link="incidents"', page).group(1).replace("&amp;", "&")
    assert f"INC-{incident.pk}" in client.get(incidents).content.decode()


def test_a_sync_log_links_to_its_integration_record_and_the_incident_covering_it(client, operator):
    incident, integrations = _incident()
    record = factories.record(tenant=integrations[0].tenant, kind="contact")
    log = factories.sync_log(
        integration=integrations[0], record=record, status="FAILED", created_at=timezone.now()
    )
    client.force_login(operator)
    page = client.get(reverse("admin:integrations_synclog_change", args=[log.pk])).content.decode()
    assert reverse("admin:integrations_integration_change", args=[integrations[0].pk]) in page
    assert reverse("admin:integrations_record_change", args=[record.pk]) in page
    covering = (
        re.search(r'href="(/admin/incidents/incident/covering/[^"]+)"', page).group(1).replace("&amp;", "&")
    )
    response = client.get(covering)
    assert response.status_code == 302
    assert response["Location"] == reverse("admin:incidents_incident_tracker", args=[incident.pk])


def test_an_operator_sees_rotate_credentials_disabled_with_the_role_it_needs(client, operator):
    incident, _ = _incident()
    client.force_login(operator)
    page = _tracker(client, incident)
    assert "needs Integrations admin" in page
    item = incident.checklist.get(action="rotate_credentials")
    assert reverse("admin:incidents_incident_run_item", args=[incident.pk, item.pk]) not in page
    # Forcing the URL refuses before the confirmation, and the attempt is on the timeline.
    response = client.get(reverse("admin:incidents_incident_run_item", args=[incident.pk, item.pk]))
    assert response.status_code == 302
    assert incident.events.filter(kind="refused", actor="operator").exists()


def test_an_admin_gets_the_rotate_button(client):
    incident, _ = _incident()
    client.force_login(factories.user("boss", group=factories.ADMIN))
    item = incident.checklist.get(action="rotate_credentials")
    assert reverse("admin:incidents_incident_run_item", args=[incident.pk, item.pk]) in _tracker(
        client, incident
    )


def test_a_viewers_refused_post_is_on_the_timeline_and_the_403_page_is_styled(client, viewer):
    incident, _ = _incident()
    client.force_login(viewer)
    response = client.post(reverse("admin:incidents_incident_note", args=[incident.pk]), {"message": "hi"})
    assert response.status_code == 403
    body = response.content.decode()
    assert "Lineup Ops" in body and 'id="forbidden"' in body and "Integrations admin" in body
    assert incident.events.filter(kind="refused", actor="viewer").exists()


def test_the_viewer_reads_the_postmortem_without_form_fields(client, viewer, operator):
    incident, _ = _incident()
    postmortem_save(
        incident=incident, actor=operator, data={"root_cause": "HubSpot returned 503 for an hour."}
    )
    client.force_login(viewer)
    page = client.get(reverse("admin:incidents_incident_postmortem", args=[incident.pk])).content.decode()
    assert 'id="postmortem-read-only"' in page and "<textarea" not in page
    assert "HubSpot returned 503 for an hour." in page and "not answered yet" in page


def test_postmortem_words_match_the_state(client, operator):
    incident, _ = _incident()
    Incident.objects.filter(pk=incident.pk).update(severity="SEV-3")
    client.force_login(operator)
    page = _tracker(client, incident)
    assert "Not required (SEV-3 resolved within 2 hours)" not in page  # not resolved yet
    assert "Not required so far" in page
    data = {
        "root_cause": "HubSpot returned 503 for an hour.",
        "fallback_effective": "Polling kept the changes flowing.",
        "reconciliation_completeness": "Every changed record was reconciled.",
        "communication_timeliness": "Tenants were told within ten minutes.",
    }
    postmortem_save(incident=incident, actor=operator, data=data)
    page = _tracker(client, incident)
    assert "Write the postmortem" not in page and "Read or edit the postmortem" in page
    pm = client.get(reverse("admin:incidents_incident_postmortem", args=[incident.pk])).content.decode()
    assert "RB-09's four questions" not in pm


def test_lists_and_the_tracker_use_one_24_hour_format_with_the_zone(client, operator):
    incident, _ = _incident()
    client.force_login(operator)
    client.cookies["lo_tz"] = "Europe/Berlin"
    page = _tracker(client, incident)
    assert re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d CET", page)
    listing = client.get(reverse("admin:integrations_synclog_changelist")).content.decode()
    assert re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d CET", listing)
    assert not re.search(r"\b[ap]\.m\.", listing)


def test_long_text_in_lists_is_cut_with_the_whole_text_on_hover(client, operator):
    _, integrations = _incident()
    long = "connection reset by peer " * 10
    factories.sync_log(integration=integrations[0], status="FAILED", error_message=long.strip())
    client.force_login(operator)
    listing = client.get(reverse("admin:integrations_synclog_changelist")).content.decode()
    assert f'title="{long.strip()}"' in listing


def test_the_runbook_page_numbers_steps_as_the_runbook_does(client, operator):
    client.force_login(operator)
    page = client.get("/runbooks/RB-09/").content.decode()
    numbers = re.findall(r'data-number="(\d*)"', page)
    printed = [n for n in numbers if n]
    # Triage 1-5, containment 1-5, recovery 1-5, verification 1-4, postmortem questions 1-4; bullets unnumbered.
    assert printed == [str(i) for i in [*range(1, 6), *range(1, 6), *range(1, 6), *range(1, 5), *range(1, 5)]]
    assert "(console step, not in the runbook)" in page


def _postmortem_state(page: str) -> str:
    return re.sub(r"<[^>]+>", "", re.search(r'<p id="postmortem-state">(.*?)</p>', page, re.S).group(1))


def _close(incident):
    now = timezone.now()
    Incident.objects.filter(pk=incident.pk).update(status="closed", resolved_at=now, closed_at=now)


def test_a_closed_incident_with_a_complete_postmortem_asks_for_no_more_work(client, operator):
    incident, _ = _incident()
    Incident.objects.filter(pk=incident.pk).update(severity="SEV-2")
    postmortem_save(
        incident=incident,
        actor=operator,
        data={
            "root_cause": "HubSpot returned 503 for an hour.",
            "fallback_effective": "Polling kept the changes flowing.",
            "reconciliation_completeness": "Every changed record was reconciled.",
            "communication_timeliness": "Tenants were told within ten minutes.",
        },
    )
    _close(incident)
    client.force_login(operator)
    page = _tracker(client, incident)
    state = _postmortem_state(page)
    assert "Complete, by operator" in state and "Read the postmortem" in state
    for asking in ("Write the postmortem", "Continue the postmortem", "edit", "Required"):
        assert asking not in state, (asking, state)
    assert 'data-status="closed"' in page and 'lo-off" data-status="closed"' not in page  # not struck out
    # A tenant notice now would promise a next update that never comes.
    assert 'value="Notify affected tenants"' not in page
    pm = client.get(reverse("admin:incidents_incident_postmortem", args=[incident.pk])).content.decode()
    assert "Required before closing" not in pm and "closed" in pm


def test_a_closed_incident_that_needed_no_postmortem_does_not_ask_for_one(client, operator):
    incident, _ = _incident()
    Incident.objects.filter(pk=incident.pk).update(severity="SEV-3")
    _close(incident)
    client.force_login(operator)
    state = _postmortem_state(_tracker(client, incident))
    assert "Not required" in state and "Write the postmortem" not in state, state


def test_the_tenant_table_counts_failed_records_now_not_at_detection(client, operator):
    from integrations.models import Record

    incident, integrations = _incident()
    # Detection's snapshot said 3; one record is still failed now, the others were retried.
    Incident.objects.filter(pk=incident.pk).update(
        impact={
            "measured_at": "2026-12-02T04:10:51.552361+00:00",
            "errors": 6,
            "attempts": 14,
            "by_category": {"validation": 6},
            "failed_records_by_tenant": {"t0": 3},
        }
    )
    factories.record(tenant=integrations[0].tenant, kind="contact").__class__.objects.update(
        crm_sync_status="FAILED"
    )
    assert Record.objects.filter(crm_sync_status="FAILED").count() == 1
    # Tenant 1's record is waiting for a retry: never created at HubSpot (no remote id), not FAILED.
    from integrations.models import RecordLink

    waiting = factories.record(tenant=integrations[1].tenant, kind="contact")
    RecordLink.objects.create(record=waiting, integration=integrations[1], remote_id="")
    client.force_login(operator)
    page = _tracker(client, incident)
    cells = re.findall(r'<td class="lo-failed-records">(\d+)</td>', page)
    assert cells == ["1", "1"], cells
    # The same records as the "left failed or never created" link counts: the two numbers agree.
    assert "Records left failed or never created (2)" in page and "Records not synced" in page
    # The impact's time in the one format, not a raw ISO string.
    assert "2026-12-02T04:10:51" not in page and "Impact at 2026-12-02 04:10:51 UTC" in page


def test_a_skipped_step_offers_no_action_button(client, operator):
    incident, _ = _incident(runbook="RB-02")
    skipped = incident.checklist.get(text__startswith="Verify API key is still valid")  # HubSpot uses OAuth
    assert skipped.skipped
    client.force_login(operator)
    page = _tracker(client, incident)
    row = re.search(rf'<tr id="item-{skipped.pk}".*?</tr>', page, re.S).group(0)
    assert "lo-run" not in row and "Skipped: Not for HubSpot" in row
