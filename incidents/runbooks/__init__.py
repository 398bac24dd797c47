"""Runbooks as data: RB-01..RB-04 (lineup-integration-runbooks.md) and RB-09 (RB-09-integration-provider-outage.md).

Each step keeps the document's line it stands for (`source`) and the document's code lines it replaces (`block`),
so that a test can prove every line of both documents is here, in order. `text` is the step in the console's
terms; `action` names an operation the console runs (incidents.actions) and `check` a query that says whether
the step's condition holds now (incidents.checks).
"""
from dataclasses import dataclass, field

from ..models import Phase

PHASE_ORDER = [p.value for p in Phase]


@dataclass(frozen=True)
class Step:
    phase: str
    text: str
    source: str = ""
    block: str = ""
    action: str = ""
    check: str = ""
    depth: int = 0


@dataclass(frozen=True)
class Runbook:
    id: str
    title: str
    document: str
    section: str
    steps: tuple[Step, ...] = field(default_factory=tuple)

    def items(self) -> list[dict]:
        """The checklist an incident gets: one item per step, keyed by phase and position."""
        out, counters = [], {}
        for position, step in enumerate(self.steps, start=1):
            counters[step.phase] = counters.get(step.phase, 0) + 1
            out.append({
                "key": f"{step.phase}-{counters[step.phase]}", "phase": step.phase, "position": position,
                "text": step.text, "action": step.action, "check_name": step.check, "depth": step.depth,
                "source": step.source, "block": step.block,
            })
        return out

    @property
    def label(self) -> str:
        return f"{self.id} {self.title}"


def _load() -> dict[str, Runbook]:
    from . import rb01, rb02, rb03, rb04, rb09

    return {rb.id: rb for rb in (rb01.RUNBOOK, rb02.RUNBOOK, rb03.RUNBOOK, rb04.RUNBOOK, rb09.RUNBOOK)}


RUNBOOKS: dict[str, Runbook] = _load()
RUNBOOK_CHOICES = [(rb.id, rb.label) for rb in RUNBOOKS.values()]


def get_runbook(runbook_id: str) -> Runbook:
    """The runbook with that id; KeyError for an unknown one."""
    return RUNBOOKS[runbook_id]
