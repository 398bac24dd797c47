"""Sync and maintenance tasks: thin callers of the sync engine and services. They take ids and return early."""

from dataclasses import asdict

from celery import shared_task

from integrations import services
from integrations.engine import dispatch, rollups, run, status_pages, webhooks
from integrations.services import demo

SYNC_QUEUE = "sync"


@shared_task(name="integrations.sync_integration", queue=SYNC_QUEUE)
def sync_integration(
    integration_id: int, pull: bool | None = None, record_ids: list[int] | None = None
) -> dict:
    summary = run.sync_integration(integration_id, pull=pull, record_ids=record_ids)
    if summary.more or (summary.ran and record_ids is not None and dispatch.has_work(integration_id)):
        # Work is chunked: the next batch goes to the back of the queue, so other integrations get their turn.
        # A run for chosen records ("Sync now", a few changed records) hands the rest of the backlog on too:
        # when it took the lease, the backlog's own next run found "another sync is running" and stopped.
        # No pause after a run that pushed something (the queue's order is the turn-taking; a pause only left
        # the provider's quota unused during a drain); a run that moved nothing waits a little.
        moved = summary.pushed + summary.failed + summary.retrying
        sync_integration.apply_async((integration_id,), countdown=0 if moved else 0.5)
    return asdict(summary)


@shared_task(name="integrations.process_webhook", queue=SYNC_QUEUE)
def process_webhook(delivery_id: int) -> str | None:
    delivery = webhooks.process_webhook(delivery_id)
    return delivery.status if delivery else None


@shared_task(name="integrations.dispatch_due_syncs", queue="default")
def dispatch_due_syncs() -> dict:
    """Beat, every few seconds: start syncs that are due, retry webhooks, recover what a dead worker left."""
    recovered = dispatch.recover_stuck()
    integration_ids = dispatch.due_integration_ids()
    for pk in sorted(integration_ids):
        sync_integration.delay(pk)
    webhook_ids = dispatch.due_webhook_ids()
    for pk in webhook_ids:
        process_webhook.delay(pk)
    return {"syncs": len(integration_ids), "webhooks": len(webhook_ids), "recovered": recovered}


@shared_task(name="integrations.sweep_pending_records", queue="default")
def sweep_pending_records() -> int:
    """Beat, every few minutes: integrations whose changed records were never enqueued get a sync."""
    ids = dispatch.integrations_with_pending_records()
    for pk in ids:
        sync_integration.delay(pk)
    return len(ids)


@shared_task(name="integrations.refresh_expiring_tokens", queue="default")
def refresh_expiring_tokens() -> dict:
    result = services.tokens_refresh_expiring()
    return {"refreshed": result.changed, "failed": result.details.get("n_failed", 0)}


@shared_task(name="integrations.read_status_pages", queue="default")
def read_status_pages() -> dict:
    return status_pages.read_all_status_pages()


@shared_task(name="integrations.prune_rollups", queue="default")
def prune_rollups() -> int:
    return rollups.prune()


@shared_task(name="integrations.resume_expired_pauses", queue="default")
def resume_expired_pauses() -> int:
    return services.integrations_resume_expired_pauses().changed


@shared_task(name="integrations.demo_activity", queue="default")
def demo_activity() -> dict:
    """Demo only (DEMO_ACTIVITY=1): tenants and providers keep changing records."""
    return demo.tick()
