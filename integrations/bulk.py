"""Bulk work at scale: an action over a huge selection returns at once and runs in chunks in the background.

`start()` stores the selection as the pk ranges it had when the operator confirmed (computed in SQL, no pickled
queryset) and enqueues `recovery_tasks.run_bulk_operation`; `run()` works through them CHUNK ids at a time, each
chunk one transaction that also records the progress the console shows. Chunks re-apply the action's own
conditions (a re-run chunk changes nothing twice), and the operation row is locked per chunk so a redelivered
task never counts a chunk twice.
"""
import logging
import time
from bisect import bisect_right
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.db import connection, transaction
from django.db.models import F, QuerySet
from django.db.models.functions import Coalesce
from django.utils import timezone

from . import services
from .actors import OPERATE, Actor, System, actor_label, require
from .errors import ServiceError
from .models import ApiToken, BulkOperation, BulkOperationStatus, Defect, SyncLog

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
    run: Callable[[QuerySet, Actor, dict], "services.ActionResult"]


ACTIONS: dict[str, BulkAction] = {
    "sync_logs.retry_failed": BulkAction(
        SyncLog,
        lambda qs, params: services.retryable_logs(qs),
        lambda qs, actor, params: services.sync_logs_retry_failed(logs=qs, actor=actor),
    ),
    "defects.clear_stale": BulkAction(
        Defect,
        lambda qs, params: services.clearable_defects(defects=qs, defect_type=params.get("defect_type")),
        lambda qs, actor, params: services.defects_clear_stale(
            defects=qs, within=None, actor=actor, resolution=params["resolution"],
            defect_type=params.get("defect_type"),
        ),
    ),
}


# ------------------------------------------------------------------------------------------ actors


def actor_spec(actor: Actor) -> dict:
    """An actor as JSON, to act as the same actor in a worker."""
    if isinstance(actor, ApiToken):
        return {"type": "token", "id": actor.pk}
    if isinstance(actor, System):
        return {"type": "system", "name": actor.name}
    return {"type": "user", "id": actor.pk}


def actor_from_spec(spec: dict) -> Actor:
    if spec["type"] == "system":
        return System(spec["name"])
    if spec["type"] == "token":
        token = ApiToken.objects.filter(pk=spec["id"], revoked_at__isnull=True).select_related("tenant").first()
        if token is None:
            raise PermissionDenied("the API token that started this operation is gone or revoked")
        return token
    user = get_user_model().objects.filter(pk=spec["id"], is_active=True).first()
    if user is None:
        raise PermissionDenied("the user who started this operation is gone or inactive")
    return user


# ------------------------------------------------------------------------------------------ selection


def is_large(queryset: QuerySet, threshold: int | None = None) -> bool:
    """More than `threshold` rows? Counts at most threshold + 1 (a LIMITed subquery), never the whole table."""
    threshold = THRESHOLD if threshold is None else threshold
    return queryset.order_by()[: threshold + 1].count() > threshold


def pk_ranges(queryset: QuerySet) -> list[int]:
    """The selection's pks as runs of consecutive values, flat: [lo1, hi1, lo2, hi2, ...] (one SQL query)."""
    select_sql, params = queryset.order_by().annotate(bulk_pk=F("pk")).values("bulk_pk").query.sql_with_params()
    # Gaps and islands: consecutive pks share pk - row_number().
    sql = (
        "SELECT MIN(g.pk), MAX(g.pk) FROM (SELECT s.bulk_pk AS pk, s.bulk_pk - ROW_NUMBER() OVER (ORDER BY s.bulk_pk)"
        f" AS grp FROM ({select_sql}) AS s) AS g GROUP BY g.grp ORDER BY 1"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return [int(v) for row in cursor.fetchall() for v in row]


def count_in_ranges(ranges: list[int]) -> int:
    return sum(hi - lo + 1 for lo, hi in zip(ranges[::2], ranges[1::2], strict=True))


def next_ids(ranges: list[int], after: int, limit: int) -> list[int]:
    """Up to `limit` ids of the ranges greater than `after`, ascending."""
    highs = ranges[1::2]
    out: list[int] = []
    i = bisect_right(highs, after)
    while i < len(highs) and len(out) < limit:
        lo, hi = ranges[2 * i], highs[i]
        start = max(lo, after + 1)
        stop = min(hi, start + (limit - len(out)) - 1)
        out.extend(range(start, stop + 1))
        i += 1
    return out


# ------------------------------------------------------------------------------------------ start and run


def start(*, action: str, queryset: QuerySet, actor: Actor, params: dict | None = None) -> BulkOperation:
    """Record the selection and queue the background work; returns at once (one query over the selection)."""
    from . import recovery_tasks

    spec = ACTIONS[action]
    require(actor, OPERATE)
    params = dict(params or {})
    ranges = pk_ranges(spec.narrow(queryset, params))
    total = count_in_ranges(ranges)
    with transaction.atomic():
        operation = BulkOperation.objects.create(
            action=action, total=total, created_by=actor_label(actor),
            params={**params, "actor": actor_spec(actor), "ranges": ranges},
        )
        services.audit(actor=actor, action="bulk_operation.start",
                       details={"operation": operation.pk, "bulk_action": action, "total": total})
        transaction.on_commit(partial(recovery_tasks.run_bulk_operation.delay, operation.pk))
    return operation


def _finish(operation_id: int, status: str, error: str = "") -> None:
    BulkOperation.objects.filter(pk=operation_id).update(status=status, finished_at=timezone.now(), error=error[:2000])


def run_chunk(operation_id: int) -> bool:
    """Do the next chunk; True when more remains. The operation row is locked for the chunk's transaction."""
    with transaction.atomic():
        operation = BulkOperation.objects.select_for_update().filter(pk=operation_id).first()
        if operation is None or operation.status not in (BulkOperationStatus.QUEUED, BulkOperationStatus.RUNNING):
            return False
        spec = ACTIONS[operation.action]
        ids = next_ids(operation.params.get("ranges", []), operation.cursor, CHUNK)
        if not ids:
            operation.status, operation.finished_at = BulkOperationStatus.DONE, timezone.now()
            operation.save(update_fields=["status", "finished_at"])
            return False
        actor = actor_from_spec(operation.params["actor"])
        result = spec.run(spec.model.objects.filter(pk__in=ids), actor, operation.params)
        BulkOperation.objects.filter(pk=operation.pk).update(
            status=BulkOperationStatus.RUNNING, cursor=ids[-1], done=F("done") + len(ids),
            changed=F("changed") + result.changed, started_at=Coalesce(F("started_at"), timezone.now()),
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
