"""The sync engine: push records, pull changes, process webhooks. Every provider call leaves a SyncLog.

Called by Celery tasks (thin) and by services. Provider clients stay free of the ORM; this module persists
what they return. One running sync per integration is guaranteed by a lease taken with a conditional UPDATE.
"""
import logging
import random
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from integrations import rollups
from integrations.actors import System
from integrations.catalog import PROVIDERS
from integrations.mapping import EXTERNAL_ID, mapping_for
from integrations.models import (
    AUTH_CATEGORIES,
    CrmSyncStatus,
    EnrichmentStatus,
    ErrorCategory,
    Integration,
    OutcomeKind,
    Record,
    RecordLink,
    SyncDirection,
    SyncLog,
    SyncMode,
    SyncStatus,
    WebhookDelivery,
    WebhookStatus,
)
from integrations.providers import BaseClient, CallInfo, ProviderError, RemoteRecord, get_client
from integrations.quota import configured_quota, provider_quota

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 8
BACKOFF_CAP_SECONDS = 15 * 60
BATCH_SIZE = 200
POLL_OVERLAP = timedelta(minutes=2)
QUOTA_WAIT_SECONDS = 20.0
MAX_REFRESHES_PER_RUN = 5
# After this many transient failures in a row a batch stops: the provider is down, the rest waits.
BREAKER_TRANSIENT_IN_A_ROW = 3
ENGINE = System("sync")

DEFAULT_BASE_URLS = {
    "hubspot": "https://api.hubapi.com",
    "salesforce": "https://login.salesforce.com",
    "greenhouse": "https://harvest.greenhouse.io",
    "lever": "https://api.lever.co",
    "workday": "https://wd2-impl-services1.workday.com",
    "pandadoc": "https://api.pandadoc.com",
    "clearbit": "https://person.clearbit.com",
}
# Salesforce answers no expires_in: its session lasts two hours by default.
DEFAULT_TOKEN_SECONDS = {"salesforce": 7200}


class NotCallable(Exception):
    """The integration must not call its provider now (paused, disabled, needs re-auth, no credentials)."""


class QuotaUnavailable(ProviderError):
    def __init__(self, provider: str):
        super().__init__("rate_limited", f"{provider} quota exhausted; waiting for the window to reset",
                         retry_after=provider_quota().blocked_for(provider) or 1.0)


def base_url_for(integration: Integration) -> str:
    return integration.base_url or DEFAULT_BASE_URLS[integration.provider]


def client_for(integration: Integration) -> BaseClient:
    return get_client(
        integration.provider, base_url=base_url_for(integration), credentials=integration.credentials,
        client_id=settings.PROVIDER_CLIENT_ID, client_secret=settings.PROVIDER_CLIENT_SECRET,
        timeout=settings.PROVIDER_TIMEOUT_SECONDS,
    )


def backoff_seconds(attempt: int, retry_after: float | None = None, *, rng=random, base: float | None = None) -> float:
    """Exponential backoff with full jitter, never sooner than the provider's Retry-After."""
    base = settings.SYNC_BACKOFF_BASE_SECONDS if base is None else base
    ceiling = min(BACKOFF_CAP_SECONDS, base * 2 ** max(0, attempt - 1))
    delay = ceiling / 2 + rng.uniform(0, ceiling / 2)
    return max(delay, retry_after or 0.0)


def may_call(integration_id: int) -> bool:
    """Paused, disabled and needs-reauth integrations never call their provider."""
    return Integration.objects.filter(
        pk=integration_id, enabled=True, sync_paused=False
    ).exclude(status="needs_reauth").exists()


# ------------------------------------------------------------------------------------------ outcomes


def _apply_call(log_row: SyncLog, call: CallInfo | None) -> None:
    if call is None:
        return
    log_row.http_status = call.http_status
    log_row.endpoint = call.endpoint[:300]
    log_row.rate_limit_headers = call.rate_limit or {}
    log_row.request_excerpt = call.request_excerpt
    log_row.response_excerpt = call.response_excerpt
    log_row.duration_ms = call.duration_ms


