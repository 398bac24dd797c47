"""The tracker's pages (mounted under the Incident admin by incidents.admin). Thin: parse, call a service, report.

GET pages need the view right; every POST needs `incidents.operate_incident` and answers a refused or forged
request with a message (or 403 for a viewer), never a 500, and changes nothing.
"""

from datetime import datetime
from urllib.parse import urlencode

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.db.models import Count
from django.http import HttpResponseNotAllowed
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html

from incidents import errors
from incidents.checklist.checks import unsynced_records
from incidents.checklist.evidence import window
from incidents.forms import FollowUpFormSet, NoteForm, OpenIncidentForm, PostmortemForm, action_form_class
from incidents.models import ChecklistItem, Incident, IncidentStatus, Phase, Postmortem
from incidents.runbooks import ACTIONS, RUNBOOKS
from incidents.selectors import (
    METRICS,
    affected_integrations,
    durations,
    format_duration,
    sub_steps,
    tenants_with_state,
    timeline,
)
from incidents.services.checklist import (
    check_label,
    checklist_item_mark_done,
    checklist_item_run_action,
    checklist_item_skip,
    incident_evaluate_checks,
    proven_from_data,
    refuse,
)
from incidents.services.communication import incident_notify_tenants, incident_post_note
from incidents.services.opening import incident_open
from incidents.services.postmortem import (
    POSTMORTEM_TEXT_FIELDS,
    postmortem_missing,
    postmortem_requirement,
    postmortem_save,
)
from incidents.services.status import allowed_transitions, incident_acknowledge, incident_advance
from incidents.services.timeline import can_operate
from integrations.access.actors import MANAGE_CREDENTIALS
from integrations.access.roles import ADMIN
from integrations.admin.display import badge
from integrations.catalog import PROVIDERS
from integrations.models import CrmSyncStatus, IntegrationStatus

# The role that holds a right an action needs beyond working incidents, named as the screens name it.
ROLE_FOR = {MANAGE_CREDENTIALS: ADMIN}

CHECK_BADGE = {"pass": ("SUCCESS", "pass"), "fail": ("FAILED", "fail"), "info": ("RECEIVED", "info")}


def check_badge(result: str, *, to_do: bool = False):
    """The check's badge; a post-incident question not answered yet is work to do, not a failure."""
    value, label = (
        ("PENDING", "to do")
        if to_do and result == "fail"
        else CHECK_BADGE.get(result, ("PENDING", "not run"))
    )
    return format_html('<span data-check="{}">{}</span>', result or "none", badge(value, label))


def tracker_url(incident: Incident) -> str:
    return reverse("admin:incidents_incident_tracker", args=[incident.pk])


def _incident(modeladmin, request, pk) -> Incident:
    incident = get_object_or_404(Incident.objects.select_related("commander"), pk=pk)
    if not modeladmin.has_view_permission(request, incident):
        raise PermissionDenied
    return incident


def _operator(request, incident=None, what: str = "") -> None:
    if not can_operate(request.user):
        error = PermissionDenied(
            "You may view incidents but not work them (needs incidents.operate_incident)."
        )
        if incident is not None and what:
            refuse(incident, request.user, what, error)
        raise error


def _report(request, e: Exception) -> None:
    messages.error(request, e.message if isinstance(e, errors.ServiceError) else str(e))


def _context(modeladmin, request, incident, **extra):
    return {
        **modeladmin.admin_site.each_context(request),
        "opts": Incident._meta,
        "incident": incident,
        "original": incident,
        "title": f"INC-{incident.pk}: {incident.title}",
        **extra,
    }


# ------------------------------------------------------------------------------------------ the tracker


