"""Issue 12 acceptance: RB-09's recovery through the runbook's own commands keeps every edit.

Reported: HubSpot went down; nine synced records were edited locally and waited on the retry schedule; after
`refresh_tokens` and `reconcile --since "2 hours ago"` ("updated 9") the local edits were gone, overwritten by
HubSpot's older copies, the next sync pushed the reverted values, and `verify_sync` said "0 mismatches".
`apply_remote` let the provider's copy win, whatever changed locally since the last push.
"""

from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from integrations.engine import pull
from integrations.models import Defect, Integration, Record, RecordLink
from tests.support.sync import connect, external_id, local_records, remote_view

pytestmark = pytest.mark.django_db

N_EDITED = 9
SAME_FIELD = 2  # of the edited records, this many are also edited at the provider in the same field
OTHER_FIELD = 3  # of the edited records, this many get another field edited at the provider


def _cmd(name, *args) -> str:
    out = StringIO()
    call_command(name, *args, stdout=out)
    return out.getvalue()


def _rb09(sandbox) -> dict:
    """Run the scenario; return what a user would check afterwards."""
    integration = connect(sandbox, "hubspot", mode="webhook")
    records = local_records(integration, N_EDITED + 3)
    _cmd("sync", "--provider", "hubspot", "--wait")
    links = {lk.record_id: lk.remote_id for lk in RecordLink.objects.filter(integration=integration)}
    assert len([r for r in links.values() if r]) == len(records)

    # 1. HubSpot goes down. 2. Nine synced records are edited locally; their pushes fail and wait.
    sandbox.control("hubspot", mode="down")
    edited = records[:N_EDITED]
    for i, record in enumerate(edited):
        record.payload = {**record.payload, "title": f"Local title {i}"}
        record.save()
    _cmd("sync", "--provider", "hubspot", "--wait")
    # Meanwhile people edit in HubSpot's UI: other fields of some, the same field of a few, and one new record.
    conflicted = edited[:SAME_FIELD]
    other = edited[SAME_FIELD : SAME_FIELD + OTHER_FIELD]
    for record in conflicted:
        sandbox.update_record("hubspot", links[record.pk], {"jobtitle": f"Their title {record.pk}"})
    for record in other:
        sandbox.update_record("hubspot", links[record.pk], {"company": f"Their company {record.pk}"})
    untouched_here = records[N_EDITED]
    sandbox.update_record("hubspot", links[untouched_here.pk], {"lastname": "Renamed-at-HubSpot"})
    sandbox.create_record(
        "hubspot",
        integration.tenant.slug,
        {"email": "only-at-hubspot@example.com", "firstname": "Only", "lastname": "There"},
    )

    # 3. HubSpot comes back: the runbook's recovery.
    sandbox.control("hubspot", mode="ok")
    _cmd("refresh_tokens", "--provider", "hubspot")
    reconciled = _cmd("reconcile", "--provider", "hubspot", "--since", "2 hours ago")
    _cmd("sync", "--provider", "hubspot", "--wait")
    try:
        verified, verify_failed = _cmd("verify_sync", "--provider", "hubspot", "--sample-size", "20"), False
    except CommandError as e:
        verified, verify_failed = str(e), True

    at_hubspot = remote_view(sandbox, integration)
    local = {str(r.external_id): r.payload for r in Record.objects.filter(tenant=integration.tenant)}
    lost = []
    for i, record in enumerate(edited):
        key = str(record.external_id)
        if record in conflicted:
            continue
        if local[key].get("title") != f"Local title {i}":
            lost.append(("local", record.pk, local[key].get("title")))
        if at_hubspot[key].get("title") != f"Local title {i}":
            lost.append(("hubspot", record.pk, at_hubspot[key].get("title")))
    for record in other:  # their edit of another field arrived, and stayed at HubSpot
        key = str(record.external_id)
        for side, values in (("local", local[key]), ("hubspot", at_hubspot[key])):
            if values.get("company") != f"Their company {record.pk}":
                lost.append((f"{side} company", record.pk, values.get("company")))
    if local[str(untouched_here.external_id)].get("last_name") != "Renamed-at-HubSpot":
        lost.append(("remote edit", untouched_here.pk, local[str(untouched_here.external_id)]))
    return {
        "integration": integration,
        "conflicted": conflicted,
        "lost": lost,
        "reconciled": reconciled,
        "verified": verified,
        "verify_failed": verify_failed,
        "at_hubspot": at_hubspot,
        "local": local,
    }


