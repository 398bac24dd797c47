"""One reader of rate-limit headers serves the shared quota, the dashboard and the incident checks."""

import pytest

from integrations.engine import calls
from integrations.engine.quota import provider_quota
from integrations.providers import CallInfo
from integrations.providers.rate_limits import parse_rate_limit


@pytest.mark.parametrize(
    "headers, expected",
    [
        (
            {
                "X-HubSpot-RateLimit-Max": "100",
                "X-HubSpot-RateLimit-Remaining": "7",
                "X-HubSpot-RateLimit-Interval-Milliseconds": "10000",
            },
            (7, 100, 10.0, ""),
        ),
        ({"x-ratelimit-limit": "50", "x-ratelimit-remaining": "0", "Retry-After": "3"}, (0, 50, None, "3")),
        ({"RateLimit-Limit": "10", "RateLimit-Remaining": "9"}, (9, 10, None, "")),
        ({"Sforce-Limit-Info": "api-usage=25/15000"}, (14975, 15000, None, "")),
        ({"Retry-After": "12"}, (None, None, None, "12")),
        ({"X-RateLimit-Limit": "garbage"}, (None, None, None, "")),
        ({}, (None, None, None, "")),
        (None, (None, None, None, "")),
    ],
)
def test_rate_limit_headers_of_each_provider_convention(headers, expected):
    seen = parse_rate_limit(headers)
    assert (seen.remaining, seen.limit, seen.window_seconds, seen.retry_after) == expected


def test_the_shared_quota_learns_from_salesforce_sforce_limit_info():
    """The limiter's feed never read Sforce-Limit-Info: a Salesforce org with no API calls left kept calling."""
    quota = provider_quota()
    quota.reset("salesforce")
    call = CallInfo(
        method="GET",
        endpoint="/services/data/v59.0/sobjects/Contact",
        url="",
        http_status=200,
        duration_ms=5,
        rate_limit={"Sforce-Limit-Info": "api-usage=100000/100000"},
    )
    calls.quota_feedback("salesforce", call, None)
    try:
        assert quota.blocked_for("salesforce") > 0
    finally:
        quota.reset("salesforce")
