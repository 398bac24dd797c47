"""Telling people: internal status notes on the timeline, notices to the affected tenants, and RB-09's
"Escalation Path" (SEV-3 notifies the integrations on-call; SEV-2 also the backend on-call).

Every escalation and tenant notice is a row of the outbox (`Notification`), written in the transaction that
decides it and sent after commit by the task `incidents.send_notification` (`notification_send`); a failed
send is retried on a backoff by beat (`incidents.send_due_notifications`) until it is sent or has used
NOTIFICATION_MAX_ATTEMPTS. The timeline tells each step as it happened: "queued", then "sent" or
"failed: <error>". A mail server or chat webhook that is down never fails detection, a request or a page.

Channels: email through Django's mail backend (EMAIL_URL, through django-environ) to the on-call addresses
(ONCALL_INTEGRATIONS_EMAILS, ONCALL_BACKEND_EMAILS) and the tenants' contacts; and a Slack-compatible incoming
webhook per severity (ONCALL_CHAT_WEBHOOKS: {"SEV-2": url, "SEV-3": url}). No team is told twice about the
same severity.
"""

import logging
from dataclasses import dataclass, field
from datetime import timedelta
from functools import partial

import requests
from celery import signature
from django.conf import settings
from django.core.mail import EmailMessage, get_connection
from django.db import transaction
from django.db.models import F, Q
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from incidents import conf, errors
from incidents.models import (
    Incident,
    IncidentEvent,
    Notification,
    NotificationChannel,
    NotificationPurpose,
    NotificationStatus,
    RunbookId,
    Severity,
)
from incidents.services import timeline
from integrations.access.actors import Actor, System
from integrations.catalog import PROVIDERS
from integrations.models import AuditAction

TEAMS = {"integrations": "ONCALL_INTEGRATIONS_EMAILS", "backend": "ONCALL_BACKEND_EMAILS"}
SEND_TASK = "incidents.send_notification"
CHAT_TIMEOUT_SECONDS = 10
RETRY_BASE_SECONDS = 30
RETRY_CAP_SECONDS = 15 * 60
# A claimed row not finished within this (a worker died mid-send) may be tried again.
CLAIM_SECONDS = 120
log = logging.getLogger(__name__)
SENDER = System("notifications")

# ------------------------------------------------------------------------------------------ notes and notices


def one_line(text: str) -> str:
    """A mail header value: CR/LF in a tenant name or an alert summary would break the headers (issue 13, L6)."""
    return " ".join(str(text).split())


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
    notices, sent, skipped = [], [], []
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
        subject = one_line(render_to_string("incidents/email/tenant_notice_subject.txt", context))
        body = render_to_string("incidents/email/tenant_notice.txt", context)
        notices.append((tenant.slug, to, subject, body))
        sent.append(tenant.slug)
    summary = f"Tenant notices queued for {len(sent)} affected tenants; next update at {next_update:%H:%M %Z}"
    if skipped:
        summary += f"; no contact for {', '.join(skipped)}"
    with transaction.atomic():
        rows = [
            queue_notification(
                incident=incident,
                actor=actor,
                purpose=NotificationPurpose.TENANT_NOTICE,
                channel=NotificationChannel.EMAIL,
                label=f"tenant {slug}",
                to=to,
                subject=subject,
                body=body,
                note=False,
            )
            for slug, to, subject, body in notices
        ]
        timeline.event(
            incident,
            "notify",
            actor,
            summary,
            {
                "sent": sent,
                "skipped": skipped,
                "next_update": next_update.isoformat(),
                "notifications": [n.pk for n in rows],
            },
        )
        timeline.audit(
            incident, actor, AuditAction.INCIDENT_NOTIFY_TENANTS, {"sent": len(sent), "skipped": skipped}
        )
    return {"sent": len(sent), "skipped": skipped, "summary": summary}


# ------------------------------------------------------------------------------------------ escalation


