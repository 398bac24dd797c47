"""OAuth access tokens: forced refresh (RB-02 step 1) and the proactive refresh of expiring ones."""

from datetime import timedelta

from django.utils import timezone

from integrations import errors
from integrations.access.actors import OPERATE, Actor, System, require, scope_integrations
from integrations.engine import calls
from integrations.models import AUTH_CATEGORIES, AuditAction, Integration, IntegrationStatus
from integrations.providers import ProviderError
from integrations.services.common import ActionResult, audit


def integration_refresh_token(*, integration: Integration, actor: Actor) -> ActionResult:
    """Force a token refresh (RB-02 step 1); a refused refresh leaves the integration needs_reauth."""
    require(actor, OPERATE)
    integration = (
        scope_integrations(actor, Integration.objects.filter(pk=integration.pk))
        .select_related("tenant")
        .first()
    )
    if integration is None:
        raise errors.ServiceError("No such integration.", code="not_found")
    if integration.auth_type != "oauth2":
        raise errors.ServiceError(errors.NOT_OAUTH, field="provider")
    if not integration.credentials.get("refresh_token"):
        raise errors.ServiceError(errors.NO_REFRESH_TOKEN)
    try:
        calls.refresh_token(integration)
    except ProviderError as e:
        audit(
            actor=actor,
            action=AuditAction.INTEGRATION_REFRESH_TOKEN,
            integration=integration,
            details={"outcome": "failed", "category": e.category, "error": e.message[:500]},
        )
        return ActionResult(
            action=AuditAction.INTEGRATION_REFRESH_TOKEN,
            unchanged=1,
            details={"outcome": "failed", "category": e.category, "error": e.message},
        )
    integration.refresh_from_db()
    if integration.last_error_category in AUTH_CATEGORIES:
        # The provider accepted us again: the auth failure is over, so the status settles from here on.
        Integration.objects.filter(pk=integration.pk).update(
            last_error_category="", last_error="", last_success_at=timezone.now()
        )
        Integration.objects.filter(pk=integration.pk).settle_status()
    audit(
        actor=actor,
        action=AuditAction.INTEGRATION_REFRESH_TOKEN,
        integration=integration,
        details={
            "outcome": "refreshed",
            "expires_at": integration.expires_at.isoformat() if integration.expires_at else None,
        },
    )
    return ActionResult(
        action=AuditAction.INTEGRATION_REFRESH_TOKEN,
        changed=1,
        details={"outcome": "refreshed", "expires_at": integration.expires_at},
    )


def tokens_refresh_expiring(*, within: timedelta = timedelta(minutes=10)) -> ActionResult:
    """Proactive refresh (RB-02 post-incident): OAuth tokens that expire within `within` are refreshed now."""
    actor = System("token-refresh")
    due = Integration.objects.filter(
        auth_type="oauth2", enabled=True, expires_at__lte=timezone.now() + within
    ).exclude(status=IntegrationStatus.NEEDS_REAUTH)
    result = ActionResult(action=AuditAction.TOKENS_REFRESH_EXPIRING, details={"n_failed": 0})
    for integration in due:
        if not integration.credentials.get("refresh_token"):
            continue
        outcome = integration_refresh_token(integration=integration, actor=actor)
        result.changed += outcome.changed
        result.details["n_failed"] += outcome.unchanged
    return result
