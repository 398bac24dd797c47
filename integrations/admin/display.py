"""Status badges: one colour per state, everywhere in the console."""

from django.utils.html import format_html
from django.utils.text import Truncator

# One colour per state, everywhere in the console.
BADGE_COLOURS = {
    # integrations
    "connected": "ok",
    "error": "bad",
    "needs_reauth": "warn",
    "paused": "muted",
    "disabled": "off",
    # sync logs
    "SUCCESS": "ok",
    "FAILED": "bad",
    "RETRYING": "warn",
    "RUNNING": "info",
    "PENDING": "muted",
    # webhook deliveries
    "PROCESSED": "ok",
    "RECEIVED": "info",
    "QUEUED": "warn",
    "DEAD": "off",
    # defects
    "OPEN": "bad",
    "RESOLVED": "ok",
    # records
    "SYNCED": "ok",
    "ENRICHED": "ok",
    "DEFERRED": "warn",
    "NONE": "muted",
    # incidents
    "open": "bad",
    "acknowledged": "warn",
    "contained": "warn",
    "recovering": "info",
    "verifying": "info",
    "resolved": "ok",
    "closed": "muted",  # finished, not struck out: "off" (line-through) is for what is switched off
    "SEV-2": "bad",
    "SEV-3": "warn",
}


def badge(value: str, label: str | None = None):
    """A coloured status badge; the same value always has the same colour."""
    tone = BADGE_COLOURS.get(value, "muted")
    return format_html('<span class="lo-badge lo-{}" data-status="{}">{}</span>', tone, value, label or value)


def short(text, n: int = 60):
    """Long text cut to fit its column, the whole text on hover (and in the detail view)."""
    text = text or ""
    if len(text) <= n:
        return text
    return format_html('<span class="lo-short" title="{}">{}</span>', text, Truncator(text).chars(n))
