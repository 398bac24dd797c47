"""Opening incidents: by detection or an alert (`open_or_update_incident`, which updates the provider's active
incident instead of opening a second one) or by a person (`incident_open`). A new incident gets its runbook's
checklist and is escalated at once."""

from datetime import datetime

from django.db import IntegrityError, transaction
from django.utils import timezone

from incidents import errors
from incidents.models import ACTIVE_STATUSES, ChecklistItem, Incident, Severity
from incidents.runbooks import RUNBOOKS
from incidents.services import communication, timeline
from integrations.access.actors import Actor, System, actor_label
from integrations.catalog import PROVIDERS
from integrations.models import AuditAction

DETECTION = System("detection")


def _check_provider_runbook(provider: str, runbook: str) -> None:
    if provider not in PROVIDERS:
        raise errors.ServiceError(errors.UNKNOWN_PROVIDER.format(provider=provider), field="provider")
    if runbook not in RUNBOOKS:
        raise errors.ServiceError(errors.UNKNOWN_RUNBOOK.format(runbook=runbook), field="runbook")


def fallback_available(provider: str) -> bool:
    """Polling is a fallback for a provider that normally pushes webhooks."""
    return PROVIDERS[provider].supports_webhooks


def default_severity(provider: str) -> str:
    """RB-09: SEV-3 when a fallback (polling) is available, else SEV-2."""
    return Severity.SEV3 if fallback_available(provider) else Severity.SEV2


def _create_checklist(incident: Incident) -> None:
    ChecklistItem.objects.bulk_create(
        [ChecklistItem(incident=incident, **item) for item in RUNBOOKS[incident.runbook].items()]
    )


def open_or_update_incident(
    *,
    provider: str,
    runbook: str,
    severity: str,
    detected_by: str,
    actor: Actor = DETECTION,
    title: str = "",
    started_at: datetime | None = None,
    error_rate: float | None = None,
    dominant_category: str = "",
    impact: dict | None = None,
    tenants=(),
) -> tuple[Incident, bool]:
    """The one entry point for detection and alerts: open the provider's incident for this runbook, or update the
    active one (a second detection during the same outage never opens a second incident). (incident, created)."""
    _check_provider_runbook(provider, runbook)
    if severity not in Severity.values:
        raise errors.ServiceError(f"Unknown severity '{severity}'.", field="severity")
    now = timezone.now()
    tenant_ids = {t if isinstance(t, int) else t.pk for t in tenants}
    with transaction.atomic():
        existing = (
            Incident.objects.select_for_update()
            .filter(provider=provider, runbook=runbook, status__in=ACTIVE_STATUSES)
            .first()
        )
        if existing is None:
            try:
                with transaction.atomic():
                    incident = Incident.objects.create(
                        provider=provider,
                        runbook=runbook,
                        severity=severity,
                        detected_by=detected_by[:200],
                        title=(title or f"{PROVIDERS[provider].name}: {RUNBOOKS[runbook].title}")[:300],
                        fallback_available=fallback_available(provider),
                        started_at=started_at or now,
                        last_detected_at=now,
                        error_rate=error_rate,
                        dominant_category=dominant_category,
                        impact=_merge_impact({}, impact or {}),
                    )
            except IntegrityError:
                # Another detector (beat, an alert) opened it a moment ago: update that one.
                existing = Incident.objects.select_for_update().get(
                    provider=provider, runbook=runbook, status__in=ACTIVE_STATUSES
                )
            else:
                incident.affected_tenants.set(tenant_ids)
                _create_checklist(incident)
                timeline.event(
                    incident,
                    "opened",
                    actor,
                    f"Opened by {detected_by}: {incident.title} ({severity})",
                    {
                        "error_rate": error_rate,
                        "dominant_category": dominant_category,
                        "tenants": sorted(tenant_ids),
                    },
                )
                timeline.audit(
                    incident,
                    actor,
                    AuditAction.INCIDENT_OPEN,
                    {"severity": severity, "detected_by": detected_by, "tenants": len(tenant_ids)},
                )
                communication.incident_escalate(incident=incident, actor=actor)
                return incident, True
        return _update_detected(
            existing,
            actor=actor,
            severity=severity,
            started_at=started_at,
            error_rate=error_rate,
            dominant_category=dominant_category,
            impact=impact,
            tenant_ids=tenant_ids,
            detected_by=detected_by,
            now=now,
        ), False


def _merge_impact(old: dict, new: dict) -> dict:
    merged = {**old, **new}
    merged["peak_retrying"] = max(
        int(old.get("peak_retrying") or 0), int(new.get("retrying") or 0), int(new.get("peak_retrying") or 0)
    )
    return merged


def _update_detected(
    incident: Incident,
    *,
    actor,
    severity,
    started_at,
    error_rate,
    dominant_category,
    impact,
    tenant_ids,
    detected_by,
    now,
) -> Incident:
    known = set(incident.affected_tenants.values_list("pk", flat=True))
    new_tenants = tenant_ids - known
    incident.last_detected_at = now
    if error_rate is not None:
        incident.error_rate = error_rate
    if dominant_category:
        incident.dominant_category = dominant_category
    if impact:
        incident.impact = _merge_impact(incident.impact or {}, impact)
    if started_at and (incident.started_at is None or started_at < incident.started_at):
        incident.started_at = started_at
    escalated = severity == Severity.SEV2 and incident.severity == Severity.SEV3
    if escalated:
        incident.severity = Severity.SEV2
    incident.save()
    if new_tenants:
        incident.affected_tenants.add(*new_tenants)
        timeline.event(
            incident,
            "tenants",
            actor,
            f"{len(new_tenants)} more tenants affected ({detected_by})",
            {"added": sorted(new_tenants)},
        )
    if escalated:
        timeline.event(incident, "severity", actor, f"Escalated to SEV-2 ({detected_by})")
        timeline.audit(
            incident,
            actor,
            AuditAction.INCIDENT_ESCALATE,
            {"severity": Severity.SEV2, "detected_by": detected_by},
        )
        communication.incident_escalate(incident=incident, actor=actor)
    return incident


def incident_open(
    *,
    provider: str,
    runbook: str,
    actor: Actor,
    severity: str = "",
    title: str = "",
    tenants=(),
    started_at: datetime | None = None,
) -> Incident:
    """A person opens an incident by hand, choosing the runbook; refused while one is active for it."""
    timeline.require(actor)
    _check_provider_runbook(provider, runbook)
    active = Incident.objects.filter(provider=provider, runbook=runbook, status__in=ACTIVE_STATUSES).first()
    if active is not None:
        raise errors.Conflict(errors.ALREADY_ACTIVE.format(runbook=runbook, provider=provider, pk=active.pk))
    if started_at and started_at > timezone.now():
        raise errors.ServiceError("The start time must be in the past.", field="started_at")
    incident, _ = open_or_update_incident(
        provider=provider,
        runbook=runbook,
        severity=severity or default_severity(provider),
        detected_by=actor_label(actor),
        actor=actor,
        title=title,
        started_at=started_at,
        tenants=tenants,
    )
    return incident
