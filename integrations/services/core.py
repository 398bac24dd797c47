"""Core actions: pause, resume, disable, enable, token refresh, API tokens, and the audit helper."""
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial

from django.db import transaction
from django.db.models import Case, F, Q, QuerySet, Value, When
from django.utils import timezone

from integrations import errors
from integrations.actors import (
    MANAGE_CREDENTIALS,
    OPERATE,
    Actor,
    System,
    audit_fields,
    require,
    scope_integrations,
)
from integrations.models import (
    AUTH_CATEGORIES,
    ApiToken,
    AuditEvent,
    ErrorCategory,
    Integration,
    IntegrationStatus,
    Record,
)

__all__ = ["ActionResult", "settled_status", "integration_pause", "integration_resume", "integration_disable", "integration_enable", "integrations_resume_expired_pauses", "audit", "api_token_create", "api_token_revoke", "integration_refresh_token", "tokens_refresh_expiring", "enqueue_syncs", "records_changed"]

# Chunk size for set-based changes that also write one audit row per integration.
CHUNK = 2000


@dataclass
class ActionResult:
    """What an action did: how many it changed and how many were already in the wanted state."""

    action: str
    changed: int = 0
    unchanged: int = 0
    details: dict = field(default_factory=dict)

    @property
    def total(self) -> int:
        return self.changed + self.unchanged


def settled_status():
    """The status an integration shows, from its switches and its last outcome (one SQL CASE, set-based)."""
    failing = Q(last_error_at__isnull=False) & (
        Q(last_success_at__isnull=True) | Q(last_error_at__gt=F("last_success_at"))
    )
    return Case(
        When(enabled=False, then=Value(IntegrationStatus.DISABLED)),
        When(sync_paused=True, then=Value(IntegrationStatus.PAUSED)),
        When(
            failing & Q(last_error_category__in=[ErrorCategory.AUTH_REFRESH_FAILED, ErrorCategory.AUTH_INVALID]),
            then=Value(IntegrationStatus.NEEDS_REAUTH),
        ),
        When(failing, then=Value(IntegrationStatus.ERROR)),
        default=Value(IntegrationStatus.CONNECTED),
    )


def _as_queryset(integrations) -> QuerySet:
    if isinstance(integrations, Integration):
        return Integration.objects.filter(pk=integrations.pk)
    return integrations


def _switch(
    *, action: str, integrations, actor: Actor, perm: str, already: Q, changes: dict, details: dict
) -> ActionResult:
    """Apply `changes` to every integration not `already` in the wanted state; audit each one targeted."""
    require(actor, perm)
    qs = scope_integrations(actor, _as_queryset(integrations)).order_by()
    result = ActionResult(action=action, details=details)
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
                # A second UPDATE: in one statement the CASE would still see the old switches.
                changed.update(status=settled_status())
            who = audit_fields(actor)
            AuditEvent.objects.bulk_create(
                [
                    AuditEvent(
                        action=action, integration_id=pk, tenant_id=tenant_id, provider=provider,
                        details={**details, "changed": pk in to_change}, **who,
                    )
                    for pk, tenant_id, provider in rows
                ]
            )
            result.changed += len(to_change)
            result.unchanged += len(rows) - len(to_change)
    return result


def integration_pause(*, integrations, actor: Actor, reason: str, until: datetime | None = None) -> ActionResult:
    """Pause syncing (RB-03 "Pause Sync"); pausing a paused integration changes nothing."""
    reason = (reason or "").strip()
    if not reason:
        raise errors.ServiceError(errors.REASON_REQUIRED, field="reason")
    if until is not None and until <= timezone.now():
        raise errors.ServiceError(errors.UNTIL_IN_PAST, field="until")
    return _switch(
        action="integration.pause", integrations=integrations, actor=actor, perm=OPERATE,
        already=Q(sync_paused=True),
        changes={"sync_paused": True, "sync_paused_reason": reason[:500], "sync_paused_until": until},
        details={"reason": reason, "until": until.isoformat() if until else None},
    )


def integration_resume(*, integrations, actor: Actor) -> ActionResult:
    """Resume syncing; the status returns to what the last outcome says (connected, error, needs_reauth)."""
    return _switch(
        action="integration.resume", integrations=integrations, actor=actor, perm=OPERATE,
        already=Q(sync_paused=False),
        changes={"sync_paused": False, "sync_paused_reason": "", "sync_paused_until": None},
        details={},
    )


def integration_disable(*, integrations, actor: Actor, reason: str = "") -> ActionResult:
    """Disable an integration (RB-01 step 4, when it causes cascading failures)."""
    return _switch(
        action="integration.disable", integrations=integrations, actor=actor, perm=OPERATE,
        already=Q(enabled=False), changes={"enabled": False}, details={"reason": (reason or "").strip()},
    )


def integration_enable(*, integrations, actor: Actor) -> ActionResult:
    """Enable a disabled integration again."""
    return _switch(
        action="integration.enable", integrations=integrations, actor=actor, perm=OPERATE,
        already=Q(enabled=True), changes={"enabled": True}, details={},
    )


def integrations_resume_expired_pauses(*, now: datetime | None = None) -> ActionResult:
    """Resume pauses whose `until` has passed (run by beat)."""
    now = now or timezone.now()
    due = Integration.objects.filter(sync_paused=True, sync_paused_until__lte=now)
    return integration_resume(integrations=due, actor=System("pause-expiry"))


