"""A runbook as data: its steps, each in a phase, naming its action and check by the objects themselves."""

from dataclasses import dataclass, field

from incidents.checklist.actions import Action
from incidents.checklist.checks import Check
from incidents.models import Phase, RunbookId

PHASE_ORDER = [p.value for p in Phase]
AUTH_WORDS = {"oauth2": "OAuth", "api_key": "API-key"}


@dataclass(frozen=True)
class Step:
    phase: str
    text: str
    source: str = ""
    block: str = ""
    action: Action | None = None
    check: Check | None = None
    depth: int = 0
    # Only for providers of this auth type ("oauth2" or "api_key"; "" for all): RB-02 has steps for each.
    auth: str = ""


@dataclass(frozen=True)
class Runbook:
    id: str
    document: str
    section: str
    steps: tuple[Step, ...] = field(default_factory=tuple)

    def items(self, *, auth_type: str = "", provider_name: str = "") -> list[dict]:
        """The checklist an incident gets: one item per step, keyed by phase and position. Steps for another auth
        type than the provider's are there, skipped, saying why."""
        out, counters = [], {}
        for position, step in enumerate(self.steps, start=1):
            counters[step.phase] = counters.get(step.phase, 0) + 1
            other = bool(step.auth and auth_type and step.auth != auth_type)
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
                    "skipped": other,
                    "skip_reason": (
                        f"Not for {provider_name or 'this provider'}: a step for "
                        f"{AUTH_WORDS.get(step.auth, step.auth)} providers, and it uses "
                        f"{AUTH_WORDS.get(auth_type, auth_type)}."
                        if other
                        else ""
                    ),
                }
            )
        return out

    @property
    def title(self) -> str:
        return RunbookId(self.id).label

    @property
    def label(self) -> str:
        return f"{self.id} {self.title}"
