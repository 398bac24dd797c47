"""Celery tasks for the recovery work: thin callers of integrations.services.bulk and the recovery services."""

from celery import shared_task
from django.utils.dateparse import parse_datetime

from integrations import services
from integrations.access.actors import System, actor_from_spec
from integrations.models import BulkOperation, Integration
from integrations.services import bulk


@shared_task(name="integrations.run_bulk_operation", queue="default")
def run_bulk_operation(operation_id: int) -> bool:
    """Work a BulkOperation for a while; the rest goes to the back of the queue. True when more remains."""
    more = bulk.run(operation_id)
    if more:
        run_bulk_operation.apply_async((operation_id,), countdown=0.5)
    return more


@shared_task(name="integrations.reconcile_integration", queue="default")
def reconcile_integration(
    integration_id: int, since: str, actor: dict | None = None, operation_id: int | None = None
) -> dict | None:
    """Reconcile one integration (admin "Reconcile" over many integrations queues one task each).

    Issue 13 (M6): the actor is the one recorded on the BulkOperation row that queued this task; an `actor`
    argument (a periodic task's kwargs, say) is ignored, and without a row the console itself acts.
    """
    integration = Integration.objects.filter(pk=integration_id).first()
    moment = parse_datetime(since) if isinstance(since, str) else None
    if integration is None or moment is None:
        return None
    operation = BulkOperation.objects.filter(pk=operation_id).first() if operation_id else None
    if operation is not None and integration_id in (operation.params.get("ids") or []):
        who = actor_from_spec(operation.params["actor"])
    else:
        who = System("reconcile")
    result = services.integrations_reconcile(integrations=integration, since=moment, actor=who)
    return {k: v for k, v in result.details.items() if k.startswith("n_")}
