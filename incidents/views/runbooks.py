"""The runbooks as pages (/runbooks/RB-09/): what alert annotations and the tracker link to."""

from django.contrib.admin.views.decorators import staff_member_required
from django.http import Http404
from django.shortcuts import render

from incidents.models import ACTIVE_STATUSES, Incident, Phase
from incidents.runbooks import RUNBOOKS


@staff_member_required
def runbook_list(request):
    return render(
        request, "incidents/runbook_list.html", {"runbooks": RUNBOOKS.values(), "title": "Runbooks"}
    )


@staff_member_required
def runbook_detail(request, code: str):
    runbook = RUNBOOKS.get(code.upper())
    if runbook is None:
        raise Http404(f"No runbook {code}")
    phases = []
    for phase in Phase:
        steps = [s for s in runbook.steps if s.phase == phase.value]
        if steps:
            phases.append(
                {
                    "label": phase.label,
                    "steps": [
                        {
                            "step": s,
                            "action": s.action.label if s.action else "",
                            "check": s.check.label if s.check else "",
                        }
                        for s in steps
                    ],
                }
            )
    active = Incident.objects.filter(runbook=runbook.id, status__in=ACTIVE_STATUSES).order_by("-opened_at")
    return render(
        request,
        "incidents/runbook_detail.html",
        {"runbook": runbook, "phases": phases, "active": active, "title": runbook.label},
    )