def tracker(modeladmin, request, pk):
    incident = _incident(modeladmin, request, pk)
    incident_evaluate_checks(incident=incident)
    operator = can_operate(request.user)
    items = list(ChecklistItem.objects.filter(incident=incident).order_by("position"))
    groups = {item.pk for item in sub_steps(items)}
    phases = []
    for phase in Phase:
        rows = [
            _item_row(item, operator, incident, request.user, group=item.pk in groups)
            for item in items
            if item.phase == phase.value
        ]
        if rows:
            phases.append(
                {
                    "value": phase.value,
                    "label": phase.label,
                    "items": rows,
                    "done": sum(r["item"].done for r in rows),
                    "total": len(rows),
                }
            )
    entries, left_off = timeline(incident)
    # Per tenant, the same records as the "Records left failed or never created" link, counted now (detection's
    # impact is a snapshot of when it opened).
    failed_now = dict(unsynced_records(incident).values_list("tenant_id").annotate(n=Count("pk")).order_by())
    postmortem = Postmortem.objects.filter(incident=incident).first()
    why = postmortem_requirement(incident)
    d = durations(incident)
    context = _context(
        modeladmin,
        request,
        incident,
        runbook=RUNBOOKS.get(incident.runbook),
        severity_badge=badge(incident.severity),
        status_badge=badge(incident.status, incident.get_status_display()),
        can_operate=operator,
        transitions=[(s, IncidentStatus(s).label) for s in allowed_transitions(incident)] if operator else [],
        tenants=[_tenant_row(t, incident, request.user, failed_now) for t in tenants_with_state(incident)],
        links=incident_links(incident),
        phases=phases,
        timeline=entries,
        timeline_left_off=left_off,
        postmortem=postmortem,
        postmortem_required=why,
        postmortem_missing=postmortem_missing(incident) if why else [],
        note_form=NoteForm(),
        durations=[(label, format_duration(d[key])) for key, label, *_ in METRICS],
        impact=incident.impact or {},
        impact_at=_parsed(incident.impact or {}),
    )
    return TemplateResponse(request, "admin/incidents/incident/tracker.html", context)


def _parsed(impact: dict):
    """When detection measured the impact, as a time the template formats like every other one."""
    try:
        return datetime.fromisoformat(impact["measured_at"])
    except (KeyError, TypeError, ValueError):
        return None


def needs_role(action, user) -> str:
    """'' when the user may run the action; else the role it needs ("Integrations admin"), shown before it refuses."""
    if action is None or not action.needs or user.has_perm(action.needs):
        return ""
    return ROLE_FOR.get(action.needs, action.needs)


def _item_row(
    item: ChecklistItem, operator: bool, incident: Incident, user=None, group: bool = False
) -> dict:
    action = ACTIONS.get(item.action) if item.action else None
    unknown = bool(item.action) and action is None  # a name no runbook has (any more)
    finished = incident.status == IncidentStatus.CLOSED
    needs = needs_role(action, user) if user is not None and operator else ""
    not_required = action.not_required(incident) if action and action.not_required and not item.done else ""
    to_do = item.phase == Phase.POST_INCIDENT
    return {
        "item": item,
        "check_badge": check_badge(item.check_result, to_do=to_do) if item.check_name else "",
        "to_do": to_do,
        "check_label": check_label(item.check_name),
        "action_label": action.label if action else item.action,
        "can_run": operator
        and action is not None
        and not finished
        and not needs
        and not item.skipped
        and not not_required,
        "needs": needs if action is not None and not finished and not not_required else "",
        "not_required": not_required,
        "unavailable": errors.UNKNOWN_ACTION.format(action=item.action) if unknown else "",
        "can_tick": operator
        and not item.check_name
        and not group
        and not (item.action and proven_from_data(item.action))
        and not item.done
        and not item.skipped
        and not finished,
        "group": group and not item.done and not item.skipped,
        "can_skip": operator
        and item.phase == "post_incident"
        and not item.done
        and not item.skipped
        and not finished,
    }


