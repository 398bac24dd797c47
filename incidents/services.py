"""Every action on incidents: open (by detection, an alert or a person), acknowledge, advance, run checklist actions,
notes, tenant notices, postmortem, and the evaluation of checks.

Each takes keyword arguments and an actor, checks `incidents.operate_incident`, works in a transaction, writes an
IncidentEvent (the incident's timeline) and an integrations AuditEvent (with the incident's provider), and sends
email only after commit.
"""
from datetime import datetime, timedelta
from functools import partial

from django.core.exceptions import PermissionDenied
from django.core.mail import EmailMessage, get_connection
from django.db import IntegrityError, transaction
from django.template.loader import render_to_string
from django.utils import timezone

from integrations.access.actors import Actor, System, actor_label
from integrations.access.actors import require as _require
from integrations.catalog import PROVIDERS
from integrations.services import audit

from . import conf, errors, escalation
from .actions import ACTIONS, ActionOutcome, available
from .checks import CHECK_LABELS, run_check
from .models import (
    ACTIVE_STATUSES,
    ChecklistItem,
    Incident,
    IncidentEvent,
    IncidentStatus,
    Postmortem,
    Severity,
)
from .runbooks import RUNBOOKS

OPERATE_INCIDENT = "incidents.operate_incident"
ORDER = [s.value for s in IncidentStatus]
TIMESTAMPS = {
    IncidentStatus.ACKNOWLEDGED: "acknowledged_at", IncidentStatus.CONTAINED: "contained_at",
    IncidentStatus.RECOVERING: "recovering_at", IncidentStatus.VERIFYING: "verifying_at",
    IncidentStatus.RESOLVED: "resolved_at", IncidentStatus.CLOSED: "closed_at",
}
DETECTION = System("detection")
NOT_ACTIVE = (IncidentStatus.CLOSED,)
# Before containment, a recovery or verification condition that holds proves nothing (nothing has been done yet):
# its check shows live, but completes the item only once the incident is contained or later.
GATED_PHASES = ("recovery", "verification")


def require(actor: Actor, perm: str = OPERATE_INCIDENT) -> None:
    _require(actor, perm)


def _event(incident: Incident, kind: str, actor: Actor | str, message: str, details: dict | None = None) -> IncidentEvent:
    label = actor if isinstance(actor, str) else actor_label(actor)
    return IncidentEvent.objects.create(incident=incident, kind=kind, actor=label, message=message,
                                        details=details or {})


def _audit(incident: Incident, actor: Actor, action: str, details: dict | None = None) -> None:
    audit(actor=actor, action=f"incident.{action}", provider=incident.provider,
          details={"incident": incident.pk, "runbook": incident.runbook, **(details or {})})


def _locked(incident: Incident) -> Incident:
    return Incident.objects.select_for_update().get(pk=incident.pk)


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
    ChecklistItem.objects.bulk_create([
        ChecklistItem(incident=incident, **item) for item in RUNBOOKS[incident.runbook].items()
    ])


# ------------------------------------------------------------------------------------------ open


