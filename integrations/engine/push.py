"""Pushing local records to the provider (and enriching them at an enrichment provider)."""

from datetime import timedelta

from django.db import IntegrityError, transaction
from django.db.models import Case, Exists, OuterRef, Q, Value, When
from django.utils import timezone

from integrations.catalog import PROVIDERS
from integrations.engine import batch_sql, rollups
from integrations.engine.calls import (
    BACKOFF_CAP_SECONDS,
    CallContext,
    NotCallable,
    QuotaUnavailable,
    backoff_seconds,
)
from integrations.engine.mapping import EXTERNAL_ID, mapping_for
from integrations.engine.outcomes import (
    attempt_row,
    finish_attempt,
    note_error,
    note_outcomes,
    note_success,
    record_call,
)
from integrations.engine.pull import agreed, changed_since_base, held_fields
from integrations.models import (
    AUTH_CATEGORIES,
    CrmSyncStatus,
    EnrichmentStatus,
    ErrorCategory,
    Integration,
    Record,
    RecordLink,
    SyncDirection,
    SyncLog,
    SyncStatus,
)
from integrations.providers import ProviderError, RemoteRecord

# A transient failure (the provider down, a 5xx, a timeout, a 429) is retried on a backoff capped at
# BACKOFF_CAP_SECONDS: 42 attempts span about 4 to 8 hours at the default 2 s base, so an outage of hours does
# not give a record up (it was 8: about 4 minutes). A wait for the quota that made no request is not an attempt
# at the provider and never gives a record up (`_decide`). Past this, the record is FAILED until Retry failed.
MAX_ATTEMPTS = 42
QUOTA_WAIT_RETRY_SECONDS = 30.0


def pending_records(integration: Integration):
    """Records of the integration's kind that changed since their last push and are not waiting on a failure."""
    records = Record.objects.filter(
        tenant_id=integration.tenant_id, kind=PROVIDERS[integration.provider].record_kind
    )
    if is_enrichment(integration):
        # Enrichment has no remote copy to keep equal: what waits is what has not been enriched yet.
        failed = RecordLink.objects.filter(
            record=OuterRef("pk"), integration=integration, failed_at__gte=OuterRef("updated_at")
        )
        return records.filter(
            enrichment_status__in=[EnrichmentStatus.PENDING, EnrichmentStatus.DEFERRED]
        ).exclude(Exists(failed))
    settled = RecordLink.objects.filter(record=OuterRef("pk"), integration=integration).filter(
        Q(synced_at__gte=OuterRef("updated_at")) | Q(failed_at__gte=OuterRef("updated_at"))
    )
    return records.exclude(Exists(settled))


def is_enrichment(integration: Integration) -> bool:
    return PROVIDERS[integration.provider].category == "enrichment"


def link_for(integration: Integration, record: Record) -> RecordLink:
    try:
        with transaction.atomic():
            return RecordLink.objects.get_or_create(record=record, integration=integration)[0]
    except IntegrityError:
        return RecordLink.objects.get(record=record, integration=integration)


def new_attempt(
    integration: Integration, record: Record, direction: str, operation: str, *, retry_of: SyncLog | None
) -> SyncLog:
    """The RUNNING row of one attempt. A retry is a new row pointing at the attempt it retries, whose outcome
    stays as it was: only its due time is taken away, so that it is retried once. A row an operator queued
    ("Retry failed syncs": PENDING, already pointing at the failed attempt) is itself the attempt."""
    if retry_of is not None and retry_of.status == SyncStatus.PENDING:
        retry_of.operation, retry_of.status, retry_of.next_attempt_at = operation, SyncStatus.RUNNING, None
        retry_of.save(update_fields=["operation", "status", "next_attempt_at"])
        return retry_of
    row = attempt_row(integration, direction, operation, record=record)
    if retry_of is not None:
        SyncLog.objects.filter(pk=retry_of.pk).update(next_attempt_at=None)
        row.retry_of = retry_of
        _number(row, retry_of)
    row.save()
    return row


