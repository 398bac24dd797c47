"""Signed webhook deliveries to the console, as a provider sends them (for tests through Django's client)."""

import json
import time

from django.urls import reverse

from integrations.providers import get_client_class


def hubspot_event(event_id: int, object_id: str) -> bytes:
    return json.dumps(
        [
            {
                "eventId": event_id,
                "subscriptionId": 1,
                "portalId": 42,
                "occurredAt": int(time.time() * 1000),
                "subscriptionType": "contact.creation",
                "objectId": object_id,
            }
        ]
    ).encode()


def post_signed(client, integration, body: bytes, *, secret=None):
    url = "http://testserver" + reverse("webhook", args=[integration.provider, integration.tenant.slug])
    _, headers, body = get_client_class(integration.provider).sign_webhook(
        secret=secret or integration.webhook_secret_value, url=url, body=body
    )
    extra = {f"HTTP_{k.upper().replace('-', '_')}": v for k, v in headers.items()}
    return client.post(url, body, content_type="application/json", **extra)
