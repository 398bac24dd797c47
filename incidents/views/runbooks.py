"""The runbooks as pages (/runbooks/RB-09/): what alert annotations and the tracker link to."""

import re
from functools import cache
from pathlib import Path

from django.contrib.admin.views.decorators import staff_member_required
from django.http import Http404
from django.shortcuts import render

from incidents.models import ACTIVE_STATUSES, Incident, Phase
from incidents.runbooks import RUNBOOKS

SOURCE = Path(__file__).resolve().parent.parent / "runbooks" / "source"
NUMBERED = re.compile(r"^\s*(\d+)\.\s")


def _plain(text: str) -> str:
    return re.sub(r"[*`]", "", text).strip()


@cache
def step_numbers(runbook_id: str) -> tuple:
    """Each step's number as the runbook document prints it ("3" for "3. **Reconcile missed events:**"), or ''
    for a bullet, a symptom or a console addition: the page numbers steps as the runbook does."""
    runbook = RUNBOOKS[runbook_id]
    lines = [_plain(line) for line in (SOURCE / runbook.document).read_text().splitlines()]
    start = 0
    if runbook.section:
        heading = _plain(runbook.section)
        start = next((i for i, line in enumerate(lines) if line.lstrip("# ").startswith(heading)), 0)
    out, at = [], start
    for step in runbook.steps:
        number = ""
        if step.source:
            wanted = _plain(step.source)
            for i in range(at, len(lines)):
                if wanted and wanted in lines[i]:
                    match = NUMBERED.match(lines[i])
                    number = match.group(1) if match else ""
                    at = i + 1
                    break
        out.append(number)
    return tuple(out)


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
    numbers = dict(zip(runbook.steps, step_numbers(runbook.id), strict=True))
    for phase in Phase:
        steps = [s for s in runbook.steps if s.phase == phase.value]
        if steps:
            phases.append(
                {
                    "label": phase.label,
                    "steps": [
                        {
                            "step": s,
                            "number": numbers[s],
                            "console": not s.source,
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