def finish_attempt(row: SyncLog, *, counted: bool = True) -> None:
    """Save an attempt's outcome and count it for the error rates (a call the provider never saw is not counted)."""
    row.save()
    if counted:
        rollups.count(provider=row.provider, endpoint=row.endpoint or "(quota wait)",
                      category=row.error_category if row.status != SyncStatus.SUCCESS else "")


def _note_success(integration: Integration, when: datetime) -> None:
    from integrations.services import settled_status

    Integration.objects.filter(pk=integration.pk).update(last_success_at=when)
    Integration.objects.filter(pk=integration.pk).update(status=settled_status())


def _note_error(integration: Integration, error: ProviderError, when: datetime) -> None:
    from integrations.services import settled_status

    Integration.objects.filter(pk=integration.pk).update(
        last_error_at=when, last_error_category=error.category, last_error=str(error)[:2000]
    )
    Integration.objects.filter(pk=integration.pk).update(status=settled_status())


def _quota_feedback(provider: str, call: CallInfo | None, error: ProviderError | None) -> None:
    """Teach the shared limiter what the provider said: a 429's wait, or no quota left this window."""
    quota = provider_quota()
    if error is not None and error.category == ErrorCategory.RATE_LIMITED and not isinstance(error, QuotaUnavailable):
        quota.observe(provider, retry_after=error.retry_after or configured_quota(provider).window_seconds)
        return
    if call is None or not call.rate_limit:
        return
    headers = {k.lower(): v for k, v in call.rate_limit.items()}
    remaining = headers.get("x-hubspot-ratelimit-remaining") or headers.get("x-ratelimit-remaining")
    if remaining is None:
        return
    try:
        remaining_n = int(remaining)
    except ValueError:
        return
    interval_ms = headers.get("x-hubspot-ratelimit-interval-milliseconds")
    reset = int(interval_ms) / 1000 if interval_ms and interval_ms.isdigit() else configured_quota(provider).window_seconds
    quota.observe(provider, remaining=remaining_n, reset_seconds=reset)


# ------------------------------------------------------------------------------------------ tokens


def store_tokens(integration: Integration, tokens, *, when: datetime) -> None:
    """Persist a refreshed or newly granted token set (encrypted) with its expiry."""
    credentials = dict(integration.credentials)
    credentials["access_token"] = tokens.access_token
    if tokens.refresh_token:
        credentials["refresh_token"] = tokens.refresh_token
    credentials.update({k: v for k, v in (tokens.extra or {}).items() if k in {"instance_url"}})
    seconds = tokens.expires_in or DEFAULT_TOKEN_SECONDS.get(integration.provider)
    integration.credentials = credentials
    integration.expires_at = when + timedelta(seconds=seconds) if seconds else None
    integration.last_refreshed_at = when
    integration.save(update_fields=["credentials", "expires_at", "last_refreshed_at", "updated_at"])


def refresh_token(integration: Integration) -> SyncLog:
    """Refresh an OAuth access token; a refused refresh marks the integration needs_reauth. Logged as a SyncLog."""
    client = client_for(integration)
    started = timezone.now()
    row = SyncLog(integration=integration, tenant_id=integration.tenant_id, provider=integration.provider,
                  direction=SyncDirection.PULL, object_type="token", operation="refresh_token",
                  status=SyncStatus.RUNNING)
    try:
        tokens = client.refresh_token()
    except ProviderError as e:
        _apply_call(row, e.call or client.last_call)
        row.status, row.error_category, row.error_message = SyncStatus.FAILED, e.category, e.message[:2000]
        row.finished_at = timezone.now()
        finish_attempt(row)
        if e.category in (ErrorCategory.AUTH_REFRESH_FAILED, ErrorCategory.AUTH_INVALID):
            _note_error(integration, e, row.finished_at)
        raise
    _apply_call(row, client.last_call)
    store_tokens(integration, tokens, when=started)
    row.status, row.finished_at = SyncStatus.SUCCESS, timezone.now()
    finish_attempt(row)
    return row


