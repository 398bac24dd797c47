"""Shared pieces of the fuzz suite (tests/fuzz/): hostile inputs, and a snapshot of the rows a refusal must
leave alone."""

import hashlib
import json

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

# Every fuzz test: reproducible, bounded (the whole suite adds well under 2 minutes), no wall-clock deadline.
FUZZ = settings(
    max_examples=40,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
)

# The inputs that made 500s in the audit (issue 13, L1-L10), and their cousins.
NASTY = [
    "",
    " ",
    "0",
    "-1",
    "1e309",
    "nan",
    "abc",
    "99999999999999999999999",
    "0001-01-01T00:00:00Z",
    "0001-01-01",
    "9999-12-31T23:59:59Z",
    "10000-01-01T00:00:00Z",
    "2026-02-30T00:00:00Z",
    "2026-13-01",
    "2026-01-01T25:61:61",
    "999999999999 days ago",
    "99999999999999 hours ago",
    "1000000000 minutes ago",
    "-5 minutes ago",
    "3 fortnights ago",
    "in 2 hours",
    "P99999999D",
    "99999999:00:00",
    "1 day, 99999999:00:00",
    "Acme\r\nBcc: victim@example.com",
    "line\nbreak",
    "a\x00b",
    "\u202e\U0001f642",
    "[]",
    "{}",
    "null",
    "' OR 1=1 --",
    "../../etc/passwd",
    "%00",
    "x" * 3000,
]
nasty = st.sampled_from(NASTY)
text_values = st.one_of(nasty, st.text(max_size=40), st.integers().map(str))

_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    text_values,
)
json_values = st.recursive(
    _scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(text_values, inner, max_size=4),
    max_leaves=15,
)
DEEP = b"[" * 20_000 + b"]" * 20_000
DEEP_OBJECT = b'{"a":' * 5_000 + b"1" + b"}" * 5_000
raw_bodies = st.one_of(
    st.sampled_from([DEEP, DEEP_OBJECT, b"", b"{", b"\xff\xfe", b"null", b"[]", b"1e999999"]),
    json_values.map(lambda v: json.dumps(v).encode()),
    st.binary(max_size=200),
)


def rows_snapshot() -> str:
    """A digest of the rows a refused request must not change (audit rows aside)."""
    from incidents.models import Incident
    from integrations.models import (
        ApiToken,
        BulkOperation,
        Defect,
        Integration,
        Record,
        SyncLog,
        Tenant,
        WebhookDelivery,
    )

    parts = [
        list(Tenant.objects.order_by("pk").values_list("pk", "name", "slug", "is_active")),
        list(
            Integration.objects.order_by("pk").values_list(
                "pk", "status", "enabled", "sync_paused", "mode", "poll_interval", "base_url", "is_critical"
            )
        ),
        list(Record.objects.order_by("pk").values_list("pk", "crm_sync_status", "enrichment_status")),
        list(SyncLog.objects.order_by("pk").values_list("pk", "status", "next_attempt_at")),
        list(WebhookDelivery.objects.order_by("pk").values_list("pk", "status", "attempts", "max_retries")),
        list(Defect.objects.order_by("pk").values_list("pk", "status")),
        list(ApiToken.objects.order_by("pk").values_list("pk", "revoked_at")),
        list(BulkOperation.objects.order_by("pk").values_list("pk", "status")),
        list(Incident.objects.order_by("pk").values_list("pk", "status", "severity")),
    ]
    return hashlib.sha256(json.dumps(parts, default=str).encode()).hexdigest()


def assert_no_crash(response, what: str = "") -> None:
    body = response.content[:4000].decode("utf-8", "replace") if hasattr(response, "content") else ""
    assert response.status_code < 500, f"{what}: {response.status_code} {body[:500]}"
    assert "Traceback" not in body, what
