"""Runbooks as data: RB-01..RB-04 (lineup-integration-runbooks.md) and RB-09 (RB-09-integration-provider-outage.md).

Each step keeps the document's line it stands for (`source`) and the document's code lines it replaces (`block`),
so that a test can prove every line of both documents is here, in order. `text` is the step in the console's
terms; `action` is the operation the console runs (an incidents.checklist.actions function) and `check` the
query that says whether the step's condition holds now (an incidents.checklist.checks function). A checklist item
stores their names; ACTIONS and CHECKS find them again.
"""

from incidents.checklist.actions import Action
from incidents.checklist.checks import Check
from incidents.runbooks import rb01, rb02, rb03, rb04, rb09
from incidents.runbooks.base import PHASE_ORDER, Runbook, Step

__all__ = ["ACTIONS", "CHECKS", "PHASE_ORDER", "RUNBOOKS", "RUNBOOK_CHOICES", "Runbook", "Step"]

RUNBOOKS: dict[str, Runbook] = {
    rb.id: rb for rb in (rb01.RUNBOOK, rb02.RUNBOOK, rb03.RUNBOOK, rb04.RUNBOOK, rb09.RUNBOOK)
}
RUNBOOK_CHOICES = [(rb.id, rb.label) for rb in RUNBOOKS.values()]
# The actions and checks the runbooks name, by the name a checklist item stores.
ACTIONS: dict[str, Action] = {
    s.action.name: s.action for rb in RUNBOOKS.values() for s in rb.steps if s.action
}
CHECKS: dict[str, Check] = {s.check.name: s.check for rb in RUNBOOKS.values() for s in rb.steps if s.check}
