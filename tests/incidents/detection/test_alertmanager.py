"""Alertmanager in (POST /api/v1/alerts) and escalation out (RB-09's escalation path)."""

import json

import pytest
from django.core import mail

from incidents.detection import rates
from incidents.models import Incident
from incidents.services.opening import open_or_update_incident
from integrations.models import AuditEvent
from tests.support import factories
from tests.support.incidents import failing_logs

pytestmark = pytest.mark.django_db


def payload(status="firing", provider="hubspot", severity=None, starts="2026-11-24T10:00:00Z", **overrides):
    alert = {
        "status": status,
        "labels": {
            "alertname": "IDISIntegrationProviderErrors",
            "provider": provider,
            "endpoint": "/crm/v3/objects/contacts",
            **({"severity": severity} if severity else {}),
        },
        "annotations": {"summary": f"{provider} integration errors"},
        "startsAt": starts,
        "endsAt": "0001-01-01T00:00:00Z",
        "generatorURL": "http://prometheus/graph",
        "fingerprint": f"abc123-{provider}",
    }
    body = {
        "version": "4",
        "groupKey": '{}:{alertname="IDISIntegrationProviderErrors"}',
        "status": status,
        "receiver": "lineup",
        "groupLabels": {},
        "commonLabels": {},
        "commonAnnotations": {},
        "externalURL": "http://alertmanager",
        "alerts": [alert],
    }
    body.update(overrides)
    return body


@pytest.fixture
def admin_token(db):
    return factories.api_token(scope="admin")[1]


@pytest.fixture(autouse=True)
def commit_hooks(django_capture_on_commit_callbacks):
    """Notices are mailed after commit: run those callbacks as each call returns."""
    global _capture
    _capture = django_capture_on_commit_callbacks


def committed(fn, *args, **kwargs):
    with _capture(execute=True):
        return fn(*args, **kwargs)


def post(client, token, body):
    raw = body if isinstance(body, bytes) else json.dumps(body)
    return committed(
        client.post,
        "/api/v1/alerts",
        raw,
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {token}",
    )


def test_a_firing_alert_opens_one_incident_and_a_second_updates_it(client, admin_token):
    first = post(client, admin_token, payload())
    assert first.status_code == 200 and len(first.json()["opened"]) == 1
    incident = Incident.objects.get()
    assert (incident.provider, incident.runbook, incident.severity) == ("hubspot", "RB-01", "SEV-3")
    assert (incident.detected_by, incident.detector) == (
        "Alertmanager: IDISIntegrationProviderErrors",
        "alertmanager",
    )
    second = post(client, admin_token, payload(starts="2026-11-24T10:07:00Z"))  # the alert fired again
    assert second.json()["updated"] == [incident.pk] and Incident.objects.count() == 1
    kinds = list(incident.events.values_list("kind", flat=True))
    assert (
        kinds.count("alert") == 2 and kinds.count("escalation") == 1
    )  # no second notice for the same severity
    assert len(mail.outbox) == 1 and "integrations-oncall@localhost" in mail.outbox[0].to


def test_a_retried_notification_adds_nothing(client, admin_token):
    """The intake answered 500 after commit, Alertmanager retried, and the alert's event was doubled."""
    body = payload()
    assert post(client, admin_token, body).json()["opened"]
    again = post(client, admin_token, body)
    assert again.status_code == 200
    assert again.json()["opened"] == again.json()["updated"] == []
    assert again.json()["duplicates"] == [{"alert": "alerts[0]", "fingerprint": "abc123-hubspot"}]
    incident = Incident.objects.get()
    assert incident.events.filter(kind="alert").count() == 1
    assert AuditEvent.objects.filter(action="incident.alert").count() == 1


def test_a_mixed_notification_is_accepted_its_known_alerts_applied_once_even_posted_twice(
    client, admin_token
):
    """One alert without a provider label made the intake refuse the whole notification with 400."""
    body = payload()
    good = body["alerts"][0]
    body["alerts"] = [
        good,
        {**good, "labels": {"alertname": "IDISIntegrationProviderErrors"}, "fingerprint": "no-provider"},
        {**good, "labels": {"alertname": "NodeDown", "instance": "db1"}, "fingerprint": "other"},
        {**good, "labels": {**good["labels"], "provider": "myspace"}, "fingerprint": "myspace"},
        {**good, "labels": {**good["labels"], "provider": "salesforce"}, "fingerprint": "sf"},
    ]
    for attempt in range(2):
        response = post(client, admin_token, body)
        assert response.status_code == 200
        answer = response.json()
        assert [i["alert"] for i in answer["ignored"]] == ["alerts[1]", "alerts[2]", "alerts[3]"]
        assert "myspace" in answer["ignored"][2]["reason"] and answer["ignored"][1]["alertname"] == "NodeDown"
        if attempt == 0:
            assert len(answer["opened"]) == 2
        else:
            assert answer["opened"] == [] and len(answer["duplicates"]) == 2
    assert sorted(Incident.objects.values_list("provider", flat=True)) == ["hubspot", "salesforce"]
    for incident in Incident.objects.all():
        assert incident.events.filter(kind="alert").count() == 1


def test_the_severity_label_is_used_when_present(client, admin_token):
    post(client, admin_token, payload(provider="hubspot", severity="critical"))  # hubspot defaults to SEV-3
    assert Incident.objects.get(provider="hubspot").severity == "SEV-2"
    post(client, admin_token, payload(provider="clearbit", severity="warning"))  # clearbit defaults to SEV-2
    assert Incident.objects.get(provider="clearbit").severity == "SEV-3"
    post(client, admin_token, payload(provider="lever", severity="info"))  # names no severity: RB-09's rule
    assert Incident.objects.get(provider="lever").severity == "SEV-3"


