"""Webhook signatures and payloads, per provider: verify what arrives, parse it into events, sign for tests."""
from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from integrations.providers import get_client_class
from integrations.providers.base import WebhookEvent

__all__ = ["WebhookEvent", "parse_webhook", "sign_webhook", "supports_webhooks", "verify_webhook"]


def supports_webhooks(provider: str) -> bool:
    return get_client_class(provider).supports_webhooks


def verify_webhook(
    provider: str,
    *,
    secret: str,
    method: str,
    url: str,
    headers: Mapping[str, str],
    body: bytes,
    now: datetime | None = None,
) -> bool:
    """Whether a delivery is signed with the secret (constant-time; HubSpot also rejects > 5 min old)."""
    return get_client_class(provider).verify_webhook(
        secret=secret, method=method, url=url, headers=headers, body=body, now=now
    )


def parse_webhook(provider: str, *, headers: Mapping[str, str], body: bytes) -> list[WebhookEvent]:
    """The events in a delivery; ProviderError(category="validation") when malformed."""
    return get_client_class(provider).parse_webhook(headers=headers, body=body)


def sign_webhook(
    provider: str, *, secret: str, method: str = "POST", url: str, body: bytes, now: datetime | None = None
) -> tuple[str, dict[str, str], bytes]:
    """(url, headers, body) signed as the provider would deliver them."""
    return get_client_class(provider).sign_webhook(secret=secret, method=method, url=url, body=body, now=now)
