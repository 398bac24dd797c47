"""The postmortem: when one is required, what it still lacks, and writing it (RB-09's analysis questions, the
resilience review and follow-ups with owners)."""

from datetime import datetime, timedelta

from django.db import transaction
from django.utils import timezone

from incidents import conf, errors
from incidents.models import Incident, Postmortem, Severity
from incidents.services import timeline
from integrations.access.actors import Actor, actor_label
from integrations.models import AuditAction

POSTMORTEM_TEXT_FIELDS = Postmortem.REQUIRED_FIELDS + (
    "multi_provider_strategy",
    "fallback_reliability",
    "local_caching",
)


def postmortem_requirement(incident: Incident, now: datetime | None = None) -> str:
    """Why a postmortem is required ('' when it is not): SEV-2, or SEV-3 open more than 2 hours."""
    if incident.severity == Severity.SEV2:
        return "SEV-2"
    end = incident.resolved_at or now or timezone.now()
    hours = conf.postmortem_after_hours()
    if end - incident.opened_at > timedelta(hours=hours):
        return f"SEV-3 open more than {hours:g} hours"
    return ""


def postmortem_missing(incident: Incident) -> list[str]:
    pm = Postmortem.objects.filter(incident=incident).first()
    fields = Postmortem.REQUIRED_FIELDS
    if pm is None:
        return [str(Postmortem._meta.get_field(f).verbose_name) for f in fields]
    return [str(Postmortem._meta.get_field(f).verbose_name) for f in fields if not getattr(pm, f).strip()]


def clean_follow_ups(follow_ups) -> list[dict]:
    """Follow-up items: each needs a description and an owner; empty rows are dropped."""
    out = []
    for row in follow_ups or []:
        if not isinstance(row, dict):
            raise errors.ServiceError(errors.FOLLOW_UP_INCOMPLETE, field="follow_ups")
        item, owner = str(row.get("item") or "").strip(), str(row.get("owner") or "").strip()
        if not item and not owner:
            continue
        if not item or not owner:
            raise errors.ServiceError(errors.FOLLOW_UP_INCOMPLETE, field="follow_ups")
        out.append({"item": item[:500], "owner": owner[:200], "done": bool(row.get("done"))})
    return out


def postmortem_save(*, incident: Incident, actor: Actor, data: dict) -> Postmortem:
    """Write the postmortem: RB-09's analysis questions, the resilience review and follow-ups with owners."""
    timeline.require(actor)
    values = {f: str(data.get(f) or "").strip() for f in POSTMORTEM_TEXT_FIELDS}
    values["follow_ups"] = clean_follow_ups(data.get("follow_ups"))
    values["author"] = actor_label(actor)
    with transaction.atomic():
        pm, created = Postmortem.objects.update_or_create(incident=incident, defaults=values)
        timeline.event(
            incident,
            "postmortem",
            actor,
            ("Postmortem written" if created else "Postmortem updated")
            + ("" if pm.is_complete else " (incomplete)"),
            {"complete": pm.is_complete, "follow_ups": len(values["follow_ups"])},
        )
        timeline.audit(incident, actor, AuditAction.INCIDENT_POSTMORTEM, {"complete": pm.is_complete})
    return pm
