"""The notifications outbox (issue 14): escalations and tenant notices are rows, sent after commit, retried
until sent; the timeline says "queued", then "sent" or "failed: <error>". A dead mail server fails nothing."""

import json
from datetime import timedelta

import pytest

from incidents import tasks
from incidents.detection import rates
from incidents.models import Incident, Notification, TenantContact
from incidents.services.communication import incident_notify_tenants
from tests.support import factories
from tests.support.incidents import failing_logs
from tests.support.servers import ChatWebhook, SmtpServer, free_port

pytestmark = pytest.mark.django_db


@pytest.fixture
def dead_mail_server(settings):
    """SMTP settings pointing at a port nobody listens on (yet)."""
    port = free_port()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", port, 3
    settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
    return port


def _messages(incident):
    return list(
        incident.events.filter(kind__in=["escalation", "notification"]).values_list("message", flat=True)
    )


def test_with_the_mail_server_down_nothing_crashes_rows_fail_and_are_sent_when_it_is_back(
    dead_mail_server, django_capture_on_commit_callbacks, clock, client
):
    failing_logs(factories.integration(provider="salesforce"), 6)  # SEV-2: both rotas
    with django_capture_on_commit_callbacks(execute=True):
        [(incident, created)] = rates.detect()  # the detection pass does not crash
    assert created
    rows = list(Notification.objects.order_by("pk"))
    assert [(n.label, n.status, n.attempts) for n in rows] == [
        ("integrations on-call (SEV-2)", "failed", 1),
        ("backend on-call (SEV-2)", "failed", 1),
    ]
    assert all("Connection refused" in n.last_error or "ConnectionRefused" in n.last_error for n in rows)
    messages = _messages(incident)
    assert messages[0].startswith("Escalation to integrations on-call (SEV-2) queued")
    assert any(m.startswith("Escalation to integrations on-call (SEV-2) failed: ") for m in messages)
    assert not any("sent" in m for m in messages)  # the timeline never says "sent" for a failed send

    # The tracker page and an API request still answer while the mail server is down.
    client.force_login(factories.user("root", superuser=True))
    assert client.get(f"/admin/incidents/incident/{incident.pk}/tracker/").status_code == 200

    server = SmtpServer(dead_mail_server)
    try:
        assert tasks.send_due_notifications.delay().get() == 0  # not due yet: the backoff is respected
        clock.advance(minutes=1)
        assert tasks.send_due_notifications.delay().get() == 2
    finally:
        server.stop()
    assert sorted(r["to"][0] for r in server.received) == [
        "backend-oncall@localhost",
        "integrations-oncall@localhost",
    ]
    assert set(Notification.objects.values_list("status", "attempts")) == {("sent", 2)}
    last = _messages(Incident.objects.get())[-1]
    assert "sent to" in last and "(attempt 2)" in last
    assert tasks.send_due_notifications.delay().get() == 0  # sent rows are never sent again


def test_tenant_notices_are_outbox_rows_and_the_timeline_says_queued_not_notified(
    dead_mail_server, django_capture_on_commit_callbacks, operator
):
    integration = factories.integration(provider="hubspot")
    TenantContact.objects.create(tenant=integration.tenant, email="ops@acme.example.com")
    failing_logs(integration, 6)
    [(incident, _)] = rates.detect()
    with django_capture_on_commit_callbacks(execute=True):
        result = incident_notify_tenants(incident=incident, actor=operator)
    assert result["summary"].startswith("Tenant notices queued for 1 affected tenants")
    notice = Notification.objects.get(purpose="tenant_notice")
    assert (notice.status, notice.to) == ("failed", ["ops@acme.example.com"])
    assert incident.events.filter(kind="notification", message__contains="failed: ").exists()


def test_a_chat_webhook_per_severity_gets_the_page_and_its_failure_is_told(
    settings, django_capture_on_commit_callbacks, clock
):
    chat = ChatWebhook()
    try:
        settings.ONCALL_CHAT_WEBHOOKS = {"SEV-2": "", "SEV-3": chat.url}
        chat.status = 500
        failing_logs(factories.integration(provider="hubspot"), 6)  # SEV-3
        with django_capture_on_commit_callbacks(execute=True):
            [(incident, _)] = rates.detect()
        row = Notification.objects.get(channel="chat")
        assert row.status == "failed" and "500" in row.last_error and row.to == ["SEV-3"]  # no URL stored
        chat.status = 200
        clock.advance(minutes=1)
        tasks.send_due_notifications.delay().get()
        row.refresh_from_db()
        assert row.status == "sent"
        [message] = chat.received
        assert f"INC-{incident.pk}" in message["text"]
    finally:
        chat.stop()


def test_an_unreachable_broker_leaves_the_row_queued_for_beat(django_capture_on_commit_callbacks):
    from unittest import mock

    failing_logs(factories.integration(provider="hubspot"), 6)
    with mock.patch("incidents.services.communication.signature", side_effect=OSError("broker down")):
        with django_capture_on_commit_callbacks(execute=True):
            [(incident, created)] = rates.detect()  # no crash
    assert created and Notification.objects.get().status == "queued"
    Notification.objects.update(created_at=incident.opened_at - timedelta(minutes=1))
    assert tasks.send_due_notifications.delay().get() == 1  # beat's sweep sends it (locmem mail in tests)


def test_with_the_mail_server_down_the_alert_intake_answers_200_and_its_page_fails_on_the_row(
    dead_mail_server, django_capture_on_commit_callbacks, client
):
    """The alert intake answered 500 when mail failed after commit, and Alertmanager's retry doubled the alert."""
    _, token = factories.api_token(scope="admin")
    body = {
        "version": "4",
        "status": "firing",
        "alerts": [
            {
                "status": "firing",
                "labels": {"alertname": "IDISIntegrationProviderErrors", "provider": "lever"},
                "startsAt": "2026-11-24T10:00:00Z",
                "fingerprint": "f1",
            }
        ],
    }
    for _ in range(2):
        with django_capture_on_commit_callbacks(execute=True):
            response = client.post(
                "/api/v1/alerts",
                json.dumps(body),
                content_type="application/json",
                HTTP_AUTHORIZATION=f"Bearer {token}",
            )
        assert response.status_code == 200
    incident = Incident.objects.get()
    assert incident.events.filter(kind="alert").count() == 1
    assert Notification.objects.get().status == "failed"
