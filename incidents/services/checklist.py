"""Working an incident's checklist: run an item's action, tick an item a person did, and evaluate the checks
(items whose check passes complete themselves)."""

from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.utils import timezone

from incidents import errors
from incidents.checklist.actions import Action, ActionOutcome
from incidents.checklist.checks import CheckResult, run
from incidents.checklist.evidence import BY_CHECK, ESCALATIONS, PROOFS, evidence_for
from incidents.models import STATUS_ORDER, ChecklistItem, Incident, IncidentEvent, IncidentStatus
from incidents.runbooks import ACTIONS, CHECKS
from incidents.selectors import sub_steps
from incidents.services import timeline
from integrations.access.actors import Actor, System, actor_label
from integrations.models import AuditAction

NOT_ACTIVE = (IncidentStatus.CLOSED,)
# Before containment, a recovery or verification condition that holds proves nothing (nothing has been done yet):
# its check shows live, but completes the item only once the incident is contained or later; a post-incident
# condition ("no data needs a manual sync") only once the incident is being verified.
GATED_PHASES = {"recovery": IncidentStatus.CONTAINED, "verification": IncidentStatus.CONTAINED}
POST_INCIDENT_GATE = IncidentStatus.VERIFYING
# Until resolution a check stays live: an item its check completed unticks when the check fails again.
LIVE_UNTIL = IncidentStatus.RESOLVED
# A resolved incident evaluates only its post-incident steps (the postmortem).
RESOLVED_PHASE = "post_incident"
# Recovery undoes containment on purpose (RB-09 recovery 5 restores normal mode): once the incident is recovering,
# a containment check that fails is not news: the step keeps its record (as it was), never unticked or shown
# failing. One that passes still ticks its step.
CONTAINMENT_RECORD_FROM = IncidentStatus.RECOVERING


def _reached(status: str, gate: str) -> bool:
    return STATUS_ORDER.index(status) >= STATUS_ORDER.index(gate)


def refuse(incident: Incident, actor: Actor, what: str, error: Exception) -> None:
    """A refused attempt goes on the timeline (and the audit), so that the commander sees who tried what."""
    reason = getattr(error, "message", None) or str(error) or "not allowed"
    with transaction.atomic():
        timeline.event(
            incident, "refused", actor, f"Refused: {what} ({reason})", {"what": what, "reason": reason[:500]}
        )
        timeline.audit(incident, actor, AuditAction.INCIDENT_REFUSED, {"what": what, "reason": reason[:500]})


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
    """Run a checklist item's action; the result goes on the timeline. The item completes from evidence (the
    audit rows its work wrote, `incidents.checklist.evidence`), or from its check: a run that changed nothing
    completes nothing. A refused run is on the timeline too."""
    incident = Incident.objects.get(pk=incident.pk)
    item = _item(incident, item)
    try:
        timeline.require(actor)
    except PermissionDenied as e:
        refuse(incident, actor, item.text[:200], e)
        raise
    if incident.status in NOT_ACTIVE:
        raise errors.ServiceError(errors.INCIDENT_FINISHED.format(status=incident.status), code="finished")
    action = item_action(item)
    params = clean_params(action, params)
    # Provider calls (reconcile, verify, refresh) run outside any transaction; the services hold their own.
    try:
        outcome = action(incident, actor, params)
    except PermissionDenied as e:
        refuse(incident, actor, action.label, e)
        raise
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
        # An item with a check, or whose work writes evidence, completes from data, never from having run;
        # an action without either completes when its run succeeded.
        if outcome.ok and not item.done and not item.check_name and not proven_from_data(item.action):
            ChecklistItem.objects.filter(pk=item.pk).update(
                done=True,
                done_by=actor_label(actor),
                done_at=now,
                done_evidence=f"{action.label} run by {actor_label(actor)} (tracker)",
            )
    incident_evaluate_checks(incident=incident)
    return outcome


def proven_from_data(action_name: str) -> bool:
    """Whether the action's step completes from data (audit evidence, its effect's check, the page sent)."""
    return action_name in PROOFS or action_name in BY_CHECK or action_name in ESCALATIONS


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
    """Tick an item a person did; items with a check, or with an action whose work the audit trail shows,
    complete only from data."""
    item = _item(incident, item)
    try:
        timeline.require(actor)
    except PermissionDenied as e:
        refuse(incident, actor, f"Mark done: {item.text[:200]}", e)
        raise
    if item.check_name:
        raise errors.ServiceError(errors.ITEM_HAS_CHECK, code="has_check")
    if item.done:
        return item
    if any(g.pk == item.pk for g in sub_steps(list(incident.checklist.order_by("position")))):
        raise errors.ServiceError(errors.ITEM_IS_GROUP, code="group")
    if item.action and proven_from_data(item.action):
        # The audit trail shows this step's work wherever it was done: a click is not that work.
        raise errors.ServiceError(errors.ITEM_HAS_ACTION, code="has_action")
    with transaction.atomic():
        ChecklistItem.objects.filter(pk=item.pk).update(
            done=True,
            done_by=actor_label(actor),
            done_at=timezone.now(),
            done_evidence=f"marked done by {actor_label(actor)} (tracker)",
        )
        timeline.event(incident, "done", actor, f"Done: {item.text}", {"item": item.pk})
        timeline.audit(incident, actor, AuditAction.INCIDENT_ITEM_DONE, {"item": item.key})
    item.refresh_from_db()
    return item


