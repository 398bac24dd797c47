"""API tokens: created with their raw value shown once, stored hashed, revoked."""

from django.db import transaction
from django.utils import timezone

from integrations.access.actors import MANAGE_CREDENTIALS, Actor, System, require
from integrations.models import ApiToken, AuditAction
from integrations.services.common import ActionResult, audit


def api_token_create(*, actor: Actor, name: str, scope: str, tenant=None) -> tuple[ApiToken, str]:
    """Create a bearer token; the raw value is returned once and only its hash is stored."""
    require(actor, MANAGE_CREDENTIALS)
    raw = ApiToken.generate()
    with transaction.atomic():
        token = ApiToken.objects.create(
            name=name,
            scope=scope,
            tenant=tenant,
            prefix=raw[:10],
            token_hash=ApiToken.hash(raw),
            created_by=actor if not isinstance(actor, ApiToken | System) else None,
        )
        audit(
            actor=actor,
            action=AuditAction.API_TOKEN_CREATE,
            tenant=tenant,
            details={"token": name, "scope": scope},
        )
    return token, raw


def api_token_revoke(*, tokens, actor: Actor) -> ActionResult:
    """Revoke tokens; a revoked token is refused from then on."""
    require(actor, MANAGE_CREDENTIALS)
    with transaction.atomic():
        names = list(tokens.filter(revoked_at__isnull=True).values_list("name", flat=True))
        n = tokens.filter(revoked_at__isnull=True).update(revoked_at=timezone.now())
        total = tokens.count()
        audit(actor=actor, action=AuditAction.API_TOKEN_REVOKE, details={"tokens": names})
    return ActionResult(action=AuditAction.API_TOKEN_REVOKE, changed=n, unchanged=total - n)
