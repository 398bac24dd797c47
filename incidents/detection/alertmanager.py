"""Alertmanager's webhook (payload version 4) as a detector: a firing alert opens or updates the same incident
the console's own detection would open for that provider; a resolved alert is noted on its timeline."""

from dataclasses import dataclass, field
from datetime import datetime

from django.db import transaction
from django.utils.dateparse import parse_datetime

from incidents.detection import rates
from incidents.models import ACTIVE_STATUSES, Incident
from incidents.services import timeline
from incidents.services.opening import default_severity, open_or_update_incident
from integrations.access.actors import Actor
from integrations.catalog import PROVIDERS

KNOWN_ALERTS = {rates.ALERT_NAME: "provider_5xx", "IDISWebhookDeliveryFailures": "webhook"}


class PayloadError(ValueError):
    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field, self.message = field, message


@dataclass
class Alert:
    status: str
    name: str
    provider: str
    endpoint: str
    starts_at: datetime | None
    fingerprint: str
    summary: str


@dataclass
class IntakeResult:
    opened: list[int] = field(default_factory=list)
    updated: list[int] = field(default_factory=list)
    resolved_noted: list[int] = field(default_factory=list)
    ignored: int = 0


def parse(payload) -> list[Alert]:
    """Validate the whole payload before anything changes; PayloadError names the first bad field."""
    if not isinstance(payload, dict):
        raise PayloadError("body", "The body must be Alertmanager's JSON object.")
    alerts = payload.get("alerts")
    if not isinstance(alerts, list) or not alerts:
        raise PayloadError("alerts", "'alerts' must be a non-empty list.")
    out = []
    for i, raw in enumerate(alerts):
        where = f"alerts[{i}]"
        if not isinstance(raw, dict):
            raise PayloadError(where, f"{where} must be an object.")
        status = raw.get("status", payload.get("status"))
        if status not in ("firing", "resolved"):
            raise PayloadError(f"{where}.status", f"{where}.status must be 'firing' or 'resolved'.")
        labels = raw.get("labels")
        if not isinstance(labels, dict):
            raise PayloadError(f"{where}.labels", f"{where}.labels must be an object.")
        name, provider = labels.get("alertname"), labels.get("provider")
        if not isinstance(name, str) or not name:
            raise PayloadError(f"{where}.labels.alertname", f"{where}.labels.alertname is required.")
        if provider not in PROVIDERS:
            raise PayloadError(
                f"{where}.labels.provider",
                f"{where}.labels.provider must be a known provider "
                f"({', '.join(PROVIDERS)}), not {provider!r}.",
            )
        annotations = raw.get("annotations") or {}
        if not isinstance(annotations, dict):
            raise PayloadError(f"{where}.annotations", f"{where}.annotations must be an object.")
        starts = raw.get("startsAt")
        starts_at = parse_datetime(starts) if isinstance(starts, str) else None
        if starts is not None and starts_at is None:
            raise PayloadError(f"{where}.startsAt", f"{where}.startsAt must be an RFC 3339 time.")
        out.append(
            Alert(
                status=status,
                name=name,
                provider=provider,
                endpoint=str(labels.get("endpoint") or ""),
                starts_at=starts_at,
                fingerprint=str(raw.get("fingerprint") or ""),
                summary=str(annotations.get("summary") or annotations.get("description") or "")[:300],
            )
        )
    return out


def intake(*, payload, actor: Actor) -> IntakeResult:
    """Apply a validated Alertmanager payload: firing alerts open/update incidents, resolved ones are noted."""
    alerts = parse(payload)
    result = IntakeResult()
    windows = rates.measure()
    with transaction.atomic():
        for alert in alerts:
            if alert.name not in KNOWN_ALERTS:
                result.ignored += 1
                continue
            detected_by = f"{alert.name} (Alertmanager)"
            if alert.status == "resolved":
                incident = (
                    Incident.objects.filter(provider=alert.provider, status__in=ACTIVE_STATUSES)
                    .order_by("-opened_at")
                    .first()
                )
                if incident is not None:
                    timeline.event(
                        incident,
                        "alert",
                        actor,
                        f"Alertmanager: {alert.name} resolved for {alert.provider} {alert.endpoint}".strip(),
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
                severity=default_severity(alert.provider),
                detected_by=detected_by,
                actor=actor,
                started_at=alert.starts_at,
                dominant_category=category,
                title=alert.summary,
            )
            timeline.event(
                incident,
                "alert",
                actor,
                f"Alertmanager: {alert.name} firing for {alert.provider} {alert.endpoint}".strip(),
                {"fingerprint": alert.fingerprint, "status": "firing", "endpoint": alert.endpoint},
            )
            (result.opened if created else result.updated).append(incident.pk)
    return result
