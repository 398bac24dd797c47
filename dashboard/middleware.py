"""Show times in the operator's own time zone: the browser reports it (Intl) in a cookie, we activate it."""

import re
import zoneinfo
from urllib.parse import unquote

from django.utils import timezone

COOKIE = "lo_tz"
NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_+\-/]{0,63}$")


def zone_from(value: str | None):
    """The ZoneInfo named by the cookie, or None for a missing or unknown name (never an error)."""
    value = unquote(value or "")
    if not value or not NAME.match(value) or ".." in value:
        return None
    try:
        return zoneinfo.ZoneInfo(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
        return None


class OperatorTimezoneMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        zone = zone_from(request.COOKIES.get(COOKIE))
        if zone is not None:
            timezone.activate(zone)
        else:
            timezone.deactivate()
        try:
            return self.get_response(request)
        finally:
            timezone.deactivate()
