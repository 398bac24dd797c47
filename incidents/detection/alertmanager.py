"""Alertmanager's webhook (payload version 4) as a detector: a firing alert opens, reopens or updates the same
incident the console's own detection would open for that provider; a resolved alert is noted on its timeline.

- A notification may mix alerts: the ones this console knows (a known alertname and provider) are applied,
  the others are ignored and named in the answer (Alertmanager does not retry a 4xx, so refusing the whole
  notification would drop the good alerts with the bad). Only a body that is not Alertmanager's at all is
  refused.
- Each alert is applied once, by fingerprint, startsAt and status (`AppliedAlert`): a retried notification,
  or the same alert repeated, adds nothing.
- The alert's `severity` label is used when present: critical / page / SEV-2 -> SEV-2, warning / ticket /
  SEV-3 -> SEV-3; otherwise RB-09's rule (SEV-3 with a polling fallback, else SEV-2). An open incident's
  severity only ever rises.
- `detected_by` says "Alertmanager: <alertname>" and `Incident.detector` is "alertmanager".
"""

import hashlib
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime

from django.db import IntegrityError, transaction
from django.utils.dateparse import parse_datetime

from incidents.detection import rates
from incidents.models import ACTIVE_STATUSES, AppliedAlert, Detector, Incident, Severity
from incidents.services import timeline
from incidents.services.opening import default_severity, open_or_update_incident
from integrations.access.actors import Actor
from integrations.catalog import PROVIDERS
from integrations.models import AuditAction

KNOWN_ALERTS = {rates.ALERT_NAME: "provider_5xx", "IDISWebhookDeliveryFailures": "webhook"}
SEVERITY_LABELS = {
    "critical": Severity.SEV2,
    "page": Severity.SEV2,
    "sev-2": Severity.SEV2,
    "sev2": Severity.SEV2,
    "warning": Severity.SEV3,
    "ticket": Severity.SEV3,
    "sev-3": Severity.SEV3,
    "sev3": Severity.SEV3,
}
# An alert without startsAt is keyed on this instead (Alertmanager always sends one).
NO_START = datetime(1970, 1, 1, tzinfo=UTC)


class PayloadError(ValueError):
    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field, self.message = field, message


@dataclass
class Alert:
    index: int
    status: str
    name: str
    provider: str
    endpoint: str
    starts_at: datetime | None
    fingerprint: str
    summary: str
    severity: str = ""  # the label, as sent


@dataclass
class IntakeResult:
    opened: list[int] = field(default_factory=list)
    updated: list[int] = field(default_factory=list)
    resolved_noted: list[int] = field(default_factory=list)
    ignored: list[dict] = field(default_factory=list)
    duplicates: list[dict] = field(default_factory=list)

    def as_json(self) -> dict:
        return {
            "opened": self.opened,
            "updated": self.updated,
            "resolved_noted": self.resolved_noted,
            "ignored": self.ignored,
            "duplicates": self.duplicates,
        }


def severity_for(label: str, provider: str) -> str:
    """The incident severity an alert's `severity` label asks for (RB-09's rule when it names none)."""
    return SEVERITY_LABELS.get((label or "").strip().lower(), default_severity(provider))


def _fingerprint(labels: dict) -> str:
    return hashlib.sha256(json.dumps(labels, sort_keys=True, default=str).encode()).hexdigest()[:32]


class BadStart(ValueError):
    pass


def _starts_at(value) -> datetime | None:
    """startsAt as an aware time; Alertmanager's zero time (year 1) means unset (issue 13, M4: it made the
    screens answer 500 west of UTC); BadStart for an impossible, zoneless or far-off date."""
    if value is None:
        return None
    try:
        moment = parse_datetime(value) if isinstance(value, str) else None
    except (ValueError, OverflowError):  # 2026-02-30 (issue 13, L3)
        moment = None
    if moment is None:
        raise BadStart(f"startsAt is not an RFC 3339 time: {value!r}")
    if moment.year <= 1:
        return None
    if moment.tzinfo is None or not 1970 <= moment.year <= 9000:
        raise BadStart(f"startsAt must be a time with a zone, after 1970: {value!r}")
    return moment