@dataclass
class EscalationResult:
    sent: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

    @property
    def summary(self) -> str:
        parts = [f"queued for {', '.join(self.sent)} on-call"] if self.sent else []
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
            subject, body = _page(incident, team)
            row = queue_notification(
                incident=incident,
                actor=actor,
                purpose=NotificationPurpose.ESCALATION,
                channel=NotificationChannel.EMAIL,
                label=f"{team} on-call ({incident.severity})",
                to=to,
                subject=subject,
                body=body,
                note=False,
            )
            timeline.event(
                incident,
                "escalation",
                actor,
                f"Escalation to {team} on-call ({incident.severity}) queued: {', '.join(to)}",
                {"team": team, "severity": incident.severity, "to": to, "notification": row.pk},
            )
            timeline.audit(
                incident,
                actor,
                AuditAction.INCIDENT_ESCALATE_NOTIFY,
                {"team": team, "severity": incident.severity, "notification": row.pk},
            )
            result.sent.append(team)
        if result.sent and chat_webhook(incident.severity):
            subject, body = _page(incident, "on-call")
            queue_notification(
                incident=incident,
                actor=actor,
                purpose=NotificationPurpose.ESCALATION,
                channel=NotificationChannel.CHAT,
                label=f"on-call chat ({incident.severity})",
                to=[incident.severity],
                subject=subject,
                body=body,
            )
    return result


def _page(incident: Incident, team: str) -> tuple[str, str]:
    url = (
        f"{settings.CONSOLE_URL.rstrip('/')}{reverse('admin:incidents_incident_tracker', args=[incident.pk])}"
    )
    provider = PROVIDERS[incident.provider].name
    subject = one_line(f"[{incident.severity}] {provider} incident INC-{incident.pk}: {incident.title}")
    body = (
        f"{team.capitalize()}: you are paged for INC-{incident.pk} ({incident.severity}).\n\n"
        f"Provider: {provider}\nRunbook: {incident.runbook}\nDetected by: {incident.detected_by}\n"
        f"Status: {incident.get_status_display()}\nFallback (polling) available: "
        f"{'yes' if incident.fallback_available else 'no'}\n\nTracker: {url}\n"
    )
    return subject, body


# ------------------------------------------------------------------------------------------ the outbox


def chat_webhook(severity: str) -> str:
    """The Slack-compatible incoming-webhook URL for a severity ('' when none is configured)."""
    return (getattr(settings, "ONCALL_CHAT_WEBHOOKS", None) or {}).get(severity, "") or ""


def max_attempts() -> int:
    return int(getattr(settings, "NOTIFICATION_MAX_ATTEMPTS", 10))


def retry_delay(attempts: int) -> timedelta:
    """30 s, 1, 2, 4, 8 minutes ... at most 15 minutes between tries."""
    return timedelta(seconds=min(RETRY_CAP_SECONDS, RETRY_BASE_SECONDS * 2 ** max(0, attempts - 1)))


def queue_notification(
    *,
    incident: Incident,
    actor: Actor,
    purpose: str,
    channel: str,
    label: str,
    to: list[str],
    subject: str,
    body: str,
    note: bool = True,
) -> Notification:
    """Write one outbox row (in the caller's transaction) and send it after commit; `note` puts "queued" on the
    timeline (callers that write their own event pass False)."""
    row = Notification.objects.create(
        incident=incident,
        purpose=purpose,
        channel=channel,
        label=label[:200],
        to=to,
        subject=subject[:300],
        body=body,
    )
    if note:
        timeline.event(
            incident,
            "notification",
            actor,
            f"{row.get_purpose_display()} to {row.label} queued",
            {"notification": row.pk, "status": row.status, "channel": channel},
        )
    transaction.on_commit(partial(_enqueue, row.pk), robust=True)
    return row


def _enqueue(notification_id: int) -> None:
    """Hand the row to a worker; when the broker is down the row waits for beat's sweep instead."""
    try:
        signature(SEND_TASK, args=(notification_id,)).apply_async()
    except Exception as e:  # a broker outage must not fail the request or the detection pass
        log.warning("notification %s not enqueued (%s); beat will send it", notification_id, e)


