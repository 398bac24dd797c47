"""Telling people: internal status notes on the timeline, notices to the affected tenants, and RB-09's
"Escalation Path" (SEV-3 notifies the integrations on-call; SEV-2 also the backend on-call).

On-call addresses are settings (ONCALL_INTEGRATIONS_EMAILS, ONCALL_BACKEND_EMAILS); mail goes through Django's
mail backend after the transaction commits; every notice is on the incident's timeline, and no team is told
twice about the same severity.
"""

from dataclasses import dataclass, field
from datetime import timedelta
from functools import partial

from django.conf import settings
from django.core.mail import EmailMessage, get_connection
from django.db import transaction
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from incidents import conf, errors
from incidents.models import Incident, IncidentEvent, RunbookId, Severity
from incidents.services import timeline
from integrations.access.actors import Actor
from integrations.catalog import PROVIDERS
from integrations.models import AuditAction

TEAMS = {"integrations": "ONCALL_INTEGRATIONS_EMAILS", "backend": "ONCALL_BACKEND_EMAILS"}

# ------------------------------------------------------------------------------------------ notes and notices


def incident_post_note(*, incident: Incident, actor: Actor, message: str) -> IncidentEvent:
    """An internal status note on the timeline."""
    timeline.require(actor)
    message = (message or "").strip()
    if not message:
        raise errors.ServiceError(errors.NOTE_REQUIRED, field="message")
    with transaction.atomic():
        event = timeline.event(incident, "note", actor, message[:5000])
        timeline.audit(incident, actor, AuditAction.INCIDENT_NOTE, {"length": len(message)})
    return event


def incident_notify_tenants(
    *, incident: Incident, actor: Actor, next_update_minutes: int | None = None
) -> dict:
    """One email per affected tenant (to its contacts) with the provider, its impact and the next update time."""
    timeline.require(actor)
    minutes = next_update_minutes or conf.next_update_minutes()
    next_update = timezone.now() + timedelta(minutes=minutes)
    tenants = list(incident.affected_tenants.order_by("name").prefetch_related("incident_contacts"))
    if not tenants:
        raise errors.ServiceError(errors.NO_AFFECTED_TENANTS, code="no_tenants")
    failed_by_tenant = (incident.impact or {}).get("failed_records_by_tenant") or {}
    provider = PROVIDERS[incident.provider].name
    messages, sent, skipped = [], [], []
    for tenant in tenants:
        to = [c.email for c in tenant.incident_contacts.all()]
        if not to:
            skipped.append(tenant.slug)
            continue
        context = {
            "incident": incident,
            "tenant": tenant,
            "provider": provider,
            "failed_records": failed_by_tenant.get(tenant.slug, 0),
            "next_update": next_update,
            "runbook_title": RunbookId(incident.runbook).label,
        }
        subject = render_to_string("incidents/email/tenant_notice_subject.txt", context).strip()
        body = render_to_string("incidents/email/tenant_notice.txt", context)
        messages.append(EmailMessage(subject=subject, body=body, to=to))
        sent.append(tenant.slug)
    summary = f"Notified {len(sent)} affected tenants; next update at {next_update:%H:%M %Z}"
    if skipped:
        summary += f"; no contact for {', '.join(skipped)}"
    with transaction.atomic():
        timeline.event(
            incident,
            "notify",
            actor,
            summary,
            {"sent": sent, "skipped": skipped, "next_update": next_update.isoformat()},
        )
        timeline.audit(
            incident, actor, AuditAction.INCIDENT_NOTIFY_TENANTS, {"sent": len(sent), "skipped": skipped}
        )
        if messages:
            transaction.on_commit(partial(_send, messages))
    return {"sent": len(sent), "skipped": skipped, "summary": summary}


# ------------------------------------------------------------------------------------------ escalation


@dataclass
class EscalationResult:
    sent: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

    @property
    def summary(self) -> str:
        parts = [f"notified {', '.join(self.sent)} on-call"] if self.sent else []
        if self.skipped:
            parts.append(f"not again: {', '.join(self.skipped)}")
        return "Escalation: " + ("; ".join(parts) or "nobody to notify")


def teams_for(severity: str) -> list[str]:
    return ["integrations", "backend"] if severity == Severity.SEV2 else ["integrations"]


def incident_escalate(*, incident: Incident, actor: Actor) -> EscalationResult:
    """Notify the on-call rotas this incident's severity calls for, once per team and severity."""
    result = EscalationResult()
    with transaction.atomic():
        incident = timeline.lock(incident)
        told = {
            (e.details.get("team"), e.details.get("severity"))
            for e in incident.events.filter(kind="escalation").only("details")
        }
        messages = []
        for team in teams_for(incident.severity):
            if (team, incident.severity) in told:
                result.skipped.append(team)
                continue
            to = list(getattr(settings, TEAMS[team], []))
            if not to:
                timeline.event(
                    incident,
                    "escalation",
                    actor,
                    f"No {team} on-call address configured ({TEAMS[team]})",
                    {"team": team, "severity": incident.severity, "to": []},
                )
                result.skipped.append(team)
                continue
            messages.append(_page(incident, team, to))
            timeline.event(
                incident,
                "escalation",
                actor,
                f"Notified {team} on-call ({incident.severity}): {', '.join(to)}",
                {"team": team, "severity": incident.severity, "to": to},
            )
            timeline.audit(
                incident,
                actor,
                AuditAction.INCIDENT_ESCALATE_NOTIFY,
                {"team": team, "severity": incident.severity},
            )
            result.sent.append(team)
        if messages:
            transaction.on_commit(partial(_send, messages))
    return result


def _page(incident: Incident, team: str, to: list[str]) -> EmailMessage:
    url = (
        f"{settings.CONSOLE_URL.rstrip('/')}{reverse('admin:incidents_incident_tracker', args=[incident.pk])}"
    )
    provider = PROVIDERS[incident.provider].name
    subject = f"[{incident.severity}] {provider} incident INC-{incident.pk}: {incident.title}"
    body = (
        f"{team.capitalize()} on-call: you are paged for INC-{incident.pk} ({incident.severity}).\n\n"
        f"Provider: {provider}\nRunbook: {incident.runbook}\nDetected by: {incident.detected_by}\n"
        f"Status: {incident.get_status_display()}\nFallback (polling) available: "
        f"{'yes' if incident.fallback_available else 'no'}\n\nTracker: {url}\n"
    )
    return EmailMessage(subject=subject, body=body, to=to)


def _send(messages: list[EmailMessage]) -> None:
    get_connection().send_messages(messages)
