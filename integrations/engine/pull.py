"""Pulling provider changes into the local data."""

import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db import IntegrityError, transaction
from django.utils import timezone

from integrations.catalog import PROVIDERS
from integrations.engine.calls import CallContext, NotCallable, QuotaUnavailable, backoff_seconds
from integrations.engine.mapping import EXTERNAL_ID, local_value, mapping_for
from integrations.engine.outcomes import attempt_row, finish_attempt, note_error, note_success, record_call
from integrations.models import (
    AUTH_CATEGORIES,
    TRANSIENT_CATEGORIES,
    ConflictPolicy,
    CrmSyncStatus,
    Defect,
    DefectStatus,
    DefectType,
    Integration,
    Record,
    RecordLink,
    SyncDirection,
    SyncStatus,
)
from integrations.providers import ProviderError, RemoteRecord

POLL_OVERLAP = timedelta(minutes=2)
TRANSIENT_OR_AUTH = {str(c) for c in TRANSIENT_CATEGORIES | AUTH_CATEGORIES}


def same_value(a, b) -> bool:
    """Equal as a provider stores them: blanks and None alike, surrounding spaces ignored, compared as text."""

    def norm(v):
        if v is None or (isinstance(v, str) and not v.strip()):
            return None
        return str(v).strip()

    return norm(a) == norm(b)


def held_fields(integration: Integration, record_id: int) -> dict:
    """The fields of a record held by an open SYNC_CONFLICT defect at this integration: {remote_field: entry}."""
    defect = (
        Defect.objects.filter(
            record_id=record_id,
            integration=integration,
            defect_type=DefectType.SYNC_CONFLICT,
            status=DefectStatus.OPEN,
        )
        .only("details")
        .first()
    )
    if defect is None:
        return {}
    return {entry["remote_field"]: entry for entry in (defect.details.get("fields") or {}).values()}


@dataclass
class MergePlan:
    """What a three-way merge of one provider record decided, field by field (remote field names)."""

    outcome: str  # created | updated | unchanged
    take: dict = field(default_factory=dict)  # remote field -> their value, to apply locally
    keep: list = field(default_factory=list)  # remote fields whose local change waits to be pushed
    conflicts: dict = field(default_factory=dict)  # local field -> {"base", "ours", "theirs", "remote_field"}
    base: dict = field(default_factory=dict)  # the new agreed values


def merge(
    integration: Integration, record: Record | None, link: RecordLink | None, remote: RemoteRecord, mapping
) -> MergePlan:
    """Three-way merge of a provider record with ours, against the values last agreed (the link's base).

    A field changed on one side only takes that side's value; an unpushed local change is never overwritten by
    an older remote value. A field changed on both sides to different values is a conflict, which the
    integration's conflict policy decides: provider_wins takes theirs, local_wins keeps ours (pushed next), hold
    keeps ours here, holds the field back from pushes and makes it a SYNC_CONFLICT defect.
    Without a base (a link older than bases), a record with no unpushed change takes theirs, as before.
    """
    if record is None:
        return MergePlan("created", base=agreed(mapping, remote.fields))
    base = dict(link.base or {}) if link else {}
    unpushed = link is None or link.synced_at is None or record.updated_at > link.synced_at
    held = held_fields(integration, record.pk) if link and link.pk else {}
    plan = MergePlan("unchanged", base=dict(base))
    for local, remote_field, _ in mapping.pairs:
        ours = local_value(record.payload, local)
        theirs = remote.fields.get(remote_field)
        if theirs is None:
            # The provider holds nothing there: a local value it has not had yet waits to be pushed.
            if unpushed and ours not in (None, "") and not same_value(ours, base.get(remote_field)):
                plan.keep.append(remote_field)
            continue
        if same_value(ours, theirs):
            plan.base[remote_field] = theirs
            continue
        if remote_field in base:
            local_changed = not same_value(ours, base[remote_field])
            remote_changed = not same_value(theirs, base[remote_field])
        else:
            local_changed = unpushed and ours not in (None, "") and remote_field not in held
            remote_changed = True
        if remote_field in held:
            local_changed = True  # still held: ours stays until an operator decides
        if not local_changed:
            plan.take[remote_field] = theirs
            plan.base[remote_field] = theirs
        elif not remote_changed:
            plan.keep.append(remote_field)
        else:
            policy = integration.conflict_policy
            if policy == ConflictPolicy.PROVIDER_WINS:
                plan.take[remote_field] = theirs
                plan.base[remote_field] = theirs
            elif policy == ConflictPolicy.LOCAL_WINS:
                plan.keep.append(remote_field)
            else:
                plan.conflicts[local] = {
                    "remote_field": remote_field,
                    "base": base.get(remote_field),
                    "ours": ours,
                    "theirs": theirs,
                }
    if plan.take or plan.conflicts:
        plan.outcome = "updated"
    return plan


