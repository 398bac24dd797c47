"""Issue 13, H1 / M3 / M7: forged, replayed, cross-tenant, oversized and deeply nested webhooks are refused."""

import json
import time
from datetime import UTC, datetime, timedelta

import pytest
from django.urls import reverse

from integrations import services
from integrations.models import AuditEvent, WebhookDelivery
from integrations.providers import get_client_class
from tests.support import factories

pytestmark = pytest.mark.django_db


def url_of(integration) -> str:
    return "http://testserver" + reverse("webhook", args=[integration.provider, integration.tenant.slug])


def post(client, url: str, headers: dict, body: bytes):
    extra = {f"HTTP_{k.upper().replace('-', '_')}": v for k, v in headers.items() if k != "Content-Type"}
    return client.post(url, body, content_type="application/json", **extra)


def signed(integration, body: bytes, *, secret=None, now=None, url=None):
    return get_client_class(integration.provider).sign_webhook(
        secret=secret or integration.webhook_secret_value, url=url or url_of(integration), body=body, now=now
    )


def lever_body(opportunity: str, **extra) -> bytes:
    return json.dumps(
        {"id": "evt-real", "event": "candidateUpdated", "data": {"opportunityId": opportunity}, **extra}
    ).encode()


def greenhouse_body(candidate: int) -> bytes:
    return json.dumps(
        {
            "action": "candidate_updated",
            "payload": {"candidate": {"id": candidate, "updated_at": "2026-01-01"}},
        }
    ).encode()


def test_each_integration_gets_its_own_secret_and_it_is_encrypted_at_rest():
    a = factories.integration(provider="lever")
    b = factories.integration(provider="lever")
    assert (
        a.webhook_secret_value and b.webhook_secret_value and a.webhook_secret_value != b.webhook_secret_value
    )
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT webhook_secret FROM integrations_integration WHERE id = %s", [a.pk])
        (raw,) = cursor.fetchone()
    assert a.webhook_secret_value not in raw and raw.startswith("gAAAAA")


def test_h1_a_lever_delivery_copied_from_the_admin_cannot_be_forged_into_a_new_event(client):
    integration = factories.integration(provider="lever", mode="webhook")
    url, headers, body = signed(integration, lever_body("opp-1"))
    with pytest.MonkeyPatch.context() as m:
        m.setattr("integrations.services.webhooks.enqueue_after_commit", lambda *a, **k: None)
        assert post(client, url, headers, body).status_code == 200
        stored = WebhookDelivery.objects.get()
        # What a viewer sees of the delivery holds no signing material to copy.
        assert "signature" not in json.dumps(stored.payload) and "token" not in stored.payload["event"]
        # The attacker copies token/triggeredAt/signature (as seen on the wire) with a new id and another event.
        original = json.loads(body)
        forged = lever_body(
            "opp-other",
            id="forged-1",
            token=original["token"],
            triggeredAt=original["triggeredAt"],
            signature=original["signature"],
        )
        answer = post(client, url, headers, forged)
    # Within the window: the signed part is the same event, so it is a duplicate, not a new event.
    assert answer.status_code == 200 and answer.json() == {"received": 0, "duplicates": 1}
    assert WebhookDelivery.objects.count() == 1


def test_h1_a_stale_lever_signature_is_refused(client):
    integration = factories.integration(provider="lever", mode="webhook")
    url, headers, body = signed(
        integration, lever_body("opp-1"), now=datetime.now(UTC) - timedelta(minutes=6)
    )
    answer = post(client, url, headers, body)
    assert answer.status_code == 401 and not WebhookDelivery.objects.exists()


def test_h1_another_tenants_secret_or_the_old_global_secret_is_refused(client, settings):
    mine = factories.integration(provider="lever", mode="webhook")
    theirs = factories.integration(provider="lever", mode="webhook")
    url, headers, body = signed(mine, lever_body("opp-1"), secret=theirs.webhook_secret_value)
    assert post(client, url, headers, body).status_code == 401
    url, headers, body = signed(mine, lever_body("opp-1"), secret=settings.PROVIDER_WEBHOOK_SECRET)
    assert post(client, url, headers, body).status_code == 401
    assert not WebhookDelivery.objects.exists()


