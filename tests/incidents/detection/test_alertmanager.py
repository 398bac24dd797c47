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


def payload(status="firing", provider="hubspot", **overrides):
    alert = {
        "status": status,
        "labels": {
            "alertname": "IDISIntegrationProviderErrors",
            "provider": provider,
            "endpoint": "/crm/v3/objects/contacts",
            "severity": "warning",
        },
        "annotations": {"summary": f"{provider} integration errors"},
        "startsAt": "2026-11-24T10:00:00Z",
        "endsAt": "0001-01-01T00:00:00Z",
        "generatorURL": "http://prometheus/graph",
        "fingerprint": "abc123",
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
    assert incident.detected_by == "IDISIntegrationProviderErrors (Alertmanager)"
    second = post(client, admin_token, payload())
    assert second.json()["updated"] == [incident.pk] and Incident.objects.count() == 1
    kinds = list(incident.events.values_list("kind", flat=True))
    assert (
        kinds.count("alert") == 2 and kinds.count("escalation") == 1
    )  # no second notice for the same severity
    assert len(mail.outbox) == 1 and "integrations-oncall@localhost" in mail.outbox[0].to


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
        (payload(alerts=["x"]), "alerts[0]"),
        (payload(provider="myspace"), "alerts[0].labels.provider"),
        (payload(status="pending"), "alerts[0].status"),
        (
            payload(alerts=[{"status": "firing", "labels": {"provider": "hubspot"}}]),
            "alerts[0].labels.alertname",
        ),
        (
            payload(
                alerts=[
                    {
                        "status": "firing",
                        "labels": {"alertname": "X", "provider": "hubspot"},
                        "startsAt": "soon",
                    }
                ]
            ),
            "alerts[0].startsAt",
        ),
    ],
)
def test_a_bad_payload_is_refused_with_400_and_changes_nothing(client, admin_token, body, field):
    response = post(client, admin_token, body)
    assert response.status_code == 400
    if field:
        assert response.json()["error"]["field"] == field
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