def _tenant_row(tenant, incident, user=None, failed_now=None) -> dict:
    failed = (failed_now or {}).get(tenant.pk, 0)
    admin = user is not None and user.has_perm(MANAGE_CREDENTIALS)
    return {
        "tenant": tenant,
        "failed_records": failed,
        "tenant_url": reverse("admin:integrations_tenant_change", args=[tenant.pk]),
        "integrations": [
            {
                "integration": i,
                "badge": badge(i.status, i.get_status_display()),
                "url": reverse("admin:integrations_integration_change", args=[i.pk]),
                # Reconnect cannot help an integration whose consent is gone: say who can re-authorize it.
                "reauth_hint": (
                    ("Re-authorize on its page" if admin else f"Re-authorizing needs an {ADMIN}: ask one")
                    if i.status == IntegrationStatus.NEEDS_REAUTH
                    else ""
                ),
            }
            for i in tenant.provider_integrations
        ],
    }


def _changelist(model: str, **params) -> str:
    return reverse(f"admin:integrations_{model}_changelist") + "?" + urlencode(params)


def _iso(at) -> str:
    return at.replace(microsecond=0).isoformat(sep=" ")


def incident_links(incident: Incident) -> list[dict]:
    """Where the incident's evidence lives, each list filtered to the incident's provider, tenants and window."""
    start, end = window(incident)
    tenant_ids = ",".join(str(pk) for pk in incident.affected_tenants.values_list("pk", flat=True))
    tenants = {"tenant__id__in": tenant_ids} if tenant_ids else {}
    kind = PROVIDERS[incident.provider].record_kind
    unsynced = unsynced_records(incident)
    return [
        {
            "key": "integrations",
            "label": "Affected integrations",
            "url": _changelist("integration", provider__exact=incident.provider, **tenants),
        },
        {
            "key": "tenants",
            "label": "Affected tenants",
            "url": _changelist("tenant", id__in=tenant_ids) if tenant_ids else "",
        },
        {
            "key": "sync_logs",
            "label": "Sync logs of the incident's window",
            "url": _changelist(
                "synclog",
                provider__exact=incident.provider,
                created_at__gte=_iso(start),
                created_at__lte=_iso(end),
                **tenants,
            ),
        },
        {
            "key": "failed_records",
            "label": "Failed records",
            "url": _changelist(
                "record", crm_sync_status__exact=CrmSyncStatus.FAILED, kind__exact=kind, **tenants
            ),
        },
        {
            "key": "unsynced_records",
            "label": f"Records left failed or never created ({unsynced.count()})",
            "url": _changelist("record", unsynced_at=incident.provider, kind__exact=kind, **tenants),
        },
        {
            "key": "defects",
            "label": "Defects",
            "url": _changelist("defect", provider__exact=incident.provider, created_at__gte=_iso(start)),
        },
        {
            "key": "webhooks",
            "label": "Webhook deliveries",
            "url": _changelist(
                "webhookdelivery",
                provider__exact=incident.provider,
                received_at__gte=_iso(start),
                received_at__lte=_iso(end),
            ),
        },
        {
            "key": "audit",
            "label": "Audit trail of the window",
            "url": _changelist(
                "auditevent",
                provider__exact=incident.provider,
                created_at__gte=_iso(start),
                created_at__lte=_iso(end),
            ),
        },
    ]


# ------------------------------------------------------------------------------------------ POST endpoints


def transition(modeladmin, request, pk):
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    incident = _incident(modeladmin, request, pk)
    to = request.POST.get("to", "")
    _operator(request, incident, f"Move to {to}")
    try:
        if to == IncidentStatus.ACKNOWLEDGED:
            incident_acknowledge(incident=incident, actor=request.user)
        else:
            incident_advance(
                incident=incident,
                actor=request.user,
                to=to,
                override_reason=request.POST.get("override_reason", ""),
            )
    except (errors.ServiceError, PermissionDenied) as e:
        _report(request, e)
    else:
        messages.success(request, f"INC-{incident.pk} is now {to}.")
    return redirect(tracker_url(incident))


def acknowledge(modeladmin, request, pk):
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    incident = _incident(modeladmin, request, pk)
    _operator(request, incident, "Become the commander")
    try:
        incident_acknowledge(incident=incident, actor=request.user)
    except (errors.ServiceError, PermissionDenied) as e:
        _report(request, e)
    else:
        messages.success(request, f"You are the commander of INC-{incident.pk}.")
    return redirect(tracker_url(incident))


