"""Calling a provider for one integration: its client, the shared quota, token refresh, and backoff.

Every call goes through `CallContext.call`, which refuses when the integration may not call (paused, disabled,
needs re-auth), waits for the provider's shared quota, renews the sync run's lease, refreshes an expired OAuth
token once, and teaches the quota what the provider's rate-limit headers said.
"""

import random
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.utils import timezone

from integrations.access.actors import System
from integrations.catalog import PROVIDERS
from integrations.engine import allowlist, leases
from integrations.engine.outcomes import attempt_row, finish_attempt, note_error, record_call
from integrations.engine.quota import provider_quota
from integrations.models import ErrorCategory, Integration, SyncDirection, SyncLog, SyncStatus
from integrations.providers import BaseClient, CallInfo, ProviderError, get_client
from integrations.providers.rate_limits import parse_rate_limit

BACKOFF_CAP_SECONDS = 15 * 60
QUOTA_WAIT_SECONDS = 20.0
MAX_REFRESHES_PER_RUN = 5
ENGINE = System("sync")


class NotCallable(Exception):
    """The integration must not call its provider now (paused, disabled, needs re-auth, no credentials)."""


class QuotaUnavailable(ProviderError):
    """No call was made: the provider's quota is used up, or its rate limit holds calls back for a while."""

    def __init__(self, provider: str):
        held = provider_quota().blocked_for(provider)
        why = f"calls held back {held:.0f}s after the provider's rate limit" if held else "quota used up"
        super().__init__(
            "rate_limited", f"{provider}: {why}; no request made, retried then", retry_after=held or 1.0
        )


def base_url_for(integration: Integration) -> str:
    return integration.base_url or PROVIDERS[integration.provider].base_url


def client_for(integration: Integration) -> BaseClient:
    return get_client(
        integration.provider,
        base_url=base_url_for(integration),
        credentials=integration.credentials,
        client_id=settings.PROVIDER_CLIENT_ID,
        client_secret=settings.PROVIDER_CLIENT_SECRET,
        timeout=settings.PROVIDER_TIMEOUT_SECONDS,
        url_guard=allowlist.guard_for(integration.provider),
    )


def backoff_seconds(
    attempt: int, retry_after: float | None = None, *, rng=random, base: float | None = None
) -> float:
    """Exponential backoff with equal jitter (half the ceiling, plus up to half at random), never sooner than
    the provider's Retry-After."""
    base = settings.SYNC_BACKOFF_BASE_SECONDS if base is None else base
    ceiling = min(BACKOFF_CAP_SECONDS, base * 2 ** max(0, attempt - 1))
    delay = ceiling / 2 + rng.uniform(0, ceiling / 2)
    return max(delay, retry_after or 0.0)


def may_call(integration_id: int) -> bool:
    """Paused, disabled and needs-reauth integrations never call their provider."""
    return Integration.objects.callable().filter(pk=integration_id).exists()


def quota_feedback(provider: str, call: CallInfo | None, error: ProviderError | None) -> None:
    """Teach the shared limiter what the provider said: a 429's wait, or no quota left this window."""
    quota = provider_quota()
    if (
        error is not None
        and error.category == ErrorCategory.RATE_LIMITED
        and not isinstance(error, QuotaUnavailable)
    ):
        if error.retry_after:
            quota.observe(provider, retry_after=error.retry_after)
        else:
            quota.block_without_reset(provider)
        return
    seen = parse_rate_limit(call.rate_limit if call is not None else None)
    if seen.remaining is None:
        return
    if seen.remaining <= 0 and not seen.window_seconds:
        quota.block_without_reset(provider)
        return
    quota.observe(provider, remaining=seen.remaining, reset_seconds=seen.window_seconds)


def store_tokens(integration: Integration, tokens, *, when: datetime) -> None:
    """Persist a refreshed or newly granted token set (encrypted) with its expiry."""
    credentials = dict(integration.credentials)
    credentials["access_token"] = tokens.access_token
    if tokens.refresh_token:
        credentials["refresh_token"] = tokens.refresh_token
    credentials.update({k: v for k, v in (tokens.extra or {}).items() if k in {"instance_url", "id"}})
    seconds = tokens.expires_in or PROVIDERS[integration.provider].token_seconds
    integration.credentials = credentials
    integration.expires_at = when + timedelta(seconds=seconds) if seconds else None
    integration.last_refreshed_at = when
    integration.save(update_fields=["credentials", "expires_at", "last_refreshed_at", "updated_at"])


