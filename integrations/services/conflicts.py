"""Sync conflicts: a field changed both here and at the provider since the last agreed value (issue 12).

The engine holds such a field as a SYNC_CONFLICT defect (`engine.pull.merge`, policy `hold`) with the base, ours
and theirs. An operator settles it: "Keep ours" pushes the local value, "Take theirs" applies the provider's.
Each is audited and resolves the defect.
"""

from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from integrations import errors
from integrations.access.actors import OPERATE, Actor, actor_label, require, scope_integrations
from integrations.engine.mapping import mapping_for
from integrations.models import (
    AuditAction,
    Defect,
    DefectStatus,
    DefectType,
    Integration,
    Record,
    RecordLink,
)
from integrations.services.common import ActionResult, audit
from integrations.services.syncs import enqueue_syncs

KEEP_OURS = "Kept ours: the local value is pushed to the provider"
TAKE_THEIRS = "Took theirs: the provider's value is applied locally"


def open_conflicts(defects: QuerySet) -> QuerySet:
    return defects.filter(defect_type=DefectType.SYNC_CONFLICT, status=DefectStatus.OPEN).exclude(
        record__isnull=True
    )


def _targets(defects: QuerySet, actor: Actor) -> list[Defect]:
    require(actor, OPERATE)
    allowed = scope_integrations(actor, Integration.objects.all())
    qs = open_conflicts(defects).filter(integration__in=allowed.values("pk"))
    return list(qs.select_related("integration", "record").order_by("pk"))


def _resolve(defect: Defect, actor: Actor, resolution: str, now) -> None:
    Defect.objects.filter(pk=defect.pk).update(
        status=DefectStatus.RESOLVED, resolution=resolution, resolved_at=now, resolved_by=actor_label(actor)
    )


def conflict_keep_ours(*, defects: QuerySet, actor: Actor, audit_extra: dict | None = None) -> ActionResult:
    """Keep ours: the held fields' local values are pushed to the provider (the record is synced again)."""
    targets = _targets(defects, actor)
    now = timezone.now()
    integrations: set[int] = set()
    with transaction.atomic():
        for defect in targets:
            _resolve(defect, actor, KEEP_OURS, now)
            # The record looks changed again, so that the next run pushes it, held fields included.
            Record.objects.filter(pk=defect.record_id).update(updated_at=now)
            integrations.add(defect.integration_id)
            audit(
                actor=actor,
                action=AuditAction.CONFLICT_KEEP_OURS,
                integration=defect.integration,
                details={
                    "defect_id": defect.pk,
                    "record_id": defect.record_id,
                    "fields": {k: v.get("ours") for k, v in (defect.details.get("fields") or {}).items()},
                    **(audit_extra or {}),
                },
            )
        enqueue_syncs(integrations)
    return ActionResult(action=AuditAction.CONFLICT_KEEP_OURS, changed=len(targets))


def conflict_take_theirs(*, defects: QuerySet, actor: Actor, audit_extra: dict | None = None) -> ActionResult:
    """Take theirs: the held fields get the provider's values locally; they become the agreed values."""
    targets = _targets(defects, actor)
    now = timezone.now()
    with transaction.atomic():
        for defect in targets:
            entries = defect.details.get("fields") or {}
            theirs = {e["remote_field"]: e.get("theirs") for e in entries.values()}
            mapping = mapping_for(defect.integration)
            # Link before record, as apply_remote and a push lock and write them: no deadlock with either.
            link = (
                RecordLink.objects.select_for_update()
                .filter(record_id=defect.record_id, integration=defect.integration)
                .first()
            )
            record = Record.objects.select_for_update().get(pk=defect.record_id)
            was_pending = link is None or link.synced_at is None or record.updated_at > link.synced_at
            record.payload = {**record.payload, **mapping.to_local(theirs)}
            Record.objects.filter(pk=record.pk).update(payload=record.payload, updated_at=now)
            if link is not None:
                changes = {"base": {**(link.base or {}), **theirs}}
                if not was_pending:
                    changes["synced_at"] = now  # nothing else waits: applied, not a local change to push
                RecordLink.objects.filter(pk=link.pk).update(**changes)
            _resolve(defect, actor, TAKE_THEIRS, now)
            audit(
                actor=actor,
                action=AuditAction.CONFLICT_TAKE_THEIRS,
                integration=defect.integration,
                details={
                    "defect_id": defect.pk,
                    "record_id": defect.record_id,
                    "fields": {k: v.get("theirs") for k, v in entries.items()},
                    **(audit_extra or {}),
                },
            )
    return ActionResult(action=AuditAction.CONFLICT_TAKE_THEIRS, changed=len(targets))


def conflict_resolve(*, defect_id: int, choice: str, actor: Actor) -> ActionResult:
    """One conflict by id, "ours" or "theirs" (the API's entry point)."""
    if choice not in ("ours", "theirs"):
        raise errors.ServiceError(errors.CONFLICT_CHOICE, field="choice")
    defects = Defect.objects.filter(pk=defect_id)
    service = conflict_keep_ours if choice == "ours" else conflict_take_theirs
    result = service(defects=defects, actor=actor)
    if not result.changed:
        raise errors.ServiceError(errors.CONFLICT_NOT_OPEN, field="defect", code="not_found")
    return result