def _is_quota_wait(row: SyncLog) -> bool:
    """A wait for the quota: no request was made (a 429 the provider answered has its HTTP status)."""
    return row.error_category == ErrorCategory.RATE_LIMITED and row.http_status is None and not row.endpoint


def _number(row: SyncLog, retry_of: SyncLog) -> None:
    """A retry's attempt number. A quota wait was no attempt at the provider: the retry after it keeps its
    number, so that waiting never uses up the record's MAX_ATTEMPTS; its own wait grows from the last one's."""
    if _is_quota_wait(retry_of):
        row.attempt = retry_of.attempt
        if retry_of.next_attempt_at and retry_of.finished_at:
            row.previous_wait_seconds = (retry_of.next_attempt_at - retry_of.finished_at).total_seconds()
    else:
        row.attempt = retry_of.attempt + 1


def push_record(ctx: CallContext, record: Record, *, retry_of: SyncLog | None = None) -> SyncLog:
    """Push one record; the SyncLog says what happened. Transient failures become RETRYING with a due time."""
    integration = ctx.integration
    link = link_for(integration, record)
    operation = "update" if link.remote_id else "create"
    row = new_attempt(integration, record, SyncDirection.PUSH, operation, retry_of=retry_of)

    mapping = mapping_for(integration)
    fields, missing = mapping.to_remote(record.payload, str(record.external_id))
    held = set(held_fields(integration, record.pk)) if link.remote_id else set()
    for remote_field in held:
        # A field held by an open SYNC_CONFLICT stays as it is at the provider until an operator decides.
        fields.pop(remote_field, None)
    unsent = set()
    if link.remote_id:
        # Only what changed here since the base: a field edited at the provider meanwhile is not undone.
        sent = changed_since_base(fields, link.base)
        unsent, fields = set(fields) - set(sent), sent
    if missing:
        return _fail_push(
            row,
            link,
            record,
            ProviderError(
                "missing_field", f"required field '{missing}' is empty in the local record", field=missing
            ),
        )
    try:
        if link.remote_id:
            remote = ctx.call(lambda c: c.update_record(link.remote_id, fields))
        else:
            # The look-up of an earlier attempt costs a query: only for a provider that could be asked.
            tried = ctx.client.finds_by_external_id and _tried_before(row)
            remote = _create_or_adopt(ctx, fields, str(record.external_id), tried_before=tried)
    except NotCallable as e:
        row.status, row.error_category, row.error_message = SyncStatus.RETRYING, "", str(e)
        row.next_attempt_at = timezone.now() + timedelta(minutes=1)
        finish_attempt(row, counted=False)
        return row
    except ProviderError as e:
        # A quota wait made no call: nothing to record (the client's last call was another one).
        call = None if isinstance(e, QuotaUnavailable) else e.call or ctx.client.last_call
        return _fail_push(row, link, record, e, call=call)
    now = timezone.now()
    record_call(row, ctx.client.last_call)
    row.status, row.finished_at = SyncStatus.SUCCESS, now
    with transaction.atomic():  # the link locked before the record, as apply_remote takes them
        # The attempt's SUCCESS commits with the link and record it describes, or not at all (left RUNNING).
        finish_attempt(row)
        base = _current_bases([link.pk]).get(link.pk, link.base)
        RecordLink.objects.filter(pk=link.pk).update(
            remote_id=remote.remote_id,
            # The version pushed, not the time the provider answered: an edit made while the call was under way
            # is newer than this, so the record still looks changed and goes out next.
            synced_at=record.updated_at,
            remote_updated_at=remote.updated_at,
            failed_at=None,
            last_error_category="",
            base=agreed(mapping, fields, base=base, keep=held | unsent),
        )
        # .update() leaves Record.updated_at alone, so the record does not look changed again.
        Record.objects.filter(pk=record.pk).update(crm_sync_status=CrmSyncStatus.SYNCED)
    note_success(integration, now)
    return row


