"""An incident's status: it only moves forward. Acknowledging makes the acting person the commander; resolving
needs every verification check to pass (or a written reason); closing needs the postmortem when one is required
and every post-incident item done or skipped with a reason."""

from django.db import transaction
from django.utils import timezone

from incidents import errors
from incidents.models import STATUS_ORDER as ORDER
from incidents.models import Incident, IncidentStatus
from incidents.services import timeline
from incidents.services.checklist import (
    CONTAINMENT_RECORD_FROM,
    failing_verifications,
    incident_evaluate_checks,
    open_post_incident_items,
)
from incidents.services.postmortem import postmortem_missing, postmortem_requirement
from integrations.access.actors import Actor, System, actor_label
from integrations.models import AuditAction

TIMESTAMPS = {
    IncidentStatus.ACKNOWLEDGED: "acknowledged_at",
    IncidentStatus.CONTAINED: "contained_at",
    IncidentStatus.RECOVERING: "recovering_at",
    IncidentStatus.VERIFYING: "verifying_at",
    IncidentStatus.RESOLVED: "resolved_at",
    IncidentStatus.CLOSED: "closed_at",
}


def allowed_transitions(incident: Incident) -> list[str]:
    """The statuses an incident may move to: every later one."""
    return ORDER[ORDER.index(incident.status) + 1 :]


def incident_advance(*, incident: Incident, actor: Actor, to: str, override_reason: str = "") -> Incident:
    """Move the status forward (never back). Resolving needs every verification check to pass, or a written
    reason (audited); closing needs the postmortem when one is required."""
    timeline.require(actor)
    if to not in ORDER:
        raise errors.ServiceError(errors.UNKNOWN_STATUS.format(target=to), field="status")
    override_reason = (override_reason or "").strip()
    current = Incident.objects.get(pk=incident.pk)
    if ORDER.index(to) <= ORDER.index(current.status):
        raise errors.ServiceError(
            errors.BACKWARDS.format(current=current.status, target=to), code="backwards"
        )
    if ORDER.index(current.status) < ORDER.index(CONTAINMENT_RECORD_FROM) <= ORDER.index(to):
        incident_evaluate_checks(incident=current)  # containment's record is what holds as recovery begins
    resolving = ORDER.index(to) >= ORDER.index(IncidentStatus.RESOLVED) > ORDER.index(current.status)
    failing = failing_verifications(current) if resolving else []
    if failing and not override_reason:
        raise errors.ServiceError(
            errors.VERIFICATION_FAILING.format(failing="; ".join(failing)), code="verification_failing"
        )
    if to == IncidentStatus.CLOSED:
        why = postmortem_requirement(current)
        missing = postmortem_missing(current) if why else []
        if missing:
            raise errors.ServiceError(
                errors.POSTMORTEM_REQUIRED.format(why=why, missing=", ".join(missing)),
                code="postmortem_required",
            )
        left = open_post_incident_items(current)
        if left:
            raise errors.ServiceError(
                errors.POST_INCIDENT_OPEN.format(items="; ".join(left)), code="post_incident_open"
            )
    now = timezone.now()
    with transaction.atomic():
        locked = timeline.lock(current)
        if ORDER.index(to) <= ORDER.index(locked.status):
            raise errors.ServiceError(
                errors.BACKWARDS.format(current=locked.status, target=to), code="backwards"
            )
        previous = locked.status
        for status in ORDER[ORDER.index(previous) + 1 : ORDER.index(to) + 1]:
            field = TIMESTAMPS[status]
            if getattr(locked, field) is None:
                setattr(locked, field, now)
        if locked.commander_id is None and not isinstance(actor, System) and hasattr(actor, "get_username"):
            locked.commander = actor
        locked.status = to
        locked.save()
        details = {"from": previous, "to": to}
        message = f"Status {previous} → {to}"
        if failing:
            details.update({"override_reason": override_reason, "failing_checks": failing})
            message += f" despite failing verification checks; reason: {override_reason}"
        timeline.event(locked, "status", actor, message, details)
        timeline.audit(locked, actor, AuditAction.INCIDENT_STATUS, details)
    return locked


def incident_acknowledge(*, incident: Incident, actor: Actor) -> Incident:
    """The acting person becomes the commander and the incident is acknowledged."""
    timeline.require(actor)
    if hasattr(actor, "get_username"):
        with transaction.atomic():
            locked = timeline.lock(incident)
            if locked.commander_id != actor.pk:
                locked.commander = actor
                locked.save(update_fields=["commander"])
                timeline.event(locked, "commander", actor, f"{actor_label(actor)} is the incident commander")
                timeline.audit(
                    locked, actor, AuditAction.INCIDENT_COMMANDER, {"commander": actor_label(actor)}
                )
    incident = Incident.objects.get(pk=incident.pk)
    if incident.status == IncidentStatus.OPEN:
        incident = incident_advance(incident=incident, actor=actor, to=IncidentStatus.ACKNOWLEDGED)
    return incident