def audit(*, actor: Actor, action: str, integration: Integration | None = None, tenant=None, provider: str = "",
          details: dict | None = None) -> AuditEvent:
    """Write one audit row; services call this for actions that are not about a set of integrations."""
    if integration is not None:
        tenant = tenant or integration.tenant
        provider = provider or integration.provider
    return AuditEvent.objects.create(
        action=action, integration=integration, tenant=tenant, provider=provider, details=details or {},
        **audit_fields(actor),
    )


def api_token_create(*, actor: Actor, name: str, scope: str, tenant=None) -> tuple[ApiToken, str]:
    """Create a bearer token; the raw value is returned once and only its hash is stored."""
    require(actor, MANAGE_CREDENTIALS)
    raw = ApiToken.generate()
    with transaction.atomic():
        token = ApiToken.objects.create(
            name=name, scope=scope, tenant=tenant, prefix=raw[:10], token_hash=ApiToken.hash(raw),
            created_by=actor if not isinstance(actor, ApiToken | System) else None,
        )
        audit(actor=actor, action="api_token.create", tenant=tenant, details={"token": name, "scope": scope})
    return token, raw


def api_token_revoke(*, tokens, actor: Actor) -> ActionResult:
    """Revoke tokens; a revoked token is refused from then on."""
    require(actor, MANAGE_CREDENTIALS)
    with transaction.atomic():
        names = list(tokens.filter(revoked_at__isnull=True).values_list("name", flat=True))
        n = tokens.filter(revoked_at__isnull=True).update(revoked_at=timezone.now())
        total = tokens.count()
        audit(actor=actor, action="api_token.revoke", details={"tokens": names})
    return ActionResult(action="api_token.revoke", changed=n, unchanged=total - n)


# ------------------------------------------------------------------------------------------ tokens and syncs


def integration_refresh_token(*, integration: Integration, actor: Actor) -> ActionResult:
    """Force a token refresh (RB-02 step 1); a refused refresh leaves the integration needs_reauth."""
    from integrations import sync
    from integrations.providers import ProviderError

    require(actor, OPERATE)
    integration = scope_integrations(actor, Integration.objects.filter(pk=integration.pk)).select_related("tenant").first()
    if integration is None:
        raise errors.ServiceError("No such integration.", code="not_found")
    if integration.auth_type != "oauth2":
        raise errors.ServiceError(errors.NOT_OAUTH, field="provider")
    if not integration.credentials.get("refresh_token"):
        raise errors.ServiceError(errors.NO_REFRESH_TOKEN)
    try:
        sync.refresh_token(integration)
    except ProviderError as e:
        audit(actor=actor, action="integration.refresh_token", integration=integration,
              details={"outcome": "failed", "category": e.category, "error": e.message[:500]})
        return ActionResult(action="integration.refresh_token", unchanged=1,
                            details={"outcome": "failed", "category": e.category, "error": e.message})
    integration.refresh_from_db()
    if integration.last_error_category in AUTH_CATEGORIES:
        # The provider accepted us again: the auth failure is over, so the status settles from here on.
        Integration.objects.filter(pk=integration.pk).update(
            last_error_category="", last_error="", last_success_at=timezone.now())
        Integration.objects.filter(pk=integration.pk).update(status=settled_status())
    audit(actor=actor, action="integration.refresh_token", integration=integration,
          details={"outcome": "refreshed", "expires_at": integration.expires_at.isoformat() if integration.expires_at else None})
    return ActionResult(action="integration.refresh_token", changed=1,
                        details={"outcome": "refreshed", "expires_at": integration.expires_at})


def tokens_refresh_expiring(*, within: timedelta = timedelta(minutes=10)) -> ActionResult:
    """Proactive refresh (RB-02 post-incident): OAuth tokens that expire within `within` are refreshed now."""
    actor = System("token-refresh")
    due = Integration.objects.filter(
        auth_type="oauth2", enabled=True, expires_at__lte=timezone.now() + within
    ).exclude(status=IntegrationStatus.NEEDS_REAUTH)
    result = ActionResult(action="tokens.refresh_expiring", details={"n_failed": 0})
    for integration in due:
        if not integration.credentials.get("refresh_token"):
            continue
        outcome = integration_refresh_token(integration=integration, actor=actor)
        result.changed += outcome.changed
        result.details["n_failed"] += outcome.unchanged
    return result


def enqueue_syncs(integration_ids, *, record_ids: list[int] | None = None) -> None:
    """Start syncs after the current transaction commits (a sync must see what was just saved)."""
    from integrations import tasks

    for pk in sorted(set(integration_ids)):
        transaction.on_commit(partial(tasks.sync_integration.delay, pk, None, record_ids))


def records_changed(*, record_ids: list[int]) -> int:
    """Local records changed: sync them to every integration of their tenant that takes their kind."""
    from integrations.catalog import PROVIDERS

    pairs = set(Record.objects.filter(pk__in=record_ids).values_list("tenant_id", "kind"))
    kinds = {}
    for tenant_id, kind in pairs:
        kinds.setdefault(kind, set()).add(tenant_id)
    targets = []
    for integration in Integration.objects.filter(tenant_id__in={t for t, _ in pairs}, enabled=True, sync_paused=False):
        if integration.tenant_id in kinds.get(PROVIDERS[integration.provider].record_kind, ()):
            targets.append(integration.pk)
    enqueue_syncs(targets)
    return len(targets)
