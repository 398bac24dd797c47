"""Reads that the tracker, checks, actions and detection share."""

from datetime import timedelta
from statistics import median

from django.db.models import Prefetch, Q, QuerySet
from django.utils import timezone

from incidents.models import Incident, IncidentEvent
from integrations.models import AuditAction, AuditEvent, Integration

# Audit rows written by incident services mirror IncidentEvents: the timeline shows the event once.
INCIDENT_AUDIT_PREFIX = "incident."
TIMELINE_LIMIT = 500


def incident_start(incident: Incident):
    """When the outage began: the first error detection saw, else when the incident was opened."""
    return incident.started_at or incident.opened_at


def incident_end(incident: Incident):
    return incident.closed_at or incident.resolved_at or timezone.now()


def affected_integrations(incident: Incident) -> QuerySet:
    """The provider's integrations of the affected tenants; all of the provider's when none are recorded."""
    qs = Integration.objects.filter(provider=incident.provider)
    tenant_ids = [t.pk for t in incident.affected_tenants.all()]
    if tenant_ids:
        qs = qs.filter(tenant_id__in=tenant_ids)
    return qs


def tenants_with_state(incident: Incident) -> list:
    """Affected tenants, each with its integrations of the incident's provider prefetched (two queries)."""
    return list(
        incident.affected_tenants.order_by("name").prefetch_related(
            Prefetch(
                "integrations",
                queryset=Integration.objects.filter(provider=incident.provider),
                to_attr="provider_integrations",
            )
        )
    )


def timeline(incident: Incident, *, limit: int = TIMELINE_LIMIT) -> tuple[list[dict], int]:
    """The incident's own events plus every AuditEvent of its provider in its window, oldest first.

    Returns (entries, left_off): at most `limit` entries, the most recent ones.
    """
    start = min(incident_start(incident), incident.opened_at)
    audits = (
        AuditEvent.objects.filter(
            provider=incident.provider, created_at__gte=start, created_at__lte=incident_end(incident)
        )
        .exclude(action__startswith=INCIDENT_AUDIT_PREFIX)
        .select_related("tenant")
        .order_by("-created_at", "-id")
    )
    events = IncidentEvent.objects.filter(incident=incident).order_by("-at", "-id")
    audit_rows = list(audits[: limit + 1])
    event_rows = list(events[: limit + 1])
    entries = [
        {
            "at": e.at,
            "source": "incident",
            "kind": e.kind,
            "actor": e.actor,
            "message": e.message,
            "details": e.details,
        }
        for e in event_rows
    ] + [
        {
            "at": a.created_at,
            "source": "audit",
            "kind": a.action,
            "actor": a.actor,
            "message": _audit_message(a),
            "details": a.details,
        }
        for a in audit_rows
    ]
    entries.sort(key=lambda e: e["at"], reverse=True)
    left_off = max(0, len(entries) - limit)
    if len(audit_rows) > limit or len(event_rows) > limit:
        left_off = max(left_off, 1)
    return list(reversed(entries[:limit])), left_off


def _audit_message(event: AuditEvent) -> str:
    who = f" ({event.tenant.name})" if event.tenant_id and event.tenant else ""
    interesting = {
        k: v
        for k, v in (event.details or {}).items()
        if k
        in (
            "changed",
            "outcome",
            "mode",
            "on",
            "checked",
            "mismatches",
            "errors",
            "created",
            "updated",
            "reason",
            "category",
            "max_retries",
            "refreshed",
            "resolution",
        )
    }
    extra = ", ".join(f"{k}={v}" for k, v in interesting.items())
    return f"{event.action}{who}" + (f": {extra}" if extra else "")


# ------------------------------------------------------------------------------------------ numbers

METRICS = (
    ("detect", "Time to detect", "started_at", "opened_at"),
    ("acknowledge", "Time to acknowledge", "opened_at", "acknowledged_at"),
    ("contain", "Time to contain", "opened_at", "contained_at"),
    ("recover", "Time to recover", "opened_at", "resolved_at"),
)


def durations(incident: Incident) -> dict[str, timedelta | None]:
    """Time to detect (first error -> opened), acknowledge, contain and recover (opened -> each), per incident."""
    out = {}
    for key, _, start, end in METRICS:
        a, b = getattr(incident, start), getattr(incident, end)
        out[key] = (b - a) if a and b and b >= a else None
    return out


def median_durations(incidents: QuerySet) -> dict[str, timedelta | None]:
    """Medians of the four durations over a set of incidents (one query)."""
    fields = sorted({f for _, _, a, b in METRICS for f in (a, b)})
    rows = incidents.order_by().values_list(*fields)
    columns: dict[str, list[float]] = {key: [] for key, *_ in METRICS}
    for row in rows:
        values = dict(zip(fields, row, strict=True))
        for key, _, start, end in METRICS:
            a, b = values[start], values[end]
            if a and b and b >= a:
                columns[key].append((b - a).total_seconds())
    return {k: timedelta(seconds=median(v)) if v else None for k, v in columns.items()}


def format_duration(value: timedelta | None) -> str:
    if value is None:
        return "—"
    seconds = int(value.total_seconds())
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    if hours:
        return f"{hours}h {minutes:02d}m"
    return f"{minutes}m {seconds:02d}s"


# ------------------------------------------------------------------------------------------ undo by effect


def _switched_in_window(incident: Incident, action: str) -> QuerySet:
    """Integrations of the provider an audit row of `action` changed inside the incident's window, whoever did
    it (tracker, admin, API, command)."""
    start = min(incident_start(incident), incident.opened_at)
    return AuditEvent.objects.filter(
        provider=incident.provider,
        action=action,
        created_at__gte=start,
        created_at__lte=incident_end(incident),
        integration__isnull=False,
        details__changed=True,
    ).values("integration_id")


def disabled_during(incident: Incident) -> QuerySet:
    """Every integration of the provider still disabled that was disabled during the incident's window."""
    return Integration.objects.filter(provider=incident.provider, enabled=False).filter(
        Q(disabled_for_incident=incident.pk)
        | Q(pk__in=_switched_in_window(incident, AuditAction.INTEGRATION_DISABLE))
    )


def paused_during(incident: Incident) -> QuerySet:
    """Every integration of the provider still paused that was paused during the incident's window."""
    return Integration.objects.filter(provider=incident.provider, sync_paused=True).filter(
        Q(paused_for_incident=incident.pk)
        | Q(pk__in=_switched_in_window(incident, AuditAction.INTEGRATION_PAUSE))
    )
