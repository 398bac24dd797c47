"""Inbound webhook events: stored once each, then processed in the background by the engine."""

import json

from django.db import IntegrityError, transaction

from integrations.models import Integration, WebhookDelivery, WebhookStatus
from integrations.providers import WebhookEvent
from integrations.services.common import enqueue_after_commit


def webhook_events_store(*, integration: Integration, events: list[WebhookEvent]) -> tuple[int, int]:
    """Store each verified event once (the provider may retry one) and queue its processing: (stored, duplicates)."""
    stored = duplicates = 0
    for event in events:
        try:
            with transaction.atomic():
                delivery = WebhookDelivery.objects.create(
                    integration=integration,
                    provider=integration.provider,
                    event_id=event.event_id[:200],
                    status=WebhookStatus.RECEIVED,
                    payload={
                        "remote_ids": [event.remote_id],
                        "action": event.action,
                        "occurred_at": event.occurred_at.isoformat() if event.occurred_at else None,
                        "event": json.loads(json.dumps(event.raw, default=str)),
                    },
                )
                enqueue_after_commit("integrations.process_webhook", delivery.pk)
            stored += 1
        except IntegrityError:
            duplicates += 1  # the provider retried an event we already have: accepted once
    return stored, duplicates
