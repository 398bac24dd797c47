"""Edits on both sides while a fault is injected, and the field check after it (issue 12: "`make faults` checks
field values, not only presence").

During each fault the suite edits records that are already synced: here, as a user's edit does (the record
saved, then `services.records_changed`), and "in the provider's UI" (the sandbox's control API, which sends the
provider's webhooks). Per integration of the batch, among its synced records:

- `here`: edited here only (the kind's fields of EDIT_HERE);
- `both`: edited here, and another field of it at the provider (OTHER_THERE);
- `same`: the same field edited at the provider first, then here (SAME_FIELD): a conflict;
- `there`: another field edited at the provider only.

After the fault has settled, `check_edits` compares field values on both sides:

- a **lost edit** is an edit whose value is not held here, or not held at every integration of the record's
  tenant that takes its kind and maps the field (a local edit that did not reach a provider, or a provider's
  edit that did not arrive here or at the tenant's other providers); a field held by a conflict the suite did
  not make counts as lost too (held back from the provider);
- a same-field edit is **raised as a conflict** when it is an open SYNC_CONFLICT defect naming the field, with
  ours here and theirs at the provider; without one it is **settled** when both sides hold the same value: ours
  (the later edit: the engine pushed before it saw theirs, or saw theirs before our edit) or theirs only under
  the integration's `provider_wins` policy. Theirs under `hold` or `local_wins`, or the two sides differing,
  is a lost edit;
- **doubled records** are counted by `world.check` (a record at the sandbox more than once).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from django.db import transaction

from integrations import services
from integrations.catalog import PROVIDERS
from integrations.engine.mapping import local_value, mapping_for
from integrations.engine.pull import same_value
from integrations.models import ConflictPolicy, Defect, DefectStatus, DefectType, Record, RecordLink

EDIT_HERE = {"contact": ("title",), "candidate": ("title", "first_name"), "document": ("name",)}
OTHER_THERE = {  # a field the provider's UI edits, not one we edit here (local names)
    "hubspot": "company",
    "salesforce": "last_name",
    "greenhouse": "company",
    "lever": "email",
    "workday": "last_name",
    "pandadoc": "recipient_email",
}
SAME_FIELD = {  # the field edited on both sides (local names; one of EDIT_HERE)
    "hubspot": "title",
    "salesforce": "title",
    "greenhouse": "title",
    "lever": "title",
    "workday": "first_name",
    "pandadoc": "name",
}
PER_INTEGRATION = {"here": 2, "both": 2, "same": 1, "there": 1}


@dataclass
class Edit:
    record_id: int
    field: str  # local field name
    value: str
    origin: str  # "here", or the provider whose UI made it


@dataclass
class SameField:
    record_id: int
    integration_id: int
    field: str
    ours: str
    theirs: str


@dataclass
class Edits:
    changes: list[Edit] = field(default_factory=list)
    same: list[SameField] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def made(self) -> int:
        return len(self.changes) + 2 * len(self.same)


@dataclass
class EditCheck:
    edits: int = 0
    lost: int = 0
    same: int = 0
    conflicts: int = 0  # same-field edits held as SYNC_CONFLICT defects
    settled_ours: int = 0
    settled_theirs: int = 0
    stale_conflicts: int = 0  # raised, but the provider holds ours already (a push that went out meanwhile)
    problems: list[str] = field(default_factory=list)

    def figures(self) -> str:
        return (
            f"{self.edits} edits, same-field {self.same}: {self.conflicts} conflicts raised, settled "
            f"{self.settled_ours} ours / {self.settled_theirs} theirs"
            + (
                f"; {self.stale_conflicts} of the conflicts stale (the provider holds ours)"
                if self.stale_conflicts
                else ""
            )
        )


def _value(field_name: str, label: str) -> str:
    """A new value for a field; no spaces (Lever keeps first and last name in one field)."""
    if "email" in field_name:
        return f"{label.lower()}@example.org"
    return label


def synced_records(batch, integration) -> list[tuple[int, str]]:
    """(record id, remote id) of the batch's records already pushed to this integration, oldest first."""
    return list(
        RecordLink.objects.filter(
            integration=integration, record_id__in=batch.record_ids, synced_at__isnull=False
        )
        .exclude(remote_id="")
        .order_by("record_id")
        .values_list("record_id", "remote_id")
    )