# ------------------------------------------------------------------------------------------ calls


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

    def __post_init__(self):
        self.client = self.client or client_for(self.integration)

    def call(self, fn: Callable[[BaseClient], object], *, _after_refresh: bool = False):
        if not may_call(self.integration.pk):
            raise NotCallable(f"{self.integration} is paused, disabled or needs re-authorization")
        if not provider_quota().acquire(self.integration.provider, timeout=QUOTA_WAIT_SECONDS):
            raise QuotaUnavailable(self.integration.provider)
        if self.lease_owner:
            renew_lease(self.integration.pk, self.lease_owner)
        try:
            result = fn(self.client)
        except ProviderError as e:
            _quota_feedback(self.integration.provider, e.call, e)
            if (e.category == ErrorCategory.AUTH_EXPIRED and not _after_refresh
                    and self.refreshes < MAX_REFRESHES_PER_RUN and self.integration.auth_type == "oauth2"):
                self.refreshes += 1
                refresh_token(self.integration)  # raises auth_refresh_failed when the refresh token is gone
                self.client = client_for(self.integration)
                return self.call(fn, _after_refresh=True)
            raise
        _quota_feedback(self.integration.provider, self.client.last_call, None)
        return result


# ------------------------------------------------------------------------------------------ push


def pending_records(integration: Integration):
    """Records of the integration's kind that changed since their last push and are not waiting on a failure."""
    records = Record.objects.filter(tenant_id=integration.tenant_id, kind=PROVIDERS[integration.provider].record_kind)
    if is_enrichment(integration):
        # Enrichment has no remote copy to keep equal: what waits is what has not been enriched yet.
        failed = RecordLink.objects.filter(record=OuterRef("pk"), integration=integration,
                                           failed_at__gte=OuterRef("updated_at"))
        return records.filter(enrichment_status__in=[EnrichmentStatus.PENDING, EnrichmentStatus.DEFERRED]).exclude(
            Exists(failed))
    settled = RecordLink.objects.filter(record=OuterRef("pk"), integration=integration).filter(
        Q(synced_at__gte=OuterRef("updated_at")) | Q(failed_at__gte=OuterRef("updated_at"))
    )
    return records.exclude(Exists(settled))


def is_enrichment(integration: Integration) -> bool:
    return PROVIDERS[integration.provider].category == "enrichment"


def _link(integration: Integration, record: Record) -> RecordLink:
    try:
        with transaction.atomic():
            return RecordLink.objects.get_or_create(record=record, integration=integration)[0]
    except IntegrityError:
        return RecordLink.objects.get(record=record, integration=integration)


def push_record(ctx: CallContext, record: Record, *, retry_of: SyncLog | None = None) -> SyncLog:
    """Push one record; the SyncLog says what happened. Transient failures become RETRYING with a due time."""
    integration = ctx.integration
    link = _link(integration, record)
    operation = "update" if link.remote_id else "create"
    row = retry_of or SyncLog(
        integration=integration, tenant_id=integration.tenant_id, provider=integration.provider,
        direction=SyncDirection.PUSH, object_type=PROVIDERS[integration.provider].object_type, record=record,
    )
    row.operation, row.status = operation, SyncStatus.RUNNING
    if retry_of is not None:
        row.attempt += 1
    row.error_category = row.error_field = row.error_message = ""
    row.next_attempt_at = None
    row.save()

    fields, missing = mapping_for(integration).to_remote(record.payload, str(record.external_id))
    if missing:
        return _fail_push(row, link, record, ProviderError(
            "missing_field", f"required field '{missing}' is empty in the local record", field=missing))
    try:
        if link.remote_id:
            remote = ctx.call(lambda c: c.update_record(link.remote_id, fields))
        else:
            remote = _create_or_adopt(ctx, fields, str(record.external_id))
    except NotCallable as e:
        row.status, row.error_category, row.error_message = SyncStatus.RETRYING, "", str(e)
        row.next_attempt_at = timezone.now() + timedelta(minutes=1)
        row.save()
        return row
    except ProviderError as e:
        return _fail_push(row, link, record, e, call=e.call or ctx.client.last_call)
    now = timezone.now()
    _apply_call(row, ctx.client.last_call)
    row.status, row.finished_at = SyncStatus.SUCCESS, now
    finish_attempt(row)
    RecordLink.objects.filter(pk=link.pk).update(
        remote_id=remote.remote_id, synced_at=now, remote_updated_at=remote.updated_at, failed_at=None,
        last_error_category="",
    )
    # .update() leaves Record.updated_at alone, so the record does not look changed again.
    Record.objects.filter(pk=record.pk).update(crm_sync_status=CrmSyncStatus.SYNCED)
    _note_success(integration, now)
    return row


