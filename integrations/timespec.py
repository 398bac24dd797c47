"""The grammar of times and durations shared by commands, API and admin forms: "2 hours ago", "5m", providers.

A bad value raises UsageError, which a command turns into exit status 2 with its one-line message.
"""

import re
from datetime import datetime, timedelta

from django.core.management.base import CommandError
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from integrations.catalog import PROVIDERS

UNITS = {
    "s": "seconds",
    "sec": "seconds",
    "second": "seconds",
    "m": "minutes",
    "min": "minutes",
    "minute": "minutes",
    "h": "hours",
    "hour": "hours",
    "d": "days",
    "day": "days",
    "w": "weeks",
    "week": "weeks",
}


class UsageError(CommandError):
    """Exit status 2 with a one-line message, changing nothing."""

    def __init__(self, message: str):
        # One line, whatever the input held (issue 13: a CR/LF in an argument broke the one-line contract).
        one_line = str(message).replace("\r", "\\r").replace("\n", "\\n")
        super().__init__(one_line[:500], returncode=2)


def provider(value: str) -> str:
    if value not in PROVIDERS:
        raise UsageError(f"unknown provider '{value}' (known: {', '.join(PROVIDERS)})")
    return value


def duration(value: str, *, flag: str) -> timedelta:
    """'5m', '4h', '90 seconds', '2 days'."""
    match = re.fullmatch(r"\s*(\d+)\s*([a-zA-Z]+?)s?\s*", value or "")
    unit = UNITS.get(match.group(2).lower()) if match else None
    if not match or unit is None or int(match.group(1)) <= 0:
        raise UsageError(f"{flag}: '{value}' is not a duration such as 5m, 4h or '2 days'")
    try:
        return timedelta(**{unit: int(match.group(1))})
    except OverflowError:  # issue 13: 999999999999 days
        raise UsageError(f"{flag}: '{value}' is too long a duration") from None


def since(value: str, *, flag: str = "--since") -> datetime:
    """'N minutes/hours/days ago' or an ISO time."""
    match = re.fullmatch(r"\s*(\d+\s*[a-zA-Z]+)\s+ago\s*", value or "")
    if match:
        try:
            return timezone.now() - duration(match.group(1), flag=flag)
        except UsageError:
            pass
        except OverflowError:  # issue 13: further back than year 1
            raise UsageError(f"{flag}: '{value}' is too far back") from None
    else:
        try:
            parsed = parse_datetime((value or "").strip())
            if parsed is not None:
                aware = (
                    parsed
                    if timezone.is_aware(parsed)
                    else timezone.make_aware(parsed, timezone.get_current_timezone())
                )
                aware.astimezone(timezone.get_current_timezone())  # year 1 west of UTC overflows here
                if aware.year < 1970:
                    raise UsageError(f"{flag}: '{value}' is before 1970")
                return aware
        except (ValueError, OverflowError):  # issue 13: 2026-02-30, year 1 in a zone west of UTC
            raise UsageError(f"{flag}: '{value}' is not a possible time") from None
    raise UsageError(f"{flag}: '{value}' is not a time such as '2 hours ago' or 2026-01-19T10:00:00Z")


def positive_int(value: str, *, flag: str, minimum: int = 1) -> int:
    try:
        n = int(value)
    except (TypeError, ValueError):
        raise UsageError(f"{flag}: '{value}' is not a whole number") from None
    if n < minimum:
        raise UsageError(f"{flag}: must be at least {minimum}, got {n}")
    return n