def refresh_token(integration: Integration) -> SyncLog:
    """Refresh an OAuth access token; a refused refresh marks the integration needs_reauth. Logged as a SyncLog."""
    client = client_for(integration)
    started = timezone.now()
    row = attempt_row(integration, SyncDirection.PULL, "refresh_token", object_type="token")
    try:
        tokens = client.refresh_token()
    except ProviderError as e:
        record_call(row, e.call or client.last_call)
        row.status, row.error_category, row.error_message = SyncStatus.FAILED, e.category, e.message[:2000]
        row.finished_at = timezone.now()
        finish_attempt(row)
        if e.category in (ErrorCategory.AUTH_REFRESH_FAILED, ErrorCategory.AUTH_INVALID):
            note_error(integration, e, row.finished_at)
        raise
    record_call(row, client.last_call)
    store_tokens(integration, tokens, when=started)
    row.status, row.finished_at = SyncStatus.SUCCESS, timezone.now()
    finish_attempt(row)
    return row


@dataclass
class CallContext:
    """One integration's client for the duration of a sync run.

    An expired access token is refreshed and the call repeated, once per call (a provider may expire tokens
    several times in one long run); a run refreshes at most MAX_REFRESHES_PER_RUN times, so a token endpoint
    that hands out dead tokens cannot loop. Each call renews the run's lease, however long the call waited.
    """

    integration: Integration
    client: BaseClient = None
    refreshes: int = 0
    lease_owner: str = ""
    calls: list = field(default_factory=list)
    # When this context last renewed the lease (time.monotonic()); the run took it just before making it.
    _renewed_at: float | None = field(default=None, repr=False)
    # The next call pushes records asked for "Sync now": it waits for the quota ahead of the backlog.
    priority: bool = False

    def __post_init__(self):
        self.client = self.client or client_for(self.integration)
        if self.lease_owner and self._renewed_at is None:
            self._renewed_at = time.monotonic()

    def _renew_lease(self, *, unless_within: float = 0.0) -> None:
        """Renew the run's lease, unless it was renewed less than `unless_within` seconds ago."""
        if not self.lease_owner:
            return
        now = time.monotonic()
        if self._renewed_at is not None and now - self._renewed_at < unless_within:
            return
        leases.renew_lease(self.integration.pk, self.lease_owner)
        self._renewed_at = now

    def _wait_for_quota(self) -> bool:
        """Wait up to QUOTA_WAIT_SECONDS for the shared quota, renewing the run's lease every few seconds of it,
        so that a short lease (a killed worker's integration is free again soon) never lapses during a wait.

        One renewal per call when the quota is there at once (a batch is one call, so one renewal per batch):
        the one when the quota is granted. Before a wait the lease is renewed only when the last renewal is older
        than RENEW_EVERY_SECONDS (the previous call took long); during a wait, every RENEW_EVERY_SECONDS."""
        deadline = time.monotonic() + QUOTA_WAIT_SECONDS
        quota, provider, ticket = provider_quota(), self.integration.provider, uuid.uuid4().hex
        while True:
            self._renew_lease(unless_within=leases.RENEW_EVERY_SECONDS)
            left = max(0.0, deadline - time.monotonic())
            # One ticket for the whole wait: the run keeps its place in the provider's line between renewals.
            if quota.acquire(
                provider, timeout=min(leases.RENEW_EVERY_SECONDS, left), ticket=ticket, priority=self.priority
            ):
                self._renew_lease()
                return True
            self._renewed_at = None  # a wait of up to RENEW_EVERY_SECONDS: renew before the next one
            if time.monotonic() >= deadline:
                quota.leave(provider, ticket)
                return False

    def call(self, fn: Callable[[BaseClient], object], *, _after_refresh: bool = False):
        if not may_call(self.integration.pk):
            raise NotCallable(f"{self.integration} is paused, disabled or needs re-authorization")
        if not self._wait_for_quota():
            raise QuotaUnavailable(self.integration.provider)
        try:
            result = fn(self.client)
        except ProviderError as e:
            quota_feedback(self.integration.provider, e.call, e)
            if (
                e.category == ErrorCategory.AUTH_EXPIRED
                and not _after_refresh
                and self.refreshes < MAX_REFRESHES_PER_RUN
                and self.integration.auth_type == "oauth2"
            ):
                self.refreshes += 1
                refresh_token(self.integration)  # raises auth_refresh_failed when the refresh token is gone
                self.client = client_for(self.integration)
                return self.call(fn, _after_refresh=True)
            raise
        quota_feedback(self.integration.provider, self.client.last_call, None)
        return result
