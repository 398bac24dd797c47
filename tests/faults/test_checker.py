"""The fault suite's field check (faults/edits.py) against the sandbox: it sees every edit come home when the
engine keeps them, and it reports an edit as lost, and a record as doubled, when one is."""

import pytest

from faults.edits import check_edits, make_edits
from faults.world import Sandbox, check, create_batch
from integrations.engine import run
from integrations.engine.calls import CallContext
from integrations.engine.pull import pull_changes
from integrations.engine.quota import provider_quota
from integrations.models import Defect, Record

pytestmark = pytest.mark.django_db

PLAN = [["hubspot", "greenhouse"]]


@pytest.fixture
def batch(sandbox, sandbox_server):
    """A tenant with HubSpot and Greenhouse, 8 records of each kind, all pushed; edits made on both sides."""
    for p in ("hubspot", "greenhouse"):
        provider_quota().reset(p)
    control = Sandbox(sandbox_server.url)
    batch = create_batch("t", control, PLAN, per_kind=8, enqueue=False)
    for integration in batch.integrations():
        run.sync_integration(integration.pk, pull=False)
    batch.edits = make_edits(batch, control, "T")
    batch.control = control
    return batch


def _pull(batch) -> None:
    for integration in batch.integrations():
        pull_changes(CallContext(integration), since=None)


def _push(batch) -> None:
    for integration in batch.integrations():
        run.sync_integration(integration.pk, pull=False)


def test_the_check_finds_nothing_lost_when_the_engine_brings_every_edit_home(batch):
    assert batch.edits.notes == []  # every integration had its 6 synced records to edit
    _pull(batch)  # the provider's edits first: the same-field edits are conflicts
    _push(batch)
    got = check_edits(batch, batch.edits, batch.control)
    assert got.problems == []
    assert got.lost == 0
    assert got.same == 2 and got.conflicts == 2
    assert Defect.objects.filter(defect_type="SYNC_CONFLICT", status="OPEN").count() == 2
    assert got.edits == batch.edits.made > 20


def test_the_check_reports_an_edit_lost_at_the_provider_and_one_lost_here(batch):
    _pull(batch)
    _push(batch)
    # An edit made here, undone at the provider without a word (no webhook: nothing subscribed).
    mine = next(e for e in batch.edits.changes if e.origin == "here" and e.field == "title")
    record = Record.objects.get(pk=mine.record_id)
    greenhouse = next(i for i in batch.integrations() if i.provider == "greenhouse")
    hubspot = next(i for i in batch.integrations() if i.provider == "hubspot")
    integration = greenhouse if record.kind == "candidate" else hubspot
    remote_id = record.links.get(integration=integration).remote_id
    batch.control.update_record(
        integration.provider, remote_id, {"title" if record.kind == "candidate" else "jobtitle": "Old"}
    )
    # An edit made at the provider, reverted here (as an apply that let an older copy win would).
    theirs = next(e for e in batch.edits.changes if e.origin != "here")
    other = Record.objects.get(pk=theirs.record_id)
    Record.objects.filter(pk=other.pk).update(payload={**other.payload, theirs.field: "Older"})

    got = check_edits(batch, batch.edits, batch.control)
    assert got.lost == 2
    assert any(f"#{record.pk} title" in p and "'Old'" in p for p in got.problems), got.problems
    assert any(f"#{other.pk} {theirs.field}" in p and "here 'Older'" in p for p in got.problems), got.problems


def test_a_same_field_edit_that_only_theirs_survived_is_lost_under_hold(batch):
    """The provider's older value won over our later edit without a conflict: our edit is lost."""
    pair = batch.edits.same[0]
    record = Record.objects.get(pk=pair.record_id)
    Record.objects.filter(pk=record.pk).update(payload={**record.payload, pair.field: pair.theirs})
    got = check_edits(batch, batch.edits, batch.control)
    assert any(f"lost same-field edit #{record.pk}" in p for p in got.problems), got.problems


def test_a_record_at_the_provider_twice_is_counted_doubled(batch):
    _push(batch)
    hubspot = next(i for i in batch.integrations() if i.provider == "hubspot")
    assert check(batch, batch.control).duplicates == 0
    record = Record.objects.filter(tenant_id=hubspot.tenant_id, kind="contact").first()
    batch.control.create_record(
        "hubspot", hubspot.tenant.slug, {"email": "twice@example.org", "lineup_id": str(record.external_id)}
    )
    got = check(batch, batch.control)
    assert got.duplicates == 1
    assert not got.intact