def incident_evaluate_checks(*, incident: Incident) -> int:
    """Evaluate the incident's checklist from data and store what proves each item.

    - An item with a check stores its result and evidence; it completes when the check passes (recovery and
      verification items once the incident is contained, post-incident items once it is being verified), and
      until the incident is resolved it unticks when its check fails again, saying since when.
    - An item with an action completes when the audit trail shows that action's work done for the provider
      inside the incident's window, from wherever (`incidents.checklist.evidence`); the evidence names who, how
      and when.
    - A group item (no check, no action) is done when all its sub-steps are.
    A resolved incident only evaluates its post-incident steps; a closed one nothing. Returns how many items
    completed now."""
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
    live = not _reached(status, LIVE_UNTIL)
    results = {}
    completed, reopened = [], []
    proven = evidence_for(
        incident, {i.action for i in items if i.action and not i.check_name and not i.done and not i.skipped}
    )
    containment_is_record = _reached(status, CONTAINMENT_RECORD_FROM)
    for item in items:
        if item.skipped:
            continue
        if item.check_name:
            if item.check_name not in results:
                check = CHECKS.get(item.check_name)
                results[item.check_name] = (
                    run(check, incident) if check else CheckResult(None, f"unknown check '{item.check_name}'")
                )
            result = results[item.check_name]
            if item.phase == "containment" and containment_is_record and not result.passed:
                continue  # recovery undid it on purpose: the record stays as it was
            was = item.check_result
            item.check_result, item.check_evidence, item.checked_at = (
                result.label,
                result.evidence[:2000],
                now,
            )
            if result.passed:
                item.failing_since = None
            elif result.passed is False and (was != "fail" or item.failing_since is None):
                item.failing_since = now
            gate = POST_INCIDENT_GATE if item.phase == "post_incident" else GATED_PHASES.get(item.phase)
            if result.passed and not item.done and (gate is None or _reached(status, gate)):
                item.done, item.done_by, item.done_at = True, f"check:{item.check_name}", now
                item.done_evidence = f"check passed at {_fmt(now)}: {result.evidence[:500]}"
                completed.append(item)
            elif result.passed is False and item.done and live and item.done_by.startswith("check:"):
                item.done, item.done_by, item.done_at = False, "", None
                item.done_evidence = f"unticked: the check fails again since {_fmt(now)}"
                reopened.append(item)
        elif item.action and not item.done:
            evidence = proven.get(item.action)
            if evidence is not None:
                item.done, item.done_by, item.done_at = True, evidence.who, evidence.at
                item.done_evidence = str(evidence)
                completed.append(item)
    # A group item (no check, no action) is done when all its sub-steps are.
    for item, children in sub_steps(items).items():
        if item.done or item.skipped:
            continue
        if all(c.done or c.skipped for c in children):
            item.done, item.done_by, item.done_at = True, "check:sub-steps", now
            item.done_evidence = "all its sub-steps are done"
            completed.append(item)
    with transaction.atomic():
        ChecklistItem.objects.bulk_update(
            items,
            [
                "check_result",
                "check_evidence",
                "checked_at",
                "failing_since",
                "done",
                "done_by",
                "done_at",
                "done_evidence",
            ],
        )
        events = [
            IncidentEvent(
                incident=incident,
                kind="check" if item.check_name or not item.action else "evidence",
                actor=item.done_by,
                message=(
                    f"Done by check: {item.text} ({item.check_evidence})"
                    if item.check_name
                    else f"Done: {item.text} ({item.done_evidence})"
                ),
                details={"item": item.pk, "check": item.check_name, "label": check_label(item.check_name)},
            )
            for item in completed
        ] + [
            IncidentEvent(
                incident=incident,
                kind="reopened",
                actor=f"check:{item.check_name}",
                message=f"Not done any more: {item.text} (fails again: {item.check_evidence})",
                details={"item": item.pk, "check": item.check_name},
            )
            for item in reopened
        ]
        if events:
            IncidentEvent.objects.bulk_create(events)
        if completed:
            timeline.audit(
                incident,
                System("incident-checks"),
                AuditAction.INCIDENT_CHECKS_PASSED,
                {"items": [item.key for item in completed]},
            )
        if reopened:
            timeline.audit(
                incident,
                System("incident-checks"),
                AuditAction.INCIDENT_ITEM_REOPENED,
                {"items": [item.key for item in reopened]},
            )
    return len(completed)


def _fmt(at) -> str:
    return timezone.localtime(at).strftime("%Y-%m-%d %H:%M:%S %Z")


def checklist_item_skip(
    *, incident: Incident, item: ChecklistItem | int, actor: Actor, reason: str
) -> ChecklistItem:
    """Skip a post-incident item with a written reason (closing needs each one done or skipped)."""
    item = _item(incident, item)
    try:
        timeline.require(actor)
    except PermissionDenied as e:
        refuse(incident, actor, f"Skip: {item.text[:200]}", e)
        raise
    reason = (reason or "").strip()
    if not reason:
        raise errors.ServiceError(errors.SKIP_REASON_REQUIRED, field="reason")
    if item.phase != "post_incident":
        raise errors.ServiceError(errors.SKIP_ONLY_POST_INCIDENT, code="not_skippable")
    if item.done:
        return item
    with transaction.atomic():
        ChecklistItem.objects.filter(pk=item.pk).update(skipped=True, skip_reason=reason[:2000])
        timeline.event(
            incident, "skipped", actor, f"Skipped: {item.text}; reason: {reason}", {"item": item.pk}
        )
        timeline.audit(
            incident, actor, AuditAction.INCIDENT_ITEM_SKIPPED, {"item": item.key, "reason": reason[:500]}
        )
    item.refresh_from_db()
    return item


def open_post_incident_items(incident: Incident) -> list[str]:
    """Post-incident items neither done nor skipped (evaluated fresh)."""
    incident_evaluate_checks(incident=incident)
    return list(
        incident.checklist.filter(phase="post_incident", done=False, skipped=False)
        .order_by("position")
        .values_list("text", flat=True)
    )


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