def edit_here(record_id: int, changes: dict) -> bool:
    """A user's edit: the record saved, then the console's enqueue. False when the enqueue failed (the broker
    is down); the record is saved either way and the sweep finds it."""
    with transaction.atomic():
        record = Record.objects.select_for_update().get(pk=record_id)
        record.payload = {**record.payload, **changes}
        record.save(update_fields=["payload", "updated_at"])
    try:
        services.records_changed(record_ids=[record_id])
    except Exception:  # noqa: BLE001 - the broker is down: the saved record waits for the sweep
        return False
    return True


def wait_editable(batch, seconds: float) -> bool:
    """Until every integration of the batch has enough synced records to edit (bounded); call it before the
    fault is injected, so that the fault lasts as long as it should."""
    want = sum(PER_INTEGRATION.values())
    integrations = list(batch.integrations())
    deadline = time.monotonic() + seconds
    while True:
        if all(len(synced_records(batch, i)) >= want for i in integrations):
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.25)


def make_edits(batch, sandbox, tag: str) -> Edits:
    """Edit synced records of every integration of the batch, here and at the provider (see the module)."""
    integrations = list(batch.integrations())
    used: set[int] = set()
    edits = Edits()
    there: list[tuple[object, str, str, str]] = []  # (integration, remote id, remote field, value)
    here: dict[int, dict] = {}
    for integration in integrations:
        mapping = mapping_for(integration)
        kind = PROVIDERS[integration.provider].record_kind
        free = [(r, rid) for r, rid in synced_records(batch, integration) if r not in used]
        short = 0
        for category, n in PER_INTEGRATION.items():
            for _ in range(n):
                if not free:
                    short += 1
                    continue
                record_id, remote_id = free.pop(0)
                used.add(record_id)
                label = f"{tag}{category.capitalize()}{record_id}"
                if category in ("here", "both", "same"):
                    here[record_id] = {f: _value(f, f"{label}{f[:1].upper()}") for f in EDIT_HERE[kind]}
                if category in ("both", "there"):
                    local = OTHER_THERE[integration.provider]
                    value = _value(local, f"{label}There")
                    there.append((integration, remote_id, mapping.remote_name(local), value))
                    edits.changes.append(Edit(record_id, local, value, integration.provider))
                if category == "same":
                    local = SAME_FIELD[integration.provider]
                    theirs = _value(local, f"{label}Theirs")
                    edits.same.append(
                        SameField(record_id, integration.pk, local, here[record_id][local], theirs)
                    )
                    # Theirs first, then ours: ours is the later edit.
                    sandbox.update_record(
                        integration.provider, remote_id, {mapping.remote_name(local): theirs}
                    )
        if short:
            edits.notes.append(f"{integration.provider}: {short} edits short of synced records")
    same_fields = {(s.record_id, s.field) for s in edits.same}
    enqueue_failed = 0
    for record_id, changes in here.items():
        enqueue_failed += not edit_here(record_id, changes)
        edits.changes += [
            Edit(record_id, f, v, "here") for f, v in changes.items() if (record_id, f) not in same_fields
        ]
    for integration, remote_id, remote_field, value in there:
        sandbox.update_record(integration.provider, remote_id, {remote_field: value})
    if enqueue_failed:
        edits.notes.append(f"{enqueue_failed} local edits not enqueued (broker down): left to the sweep")
    return edits


def _held(integration_ids: list[int], record_ids: list[int]) -> dict[tuple[int, int], dict]:
    """Open SYNC_CONFLICT defects: (integration id, record id) -> {local field: entry}."""
    out = {}
    for integration_id, record_id, details in Defect.objects.filter(
        integration_id__in=integration_ids,
        record_id__in=record_ids,
        defect_type=DefectType.SYNC_CONFLICT,
        status=DefectStatus.OPEN,
    ).values_list("integration_id", "record_id", "details"):
        out[(integration_id, record_id)] = (details or {}).get("fields") or {}
    return out


def _covers(local: str, edited: str) -> bool:
    return local == edited or (local == "full_name" and edited in ("first_name", "last_name"))