def open_or_update_incident(
    *, provider: str, runbook: str, severity: str, detected_by: str, actor: Actor = DETECTION, title: str = "",
    started_at: datetime | None = None, error_rate: float | None = None, dominant_category: str = "",
    impact: dict | None = None, tenants=(),
) -> tuple[Incident, bool]:
    """The one entry point for detection and alerts: open the provider's incident for this runbook, or update the
    active one (a second detection during the same outage never opens a second incident). (incident, created)."""
    _check_provider_runbook(provider, runbook)
    if severity not in Severity.values:
        raise errors.ServiceError(f"Unknown severity '{severity}'.", field="severity")
    now = timezone.now()
    tenant_ids = {t if isinstance(t, int) else t.pk for t in tenants}
    with transaction.atomic():
        existing = (Incident.objects.select_for_update()
                    .filter(provider=provider, runbook=runbook, status__in=ACTIVE_STATUSES).first())
        if existing is None:
            try:
                with transaction.atomic():
                    incident = Incident.objects.create(
                        provider=provider, runbook=runbook, severity=severity, detected_by=detected_by[:200],
                        title=(title or f"{PROVIDERS[provider].name}: {RUNBOOKS[runbook].title}")[:300],
                        fallback_available=fallback_available(provider), started_at=started_at or now,
                        last_detected_at=now, error_rate=error_rate, dominant_category=dominant_category,
                        impact=_merge_impact({}, impact or {}),
                    )
            except IntegrityError:
                # Another detector (beat, an alert) opened it a moment ago: update that one.
                existing = Incident.objects.select_for_update().get(provider=provider, runbook=runbook,
                                                                    status__in=ACTIVE_STATUSES)
            else:
                incident.affected_tenants.set(tenant_ids)
                _create_checklist(incident)
                _event(incident, "opened", actor, f"Opened by {detected_by}: {incident.title} ({severity})",
                       {"error_rate": error_rate, "dominant_category": dominant_category,
                        "tenants": sorted(tenant_ids)})
                _audit(incident, actor, "open", {"severity": severity, "detected_by": detected_by,
                                                  "tenants": len(tenant_ids)})
                escalation.incident_escalate(incident=incident, actor=actor)
                return incident, True
        return _update_detected(existing, actor=actor, severity=severity, started_at=started_at,
                                error_rate=error_rate, dominant_category=dominant_category, impact=impact,
                                tenant_ids=tenant_ids, detected_by=detected_by, now=now), False


def _merge_impact(old: dict, new: dict) -> dict:
    merged = {**old, **new}
    merged["peak_retrying"] = max(int(old.get("peak_retrying") or 0), int(new.get("retrying") or 0),
                                  int(new.get("peak_retrying") or 0))
    return merged


def _update_detected(incident: Incident, *, actor, severity, started_at, error_rate, dominant_category, impact,
                     tenant_ids, detected_by, now) -> Incident:
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
        _event(incident, "tenants", actor, f"{len(new_tenants)} more tenants affected ({detected_by})",
               {"added": sorted(new_tenants)})
    if escalated:
        _event(incident, "severity", actor, f"Escalated to SEV-2 ({detected_by})")
        _audit(incident, actor, "escalate", {"severity": Severity.SEV2, "detected_by": detected_by})
        escalation.incident_escalate(incident=incident, actor=actor)
    return incident


def incident_open(*, provider: str, runbook: str, actor: Actor, severity: str = "", title: str = "",
                  tenants=(), started_at: datetime | None = None) -> Incident:
    """A person opens an incident by hand, choosing the runbook; refused while one is active for it."""
    require(actor)
    _check_provider_runbook(provider, runbook)
    active = Incident.objects.filter(provider=provider, runbook=runbook, status__in=ACTIVE_STATUSES).first()
    if active is not None:
        raise errors.Conflict(errors.ALREADY_ACTIVE.format(runbook=runbook, provider=provider, pk=active.pk))
    if started_at and started_at > timezone.now():
        raise errors.ServiceError("The start time must be in the past.", field="started_at")
    incident, _ = open_or_update_incident(
        provider=provider, runbook=runbook, severity=severity or default_severity(provider),
        detected_by=actor_label(actor), actor=actor, title=title, started_at=started_at, tenants=tenants,
    )
    return incident


# ------------------------------------------------------------------------------------------ status


def allowed_transitions(incident: Incident) -> list[str]:
    """The statuses an incident may move to: every later one."""
    return ORDER[ORDER.index(incident.status) + 1:]


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


def failing_verifications(incident: Incident) -> list[str]:
    """Verification items whose check does not pass now (evaluated fresh)."""
    incident_evaluate_checks(incident=incident)
    return [item.text for item in incident.checklist.filter(phase="verification").exclude(check_name="")
            if item.check_result != "pass"]


