"""Real services (PostgreSQL, Redis, Chromium) are used when present; with REQUIRE_SERVICES=1 a missing one fails."""

import pytest
from django.conf import settings


def require_or_skip(reason: str):
    """Skip for a missing service, or fail when the run promised every service (REQUIRE_SERVICES=1)."""
    if settings.REQUIRE_SERVICES:
        pytest.fail(f"REQUIRE_SERVICES=1 but {reason}")
    pytest.skip(reason)