def enrich_record(ctx: CallContext, record: Record, *, retry_of: SyncLog | None = None) -> SyncLog:
    """Look a record's person up at the enrichment provider and keep what it knows (RB-09 "enrichment")."""
    integration = ctx.integration
    link = link_for(integration, record)
    row = new_attempt(integration, record, SyncDirection.PULL, "enrich", retry_of=retry_of)
    email = (record.payload or {}).get("email")
    if not email:
        return _fail_push(
            row,
            link,
            record,
            ProviderError("missing_field", "the record has no email to enrich", field="email"),
        )
    try:
        person = ctx.call(lambda c: c.find_person(email))
    except NotCallable as e:
        row.status, row.error_message = SyncStatus.RETRYING, str(e)
        row.next_attempt_at = timezone.now() + timedelta(minutes=1)
        finish_attempt(row, counted=False)
        return row
    except ProviderError as e:
        row = _fail_push(row, link, record, e, call=e.call or ctx.client.last_call)
        if integration.enrichment_defer_on_error and e.transient:
            Record.objects.filter(pk=record.pk).update(enrichment_status=EnrichmentStatus.DEFERRED)
        return row
    now = timezone.now()
    record_call(row, ctx.client.last_call)
    if person is None and getattr(ctx.client, "pending", False):
        # The provider is still looking (202): ask again shortly, without counting it as a failure.
        row.status, row.next_attempt_at = SyncStatus.RETRYING, now + timedelta(seconds=30)
        row.error_message = "lookup queued at the provider"
        finish_attempt(row)
        return row
    row.status, row.finished_at = SyncStatus.SUCCESS, now
    row.error_message = "" if person else "no match at the provider"
    finish_attempt(row)
    enrichment = {k: v for k, v in (person.fields if person else {}).items() if k != "email"}
    Record.objects.filter(pk=record.pk).update(
        payload={**record.payload, "enrichment": enrichment},
        enrichment_status=EnrichmentStatus.ENRICHED,
        enriched_at=now,
        updated_at=now,
    )
    # Many records may share one person: the person's id stays in the enrichment, not in the link.
    if person:
        enrichment["person_id"] = person.remote_id
        Record.objects.filter(pk=record.pk).update(payload={**record.payload, "enrichment": enrichment})
    RecordLink.objects.filter(pk=link.pk).update(synced_at=now, failed_at=None, last_error_category="")
    note_success(integration, now)
    return row


def _tried_before(row: SyncLog) -> bool:
    """Whether an earlier attempt to create this record at this integration exists: its create may have reached
    the provider even though nothing here says so (the worker or the database went away before the answer was
    written)."""
    return (
        SyncLog.objects.filter(
            integration_id=row.integration_id,
            record_id=row.record_id,
            direction=SyncDirection.PUSH,
            operation="create",
        )
        .exclude(pk=row.pk)
        .exists()
    )


def _create_or_adopt(ctx: CallContext, fields: dict, external_id: str, *, tried_before=False) -> RemoteRecord:
    """Create; when the provider already holds our record (a repeated push), adopt it and update it.

    Most providers refuse a second record with our email and name the first. One that does not (PandaDoc) is
    asked for our record first, when an earlier create attempt may have made it (`tried_before`)."""
    if tried_before and ctx.client.finds_by_external_id:
        existing = ctx.call(lambda c: c.find_by_external_id(external_id))
        if existing is not None and str(existing.fields.get(EXTERNAL_ID) or "") == external_id:
            return ctx.call(lambda c: c.update_record(existing.remote_id, fields))
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
    record_call(row, call)
    row.error_category = error.category
    row.error_field = (error.field or "")[:200]
    row.error_message = error.message[:2000]
    _decide(row, error, now)
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
        note_error(row.integration, error, now)
    return row


