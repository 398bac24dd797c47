"""Processing a stored webhook delivery: fetch the records it names and apply them."""

from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from integrations.engine import rollups
from integrations.engine.calls import CallContext, NotCallable, QuotaUnavailable, backoff_seconds, may_call
from integrations.engine.outcomes import attempt_row, finish_attempt, note_error, note_success, record_call
from integrations.engine.pull import apply_remote
from integrations.models import (
    OutcomeKind,
    RecordLink,
    SyncDirection,
    SyncStatus,
    WebhookDelivery,
    WebhookStatus,
)
from integrations.providers import ProviderError


def _fetched(
    integration, remote_id: str, call, *, record_id=None, error: ProviderError | None = None
) -> None:
    """A fetch made for a webhook is an attempt like a sync's: one sync-log row (direction pull, operation
    "fetch"), counted in the rollups by finish_attempt, so that the error rates (issue 14), the dashboard's
    figures and the sync logs they link to count the same calls."""
    if record_id is None:
        record_id = (
            RecordLink.objects.filter(integration=integration, remote_id=remote_id)
            .values_list("record_id", flat=True)
            .first()
        )
    status = SyncStatus.SUCCESS if error is None else SyncStatus.FAILED
    row = attempt_row(integration, SyncDirection.PULL, "fetch", status=status, record_id=record_id)
    record_call(row, call)
    if error is not None:
        row.error_category, row.error_field = error.category, (error.field or "")[:200]
        row.error_message = error.message[:2000]
    finish_attempt(row)


def process_webhook(delivery_id: int) -> WebhookDelivery | None:
    """Fetch the record a webhook names and apply it; a failure is kept for a later retry, then DEAD."""
    delivery = WebhookDelivery.objects.select_related("integration__tenant").filter(pk=delivery_id).first()
    if delivery is None or delivery.status in (WebhookStatus.PROCESSED, WebhookStatus.DEAD):
        return delivery
    if delivery.next_attempt_at and delivery.next_attempt_at > timezone.now():
        # Not due: another task for it already tried (the dispatcher sent it again while workers were busy).
        return delivery
    integration = delivery.integration
    if not may_call(integration.pk):
        # Paused or disabled: keep the event, untouched, until the integration may sync again.
        WebhookDelivery.objects.filter(pk=delivery.pk).update(
            status=WebhookStatus.QUEUED, next_attempt_at=None
        )
        delivery.status = WebhookStatus.QUEUED
        return delivery
    delivery.attempts += 1
    now = timezone.now()
    ctx, fetching = None, ""
    try:
        ctx = CallContext(integration)
        for remote_id in delivery.payload.get("remote_ids", []):
            fetching = remote_id
            remote = ctx.call(lambda c, rid=remote_id: c.get_record(rid))
            call = ctx.client.last_call
            record, _ = apply_remote(integration, remote, when=timezone.now())
            _fetched(integration, remote_id, call, record_id=record.pk)
    except (ProviderError, NotCallable) as e:
        if isinstance(e, ProviderError) and not isinstance(e, QuotaUnavailable) and ctx is not None:
            # The provider saw this call: it counts in the error rates like a sync's (issue 14).
            _fetched(integration, str(fetching), e.call or ctx.client.last_call, error=e)
        delivery.last_error = str(e)[:2000]
        if delivery.attempts >= delivery.max_retries:
            delivery.status, delivery.next_attempt_at = WebhookStatus.DEAD, None
        else:
            delivery.status = WebhookStatus.FAILED
            # Webhooks wait longer between tries than pushes: a provider outage outlasts a burst of retries.
            wait = backoff_seconds(
                delivery.attempts, getattr(e, "retry_after", None), base=settings.WEBHOOK_RETRY_BASE_SECONDS
            )
            delivery.next_attempt_at = now + timedelta(seconds=wait)
        delivery.save(update_fields=["attempts", "status", "next_attempt_at", "last_error"])
        category = e.category if isinstance(e, ProviderError) else "unknown"
        rollups.count(
            kind=OutcomeKind.WEBHOOK, provider=delivery.provider, endpoint="webhook", category=category
        )
        if isinstance(e, ProviderError) and not isinstance(e, QuotaUnavailable):
            note_error(integration, e, now)
        return delivery
    delivery.status, delivery.processed_at, delivery.last_error, delivery.next_attempt_at = (
        WebhookStatus.PROCESSED,
        timezone.now(),
        "",
        None,
    )
    delivery.save(update_fields=["attempts", "status", "processed_at", "last_error", "next_attempt_at"])
    rollups.count(kind=OutcomeKind.WEBHOOK, provider=delivery.provider, endpoint="webhook")
    note_success(integration, timezone.now())
    return delivery