def _deliver(row: Notification) -> None:
    """Send one row through its channel; raises on failure."""
    if row.channel == NotificationChannel.CHAT:
        severity = (row.to or [""])[0]
        url = chat_webhook(severity)
        if not url:
            raise RuntimeError(f"no chat webhook configured for {severity} (ONCALL_CHAT_WEBHOOKS)")
        response = requests.post(
            url, json={"text": f"*{row.subject}*\n{row.body}"}, timeout=CHAT_TIMEOUT_SECONDS
        )
        if response.status_code >= 300:
            raise RuntimeError(f"chat webhook answered {response.status_code}: {response.text[:200]}")
        return
    get_connection(fail_silently=False).send_messages(
        [EmailMessage(subject=row.subject, body=row.body, to=list(row.to))]
    )


def notification_send(*, notification_id: int, actor: Actor | None = None) -> Notification | None:
    """Send one queued (or failed and due) outbox row once; the outcome is stored and told on the timeline.
    Never raises for a failed send: the row records the error and when it is tried again."""
    actor = actor or SENDER
    now = timezone.now()
    row = Notification.objects.filter(pk=notification_id).select_related("incident").first()
    if row is None or row.status == NotificationStatus.SENT or row.attempts >= max_attempts():
        return row
    # Claim it: only one worker sends a row at a time (a concurrent claim updates nothing).
    claimed = (
        Notification.objects.filter(pk=row.pk, attempts=row.attempts)
        .exclude(status=NotificationStatus.SENT)
        .filter(Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now))
        .update(attempts=F("attempts") + 1, next_attempt_at=now + timedelta(seconds=CLAIM_SECONDS))
    )
    if not claimed:
        return row
    row.refresh_from_db()
    try:
        _deliver(row)
    except Exception as e:  # any failure of the mail server or the webhook is the row's, not the caller's
        error = f"{type(e).__name__}: {e}"[:2000]
        final = row.attempts >= max_attempts()
        row.status, row.last_error = NotificationStatus.FAILED, error
        row.next_attempt_at = None if final else timezone.now() + retry_delay(row.attempts)
        row.save(update_fields=["status", "last_error", "next_attempt_at"])
        when = (
            "giving up"
            if final
            else f"attempt {row.attempts} of {max_attempts()}, next at "
            f"{timezone.localtime(row.next_attempt_at):%H:%M:%S %Z}"
        )
        _note_outcome(row, actor, f"failed: {error} ({when})")
        return row
    row.status, row.sent_at, row.last_error, row.next_attempt_at = (
        NotificationStatus.SENT,
        timezone.now(),
        "",
        None,
    )
    row.save(update_fields=["status", "sent_at", "last_error", "next_attempt_at"])
    to = ", ".join(row.to) if row.channel == NotificationChannel.EMAIL else "chat webhook"
    _note_outcome(row, actor, f"sent to {to} (attempt {row.attempts})")
    return row


_OUTCOME_PREFIX = {NotificationPurpose.ESCALATION: "Escalation", NotificationPurpose.TENANT_NOTICE: "Notice"}


def _note_outcome(row: Notification, actor: Actor, outcome: str) -> None:
    timeline.event(
        row.incident,
        "notification",
        actor,
        # "Escalation to integrations on-call (SEV-3) sent ...", as the queued line says it (the purpose's own
        # label, "Escalation to on-call", would say "to" twice).
        f"{_OUTCOME_PREFIX.get(row.purpose, row.get_purpose_display())} to {row.label} {outcome}",
        {
            "notification": row.pk,
            "status": row.status,
            "attempts": row.attempts,
            "channel": row.channel,
            "error": row.last_error,
        },
    )
    timeline.audit(
        row.incident,
        actor,
        AuditAction.INCIDENT_NOTIFICATION,
        {"notification": row.pk, "status": row.status, "attempts": row.attempts, "label": row.label},
    )


def notifications_send_due(*, limit: int = 200) -> int:
    """Beat: send the rows whose time has come (failed and due, or queued and never picked up)."""
    now = timezone.now()
    due = (
        Notification.objects.exclude(status=NotificationStatus.SENT)
        .filter(attempts__lt=max_attempts())
        .filter(
            Q(next_attempt_at__lte=now)
            | Q(next_attempt_at__isnull=True, created_at__lte=now - timedelta(seconds=30))
        )
        .order_by("created_at")
        .values_list("pk", flat=True)[:limit]
    )
    sent = 0
    for pk in list(due):
        row = notification_send(notification_id=pk)
        sent += bool(row is not None and row.status == NotificationStatus.SENT)
    return sent
