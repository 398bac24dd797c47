"""The one reader of providers' rate-limit headers, for the shared quota, the dashboard and the incident checks."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

_SFORCE = re.compile(r"api-usage=(\d+)/(\d+)")
# (remaining, limit, window length in ms) per convention, in the order they are tried. Only HubSpot states
# its window's length; X-RateLimit-Reset is an epoch time at some providers and a delay at others, so unread.
_CONVENTIONS = (
    ("x-hubspot-ratelimit-remaining", "x-hubspot-ratelimit-max", "x-hubspot-ratelimit-interval-milliseconds"),
    # The common X-RateLimit-* (Greenhouse, Lever) and the IETF draft's RateLimit-*.
    ("x-ratelimit-remaining", "x-ratelimit-limit", None),
    ("ratelimit-remaining", "ratelimit-limit", None),
    ("x-rate-limit-remaining", "x-rate-limit-limit", None),
)


@dataclass(frozen=True)
class RateLimit:
    remaining: int | None = None
    limit: int | None = None
    window_seconds: float | None = None  # the length of the provider's window, if it said
    retry_after: str = ""  # the raw Retry-After, for display

    @property
    def known(self) -> bool:
        return self.remaining is not None


def _int(value) -> int | None:
    try:
        return int(str(value).strip().split(",")[0].split(";")[0])
    except (TypeError, ValueError):
        return None


def parse_rate_limit(headers: Mapping[str, str] | None) -> RateLimit:
    """What a response's headers say of the quota, in any of the conventions our providers use.

    Salesforce's Sforce-Limit-Info ("api-usage=used/limit") counts the org's daily API requests.
    """
    h = {str(k).lower(): v for k, v in (headers or {}).items()}
    retry_after = str(h.get("retry-after", ""))[:20]
    for remaining_key, limit_key, window_key in _CONVENTIONS:
        if remaining_key in h or limit_key in h:
            window_ms = _int(h.get(window_key)) if window_key else None
            return RateLimit(
                _int(h.get(remaining_key)),
                _int(h.get(limit_key)),
                window_ms / 1000 if window_ms and window_ms > 0 else None,
                retry_after,
            )
    match = _SFORCE.search(str(h.get("sforce-limit-info", "")))
    if match:
        used, limit = int(match.group(1)), int(match.group(2))
        return RateLimit(max(0, limit - used), limit, None, retry_after)
    return RateLimit(retry_after=retry_after)