def test_m3_greenhouse_replay_with_a_new_event_id_is_a_duplicate(client):
    integration = factories.integration(provider="greenhouse", mode="webhook")
    url, headers, body = signed(integration, greenhouse_body(77))
    with pytest.MonkeyPatch.context() as m:
        m.setattr("integrations.services.webhooks.enqueue_after_commit", lambda *a, **k: None)
        assert post(client, url, headers, body).json() == {"received": 1, "duplicates": 0}
        again = post(client, url, {**headers, "Greenhouse-Event-ID": "brand-new-id"}, body)
    assert again.status_code == 200 and again.json() == {"received": 0, "duplicates": 1}
    assert WebhookDelivery.objects.count() == 1


def test_m3_greenhouse_replay_to_another_tenants_url_is_refused(client):
    mine = factories.integration(provider="greenhouse", mode="webhook")
    theirs = factories.integration(provider="greenhouse", mode="webhook")
    _, headers, body = signed(mine, greenhouse_body(77))
    answer = post(client, url_of(theirs), headers, body)
    assert answer.status_code == 401 and not WebhookDelivery.objects.exists()


@pytest.mark.parametrize("provider", ["lever", "greenhouse", "hubspot", "pandadoc"])
def test_m7_deeply_nested_json_is_400_before_the_signature_check(client, provider):
    integration = factories.integration(provider=provider, mode="webhook")
    body = b"[" * 50_000 + b"]" * 50_000
    answer = client.post(url_of(integration), body, content_type="application/json")
    assert answer.status_code == 400 and answer.json()["error"]["code"] == "malformed"
    if provider != "lever":  # Lever's signature lives inside the JSON: there is nothing to sign around it
        # Signed, it is refused all the same (the depth is checked before anything parses the body).
        url, headers, body = signed(integration, body)
        assert post(client, url, headers, body).status_code == 400
    assert not WebhookDelivery.objects.exists()


def test_an_oversized_body_is_413(client, settings):
    settings.WEBHOOK_MAX_BODY_BYTES = 1000
    integration = factories.integration(provider="greenhouse", mode="webhook")
    url, headers, body = signed(integration, json.dumps({"pad": "x" * 2000}).encode())
    answer = post(client, url, headers, body)
    assert answer.status_code == 413 and answer.json()["error"]["code"] == "too_large"


def test_an_inactive_tenants_webhooks_are_refused(client):
    integration = factories.integration(provider="greenhouse", mode="webhook")
    integration.tenant.is_active = False
    integration.tenant.save()
    url, headers, body = signed(integration, greenhouse_body(1))
    assert post(client, url, headers, body).status_code == 403
    assert not WebhookDelivery.objects.exists()


def test_rotating_the_secret_shows_it_once_audits_the_hint_and_the_old_secret_stops_working(
    client, superuser
):
    integration = factories.integration(provider="greenhouse", mode="webhook")
    old = integration.webhook_secret_value
    client.force_login(superuser)
    page = client.get(reverse("admin:integrations_integration_change", args=[integration.pk]))
    assert integration.webhook_url in page.content.decode()
    assert integration.webhook_secret_hint in page.content.decode() and old not in page.content.decode()
    shown = client.post(reverse("admin:integrations_integration_webhook_secret", args=[integration.pk]))
    integration.refresh_from_db()
    new = integration.webhook_secret_value
    assert new != old and new in shown.content.decode()
    assert "messages" not in shown.cookies  # shown in the page, not through the messages cookie
    event = AuditEvent.objects.get(action="integration.rotate_webhook_secret")
    assert (
        new not in json.dumps(event.details) and event.details["new_hint"] == integration.webhook_secret_hint
    )
    client.logout()
    url, headers, body = signed(integration, greenhouse_body(5), secret=old)
    assert post(client, url, headers, body).status_code == 401


def test_only_credential_managers_may_rotate(viewer, operator):
    integration = factories.integration(provider="greenhouse")
    from django.core.exceptions import PermissionDenied

    for who in (viewer, operator):
        with pytest.raises(PermissionDenied):
            services.integration_rotate_webhook_secret(integration=integration, actor=who)


def test_hubspot_replay_after_the_window_is_refused(client):
    integration = factories.integration(provider="hubspot", mode="webhook")
    body = json.dumps([{"eventId": 1, "objectId": 2, "occurredAt": int(time.time() * 1000)}]).encode()
    url, headers, body = signed(integration, body, now=datetime.now(UTC) - timedelta(minutes=6))
    assert post(client, url, headers, body).status_code == 401