def enrich_record(ctx: CallContext, record: Record, *, retry_of: SyncLog | None = None) -> SyncLog:
    """Look a record's person up at the enrichment provider and keep what it knows (RB-09 "enrichment")."""
    integration = ctx.integration
    link = _link(integration, record)
    row = retry_of or SyncLog(
        integration=integration, tenant_id=integration.tenant_id, provider=integration.provider,
        direction=SyncDirection.PULL, object_type=PROVIDERS[integration.provider].object_type, record=record,
    )
    row.operation, row.status = "enrich", SyncStatus.RUNNING
    if retry_of is not None:
        row.attempt += 1
    row.error_category = row.error_field = row.error_message = ""
    row.next_attempt_at = None
    row.save()
    email = (record.payload or {}).get("email")
    if not email:
        return _fail_push(row, link, record, ProviderError("missing_field", "the record has no email to enrich",
                                                           field="email"))
    try:
        person = ctx.call(lambda c: c.find_person(email))
    except NotCallable as e:
        row.status, row.error_message = SyncStatus.RETRYING, str(e)
        row.next_attempt_at = timezone.now() + timedelta(minutes=1)
        row.save()
        return row
    except ProviderError as e:
        row = _fail_push(row, link, record, e, call=e.call or ctx.client.last_call)
        if integration.enrichment_defer_on_error and e.transient:
            Record.objects.filter(pk=record.pk).update(enrichment_status=EnrichmentStatus.DEFERRED)
        return row
    now = timezone.now()
    _apply_call(row, ctx.client.last_call)
    if person is None and getattr(ctx.client, "pending", False):
        # The provider is still looking (202): ask again shortly, without counting it as a failure.
        row.status, row.next_attempt_at = SyncStatus.RETRYING, now + timedelta(seconds=30)
        row.error_message = "lookup queued at the provider"
        row.save()
        return row
    row.status, row.finished_at = SyncStatus.SUCCESS, now
    row.error_message = "" if person else "no match at the provider"
    finish_attempt(row)
    enrichment = {k: v for k, v in (person.fields if person else {}).items() if k != "email"}
    Record.objects.filter(pk=record.pk).update(
        payload={**record.payload, "enrichment": enrichment}, enrichment_status=EnrichmentStatus.ENRICHED,
        enriched_at=now, updated_at=now,
    )
    # Many records may share one person: the person's id stays in the enrichment, not in the link.
    if person:
        enrichment["person_id"] = person.remote_id
        Record.objects.filter(pk=record.pk).update(payload={**record.payload, "enrichment": enrichment})
    RecordLink.objects.filter(pk=link.pk).update(synced_at=now, failed_at=None, last_error_category="")
    _note_success(integration, now)
    return row


def _create_or_adopt(ctx: CallContext, fields: dict, external_id: str) -> RemoteRecord:
    """Create; when the provider already holds our record (a repeated push), adopt it and update it."""
    try:
        return ctx.call(lambda c: c.create_record(fields))
    except ProviderError as e:
        if e.category != ErrorCategory.DUPLICATE or not e.existing_id:
            raise
        existing_id = e.existing_id
        existing = ctx.call(lambda c: c.get_record(existing_id))
        if str(existing.fields.get(EXTERNAL_ID) or "") != external_id:
            raise
        return ctx.call(lambda c: c.update_record(existing.remote_id, fields))