def push_batch(ctx: CallContext, items: list[tuple[Record, SyncLog | None]]) -> list[SyncLog]:
    """Push many records with the provider's batch API: one call per batch of creates and one per batch of
    updates (each one unit of the quota, one lease renewal), each record's outcome its own attempt row.

    One record failing in a batch fails alone, with its field named; the rest succeed. The attempt rows, the
    links and the records' sync status are written in bulk. A duplicate (a repeated create) is handed to
    `push_record`, which adopts the provider's copy. Without a batch API, callers push one by one.
    """
    integration = ctx.integration
    mapping = mapping_for(integration)
    now = timezone.now()
    record_ids = [r.pk for r, _ in items]
    retried = [r.pk for _, r in items if r is not None and r.status != SyncStatus.PENDING]
    # Before the call, one transaction (one commit): the missing links, and the retried attempts' due times.
    with transaction.atomic():
        links = {
            lk.record_id: lk
            for lk in RecordLink.objects.filter(integration=integration, record_id__in=record_ids)
        }
        missing_links = [RecordLink(record=r, integration=integration) for r, _ in items if r.pk not in links]
        if missing_links:
            RecordLink.objects.bulk_create(missing_links, ignore_conflicts=True)
            links = {
                lk.record_id: lk
                for lk in RecordLink.objects.filter(integration=integration, record_id__in=record_ids)
            }
        if retried:
            SyncLog.objects.filter(pk__in=retried).update(next_attempt_at=None)
    held = _held_by_record(integration, record_ids)
    rows: dict[int, SyncLog] = {}
    creates, updates, fields_of, unsent_of, out = [], [], {}, {}, []
    for record, retry_of in items:
        link = links[record.pk]
        operation = "update" if link.remote_id else "create"
        if retry_of is not None and retry_of.status == SyncStatus.PENDING:
            # As `new_attempt` does: the queued row is the attempt, no longer due (an outcome sets its own).
            row = retry_of
            row.operation, row.next_attempt_at = operation, None
        else:
            row = attempt_row(
                integration,
                SyncDirection.PUSH,
                operation,
                status=SyncStatus.PENDING,
                record=record,
                created_at=now,
            )
            if retry_of is not None:
                row.retry_of = retry_of
                _number(row, retry_of)
        rows[record.pk] = row
        fields, missing = mapping.to_remote(record.payload, str(record.external_id))
        if missing:
            _settle_failed(
                row,
                ProviderError("missing_field", f"required field '{missing}' is empty", field=missing),
                now,
                counted=False,
            )
            continue
        for remote_field in held.get(record.pk, ()) if link.remote_id else ():
            fields.pop(remote_field, None)
        if link.remote_id:
            # Only what changed here since the base: a field edited at the provider meanwhile is not undone.
            sent = changed_since_base(fields, link.base)
            unsent_of[record.pk], fields = set(fields) - set(sent), sent
        fields_of[record.pk] = fields
        (updates if link.remote_id else creates).append(record)

    adopt: list[tuple[Record, SyncLog | None]] = []
    synced: list[int] = []
    failed_error: ProviderError | None = None
    size = ctx.client.batch_size
    for group, is_update in ((creates, False), (updates, True)):
        for start in range(0, len(group), size):
            chunk = group[start : start + size]
            try:
                if is_update:
                    answers = ctx.call(
                        lambda c, chunk=chunk: c.update_records(
                            [(links[r.pk].remote_id, fields_of[r.pk]) for r in chunk]
                        )
                    )
                else:
                    answers = ctx.call(
                        lambda c, chunk=chunk: c.create_records([fields_of[r.pk] for r in chunk])
                    )
            except (ProviderError, NotCallable) as e:
                error = e if isinstance(e, ProviderError) else None
                for record in chunk:
                    row = rows[record.pk]
                    if error is None:
                        row.status, row.error_message = SyncStatus.RETRYING, str(e)
                        row.next_attempt_at, row.finished_at = now + timedelta(minutes=1), now
                    else:
                        if not isinstance(error, QuotaUnavailable):  # a wait made no call to record
                            record_call(row, error.call or ctx.client.last_call)
                        _settle_failed(row, error, now, counted=True)
                failed_error = failed_error or error
                continue
            call = ctx.client.last_call
            for record, answer in zip(chunk, answers, strict=True):
                row = rows[record.pk]
                record_call(row, call)
                if isinstance(answer, ProviderError):
                    if answer.category == ErrorCategory.DUPLICATE and not is_update:
                        adopt.append((record, row.retry_of))
                        rows.pop(record.pk)
                        continue
                    _settle_failed(row, answer, now, counted=True)
                    continue
                row.status, row.finished_at, row.counted = SyncStatus.SUCCESS, now, True
                link = links[record.pk]
                link.remote_id, link.synced_at, link.remote_updated_at = (
                    answer.remote_id,
                    record.updated_at,  # the version pushed (see push_record)
                    answer.updated_at,
                )
                link.failed_at, link.last_error_category = None, ""
                synced.append(record.pk)
    # After the call, one transaction (one commit): the attempts, the links, the records' status, the
    # integration's status and the rollups, so that the rollups never count an attempt the sync log lacks.
    with transaction.atomic():
        bases = _current_bases(links[pk].pk for pk in synced)
        for pk in synced:
            link = links[pk]
            link.base = agreed(
                mapping,
                fields_of[pk],
                base=bases.get(link.pk, link.base),
                keep=set(held.get(pk, ())) | unsent_of.get(pk, set()),
            )
        _write_batch(integration, rows, links, synced, failed_error, now)
    out = list(rows.values())
    for record, retry_of in adopt:
        out.append(push_record(ctx, record, retry_of=retry_of))
    return out


