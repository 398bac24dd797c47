"""RB-03, rate limit exhaustion: pause non-critical syncs together, resume them together."""
from django.db.models import Q

from .. import errors
from ..actors import Actor
from ..catalog import PROVIDERS
from ..models import Integration
from .core import ActionResult, integration_pause, integration_resume

__all__ = ["NON_CRITICAL_PREFIX", "integrations_pause_non_critical", "integrations_resume_non_critical"]

# Marks a pause made by this action, so that "resume them together" finds exactly these and no other pause.
NON_CRITICAL_PREFIX = "[RB-03 non-critical pause] "


def _provider(provider: str) -> str:
    if provider not in PROVIDERS:
        raise errors.ServiceError(errors.UNKNOWN_PROVIDER.format(provider=provider), field="provider", code="not_found")
    return provider


def integrations_pause_non_critical(*, provider: str, actor: Actor, reason: str) -> ActionResult:
    """Pause every integration of the provider whose is_critical is off (RB-03 step 3); critical ones keep syncing."""
    reason = (reason or "").strip()
    if not reason:
        raise errors.ServiceError(errors.REASON_REQUIRED, field="reason")
    targets = Integration.objects.filter(provider=_provider(provider), is_critical=False)
    result = integration_pause(integrations=targets, actor=actor, reason=NON_CRITICAL_PREFIX + reason)
    result.details["n_critical_still_syncing"] = Integration.objects.filter(
        provider=provider, is_critical=True, enabled=True, sync_paused=False).count()
    return result


def integrations_resume_non_critical(*, provider: str, actor: Actor) -> ActionResult:
    """Resume the integrations that integrations_pause_non_critical paused, and only those."""
    targets = Integration.objects.filter(
        Q(sync_paused_reason__startswith=NON_CRITICAL_PREFIX), provider=_provider(provider), sync_paused=True)
    return integration_resume(integrations=targets, actor=actor)