def _fail_push(row: SyncLog, link: RecordLink, record: Record, error: ProviderError, *, call=None) -> SyncLog:
    now = timezone.now()
    _apply_call(row, call)
    row.error_category = error.category
    row.error_field = (error.field or "")[:200]
    row.error_message = error.message[:2000]
    if error.category in AUTH_CATEGORIES:
        # Not the record's fault: it goes out once the integration can call again (refreshed or re-authorized);
        # dispatch skips integrations that need re-authorization, so this waits without a retry storm.
        row.status = SyncStatus.RETRYING
        row.next_attempt_at = now + timedelta(seconds=backoff_seconds(min(row.attempt, 4)))
    elif error.transient and row.attempt < MAX_ATTEMPTS:
        row.status = SyncStatus.RETRYING
        row.next_attempt_at = now + timedelta(seconds=backoff_seconds(row.attempt, error.retry_after))
    else:
        row.status, row.finished_at = SyncStatus.FAILED, now
    # Counted: what the provider answered, and waits for its quota (RB-03: "sync operations queuing up"); not a
    # local refusal that never reached anyone (a required field missing before the call).
    finish_attempt(row, counted=call is not None or isinstance(error, QuotaUnavailable))
    RecordLink.objects.filter(pk=link.pk).update(failed_at=now, last_error_category=error.category)
    if row.status == SyncStatus.FAILED and error.category not in AUTH_CATEGORIES:
        if is_enrichment(row.integration):
            Record.objects.filter(pk=record.pk).update(enrichment_status=EnrichmentStatus.FAILED)
        else:
            Record.objects.filter(pk=record.pk).update(crm_sync_status=CrmSyncStatus.FAILED)
    if not isinstance(error, QuotaUnavailable):
        _note_error(row.integration, error, now)
    return row


# ------------------------------------------------------------------------------------------ pull


def apply_remote(integration: Integration, remote: RemoteRecord, *, when: datetime) -> tuple[Record, str]:
    """Bring one provider record into the local data: update its linked record, adopt ours, or create one."""
    link = RecordLink.objects.select_related("record").filter(integration=integration, remote_id=remote.remote_id).first()
    record = link.record if link else None
    outcome = "updated"
    if record is None:
        lineup_id = remote.fields.get(EXTERNAL_ID)
        if lineup_id:
            try:
                record = Record.objects.filter(tenant_id=integration.tenant_id, external_id=uuid.UUID(str(lineup_id))).first()
            except ValueError:
                record = None
        if record is None:
            record = Record.objects.create(
                tenant_id=integration.tenant_id, kind=PROVIDERS[integration.provider].record_kind,
                payload=mapping_for(integration).to_local(remote.fields), crm_sync_status=CrmSyncStatus.SYNCED,
            )
            outcome = "created"
    payload = {**record.payload, **mapping_for(integration).to_local(remote.fields)}
    if payload != record.payload or outcome == "created":
        Record.objects.filter(pk=record.pk).update(payload=payload, updated_at=when)
    elif outcome != "created":
        outcome = "unchanged"
    RecordLink.objects.update_or_create(
        record=record, integration=integration,
        defaults={"remote_id": remote.remote_id, "synced_at": when, "remote_updated_at": remote.updated_at,
                  "failed_at": None, "last_error_category": ""},
    )
    return record, outcome


