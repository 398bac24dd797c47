"""Bulk work at scale: an action over a huge selection returns at once and runs in chunks in the background.

`start()` stores the selection as data (its simple filters, or its ids: services/selection.py; never a pickled
query, issue 13) and the highest pk it had when the operator confirmed, and enqueues `recovery_tasks.run_bulk_operation`;
`run()` walks it by pk, CHUNK ids at a time (a keyset read on the primary key), each chunk one transaction that
also records the progress the console shows. Rows added after the confirmation are not touched; chunks
re-apply the action's own conditions (a re-run chunk changes nothing twice), and the operation row is locked
per chunk so a redelivered task never counts a chunk twice.
"""

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import Count, F, Max, QuerySet
from django.db.models.functions import Coalesce
from django.utils import timezone

from integrations.access.actors import OPERATE, Actor, actor_from_spec, actor_label, actor_spec, require
from integrations.errors import ServiceError
from integrations.models import AuditAction, BulkOperation, BulkOperationStatus, Defect, SyncLog
from integrations.services import recovery, selection
from integrations.services.common import ActionResult, audit, enqueue_after_commit

log = logging.getLogger(__name__)

# Selections larger than this go to the background (admin actions); smaller ones run in the request.
THRESHOLD = 5000
CHUNK = 2000
# One task works this long, then re-enqueues itself so other work gets the worker.
BUDGET_SECONDS = 20.0


@dataclass(frozen=True)
class BulkAction:
    model: type
    narrow: Callable[[QuerySet, dict], QuerySet]  # the rows of a selection the action may change
    run: Callable[[QuerySet, Actor, dict], ActionResult]


ACTIONS: dict[str, BulkAction] = {
    AuditAction.SYNC_LOGS_RETRY_FAILED: BulkAction(
        SyncLog,
        lambda qs, params: recovery.retryable_logs(qs),
        # No syncs queued per chunk: dispatch (every few seconds) starts the integrations with due retries.
        lambda qs, actor, params: recovery.sync_logs_retry_failed(logs=qs, actor=actor, enqueue=False),
    ),
    AuditAction.DEFECTS_CLEAR_STALE: BulkAction(
        Defect,
        lambda qs, params: recovery.clearable_defects(defects=qs, defect_type=params.get("defect_type")),
        lambda qs, actor, params: recovery.defects_clear_stale(
            defects=qs,
            within=None,
            actor=actor,
            resolution=params["resolution"],
            defect_type=params.get("defect_type"),
        ),
    ),
}


# ------------------------------------------------------------------------------------------ selection


def is_large(queryset: QuerySet, threshold: int | None = None) -> bool:
    """More than `threshold` rows? Counts at most threshold + 1 (a LIMITed subquery), never the whole table."""
    threshold = THRESHOLD if threshold is None else threshold
    return queryset.order_by()[: threshold + 1].count() > threshold


def freeze(queryset: QuerySet) -> dict:
    """A selection as data for BulkOperation.params (what the worker will select again)."""
    return selection.to_data(queryset.order_by())


def thaw(model: type, frozen: dict) -> QuerySet:
    return selection.from_data(model, frozen)


def next_ids(selection: QuerySet, *, after: int, up_to: int, limit: int) -> list[int]:
    """Up to `limit` pks of the selection in (after, up_to], ascending: one index range read per chunk."""
    return list(
        selection.filter(pk__gt=after, pk__lte=up_to).order_by("pk").values_list("pk", flat=True)[:limit]
    )


# ------------------------------------------------------------------------------------------ start and run


def start(*, action: str, queryset: QuerySet, actor: Actor, params: dict | None = None) -> BulkOperation:
    """Record the selection and queue the background work; returns at once (one query over the selection)."""

    spec = ACTIONS[action]
    require(actor, OPERATE)
    params = dict(params or {})
    chosen = spec.narrow(queryset, params)
    size = chosen.order_by().aggregate(total=Count("pk"), top=Max("pk"))
    total, top = size["total"], size["top"] or 0
    with transaction.atomic():
        operation = BulkOperation.objects.create(
            action=action,
            total=total,
            created_by=actor_label(actor),
            # The operator's selection as data; each chunk narrows it again (the action's own conditions).
            params={**params, "actor": actor_spec(actor), "selection": freeze(queryset), "max_pk": top},
        )
        audit(
            actor=actor,
            action=AuditAction.BULK_OPERATION_START,
            details={"operation": operation.pk, "bulk_action": action, "total": total},
        )
        enqueue_after_commit("integrations.run_bulk_operation", operation.pk)
    return operation


def _finish(operation_id: int, status: str, error: str = "") -> None:
    BulkOperation.objects.filter(pk=operation_id).update(
        status=status, finished_at=timezone.now(), error=error[:2000]
    )


def run_chunk(operation_id: int) -> bool:
    """Do the next chunk; True when more remains. The operation row is locked for the chunk's transaction."""
    with transaction.atomic():
        operation = BulkOperation.objects.select_for_update().filter(pk=operation_id).first()
        if operation is None or operation.status not in (
            BulkOperationStatus.QUEUED,
            BulkOperationStatus.RUNNING,
        ):
            return False
        spec = ACTIONS[operation.action]
        if "selection" not in operation.params:
            # An operation stored by an older version (a pickled query): never unpickled, start it again.
            raise ServiceError(
                "This operation was stored as a pickled query by an older version; start it again."
            )
        chosen = spec.narrow(thaw(spec.model, operation.params["selection"]), operation.params)
        ids = next_ids(chosen, after=operation.cursor, up_to=operation.params.get("max_pk", 0), limit=CHUNK)
        if not ids:
            # Rows that left the selection meanwhile (someone else retried them) were skipped: the walk is complete.
            operation.status, operation.finished_at, operation.done = (
                BulkOperationStatus.DONE,
                timezone.now(),
                operation.total,
            )
            operation.save(update_fields=["status", "finished_at", "done"])
            return False
        actor = actor_from_spec(operation.params["actor"])
        result = spec.run(spec.model.objects.filter(pk__in=ids), actor, operation.params)
        BulkOperation.objects.filter(pk=operation.pk).update(
            status=BulkOperationStatus.RUNNING,
            cursor=ids[-1],
            done=F("done") + len(ids),
            changed=F("changed") + result.changed,
            started_at=Coalesce(F("started_at"), timezone.now()),
        )
        return True


def run(operation_id: int, *, budget_seconds: float = BUDGET_SECONDS) -> bool:
    """Work through chunks for up to `budget_seconds`; True when more remains (the task re-enqueues itself)."""
    deadline = time.monotonic() + budget_seconds
    try:
        while run_chunk(operation_id):
            if time.monotonic() >= deadline:
                return True
    except (PermissionDenied, ServiceError) as e:
        _finish(operation_id, BulkOperationStatus.FAILED, getattr(e, "message", None) or str(e))
        return False
    except Exception as e:
        log.exception("bulk operation %s failed", operation_id)
        _finish(operation_id, BulkOperationStatus.FAILED, f"{type(e).__name__}: {e}")
        raise
    return False