def agreed(mapping, fields: dict, *, base: dict | None = None, keep: set | frozenset = frozenset()) -> dict:
    """The values both sides hold once `fields` are the provider's (every mapped field, None when empty); the
    fields in `keep` (held by a conflict) keep their old base."""
    out = {remote: fields.get(remote) for _, remote, _ in mapping.pairs}
    for remote in keep:
        out[remote] = (base or {}).get(remote)
    return out


def changed_since_base(fields: dict, base: dict | None) -> dict:
    """Of the provider fields an update would send, those whose local value differs from the value last agreed
    (a field the base does not know is sent too, and our lineup_id always): an update sends only our changes,
    so that it does not undo an edit made at the provider since, in a field we did not change."""
    if not base:
        return fields
    return {
        k: v for k, v in fields.items() if k == EXTERNAL_ID or k not in base or not same_value(v, base[k])
    }


def apply_remote(
    integration: Integration, remote: RemoteRecord, *, when: datetime, mapping=None
) -> tuple[Record, str]:
    """Bring one provider record into the local data, field by field (see `merge`): update its linked record,
    adopt ours, or create one. Outcomes: created, updated, unchanged, conflict (a SYNC_CONFLICT defect held)."""
    mapping = mapping or mapping_for(integration)
    # Read, merge and write under row locks, link before record (the order a push writes them in): a user's
    # save landing between the read and the write would otherwise be overwritten with theirs, unseen.
    with transaction.atomic():
        return _apply_locked(integration, remote, when=when, mapping=mapping)


def _apply_locked(
    integration: Integration, remote: RemoteRecord, *, when: datetime, mapping
) -> tuple[Record, str]:
    link = (
        RecordLink.objects.select_for_update()
        .select_related("record")
        .filter(integration=integration, remote_id=remote.remote_id)
        .first()
    )
    record = link.record if link else None
    if record is None:
        lineup_id = remote.fields.get(EXTERNAL_ID)
        record_id = None
        if lineup_id:
            try:
                record_id = (
                    Record.objects.filter(
                        tenant_id=integration.tenant_id, external_id=uuid.UUID(str(lineup_id))
                    )
                    .values_list("pk", flat=True)
                    .first()
                )
            except ValueError:
                record_id = None
        if record_id is not None:
            # Adopting ours: the link locked before the record here too (a push's final write takes them in this
            # order; the other order could deadlock with a create's push and its own "created" webhook).
            link = (
                RecordLink.objects.select_for_update()
                .filter(record_id=record_id, integration=integration)
                .first()
            )
            record = Record.objects.select_for_update().filter(pk=record_id).first()
    if record is None:
        record = Record.objects.create(
            tenant_id=integration.tenant_id,
            kind=PROVIDERS[integration.provider].record_kind,
            payload=mapping.to_local(remote.fields),
            crm_sync_status=CrmSyncStatus.SYNCED,
        )
        Record.objects.filter(pk=record.pk).update(updated_at=when)
        plan = MergePlan("created", base=agreed(mapping, remote.fields))
    else:
        plan = merge(integration, record, link, remote, mapping)
    # A local change still to push keeps the record pending (its link's synced_at stays behind its updated_at).
    pending = bool(plan.keep)
    if plan.take:
        payload = {**record.payload, **mapping.to_local(plan.take)}
        if payload != record.payload:
            # Applied from the provider: the record does not look changed locally unless an edit still waits.
            Record.objects.filter(pk=record.pk).update(payload=payload, updated_at=when)
            record.payload = payload
    if plan.conflicts:
        hold_conflict(integration, record, remote.remote_id, plan.conflicts)
    defaults = {"remote_id": remote.remote_id, "remote_updated_at": remote.updated_at, "base": plan.base}
    if not pending:
        defaults.update({"synced_at": when, "failed_at": None, "last_error_category": ""})
    elif link is not None and link.last_error_category in TRANSIENT_OR_AUTH:
        # The provider answered: a local change its outage held back is pushable again at the next sync.
        defaults["failed_at"] = None
    RecordLink.objects.update_or_create(record=record, integration=integration, defaults=defaults)
    if plan.conflicts:
        return record, "conflict"
    return record, plan.outcome


