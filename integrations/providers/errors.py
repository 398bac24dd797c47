"""The one error taxonomy: every provider's failure shape maps to exactly one category (no Django here).

`integrations.models.ErrorCategory` (the choices stored on sync logs) is built from `CATEGORY_LABELS`.
"""

from __future__ import annotations

from integrations.providers.types import CallInfo

CATEGORY_LABELS = {
    "connection": "Connection",
    "timeout": "Timeout",
    "provider_5xx": "Provider 5xx",
    "rate_limited": "Rate limited",
    "auth_expired": "Auth expired",
    "auth_invalid": "Auth invalid",
    "auth_refresh_failed": "Auth refresh failed",
    "validation": "Validation",
    "missing_field": "Missing field",
    "duplicate": "Duplicate",
    "mapping": "Mapping",
    "unknown": "Unknown",
}
CATEGORIES = tuple(CATEGORY_LABELS)
# A transient failure is retried on the backoff schedule; the others wait for a person or a new edit.
TRANSIENT_CATEGORIES = frozenset({"connection", "timeout", "provider_5xx", "rate_limited"})
AUTH_CATEGORIES = frozenset({"auth_expired", "auth_invalid", "auth_refresh_failed"})
DATA_CATEGORIES = frozenset({"validation", "missing_field", "duplicate", "mapping"})


class ProviderError(Exception):
    """A failed provider call, in exactly one category of the shared taxonomy."""

    def __init__(
        self,
        category: str,
        message: str,
        *,
        http_status: int | None = None,
        field: str | None = None,
        retry_after: float | None = None,
        existing_id: str | None = None,
        call: CallInfo | None = None,
    ):
        if category not in CATEGORIES:
            raise ValueError(f"unknown provider error category {category!r}")
        super().__init__(message)
        self.category = category
        self.message = message
        self.http_status = http_status
        self.field = field
        self.retry_after = retry_after
        self.existing_id = existing_id
        self.call = call

    @property
    def transient(self) -> bool:
        return self.category in TRANSIENT_CATEGORIES

    def __str__(self) -> str:
        status = f" (HTTP {self.http_status})" if self.http_status is not None else ""
        return f"{self.category}{status}: {self.message}"

    def __repr__(self) -> str:
        return f"ProviderError(category={self.category!r}, message={self.message!r}, http_status={self.http_status!r})"


class UnsupportedOperation(ProviderError):
    """The provider has no such operation (e.g. writing to Clearbit, refreshing an API key)."""

    def __init__(self, message: str, *, category: str = "unknown"):
        super().__init__(category, message)
