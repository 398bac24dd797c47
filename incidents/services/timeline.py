"""What every incident service shares: the right to operate, the incident's timeline event, the audit row that
mirrors it (with the incident's provider), and the row lock a change holds."""

from django.core.exceptions import PermissionDenied

from incidents.models import Incident, IncidentEvent
from integrations import services
from integrations.access.actors import Actor, actor_label
from integrations.access.actors import require as require_permission
from integrations.models import AuditAction

OPERATE_INCIDENT = "incidents.operate_incident"


def require(actor: Actor, perm: str = OPERATE_INCIDENT) -> None:
    """PermissionDenied unless the actor may work incidents."""
    require_permission(actor, perm)


def can_operate(user) -> bool:
    try:
        require(user)
    except PermissionDenied:
        return False
    return True


def event(
    incident: Incident, kind: str, actor: Actor | str, message: str, details: dict | None = None
) -> IncidentEvent:
    """One entry on the incident's timeline."""
    label = actor if isinstance(actor, str) else actor_label(actor)
    return IncidentEvent.objects.create(
        incident=incident, kind=kind, actor=label, message=message, details=details or {}
    )


def audit(incident: Incident, actor: Actor, action: AuditAction, details: dict | None = None) -> None:
    """The audit row of an incident change (an `incident.*` AuditAction), with its provider and runbook."""
    services.audit(
        actor=actor,
        action=action,
        provider=incident.provider,
        details={"incident": incident.pk, "runbook": incident.runbook, **(details or {})},
    )


def lock(incident: Incident) -> Incident:
    """The incident's row, locked for the rest of the transaction."""
    return Incident.objects.select_for_update().get(pk=incident.pk)