def pull_changes(ctx: CallContext, *, since: datetime | None = None) -> dict:
    """Fetch what changed at the provider since `since` (default: the last poll) and apply it locally."""
    integration = ctx.integration
    started = timezone.now()
    if since is None and integration.last_polled_at:
        since = integration.last_polled_at - POLL_OVERLAP
    counts = {"created": 0, "updated": 0, "unchanged": 0, "pages": 0}
    cursor = None
    while True:
        row = SyncLog.objects.create(
            integration=integration, tenant_id=integration.tenant_id, provider=integration.provider,
            direction=SyncDirection.PULL, object_type=PROVIDERS[integration.provider].object_type,
            operation="list", status=SyncStatus.RUNNING,
        )
        try:
            page = ctx.call(lambda c, cursor=cursor: c.list_records(updated_since=since, cursor=cursor))
        except (ProviderError, NotCallable) as e:
            err = e if isinstance(e, ProviderError) else ProviderError("unknown", str(e))
            _apply_call(row, err.call)
            row.status, row.error_category, row.error_message = SyncStatus.FAILED, err.category, err.message[:2000]
            row.finished_at = timezone.now()
            finish_attempt(row, counted=err.call is not None)
            if not isinstance(e, NotCallable) and not isinstance(e, QuotaUnavailable):
                _note_error(integration, err, row.finished_at)
            counts["error"] = err.category
            return counts
        now = timezone.now()
        for remote in page.records:
            _, outcome = apply_remote(integration, remote, when=now)
            counts[outcome] += 1
        _apply_call(row, ctx.client.last_call)
        row.status, row.finished_at = SyncStatus.SUCCESS, now
        finish_attempt(row)
        counts["pages"] += 1
        cursor = page.next_cursor
        if not cursor:
            break
    Integration.objects.filter(pk=integration.pk).update(last_polled_at=started)
    _note_success(integration, timezone.now())
    return counts


# ------------------------------------------------------------------------------------------ the sync run


def _lease() -> timedelta:
    # Renewed on every record pushed, so a killed worker's lease lapses soon.
    return timedelta(seconds=settings.SYNC_LEASE_SECONDS)


def acquire_lease(integration_id: int, owner: str) -> bool:
    now = timezone.now()
    return bool(
        Integration.objects.filter(pk=integration_id)
        .filter(Q(sync_lease_until__isnull=True) | Q(sync_lease_until__lt=now))
        .update(sync_lease_until=now + _lease(), sync_lease_owner=owner)
    )


def renew_lease(integration_id: int, owner: str) -> None:
    Integration.objects.filter(pk=integration_id, sync_lease_owner=owner).update(sync_lease_until=timezone.now() + _lease())


def release_lease(integration_id: int, owner: str) -> None:
    Integration.objects.filter(pk=integration_id, sync_lease_owner=owner).update(sync_lease_until=None, sync_lease_owner="")


@dataclass
class SyncSummary:
    integration_id: int
    ran: bool = False
    reason: str = ""
    pushed: int = 0
    failed: int = 0
    retrying: int = 0
    pulled: dict = field(default_factory=dict)
    more: bool = False


def sync_integration(integration_id: int, *, pull: bool | None = None, record_ids: list[int] | None = None) -> SyncSummary:
    """One sync run: due retries, then changed records (or just `record_ids`), then a pull when polling."""
    summary = SyncSummary(integration_id=integration_id)
    integration = Integration.objects.select_related("tenant").filter(pk=integration_id).first()
    if integration is None:
        summary.reason = "gone"
        return summary
    if not may_call(integration.pk) or not integration.has_credentials:
        summary.reason = f"not syncing: {integration.status}" if integration.has_credentials else "no credentials"
        return summary
    owner = uuid.uuid4().hex
    if not acquire_lease(integration.pk, owner):
        summary.reason = "another sync is running"
        return summary
    summary.ran = True
    try:
        ctx = CallContext(integration, lease_owner=owner)
        transient_in_a_row = 0
        step = enrich_record if is_enrichment(integration) else push_record
        for record, retry_of in _with_priority(integration, _work(integration, record_ids)):
            renew_lease(integration.pk, owner)
            row = step(ctx, record, retry_of=retry_of)
            if record.sync_priority_at:
                Record.objects.filter(pk=record.pk).update(sync_priority_at=None)
            if row.status == SyncStatus.SUCCESS:
                summary.pushed += 1
                transient_in_a_row = 0
            elif row.status == SyncStatus.RETRYING:
                summary.retrying += 1
                transient_in_a_row += 1
            else:
                summary.failed += 1
                transient_in_a_row = 0
            if row.error_category in AUTH_CATEGORIES or not may_call(integration.pk):
                summary.reason = "stopped: integration cannot call its provider"
                return summary
            if transient_in_a_row >= BREAKER_TRANSIENT_IN_A_ROW:
                summary.reason = "stopped: provider failing, the rest waits for the retry schedule"
                return summary
        if is_enrichment(integration):
            pull = False  # nothing to pull from an enrichment provider
        if pull if pull is not None else (integration.mode == SyncMode.POLLING and record_ids is None):
            renew_lease(integration.pk, owner)
            integration.refresh_from_db()
            summary.pulled = pull_changes(ctx)
        if record_ids is None:
            summary.more = pending_records(integration).exists() or _due_retries(integration).exists()
    finally:
        release_lease(integration.pk, owner)
    return summary