def run_item(modeladmin, request, pk, item_pk):
    """GET: what the action will do, with its parameters. POST with confirm=yes: run it."""
    incident = _incident(modeladmin, request, pk)
    item = ChecklistItem.objects.filter(pk=item_pk, incident=incident).first()
    _operator(request, incident, f"Run: {item.text[:200]}" if item else "Run a checklist action")
    if item is None or item.action not in ACTIONS:
        messages.error(
            request,
            errors.ITEM_NOT_IN_INCIDENT
            if item is None
            else errors.UNKNOWN_ACTION.format(action=item.action or "(none)"),
        )
        return redirect(tracker_url(incident))
    action = ACTIONS[item.action]
    needs = needs_role(action, request.user)
    if needs:
        # Shown before it refuses: the confirmation never appears for an action the role may not run.
        refuse(incident, request.user, action.label, PermissionDenied(f"needs {needs}"))
        messages.error(request, f"{action.label} needs {needs}; ask one to run it.")
        return redirect(tracker_url(incident) + f"#item-{item.pk}")
    form_class = action_form_class(action)
    form = form_class(request.POST or None) if request.method == "POST" else form_class()
    if request.method == "POST" and request.POST.get("confirm") == "yes" and form.is_valid():
        try:
            outcome = checklist_item_run_action(
                incident=incident, item=item, actor=request.user, params=form.cleaned_data
            )
        except (errors.ServiceError, PermissionDenied) as e:
            _report(request, e)
        else:
            text = (
                outcome.summary
                if outcome.summary.startswith(action.label)
                else f"{action.label}: {outcome.summary}"
            )
            (messages.success if outcome.ok else messages.warning)(request, text)
        return redirect(tracker_url(incident) + f"#item-{item.pk}")
    targets = (
        (action.targets or affected_integrations)(incident).select_related("tenant").order_by("tenant__name")
    )
    context = _context(
        modeladmin,
        request,
        incident,
        item=item,
        spec=action,
        form=form,
        targets=list(targets[:20]),
        by_effect=action.targets is not None,
        more=max(0, targets.count() - 20),
        tracker_url=tracker_url(incident),
    )
    return TemplateResponse(request, "admin/incidents/incident/confirm_action.html", context)


def mark_done(modeladmin, request, pk, item_pk):
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    incident = _incident(modeladmin, request, pk)
    _operator(request, incident, "Mark a checklist item done")
    try:
        checklist_item_mark_done(incident=incident, item=item_pk, actor=request.user)
    except (errors.ServiceError, PermissionDenied) as e:
        _report(request, e)
    return redirect(tracker_url(incident) + f"#item-{item_pk}")


def skip(modeladmin, request, pk, item_pk):
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    incident = _incident(modeladmin, request, pk)
    _operator(request, incident, "Skip a post-incident item")
    try:
        checklist_item_skip(
            incident=incident, item=item_pk, actor=request.user, reason=request.POST.get("reason", "")
        )
    except (errors.ServiceError, PermissionDenied) as e:
        _report(request, e)
    return redirect(tracker_url(incident) + f"#item-{item_pk}")


def note(modeladmin, request, pk):
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    incident = _incident(modeladmin, request, pk)
    _operator(request, incident, "Post an internal status note")
    try:
        incident_post_note(incident=incident, actor=request.user, message=request.POST.get("message", ""))
    except (errors.ServiceError, PermissionDenied) as e:
        _report(request, e)
    else:
        messages.success(request, "Status note posted.")
    return redirect(tracker_url(incident) + "#timeline")