def test_rb09_recovery_through_the_runbook_commands_keeps_every_edit(sandbox):
    result = _rb09(sandbox)
    integration = result["integration"]

    assert result["lost"] == []
    # The same-field edits are SYNC_CONFLICT defects holding both values and the base; neither side changed.
    conflicts = Defect.objects.filter(integration=integration, defect_type="SYNC_CONFLICT", status="OPEN")
    assert sorted(conflicts.values_list("record_id", flat=True)) == sorted(r.pk for r in result["conflicted"])
    for defect in conflicts:
        i = [r.pk for r in result["conflicted"]].index(defect.record_id)
        entry = defect.details["fields"]["title"]
        assert (entry["ours"], entry["theirs"]) == (f"Local title {i}", f"Their title {defect.record_id}")
        assert entry["base"] is None or entry["base"] not in (entry["ours"], entry["theirs"])
        key = str(defect.record.external_id)
        assert result["local"][key]["title"] == entry["ours"]
        assert result["at_hubspot"][key]["title"] == entry["theirs"]
    # The provider-only record arrived.
    assert any(p.get("email") == "only-at-hubspot@example.com" for p in result["local"].values())
    assert "conflicts 2" in result["reconciled"]
    # verify_sync: 0 mismatches, exit status 0; the held conflicts are not reported as clean or as mismatches.
    assert not result["verify_failed"], result["verified"]
    assert "0 mismatches" in result["verified"]
    assert "sync conflict held" in result["verified"]
    assert Integration.objects.get(pk=integration.pk).status == "connected"


def test_rb09_recovery_test_catches_an_apply_that_lets_the_provider_always_win(sandbox, monkeypatch):
    """The acceptance test above must fail if apply_remote goes back to "provider always wins"."""

    def provider_always_wins(integration, record, link, remote, mapping):
        plan = pull.MergePlan(
            "created" if record is None else "updated", base=pull.agreed(mapping, remote.fields)
        )
        plan.take = {rf: remote.fields[rf] for _, rf, _ in mapping.pairs if remote.fields.get(rf) is not None}
        return plan

    monkeypatch.setattr(pull, "merge", provider_always_wins)
    result = _rb09(sandbox)
    assert result["lost"], "the scenario did not notice lost edits"
    assert not Defect.objects.filter(defect_type="SYNC_CONFLICT").exists()


def test_same_field_conflicts_follow_the_integrations_policy(sandbox):
    """local_wins pushes ours over theirs; provider_wins takes theirs; neither holds a defect."""
    for policy, expect in (("local_wins", "ours"), ("provider_wins", "theirs")):
        sandbox.reset()
        Integration.objects.all().delete()
        integration = connect(sandbox, "hubspot", mode="webhook", conflict_policy=policy)
        [record] = local_records(integration, 1)
        _cmd("sync", "--provider", "hubspot", "--wait")
        remote_id = RecordLink.objects.get(record=record).remote_id
        sandbox.control("hubspot", mode="down")
        record.payload = {**record.payload, "title": "ours"}
        record.save()
        _cmd("sync", "--provider", "hubspot", "--wait")
        sandbox.update_record("hubspot", remote_id, {"jobtitle": "theirs"})
        sandbox.control("hubspot", mode="ok")
        _cmd("reconcile", "--provider", "hubspot", "--since", "2 hours ago")
        _cmd("sync", "--provider", "hubspot", "--wait")
        [at_hubspot] = [r for r in sandbox.records("hubspot") if external_id(r) == str(record.external_id)]
        record.refresh_from_db()
        assert record.payload["title"] == expect, policy
        assert at_hubspot["fields"]["jobtitle"] == expect, policy
        assert not Defect.objects.filter(defect_type="SYNC_CONFLICT").exists()