def _due_retries(integration: Integration):
    return SyncLog.objects.filter(
        integration=integration, status=SyncStatus.RETRYING, next_attempt_at__lte=timezone.now(), record__isnull=False
    )


def _work(integration: Integration, record_ids: list[int] | None):
    """What one run pushes: due retries first (oldest first), then records that changed, BATCH_SIZE at most."""
    budget = BATCH_SIZE
    if record_ids is not None:
        for record in Record.objects.filter(pk__in=record_ids, tenant_id=integration.tenant_id).order_by("pk"):
            yield record, None
        return
    retries = list(_due_retries(integration).select_related("record").order_by("next_attempt_at", "pk")[:budget])
    retried = set()
    for row in retries:
        retried.add(row.record_id)
        yield row.record, row
    budget -= len(retries)
    if budget <= 0:
        return
    for record in pending_records(integration).exclude(pk__in=retried).order_by("updated_at", "pk")[:budget]:
        yield record, None


def _priority_records(integration: Integration):
    return Record.objects.filter(
        tenant_id=integration.tenant_id, kind=PROVIDERS[integration.provider].record_kind,
        sync_priority_at__isnull=False,
    ).order_by("sync_priority_at", "pk")


def _with_priority(integration: Integration, work):
    """Records asked for "Sync now" go first, even when asked while this run is already under way (RB-03)."""
    done: set[int] = set()
    for record, retry_of in work:
        for urgent in _priority_records(integration).exclude(pk__in=done)[:50]:
            done.add(urgent.pk)
            yield urgent, None
        if record.pk not in done:
            done.add(record.pk)
            yield record, retry_of
    for urgent in _priority_records(integration).exclude(pk__in=done)[:50]:
        yield urgent, None


# ------------------------------------------------------------------------------------------ webhooks