def hold_conflict(integration: Integration, record: Record, remote_id: str, conflicts: dict) -> Defect:
    """The record's open SYNC_CONFLICT defect at this integration, with these fields' base, ours and theirs."""
    defect = Defect.objects.filter(
        record=record,
        provider=integration.provider,
        defect_type=DefectType.SYNC_CONFLICT,
        status=DefectStatus.OPEN,
    ).first()
    fields_ = {**((defect.details or {}).get("fields") or {} if defect else {}), **conflicts}
    names = ", ".join(sorted(fields_))
    description = f"{PROVIDERS[integration.provider].name}: {names} changed both here and at the provider"
    details = {"remote_id": remote_id, "fields": fields_}
    if defect is None:
        try:
            with transaction.atomic():
                return Defect.objects.create(
                    defect_type=DefectType.SYNC_CONFLICT,
                    provider=integration.provider,
                    tenant_id=integration.tenant_id,
                    integration=integration,
                    record=record,
                    description=description,
                    details=details,
                )
        except IntegrityError:
            defect = Defect.objects.get(
                record=record,
                provider=integration.provider,
                defect_type=DefectType.SYNC_CONFLICT,
                status=DefectStatus.OPEN,
            )
    Defect.objects.filter(pk=defect.pk).update(description=description, details=details)
    return defect


def poll_due(integration: Integration, now: datetime | None = None) -> bool:
    """A polling integration's next poll: its interval after the last good poll, and not before the backoff
    of a failed one has passed."""
    now = now or timezone.now()
    if integration.poll_retry_at and integration.poll_retry_at > now:
        return False
    return integration.last_polled_at is None or integration.last_polled_at + integration.poll_interval <= now


def pull_changes(ctx: CallContext, *, since: datetime | None = None) -> dict:
    """Fetch what changed at the provider since `since` (default: the last poll) and apply it locally."""
    integration = ctx.integration
    started = timezone.now()
    if since is None and integration.last_polled_at:
        since = integration.last_polled_at - POLL_OVERLAP
    counts = {"created": 0, "updated": 0, "unchanged": 0, "conflict": 0, "pages": 0}
    mapping = mapping_for(integration)
    cursor = None
    while True:
        row = attempt_row(integration, SyncDirection.PULL, "list")
        row.save()
        try:
            page = ctx.call(lambda c, cursor=cursor: c.list_records(updated_since=since, cursor=cursor))
        except (ProviderError, NotCallable) as e:
            err = e if isinstance(e, ProviderError) else ProviderError("unknown", str(e))
            record_call(row, err.call)
            row.status, row.error_category, row.error_message = (
                SyncStatus.FAILED,
                err.category,
                err.message[:2000],
            )
            row.finished_at = timezone.now()
            finish_attempt(row, counted=err.call is not None)
            if not isinstance(e, NotCallable) and not isinstance(e, QuotaUnavailable):
                note_error(integration, err, row.finished_at)
            # A failed poll backs off like a failed push (not again at the next dispatch, seconds later), and a
            # failing provider is never polled more often than a healthy one: at least the poll interval.
            failures = integration.poll_failures + 1
            wait = max(
                integration.poll_interval.total_seconds(),
                backoff_seconds(failures, getattr(e, "retry_after", None)),
            )
            Integration.objects.filter(pk=integration.pk).update(
                poll_failures=failures, poll_retry_at=row.finished_at + timedelta(seconds=wait)
            )
            counts["error"] = err.category
            return counts
        now = timezone.now()
        for remote in page.records:
            _, outcome = apply_remote(integration, remote, when=now, mapping=mapping)
            counts[outcome] += 1
        record_call(row, ctx.client.last_call)
        row.status, row.finished_at = SyncStatus.SUCCESS, now
        finish_attempt(row)
        counts["pages"] += 1
        cursor = page.next_cursor
        if not cursor:
            break
    Integration.objects.filter(pk=integration.pk).update(
        last_polled_at=started, poll_failures=0, poll_retry_at=None
    )
    note_success(integration, timezone.now())
    return counts
