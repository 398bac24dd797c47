"""The shipped Prometheus rule file, read from the installed package, with its runbook links on CONSOLE_URL."""

import re
from importlib import resources

RULES_RESOURCE = "prometheus/lineup-alerts.yml"
# runbook_url: "<anything>/runbooks/RB-09/": the part before /runbooks/ is the console's address.
_RUNBOOK_URL = re.compile(r'(runbook_url:\s*")[^"]*?(/runbooks/[^"]*")')


def shipped_rules() -> str:
    """The rule file as shipped (deploy/prometheus/lineup-alerts.yml in a checkout)."""
    return resources.files("lineup_ops").joinpath(RULES_RESOURCE).read_text(encoding="utf-8")


def render_rules(console_url: str, text: str | None = None) -> str:
    """The rules with every runbook_url pointing at this console's runbook pages."""
    base = console_url.rstrip("/")
    return _RUNBOOK_URL.sub(
        lambda m: f"{m.group(1)}{base}{m.group(2)}", shipped_rules() if text is None else text
    )