def _current_bases(link_ids) -> dict[int, dict]:
    """The links' bases as they are now, locked until the transaction ends (in id order, so that two writers
    cannot deadlock). A push computes the base it writes from these, not from its read before the call:
    apply_remote may have agreed a provider's edit of a field not pushed while the call was under way."""
    ids = sorted(set(link_ids))
    if not ids:
        return {}
    rows = RecordLink.objects.select_for_update().filter(pk__in=ids).order_by("pk").values_list("pk", "base")
    return {pk: base for pk, base in rows}


def _write_batch(
    integration: Integration,
    rows: dict[int, SyncLog],
    links: dict[int, RecordLink],
    synced: list[int],
    failed_error: ProviderError | None,
    now,
) -> None:
    """A batch's bulk writes: a fixed number of statements, however many records the batch holds."""
    new_rows = [row for row in rows.values() if row.pk is None]
    queued = [row for row in rows.values() if row.pk is not None]  # operator-queued rows: the attempt itself
    batch_sql.insert_rows(new_rows)
    batch_sql.update_rows(
        queued,
        [
            "operation",
            "status",
            "error_category",
            "error_field",
            "error_message",
            "http_status",
            "endpoint",
            "rate_limit_headers",
            "request_excerpt",
            "response_excerpt",
            "duration_ms",
            "next_attempt_at",
            "finished_at",
            "counted",
        ],
    )
    ok_links = [links[pk] for pk in synced]
    if ok_links:
        batch_sql.update_rows(
            ok_links,
            ["remote_id", "synced_at", "remote_updated_at", "failed_at", "last_error_category", "base"],
        )
    bad = [
        row
        for row in rows.values()
        if row.status in (SyncStatus.FAILED, SyncStatus.RETRYING) and row.error_category
    ]
    for category in sorted({row.error_category for row in bad}):
        RecordLink.objects.filter(
            integration=integration,
            record_id__in=[r.record_id for r in bad if r.error_category == category],
        ).update(failed_at=now, last_error_category=category)
    given_up = [
        r.record_id for r in bad if r.status == SyncStatus.FAILED and r.error_category not in AUTH_CATEGORIES
    ]
    if synced or given_up:
        # One statement for both: another integration of the tenant may be writing the same records' status in
        # its own batch's transaction, and two statements each could take their rows in opposite orders.
        Record.objects.filter(pk__in=[*synced, *given_up]).update(
            crm_sync_status=Case(
                When(pk__in=given_up, then=Value(CrmSyncStatus.FAILED)), default=Value(CrmSyncStatus.SYNCED)
            )
        )
    worst = failed_error or next((ProviderError(r.error_category, r.error_message) for r in bad), None)
    if isinstance(worst, QuotaUnavailable):
        worst = None
    note_outcomes(integration, now, success=bool(synced), error=worst)
    # The rollups last, in a fixed order: their rows are shared by every worker of the provider, so they are
    # locked for the least time, and two batches committing at once never take them in opposite orders.
    counts: dict[tuple[str, str], int] = {}
    for row in rows.values():
        if row.counted:
            key = (
                row.endpoint or "(quota wait)",
                row.error_category if row.status != SyncStatus.SUCCESS else "",
            )
            counts[key] = counts.get(key, 0) + 1
    for (endpoint, category), n in sorted(counts.items()):
        rollups.count(provider=integration.provider, endpoint=endpoint, category=category, n=n)