def test_an_alert_for_a_recently_resolved_incident_reopens_it(client, admin_token, operator):
    from incidents.services.status import incident_advance

    post(client, admin_token, payload())
    incident = Incident.objects.get()
    incident_advance(incident=incident, actor=operator, to="resolved", override_reason="looked fine")
    response = post(client, admin_token, payload(starts="2026-11-24T10:30:00Z"))
    assert response.json()["updated"] == [incident.pk] and Incident.objects.count() == 1
    incident.refresh_from_db()
    assert incident.status != "resolved" and incident.events.filter(kind="reopened").count() == 1


def test_a_resolved_alert_is_noted_on_the_timeline(client, admin_token):
    post(client, admin_token, payload())
    response = post(client, admin_token, payload(status="resolved"))
    incident = Incident.objects.get()
    assert response.json()["resolved_noted"] == [incident.pk]
    assert incident.events.filter(kind="alert", message__contains="resolved").exists()
    assert incident.status == "open"  # a person resolves it, through its verification checks


def test_the_alert_joins_the_incident_detection_opened(client, admin_token):
    integration = factories.integration(provider="greenhouse")
    failing_logs(integration, 10, category="auth_expired")
    [(incident, created)] = rates.detect()
    assert created and incident.runbook == "RB-02"
    response = post(client, admin_token, payload(provider="greenhouse"))
    assert response.json()["updated"] == [incident.pk] and Incident.objects.count() == 1


@pytest.mark.parametrize(
    "body,field",
    [
        (b"{not json", None),
        ({"version": "4"}, "alerts"),
        (payload(alerts=[]), "alerts"),
        (["not", "an", "object"], "body"),
    ],
)
def test_a_body_that_is_not_alertmanagers_is_refused_with_400_and_changes_nothing(
    client, admin_token, body, field
):
    response = post(client, admin_token, body)
    assert response.status_code == 400
    if field:
        assert response.json()["error"]["field"] == field
    assert not Incident.objects.exists() and not AuditEvent.objects.exists() and not mail.outbox


@pytest.mark.parametrize(
    "body,why",
    [
        (payload(alerts=["x"]), "not an object"),
        (payload(provider="myspace"), "myspace"),
        (payload(status="pending"), "pending"),
        (payload(alerts=[{"status": "firing", "labels": {"provider": "hubspot"}}]), "not a Lineup alert"),
        (
            payload(
                alerts=[
                    {
                        "status": "firing",
                        "labels": {"alertname": "IDISIntegrationProviderErrors", "provider": "hubspot"},
                        "startsAt": "soon",
                    }
                ]
            ),
            "startsAt",
        ),
    ],
)
def test_an_alert_this_console_cannot_apply_is_ignored_and_named_with_200(client, admin_token, body, why):
    response = post(client, admin_token, body)
    assert response.status_code == 200
    [ignored] = response.json()["ignored"]
    assert ignored["alert"] == "alerts[0]" and why in ignored["reason"]
    assert not Incident.objects.exists() and not AuditEvent.objects.exists() and not mail.outbox


def test_only_admin_tokens_may_post_alerts(client):
    _, tenant_token = factories.api_token(scope="tenant", tenant=factories.tenant())
    assert post(client, tenant_token, payload()).status_code == 403
    assert (
        client.post("/api/v1/alerts", json.dumps(payload()), content_type="application/json").status_code
        == 401
    )
    assert not Incident.objects.exists()


def test_sev2_notifies_both_rotas_and_sev3_one_each_on_the_timeline(client, admin_token):
    post(client, admin_token, payload(provider="salesforce"))  # no webhooks: no fallback, SEV-2
    sev2 = Incident.objects.get(provider="salesforce")
    assert sev2.severity == "SEV-2"
    notices = sev2.events.filter(kind="escalation")
    assert sorted(e.details["team"] for e in notices) == ["backend", "integrations"]
    assert sorted(m.to[0] for m in mail.outbox) == [
        "backend-oncall@localhost",
        "integrations-oncall@localhost",
    ]

    mail.outbox.clear()
    post(client, admin_token, payload(provider="lever"))
    sev3 = Incident.objects.get(provider="lever")
    assert sev3.severity == "SEV-3" and sev3.events.filter(kind="escalation").count() == 1
    assert [m.to[0] for m in mail.outbox] == ["integrations-oncall@localhost"]

    mail.outbox.clear()  # escalation from SEV-3 to SEV-2 brings in the backend on-call, once
    for _ in range(2):
        committed(
            open_or_update_incident,
            provider="lever",
            runbook=sev3.runbook,
            severity="SEV-2",
            detected_by="a person",
        )
    sev3.refresh_from_db()
    assert sev3.severity == "SEV-2"
    assert sorted(m.to[0] for m in mail.outbox) == [
        "backend-oncall@localhost",
        "integrations-oncall@localhost",
    ]
    assert sev3.events.filter(kind="escalation").count() == 3


def test_escalation_from_the_checklist_sends_nothing_twice(operator):
    from incidents.services.communication import incident_escalate

    incident, _ = committed(
        open_or_update_incident, provider="hubspot", runbook="RB-09", severity="SEV-3", detected_by="x"
    )
    again = committed(incident_escalate, incident=incident, actor=operator)
    assert again.sent == [] and again.skipped == ["integrations"] and len(mail.outbox) == 1