def incident_advance(*, incident: Incident, actor: Actor, to: str, override_reason: str = "") -> Incident:
    """Move the status forward (never back). Resolving needs every verification check to pass, or a written
    reason (audited); closing needs the postmortem when one is required."""
    require(actor)
    if to not in ORDER:
        raise errors.ServiceError(errors.UNKNOWN_STATUS.format(target=to), field="status")
    override_reason = (override_reason or "").strip()
    current = Incident.objects.get(pk=incident.pk)
    if ORDER.index(to) <= ORDER.index(current.status):
        raise errors.ServiceError(errors.BACKWARDS.format(current=current.status, target=to), code="backwards")
    resolving = ORDER.index(to) >= ORDER.index(IncidentStatus.RESOLVED) > ORDER.index(current.status)
    failing = failing_verifications(current) if resolving else []
    if failing and not override_reason:
        raise errors.ServiceError(errors.VERIFICATION_FAILING.format(failing="; ".join(failing)),
                                  code="verification_failing")
    if to == IncidentStatus.CLOSED:
        why = postmortem_requirement(current)
        missing = postmortem_missing(current) if why else []
        if missing:
            raise errors.ServiceError(errors.POSTMORTEM_REQUIRED.format(why=why, missing=", ".join(missing)),
                                      code="postmortem_required")
    now = timezone.now()
    with transaction.atomic():
        locked = _locked(current)
        if ORDER.index(to) <= ORDER.index(locked.status):
            raise errors.ServiceError(errors.BACKWARDS.format(current=locked.status, target=to), code="backwards")
        previous = locked.status
        for status in ORDER[ORDER.index(previous) + 1: ORDER.index(to) + 1]:
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
        _event(locked, "status", actor, message, details)
        _audit(locked, actor, "status", details)
    return locked


def incident_acknowledge(*, incident: Incident, actor: Actor) -> Incident:
    """The acting person becomes the commander and the incident is acknowledged."""
    require(actor)
    if hasattr(actor, "get_username"):
        with transaction.atomic():
            locked = _locked(incident)
            if locked.commander_id != actor.pk:
                locked.commander = actor
                locked.save(update_fields=["commander"])
                _event(locked, "commander", actor, f"{actor_label(actor)} is the incident commander")
                _audit(locked, actor, "commander", {"commander": actor_label(actor)})
    incident = Incident.objects.get(pk=incident.pk)
    if incident.status == IncidentStatus.OPEN:
        incident = incident_advance(incident=incident, actor=actor, to=IncidentStatus.ACKNOWLEDGED)
    return incident


# ------------------------------------------------------------------------------------------ checklist


def _item(incident: Incident, item: ChecklistItem | int) -> ChecklistItem:
    pk = item.pk if isinstance(item, ChecklistItem) else item
    found = ChecklistItem.objects.filter(pk=pk, incident=incident).first()
    if found is None:
        raise errors.ServiceError(errors.ITEM_NOT_IN_INCIDENT, code="not_found")
    return found


def clean_params(action_name: str, params: dict | None) -> dict:
    """The action's parameters, validated: unknown keys dropped, required present, ints parsed."""
    spec = ACTIONS[action_name]
    params = params or {}
    out = {}
    for p in spec.params:
        raw = params.get(p.name)
        raw = raw.strip() if isinstance(raw, str) else raw
        if raw in (None, ""):
            if p.required:
                raise errors.ServiceError(f"{p.label} is required.", field=p.name)
            continue
        if p.kind == "int":
            try:
                raw = int(raw)
            except (TypeError, ValueError):
                raise errors.ServiceError(f"{p.label} must be a whole number.", field=p.name) from None
            if not 1 <= raw <= 24 * 60:
                raise errors.ServiceError(f"{p.label} must be between 1 and 1440.", field=p.name)
        out[p.name] = raw
    return out


