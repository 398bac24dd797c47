"""The integration switches: pause, resume, disable, enable; set-based, audited per integration."""

from datetime import datetime

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from integrations import errors
from integrations.access.actors import OPERATE, Actor, System, audit_fields, require, scope_integrations
from integrations.models import AuditAction, AuditEvent, Integration, PauseSource
from integrations.services.common import CHUNK, ActionResult, as_queryset


def apply_switch(
    *,
    action: str,
    integrations,
    actor: Actor,
    perm: str,
    already: Q,
    changes: dict,
    details: dict,
    dry_run: bool = False,
) -> ActionResult:
    """Apply `changes` to every integration not `already` in the wanted state; audit each one targeted.
    `dry_run` only counts what would change (no write, no audit)."""
    require(actor, perm)
    qs = scope_integrations(actor, as_queryset(integrations)).order_by()
    result = ActionResult(action=action, details=details)
    if dry_run:
        result.unchanged = qs.filter(already).count()
        result.changed = qs.count() - result.unchanged
        return result
    now = timezone.now()
    last_pk = 0
    while True:
        with transaction.atomic():
            rows = list(
                qs.filter(pk__gt=last_pk)
                .order_by("pk")
                .select_for_update()
                .values_list("pk", "tenant_id", "provider")[:CHUNK]
            )
            if not rows:
                break
            ids = [r[0] for r in rows]
            last_pk = ids[-1]
            to_change = set(
                Integration.objects.filter(pk__in=ids).exclude(already).values_list("pk", flat=True)
            )
            if to_change:
                changed = Integration.objects.filter(pk__in=to_change)
                changed.update(**changes, updated_at=now)
                changed.settle_status()
            who = audit_fields(actor)
            AuditEvent.objects.bulk_create(
                [
                    AuditEvent(
                        action=action,
                        integration_id=pk,
                        tenant_id=tenant_id,
                        provider=provider,
                        details={**details, "changed": pk in to_change},
                        **who,
                    )
                    for pk, tenant_id, provider in rows
                ]
            )
            result.changed += len(to_change)
            result.unchanged += len(rows) - len(to_change)
    return result


def integration_pause(
    *,
    integrations,
    actor: Actor,
    reason: str,
    until: datetime | None = None,
    source: str = PauseSource.OPERATOR,
    incident: int | None = None,
) -> ActionResult:
    """Pause syncing (RB-03 "Pause Sync"); pausing a paused integration changes nothing.

    `source` and `incident` say who paused it, so that their undo resumes exactly these pauses.
    """
    reason = (reason or "").strip()
    if not reason:
        raise errors.ServiceError(errors.REASON_REQUIRED, field="reason")
    if until is not None and until <= timezone.now():
        raise errors.ServiceError(errors.UNTIL_IN_PAST, field="until")
    return apply_switch(
        action=AuditAction.INTEGRATION_PAUSE,
        integrations=integrations,
        actor=actor,
        perm=OPERATE,
        already=Q(sync_paused=True),
        changes={
            "sync_paused": True,
            "sync_paused_reason": reason[:500],
            "sync_paused_until": until,
            "sync_paused_source": source,
            "paused_for_incident": incident,
        },
        details={
            "reason": reason,
            "until": until.isoformat() if until else None,
            "source": source,
            **({"incident": incident} if incident else {}),
        },
    )


def integration_resume(*, integrations, actor: Actor) -> ActionResult:
    """Resume syncing; the status returns to what the last outcome says (connected, error, needs_reauth)."""
    return apply_switch(
        action=AuditAction.INTEGRATION_RESUME,
        integrations=integrations,
        actor=actor,
        perm=OPERATE,
        already=Q(sync_paused=False),
        changes={
            "sync_paused": False,
            "sync_paused_reason": "",
            "sync_paused_until": None,
            "sync_paused_source": "",
            "paused_for_incident": None,
        },
        details={},
    )


def integration_disable(
    *, integrations, actor: Actor, reason: str = "", incident: int | None = None
) -> ActionResult:
    """Disable an integration (RB-01 step 4, when it causes cascading failures)."""
    return apply_switch(
        action=AuditAction.INTEGRATION_DISABLE,
        integrations=integrations,
        actor=actor,
        perm=OPERATE,
        already=Q(enabled=False),
        changes={"enabled": False, "disabled_for_incident": incident},
        details={"reason": (reason or "").strip(), **({"incident": incident} if incident else {})},
    )


def integration_enable(*, integrations, actor: Actor) -> ActionResult:
    """Enable a disabled integration again."""
    return apply_switch(
        action=AuditAction.INTEGRATION_ENABLE,
        integrations=integrations,
        actor=actor,
        perm=OPERATE,
        already=Q(enabled=True),
        changes={"enabled": True, "disabled_for_incident": None},
        details={},
    )


def integrations_resume_expired_pauses(*, now: datetime | None = None) -> ActionResult:
    """Resume pauses whose `until` has passed (run by beat)."""
    now = now or timezone.now()
    due = Integration.objects.filter(sync_paused=True, sync_paused_until__lte=now)
    return integration_resume(integrations=due, actor=System("pause-expiry"))
