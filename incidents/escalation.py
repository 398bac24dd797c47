"""RB-09 "Escalation Path": SEV-3 notifies the integrations on-call; SEV-2 also the backend on-call.

Addresses are settings (ONCALL_INTEGRATIONS_EMAILS, ONCALL_BACKEND_EMAILS); mail goes through Django's mail
backend after the transaction commits; every notice is on the incident's timeline, and no team is told twice
about the same severity.
"""
from dataclasses import dataclass, field
from functools import partial

from django.conf import settings
from django.core.mail import EmailMessage, get_connection
from django.db import transaction
from django.urls import reverse

from integrations.access.actors import Actor
from integrations.catalog import PROVIDERS

from .models import Incident, Severity

TEAMS = {"integrations": "ONCALL_INTEGRATIONS_EMAILS", "backend": "ONCALL_BACKEND_EMAILS"}


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
    from .services import _audit, _event, _locked

    result = EscalationResult()
    with transaction.atomic():
        incident = _locked(incident)
        told = {(e.details.get("team"), e.details.get("severity"))
                for e in incident.events.filter(kind="escalation").only("details")}
        messages = []
        for team in teams_for(incident.severity):
            if (team, incident.severity) in told:
                result.skipped.append(team)
                continue
            to = list(getattr(settings, TEAMS[team], []))
            if not to:
                _event(incident, "escalation", actor, f"No {team} on-call address configured ({TEAMS[team]})",
                       {"team": team, "severity": incident.severity, "to": []})
                result.skipped.append(team)
                continue
            messages.append(_message(incident, team, to))
            _event(incident, "escalation", actor,
                   f"Notified {team} on-call ({incident.severity}): {', '.join(to)}",
                   {"team": team, "severity": incident.severity, "to": to})
            _audit(incident, actor, "escalate_notify", {"team": team, "severity": incident.severity})
            result.sent.append(team)
        if messages:
            transaction.on_commit(partial(_send, messages))
    return result


def _message(incident: Incident, team: str, to: list[str]) -> EmailMessage:
    url = f"{settings.CONSOLE_URL.rstrip('/')}{reverse('admin:incidents_incident_tracker', args=[incident.pk])}"
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
