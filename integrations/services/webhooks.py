"""Inbound webhook events: stored once each, then processed in the background by the engine."""

import json

from django.db import IntegrityError, transaction

from integrations import errors
from integrations.access.actors import MANAGE_CREDENTIALS, Actor, require, scope_integrations
from integrations.models import AuditAction, Integration, WebhookDelivery, WebhookStatus, new_webhook_secret
from integrations.providers import WebhookEvent
from integrations.services.common import ActionResult, audit, enqueue_after_commit


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


def integration_rotate_webhook_secret(
    *, integration: Integration | int, actor: Actor, source: str = ""
) -> ActionResult:
    """Generate a new webhook secret for one integration (the old one stops working at once).

    The new secret is in the result (details["secret"]) to be shown once; the audit row keeps only its hint.
    """
    require(actor, MANAGE_CREDENTIALS)
    pk = integration.pk if isinstance(integration, Integration) else integration
    with transaction.atomic():
        locked = (
            scope_integrations(actor, Integration.objects.filter(pk=pk))
            .select_for_update()
            .select_related("tenant")
            .first()
        )
        if locked is None:
            raise errors.ServiceError("No such integration.", code="not_found")
        old_hint = locked.webhook_secret_hint
        locked.webhook_secret = new_webhook_secret()
        locked.save(update_fields=["webhook_secret", "updated_at"])
        details = {"old_hint": old_hint, "new_hint": locked.webhook_secret_hint}
        if source:
            details["source"] = source
        audit(
            actor=actor,
            action=AuditAction.INTEGRATION_ROTATE_WEBHOOK_SECRET,
            integration=locked,
            details=details,
        )
    return ActionResult(
        action=AuditAction.INTEGRATION_ROTATE_WEBHOOK_SECRET,
        changed=1,
        details={"secret": locked.webhook_secret_value, "hint": locked.webhook_secret_hint},
    )
