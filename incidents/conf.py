"""The incidents app's settings, read from django.conf.settings with defaults (lineup_ops/settings.py sets them
from the environment through django-environ)."""

from django.conf import settings


def error_rate_threshold() -> float:
    """Error share of a provider's (or an endpoint's) attempts over the fast window that opens an incident."""
    return float(getattr(settings, "INCIDENT_ERROR_RATE_THRESHOLD", 0.2))


def min_errors() -> int:
    """Fewer errors than this in a window never open an incident, whatever the rate."""
    return int(getattr(settings, "INCIDENT_MIN_ERRORS", 5))


def postmortem_after_hours() -> float:
    """A SEV-3 open longer than this needs a postmortem (RB-09: 2 hours)."""
    return float(getattr(settings, "INCIDENT_POSTMORTEM_AFTER_HOURS", 2))


def next_update_minutes() -> int:
    """When tenants are told to expect the next update."""
    return int(getattr(settings, "INCIDENT_NEXT_UPDATE_MINUTES", 60))


# ------------------------------------------------------------------------------------------ detection windows
# Two windows over the same rollups (integrations/selectors/rates.py): the fast one opens an incident quickly
# on a burst, the slow one catches sustained errors and keeps an incident alive while the fast one still errs.


def fast_window_minutes() -> int:
    """The fast window: a burst of errors over this many minutes opens an incident (default 2)."""
    return int(getattr(settings, "INCIDENT_FAST_WINDOW_MINUTES", 2))


def slow_window_minutes() -> int:
    """The slow window: sustained errors over this many minutes open or keep an incident (default 15)."""
    return int(getattr(settings, "INCIDENT_SLOW_WINDOW_MINUTES", 15))


def fast_min_calls() -> int:
    """Fewer calls than this in the fast window (per provider, per endpoint) say nothing (default 5)."""
    return int(getattr(settings, "INCIDENT_FAST_MIN_CALLS", 5))


def slow_min_calls() -> int:
    """Fewer calls than this in the slow window (per provider, per endpoint) say nothing (default 20)."""
    return int(getattr(settings, "INCIDENT_SLOW_MIN_CALLS", 20))


def slow_error_rate_threshold() -> float:
    """Error share over the slow window that counts as sustained errors (default 5%)."""
    return float(getattr(settings, "INCIDENT_SLOW_ERROR_RATE_THRESHOLD", 0.05))


def state_share() -> float:
    """Share of a provider's enabled integrations in error / needs_reauth that opens an incident (default 0.5)."""
    return float(getattr(settings, "INCIDENT_STATE_SHARE", 0.5))


def state_min_tenants() -> int:
    """... and at least this many tenants (default 2)."""
    return int(getattr(settings, "INCIDENT_STATE_MIN_TENANTS", 2))


def reopen_minutes() -> int:
    """A signal for a provider whose incident was resolved less than this ago reopens it (default 30)."""
    return int(getattr(settings, "INCIDENT_REOPEN_MINUTES", 30))


def recovery_clean_minutes() -> int:
    """The fast window clean this long is the recovery signal ("recovered at T"; default 5)."""
    return int(getattr(settings, "INCIDENT_RECOVERY_CLEAN_MINUTES", 5))
