"""Who acts: a console user, an API token or the system (beat, a worker). One place for labels and rights."""

from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import PermissionDenied

from integrations.models import ActorType, ApiToken, ApiTokenScope


@dataclass(frozen=True)
class System:
    """The console itself acting: beat schedules, workers, detection."""

    name: str = "system"

    def __str__(self) -> str:
        return f"system:{self.name}" if self.name != "system" else "system"


Actor = AbstractBaseUser | ApiToken | System

# Rights named once; users get them through the groups created by migration.
OPERATE = "integrations.operate_integration"
MANAGE_CREDENTIALS = "integrations.manage_credentials"


def actor_label(actor: Actor) -> str:
    if isinstance(actor, ApiToken):
        return f"token:{actor.name}"
    if isinstance(actor, System):
        return str(actor)
    return actor.get_username()


def audit_fields(actor: Actor) -> dict:
    """The AuditEvent columns that say who acted."""
    if isinstance(actor, ApiToken):
        return {"actor_type": ActorType.TOKEN, "actor_token": actor, "actor": actor_label(actor)}
    if isinstance(actor, System):
        return {"actor_type": ActorType.SYSTEM, "actor": actor_label(actor)}
    return {"actor_type": ActorType.USER, "actor_user": actor, "actor": actor_label(actor)}


def require(actor: Actor, perm: str) -> None:
    """Refuse an actor that lacks a right. Tokens are limited by scope instead (see scope_integrations)."""
    if isinstance(actor, System | ApiToken):
        return
    if not (actor.is_active and actor.has_perm(perm)):
        raise PermissionDenied(f"{actor_label(actor)} may not do this (needs {perm})")


def scope_integrations(actor: Actor, queryset):
    """A tenant token sees and acts on its own tenant's integrations only."""
    if isinstance(actor, ApiToken) and actor.scope == ApiTokenScope.TENANT:
        return queryset.filter(tenant_id=actor.tenant_id)
    return queryset


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
        token = (
            ApiToken.objects.filter(pk=spec["id"], revoked_at__isnull=True).select_related("tenant").first()
        )
        if token is None:
            raise PermissionDenied("the API token that started this operation is gone or revoked")
        return token
    user = get_user_model().objects.filter(pk=spec["id"], is_active=True).first()
    if user is None:
        raise PermissionDenied("the user who started this operation is gone or inactive")
    return user
