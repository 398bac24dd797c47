"""A runbook as data: its steps, each in a phase, naming its action and check by the objects themselves."""

from dataclasses import dataclass, field

from incidents.checklist.actions import Action
from incidents.checklist.checks import Check
from incidents.models import Phase, RunbookId

PHASE_ORDER = [p.value for p in Phase]


@dataclass(frozen=True)
class Step:
    phase: str
    text: str
    source: str = ""
    block: str = ""
    action: Action | None = None
    check: Check | None = None
    depth: int = 0


@dataclass(frozen=True)
class Runbook:
    id: str
    document: str
    section: str
    steps: tuple[Step, ...] = field(default_factory=tuple)

    def items(self) -> list[dict]:
        """The checklist an incident gets: one item per step, keyed by phase and position."""
        out, counters = [], {}
        for position, step in enumerate(self.steps, start=1):
            counters[step.phase] = counters.get(step.phase, 0) + 1
            out.append(
                {
                    "key": f"{step.phase}-{counters[step.phase]}",
                    "phase": step.phase,
                    "position": position,
                    "text": step.text,
                    "action": step.action.name if step.action else "",
                    "check_name": step.check.name if step.check else "",
                    "depth": step.depth,
                    "source": step.source,
                    "block": step.block,
                }
            )
        return out

    @property
    def title(self) -> str:
        return RunbookId(self.id).label

    @property
    def label(self) -> str:
        return f"{self.id} {self.title}"