def _held_by_record(integration: Integration, record_ids: list[int]) -> dict[int, list[str]]:
    from integrations.models import Defect, DefectStatus, DefectType

    out: dict[int, list[str]] = {}
    for record_id, details in Defect.objects.filter(
        record_id__in=record_ids,
        integration=integration,
        defect_type=DefectType.SYNC_CONFLICT,
        status=DefectStatus.OPEN,
    ).values_list("record_id", "details"):
        out[record_id] = [e["remote_field"] for e in ((details or {}).get("fields") or {}).values()]
    return out


def _settle_failed(row: SyncLog, error: ProviderError, now, *, counted: bool) -> None:
    """A batch item's failure, as `_fail_push` decides it, kept in memory for the bulk write."""
    row.error_category = error.category
    row.error_field = (error.field or "")[:200]
    row.error_message = error.message[:2000]
    row.finished_at, row.counted = now, counted
    _decide(row, error, now)


def _decide(row: SyncLog, error: ProviderError, now) -> None:
    """A failed attempt's outcome: RETRYING with its due time, or FAILED (given up until Retry failed)."""
    if isinstance(error, QuotaUnavailable):
        # No request was made: the provider refused nothing, and the record is never given up for it. It is
        # tried again when the block ends, and while the quota stays used up, on a wait that doubles (from
        # QUOTA_WAIT_RETRY_SECONDS, capped like the backoff): one row per record every few minutes, not a storm.
        previous = getattr(row, "previous_wait_seconds", None)
        grown = min(BACKOFF_CAP_SECONDS, max(QUOTA_WAIT_RETRY_SECONDS, 2 * (previous or 0.0)))
        row.status = SyncStatus.RETRYING
        row.next_attempt_at = now + timedelta(seconds=max(grown, error.retry_after or 0.0))
    elif error.category in AUTH_CATEGORIES:
        # Not the record's fault: it goes out once the integration can call again (refreshed or re-authorized);
        # dispatch skips integrations that need re-authorization, so this waits without a retry storm.
        row.status = SyncStatus.RETRYING
        row.next_attempt_at = now + timedelta(seconds=backoff_seconds(min(row.attempt, 4)))
    elif error.transient and row.attempt < MAX_ATTEMPTS:
        row.status = SyncStatus.RETRYING
        row.next_attempt_at = now + timedelta(seconds=backoff_seconds(row.attempt, error.retry_after))
    else:
        row.status = SyncStatus.FAILED
