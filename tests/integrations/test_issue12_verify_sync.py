"""Issue 12, part 2: verify_sync compares field values and counts records never created at the provider.

Reported: INC-10 passed verification and closed with 7 HubSpot records that were never created there.
"""

from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from integrations.engine import run
from integrations.models import Record, RecordLink
from tests.support.sync import connect, local_records

pytestmark = pytest.mark.django_db


def _verify():
    out = StringIO()
    try:
        call_command("verify_sync", "--provider", "hubspot", "--sample-size", "20", stdout=out)
    except CommandError as e:
        return out.getvalue(), e.returncode
    return out.getvalue(), 0


def test_records_never_created_at_the_provider_are_mismatches_and_the_exit_status_says_so(sandbox):
    integration = connect(sandbox, "hubspot", mode="webhook")
    local_records(integration, 3)
    run.sync_integration(integration.pk, pull=False)
    assert _verify() == (_verify()[0], 0)
    never = local_records(integration, 2)
    # Their pushes failed for good (a validation error): they are not waiting for a push, they are missing.
    for record in never:
        RecordLink.objects.create(record=record, integration=integration, failed_at=record.updated_at)
        Record.objects.filter(pk=record.pk).update(crm_sync_status="FAILED")

    out, status = _verify()

    assert status == 1
    assert "2 mismatches (2 missing at the provider)" in out
    for record in never:
        assert f"record {record.pk} (None) (record): local='exists' remote=None" in out


def test_a_field_mismatch_names_record_field_and_both_values_and_a_waiting_edit_is_pending_push(sandbox):
    integration = connect(sandbox, "hubspot", mode="webhook")
    changed, waiting = local_records(integration, 2, company="Acme")
    run.sync_integration(integration.pk, pull=False)
    remote_id = RecordLink.objects.get(record=changed).remote_id
    sandbox.update_record("hubspot", remote_id, {"company": "Changed at HubSpot"})
    waiting.payload = {**waiting.payload, "company": "Not pushed yet"}
    waiting.save()

    out, status = _verify()

    assert status == 1
    assert f"MISMATCH {integration.tenant.slug} record {changed.pk} ({remote_id}) company: " in out
    assert "local='Acme' remote='Changed at HubSpot'" in out
    assert f"PENDING PUSH {integration.tenant.slug} record {waiting.pk} company: pending push" in out
    assert "1 mismatches (0 missing at the provider), 1 pending push" in out