def checklist_item_run_action(*, incident: Incident, item: ChecklistItem | int, actor: Actor,
                              params: dict | None = None) -> ActionOutcome:
    """Run a checklist item's action; the result goes on the timeline and a successful run completes the item."""
    require(actor)
    incident = Incident.objects.get(pk=incident.pk)
    item = _item(incident, item)
    if incident.status in NOT_ACTIVE:
        raise errors.ServiceError(errors.INCIDENT_FINISHED.format(status=incident.status), code="finished")
    if not item.action or item.action not in ACTIONS:
        raise errors.ServiceError(errors.UNKNOWN_ACTION.format(action=item.action or "(none)"), code="unknown_action")
    ok, why = available(item.action)
    if not ok:
        raise errors.ServiceError(why, code="unavailable")
    spec = ACTIONS[item.action]
    params = clean_params(item.action, params)
    # Provider calls (reconcile, verify, refresh) run outside any transaction; the services hold their own.
    outcome = spec.fn(incident, actor, params)
    now = timezone.now()
    with transaction.atomic():
        message = outcome.summary if outcome.summary.startswith(spec.label) else f"{spec.label}: {outcome.summary}"
        _event(incident, "action", actor, message,
               {"action": spec.name, "item": item.pk, "ok": outcome.ok, **_jsonable(outcome.details)})
        _audit(incident, actor, "action", {"action": spec.name, "item": item.key, "ok": outcome.ok,
                                           "summary": outcome.summary[:500]})
        # An item with a check completes from data (its check, evaluated now), never from having run.
        if outcome.ok and not item.done and not item.check_name:
            ChecklistItem.objects.filter(pk=item.pk).update(done=True, done_by=actor_label(actor), done_at=now)
    if item.check_name:
        incident_evaluate_checks(incident=incident)
    return outcome


def _jsonable(details: dict) -> dict:
    out = {}
    for k, v in (details or {}).items():
        if isinstance(v, str | int | float | bool) or v is None:
            out[k] = v
        elif isinstance(v, list | dict):
            out[k] = v if len(str(v)) < 2000 else f"{len(v)} entries"
        else:
            out[k] = str(v)
    return out


def checklist_item_mark_done(*, incident: Incident, item: ChecklistItem | int, actor: Actor) -> ChecklistItem:
    """Tick an item a person did; items with a check complete only from data."""
    require(actor)
    item = _item(incident, item)
    if item.check_name:
        raise errors.ServiceError(errors.ITEM_HAS_CHECK, code="has_check")
    if item.done:
        return item
    with transaction.atomic():
        ChecklistItem.objects.filter(pk=item.pk).update(done=True, done_by=actor_label(actor), done_at=timezone.now())
        _event(incident, "done", actor, f"Done: {item.text}", {"item": item.pk})
        _audit(incident, actor, "item_done", {"item": item.key})
    item.refresh_from_db()
    return item


def incident_evaluate_checks(*, incident: Incident) -> int:
    """Run every check of the incident's checklist, store result and evidence, and complete the items whose check
    passes (recovery and verification items only once the incident is contained), and group items whose sub-steps
    are all done. Returns how many items completed now."""
    if incident.status in NOT_ACTIVE:
        return 0
    items = list(ChecklistItem.objects.filter(incident=incident).order_by("position"))
    now = timezone.now()
    status = Incident.objects.filter(pk=incident.pk).values_list("status", flat=True).first() or incident.status
    contained = ORDER.index(status) >= ORDER.index(IncidentStatus.CONTAINED)
    results = {}
    completed = []
    for item in items:
        if not item.check_name:
            continue
        if item.check_name not in results:
            results[item.check_name] = run_check(item.check_name, incident)
        result = results[item.check_name]
        item.check_result, item.check_evidence, item.checked_at = result.label, result.evidence[:2000], now
        if result.passed and not item.done and (item.phase not in GATED_PHASES or contained):
            item.done, item.done_by, item.done_at = True, f"check:{item.check_name}", now
            completed.append(item)
    # A group item (no check, no action) is done when all its sub-steps are.
    for i, item in enumerate(items):
        if item.check_name or item.action or item.done:
            continue
        children = []
        for child in items[i + 1:]:
            if child.depth <= item.depth:
                break
            children.append(child)
        if children and all(c.done for c in children):
            item.done, item.done_by, item.done_at = True, "check:sub-steps", now
            completed.append(item)
    with transaction.atomic():
        ChecklistItem.objects.bulk_update(
            items, ["check_result", "check_evidence", "checked_at", "done", "done_by", "done_at"])
        if completed:
            IncidentEvent.objects.bulk_create([
                IncidentEvent(incident=incident, kind="check", actor=item.done_by,
                              message=f"Done by check: {item.text}" + (f" ({item.check_evidence})"
                                                                       if item.check_evidence else ""),
                              details={"item": item.pk, "check": item.check_name,
                                       "label": CHECK_LABELS.get(item.check_name, "")})
                for item in completed
            ])
            _audit(incident, System("incident-checks"), "checks_passed",
                   {"items": [item.key for item in completed]})
    return len(completed)