def parse(payload) -> tuple[list[Alert], list[dict]]:
    """(alerts to apply, ignored alerts named with why). PayloadError only for a body that is not an
    Alertmanager notification at all."""
    if not isinstance(payload, dict):
        raise PayloadError("body", "The body must be Alertmanager's JSON object.")
    alerts = payload.get("alerts")
    if not isinstance(alerts, list) or not alerts:
        raise PayloadError("alerts", "'alerts' must be a non-empty list.")
    out, ignored = [], []
    for i, raw in enumerate(alerts):
        where = f"alerts[{i}]"

        def ignore(reason: str, name="", provider="", where=where) -> None:
            ignored.append({"alert": where, "alertname": name, "provider": provider, "reason": reason})

        if not isinstance(raw, dict):
            ignore(f"{where} is not an object")
            continue
        labels = raw.get("labels")
        if not isinstance(labels, dict):
            ignore(f"{where}.labels is not an object")
            continue
        name, provider = str(labels.get("alertname") or ""), labels.get("provider")
        provider_text = provider if isinstance(provider, str) else ""
        status = raw.get("status", payload.get("status"))
        if status not in ("firing", "resolved"):
            ignore(f"status must be 'firing' or 'resolved', not {status!r}", name, provider_text)
            continue
        if name not in KNOWN_ALERTS:
            ignore(f"not a Lineup alert ({', '.join(KNOWN_ALERTS)})", name, provider_text)
            continue
        if (
            not isinstance(provider, str) or provider not in PROVIDERS
        ):  # a list label is unhashable (issue 13)
            ignore(f"no known provider label ({', '.join(PROVIDERS)}), got {provider!r}", name, provider_text)
            continue
        annotations = raw.get("annotations") if isinstance(raw.get("annotations"), dict) else {}
        try:
            starts_at = _starts_at(raw.get("startsAt"))
        except BadStart as e:
            ignore(str(e), name, provider)
            continue
        out.append(
            Alert(
                index=i,
                status=status,
                name=name,
                provider=provider,
                endpoint=str(labels.get("endpoint") or ""),
                starts_at=starts_at,
                fingerprint=str(raw.get("fingerprint") or "") or _fingerprint(labels),
                # One line: a summary becomes a mail subject (CR/LF would break the headers, issue 13).
                summary=" ".join(
                    str(annotations.get("summary") or annotations.get("description") or "").split()
                )[:300],
                severity=str(labels.get("severity") or ""),
            )
        )
    return out, ignored


def _first_time(alert: Alert, incident: Incident | None) -> bool:
    """Record the alert as applied; False when it was applied before (same fingerprint, startsAt, status)."""
    try:
        with transaction.atomic():
            AppliedAlert.objects.create(
                fingerprint=alert.fingerprint[:128],
                starts_at=alert.starts_at or NO_START,
                status=alert.status,
                alertname=alert.name[:200],
                provider=alert.provider,
                incident=incident,
            )
    except IntegrityError:
        return False
    return True


def _seen(alert: Alert) -> bool:
    return AppliedAlert.objects.filter(
        fingerprint=alert.fingerprint[:128], starts_at=alert.starts_at or NO_START, status=alert.status
    ).exists()


def intake(*, payload, actor: Actor) -> IntakeResult:
    """Apply an Alertmanager notification: firing alerts open/reopen/update incidents, resolved ones are noted;
    each alert once."""
    alerts, ignored = parse(payload)
    result = IntakeResult(ignored=ignored)
    windows = rates.measure() if alerts else {}
    for alert in alerts:
        label = f"{alert.name} {alert.status} for {alert.provider} {alert.endpoint}".strip()
        with transaction.atomic():
            if _seen(alert):
                result.duplicates.append(
                    {"alert": f"alerts[{alert.index}]", "fingerprint": alert.fingerprint}
                )
                continue
            detected_by = f"Alertmanager: {alert.name}"
            if alert.status == "resolved":
                incident = (
                    Incident.objects.filter(provider=alert.provider, status__in=ACTIVE_STATUSES)
                    .order_by("-opened_at")
                    .first()
                )
                if not _first_time(alert, incident):
                    result.duplicates.append(
                        {"alert": f"alerts[{alert.index}]", "fingerprint": alert.fingerprint}
                    )
                    continue
                if incident is not None:
                    timeline.event(
                        incident,
                        "alert",
                        actor,
                        f"Alertmanager: {label}",
                        {"fingerprint": alert.fingerprint, "status": "resolved"},
                    )
                    result.resolved_noted.append(incident.pk)
                continue
            window = windows.get(alert.provider) or rates.ProviderWindow(alert.provider)
            if KNOWN_ALERTS[alert.name] == "webhook":
                window.webhook_failures = max(window.webhook_failures, 1)
            category, runbook = rates.choose_runbook(alert.provider, window)
            incident, created = open_or_update_incident(
                provider=alert.provider,
                runbook=runbook,
                severity=severity_for(alert.severity, alert.provider),
                detected_by=detected_by,
                detector=Detector.ALERTMANAGER,
                actor=actor,
                started_at=alert.starts_at,
                dominant_category=category,
                title=alert.summary,
            )
            if not _first_time(alert, incident):
                # Another request applied the same alert a moment ago: undo this one's changes.
                transaction.set_rollback(True)
                result.duplicates.append(
                    {"alert": f"alerts[{alert.index}]", "fingerprint": alert.fingerprint}
                )
                continue
            timeline.event(
                incident,
                "alert",
                actor,
                f"Alertmanager: {label}",
                {
                    "fingerprint": alert.fingerprint,
                    "status": "firing",
                    "endpoint": alert.endpoint,
                    "severity": alert.severity,
                },
            )
            timeline.audit(
                incident,
                actor,
                AuditAction.INCIDENT_ALERT,
                {"alertname": alert.name, "fingerprint": alert.fingerprint, "severity": alert.severity},
            )
            (result.opened if created else result.updated).append(incident.pk)
    return result
