"""Working an incident's checklist: run an item's action, tick an item a person did, and evaluate the checks
(items whose check passes complete themselves)."""

from django.db import transaction
from django.utils import timezone

from incidents import errors
from incidents.checklist.actions import Action, ActionOutcome
from incidents.checklist.checks import CheckResult, run
from incidents.models import STATUS_ORDER, ChecklistItem, Incident, IncidentEvent, IncidentStatus
from incidents.runbooks import ACTIONS, CHECKS
from incidents.services import timeline
from integrations.access.actors import Actor, System, actor_label
from integrations.models import AuditAction

NOT_ACTIVE = (IncidentStatus.CLOSED,)
# Before containment, a recovery or verification condition that holds proves nothing (nothing has been done yet):
# its check shows live, but completes the item only once the incident is contained or later.
GATED_PHASES = ("recovery", "verification")
RESOLVED_PHASE = "post_incident"


def _item(incident: Incident, item: ChecklistItem | int) -> ChecklistItem:
    pk = item.pk if isinstance(item, ChecklistItem) else item
    found = ChecklistItem.objects.filter(pk=pk, incident=incident).first()
    if found is None:
        raise errors.ServiceError(errors.ITEM_NOT_IN_INCIDENT, code="not_found")
    return found


def item_action(item: ChecklistItem) -> Action:
    """The action a checklist item stores the name of; a refusal for an item without one, or with a name no
    runbook has (any more)."""
    found = ACTIONS.get(item.action) if item.action else None
    if found is None:
        raise errors.ServiceError(
            errors.UNKNOWN_ACTION.format(action=item.action or "(none)"), code="unknown_action"
        )
    return found


def check_label(name: str) -> str:
    """The label of the check a checklist item stores the name of ('' for none or an unknown one)."""
    found = CHECKS.get(name)
    return found.label if found else ""


def clean_params(action: Action, params: dict | None) -> dict:
    """The action's parameters, validated: unknown keys dropped, required present, ints parsed."""
    params = params or {}
    out = {}
    for p in action.params:
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


def checklist_item_run_action(
    *, incident: Incident, item: ChecklistItem | int, actor: Actor, params: dict | None = None
) -> ActionOutcome:
    """Run a checklist item's action; the result goes on the timeline and a successful run completes the item."""
    timeline.require(actor)
    incident = Incident.objects.get(pk=incident.pk)
    item = _item(incident, item)
    if incident.status in NOT_ACTIVE:
        raise errors.ServiceError(errors.INCIDENT_FINISHED.format(status=incident.status), code="finished")
    action = item_action(item)
    params = clean_params(action, params)
    # Provider calls (reconcile, verify, refresh) run outside any transaction; the services hold their own.
    outcome = action(incident, actor, params)
    now = timezone.now()
    with transaction.atomic():
        message = (
            outcome.summary
            if outcome.summary.startswith(action.label)
            else f"{action.label}: {outcome.summary}"
        )
        timeline.event(
            incident,
            "action",
            actor,
            message,
            {"action": action.name, "item": item.pk, "ok": outcome.ok, **_jsonable(outcome.details)},
        )
        timeline.audit(
            incident,
            actor,
            AuditAction.INCIDENT_ACTION,
            {"action": action.name, "item": item.key, "ok": outcome.ok, "summary": outcome.summary[:500]},
        )
        # An item with a check completes from data (its check, evaluated now), never from having run.
        if outcome.ok and not item.done and not item.check_name:
            ChecklistItem.objects.filter(pk=item.pk).update(
                done=True, done_by=actor_label(actor), done_at=now
            )
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
    timeline.require(actor)
    item = _item(incident, item)
    if item.check_name:
        raise errors.ServiceError(errors.ITEM_HAS_CHECK, code="has_check")
    if item.done:
        return item
    with transaction.atomic():
        ChecklistItem.objects.filter(pk=item.pk).update(
            done=True, done_by=actor_label(actor), done_at=timezone.now()
        )
        timeline.event(incident, "done", actor, f"Done: {item.text}", {"item": item.pk})
        timeline.audit(incident, actor, AuditAction.INCIDENT_ITEM_DONE, {"item": item.key})
    item.refresh_from_db()
    return item


def incident_evaluate_checks(*, incident: Incident) -> int:
    """Run every check of the incident's checklist, store result and evidence, and complete the items whose check
    passes (recovery and verification items only once the incident is contained), and group items whose sub-steps
    are all done. A resolved incident only evaluates its post-incident steps; a closed one nothing. Returns how
    many items completed now."""
    # Checks read the incident as it is now (its status, its recovery signal), not as the caller loaded it.
    incident = Incident.objects.filter(pk=incident.pk).first() or incident
    status = incident.status
    if status in NOT_ACTIVE:
        return 0
    items = ChecklistItem.objects.filter(incident=incident).order_by("position")
    if status == IncidentStatus.RESOLVED:
        # A resolved incident's checklist is its record: only the post-incident steps (the postmortem) go on.
        items = items.filter(phase=RESOLVED_PHASE)
    items = list(items)
    now = timezone.now()
    contained = STATUS_ORDER.index(status) >= STATUS_ORDER.index(IncidentStatus.CONTAINED)
    results = {}
    completed = []
    for item in items:
        if not item.check_name:
            continue
        if item.check_name not in results:
            check = CHECKS.get(item.check_name)
            results[item.check_name] = (
                run(check, incident) if check else CheckResult(None, f"unknown check '{item.check_name}'")
            )
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
        for child in items[i + 1 :]:
            if child.depth <= item.depth:
                break
            children.append(child)
        if children and all(c.done for c in children):
            item.done, item.done_by, item.done_at = True, "check:sub-steps", now
            completed.append(item)
    with transaction.atomic():
        ChecklistItem.objects.bulk_update(
            items, ["check_result", "check_evidence", "checked_at", "done", "done_by", "done_at"]
        )
        if completed:
            IncidentEvent.objects.bulk_create(
                [
                    IncidentEvent(
                        incident=incident,
                        kind="check",
                        actor=item.done_by,
                        message=f"Done by check: {item.text}"
                        + (f" ({item.check_evidence})" if item.check_evidence else ""),
                        details={
                            "item": item.pk,
                            "check": item.check_name,
                            "label": check_label(item.check_name),
                        },
                    )
                    for item in completed
                ]
            )
            timeline.audit(
                incident,
                System("incident-checks"),
                AuditAction.INCIDENT_CHECKS_PASSED,
                {"items": [item.key for item in completed]},
            )
    return len(completed)


def incidents_evaluate_active() -> int:
    """Beat, every minute: evaluate the checks of every incident not yet closed."""
    total = 0
    for incident in Incident.objects.exclude(status__in=NOT_ACTIVE).order_by("pk"):
        total += incident_evaluate_checks(incident=incident)
    return total


def failing_verifications(incident: Incident) -> list[str]:
    """Verification items whose check does not pass now (evaluated fresh)."""
    incident_evaluate_checks(incident=incident)
    return [
        item.text
        for item in incident.checklist.filter(phase="verification").exclude(check_name="")
        if item.check_result != "pass"
    ]
