"""The incidents app's settings, read from django.conf.settings with defaults (lineup_ops/settings.py sets them
from the environment through django-environ)."""

from django.conf import settings


def error_rate_threshold() -> float:
    """Error share of a provider's (or an endpoint's) attempts over 15 minutes that opens an incident."""
    return float(getattr(settings, "INCIDENT_ERROR_RATE_THRESHOLD", 0.2))


def min_errors() -> int:
    """Fewer errors than this in 15 minutes never open an incident, whatever the rate."""
    return int(getattr(settings, "INCIDENT_MIN_ERRORS", 5))


def postmortem_after_hours() -> float:
    """A SEV-3 open longer than this needs a postmortem (RB-09: 2 hours)."""
    return float(getattr(settings, "INCIDENT_POSTMORTEM_AFTER_HOURS", 2))


def next_update_minutes() -> int:
    """When tenants are told to expect the next update."""
    return int(getattr(settings, "INCIDENT_NEXT_UPDATE_MINUTES", 60))
