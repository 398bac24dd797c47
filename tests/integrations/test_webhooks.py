"""Inbound webhooks: signature checked, each event stored once, processed against the provider."""

import time

import pytest
from django.urls import reverse

from integrations.models import Record, WebhookDelivery
from tests.support.sync import connect
from tests.support.webhooks import hubspot_event, post_signed

pytestmark = pytest.mark.django_db


def test_a_valid_signed_event_is_processed(client, sandbox, django_capture_on_commit_callbacks):
    integration = connect(sandbox, "hubspot", mode="webhook")
    remote = sandbox.create_record(
        "hubspot",
        integration.tenant.slug,
        {"email": "pat@example.com", "firstname": "Pat", "lastname": "Lee"},
    )
    with django_capture_on_commit_callbacks(execute=True):
        response = post_signed(client, integration, hubspot_event(1001, remote["id"]))
    assert response.status_code == 200 and response.json() == {"received": 1, "duplicates": 0}
    delivery = WebhookDelivery.objects.get()
    assert delivery.status == "PROCESSED" and delivery.event_id == "1001"
    assert Record.objects.get(tenant=integration.tenant).payload["email"] == "pat@example.com"


def test_a_bad_signature_gets_401_and_changes_nothing(client, sandbox):
    integration = connect(sandbox, "hubspot", mode="webhook")
    response = post_signed(client, integration, hubspot_event(1, "123"), secret="not-the-secret")
    assert response.status_code == 401 and response.json()["error"]["code"] == "bad_signature"
    unsigned = client.post(
        reverse("webhook", args=["hubspot", integration.tenant.slug]),
        hubspot_event(2, "1"),
        content_type="application/json",
    )
    assert unsigned.status_code == 401
    assert not WebhookDelivery.objects.exists() and not Record.objects.exists()


def test_the_same_event_twice_is_processed_once(client, sandbox, django_capture_on_commit_callbacks):
    integration = connect(sandbox, "hubspot", mode="webhook")
    remote = sandbox.create_record(
        "hubspot", integration.tenant.slug, {"email": "a@example.com", "lastname": "A"}
    )
    with django_capture_on_commit_callbacks(execute=True):
        post_signed(client, integration, hubspot_event(7, remote["id"]))
    with django_capture_on_commit_callbacks(execute=True):
        again = post_signed(client, integration, hubspot_event(7, remote["id"]))
    assert again.json() == {"received": 0, "duplicates": 1}
    assert WebhookDelivery.objects.count() == 1 and Record.objects.count() == 1


def test_unknown_provider_or_tenant_is_404_and_malformed_body_400(client, sandbox):
    assert client.post("/webhooks/nope/acme/", b"{}", content_type="application/json").status_code == 404
    assert client.post("/webhooks/hubspot/nobody/", b"{}", content_type="application/json").status_code == 404
    integration = connect(sandbox, "hubspot", mode="webhook")
    response = post_signed(client, integration, b"{not json")
    assert response.status_code == 400 and "error" in response.json()
    assert not WebhookDelivery.objects.exists()


def test_processing_failure_is_kept_and_retried_later(client, sandbox, django_capture_on_commit_callbacks):
    integration = connect(sandbox, "hubspot", mode="webhook")
    remote = sandbox.create_record(
        "hubspot", integration.tenant.slug, {"email": "b@example.com", "lastname": "B"}
    )
    sandbox.control("hubspot", mode="down")
    with django_capture_on_commit_callbacks(execute=True):
        post_signed(client, integration, hubspot_event(9, remote["id"]))
    delivery = WebhookDelivery.objects.get()
    assert delivery.status == "FAILED" and "provider_5xx" in delivery.last_error and delivery.next_attempt_at
    sandbox.control("hubspot", mode="ok")
    from integrations.engine import dispatch, webhooks

    WebhookDelivery.objects.update(next_attempt_at=delivery.received_at)
    assert dispatch.due_webhook_ids() == [delivery.pk]
    webhooks.process_webhook(delivery.pk)
    delivery.refresh_from_db()
    assert delivery.status == "PROCESSED" and delivery.attempts == 2


@pytest.mark.django_db(transaction=True)
def test_the_sandbox_sends_real_signed_webhooks_that_the_console_processes(live_server, sandbox):
    integration = connect(sandbox, "greenhouse", mode="webhook")
    sandbox.subscribe(
        "greenhouse",
        integration.tenant.slug,
        f"{live_server.url}/webhooks/greenhouse/{integration.tenant.slug}/",
        integration.webhook_secret_value,
    )
    sandbox.create_record(
        "greenhouse",
        integration.tenant.slug,
        {"first_name": "Grace", "last_name": "Hopper", "email": "grace@example.com"},
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not WebhookDelivery.objects.filter(status="PROCESSED").exists():
        time.sleep(0.1)
    assert WebhookDelivery.objects.filter(status="PROCESSED").count() == 1
    assert Record.objects.get(tenant=integration.tenant).payload["last_name"] == "Hopper"