def incidents_evaluate_active() -> int:
    """Beat, every minute: evaluate the checks of every incident not yet closed."""
    total = 0
    for incident in Incident.objects.exclude(status__in=NOT_ACTIVE).order_by("pk"):
        total += incident_evaluate_checks(incident=incident)
    return total


# ------------------------------------------------------------------------------------------ communication


def incident_post_note(*, incident: Incident, actor: Actor, message: str) -> IncidentEvent:
    """An internal status note on the timeline."""
    require(actor)
    message = (message or "").strip()
    if not message:
        raise errors.ServiceError(errors.NOTE_REQUIRED, field="message")
    with transaction.atomic():
        event = _event(incident, "note", actor, message[:5000])
        _audit(incident, actor, "note", {"length": len(message)})
    return event


def incident_notify_tenants(*, incident: Incident, actor: Actor, next_update_minutes: int | None = None) -> dict:
    """One email per affected tenant (to its contacts) with the provider, its impact and the next update time."""
    require(actor)
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
        context = {"incident": incident, "tenant": tenant, "provider": provider,
                   "failed_records": failed_by_tenant.get(tenant.slug, 0), "next_update": next_update,
                   "runbook": RUNBOOKS[incident.runbook]}
        subject = render_to_string("incidents/email/tenant_notice_subject.txt", context).strip()
        body = render_to_string("incidents/email/tenant_notice.txt", context)
        messages.append(EmailMessage(subject=subject, body=body, to=to))
        sent.append(tenant.slug)
    summary = f"Notified {len(sent)} affected tenants; next update at {next_update:%H:%M %Z}"
    if skipped:
        summary += f"; no contact for {', '.join(skipped)}"
    with transaction.atomic():
        _event(incident, "notify", actor, summary, {"sent": sent, "skipped": skipped,
                                                   "next_update": next_update.isoformat()})
        _audit(incident, actor, "notify_tenants", {"sent": len(sent), "skipped": skipped})
        if messages:
            transaction.on_commit(partial(_send, messages))
    return {"sent": len(sent), "skipped": skipped, "summary": summary}


def _send(messages: list[EmailMessage]) -> None:
    get_connection().send_messages(messages)


# ------------------------------------------------------------------------------------------ postmortem


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


POSTMORTEM_TEXT_FIELDS = Postmortem.REQUIRED_FIELDS + ("resilience_review",)


def postmortem_save(*, incident: Incident, actor: Actor, data: dict) -> Postmortem:
    """Write the postmortem: RB-09's analysis questions, the resilience review and follow-ups with owners."""
    require(actor)
    values = {f: str(data.get(f) or "").strip() for f in POSTMORTEM_TEXT_FIELDS}
    values["follow_ups"] = clean_follow_ups(data.get("follow_ups"))
    values["author"] = actor_label(actor)
    with transaction.atomic():
        pm, created = Postmortem.objects.update_or_create(incident=incident, defaults=values)
        _event(incident, "postmortem", actor, ("Postmortem written" if created else "Postmortem updated")
               + ("" if pm.is_complete else " (incomplete)"), {"complete": pm.is_complete,
                                                                "follow_ups": len(values["follow_ups"])})
        _audit(incident, actor, "postmortem", {"complete": pm.is_complete})
    return pm


def can_operate(user) -> bool:
    try:
        require(user)
    except PermissionDenied:
        return False
    return True
