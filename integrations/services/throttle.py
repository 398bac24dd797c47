"""RB-03, rate limit exhaustion: pause non-critical syncs together, resume them together."""

from django.db import transaction
from django.utils import timezone

from integrations import errors
from integrations.access.actors import OPERATE, Actor, require
from integrations.catalog import PROVIDERS
from integrations.models import (
    ApiToken,
    ApiTokenScope,
    AuditAction,
    Integration,
    PauseSource,
    Record,
    SyncLog,
)
from integrations.services.common import PRIORITY_QUEUE, ActionResult, audit, enqueue_after_commit
from integrations.services.switches import integration_pause, integration_resume
from integrations.services.syncs import enqueue_syncs


def _provider(provider: str) -> str:
    if provider not in PROVIDERS:
        raise errors.ServiceError(
            errors.UNKNOWN_PROVIDER.format(provider=provider), field="provider", code="not_found"
        )
    return provider


def integrations_pause_non_critical(*, provider: str, actor: Actor, reason: str) -> ActionResult:
    """Pause every integration of the provider whose is_critical is off (RB-03 step 3); critical ones keep syncing."""
    reason = (reason or "").strip()
    if not reason:
        raise errors.ServiceError(errors.REASON_REQUIRED, field="reason")
    targets = Integration.objects.filter(provider=_provider(provider), is_critical=False)
    result = integration_pause(
        integrations=targets, actor=actor, reason=reason, source=PauseSource.NON_CRITICAL
    )
    result.details["n_critical_still_syncing"] = (
        Integration.objects.callable().filter(provider=provider, is_critical=True).count()
    )
    return result


def integrations_resume_non_critical(*, provider: str, actor: Actor) -> ActionResult:
    """Resume the integrations that integrations_pause_non_critical paused, and only those."""
    targets = Integration.objects.filter(
        provider=_provider(provider), sync_paused=True, sync_paused_source=PauseSource.NON_CRITICAL
    )
    return integration_resume(integrations=targets, actor=actor)


SYNC_NOW_MAX_RECORDS = 1000


def records_sync_now(*, records, actor: Actor) -> ActionResult:
    """Sync chosen records ahead of the queue (RB-03 step 4), through the same provider quota as everything else."""
    require(actor, OPERATE)
    if isinstance(actor, ApiToken) and actor.scope == ApiTokenScope.TENANT:
        records = records.filter(tenant_id=actor.tenant_id)
    chosen = list(records.order_by().values_list("pk", "tenant_id", "kind")[: SYNC_NOW_MAX_RECORDS + 1])
    if len(chosen) > SYNC_NOW_MAX_RECORDS:
        raise errors.ServiceError(errors.SYNC_NOW_TOO_MANY.format(n=SYNC_NOW_MAX_RECORDS), field="records")
    by_integration: dict[int, list[int]] = {}
    integrations = Integration.objects.filter(tenant_id__in={t for _, t, _ in chosen}, enabled=True)
    for integration in integrations:
        kind = PROVIDERS[integration.provider].record_kind
        ids = [pk for pk, tenant_id, k in chosen if tenant_id == integration.tenant_id and k == kind]
        if ids:
            by_integration[integration.pk] = ids
    with transaction.atomic():
        Record.objects.filter(pk__in=[pk for pk, _, _ in chosen]).update(sync_priority_at=timezone.now())
        for integration in integrations:
            ids = by_integration.get(integration.pk)
            if not ids:
                continue
            audit(
                actor=actor,
                action=AuditAction.RECORDS_SYNC_NOW,
                integration=integration,
                details={"records": len(ids)},
            )
            enqueue_after_commit(
                "integrations.sync_integration", integration.pk, None, ids, queue=PRIORITY_QUEUE
            )
    return ActionResult(
        action=AuditAction.RECORDS_SYNC_NOW,
        changed=len(chosen),
        details={"n_integrations": len(by_integration)},
    )


def provider_quota_restore(*, provider: str, actor: Actor, audit_extra: dict | None = None) -> ActionResult:
    """ "Quota is back": forget the provider's quota block (and its backoff), and make the retries it parked due
    now. Each parked attempt keeps its outcome; only its due time moves (it is retried once, as a new row)."""
    require(actor, OPERATE)
    _provider(provider)
    from integrations.engine.quota import provider_quota

    quota = provider_quota()
    blocked_for = quota.blocked_for(provider)
    now = timezone.now()
    with transaction.atomic():
        parked = SyncLog.objects.awaiting_retry().filter(
            provider=provider, error_category="rate_limited", next_attempt_at__gt=now, record__isnull=False
        )
        integration_ids = set(parked.values_list("integration_id", flat=True).distinct())
        changed = parked.update(next_attempt_at=now)
        quota.unblock(provider)
        audit(
            actor=actor,
            action=AuditAction.PROVIDER_QUOTA_RESTORE,
            provider=provider,
            details={
                "changed": changed,
                "blocked_for_seconds": round(blocked_for, 1),
                "n_integrations": len(integration_ids),
                **(audit_extra or {}),
            },
        )
        enqueue_syncs(integration_ids)
    return ActionResult(
        action=AuditAction.PROVIDER_QUOTA_RESTORE,
        changed=changed,
        details={"n_integrations": len(integration_ids), "was_blocked_for_seconds": round(blocked_for, 1)},
    )
