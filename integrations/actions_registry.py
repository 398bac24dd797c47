"""Collects the admin actions each area contributes to a changelist."""
from integrations.admin_actions import credentials, diagnostics, recovery

AREAS = (credentials, recovery, diagnostics)


def actions_for(name: str) -> list:
    """name: INTEGRATION, SYNCLOG, RECORD, WEBHOOK or DEFECT."""
    return [action for area in AREAS for action in getattr(area, f"{name}_ACTIONS")]
