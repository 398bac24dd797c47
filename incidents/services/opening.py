"""Opening incidents: by detection or an alert (`open_or_update_incident`, which updates the provider's active
incident instead of opening a second one, and reopens one resolved less than INCIDENT_REOPEN_MINUTES ago) or by
a person (`incident_open`). A new incident gets its runbook's checklist and is escalated at once.
`incident_note_recovery` writes the recovery signal detection finds."""

from datetime import datetime, timedelta

from django.db import IntegrityError, transaction
from django.utils import timezone

from incidents import conf, errors
from incidents.models import ACTIVE_STATUSES, ChecklistItem, Detector, Incident, IncidentStatus, Severity
from incidents.runbooks import RUNBOOKS
from incidents.services import communication, timeline
from integrations.access.actors import Actor, System, actor_label
from integrations.catalog import PROVIDERS
from integrations.models import AuditAction

DETECTION = System("detection")
# One outage of a provider is worked through RB-01 or RB-09: a signal for either finds the other's incident.
OUTAGE_RUNBOOKS = ("RB-01", "RB-09")
# Reopening takes back what the checks completed after the outage seemed over.
REOPEN_RESET_PHASES = ("recovery", "verification", "post_incident")
LATER_TIMESTAMPS = ("contained_at", "recovering_at", "verifying_at", "resolved_at", "closed_at")


def runbook_family(runbook: str) -> tuple[str, ...]:
    return OUTAGE_RUNBOOKS if runbook in OUTAGE_RUNBOOKS else (runbook,)


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
        [
            ChecklistItem(incident=incident, **item)
            for item in RUNBOOKS[incident.runbook].items(
                auth_type=PROVIDERS[incident.provider].auth_type,
                provider_name=PROVIDERS[incident.provider].name,
            )
        ]
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
    detector: str = "",
    now: datetime | None = None,
) -> tuple[Incident, bool]:
    """The one entry point for detection and alerts: open the provider's incident for this runbook, or update the
    active one (a second detection during the same outage never opens a second incident), or reopen the one
    resolved less than INCIDENT_REOPEN_MINUTES ago (a late signal of the same outage). (incident, created).
    Resolved or closed incidents are never changed otherwise."""
    _check_provider_runbook(provider, runbook)
    if severity not in Severity.values:
        raise errors.ServiceError(f"Unknown severity '{severity}'.", field="severity")
    now = now or timezone.now()
    tenant_ids = {t if isinstance(t, int) else t.pk for t in tenants}
    with transaction.atomic():
        existing = (
            Incident.objects.select_for_update()
            .filter(provider=provider, runbook=runbook, status__in=ACTIVE_STATUSES)
            .first()
        )
        if existing is None and runbook in OUTAGE_RUNBOOKS:
            existing = (
                Incident.objects.select_for_update()
                .filter(provider=provider, runbook__in=OUTAGE_RUNBOOKS, status__in=ACTIVE_STATUSES)
                .order_by("opened_at")
                .first()
            )
        if existing is None:
            resolved = (
                Incident.objects.select_for_update()
                .filter(
                    provider=provider,
                    runbook__in=runbook_family(runbook),
                    status=IncidentStatus.RESOLVED,
                    resolved_at__gte=now - timedelta(minutes=conf.reopen_minutes()),
                )
                .order_by("-resolved_at")
                .first()
            )
            if resolved is not None:
                existing = _reopen(resolved, actor=actor, detected_by=detected_by, now=now)
        if existing is None:
            try:
                with transaction.atomic():
                    incident = Incident.objects.create(
                        provider=provider,
                        runbook=runbook,
                        severity=severity,
                        detected_by=detected_by[:200],
                        detector=detector,
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


def _reopen(incident: Incident, *, actor: Actor, detected_by: str, now: datetime) -> Incident:
    """A late signal of the outage a resolved incident was about: back to work, with the steps that only held
    while the outage seemed over (recovery, verification, post-incident checks) to be passed again."""
    previous = incident.status
    incident.status = IncidentStatus.ACKNOWLEDGED if incident.acknowledged_at else IncidentStatus.OPEN
    resolved_at = incident.resolved_at
    for name in LATER_TIMESTAMPS:
        setattr(incident, name, None)
    incident.recovered_at = None
    incident.save()
    reset = (
        ChecklistItem.objects.filter(incident=incident, phase__in=REOPEN_RESET_PHASES, done=True)
        .exclude(check_name="")
        .update(done=False, done_by="", done_at=None)
    )
    ago = int((now - resolved_at).total_seconds() // 60) if resolved_at else 0
    timeline.event(
        incident,
        "reopened",
        actor,
        f"Reopened by {detected_by}: resolved {ago} min ago, and the provider is failing again "
        f"(status {previous} → {incident.status}; {reset} checked items to pass again)",
        {
            "from": previous,
            "to": incident.status,
            "resolved_at": resolved_at.isoformat() if resolved_at else None,
            "detected_by": detected_by,
            "reset_items": reset,
        },
    )
    timeline.audit(
        incident, actor, AuditAction.INCIDENT_REOPEN, {"from": previous, "detected_by": detected_by}
    )
    return incident


def incident_note_recovery(
    *, incident: Incident, recovered_at: datetime | None, actor: Actor = DETECTION
) -> Incident:
    """The recovery signal: "recovered at T" on the timeline (None: errors came back, the signal is withdrawn).
    Only active incidents change."""
    with transaction.atomic():
        locked = timeline.lock(incident)
        if locked.status not in ACTIVE_STATUSES or locked.recovered_at == recovered_at:
            return locked
        before = locked.recovered_at
        locked.recovered_at = recovered_at
        locked.save(update_fields=["recovered_at"])
        if recovered_at is not None:
            message = (
                f"Recovered at {timezone.localtime(recovered_at):%H:%M %Z}: no errors since, for "
                f"{conf.recovery_clean_minutes()} minutes or more, with calls succeeding"
            )
        else:
            message = (
                f"Errors again after the recovery at {timezone.localtime(before):%H:%M %Z}: not recovered"
            )
        timeline.event(
            locked,
            "recovery",
            actor,
            message,
            {"recovered_at": recovered_at.isoformat() if recovered_at else None},
        )
        timeline.audit(
            locked,
            actor,
            AuditAction.INCIDENT_RECOVERED,
            {"recovered_at": recovered_at.isoformat() if recovered_at else None},
        )
    return locked


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
    if incident.recovered_at is not None:
        timeline.event(
            incident,
            "recovery",
            actor,
            f"Errors again after the recovery at {timezone.localtime(incident.recovered_at):%H:%M %Z} "
            f"({detected_by}): not recovered",
            {"recovered_at": None},
        )
        incident.recovered_at = None
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
        detector=Detector.PERSON,
        actor=actor,
        title=title,
        started_at=started_at,
        tenants=tenants,
    )
    return incident