def check_edits(batch, edits: Edits, sandbox) -> EditCheck:
    """Compare field values on both sides for every edit made during the fault (see the module)."""
    c = EditCheck(edits=edits.made, same=len(edits.same))
    record_ids = sorted({e.record_id for e in edits.changes} | {s.record_id for s in edits.same})
    records = {r.pk: r for r in Record.objects.filter(pk__in=record_ids)}
    integrations = list(batch.integrations())
    mappings = {i.pk: mapping_for(i) for i in integrations}
    remote: dict[tuple[int, int], dict | None] = {}
    for integration in integrations:
        at_sandbox = {
            str(r["id"]): r["fields"] for r in sandbox.records(integration.provider, integration.tenant.slug)
        }
        for record_id, remote_id in RecordLink.objects.filter(
            integration=integration, record_id__in=record_ids
        ).values_list("record_id", "remote_id"):
            remote[(integration.pk, record_id)] = at_sandbox.get(str(remote_id))
    held = _held([i.pk for i in integrations], record_ids)

    def takers(record):
        return [
            i
            for i in integrations
            if i.tenant_id == record.tenant_id and PROVIDERS[i.provider].record_kind == record.kind
        ]

    def providers_hold(record, edited: str, except_id: int | None = None) -> list[str]:
        """Where a provider does not hold what we hold for this field: ["hubspot 'x'", ...]."""
        wrong = []
        for integration in takers(record):
            if integration.pk == except_id:
                continue
            fields = remote.get((integration.pk, record.pk))
            for local, remote_field, _ in mappings[integration.pk].pairs:
                if not _covers(local, edited):
                    continue
                theirs = None if fields is None else fields.get(remote_field)
                if fields is None or not same_value(theirs, local_value(record.payload, local)):
                    wrong.append(f"{integration.provider} {theirs!r}")
        return wrong

    for edit in edits.changes:
        record = records.get(edit.record_id)
        if record is None:
            c.lost += 1
            c.problems.append(f"edit {edit.origin} #{edit.record_id}: the record is gone")
            continue
        ours = local_value(record.payload, edit.field)
        wrong = [] if same_value(ours, edit.value) else [f"here {ours!r}"]
        wrong += providers_hold(record, edit.field)
        held_by = [
            PROVIDERS[i.provider].name
            for i in takers(record)
            if edit.field in held.get((i.pk, record.pk), {})
        ]
        if held_by:
            wrong.append(f"held by a conflict at {', '.join(held_by)}")
        if wrong:
            c.lost += 1
            c.problems.append(
                f"lost edit ({edit.origin}) #{record.pk} {edit.field}={edit.value!r}: {'; '.join(wrong)}"
            )
    for pair in edits.same:
        record = records.get(pair.record_id)
        integration = next(i for i in integrations if i.pk == pair.integration_id)
        if record is None:
            c.lost += 1
            c.problems.append(f"same-field #{pair.record_id}: the record is gone")
            continue
        ours = local_value(record.payload, pair.field)
        remote_field = mappings[integration.pk].remote_name(pair.field)
        fields = remote.get((integration.pk, record.pk)) or {}
        theirs = fields.get(remote_field)
        entry = held.get((integration.pk, record.pk), {}).get(pair.field)
        if entry is not None:
            raised = (
                same_value(entry.get("ours"), pair.ours)
                and same_value(entry.get("theirs"), pair.theirs)
                and same_value(ours, pair.ours)
            )
            if raised and same_value(theirs, pair.ours):
                # Our push went out while the provider's copy was being fetched: it holds ours already; theirs
                # is kept in the defect (nothing lost, but the conflict is stale).
                c.stale_conflicts += 1
            elif raised and not same_value(theirs, pair.theirs):
                raised = False
            outcome = (
                "conflict"
                if raised
                else f"conflict held with other values: {entry}, {integration.provider} {theirs!r}"
            )
        elif same_value(ours, theirs) and same_value(ours, pair.ours):
            outcome = "ours"
        elif (
            same_value(ours, theirs)
            and same_value(ours, pair.theirs)
            and integration.conflict_policy == ConflictPolicy.PROVIDER_WINS
        ):
            outcome = "theirs"
        else:
            outcome = f"here {ours!r}, {integration.provider} {theirs!r}"
        # Our value (or theirs, when settled so) also reaches the tenant's other providers of the kind.
        elsewhere = providers_hold(record, pair.field, except_id=integration.pk)
        if outcome in ("conflict", "ours", "theirs") and not elsewhere:
            c.conflicts += outcome == "conflict"
            c.settled_ours += outcome == "ours"
            c.settled_theirs += outcome == "theirs"
            continue
        c.lost += 1
        c.problems.append(
            f"lost same-field edit #{record.pk} {pair.field} (ours {pair.ours!r}, theirs {pair.theirs!r}): "
            f"{'; '.join([outcome, *elsewhere])}"
        )
    return c