def process_webhook(delivery_id: int) -> WebhookDelivery | None:
    """Fetch the record a webhook names and apply it; a failure is kept for a later retry, then DEAD."""
    delivery = WebhookDelivery.objects.select_related("integration__tenant").filter(pk=delivery_id).first()
    if delivery is None or delivery.status in (WebhookStatus.PROCESSED, WebhookStatus.DEAD):
        return delivery
    integration = delivery.integration
    if not may_call(integration.pk):
        # Paused or disabled: keep the event, untouched, until the integration may sync again.
        WebhookDelivery.objects.filter(pk=delivery.pk).update(status=WebhookStatus.QUEUED, next_attempt_at=None)
        delivery.status = WebhookStatus.QUEUED
        return delivery
    delivery.attempts += 1
    now = timezone.now()
    try:
        ctx = CallContext(integration)
        for remote_id in delivery.payload.get("remote_ids", []):
            remote = ctx.call(lambda c, rid=remote_id: c.get_record(rid))
            apply_remote(integration, remote, when=timezone.now())
    except (ProviderError, NotCallable) as e:
        delivery.last_error = str(e)[:2000]
        if delivery.attempts >= delivery.max_retries:
            delivery.status, delivery.next_attempt_at = WebhookStatus.DEAD, None
        else:
            delivery.status = WebhookStatus.FAILED
            # Webhooks wait longer between tries than pushes: a provider outage outlasts a burst of retries.
            wait = backoff_seconds(delivery.attempts, getattr(e, "retry_after", None),
                                   base=settings.WEBHOOK_RETRY_BASE_SECONDS)
            delivery.next_attempt_at = now + timedelta(seconds=wait)
        delivery.save(update_fields=["attempts", "status", "next_attempt_at", "last_error"])
        category = e.category if isinstance(e, ProviderError) else "unknown"
        rollups.count(kind=OutcomeKind.WEBHOOK, provider=delivery.provider, endpoint="webhook", category=category)
        if isinstance(e, ProviderError) and not isinstance(e, QuotaUnavailable):
            _note_error(integration, e, now)
        return delivery
    delivery.status, delivery.processed_at, delivery.last_error, delivery.next_attempt_at = (
        WebhookStatus.PROCESSED, timezone.now(), "", None)
    delivery.save(update_fields=["attempts", "status", "processed_at", "last_error", "next_attempt_at"])
    rollups.count(kind=OutcomeKind.WEBHOOK, provider=delivery.provider, endpoint="webhook")
    _note_success(integration, timezone.now())
    return delivery


# ------------------------------------------------------------------------------------------ scheduling


def due_integration_ids(now: datetime | None = None) -> set[int]:
    """Integrations with work due: retries whose time has come, and polling integrations whose interval passed."""
    now = now or timezone.now()
    callable_ = Integration.objects.filter(enabled=True, sync_paused=False).exclude(status="needs_reauth")
    retries = SyncLog.objects.filter(
        status=SyncStatus.RETRYING, next_attempt_at__lte=now, integration__in=callable_
    ).values_list("integration_id", flat=True).distinct()
    polling = [
        pk for pk, last, every in callable_.filter(mode=SyncMode.POLLING).values_list("pk", "last_polled_at", "poll_interval")
        if last is None or last + every <= now
    ]
    return set(retries) | set(polling)


def integrations_with_pending_records() -> list[int]:
    """A sweep for records whose enqueue was lost (a broker restart): every integration with pending records."""
    out = []
    for integration in Integration.objects.filter(enabled=True, sync_paused=False).exclude(status="needs_reauth"):
        if integration.has_credentials and pending_records(integration).exists():
            out.append(integration.pk)
    return out


def due_webhook_ids(now: datetime | None = None, limit: int = 1000) -> list[int]:
    now = now or timezone.now()
    return list(
        WebhookDelivery.objects.filter(
            Q(status=WebhookStatus.FAILED, next_attempt_at__lte=now)
            | Q(status=WebhookStatus.QUEUED, next_attempt_at__isnull=True)
            | Q(status=WebhookStatus.QUEUED, next_attempt_at__lte=now),
            integration__enabled=True, integration__sync_paused=False,
        ).order_by("received_at").values_list("pk", flat=True)[:limit]
    )


def recover_stuck(now: datetime | None = None) -> int:
    """Logs left RUNNING by a killed worker (its lease has lapsed): pushes retry now, pulls are marked failed."""
    now = now or timezone.now()
    older_than = timedelta(seconds=settings.SYNC_STUCK_AFTER_SECONDS)
    leased = Integration.objects.filter(sync_lease_until__gt=now).values("pk")
    stuck = SyncLog.objects.filter(status=SyncStatus.RUNNING, created_at__lt=now - older_than).exclude(
        integration__in=leased
    )
    message = "the worker stopped mid-sync"
    n = stuck.filter(record__isnull=False).update(
        status=SyncStatus.RETRYING, next_attempt_at=now, error_message=f"{message}; retrying"
    )
    n += stuck.filter(record__isnull=True).update(status=SyncStatus.FAILED, finished_at=now, error_message=message)
    return n