def notify(modeladmin, request, pk):
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    incident = _incident(modeladmin, request, pk)
    _operator(request, incident, "Notify affected tenants")
    try:
        minutes = int(request.POST.get("next_update_minutes") or 0) or None
        if minutes is not None and not 1 <= minutes <= 1440:
            raise errors.ServiceError("Next update must be between 1 and 1440 minutes.")
        result = incident_notify_tenants(incident=incident, actor=request.user, next_update_minutes=minutes)
    except ValueError:
        messages.error(request, "Next update must be a number of minutes.")
    except (errors.ServiceError, PermissionDenied) as e:
        _report(request, e)
    else:
        messages.success(request, result["summary"])
    return redirect(tracker_url(incident) + "#timeline")


def postmortem(modeladmin, request, pk):
    incident = _incident(modeladmin, request, pk)
    operator = can_operate(request.user)
    existing = Postmortem.objects.filter(incident=incident).first()
    initial = {f: getattr(existing, f) for f in POSTMORTEM_TEXT_FIELDS} if existing else {}
    follow_initial = existing.follow_ups if existing else []
    if request.method == "POST":
        _operator(request, incident, "Write the postmortem")
        form = PostmortemForm(request.POST)
        formset = FollowUpFormSet(request.POST, prefix="fu")
        if form.is_valid() and formset.is_valid():
            data = {
                **form.cleaned_data,
                "follow_ups": [f.cleaned_data for f in formset.forms if f.cleaned_data],
            }
            try:
                pm = postmortem_save(incident=incident, actor=request.user, data=data)
            except (errors.ServiceError, PermissionDenied) as e:
                _report(request, e)
            else:
                messages.success(
                    request, "Postmortem saved" + ("." if pm.is_complete else " (still incomplete).")
                )
                return redirect(tracker_url(incident) + "#postmortem")
    else:
        form = PostmortemForm(initial=initial)
        formset = FollowUpFormSet(initial=follow_initial, prefix="fu")
    context = _context(
        modeladmin,
        request,
        incident,
        form=form,
        formset=formset,
        can_operate=operator,
        postmortem=existing,
        postmortem_required=postmortem_requirement(incident),
        tracker_url=tracker_url(incident),
    )
    return TemplateResponse(request, "admin/incidents/incident/postmortem.html", context)


def open_incident(modeladmin, request):
    """The admin's "Add incident": a person opens an incident choosing the runbook."""
    _operator(request)
    form = OpenIncidentForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            incident = incident_open(
                provider=data["provider"],
                runbook=data["runbook"],
                actor=request.user,
                severity=data["severity"],
                title=data["title"],
                tenants=list(data["tenants"]),
            )
        except (errors.ServiceError, PermissionDenied) as e:
            _report(request, e)
        else:
            messages.success(request, f"Opened INC-{incident.pk} with {incident.runbook}'s checklist.")
            return redirect(tracker_url(incident))
    context = {
        **modeladmin.admin_site.each_context(request),
        "opts": Incident._meta,
        "form": form,
        "title": "Open an incident",
    }
    return TemplateResponse(request, "admin/incidents/incident/open.html", context)


def covering(modeladmin, request):
    """The incident covering a moment at a provider (a sync log's "incident covering it"): its tracker, or the
    provider's incidents when none covers it."""
    from django.utils.dateparse import parse_datetime

    provider = request.GET.get("provider", "")
    at = parse_datetime(request.GET.get("at", "") or "")
    found = incident_covering(provider, at) if at is not None and provider in PROVIDERS else None
    if found is None:
        messages.info(request, "No incident covers that moment; these are the provider's incidents.")
        url = reverse("admin:incidents_incident_changelist")
        return redirect(
            url + ("?" + urlencode({"provider__exact": provider}) if provider in PROVIDERS else "")
        )
    return redirect(tracker_url(found))


def incident_covering(provider: str, at):
    """The latest incident of the provider whose window (first error, or opening, to closing) holds `at`."""
    from django.db.models import Q
    from django.db.models.functions import Coalesce, Least

    return (
        Incident.objects.filter(provider=provider)
        .annotate(start=Least(Coalesce("started_at", "opened_at"), "opened_at"))
        .filter(start__lte=at)
        .filter(Q(closed_at__isnull=True) | Q(closed_at__gte=at))
        .order_by("-opened_at")
        .first()
    )
